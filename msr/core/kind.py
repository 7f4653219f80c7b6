"""What a kind of run is: the one shape every run kind fills in.

A run kind (Rotated MNIST, the paper's synthetic problems) is a package of
its own (msr.mnist, msr.synthetic) that builds one :class:`RunKind`; the
registry (msr.kinds) lists them. Everything outside a kind's package asks its
RunKind instead of branching on which kind a run is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class MemoryNeed:
    """A run's estimated peak memory, and what to change when it does not fit."""
    bytes: int
    cuda: bool  # measured against the GPU's free memory (else the machine's)
    advice: str


@dataclass(frozen=True)
class LensSupport:
    """What the symmetry lens (msr.analysis.lens) needs from a kind."""
    refusal: Callable[[Any], str | None]  # config -> why the lens cannot read it (None: it can)
    label: Callable[[Any], str]  # config -> what is read, e.g. "shared on Rotated MNIST"
    first_layer: Callable[[Any], str | None]  # config -> "plain", "kronecker" or "dense"
    subject: Callable[[Any], Any]  # config -> a msr.core.symmetry.LensSubject
    reads_predictions: bool = False  # the lens also reads the invariance of predictions
    circuits: Callable[[Any], int] = lambda config: 1  # config -> first-layer banks read (one per angle: dedicated)

    def applies(self, config) -> bool:
        return self.refusal(config) is None


@dataclass(frozen=True)
class RunKind:
    """One kind of run, as everything outside its package sees it."""
    name: str  # config.json's and status.json's "kind"
    config: type  # its settings: a msr.core.settings.Settings dataclass
    trainer: Callable[..., Any]  # (config, data=None) -> a trainer msr.core.loop.drive can drive
    label: Callable[[Any], str]  # config -> the middle of a run id, e.g. "shared", "rank1-msr-fc"
    model_name: Callable[[Any], str]  # config -> the model, as run listings name it
    describe: Callable[[Any], str]  # config -> the run, as pages name it
    progress_line: Callable[[dict], str]  # an evaluation record -> the command line's progress line
    summary: Callable[[Any], dict]  # a msr.core.loop.RunResult -> the command line's --json object
    outcome_line: Callable[[Any, dict], str]  # (RunResult, its summary) -> the command line's last line
    memory: Callable[[Any, bool], MemoryNeed | None]  # (config, on CUDA) -> estimated peak (None: no estimate)
    angles: Callable[[Any], list[float] | None]  # config -> the rotation angles it trains on (None: none)
    loss_key: str = "test_loss"  # the record's test loss
    has_accuracy: bool = True  # records carry test_acc
    lens: LensSupport | None = None  # None: the symmetry lens does not read this kind
    learner: Callable[[dict], Any] | None = None  # a checkpoint -> its msr.core.meta.MetaLearner (None: no model)

    def parse(self, data: dict):
        """Its config from config.json's fields (its kind removed), checked; ConfigError otherwise."""
        return self.config.from_dict(data).validate()

    def __repr__(self) -> str:
        return f"RunKind({self.name!r})"
