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
    conv_layer: str | None = None  # None: the architecture's own
    head_layer: str | None = None

    def layers(self) -> tuple[str, str]:
        """(first layer, head) as built: the given ones, else the architecture's."""
        a = ARCHITECTURES[self.arch]
        return self.conv_layer or a.conv_layer, self.head_layer or a.head_layer


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


@dataclass(frozen=True)
class LayerKind:
    """One way to build a first layer or a head. ``build(spec, bank,
    generator)`` draws every random initial value from ``generator``."""
    name: str
    label: str  # what a page calls it: "Kronecker-U conv"
    summary: str
    symmetry: bool  # has outer-only symmetry matrices (an MSR layer)
    build: Callable[[ModelSpec, int | None, torch.Generator | None], nn.Module]


CONV_LAYERS: dict[str, LayerKind] = {k.name: k for k in [
    LayerKind("plain", "plain conv", "every weight adapts in the inner loop; no symmetry matrix (MAML)", False,
              lambda s, bank, g: BankedConv2d(1, s.channels, s.kernel_size, bank=bank, generator=g)),
    LayerKind("kronecker", "Kronecker-U conv",
              "U = A ⊗ B ⊗ C, the identity at init (the authors' ShareConv2d); the whole kernel adapts", True,
              lambda s, bank, g: KroneckerConv2d(1, s.channels, s.kernel_size, bank=bank, generator=g)),
    LayerKind("dense", "dense-U conv",
              "vec(W) = U v over the whole kernel; only the conv latent v adapts (Proposition 1: it can tie "
              "channels into rotated copies)", True,
              lambda s, bank, g: DenseConv2d(1, s.channels, s.kernel_size, latent=s.conv_latent, bank=bank,
                                             generator=g)),
]}

HEAD_LAYERS: dict[str, LayerKind] = {k.name: k for k in [
    LayerKind("plain", "plain linear head", "every weight of the ways × features matrix adapts (MAML)", False,
              lambda s, bank, g: BankedLinear(s.channels * _side(s) ** 2, s.ways, bank=bank, generator=g)),
    LayerKind("dense", "dense-U head",
              "W = (U v).view(ways, features); only the latent v adapts (the authors' ShareLinearFull)", True,
              lambda s, bank, g: DenseLinear(s.channels * _side(s) ** 2, s.ways, latent=s.latent, bank=bank,
                                             generator=g)),
]}


@dataclass(frozen=True)
class Architecture:
    """How a model is put together: its default first layer and head, and
    whether every angle gets a circuit of its own. ``build(spec, generator)``
    draws every random initial value from ``generator`` (the global generator
    when it is None)."""
    name: str
    summary: str
    conv_layer: str
    head_layer: str
    per_angle: bool = False  # one circuit per angle (banked layers) and an alignment head
    note: str = ""  # a word of context wherever the name is shown, e.g. "MAML"

    @property
    def shown_as(self) -> str:
        """The name as every page and chart shows it: "conv (MAML)"."""
        return f"{self.name} ({self.note})" if self.note else self.name

    def build(self, spec: ModelSpec, generator: torch.Generator | None = None) -> MetaModel:
        conv_name, head_name = spec.layers()
        bank = spec.n_angles if self.per_angle else None
        conv = CONV_LAYERS[conv_name].build(spec, bank, generator)
        head = HEAD_LAYERS[head_name].build(spec, bank, generator)
        if self.per_angle:
            return DedicatedClassifier(conv, head, spec.ways, bank)
        return ConvClassifier(conv, head)


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture("shared", "Single circuit: Kronecker-U conv 1→C 3×3, ReLU, dense-U linear head (MSR).",
                 "kronecker", "dense"),
    Architecture("dedicated", "One circuit per angle, each image through its own, and a shared alignment head.",
                 "kronecker", "dense", per_angle=True),
    Architecture("dense", "Dense-U conv (vec(W) = U v over the whole kernel) and dense-U linear head (MSR).",
                 "dense", "dense"),
    Architecture("conv", "Plain MAML baseline: conv and linear head of the same shapes, no symmetry matrices.",
                 "plain", "plain", note="MAML"),
]}


def model_label(arch: str, conv_layer: str | None = None, head_layer: str | None = None) -> str:
    """What a page calls a model: the architecture's name when its layers
    are the architecture's own or another single-circuit architecture's
    ("conv" for plain + plain), else the layers by name."""
    a = ARCHITECTURES.get(arch)
    if a is None:
        return str(arch)
    layers = (conv_layer or a.conv_layer, head_layer or a.head_layer)
    if layers == (a.conv_layer, a.head_layer):
        return a.name
    if not a.per_angle:
        same = next((b.name for b in ARCHITECTURES.values()
                     if not b.per_angle and (b.conv_layer, b.head_layer) == layers), None)
        if same:
            return same
    pair = f"{layers[0]} conv + {layers[1]} head"
    return f"{a.name} ({pair})" if a.per_angle else pair


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
    return ARCHITECTURES[spec.arch].build(spec, generator)
