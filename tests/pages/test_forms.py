"""The forms read their settings from the config fields: every RunConfig field is a widget of the Train
form, and the Paper check form takes its labels and bounds from SyntheticConfig."""
from __future__ import annotations


from streamlit.testing.v1 import AppTest

from msr.core.settings import specs
from msr.mnist.config import RunConfig
from msr.synthetic.config import SyntheticConfig
from ui.train_form import ANGLES_TEXT, NOT_IN_FORM, form_fields, widget_key


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


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
