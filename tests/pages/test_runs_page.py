"""The Runs page through Streamlit's AppTest: names and notes, the run in the address, the live table,
"New run from these settings" and the downloads."""
import json
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from msr.mnist.config import RunConfig
from msr.store.annotations import read_annotations
from msr.store.folders import create_run_folder
from msr.store.layout import run_files

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CONFIG = RunConfig(arch="conv", channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=300, eval_interval=50,
                   eval_tasks=2, n_angles=2, angle_step=90.0, seed=11)
RECORD = {"step": 0, "train_loss": None, "train_acc": None, "test_loss": 2.0, "test_err": 0.1, "test_acc": 0.3,
          "test_acc_err": 0.05}


def make_run(root: Path, status: dict, config: RunConfig = CONFIG) -> Path:
    path = create_run_folder(root, "mnist", config.to_dict(), config.arch, config.steps)
    current = json.loads(run_files(path).status.read_text())
    run_files(path).status.write_text(json.dumps({**current, **status}))
    run_files(path).metrics.write_text(json.dumps(RECORD) + "\n")
    return path


def finished(root: Path, **changes) -> Path:
    return make_run(root, {"status": "completed", "step": 300, "last": RECORD}, CONFIG.replace(**changes))


def open_runs(root: Path, run: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["runs_dir"] = str(root)
    at.run()
    if run:
        at.query_params["run"] = run
    at.switch_page("views/runs.py").run()
    assert not at.exception, at.exception
    return at


def test_a_link_opens_the_run_it_names_and_choosing_another_updates_the_link(tmp_path):
    first, second = finished(tmp_path), finished(tmp_path, seed=12)
    at = open_runs(tmp_path, run=first.name)
    assert at.selectbox(key="runs.one").value == str(first)
    at.selectbox(key="runs.one").set_value(str(second)).run()
    assert at.query_params["run"] == second.name


def test_renaming_and_notes_are_saved_and_shown(tmp_path):
    path = finished(tmp_path)
    at = open_runs(tmp_path, run=path.name)
    at.text_input(key=f"runs.name.{path.name}").input("Plain CNN")
    at.text_area(key=f"runs.notes.{path.name}").input("Baseline for the lecture.\nRotations up to 90°.")
    at.button(key="runs.save").click().run()
    assert not at.exception and not at.error
    saved = read_annotations(path)
    assert saved.name == "Plain CNN" and saved.notes.startswith("Baseline")
    table = at.dataframe[0].value
    row = table.set_index("folder").loc[path.name]
    assert row["run"] == "Plain CNN" and row["notes"] == "Baseline for the lecture. …"
    assert "time left" not in at.dataframe[0].proto.column_order  # nothing trains: no column of blanks
    assert any("Rotations up to 90°" in m.value for m in at.markdown)  # the notes, where the run is chosen


def test_a_failed_save_says_so_in_one_line_and_keeps_the_text(tmp_path):
    path = finished(tmp_path)
    run_files(path).annotations.unlink()
    run_files(path).annotations.mkdir()  # the file cannot be replaced: an OSError
    at = open_runs(tmp_path, run=path.name)
    at.text_input(key=f"runs.name.{path.name}").input("Kept")
    at.button(key="runs.save").click().run()
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("Name and notes not saved:") and "\n" not in error.value
    assert at.text_input(key=f"runs.name.{path.name}").value == "Kept"


def test_the_table_shows_a_training_run_live_with_its_time_left(tmp_path):
    now = time.time()
    path = make_run(tmp_path, {"status": "running", "host": "elsewhere", "heartbeat": now + 30, "started": now - 60,
                               "start_step": 0, "step": 100, "total": 300, "train_seconds": 50.0})
    at = open_runs(tmp_path)
    row = at.dataframe[0].value.set_index("folder").loc[path.name]
    assert row["status"] == "running" and row["steps"] == "100 / 300" and row["time left"] == "about 2 min"
    assert "time left" in at.dataframe[0].proto.column_order
    assert any("Step 100 / 300" in p.proto.text for p in at.get("progress"))
    assert at.button(key=f"runs.{path.name}.stop")  # stop where the run is chosen


def test_new_run_from_these_settings_fills_the_train_form(tmp_path):
    path = finished(tmp_path, name="source", inner_lr=0.07)
    at = open_runs(tmp_path, run=path.name)
    at.button(key="runs.again").click().run()
    assert not at.exception
    assert at.number_input(key="train.w.inner_lr").value == 0.07
    assert at.number_input(key="train.w.seed").value == 11
    assert at.text_input(key="train.w.name").value == ""  # the new run gets its own name


def test_the_overlay_uses_each_runs_colour_and_name(tmp_path):
    a, b = finished(tmp_path, name="alpha"), finished(tmp_path, name="beta", seed=3)
    at = open_runs(tmp_path, run=a.name)
    at.multiselect(key="runs.overlay").set_value([str(a), str(b)]).run()
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    text = json.dumps(spec)
    for path in (a, b):
        assert read_annotations(path).color in text
    assert '"alpha"' in text and '"beta"' in text
    diff = at.dataframe[1].value
    assert list(diff.columns) == ["setting", "alpha", "beta"] and set(diff["setting"]) == {"Name", "Seed"}


def test_downloads_have_human_labels_and_damaged_folders_offer_no_new_run(tmp_path):
    path = finished(tmp_path)
    (run_files(path).checkpoints / "step_000300.pt").write_bytes(b"weights")
    broken = tmp_path / "broken"
    broken.mkdir()
    at = open_runs(tmp_path, run=path.name)
    labels = {d.proto.label for d in at.get("download_button")}
    assert labels == {"Settings (JSON)", "Metrics (CSV)", "Metrics (JSON lines)", "Checkpoint, step 300 (.pt)"}
    at.selectbox(key="runs.one").set_value(str(broken)).run()
    assert not at.exception and not [b for b in at.button if b.key == "runs.again"]
