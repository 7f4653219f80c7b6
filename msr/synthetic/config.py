"""A synthetic run's settings and their validation."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..core.errors import ConfigError
from ..core.choices import DEVICES, ENGINES, LR_MODES, MAX_INNER_STEPS, MetaConfig, resolve_device
from ..core.settings import LOG_HELP, LOG_TARGETS, MAX_STEPS, MAX_THREADS, Checks, Settings, setting
from . import NAME
from .data import ALL_PROBLEMS, DEFAULT_CACHE, EXAMPLES_PER_TASK, IN_SIZE, OUT_SIZE, default_tasks
from .models import LATENT_MODELS, MODEL_ORDER, MODELS, ROTATION_MODELS, models_for, paper_latent
from .rotation import ROTATION_PROBLEMS
from .split import EVAL_SPLITS, PARTS, task_range


@dataclass
class SyntheticConfig(Settings):
    """One synthetic run; defaults are the protocol of the authors' code."""
    KIND = NAME  # the run kind (msr.kinds) whose settings these are, as config.json records it
    problem: str = setting("rank1", "Problem", "rank1: convolution; rank2/rank5: locally connected with shared "
                                               "structure; rot4/rot8/rot8_flip: 2-D, made by a C4/C8/D8 group "
                                               "convolution", check="choice", choices=ALL_PROBLEMS)
    model: str = setting("msr-fc", "Model", "architecture (default: msr-fc for the 1-D problems, msr-conv-dense for "
                                            "the 2-D ones); 1-D: " + ", ".join(MODELS) + "; 2-D: "
                         + ", ".join(ROTATION_MODELS), choices=MODEL_ORDER)
    # MSR-FC and dense MSR-Conv only; None = paper_latent(problem)
    latent: int | None = setting(None, "Latent size", "latent size of MSR-FC (default: the paper's, 3 / 6 / 30 for "
                                                      "rank1 / rank2 / rank5) or of the dense MSR-Conv (default: the "
                                                      "task's generating coefficients, 27 / 18 / 18)", kind=int)
    steps: int = setting(1000, "Outer steps", "outer steps", name="steps", check="whole", low=1, high=MAX_STEPS)
    tasks_per_step: int = setting(32, "Tasks per step", "tasks per meta-batch")
    shots: int = setting(1, "Support examples", "support examples per task", name="shots", check="whole", low=1)
    queries: int = setting(19, "Query examples", "query examples per task", name="queries", check="whole", low=1)
    inner_lr: float = setting(0.1, "Inner lr (initial)", "initial inner learning rate", name="inner learning rate",
                             check="positive")
    outer_lr: float = setting(1e-3, "Outer lr (Adam)", "Adam learning rate", name="outer learning rate",
                             check="positive")
    lr_mode: str = setting("per_layer", "Inner rate mode", "inner learning rate mode", name="lr mode",
                           check="choice", choices=LR_MODES)
    inner_steps: int = setting(1, "Inner steps", "inner SGD steps", check="whole", low=1, high=MAX_INNER_STEPS)
    eval_interval: int = setting(100, "Evaluate every", "evaluate every N steps", name="evaluation interval",
                                 check="whole", low=1)
    test_tasks: int = setting(300, "Test tasks", "test tasks per evaluation")
    eval_on: str = setting("test", "Evaluate on", "test: the held-out fifth of the tasks; validation: the last fifth "
                                                  "of the training tasks, held out of meta-training (for choosing a "
                                                  "setting without looking at the test tasks)", check="choice",
                           choices=EVAL_SPLITS)
    seed: int = setting(0, "Seed", "seed of the model and the task draws", check="whole", low=0, high=2**31 - 1)
    data_seed: int = setting(0, "Dataset seed", "seed of the dataset", name="data seed", check="whole", low=0,
                         high=2**63 - 1)
    # None: the authors' count for the problem (default_tasks)
    n_tasks: int | None = setting(None, "Tasks in the dataset", "tasks in the dataset, 80% train (default: the "
                                                                "authors', 2,000 for rot8_flip, else 10,000)",
                                  name="number of tasks in the dataset", flag="--tasks", kind=int,
                                  check="whole", low=10, high=1_000_000)
    engine: str = setting("func", "Engine", "meta-gradient engine", check="choice", choices=ENGINES)
    device: str = setting("cpu", "Device", "where to train", check="choice", choices=DEVICES)
    cache_dir: str | None = setting(str(DEFAULT_CACHE), "Dataset cache folder", "folder for the generated datasets",
                                    name="cache folder")
    # torch intra-op threads while the run lasts (None: leave as is). These
    # models are tiny, so one thread avoids thread hand-off costs; with the
    # OpenMP backend the setting only affects the calling thread.
    threads: int | None = setting(None, "Threads", "torch threads (default 1: these models are too small to gain "
                                                   "from more)", kind=int, check="whole", low=1,
                                  high=MAX_THREADS)
    runs_dir: str = setting("runs", "Runs folder", "where runs are saved", name="runs_dir", check="text")
    name: str = setting("", "Run name", "a label for the run", name="name", check="text")
    # runs launched together (the Paper check page shows one group)
    group: str = setting("", "Group", name="group", check="text", flag="")
    log_to: str = setting("none", "Log to", LOG_HELP, name="log to", check="choice", choices=LOG_TARGETS)

    def resolved_latent(self) -> int | None:
        if self.model not in LATENT_MODELS:
            return None
        return self.latent if self.latent is not None else paper_latent(self.problem)

    def resolved_tasks(self) -> int:
        return self.n_tasks if self.n_tasks is not None else default_tasks(self.problem)

    @property
    def is_rotation(self) -> bool:
        """A 2-D rotation problem (msr.synthetic.rotation), not a 1-D one."""
        return self.problem in ROTATION_PROBLEMS

    def resolved_device(self) -> str:
        return resolve_device(self.device)

    def meta_config(self) -> MetaConfig:
        return MetaConfig(inner_lr=self.inner_lr, lr_mode=self.lr_mode, inner_steps=self.inner_steps,
                          outer_lr=self.outer_lr, outer_opt="adam", engine=self.engine, loss="mse")

    def check(self) -> Checks:
        """Every bad field with its one line (``.errors``, in the order
        checked). Pure: what the machine has (a GPU, free memory) is checked
        when the run is launched (msr.runner.admission)."""
        c = Checks(self)
        c.check("problem")
        if c.ok("problem"):
            allowed = models_for(self.problem)
            if self.model not in allowed:
                c.fail("model", f"unknown model {self.model!r} for {self.problem}; allowed: {', '.join(allowed)}")
            if self.latent is not None:
                if self.model not in LATENT_MODELS:
                    c.fail("latent", f"latent size applies to {' and '.join(LATENT_MODELS)} only, not to {self.model}")
                most = ROTATION_PROBLEMS[self.problem].channels * 9 if self.is_rotation else IN_SIZE * OUT_SIZE
                c.whole("latent", self.latent, 1, most)
        c.check("steps", "shots", "queries")
        if c.ok("shots", "queries") and self.shots + self.queries > EXAMPLES_PER_TASK:
            c.fail("queries", f"shots + queries = {self.shots + self.queries} exceeds the {EXAMPLES_PER_TASK} "
                              f"examples of a task; allowed: at most {EXAMPLES_PER_TASK}")
        if self.n_tasks is not None:
            c.check("n_tasks")
        c.check("eval_on")
        if c.ok("problem", "n_tasks", "eval_on"):
            n_tasks = self.resolved_tasks()
            train, test = (task_range(n_tasks, part)[1] for part in PARTS[self.eval_on])
            c.whole("tasks_per_step", self.tasks_per_step, 1, train)
            c.whole("test_tasks", self.test_tasks, 2, test)
        c.check("inner_lr", "outer_lr", "lr_mode", "inner_steps", "eval_interval", "seed", "data_seed")
        if self.threads is not None:
            c.check("threads")
        c.check("engine", "device", "runs_dir", "name", "group", "log_to")
        if c.ok("runs_dir") and not self.runs_dir.strip():
            c.fail("runs_dir", "the runs folder must be named, e.g. runs; got ''")
        if self.cache_dir is not None and not isinstance(self.cache_dir, str):
            c.fail("cache_dir", f"cache folder must be text, got {self.cache_dir!r}")
        return c

    def validate(self) -> "SyntheticConfig":
        """Raise ConfigError naming every bad field (its message is the first one's line)."""
        self.check().raise_any()
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
