"""Where MSR's gain comes from: run the ready-made ablation sweep and write its table.

First layer (plain, Kronecker-U, dense-U) × head (plain, dense-U) × seeds on
upright supports and rotated queries, every setting at the inner rate its
validation tasks chose (msr.analysis.ablation, msr.runner.sweep). Prints, and
with ``--update-docs`` writes into docs/results.md between the ``ablation``
markers: accuracy at 0° and on rotated queries per setting, the
gains over the plain model, each change's main effect, and the sentences the
Sweeps page says.

    nice -n 10 python benchmarks/ablation_table.py --update-docs
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, update_doc  # noqa: E402
from msr.analysis import ablation  # noqa: E402
from msr.analysis.lens import lens_report  # noqa: E402
from msr.runner.sweep.folder import create_sweep, load_sweep  # noqa: E402
from msr.runner.sweep.results import unfinished  # noqa: E402
from msr.runner.sweep.run import run_sweep  # noqa: E402
from msr.store.reader import load_run  # noqa: E402
from msr.viz import ablation as va  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "nice -n 10 python benchmarks/ablation_table.py"


def _cell(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def markdown(frame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) if c != "inner rate" else f"{row[c]:g}" if row[c] == row[c]
                                       else "–" for c in cols) + " |")
    return "\n".join(lines)


def lens_table(sweep, seed: int) -> str:
    """The lens on each setting's first layer at the end of its run of one
    seed: has any of them learned rotation sharing?"""
    lines = ["| model | U orbit score | orbit score of the applied filters (isotropic share) | error at 90° "
             "(random conv) |", "|---|---|---|---|"]
    for p in sweep.spec.points():
        if p.seed != seed or p.key not in sweep.runs:
            continue
        rec = load_run(sweep.runs[p.key], with_metrics=False)
        report = lens_report(rec.path, [rec.step])
        last, rand = report.steps[-1], report.reference["random_conv"]
        u = "no U" if last.u_orbit_score is None else f"{last.u_orbit_score:.2f}"
        lines.append(f"| {rec.config.model_label()} | {u} | {last.orbit_score:.2f} ({last.isotropic_share:.2f}) "
                     f"| {last.equivariance['90']:.2f} ({rand['equivariance'][90.0]:.2f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=ablation.STEPS)
    p.add_argument("--search-steps", type=int, default=ablation.SEARCH_STEPS)
    p.add_argument("--rates", default=",".join(f"{r:g}" for r in ablation.RATES))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs-dir", default=None, help="where the runs go (default: a temporary folder)")
    p.add_argument("--update-docs", action="store_true", help="write the table into docs/results.md")
    p.add_argument("--sweep", default=None, help="write the table of a finished ablation sweep (its folder) instead "
                                                 "of running one")
    args = p.parse_args(argv)
    if args.sweep:
        sweep = load_sweep(args.sweep)
        status = "completed" if not unfinished(sweep) else "not finished"
        records = [load_run(path, with_metrics=False) for path in sweep.runs.values()]
        minutes = (max(r.status.get("updated", 0) for r in records) - min(r.created for r in records)) / 60
    else:
        runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="msr-ablation-")
        spec = ablation.ablation_spec(runs_dir, [int(s) for s in args.seeds.split(",")], steps=args.steps,
                                      rates=[float(r) for r in args.rates.split(",")],
                                      search_steps=args.search_steps, workers=args.workers)
        sweep = create_sweep(spec)
        t0 = time.perf_counter()
        status = run_sweep(sweep, lambda line: print(line, file=sys.stderr, flush=True))
        minutes = (time.perf_counter() - t0) / 60
    search = sweep.spec.rate_search
    result = ablation.ablation(sweep)
    rates = va.rates_frame(sweep.rates, sweep.spec.settings())
    base = sweep.spec.base
    when = dt.datetime.now().strftime("%Y-%m-%d")
    text = f"""{ablation.summary(result)}

{markdown(va.settings_frame(result))}

Each change on its own (averaged over the other layer's choices; gains paired by seed, mean ± 95% interval):

{markdown(va.factors_frame(result))}

The symmetry lens on each first layer at the end of its seed-{sweep.spec.seeds[0]} run (orbit score: 1 = rotated
copies, 0 = as random filters; the error at 90° beside a random conv's):

{lens_table(sweep, sweep.spec.seeds[0])}

Inner rates: each setting's starting rate was chosen among {", ".join(f"{r:g}" for r in search["values"])} by a
{search["steps"]}-step run per candidate, scored by its final accuracy on validation tasks from a fifth of the
training images (never the test images); the rate then goes on being learned per layer. Validation accuracy per
candidate (empty: the run diverged):

{markdown(rates)}

Protocol: the demo preset ({base['ways']}-way {base['shots']}-shot, {base['queries']} queries per class,
{base['tasks_per_step']} tasks per step, {base['inner_steps']} inner steps, latent {base['latent']},
conv latent {base['conv_latent']}, {base['channels']} channels) with supports upright and queries at
{", ".join(f"{a:g}°" for a in base['angles'])} (rotation mode `query`), {base['steps']} steps, the final
evaluation on {base['eval_tasks']} test tasks of held-out images; seeds {", ".join(map(str, sweep.spec.seeds))} (a
seed draws the same test tasks for every setting). Sweep {status}. Machine: {machine()};
{sweep.spec.workers or args.workers} runs at a time, 1 thread each; {minutes:.1f} min ({when})."""
    print(text)
    given = list(argv if argv is not None else sys.argv[1:])
    for flag in ("--sweep", "--runs-dir"):  # where this machine kept things: not part of how to rerun
        while flag in given:
            i = given.index(flag)
            del given[i:i + 2]
    command = f"{COMMAND} {shlex.join(given)}".strip()
    if args.update_docs:
        update_doc("results.md", "ablation", text, command)
    return 0 if status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
