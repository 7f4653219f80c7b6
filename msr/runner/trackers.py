"""Logging a run to the trackers people use: TensorBoard and Weights & Biases.

A run whose config asks for them (``log_to``: tensorboard, wandb or both) logs every evaluation while it trains:
the train and test loss, the test accuracy, the accuracy per angle, the learned inner rates and the first
layer's filters as an image. TensorBoard's event files go to the run's own folder (``RUN/tensorboard``), so
``tensorboard --logdir RUNS_DIR`` shows every run; W&B's run folder goes there too (``RUN/wandb``), and
``WANDB_MODE=offline`` keeps it off the network. :func:`export_tensorboard` writes the same for a run
already trained, from its records and checkpoints.

Each tracker is an optional extra: a run that asks for one that is not installed is refused before it starts,
in one line (:func:`check_trackers`). A tracker that fails while a run trains is dropped with a warning; the
run goes on.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

from ..core.errors import ConfigError
from ..store.checkpoints import checkpoint_steps, load_checkpoint
from ..store.reader import load_run

TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}  # name -> (module, extra)
TENSORBOARD_DIR, WANDB_DIR = "tensorboard", "wandb"
WANDB_PROJECT = "msr-explorer"
FILTER_ZOOM = 8  # a 3×3 filter drawn as 24×24 pixels
MAX_FILTERS = 256


def wanted(config) -> list[str]:
    """The trackers a config asks for, in order."""
    value = getattr(config, "log_to", None) or "none"
    return [] if value == "none" else value.split(",")


def check_trackers(config) -> None:
    """ConfigError (one line) when a tracker the config asks for is not installed."""
    for name in wanted(config):
        module, extra = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"logging to {name} needs the {module} package: pip install 'msr-explorer[{extra}]' "
                              f"(or pip install {module})", field="log_to")


# ------------------------------------------------------------ what is logged
def scalars(record: dict, kind, config) -> dict[str, float]:
    """An evaluation record as tracker scalars: loss/…, accuracy/…, accuracy_by_angle/…, inner_lr/…."""
    out: dict[str, float] = {}

    def put(tag: str, value) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[tag] = float(value)

    put("loss/train", record.get("train_loss"))
    put("loss/test", record.get(kind.loss_key))
    put("loss/test_err", record.get("test_err"))
    put("accuracy/train", record.get("train_acc"))
    put("accuracy/test", record.get("test_acc"))
    put("speed/steps_per_sec", record.get("steps_per_sec"))
    angles = kind.angles(config) or []
    test = (record.get("per_angle") or {}).get("test") or {}
    for angle, count, errors in zip(angles, test.get("counts") or [], test.get("errors") or []):
        if count:
            put(f"accuracy_by_angle/{angle:g}deg", 1 - errors / count)
    for name, rate in (record.get("inner_lrs") or {}).items():
        put(f"inner_lr/{name}", rate)
    return out


def first_layer_filters(model):
    """The first layer's filters as one grey image (C, H, W) in [0, 1], each filter scaled to its own range and
    drawn large; None for a model without a 2-D first layer."""
    import torch
    from torchvision.utils import make_grid

    layer = model.first_layer() if callable(getattr(model, "first_layer", None)) else None
    if layer is None:
        return None
    with torch.no_grad():
        weight = layer.effective_weight() if hasattr(layer, "effective_weight") else getattr(layer, "weight", None)
        if weight is None or weight.dim() < 4 or weight.shape[-1] != weight.shape[-2]:
            return None
        k = weight.shape[-1]
        filters = weight.detach().float().cpu().reshape(-1, 1, k, k)[:MAX_FILTERS]
        low = filters.amin(dim=(1, 2, 3), keepdim=True)
        high = filters.amax(dim=(1, 2, 3), keepdim=True)
        filters = (filters - low) / (high - low).clamp_min(1e-12)
        filters = filters.repeat_interleave(FILTER_ZOOM, dim=2).repeat_interleave(FILTER_ZOOM, dim=3)
        return make_grid(filters, nrow=min(16, len(filters)), padding=2, pad_value=1.0)


# ------------------------------------------------------------------ trackers
class TensorBoardTracker:
    def __init__(self, logdir: Path, run_id: str, config):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(logdir))
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in config.to_dict().items()), 0)

    def log(self, step: int, values: dict[str, float], filters) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        if filters is not None:
            self.writer.add_image("filters/first_layer", filters, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, folder: Path, run_id: str, config):
        import wandb

        folder.mkdir(parents=True, exist_ok=True)
        self.wandb = wandb
        self.run = wandb.init(project=WANDB_PROJECT, name=run_id, id=run_id, resume="allow", dir=str(folder),
                              config=config.to_dict(), reinit="create_new")

    def log(self, step: int, values: dict[str, float], filters) -> None:
        data: dict = dict(values)
        if filters is not None:
            data["filters/first_layer"] = self.wandb.Image(filters.permute(1, 2, 0).numpy())
        self.run.log(data, step=step)

    def close(self) -> None:
        self.run.finish()


class Trackers:
    """The trackers one run logs to while it trains; each failure drops that tracker with one warning."""

    def __init__(self, run_dir: str | Path, config, kind):
        self.config, self.kind = config, kind
        run_dir = Path(run_dir)
        self.open: dict[str, object] = {}
        for name in wanted(config):
            try:
                if name == "tensorboard":
                    self.open[name] = TensorBoardTracker(run_dir / TENSORBOARD_DIR, run_dir.name, config)
                else:
                    self.open[name] = WandbTracker(run_dir, run_dir.name, config)
            except Exception as exc:  # noqa: BLE001 - a tracker never ends the run
                self._warn(name, exc)

    def _warn(self, name: str, exc: BaseException) -> None:
        print(f"warning: logging to {name} stopped: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def evaluated(self, step: int, record: dict, model) -> None:
        if not self.open:
            return
        values = scalars(record, self.kind, self.config)
        try:
            filters = first_layer_filters(model) if model is not None else None
        except Exception:  # noqa: BLE001 - no picture is no reason to stop
            filters = None
        for name, tracker in list(self.open.items()):
            try:
                tracker.log(step, values, filters)
            except Exception as exc:  # noqa: BLE001
                self._warn(name, exc)
                self.open.pop(name, None)

    def close(self) -> None:
        for name, tracker in list(self.open.items()):
            try:
                tracker.close()
            except Exception as exc:  # noqa: BLE001
                self._warn(name, exc)
        self.open.clear()


# ------------------------------------------------------------------ export
def export_tensorboard(run_dir: str | Path, out_dir: str | Path) -> Path:
    """A trained run's evaluations as TensorBoard event files in ``out_dir/<run id>`` (the filters at each kept
    checkpoint); returns that folder. ConfigError when tensorboard is not installed or the folder is no run."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("exporting to TensorBoard needs the tensorboard package: "
                          "pip install 'msr-explorer[tensorboard]' (or pip install tensorboard)")
    rec = load_run(run_dir)
    if rec.damaged:
        raise ConfigError(f"'{run_dir}' cannot be exported: {rec.damaged}")
    target = Path(out_dir) / rec.run_id
    tracker = TensorBoardTracker(target, rec.run_id, rec.config)
    kept = set(checkpoint_steps(rec.path))
    try:
        for record in rec.metrics:
            step = int(record["step"])
            filters = None
            if step in kept and rec.kind.learner is not None:
                filters = first_layer_filters(rec.kind.learner(load_checkpoint(rec.path, step)).model)
            tracker.log(step, scalars(record, rec.kind, rec.config), filters)
    finally:
        tracker.close()
    return target

