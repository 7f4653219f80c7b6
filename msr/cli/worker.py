"""``python -m msr worker RUN``: the detached worker the app launches (msr.runner.launch); not for direct use."""
from __future__ import annotations

from ..runner.execute import execute
from ..store.reader import load_run
from .common import CliProgress, exit_code


def run(args) -> int:
    """Train one run folder, logging to stdout (the run's worker.log)."""
    rec = load_run(args.run, with_metrics=False)
    result = execute(args.run, resume=args.resume, on_event=CliProgress(rec.total or 0, quiet=False, kind=rec.kind))
    print(f"{result.status}: {result.steps} steps" + (f"; {result.message}" if result.message else ""), flush=True)
    return exit_code(result.status)


def register(sub) -> None:
    w = sub.add_parser("worker")  # the app's detached worker; not for direct use
    w.add_argument("run")
    w.add_argument("--resume", action="store_true")
    w.set_defaults(func=run)
