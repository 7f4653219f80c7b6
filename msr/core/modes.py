"""File modes that follow the umask, as every other tool's output does.

``tempfile.mkstemp`` and ``mkdtemp`` make files 0600 and folders 0700 whatever the umask, and a file renamed into
place keeps its mode: a runs folder shared between users (a Ray cluster's, say) could not be read by the others.
Everything the package writes through a temporary name is given the mode an ordinary ``open`` or ``mkdir`` would
have given it.
"""
from __future__ import annotations

import os
import threading

_lock = threading.Lock()


def umask() -> int:
    """The process's umask. Linux tells it in /proc; elsewhere it is read by setting it and back (under a lock,
    since the umask is the whole process's)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~umask()


def folder_mode() -> int:
    return 0o777 & ~umask()


def as_opened(fd: int) -> None:
    """Give a file made by mkstemp the mode open() would have given it."""
    os.fchmod(fd, file_mode())


def as_made(folder: str | os.PathLike) -> None:
    """Give a folder made by mkdtemp the mode mkdir() would have given it."""
    os.chmod(folder, folder_mode())
