"""The 1-D synthetic problems' generator, every problem's dataset cache, and the task sampler.

Each 1-D task maps an input of 70 values to 68 outputs with a linear,
bias-free map that is either a 3-tap convolution (``rank1``) or locally
connected with a structured filter per output position (``rank2`` /
``rank5``).

Generator (our own, following the authors' description): for problem rank r,
the mixing logits L (68×r) are drawn once per dataset; each task draws r basis
filters B (r×3) and uses, at output position p, the filter
``softmax(L[p]) @ B``. For r = 1 the softmax is 1 everywhere, so every position
shares one filter: a valid convolution. Inputs are N(0, 1), there is no noise.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.errors import ConfigError
from ..core.meta import Episode
from ..core.modes import as_opened
from .rotation import FIELDS as ROTATION_FIELDS
from .rotation import ROTATION_PROBLEMS, RotationData, generate_rotation
from .split import TRAIN_FRACTION, task_range

IN_SIZE = 70
OUT_SIZE = 68
TAPS = 3
EXAMPLES_PER_TASK = 20
DEFAULT_TASKS = 10_000
PROBLEMS: dict[str, int] = {"rank1": 1, "rank2": 2, "rank5": 5}  # the 1-D problems and their ranks
# Every problem: the 1-D ones, then the 2-D rotation problems (msr.synthetic.rotation).
ALL_PROBLEMS: tuple[str, ...] = (*PROBLEMS, *ROTATION_PROBLEMS)
DEFAULT_CACHE = Path(".cache") / "synthetic"
CACHE_VERSION = 1


@dataclass
class SyntheticData:
    """One dataset: ``x`` (N, 20, 1, 70), ``y`` (N, 20, 1, 68), and what made it."""
    problem: str
    seed: int
    x: torch.Tensor
    y: torch.Tensor
    basis: torch.Tensor  # (N, r, 3): each task's basis filters
    mixing_logits: torch.Tensor  # (68, r): drawn once per dataset

    @property
    def n_tasks(self) -> int:
        return self.x.shape[0]

    @property
    def n_train(self) -> int:
        return int(TRAIN_FRACTION * self.n_tasks)

    @property
    def n_test(self) -> int:
        return self.n_tasks - self.n_train

    def mixing(self) -> torch.Tensor:
        """(68, r) softmax weights of each position over the r basis filters."""
        return torch.softmax(self.mixing_logits, dim=1)

    def filters(self) -> torch.Tensor:
        """(N, 68, 3): the filter each task uses at each output position."""
        return torch.einsum("pr,nrk->npk", self.mixing(), self.basis)

    def split(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The first 80 % of tasks train, the rest test (as in the authors'
        loader); see :func:`task_range` for the validation parts."""
        first, count = task_range(self.n_tasks, part)
        return self.x[first:first + count], self.y[first:first + count]


def locally_connected(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """y[..., p] = Σ_k filters[..., p, k] · x[..., p + k] (valid, stride 1).

    The same cross-correlation convention as ``torch.nn.functional.conv1d``.
    """
    return (x.unfold(-1, filters.shape[-1], 1) * filters).sum(-1)


def generate(problem: str, seed: int = 0, n_tasks: int = DEFAULT_TASKS,
             examples: int = EXAMPLES_PER_TASK) -> SyntheticData:
    """Draw a dataset from a seeded generator (no global random state)."""
    if problem not in PROBLEMS:
        raise ConfigError(f"unknown problem {problem!r}; allowed: {', '.join(PROBLEMS)}")
    rank = PROBLEMS[problem]
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(OUT_SIZE, rank, generator=g)
    basis = torch.randn(n_tasks, rank, TAPS, generator=g)
    x = torch.randn(n_tasks, examples, 1, IN_SIZE, generator=g)
    filters = torch.einsum("pr,nrk->npk", torch.softmax(logits, dim=1), basis)
    y = locally_connected(x, filters[:, None, None])
    return SyntheticData(problem, seed, x, y, basis, logits)


def default_tasks(problem: str) -> int:
    """Tasks in the authors' dataset for the problem (2,000 for rot8_flip)."""
    return ROTATION_PROBLEMS[problem].tasks if problem in ROTATION_PROBLEMS else DEFAULT_TASKS


def cache_path(cache_dir: str | Path, problem: str, seed: int, n_tasks: int,
               examples: int = EXAMPLES_PER_TASK) -> Path:
    return Path(cache_dir) / f"{problem}-seed{seed}-tasks{n_tasks}-ex{examples}-v{CACHE_VERSION}.pt"


def _matches(blob: dict, problem: str, n_tasks: int, examples: int) -> bool:
    try:
        if problem in ROTATION_PROBLEMS:
            coefficients = ROTATION_PROBLEMS[problem].coefficients
            return (blob["coeffs"].shape == (n_tasks, ROTATION_FIELDS, coefficients) and blob["input_seeds"].shape == (n_tasks,)
                    and blob["input_seeds"].dtype == torch.int64)
        rank = PROBLEMS[problem]
        return (blob["x"].shape == (n_tasks, examples, 1, IN_SIZE)
                and blob["y"].shape == (n_tasks, examples, 1, OUT_SIZE)
                and blob["basis"].shape == (n_tasks, rank, TAPS)
                and blob["mixing_logits"].shape == (OUT_SIZE, rank))
    except (KeyError, AttributeError, TypeError):
        return False


def load_or_generate(problem: str, seed: int = 0, n_tasks: int | None = None,
                     examples: int = EXAMPLES_PER_TASK,
                     cache_dir: str | Path | None = DEFAULT_CACHE) -> SyntheticData | RotationData:
    """The dataset for (problem, seed, sizes), from the cache when it is there
    (``n_tasks`` None: the authors' count for the problem).

    A 2-D rotation dataset is cached as what defines it (msr.synthetic.rotation).

    The file is written to a temporary name and renamed, so a reader never sees
    half a file; an unreadable or mismatched file is regenerated.
    """
    if problem not in ALL_PROBLEMS:
        raise ConfigError(f"unknown problem {problem!r}; allowed: {', '.join(ALL_PROBLEMS)}")
    make = generate_rotation if problem in ROTATION_PROBLEMS else generate
    n_tasks = default_tasks(problem) if n_tasks is None else n_tasks
    if cache_dir is None:
        return make(problem, seed, n_tasks, examples)
    path = cache_path(cache_dir, problem, seed, n_tasks, examples)
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001 - a broken cache file is just regenerated
            blob = None
        if isinstance(blob, dict) and _matches(blob, problem, n_tasks, examples):
            if problem in ROTATION_PROBLEMS:
                return RotationData(problem, seed, blob["coeffs"], blob["input_seeds"], examples)
            return SyntheticData(problem, seed, blob["x"], blob["y"], blob["basis"], blob["mixing_logits"])
    data = make(problem, seed, n_tasks, examples)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            as_opened(fd)  # the umask's mode, not mkstemp's 0600
            with os.fdopen(fd, "wb") as fh:
                if isinstance(data, RotationData):
                    torch.save({"coeffs": data.coeffs, "input_seeds": data.input_seeds}, fh)
                else:
                    torch.save({"x": data.x, "y": data.y, "basis": data.basis,
                                "mixing_logits": data.mixing_logits}, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the dataset cache in '{cache_dir}': {exc.strerror or exc}") from None
    return data


class TaskSampler1D:
    """Tasks without replacement within a batch, a fresh support/query split per draw."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, shots: int, queries: int,
                 generator: torch.Generator, device: torch.device | str = "cpu"):
        self.x, self.y = x, y
        self.shots, self.queries = shots, queries
        self.generator = generator
        self.device = torch.device(device)

    def sample(self, n: int) -> Episode:
        g = self.generator
        tasks = torch.randperm(self.x.shape[0], generator=g)[:n]
        order = torch.rand(n, self.x.shape[1], generator=g).argsort(dim=1)[:, :self.shots + self.queries]
        rows = tasks[:, None]
        xs, ys = self.x[rows, order], self.y[rows, order]
        k = self.shots
        to = lambda t: t.to(self.device)  # noqa: E731
        return Episode(to(xs[:, :k]), to(ys[:, :k]), to(xs[:, k:]), to(ys[:, k:]))
