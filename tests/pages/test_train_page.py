"""The Train and Runs pages, driven through Streamlit's AppTest; the form's validation finds its field."""
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from msr.analysis.tables import config_diff, runs_frame
from msr.core.errors import ConfigError
from msr.mnist.config import RunConfig
from msr.runner.execute import train
from msr.store.reader import load_run
from msr.store.status import read_status
from ui.train_form import ANGLES_TEXT, build_config, preset_values

APP = str(Path(__file__).resolve().parents[2] / "app.py")
START = "FormSubmitter:train.form-Start run"
TINY_FORM = dict(arch="conv", channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=4, eval_interval=2,
                 eval_tasks=2, n_angles=2, angle_step=90.0)


def open_page(runs: Path, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["runs_dir"] = str(runs)
    at.run()
    return at.switch_page(page).run()


def fill(at: AppTest, **values) -> AppTest:
    for name, value in values.items():
        at.get_by_key(f"train.w.{name}").set_value(value)
    return at


def poll(at: AppTest, done, timeout=60.0) -> AppTest:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return at
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the page")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def session_run(at: AppTest) -> str:
    return at.session_state["last_run_path"]


def wait_status(path, done, timeout=90.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = read_status(path) or {}
        if done(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"timed out; status is {read_status(path)}")


@pytest.mark.slow
def test_start_a_run_and_watch_it_complete(tmp_path):
    at = open_page(tmp_path / "runs", "views/train.py")
    assert not at.exception
    fill(at, **TINY_FORM).button(key=START).click().run()
    assert not at.exception and not at.error
    poll(at, lambda a: any("Run completed" in s for s in texts(a.success)))
    message = next(s for s in texts(at.success) if "Run completed" in s)
    run_dir = at.session_state["last_run_path"]
    assert run_dir in message and Path(run_dir).parent == tmp_path / "runs"
    saved = load_run(run_dir)
    assert saved.status["status"] == "completed" and saved.config.arch == "conv"
    assert [r["step"] for r in saved.metrics] == [0, 2, 4]
    assert f"At step 4: test loss {saved.metrics[-1]['test_loss']:.4f}" in message
    assert len(at.get("vega_lite_chart")) == 3  # loss, accuracy, inner rates
    assert at.get("progress")[0].value == 100


@pytest.mark.slow
def test_stop_a_run_keeps_what_it_recorded(tmp_path):
    at = open_page(tmp_path / "runs", "views/train.py")
    fill(at, **{**TINY_FORM, "steps": 100000, "eval_interval": 3}).button(key=START).click().run()
    path = session_run(at)
    wait_status(path, lambda s: s.get("status") == "running" and s.get("step", 0) >= 1)
    at.run()
    at.button(key="train.run.stop").click().run()
    poll(at, lambda a: any("Run stopped" in w for w in texts(a.warning)))
    status = read_status(path)
    assert status["status"] == "stopped" and status["step"] < 100000
    assert load_run(path).metrics[-1]["step"] == status["step"]  # the partial window was evaluated and kept
    at.button(key="train.new").click().run()
    assert not at.button(key=START).disabled  # a new run may start again


def test_a_run_that_diverges_says_so(tmp_path):
    at = open_page(tmp_path / "runs", "views/train.py")
    fill(at, **TINY_FORM, inner_lr=1e30, outer_lr=1e30).button(key=START).click().run()
    poll(at, lambda a: any("Run failed" in e for e in texts(a.error)))
    message = next(e for e in texts(at.error) if "Run failed" in e)
    assert "the loss diverged at step 1" in message and "try a smaller inner or outer learning rate" in message
    assert load_run(at.session_state["last_run_path"]).status["status"] == "failed"


@pytest.mark.slow
def test_moving_to_another_page_does_not_stop_a_run(tmp_path):
    at = open_page(tmp_path / "runs", "views/train.py")
    fill(at, **{**TINY_FORM, "steps": 30}).button(key=START).click().run()
    path = session_run(at)
    at.switch_page("views/runs.py").run()
    at.switch_page("views/home.py").run()
    assert not at.exception
    wait_status(path, lambda s: s.get("status") == "completed")
    at.switch_page("views/train.py").run()
    assert any("Run completed: 30 steps" in s for s in texts(at.success))
    at.button(key="train.new").click().run()
    assert at.number_input(key="train.w.steps").value == 30  # the form came back as it was


@pytest.mark.parametrize("field,value,expected", [
    (ANGLES_TEXT, "0, 0", "angles must be distinct"),
    (ANGLES_TEXT, "zero, ninety", "cannot parse angle list"),
    ("steps", 0, "steps must be a whole number"),
    ("inner_lr", 0.0, "inner learning rate must be a number > 0"),
    ("queries", 120, "shots + queries = 125 exceeds"),
])
def test_an_invalid_value_is_shown_at_its_field_and_starts_nothing(tmp_path, field, value, expected):
    runs = tmp_path / "runs"
    at = open_page(runs, "views/train.py")
    fill(at, **{field: value}).button(key=START).click().run()
    assert not at.exception
    column = next(c for c in at.columns if any(w.key == f"train.w.{field}" for w in
                                               [*c.get("number_input"), *c.get("text_input")]))
    assert any(expected in e.value for e in column.error), [e.value for e in at.error]
    assert any("Nothing was started" in e for e in texts(at.error))
    assert "last_run_path" not in at.session_state
    assert not runs.exists() or not any(runs.iterdir())


def test_every_bad_field_is_marked_at_once(tmp_path):
    runs = tmp_path / "runs"
    at = open_page(runs, "views/train.py")
    fill(at, steps=0, ways=12, outer_lr=-1.0, **{ANGLES_TEXT: "0, 0"}).button(key=START).click().run()
    shown = texts(at.error)
    for expected in ("steps must be", "ways must be between 2 and 10", "outer learning rate must be",
                     "angles must be distinct", "fix the fields marked above"):
        assert any(expected in e for e in shown), (expected, shown)
    assert not runs.exists()


def test_build_config_names_each_bad_field():
    values = {**preset_values("demo"), "steps": 0, "shots": 0, ANGLES_TEXT: "x"}
    with pytest.raises(ConfigError) as caught:
        build_config(values, "runs")
    assert set(caught.value.errors) == {"steps", "shots", ANGLES_TEXT}
    good = build_config({**preset_values("demo"), ANGLES_TEXT: "0, 90"}, "somewhere")
    assert good.angles == [0.0, 90.0] and good.runs_dir == "somewhere" and good.steps == preset_values("demo")["steps"]


def test_presets_fill_the_form_when_chosen(tmp_path):
    at = open_page(tmp_path / "runs", "views/train.py")
    at.selectbox(key="train.preset.select").set_value("seed").run()
    seed = preset_values("seed")
    assert at.number_input(key="train.w.steps").value == seed["steps"] == 1000
    assert at.number_input(key="train.w.ways").value == 10
    assert at.number_input(key="train.w.outer_lr").value == pytest.approx(1e-4)
    at.selectbox(key="train.preset.select").set_value("demo").run()
    assert at.number_input(key="train.w.steps").value == preset_values("demo")["steps"]
    assert "cuda" not in at.selectbox(key="train.w.device").options or __import__("torch").cuda.is_available()


def test_an_emptied_number_field_is_called_empty(tmp_path):
    at = open_page(tmp_path / "runs", "views/train.py")
    fill(at, steps=None).button(key=START).click().run()
    assert any("Outer steps is empty; enter a number" in e for e in texts(at.error)), texts(at.error)
    assert not any("got" in e for e in texts(at.error))
    assert "last_run_path" not in at.session_state


@pytest.mark.slow
def test_after_start_the_page_is_the_run_and_a_new_run_can_copy_its_settings(tmp_path):
    at = open_page(tmp_path / "runs", "views/train.py")
    fill(at, **{**TINY_FORM, "steps": 7}, name="copied").button(key=START).click().run()
    assert not at.exception
    assert not [b for b in at.button if b.key == START], "the form folds away after Start"
    assert at.get("progress"), "the run's progress is on the page"
    wait_status(session_run(at), lambda s: s.get("status") == "completed")
    at.run()
    at.button(key="train.again").click().run()
    assert at.number_input(key="train.w.steps").value == 7 and at.text_input(key="train.w.name").value == ""
    assert at.selectbox(key="train.preset.select").value is None  # the form holds a run's settings, not a preset's


@pytest.mark.slow
def test_home_trains_the_demo_model_in_one_click(tmp_path, monkeypatch):
    import msr.mnist.config
    monkeypatch.setitem(msr.mnist.config.PRESETS, "demo", {**msr.mnist.config.PRESETS["demo"], "steps": 3, "eval_interval": 3})
    at = open_page(tmp_path / "runs", "views/home.py")
    at.button[0].click().run()
    assert not at.exception and not at.error
    path = session_run(at)
    assert load_run(path).config.steps == 3
    assert at.get("progress"), "the Train page shows the run"
    wait_status(path, lambda s: s.get("status") == "completed")
    at.switch_page("views/train.py").run()
    at.button(key="train.new").click().run()
    assert at.selectbox(key="train.preset.select").value == "demo"  # the form folded away and came back as it was
    assert at.number_input(key="train.w.steps").value == 3


def test_the_train_page_never_follows_a_paper_check_run(tmp_path):
    from msr.synthetic.config import make_config
    from msr.runner.launch import start_run
    runs = tmp_path / "runs"
    path = start_run(make_config("rank1", "msr-fc", steps=100000, runs_dir=str(runs), threads=1))
    try:
        wait_status(path, lambda s: s.get("status") == "running")
        at = open_page(runs, "views/train.py")
        assert not at.exception
        assert any(b.key == START for b in at.button), "the form, not the synthetic run"
        at.query_params["run"] = Path(path).name
        at.run()
        assert any(b.key == START for b in at.button)
    finally:
        from msr.store.liveness import request_stop
        request_stop(path)
        wait_status(path, lambda s: s.get("status") in ("stopped", "completed", "failed"))


@pytest.mark.slow
def test_another_session_sees_the_run_and_can_stop_it(tmp_path):
    """A run belongs to no browser session: a reload or a second browser finds
    it on the Train page and in the sidebar, with a Stop button."""
    runs = tmp_path / "runs"
    first = open_page(runs, "views/train.py")
    fill(first, **{**TINY_FORM, "steps": 100000}, name="first").button(key=START).click().run()
    path = session_run(first)
    wait_status(path, lambda s: s.get("status") == "running")
    second = open_page(runs, "views/train.py")  # a new session, as after a reload
    assert not second.exception
    assert second.get("progress"), "the running run is shown"
    assert any(b.key == f"side.{Path(path).name}.stop" for b in second.button)  # the sidebar's Stop
    second.button(key=f"side.{Path(path).name}.stop").click().run()
    status = wait_status(path, lambda s: s.get("status") == "stopped")
    assert status["step"] < 100000


def _saved_run(tmp_path, **changes) -> str:
    cfg = RunConfig(**{**TINY_FORM, "runs_dir": str(tmp_path / "runs"), **changes})
    return train(cfg).run_dir


@pytest.mark.slow
def test_runs_page_lists_compares_downloads_and_deletes(tmp_path):
    a = _saved_run(tmp_path, name="alpha", seed=1)
    b = _saved_run(tmp_path, name="beta", seed=2, inner_lr=0.05)
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")

    at = open_page(tmp_path / "runs", "views/runs.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["run"]) == {"alpha", "beta", "broken"}
    assert table.set_index("run").loc["broken", "status"].startswith("damaged: config.json is not valid JSON")
    row = table.set_index("run").loc["alpha"]
    assert row["architecture"] == "conv" and row["steps"] == "4 / 4" and row["status"] == "completed"
    assert row["test loss"] == pytest.approx(load_run(a).last["test_loss"])

    at.multiselect(key="runs.overlay").set_value([a, b]).run()
    assert len(at.get("vega_lite_chart")) == 1
    diff = at.dataframe[1].value
    assert sorted(diff["setting"]) == ["Inner learning rate", "Name", "Seed"]

    at.selectbox(key="runs.one").set_value(a).run()
    downloads = {d.proto.label for d in at.get("download_button")}
    assert downloads == {"Settings (JSON)", "Metrics (CSV)", "Metrics (JSON lines)", "Checkpoint, step 4 (.pt)"}

    at.button(key="runs.delete").click().run()
    assert any("cannot be undone" in w for w in texts(at.warning)) and Path(a).exists()
    at.button(key="runs.delete.no").click().run()
    assert Path(a).exists()
    at.button(key="runs.delete").click().run()
    at.button(key="runs.delete.yes").click().run()
    assert not at.exception and not Path(a).exists() and Path(b).exists()
    assert set(at.dataframe[0].value["run"]) == {"beta", "broken"}

    at.selectbox(key="runs.one").set_value(str(broken)).run()  # a damaged folder breaks nothing
    assert not at.exception and any("damaged" in w for w in texts(at.warning))


def test_the_runs_page_with_no_runs_says_where_to_start(tmp_path):
    at = open_page(tmp_path / "nothing", "views/runs.py")
    assert not at.exception and any("Train" in i for i in texts(at.info))


@pytest.mark.parametrize("changes,field", [
    (dict(arch="resnet"), "arch"), (dict(angles=[]), "angles"), (dict(angles=[0.0, 0.0]), "angles"),
    (dict(n_angles=0), "n_angles"), (dict(angle_step=float("nan")), "angle_step"),
    (dict(n_angles=400, angle_step=1.0), "n_angles"), (dict(rotation="spin"), "rotation"),
    (dict(rotation="query", angles=[10.0, 20.0]), "rotation"), (dict(ways=1), "ways"), (dict(shots=0), "shots"),
    (dict(queries=0), "queries"), (dict(queries=100), "queries"), (dict(tasks_per_step=0), "tasks_per_step"),
    (dict(inner_lr=0.0), "inner_lr"), (dict(outer_lr=-1.0), "outer_lr"), (dict(lr_mode="x"), "lr_mode"),
    (dict(inner_steps=0), "inner_steps"), (dict(outer_opt="x"), "outer_opt"), (dict(steps=0), "steps"),
    (dict(eval_interval=0), "eval_interval"), (dict(eval_tasks=1), "eval_tasks"), (dict(engine="x"), "engine"),
    (dict(device="tpu"), "device"), (dict(seed=-1), "seed"), (dict(data_source="x"), "data_source"),
    (dict(channels=0), "channels"), (dict(latent=0), "latent"), (dict(conv_latent=0), "conv_latent"),
    (dict(checkpoint_budget_mb=0.0), "checkpoint_budget_mb"),
])
def test_every_validation_message_finds_its_field(changes, field):
    with pytest.raises(ConfigError) as caught:
        RunConfig(**changes).validate()
    assert list(caught.value.errors) == [field]


def test_cuda_without_a_gpu_points_at_the_device_field(tmp_path, monkeypatch):
    from msr.runner import admission
    from ui.train_form import build_config, config_values

    monkeypatch.setattr(admission, "cuda_available", lambda: False)
    with pytest.raises(ConfigError) as caught:
        build_config({**config_values(RunConfig()), "device": "cuda"}, str(tmp_path))
    assert list(caught.value.errors) == ["device"] and "no CUDA GPU" in caught.value.errors["device"]


def test_config_diff_keeps_only_what_differs():
    a = RunConfig(n_angles=4, angle_step=90.0)
    b = RunConfig(angles=[0.0, 90.0, 180.0, 270.0], seed=5)
    diff = config_diff({"a": a, "b": b})
    assert list(diff["field"]) == ["seed"]  # the same angles, written two ways, are the same
    assert list(diff.loc[0, ["a", "b"]]) == ["0", "5"]
    assert config_diff({"a": a, "c": a.replace(seed=0)}).empty


def test_runs_frame_marks_damaged_folders(tmp_path):
    (tmp_path / "bad").mkdir()
    from msr.store.reader import load_run as load
    frame = runs_frame([load(tmp_path / "bad")])
    assert list(frame["status"]) == ["damaged: no config.json"] and frame.loc[0, "run"] == "bad"


def test_the_form_estimates_the_time_and_asks_before_a_long_run(tmp_path):
    """From the speed of a completed run of the same model: a line under the
    form, and a long run starts only after Start anyway."""
    runs = tmp_path / "runs"
    at = open_page(runs, "views/train.py")
    assert any("no time estimate" in c.value for c in at.caption), "nothing measured yet"
    train(RunConfig(**TINY_FORM, runs_dir=str(runs)))
    at = open_page(runs, "views/train.py")
    fill(at, **TINY_FORM).button(key=START).click().run()  # the short one starts at once
    poll(at, lambda a: any("Run completed" in s for s in texts(a.success)))
    at.button(key="train.new").click().run()  # the form again, with the settings just run
    assert any("About **" in c.value and "completed conv runs here" in c.value for c in at.caption), \
        texts(at.caption)
    before = sorted(p.name for p in runs.iterdir())
    fill(at, steps=400_000).button(key=START).click().run()  # hours at any speed this tiny run reaches
    assert any("would take about" in w.value for w in at.warning), "a long run is not started at once"
    assert sorted(p.name for p in runs.iterdir()) == before
    at.button(key="train.start_anyway").click().run()
    assert not at.exception and not at.error
    assert len(sorted(p.name for p in runs.iterdir())) == len(before) + 1, "Start anyway starts it"
    load_run(session_run(at))  # the page follows it; stop it so the test leaves nothing running
    from msr.store.liveness import request_stop
    request_stop(session_run(at))
    wait_status(session_run(at), lambda s: s.get("status") in ("stopped", "completed"))
