"""``msr train``: meta-train a Rotated MNIST model in this process."""
from __future__ import annotations

import argparse

from ..core.choices import parse_angles
from ..core.errors import ConfigError
from ..core.settings import add_flags, given
from ..mnist.config import PRESETS, RunConfig, preset
from ..store.layout import default_runs_dir
from .common import add_config_flag, train_here

PRELOAD = ("torch",)  # see msr.cli.main.preload


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """A flag for every RunConfig field; None means 'keep the preset's value'."""
    add_config_flag(p)
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="start from a preset: 'seed' = the student project's defaults, 'demo' = a quick run")
    add_flags(p, RunConfig, defaults=RunConfig(runs_dir=default_runs_dir()))


def base_config(args: argparse.Namespace) -> RunConfig:
    """What the flags change: the --config file, else the preset, else the defaults (the runs folder: $MSR_RUNS_DIR
    or ./runs)."""
    if getattr(args, "config", None):
        if args.preset:
            raise ConfigError("give either --config or --preset, not both")
        return RunConfig.load(args.config)
    return preset(args.preset, runs_dir=default_runs_dir()) if args.preset else RunConfig(runs_dir=default_runs_dir())


def config_from_args(args: argparse.Namespace) -> RunConfig:
    base = base_config(args)
    changes = given(args, RunConfig)
    if "angles" in changes:
        try:
            changes["angles"] = parse_angles(changes["angles"])
        except ValueError as exc:
            raise ConfigError(str(exc), field="angles") from None
    if "angles" in changes and ({"n_angles", "angle_step"} & set(changes)):
        raise ConfigError("give either --angles or --n-angles/--angle-step, not both")
    if "angles" not in changes and ({"n_angles", "angle_step"} & set(changes)):
        changes["angles"] = None
    return base.replace(**changes)


def run(args) -> int:
    return train_here(config_from_args(args), args)


def register(sub, arguments: bool = True) -> None:
    t = sub.add_parser("train", help="meta-train a model on Rotated MNIST in this process",
                       description="Meta-train a model on Rotated MNIST in this process; the run is saved in its "
                                   "own folder under the runs folder.")
    if arguments:
        add_run_arguments(t)
        t.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
        t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=run)
