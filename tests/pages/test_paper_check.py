"""The Paper check page on the 1-D problems: without a run, running models and showing results and
weights, and bad input reported inline."""
from __future__ import annotations



from msr.kinds import SYNTHETIC
from msr.synthetic.data import ALL_PROBLEMS
from msr.synthetic.models import MODELS


# -------------------------------------------------------------------- page
def _page():
    from streamlit.testing.v1 import AppTest
    return AppTest.from_file("../../views/paper_check.py", default_timeout=60)


def test_page_renders_without_a_run():
    at = _page()
    at.run()
    assert not at.exception
    assert at.title[0].value.startswith("Paper check")
    assert at.selectbox[0].value == "rank1" and len(at.selectbox[0].options) == len(ALL_PROBLEMS)
    assert at.multiselect[0].value == list(MODELS)


def test_page_runs_models_and_shows_results_and_weights(tmp_path):
    """Each model is a worker process and a run folder; after a reload (a new
    session) the page finds the group again from the folders."""
    import time
    from msr.store.reader import list_runs
    at = _page()
    at.session_state["runs_dir"] = str(tmp_path / "runs")
    at.run()
    values = {"Outer steps": 6, "Evaluate every": 3, "Test tasks": 10, "Tasks in the dataset": 100}
    for w in at.number_input:
        if w.label in values:
            w.set_value(values[w.label])
    at.text_input[0].set_value(str(tmp_path / "cache"))
    at.multiselect[0].set_value(["maml-fc", "msr-fc"])
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    end = time.monotonic() + 120
    while time.monotonic() < end:
        runs = list_runs(tmp_path / "runs", kind=SYNTHETIC)
        if len(runs) == 2 and all(r.state == "completed" for r in runs):
            break
        time.sleep(0.2)
    assert {r.config.model for r in runs} == {"maml-fc", "msr-fc"} and len({r.config.group for r in runs}) == 1
    # Picked MAML-FC first, yet MSR-FC, the model the page asks about, was launched first.
    assert min(runs, key=lambda r: r.created).config.model == "msr-fc"
    at = _page()  # a reload: nothing in session state but the runs folder
    at.session_state["runs_dir"] = str(tmp_path / "runs")
    at.run()
    assert not at.exception and not at.error
    assert "Finished 2 model(s)" in at.success[0].value
    assert len(at.get("vega_lite_chart")) == 3  # MSE bars, MSE history, conv score history
    table = at.dataframe[0].value
    assert list(table["label"]) == ["MSR-FC", "MAML-FC"] and list(table["latent"]) == ["3", "—"]
    model_box = next(s for s in at.selectbox if s.label == "Weight W of")
    assert model_box.value == "msr-fc"
    assert at.select_slider[0].options == ["0", "3", "6"] and at.select_slider[0].value == 6
    assert len(at.get("image")) >= 2  # U and W
    assert "step" not in at.query_params  # the newest step: a link follows training
    assert at.query_params["run"] == min(runs, key=lambda r: r.created).run_id
    at.select_slider[0].set_value(3).run()
    assert at.query_params["step"] == "3" and "step 3" in at.markdown[-1].value
    at.radio(key="paper_check.w_which").set_value("initial").run()
    assert not at.exception
    next(s for s in at.selectbox if s.label == "Weight W of").set_value("maml-fc").run()
    assert not at.exception and len(at.get("image")) == 2  # U stays; W is MAML-FC's


def test_page_reports_bad_input_inline(tmp_path):
    at = _page()
    at.run()
    at.multiselect[0].set_value([])
    at.button[0].click()
    at.run()
    assert not at.exception
    assert "pick at least one model" in at.error[0].value
