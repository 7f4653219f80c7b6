"""RunConfig.validate() and parse_angles refuse every bad input with one line
that says what is wrong and what is allowed, and still accept good configs."""
from __future__ import annotations

import math

import pytest

from msr.core.choices import make_angles, parse_angles
from msr.core.errors import ConfigError
from msr.mnist.config import PRESETS, RunConfig, preset


def refusal(**changes) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        RunConfig(**changes).validate()
    message = str(caught.value)
    assert message and "\n" not in message, message
    return caught.value


@pytest.mark.parametrize("changes,field,expected", [
    # count × step giving the same angle more than once
    (dict(n_angles=5, angle_step=0.0), "angle_step", ["same rotation", "0° < |step| < 90°"]),
    (dict(n_angles=5, angle_step=360.0), "angle_step", ["same rotation", "0° < |step| < 90°"]),
    (dict(n_angles=5, angle_step=720.0), "angle_step", ["same rotation", "0° < |step| < 90°"]),
    (dict(n_angles=3, angle_step=-360.0), "angle_step", ["same rotation", "0° < |step| < 180°"]),
    # i·step overflowing to infinity
    (dict(n_angles=5, angle_step=1e308), "angle_step", ["infinite", "0° < |step| < 90°"]),
    # generated angles out of range
    (dict(n_angles=5, angle_step=100.0), "angle_step", ["400°", "same rotation as 40°", "-360° < angle < 360°",
                                                        "0° < |step| < 90°"]),
    (dict(n_angles=5, angle_step=-100.0), "angle_step", ["-400°", "same rotation as 320°"]),
    (dict(n_angles=7, angle_step=60.0), "angle_step", ["360°", "0° < |step| < 60°"]),
    (dict(n_angles=400, angle_step=0.5), "n_angles", ["at most 360 angles"]),
    (dict(n_angles=0), "n_angles", ["≥ 1"]),
    # explicit lists: one rotation twice, or out of range
    (dict(angles=[0.0, 360.0]), "angles", ["360° is the same rotation as 0°", "-360° < angle < 360°"]),
    (dict(angles=[-90.0, 450.0]), "angles", ["450° is the same rotation as 90°", "-360° < angle < 360°"]),
    (dict(angles=[-90.0, 270.0]), "angles", ["-90° and 270° are the same rotation", "-360° < angle < 360°"]),
    (dict(angles=[0.0, -360.0]), "angles", ["-360° < angle < 360°"]),
    (dict(angles=[10.0, 10.0]), "angles", ["10° appears twice", "distinct"]),
    (dict(angles=[0.0, float("inf")]), "angles", ["finite"]),
    (dict(angles=[0.0, True]), "angles", ["finite numbers"]),
    (dict(angles=[float(a) for a in range(361)]), "angles", ["at most 360 angles"]),
    # seed: the run seeds generators with 2·seed + 1 and 2·seed + 2
    (dict(seed=2**32), "seed", ["from 0 to 4,294,967,295"]),
    (dict(seed=2**70), "seed", ["from 0 to 4,294,967,295"]),
    (dict(seed=-1), "seed", ["from 0 to 4,294,967,295"]),
    # caps that keep one step within reach of the stop button, or catch slips
    (dict(inner_steps=101), "inner_steps", ["from 1 to 100"]),
    (dict(steps=10_000_001), "steps", ["from 1 to 10,000,000"]),
    (dict(tasks_per_step=10_001), "tasks_per_step", ["from 1 to 10,000"]),
    (dict(eval_tasks=100_000), "eval_tasks", ["from 2 to 10,000"]),
    (dict(eval_tasks=1), "eval_tasks", ["from 2 to 10,000"]),
    (dict(channels=4096), "channels", ["from 1 to 1,024"]),
    (dict(latent=5000), "latent", ["from 1 to 4,096"]),
    (dict(conv_latent=10_000), "conv_latent", ["from 1 to 9,216"]),
    (dict(inner_lr=True), "inner_lr", ["> 0"]),
])
def test_bad_input_is_refused_with_one_line_naming_what_is_allowed(changes, field, expected):
    error = refusal(**changes)
    message = str(error)
    for text in expected:
        assert text in message, message
    assert error.errors == {field: message}  # tagged with its field, and the only one


@pytest.mark.parametrize("text", ["0,,9", "0, ,9", "0;;9", ",0,9", "0,,"])
def test_an_empty_angle_entry_is_refused(text):
    with pytest.raises(ValueError) as caught:
        parse_angles(text)
    message = str(caught.value)
    assert "empty entry" in message and "e.g. 0,45,90" in message and "\n" not in message


@pytest.mark.parametrize("text,angles", [
    ("0, 45, 90", [0.0, 45.0, 90.0]), ("0 45 90", [0.0, 45.0, 90.0]), ("0;45;90", [0.0, 45.0, 90.0]),
    ("0,45,90,", [0.0, 45.0, 90.0]), ("  -45 , 0 ,45  ", [-45.0, 0.0, 45.0]), ("0 45, 90", [0.0, 45.0, 90.0]),
])
def test_angle_separators_that_worked_still_work(text, angles):
    assert parse_angles(text) == angles


@pytest.mark.parametrize("changes", [
    dict(angles=[0.0, 90.0, 180.0, 270.0]), dict(angles=[-45.0, 0.0, 45.0]), dict(angles=[-359.5, 359.0]),
    dict(angles=[0.0]), dict(n_angles=5, angle_step=9.0), dict(n_angles=5, angle_step=89.9),
    dict(n_angles=4, angle_step=-90.0), dict(n_angles=1, angle_step=1e308), dict(n_angles=360, angle_step=0.9),
    dict(seed=0), dict(seed=2**32 - 1), dict(inner_steps=100), dict(steps=10_000_000),
    dict(channels=1024), dict(latent=4096), dict(arch="dense", conv_latent=9216),
    dict(eval_tasks=10_000), dict(tasks_per_step=10_000), dict(eval_interval=10**9, steps=10),
])
def test_good_configs_validate(changes):
    config = RunConfig(**changes)
    assert config.validate() is config


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_validate(name):
    preset(name).validate()


@pytest.mark.parametrize("count,step", [(5, 9.0), (8, 45.0), (3, -119.0), (360, 0.99), (2, 359.0), (6, 71.5)])
def test_accepted_count_and_step_give_distinct_rotations_in_range(count, step):
    RunConfig(n_angles=count, angle_step=step).validate()
    angles = make_angles(count, step)
    assert all(math.isfinite(a) and -360 < a < 360 for a in angles)
    assert len({a % 360 for a in angles}) == count


def test_the_largest_seed_seeds_every_generator():
    import torch

    seed = 2**32 - 1
    for s in (seed, seed * 2 + 1, seed * 2 + 2):
        torch.Generator().manual_seed(s)
    torch.manual_seed(seed)
