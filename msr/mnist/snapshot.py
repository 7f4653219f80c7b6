"""A Rotated MNIST model as it was at one checkpoint, rebuilt from the checkpoint's own config."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.meta import MetaLearner
from ..core.models import build_model
from .config import RunConfig


@dataclass
class ModelSnapshot:
    """A run's model and learned inner rates as they were at one checkpoint."""
    run_path: Path | None
    step: int
    config: RunConfig
    learner: MetaLearner

    @property
    def model(self):
        return self.learner.model

    @property
    def angles(self) -> list[float]:
        return self.config.angle_list()

    @property
    def circuits(self) -> int:
        return self.model.circuits

    def circuit_labels(self) -> list[str]:
        """Dedicated circuits are named after the angle they serve."""
        if self.circuits == 1:
            return ["single circuit"]
        return [f"{a:g}° circuit" for a in self.angles]


def model_snapshot(checkpoint: dict, run_path: str | Path | None = None) -> ModelSnapshot:
    """The model and learner a checkpoint (its state dicts and config) holds."""
    config = RunConfig.from_dict(checkpoint["config"])
    model = build_model(config.model_spec(), seed=config.seed)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    learner = MetaLearner(model, config.meta_config())
    learner.inner_lrs.load_state_dict(checkpoint["inner_lrs"])
    return ModelSnapshot(Path(run_path) if run_path is not None else None, int(checkpoint["step"]), config, learner)
