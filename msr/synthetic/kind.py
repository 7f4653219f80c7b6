"""The paper's synthetic problems as a run kind: what the registry (msr.kinds) knows of them."""
from __future__ import annotations

from ..core.kind import LensSupport, RunKind
from . import report
from .config import SyntheticConfig
from .lens import RotationLensSubject
from .memory import memory_need
from .trainer import SyntheticTrainer, checkpoint_learner

# The first layer of the 2-D problems' models, as the Rotated MNIST layer names say it.
FIRST_LAYER = {"msr-conv": "kronecker", "maml-conv": "plain", "msr-conv-dense": "dense"}


def _lens_refusal(config: SyntheticConfig) -> str | None:
    if config.is_rotation:
        return None
    return f"is the 1-D problem {config.problem} (use a Rotated MNIST run or rot4 / rot8 / rot8_flip)"


KIND = RunKind(
    name=SyntheticConfig.KIND,
    config=SyntheticConfig,
    trainer=SyntheticTrainer,
    label=lambda config: f"{config.problem}-{config.model}",
    model_name=lambda config: config.model,
    describe=lambda config: f"{config.model} ({config.problem})",
    progress_line=report.progress_line,
    summary=report.summary,
    outcome_line=report.outcome_line,
    memory=memory_need,
    angles=lambda config: None,
    loss_key="test_mse",
    has_accuracy=False,
    lens=LensSupport(refusal=_lens_refusal,
                     label=lambda config: f"{config.model} on {config.problem}",
                     first_layer=lambda config: FIRST_LAYER.get(config.model),
                     subject=RotationLensSubject),
    learner=checkpoint_learner,
)
