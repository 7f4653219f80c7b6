"""The one loop: a diverged loss ends the run as failed with one line, "the loss diverged at step N"."""
from __future__ import annotations

import math

import pytest
import torch

from msr.core.loop import run_loop


def _run(losses):
    values = iter(losses)
    evaluated, stepped = [], []

    def step():
        value = next(values)
        if isinstance(value, Exception):
            raise value
        return torch.tensor(value)

    outcome = run_loop(len(losses), 100, step, lambda s, stopping: evaluated.append(s), lambda: False,
                       lambda s, loss, sec: stepped.append(s))
    return outcome, stepped


@pytest.mark.parametrize("losses,at,how", [
    ([2.3, 2.2, math.nan, 2.0], 3, "it became nan"),
    ([2.3, math.inf], 2, "it became inf"),
    ([2.3, 2.2, 1e22, 2.0], 3, "it reached 1e+22"),
    ([2.3, RuntimeError("value cannot be converted to type float without overflow")], 2, "a number overflowed"),
    ([OverflowError("math range error")], 1, "a number overflowed"),
])
def test_a_diverged_loss_fails_the_run_with_its_step(losses, at, how):
    outcome, stepped = _run(losses)
    assert outcome.status == "failed"
    assert outcome.message == f"the loss diverged at step {at} ({how}); try a smaller inner or outer learning rate"
    assert stepped == list(range(1, at))


def test_a_loss_that_grows_but_stays_sane_completes():
    outcome, _ = _run([0.01, 5.0, 1e5, 2.0])  # 1e5 is below a million times max(first loss, 1)
    assert outcome.status == "completed"


def test_an_error_that_is_not_an_overflow_is_raised():
    with pytest.raises(RuntimeError, match="shape mismatch"):
        _run([2.3, RuntimeError("shape mismatch")])
