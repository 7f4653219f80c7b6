"""What a sweep runs: the fixed config, the grid, the seeds, an optional inner-rate search; checked before anything is written."""
from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Mapping

from ...core.errors import ConfigError, MachineError
from ...core.settings import MAX_THREADS, specs
from ...mnist.config import RunConfig
from ...mnist.memory import estimate_peak_bytes
from ..admission import admit, available_memory_bytes, check_threads

EXECUTORS = ("local", "ray")
# Grid fields that cannot vary: where runs go, and what names a run.
NOT_GRIDDED = ("runs_dir", "seed", "angles", "name", "log_to")  # log_to: the sweep's, for every run
MAX_RATES = 12  # candidate inner rates of a rate search, at most
MAX_SEEDS = 1000  # seeds of one sweep, at most
MAX_POINTS = 10_000  # runs of one sweep, its rate search included, at most
@dataclass
class SweepSpec:
    """What a sweep runs: the fixed config, the grid, the seeds, and how."""
    base: dict  # RunConfig fields, as to_dict gives them
    grid: dict[str, list]  # field -> values (in order)
    seeds: list[int]
    executor: str = "local"
    workers: int | None = None  # None: what fits in cores and memory
    threads: int = 1  # torch threads of every run (the same under every executor)
    address: str | None = None  # a Ray cluster; None: a local Ray
    gpus_per_run: float = 0.25  # on CUDA, the share of a GPU each Ray task asks for
    name: str = ""
    rate_search: dict | None = None  # {"values": [inner rates], "steps": n, "seed": s}: see the module docstring

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SweepSpec":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def settings(self) -> list[dict]:
        """Every combination of grid values, in grid order."""
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*(self.grid[n] for n in names))]

    def points(self) -> list["Point"]:
        """Every (grid values, seed), grid order first, then seeds."""
        return [Point(setting, seed) for setting in self.settings() for seed in self.seeds]

    def search_points(self) -> list["Point"]:
        """The rate search's runs: every grid setting at every candidate rate
        (none without a search)."""
        if not self.rate_search:
            return []
        seed = int(self.rate_search.get("seed", 0))
        return [Point(setting, seed, rate) for setting in self.settings() for rate in self.rate_search["values"]]

    def all_points(self) -> list["Point"]:
        return self.search_points() + self.points()

    def config(self, point: "Point", rates: Mapping[str, float] | None = None) -> RunConfig:
        """The point's run config. A search point trains for the search's steps
        and is evaluated on validation tasks; a main point of a sweep with a
        search takes its setting's chosen rate from ``rates`` (group -> rate;
        the fixed inner rate until one is chosen)."""
        cfg = RunConfig.from_dict({**self.base, **point.setting, "seed": point.seed})
        label = ", ".join(f"{k}={_text(v)}" for k, v in point.setting.items())
        if point.rate is not None:
            cfg = cfg.replace(inner_lr=point.rate, eval_on="validation", steps=int(self.rate_search["steps"]),
                              eval_interval=min(cfg.eval_interval, int(self.rate_search["steps"])))
            return cfg.replace(name=f"{self.name or 'sweep'}: rate search, {label + ', ' if label else ''}"
                                    f"inner rate {_text(point.rate)}")
        if self.rate_search and rates and point.group in rates:
            cfg = cfg.replace(inner_lr=float(rates[point.group]))
        return cfg.replace(name=f"{self.name or 'sweep'}: {label + ', ' if label else ''}seed {point.seed}")


@dataclass(frozen=True)
class Point:
    setting: dict
    seed: int
    rate: float | None = None  # a rate search's candidate inner rate (None: a run of the sweep proper)

    @property
    def key(self) -> str:
        extra = {} if self.rate is None else {"rate search": self.rate}
        return json.dumps({**self.setting, "seed": self.seed, **extra}, sort_keys=True)

    @property
    def group(self) -> str:
        return json.dumps(self.setting, sort_keys=True)


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_value(name: str, text: str):
    """One grid value as the field's type (bool: true/false)."""
    s = specs(RunConfig)[name]
    default = getattr(RunConfig, name)
    kind = s.kind or type(default)
    text = text.strip()
    try:
        if kind is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        return kind(text)
    except ValueError:
        raise ConfigError(f"grid value {text!r} is not a {kind.__name__} for {name}", field="grid") from None


def parse_grid(items: list[str]) -> dict[str, list]:
    """``FIELD=V1,V2`` items (a field may not repeat) -> {field: values}."""
    grid: dict[str, list] = {}
    allowed = [n for n in specs(RunConfig) if n not in NOT_GRIDDED]
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--grid takes FIELD=V1,V2,..., got {item!r}", field="grid")
        if name not in allowed:
            raise ConfigError(f"cannot vary {name!r} in a sweep; allowed: {', '.join(allowed)}", field="grid")
        if name in grid:
            raise ConfigError(f"{name} is given twice in the grid", field="grid")
        parsed = [parse_value(name, v) for v in values.split(",") if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"{name} repeats a value in the grid", field="grid")
        grid[name] = parsed
    return grid


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas, e.g. 0,1,2; got {text!r}",
                          field="seeds") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs at least one seed and no repeats, got {text!r}", field="seeds")
    return seeds


def _where(point: Point) -> str:
    where = ", ".join(f"{k}={_text(v)}" for k, v in point.setting.items()) or "the fixed settings"
    if point.rate is not None:
        where = f"rate search ({where}, inner rate {_text(point.rate)})"
    return where


def check(spec: SweepSpec) -> list[RunConfig]:
    """Every point's config, validated before anything is written (the first
    bad one's ConfigError names its point)."""
    if spec.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {spec.executor!r}; allowed: {', '.join(EXECUTORS)}")
    if spec.executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("the ray executor needs the ray package: pip install 'ray>=2.40'")
    if spec.workers is not None and (not isinstance(spec.workers, int) or spec.workers < 1):
        raise ConfigError(f"workers must be a whole number ≥ 1, got {spec.workers!r}")
    if not isinstance(spec.threads, int) or isinstance(spec.threads, bool) or not 1 <= spec.threads <= MAX_THREADS:
        raise ConfigError(f"threads must be a whole number from 1 to {MAX_THREADS}, got {spec.threads!r}",
                          field="threads")
    gpus = spec.gpus_per_run
    if not isinstance(gpus, (int, float)) or isinstance(gpus, bool) or not math.isfinite(gpus) or not 0 < gpus <= 1:
        raise ConfigError(f"gpus-per-run must be a share of a GPU in (0, 1], got {gpus!r}", field="gpus_per_run")
    if not isinstance(spec.seeds, list) or not 1 <= len(spec.seeds) <= MAX_SEEDS:
        got = len(spec.seeds) if isinstance(spec.seeds, list) else repr(spec.seeds)
        raise ConfigError(f"a sweep takes 1 to {MAX_SEEDS} seeds, got {got}", field="seeds")
    if spec.base.get("angles") is not None and {"n_angles", "angle_step"} & set(spec.grid):
        raise ConfigError("give either --angles or a grid of n_angles/angle_step, not both: the grid would train "
                          "the same angles at every value", field="grid")
    if spec.rate_search is not None:
        _check_rate_search(spec)
    count = math.prod(len(v) for v in spec.grid.values()) * (len(spec.seeds) + len(spec.rate_search["values"]
                                                                               if spec.rate_search else []))
    if count > MAX_POINTS:
        raise ConfigError(f"this sweep would make {count:,} runs; at most {MAX_POINTS:,} are allowed", field="grid")
    configs = []
    for point in spec.all_points():
        cfg = spec.config(point)
        try:
            cfg.validate()
        except ConfigError as exc:
            raise ConfigError(f"{_where(point)}: {exc}", errors=exc.errors) from None
        configs.append(cfg)
    return configs


def admit_points(spec: SweepSpec) -> list[RunConfig]:
    """:func:`check`, then whether this machine can take every point now (the
    first it cannot take is named in a MachineError)."""
    configs = check(spec)
    if not (spec.executor == "ray" and spec.address):  # a cluster's nodes are not this machine
        check_threads(spec.threads)
    for point, cfg in zip(spec.all_points(), configs):
        try:
            admit(cfg)
        except MachineError as exc:
            raise MachineError(f"{_where(point)}: {exc}", field=exc.field) from None
    return configs


def _check_rate_search(spec: SweepSpec) -> None:
    search = spec.rate_search
    if not isinstance(search, dict) or not isinstance(search.get("values"), list):
        raise ConfigError("a rate search needs a list of candidate inner rates", field="rate_search")
    values = search["values"]
    if not 1 <= len(values) <= MAX_RATES or len(set(values)) != len(values) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"the rate search takes 1 to {MAX_RATES} distinct inner rates > 0, e.g. 0.01,0.1,1; got "
                          f"{values!r}", field="rate_search")
    if "inner_lr" in spec.grid:
        raise ConfigError("a rate search chooses the inner rate itself: do not also vary inner_lr in the grid",
                          field="rate_search")
    steps = search.get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100_000:
        raise ConfigError(f"the rate search's steps must be a whole number from 1 to 100,000, got {steps!r}",
                          field="rate_search")


def parse_rates(text: str) -> list[float]:
    """'0.01, 0.1, 1' -> [0.01, 0.1, 1.0] (ConfigError naming the bad entry)."""
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--rate-search takes inner rates separated by commas, e.g. 0.01,0.1,1; got {text!r}",
                          field="rate_search") from None
    return values


def default_workers(configs: list[RunConfig], threads: int = 1) -> int:
    """What fits: the cores (each run takes ``threads``) and the free memory
    (each run's estimated peak), at least one."""
    cores = max(1, (os.cpu_count() or 1) // threads)
    peak = max(estimate_peak_bytes(c) for c in configs)
    fit = max(1, int(available_memory_bytes() // max(peak, 1)))
    return max(1, min(cores, fit, len(configs)))
