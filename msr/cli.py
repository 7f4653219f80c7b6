"""Command line: ``python -m msr train|runs``.

Bad input ends with exit code 2 and one line on stderr saying what is wrong
and what is allowed; nothing is written to disk in that case.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import fields

from .config import PRESETS, ConfigError, RunConfig, preset
from .data import DataError, ROTATION_MODES, SOURCES, parse_angles
from .meta import ENGINES, LR_MODES, OUTER_OPTIMIZERS
from .models import ARCHITECTURES

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse hook
        raise UsageError(message)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """A flag for every RunConfig field; None means 'keep the preset's value'."""
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="start from a preset: 'seed' = the student project's defaults, 'demo' = a quick run")
    p.add_argument("--arch", choices=list(ARCHITECTURES), help="architecture")
    p.add_argument("--angles", type=str, help="explicit angle list in degrees, e.g. 0,45,90")
    p.add_argument("--n-angles", type=int, help="number of angles (with --angle-step)")
    p.add_argument("--angle-step", type=float, help="degrees between angles")
    p.add_argument("--rotation", choices=ROTATION_MODES, help="rotation mode")
    p.add_argument("--ways", type=int, help="classes per task (2..10)")
    p.add_argument("--shots", type=int, help="support images per class")
    p.add_argument("--queries", type=int, help="query images per class")
    p.add_argument("--tasks-per-step", type=int, help="tasks per meta-batch")
    p.add_argument("--inner-lr", type=float, help="inner-loop learning rate (initial value when learned)")
    p.add_argument("--outer-lr", type=float, help="outer-loop learning rate")
    p.add_argument("--lr-mode", choices=LR_MODES, help="inner learning rate mode")
    p.add_argument("--inner-steps", type=int, help="inner-loop SGD steps")
    p.add_argument("--first-order", action=argparse.BooleanOptionalAction, default=None,
                   help="drop second-order terms")
    p.add_argument("--outer-opt", choices=OUTER_OPTIMIZERS, help="outer optimizer")
    p.add_argument("--steps", type=int, help="outer steps")
    p.add_argument("--eval-interval", type=int, help="evaluate every N steps")
    p.add_argument("--eval-tasks", type=int, help="test tasks per evaluation (≥ 2)")
    p.add_argument("--engine", choices=ENGINES, help="meta-gradient engine")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--data-source", choices=SOURCES, help="'bundled' sample or full 'mnist' from --data-dir")
    p.add_argument("--data-dir", type=str, help="folder for full MNIST")
    p.add_argument("--download", action=argparse.BooleanOptionalAction, default=None,
                   help="download full MNIST into --data-dir if missing")
    p.add_argument("--runs-dir", type=str, help="where runs are saved")
    p.add_argument("--channels", type=int, help="conv channels")
    p.add_argument("--latent", type=int, help="latent size of the dense-U linear layer")
    p.add_argument("--conv-latent", type=int, help="latent size of the dense-U conv ('dense' arch)")
    p.add_argument("--checkpoint-budget-mb", type=float, help="disk cap for a run's checkpoints")
    p.add_argument("--name", type=str, help="a label for the run")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    base = preset(args.preset) if args.preset else RunConfig()
    changes = {}
    for f in fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if f.name == "angles":
            try:
                value = parse_angles(value)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        changes[f.name] = value
    if "angles" not in changes and ({"n_angles", "angle_step"} & set(changes)):
        changes["angles"] = None
    return base.replace(**changes)


class CliProgress:
    """A tqdm bar on a terminal; otherwise one line per evaluation in the
    student project's format."""

    def __init__(self, total: int, quiet: bool):
        self.quiet = quiet
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="step", file=sys.stderr)

    def __call__(self, event) -> None:
        if self.quiet:
            return
        if event.kind == "progress" and self.bar is not None:
            self.bar.n = event.step
            post = {}
            if event.loss is not None:
                post["loss"] = f"{event.loss:.4f}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.refresh()
        elif event.kind == "eval":
            rec = event.record
            sps = rec.get("steps_per_sec")
            line = (f"Step: {rec['step']}. Steps/sec: {sps:.2f}. " if sps else f"Step: {rec['step']}. ") + \
                   f"Val Loss: {rec['test_loss']:.4f}. Val Acc: {rec['test_acc']:.3f}"
            (self.bar.write if self.bar is not None else lambda s: print(s, file=sys.stderr, flush=True))(line)
        elif event.kind == "done" and self.bar is not None:
            self.bar.close()


def cmd_train(args) -> int:
    from .train import train

    config = config_from_args(args).validate()
    progress = CliProgress(config.steps, quiet=args.quiet)
    result = train(config, on_event=progress)
    summary = result.summary()
    if not args.json:
        print(f"{result.status}: {result.steps} steps, test loss {summary['test_loss']:.4f}, "
              f"test acc {summary['test_acc']:.3f}, run saved in {result.run_dir}")
        if result.message:
            print(result.message)
    else:
        print(json.dumps(summary))
    return 0 if result.status != "failed" else 1


def cmd_runs(args) -> int:
    from .runs import list_runs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = list_runs(args.runs_dir)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"run_id": r.run_id, "path": str(r.path), "arch": r.config.arch,
                           "status": r.status.get("status"), "steps": r.last.get("step"),
                           "test_loss": r.last.get("test_loss"), "test_acc": r.last.get("test_acc")}
                          for r in runs]))
        return 0
    if not runs:
        print(f"no runs in '{args.runs_dir}'")
        return 0
    print(f"{'run':38} {'arch':10} {'status':10} {'step':>6} {'test loss':>10} {'test acc':>9}")
    for r in runs:
        last = r.last
        loss = f"{last['test_loss']:.4f}" if last.get("test_loss") is not None else "-"
        acc = f"{last['test_acc']:.3f}" if last.get("test_acc") is not None else "-"
        print(f"{r.run_id:38} {r.config.arch:10} {str(r.status.get('status')):10} "
              f"{last.get('step', '-'):>6} {loss:>10} {acc:>9}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m msr", description="Meta-learning Symmetries by Reparameterization "
                                                              "on Rotated MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    t = sub.add_parser("train", help="meta-train a model")
    add_run_arguments(t)
    t.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)
    r = sub.add_parser("runs", help="list saved runs")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)
    from .synthetic_cli import register
    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except (UsageError, ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
