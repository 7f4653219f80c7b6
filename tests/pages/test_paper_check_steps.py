"""Paper check's weight pictures over the saved steps: a link opens a run's
group at a step, the view follows the newest evaluation, Play steps through
every saved one, and the controls appear only where they have a choice."""
from __future__ import annotations

import json
import shutil

import pytest

from msr.kinds import SYNTHETIC

from msr.store.reader import list_runs
from msr.synthetic.config import make_config

STEPS = ["0", "2", "4", "6"]
STEP = "paper_check.step.newer"  # the step player of the newer group's pictures (ui.step_player)
PLAY = f"{STEP}.play"


def _page(root):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../../views/paper_check.py", default_timeout=60)
    at.session_state["runs_dir"] = str(root)
    return at


def _train(root, problem: str, models: list[str], group: str, steps: int = 6) -> None:
    from msr.runner.execute import create_run, execute
    for model in models:
        cfg = make_config(problem, model, steps=steps, eval_interval=2, test_tasks=10, n_tasks=100, cache_dir=None,
                          threads=1, runs_dir=str(root), group=group)
        assert execute(create_run(cfg)).status == "completed"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two finished rank1 groups: an older one of MAML-FC alone, then MSR-FC with MAML-FC."""
    root = tmp_path_factory.mktemp("paper_check_steps") / "runs"
    _train(root, "rank1", ["maml-fc"], "older")
    _train(root, "rank1", ["msr-fc", "maml-fc"], "newer")
    return root


@pytest.fixture
def runs(trained, tmp_path):
    """A copy of the trained groups that a test may change."""
    return shutil.copytree(trained, tmp_path / "runs")


def _shown_step(at) -> int:
    return at.session_state[STEP]


def _msr_fc_checkpoints(root):
    rec = next(r for r in list_runs(root, kind=SYNTHETIC) if r.config.model == "msr-fc")
    return rec.path / "checkpoints"


def test_opens_on_the_newest_step_and_a_link_to_it_keeps_following(trained):
    at = _page(trained)
    at.run()
    assert not at.exception
    assert at.select_slider[0].options == STEPS and at.select_slider[0].value == 6
    assert "step" not in at.query_params  # the newest step: a link without one follows training
    assert at.button(key=PLAY).label == "Play"


def test_a_link_opens_its_runs_group_at_its_step(trained):
    older = next(r for r in list_runs(trained, kind=SYNTHETIC) if r.config.group == "older")
    at = _page(trained)
    at.query_params.update({"run": older.run_id, "step": "3"})
    at.run()
    assert not at.exception
    assert next(s for s in at.selectbox if s.label == "Runs shown").value == "older"
    assert at.select_slider[0].value == 2  # the saved step nearest the one linked (the earlier of two as near)
    assert at.query_params["run"] == older.run_id and at.query_params["step"] == "2"


def test_a_bad_link_falls_back_to_the_newest_group_and_step(trained):
    at = _page(trained)
    at.query_params.update({"run": "no-such-run", "step": "soon"})
    at.run()
    assert not at.exception
    assert next(s for s in at.selectbox if s.label == "Runs shown").value == "newer"
    assert at.select_slider[0].value == 6


def test_the_view_follows_new_evaluations_only_from_the_newest_step(runs):
    """At the newest step a new evaluation is shown when it arrives; a step
    chosen further back is held."""
    folder = _msr_fc_checkpoints(runs)
    last = folder / "step_000006.pt"
    aside = runs.parent / "aside.pt"
    shutil.move(last, aside)
    at = _page(runs)
    at.run()
    assert at.select_slider[0].value == 4
    shutil.copy(aside, last)
    at.run()
    assert at.select_slider[0].value == 6 and _shown_step(at) == 6
    at.select_slider[0].set_value(2).run()
    last.unlink()
    at.run()
    shutil.copy(aside, last)
    at.run()
    assert at.select_slider[0].value == 2 and at.query_params["step"] == "2"


def test_play_steps_through_every_saved_step_and_stops_at_the_last(trained):
    at = _page(trained)
    at.run()
    at.button(key=PLAY).click().run()
    assert not at.exception
    # Started at the newest, so it plays from the first; the slider only shows where the play is.
    assert _shown_step(at) == 0 and at.session_state[f"{STEP}.playing"]
    assert at.button(key=PLAY).label == "Pause" and at.select_slider[0].disabled
    seen = []
    for _ in range(3):
        at.session_state[f"{STEP}.played_at"] = 0.0  # a second has passed
        at.run()
        seen.append(_shown_step(at))
    assert seen == [2, 4, 6] and "step" not in at.query_params
    at.session_state[f"{STEP}.played_at"] = 0.0
    at.run()
    assert not at.exception and f"{STEP}.playing" not in at.session_state
    assert _shown_step(at) == 6 and at.button(key=PLAY).label == "Play"


def test_pause_holds_the_step(trained):
    at = _page(trained)
    at.query_params["step"] = "2"
    at.run()
    at.button(key=PLAY).click().run()
    assert _shown_step(at) == 2  # not at the newest: it plays on from where it is
    at.session_state[f"{STEP}.played_at"] = 0.0
    at.run()
    assert _shown_step(at) == 4
    at.button(key=PLAY).click().run()
    at.session_state[f"{STEP}.played_at"] = 0.0
    at.run()
    assert _shown_step(at) == 4 and not at.select_slider[0].disabled


def test_one_saved_step_has_no_slider_and_no_play(runs):
    for f in _msr_fc_checkpoints(runs).glob("step_*.pt"):
        if f.name != "step_000000.pt":
            f.unlink()
    at = _page(runs)
    at.run()
    assert not at.exception
    assert not at.select_slider and not [b for b in at.button if b.key == PLAY]
    assert len(at.get("image")) == 2  # U and W at step 0


def test_columns_of_u_only_when_they_fill_more_than_a_row(runs):
    at = _page(runs)
    at.run()
    assert not [n for n in at.number_input if n.label == "Columns of U"]  # rank1: 3 columns
    _train(runs, "rank2", ["msr-fc"], "rank2", steps=2)  # 6 columns
    at = _page(runs)
    at.run()
    assert not at.exception
    columns = next(n for n in at.number_input if n.label == "Columns of U")
    assert columns.value == 6 and columns.max == 6
    columns.set_value(2).run()
    assert not at.exception


def test_the_intro_folds_away_once_there_are_runs(trained, tmp_path):
    at = _page(tmp_path / "empty")
    at.run()
    assert not at.expander or all(e.label != "About this experiment" for e in at.expander)
    assert any("Zhou, Knowles & Finn" in m.value for m in at.markdown)
    at = _page(trained)
    at.run()
    about = next(e for e in at.expander if e.label == "About this experiment")
    assert any("Zhou, Knowles & Finn" in m.value for m in about.markdown)


RAW = {"test_mse", "test_err", "conv_score", "latent", "seconds", "label", "step", "u_conv_score"}


def _encodings(spec):
    """Every channel of every layer: (channel, definition)."""
    if isinstance(spec, dict):
        for channel, definition in (spec.get("encoding") or {}).items():
            for one in definition if isinstance(definition, list) else [definition]:
                yield channel, one
        for value in spec.values():
            yield from _encodings(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _encodings(value)


def test_tables_and_charts_speak_in_human_labels(trained):
    at = _page(trained)
    at.run()
    assert not at.exception
    table = at.dataframe[0]
    headers = {column: config.get("label") for column, config in json.loads(table.proto.columns).items()}
    shown = list(table.value.columns)
    assert [headers[c] for c in shown] == ["model", "latent size", "steps", "test MSE", "± 95%",
                                           "convolution score", "time (s)"]
    assert "None" not in table.value.astype(str).to_string()
    for chart_ in at.get("vega_lite_chart"):
        for channel, definition in _encodings(json.loads(chart_.proto.spec)):
            if channel not in ("x", "y", "color", "tooltip") or definition.get("field") not in RAW:
                continue
            if channel != "tooltip" and (definition.get("legend", "") is None or definition.get("title", "") is None):
                continue  # no legend, or no axis title on purpose (the bars' model names speak for themselves)
            title = definition.get("title", (definition.get("axis") or {}).get("title"))
            assert title not in (None, definition["field"]), (channel, definition)
