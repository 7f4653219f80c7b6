"""The 1-D problems' models (MAML-FC, -LC, -Conv and MSR-FC) and the model registry of every problem."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError
from ..core.layers import DenseLinear
from .data import IN_SIZE, OUT_SIZE, TAPS, locally_connected
from .rotation import ROTATION_PROBLEMS, build_rotation_model, default_latent

# Latent size of MSR-FC per problem, as in the authors' train_synthetic.py.
PAPER_LATENT: dict[str, int] = {"rank1": 3, "rank2": 6, "rank5": 30}


def _torch_default_weight(*shape: int, generator: torch.Generator | None) -> torch.Tensor:
    """A weight drawn like nn.Linear / nn.Conv1d's default init (kaiming-uniform,
    a = √5), from ``generator`` (the global one when None)."""
    weight = torch.empty(*shape)
    return nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)


class FCModel(nn.Module):
    """MAML-FC: a bias-free Linear 70→68 (nn.Linear's initialization)."""

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(_torch_default_weight(OUT_SIZE, IN_SIZE, generator=generator))

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(x, self.weight)


class LCModel(nn.Module):
    """MAML-LC: one 3-tap filter per output position, weight (68, 3).

    Initialized like the authors' LocallyConnected1d (uniform, bound 1/√3).
    """

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        bound = 1 / math.sqrt(TAPS)
        self.weight = nn.Parameter(torch.empty(OUT_SIZE, TAPS).uniform_(-bound, bound, generator=generator))

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return locally_connected(x, self.weight)


class ConvModel(nn.Module):
    """MAML-Conv: Conv1d 1→1, kernel 3, no bias: the right answer for rank1 built in."""

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(_torch_default_weight(1, 1, TAPS, generator=generator))

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return F.conv1d(x, self.weight)


class MSRFCModel(nn.Module):
    """MSR-FC: W = (U v).view(68, 70) with a meta-learned U; only v adapts."""

    def __init__(self, latent: int, generator: torch.Generator | None = None):
        super().__init__()
        self.fc = DenseLinear(IN_SIZE, OUT_SIZE, latent=latent, bias=False, generator=generator)

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        # DenseLinear is written for (batch, features) inputs; fold the channel axis in.
        return self.fc(x.reshape(-1, IN_SIZE)).reshape(*x.shape[:-1], OUT_SIZE)

    def symmetry_columns(self) -> torch.Tensor:
        """(latent, 68, 70): each column of U seen as the weight it adds per unit of v."""
        return self.fc.sym_U.detach().T.reshape(-1, OUT_SIZE, IN_SIZE)


@dataclass(frozen=True)
class ModelKind:
    name: str
    label: str
    summary: str


# MSR-FC first: the model the 1-D problems ask about is launched first and listed first.
MODELS: dict[str, ModelKind] = {m.name: m for m in [
    ModelKind("msr-fc", "MSR-FC", "Linear 70→68 with W = U v; U is meta-learned, only v adapts."),
    ModelKind("maml-fc", "MAML-FC", "Linear 70→68, every weight adapts: no sharing."),
    ModelKind("maml-lc", "MAML-LC", "Locally connected, one 3-tap filter per output position."),
    ModelKind("maml-conv", "MAML-Conv", "Conv1d kernel 3: convolution built in."),
]}
# The models of the 2-D rotation problems (one bias-free conv 1→C, 3×3).
ROTATION_MODELS: dict[str, ModelKind] = {m.name: m for m in [
    ModelKind("maml-conv", "MAML-Conv", "Conv2d 3×3, every weight adapts: translation built in, rotation not."),
    ModelKind("msr-conv", "MSR-Conv", "Kronecker U = A ⊗ B ⊗ C over the kernel (the authors' model); only V adapts."),
    ModelKind("msr-conv-dense", "MSR-Conv (dense U)",
              "vec(W) = U v with a dense U over the whole kernel: can tie channels into rotated copies."),
]}
LATENT_MODELS = ("msr-fc", "msr-conv-dense")
# Every model once, in the order pages, tables and legends list them.
MODEL_ORDER: list[str] = list(dict.fromkeys([*MODELS, *ROTATION_MODELS]))


def models_for(problem: str) -> dict[str, ModelKind]:
    """The models that apply to a problem (1-D or 2-D)."""
    return ROTATION_MODELS if problem in ROTATION_PROBLEMS else MODELS


def model_label(model: str) -> str:
    kind = MODELS.get(model) or ROTATION_MODELS.get(model)
    return kind.label if kind else model


def paper_latent(problem: str) -> int:
    """The latent size used when none is given: the paper's for MSR-FC, the
    number of generating coefficients for the dense MSR-Conv."""
    return default_latent(problem) if problem in ROTATION_PROBLEMS else PAPER_LATENT[problem]


def build_synthetic_model(model: str, latent: int | None = None, problem: str = "rank1",
                          seed: int | None = None) -> nn.Module:
    """A model for the synthetic problems.

    With a seed, the initial weights come from a private generator seeded with
    it: reproducible, and the global random state is neither read nor advanced
    (so models built at once from several threads cannot disturb each other).
    Without one they come from the global generator.
    """
    allowed = models_for(problem)
    if model not in allowed:
        raise ConfigError(f"unknown model {model!r} for {problem}; allowed: {', '.join(allowed)}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if problem in ROTATION_PROBLEMS:
        return build_rotation_model(model, problem, latent, generator)
    if model == "maml-fc":
        return FCModel(generator)
    if model == "maml-lc":
        return LCModel(generator)
    if model == "maml-conv":
        return ConvModel(generator)
    return MSRFCModel(latent if latent is not None else PAPER_LATENT.get(problem, 3), generator)
