"""Architectures for Rotated MNIST, built from their registry (msr.core.choices: the names, without torch).

Every model maps (images, angle index) to logits; only ``dedicated`` looks at
the angle index. ``forward_with_activations`` also returns what each ReLU
produced, so the inspection views work the same for every architecture.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .choices import ARCHITECTURES, CONV_LAYERS, HEAD_LAYERS, Architecture, ModelSpec
from .layers import BankedConv2d, BankedLinear, DenseConv2d, DenseLinear, KroneckerConv2d


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

    def __init__(self, conv: nn.Module, head: nn.Module, ways: int, circuits: int):
        super().__init__()
        self.n_circuits = circuits
        self.conv = conv
        self.head = head
        # The alignment head starts at exactly the identity: no random draw at
        # all (a "meta" module allocates nothing and initializes nothing), then
        # real parameters are put in place.
        self.align = nn.Linear(ways, ways, device="meta")
        self.align.weight = nn.Parameter(torch.eye(ways))
        self.align.bias = nn.Parameter(torch.zeros(ways))

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


# How each layer kind (msr.core.choices) is built: (spec, bank, generator) -> module, every random initial value
# drawn from ``generator``.
CONV_BUILDERS: dict[str, Callable[[ModelSpec, int | None, torch.Generator | None], nn.Module]] = {
    "plain": lambda s, bank, g: BankedConv2d(1, s.channels, s.kernel_size, bank=bank, generator=g),
    "kronecker": lambda s, bank, g: KroneckerConv2d(1, s.channels, s.kernel_size, bank=bank, generator=g),
    "dense": lambda s, bank, g: DenseConv2d(1, s.channels, s.kernel_size, latent=s.conv_latent, bank=bank,
                                            generator=g),
}
HEAD_BUILDERS: dict[str, Callable[[ModelSpec, int | None, torch.Generator | None], nn.Module]] = {
    "plain": lambda s, bank, g: BankedLinear(s.channels * _side(s) ** 2, s.ways, bank=bank, generator=g),
    "dense": lambda s, bank, g: DenseLinear(s.channels * _side(s) ** 2, s.ways, latent=s.latent, bank=bank,
                                            generator=g),
}
assert set(CONV_BUILDERS) == set(CONV_LAYERS) and set(HEAD_BUILDERS) == set(HEAD_LAYERS)


def build_architecture(arch: Architecture, spec: ModelSpec, generator: torch.Generator | None = None) -> MetaModel:
    """The model of an architecture; every random initial value from ``generator`` (the global generator when
    it is None)."""
    conv_name, head_name = spec.layers()
    bank = spec.n_angles if arch.per_angle else None
    conv = CONV_BUILDERS[conv_name](spec, bank, generator)
    head = HEAD_BUILDERS[head_name](spec, bank, generator)
    if arch.per_angle:
        return DedicatedClassifier(conv, head, spec.ways, bank)
    return ConvClassifier(conv, head)


def build_model(spec: ModelSpec, seed: int | None = None) -> MetaModel:
    """Build an architecture.

    With a seed, the initial weights come from a private generator seeded with
    it: reproducible, and the global random state is neither read nor advanced
    (so models built at once from several threads cannot disturb each other).
    Without one they come from the global generator.
    """
    if spec.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {spec.arch!r}; allowed: {', '.join(ARCHITECTURES)}")
    for name, registry in ((spec.conv_layer, CONV_LAYERS), (spec.head_layer, HEAD_LAYERS)):
        if name is not None and name not in registry:
            raise ValueError(f"unknown layer {name!r}; allowed: {', '.join(registry)}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return build_architecture(ARCHITECTURES[spec.arch], spec, generator)
