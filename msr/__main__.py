"""``python -m msr``: the command line (msr.cli.main)."""
import sys

from .core.runtime import share_cores

share_cores()  # before torch loads OpenMP

from .cli.main import main  # noqa: E402

sys.exit(main())
