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
- ``annotations.json``: a display name, notes and the run's colour (msr.store.annotations).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MARKER, CONFIG, METRICS, STATUS = ".msr-run", "config.json", "metrics.jsonl", "status.json"
LOSSES, CHECKPOINTS, RESUME, LOCK, STOP, LOG = "losses.csv", "checkpoints", "resume.pt", "worker.lock", "stop", "worker.log"
ANNOTATIONS = "annotations.json"  # what a user says of a run (name, notes) and its colour; never the worker's
MARKER_TEXT = "msr-run 1\n"
_CHECKPOINT = re.compile(r"step_(\d+)\.pt")

ACTIVE = ("starting", "running")
FINISHED = ("completed", "stopped", "failed")
RUNS_DIR_ENV = "MSR_RUNS_DIR"  # the runs folder of the app and the command line, when none is given
INTERRUPTED = "interrupted"  # recorded as active, but its worker is gone: never written, only shown
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

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def checkpoint_steps(self) -> list[int]:
        """The steps that have a checkpoint, in order."""
        folder = self.checkpoints
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for f in folder.iterdir() if (m := _CHECKPOINT.fullmatch(f.name)))


def run_files(path: str | Path) -> RunFiles:
    return RunFiles(Path(path))
