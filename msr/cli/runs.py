"""``msr runs``: every saved run with its true status."""
from __future__ import annotations

import sys
import warnings

from ..core.text import num
from .common import add_runs_dir, existing_runs_dir, print_json


def run(args) -> int:
    from ..analysis.tables import run_row
    from ..store.reader import list_runs

    root = existing_runs_dir(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list_runs(root, include_damaged=True)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        print_json([run_row(r) for r in runs])
        return 0
    if not runs:
        print(f"no runs in '{root}'")
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


def register(sub, arguments: bool = True) -> None:
    r = sub.add_parser("runs", help="list saved runs (status: starting, running, completed, stopped, failed, "
                                    "interrupted = its worker is gone, not responding = its worker lives but is "
                                    "silent, damaged)")
    if arguments:
        add_runs_dir(r)
        r.add_argument("--json", action="store_true", help="one JSON list: id, status, step, total, ... per run")
    r.set_defaults(func=run)
