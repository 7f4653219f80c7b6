"""How true the progress bar's "time left" is: estimates against the truth at 10%, 30% and 60% of a demo run.

Launches the `demo` preset as the app does (a detached worker), reads its
status.json every half second, and at the first reading past each fraction
notes two estimates: the one the app shows (msr.store.progress.time_left: the
worker's recent steps, its warm-up left out) and the average over every step
since the worker started, which is what the app showed before. Once the run
has ended, each is set against the time that was really left. Median over
seeds; the ratio is estimate / truth (1 = exact).

    python benchmarks/time_left.py --update-docs
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, update_doc  # noqa: E402
from msr.mnist.config import preset  # noqa: E402
from msr.runner.execute import create_run  # noqa: E402
from msr.runner.launch import launch  # noqa: E402
from msr.store.layout import ACTIVE  # noqa: E402
from msr.store.progress import time_left  # noqa: E402
from msr.store.reader import load_run  # noqa: E402

DOC, DOC_BLOCK = "performance.md", "time-left"
FRACTIONS = (0.1, 0.3, 0.6)
RECENT_FIELDS = ("recent_steps", "recent_seconds")


def watch(seed: int, runs_dir: str) -> dict[float, dict]:
    """One demo run, watched: per fraction, both estimates and the truth."""
    cfg = preset("demo", seed=seed, runs_dir=runs_dir)
    path = create_run(cfg)
    launch(path)
    readings: dict[float, dict] = {}
    while True:
        rec = load_run(path, with_metrics=False)
        now = time.time()
        if rec.state not in ACTIVE and rec.state != "starting" and rec.status.get("step"):
            end = rec.status.get("updated") or now
            break
        step, total = rec.step, rec.total or cfg.steps
        for f in FRACTIONS:
            if f not in readings and step >= f * total:
                average = {k: v for k, v in rec.status.items() if k not in RECENT_FIELDS}
                readings[f] = {"at": now, "step": step, "shown": time_left(rec.status, step, total, cfg.eval_interval),
                               "average": time_left(average, step, total, cfg.eval_interval)}
        time.sleep(0.5)
    if rec.state != "completed":
        raise SystemExit(f"the run ended {rec.state}: {rec.status.get('message')}")
    for r in readings.values():
        r["truth"] = end - r["at"]
    return readings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--update-docs", action="store_true", help="write the table into docs/performance.md")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [watch(seed, tempfile.mkdtemp(prefix="msr-time-left-")) for seed in seeds]
    lines = ["| at | time really left (s) | shown now (s) | shown now / truth | average since start (s), shown "
             "before | average / truth |", "|---|---:|---:|---:|---:|---:|"]
    for f in FRACTIONS:
        got = [r[f] for r in runs if f in r and r[f]["shown"] is not None and r[f]["average"] is not None]
        truth = statistics.median(g["truth"] for g in got)
        shown = statistics.median(g["shown"] for g in got)
        average = statistics.median(g["average"] for g in got)
        ratio_now = statistics.median(g["shown"] / g["truth"] for g in got)
        ratio_before = statistics.median(g["average"] / g["truth"] for g in got)
        lines.append(f"| {f:.0%} of the steps | {truth:.1f} | {shown:.1f} | {ratio_now:.2f} | {average:.1f} | "
                     f"{ratio_before:.2f} |")
    text = (f"Machine: {machine()}. Preset `demo` ({preset('demo').steps} steps), launched as the app does and read "
            f"from its status.json every 0.5 s; median over seeds {args.seeds}.\n\n" + "\n".join(lines))
    print(text)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, text, "python benchmarks/time_left.py --update-docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
