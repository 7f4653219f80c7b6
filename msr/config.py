"""The run configuration: one dataclass, its validation, and presets.

Validation happens before anything touches the disk, and every message is one
line saying what is wrong and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, fields

from .data import ROTATION_MODES, SOURCES, make_angles
from .meta import ENGINES, LR_MODES, OUTER_OPTIMIZERS, MetaConfig
from .models import ARCHITECTURES, ModelSpec

DEVICES = ("auto", "cpu", "cuda")
BUNDLED_PER_CLASS = 100  # images per class in the bundled sample's test split


class ConfigError(ValueError):
    """Bad input; str(error) is the one line to show the user."""


# Upper bounds on the settings. The stop button is polled between meta-steps,
# so nothing may make a single step (or an evaluation) run for hours: the
# inner loop is capped, and so are the counts whose only use beyond these
# values is a typing slip. Memory is checked separately (msr.resources).
MAX_INNER_STEPS = 100
MAX_STEPS = 10_000_000
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
        raise ConfigError(f"angle count must be a whole number ≥ 1, got {count!r}")
    if count > MAX_ANGLES:
        raise ConfigError(f"at most {MAX_ANGLES} angles are allowed, got {count}")
    if not isinstance(step, (int, float)) or isinstance(step, bool) or not math.isfinite(step):
        raise ConfigError(f"angle step must be a finite number of degrees, got {step!r}")
    if count == 1:
        return
    limit = 360.0 / (count - 1)
    allowed = f"allowed for {count} angles: 0° < |step| < {limit:.4g}°, so that they span less than a full turn"
    if _same_rotation(step) == 0.0:
        raise ConfigError(f"angle step {_deg(step)} makes all {count} angles the same rotation; {allowed}")
    last = (count - 1) * float(step)
    if not abs(last) < 360.0:
        reach = f"reaches {_deg(last)} (the same rotation as {_deg(_same_rotation(last))})" \
            if math.isfinite(last) else "overflows to an infinite angle"
        raise ConfigError(f"angle step {_deg(step)} with {count} angles {reach}, outside -360° < angle < 360°; "
                          f"{allowed}")


class Settings:
    """What every run config (Rotated MNIST, synthetic) shares: its dict
    form for run folders, read back strictly."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


@dataclass
class RunConfig(Settings):
    arch: str = "shared"
    angles: list[float] | None = None  # explicit list; else n_angles × angle_step
    n_angles: int = 5
    angle_step: float = 9.0
    rotation: str = "mixed"
    ways: int = 10
    shots: int = 1
    queries: int = 19
    tasks_per_step: int = 5
    inner_lr: float = 0.01
    outer_lr: float = 1e-4
    lr_mode: str = "per_layer"
    inner_steps: int = 1
    first_order: bool = False
    outer_opt: str = "adam"
    steps: int = 1000
    eval_interval: int = 100
    eval_tasks: int = 20
    engine: str = "func"
    device: str = "cpu"
    seed: int = 0
    data_source: str = "bundled"
    data_dir: str = "data"
    download: bool = False
    runs_dir: str = "runs"
    channels: int = 32
    latent: int = 3
    conv_latent: int = 36
    checkpoint_budget_mb: float = 200.0
    name: str = ""

    # ------------------------------------------------------------ derived
    def angle_list(self) -> list[float]:
        return [float(a) for a in self.angles] if self.angles is not None else make_angles(self.n_angles, self.angle_step)

    def model_spec(self) -> ModelSpec:
        return ModelSpec(arch=self.arch, ways=self.ways, n_angles=len(self.angle_list()),
                         channels=self.channels, latent=self.latent, conv_latent=self.conv_latent)

    def meta_config(self) -> MetaConfig:
        return MetaConfig(inner_lr=self.inner_lr, lr_mode=self.lr_mode, inner_steps=self.inner_steps,
                          first_order=self.first_order, outer_lr=self.outer_lr, outer_opt=self.outer_opt,
                          engine=self.engine)

    # --------------------------------------------------------- validation
    def validate(self, cuda_available: bool | None = None, *, check_resources: bool = True) -> "RunConfig":
        """Raise ConfigError on the first bad field; return self when all is well.

        With ``check_resources`` (the default) a config that passes every
        field check is also refused when its estimated peak memory exceeds
        what the machine has free (see msr.resources); pass False to check
        the fields only.
        """
        def one_of(name: str, value, allowed) -> None:
            if value not in allowed:
                raise ConfigError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")

        def whole(name: str, value, low: int = 1, high: int | None = None) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < low or \
                    (high is not None and value > high):
                allowed = f"≥ {low}" if high is None else f"from {low} to {high:,}"
                raise ConfigError(f"{name} must be a whole number {allowed}, got {value!r}")

        def positive(name: str, value) -> None:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(f"{name} must be a number > 0, got {value!r}")

        one_of("architecture", self.arch, list(ARCHITECTURES))
        if self.angles is not None:
            _check_angle_list(self.angles)
        else:
            _check_count_and_step(self.n_angles, self.angle_step)
        one_of("rotation mode", self.rotation, ROTATION_MODES)
        if self.rotation == "query" and 0.0 not in self.angle_list():
            raise ConfigError("rotation mode 'query' keeps supports unrotated, so the angles must include 0")
        if not isinstance(self.ways, int) or isinstance(self.ways, bool) or not 2 <= self.ways <= 10:
            raise ConfigError(f"ways must be between 2 and 10 (MNIST has 10 digits), got {self.ways!r}")
        whole("shots", self.shots)
        whole("queries", self.queries)
        if self.data_source == "bundled" and self.shots + self.queries > BUNDLED_PER_CLASS:
            raise ConfigError(f"shots + queries = {self.shots + self.queries} exceeds the {BUNDLED_PER_CLASS} "
                              "images per class of the bundled data; allowed: at most 100")
        whole("tasks per step", self.tasks_per_step, high=MAX_TASKS_PER_STEP)
        positive("inner learning rate", self.inner_lr)
        positive("outer learning rate", self.outer_lr)
        one_of("lr mode", self.lr_mode, LR_MODES)
        whole("inner steps", self.inner_steps, high=MAX_INNER_STEPS)
        one_of("outer optimizer", self.outer_opt, OUTER_OPTIMIZERS)
        whole("steps", self.steps, high=MAX_STEPS)
        whole("evaluation interval", self.eval_interval)
        whole("evaluation tasks", self.eval_tasks, low=2, high=MAX_EVAL_TASKS)
        one_of("engine", self.engine, ENGINES)
        one_of("device", self.device, DEVICES)
        if self.device == "cuda":
            if cuda_available is None:
                import torch
                cuda_available = torch.cuda.is_available()
            if not cuda_available:
                raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
        whole("seed", self.seed, low=0, high=MAX_SEED)
        one_of("data source", self.data_source, SOURCES)
        whole("channels", self.channels, high=MAX_CHANNELS)
        whole("latent size", self.latent, high=MAX_LATENT)
        whole("conv latent size", self.conv_latent, high=MAX_CONV_LATENT)
        positive("checkpoint budget (MB)", self.checkpoint_budget_mb)
        if check_resources:
            from .resources import check_memory
            check_memory(self, cuda_available=cuda_available)
        return self

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"



PRESETS: dict[str, dict] = {
    # The student project's settings (DESIGN.md), with fresh tasks every step.
    "seed": dict(arch="shared", n_angles=5, angle_step=9.0, rotation="mixed", ways=10, shots=1, queries=19,
                 tasks_per_step=5, inner_lr=0.01, outer_lr=1e-4, lr_mode="per_layer", inner_steps=1,
                 outer_opt="adam", steps=1000, eval_interval=100, engine="func", device="cpu"),
    # A run that learns visibly within about a minute on a laptop CPU.
    "demo": dict(arch="shared", n_angles=5, angle_step=9.0, rotation="mixed", ways=5, shots=5, queries=5,
                 tasks_per_step=4, inner_lr=0.1, outer_lr=1e-3, lr_mode="per_layer", inner_steps=1,
                 outer_opt="adam", steps=300, eval_interval=25, eval_tasks=20, engine="func", device="cpu"),
}


def preset(name: str, **overrides) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return RunConfig(**{**PRESETS[name], **overrides})
