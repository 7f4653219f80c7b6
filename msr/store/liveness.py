"""Whether a run's worker lives, and asking it to stop.

On this host the worker's lock answers exactly (msr.store.locks); elsewhere a
fresh heartbeat in status.json counts. A run recorded as running whose worker
is gone is *interrupted*, never running, everywhere.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .files import atomic_write_text, is_number
from .layout import ACTIVE, INTERRUPTED, run_files
from .locks import lock_held, pid_running
from .status import read_status

HOST = socket.gethostname()
HEARTBEAT_SECONDS = 2.0  # how often a live worker writes its heartbeat (msr.store.writer)
STALE_SECONDS = 30.0  # a worker on another host is gone after this long without a heartbeat
START_GRACE_SECONDS = 120.0  # a launched worker may take this long to claim its run


def worker_lock_held(path: str | Path) -> bool:
    """Whether a live process holds the run's worker lock."""
    return lock_held(run_files(path).lock)


def worker_alive(path: str | Path, status: dict) -> bool:
    """Whether a worker is training this run right now. On this host the
    worker's lock answers exactly (it is dropped when the process dies, even
    by kill -9); a worker that was launched but has not claimed the run yet
    counts while its process lives. Elsewhere, a fresh heartbeat counts."""
    path = Path(path)
    if status.get("status") not in ACTIVE:
        return False
    host = status.get("host")
    if host in (None, HOST):
        if worker_lock_held(path):
            return True
        pid, launched = status.get("pid"), status.get("launched")
        return (status.get("status") == "starting" and isinstance(pid, int) and is_number(launched)
                and time.time() - launched < START_GRACE_SECONDS and pid_running(pid))
    beat = status.get("heartbeat") or status.get("updated")
    return is_number(beat) and time.time() - beat < STALE_SECONDS


def effective_status(path: str | Path, status: dict) -> str:
    """The status to show: a run whose worker is gone is interrupted, never running."""
    recorded = status.get("status", "unknown")
    if recorded in ACTIVE and not worker_alive(path, status):
        return INTERRUPTED
    return recorded


def request_stop(path: str | Path) -> bool:
    """Ask a run's worker to stop after its current step (a stop file, and
    SIGTERM when the worker is on this host). False when nothing is running."""
    path = Path(path)
    status = read_status(path) or {}
    if not worker_alive(path, status):
        return False
    if run_files(path).stop.exists():
        return True  # already asked: a second signal would end the worker at once, without its final evaluation
    try:
        atomic_write_text(run_files(path).stop, str(time.time()))
    except OSError:
        pass
    pid = status.get("pid")
    # A signal only once the worker has claimed the run (it then stops on
    # SIGTERM); one still starting reads the stop file as soon as it claims.
    if (status.get("host") in (None, HOST) and isinstance(pid, int) and pid > 0 and pid != os.getpid()
            and worker_lock_held(path)):
        try:
            os.kill(pid, 15)
        except OSError:
            pass
    return True


def force_stop(path: str | Path) -> bool:
    """End a worker that does not stop (SIGKILL). The run becomes
    interrupted and can be resumed from its last checkpoint."""
    path = Path(path)
    status = read_status(path) or {}
    pid = status.get("pid")
    if status.get("host") not in (None, HOST) or not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    if not worker_lock_held(path):  # only the worker that holds the run (whose pid it wrote) is ended
        return False
    try:
        os.kill(pid, 9)
    except OSError:
        return False
    return True


def stop_requested(path: str | Path) -> bool:
    return run_files(path).stop.exists()
