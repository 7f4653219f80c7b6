"""Checkpoints and the state to resume from: written at every evaluation, thinned under a disk cap, read strictly.

A checkpoint holds state dicts and the config only and is read with
``torch.load(..., weights_only=True)``; one that cannot be read is a
:class:`CheckpointError` with one line saying so.
"""
from __future__ import annotations

import io
from pathlib import Path

from .files import RunFolderError, atomic_write_bytes, is_whole
from .layout import run_files


class CheckpointError(RunFolderError):
    """A checkpoint that cannot be read."""


def _serialize(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_checkpoint(run_path: str | Path, step: int, state: dict, config: dict, budget_mb: float) -> Path:
    """The checkpoint of ``step`` (its state dicts and the config), then the
    oldest thinned until they fit the budget."""
    files = run_files(run_path)
    target = files.checkpoint(step)
    atomic_write_bytes(target, _serialize({**state, "step": step, "config": config}))
    enforce_budget(files.checkpoints, budget_mb * 1e6)
    return target


def write_resume_state(run_path: str | Path, state: dict) -> None:
    atomic_write_bytes(run_files(run_path).resume, _serialize(state))


def checkpoint_steps(run_path: str | Path) -> list[int]:
    return run_files(run_path).checkpoint_steps()


def enforce_budget(folder: Path, budget_bytes: float) -> list[int]:
    """Thin checkpoints until they fit the budget. The first and last always
    stay, and the survivors are the steps nearest to evenly spaced targets, so
    the step slider still covers the whole run."""
    layout = run_files(folder.parent)
    files = {s: layout.checkpoint(s) for s in layout.checkpoint_steps()}
    sizes = {s: f.stat().st_size for s, f in files.items()}
    if sum(sizes.values()) <= budget_bytes or len(files) <= 2:
        return []
    steps = sorted(files)
    keep_count = max(2, int(budget_bytes // (sum(sizes.values()) / len(steps))))
    while True:
        span = steps[-1] - steps[0]
        targets = [steps[0] + span * i / (keep_count - 1) for i in range(keep_count)]
        keep = {min(steps, key=lambda s: (abs(s - t), s)) for t in targets}
        if sum(sizes[s] for s in keep) <= budget_bytes or keep_count == 2:
            break
        keep_count -= 1
    removed = [s for s in steps if s not in keep]
    for s in removed:
        files[s].unlink(missing_ok=True)
    return removed


def _torch_load(path: Path, what: str, run_path: Path) -> dict:
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{what} of run '{run_path.name}' is missing") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"{what} of run '{run_path.name}' cannot be read ({type(exc).__name__}); "
                              "the file is damaged or was not written by this app") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{what} of run '{run_path.name}' does not hold a checkpoint")
    return blob


def load_checkpoint(run_path: str | Path, step: int | None = None) -> dict:
    """A checkpoint's state dicts (the latest when step is None, else the
    nearest kept one). CheckpointError, one line, when it cannot be read."""
    run_path = Path(run_path)
    steps = checkpoint_steps(run_path)
    if not steps:
        raise CheckpointError(f"run '{run_path.name}' has no checkpoint yet")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        step = min(steps, key=lambda s: abs(s - step))
    return _torch_load(run_files(run_path).checkpoint(step), f"the checkpoint of step {step}", run_path)


def checkpoint_mtime(run_path: str | Path, step: int) -> float:
    """Part of a cache key: a checkpoint rewritten under the same step is a new one."""
    try:
        return run_files(run_path).checkpoint(step).stat().st_mtime
    except OSError:
        return 0.0


RESUME_KEYS = ("step", "model", "inner_lrs", "optimizer", "generators")


def load_resume_state(run_path: str | Path) -> dict | None:
    """What a resumed run continues from (None: it has nothing saved yet)."""
    run_path = Path(run_path)
    if not run_files(run_path).resume.exists():
        return None
    state = _torch_load(run_files(run_path).resume, "the resume state", run_path)
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing or not is_whole(state.get("step")):
        raise CheckpointError(f"the resume state of run '{run_path.name}' is incomplete "
                              f"({', '.join(missing) or 'step'}); the file is damaged")
    return state
