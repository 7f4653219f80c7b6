"""Run folders on disk: ``runs/<run-id>/`` with config.json, metrics.jsonl,
status.json and checkpoints/step_NNNNNN.pt.

Every write goes to a temporary file that is then renamed over the target, so
a killed process leaves either the old file or the new one, never half of one.
A run folder only appears once its config is complete.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import ConfigError, RunConfig

CONFIG, METRICS, STATUS, CHECKPOINTS = "config.json", "metrics.jsonl", "status.json", "checkpoints"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def new_run_id(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config.arch}-{secrets.token_hex(2)}"


class RunWriter:
    """Writes one run as it goes."""

    def __init__(self, path: Path, config: RunConfig):
        self.path, self.config = Path(path), config
        self.metrics: list[dict] = []

    @classmethod
    def create(cls, config: RunConfig, root: str | Path | None = None) -> "RunWriter":
        root = Path(root if root is not None else config.runs_dir)
        root.mkdir(parents=True, exist_ok=True)
        run_id = new_run_id(config)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".new-"))
        try:
            atomic_write_text(staging / CONFIG, config.to_json())
            atomic_write_text(staging / STATUS, json.dumps({"status": "running", "created": time.time()}))
            atomic_write_text(staging / METRICS, "")
            final = root / run_id
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(final, config)

    @property
    def run_id(self) -> str:
        return self.path.name

    def append_metrics(self, record: dict) -> None:
        self.metrics.append(record)
        atomic_write_text(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in self.metrics))

    def set_status(self, status: str, message: str | None = None, **extra) -> None:
        current = _read_json(self.path / STATUS) or {}
        current.update(status=status, message=message, updated=time.time(), **extra)
        atomic_write_text(self.path / STATUS, json.dumps(current))

    def save_checkpoint(self, step: int, state: dict) -> Path:
        target = self.path / CHECKPOINTS / f"step_{step:06d}.pt"
        buf = _serialize({**state, "step": step, "config": self.config.to_dict()})
        atomic_write_bytes(target, buf)
        enforce_budget(self.path / CHECKPOINTS, self.config.checkpoint_budget_mb * 1e6)
        return target


def _serialize(obj) -> bytes:
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def checkpoint_steps(run_path: str | Path) -> list[int]:
    folder = Path(run_path) / CHECKPOINTS
    steps = []
    for f in folder.glob("step_*.pt") if folder.is_dir() else []:
        try:
            steps.append(int(f.stem.split("_", 1)[1]))
        except ValueError:
            continue
    return sorted(steps)


def enforce_budget(folder: Path, budget_bytes: float) -> list[int]:
    """Thin checkpoints until they fit the budget. The first and last always
    stay, and the survivors are the steps nearest to evenly spaced targets, so
    the step slider still covers the whole run."""
    files = {s: folder / f"step_{s:06d}.pt" for s in checkpoint_steps(folder.parent)}
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


def load_checkpoint(run_path: str | Path, step: int | None = None) -> dict:
    """A checkpoint's state dicts (the latest when step is None)."""
    steps = checkpoint_steps(run_path)
    if not steps:
        raise FileNotFoundError(f"run '{run_path}' has no checkpoint")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        step = min(steps, key=lambda s: abs(s - step))
    return torch.load(Path(run_path) / CHECKPOINTS / f"step_{step:06d}.pt", map_location="cpu", weights_only=True)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class RunRecord:
    """A run folder as read back; ``damaged`` says why it cannot be used."""
    path: Path
    config: RunConfig | None = None
    metrics: list[dict] = field(default_factory=list)
    status: dict = field(default_factory=dict)
    damaged: str | None = None

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def last(self) -> dict:
        return self.metrics[-1] if self.metrics else {}

    @property
    def created(self) -> float:
        return float(self.status.get("created") or self.path.stat().st_mtime)

    def checkpoint_steps(self) -> list[int]:
        return checkpoint_steps(self.path)


def load_run(path: str | Path) -> RunRecord:
    path = Path(path)
    record = RunRecord(path)
    if not (path / CONFIG).is_file():
        record.damaged = "no config.json"
        return record
    data = _read_json(path / CONFIG)
    if not isinstance(data, dict):
        record.damaged = "config.json is not valid JSON"
        return record
    try:
        record.config = RunConfig.from_dict(data)
    except (ConfigError, TypeError) as exc:
        record.damaged = f"config.json does not describe a run ({exc})"
        return record
    try:
        lines = (path / METRICS).read_text().splitlines() if (path / METRICS).exists() else []
        record.metrics = [json.loads(line) for line in lines if line.strip()]
    except ValueError:
        record.damaged = "metrics.jsonl is not valid JSON lines"
    record.status = _read_json(path / STATUS) or {"status": "unknown"}
    return record


def list_runs(root: str | Path = "runs", include_damaged: bool = False) -> list[RunRecord]:
    """Runs under root, newest first. Damaged or foreign folders are skipped
    with a warning (or returned marked, with include_damaged)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        rec = load_run(child)
        if rec.damaged:
            if not include_damaged:
                warnings.warn(f"skipping run folder '{child}': {rec.damaged}", stacklevel=2)
                continue
        out.append(rec)
    return sorted(out, key=lambda r: r.created, reverse=True)


def delete_run(path: str | Path) -> None:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no run folder at '{path}'")
    shutil.rmtree(path)
