"""The MSR paper's synthetic problems: can MSR-FC discover convolution from data?

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
import threading
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .config import ConfigError
from .layers import DenseLinear
from .meta import ENGINES, LR_MODES, Episode, MetaConfig, MetaLearner
from .train import run_loop, t_halfwidth

IN_SIZE = 70
OUT_SIZE = 68
TAPS = 3
EXAMPLES_PER_TASK = 20
DEFAULT_TASKS = 10_000
TRAIN_FRACTION = 0.8
PROBLEMS: dict[str, int] = {"rank1": 1, "rank2": 2, "rank5": 5}
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


def cache_path(cache_dir: str | Path, problem: str, seed: int, n_tasks: int,
               examples: int = EXAMPLES_PER_TASK) -> Path:
    return Path(cache_dir) / f"{problem}-seed{seed}-tasks{n_tasks}-ex{examples}-v{CACHE_VERSION}.pt"


def _matches(blob: dict, problem: str, n_tasks: int, examples: int) -> bool:
    rank = PROBLEMS[problem]
    try:
        return (blob["x"].shape == (n_tasks, examples, 1, IN_SIZE)
                and blob["y"].shape == (n_tasks, examples, 1, OUT_SIZE)
                and blob["basis"].shape == (n_tasks, rank, TAPS)
                and blob["mixing_logits"].shape == (OUT_SIZE, rank))
    except (KeyError, AttributeError, TypeError):
        return False


def load_or_generate(problem: str, seed: int = 0, n_tasks: int = DEFAULT_TASKS,
                     examples: int = EXAMPLES_PER_TASK,
                     cache_dir: str | Path | None = DEFAULT_CACHE) -> SyntheticData:
    """The dataset for (problem, seed, sizes), from the cache when it is there.

    The file is written to a temporary name and renamed, so a reader never sees
    half a file; an unreadable or mismatched file is regenerated.
    """
    if problem not in PROBLEMS:
        raise ConfigError(f"unknown problem {problem!r}; allowed: {', '.join(PROBLEMS)}")
    if cache_dir is None:
        return generate(problem, seed, n_tasks, examples)
    path = cache_path(cache_dir, problem, seed, n_tasks, examples)
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001 - a broken cache file is just regenerated
            blob = None
        if isinstance(blob, dict) and _matches(blob, problem, n_tasks, examples):
            return SyntheticData(problem, seed, blob["x"], blob["y"], blob["basis"], blob["mixing_logits"])
    data = generate(problem, seed, n_tasks, examples)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
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
class FCModel(nn.Module):
    """MAML-FC: a bias-free Linear 70→68 (nn.Linear's initialization)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(nn.Linear(IN_SIZE, OUT_SIZE, bias=False).weight.detach().clone())

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(x, self.weight)


class LCModel(nn.Module):
    """MAML-LC: one 3-tap filter per output position, weight (68, 3).

    Initialized like the authors' LocallyConnected1d (uniform, bound 1/√3).
    """

    def __init__(self):
        super().__init__()
        bound = 1 / math.sqrt(TAPS)
        self.weight = nn.Parameter(torch.empty(OUT_SIZE, TAPS).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return locally_connected(x, self.weight)


class ConvModel(nn.Module):
    """MAML-Conv: Conv1d 1→1, kernel 3, no bias: the right answer for rank1 built in."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(nn.Conv1d(1, 1, TAPS, bias=False).weight.detach().clone())

    def forward(self, x: torch.Tensor, angle_idx: torch.Tensor | None = None) -> torch.Tensor:
        return F.conv1d(x, self.weight)


class MSRFCModel(nn.Module):
    """MSR-FC: W = (U v).view(68, 70) with a meta-learned U; only v adapts."""

    def __init__(self, latent: int):
        super().__init__()
        self.fc = DenseLinear(IN_SIZE, OUT_SIZE, latent=latent, bias=False)

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


def build_synthetic_model(model: str, latent: int | None = None, problem: str = "rank1",
                          seed: int | None = None) -> nn.Module:
    """A model for the synthetic problems; with a seed, its initial weights are
    reproducible without touching the global random state."""
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if model == "maml-fc":
            return FCModel()
        if model == "maml-lc":
            return LCModel()
        if model == "maml-conv":
            return ConvModel()
        return MSRFCModel(latent if latent is not None else PAPER_LATENT.get(problem, 3))


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
class SyntheticConfig:
    """One synthetic run; defaults are the protocol of the authors' code."""
    problem: str = "rank1"
    model: str = "msr-fc"
    latent: int | None = None  # MSR-FC only; None = the paper's size for the problem
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
    n_tasks: int = DEFAULT_TASKS
    engine: str = "func"
    device: str = "cpu"
    cache_dir: str | None = str(DEFAULT_CACHE)
    # torch intra-op threads while the run lasts (None: leave as is). These
    # models are tiny, so one thread avoids thread hand-off costs; with the
    # OpenMP backend the setting only affects the calling thread.
    threads: int | None = None

    def resolved_latent(self) -> int | None:
        if self.model != "msr-fc":
            return None
        return self.latent if self.latent is not None else PAPER_LATENT[self.problem]

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def meta_config(self) -> MetaConfig:
        return MetaConfig(inner_lr=self.inner_lr, lr_mode=self.lr_mode, inner_steps=self.inner_steps,
                          outer_lr=self.outer_lr, outer_opt="adam", engine=self.engine, loss="mse")

    def validate(self) -> "SyntheticConfig":
        """Raise ConfigError with one line on the first bad field."""
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

        one_of("problem", self.problem, list(PROBLEMS))
        one_of("model", self.model, list(MODELS))
        if self.latent is not None:
            if self.model != "msr-fc":
                raise ConfigError(f"latent size applies to msr-fc only, not to {self.model}")
            whole("latent size", self.latent, 1, IN_SIZE * OUT_SIZE)
        whole("steps", self.steps)
        whole("shots", self.shots)
        whole("queries", self.queries)
        if self.shots + self.queries > EXAMPLES_PER_TASK:
            raise ConfigError(f"shots + queries = {self.shots + self.queries} exceeds the {EXAMPLES_PER_TASK} "
                              f"examples of a task; allowed: at most {EXAMPLES_PER_TASK}")
        whole("number of tasks in the dataset", self.n_tasks, 10)
        n_train = int(TRAIN_FRACTION * self.n_tasks)
        whole("tasks per step", self.tasks_per_step, 1, n_train)
        whole("test tasks", self.test_tasks, 2, self.n_tasks - n_train)
        positive("inner learning rate", self.inner_lr)
        positive("outer learning rate", self.outer_lr)
        one_of("lr mode", self.lr_mode, LR_MODES)
        whole("inner steps", self.inner_steps)
        whole("evaluation interval", self.eval_interval)
        whole("seed", self.seed, 0)
        whole("data seed", self.data_seed, 0)
        if self.threads is not None:
            whole("threads", self.threads, 1)
        one_of("engine", self.engine, ENGINES)
        one_of("device", self.device, DEVICES)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
        return self


# ------------------------------------------------------------------- results
@dataclass
class Snapshot:
    """Weights at one evaluation step (CPU tensors)."""
    step: int
    w_init: torch.Tensor  # (68, 70) the meta-learned initial weight
    w_task: torch.Tensor  # (68, 70) after adapting to the first test task
    u: torch.Tensor | None = None  # (latent, 68, 70), MSR-FC only


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
        cfg = self.config
        return {"problem": cfg.problem, "model": cfg.model, "latent": cfg.resolved_latent(),
                "status": self.status, "steps": self.steps, "test_mse": self.test_mse,
                "test_err": self.test_err, "conv_score": self.conv_score,
                "u_conv_score": self.last.get("u_conv_score"),
                "conv_score_start": self.history[0]["conv_score"] if self.history else None,
                "seconds": round(self.seconds, 3),
                "steps_per_sec": self.steps / self.seconds if self.seconds > 0 else None,
                "seed": cfg.seed, "data_seed": cfg.data_seed, "message": self.message}


def _evaluate(learner: MetaLearner, test_ep: Episode, step: int, train_mse: float | None,
              seconds: float) -> tuple[dict, Snapshot]:
    result = learner.evaluate(test_ep)
    weights = adapted_weights(learner, test_ep)
    model = learner.model
    with torch.no_grad():
        w_init = dense_weight(model).detach()
    record = {"step": step, "test_mse": float(result.loss), "test_err": t_halfwidth(result.task_losses.cpu()),
              "train_mse": train_mse, "conv_score": conv_score(weights),
              "init_conv_score": conv_score(w_init), "u_conv_score": None, "seconds": seconds,
              "inner_lrs": learner.lr_summary()}
    u = None
    if isinstance(model, MSRFCModel):
        u = model.symmetry_columns().cpu().clone()
        record["u_conv_score"] = symmetry_conv_score(u)
    return record, Snapshot(step, w_init.cpu().clone(), weights[0].cpu().clone(), u)


def make_config(problem: str, model: str, base: SyntheticConfig | None = None, *,
                drop_latent: bool = False, **settings) -> SyntheticConfig:
    """A validated config from keyword settings; ``drop_latent`` ignores a
    latent size for models that have none (a job that runs several models)."""
    known = {f.name for f in fields(SyntheticConfig)} - {"problem", "model"}
    unknown = set(settings) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(known))}")
    if drop_latent and model != "msr-fc":
        settings.pop("latent", None)
    return replace(base or SyntheticConfig(), problem=problem, model=model, **settings).validate()


def run_synthetic(problem: str = "rank1", model: str = "msr-fc", *,
                  on_eval: Callable[[dict, Snapshot], None] | None = None,
                  on_step: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  data: SyntheticData | None = None, keep_snapshots: bool = True,
                  config: SyntheticConfig | None = None, **settings) -> SyntheticResult:
    """Meta-train one model on one problem with the shared MetaLearner (loss
    "mse"), evaluating at step 0, every ``eval_interval`` steps and at the end.

    ``settings`` are SyntheticConfig fields (steps, seed, latent, ...). ``data``
    reuses a loaded dataset (it must be the config's problem). Raises
    ConfigError on bad input before any work; a non-finite loss ends the run as
    'failed' with its records kept.
    """
    cfg = make_config(problem, model, base=config, **settings)
    if data is None:
        data = load_or_generate(cfg.problem, cfg.data_seed, cfg.n_tasks, cache_dir=cfg.cache_dir)
    elif (data.problem, data.n_tasks, data.seed) != (cfg.problem, cfg.n_tasks, cfg.data_seed):
        raise ConfigError(f"the given dataset is {data.problem} with {data.n_tasks} tasks (seed {data.seed}), "
                          f"the run asks for {cfg.problem} with {cfg.n_tasks} (seed {cfg.data_seed})")
    emit_eval = on_eval or (lambda record, snap: None)
    emit_step = on_step or (lambda step, total: None)
    stop = should_stop or (lambda: False)
    device = torch.device(cfg.resolved_device())
    previous_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, data, device, emit_eval, emit_step, stop, keep_snapshots)
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(previous_threads)


def _train(cfg: SyntheticConfig, data: SyntheticData, device: torch.device, emit_eval, emit_step, stop,
           keep_snapshots: bool) -> SyntheticResult:
    net = build_synthetic_model(cfg.model, cfg.resolved_latent(), cfg.problem, seed=cfg.seed).to(device)
    learner = MetaLearner(net, cfg.meta_config()).to(device)
    train_sampler = TaskSampler(*data.split("train"), cfg.shots, cfg.queries,
                                torch.Generator().manual_seed(cfg.seed * 2 + 1), device)
    # One fixed test set per seed: every evaluation and every model of a seed
    # is scored on the same tasks and support/query splits.
    test_ep = TaskSampler(*data.split("test"), cfg.shots, cfg.queries,
                          torch.Generator().manual_seed(cfg.seed * 2 + 2), device).sample(cfg.test_tasks)

    result = SyntheticResult(cfg, "running")
    loss_sum = torch.zeros((), device=device)
    since_eval = 0
    train_seconds = 0.0

    def step() -> torch.Tensor:
        loss = learner.step(train_sampler.sample(cfg.tasks_per_step)).loss
        loss_sum.add_(loss)
        return loss

    def on_step(step: int, loss: float | None, seconds: float) -> None:
        nonlocal since_eval, train_seconds
        since_eval += 1
        train_seconds += seconds
        result.steps, result.seconds = step, train_seconds
        emit_step(step, cfg.steps)

    def record_eval(step: int) -> None:
        nonlocal since_eval
        train_mse = float(loss_sum / since_eval) if since_eval else None
        record, snap = _evaluate(learner, test_ep, step, train_mse, train_seconds)
        loss_sum.zero_()
        since_eval = 0
        result.history.append(record)
        if keep_snapshots:
            result.snapshots.append(snap)
        emit_eval(record, snap)

    outcome = run_loop(cfg.steps, cfg.eval_interval, step, record_eval, stop, on_step)
    result.status, result.message, result.steps = outcome.status, outcome.message, outcome.steps
    return result


# ------------------------------------------------------------ background job
@dataclass
class JobState:
    """What a watcher sees of a job; copies, safe to read from another thread."""
    status: str  # idle, running, done, stopped, failed
    current: str | None
    step: int
    total: int
    histories: dict[str, list[dict]]
    snapshots: dict[str, list[Snapshot]]
    results: dict[str, SyntheticResult]
    message: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed")


class SyntheticJob:
    """Runs several models on one problem, one after another, in a daemon thread.

    A UI starts it, polls :meth:`state` and may call :meth:`stop`; nothing here
    knows about the UI. The dataset is loaded once and shared by the models.
    ``settings`` are SyntheticConfig fields; ``latent`` applies to MSR-FC only.
    """

    def __init__(self, problem: str, models: list[str], **settings):
        if not models:
            raise ConfigError(f"pick at least one model; allowed: {', '.join(MODELS)}")
        # Validate every run up front, so a bad setting is reported before the thread starts.
        self.configs = {m: make_config(problem, m, drop_latent=True, **dict(settings)) for m in models}
        self.problem, self.models = problem, list(models)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status, self._current, self._message = "idle", None, None
        self._step, self._total = 0, self.configs[self.models[0]].steps
        self._histories: dict[str, list[dict]] = {m: [] for m in self.models}
        self._snapshots: dict[str, list[Snapshot]] = {m: [] for m in self.models}
        self._results: dict[str, SyntheticResult] = {}

    def start(self) -> "SyntheticJob":
        with self._lock:
            self._status = "running"
        self._thread = threading.Thread(target=self._run, name="msr-synthetic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def state(self) -> JobState:
        with self._lock:
            return JobState(self._status, self._current, self._step, self._total,
                            {m: list(h) for m, h in self._histories.items()},
                            {m: list(s) for m, s in self._snapshots.items()}, dict(self._results), self._message)

    def _run(self) -> None:
        try:
            first = self.configs[self.models[0]]
            data = load_or_generate(self.problem, first.data_seed, first.n_tasks, cache_dir=first.cache_dir)
            for m in self.models:
                if self._stop.is_set():
                    break
                with self._lock:
                    self._current, self._step = m, 0

                def on_eval(record, snap, m=m):
                    with self._lock:
                        self._histories[m].append(record)
                        self._snapshots[m].append(snap)

                def on_step(step, total):
                    with self._lock:
                        self._step = step

                res = run_synthetic(self.problem, m, config=self.configs[m], data=data, on_eval=on_eval,
                                    on_step=on_step, should_stop=self._stop.is_set, keep_snapshots=False)
                with self._lock:
                    self._results[m] = res
                if res.status == "failed":
                    raise RuntimeError(f"{MODELS[m].label}: {res.message}")
            final = "stopped" if self._stop.is_set() else "done"
            with self._lock:
                self._status, self._current = final, None
        except Exception as exc:  # noqa: BLE001 - reported to the watcher, not raised in a thread
            known = isinstance(exc, (ConfigError, RuntimeError))
            with self._lock:
                self._status, self._current = "failed", None
                self._message = str(exc) if known else f"{type(exc).__name__}: {exc}"
