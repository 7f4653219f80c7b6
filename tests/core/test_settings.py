"""One source for the settings: the command line's flags, the form's widgets
and validation all come from the config fields, and validation names every
bad field at once."""
from __future__ import annotations

from dataclasses import fields

import pytest
from streamlit.testing.v1 import AppTest

from msr.cli import build_parser
from msr.config import RunConfig
from msr.settings import ConfigError, flag_of, specs
from msr.synthetic.config import SyntheticConfig
from ui.train_form import ANGLES_TEXT, NOT_IN_FORM, form_fields, widget_key

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


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
        assert helps[name].replace("%%", "%") == (s.help or s.label), name
    assert {f.name for f in fields(cls)} == set(specs(cls)), "a field without its Spec"


def test_every_run_field_is_a_widget_of_the_form(tmp_path, monkeypatch):
    shown = set(form_fields())
    expected = {ANGLES_TEXT if n == "angles" else n for n in specs(RunConfig)} - set(NOT_IN_FORM)
    assert shown == expected and len(form_fields()) == len(shown)
    monkeypatch.setenv("MSR_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/train.py").run()
    assert not at.exception
    keys = {w.key for kind in ("number_input", "text_input", "selectbox", "checkbox") for w in at.get(kind)}
    assert {widget_key(n) for n in form_fields()} <= keys
    labels = {w.key: w.label for kind in ("number_input", "text_input", "selectbox", "checkbox") for w in at.get(kind)}
    for name in form_fields():
        assert labels[widget_key(name)] == specs(RunConfig)["angles" if name == ANGLES_TEXT else name].label


def test_validation_names_every_bad_field_in_field_order():
    errors = RunConfig(ways=1, outer_lr=-1.0, steps=0, seed=-3, channels=0).check(
        cuda_available=False, check_resources=False).errors
    assert list(errors) == ["ways", "outer_lr", "steps", "seed", "channels"]
    assert errors["outer_lr"] == "outer learning rate must be a number > 0, got -1.0"
    with pytest.raises(ConfigError) as caught:
        RunConfig(ways=1, steps=0).validate(cuda_available=False, check_resources=False)
    assert str(caught.value) == errors["ways"] and list(caught.value.errors) == ["ways", "steps"]


def test_a_good_config_has_no_errors_and_memory_is_checked_only_then():
    assert RunConfig().check(cuda_available=False).errors == {}
    # a config too big for any machine: the memory line, under no single field
    huge = RunConfig(ways=10, shots=50, queries=50, tasks_per_step=10_000, channels=1024)
    assert list(huge.check(cuda_available=False).errors) == [None]
    # with a bad field, the estimate (of a config that cannot run) is not made
    assert list(huge.replace(steps=0).check(cuda_available=False).errors) == ["steps"]


def test_synthetic_validation_names_every_bad_field():
    errors = SyntheticConfig(model="maml-fc", latent=3, steps=0, shots=15, queries=10, test_tasks=1,
                             lr_mode="x").check(check_device=False).errors
    assert list(errors) == ["latent", "steps", "queries", "test_tasks", "lr_mode"]
    assert errors["test_tasks"] == "test tasks must be a whole number from 2 to 2,000, got 1"
    # the sizes that depend on the problem are not judged against an unknown one
    assert list(SyntheticConfig(problem="rank9", test_tasks=10**6).check(check_device=False).errors) == ["problem"]


def test_the_paper_check_form_reads_its_labels_and_bounds_from_the_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("MSR_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/paper_check.py").run()
    assert not at.exception
    by_label = {s.label: (name, s) for name, s in specs(SyntheticConfig).items()}
    inputs = [w for w in [*at.number_input, *at.text_input] if w.label in by_label]
    assert len(inputs) == 11  # every input but the latent size, whose 0 means "the default"
    for w in at.number_input:
        if w.label in by_label:
            name, s = by_label[w.label]
            assert w.min == s.low or s.low is None, name
