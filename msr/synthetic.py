"""The MSR paper's synthetic problems: can MSR-FC discover convolution from data
(the 1-D problems, here), and MSR-Conv rotation sharing (the 2-D problems,
generated and modelled in msr.rotation; their runs, config and trainer are the
ones below)?

Each task maps a 1-D input of 70 values to 68 outputs with a linear, bias-free
map that is either a 3-tap convolution (``rank1``) or locally connected with a
structured filter per output position (``rank2`` / ``rank5``). A fully
connected layer whose symmetry matrix U is meta-learned (MSR-FC) should find
the convolution's sharing pattern on ``rank1``; a plain MAML-FC cannot.

Generator (our own, following the authors' description): for problem rank r,
the mixing logits L (68×r) are drawn once per dataset; each task draws r basis
filters B (r×3) and uses, at output position p, the filter
``softmax(L[p]) @ B``. For r = 1 the softmax is 1 everywhere, so every position
shares one filter: a valid convolution. Inputs are N(0, 1), there is no noise.

Convolution score (see :func:`conv_score`): the fraction of a weight matrix's
energy that lies in the best-fitting 3-tap banded Toeplitz matrix; 1.0 means the
weight is exactly a 3-tap convolution.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .config import ConfigError, Settings
from .layers import DenseLinear
from .meta import ENGINES, LR_MODES, Episode, MetaConfig, MetaLearner
from .rotation import (GROUPS, RotationData, RotationTaskSampler, build_rotation_model, default_latent,
                       generate_rotation, layer_filters)
from .rotation import FIELDS as ROTATION_FIELDS
from .rotation import IN_SIDE as IN_SIDE_2D
from .symmetry import LENS_TASKS, PROBES, generated_filters, lens_record, smooth_probes
from .train import run_loop, t_halfwidth

IN_SIZE = 70
OUT_SIZE = 68
TAPS = 3
EXAMPLES_PER_TASK = 20
DEFAULT_TASKS = 10_000
TRAIN_FRACTION = 0.8
PROBLEMS: dict[str, int] = {"rank1": 1, "rank2": 2, "rank5": 5}  # the 1-D problems and their ranks
# Every problem: the 1-D ones, then the 2-D rotation problems (msr.rotation).
ALL_PROBLEMS: tuple[str, ...] = (*PROBLEMS, *GROUPS)
# Latent size of MSR-FC per problem, as in the authors' train_synthetic.py.
PAPER_LATENT: dict[str, int] = {"rank1": 3, "rank2": 6, "rank5": 30}
DEFAULT_CACHE = Path(".cache") / "synthetic"
CACHE_VERSION = 1
DEVICES = ("cpu", "cuda", "auto")


# ---------------------------------------------------------------------- data
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
        """The first 80 % of tasks train, the rest test (as in the authors' loader)."""
        if part == "train":
            return self.x[:self.n_train], self.y[:self.n_train]
        return self.x[self.n_train:], self.y[self.n_train:]


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
    return GROUPS[problem].tasks if problem in GROUPS else DEFAULT_TASKS


def cache_path(cache_dir: str | Path, problem: str, seed: int, n_tasks: int,
               examples: int = EXAMPLES_PER_TASK) -> Path:
    return Path(cache_dir) / f"{problem}-seed{seed}-tasks{n_tasks}-ex{examples}-v{CACHE_VERSION}.pt"


def _matches(blob: dict, problem: str, n_tasks: int, examples: int) -> bool:
    try:
        if problem in GROUPS:
            coefficients = GROUPS[problem].coefficients
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

    A 2-D rotation dataset is cached as what defines it (msr.rotation).

    The file is written to a temporary name and renamed, so a reader never sees
    half a file; an unreadable or mismatched file is regenerated.
    """
    if problem not in ALL_PROBLEMS:
        raise ConfigError(f"unknown problem {problem!r}; allowed: {', '.join(ALL_PROBLEMS)}")
    make = generate_rotation if problem in GROUPS else generate
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
            if problem in GROUPS:
                return RotationData(problem, seed, blob["coeffs"], blob["input_seeds"], examples)
            return SyntheticData(problem, seed, blob["x"], blob["y"], blob["basis"], blob["mixing_logits"])
    data = make(problem, seed, n_tasks, examples)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
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


class TaskSampler:
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


# -------------------------------------------------------------------- models
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


MODELS: dict[str, ModelKind] = {m.name: m for m in [
    ModelKind("maml-fc", "MAML-FC", "Linear 70→68, every weight adapts: no sharing."),
    ModelKind("maml-lc", "MAML-LC", "Locally connected, one 3-tap filter per output position."),
    ModelKind("maml-conv", "MAML-Conv", "Conv1d kernel 3: convolution built in."),
    ModelKind("msr-fc", "MSR-FC", "Linear 70→68 with W = U v; U is meta-learned, only v adapts."),
]}
# The models of the 2-D rotation problems (one bias-free conv 1→C, 3×3).
ROTATION_MODELS: dict[str, ModelKind] = {m.name: m for m in [
    ModelKind("maml-conv", "MAML-Conv", "Conv2d 3×3, every weight adapts: translation built in, rotation not."),
    ModelKind("msr-conv", "MSR-Conv", "Kronecker U = A ⊗ B ⊗ C over the kernel (the authors' model); only V adapts."),
    ModelKind("msr-conv-dense", "MSR-Conv (dense U)",
              "vec(W) = U v with a dense U over the whole kernel: can tie channels into rotated copies."),
]}
LATENT_MODELS = ("msr-fc", "msr-conv-dense")


def models_for(problem: str) -> dict[str, ModelKind]:
    """The models that apply to a problem (1-D or 2-D)."""
    return ROTATION_MODELS if problem in GROUPS else MODELS


def model_label(model: str) -> str:
    kind = MODELS.get(model) or ROTATION_MODELS.get(model)
    return kind.label if kind else model


def paper_latent(problem: str) -> int:
    """The latent size used when none is given: the paper's for MSR-FC, the
    number of generating coefficients for the dense MSR-Conv."""
    return default_latent(problem) if problem in GROUPS else PAPER_LATENT[problem]


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
    if problem in GROUPS:
        return build_rotation_model(model, problem, latent, generator)
    if model == "maml-fc":
        return FCModel(generator)
    if model == "maml-lc":
        return LCModel(generator)
    if model == "maml-conv":
        return ConvModel(generator)
    return MSRFCModel(latent if latent is not None else PAPER_LATENT.get(problem, 3), generator)


# ------------------------------------------------------------- conv score
def toeplitz_filter(w: torch.Tensor, taps: int = TAPS) -> torch.Tensor:
    """(..., taps): the filter h of the closest banded Toeplitz matrix
    (W[i, i+k] = h[k], zero elsewhere) to W (..., out, in) in Frobenius norm.

    The band matrices of different k have disjoint supports, so the projection
    is just the mean of each of the first ``taps`` diagonals.
    """
    return torch.stack([w.diagonal(offset=k, dim1=-2, dim2=-1).mean(-1) for k in range(taps)], dim=-1)


def toeplitz_projection(w: torch.Tensor, taps: int = TAPS) -> torch.Tensor:
    """The closest banded Toeplitz matrix to W (same shape as W)."""
    h = toeplitz_filter(w, taps)
    out = torch.zeros_like(w)
    for k in range(taps):
        n = w.diagonal(offset=k, dim1=-2, dim2=-1).shape[-1]
        idx = torch.arange(n, device=w.device)
        out[..., idx, idx + k] = h[..., k:k + 1]
    return out


def _band_energy(w: torch.Tensor, taps: int) -> torch.Tensor:
    """||P(W)||²: each diagonal's mean squared, times its length."""
    lengths = torch.tensor([w.diagonal(offset=k, dim1=-2, dim2=-1).shape[-1] for k in range(taps)],
                           dtype=w.dtype, device=w.device)
    return (toeplitz_filter(w, taps).pow(2) * lengths).sum(-1)


def conv_score(w: torch.Tensor, taps: int = TAPS) -> float:
    """||P(W)||² / ||W||², P the projection onto 3-tap banded Toeplitz matrices.

    1.0: W is exactly a 3-tap convolution. A random dense 68×70 matrix scores
    about 3/4760 ≈ 0.0006; a banded but unshared (locally connected) one about
    1/68. With a leading batch dimension the energies are pooled over the
    batch, i.e. the score of the whole collection, dominated by its large
    members rather than by near-zero ones.
    """
    w = w.detach().double()
    total = w.pow(2).sum()
    if float(total) == 0.0:
        return 0.0
    return float(_band_energy(w, taps).sum() / total)


def symmetry_conv_score(columns: torch.Tensor) -> float:
    """Conv score of what a symmetry matrix U lets the inner loop reach.

    ``columns`` is (latent, 68, 70). Since v changes on every task, U is scored
    on the weights it generates for v ~ N(0, I): E||P(Uv)||² / E||Uv||² =
    Σ_j ||P(U_j)||² / Σ_j ||U_j||², the energy-weighted score of its columns,
    so an almost-unused column counts little. This does not depend on the
    meta-learned v or on the rates, only on the sharing pattern itself.
    """
    return conv_score(columns)


def column_scores(columns: torch.Tensor) -> list[float]:
    """Each latent column's own conv score (for labelling pictures)."""
    return [conv_score(c) for c in columns]


def dense_weight(model: nn.Module, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The 68×70 matrix a bias-free synthetic model applies, found by feeding it
    the 70 unit vectors (so one function serves every architecture)."""
    probe = torch.eye(IN_SIZE, device=next(model.parameters()).device).unsqueeze(1)  # (70, 1, 70)
    out = model(probe) if params is None else functional_call(model, params, (probe,))
    return out.squeeze(1).T


def adapted_weights(learner: MetaLearner, ep: Episode) -> torch.Tensor:
    """(T, 68, 70): the weight each task's adapted parameters apply (all tasks at once)."""
    model = learner.model

    def one(xs, ys):
        return dense_weight(model, learner.adapt_one(xs, ys))

    return vmap(one, randomness="error")(ep.xs, ep.ys).detach()


# ------------------------------------------------------------------ config
@dataclass
class SyntheticConfig(Settings):
    """One synthetic run; defaults are the protocol of the authors' code."""
    problem: str = "rank1"
    model: str = "msr-fc"
    latent: int | None = None  # MSR-FC and dense MSR-Conv only; None = paper_latent(problem)
    steps: int = 1000
    tasks_per_step: int = 32
    shots: int = 1
    queries: int = 19
    inner_lr: float = 0.1
    outer_lr: float = 1e-3
    lr_mode: str = "per_layer"
    inner_steps: int = 1
    eval_interval: int = 100
    test_tasks: int = 300
    seed: int = 0
    data_seed: int = 0
    n_tasks: int | None = None  # None: the authors' count for the problem (default_tasks)
    engine: str = "func"
    device: str = "cpu"
    cache_dir: str | None = str(DEFAULT_CACHE)
    # torch intra-op threads while the run lasts (None: leave as is). These
    # models are tiny, so one thread avoids thread hand-off costs; with the
    # OpenMP backend the setting only affects the calling thread.
    threads: int | None = None
    runs_dir: str = "runs"
    name: str = ""
    group: str = ""  # runs launched together (the Paper check page shows one group)

    def resolved_latent(self) -> int | None:
        if self.model not in LATENT_MODELS:
            return None
        return self.latent if self.latent is not None else paper_latent(self.problem)

    def resolved_tasks(self) -> int:
        return self.n_tasks if self.n_tasks is not None else default_tasks(self.problem)

    @property
    def is_rotation(self) -> bool:
        """A 2-D rotation problem (msr.rotation), not a 1-D one."""
        return self.problem in GROUPS

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def meta_config(self) -> MetaConfig:
        return MetaConfig(inner_lr=self.inner_lr, lr_mode=self.lr_mode, inner_steps=self.inner_steps,
                          outer_lr=self.outer_lr, outer_opt="adam", engine=self.engine, loss="mse")

    def validate(self, check_device: bool = True) -> "SyntheticConfig":
        """Raise ConfigError with one line on the first bad field
        (``check_device=False``: a saved run read on a machine without its GPU
        or its free memory, so neither is checked)."""
        def one_of(name, value, allowed):
            if value not in allowed:
                raise ConfigError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")

        def whole(name, value, low=1, high=None):
            if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
                span = f"between {low} and {high}" if high is not None else f"≥ {low}"
                raise ConfigError(f"{name} must be a whole number {span}, got {value!r}")

        def positive(name, value):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a number > 0, got {value!r}")

        one_of("problem", self.problem, list(ALL_PROBLEMS))
        allowed = models_for(self.problem)
        if self.model not in allowed:
            raise ConfigError(f"unknown model {self.model!r} for {self.problem}; allowed: {', '.join(allowed)}")
        if self.latent is not None:
            if self.model not in LATENT_MODELS:
                raise ConfigError(f"latent size applies to {' and '.join(LATENT_MODELS)} only, not to {self.model}")
            most = GROUPS[self.problem].channels * 9 if self.is_rotation else IN_SIZE * OUT_SIZE
            whole("latent size", self.latent, 1, most)
        whole("steps", self.steps)
        whole("shots", self.shots)
        whole("queries", self.queries)
        if self.shots + self.queries > EXAMPLES_PER_TASK:
            raise ConfigError(f"shots + queries = {self.shots + self.queries} exceeds the {EXAMPLES_PER_TASK} "
                              f"examples of a task; allowed: at most {EXAMPLES_PER_TASK}")
        if self.n_tasks is not None:
            whole("number of tasks in the dataset", self.n_tasks, 10, 1_000_000)
        n_tasks = self.resolved_tasks()
        n_train = int(TRAIN_FRACTION * n_tasks)
        whole("tasks per step", self.tasks_per_step, 1, n_train)
        whole("test tasks", self.test_tasks, 2, n_tasks - n_train)
        positive("inner learning rate", self.inner_lr)
        positive("outer learning rate", self.outer_lr)
        one_of("lr mode", self.lr_mode, LR_MODES)
        whole("inner steps", self.inner_steps)
        whole("evaluation interval", self.eval_interval)
        whole("seed", self.seed, 0, 2 ** 31 - 1)
        whole("data seed", self.data_seed, 0, 2 ** 63 - 1)
        whole("inner steps", self.inner_steps, 1, 100)
        if self.threads is not None:
            whole("threads", self.threads, 1)
        one_of("engine", self.engine, ENGINES)
        one_of("device", self.device, DEVICES)
        for name in ("runs_dir", "name", "group"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be text, got {getattr(self, name)!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, str):
            raise ConfigError(f"cache folder must be text, got {self.cache_dir!r}")
        if check_device and self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
        if check_device and self.is_rotation:
            from .resources import check_rotation_memory
            check_rotation_memory(self)
        return self


# ------------------------------------------------------------------- results
@dataclass
class Snapshot:
    """Weights at one evaluation step (CPU tensors). 1-D problems: (68, 70)
    matrices, ``u`` MSR-FC's columns (latent, 68, 70). 2-D problems: filter
    banks (C, 1, 3, 3), ``u`` two layers U generates (2, C, 1, 3, 3)."""
    step: int
    w_init: torch.Tensor  # the meta-learned initial weight
    w_task: torch.Tensor  # after adapting to the first test task
    u: torch.Tensor | None = None  # None without a symmetry matrix


@dataclass
class SyntheticResult:
    config: SyntheticConfig
    status: str  # completed, stopped, failed
    steps: int = 0
    history: list[dict] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    seconds: float = 0.0
    message: str | None = None

    @property
    def last(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def test_mse(self) -> float | None:
        return self.last.get("test_mse")

    @property
    def test_err(self) -> float | None:
        return self.last.get("test_err")

    @property
    def conv_score(self) -> float | None:
        return self.last.get("conv_score")

    def summary(self) -> dict:
        """The command line's --json object."""
        out = summarize(self.config, self.status, self.steps, self.history, self.message)
        out["seconds"] = round(self.seconds, 3)
        out["steps_per_sec"] = self.steps / self.seconds if self.seconds > 0 else None
        return out


def make_config(problem: str, model: str, base: SyntheticConfig | None = None, *,
                drop_latent: bool = False, **settings) -> SyntheticConfig:
    """A validated config from keyword settings; ``drop_latent`` ignores a
    latent size for models that have none (a job that runs several models)."""
    known = {f.name for f in fields(SyntheticConfig)} - {"problem", "model"}
    unknown = set(settings) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(known))}")
    if drop_latent and model not in LATENT_MODELS:
        settings.pop("latent", None)
    return replace(base or SyntheticConfig(), problem=problem, model=model, **settings).validate()


def summarize(cfg: SyntheticConfig, status: str, steps: int, history: list[dict],
              message: str | None = None) -> dict:
    """The command line's --json object for a synthetic run."""
    last = history[-1] if history else {}
    seconds = last.get("seconds") or 0.0
    return {"problem": cfg.problem, "model": cfg.model, "latent": cfg.resolved_latent(),
            "status": status, "steps": steps, "test_mse": last.get("test_mse"),
            "test_err": last.get("test_err"), "conv_score": last.get("conv_score"),
            "u_conv_score": last.get("u_conv_score"),
            "conv_score_start": history[0].get("conv_score") if history else None,
            "equiv_error": last.get("equiv_error"), "orbit_score": last.get("orbit_score"),
            "u_equiv_error": last.get("u_equiv_error"), "u_orbit_score": last.get("u_orbit_score"),
            "seconds": round(seconds, 3), "steps_per_sec": last.get("step", 0) / seconds if seconds > 0 else None,
            "seed": cfg.seed, "data_seed": cfg.data_seed, "message": message}


class SyntheticTrainer:
    """State of one synthetic run, with the interface the worker drives
    (step, evaluate, state, resume_state) like msr.train.Trainer."""

    def __init__(self, config: SyntheticConfig, data: SyntheticData | None = None):
        self.config = cfg = config.validate()
        n_tasks = cfg.resolved_tasks()
        if data is None:
            data = load_or_generate(cfg.problem, cfg.data_seed, n_tasks, cache_dir=cfg.cache_dir)
        elif (data.problem, data.n_tasks, data.seed) != (cfg.problem, n_tasks, cfg.data_seed):
            raise ConfigError(f"the given dataset is {data.problem} with {data.n_tasks} tasks (seed {data.seed}), "
                              f"the run asks for {cfg.problem} with {n_tasks} (seed {cfg.data_seed})")
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.resolved_device())
        self.model = build_synthetic_model(cfg.model, cfg.resolved_latent(), cfg.problem, seed=cfg.seed).to(self.device)
        self.learner = MetaLearner(self.model, cfg.meta_config()).to(self.device)
        train_gen = torch.Generator().manual_seed(cfg.seed * 2 + 1)
        test_gen = torch.Generator().manual_seed(cfg.seed * 2 + 2)
        # One fixed test set per seed: every evaluation and every model of a seed
        # is scored on the same tasks and support/query splits.
        if cfg.is_rotation:
            # 2-D tasks are made when drawn; the test tasks are fixed by index
            # and built a chunk at a time (all 300 at once would take 1 GB).
            self.train_sampler = RotationTaskSampler(data, "train", cfg.shots, cfg.queries, train_gen, self.device)
            self.test_sampler = RotationTaskSampler(data, "test", cfg.shots, cfg.queries, test_gen, self.device)
            self.test_draw = self.test_sampler.draw(cfg.test_tasks)
            self.probes = smooth_probes(PROBES, IN_SIDE_2D)
        else:
            self.train_sampler = TaskSampler(*data.split("train"), cfg.shots, cfg.queries, train_gen, self.device)
            self.test_ep = TaskSampler(*data.split("test"), cfg.shots, cfg.queries, test_gen,
                                       self.device).sample(cfg.test_tasks)
        self.loss_sum = torch.zeros((), device=self.device)
        self.steps_since_eval = 0
        self.train_seconds = 0.0
        self.snapshot: Snapshot | None = None

    total = property(lambda self: self.config.steps)
    eval_interval = property(lambda self: self.config.eval_interval)
    sync_every = 1

    def add_seconds(self, seconds: float) -> None:
        self.train_seconds += seconds

    def step(self) -> torch.Tensor:
        loss = self.learner.step(self.train_sampler.sample(self.config.tasks_per_step)).loss
        self.loss_sum.add_(loss)
        self.steps_since_eval += 1
        return loss

    def evaluate(self, step: int) -> dict:
        if self.config.is_rotation:
            return self._evaluate_rotation(step)
        learner, model = self.learner, self.model
        train_mse = float(self.loss_sum / self.steps_since_eval) if self.steps_since_eval else None
        result = learner.evaluate(self.test_ep)
        weights = adapted_weights(learner, self.test_ep)
        with torch.no_grad():
            w_init = dense_weight(model).detach()
        record = {"step": step, "test_mse": float(result.loss), "test_err": t_halfwidth(result.task_losses.cpu()),
                  "train_mse": train_mse, "conv_score": conv_score(weights),
                  "init_conv_score": conv_score(w_init), "u_conv_score": None, "seconds": self.train_seconds,
                  "inner_lrs": learner.lr_summary()}
        u = None
        if isinstance(model, MSRFCModel):
            u = model.symmetry_columns().cpu().clone()
            record["u_conv_score"] = symmetry_conv_score(u)
        self.snapshot = Snapshot(step, w_init.cpu().clone(), weights[0].cpu().clone(), u)
        self.loss_sum.zero_()
        self.steps_since_eval = 0
        return record

    def test_episode(self, start: int, stop: int) -> Episode:
        """Test tasks start..stop of a 2-D problem (the same at every evaluation)."""
        tasks, order = self.test_draw
        return self.test_sampler.episode(tasks[start:stop], order[start:stop])

    def adapted_filters(self, ep: Episode) -> torch.Tensor:
        """(T, C, 1, 3, 3): each task's layer after the inner loop."""
        learner, model = self.learner, self.model

        def one(xs, ys):
            return layer_filters(model, learner.adapt_one(xs, ys))

        return vmap(one, randomness="error")(ep.xs, ep.ys).detach()

    def _evaluate_rotation(self, step: int) -> dict:
        learner, model, cfg = self.learner, self.model, self.config
        train_mse = float(self.loss_sum / self.steps_since_eval) if self.steps_since_eval else None
        chunk = 50
        losses = torch.cat([learner.evaluate(self.test_episode(i, min(i + chunk, cfg.test_tasks))).task_losses
                            for i in range(0, cfg.test_tasks, chunk)]).cpu()
        banks = self.adapted_filters(self.test_episode(0, min(LENS_TASKS, cfg.test_tasks))).cpu()
        with torch.no_grad():
            w_init = layer_filters(model).detach().cpu()
        generated = generated_filters(model.conv, draws=LENS_TASKS)  # the lens's draws; the first two are pictured
        record = {"step": step, "test_mse": float(losses.mean()), "test_err": t_halfwidth(losses),
                  "train_mse": train_mse, **lens_record(banks, generated, cfg.problem, self.probes),
                  "seconds": self.train_seconds, "inner_lrs": learner.lr_summary()}
        self.snapshot = Snapshot(step, w_init.clone(), banks[0].clone(),
                                 None if generated is None else generated[:2].clone())
        self.loss_sum.zero_()
        self.steps_since_eval = 0
        return record

    def state(self) -> dict:
        """Weights and the pictures of the latest evaluation, for a checkpoint."""
        snap = self.snapshot
        out = {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
               "inner_lrs": {k: v.detach().cpu() for k, v in self.learner.inner_lrs.state_dict().items()}}
        if snap is not None:
            out["snapshot"] = {"w_init": snap.w_init, "w_task": snap.w_task,
                               **({"u": snap.u} if snap.u is not None else {})}
        return out

    def resume_state(self) -> dict:
        return {**self.state(), "optimizer": self.learner.optimizer.state_dict(),
                "generators": {"train": self.train_sampler.generator.get_state()},
                "loss_sum": self.loss_sum.detach().cpu().clone(),
                "scalars": {"steps_since_eval": self.steps_since_eval, "train_seconds": self.train_seconds}}

    def load_resume_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.learner.inner_lrs.load_state_dict(state["inner_lrs"])
        self.learner.optimizer.load_state_dict(state["optimizer"])
        self.train_sampler.generator.set_state(state["generators"]["train"])
        self.loss_sum.copy_(state["loss_sum"].to(self.device))
        self.steps_since_eval = int(state["scalars"]["steps_since_eval"])
        self.train_seconds = float(state["scalars"]["train_seconds"])


def snapshot_from_checkpoint(ckpt: dict) -> Snapshot | None:
    """The weight pictures a synthetic run's checkpoint holds (None: none)."""
    snap = ckpt.get("snapshot")
    if not isinstance(snap, dict) or "w_init" not in snap or "w_task" not in snap:
        return None
    return Snapshot(int(ckpt.get("step", 0)), snap["w_init"], snap["w_task"], snap.get("u"))


def run_synthetic(problem: str = "rank1", model: str = "msr-fc", *,
                  on_eval: Callable[[dict, Snapshot], None] | None = None,
                  on_step: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  data: SyntheticData | None = None, keep_snapshots: bool = True,
                  config: SyntheticConfig | None = None, **settings) -> SyntheticResult:
    """Meta-train one model on one problem in this process, without a run
    folder (benchmarks and tests; the app and the command line save runs
    through msr.worker). Evaluates at step 0, every ``eval_interval`` steps
    and at the end.

    ``settings`` are SyntheticConfig fields (steps, seed, latent, ...). ``data``
    reuses a loaded dataset (it must be the config's problem). Raises
    ConfigError on bad input before any work; a non-finite loss ends the run as
    'failed' with its records kept.
    """
    cfg = make_config(problem, model, base=config, **settings)
    emit_eval = on_eval or (lambda record, snap: None)
    emit_step = on_step or (lambda step, total: None)
    stop = should_stop or (lambda: False)
    previous_threads = torch.get_num_threads()
    try:
        trainer = SyntheticTrainer(cfg, data)
        result = SyntheticResult(cfg, "running")

        def on_step_(step: int, loss: float | None, seconds: float) -> None:
            trainer.add_seconds(seconds)
            result.steps, result.seconds = step, trainer.train_seconds
            emit_step(step, cfg.steps)

        def record_eval(step: int, stopping: bool) -> None:
            record = trainer.evaluate(step)
            result.history.append(record)
            if keep_snapshots:
                result.snapshots.append(trainer.snapshot)
            emit_eval(record, trainer.snapshot)

        outcome = run_loop(cfg.steps, cfg.eval_interval, trainer.step, record_eval, stop, on_step_)
        result.status, result.message, result.steps = outcome.status, outcome.message, outcome.steps
        return result
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(previous_threads)


def run_groups(records: list) -> dict[str, list]:
    """Synthetic run records by the group they were launched in, newest group
    first; a run launched alone is a group of its own."""
    groups: dict[str, list] = {}
    for rec in records:
        if rec.damaged or rec.kind != "synthetic":
            continue
        groups.setdefault(rec.config.group or rec.run_id, []).append(rec)
    order = list(dict.fromkeys([*MODELS, *ROTATION_MODELS]))
    for runs in groups.values():
        runs.sort(key=lambda r: order.index(r.config.model) if r.config.model in order else len(order))
    return dict(sorted(groups.items(), key=lambda kv: -max(r.created for r in kv[1])))
