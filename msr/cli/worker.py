"""``msr worker RUN``: the detached worker the app launches (msr.runner.launch); hidden, not for direct use."""
from __future__ import annotations

from pathlib import Path

from .common import CliProgress, exit_code

PRELOAD = ("torch",)  # see msr.cli.main.preload

NAME = "worker"


def run(args) -> int:
    """Train one run folder, logging to stdout (the run's worker.log)."""
    from ..runner.execute import execute
    from ..store.reader import load_run

    rec = load_run(args.run, with_metrics=False)
    result = execute(args.run, resume=args.resume, on_event=CliProgress(rec.total or 0, quiet=False, kind=rec.kind),
                     continue_as=lambda run_dir: ["worker", str(Path(run_dir).resolve()), "--resume"])
    print(f"{result.status}: {result.steps} steps" + (f"; {result.message}" if result.message else ""), flush=True)
    return exit_code(result.status)


def register(sub, arguments: bool = True) -> None:
    w = sub.add_parser(NAME)  # no help: not listed in --help (the app's detached worker)
    if arguments:
        w.add_argument("run")
        w.add_argument("--resume", action="store_true")
    w.set_defaults(func=run)
