"""Config fields that carry their own label, help and limits, and the checks, flags and errors made from them.

A run config (msr.mnist.config.RunConfig, msr.synthetic.config.SyntheticConfig) is
a dataclass whose fields are declared with :func:`setting`. The command
line's flags (:func:`add_flags`), the form's labels and tooltips, and the
bounds and wording of validation (:class:`Checks`) are all read from there, so
they cannot drift apart.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import ConfigError

# Bounds every run kind shares: a run's steps (the stop button is polled between steps, so any count is
# stoppable, but no run needs more), and the torch threads a run may ask for (the machine's cores are checked
# when it is launched, msr.runner.admission).
MAX_STEPS = 10_000_000
MAX_THREADS = 1024


# What a run can log to besides its folder (msr.runner.trackers): each tracker is an optional extra.
LOG_TARGETS = ("none", "tensorboard", "wandb", "tensorboard,wandb")
LOG_HELP = ("also log every evaluation to TensorBoard (event files in the run folder) and/or Weights & Biases "
            "(WANDB_MODE=offline keeps it local); each needs its package")


@dataclass(frozen=True)
class Spec:
    """What a field says about itself (the dataclass field's metadata)."""
    label: str  # the form's label
    name: str  # the field in a message: "<name> must be …"
    help: str | None = None  # the form's tooltip and the flag's help
    check: str | None = None  # "choice", "whole", "positive", "text" or None (checked by hand)
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    flag: str | None = None  # the command line's flag; "" for none
    kind: type | None = None  # the flag's type (int, float, str, bool); None: from the default


    @property
    def tooltip(self) -> str | None:
        """The help as the form's tooltip: a sentence."""
        return None if not self.help else self.help + ("" if self.help.endswith(".") else ".")


def setting(default: Any, label: str, help: str | None = None, *, name: str | None = None,
            check: str | None = None, low: float | None = None, high: float | None = None,
            choices: Iterable | None = None, flag: str | None = None, kind: type | None = None):
    """A dataclass field that carries its Spec."""
    spec = Spec(label, name or label.lower(), help, check, low, high,
                tuple(choices) if choices is not None else None, flag, kind)
    return dataclasses.field(default=default, metadata={"spec": spec})


def spec(cls, name: str) -> Spec:
    return next(f.metadata["spec"] for f in fields(cls) if f.name == name)


def specs(cls) -> dict[str, Spec]:
    """Every field's Spec, in field order (fields without one are left out)."""
    return {f.name: f.metadata["spec"] for f in fields(cls) if "spec" in f.metadata}


class Settings:
    """What every run config shares: its dict form for run folders, read
    back strictly.

    ``KIND`` is the name of the run kind the config belongs to (msr.kinds);
    a run's config.json records it beside the fields, and ``from_dict``
    accepts it when it names this class's kind."""

    KIND: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """The config of these fields; a run's whole config.json (with its
        ``kind``) reads back too. ConfigError names unknown fields, and a
        kind that is not this class's."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object of fields, got {type(data).__name__}")
        data = dict(data)
        if "kind" in data:
            recorded = data.pop("kind")
            if recorded != cls.KIND:
                raise ConfigError(f"this config is of a {recorded!r} run, not of a {cls.KIND!r} run")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path):
        """The config a JSON file holds (a run's config.json, or the folder of a run), unchecked."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no config file '{path}'") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"config file '{path}' cannot be read as JSON ({exc})") from None
        return cls.from_dict(data)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Checks:
    """Collects at most one line per bad field of a config, in the order
    checked; ``raise_any`` raises them all as one ConfigError."""

    def __init__(self, config):
        self.config = config
        self.specs = specs(type(config))
        self.errors: dict[str | None, str] = {}

    def fail(self, field: str | None, message: str) -> None:
        self.errors.setdefault(field, message)

    def ok(self, *names: str) -> bool:
        """None of these fields has failed."""
        return not any(n in self.errors for n in names)

    def guard(self, field: str | None, check: Callable, *args) -> None:
        """Run a check that raises ConfigError; its ``field`` (else ``field``) gets the line."""
        try:
            check(*args)
        except ConfigError as exc:
            for name, message in exc.errors.items():
                self.fail(name if name is not None else field, message)

    def check(self, *names: str, low: float | None = None, high: float | None = None) -> None:
        """The check each field's Spec declares (``low``/``high`` override its bounds)."""
        for name in names:
            s, value = self.specs[name], getattr(self.config, name)
            if s.check == "choice":
                self.one_of(name, value, s.choices)
            elif s.check == "whole":
                self.whole(name, value, s.low if low is None else low, s.high if high is None else high)
            elif s.check == "positive":
                self.positive(name, value)
            elif s.check == "text":
                if not isinstance(value, str):
                    self.fail(name, f"{s.name} must be text, got {value!r}")

    def one_of(self, name: str, value, allowed) -> None:
        if value not in allowed:
            self.fail(name, f"unknown {self.specs[name].name} {value!r}; allowed: {', '.join(map(str, allowed))}")

    def whole(self, name: str, value, low: float = 1, high: float | None = None) -> None:
        if not _is_whole(value) or value < low or (high is not None and value > high):
            allowed = f"≥ {low:,}" if high is None else f"from {low:,} to {high:,}"
            self.fail(name, f"{self.specs[name].name} must be a whole number {allowed}, got {value!r}")

    def positive(self, name: str, value) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            self.fail(name, f"{self.specs[name].name} must be a number > 0, got {value!r}")

    def raise_any(self) -> None:
        if self.errors:
            raise ConfigError.of(self.errors)


# -------------------------------------------------------------- command line
def flag_of(name: str, s: Spec) -> str:
    return s.flag if s.flag is not None else "--" + name.replace("_", "-")


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(_shown(v) for v in value)
    return "none" if value is None else str(value) if value != "" else "''"


def flag_help(s: Spec, default) -> str:
    """A flag's help: what it does, its bounds and its default (the config's own)."""
    help_ = s.help or s.label
    extra = []
    if s.check == "whole":
        low = int(1 if s.low is None else s.low)
        extra.append(f"{low:,} to {int(s.high):,}" if s.high is not None else f"≥ {low:,}")
    elif s.check == "positive":
        extra.append("> 0")
    extra.append(f"default {('on' if default else 'off') if isinstance(default, bool) else _shown(default)}")
    return (help_ + (f" ({'; '.join(extra)})" if extra else "")).replace("%", "%%")


def add_flags(parser: argparse.ArgumentParser, cls, skip: Iterable[str] = (), defaults=None) -> None:
    """A flag for every field of ``cls`` with a Spec (not those in ``skip``
    nor those whose flag is ""). Every default is None, meaning 'not given';
    the help shows the field's bounds and the default of ``defaults`` (a
    config; by default ``cls()``)."""
    defaults = defaults if defaults is not None else cls()
    for name, s in specs(cls).items():
        flag = flag_of(name, s)
        if name in skip or not flag:
            continue
        kind = s.kind or type(getattr(defaults, name))
        help_ = flag_help(s, getattr(defaults, name))
        metavar = flag.lstrip("-").replace("-", "_").upper()
        if kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif s.choices is not None:
            parser.add_argument(flag, dest=name, choices=list(s.choices), default=None, help=help_)
        else:
            parser.add_argument(flag, dest=name, type=kind, default=None, metavar=metavar, help=help_)


def given(args: argparse.Namespace, cls) -> dict:
    """The fields of ``cls`` that were given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
