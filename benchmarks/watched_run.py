"""Does watching a run slow it down? The `demo` preset trained with no page
open, and with the Train page open in a headless Chromium (it follows the
run live: progress, charts, the sidebar), interleaved, median of repeats.

The run is a worker process of its own; the app only reads its folder. Both
numbers are the run's own: its training rate (steps/sec over the training
steps) and its wall time from start to end, evaluations included.

    python benchmarks/watched_run.py
    python benchmarks/watched_run.py --repeats 3 --update-docs
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, update_doc  # noqa: E402
from msr.mnist.config import PRESETS  # noqa: E402
from msr.store.reader import read_metrics  # noqa: E402
from ui.active_runs import SIDEBAR_REFRESH_SECONDS  # noqa: E402
from ui.run_view import CHART_REFRESH_SECONDS, REFRESH_SECONDS  # noqa: E402
from tests.e2e.test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, Server, settle  # noqa: E402

DOC, DOC_BLOCK = "performance.md", "watched-run"  # where the table goes in docs/
THRESHOLD = 0.9
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _first_time_at(run: Path | None, threshold: float, t0: float, seen: dict) -> None:
    """Note the time since launch at which the run's records first show
    test accuracy ≥ threshold (polled, as the page polls)."""
    if run is None or "reached" in seen:
        return
    metrics, _ = read_metrics(run)
    for rec in metrics:
        if rec.get("test_acc") is not None and rec["test_acc"] >= threshold:
            seen["reached"] = time.perf_counter() - t0
            seen["step"] = rec["step"]
            return


def one_run(runs: Path, steps: int | None, page=None, url: str | None = None) -> dict:
    before = set(runs.iterdir()) if runs.exists() else set()
    t0 = time.perf_counter()
    steps_arg = ["--steps", str(steps)] if steps else []
    proc = subprocess.Popen([sys.executable, "-m", "msr", "train", "--preset", "demo", *steps_arg,
                             "--runs-dir", str(runs), "--json", "--quiet"], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env=ENV)
    run, seen, opened = None, {}, False
    while proc.poll() is None:
        if run is None:
            new = [p for p in set(runs.iterdir()) - before if not p.name.startswith(".")] if runs.exists() else []
            if new and '"running"' in (new[0] / "status.json").read_text():
                run = new[0]
        if run is not None and page is not None and not opened:
            page.goto(url + "/train")  # a fresh page follows the run that is training
            settle(page)
            opened = True
        _first_time_at(run, THRESHOLD, t0, seen)
        time.sleep(0.1)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    _first_time_at(run, THRESHOLD, t0, seen)
    summary = json.loads(out.strip().splitlines()[-1])
    return {"steps_per_sec": summary["steps_per_sec"], "wall": wall, "to_90": seen.get("reached"),
            "step_90": seen.get("step")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="the demo preset's own by default")
    p.add_argument("--update-docs", action="store_true")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    results = {"unwatched": [], "watched": []}
    with tempfile.TemporaryDirectory(prefix="msr-watch-bench-") as tmp:
        runs = Path(tmp) / "runs"
        server = Server(Path(tmp), runs)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                one_run(runs, 20)  # warm-up: caches, the first import
                for _ in range(args.repeats):
                    page.goto("about:blank")
                    results["unwatched"].append(one_run(runs, args.steps))
                    results["watched"].append(one_run(runs, args.steps, page, server.url))
                browser.close()
        finally:
            server.stop()
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("steps_per_sec", "wall")} for k, v in results.items()}
    steps = args.steps or PRESETS["demo"]["steps"]
    lines = [f"Machine: {machine()}. Preset `demo`, {steps} steps; median of {args.repeats} interleaved pairs "
             "after a warm-up run; the watched run has the Train page open in headless Chromium (progress every "
             f"{REFRESH_SECONDS:g} s, numbers and charts every {CHART_REFRESH_SECONDS:g} s, the sidebar every "
             f"{SIDEBAR_REFRESH_SECONDS:g} s) on the same 2 cores. Time to 90% runs "
             "from the launch of the command to the first evaluation record of ≥ 90% test accuracy in the run's "
             "folder, the record the page then draws.", "",
             "| | training steps/sec | wall time of the run | time to 90% (each run) |", "|---|---|---|---|"]
    for k in ("unwatched", "watched"):
        each = ", ".join("not reached" if r["to_90"] is None else f"{r['to_90']:.1f} s (step {r['step_90']})"
                         for r in results[k])
        times = sorted(float("inf") if r["to_90"] is None else r["to_90"] for r in results[k])
        mid = times[(len(times) - 1) // 2]  # a run that never got there counts as slowest
        median = "not reached" if mid == float("inf") else f"{mid:.1f} s"
        lines.append(f"| {k} | {med[k]['steps_per_sec']:.2f} | {med[k]['wall']:.1f} s | {median} ({each}) |")
    slow = 1 - med["watched"]["steps_per_sec"] / med["unwatched"]["steps_per_sec"]
    wall = med["watched"]["wall"] / med["unwatched"]["wall"] - 1
    lines += ["", f"Watched: {100 * slow:+.1f}% slower in steps/sec, {100 * wall:+.1f}% in wall time. "
                  f"Every pair: " + "; ".join(
                      f"{u['steps_per_sec']:.1f} vs {w['steps_per_sec']:.1f} steps/s"
                      for u, w in zip(results["unwatched"], results["watched"])) + "."]
    body = "\n".join(lines)
    print(body)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, body, "python benchmarks/watched_run.py --update-docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
