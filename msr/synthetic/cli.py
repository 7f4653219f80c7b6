"""``python -m msr synthetic``: one model on one of the paper's synthetic problems.

The run is saved like any other (a run folder under --runs-dir, listed by
``python -m msr runs``, resumable). Progress goes to stderr, one line per
evaluation; the result to stdout (with ``--json``, one JSON object as the
last line). Exit codes as for ``train``.
"""
from __future__ import annotations

import argparse

from ..config import DEVICES
from ..meta import ENGINES, LR_MODES
from .config import SyntheticConfig
from .data import ALL_PROBLEMS, DEFAULT_CACHE
from .models import MODELS, ROTATION_MODELS
from .rotation import GROUPS as ROTATION_PROBLEMS

DEFAULTS = SyntheticConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--problem", choices=list(ALL_PROBLEMS), default=DEFAULTS.problem,
                   help="rank1: convolution; rank2/rank5: locally connected with shared structure; "
                        "rot4/rot8/rot8_flip: 2-D, made by a C4/C8/D8 group convolution")
    p.add_argument("--model", choices=list(dict.fromkeys([*MODELS, *ROTATION_MODELS])), default=None,
                   help="architecture (default: msr-fc for the 1-D problems, msr-conv-dense for the 2-D ones); "
                        "1-D: " + ", ".join(MODELS) + "; 2-D: " + ", ".join(ROTATION_MODELS))
    p.add_argument("--steps", type=int, default=DEFAULTS.steps, help="outer steps")
    p.add_argument("--tasks-per-step", type=int, default=DEFAULTS.tasks_per_step, help="tasks per meta-batch")
    p.add_argument("--latent", type=int, default=None,
                   help="latent size of MSR-FC (default: the paper's, 3 / 6 / 30 for rank1 / rank2 / rank5) "
                        "or of the dense MSR-Conv (default: the task's generating coefficients, 27 / 18 / 18)")
    p.add_argument("--shots", type=int, default=DEFAULTS.shots, help="support examples per task")
    p.add_argument("--queries", type=int, default=DEFAULTS.queries, help="query examples per task")
    p.add_argument("--inner-lr", type=float, default=DEFAULTS.inner_lr, help="initial inner learning rate")
    p.add_argument("--outer-lr", type=float, default=DEFAULTS.outer_lr, help="Adam learning rate")
    p.add_argument("--lr-mode", choices=LR_MODES, default=DEFAULTS.lr_mode, help="inner learning rate mode")
    p.add_argument("--inner-steps", type=int, default=DEFAULTS.inner_steps, help="inner SGD steps")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the model and the task draws")
    p.add_argument("--data-seed", type=int, default=DEFAULTS.data_seed, help="seed of the dataset")
    p.add_argument("--tasks", type=int, default=None,
                   help="tasks in the dataset, 80%% train (default: the authors', 2,000 for rot8_flip, else 10,000)")
    p.add_argument("--eval-interval", type=int, default=DEFAULTS.eval_interval, help="evaluate every N steps")
    p.add_argument("--test-tasks", type=int, default=DEFAULTS.test_tasks, help="test tasks per evaluation")
    p.add_argument("--engine", choices=ENGINES, default=DEFAULTS.engine, help="meta-gradient engine")
    p.add_argument("--device", choices=DEVICES, default=DEFAULTS.device, help="where to train")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: these models are too small to gain from more)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="folder for the generated datasets")
    p.add_argument("--no-cache", action="store_true", help="generate the dataset in memory only")
    p.add_argument("--runs-dir", default="runs", help="where runs are saved")
    p.add_argument("--name", default="", help="a label for the run")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def config_from_args(args: argparse.Namespace) -> SyntheticConfig:
    return SyntheticConfig(
        problem=args.problem, model=args.model or ("msr-conv-dense" if args.problem in ROTATION_PROBLEMS else "msr-fc"),
        latent=args.latent, steps=args.steps,
        tasks_per_step=args.tasks_per_step, shots=args.shots, queries=args.queries, inner_lr=args.inner_lr,
        outer_lr=args.outer_lr, lr_mode=args.lr_mode, inner_steps=args.inner_steps,
        eval_interval=args.eval_interval, test_tasks=args.test_tasks, seed=args.seed, data_seed=args.data_seed,
        n_tasks=args.tasks, engine=args.engine, device=args.device,
        cache_dir=None if args.no_cache else args.cache_dir, threads=args.threads, runs_dir=args.runs_dir,
        name=args.name).validate()


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
