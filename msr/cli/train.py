"""``python -m msr train``: meta-train a Rotated MNIST model in this process."""
from __future__ import annotations

import argparse

from ..core.data import parse_angles
from ..core.errors import ConfigError
from ..core.settings import add_flags, given
from ..mnist.config import PRESETS, RunConfig, preset
from .common import train_here


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """A flag for every RunConfig field; None means 'keep the preset's value'."""
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="start from a preset: 'seed' = the student project's defaults, 'demo' = a quick run")
    add_flags(p, RunConfig)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    base = preset(args.preset) if args.preset else RunConfig()
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


def register(sub) -> None:
    t = sub.add_parser("train", help="meta-train a model")
    add_run_arguments(t)
    t.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=run)
