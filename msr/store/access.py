"""What may be done to a run folder from outside: deleting it, and reading its files for a download.

Delete removes only folders this app made (they carry a ``.msr-run`` mark),
never through a symlink, never while the worker lives; downloads read only the
run's own regular files.
"""
from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path

from .files import RunFolderError
from .layout import MARKER, run_files
from .liveness import worker_alive, worker_lock_held
from .status import read_status


def is_marked_run(path: str | Path) -> bool:
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    marker = run_files(path).marker
    return marker.is_file() and not marker.is_symlink()


def delete_run(path: str | Path) -> None:
    """Delete a run folder: only one this app made, never through a
    symlink, never while its worker lives. RunFolderError otherwise."""
    path = Path(path)
    if path.is_symlink():
        raise RunFolderError(f"'{path}' is a symbolic link; only run folders themselves are deleted")
    if not path.is_dir():
        raise RunFolderError(f"no run folder at '{path}'")
    if not is_marked_run(path):
        raise RunFolderError(f"'{path}' was not made by this app (no {MARKER} mark); delete it by hand if you must")
    status = read_status(path) or {}
    if worker_lock_held(path) or worker_alive(path, status):
        raise RunFolderError(f"run '{path.name}' is still training; stop it before deleting it")
    # Rename first, so the folder is gone from the list at once and a late
    # writer cannot bring half of it back under the old name.
    trash = path.parent / f".deleting-{path.name}-{secrets.token_hex(2)}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def check_run_file(run_path: str | Path, relative: str) -> Path:
    """The path of a regular file inside the run folder, checked without
    reading it (no symlink at any level, no '..'); RunFolderError otherwise."""
    run_path = Path(run_path)
    parts = Path(relative).parts
    if not parts or any(p in ("..", "") or p.startswith("/") for p in parts) or Path(relative).is_absolute():
        raise RunFolderError(f"'{relative}' is not a file of run '{run_path.name}'")
    if not is_marked_run(run_path):
        raise RunFolderError(f"'{run_path}' is not a run folder")
    current = run_path
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            raise RunFolderError(f"'{relative}' is not a file of run '{run_path.name}'")
    target = current / parts[-1]
    try:
        mode = os.lstat(target).st_mode
    except OSError:
        raise RunFolderError(f"'{relative}' is not a readable file of run '{run_path.name}'") from None
    if not stat.S_ISREG(mode):
        raise RunFolderError(f"'{relative}' is not a regular file of run '{run_path.name}'")
    return target


def read_run_file(run_path: str | Path, relative: str) -> bytes:
    """The bytes of a regular file inside the run folder (see
    check_run_file), opened without following a link. For downloads."""
    run_path = Path(run_path)
    target = check_run_file(run_path, relative)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise RunFolderError(f"'{relative}' is not a readable file of run '{run_path.name}'") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise RunFolderError(f"'{relative}' is not a regular file of run '{run_path.name}'")
        return fh.read()
