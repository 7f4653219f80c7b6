"""Making run folders: the runs folder checked, and a new run folder complete before it appears under its name.

A run's id is ``<date>-<time>-<label>-<4 hex digits>``. It is unique by
construction: the folder is made under a hidden staging name and renamed to
its id, and a rename onto a run folder that already has that id fails (it is
not empty), so another id is drawn. Two runs made in the same second never
share a folder, however many processes make them.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..core.errors import ConfigError
from ..core.modes import as_made
from .annotations import least_used_color, write_annotations
from .files import StorageError, atomic_write_text, describe_os_error, dumps
from .layout import MARKER_TEXT, run_files
from .locks import acquire, release

MIN_FREE_BYTES = 64 * 2 ** 20
ROOT_LOCK = ".runs.lock"  # held while a new run's colour is chosen and its folder appears
LOCK_WAIT_SECONDS = 10.0
STALE_STAGING_SECONDS = 600.0  # a staging folder this old was left by a process killed while making a run
NAME_TRIES = 10_000  # ids drawn before giving up (each one taken has a chance of 1 in 65,536 per second)


def stamp() -> str:
    """The date and time an id starts with, so ids sort as they were made."""
    return time.strftime("%Y%m%d-%H%M%S")


def new_run_id(label: str) -> str:
    return f"{stamp()}-{label}-{secrets.token_hex(2)}"


def prepare_root(root: str | Path) -> Path:
    """The runs folder, made if missing, checked to be a writable folder with
    room for a run; StorageError (one line) otherwise, and ConfigError when
    it is not named at all."""
    if not str(root).strip():
        raise ConfigError("the runs folder must be named (it is empty); e.g. --runs-dir runs", field="runs_dir")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise StorageError(f"runs folder '{root}' is a file, not a folder; choose another runs folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise StorageError(describe_os_error(exc, root)) from None
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise StorageError(f"the disk holding '{root}' has {free / 2 ** 20:.0f} MiB free, less than the "
                           f"{MIN_FREE_BYTES / 2 ** 20:.0f} MiB a run needs; free some space or choose another "
                           "runs folder")
    return root


def _taken(exc: OSError, target: Path) -> bool:
    """A rename failed because ``target`` is already there (a folder with
    files in it, or a file)."""
    return exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR) and os.path.lexists(target)


def rename_to_new_name(staging: Path, parent: Path, name: Callable[[], str]) -> Path:
    """Rename ``staging`` (a folder with files in it) to a fresh ``name()``
    under ``parent``, drawing another name while one is taken."""
    for _ in range(NAME_TRIES):
        target = parent / name()
        try:
            os.rename(staging, target)
            return target
        except OSError as exc:
            if not _taken(exc, target):
                raise
    raise OSError(errno.EEXIST, f"no free name after {NAME_TRIES} tries", str(parent))


def make_new_folder(parent: Path, name: Callable[[], str]) -> Path:
    """An empty folder made under a fresh ``name()`` (mkdir fails on a name
    taken, and another is drawn)."""
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(NAME_TRIES):
        target = parent / name()
        try:
            target.mkdir()
            return target
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, f"no free name after {NAME_TRIES} tries", str(parent))


def remove_stale_staging(root: Path, older_than: float = STALE_STAGING_SECONDS) -> list[str]:
    """Remove the staging folders (``.new-*``), half-deleted runs
    (``.deleting-*``) and write probes (``.probe-*``) that a process killed
    meanwhile left in the runs folder."""
    removed = []
    now = time.time()
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        if not name.startswith((".new-", ".deleting-", ".probe-")):
            continue
        try:
            st = os.lstat(root / name)
            if now - st.st_mtime <= older_than:
                continue
            if stat.S_ISDIR(st.st_mode) and not name.startswith(".probe-"):
                shutil.rmtree(root / name, ignore_errors=True)
            elif stat.S_ISREG(st.st_mode) and name.startswith(".probe-"):
                os.unlink(root / name)
            else:
                continue
        except OSError:
            continue
        removed.append(name)
    return removed


def create_run_folder(root: str | Path, kind: str, config: dict, label: str, total: int) -> Path:
    """A new run folder of the kind named ``kind``, complete before it
    appears under its name; StorageError (one line) when the runs folder
    cannot take it. Its colour is chosen, and the folder appears, under the
    runs folder's lock, so runs made at once get different colours."""
    root = prepare_root(root)
    staging = lock = None
    try:
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".new-"))
        as_made(staging)  # the umask's mode, not mkdtemp's 0700
        atomic_write_text(run_files(staging).marker, MARKER_TEXT)
        atomic_write_text(run_files(staging).config, dumps({"kind": kind, **config}, indent=2))
        atomic_write_text(run_files(staging).status, dumps({"status": "starting", "kind": kind, "created": time.time(),
                                                            "step": 0, "total": total}))
        atomic_write_text(run_files(staging).metrics, "")
        run_files(staging).checkpoints.mkdir()
        lock = acquire(root / ROOT_LOCK, LOCK_WAIT_SECONDS)  # None after the wait: go on without it
        remove_stale_staging(root)
        write_annotations(staging, color=least_used_color(root))
        return rename_to_new_name(staging, root, lambda: new_run_id(label))
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(describe_os_error(exc, root)) from None
    finally:
        if lock is not None:
            release(lock)
