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
from .cli.main import main, preload, preloads  # noqa: E402 - loaded under the handler above (no torch yet)
from .core.runtime import share_cores  # noqa: E402

# Before torch loads OpenMP; a command that trains looks at the machine first (MSR_OMP_WAIT=auto, the default).
share_cores(sample="torch" in preloads(sys.argv[1:]))
preload(sys.argv[1:])

signal.signal(signal.SIGINT, _default)
sys.exit(main())
