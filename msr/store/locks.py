"""Locks on files (flock) and the processes behind them: how a live worker or sweep driver is told from a dead one.

The kernel drops a process's flock when the process dies, kill -9 included,
so a held lock is proof of life on this host.
"""
from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

from .files import open_regular
try:
    import psutil
except ImportError:  # an environment made before psutil was a dependency: /proc is read instead
    psutil = None


def acquire(path: str | Path, wait: float = 0.0) -> int | None:
    """Take the exclusive lock on ``path`` (made if missing), waiting up to
    ``wait`` seconds; the open descriptor that holds it, or None when another
    process holds it. Closing the descriptor (:func:`release`) drops it.
    The lock file is never made or opened through a link (NotRegular, an
    OSError, for a link or a special file)."""
    fd = open_regular(path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask, as open() does
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


HANDED_ENV = "MSR_RUN_LOCK_FD"  # the descriptor of a run's lock that a process hands over to its next program


def handed_over_lock() -> bool:
    """Whether this process was handed a run's lock by the program it replaced (msr.runner.process.replace_process)."""
    return bool(os.environ.get(HANDED_ENV))


def take_handed_lock(path: str | Path) -> int | None:
    """The descriptor of ``path``'s lock that this process was handed, once
    it is proven to be that file's and to hold its lock; None when none was
    handed (or it is not that lock: a stale variable in the environment).
    The variable is consumed, so no process this one starts inherits it."""
    text = os.environ.pop(HANDED_ENV, "")
    try:
        fd = int(text)
        mine, named = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except (ValueError, OSError):
        return None
    if (mine.st_dev, mine.st_ino) != (named.st_dev, named.st_ino):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # this descriptor holds it already: a no-op; else it is taken
    except OSError:
        return None
    os.set_inheritable(fd, False)
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing drops the flock


def lock_held(lock_file: Path) -> bool:
    """Whether a live process holds this flock (a dead one's lock is released by the kernel)."""
    try:
        fd = open_regular(lock_file)
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


def lock_holders(lock_file: Path) -> set[int] | None:
    """The pids that hold a flock on this file now, from /proc/locks (None
    where the kernel does not say)."""
    try:
        st = os.stat(lock_file, follow_symlinks=False)
    except OSError:
        return set()
    try:
        with open("/proc/locks", "rb") as fh:
            table = fh.read(16 * 2 ** 20).decode("ascii", "replace")
    except OSError:
        return None
    holders = set()
    for line in table.splitlines():
        parts = line.split()
        if "->" in parts:  # a waiter, not a holder
            continue
        try:
            i = parts.index("FLOCK")
            pid, inode = int(parts[i + 3]), int(parts[i + 4].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode == st.st_ino:  # (the device is left out: an overlay shows its lower one)
            holders.add(pid)
    return holders


def signal_holder(lock_file: Path, pid: int, signum: int) -> bool:
    """Send ``signum`` to ``pid`` only if that very process holds the flock
    on ``lock_file``; True when it was sent. The process is pinned first (a
    pidfd where the system has one), so a pid reused meanwhile by a stranger
    is never signalled."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
    try:
        holders = lock_holders(lock_file)
        if pid not in holders if holders is not None else not lock_held(lock_file):
            return False
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)
        return True
    except OSError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)
