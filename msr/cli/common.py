"""What every subcommand shares: one-line usage errors with suggestions, progress output, the outcome report,
exit codes, and the runs folder.

Only the standard library and light project modules are imported here: ``msr --help`` and ``msr stop`` never
load torch. A command imports what it trains or reads with inside its ``run``.
"""
from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

from ..core.errors import ConfigError
from ..store.files import json_safe
from ..store.layout import RUNS_DIR_ENV, default_runs_dir

# Exit codes: 0 completed, 1 failed, 2 bad input, 3 stopped, 4 the machine cannot take the run.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED, EXIT_MACHINE = 0, 1, 2, 3, 4


class UsageError(Exception):
    pass


def suggest(word: str, candidates) -> str:
    """' (did you mean X?)' for the closest candidate, else ''."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows an option's default where its text does not already say it."""

    def _get_help_string(self, action):
        help_ = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings or "default" in help_:
            return help_
        return help_ + " (default %(default)s)"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, and a mistyped
    flag or choice gets the closest one offered."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse hook
        raise UsageError(message)

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            shown = [c for c in action.choices if c not in getattr(action, "hidden", ())]
            name = argparse._get_action_name(action) or "command"
            raise argparse.ArgumentError(None, f"argument {name}: invalid choice: {value!r}{suggest(str(value), shown)}"
                                               f"; allowed: {', '.join(map(str, shown))}")
        return super()._check_value(action, value)

    def option_strings(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings]


def unknown_flags_message(message: str, parser: OneLineParser | None) -> str:
    """argparse's 'unrecognized arguments' with the closest flag of the command offered."""
    if parser is None or not message.startswith("unrecognized arguments:"):
        return message
    words = message.split(":", 1)[1].split()
    hints = [f"{w}{suggest(w.split('=')[0], parser.option_strings())}" for w in words if w.startswith("-")]
    return message if not hints else "unrecognized arguments: " + " ".join(hints)


def add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default=None,
                   help=f"the runs folder (default: ${RUNS_DIR_ENV}, else ./runs)")


def runs_dir_of(args) -> str:
    return getattr(args, "runs_dir", None) or default_runs_dir()


def existing_runs_dir(args) -> Path:
    """The runs folder the command reads; a bad-input error when it does not exist (a typo must not read as
    'no runs')."""
    root = Path(runs_dir_of(args))
    if not root.exists():
        raise ConfigError(f"no runs folder '{root}' (give --runs-dir, or set ${RUNS_DIR_ENV})")
    if not root.is_dir():
        raise ConfigError(f"'{root}' is not a folder (give the runs folder with --runs-dir)")
    return root


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


def find_run(ref: str, runs_dir: str | None = None) -> Path:
    """A run given by its folder or by its id under the runs folder."""
    runs_dir = runs_dir or default_runs_dir()
    for candidate in (Path(ref), Path(runs_dir) / ref):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no run '{ref}' (give a run folder, or a run id under '{runs_dir}')")


def add_config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default=None,
                   help="start from the settings in a JSON file: a run's own config.json (or its folder) works; "
                        "flags given as well change them")


def train_here(config, args) -> int:
    """Train a new run of ``config`` in this process (msr.runner.execute.train:
    the data and the machine are checked before any folder exists) and
    report it."""
    from .. import kinds
    from ..runner.execute import train

    progress = CliProgress(config.steps, quiet=getattr(args, "quiet", False), kind=kinds.of(config))
    return report(train(config, on_event=progress, continue_as=continuation(args)), args)


def run_here(run_dir, args, resume: bool = False) -> int:
    """Train an existing run folder in this process and report it."""
    from ..runner.execute import execute
    from ..store.reader import load_run

    rec = load_run(run_dir, with_metrics=False)
    progress = CliProgress(rec.total or 0, quiet=getattr(args, "quiet", False), kind=rec.kind)
    return report(execute(run_dir, resume=resume, on_event=progress, continue_as=continuation(args)), args)


def continuation(args):
    """The command that goes on with a run this one hands over (msr.runner.execute): ``msr resume`` of the run,
    printing what this command would have printed."""
    flags = [flag for flag in ("--json", "--quiet") if getattr(args, flag[2:], False)]
    return lambda run_dir: ["resume", str(Path(run_dir).resolve()), *flags]
