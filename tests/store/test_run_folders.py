"""Run folders read back strictly and touched only where allowed.

Corrupt files of every shape mark only their own folder as damaged, records
are appended and never hold NaN, a run whose worker is gone is interrupted,
one worker at a time, and delete and downloads stay inside real run folders.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from msr.runner.execute import train
from msr.store.access import check_run_file, delete_run, read_run_file
from msr.store.checkpoints import CheckpointError, load_checkpoint
from msr.store.files import RunFolderError, dumps
from msr.store.layout import METRICS, STATUS
from msr.store.liveness import HOST, worker_alive
from msr.store.reader import list_runs, load_run, read_losses, read_metrics
from msr.store.writer import RunWriter
from conftest import listing, msr, tiny


# ------------------------------------------------------- corrupt files
def _good_run(tmp_path) -> Path:
    return Path(train(tiny(tmp_path)).run_dir)


CORRUPTIONS = {
    "status is a list": (STATUS, "[1, 2]", "status.json is not an object"),
    "created is text": (STATUS, '{"status": "completed", "created": "x"}', "'created' must be a number"),
    "unknown status": (STATUS, '{"status": "dancing"}', "'status' must be one of"),
    "status not JSON": (STATUS, "{", "status.json is not valid JSON"),
    "metrics line is a number": (METRICS, '42\n{"step": 2}\n', "metrics.jsonl line 1 is not a record"),
    "metrics line without step": (METRICS, '{"loss": 1}\n{"step": 2}\n', "has no whole-number 'step'"),
    "metrics out of order": (METRICS, '{"step": 4}\n{"step": 2}\n', "not in step order"),
    "arch is null": ("config.json", None, "config.json does not describe a run"),
    "config is a list": ("config.json", "[]", "config.json is not an object"),
    "config unknown field": ("config.json", None, "unknown config field"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_every_corrupt_shape_marks_only_its_folder_as_damaged(tmp_path, case):
    good, bad = _good_run(tmp_path), _good_run(tmp_path)
    name, text, reason = CORRUPTIONS[case]
    if text is None:
        data = json.loads((bad / name).read_text())
        if case == "arch is null":
            data["arch"] = None
        else:
            data["colour"] = "blue"
        text = json.dumps(data)
    (bad / name).write_text(text)
    rec = load_run(bad)
    assert rec.damaged and reason in rec.damaged, rec.damaged
    assert load_run(good).damaged is None
    out = msr("runs", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 0 and "Traceback" not in out.stderr and good.name in out.stdout
    rows = {r["id"]: r["status"] for r in listing(tmp_path / "runs")}
    if name == METRICS:  # a listing reads only the small summaries; opening the run finds the damage
        assert rows == {good.name: "completed", bad.name: "completed"}
        return
    records = list_runs(tmp_path / "runs", include_damaged=True)
    assert {r.run_id: bool(r.damaged) for r in records} == {good.name: False, bad.name: True}
    assert reason in out.stdout
    assert rows == {good.name: "completed", bad.name: "damaged"}


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path):
    run = _good_run(tmp_path)
    with open(run / METRICS, "a") as fh:
        fh.write('{"step": 6, "test_lo')
    with pytest.warns(UserWarning, match="unfinished last line"):
        rec = load_run(run)
    assert rec.damaged is None and [r["step"] for r in rec.metrics] == [0, 2, 4]


def test_no_nan_or_infinity_is_written_into_json(tmp_path):
    run = _good_run(tmp_path)
    writer = RunWriter(run).claim()
    try:
        writer.append_metrics({"step": 9, "test_loss": float("nan"), "x": [float("inf"), 1.0]})
        writer.write_status(last={"test_loss": float("-inf")})
    finally:
        writer.release()
    for name in (METRICS, STATUS):
        text = (run / name).read_text()
        assert "NaN" not in text and "Infinity" not in text
    assert read_metrics(run)[0][-1] == {"step": 9, "test_loss": None, "x": [None, 1.0]}
    assert dumps(float("nan")) == "null"


def test_metrics_are_appended_not_rewritten(tmp_path):
    run = _good_run(tmp_path)
    before = (run / METRICS).read_bytes()
    inode = (run / METRICS).stat().st_ino
    writer = RunWriter(run).claim()
    try:
        writer.append_metrics({"step": 6})
    finally:
        writer.release()
    after = (run / METRICS).read_bytes()
    assert after.startswith(before) and (run / METRICS).stat().st_ino == inode
    assert after[len(before):] == b'{"step": 6}\n'


def test_an_unreadable_checkpoint_is_one_line(tmp_path):
    run = _good_run(tmp_path)
    (run / "checkpoints" / "step_000004.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(run, 4)
    message = str(caught.value)
    assert "\n" not in message and "step 4" in message and "weights_only" not in message


def test_per_step_losses_are_read_from_the_end(tmp_path):
    run = _good_run(tmp_path)
    with open(run / "losses.csv", "w") as fh:
        for s in range(1, 20001):
            fh.write(f"{s},{1.0 / s!r}\n")
        fh.write("20001,0.5")  # unfinished
    tail = read_losses(run, keep=100)
    assert [s for s, _ in tail] == list(range(19901, 20001))


# ---------------------------------------------------------- liveness
def test_running_without_a_worker_is_interrupted(tmp_path):
    run = _good_run(tmp_path)
    status = json.loads((run / STATUS).read_text())
    (run / STATUS).write_text(json.dumps({**status, "status": "running", "host": HOST, "pid": 999999}))
    assert load_run(run).state == "interrupted"
    other = {**status, "status": "running", "host": "elsewhere", "heartbeat": time.time()}
    (run / STATUS).write_text(json.dumps(other))
    assert load_run(run).state == "running"  # another host: a fresh heartbeat counts
    (run / STATUS).write_text(json.dumps({**other, "heartbeat": time.time() - 3600}))
    assert load_run(run).state == "interrupted"


def test_a_run_cannot_be_trained_by_two_workers(tmp_path):
    run = _good_run(tmp_path)
    holder = RunWriter(run).claim()
    try:
        assert worker_alive(run, {"status": "running", "host": HOST})
        with pytest.raises(RunFolderError, match="already being trained"):
            RunWriter(run).claim(wait=0.2)
    finally:
        holder.release()
    assert not worker_alive(run, {"status": "running", "host": HOST})


# ------------------------------------------------------ confinement
def test_delete_touches_only_marked_idle_real_run_folders(tmp_path):
    run = _good_run(tmp_path)
    link = tmp_path / "runs" / "link"
    link.symlink_to(run)
    with pytest.raises(RunFolderError, match="symbolic link"):
        delete_run(link)
    foreign = tmp_path / "runs" / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")
    with pytest.raises(RunFolderError, match="not made by this app"):
        delete_run(foreign)
    holder = RunWriter(run).claim()
    try:
        holder.write_status(status="running", host=HOST, pid=os.getpid())
        with pytest.raises(RunFolderError, match="still training"):
            delete_run(run)
    finally:
        holder.release()
    assert run.exists() and foreign.exists()
    delete_run(run)
    assert not run.exists() and link.is_symlink() and foreign.exists()


def test_downloads_read_only_the_runs_own_regular_files(tmp_path):
    run = _good_run(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (run / "sneaky").symlink_to(secret)
    (run / "checkpoints" / "step_999999.pt").symlink_to(secret)
    assert json.loads(read_run_file(run, "config.json"))["arch"] == "conv"
    for bad in ("sneaky", "../secret.txt", "/etc/passwd", "checkpoints/step_999999.pt", "checkpoints", ""):
        with pytest.raises(RunFolderError):
            read_run_file(run, bad)
    with pytest.raises(RunFolderError):
        check_run_file(tmp_path / "runs", "x")


def test_a_wrong_type_inside_the_summary_marks_the_folder_damaged(tmp_path):
    run = _good_run(tmp_path)
    status = json.loads((run / STATUS).read_text())
    (run / STATUS).write_text(json.dumps({**status, "last": {"step": "x", "test_loss": "abc"}}))
    assert "'last' must be" in load_run(run).damaged
    out = msr("runs", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 0 and "Traceback" not in out.stderr
