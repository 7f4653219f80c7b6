"""A demo run beside other work: how much slower it trains next to two other training processes.

A lecturer's laptop is rarely idle: a second run, a sweep or a Paper check group
may train at the same time. This times the `demo` preset's first 120 steps
(`python -m msr train`, as a person runs it) on an idle machine and beside two
other demo runs training flat out, started one after the other as a person
starts them. Settings of OpenMP's idle threads, each for every process of the
measurement:

- idle threads sleep (shipped, msr.core.runtime.share_cores);
- chosen at launch (MSR_OMP_WAIT=auto): a run spins when it finds the machine
  idle and sleeps beside other work;
- the same, started alone and then joined by two runs: the measured run spins
  (it found the machine idle), the later ones sleep; what choosing at launch
  costs, since the choice cannot change while a run trains;
- always spin (MSR_OMP_WAIT=spin: OpenMP's default).

For scale, the same beside two plain Python busy-loops, which compete for the
cores but never spin inside OpenMP. Each row says what the measured run chose
(status.json's idle_threads). Rounds are interleaved; medians; ratios within
this one process. (A short spin before sleeping, GOMP_SPINCOUNT=1,000, was
measured earlier as a middle way: no faster alone, slower beside others.)

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
SHIPPED, AUTO, JOINED, SPIN = ("idle threads sleep (shipped)", "chosen at launch (auto)",
                               "auto, started alone, then two runs started beside it", "always spin (OpenMP's default)")
SLEEPS, CHOOSES, SPINS = {}, {"MSR_OMP_WAIT": "auto"}, {"MSR_OMP_WAIT": "spin"}
MODES = {SHIPPED: (SLEEPS, SLEEPS), AUTO: (CHOOSES, CHOOSES), JOINED: (SPINS, SLEEPS), SPIN: (SPINS, SPINS)}  # (it, others)
ALONE = {JOINED: SPIN}  # a mode whose run alone is another mode's: measured once
BUSY_LOOP = "while True:\n    pass"


def env_for(mode: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MSR_OMP_WAIT",
                                                                 "MSR_OMP_WAIT_CHOSEN", "OMP_NUM_THREADS")}
    env.update(mode, PYTHONPATH=str(ROOT))
    return env


def measured_run(env: dict, steps: int) -> dict:
    """One demo run of ``steps`` steps from the command line: its training
    speed, the wall time of the whole command, and what its idle threads did."""
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
        return {"steps_per_sec": summary["steps_per_sec"], "wall": wall, "threads": idle_threads(runs)}
    finally:
        shutil.rmtree(runs, ignore_errors=True)


def _status(runs: str) -> dict:
    for status in Path(runs).glob("*/status.json"):
        try:
            return json.loads(status.read_text())
        except (OSError, ValueError):
            return {}
    return {}


def training_status(runs: str) -> int:
    """The step the one run under ``runs`` has reached (0 before it trains)."""
    return int(_status(runs).get("step") or 0)


def idle_threads(runs: str) -> str:
    """What the one run under ``runs`` chose for its idle threads (status.json)."""
    return _status(runs).get("idle_threads", "?")


def start_background(env: dict, kind: str) -> tuple[list[subprocess.Popen], list[str]]:
    """Two competitors: demo runs training flat out (``runs``), each started
    once the one before trains, or Python busy-loops (``loops``); returns once
    every one of them is busy."""
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
        while folders and time.monotonic() < deadline and training_status(folders[-1]) < 2:
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
    settings = [(name, beside) for name in MODES for beside in chosen if not (name in ALONE and beside == "idle")]
    found: dict[tuple[str, str], list[dict]] = {s: [] for s in settings}
    measured_run(env_for({}), 5)  # warm-up: the page cache holds torch and the data afterwards
    t0 = time.perf_counter()
    for r in range(args.repeats):
        for name, beside in settings:
            it, others = MODES[name]
            procs, folders = ([], []) if beside == "idle" else start_background(env_for(others), beside)
            try:
                found[(name, beside)].append(measured_run(env_for(it), args.steps))
            finally:
                stop_background(procs, folders)
            last = found[(name, beside)][-1]
            print(f"round {r + 1}: {name}, {beside}: {last['steps_per_sec']:.2f} steps/s, {last['wall']:.1f} s, "
                  f"threads {last['threads']}", file=sys.stderr, flush=True)
    minutes = (time.perf_counter() - t0) / 60

    def med(name, beside, key):
        return statistics.median(x[key] for x in found[(name, beside)])

    def chose(name, beside):
        seen = sorted({x["threads"] for x in found[(name, beside)]})
        return " / ".join(seen)

    label = {"idle": "idle machine", "runs": "beside two demo runs training", "loops": "beside two busy-loops"}
    lines = ["| OpenMP's idle threads | machine | the run's threads | steps/s (median) | slower than alone | "
             "whole command (s) |", "|---|---|---|---:|---:|---:|"]
    idle = {name: med(ALONE.get(name, name), "idle", "steps_per_sec") for name in MODES}
    for name, beside in settings:
        speed = med(name, beside, "steps_per_sec")
        lines.append(f"| {name} | {label[beside]} | {chose(name, beside)} | {speed:.2f} | {idle[name] / speed:.2f}× "
                     f"| {med(name, beside, 'wall'):.1f} |")
    text = (f"Machine: {machine()}. Preset `demo`, {args.steps} steps from `python -m msr train` (its evaluation "
            f"at step 0 and at the end included in the wall time, not in steps/s); the runs beside it started one "
            f"after the other; median of {args.repeats} interleaved rounds after a warm-up run; {minutes:.1f} min. "
            "'Slower than alone' divides by the same setting's speed on the idle machine.\n\n" + "\n".join(lines) +
            "\n\nAlone on the idle machine, against OpenMP's default (1.00× = as fast): "
            + ", ".join(f"{name} {idle[name] / idle[SPIN]:.2f}×" for name in MODES if name not in (SPIN, *ALONE)) + ".")
    print(text)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, text, "python benchmarks/busy_machine.py --update-docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
