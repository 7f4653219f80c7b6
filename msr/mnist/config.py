"""The Rotated MNIST run's settings: their fields, validation and presets.

Validation happens before anything touches the disk, and every message is one
line saying what is wrong and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.choices import (ARCHITECTURES, BUNDLED, CONV_LAYERS, DEVICES, ENGINES, EVAL_SPLITS, HEAD_LAYERS,
                            LR_MODES, MAX_INNER_STEPS, OUTER_OPTIMIZERS, ROTATION_MODES, SOURCES,
                            VALIDATION_FRACTION, MetaConfig, ModelSpec, make_angles, model_label, resolve_device)
from ..core.errors import ConfigError
from ..core.settings import LOG_HELP, LOG_TARGETS, MAX_STEPS, Checks, Settings, setting
from . import NAME

BUNDLED_PER_CLASS = 100  # images per class in the bundled sample's test split
BUNDLED_VALIDATION_PER_CLASS = round(400 * VALIDATION_FRACTION)  # ... and in its validation split


# Upper bounds on the settings. The stop button is polled between meta-steps,
# so nothing may make a single step (or an evaluation) run for hours: the
# inner loop is capped (MAX_INNER_STEPS), and so are the counts whose only use
# beyond these values is a typing slip. Memory is checked when a run is
# launched (msr.runner.admission), against what the machine has free then.
MAX_TASKS_PER_STEP = 10_000
MAX_EVAL_TASKS = 10_000
MAX_CHANNELS = 1024
MAX_LATENT = 4096
MAX_CONV_LATENT = MAX_CHANNELS * 9  # the identity latent of the widest 3×3 conv
MAX_SEED = 2**32 - 1  # the run seeds its generators with 2·seed + 1 and 2·seed + 2
MAX_ANGLES = 360


def _deg(value: float) -> str:
    return f"{value:g}°"


def _same_rotation(a: float) -> float:
    """The angle in [0, 360) that is the same rotation as a."""
    r = a % 360.0
    return 0.0 if r == 360.0 else r  # a tiny negative a rounds up to 360


def _check_angle_list(angles) -> None:
    """An explicit angle list: 1 to 360 finite angles, each within
    -360° < angle < 360°, no two of them the same rotation."""
    rule = "allowed: distinct rotations with -360° < angle < 360°, e.g. 0,45,90"
    try:
        count = len(angles)
    except TypeError:
        raise ConfigError(f"angles must be a list of degrees, got {angles!r}") from None
    if count == 0:
        raise ConfigError("the angle list is empty; give at least one angle in degrees, e.g. 0,45,90")
    if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in angles):
        raise ConfigError(f"angles must be finite numbers of degrees, got {angles!r}")
    if count > MAX_ANGLES:
        raise ConfigError(f"at most {MAX_ANGLES} angles are allowed, got {count}")
    for a in angles:
        if not -360.0 < a < 360.0:
            raise ConfigError(f"angles must lie within -360° < angle < 360°, got {_deg(a)}; "
                              f"{_deg(a)} is the same rotation as {_deg(_same_rotation(a))}")
    seen: dict[float, float] = {}
    for a in angles:
        r = _same_rotation(float(a))
        if r in seen:
            b = seen[r]
            what = f"{_deg(a)} appears twice" if float(a) == b else \
                f"{_deg(b)} and {_deg(a)} are the same rotation"
            raise ConfigError(f"angles must be distinct rotations, but {what}; {rule}")
        seen[r] = float(a)


def _check_count_and_step(count, step) -> None:
    """Angles 0, s, …, (n−1)s: the same rule as for a list, which for a run of
    equal steps means 0 < |s| and (n−1)·|s| < 360°."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"angle count must be a whole number ≥ 1, got {count!r}", field="n_angles")
    if count > MAX_ANGLES:
        raise ConfigError(f"at most {MAX_ANGLES} angles are allowed, got {count}", field="n_angles")
    if not isinstance(step, (int, float)) or isinstance(step, bool) or not math.isfinite(step):
        raise ConfigError(f"angle step must be a finite number of degrees, got {step!r}", field="angle_step")
    if count == 1:
        return
    limit = 360.0 / (count - 1)
    allowed = f"allowed for {count} angles: 0° < |step| < {limit:.4g}°, so that they span less than a full turn"
    if _same_rotation(step) == 0.0:
        raise ConfigError(f"angle step {_deg(step)} makes all {count} angles the same rotation; {allowed}",
                          field="angle_step")
    last = (count - 1) * float(step)
    if not abs(last) < 360.0:
        reach = f"reaches {_deg(last)} (the same rotation as {_deg(_same_rotation(last))})" \
            if math.isfinite(last) else "overflows to an infinite angle"
        raise ConfigError(f"angle step {_deg(step)} with {count} angles {reach}, outside -360° < angle < 360°; "
                          f"{allowed}", field="angle_step")


@dataclass
class RunConfig(Settings):
    KIND = NAME  # the run kind (msr.kinds) whose settings these are, as config.json records it
    arch: str = setting("shared", "Architecture", "how the network shares weights across angles", check="choice",
                        choices=ARCHITECTURES)
    conv_layer: str | None = setting(None, "First layer", "the first conv layer, chosen apart from the head: plain "
                                                          "(MAML), kronecker (U = A ⊗ B ⊗ C) or dense (vec(W) = U v); "
                                                          "empty: the architecture's own", name="first layer",
                                     choices=CONV_LAYERS, kind=str)
    head_layer: str | None = setting(None, "Head", "the linear head, chosen apart from the first layer: plain "
                                                   "(MAML, every weight adapts) or dense (W = U v, only the latent "
                                                   "adapts); empty: the architecture's own", name="head",
                                     choices=HEAD_LAYERS, kind=str)
    angles: list[float] | None = setting(None, "…or an explicit angle list", name="angles", kind=str,
                                         help="degrees separated by commas, e.g. 0,45,90; when given, it replaces "
                                              "count × step")
    n_angles: int = setting(5, "Angle count", "number of angles 0, s, 2s, … (n−1)s (with the angle step); the "
                                              "student project used 5")
    angle_step: float = setting(9.0, "Angle step (degrees)", "degrees between angles", name="angle step")
    rotation: str = setting("mixed", "Rotation mode", "mixed: every image its own random angle; per-task: one angle "
                                                      "per task; query: supports upright, queries rotated (needs "
                                                      "angle 0)", check="choice", choices=ROTATION_MODES)
    ways: int = setting(10, "Ways (classes per task)", "classes per task, 2 to 10")
    shots: int = setting(1, "Shots (support images per class)", "support images per class", name="shots",
                         check="whole", low=1)
    queries: int = setting(19, "Queries per class", "query images per class", name="queries", check="whole", low=1)
    tasks_per_step: int = setting(5, "Tasks per step", "tasks in one meta-batch", check="whole", low=1,
                                  high=MAX_TASKS_PER_STEP)
    inner_lr: float = setting(0.01, "Inner learning rate", "inner-loop learning rate (the starting value when the "
                                                           "rate is learned)", check="positive")
    outer_lr: float = setting(1e-4, "Outer learning rate", "outer-loop learning rate", check="positive")
    lr_mode: str = setting("per_layer", "Inner rate mode", "fixed; per_layer: one learned rate per adapted tensor; "
                                                          "per_param: one learned rate per entry (Meta-SGD)",
                           name="lr mode", check="choice", choices=LR_MODES)
    inner_steps: int = setting(1, "Inner steps", "inner-loop SGD steps", check="whole", low=1, high=MAX_INNER_STEPS)
    first_order: bool = setting(False, "First order", "drop the second-order terms of the meta-gradient: faster, "
                                                      "less exact")
    outer_opt: str = setting("adam", "Outer optimizer", "outer optimizer", check="choice", choices=OUTER_OPTIMIZERS)
    steps: int = setting(1000, "Outer steps", "outer steps", name="steps", check="whole", low=1, high=MAX_STEPS)
    eval_interval: int = setting(100, "Evaluate every … steps", "evaluate every N steps", name="evaluation interval",
                                 check="whole", low=1)
    eval_on: str = setting("test", "Evaluate on", "test: tasks of the held-out test images; validation: tasks of "
                                                  "a fifth of the training images, held out of meta-training "
                                                  "(for choosing a setting without looking at the test images)",
                           check="choice", choices=EVAL_SPLITS)
    eval_tasks: int = setting(20, "Test tasks per evaluation", "test tasks per evaluation, at least 2 for the 95% "
                                                              "interval", name="evaluation tasks", check="whole",
                              low=2, high=MAX_EVAL_TASKS)
    engine: str = setting("func", "Engine", "meta-gradient engine; func: all tasks at once (fast), higher: one task "
                                            "at a time, the authors' way", check="choice", choices=ENGINES)
    device: str = setting("cpu", "Device", "where to train ('cuda' needs a CUDA GPU)", check="choice",
                          choices=DEVICES)
    seed: int = setting(0, "Seed", "random seed: the same seed gives the same run", check="whole", low=0,
                        high=MAX_SEED)
    data_source: str = setting("bundled", "Data source", "bundled: the 5,000-digit sample shipped with the app (no "
                                                         "network); mnist: full MNIST from the data folder",
                               check="choice", choices=SOURCES)
    data_dir: str = setting("data", "Data folder (mnist only)", "folder for full MNIST")
    download: bool = setting(False, "Download if missing", "download full MNIST into the data folder if it "
                                                                 "is missing (data source 'mnist' only; needs a "
                                                                 "network connection)")
    runs_dir: str = setting("runs", "Runs folder", "where runs are saved")
    channels: int = setting(32, "Conv channels", "conv channels", name="channels", check="whole", low=1,
                            high=MAX_CHANNELS)
    latent: int = setting(3, "Latent size (dense-U linear)", "latent size of the dense-U linear layer",
                          name="latent size", check="whole", low=1, high=MAX_LATENT)
    conv_latent: int = setting(36, "Latent size (dense-U conv)", "latent size of the dense-U conv ('dense' "
                                                                 "architecture)", name="conv latent size",
                               check="whole", low=1, high=MAX_CONV_LATENT)
    checkpoint_budget_mb: float = setting(200.0, "Checkpoint budget (MB)", "disk cap for a run's checkpoints",
                                          name="checkpoint budget (MB)", check="positive")
    name: str = setting("", "Run name (optional)", "a label for the run")
    log_to: str = setting("none", "Log to", LOG_HELP, name="log to", check="choice", choices=LOG_TARGETS)

    # ------------------------------------------------------------ derived
    def angle_list(self) -> list[float]:
        return [float(a) for a in self.angles] if self.angles is not None else make_angles(self.n_angles, self.angle_step)

    def model_spec(self) -> ModelSpec:
        return ModelSpec(arch=self.arch, ways=self.ways, n_angles=len(self.angle_list()),
                         channels=self.channels, latent=self.latent, conv_latent=self.conv_latent,
                         conv_layer=self.conv_layer, head_layer=self.head_layer)

    def layers(self) -> tuple[str, str]:
        """(first layer, head) as the model is built."""
        return self.model_spec().layers()

    def model_label(self) -> str:
        """The model as a page names it: "shared", or "plain conv + dense head"."""
        return model_label(self.arch, self.conv_layer, self.head_layer)

    def step_work(self) -> float:
        """A rough measure of one step's computation, to scale a speed measured on other settings: the
        images a step carries through the first layer's channels, once per inner step and once outside."""
        return (self.tasks_per_step * self.ways * (self.shots + self.queries) * max(1, self.channels)
                * (self.inner_steps + 1))

    def meta_config(self) -> MetaConfig:
        return MetaConfig(inner_lr=self.inner_lr, lr_mode=self.lr_mode, inner_steps=self.inner_steps,
                          first_order=self.first_order, outer_lr=self.outer_lr, outer_opt=self.outer_opt,
                          engine=self.engine)

    # --------------------------------------------------------- validation
    def check(self) -> Checks:
        """Every bad field with its one line (``.errors``, in field order).
        Pure: what the machine has (a GPU, free memory) is checked when the
        run is launched (msr.runner.admission)."""
        c = Checks(self)
        c.check("arch")
        for name in ("conv_layer", "head_layer"):
            if getattr(self, name) is not None:
                c.one_of(name, getattr(self, name), c.specs[name].choices)
        if self.angles is not None:
            c.guard("angles", _check_angle_list, self.angles)
        else:
            c.guard("angle_step", _check_count_and_step, self.n_angles, self.angle_step)
        c.check("rotation")
        if c.ok("angles", "n_angles", "angle_step", "rotation") and self.rotation == "query" \
                and 0.0 not in self.angle_list():
            c.fail("rotation", "rotation mode 'query' keeps supports unrotated, so the angles must include 0")
        if not isinstance(self.ways, int) or isinstance(self.ways, bool) or not 2 <= self.ways <= 10:
            c.fail("ways", f"ways must be between 2 and 10 (MNIST has 10 digits), got {self.ways!r}")
        c.check("shots", "queries", "eval_on")
        per_class = BUNDLED_VALIDATION_PER_CLASS if self.eval_on == "validation" else BUNDLED_PER_CLASS
        if c.ok("shots", "queries") and self.data_source == BUNDLED and self.shots + self.queries > per_class:
            split = "validation" if self.eval_on == "validation" else "test"
            c.fail("queries", f"shots + queries = {self.shots + self.queries} exceeds the {per_class} images per "
                              f"class of the bundled data's {split} split; allowed: at most {per_class}")
        c.check("tasks_per_step", "inner_lr", "outer_lr", "lr_mode", "inner_steps", "outer_opt", "steps",
                "eval_interval", "eval_tasks", "engine", "device")
        c.check("seed", "data_source", "channels", "latent", "conv_latent", "checkpoint_budget_mb", "log_to")
        if not isinstance(self.runs_dir, str) or not self.runs_dir.strip():
            c.fail("runs_dir", f"the runs folder must be named, e.g. runs; got {self.runs_dir!r}")
        return c

    def validate(self) -> "RunConfig":
        """Raise ConfigError naming every bad field (its message is the first
        one's line); return self when all is well."""
        self.check().raise_any()
        return self

    def resolved_device(self) -> str:
        return resolve_device(self.device)



PRESETS: dict[str, dict] = {
    # The student project's settings, with fresh tasks every step.
    "seed": dict(arch="shared", n_angles=5, angle_step=9.0, rotation="mixed", ways=10, shots=1, queries=19,
                 tasks_per_step=5, inner_lr=0.01, outer_lr=1e-4, lr_mode="per_layer", inner_steps=1,
                 outer_opt="adam", steps=1000, eval_interval=100, engine="func", device="cpu"),
    # A run that passes 90% meta-test accuracy well within a minute on a 2-core
    # CPU, evaluations included (benchmarks/time_to_accuracy.py). Two inner
    # steps and a latent of 8 learn far faster per second than one step and 3,
    # which level off near 88%.
    "demo": dict(arch="shared", n_angles=5, angle_step=9.0, rotation="mixed", ways=5, shots=5, queries=5,
                 tasks_per_step=4, inner_lr=0.1, outer_lr=1e-3, lr_mode="per_layer", inner_steps=2, latent=8,
                 outer_opt="adam", steps=600, eval_interval=25, eval_tasks=50, engine="func", device="cpu"),
}

# What each preset is for, in the words the pages show beside its name. The
# demo's times are benchmarks/time_to_accuracy.py's median on a 2-core CPU.
PRESET_SUMMARIES: dict[str, str] = {
    "seed": "the student project's defaults (10-way 1-shot, 1000 steps)",
    "demo": "5-way 5-shot, 600 steps: a quick run that passes 90% test accuracy (the estimate under the form says "
            "how long it takes here)",
}


def preset(name: str, **overrides) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return RunConfig(**{**PRESETS[name], **overrides})
