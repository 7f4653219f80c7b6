"""How a run folder's files are written and read: whole files atomically, JSON strictly.

Whole-file writes go to a temporary file renamed over the target, so a killed
process leaves the old file or the new one. NaN and infinity are written as
null (JSON has no such numbers). A file read back that has the wrong shape is
:class:`Damaged`, with its reason.
"""
from __future__ import annotations

import errno
import json
import math
import os
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


# -------------------------------------------------------------------- reads
def read_json(path: Path):
    """A JSON file's content; Damaged (one line) when it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Damaged(f"no {path.name}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Damaged(f"{path.name} cannot be read ({exc.__class__.__name__})") from None
    except ValueError:
        raise Damaged(f"{path.name} is not valid JSON") from None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
