"""Shared fixtures: the smallest run that still exercises every part."""
from __future__ import annotations

import pytest

from msr.config import RunConfig

TINY = dict(arch="conv", channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=4, eval_interval=2,
            eval_tasks=2, n_angles=2, angle_step=90.0)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")


@pytest.fixture
def tiny_config(tmp_path):
    """A factory of seconds-long configs that save under tmp_path/runs."""
    def make(**changes) -> RunConfig:
        return RunConfig(**{**TINY, "runs_dir": str(tmp_path / "runs"), **changes})
    return make


def stopper(at: int):
    """A should_stop that asks for a stop before step at + 1 (it is polled once before each step)."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > at
    return should_stop
