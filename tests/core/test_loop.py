"""The one loop: a diverged loss ends the run as failed with one line, "the loss diverged at step N"."""
from __future__ import annotations

import math

import pytest
import torch

from msr.core.loop import optimizer_finite, run_loop


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


def test_a_non_finite_optimizer_state_fails_the_run_before_its_evaluation():
    evaluated = []
    outcome = run_loop(6, 2, lambda: torch.tensor(1.0), lambda s, stopping: evaluated.append(s), lambda: False,
                       lambda s, loss, sec: None, healthy=lambda: not evaluated or len(evaluated) < 2)
    assert outcome.status == "failed" and outcome.steps == 4
    assert outcome.message.startswith("the loss diverged at step 4 (the optimizer's state is not finite)")
    assert evaluated == [0, 2]


def test_optimizer_finite_reads_the_parameters_and_the_state():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    trainer = type("T", (), {"learner": type("L", (), {"optimizer": optimizer})()})()
    assert optimizer_finite(trainer) and optimizer_finite(object())
    next(iter(optimizer.state.values()))["exp_avg_sq"].fill_(math.inf)
    assert not optimizer_finite(trainer)
