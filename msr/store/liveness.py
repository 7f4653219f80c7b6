"""Whether a run's worker lives, and asking it to stop.

On this host the worker's lock answers exactly (msr.store.locks); elsewhere a
fresh heartbeat in status.json counts. A run recorded as running whose worker
is gone is *interrupted*, never running, everywhere.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from .files import is_number, open_regular
from .layout import ACTIVE, INTERRUPTED, NOT_RESPONDING, run_files
from .locks import lock_held, pid_running, signal_holder
from .status import read_status

HOST = socket.gethostname()
HEARTBEAT_SECONDS = 2.0  # how often a live worker writes its heartbeat (msr.store.writer)
STALE_SECONDS = 30.0  # a worker on another host is gone after this long without a heartbeat
START_GRACE_SECONDS = 120.0  # a launched worker may take this long to claim its run
NOT_RESPONDING_SECONDS = 3 * HEARTBEAT_SECONDS  # a live worker silent this long is not responding


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


def effective_status(path: str | Path, status: dict, now: float | None = None) -> str:
    """The status to show: a run whose worker is gone is interrupted, never
    running; one whose worker lives (it holds the lock) but has written no
    heartbeat for NOT_RESPONDING_SECONDS (stopped by SIGSTOP, say) is not responding."""
    recorded = status.get("status", "unknown")
    if recorded in ACTIVE and not worker_alive(path, status):
        return INTERRUPTED
    if recorded == "running" and status.get("host") in (None, HOST):
        beats = [v for v in (status.get("heartbeat"), status.get("updated")) if is_number(v)]
        if beats and (time.time() if now is None else now) - max(beats) > NOT_RESPONDING_SECONDS:
            return NOT_RESPONDING
    return recorded


def request_stop(path: str | Path) -> bool:
    """Ask a run's worker to stop after its current step: a stop file, and
    SIGTERM to the worker on this host. One request is one stop: the file is
    made exclusively, and only the request that made it signals, so two
    requests at once (two tabs, a sweep and a person) never add up to the
    second signal that ends a worker at once. The signal reaches only the
    process that holds the run's lock (msr.store.locks.signal_holder): a
    worker still starting, or a pid reused by a stranger, gets none and reads
    the file. False when nothing is running."""
    path = Path(path)
    status = read_status(path) or {}
    if not worker_alive(path, status):
        return False
    files = run_files(path)
    try:
        fd = open_regular(files.stop, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return True  # already asked: a second signal would end the worker at once, without its final evaluation
    except OSError:
        return True  # a stop file that cannot be made (a link or a FIFO in its place): the signal would still be one
    with os.fdopen(fd, "w") as fh:
        fh.write(str(time.time()))
    if status.get("host") in (None, HOST):
        signal_holder(files.lock, status.get("pid"), signal.SIGTERM)
    return True


def force_stop(path: str | Path) -> bool:
    """End a worker that does not stop (SIGKILL), only if the process is the
    one that holds the run's lock. The run becomes interrupted and can be
    resumed from its last saved state."""
    path = Path(path)
    status = read_status(path) or {}
    if status.get("host") not in (None, HOST):
        return False
    return signal_holder(run_files(path).lock, status.get("pid"), signal.SIGKILL)


def stop_requested(path: str | Path) -> bool:
    return os.path.lexists(run_files(path).stop)
