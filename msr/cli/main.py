"""Command line: ``python -m msr train|runs|resume|stop|sweep|symmetry|synthetic``, one module per subcommand.

Exit codes: **0** completed, **1** failed (for example a loss that
diverged), **2** bad input, **3** stopped (Stop, SIGTERM or Ctrl-C, after a
final evaluation), **4** the machine cannot take the run: too little free
memory for its estimated peak, no GPU for ``--device cuda``, a full disk, or a
runs folder that cannot be written (a file, or no permission); **130** Ctrl-C
before the run started. Bad input and machine
problems end with one line on stderr saying what is wrong and what to change;
nothing is written to disk in either case.
"""
from __future__ import annotations

import sys

from ..core.data import DataError
from ..core.errors import ConfigError, MachineError
from ..store.files import RunFolderError, describe_os_error
from . import resume, runs, stop, sweep, symmetry, synthetic, train, worker
from .common import EXIT_BAD_INPUT, EXIT_MACHINE, OneLineParser, UsageError

SUBCOMMANDS = (train, runs, resume, stop, symmetry, worker, sweep, synthetic)  # in the order --help lists them


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m msr", description="Meta-learning Symmetries by Reparameterization "
                                                              "on Rotated MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in SUBCOMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except (UsageError, ConfigError, DataError, RunFolderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MachineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MACHINE
    except OSError as exc:
        print(f"error: {describe_os_error(exc, getattr(exc, 'filename', None) or 'the runs folder')}", file=sys.stderr)
        return EXIT_MACHINE
    except KeyboardInterrupt:
        print("interrupted before the run started; nothing was trained", file=sys.stderr)
        return 130
