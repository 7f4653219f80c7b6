"""``python -m msr``: the command line (msr.cli.main).

Ctrl-C while the package, and the libraries the command will load (torch,
numpy: its PRELOAD), load ends the command at once with one line and exit
code 130: a KeyboardInterrupt inside a library's import can leave it
half-loaded, so that a later import fails with another error (a
RecursionError, a C++ abort) instead. Nothing is written before the command
runs.
"""
import os
import signal
import sys


def _interrupted(signum, frame):
    sys.stderr.write("interrupted before the run started; nothing was trained\n")
    sys.stderr.flush()
    os._exit(130)


_default = signal.signal(signal.SIGINT, _interrupted)
from .core.runtime import share_cores  # noqa: E402 - loaded under the handler above

share_cores()  # before torch loads OpenMP
from .cli.main import main, preload  # noqa: E402 - loaded under the handler above

preload(sys.argv[1:])

signal.signal(signal.SIGINT, _default)
sys.exit(main())
