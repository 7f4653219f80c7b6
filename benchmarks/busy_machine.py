"""A demo run beside other work: how much slower it trains next to two other training processes.

A lecturer's laptop is rarely idle: a second run, a sweep or a Paper check group
may train at the same time. This times the `demo` preset's first 120 steps
(`python -m msr train`, as a person runs it) on an idle machine and beside two
other demo runs training flat out, with the shipped OpenMP setting (idle
threads sleep: msr.core.runtime.share_cores), with idle threads spinning
1,000 turns before they sleep (GOMP_SPINCOUNT=1000), and with OpenMP's default
(MSR_OMP_WAIT=default, for every process of the measurement). For scale, the
same run beside two plain Python busy-loops, which compete for the cores but
never spin inside OpenMP. Rounds are interleaved; medians; ratios within this
one process.

    python benchmarks/busy_machine.py --update-docs
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, update_doc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC, DOC_BLOCK = "performance.md", "busy-machine"
SHIPPED, DEFAULT = "idle threads sleep (shipped)", "OpenMP's default (idle threads spin for milliseconds)"
MODES = {SHIPPED: {}, "spin 1,000 turns, then sleep": {"GOMP_SPINCOUNT": "1000"}, DEFAULT: {"MSR_OMP_WAIT": "default"}}
BUSY_LOOP = "while True:\n    pass"


def env_for(mode: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MSR_OMP_WAIT",
                                                                 "OMP_NUM_THREADS")}
    env.update(mode, PYTHONPATH=str(ROOT))
    return env


def measured_run(env: dict, steps: int) -> dict:
    """One demo run of ``steps`` steps from the command line: its training
    speed and the wall time of the whole command."""
    runs = tempfile.mkdtemp(prefix="msr-busy-")
    try:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "msr", "train", "--preset", "demo", "--steps", str(steps),
                              "--eval-interval", str(steps), "--runs-dir", runs, "--json", "--quiet"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"the measured run exited with {out.returncode}: {out.stderr.strip()[-500:]}")
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        return {"steps_per_sec": summary["steps_per_sec"], "wall": wall}
    finally:
        shutil.rmtree(runs, ignore_errors=True)


def training_status(runs: str) -> int:
    """The step the one run under ``runs`` has reached (0 before it trains)."""
    for status in Path(runs).glob("*/status.json"):
        try:
            return int(json.loads(status.read_text()).get("step") or 0)
        except (OSError, ValueError):
            return 0
    return 0


def start_background(env: dict, kind: str) -> tuple[list[subprocess.Popen], list[str]]:
    """Two competitors: demo runs training flat out (``runs``) or Python
    busy-loops (``loops``); returns once every one of them is busy."""
    procs, folders = [], []
    for _ in range(2):
        if kind == "runs":
            folders.append(tempfile.mkdtemp(prefix="msr-busy-bg-"))
            cmd = [sys.executable, "-m", "msr", "train", "--preset", "demo", "--steps", "1000000",
                   "--eval-interval", "1000000", "--runs-dir", folders[-1], "--quiet"]
        else:
            cmd = [sys.executable, "-c", BUSY_LOOP]
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 300
    while folders and time.monotonic() < deadline and not all(training_status(f) >= 2 for f in folders):
        time.sleep(0.5)
    time.sleep(1.0)
    return procs, folders


def stop_background(procs: list[subprocess.Popen], folders: list[str]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
    for f in folders:
        shutil.rmtree(f, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--beside", default="idle,runs,loops",
                   help="which of idle, runs, loops to measure (e.g. idle alone: does the setting cost a lone run?)")
    p.add_argument("--update-docs", action="store_true", help="write the table into docs/performance.md")
    args = p.parse_args(argv)
    chosen = [b.strip() for b in args.beside.split(",")]
    if not chosen or any(b not in ("idle", "runs", "loops") for b in chosen) or "idle" not in chosen:
        p.error("--beside takes idle, runs and loops, comma-separated, idle included")
    settings = [(name, beside) for name in MODES for beside in chosen]
    found: dict[tuple[str, str], list[dict]] = {s: [] for s in settings}
    measured_run(env_for({}), 5)  # warm-up: the page cache holds torch and the data afterwards
    t0 = time.perf_counter()
    for r in range(args.repeats):
        for name, beside in settings:
            env = env_for(MODES[name])
            procs, folders = ([], []) if beside == "idle" else start_background(env, beside)
            try:
                found[(name, beside)].append(measured_run(env, args.steps))
            finally:
                stop_background(procs, folders)
            last = found[(name, beside)][-1]
            print(f"round {r + 1}: {name}, {beside}: {last['steps_per_sec']:.2f} steps/s, {last['wall']:.1f} s",
                  file=sys.stderr, flush=True)
    minutes = (time.perf_counter() - t0) / 60

    def med(name, beside, key):
        return statistics.median(x[key] for x in found[(name, beside)])

    label = {"idle": "idle machine", "runs": "beside two demo runs training", "loops": "beside two busy-loops"}
    lines = ["| OpenMP threads | machine | steps/s (median) | training slower by | whole command (s) |",
             "|---|---|---:|---:|---:|"]
    for name, beside in settings:
        speed, idle = med(name, beside, "steps_per_sec"), med(name, "idle", "steps_per_sec")
        lines.append(f"| {name} | {label[beside]} | {speed:.2f} | {idle / speed:.2f}× | "
                     f"{med(name, beside, 'wall'):.1f} |")
    idle = {name: med(name, "idle", "steps_per_sec") for name in MODES}
    text = (f"Machine: {machine()}. Preset `demo`, {args.steps} steps from `python -m msr train` (its evaluation "
            f"at step 0 and at the end included in the wall time, not in steps/s); median of {args.repeats} "
            f"interleaved rounds after a warm-up run; {minutes:.1f} min.\n\n" + "\n".join(lines) +
            "\n\nOn the idle machine, against OpenMP's default (1.00× = no cost): " +
            ", ".join(f"{name} {idle[name] / idle[DEFAULT]:.2f}×" for name in MODES if name != DEFAULT) + ".")
    print(text)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, text, "python benchmarks/busy_machine.py --update-docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
