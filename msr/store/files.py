"""How a run folder's files are written and read: whole files atomically, JSON strictly.

Whole-file writes go to a temporary file renamed over the target, so a killed
process leaves the old file or the new one. NaN and infinity are written as
null (JSON has no such numbers). A file read back that has the wrong shape is
:class:`Damaged`, with its reason.

Nothing is read or written through a link: every file is opened with
``O_NOFOLLOW`` and must be a regular file (a FIFO, a device or a socket is
refused before a byte is read, so none can hang a reader or fill its memory),
and a file read whole has a size cap (:data:`MAX_SMALL_FILE`).
"""
from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import MachineError
from ..core.modes import as_opened


class StorageError(MachineError):
    """The disk or the runs folder cannot take what is written (full, not
    writable, not a folder); str() is one line."""


class RunFolderError(Exception):
    """A run folder cannot be used for what was asked (not a run folder, still
    training, damaged); str() is one line."""


class Damaged(ValueError):
    """A file of a run folder has the wrong shape; str() says which and why."""


# ------------------------------------------------------------------- writes
def json_safe(value: Any) -> Any:
    """NaN and ±Infinity become null: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, **kw) -> str:
    return json.dumps(json_safe(value), allow_nan=False, **kw)


def atomic_write_bytes(path: Path, data: bytes, sync: bool = True) -> None:
    """Write to a temporary file beside ``path`` and rename it over. The
    folder must exist: a deleted run is never brought back by a late write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        as_opened(fd)  # the umask's mode, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, sync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), sync)


def describe_os_error(exc: OSError, where: str | Path) -> str:
    """One line for an environment problem with a runs folder."""
    if exc.errno == errno.ENOSPC:
        return f"the disk holding '{where}' is full; free some space or choose another runs folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write in runs folder '{where}': permission denied; choose another runs folder"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"runs folder '{where}' is a file, not a folder; choose another runs folder"
    return f"cannot use runs folder '{where}': {exc.strerror or exc}"


# ------------------------------------------------------- safe opens
MAX_SMALL_FILE = 2 ** 20  # status.json, config.json, annotations.json, a sweep's JSON files: 1 MiB at most


class NotRegular(OSError):
    """A path that is a link, a FIFO, a device, a socket or a folder where a
    regular file was expected; str() says which."""


def describe_mode(mode: int) -> str:
    """What a file of this mode is, in words ("a symbolic link", "a FIFO", ...)."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def open_regular(path: str | Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """A descriptor of the regular file ``path``, opened without following a
    link (O_NOFOLLOW) and without blocking on a FIFO; :class:`NotRegular` for
    anything else (FileNotFoundError when it is missing and not created)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENODEV, errno.EMLINK):
            try:
                what = describe_mode(os.lstat(path).st_mode)
            except OSError:
                what = "not a regular file"
            raise NotRegular(exc.errno, f"{Path(path).name} is {what}", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(errno.EINVAL, f"{Path(path).name} is {describe_mode(st.st_mode)}", str(path))
        os.set_blocking(fd, True)  # a regular file: reads and writes as usual from here on
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(path: str | Path, how: str = "rb", encoding: str | None = None):
    """A file object over :func:`open_regular`: ``how`` is "rb", "ab" or "a" (text, appended)."""
    if how == "rb":
        fd = open_regular(path)
    elif how in ("ab", "a"):
        fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    else:
        raise ValueError(how)
    return os.fdopen(fd, how, encoding=encoding if "b" not in how else None)


def read_capped(path: str | Path, cap: int = MAX_SMALL_FILE) -> bytes:
    """A regular file's bytes, at most ``cap`` of them: Damaged (one line)
    for a larger file, a link or a special file; FileNotFoundError when it is
    missing."""
    path = Path(path)
    try:
        fd = open_regular(path)
    except NotRegular as exc:
        raise Damaged(exc.strerror) from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise Damaged(f"{path.name} is larger than {cap / 2 ** 20:g} MiB")
    return data


def real_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder itself, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


# -------------------------------------------------------------------- reads
def read_json(path: Path, cap: int = MAX_SMALL_FILE):
    """A JSON file's content; Damaged (one line) when it is missing,
    unreadable, a link or a special file, larger than ``cap`` or not JSON."""
    try:
        return json.loads(read_capped(path, cap).decode("utf-8"))
    except Damaged:
        raise
    except FileNotFoundError:
        raise Damaged(f"no {path.name}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Damaged(f"{path.name} cannot be read ({exc.__class__.__name__})") from None
    except RecursionError:
        raise Damaged(f"{path.name} is nested too deeply") from None
    except ValueError:
        raise Damaged(f"{path.name} is not valid JSON") from None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
