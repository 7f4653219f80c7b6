"""Wall time on the CPU until meta-test query accuracy first reaches 50%, 70%
and 90% (or the best reached), for each architecture, from the quick-demo
preset.

The clock runs from the start of training and includes the evaluations (that
is what a person watching the app waits for); evaluation happens every
--eval-interval steps, so a threshold is seen at the first evaluation past it.

    python benchmarks/time_to_accuracy.py
    python benchmarks/time_to_accuracy.py --archs shared conv --steps 100
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, update_readme  # noqa: E402
from msr.config import preset  # noqa: E402
from msr.data import load_bundled  # noqa: E402
from msr.models import ARCHITECTURES  # noqa: E402
from msr.train import train  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.9)
README_START, README_END = "<!-- time-to-accuracy:start -->", "<!-- time-to-accuracy:end -->"


def time_to_accuracy(arch: str, overrides: dict) -> dict:
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    p.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    p.add_argument("--eval-interval", type=int, default=10)
    p.add_argument("--eval-tasks", type=int, default=None)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args(argv)
    overrides = {"eval_interval": args.eval_interval}
    for key in ("steps", "eval_tasks", "channels"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)

    rows = []
    for arch in args.archs:
        r = time_to_accuracy(arch, overrides)
        cells = []
        for t in THRESHOLDS:
            if t in r["reached"]:
                secs, step = r["reached"][t]
                cells.append(f"{secs:.1f} s (step {step})")
            else:
                cells.append("not reached")
        best = r["best"]
        cells.append(f"{best['acc']:.1%} at step {best['step']} ({best['time']:.1f} s)")
        rows.append(f"| {arch} | " + " | ".join(cells) + f" | {r['total']:.1f} s |")
        print(rows[-1], flush=True)
    cfg = preset("demo", **overrides)
    header = (f"Machine: {machine()}. Preset `demo` ({cfg.ways}-way {cfg.shots}-shot, {cfg.queries} queries per "
              f"class, {cfg.tasks_per_step} tasks per step, {cfg.steps} steps), evaluated every "
              f"{cfg.eval_interval} steps on {cfg.eval_tasks} fresh test tasks.\n\n"
              "| architecture | 50% | 70% | 90% | best | whole run |\n|---|---|---|---|---|---|")
    text = header + "\n" + "\n".join(rows)
    print("\n" + text)
    if args.update_readme:
        update_readme(README_START, README_END, text, "python benchmarks/time_to_accuracy.py --update-readme")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
