"""The Sweeps page on a finished sweep, and a bad grid value shown at its input."""
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from msr.runner.sweep.folder import list_sweeps
from msr.runner.sweep.results import groups


ROOT = Path(__file__).resolve().parents[2]


APP = str(ROOT / "app.py")


# ------------------------------------------------------------------ the page
@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    runs = tmp_path_factory.mktemp("sweep") / "runs"
    subprocess.run([sys.executable, "-m", "msr", "sweep", "--preset", "demo", "--steps", "4", "--eval-interval", "2",
                    "--eval-tasks", "3", "--grid", "arch=shared,conv", "--seeds", "0,1", "--runs-dir", str(runs),
                    "--workers", "2", "--quiet"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    return runs


def open_sweeps(runs: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("MSR_RUNS_DIR", str(runs))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    return at.switch_page("views/sweeps.py").run()


@pytest.mark.slow
def test_page_shows_a_finished_sweep(finished_sweep, monkeypatch):
    at = open_sweeps(finished_sweep, monkeypatch)
    assert not at.exception, at.exception
    sweep = list_sweeps(finished_sweep)[0]
    assert at.selectbox(key="sweeps.pick").value == str(sweep.path)
    progress, table = (d.value for d in at.dataframe)
    assert progress["state"].tolist() == ["completed"] * 4
    assert table["Architecture"].tolist() == ["shared", "conv (MAML)"]
    assert table["runs done"].tolist() == [2, 2]
    expected = [g.summary()["test_acc"]["mean"] for g in groups(sweep)]
    assert table["test accuracy"].tolist() == pytest.approx(expected)
    assert (table["best"] == "★ best").sum() == 1
    assert table.loc[table["test accuracy"].idxmax(), "best"] == "★ best"
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 2  # accuracy and loss
    at.toggle(key="sweeps.each_seed").set_value(True).run()
    assert not at.exception
    assert not any(b.key == "sweeps.stop" for b in at.button)  # nothing to stop


def test_a_bad_grid_value_is_shown_at_its_input_and_launches_nothing(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    at = open_sweeps(runs, monkeypatch)
    assert not at.exception
    assert any("No sweep in" in i.value for i in at.info)
    at.text_input(key="sweeps.grid.demo.arch").set_value("shared, nope").run()
    assert any("unknown architecture 'nope'" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="sweeps.launch").disabled
    at.text_input(key="sweeps.grid.demo.arch").set_value("shared, conv").run()
    at.text_input(key="sweeps.seeds").set_value("0, 1, 2").run()
    assert not at.error and not at.button(key="sweeps.launch").disabled
    assert any("**6 runs** (2 settings × 3 seeds)" in m.value for m in at.markdown)
    assert any("Time unknown until the first run reports" in m.value for m in at.markdown)
    at.text_input(key="sweeps.ready.angles").set_value("90, 180").run()
    assert any("must include 0" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="sweeps.ready.launch").disabled
    assert not runs.exists() or not any(runs.iterdir())
