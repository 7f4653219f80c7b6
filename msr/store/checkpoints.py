"""Checkpoints and the state to resume from: written at every evaluation, thinned under a disk cap, read strictly.

A checkpoint holds state dicts and the config only and is read with
``torch.load(..., weights_only=True)``, never through a link, and checked
before anything is built from it: its parts are there, its config is a valid
config of the run's kind, the run's own, and the model it describes fits in
memory. One that fails is a :class:`CheckpointError` with one line saying so.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Callable, TypeVar

from .. import kinds
from ..core.errors import ConfigError
from ..core.runtime import available_memory_bytes
from .files import (Damaged, NotRegular, RunFolderError, atomic_write_bytes, is_whole, open_regular, read_json,
                    real_folder)
from .layout import run_files

T = TypeVar("T")


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
    if not real_folder(files.checkpoints):  # never written through a link out of the run
        raise RunFolderError(f"run '{files.root.name}' cannot keep checkpoints: its {files.checkpoints.name} is "
                             "not a folder of the run")
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
        fd = open_regular(path)
    except FileNotFoundError:
        raise CheckpointError(f"{what} of run '{run_path.name}' is missing") from None
    except NotRegular as exc:
        raise CheckpointError(f"{what} of run '{run_path.name}' cannot be read: {exc.strerror}") from None
    except OSError as exc:
        raise CheckpointError(f"{what} of run '{run_path.name}' cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > available_memory_bytes():
            raise CheckpointError(f"{what} of run '{run_path.name}' is {size / 2 ** 30:.1f} GiB, more than the "
                                  "memory free now")
        try:
            with warnings.catch_warnings():  # torch's own warnings (a pickle protocol, say) are not the user's
                warnings.simplefilter("ignore")
                blob = torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
            raise CheckpointError(f"{what} of run '{run_path.name}' cannot be read ({type(exc).__name__}); "
                                  "the file is damaged or was not written by this app") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{what} of run '{run_path.name}' does not hold a checkpoint")
    return blob


CHECKPOINT_KEYS = ("step", "model", "inner_lrs", "config")


def _state_dict(value) -> bool:
    import torch

    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def check_checkpoint(blob: dict, what: str, run_path: Path) -> dict:
    """The checkpoint, once its parts are there, its config is a valid config
    of the run's kind and the run's own, and the model it describes fits in
    the memory free now; CheckpointError (one line) otherwise."""
    name = run_path.name
    missing = [k for k in CHECKPOINT_KEYS if k not in blob]
    if missing:
        raise CheckpointError(f"{what} of run '{name}' is incomplete (no {', '.join(missing)}); the file is damaged")
    if not is_whole(blob["step"]) or not _state_dict(blob["model"]) or not _state_dict(blob["inner_lrs"]):
        raise CheckpointError(f"{what} of run '{name}' does not hold weights; the file is damaged")
    data = blob["config"]
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} of run '{name}' holds no config; the file is damaged")
    try:
        kind = kinds.recorded({**data, "kind": blob["kind"]} if "kind" in blob else data)
        config = kind.parse({k: v for k, v in data.items() if k != "kind"})
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} of run '{name}' holds an invalid config ({exc})") from None
    try:
        own = read_json(run_files(run_path).config)
    except Damaged:
        own = None
    if isinstance(own, dict) and own.get("kind", kind.name) == kind.name:
        try:
            mine = kind.parse({k: v for k, v in own.items() if k != "kind"})
        except (ConfigError, TypeError, ValueError):
            mine = None
        if mine is not None and mine.to_dict() != config.to_dict():
            raise CheckpointError(f"{what} of run '{name}' was not written by this run (its config differs from "
                                  "the run's)")
    need = kind.memory(config, False)
    free = available_memory_bytes()
    if need is not None and need.bytes > free:
        raise CheckpointError(f"{what} of run '{name}' describes a model that needs about "
                              f"{need.bytes / 2 ** 30:.1f} GiB, more than the {free / 2 ** 30:.1f} GiB free now")
    return blob


def load_checkpoint(run_path: str | Path, step: int | None = None) -> dict:
    """A checkpoint's state dicts (the latest when step is None, else the
    nearest kept one), checked (:func:`check_checkpoint`). CheckpointError,
    one line, when it cannot be read."""
    run_path = Path(run_path)
    steps = checkpoint_steps(run_path)
    if not steps:
        raise CheckpointError(f"run '{run_path.name}' has no checkpoint yet")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        step = min(steps, key=lambda s: abs(s - step))
    what = f"the checkpoint of step {step}"
    return check_checkpoint(_torch_load(run_files(run_path).checkpoint(step), what, run_path), what, run_path)


def restore(apply: Callable[[], T], what: str, run_path: str | Path) -> T:
    """``apply()``, which loads a checkpoint's state dicts into a model (or an
    optimizer); a state dict that does not fit (wrong keys, wrong shapes) is a
    CheckpointError, one line, not a traceback."""
    try:
        return apply()
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{what} of run '{Path(run_path).name}' does not fit its model ({_misfit(exc)}); the "
                              "file is damaged or was not written by this run") from None


def _misfit(exc: BaseException) -> str:
    """What torch's long load_state_dict message says, in a few words."""
    text = str(exc)
    found = [words for marker, words in (("Missing key", "keys missing"), ("Unexpected key", "unexpected keys"),
                                         ("size mismatch", "tensors of the wrong shape")) if marker in text]
    if found:
        return ", ".join(found)
    if isinstance(exc, KeyError):
        return f"no {text}"
    first = text.strip().splitlines()[0][:160] if text.strip() else ""
    return first or type(exc).__name__


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
    if not os.path.lexists(run_files(run_path).resume):
        return None
    state = _torch_load(run_files(run_path).resume, "the resume state", run_path)
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing or not is_whole(state.get("step")):
        raise CheckpointError(f"the resume state of run '{run_path.name}' is incomplete "
                              f"({', '.join(missing) or 'step'}); the file is damaged")
    return state
