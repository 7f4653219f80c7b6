"""What a run's settings choose among, without torch: the data sources, rotation modes and angle lists, the
meta-learning options, and the architectures and layers by name (with what they are).

The configs (msr.mnist.config, their checks and the command line's flags) read only this, so ``msr train
--help`` and a config's check load no torch; msr.core.data, msr.core.meta and msr.core.models build on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# ------------------------------------------------------------------ data
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
BUNDLED, FULL_MNIST = "bundled", "mnist"  # the data sources: the bundled sample, full MNIST
SOURCES = (BUNDLED, FULL_MNIST)
ROTATION_MODES = ("mixed", "per-task", "query")
SPLIT_SEED = 2021  # fixed, so every run of a source sees the same held-out images
VALIDATION_SEED = 2022  # the same validation images for every run that asks for them
VALIDATION_FRACTION = 0.2
EVAL_SPLITS = ("test", "validation")


def make_angles(count: int = 5, step: float = 9.0) -> list[float]:
    """{0, s, 2s, …, (n−1)s}, the student project's angle set.

    Nothing is checked here; RunConfig.validate() refuses a count and step
    whose angles repeat a rotation or leave -360° < angle < 360°.
    """
    return [float(i * step) for i in range(count)]


def parse_angles(text: str) -> list[float]:
    """'0, 45, 90' → [0.0, 45.0, 90.0]; raises ValueError with a readable line.

    Commas, semicolons and spaces separate angles ('0 45 90' works too); an
    empty entry between two commas ('0,,9') is refused rather than skipped,
    and so is a leading one. One trailing comma is allowed.
    """
    usage = "give degrees separated by commas, e.g. 0,45,90"
    entries = [e.strip() for e in text.replace(";", ",").split(",")]
    if not any(entries):
        raise ValueError(f"the angle list is empty; {usage}")
    if len(entries) > 1 and entries[-1] == "":
        entries.pop()  # a trailing comma
    if "" in entries:
        raise ValueError(f"angle list {text!r} has an empty entry between commas; {usage}")
    parts = [p for e in entries for p in e.split()]
    try:
        angles = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"cannot parse angle list {text!r}; {usage}") from None
    if not all(math.isfinite(a) for a in angles):
        raise ValueError(f"angle list {text!r} holds a non-finite value; give finite degrees, e.g. 0,45,90")
    return angles


# ------------------------------------------------------------ meta-learning
LR_MODES = ("fixed", "per_layer", "per_param")
ENGINES = ("func", "higher")
OUTER_OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cpu", "cuda")
# The stop button is polled between meta-steps, so no single step may run for
# hours: the inner loop is capped.
MAX_INNER_STEPS = 100


def resolve_device(device: str) -> str:
    """'auto' as the device it means here: cuda where there is a GPU, else cpu."""
    if device != "auto":
        return device
    import torch  # only to ask for a GPU: the settings themselves never need torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class MetaConfig:
    inner_lr: float = 0.01
    lr_mode: str = "per_layer"
    inner_steps: int = 1
    first_order: bool = False
    outer_lr: float = 1e-4
    outer_opt: str = "adam"
    engine: str = "func"
    loss: str = "ce"


# ------------------------------------------------------------------ models
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


@dataclass(frozen=True)
class LayerKind:
    """One kind of first layer or head, by name: what pages and flags call it (msr.core.models builds it)."""
    name: str
    label: str  # what a page calls it: "Kronecker-U conv"
    summary: str
    symmetry: bool  # has outer-only symmetry matrices (an MSR layer)


CONV_LAYERS: dict[str, LayerKind] = {k.name: k for k in [
    LayerKind("plain", "plain conv", "every weight adapts in the inner loop; no symmetry matrix (MAML)", False),
    LayerKind("kronecker", "Kronecker-U conv",
              "U = A ⊗ B ⊗ C, the identity at init (the authors' ShareConv2d); the whole kernel adapts", True),
    LayerKind("dense", "dense-U conv",
              "vec(W) = U v over the whole kernel; only the conv latent v adapts (Proposition 1: it can tie "
              "channels into rotated copies)", True),
]}

HEAD_LAYERS: dict[str, LayerKind] = {k.name: k for k in [
    LayerKind("plain", "plain linear head", "every weight of the ways × features matrix adapts (MAML)", False),
    LayerKind("dense", "dense-U head",
              "W = (U v).view(ways, features); only the latent v adapts (the authors' ShareLinearFull)", True),
]}


@dataclass(frozen=True)
class Architecture:
    """How a model is put together: its default first layer and head, and
    whether every angle gets a circuit of its own (msr.core.models builds it)."""
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
