"""``python -m msr runs``: every saved run with its true status."""
from __future__ import annotations

import sys
import warnings

from ..core.text import num
from ..store.reader import list_runs
from .common import print_json


def run_row(r) -> dict:
    """One run as the runs listing gives it (--json)."""
    if r.damaged:
        return {"id": r.run_id, "path": str(r.path), "status": "damaged", "damaged": r.damaged, "kind": None,
                "arch": None, "model": None, "step": None, "total": None, "test_loss": None, "test_acc": None}
    last = r.last
    return {"id": r.run_id, "path": str(r.path), "status": r.state, "kind": r.kind.name,
            "arch": getattr(r.config, "arch", None) or getattr(r.config, "model", None),
            "model": r.kind.model_name(r.config),
            "step": r.step, "total": r.total,
            "test_loss": last.get(r.kind.loss_key), "test_acc": last.get("test_acc"),
            "pid": r.status.get("pid"), "host": r.status.get("host"), "message": r.status.get("message")}


def run(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list_runs(args.runs_dir, include_damaged=True)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        print_json([run_row(r) for r in runs])
        return 0
    if not runs:
        print(f"no runs in '{args.runs_dir}'")
        return 0
    print(f"{'run':40} {'kind':14} {'status':14} {'step':>13} {'test loss':>10} {'test acc':>9}")
    for r in runs:
        row = run_row(r)
        loss, acc = num(row["test_loss"]), num(row["test_acc"], ".3f")
        steps = f"{row['step']} / {row['total']}" if row["total"] is not None else "-"
        what = row["model"] or row["kind"] or "-"
        status = row["status"] if not r.damaged else "damaged"
        print(f"{r.run_id:40} {what:14} {status:14} {steps:>13} {loss:>10} {acc:>9}")
        if r.damaged:
            print(f"  damaged: {r.damaged}")
    return 0


def register(sub) -> None:
    r = sub.add_parser("runs", help="list saved runs (status: starting, running, completed, stopped, failed, "
                                    "interrupted = its worker is gone, not responding = its worker lives but is "
                                    "silent, damaged)")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--json", action="store_true", help="one JSON list: id, status, step, total, ... per run")
    r.set_defaults(func=run)
