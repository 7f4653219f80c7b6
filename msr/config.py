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


@dataclass
class RunConfig:
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
    def validate(self, cuda_available: bool | None = None) -> "RunConfig":
        """Raise ConfigError on the first bad field; return self when all is well."""
        def one_of(name: str, value, allowed) -> None:
            if value not in allowed:
                raise ConfigError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")

        def positive_int(name: str, value, low: int = 1) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be a whole number ≥ {low}, got {value!r}")

        def positive(name: str, value) -> None:
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a number > 0, got {value!r}")

        one_of("architecture", self.arch, list(ARCHITECTURES))
        if self.angles is not None:
            if len(self.angles) == 0:
                raise ConfigError("the angle list is empty; give at least one angle in degrees, e.g. 0,45,90")
            if not all(isinstance(a, (int, float)) and math.isfinite(a) for a in self.angles):
                raise ConfigError(f"angles must be finite numbers of degrees, got {self.angles!r}")
            if len(set(float(a) for a in self.angles)) != len(self.angles):
                raise ConfigError(f"angles must be distinct, got {self.angles!r}")
        else:
            positive_int("angle count", self.n_angles)
            if not isinstance(self.angle_step, (int, float)) or not math.isfinite(self.angle_step):
                raise ConfigError(f"angle step must be a finite number of degrees, got {self.angle_step!r}")
        if len(self.angle_list()) > 360:
            raise ConfigError("at most 360 angles are allowed")
        one_of("rotation mode", self.rotation, ROTATION_MODES)
        if self.rotation == "query" and 0.0 not in self.angle_list():
            raise ConfigError("rotation mode 'query' keeps supports unrotated, so the angles must include 0")
        if not isinstance(self.ways, int) or isinstance(self.ways, bool) or not 2 <= self.ways <= 10:
            raise ConfigError(f"ways must be between 2 and 10 (MNIST has 10 digits), got {self.ways!r}")
        positive_int("shots", self.shots)
        positive_int("queries", self.queries)
        if self.data_source == "bundled" and self.shots + self.queries > BUNDLED_PER_CLASS:
            raise ConfigError(f"shots + queries = {self.shots + self.queries} exceeds the {BUNDLED_PER_CLASS} "
                              "images per class of the bundled data; allowed: at most 100")
        positive_int("tasks per step", self.tasks_per_step)
        positive("inner learning rate", self.inner_lr)
        positive("outer learning rate", self.outer_lr)
        one_of("lr mode", self.lr_mode, LR_MODES)
        positive_int("inner steps", self.inner_steps)
        one_of("outer optimizer", self.outer_opt, OUTER_OPTIMIZERS)
        positive_int("steps", self.steps)
        positive_int("evaluation interval", self.eval_interval)
        positive_int("evaluation tasks", self.eval_tasks, low=2)
        one_of("engine", self.engine, ENGINES)
        one_of("device", self.device, DEVICES)
        if self.device == "cuda":
            if cuda_available is None:
                import torch
                cuda_available = torch.cuda.is_available()
            if not cuda_available:
                raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be a whole number ≥ 0, got {self.seed!r}")
        one_of("data source", self.data_source, SOURCES)
        positive_int("channels", self.channels)
        positive_int("latent size", self.latent)
        positive_int("conv latent size", self.conv_latent)
        positive("checkpoint budget (MB)", self.checkpoint_budget_mb)
        return self

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"

    # ------------------------------------------------------------- (de)ser
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


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
