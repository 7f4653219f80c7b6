"""``msr stop RUN``: ask a training run to stop, as the app's Stop does."""
from __future__ import annotations

from ..core.errors import ConfigError
from ..store.liveness import request_stop
from .common import EXIT_OK, add_runs_dir, find_run, print_json


def run(args) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    if not request_stop(run_dir):
        raise ConfigError(f"run '{run_dir.name}' is not training")
    if args.json:
        print_json({"id": run_dir.name, "path": str(run_dir), "asked": True})
    else:
        print(f"asked run {run_dir.name} to stop")
    return EXIT_OK


def register(sub, arguments: bool = True) -> None:
    st = sub.add_parser("stop", help="ask a training run to stop (as the app's Stop does)")
    if arguments:
        st.add_argument("run", help="run folder, or run id under --runs-dir")
        add_runs_dir(st)
        st.add_argument("--json", action="store_true", help="print {id, path, asked} as one JSON object")
    st.set_defaults(func=run)
