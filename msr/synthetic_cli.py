"""``python -m msr synthetic``: one model on one of the paper's synthetic problems.

Progress goes to stderr, one line per evaluation; the result to stdout (with
``--json``, one JSON object as the last line).
"""
from __future__ import annotations

import argparse
import json
import sys

from .meta import ENGINES, LR_MODES
from .synthetic import DEFAULT_CACHE, DEVICES, MODELS, PROBLEMS, SyntheticConfig, run_synthetic

DEFAULTS = SyntheticConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--problem", choices=list(PROBLEMS), default=DEFAULTS.problem,
                   help="rank1: convolution; rank2/rank5: locally connected with shared structure")
    p.add_argument("--model", choices=list(MODELS), default=DEFAULTS.model, help="architecture")
    p.add_argument("--steps", type=int, default=DEFAULTS.steps, help="outer steps")
    p.add_argument("--tasks-per-step", type=int, default=DEFAULTS.tasks_per_step, help="tasks per meta-batch")
    p.add_argument("--latent", type=int, default=None,
                   help="MSR-FC latent size (default: the paper's, 3 / 6 / 30 for rank1 / rank2 / rank5)")
    p.add_argument("--shots", type=int, default=DEFAULTS.shots, help="support examples per task")
    p.add_argument("--queries", type=int, default=DEFAULTS.queries, help="query examples per task")
    p.add_argument("--inner-lr", type=float, default=DEFAULTS.inner_lr, help="initial inner learning rate")
    p.add_argument("--outer-lr", type=float, default=DEFAULTS.outer_lr, help="Adam learning rate")
    p.add_argument("--lr-mode", choices=LR_MODES, default=DEFAULTS.lr_mode, help="inner learning rate mode")
    p.add_argument("--inner-steps", type=int, default=DEFAULTS.inner_steps, help="inner SGD steps")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the model and the task draws")
    p.add_argument("--data-seed", type=int, default=DEFAULTS.data_seed, help="seed of the dataset")
    p.add_argument("--tasks", type=int, default=DEFAULTS.n_tasks, help="tasks in the dataset (80%% train)")
    p.add_argument("--eval-interval", type=int, default=DEFAULTS.eval_interval, help="evaluate every N steps")
    p.add_argument("--test-tasks", type=int, default=DEFAULTS.test_tasks, help="test tasks per evaluation")
    p.add_argument("--engine", choices=ENGINES, default=DEFAULTS.engine, help="meta-gradient engine")
    p.add_argument("--device", choices=DEVICES, default=DEFAULTS.device, help="where to train")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: these models are too small to gain from more)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="folder for the generated datasets")
    p.add_argument("--no-cache", action="store_true", help="generate the dataset in memory only")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def config_from_args(args: argparse.Namespace) -> SyntheticConfig:
    return SyntheticConfig(
        problem=args.problem, model=args.model, latent=args.latent, steps=args.steps,
        tasks_per_step=args.tasks_per_step, shots=args.shots, queries=args.queries, inner_lr=args.inner_lr,
        outer_lr=args.outer_lr, lr_mode=args.lr_mode, inner_steps=args.inner_steps,
        eval_interval=args.eval_interval, test_tasks=args.test_tasks, seed=args.seed, data_seed=args.data_seed,
        n_tasks=args.tasks, engine=args.engine, device=args.device,
        cache_dir=None if args.no_cache else args.cache_dir, threads=args.threads).validate()


def _progress_line(record: dict) -> str:
    sps = record["step"] / record["seconds"] if record["seconds"] else None
    head = f"Step: {record['step']}. " + (f"Steps/sec: {sps:.2f}. " if sps else "")
    line = head + f"Test MSE: {record['test_mse']:.4f} ± {record['test_err']:.4f}. Conv score: {record['conv_score']:.3f}"
    if record.get("u_conv_score") is not None:
        line += f" (U: {record['u_conv_score']:.3f})"
    return line


def cmd_synthetic(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)

    def on_eval(record, snapshot):
        if not args.quiet:
            print(_progress_line(record), file=sys.stderr, flush=True)

    result = run_synthetic(cfg.problem, cfg.model, config=cfg, on_eval=on_eval, keep_snapshots=False)
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{result.status}: {MODELS[cfg.model].label} on {cfg.problem}, {result.steps} steps, "
              f"test MSE {summary['test_mse']:.4f} ± {summary['test_err']:.4f}, "
              f"conv score {summary['conv_score_start']:.3f} → {summary['conv_score']:.3f}")
        if result.message:
            print(result.message)
    return 0 if result.status != "failed" else 1


def register(subparsers) -> None:
    """Add the ``synthetic`` command to ``python -m msr``."""
    p = subparsers.add_parser("synthetic", help="the paper's synthetic problems (does MSR-FC learn convolution?)",
                              description="Meta-train one model on rank1 / rank2 / rank5 with the authors' "
                                          "protocol and report test MSE and the convolution score.")
    add_arguments(p)
    p.set_defaults(func=cmd_synthetic)
