"""Intervals and counts: the statistics every record and table reports."""
from __future__ import annotations

import math

import torch
from scipy import special  # stdtrit and ndtri: the t and normal quantiles, without scipy.stats's import


def t_quantile(df: int, confidence: float = 0.95) -> float:
    """The two-sided Student-t quantile: the half-width of an interval of the
    mean is this times the standard error."""
    return float(special.stdtrit(df, 0.5 + confidence / 2))


def t_halfwidth(values: torch.Tensor, confidence: float = 0.95) -> float:
    """Half-width of the Student-t interval of the mean (the authors' test_err)."""
    n = values.numel()
    if n < 2:
        return float("nan")
    sem = float(values.double().std(unbiased=True)) / math.sqrt(n)
    return t_quantile(n - 1, confidence) * sem


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion.

    Chosen over the normal approximation because it stays inside [0, 1] and
    behaves at 0 or n successes, which per-angle accuracies often hit. It
    treats images as independent; queries of one task share an adapted model,
    so the true interval is somewhat wider."""
    if n <= 0:
        return (math.nan, math.nan)
    z = float(special.ndtri(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: rounding must not exclude p
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def per_angle_counts(angle_idx: torch.Tensor, correct: torch.Tensor, n_angles: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, errors) per angle, by bincount: no Python loop, no sync."""
    flat = angle_idx.reshape(-1)
    counts = torch.bincount(flat, minlength=n_angles)
    errors = torch.bincount(flat, weights=(~correct.reshape(-1)).to(torch.float32), minlength=n_angles)
    return counts, errors.round().to(torch.long)
