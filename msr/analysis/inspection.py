"""Looking inside a Rotated MNIST model at any checkpoint: digits, activations, filters, symmetry matrices, confusions.

Everything here reads a run folder and returns arrays or DataFrames, so the
pages only draw, and tests check the numbers directly. Weights are read from
checkpoints; nothing here trains or writes. (What the run's records say, as
tables, is in msr.analysis.tables.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from ..core.data import MnistSplits, Split, TaskSampler, prepare
from ..core.layers import DenseConv2d, DenseLinear, is_symmetry_param
from ..core.meta import Episode
from ..mnist.snapshot import ModelSnapshot, model_snapshot
from ..store.checkpoints import load_checkpoint, restore

CONFUSION_SEED = 4242  # the same test tasks at every step, so confusion matrices compare across steps
DIGIT_SEED = 7  # which held-out digits the data and weights views show


# --------------------------------------------------------------- snapshots
def load_snapshot(run_path: str | Path, step: int | None = None) -> ModelSnapshot:
    """Rebuild the model from the checkpoint's own config (the nearest kept
    step when ``step`` was thinned away; the latest when None)."""
    checkpoint = load_checkpoint(run_path, step)
    return restore(lambda: model_snapshot(checkpoint, run_path), f"the checkpoint of step {checkpoint['step']}",
                   run_path)


def _with_circuits(t: torch.Tensor, banked: bool) -> np.ndarray:
    """Give every weight a leading circuit axis, so one code path serves all
    architectures (dedicated banks already have it)."""
    t = t.detach().cpu()
    return (t if banked else t.unsqueeze(0)).numpy().copy()


# ------------------------------------------------------------------ digits
def sample_digits(split: Split, per_class: int = 1, seed: int = DIGIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` digits of every class present, picked reproducibly.

    Returns (images uint8 (n, 28, 28), labels (n,)), ordered by label."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=g)
    labels = split.labels[order]
    picked = []
    for c in labels.unique().tolist():
        picked.append(order[(labels == c).nonzero().squeeze(1)[:per_class]])
    idx = torch.cat(picked)
    return split.images[idx], split.labels[idx]


def rotated_grid(images_u8: torch.Tensor, angles: Iterable[float]) -> np.ndarray:
    """(n, angles, 28, 28): every digit at every angle, normalized as the model sees it."""
    angles = [float(a) for a in angles]
    n = images_u8.shape[0]
    reps = images_u8.repeat_interleave(len(angles), dim=0)
    deg = torch.tensor(angles, dtype=torch.float32).repeat(n)
    x = prepare(reps, deg)
    return x.reshape(n, len(angles), 28, 28).numpy()


# ------------------------------------------------------------- activations
@dataclass
class Activations:
    """What one ReLU produced for one digit, through every circuit.

    ``maps`` is (circuits, channels, H, W). For the dedicated model the digit
    goes through each angle's circuit; ``own_circuit`` is the one the model
    itself would route it to (always 0 for single-circuit models)."""
    layer: str
    maps: np.ndarray
    own_circuit: int
    angle: float
    label: int

    @property
    def mean(self) -> np.ndarray:
        """(circuits, H, W): averaged over channels, as in the student report."""
        return self.maps.mean(axis=1)


def activations(snap: ModelSnapshot, image_u8: torch.Tensor, angle_index: int, label: int = -1) -> dict[str, Activations]:
    """Activations after each ReLU for one digit rotated to ``angles[angle_index]``."""
    angles = snap.angles
    if not 0 <= angle_index < len(angles):
        raise ValueError(f"angle index {angle_index} is out of range; the run has {len(angles)} angles")
    x = prepare(image_u8.reshape(1, 28, 28), torch.tensor([angles[angle_index]]))
    n = snap.circuits
    if n > 1:
        route = torch.arange(n)
        own = angle_index
    else:
        route = torch.tensor([angle_index])
        own = 0
    with torch.no_grad():
        _, acts = snap.model.forward_with_activations(x.expand(len(route), -1, -1, -1), route)
    return {name: Activations(name, a.cpu().numpy(), own, angles[angle_index], int(label))
            for name, a in acts.items()}


# ----------------------------------------------------------------- filters
def first_layer_filters(snap: ModelSnapshot) -> np.ndarray:
    """(circuits, c_out, c_in, k, k): the kernels the first conv really applies
    (U or A⊗B⊗C already multiplied in)."""
    layer = snap.model.first_layer()
    with torch.no_grad():
        w = layer.effective_weight()
    return _with_circuits(w, w.dim() == 5)


def filter_change(before: ModelSnapshot, after: ModelSnapshot) -> np.ndarray:
    """after − before, per filter entry, same shape as first_layer_filters."""
    a, b = first_layer_filters(before), first_layer_filters(after)
    if a.shape != b.shape:
        raise ValueError("the two snapshots come from different architectures")
    return b - a


def filter_change_frame(before: ModelSnapshot, after: ModelSnapshot) -> pd.DataFrame:
    """Per filter: its size at both steps and how far it moved (Frobenius)."""
    a, b = first_layer_filters(before), first_layer_filters(after)
    rows = []
    for c in range(a.shape[0]):
        for o in range(a.shape[1]):
            na, nb = float(np.linalg.norm(a[c, o])), float(np.linalg.norm(b[c, o]))
            d = float(np.linalg.norm(b[c, o] - a[c, o]))
            rows.append({"circuit": c, "filter": o, "from_step": before.step, "to_step": after.step,
                         "norm_from": na, "norm_to": nb, "change": d,
                         "rel_change": d / na if na > 0 else math.nan})
    return pd.DataFrame(rows)


# ------------------------------------------------------- symmetry matrices
MAX_HEATMAP_ROWS = 4096  # taller U (the linear head's) are shown through the maps they generate


@dataclass
class SymmetryMatrix:
    """One outer-only matrix: value is (circuits, rows, cols)."""
    name: str
    layer: str
    kind: str  # A, B, C or U
    value: np.ndarray

    @property
    def drawable(self) -> bool:
        return self.value.shape[-2] <= MAX_HEATMAP_ROWS


LAYER_NAMES = {"conv": "first conv", "head": "linear head", "align": "alignment", "relu1": "first conv + ReLU"}
PART_NAMES = {"weight": "weights", "bias": "bias", "sym_A": "A", "sym_B": "B", "sym_C": "C", "sym_U": "U"}
STARTS_AT_IDENTITY = ("A", "B", "C")


def readable_name(name: str) -> str:
    """A parameter or layer name as a reader says it ("conv.sym_A" → "first conv A");
    names it does not know are returned as they are."""
    layer, _, part = name.rpartition(".")
    if not layer:
        return LAYER_NAMES.get(name, name)
    return f"{LAYER_NAMES.get(layer, layer)} {PART_NAMES.get(part, part)}"


def change_from_start(mat: SymmetryMatrix, initial: SymmetryMatrix | None = None) -> SymmetryMatrix:
    """How far a matrix moved from where it started, which a heatmap of the
    raw values hides: X − I for the Kronecker factors (they start at exactly
    the identity), U − U₀ against ``initial`` for a dense U (it starts random)."""
    if mat.kind in STARTS_AT_IDENTITY:
        return replace(mat, value=mat.value - np.eye(mat.value.shape[-1], dtype=mat.value.dtype))
    if initial is None:
        raise ValueError(f"{mat.name} does not start at the identity: pass its value at the first step")
    if initial.value.shape != mat.value.shape:
        raise ValueError("the two snapshots come from different architectures")
    return replace(mat, value=mat.value - initial.value)


def symmetry_matrices(snap: ModelSnapshot) -> list[SymmetryMatrix]:
    """Every symmetry parameter of the model (empty for the plain conv baseline)."""
    modules = dict(snap.model.named_modules())
    out = []
    for name, p in snap.model.named_parameters():
        if not is_symmetry_param(name):
            continue
        layer, attr = name.rsplit(".", 1)
        banked = bool(getattr(modules[layer], "bank", None))
        out.append(SymmetryMatrix(name, layer, attr[len("sym_"):], _with_circuits(p, banked)))
    return out


DRIFT_COLUMNS = ["step", "matrix", "kind", "circuit", "rel_from_init", "from_identity"]


def _rel(x: np.ndarray, ref: np.ndarray) -> float:
    denom = float(np.linalg.norm(ref))
    return float(np.linalg.norm(x - ref)) / denom if denom > 0 else math.nan


def drift(snap: ModelSnapshot, initial: ModelSnapshot) -> pd.DataFrame:
    """How far each symmetry matrix (and the effective first-layer filters)
    moved: ‖X − X₀‖/‖X₀‖ from its step-0 value and, for the square Kronecker
    factors that start at I, ‖X − I‖/‖I‖ from the identity."""
    rows = []
    start = {m.name: m for m in symmetry_matrices(initial)}
    for m in symmetry_matrices(snap):
        m0 = start[m.name]
        for c in range(m.value.shape[0]):
            x = m.value[c]
            from_id = math.nan
            if m.kind in ("A", "B", "C"):
                eye = np.eye(x.shape[-1], dtype=x.dtype)
                from_id = _rel(x, eye)
            rows.append({"step": snap.step, "matrix": m.name, "kind": m.kind, "circuit": c,
                         "rel_from_init": _rel(x, m0.value[c]), "from_identity": from_id})
    f, f0 = first_layer_filters(snap), first_layer_filters(initial)
    for c in range(f.shape[0]):
        rows.append({"step": snap.step, "matrix": "first-layer filters", "kind": "W", "circuit": c,
                     "rel_from_init": _rel(f[c], f0[c]), "from_identity": math.nan})
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def drift_over_steps(run_path: str | Path, steps: Iterable[int],
                     loader: Callable[[str | Path, int], ModelSnapshot] = load_snapshot) -> pd.DataFrame:
    """drift() at every given step against the first one. ``loader`` lets a
    caller pass a cached load_snapshot."""
    steps = sorted(set(int(s) for s in steps))
    if not steps:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    initial = loader(run_path, steps[0])
    return pd.concat([drift(loader(run_path, s), initial) for s in steps], ignore_index=True)


# ------------------------------------------------------- generated filters
@dataclass
class GeneratedFilters:
    """What each latent coordinate of a dense U produces on its own.

    conv: ``basis`` is (circuits, latent, c_out, c_in, k, k): column j of U
    reshaped to a kernel set. linear: ``basis`` is (circuits, latent, out, H, W),
    column j reshaped to (out, channels, H, W) and averaged over channels, one
    map per class. ``coeffs`` (circuits, latent) are the current v, so the
    layer's weight is Σ_j v_j · basis_j (before any channel averaging);
    ``effective`` is that weight summarized the same way."""
    layer: str
    kind: str  # "conv" or "linear"
    basis: np.ndarray
    coeffs: np.ndarray
    effective: np.ndarray


def generated_filters(snap: ModelSnapshot) -> list[GeneratedFilters]:
    """For every dense-U layer (none in the Kronecker-only or plain models'
    convs; the head of shared, dedicated and dense is one)."""
    out = []
    for name, mod in snap.model.named_modules():
        if isinstance(mod, (DenseConv2d, DenseLinear)):
            banked = bool(mod.bank)
            u = _with_circuits(mod.sym_U, banked)           # (n, numel, latent)
            v = _with_circuits(mod.weight, banked)          # (n, latent)
            with torch.no_grad():
                w = _with_circuits(mod.effective_weight(), banked)
            n, _, latent = u.shape
            cols = np.moveaxis(u, 2, 1)                      # (n, latent, numel)
            if isinstance(mod, DenseConv2d):
                shape = (mod.out_channels, mod.in_channels, mod.kernel_size, mod.kernel_size)
                out.append(GeneratedFilters(name, "conv", cols.reshape(n, latent, *shape), v, w))
            else:
                channels = snap.config.channels
                side = int(round(math.sqrt(mod.in_features / channels)))
                if channels * side * side != mod.in_features:
                    raise ValueError(f"cannot lay out {mod.in_features} inputs of '{name}' as "
                                     f"{channels} channels of square maps")
                basis = cols.reshape(n, latent, mod.out_features, channels, side, side).mean(axis=3)
                eff = w.reshape(n, mod.out_features, channels, side, side).mean(axis=2)
                out.append(GeneratedFilters(name, "linear", basis, v, eff))
    return out


# ------------------------------------------------------------- inner rates


# ------------------------------------------------------- records: data, errors


# --------------------------------------------------------------- confusion
class _QueryAngleSampler(TaskSampler):
    """The run's own task distribution, except that every query is shown at
    one chosen angle (per-task runs: the whole task is)."""

    def __init__(self, *args, query_angle: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.query_angle = query_angle

    def _angles(self, tasks, n_s, n_q):
        as_, _ = super()._angles(tasks, n_s, n_q)
        if self.rotation == "per-task":
            as_ = torch.full((tasks, n_s), self.query_angle)
        return as_, torch.full((tasks, n_q), self.query_angle)


@dataclass
class Confusion:
    """Digit confusion counts (rows: true digit, columns: predicted digit)."""
    matrix: np.ndarray  # (10, 10) int
    angle: float
    step: int
    tasks: int

    @property
    def images(self) -> int:
        return int(self.matrix.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.matrix) / self.matrix.sum()) if self.matrix.sum() else math.nan

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"true": t, "predicted": p, "count": int(self.matrix[t, p])}
                             for t in range(10) for p in range(10)])


def confusion_at_angle(snap: ModelSnapshot, data: MnistSplits, angle_index: int, tasks: int = 20,
                       seed: int = CONFUSION_SEED) -> Confusion:
    """Adapt to fixed-seed held-out tasks and count which digit each query at
    the chosen angle was taken for. Labels are mapped back from task labels to
    digits, so a digit can only be confused with those in its own task."""
    cfg = snap.config
    if not 0 <= angle_index < len(snap.angles):
        raise ValueError(f"angle index {angle_index} is out of range; the run has {len(snap.angles)} angles")
    sampler = _QueryAngleSampler(data.test, snap.angles, cfg.ways, cfg.shots, cfg.queries, cfg.rotation,
                                 torch.Generator().manual_seed(seed), "cpu", query_angle=angle_index)
    batch = sampler.sample(tasks)
    result = snap.learner.evaluate(Episode.of(batch))
    pred = result.query_out.argmax(-1)
    true_digit = batch.classes.gather(1, batch.yq)
    pred_digit = batch.classes.gather(1, pred)
    flat = (true_digit * 10 + pred_digit).reshape(-1)
    matrix = torch.bincount(flat, minlength=100).reshape(10, 10).numpy()
    return Confusion(matrix, snap.angles[angle_index], snap.step, tasks)
