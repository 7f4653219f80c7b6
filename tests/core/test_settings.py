"""One source for the settings: the command line's flags and validation come from the config fields,
validation names every bad field at once, and it reads nothing of the machine."""
from __future__ import annotations

from dataclasses import fields

import pytest

from msr.cli.main import build_parser
from msr.core.errors import ConfigError
from msr.core.settings import flag_of, specs
from msr.mnist.config import RunConfig
from msr.synthetic.config import SyntheticConfig


def command_flags(command: str) -> dict[str, str]:
    """dest -> flag of every option of one ``python -m msr`` command."""
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return {a.dest: a.option_strings[0] for a in sub._actions if a.option_strings}


@pytest.mark.parametrize("command,cls,skip", [("train", RunConfig, set()), ("synthetic", SyntheticConfig, {"group"})])
def test_every_field_has_its_flag_with_its_help(command, cls, skip):
    flags = command_flags(command)
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    helps = {a.dest: a.help for a in sub._actions}
    for name, s in specs(cls).items():
        if name in skip:
            continue
        assert flags.get(name) == flag_of(name, s), name
        assert helps[name].replace("%%", "%").startswith(s.help or s.label), name
    assert {f.name for f in fields(cls)} == set(specs(cls)), "a field without its Spec"


def test_validation_names_every_bad_field_in_field_order():
    errors = RunConfig(ways=1, outer_lr=-1.0, steps=0, seed=-3, channels=0).check().errors
    assert list(errors) == ["ways", "outer_lr", "steps", "seed", "channels"]
    assert errors["outer_lr"] == "outer learning rate must be a number > 0, got -1.0"
    with pytest.raises(ConfigError) as caught:
        RunConfig(ways=1, steps=0).validate()
    assert str(caught.value) == errors["ways"] and list(caught.value.errors) == ["ways", "steps"]


def test_a_good_config_has_no_errors_and_the_check_is_pure(monkeypatch):
    assert RunConfig().check().errors == {}
    # a config too big for any machine is still good input: the machine is asked at launch (msr.runner.admission)
    huge = RunConfig(ways=10, shots=50, queries=50, tasks_per_step=10_000, channels=1024, device="cuda")
    monkeypatch.setattr("torch.cuda.is_available", lambda: (_ for _ in ()).throw(AssertionError("machine read")))
    assert huge.check().errors == {}
    assert list(huge.replace(steps=0).check().errors) == ["steps"]


def test_synthetic_validation_names_every_bad_field():
    errors = SyntheticConfig(model="maml-fc", latent=3, steps=0, shots=15, queries=10, test_tasks=1,
                             lr_mode="x").check().errors
    assert list(errors) == ["latent", "steps", "queries", "test_tasks", "lr_mode"]
    assert errors["test_tasks"] == "test tasks must be a whole number from 2 to 2,000, got 1"
    # the sizes that depend on the problem are not judged against an unknown one
    assert list(SyntheticConfig(problem="rank9", test_tasks=10**6).check().errors) == ["problem"]
