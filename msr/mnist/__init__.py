"""Rotated MNIST runs: their settings (config), trainer, memory estimate, lens
subject and command-line report; ``kind`` is what the registry (msr.kinds)
lists."""

NAME = "mnist"  # the run kind's name, as config.json records it (msr.kinds)
