"""What every subcommand shares: one-line usage errors, progress output, the outcome report, exit codes."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import kinds
from ..core.errors import ConfigError
from ..runner.execute import execute, train
from ..store.files import json_safe
from ..store.reader import load_run

# Exit codes: 0 completed, 1 failed, 2 bad input, 3 stopped, 4 the machine cannot take the run.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED, EXIT_MACHINE = 0, 1, 2, 3, 4


class UsageError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse hook
        raise UsageError(message)


class CliProgress:
    """A tqdm bar on a terminal; otherwise one line per evaluation, in the
    run kind's words (msr.core.kind.RunKind.progress_line)."""

    def __init__(self, total: int, quiet: bool, kind):
        self.quiet, self.kind = quiet, kind
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
            line = self.kind.progress_line(event.record)
            (self.bar.write if self.bar is not None else lambda s: print(s, file=sys.stderr, flush=True))(line)
        elif event.kind == "done" and self.bar is not None:
            self.bar.close()


def exit_code(status: str) -> int:
    """0 completed, 1 failed, 3 stopped (Stop, SIGTERM or Ctrl-C); 2 is bad input, 4 the machine."""
    return {"completed": EXIT_OK, "stopped": EXIT_STOPPED}.get(status, EXIT_FAILED)


def report(result, args) -> int:
    """The outcome on stdout: one line of text, or the JSON summary."""
    summary = result.summary()
    if args.json:
        print(json.dumps(json_safe(summary), allow_nan=False))
    else:
        print(result.kind.outcome_line(result, summary))
        if result.message:
            print(result.message)
    return exit_code(result.status)


def print_json(value) -> None:
    print(json.dumps(json_safe(value), allow_nan=False))


def find_run(ref: str, runs_dir: str) -> Path:
    """A run given by its folder or by its id under the runs folder."""
    for candidate in (Path(ref), Path(runs_dir) / ref):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no run '{ref}' (give a run folder, or a run id under '{runs_dir}')")


def train_here(config, args) -> int:
    """Train a new run of ``config`` in this process (msr.runner.execute.train:
    the data and the machine are checked before any folder exists) and
    report it."""
    progress = CliProgress(config.steps, quiet=getattr(args, "quiet", False), kind=kinds.of(config))
    return report(train(config, on_event=progress), args)


def run_here(run_dir, args, resume: bool = False) -> int:
    """Train an existing run folder in this process and report it."""
    rec = load_run(run_dir, with_metrics=False)
    progress = CliProgress(rec.total or 0, quiet=getattr(args, "quiet", False), kind=rec.kind)
    return report(execute(run_dir, resume=resume, on_event=progress), args)

