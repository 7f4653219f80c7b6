"""A demo run beside other work: how much slower it trains next to two other training processes.

A lecturer's laptop is rarely idle: a second run, a sweep or a Paper check group
may train at the same time. This times the `demo` preset (`python -m msr
train`, as a person runs it) for each setting of OpenMP's idle threads
(MSR_OMP_WAIT, msr.core.runtime.share_cores), every process of the
measurement with the same setting:

- idle: alone on the machine (its first 120 steps);
- beside: started after two other demo runs, each started once the one before
  trains, as a person starts them (its first 120 steps);
- joined: started alone, then two demo runs started beside it, one after the
  other; its steps over the 40 s from the first one's launch (their start-up
  included, and a hand-over's, where there is one).

The settings: idle threads sleep; auto (a run spins when it finds the machine
idle and sleeps beside other work; a spinning run hands itself over to a
process whose threads sleep once other work starts); always spin (OpenMP's
default). As a control, a run that spins to the end joined by two that
sleep: what auto would cost without its hand-over. Rounds are interleaved;
medians; ratios within this one process. Each row says what the measured
run's threads did (status.json's idle_threads, and the step it handed over).

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
from msr.core.runtime import DEFAULT_WAIT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC, DOC_BLOCK = "performance.md", "busy-machine"
SLEEP, AUTO, SPIN, CONTROL = "sleep", "auto", "spin", "spin, joined by runs that sleep (no hand-over)"
MODES = {SLEEP: ("sleep", "sleep"), AUTO: ("auto", "auto"), SPIN: ("spin", "spin"),
         CONTROL: ("spin", "sleep")}  # MSR_OMP_WAIT of the measured run, and of the runs beside it
LABELS = {SLEEP: "idle threads sleep", AUTO: "auto: spin alone, hand over to sleeping threads",
          SPIN: "always spin (OpenMP's default)", CONTROL: CONTROL}
PLACES = ("idle", "beside", "joined")
MEASURED = {SLEEP: PLACES, AUTO: PLACES, SPIN: ("idle", "beside"), CONTROL: ("joined",)}
ALONE = {CONTROL: SPIN}  # whose idle speed a mode is compared with
PLACE_LABELS = {"idle": "idle machine", "beside": "started beside two demo runs",
                "joined": "alone, then two demo runs started beside it"}
JOIN_WINDOW = 40.0


def env_for(wait: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MSR_OMP_WAIT",
                                                                 "MSR_OMP_WAIT_CHOSEN", "OMP_NUM_THREADS")}
    env.update(MSR_OMP_WAIT=wait, PYTHONPATH=str(ROOT))
    return env


def demo_command(steps: int, runs: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "msr", "train", "--preset", "demo", "--steps", str(steps), "--eval-interval",
            str(steps), "--runs-dir", runs, "--quiet", *extra]


def measured_run(env: dict, steps: int) -> dict:
    """One demo run of ``steps`` steps from the command line: its training
    speed, the wall time of the whole command, and what its idle threads did."""
    runs = tempfile.mkdtemp(prefix="msr-busy-")
    try:
        t0 = time.perf_counter()
        out = subprocess.run(demo_command(steps, runs, "--json"), env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=1800)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"the measured run exited with {out.returncode}: {out.stderr.strip()[-500:]}")
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        return {"steps_per_sec": summary["steps_per_sec"], "wall": wall, **threads_of(runs)}
    finally:
        shutil.rmtree(runs, ignore_errors=True)


def joined_run(env: dict, others: dict) -> dict:
    """A demo run started alone; once it trains, two more start beside it.
    Its speed over the JOIN_WINDOW seconds from the first one's launch."""
    runs = tempfile.mkdtemp(prefix="msr-busy-")
    proc = subprocess.Popen(demo_command(1_000_000, runs), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    procs, folders = [], []
    try:
        wait_training(runs, proc)
        time.sleep(2.0)
        t0, s0 = time.monotonic(), last_step(runs)
        procs, folders = start_background(others, "runs", settle=0.0)
        time.sleep(max(0.0, JOIN_WINDOW - (time.monotonic() - t0)))
        t1, s1 = time.monotonic(), last_step(runs)
        return {"steps_per_sec": (s1 - s0) / (t1 - t0), "wall": None, **threads_of(runs)}
    finally:
        proc.kill()
        proc.wait()
        stop_background(procs, folders + [runs])


def _status(runs: str) -> dict:
    for status in Path(runs).glob("*/status.json"):
        try:
            return json.loads(status.read_text())
        except (OSError, ValueError):
            return {}
    return {}


def last_step(runs: str) -> int:
    """The last step in the one run's losses.csv (flushed every second; the status is written every 2 s)."""
    for losses in Path(runs).glob("*/losses.csv"):
        lines = losses.read_text().strip().splitlines()
        return int(lines[-1].split(",")[0]) if lines else 0
    return 0


def wait_training(runs: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and int(_status(runs).get("step") or 0) < 2:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"a demo run exited with {proc.returncode} before it trained")
        time.sleep(0.2)


def threads_of(runs: str) -> dict:
    """What the one run under ``runs`` did with its idle threads (status.json)."""
    status = _status(runs)
    return {"threads": status.get("idle_threads", "?"), "handed_over_at": status.get("handed_over_at")}


def start_background(env: dict, kind: str, settle: float = 1.0) -> tuple[list[subprocess.Popen], list[str]]:
    """Two competitors: demo runs training flat out (``runs``), each started
    once the one before trains, or Python busy-loops (``loops``); returns once
    every one of them is busy."""
    procs, folders = [], []
    for _ in range(2):
        if kind == "runs":
            folders.append(tempfile.mkdtemp(prefix="msr-busy-bg-"))
            cmd = demo_command(1_000_000, folders[-1])
        else:
            cmd = [sys.executable, "-c", "while True:\n    pass"]
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if folders:
            wait_training(folders[-1], procs[-1])
    time.sleep(settle)
    return procs, folders


def stop_background(procs: list[subprocess.Popen], folders: list[str]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
    for f in folders:
        shutil.rmtree(f, ignore_errors=True)


def measure(mode: str, place: str, steps: int) -> dict:
    it, others = (env_for(w) for w in MODES[mode])
    if place == "joined":
        return joined_run(it, others)
    procs, folders = ([], []) if place == "idle" else start_background(others, "runs")
    try:
        return measured_run(it, steps)
    finally:
        stop_background(procs, folders)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--update-docs", action="store_true", help="write the table into docs/performance.md")
    args = p.parse_args(argv)
    settings = [(mode, place) for mode in MODES for place in MEASURED[mode]]
    found: dict[tuple[str, str], list[dict]] = {s: [] for s in settings}
    measured_run(env_for(DEFAULT_WAIT), 5)  # warm-up: the page cache holds torch and the data afterwards
    t0 = time.perf_counter()
    for r in range(args.repeats):
        for mode, place in settings:
            found[(mode, place)].append(measure(mode, place, args.steps))
            last = found[(mode, place)][-1]
            print(f"round {r + 1}: {mode}, {place}: {last['steps_per_sec']:.2f} steps/s, threads {last['threads']}"
                  f", handed over at {last['handed_over_at']}", file=sys.stderr, flush=True)
    minutes = (time.perf_counter() - t0) / 60

    def med(mode, place, key):
        values = [x[key] for x in found[(mode, place)] if x[key] is not None]
        return statistics.median(values) if values else None

    def threads(mode, place):
        seen = sorted({x["threads"] + (f" (from step {x['handed_over_at']})" if x["handed_over_at"] else "")
                       for x in found[(mode, place)]})
        return "; ".join(seen)

    lines = ["| OpenMP's idle threads (MSR_OMP_WAIT) | the measured run | its threads at the end | steps/s (median) | "
             "slower than alone | whole command (s) |", "|---|---|---|---:|---:|---:|"]
    idle = {mode: med(ALONE.get(mode, mode), "idle", "steps_per_sec") for mode in MODES}
    for mode, place in settings:
        speed, wall = med(mode, place, "steps_per_sec"), med(mode, place, "wall")
        label = LABELS[mode] + (" (shipped)" if mode == DEFAULT_WAIT else "")
        lines.append(f"| {label} | {PLACE_LABELS[place]} | {threads(mode, place)} | {speed:.2f} | "
                     f"{idle[mode] / speed:.2f}× | {'–' if wall is None else f'{wall:.1f}'} |")
    text = (f"Machine: {machine()}. Preset `demo` from `python -m msr train`. Idle and beside: its first {args.steps} "
            f"steps (steps/s from its training time; the whole command adds start-up and two evaluations). Joined: "
            f"steps over the {JOIN_WINDOW:.0f} s from the launch of the first run beside it. Median of "
            f"{args.repeats} interleaved rounds after a warm-up run; {minutes:.1f} min. 'Slower than alone' divides "
            "by the same setting's speed on the idle machine.\n\n" + "\n".join(lines) +
            "\n\nAlone on the idle machine, against OpenMP's default (1.00× = as fast): "
            + ", ".join(f"{LABELS[mode]} {idle[mode] / idle[SPIN]:.2f}×" for mode in (SLEEP, AUTO)) + ".")
    print(text)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, text, "python benchmarks/busy_machine.py --update-docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
