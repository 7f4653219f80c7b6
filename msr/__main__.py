"""``python -m msr``: the command line (msr.cli.main)."""
import sys

from .cli.main import main

sys.exit(main())
