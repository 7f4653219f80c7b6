"""Measures of rotation symmetry in a filter bank: has a first layer become a rotation group convolution?

Everything here works on a bank of filters W (C, c_in, k, k), the linear part
of a first conv layer (bias left out: it carries no spatial structure).

**Only what is not rotation-invariant is read.** A filter that is its own
rotation (a blob, a constant, a centre-surround) gives an equivariant map and
"matches" its own rotation, whatever the layer has learned: an offset of 80% of
a random filter's energy made random banks read as nearly equivariant. So every
measure below works on the anisotropic part ``W − avg_C4(W)``, each filter
minus its own average over its four quarter turns; the share of energy in that
average, the *isotropic share*, is reported apart. The quarter-turn average
commutes with every rotation and flip of the 2-D problems' groups, so an exact
group convolution's anisotropic part is again an exact group convolution.

- **Equivariance error** at an angle θ with rotation R:
  ``min_P ||f(R x) − P R f(x)|| / ||f(x)||`` over probe images x, where
  f(x) = conv(x, W − avg_C4(W)) and P permutes output channels (found by linear assignment,
  scipy). Only a disc inside the maps counts, so zero fill and the borders of
  the rotated images do not. It is 0 for an exact group convolution: rotating
  the input rotates every map and permutes the channels. NaN when the filters
  have no anisotropic part at all (nothing to read).
- **Orbit score**: how well the filters split into rotated copies of one
  another. With g the rotation of a filter (90° by default) of order n, and the
  permutation P that best matches g·W_i to W_P(i), the group average
  ``W̄ = (1/n) Σ_r g^{−r} W_{P^r}`` keeps the share ρ = ||W̄||²/||W||² of the
  energy: 1 exactly when g·W_i = W_P(i) for every i. Random filters keep a
  share ρ₀ well above 1/n (3×3 filters have only 9 values, so the matching
  finds look-alikes by chance); the score ``(ρ − ρ₀)/(1 − ρ₀)``, clipped to
  [0, 1], is 1 for an exact lifting layer and about 0 for random filters.

Rotations by multiples of 90° are exact on the pixel grid (``torch.rot90``);
other angles use bilinear interpolation (``msr.core.data.rotate``), so even an exact
group convolution has some error there: compare with :func:`reference_metrics`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.func import functional_call

from .data import rotate as rotate_bilinear
from .errors import ConfigError
from .layers import is_symmetry_param
from .groups import Group, ring_permutation

PROBE_SEED = 20_210_503  # the same probe images at every step and for every model
PROBES = 32
GENERATED_DRAWS = 8


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate (n, c, H, W) counter-clockwise: exact for multiples of 90°."""
    quarter, rest = divmod(float(degrees), 90.0)
    if rest == 0.0:
        return torch.rot90(x, int(quarter) % 4, dims=(-2, -1))
    return rotate_bilinear(x, torch.full((x.shape[0],), float(degrees), device=x.device))


def inner_mask(side: int, margin: int = 2) -> torch.Tensor:
    """(side, side) bool: a centred disc ``margin`` pixels inside the inscribed
    circle, where a rotated map has neither zero fill nor border effects."""
    c = (side - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return (yy - c) ** 2 + (xx - c) ** 2 <= (side / 2 - margin) ** 2


# ------------------------------------------------------ isotropic part
ISOTROPIC_ONLY = 1 - 1e-6  # an isotropic share above this (float32 rounding aside) leaves nothing to read


def quarter_turn_average(w: torch.Tensor) -> torch.Tensor:
    """Each filter's average over its four quarter turns: its rotation-invariant part."""
    return sum(torch.rot90(w, r, dims=(-2, -1)) for r in range(4)) / 4


def anisotropic(w: torch.Tensor) -> torch.Tensor:
    """What the lens reads: each filter minus its rotation-invariant part."""
    return w - quarter_turn_average(w)


def isotropic_share(weight: torch.Tensor) -> float:
    """The share of the bank's energy that is rotation-invariant filter by
    filter (1 for blobs and constants, about 3/9 for random 3×3 filters);
    NaN for an all-zero bank."""
    w = weight.detach().double().cpu()
    total = float(w.pow(2).sum())
    return float(quarter_turn_average(w).pow(2).sum()) / total if total > 0 else math.nan


# ------------------------------------------------------------ equivariance
@dataclass
class Equivariance:
    angle: float
    error: float
    perm: list[int]  # f(R x)_i is matched with R f(x)_perm[i]


def equivariance_error(weight: torch.Tensor, probes: torch.Tensor, angle: float) -> Equivariance:
    """The relative error of the best channel permutation at one angle, on
    the filters' anisotropic part (NaN when they have none)."""
    w = weight.detach().double().cpu()
    if not isotropic_share(w) < ISOTROPIC_ONLY:
        return Equivariance(float(angle), math.nan, list(range(w.shape[0])))
    w = anisotropic(w)
    x = probes.detach().double().cpu()
    k = w.shape[-1]
    fx = F.conv2d(x, w)                                   # (n, C, h, w)
    frx = F.conv2d(rotate(x, angle), w)
    rfx = rotate(fx, angle)
    mask = inner_mask(fx.shape[-1], margin=k // 2 + 1)
    a = frx[..., mask].transpose(0, 1).reshape(w.shape[0], -1)   # (C, n·pixels)
    b = rfx[..., mask].transpose(0, 1).reshape(w.shape[0], -1)
    ref = float(b.pow(2).sum())
    if ref == 0.0:
        return Equivariance(float(angle), math.nan, list(range(w.shape[0])))
    cost = (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0).numpy()
    rows, cols = linear_sum_assignment(cost)
    perm = [int(c) for _, c in sorted(zip(rows, cols))]
    return Equivariance(float(angle), math.sqrt(float(cost[rows, cols].sum()) / ref), perm)


# ---------------------------------------------------------------- orbits
def rot90_filters(w: torch.Tensor, times: int = 1) -> torch.Tensor:
    return torch.rot90(w, times % 4, dims=(-2, -1))


@dataclass(frozen=True)
class FilterRotation:
    """A rotation of filters and its order (how many make a full turn)."""
    name: str
    order: int
    apply: Callable[[torch.Tensor, int], torch.Tensor]  # (filters, times) -> filters


def _ring_shift(w: torch.Tensor, times: int = 1) -> torch.Tensor:
    flat = w.reshape(*w.shape[:-2], 9)[..., ring_permutation(times % 8)]
    return flat.reshape(w.shape)


C4 = FilterRotation("C4", 4, rot90_filters)
C8_RING = FilterRotation("C8", 8, _ring_shift)  # 3×3 only: 45° as a shift of the ring of 8 neighbours


@dataclass
class Orbits:
    score: float
    perm: list[int]  # g·W_i is matched with W_perm[i]

    def cycles(self) -> list[list[int]]:
        """The channels grouped into orbits, each in rotation order."""
        return permutation_cycles(self.perm)


def _orbit_share(w: torch.Tensor, rotation: FilterRotation) -> tuple[float, list[int]]:
    """ρ = ||W̄||² / ||W||² and the matching permutation (float64, CPU)."""
    c = w.shape[0]
    flat = w.reshape(c, -1)
    total = float(flat.pow(2).sum())
    if total == 0.0:
        return 0.0, list(range(c))
    turned = rotation.apply(w, 1).reshape(c, -1)
    rows, cols = linear_sum_assignment((turned @ flat.T).numpy(), maximize=True)
    perm = torch.tensor([int(j) for _, j in sorted(zip(rows, cols))])
    n = rotation.order
    index = torch.arange(c)
    mean = torch.zeros_like(w)
    for r in range(n):
        mean += rotation.apply(w[index], n - r)          # g^{-r} W_{P^r}
        index = perm[index]
    return float((mean / n).pow(2).sum()) / total, perm.tolist()


@lru_cache(maxsize=64)
def chance_share(shape: tuple[int, ...], rotation: FilterRotation, banks: int = 32) -> float:
    """The mean ρ of the anisotropic parts of random N(0, 1) filter banks of
    this shape. With few input values per filter (9 for 3×3) and many
    filters, the best matching finds similar pairs by chance, so ρ sits well
    above 1/n; the score is measured from this level."""
    g = torch.Generator().manual_seed(PROBE_SEED + 2)
    return float(np.mean([_orbit_share(anisotropic(torch.randn(shape, generator=g, dtype=torch.float64)),
                                       rotation)[0] for _ in range(banks)]))


def orbit_score(weight: torch.Tensor, rotation: FilterRotation = C4) -> Orbits:
    """(ρ − ρ₀)/(1 − ρ₀) clipped to [0, 1] on the filters' anisotropic part,
    ρ₀ = :func:`chance_share`: 1 for exact rotated copies, about 0 for random
    filters of the same shape, also with rotation-invariant parts (offsets,
    blobs) added. NaN when the filters have no anisotropic part."""
    w = weight.detach().double().cpu()
    if not isotropic_share(w) < ISOTROPIC_ONLY:
        return Orbits(math.nan, list(range(w.shape[0])))
    rho, perm = _orbit_share(anisotropic(w), rotation)
    chance = chance_share(tuple(w.shape), rotation)
    return Orbits(min(1.0, max(0.0, (rho - chance) / (1 - chance))), perm)


def permutation_cycles(perm: list[int]) -> list[list[int]]:
    seen, out = set(), []
    for start in range(len(perm)):
        if start in seen:
            continue
        cycle, i = [], start
        while i not in seen:
            seen.add(i)
            cycle.append(i)
            i = perm[i]
        out.append(cycle)
    return out


# ------------------------------------------------------------- references
def lifting_conv(channels: int, kernel: int = 3, generator: torch.Generator | None = None) -> torch.Tensor:
    """A hand-built C4 lifting convolution (exactly 90°-equivariant): channels//4
    random base filters, each with its rotations by 0/90/180/270°."""
    fields = max(1, channels // 4)
    base = torch.randn(fields, 1, 1, kernel, kernel, generator=generator)
    return torch.cat([rot90_filters(base, r) for r in range(4)], dim=1).reshape(fields * 4, 1, kernel, kernel)


def random_conv(channels: int, kernel: int = 3, generator: torch.Generator | None = None) -> torch.Tensor:
    """Filters drawn like nn.Conv2d's default initialization."""
    w = torch.empty(channels, 1, kernel, kernel)
    return nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)


def smooth_probes(n: int = PROBES, side: int = 32, seed: int = PROBE_SEED) -> torch.Tensor:
    """(n, 1, side, side) low-pass random images: smooth enough that bilinear
    rotation by 45° barely changes them, unlike white noise."""
    from torchvision.transforms.functional import gaussian_blur

    g = torch.Generator().manual_seed(seed)
    x = gaussian_blur(torch.randn(n, 1, side, side, generator=g), kernel_size=7, sigma=1.2)
    return x / x.std()


def filter_metrics(banks: torch.Tensor, probes: torch.Tensor, angles: list[float],
                   rotations: tuple[FilterRotation, ...] = (C4,)) -> dict:
    """Lens numbers for one or more filter banks (B, C, c_in, k, k), averaged
    over the banks: ``equivariance`` {angle: error}, ``orbit_score`` (the first
    rotation), ``orbit_scores`` {rotation name: score} and
    ``isotropic_share``."""
    if banks.dim() == 4:
        banks = banks.unsqueeze(0)
    errors = {a: _mean([equivariance_error(b, probes, a).error for b in banks]) for a in angles}
    scores = {r.name: _mean([orbit_score(b, r).score for b in banks]) for r in rotations}
    return {"equivariance": errors, "orbit_score": scores[rotations[0].name], "orbit_scores": scores,
            "isotropic_share": _mean([isotropic_share(b) for b in banks])}


def _mean(values: list[float]) -> float:
    """The mean of the numbers that are not NaN (NaN when none is)."""
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def reference_metrics(channels: int, kernel: int, probes: torch.Tensor, angles: list[float],
                      rotations: tuple[FilterRotation, ...] = (C4,), banks: int = 4,
                      group: torch.Tensor | None = None) -> dict:
    """The lens on exact group convs and on random convs of the same shape:
    the two ends every model is read against. ``group`` (B, C, c_in, k, k):
    the group convs to use (a 2-D problem's own layers); C4 lifting convs
    when None."""
    g = torch.Generator().manual_seed(PROBE_SEED + 1)
    if group is None:
        group = torch.stack([lifting_conv(channels, kernel, g) for _ in range(banks)])
    rand = torch.stack([random_conv(channels, kernel, g) for _ in range(banks)])
    return {"group_conv": filter_metrics(group, probes, angles, rotations),
            "random_conv": filter_metrics(rand, probes, angles, rotations)}


# ------------------------------------------------- what a U lets v reach
def generated_filters(layer: nn.Module, draws: int = GENERATED_DRAWS, seed: int = PROBE_SEED
                      ) -> torch.Tensor | None:
    """(draws, [bank,] C, c_in, k, k): the layer's effective weight for random
    filter parameters v ~ N(0, I), its symmetry matrices kept. This is what the
    inner loop can reach, whatever v it starts from. None without a symmetry
    matrix (a plain conv reaches every filter)."""
    params = dict(layer.named_parameters())
    if not any(is_symmetry_param(n) for n in params) or not hasattr(layer, "effective_weight"):
        return None
    g = torch.Generator().manual_seed(seed)
    v = params["weight"]
    out = []
    with torch.no_grad():
        for _ in range(draws):
            random_v = torch.randn(v.shape, generator=g).to(v)
            w = functional_call(_EffectiveWeight(layer), {"layer.weight": random_v}, (), strict=False)
            out.append(w.detach().cpu())
    return torch.stack(out)


class _EffectiveWeight(nn.Module):
    """Calls a layer's ``effective_weight`` as ``forward``, so functional_call
    can swap its parameters."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self) -> torch.Tensor:
        return self.layer.effective_weight()


# ------------------------------------------------ by group
def group_angles(group: Group) -> list[float]:
    """Angles a group's layers are read at: 90° (exact on the grid), and 45° for C8/D8."""
    return [45.0, 90.0] if group.rotations == 8 else [90.0]


def group_rotations(group: Group) -> tuple[FilterRotation, ...]:
    """The filter rotations a group's orbit scores are read with: C4, and the ring's C8 for C8/D8."""
    return (C4, C8_RING) if group.rotations == 8 else (C4,)


def angle_key(angle: float) -> str:
    return f"{float(angle):g}"


# ------------------------------------------------ invariance of predictions
def agreement(preds: dict[float, torch.Tensor], zero: float, labels: torch.Tensor, ways: int) -> dict:
    """Per rotated angle: ``invariance`` (share of queries whose prediction is
    unchanged from 0°), ``chance`` (the share two independent predictors with
    these label frequencies, task by task, would agree on), ``kappa``
    ((share − chance) / (1 − chance); NaN when chance is 1, as for a model
    that names one label per task), and ``accuracy`` at every angle, 0°
    included. preds: angle → (tasks, queries) predicted labels."""
    base = preds[zero]

    def freq(p: torch.Tensor) -> torch.Tensor:  # (tasks, ways) label frequencies per task
        return torch.nn.functional.one_hot(p, ways).float().mean(1)

    out = {"invariance": {}, "chance": {}, "kappa": {}, "accuracy": {}}
    for angle, p in preds.items():
        out["accuracy"][angle_key(angle % 360)] = float((p == labels).float().mean())
        if angle % 360 == 0:
            continue
        observed = float((p == base).float().mean())
        chance = float((freq(p) * freq(base)).sum(1).mean())
        key = angle_key(angle % 360)
        out["invariance"][key], out["chance"][key] = observed, chance
        out["kappa"][key] = (observed - chance) / (1 - chance) if chance < 1 - 1e-9 else math.nan
    return out


# ------------------------------------------------ what the lens reads
class LensError(ConfigError):
    """The lens does not apply to this run, or cannot read it (one line)."""


class LensSubject:
    """A run as the lens (msr.analysis.lens) reads it, one checkpoint at a
    time; each run kind that the lens reads has its own."""
    angles: list[float]  # the angles read
    rotations: tuple[FilterRotation, ...]  # the rotations of the orbit scores
    probes: torch.Tensor  # the probe images
    channels: int
    kernel: int
    run_angles: list[float] = []  # the run's own angles (Rotated MNIST)

    def group_layers(self) -> torch.Tensor | None:
        """Exact group convs of this run's shape (None: C4 lifting convs)."""
        return None

    def load(self, checkpoint: dict) -> int:
        """Take the weights of a checkpoint; return its step."""
        raise NotImplementedError

    def banks(self) -> torch.Tensor:
        """The first layer's filter banks read, (…, C, c_in, k, k)."""
        raise NotImplementedError

    def conv(self) -> nn.Module:
        """The first conv layer (what its U generates is read too)."""
        raise NotImplementedError

    def invariance(self) -> dict | None:
        """:func:`agreement` of the predictions (None: not read)."""
        return None
