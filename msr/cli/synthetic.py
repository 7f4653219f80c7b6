"""``msr synthetic``: one model on one of the paper's synthetic problems.

The run is saved like any other (a run folder under --runs-dir, listed by
``msr runs``, resumable). Progress goes to stderr, one line per evaluation;
the result to stdout (with ``--json``, one JSON object as the last line).
Exit codes as for ``train``.
"""
from __future__ import annotations

import argparse

from ..core.errors import ConfigError
from ..core.settings import add_flags, given
from ..store.layout import default_runs_dir
from ..synthetic import NAME
from .common import add_config_flag, train_here

PRELOAD = ("torch",)  # see msr.cli.main.preload

# What the command line sets where the config's own default differs.
CLI_DEFAULTS = {"threads": 1}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..synthetic.config import SyntheticConfig  # its problems and models load torch: only this command's

    add_config_flag(p)
    add_flags(p, SyntheticConfig, defaults=SyntheticConfig(runs_dir=default_runs_dir(), **CLI_DEFAULTS))
    p.add_argument("--no-cache", action="store_true", help="generate the dataset in memory only")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def config_from_args(args: argparse.Namespace):
    from ..synthetic.config import SyntheticConfig
    from ..synthetic.rotation import ROTATION_PROBLEMS

    changes = given(args, SyntheticConfig)
    if getattr(args, "config", None):
        base = SyntheticConfig.load(args.config)
        if args.no_cache:
            changes["cache_dir"] = None
        return base.replace(**changes).validate()
    changes = {**CLI_DEFAULTS, "runs_dir": default_runs_dir(), **changes}
    problem = changes.get("problem", SyntheticConfig.problem)
    changes.setdefault("model", "msr-conv-dense" if problem in ROTATION_PROBLEMS else "msr-fc")
    if args.no_cache:
        changes["cache_dir"] = None
    try:
        return SyntheticConfig(**changes).validate()
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    return train_here(config_from_args(args), args)


def register(sub, arguments: bool = True) -> None:
    """Add the ``synthetic`` command: named after the kind of run it trains."""
    p = sub.add_parser(NAME, help="the paper's synthetic problems (does MSR-FC learn convolution?)",
                       description="Meta-train one model on rank1 / rank2 / rank5 or rot4 / rot8 / "
                                   "rot8_flip with the authors' protocol and report test MSE and the "
                                   "convolution score (1-D) or the equivariance lens (2-D).")
    if arguments:
        add_arguments(p)
    p.set_defaults(func=run)
