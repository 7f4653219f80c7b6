"""Locks on files (flock) and the processes behind them: how a live worker or sweep driver is told from a dead one.

The kernel drops a process's flock when the process dies, kill -9 included,
so a held lock is proof of life on this host.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

try:
    import psutil
except ImportError:  # an environment made before psutil was a dependency: /proc is read instead
    psutil = None


def acquire(path: str | Path, wait: float = 0.0) -> int | None:
    """Take the exclusive lock on ``path`` (made if missing), waiting up to
    ``wait`` seconds; the open descriptor that holds it, or None when another
    process holds it. Closing the descriptor (:func:`release`) drops it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask, as open() does
    end = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= end:
                os.close(fd)
                return None
            time.sleep(0.05)


def release(fd: int) -> None:
    os.close(fd)  # closing drops the flock


def lock_held(lock_file: Path) -> bool:
    """Whether a live process holds this flock (a dead one's lock is released by the kernel)."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def pid_running(pid: int) -> bool:
    """Whether a process of this id lives (a zombie does not): psutil, else /proc, else a signal 0."""
    if psutil is not None:
        try:
            return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # no right to look at it: it exists
            return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
