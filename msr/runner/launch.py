"""Starting a run's worker as a process of its own: the app's Start and Resume, and a sweep's local runs.

A launched worker (``python -m msr worker RUN``) lives in a session of its
own (msr.runner.process), so stopping the app leaves it training, and the
next app finds it in its folder. Every launch is admitted first
(msr.runner.admission): a run this machine cannot take now is refused before
anything is written.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..store.checkpoints import load_resume_state
from ..store.files import Damaged, RunFolderError
from ..store.layout import INTERRUPTED, run_files
from ..store.liveness import HOST
from ..store.reader import load_run, read_metrics
from ..store.status import read_status
from ..store.writer import RunWriter
from .admission import admit
from .execute import create_run
from .process import launch_detached


def launch(run_dir: str | Path, resume: bool = False, threads: int | None = None, together: bool = False) -> int:
    """Start a detached worker for a run; return its pid. ``threads``: its
    torch threads (None: torch's default); ``together``: other runs start with
    it (msr.runner.process.launch_detached)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None:
        raise RunFolderError(f"'{run_dir}' is not a run folder")
    unsafe = run_files(run_dir).unsafe()
    if unsafe:
        raise RunFolderError(f"run '{run_dir.name}' cannot be used: {unsafe}")
    run_files(run_dir).stop.unlink(missing_ok=True)  # a request left from an earlier life of the run
    pid = launch_detached(["worker", str(run_dir.resolve())] + (["--resume"] if resume else []),
                          run_files(run_dir).log, threads, together)
    writer = RunWriter(run_dir)
    writer.status = status
    writer.write_status(sync=True, status="starting", pid=pid, host=HOST, launched=time.time(), message=None)
    return pid


def start_run(config, together: bool = False) -> Path:
    """Check the config and the machine, create the folder and launch its worker: the app's Start."""
    admit(config.validate())
    run_dir = create_run(config)
    launch(run_dir, together=together)
    return run_dir


def start_runs(configs: list) -> list[Path]:
    """Start several runs together (a group on the Paper check page): every
    config and the machine for each are checked before any starts; then they
    start in order."""
    for config in configs:
        admit(config.validate())
    return [start_run(config, together=len(configs) > 1) for config in configs]


def resume_run(run_dir: str | Path) -> int:
    """Launch a worker that continues a stopped or interrupted run."""
    check_resumable(run_dir)
    return launch(run_dir, resume=True)


def check_resumable(run_dir: str | Path) -> None:
    """RunFolderError (one line) unless the run can be resumed, and
    MachineError unless this machine can take it now."""
    rec = load_run(run_dir, with_metrics=False)
    if rec.damaged:
        raise RunFolderError(f"run '{Path(run_dir).name}' cannot be resumed: {rec.damaged}")
    if rec.active:
        raise RunFolderError(f"run '{rec.run_id}' is still training")
    if rec.state == "completed":
        raise RunFolderError(f"run '{rec.run_id}' has already completed its {rec.total} steps")
    if rec.state not in ("stopped", INTERRUPTED, "failed"):
        raise RunFolderError(f"run '{rec.run_id}' is {rec.state}; only stopped, interrupted or failed runs resume")
    try:
        read_metrics(run_dir)
    except Damaged as exc:
        raise RunFolderError(f"run '{rec.run_id}' cannot be resumed: {exc}") from None
    load_resume_state(run_dir)  # CheckpointError, one line, when it cannot be read
    admit(rec.config)  # the GPU and the memory, against what is free now
