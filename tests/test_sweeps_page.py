"""The Sweeps page: its frames and charts on hand-made points, and the page on a finished sweep."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from msr import sweep as sw
from msr.config import RunConfig
from msr.runs import RunRecord
from msr.sweep import groups, list_sweeps
from msr.viz import sweeps as vs

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def evals(accs, losses, every=2):
    return [{"step": i * every, "test_acc": a, "test_loss": l} for i, (a, l) in enumerate(zip(accs, losses))]


def point(arch, seed, accs, losses, state="completed", lr=None, total=4):
    setting = {"arch": arch} if lr is None else {"arch": arch, "inner_lr": lr}
    metrics = evals(accs, losses)
    return sw.PointRun(setting, seed, state, f"{arch}-{seed}", metrics[-1]["step"], total,
                       {**metrics[-1], "test_acc_err": 0.01, "test_err": 0.02}, metrics)


RUNS = [point("shared", 0, [0.2, 0.5, 0.7], [2.0, 1.5, 1.0]), point("shared", 1, [0.2, 0.6, 0.9], [2.0, 1.2, 0.8]),
        point("conv", 0, [0.2, 0.3, 0.4], [2.0, 1.9, 1.8]), sw.PointRun({"arch": "conv"}, 1, "missing")]


def test_labels_are_the_forms_not_field_names():
    assert vs.field_label("inner_lr") == "Inner learning rate"
    assert vs.value_text("arch", "conv") == "conv (MAML)" and vs.value_text("inner_lr", 0.10) == "0.1"
    assert vs.value_text("first_order", True) == "true"
    assert vs.group_label({"arch": "shared", "inner_lr": 0.05}) == "shared · 0.05"
    assert vs.group_label({}) == "all"
    assert vs.legend_title(["arch", "inner_lr"]) == "Architecture · Inner learning rate"


def test_progress_frame_has_one_row_per_point():
    frame = vs.progress_frame(RUNS, ["arch"])
    assert list(frame.columns) == ["Architecture", "seed", "state", "steps", "progress", "test accuracy", "run"]
    assert frame["state"].tolist() == ["completed", "completed", "completed", "not started"]
    assert frame["steps"].tolist() == ["4 / 4"] * 3 + [""]
    assert frame["progress"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert frame["Architecture"].tolist()[-1] == "conv (MAML)"
    assert math.isnan(frame["test accuracy"].iloc[-1])


def test_curves_mean_and_band_over_seeds():
    curves = vs.curves_frame(RUNS)
    assert len(curves) == 9 and set(curves["group"]) == {"shared", "conv (MAML)"}
    means = vs.mean_frame(curves, "test_acc")
    last = means[(means["group"] == "shared") & (means["step"] == 4)].iloc[0]
    assert last["n"] == 2 and last["mean"] == pytest.approx(0.8)
    # t(1 dof) half-width of [0.7, 0.9]: 12.706 · 0.1, cut at accuracy 1
    assert last["lower"] == pytest.approx(0.0) and last["upper"] == pytest.approx(1.0)
    one = means[(means["group"] == "conv (MAML)") & (means["step"] == 4)].iloc[0]
    assert one["n"] == 1 and math.isnan(one["lower"])  # one seed: no interval
    assert vs.mean_frame(vs.curves_frame([]), "test_loss").empty


def _font_sizes(spec: dict) -> list[int]:
    config = spec.get("config", {})
    return [config["axis"]["labelFontSize"], config["axis"]["titleFontSize"], config["legend"]["labelFontSize"],
            config["title"]["fontSize"]]


@pytest.mark.parametrize("each_seed", [False, True])
def test_curves_chart_is_readable(each_seed):
    curves = vs.curves_frame(RUNS)
    chart = vs.curves_chart(curves, "test_loss", ["shared", "conv (MAML)"], "Architecture", each_seed=each_seed)
    spec = chart.to_dict()
    assert min(_font_sizes(spec)) >= 12
    text = json.dumps(spec)
    assert ("\"detail\"" in text) == each_seed  # one line per run only when asked
    with pytest.raises(ValueError):
        vs.curves_chart(curves, "train_loss", [])


def test_groups_frame_marks_the_best_mean():
    summaries = [{"setting": {"arch": "shared"}, "n": 2, "test_acc": {"mean": 0.8, "ci95": 0.1},
                  "test_loss": {"mean": 0.9, "ci95": None}},
                 {"setting": {"arch": "conv"}, "n": 1, "test_acc": {"mean": 0.4, "ci95": None},
                  "test_loss": {"mean": 1.8, "ci95": None}},
                 {"setting": {"arch": "dense"}, "n": 0, "test_acc": {"mean": None, "ci95": None},
                  "test_loss": {"mean": None, "ci95": None}}]
    frame = vs.groups_frame(summaries, ["arch"])
    assert list(frame.columns) == ["best", "Architecture", "runs done", "test accuracy", "accuracy ± 95%",
                                   "test loss", "loss ± 95%"]
    assert frame["best"].tolist() == ["★ best", "", ""]
    assert frame["Architecture"].tolist() == ["shared", "conv (MAML)", "dense"]
    empty = vs.groups_frame(summaries[2:], ["arch"])
    assert empty["best"].tolist() == [""]


def test_heat_frame_averages_or_holds_the_other_field():
    runs = [point("shared", 0, [0.6], [1.0], lr=0.1), point("shared", 1, [0.8], [1.0], lr=0.1),
            point("shared", 0, [0.5], [1.0], lr=0.05), point("conv", 0, [0.3], [1.0], lr=0.1),
            point("conv", 1, [0.9], [1.0], lr=0.1, state="running")]
    finals = vs.finals_frame(runs, ["arch", "inner_lr"])
    assert list(finals.columns[:2]) == ["Architecture", "Inner learning rate"]
    heat = vs.heat_frame(finals, "Architecture", "Inner learning rate")
    cell = heat[(heat["row"] == "shared") & (heat["col"] == 0.1)].iloc[0]
    assert cell["acc"] == pytest.approx(0.7) and cell["n"] == 2 and cell["text"] == "0.700 (n=2)"
    conv = heat[(heat["row"] == "conv") & (heat["col"] == 0.1)].iloc[0]
    assert conv["n"] == 1 and conv["acc"] == pytest.approx(0.3)  # the running seed is left out
    empty = heat[(heat["row"] == "conv") & (heat["col"] == 0.05)].iloc[0]
    assert empty["n"] == 0 and empty["text"] == "no run yet"
    held = vs.heat_frame(finals, "Architecture", "seed", {"Inner learning rate": 0.05})
    assert held[held["n"] > 0][["row", "col", "acc"]].values.tolist() == [["shared", 0, 0.5]]
    chart = vs.heat_chart(heat, "arch", "inner_lr").to_dict()
    assert min(_font_sizes(chart)) >= 12


def _record(arch, rate, state="completed"):
    return RunRecord(Path(f"/nowhere/{arch}"), config=RunConfig(arch=arch), state=state,
                     status={"last": {"steps_per_sec_overall": rate}})


def test_time_estimate_uses_measured_speeds_only():
    speeds = sw.measured_speeds([_record("conv", 2.0), _record("conv", 4.0), _record("conv", 3.0),
                                 _record("shared", 1.0), _record("shared", 50.0, state="running"),
                                 _record("dense", None)])
    assert speeds == {"conv": 3.0, "shared": 1.0}
    configs = [RunConfig(arch="conv", steps=30), RunConfig(arch="shared", steps=30)]
    assert sw.estimate_seconds(configs, speeds, workers=2) == pytest.approx((10 + 30) / 2)
    assert sw.estimate_seconds(configs, speeds, workers=8) == pytest.approx(40 / 2)  # no more at once than runs
    assert sw.estimate_seconds(configs + [RunConfig(arch="dense")], speeds, workers=2) is None


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


@pytest.mark.slow
def test_the_ablation_launches_in_one_click_and_stops(tmp_path, monkeypatch):
    """The ready-made ablation from the page: a sweep of first layer × head with
    a rate search, run by a driver of its own, which Stop ends."""
    import time

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
    while sw.driver_running(sweep) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sw.driver_running(sweep), "Stop ends the sweep's driver"
    assert not any(r.active for r in sw.point_runs(sw.load_sweep(sweep.path), search=True))
