"""How long listing runs takes as the runs folder grows: 10 runs against
1,000 runs, each with 2,000 evaluation records.

A listing reads each run's config.json and its small status.json summary,
never its metrics file, so the number of records must not matter. Measured:
the Runs page's table (``list_runs`` + ``runs_frame``, in this process,
warm-up then the median of several repeats), the command line
(``python -m msr runs --json``, a fresh process each time), and for scale
what reading every metrics file would cost (how listing worked before).

    python benchmarks/list_runs.py
    python benchmarks/list_runs.py --update-docs
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
from msr.analysis.tables import runs_frame  # noqa: E402
from msr.kinds import MNIST  # noqa: E402
from msr.mnist.config import preset  # noqa: E402
from msr.store.files import dumps  # noqa: E402
from msr.store.layout import CHECKPOINTS, CONFIG, MARKER, MARKER_TEXT, METRICS, STATUS  # noqa: E402
from msr.store.reader import list_runs, read_metrics  # noqa: E402
from msr.store.writer import scalars  # noqa: E402

DOC, DOC_BLOCK = "performance.md", "list-runs"  # where the table goes in docs/


def record(step: int) -> dict:
    """A record shaped like a seed-preset evaluation (5 angles, 10 classes)."""
    return {"step": step, "train_loss": 0.41, "train_acc": 0.88, "test_loss": 0.4637, "test_err": 0.0412,
            "test_acc": 0.882, "test_acc_err": 0.021, "steps_per_sec": 5.14, "steps_per_sec_overall": 5.1,
            "train_seconds": step / 5.1, "inner_lrs": {"conv.weight": 0.0101, "conv.bias": 0.0099,
                                                       "head.weight": 0.0102, "head.bias": 0.0098},
            "per_angle": {"train": {"counts": [190, 185, 201, 214, 160], "errors": [20, 22, 19, 25, 18]},
                          "test": {"counts": [80, 75, 78, 92, 55], "errors": [8, 9, 10, 11, 7]}},
            "images_per_angle": {"train": [1900 * step] * 5, "test": [380] * 5},
            "images_per_class": {"train": [500 * step] * 10, "test": [200] * 10}}


def make_runs(root: Path, count: int, records: int) -> None:
    cfg = preset("seed", runs_dir=str(root)).to_dict()
    lines = "".join(dumps(record(i * 10)) + "\n" for i in range(records))
    last = scalars(record((records - 1) * 10))
    for i in range(count):
        run = root / f"20261124-{i:06d}-shared-{i:04x}"
        (run / CHECKPOINTS).mkdir(parents=True)
        (run / MARKER).write_text(MARKER_TEXT)
        (run / CONFIG).write_text(dumps({"kind": MNIST.name, **cfg, "seed": i}, indent=2))
        (run / STATUS).write_text(dumps({"status": "completed", "kind": MNIST.name, "created": 1.8e9 + i,
                                         "step": last["step"], "total": 1000, "last": last}))
        (run / METRICS).write_text(lines)


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def page_table(root: Path) -> None:
    runs_frame(list_runs(root, include_damaged=True))


def command_line(root: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "msr", "runs", "--runs-dir", str(root), "--json"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         check=True)
    assert json.loads(out.stdout)


def read_every_metrics_file(root: Path) -> None:
    for rec in list_runs(root):
        read_metrics(rec.path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs="+", default=[10, 1000])
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--update-docs", action="store_true")
    args = p.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="msr-list-bench-") as tmp:
        roots = {}
        for n in args.counts:
            roots[n] = Path(tmp) / f"runs{n}"
            make_runs(roots[n], n, args.records)
        for n in args.counts:  # interleaved: each measure over every size before the next
            rows.setdefault(n, {})["page"] = median_seconds(lambda: page_table(roots[n]), args.repeats)
        for n in args.counts:
            rows[n]["cli"] = median_seconds(lambda: command_line(roots[n]), args.repeats)
        for n in args.counts:
            rows[n]["all_metrics"] = median_seconds(lambda: read_every_metrics_file(roots[n]),
                                                    max(1, args.repeats // 2))
    small, big = min(args.counts), max(args.counts)
    lines = [f"Machine: {machine()}. {args.records:,} records per run (a seed-preset record is about "
             f"{len(dumps(record(0)))} bytes); median of {args.repeats} after a warm-up.", "",
             "| runs | Runs page table (list_runs + runs_frame) | `python -m msr runs --json` (whole process) | "
             "reading every metrics file (the old listing) |", "|---|---|---|---|"]
    for n in args.counts:
        r = rows[n]
        lines.append(f"| {n:,} | {1000 * r['page']:.1f} ms | {r['cli']:.2f} s | {r['all_metrics']:.2f} s |")
    ratio = {k: rows[big][k] / rows[small][k] for k in ("page", "cli", "all_metrics")}
    lines += ["", f"{big:,} runs against {small:,}: the page table takes {ratio['page']:.0f}× as long "
                  f"(it reads two small files per run), the command line {ratio['cli']:.2f}×, reading every "
                  f"metrics file {ratio['all_metrics']:.0f}×."]
    body = "\n".join(lines)
    print(body)
    if args.update_docs:
        update_doc(DOC, DOC_BLOCK, body, "python benchmarks/list_runs.py --update-docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
