"""``python -m msr``: the command line (msr.cli)."""
import sys

from .cli import main

sys.exit(main())
