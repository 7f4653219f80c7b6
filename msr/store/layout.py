"""The layout of a run folder: the name of every file in it, and the statuses a run can have, in one place.

``runs/<run-id>/`` holds

- ``.msr-run``: the mark that this app made the folder (delete touches nothing else);
- ``config.json``: the run's settings and its kind (msr.kinds);
- ``status.json``: the small summary a run list reads: status, step, total,
  the last evaluation's numbers, and the worker's pid, host and heartbeat;
- ``metrics.jsonl``: one evaluation record per line, appended;
- ``losses.csv``: the training loss of every step, appended;
- ``checkpoints/step_NNNNNN.pt``: weights at every evaluation (thinned under a cap);
- ``resume.pt``: everything needed to continue (optimizer, generators, counters);
- ``worker.lock``: held (flock) by the live worker, so a dead worker is seen at once;
- ``stop``: a stop request;
- ``worker.log``: a launched worker's output;
- ``annotations.json``: a display name, notes and the run's colour (msr.store.annotations);
- ``lens/step_NNNNNN.json``: the symmetry lens read at a checkpoint, kept so it is read once (msr.store.lens_cache).
"""
from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from .files import describe_mode, real_folder

MARKER, CONFIG, METRICS, STATUS = ".msr-run", "config.json", "metrics.jsonl", "status.json"
LOSSES, CHECKPOINTS, RESUME, LOCK, STOP, LOG = "losses.csv", "checkpoints", "resume.pt", "worker.lock", "stop", "worker.log"
ANNOTATIONS = "annotations.json"  # what a user says of a run (name, notes) and its colour; never the worker's
LENS = "lens"  # the lens's readings per checkpoint
MARKER_TEXT = "msr-run 1\n"
_CHECKPOINT = re.compile(r"step_(\d+)\.pt")

ACTIVE = ("starting", "running")
FINISHED = ("completed", "stopped", "failed")
RUNS_DIR_ENV = "MSR_RUNS_DIR"  # the runs folder of the app and the command line, when none is given
INTERRUPTED = "interrupted"  # recorded as active, but its worker is gone: never written, only shown
NOT_RESPONDING = "not responding"  # its worker holds the lock but has not beaten for a while (SIGSTOP): only shown
LIVE = ACTIVE + (NOT_RESPONDING,)  # the states shown of a run whose worker lives
STATUSES = ACTIVE + FINISHED


def default_runs_dir() -> str:
    """The runs folder when none is given: $MSR_RUNS_DIR, else ./runs (the app and the command line alike)."""
    return os.environ.get(RUNS_DIR_ENV) or "runs"


def checkpoint_name(step: int) -> str:
    """A checkpoint's file name: zero-padded, so names sort as steps do."""
    return f"step_{step:06d}.pt"


@dataclass(frozen=True)
class RunFiles:
    """The paths of one run folder's files (see this module's docstring for what each holds)."""
    root: Path

    marker = property(lambda self: self.root / MARKER)
    config = property(lambda self: self.root / CONFIG)
    status = property(lambda self: self.root / STATUS)
    metrics = property(lambda self: self.root / METRICS)
    losses = property(lambda self: self.root / LOSSES)
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    resume = property(lambda self: self.root / RESUME)
    lock = property(lambda self: self.root / LOCK)
    stop = property(lambda self: self.root / STOP)
    log = property(lambda self: self.root / LOG)
    annotations = property(lambda self: self.root / ANNOTATIONS)
    lens = property(lambda self: self.root / LENS)

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def lens_reading(self, step: int) -> Path:
        return self.lens / f"step_{step:06d}.json"

    def checkpoint_steps(self) -> list[int]:
        """The steps that have a checkpoint, in order (a ``checkpoints`` that is
        a link, not a folder of the run, has none)."""
        folder = self.checkpoints
        if not real_folder(folder):
            return []
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        return sorted(int(m.group(1)) for name in names if (m := _CHECKPOINT.fullmatch(name)))

    def unsafe(self) -> str | None:
        """Why the folder cannot be used safely (one of its files is a link
        or a special file, ``checkpoints`` is not a folder of the run), or None."""
        for name in FILES:
            try:
                mode = os.lstat(self.root / name).st_mode
            except FileNotFoundError:
                continue
            except OSError as exc:
                return f"{name} cannot be read ({exc.strerror})"
            if not stat.S_ISREG(mode):
                return f"{name} is {describe_mode(mode)}, not a file of the run"
        try:
            mode = os.lstat(self.checkpoints).st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"{CHECKPOINTS} cannot be read ({exc.strerror})"
        if not stat.S_ISDIR(mode):
            return f"{CHECKPOINTS} is {describe_mode(mode)}, not a folder of the run"
        return None


TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp")  # what msr.store.files.atomic_write_bytes writes first
STALE_SECONDS = 60.0  # a temporary file this old was left by a writer that was killed


def remove_stale_temporaries(path: str | Path, older_than: float = STALE_SECONDS) -> list[str]:
    """Remove the temporary files a killed writer left in a run folder and
    its checkpoints (``.step_000010.pt.x1y2.tmp``); the names removed."""
    files = run_files(path)
    removed = []
    now = time.time()
    for folder in (files.root, files.checkpoints):
        if not real_folder(folder):
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if not TEMPORARY.fullmatch(name):
                continue
            try:
                st = os.lstat(folder / name)
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > older_than:
                    os.unlink(folder / name)
                    removed.append(name)
            except OSError:
                continue
    return removed


# Each a regular file where it exists. (annotations.json is left out: never essential, it is read without
# following a link, a link or special file there reads as no annotations, and it is replaced, never written into.)
FILES = (MARKER, CONFIG, STATUS, METRICS, LOSSES, RESUME, LOCK, STOP, LOG)


def run_files(path: str | Path) -> RunFiles:
    return RunFiles(Path(path))
