"""The command line, ``msr`` (or ``python -m msr``): one module per subcommand.

Only the chosen command's flags are built, and each command imports what it
trains or reads with inside its ``run``, so ``msr --help``, ``msr stop`` and
``msr runs --help`` answer without loading torch.

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

import importlib
import os
import sys

from .. import __version__
from ..core.errors import ConfigError, DataError, MachineError
from ..store.files import RunFolderError, describe_os_error
from . import export, resume, runs, stop, sweep, symmetry, synthetic, train, worker
from .common import EXIT_BAD_INPUT, EXIT_MACHINE, OneLineParser, UsageError, unknown_flags_message

SUBCOMMANDS = (train, runs, resume, stop, symmetry, sweep, synthetic, export, worker)  # in the order --help lists them
HIDDEN = {worker.NAME}  # internal commands: not in --help, not suggested


def prog() -> str:
    """``msr`` as the console script, ``python -m msr`` as a module."""
    return "python -m msr" if os.path.basename(sys.argv[0]) == "__main__.py" else "msr"


def build_parser(command: str | None = None) -> OneLineParser:
    """The parser; with ``command``, only that subcommand gets its flags (the others are named, for --help;
    "" builds none)."""
    parser = OneLineParser(prog=prog(), description="Meta-learning Symmetries by Reparameterization on Rotated "
                                                    "MNIST and the paper's synthetic problems.",
                           epilog="Exit codes: 0 completed, 1 failed, 2 bad input, 3 stopped, 4 the machine cannot "
                                  "take the run. The runs folder is $MSR_RUNS_DIR, else ./runs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser, metavar="COMMAND")
    sub.hidden = HIDDEN
    for module in SUBCOMMANDS:
        module.register(sub, arguments=command is None or command == _name(module))
    return parser


def _name(module) -> str:
    return getattr(module, "NAME", None) or module.__name__.rpartition(".")[2]


def _command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def preloads(argv: list[str]) -> tuple[str, ...]:
    """The libraries the command named in ``argv`` will load (its module's PRELOAD; nothing for --help)."""
    if any(a in ("-h", "--help", "--version") for a in argv):
        return ()
    module = next((m for m in SUBCOMMANDS if _name(m) == _command(argv)), None)
    return tuple(getattr(module, "PRELOAD", ()))


def preload(argv: list[str]) -> None:
    """Import what the command named in ``argv`` will load.

    msr/__main__.py calls this while Ctrl-C still ends the process at once: a KeyboardInterrupt inside
    torch's or numpy's import leaves them half-loaded, and the command then crashes instead of stopping."""
    for name in preloads(argv):
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command(argv)
    parser = build_parser(command or "")  # "": top-level --help and --version build no command's flags
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        chosen = next((a for a in parser._actions if a.dest == "command"), None)
        sub = chosen.choices.get(command) if chosen is not None and command else None
        print(f"error: {unknown_flags_message(str(exc), sub)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ConfigError, DataError, RunFolderError) as exc:
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
