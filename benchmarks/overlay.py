"""How long the Runs page takes to open a long run and overlay its curves: 1,000, 10,000 and 100,000
evaluation records per run.

Measured, in this process (warm-up, then the median of several repeats):

- load: reading a run's metrics.jsonl from scratch (``MetricsCache.read`` on a new cache, as a page's
  first visit does);
- open: load, then the run's own loss and accuracy charts (the Runs page's view of one run), as
  Vega-Lite specifications;
- overlay: ``overlay_chart`` for two runs of that length, and the chart turned into the Vega-Lite
  specification Streamlit sends (``to_dict``), which is what the page waits for;
- points: how many points that specification holds (the curves are thinned to what a chart can show).

    python benchmarks/overlay.py
    python benchmarks/overlay.py --sizes 1000,10000 --repeats 3
    python benchmarks/overlay.py --update-docs
"""
from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import altair as alt  # noqa: E402

from benchmarks.common import machine, update_doc  # noqa: E402
from msr.store.files import dumps  # noqa: E402
from msr.store.reader import MetricsCache  # noqa: E402
from msr.viz.training import accuracy_chart, loss_chart, overlay_chart  # noqa: E402

DOC, DOC_BLOCK = "performance.md", "overlay"  # where the table goes in docs/


def records(n: int, seed: int) -> list[dict]:
    """n evaluation records of a plausible run: a loss that falls, with its interval."""
    out = []
    for i in range(n):
        loss = 2.3 * math.exp(-i / (n / 3)) + 0.3 + 0.05 * math.sin(i * 0.7 + seed)
        out.append({"step": i * 10, "test_loss": loss, "test_err": 0.05, "test_acc": 1 - loss / 3,
                    "test_acc_err": 0.02, "train_loss": loss * 0.9, "train_acc": 1 - loss / 3.2})
    return out


def write_run(folder: Path, recs: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(dumps(r) + "\n" for r in recs))
    return folder


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def points(spec: dict) -> int:
    return sum(len(v) for v in spec.get("datasets", {}).values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="records per run, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoothing", type=float, default=0.0, help="the overlay's smoothing weight")
    parser.add_argument("--update-docs", action="store_true", help=f"write the table into docs/{DOC}")
    args = parser.parse_args(argv)
    alt.data_transformers.disable_max_rows()  # as under Streamlit, which sends the data itself
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            runs = {f"run {k}": write_run(Path(tmp) / f"{n}-{k}", records(n, k)) for k in (1, 2)}
            load, curves = timed(lambda: {name: MetricsCache().read(p) for name, p in runs.items()}, args.repeats)

            def open_one():
                recs = MetricsCache().read(runs["run 1"])
                return loss_chart(recs).to_dict(), accuracy_chart(recs).to_dict()

            opened, _ = timed(open_one, args.repeats)
            overlay, spec = timed(lambda: overlay_chart(curves, "test_loss", smoothing=args.smoothing).to_dict(),
                                  args.repeats)
            rows.append((n, load / len(runs), opened, overlay, points(spec)))
            print(f"{n:>7} records: load {load / len(runs):.3f} s per run, open one run {opened:.3f} s, overlay of "
                  f"2 runs {overlay:.3f} s, {points(spec):,} points in the overlay", flush=True)
    table = ["| records per run | load one run | open one run (load + its charts) | overlay two runs | points in "
             "the overlay |", "|---:|---:|---:|---:|---:|"]
    table += [f"| {n:,} | {load:.2f} s | {opened:.2f} s | {overlay:.2f} s | {pts:,} |"
              for n, load, opened, overlay, pts in rows]
    text = "\n".join(table)
    print("\n" + text + f"\n\nOn {machine()}, median of {args.repeats}.")
    if args.update_docs:
        rerun = "python benchmarks/overlay.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        update_doc(DOC, DOC_BLOCK, text + f"\n\nOn {machine()}, median of {args.repeats}.", rerun.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
