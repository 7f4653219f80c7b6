"""The Runs page's table and settings comparison as frames (msr.analysis.tables), without a browser."""
import json
import time

import pytest

from msr.mnist.config import RunConfig
from msr.store.annotations import write_annotations
from msr.store.folders import create_run_folder
from msr.store.layout import run_files
from msr.store.reader import load_run
from msr.analysis.tables import (TABLE_COLUMNS, config_diff, notes_preview, runs_frame, short_date, short_names, time_left_text)

CONFIG = RunConfig(arch="conv", channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=300, eval_interval=50,
                   eval_tasks=2, n_angles=2, angle_step=90.0)


def make_run(root, status: dict, name: str = "", notes: str = ""):
    path = create_run_folder(root, "mnist", CONFIG.to_dict(), "conv", CONFIG.steps)
    current = json.loads(run_files(path).status.read_text())
    run_files(path).status.write_text(json.dumps({**current, **status}))
    if name or notes:
        write_annotations(path, name=name, notes=notes)
    return load_run(path, with_metrics=False)


def training_elsewhere(step: int, train_seconds: float | None, now: float) -> dict:
    """A run a worker on another machine trains now (its fresh heartbeat says so)."""
    status = {"status": "running", "host": "elsewhere", "heartbeat": now, "started": now - 60, "start_step": 0,
              "step": step, "total": 300}
    if train_seconds is not None:
        status["train_seconds"] = train_seconds
    return status


def test_the_table_has_human_headers_and_the_name_apart_from_the_folder(tmp_path):
    rec = make_run(tmp_path, {"status": "completed", "step": 300, "last": {"step": 300, "test_loss": 0.5,
                                                                          "test_err": 0.1, "test_acc": 0.8}},
                   name="Plain CNN", notes="Baseline for the lecture.\nSecond line.")
    frame = runs_frame([rec])
    assert list(frame.columns) == TABLE_COLUMNS and not any("_" in c for c in frame.columns)
    row = frame.iloc[0]
    assert row["run"] == "Plain CNN" and row["folder"] == rec.run_id
    assert row["steps"] == "300 / 300" and row["time left"] == "" and row["status"] == "completed"
    assert row["test loss"] == 0.5 and row["test accuracy"] == 0.8
    assert row["notes"] == "Baseline for the lecture. …"
    assert row["architecture"] == "conv" and row["angles"] == "0°, 90°"


def test_a_training_run_shows_its_live_step_and_the_time_left(tmp_path):
    now = time.time()
    rec = make_run(tmp_path, training_elsewhere(step=100, train_seconds=50.0, now=now))
    assert rec.active
    row = runs_frame([rec], now=now).iloc[0]
    assert row["steps"] == "100 / 300"  # the worker's heartbeat step, not the last evaluation's
    assert row["time left"] == "about 2 min"  # 200 steps at 0.5 s each


def test_time_left_is_a_dash_until_the_worker_has_timed_some_steps(tmp_path):
    now = time.time()
    rec = make_run(tmp_path, training_elsewhere(step=2, train_seconds=None, now=now))
    assert runs_frame([rec], now=now).iloc[0]["time left"] == "—"


def test_an_unnamed_run_is_called_by_its_folder(tmp_path):
    rec = make_run(tmp_path, {"status": "completed", "step": 300})
    row = runs_frame([rec]).iloc[0]
    assert row["run"] == rec.run_id == row["folder"] and row["notes"] == ""


@pytest.mark.parametrize("seconds,text", [(None, "—"), (float("nan"), "—"), (20, "under 1 min"),
                                          (70, "about 1 min"), (30 * 60, "about 30 min"),
                                          (3 * 3600 + 5 * 60, "about 3 h 05 min")])
def test_time_left_reads_as_a_person_would_say_it(seconds, text):
    assert time_left_text(seconds) == text


def test_dates_are_short_and_name_the_year_only_when_it_is_another():
    stamp = time.mktime((2026, 3, 5, 14, 7, 0, 0, 0, -1))
    assert short_date(stamp, now=time.mktime((2026, 11, 1, 0, 0, 0, 0, 0, -1))) == "5 Mar 14:07"
    assert short_date(stamp, now=time.mktime((2027, 1, 1, 0, 0, 0, 0, 0, -1))) == "5 Mar 2026"
    assert short_date(float("inf")) == ""


def test_notes_preview_is_the_first_line_cut_at_a_word():
    assert notes_preview("") == "" and notes_preview("  short  ") == "short"
    long = "word " * 30
    preview = notes_preview(long, limit=22)
    assert preview == "word word word word …" and len(preview) <= 24


def test_short_names_add_the_folder_only_where_names_repeat(tmp_path):
    a = make_run(tmp_path, {"status": "completed"}, name="demo")
    b = make_run(tmp_path, {"status": "completed"}, name="demo")
    c = make_run(tmp_path, {"status": "completed"}, name="other")
    d = make_run(tmp_path, {"status": "completed"})
    names = short_names([a, b, c, d])
    assert names[a.run_id] == f"demo ({a.run_id})" and names[b.run_id] == f"demo ({b.run_id})"
    assert names[c.run_id] == "other" and names[d.run_id] == d.run_id


def test_the_settings_comparison_names_fields_as_the_form_does_and_never_says_none():
    a = CONFIG.replace(name="alpha", inner_lr=0.1, first_order=False)
    b = CONFIG.replace(name="", inner_lr=0.05, first_order=True)
    diff = config_diff({"a": a, "b": b})
    assert list(diff["field"]) == ["inner_lr", "first_order", "name"]
    assert list(diff["setting"]) == ["Inner learning rate", "First order", "Name"]
    assert diff.set_index("field").loc["first_order", ["a", "b"]].tolist() == ["no", "yes"]
    assert diff.set_index("field").loc["name", "b"] == "–"
    assert "None" not in diff.to_string()
