"""The symmetry lens's readings kept in the run folder (``lens/step_NNNNNN.json``), so each checkpoint is read once.

Reading a checkpoint with the lens takes seconds; a run has dozens. A reading
is kept beside the run under a key its reader gives (what was read and how),
and is used again only while that key and the checkpoint file are unchanged.
A run folder that cannot be written (read-only, full) is simply not cached.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .files import atomic_write_text, dumps
from .layout import run_files

MAX_READING_BYTES = 2 * 2 ** 20  # a reading is tens of kB; anything larger is not one


def _checkpoint_stamp(run_path: Path, step: int) -> int | None:
    try:
        return run_files(run_path).checkpoint(step).stat().st_mtime_ns
    except OSError:
        return None


def _folder(run_path: Path) -> Path | None:
    """The run's lens folder, made if missing; None when it is not a plain folder of the run's own."""
    folder = run_files(run_path).lens
    try:
        if not folder.exists() and not folder.is_symlink():
            folder.mkdir()
        return folder if folder.is_dir() and not folder.is_symlink() else None
    except OSError:
        return None


def read_reading(run_path: str | Path, step: int, key: str) -> dict | None:
    """The kept reading of the checkpoint at ``step`` made under ``key``;
    None when there is none, it was made under another key or from an older
    checkpoint file, or it cannot be read."""
    run_path = Path(run_path)
    path = run_files(run_path).lens_reading(step)
    stamp = _checkpoint_stamp(run_path, step)
    try:
        if stamp is None or path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_READING_BYTES:
            return None
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != key or kept.get("checkpoint") != stamp:
        return None
    return kept.get("reading") if isinstance(kept.get("reading"), dict) else None


def keep_reading(run_path: str | Path, step: int, key: str, reading: dict) -> bool:
    """Keep a reading of the checkpoint at ``step``; readings of checkpoints
    no longer kept go. False when the folder cannot take it."""
    run_path = Path(run_path)
    stamp = _checkpoint_stamp(run_path, step)
    folder = _folder(run_path)
    if stamp is None or folder is None:
        return False
    try:
        atomic_write_text(run_files(run_path).lens_reading(step), dumps({"key": key, "checkpoint": stamp,
                                                                          "reading": reading}), sync=False)
        kept = {f"step_{s:06d}.json" for s in run_files(run_path).checkpoint_steps()}
        for old in os.listdir(folder):
            if old.startswith("step_") and old.endswith(".json") and old not in kept:
                (folder / old).unlink(missing_ok=True)
    except OSError:
        return False
    return True
