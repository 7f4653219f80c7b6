"""The Sweeps page on a finished sweep, and a bad grid value shown at its input."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from msr.mnist.config import RunConfig
from msr.runner.sweep.folder import create_sweep, driver_running, list_sweeps, load_sweep
from msr.runner.sweep.results import groups, point_runs
from msr.runner.sweep.spec import SweepSpec


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
    best = (table["best"] == "★ best").sum()
    said_none = any("No setting is clearly best" in c.value for c in at.caption)
    assert best <= 1 and (best == 1) != said_none, "a star where the intervals separate, else a line saying none is"
    if best:
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


@pytest.mark.slow
def test_the_ablation_launches_in_one_click_and_stops(tmp_path, monkeypatch):
    """The ready-made ablation from the page: a sweep of first layer × head with
    a rate search, run by a driver of its own, which Stop ends."""
    runs = tmp_path / "runs"
    at = open_sweeps(runs, monkeypatch)
    at.number_input(key="sweeps.ready.steps").set_value(3).run()
    at.text_input(key="sweeps.ready.seeds").set_value("0, 1").run()
    assert any("**60 runs** (6 settings × 2 seeds, after a rate search of 48 short runs on validation tasks)"
               in m.value for m in at.markdown), [m.value for m in at.markdown]
    at.button(key="sweeps.ready.launch").click().run()
    assert not at.exception, at.exception
    sweep = list_sweeps(runs)[0]
    assert sweep.spec.grid == {"conv_layer": ["plain", "kronecker", "dense"], "head_layer": ["plain", "dense"]}
    assert sweep.spec.rate_search["values"] and sweep.spec.base["rotation"] == "query"
    assert sweep.spec.seeds == [0, 1] and sweep.spec.base["steps"] == 3
    sweep.request_stop()
    deadline = time.monotonic() + 120
    while driver_running(sweep) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not driver_running(sweep), "Stop ends the sweep's driver"
    assert not any(r.active for r in point_runs(load_sweep(sweep.path), search=True))


def test_a_damaged_sweep_folder_is_listed_apart_and_the_others_still_show(tmp_path, monkeypatch):
    base = RunConfig(arch="conv", channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=2,
                     eval_interval=2, eval_tasks=2, runs_dir=str(tmp_path / "runs"))
    good = create_sweep(SweepSpec(base=base.to_dict(), grid={}, seeds=[0]))
    bad = create_sweep(SweepSpec(base=base.to_dict(), grid={}, seeds=[1]))
    (bad.path / "sweep.json").write_text("[1, 2]")
    at = open_sweeps(tmp_path / "runs", monkeypatch)
    assert not at.exception, at.exception
    assert at.selectbox(key="sweeps.pick").value == str(good.path)
    [warning] = [w.value for w in at.warning if bad.path.name in w.value]
    assert "sweep.json is not an object" in warning
