"""``python -m msr stop RUN``: ask a training run to stop, as the app's Stop does."""
from __future__ import annotations

from ..core.errors import ConfigError
from ..store.liveness import request_stop
from .common import EXIT_OK, find_run


def run(args) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    if not request_stop(run_dir):
        raise ConfigError(f"run '{run_dir.name}' is not training")
    print(f"asked run {run_dir.name} to stop")
    return EXIT_OK


def register(sub) -> None:
    st = sub.add_parser("stop", help="ask a training run to stop (as the app's Stop does)")
    st.add_argument("run", help="run folder, or run id under --runs-dir")
    st.add_argument("--runs-dir", default="runs")
    st.set_defaults(func=run)
