"""``python -m msr synthetic``: one model on one of the paper's synthetic problems.

The run is saved like any other (a run folder under --runs-dir, listed by
``python -m msr runs``, resumable). Progress goes to stderr, one line per
evaluation; the result to stdout (with ``--json``, one JSON object as the
last line). Exit codes as for ``train``.
"""
from __future__ import annotations

import argparse

from ..settings import add_flags, given
from .config import SyntheticConfig
from .rotation import GROUPS as ROTATION_PROBLEMS

# What the command line sets where the config's own default differs.
CLI_DEFAULTS = {"threads": 1}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_flags(p, SyntheticConfig)
    p.add_argument("--no-cache", action="store_true", help="generate the dataset in memory only")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def config_from_args(args: argparse.Namespace) -> SyntheticConfig:
    changes = {**CLI_DEFAULTS, **given(args, SyntheticConfig)}
    problem = changes.get("problem", SyntheticConfig.problem)
    changes.setdefault("model", "msr-conv-dense" if problem in ROTATION_PROBLEMS else "msr-fc")
    if args.no_cache:
        changes["cache_dir"] = None
    return SyntheticConfig(**changes).validate()


def progress_line(record: dict) -> str:
    seconds = record.get("seconds")
    sps = record["step"] / seconds if seconds else None
    head = f"Step: {record['step']}. " + (f"Steps/sec: {sps:.2f}. " if sps else "")
    mse, err, score = record.get("test_mse"), record.get("test_err"), record.get("conv_score")
    fmt = lambda v, spec: format(v, spec) if isinstance(v, (int, float)) else "-"  # noqa: E731
    if "orbit_score" in record:
        line = head + (f"Test MSE: {fmt(mse, '.4f')} ± {fmt(err, '.4f')}. Equivariance error (90°): "
                       f"{fmt(record.get('equiv_error'), '.3f')}. Orbit score: {fmt(record.get('orbit_score'), '.2f')}")
        if record.get("u_orbit_score") is not None:
            line += f" (U: {record['u_orbit_score']:.2f})"
        return line
    line = head + f"Test MSE: {fmt(mse, '.4f')} ± {fmt(err, '.4f')}. Conv score: {fmt(score, '.3f')}"
    if record.get("u_conv_score") is not None:
        line += f" (U: {record['u_conv_score']:.3f})"
    return line


def cmd_synthetic(args: argparse.Namespace) -> int:
    from ..cli import start_in_this_process

    return start_in_this_process(config_from_args(args), "synthetic", args)


def register(subparsers) -> None:
    """Add the ``synthetic`` command to ``python -m msr``."""
    p = subparsers.add_parser("synthetic", help="the paper's synthetic problems (does MSR-FC learn convolution?)",
                              description="Meta-train one model on rank1 / rank2 / rank5 or rot4 / rot8 / "
                                          "rot8_flip with the authors' protocol and report test MSE and the "
                                          "convolution score (1-D) or the equivariance lens (2-D).")
    add_arguments(p)
    p.set_defaults(func=cmd_synthetic)
