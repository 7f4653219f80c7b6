"""Architectures for Rotated MNIST and their registry.

Every model maps (images, angle index) to logits; only ``dedicated`` looks at
the angle index. ``forward_with_activations`` also returns what each ReLU
produced, so the inspection views work the same for every architecture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BankedConv2d, BankedLinear, DenseConv2d, DenseLinear, KroneckerConv2d


@dataclass(frozen=True)
class ModelSpec:
    """What a model is built from (a subset of the run config)."""
    arch: str = "shared"
    ways: int = 10
    n_angles: int = 5
    channels: int = 32
    kernel_size: int = 3
    latent: int = 3
    conv_latent: int = 36
    image_size: int = 28


class MetaModel(nn.Module):
    """Shared behaviour: activation capture and the first layer."""

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_activations(x, angle_idx)[0]

    def forward_with_activations(self, x, angle_idx=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def first_layer(self) -> nn.Module:
        return self.conv

    @property
    def circuits(self) -> int:
        """Number of independent circuits (1 unless dedicated)."""
        return 1


class ConvClassifier(MetaModel):
    """conv 3×3 → ReLU → flatten → linear, with a choice of layer types.

    This one class is the student project's single circuit (``shared``), the
    dense-U variant and the plain MAML baseline; only the layers differ.
    """

    def __init__(self, conv: nn.Module, head: nn.Module):
        super().__init__()
        self.conv = conv
        self.head = head

    def forward_with_activations(self, x, angle_idx=None):
        h = F.relu(self.conv(x))
        return self.head(h.flatten(1)), {"relu1": h}


class DedicatedClassifier(MetaModel):
    """One circuit per rotation angle plus one shared alignment head.

    Each image runs through its own angle's circuit only (banked layers pick
    the circuit per sample), then the alignment head, shared by all circuits,
    maps the circuit's output onto the task's labels. It starts at the
    identity so that at init every circuit is a plain single-circuit model.
    """

    def __init__(self, spec: ModelSpec, generator: torch.Generator | None = None):
        super().__init__()
        n = spec.n_angles
        side = spec.image_size - spec.kernel_size + 1
        self.n_circuits = n
        self.conv = KroneckerConv2d(1, spec.channels, spec.kernel_size, bank=n, generator=generator)
        self.head = DenseLinear(spec.channels * side * side, spec.ways, latent=spec.latent, bank=n,
                                generator=generator)
        # The alignment head starts at exactly the identity: no random draw at
        # all (a "meta" module allocates nothing and initializes nothing), then
        # real parameters are put in place.
        self.align = nn.Linear(spec.ways, spec.ways, device="meta")
        self.align.weight = nn.Parameter(torch.eye(spec.ways))
        self.align.bias = nn.Parameter(torch.zeros(spec.ways))

    @property
    def circuits(self) -> int:
        return self.n_circuits

    def forward_with_activations(self, x, angle_idx=None):
        if angle_idx is None:
            angle_idx = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        h = F.relu(self.conv(x, angle_idx))
        return self.align(self.head(h.flatten(1), angle_idx)), {"relu1": h}


def _side(spec: ModelSpec) -> int:
    return spec.image_size - spec.kernel_size + 1


def _shared(spec: ModelSpec, generator: torch.Generator | None = None) -> MetaModel:
    return ConvClassifier(KroneckerConv2d(1, spec.channels, spec.kernel_size, generator=generator),
                          DenseLinear(spec.channels * _side(spec) ** 2, spec.ways, latent=spec.latent,
                                      generator=generator))


def _dense(spec: ModelSpec, generator: torch.Generator | None = None) -> MetaModel:
    return ConvClassifier(DenseConv2d(1, spec.channels, spec.kernel_size, latent=spec.conv_latent,
                                      generator=generator),
                          DenseLinear(spec.channels * _side(spec) ** 2, spec.ways, latent=spec.latent,
                                      generator=generator))


def _conv(spec: ModelSpec, generator: torch.Generator | None = None) -> MetaModel:
    return ConvClassifier(BankedConv2d(1, spec.channels, spec.kernel_size, generator=generator),
                          BankedLinear(spec.channels * _side(spec) ** 2, spec.ways, generator=generator))


@dataclass(frozen=True)
class Architecture:
    """``build(spec, generator)`` draws every random initial value from
    ``generator`` (the global generator when it is None)."""
    name: str
    summary: str
    build: Callable[[ModelSpec, torch.Generator | None], MetaModel]


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture("shared", "Single circuit: Kronecker conv 1→32 3×3, ReLU, dense-U linear (latent 3).", _shared),
    Architecture("dedicated", "One Kronecker circuit per angle, each image through its own, shared alignment head.",
                 DedicatedClassifier),
    Architecture("dense", "Dense-U conv (vec(W) = U v over the whole kernel) and dense-U linear.", _dense),
    Architecture("conv", "Plain MAML baseline: conv and linear of the same shapes, no symmetry matrices.", _conv),
]}


def build_model(spec: ModelSpec, seed: int | None = None) -> MetaModel:
    """Build an architecture.

    With a seed, the initial weights come from a private generator seeded with
    it: reproducible, and the global random state is neither read nor advanced
    (so models built at once from several threads cannot disturb each other).
    Without one they come from the global generator.
    """
    if spec.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {spec.arch!r}; allowed: {', '.join(ARCHITECTURES)}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return ARCHITECTURES[spec.arch].build(spec, generator)
