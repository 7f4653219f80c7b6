"""Wall time of one 8-run sweep under each executor, and each executor's overhead per run.

The same sweep (the demo preset, shortened: 2 architectures × 4 seeds) runs
with 1 and 2 local workers and with Ray (a local Ray started by the driver),
each in a fresh runs folder. The overhead of a run is its wall share beyond
its own training time: (workers × wall − Σ train_seconds) / runs. Repeats
are interleaved and the median is reported.

    python benchmarks/sweep_scaling.py [--steps 60] [--repeats 3] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: E402
from msr.store.reader import list_runs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETUPS = {"local, 1 worker": ["--workers", "1"], "local, 2 workers": ["--workers", "2"],
          "ray, 2 workers": ["--executor", "ray", "--workers", "2"]}


def one(setup: list[str], steps: int, device: str) -> tuple[float, float, int]:
    """(wall seconds, summed training seconds, runs) of one sweep."""
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "-m", "msr", "sweep", "--preset", "demo", "--steps", str(steps),
               "--eval-interval", str(steps), "--device", device, "--grid", "arch=shared,conv",
               "--seeds", "0,1,2,3", "--runs-dir", runs, "--quiet", "--json", *setup]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        assert json.loads(out.stdout.strip().splitlines()[-1])["status"] == "completed", out.stderr
        recs = list_runs(runs)
        trained = sum(r.last.get("train_seconds") or 0.0 for r in recs)
        return wall, trained, len(recs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(machine())
    one(SETUPS["local, 2 workers"], 4, args.device)  # warm-up: data cache, imports
    results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in SETUPS}
    for _ in range(args.repeats):
        for name, setup in SETUPS.items():
            results[name].append(one(setup, args.steps, args.device))
    print(f"8 runs of the demo preset, {args.steps} steps each; median of {args.repeats}")
    print("| executor | wall (s) | training per run (s) | overhead per run (s) |\n|---|---|---|---|")
    for name, rows in results.items():
        workers = 1 if "1 worker" in name else 2
        wall = statistics.median(r[0] for r in rows)
        train = statistics.median(r[1] / r[2] for r in rows)
        overhead = statistics.median((workers * r[0] - r[1]) / r[2] for r in rows)
        print(f"| {name} | {wall:.1f} | {train:.2f} | {overhead:.2f} |")


if __name__ == "__main__":
    main()
