"""msr.mnist.memory: the peak-memory estimate of a Rotated MNIST run against measured peaks (the refusal of
runs that would not fit is msr.runner.admission's)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from msr.mnist.config import PRESETS, RunConfig, preset
from msr.mnist.memory import MIB, estimate, estimate_peak_bytes, parameter_counts

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.memory_calibration import measure_peak_bytes  # noqa: E402


def shape(base: str, **changes) -> RunConfig:
    return RunConfig(**{**PRESETS[base], "steps": 2, **changes})


# Small enough that all of them are measured in well under a minute on two cores.
MEASURED = {
    "demo": shape("demo"),
    "seed": shape("seed"),
    "dedicated": shape("seed", arch="dedicated", latent=20, queries=1, tasks_per_step=2, eval_tasks=2),
    "dense": shape("demo", arch="dense", channels=64, conv_latent=200, eval_tasks=50),
    "per_param, 3 inner steps": shape("demo", lr_mode="per_param", inner_steps=3, queries=10, tasks_per_step=8),
    "big-ish": shape("seed", shots=5, queries=15, tasks_per_step=16, eval_tasks=50),
}


@pytest.mark.parametrize("name", list(MEASURED))
def test_estimate_is_within_30_percent_of_the_measured_peak(name):
    config = MEASURED[name]
    measured = measure_peak_bytes(config, steps=2)
    estimated = estimate_peak_bytes(config)
    assert 0.7 * measured <= estimated <= 1.3 * measured, \
        f"{name}: estimate {estimated / MIB:.0f} MiB, measured {measured / MIB:.0f} MiB"


def test_parameter_counts_match_the_built_models():
    from msr.core.layers import is_symmetry_param
    from msr.core.meta import MetaLearner
    from msr.core.models import build_model

    for arch in ("shared", "dedicated", "dense", "conv"):
        config = RunConfig(arch=arch, channels=8, ways=5, latent=4, conv_latent=20, n_angles=3, angle_step=30.0,
                           lr_mode="per_param")
        model = build_model(config.model_spec(), seed=0)
        built = {False: 0, True: 0}
        for name, p in model.named_parameters():
            built[is_symmetry_param(name)] += p.numel()
        adapted, symmetry, head_u = parameter_counts(config)
        assert (adapted, symmetry) == (built[False], built[True]), arch
        learner = MetaLearner(model, config.meta_config())
        assert sum(p.numel() for p in learner.inner_lrs.parameters()) == adapted
        heads = [p.numel() for n, p in model.named_parameters() if n == "head.sym_U"]
        assert head_u == sum(heads), arch


@pytest.mark.parametrize("changes,part", [
    (dict(tasks_per_step=10), "step"), (dict(queries=40), "step"), (dict(channels=64), "step"),
    (dict(inner_steps=3), "step"), (dict(arch="conv", channels=128), "step"), (dict(latent=30), "step"),
    (dict(eval_tasks=200), "evaluation"), (dict(ways=10, shots=5), "evaluation"), (dict(channels=64), "evaluation"),
    (dict(latent=30), "parameters"), (dict(arch="dedicated"), "parameters"), (dict(lr_mode="per_param"), "parameters"),
])
def test_the_estimate_grows_with_every_shape_that_costs_memory(changes, part):
    base = RunConfig()
    before, after = estimate(base), estimate(base.replace(**changes))
    assert getattr(after, part) > getattr(before, part)
    assert after.total >= before.total


def test_first_order_and_sgd_need_less():
    base = RunConfig(inner_steps=3, latent=300)
    assert estimate(base.replace(first_order=True)).step < estimate(base).step
    assert estimate(base.replace(outer_opt="sgd")).parameters < estimate(base).parameters


def test_estimate_parts_add_up():
    est = estimate(preset("seed"))
    assert est.total == est.baseline + est.parameters + max(est.step, est.evaluation)
    assert est.main_cost() in ("parameters", "step", "evaluation")
