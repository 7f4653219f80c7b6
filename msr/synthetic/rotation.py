"""The paper's 2-D rotation problems: data made by a rotation-equivariant layer.

Every task is a bias-free conv 1→C, 3×3, no padding, applied to 32×32 inputs of
N(0, 1). Its C = 3·|G| output channels are 3 *fields*; within a field the
channels are the copies of one base filter under every element of a group G:

- ``rot4``: G = C4. The base filter is any 3×3 filter; the copies are its
  rotations by 0/90/180/270° (exactly ``torch.rot90``): a lifting group
  convolution, exactly equivariant to 90° rotations of the input.
- ``rot8``: G = C8. The base filter comes from a steerable basis (a centre tap
  plus, on the ring of its 8 neighbours, cos/sin of k·φ for k = 0..2: 6
  coefficients, like e2cnn's 3×3 basis). Rotating such a filter by 45° only
  shifts its phase, which on the ring is a shift by one pixel, so the copies
  are exact rotations of a band-limited filter sampled on the ring. A shift by
  two is ``torch.rot90``: the layer is exactly equivariant to 90° rotations.
- ``rot8_flip``: G = D8, the copies of C8 plus those of the mirrored filter
  (φ → −φ).

So every group element acts on a 3×3 filter as a permutation of its taps.
Channel ``f·|G| + e`` holds field f's copy under element e, with
``e = s·8 + r`` for D8 (s = 1: mirrored first, then rotated by r·45°).

A dataset is stored as what defines it: each task's generating coefficients
and the seed of its inputs (a few hundred kilobytes). The inputs and outputs of
a task are recomputed when it is drawn; storing them would take 0.8-17 GB.
Coefficients are N(0, 2/n) over an orthonormal basis of n functions, so a
filter's expected energy is 2, the scale of He initialization (which the
authors' generator used through e2cnn).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from ..core.groups import C4, C8, CENTRE, D8, KERNEL, RING, Group, element_permutations
from ..core.layers import BankedConv2d, DenseConv2d, KroneckerConv2d
from ..core.meta import Episode
from .split import task_range

IN_SIDE = 32
OUT_SIDE = IN_SIDE - KERNEL + 1
FIELDS = 3
EXAMPLES_PER_TASK = 20
FILTER_ENERGY = 2.0


@dataclass(frozen=True)
class RotationProblem:
    """One of the 2-D problems: the group its data are made with, and its dataset."""
    group: Group
    steerable: bool  # base filters from the 6-function steerable basis
    tasks: int  # tasks in the authors' dataset

    name = property(lambda self: self.group.name)
    rotations = property(lambda self: self.group.rotations)
    step = property(lambda self: self.group.step)
    flips = property(lambda self: self.group.flips)
    order = property(lambda self: self.group.order)
    degrees = property(lambda self: self.group.degrees)

    def element_label(self, e: int) -> str:
        return self.group.element_label(e)

    @property
    def channels(self) -> int:
        return FIELDS * self.order

    @property
    def coefficients(self) -> int:
        """Generating coefficients per field."""
        return 6 if self.steerable else KERNEL * KERNEL


ROTATION_PROBLEMS: dict[str, RotationProblem] = {
    "rot4": RotationProblem(C4, False, 10_000),
    "rot8": RotationProblem(C8, True, 10_000),
    "rot8_flip": RotationProblem(D8, True, 2_000),
}


def steerable_basis() -> torch.Tensor:
    """(6, 9) orthonormal: the centre tap, then on the ring 1, cos φ, sin φ,
    cos 2φ, sin 2φ (φ = 0°, 45°, ... counter-clockwise from east)."""
    phi = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    ring = [torch.ones(8, dtype=torch.float64)]
    for k in (1, 2):
        ring += [torch.cos(k * phi), torch.sin(k * phi)]
    basis = torch.zeros(6, KERNEL * KERNEL, dtype=torch.float64)
    basis[0, CENTRE] = 1.0
    for i, values in enumerate(ring, start=1):
        basis[i, list(RING)] = values / values.norm()
    return basis.float()


def generating_basis(group: RotationProblem) -> torch.Tensor:
    """(coefficients, 9): what a field's base filter is a combination of."""
    return steerable_basis() if group.steerable else torch.eye(KERNEL * KERNEL)


def group_filters(group: RotationProblem, base: torch.Tensor) -> torch.Tensor:
    """(..., F·|G|, 1, 3, 3) from base filters (..., F, 9): every field's copy
    under every element, field-major."""
    copies = base[..., element_permutations(group.group)]            # (..., F, |G|, 9)
    return copies.reshape(*base.shape[:-2], -1, 1, KERNEL, KERNEL)


@dataclass
class RotationData:
    """One dataset: each task's coefficients (N, 3, n) and input seed (N,)."""
    problem: str
    seed: int
    coeffs: torch.Tensor
    input_seeds: torch.Tensor
    examples: int = EXAMPLES_PER_TASK
    train_fraction: float = 0.8

    @property
    def group(self) -> RotationProblem:
        return ROTATION_PROBLEMS[self.problem]

    @property
    def n_tasks(self) -> int:
        return self.coeffs.shape[0]

    @property
    def n_train(self) -> int:
        return int(self.train_fraction * self.n_tasks)

    @property
    def n_test(self) -> int:
        return self.n_tasks - self.n_train

    def base_filters(self, tasks: torch.Tensor) -> torch.Tensor:
        """(len, 3, 9): each field's base filter."""
        return self.coeffs[tasks] @ generating_basis(self.group)

    def weights(self, tasks: torch.Tensor) -> torch.Tensor:
        """(len, C, 1, 3, 3): each task's layer."""
        return group_filters(self.group, self.base_filters(tasks))

    def inputs(self, tasks: torch.Tensor) -> torch.Tensor:
        """(len, examples, 1, 32, 32), each task's from its own seed."""
        return torch.stack([torch.randn(self.examples, 1, IN_SIDE, IN_SIDE,
                                        generator=torch.Generator().manual_seed(int(s)))
                            for s in self.input_seeds[tasks]])

    def task_tensors(self, tasks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and outputs (len, examples, C, 30, 30) of the given tasks."""
        x = self.inputs(tasks)
        return x, apply_layers(x, self.weights(tasks))


def apply_layers(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Task i's inputs (n, E, 1, H, W) through its own layer (n, C, 1, k, k):
    one batched matmul over the k² shifted views (several times faster on CPU
    than the equivalent grouped convolution)."""
    h, w = x.shape[-2] - KERNEL + 1, x.shape[-1] - KERNEL + 1
    views = torch.stack([x[:, :, 0, i:i + h, j:j + w] for i in range(KERNEL) for j in range(KERNEL)], dim=2)
    out = torch.matmul(weights.flatten(2).unsqueeze(1), views.flatten(3))     # (n, E, C, h·w)
    return out.reshape(*out.shape[:3], h, w)


def generate_rotation(problem: str, seed: int = 0, n_tasks: int | None = None,
                      examples: int = EXAMPLES_PER_TASK) -> RotationData:
    """Draw a dataset from a seeded generator (no global random state)."""
    group = ROTATION_PROBLEMS[problem]
    n_tasks = group.tasks if n_tasks is None else n_tasks
    g = torch.Generator().manual_seed(seed)
    coeffs = torch.randn(n_tasks, FIELDS, group.coefficients, generator=g) * math.sqrt(
        FILTER_ENERGY / group.coefficients)
    input_seeds = torch.randint(0, 2 ** 62, (n_tasks,), generator=g)
    return RotationData(problem, seed, coeffs, input_seeds, examples)


class RotationTaskSampler:
    """Tasks of one part (train/test) without replacement within a batch, a
    fresh support/query split per draw; the same interface as the 1-D one."""

    def __init__(self, data: RotationData, part: str, shots: int, queries: int,
                 generator: torch.Generator, device: torch.device | str = "cpu"):
        self.data = data
        self.offset, self.size = task_range(data.n_tasks, part)
        self.shots, self.queries = shots, queries
        self.generator = generator
        self.device = torch.device(device)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Which tasks, and which examples of each (support first)."""
        g = self.generator
        tasks = torch.randperm(self.size, generator=g)[:n] + self.offset
        order = torch.rand(n, self.data.examples, generator=g).argsort(dim=1)[:, :self.shots + self.queries]
        return tasks, order

    def episode(self, tasks: torch.Tensor, order: torch.Tensor) -> Episode:
        x, y = self.data.task_tensors(tasks)
        rows = torch.arange(len(tasks))[:, None]
        xs, ys = x[rows, order], y[rows, order]
        k = self.shots
        to = lambda t: t.to(self.device)  # noqa: E731
        return Episode(to(xs[:, :k]), to(ys[:, :k]), to(xs[:, k:]), to(ys[:, k:]))

    def sample(self, n: int) -> Episode:
        return self.episode(*self.draw(n))


# -------------------------------------------------------------------- models
class RotationModel(nn.Module):
    """One bias-free conv 1→C, 3×3 (the whole model, as in the authors' code)."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)


def default_latent(problem: str) -> int:
    """The dense U's latent size: the number of coefficients that generate a task."""
    group = ROTATION_PROBLEMS[problem]
    return FIELDS * group.coefficients


def build_rotation_model(model: str, problem: str, latent: int | None = None,
                         generator: torch.Generator | None = None) -> RotationModel:
    channels = ROTATION_PROBLEMS[problem].channels
    if model == "maml-conv":
        conv = BankedConv2d(1, channels, KERNEL, bias=False, generator=generator)
    elif model == "msr-conv":
        conv = KroneckerConv2d(1, channels, KERNEL, bias=False, generator=generator)
    elif model == "msr-conv-dense":
        conv = DenseConv2d(1, channels, KERNEL, latent=latent or default_latent(problem), bias=False,
                           generator=generator)
    else:
        raise ValueError(f"unknown 2-D model {model!r}")
    return RotationModel(conv)


def layer_filters(model: nn.Module, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """(C, 1, 3, 3): the weight a bias-free 3×3 layer applies, read by feeding it
    the nine one-pixel 3×3 images (one function for every model, and it works
    inside ``functional_call`` with adapted parameters)."""
    probe = torch.eye(KERNEL * KERNEL, device=next(model.parameters()).device).reshape(-1, 1, KERNEL, KERNEL)
    out = model(probe) if params is None else functional_call(model, params, (probe,))   # (9, C, 1, 1)
    return out.reshape(KERNEL * KERNEL, -1).T.reshape(-1, 1, KERNEL, KERNEL)
