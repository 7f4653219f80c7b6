"""A synthetic run's settings and their validation."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from ..config import DEVICES, ConfigError, Settings
from ..meta import ENGINES, LR_MODES, MetaConfig
from .data import ALL_PROBLEMS, DEFAULT_CACHE, EXAMPLES_PER_TASK, IN_SIZE, OUT_SIZE, TRAIN_FRACTION, default_tasks
from .models import LATENT_MODELS, models_for, paper_latent
from .rotation import GROUPS


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
        """A 2-D rotation problem (msr.synthetic.rotation), not a 1-D one."""
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
            from ..resources import check_rotation_memory
            check_rotation_memory(self)
        return self


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
