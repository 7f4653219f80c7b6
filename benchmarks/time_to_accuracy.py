"""Wall time until meta-test query accuracy first reaches 50%, 70% and 90%
(or the best reached), for each architecture, from the `demo` preset: the
median of --repeats runs with different seeds.

The clock runs from the start of training and includes the evaluations (that
is what a person watching the app waits for). By default the preset's own
evaluation schedule is used, so a threshold is seen at the first evaluation
past it, exactly as on the Train page. benchmarks/watched_run.py measures the
same with the page open in a browser.

    python benchmarks/time_to_accuracy.py                       # the demo preset as shipped
    python benchmarks/time_to_accuracy.py --archs shared conv --repeats 1
    python benchmarks/time_to_accuracy.py --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, update_doc  # noqa: E402
from msr.core.data import load_bundled  # noqa: E402
from msr.core.choices import ARCHITECTURES
from msr.core.runtime import keep_freed_memory  # noqa: E402
from msr.mnist.config import preset  # noqa: E402
from msr.runner.execute import train  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.9)
DOC, DOC_BLOCK = "performance.md", "time-to-accuracy"  # where the table goes in docs/


def time_to_accuracy(arch: str, overrides: dict) -> dict:
    keep_freed_memory()  # as every training run does (msr.core.loop.run_loop)
    cfg = preset("demo", arch=arch, **overrides)
    data = load_bundled()
    reached: dict[float, tuple[float, int]] = {}
    best = {"acc": 0.0, "step": 0, "time": 0.0}
    start = time.perf_counter()

    def on_event(event) -> None:
        if event.kind != "eval":
            return
        now = time.perf_counter() - start
        acc = event.record["test_acc"]
        if acc > best["acc"]:
            best.update(acc=acc, step=event.step, time=now)
        for t in THRESHOLDS:
            if acc >= t and t not in reached:
                reached[t] = (now, event.step)

    result = train(cfg, on_event=on_event, save=False, data=data)
    return {"arch": arch, "reached": reached, "best": best, "steps": result.steps,
            "total": time.perf_counter() - start, "config": cfg}


def _median_time(runs: list[dict], threshold: float) -> tuple[float, int] | None:
    """Median (time, step) to a threshold; None when most runs never reached it."""
    times = sorted((r["reached"].get(threshold, (float("inf"), 0)) for r in runs), key=lambda t: t[0])
    mid = times[(len(times) - 1) // 2]
    return None if mid[0] == float("inf") else mid


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    p.add_argument("--repeats", type=int, default=3, help="runs per architecture, seeds 0, 1, …; median reported")
    p.add_argument("--device", default=None, help="cpu or cuda (the preset's own device by default)")
    p.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    p.add_argument("--eval-interval", type=int, default=None, help="override the preset's evaluation interval")
    p.add_argument("--eval-tasks", type=int, default=None)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--update-docs", action="store_true")
    args = p.parse_args(argv)
    overrides = {}
    for key in ("steps", "eval_interval", "eval_tasks", "channels", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)

    rows = []
    for arch in args.archs:
        runs = [time_to_accuracy(arch, {**overrides, "seed": seed}) for seed in range(args.repeats)]
        cells = []
        for t in THRESHOLDS:
            reached = _median_time(runs, t)
            cells.append(f"{reached[0]:.1f} s (step {reached[1]})" if reached else "not reached")
        best = statistics.median(r["best"]["acc"] for r in runs)
        every90 = ", ".join(f"{r['reached'][0.9][0]:.1f} s" if 0.9 in r["reached"] else "not reached"
                            for r in runs)
        cells += [f"{best:.1%}", every90]
        rows.append(f"| {arch} | " + " | ".join(cells) +
                    f" | {statistics.median(r['total'] for r in runs):.1f} s |")
        print(rows[-1], flush=True)
    cfg = preset("demo", **overrides)
    header = (f"Machine: {machine()}; device {cfg.device}. Preset `demo` ({cfg.ways}-way {cfg.shots}-shot, "
              f"{cfg.queries} queries per class, {cfg.tasks_per_step} tasks per step, {cfg.inner_steps} inner "
              f"steps, latent {cfg.latent}, {cfg.steps} steps), evaluated every {cfg.eval_interval} steps on "
              f"{cfg.eval_tasks} fresh test tasks of held-out images. Median of {args.repeats} runs (seeds 0–"
              f"{args.repeats - 1}); the clock includes the evaluations.\n\n"
              "| architecture | 50% | 70% | 90% | best (median) | 90% in each run | whole run |\n"
              "|---|---|---|---|---|---|---|")
    text = header + "\n" + "\n".join(rows)
    print("\n" + text)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, text, "python benchmarks/time_to_accuracy.py --update-docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
