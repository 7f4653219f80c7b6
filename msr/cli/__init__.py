"""The command line, ``python -m msr``: one module per subcommand, assembled in ``main``."""
