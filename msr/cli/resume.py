"""``msr resume RUN``: continue a stopped, interrupted or failed run in this process."""
from __future__ import annotations

from ..store.locks import handed_over_lock
from .common import add_runs_dir, find_run, run_here

PRELOAD = ("torch",)  # see msr.cli.main.preload


def run(args) -> int:
    from ..runner.launch import check_resumable

    run_dir = find_run(args.run, args.runs_dir)
    if not handed_over_lock():  # (a run handed over by the program this process replaced is this process's already)
        check_resumable(run_dir)
    return run_here(run_dir, args, resume=True)


def register(sub, arguments: bool = True) -> None:
    s = sub.add_parser("resume", help="continue a stopped, interrupted or failed run from its last saved state")
    if arguments:
        s.add_argument("run", help="run folder, or run id under --runs-dir")
        add_runs_dir(s)
        s.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
        s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=run)
