"""The paper's 2-D rotation table: test MSE (± 95 % interval over test tasks) of
MAML-Conv, MSR-Conv (Kronecker U) and MSR-Conv (dense U) on rot4 / rot8 /
rot8_flip with the authors' protocol, and what the equivariance lens says
about each model's layer at the end.

Each model runs at its own inner rate: a short run per candidate starting
rate (the authors' 0.1 and C/2, the rate at which one SGD step solves a task)
is scored on validation tasks, the last fifth of the training tasks, and the
best one is used for the full run. A rate that suits one model can starve
another, so one shared rate would compare step sizes as much as models.

Runs the models in parallel worker processes (one torch thread each), prints
the table as markdown, and with ``--update-docs`` writes it into docs/results.md
between the ``rotation-table`` markers.

    nice -n 10 python benchmarks/rotation_table.py --jobs 2 --update-docs
"""
from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, pick, update_doc  # noqa: E402
from msr.synthetic.config import SyntheticConfig  # noqa: E402
from msr.synthetic.data import DEFAULT_CACHE  # noqa: E402
from msr.synthetic.models import ROTATION_MODELS  # noqa: E402
from msr.synthetic.rotation import ROTATION_PROBLEMS  # noqa: E402
from msr.synthetic.run import run_synthetic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "nice -n 10 python benchmarks/rotation_table.py"


def one_step_rate(problem: str) -> float:
    """The inner rate at which one SGD step solves a task: the MSE averages
    over C output channels, so its gradient is (2/C)(W − W*)Σ with Σ ≈ I for
    white-noise inputs, and a step of C/2 lands on W*."""
    return ROTATION_PROBLEMS[problem].channels / 2


def candidate_rates(problem: str, base: SyntheticConfig) -> list[float]:
    return sorted({base.inner_lr, one_step_rate(problem)})


def search_one(problem: str, model: str, base: SyntheticConfig, rate: float, steps: int) -> dict:
    """A short run at one starting rate, scored on validation tasks."""
    res = run_synthetic(problem, model, config=base, keep_snapshots=False, inner_lr=rate, eval_on="validation",
                        steps=steps, eval_interval=steps, test_tasks=min(base.test_tasks, 200))
    return {"problem": problem, "model": model, "rate": rate, "val_mse": res.summary()["test_mse"]}


def chosen_rates(searched: list[dict]) -> dict[tuple[str, str], float]:
    """(problem, model) -> the starting rate with the lowest validation MSE
    (a run that diverged has none)."""
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for r in searched:
        mse = r["val_mse"]
        if mse is None or mse != mse:
            continue
        key = (r["problem"], r["model"])
        if key not in best or mse < best[key][0]:
            best[key] = (mse, r["rate"])
    return {k: rate for k, (_, rate) in best.items()}


def run_one(problem: str, model: str, base: SyntheticConfig, **settings) -> dict:
    t0 = time.perf_counter()
    res = run_synthetic(problem, model, config=base, keep_snapshots=False, **settings)
    s = res.summary()
    s["wall_seconds"] = time.perf_counter() - t0
    s["equiv_errors"] = res.last.get("equiv_errors")
    s["final_lr"] = next(iter(res.last.get("inner_lrs", {}).values()), None)
    s["start"] = {k: res.history[0].get(k) for k in ("equiv_error", "orbit_score", "u_equiv_error", "u_orbit_score")}
    s["inner_lr"] = settings.get("inner_lr", base.inner_lr)
    return s


def _num(value, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _cells(by: dict, model: str, problems: list[str], text) -> list[str]:
    """One table row: text(run) for each problem, '–' where that run is missing."""
    return [text(by[(p, model)]) if (p, model) in by else "–" for p in problems]


def markdown(rows: list[dict], problems: list[str], models: list[str]) -> str:
    by = {(r["problem"], r["model"]): r for r in rows}
    best = {p: min((by[(p, m)]["test_mse"] for m in models if (p, m) in by), default=None) for p in problems}
    lines = ["| Model | " + " | ".join(problems) + " |", "|---|" + "---:|" * len(problems)]
    def mse(r: dict) -> str:
        text = f"{r['test_mse']:.3f} ± {r['test_err']:.3f}"
        return f"**{text}**" if r["test_mse"] == best[r["problem"]] else text

    for m in models:
        cells = _cells(by, m, problems, lambda r: f"{mse(r)} (rate {r['inner_lr']:g})")
        latent = [str(by[(p, m)]["latent"]) for p in problems if (p, m) in by and by[(p, m)]["latent"]]
        name = ROTATION_MODELS[m].label + (f" (latent {' / '.join(latent)})" if latent else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "The lens at the end of training: equivariance error at 90° and orbit score (C4) of the layers "
              "adapted to test tasks; then the same for the layers U generates from random v (start → end):", "",
              "| Model | " + " | ".join(problems) + " |", "|---|" + "---:|" * len(problems)]
    def lens(r: dict) -> str:
        text = f"{_num(r['equiv_error'])}, {_num(r['orbit_score'])}"
        if r.get("u_orbit_score") is not None:
            text += (f"; U: {_num(r['start']['u_equiv_error'])} → {_num(r['u_equiv_error'])}, "
                     f"{_num(r['start']['u_orbit_score'])} → {_num(r['u_orbit_score'])}")
        return text

    for m in models:
        cells = _cells(by, m, problems, lens)
        lines.append(f"| {ROTATION_MODELS[m].label} | " + " | ".join(cells) + " |")
    lines.append("| *the data's own layer* | " + " | ".join("0.00, 1.00" for _ in problems) + " |")
    return "\n".join(lines)


def search_table(searched: list[dict], problems: list[str], models: list[str]) -> str:
    """Every candidate's validation MSE, the chosen one in bold."""
    chosen = chosen_rates(searched)
    by: dict[tuple[str, str], list[dict]] = {}
    for r in searched:
        by.setdefault((r["problem"], r["model"]), []).append(r)
    lines = ["| Model | " + " | ".join(problems) + " |", "|---|" + "---:|" * len(problems)]
    for m in models:
        cells = []
        for p in problems:
            parts = []
            for r in sorted(by.get((p, m), []), key=lambda r: r["rate"]):
                text = f"{r['rate']:g}: " + ("diverged" if r["val_mse"] is None or r["val_mse"] != r["val_mse"]
                                             else f"{r['val_mse']:.3f}")
                parts.append(f"**{text}**" if chosen.get((p, m)) == r["rate"] else text)
            cells.append(", ".join(parts) or "–")
        lines.append(f"| {ROTATION_MODELS[m].label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def document(table: str, rows: list[dict], base: SyntheticConfig, total: float, jobs: int,
             searched: list[dict], search_steps: int, problems: list[str], models: list[str]) -> str:
    when = dt.datetime.now().strftime("%Y-%m-%d")
    times = ", ".join(f"{r['problem']} {ROTATION_MODELS[r['model']].label} {r['wall_seconds']:.0f} s" for r in rows)
    search = ""
    if searched:
        search = f"""

Each model's starting inner rate was chosen among {{0.1, C/2}} (C output channels: C/2 is the rate at which
one SGD step solves a task whose inputs are white noise) by a {search_steps}-step run per candidate, scored on
validation tasks (the last fifth of the training tasks; never the test tasks). Validation MSE per candidate,
the chosen one in bold:

{search_table(searched, problems, models)}"""
    return f"""Test MSE after adapting to each test task (mean over {base.test_tasks} test tasks ± half-width of the 95 %
Student-t interval; bold = lowest per problem), each model at the starting inner rate its validation tasks
chose (in brackets). Protocol of the authors' code otherwise: {base.shots} support +
{base.queries} query examples per task, {base.tasks_per_step} tasks per step, inner lr learned
per layer, {base.inner_steps} inner SGD step, Adam {base.outer_lr}, {base.steps} outer steps,
{", ".join(f"{ROTATION_PROBLEMS[p].tasks} tasks ({p})" for p in ROTATION_PROBLEMS)} split 80/20, seed {base.seed}, dataset seed
{base.data_seed}.{search}

{table}

Equivariance error: `min_P ||f(Rx) − P R f(x)|| / ||f(x)||` at 90° on smooth probe images (0 for a group
convolution; random convolutions of these shapes give about 0.5–0.7). Orbit score: 1 when the filters are
rotated copies of one another, about 0 for random filters. Both read only the part of each filter that is not
rotation-invariant (each filter minus its average over its four quarter turns), so blobs and offsets cannot
pass for sharing. See `msr/core/symmetry.py`.

Machine: {machine()}; {jobs} run(s) at a time, 1 thread each. All {len(rows)} runs took {total / 60:.1f} min
({when}): {times}."""


def main(argv: list[str] | None = None) -> int:
    defaults = SyntheticConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problems", default=",".join(ROTATION_PROBLEMS), help="comma-separated problems")
    p.add_argument("--models", default=",".join(ROTATION_MODELS), help="comma-separated models")
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--test-tasks", type=int, default=defaults.test_tasks)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (each with one torch thread)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    p.add_argument("--update-docs", action="store_true", help="write the table into docs/results.md")
    p.add_argument("--search-steps", type=int, default=200,
                   help="steps of each rate-search run on validation tasks (0: no search, every model at 0.1)")
    args = p.parse_args(argv)
    try:
        problems, models = pick(args.problems, ROTATION_PROBLEMS, "problem"), pick(args.models, ROTATION_MODELS, "model")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = SyntheticConfig(problem=problems[0], model=models[0], steps=args.steps, test_tasks=args.test_tasks,
                           seed=args.seed, threads=1, cache_dir=args.cache_dir)
    t0 = time.perf_counter()
    pairs = [(pr, m) for pr in problems for m in models]
    # The slowest problems first, so parallel workers finish together.
    pairs.sort(key=lambda pm: -ROTATION_PROBLEMS[pm[0]].channels)
    searched: list[dict] = []
    if args.search_steps > 0:
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            jobs = [pool.submit(search_one, pr, m, base, rate, args.search_steps)
                    for pr, m in pairs for rate in candidate_rates(pr, base)]
            for job in jobs:
                searched.append(job.result())
                r = searched[-1]
                print(f"search {r['problem']:9} {ROTATION_MODELS[r['model']].label:20} rate {r['rate']:g}: "
                      f"validation MSE {r['val_mse']}", file=sys.stderr, flush=True)
    rates = chosen_rates(searched)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pm: pool.submit(run_one, *pm, base, inner_lr=rates.get(pm, base.inner_lr)) for pm in pairs}
        rows = []
        for (problem, model), fut in futures.items():
            s = fut.result()
            rows.append(s)
            print(f"{problem:9} {ROTATION_MODELS[model].label:20} test MSE {s['test_mse']:.4f} ± {s['test_err']:.4f}  "
                  f"equiv {s['equiv_error']:.3f} orbit {s['orbit_score']:.3f}  {s['wall_seconds']:6.1f} s",
                  file=sys.stderr, flush=True)
    total = time.perf_counter() - t0
    rows.sort(key=lambda r: (problems.index(r["problem"]), models.index(r["model"])))
    table = markdown(rows, problems, models)
    command = f"{COMMAND} {shlex.join(argv_list(argv))}".strip()
    text = document(table, rows, base, total, args.jobs, searched, args.search_steps, problems, models)
    print(text)
    if args.update_docs:
        update_doc("results.md", "rotation-table", text, command)
    return 0


def argv_list(argv: list[str] | None) -> list[str]:
    return list(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
