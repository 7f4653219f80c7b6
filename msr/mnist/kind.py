"""Rotated MNIST as a run kind: what the registry (msr.kinds) knows of it."""
from __future__ import annotations

import re

from ..core.kind import LensSupport, RunKind
from ..core.choices import ARCHITECTURES
from . import report
from .config import RunConfig
from .lens import MnistLensSubject
from .memory import memory_need
from .snapshot import model_snapshot
from .trainer import Trainer


def _label(config: RunConfig) -> str:
    """The run id's middle: the model, in lower case with dashes."""
    return re.sub(r"[^a-z0-9]+", "-", config.model_label().lower()).strip("-")


def _model(config: RunConfig) -> str:
    return config.model_label()


KIND = RunKind(
    name=RunConfig.KIND,
    config=RunConfig,
    trainer=Trainer,
    label=_label,
    model_name=_model,
    describe=_model,
    progress_line=report.progress_line,
    summary=report.summary,
    outcome_line=report.outcome_line,
    memory=memory_need,
    angles=RunConfig.angle_list,
    lens=LensSupport(refusal=lambda config: None,
                     label=lambda config: f"{config.model_label()} on Rotated MNIST",
                     first_layer=lambda config: config.layers()[0],
                     subject=MnistLensSubject,
                     reads_predictions=True,
                     circuits=lambda config: len(config.angle_list()) if ARCHITECTURES[config.arch].per_angle else 1),
    learner=lambda checkpoint: model_snapshot(checkpoint).learner,
)
