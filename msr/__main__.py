"""``python -m msr``: the command line (msr.cli.main)."""
import sys

from .core.runtime import share_cores

share_cores()  # before torch loads OpenMP

try:
    from .cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the package (and torch) loads
    print("interrupted before the run started; nothing was trained", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
