"""What a person says about a run (a display name, notes) and the colour its curves keep.

They live in the run folder's ``annotations.json``, apart from ``config.json``:
the config records what was trained and never changes, while a name or a note
may be edited at any time, also while the worker writes its own files.
The colour is chosen once, when the folder is made, as the palette colour
fewest runs in the same runs folder have, so runs side by side differ.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

from .files import atomic_write_text, read_capped
from .layout import run_files

# Vega's "tableau10": distinct on a projector and for the common colour-vision deficiencies.
PALETTE = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
           "#79706e")
MAX_NAME = 80
MAX_NOTES = 4000


@dataclass(frozen=True)
class Annotations:
    name: str = ""
    notes: str = ""
    color: str | None = None


def fallback_color(run_id: str) -> str:
    """A colour for a run made before colours were stored: fixed by its id."""
    return PALETTE[zlib.crc32(run_id.encode()) % len(PALETTE)]


def read_annotations(path: str | Path) -> Annotations:
    """The run's annotations; a missing or unreadable file means none (they are never essential)."""
    try:
        data = json.loads(read_capped(run_files(path).annotations).decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # Damaged (a link, a FIFO, too large) is a ValueError
        return Annotations()
    if not isinstance(data, dict):
        return Annotations()
    text = lambda key, limit: data[key][:limit] if isinstance(data.get(key), str) else ""  # noqa: E731
    color = data.get("color")
    return Annotations(text("name", MAX_NAME).strip(), text("notes", MAX_NOTES),
                       color if color in PALETTE else None)


def run_color(path: str | Path) -> str:
    """The colour this run's curves are drawn in."""
    return read_annotations(path).color or fallback_color(Path(path).name)


def write_annotations(path: str | Path, *, name: str | None = None, notes: str | None = None,
                      color: str | None = None) -> Annotations:
    """Change what is given, keep the rest; written whole and atomically.
    Raises OSError (a full disk, a folder deleted meanwhile) for the caller to report."""
    old = read_annotations(path)
    new = Annotations(old.name if name is None else " ".join(name.split())[:MAX_NAME],
                      old.notes if notes is None else notes[:MAX_NOTES],
                      old.color if color is None else color)
    atomic_write_text(run_files(path).annotations,
                      json.dumps({"name": new.name, "notes": new.notes, "color": new.color}, indent=2))
    return new


def least_used_color(root: str | Path) -> str:
    """The palette colour fewest runs under ``root`` have (the first such, so the order is stable)."""
    counts = dict.fromkeys(PALETTE, 0)
    try:
        children = [c for c in Path(root).iterdir() if c.is_dir() and not c.name.startswith(".")]
    except OSError:
        children = []
    for child in children:
        counts[run_color(child)] += 1
    return min(PALETTE, key=lambda c: counts[c])


def distinct_colors(colors: list[str]) -> list[str]:
    """The runs' own colours, except that a colour already taken by an earlier
    run (more runs than the palette has colours) gives way to an unused one."""
    taken: set[str] = set()
    out = []
    for color in colors:
        if color in taken:
            color = next((c for c in PALETTE if c not in taken and c not in colors), color)
        taken.add(color)
        out.append(color)
    return out
