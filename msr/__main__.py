"""``python -m msr``: the command line (msr.cli.main).

Ctrl-C while the package (and torch, numpy, scipy) loads ends the command at
once with one line and exit code 130: a KeyboardInterrupt inside a library's
import can leave it half-loaded, so that a later import fails with another
error (an AttributeError, a RecursionError) instead. Nothing is written
before the command runs.
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
from .cli.main import main  # noqa: E402 - loaded under the handler above

signal.signal(signal.SIGINT, _default)
sys.exit(main())
