"""The intervals and counts every record reports (msr.core.stats)."""
import math

import pytest
import torch

from msr.core.stats import per_angle_counts, t_halfwidth, wilson_interval


def test_test_err_is_the_t_interval_half_width():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # t(0.975, 3) = 3.182446; sd = 1.290994; sem = 0.645497
    assert t_halfwidth(values) == pytest.approx(3.182446 * 0.645497, rel=1e-5)
    assert math.isnan(t_halfwidth(torch.tensor([1.0])))
    assert t_halfwidth(torch.tensor([1.0, 3.0])) == pytest.approx(12.7062 * 1.0, rel=1e-4)


def test_wilson_interval():
    low, high = wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and 0.8 < low < 0.9
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    narrow = wilson_interval(800, 1000)
    assert narrow[1] - narrow[0] < high - low


def test_per_angle_counts_by_bincount():
    angle = torch.tensor([[0, 1, 1], [2, 2, 2]])
    correct = torch.tensor([[True, False, True], [False, False, True]])
    counts, errors = per_angle_counts(angle, correct, 4)
    assert counts.tolist() == [1, 2, 3, 0]
    assert errors.tolist() == [0, 1, 2, 0]
