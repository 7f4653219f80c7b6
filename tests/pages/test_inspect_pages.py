"""The Data, Errors and Weights pages render for every architecture, for a
saved run, for a run still training, and for one that has only just started."""
import json
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from msr.core.data import load_source
from msr.mnist.config import RunConfig
from msr.runner.execute import train
from msr.runner.execute import create_run
from msr.store.checkpoints import checkpoint_steps
from msr.store.layout import METRICS, STATUS
from msr.store.liveness import HOST
from msr.store.writer import RunWriter

ARCHS = ("shared", "dedicated", "dense", "conv")
ROOT = Path(__file__).resolve().parents[2]
WEIGHT_VIEWS = ("Filters", "Activations", "Symmetry matrices", "Drift", "Generated filters", "Filter change",
                "Inner rates")
STEPLESS_VIEWS = ("Filter change", "Inner rates")


def small_config(arch: str) -> RunConfig:
    return RunConfig(arch=arch, angles=[0.0, 90.0, 180.0], channels=4, ways=2, shots=1, queries=2,
                     tasks_per_step=2, steps=4, eval_interval=2, eval_tasks=2, conv_latent=8)


def make_live(run_dir: Path, target_root: Path) -> Path:
    """A copy of a finished run rolled back to mid-training: its last record
    and checkpoint removed and its status set to running (the caller holds
    its worker lock, as a live worker does)."""
    live = target_root / run_dir.name
    shutil.copytree(run_dir, live)
    lines = (live / METRICS).read_text().splitlines()
    (live / METRICS).write_text("\n".join(lines[:-1]) + "\n")
    last = checkpoint_steps(live)[-1]
    (live / "checkpoints" / f"step_{last:06d}.pt").unlink()
    status = json.loads((live / STATUS).read_text())
    status.update(status="running", message=None)
    (live / STATUS).write_text(json.dumps(status))
    return live


@pytest.fixture(scope="module")
def runs_dirs(tmp_path_factory):
    """{(arch, kind): runs folder holding that one run}; kind: saved, live, fresh."""
    root = tmp_path_factory.mktemp("page_runs")
    data = load_source("bundled")
    out = {}
    for arch in ARCHS:
        saved = root / "saved" / arch
        result = train(small_config(arch).replace(runs_dir=str(saved)), data=data)
        out[(arch, "saved")] = saved
        live_root = root / "live" / arch
        live_root.mkdir(parents=True)
        make_live(Path(result.run_dir), live_root)
        out[(arch, "live")] = live_root
    fresh = root / "fresh"
    create_run(small_config("dedicated").replace(runs_dir=str(fresh)))  # as written before the first evaluation
    out[("dedicated", "fresh")] = fresh
    # Live runs are runs whose worker holds the lock: this process plays the worker.
    workers = []
    for (arch, kind), folder in out.items():
        if kind in ("live", "fresh"):
            for run in folder.iterdir():
                if not run.name.startswith("."):
                    writer = RunWriter(run).claim()
                    writer.write_status(status="running", host=HOST, pid=os.getpid())
                    workers.append(writer)
    yield out
    for writer in workers:
        writer.release()


def page(name: str, runs_dir: Path) -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / f"{name}.py"), default_timeout=120)
    at.session_state["runs_dir"] = str(runs_dir)
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def downloads(at: AppTest) -> list[str]:
    return [b.label for b in at.get("download_button")]


def live_toggle(at: AppTest) -> bool:
    return any("live run" in t.label for t in at.toggle)


@pytest.mark.parametrize("kind", ["saved", "live"])
@pytest.mark.parametrize("arch", ARCHS)
def test_data_page(runs_dirs, arch, kind):
    at = page("data", runs_dirs[(arch, kind)])
    assert_clean(at)
    assert live_toggle(at) == (kind == "live")
    assert len(at.get("image")) == 1, "the digit grid"
    assert len(charts(at)) == 2, "images per angle and per class"
    assert downloads(at) == ["Download PNG", "Download CSV", "Download CSV"]
    if kind == "live":
        return  # the widgets below behave the same for live runs
    at.multiselect(key="grid_angles").set_value([90.0]).run()
    assert_clean(at)
    at.multiselect(key="grid_angles").set_value([]).run()
    assert_clean(at)
    assert any("at least one angle" in i.value for i in at.info)


@pytest.mark.parametrize("kind", ["saved", "live"])
@pytest.mark.parametrize("arch", ARCHS)
def test_errors_page(runs_dirs, arch, kind):
    at = page("errors", runs_dirs[(arch, kind)])
    assert_clean(at)
    assert live_toggle(at) == (kind == "live")
    assert len(charts(at)) == 2, "errors over steps and accuracy per angle"
    assert len(at.get("image")) == 1, "the confusion matrix"
    assert downloads(at) == ["Download CSV", "Download CSV", "Download PNG", "Download CSV"]
    assert any("Hardest angle" in m.value for m in at.markdown)
    if kind == "live":
        return
    assert '"field": "errors"' in charts(at)[0].proto.spec.replace('":"', '": "')
    at.radio(key="errors_measure").set_value("rate").run()
    at.radio(key="errors_split").set_value("train").run()
    assert_clean(at)
    assert len(charts(at)) == 2
    assert '"field": "rate"' in charts(at)[0].proto.spec.replace('":"', '": "')
    at.selectbox(key="conf_angle").set_value(2).run()
    assert_clean(at)
    assert len(at.get("image")) == 1


@pytest.mark.parametrize("kind", ["saved", "live"])
@pytest.mark.parametrize("arch", ARCHS)
def test_weights_page_every_view(runs_dirs, arch, kind):
    at = page("weights", runs_dirs[(arch, kind)])
    assert_clean(at)
    assert live_toggle(at) == (kind == "live")
    expected_last = 4 if kind == "saved" else 2
    assert at.select_slider(key="weights_step").value == expected_last
    # a live run differs only in which steps exist, so it is checked on the step-dependent views
    views = WEIGHT_VIEWS if kind == "saved" else ("Filters", "Drift", "Filter change")
    for view in views:
        at.radio(key="weights_view").set_value(view).run()
        assert_clean(at)
        images, infos = len(at.get("image")), [i.value for i in at.info]
        uses_step = view not in STEPLESS_VIEWS
        assert any(s.key == "weights_step" for s in at.select_slider) == uses_step, view
        if view == "Filters":
            assert images == 1
        elif view == "Activations":
            assert images == 2, "mean over channels and per channel"
            if arch == "dedicated":
                assert at.selectbox(key="act_circuit_relu1_0").value == 0
                at.selectbox(key="act_angle").set_value(2).run()
                assert_clean(at)
                assert at.selectbox(key="act_circuit_relu1_2").value == 2, "defaults to the angle's own circuit"
                at.selectbox(key="act_circuit_relu1_2").set_value(1).run()
                assert_clean(at)
                assert len(at.get("image")) == 2
        elif view == "Symmetry matrices":
            # A and C are heatmaps; the 1×1 B is a number (one per circuit); a dense conv U is a heatmap
            expected = {"shared": 2, "dedicated": 2, "dense": 1, "conv": 0}[arch]
            assert images == expected
            if arch == "conv":
                assert any("no symmetry matrices" in i for i in infos)
            else:
                assert at.radio(key="sym_change").value is True, "the change from the start by default"
                captions = [c.value for c in at.caption]
                first = "U − U at step 0" if arch == "dense" else "A − I"
                assert any(f"**{first}**, colour scale ±" in c for c in captions), captions
                metrics = [m.label for m in at.metric]
                assert metrics == ({"shared": ["B"], "dedicated": ["B (0° circuit)", "B (90° circuit)",
                                                                         "B (180° circuit)"], "dense": []}[arch])
                at.radio(key="sym_change").set_value(False).run()
                assert_clean(at)
                assert len(at.get("image")) == expected
                assert not any("colour scale" in c.value for c in at.caption)
                at.radio(key="sym_change").set_value(True).run()
        elif view == "Drift":
            assert len(charts(at)) == (2 if arch in ("shared", "dedicated") else 1)
            table = at.dataframe[0].value
            assert "Matrix" in table.columns and not any("_" in c for c in table.columns)
            at.toggle(key="drift_log").set_value(not at.toggle(key="drift_log").value).run()
            assert_clean(at)
        elif view == "Generated filters":
            assert images == {"shared": 1, "dedicated": 1, "dense": 2, "conv": 0}[arch]
            if arch == "dedicated":
                at.selectbox(key="gen_circuit").set_value(2).run()
                assert_clean(at)
        elif view == "Filter change":
            assert images == 1
            assert at.select_slider(key="change_steps").value == (0, expected_last)
            assert not any("_" in c for c in at.dataframe[0].value.columns)
        elif view == "Inner rates":
            assert len(charts(at)) == 1
    at.radio(key="weights_view").set_value("Filters").run()
    at.select_slider(key="weights_step").set_value(0).run()
    assert_clean(at)
    assert len(at.get("image")) == 1


def test_weights_view_and_step_follow_the_address(runs_dirs):
    """A link opens its view and step; picking either puts it in the address;
    the step survives a view that does not read it."""
    at = AppTest.from_file(str(ROOT / "views" / "weights.py"), default_timeout=120)
    at.session_state["runs_dir"] = str(runs_dirs[("shared", "saved")])
    at.query_params["view"] = "symmetry-matrices"
    at.query_params["step"] = "1"  # not kept: the nearest kept checkpoint is step 0
    at.run()
    assert_clean(at)
    assert at.radio(key="weights_view").value == "Symmetry matrices"
    assert at.select_slider(key="weights_step").value == 0
    at.radio(key="weights_view").set_value("Drift").run()
    assert at.query_params["view"] == "drift"
    at.select_slider(key="weights_step").set_value(2).run()
    assert at.query_params["step"] == "2"
    at.radio(key="weights_view").set_value("Inner rates").run()
    assert_clean(at)
    assert not at.select_slider, "the inner rates ignore the step"
    at.radio(key="weights_view").set_value("Filters").run()
    assert at.select_slider(key="weights_step").value == 2, "the picked step came back with the slider"
    at.select_slider(key="weights_step").set_value(4).run()
    assert "step" not in at.query_params, "the newest step is not pinned, so a link follows a live run"


def test_errors_steps_follow_the_address(runs_dirs):
    at = AppTest.from_file(str(ROOT / "views" / "errors.py"), default_timeout=120)
    at.session_state["runs_dir"] = str(runs_dirs[("shared", "saved")])
    at.query_params["step"] = "2"
    at.query_params["confusion_step"] = "0"
    at.run()
    assert_clean(at)
    assert at.select_slider(key="acc_step").value == 2
    assert at.select_slider(key="conf_step").value == 0
    at.select_slider(key="acc_step").set_value(0).run()
    assert at.query_params["step"] == "0" and at.query_params["confusion_step"] == "0"


def test_pages_on_a_run_that_has_only_just_started(runs_dirs):
    for name in ("data", "errors", "weights"):
        at = page(name, runs_dirs[("dedicated", "fresh")])
        assert_clean(at)
        assert live_toggle(at)
        assert any("yet" in i.value for i in at.info), name


def test_pages_without_runs(tmp_path):
    for name in ("data", "errors", "weights"):
        at = page(name, tmp_path / "none")
        assert_clean(at)
        assert any("No runs yet" in i.value for i in at.info)


def test_the_chosen_run_follows_through_the_pages(runs_dirs, tmp_path):
    """Pick a run on Data (not the newest), then go page to page as the
    sidebar does (its links carry no address): Errors, Weights and Symmetry
    open on the same run, and each keeps it in its address."""
    root = tmp_path / "runs"
    root.mkdir()
    for arch in ("shared", "conv"):
        run = next(p for p in runs_dirs[(arch, "saved")].iterdir() if p.is_dir() and not p.name.startswith("."))
        shutil.copytree(run, root / run.name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.session_state["runs_dir"] = str(root)
    at.run()
    at.switch_page("views/data.py").run()
    picker = at.selectbox(key="data_run")
    chosen = next(str(p) for p in root.iterdir() if p.is_dir() and str(p) != picker.value)  # not the opened one
    picker.set_value(chosen).run()
    assert_clean(at)
    for view, key in (("errors", "errors_run"), ("weights", "weights_run"), ("symmetry", "symmetry_run"),
                      ("data", "data_run")):
        at.query_params.clear()  # a sidebar link names no run
        at.switch_page(f"views/{view}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.selectbox(key=key).value == chosen, f"{view} opens on the run chosen on Data"
        assert at.query_params["run"] == Path(chosen).name, f"{view} keeps it in its address"
