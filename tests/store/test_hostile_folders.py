"""Run folders that are not what the code expects: links out of the folder, special files, huge files, damaged
bytes. Nothing is written, created or read through a link; a special file never blocks a reader or fills its
memory; each such folder is listed as damaged with its reason, in one line."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from msr.core.errors import ConfigError
from msr.runner.execute import create_run
from msr.store.access import delete_run
from msr.store.annotations import read_annotations, write_annotations
from msr.store.checkpoints import write_checkpoint
from msr.store.files import MAX_SMALL_FILE, Damaged, RunFolderError, read_json
from msr.store.folders import create_run_folder, prepare_root, remove_stale_staging
from msr.store.layout import run_files
from msr.store.reader import METRICS_CACHE, list_runs, load_run, read_losses, read_metrics
from msr.store.status import MAX_MESSAGE
from msr.store.writer import RunWriter
from conftest import tiny


@pytest.fixture
def run(tmp_path) -> Path:
    """A fresh run folder (nothing trained)."""
    return create_run(tiny(tmp_path))


def _replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        os.rmdir(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


# ------------------------------------------------- links out of the folder
def test_a_linked_lock_file_is_never_created_outside_and_the_run_is_damaged(run, tmp_path):
    outside = tmp_path / "outside" / "x"
    outside.parent.mkdir()
    _replace_with_link(run_files(run).lock, outside)
    with pytest.raises(RunFolderError, match="worker.lock is a symbolic link"):
        RunWriter(run).claim(wait=0)
    assert not outside.exists()
    assert load_run(run).damaged == "worker.lock is a symbolic link, not a file of the run"


def test_checkpoints_linked_to_another_folder_are_never_written_there(run, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "step_000002.pt").write_bytes(b"someone else's")
    _replace_with_link(run_files(run).checkpoints, outside)
    with pytest.raises(RunFolderError, match="not a folder of the run"):
        write_checkpoint(run, 2, {"model": {}}, {}, 200.0)
    with pytest.raises(RunFolderError, match="checkpoints is a symbolic link"):
        RunWriter(run).claim(wait=0)
    assert os.listdir(outside) == ["step_000002.pt"] and (outside / "step_000002.pt").read_bytes() == b"someone else's"
    assert run_files(run).checkpoint_steps() == []  # the other folder's files are not this run's checkpoints
    rec = load_run(run)
    assert rec.state == "damaged" and "checkpoints is a symbolic link" in rec.damaged


@pytest.mark.parametrize("name", ["status.json", "config.json", "metrics.jsonl"])
def test_a_file_linked_to_a_device_is_damaged_without_reading_it(run, name):
    _replace_with_link(run_files(run).root / name, Path("/dev/zero"))
    rec = load_run(run)
    assert rec.state == "damaged" and rec.damaged == f"{name} is a symbolic link, not a file of the run"
    assert [r.damaged for r in list_runs(run.parent, include_damaged=True)] == [rec.damaged]


def test_a_metrics_file_linked_to_urandom_is_refused_by_every_reader(run):
    _replace_with_link(run_files(run).metrics, Path("/dev/urandom"))
    with pytest.raises(Damaged, match="symbolic link"):
        read_metrics(run)
    assert METRICS_CACHE.read(run) == []


# ------------------------------------------------------- special files
@pytest.mark.parametrize("name", ["config.json", "status.json", "annotations.json", "losses.csv"])
def test_a_fifo_never_blocks_a_reader(run, name):
    path = run_files(run).root / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    rec = load_run(run)  # would block for ever if the FIFO were opened for reading
    if name == "annotations.json":  # never essential: read as none
        assert rec.damaged is None and rec.name == rec.config.name
    else:
        assert rec.state == "damaged" and rec.damaged == f"{name} is a FIFO, not a file of the run"
    assert read_annotations(run).name == ""
    assert read_losses(run) == [] and read_losses(run, keep=None) == []
    with pytest.raises(Damaged, match="is a FIFO"):
        read_json(path)


# ------------------------------------------------------------ size caps
@pytest.mark.parametrize("name", ["status.json", "config.json"])
def test_a_huge_small_file_is_damaged_not_read_whole(run, name):
    path = run_files(run).root / name
    with open(path, "wb") as fh:
        fh.truncate(MAX_SMALL_FILE + 1)  # sparse: costs no disk
    rec = load_run(run)
    assert rec.state == "damaged" and rec.damaged == f"{name} is larger than 1 MiB"


def test_huge_annotations_are_ignored_not_read_whole(run):
    path = run_files(run).annotations
    path.write_text('{"name": "' + "x" * MAX_SMALL_FILE + '"}')
    assert read_annotations(run).name == ""
    assert load_run(run).damaged is None  # a name is never essential


def test_a_metrics_line_without_end_is_damaged_not_read_whole(run):
    with open(run_files(run).metrics, "wb") as fh:
        fh.write(b"x" * (2 ** 20 + 10) + b"\n{\"step\": 0}\n")
    with pytest.raises(Damaged, match="longer than 1 MiB"):
        read_metrics(run)


# ------------------------------------------------------- damaged bytes
def test_random_bytes_in_losses_are_skipped_and_a_resume_keeps_the_good_lines(run):
    losses = run_files(run).losses
    losses.write_bytes(b"1,2.5\n" + bytes(range(256)) * 4 + b"\n2,2.25\n3,\n4,1e400x\n5,2.0\n")
    assert read_losses(run) == [(1, 2.5), (2, 2.25), (5, 2.0)]
    assert read_losses(run, keep=None) == [(1, 2.5), (2, 2.25), (5, 2.0)]
    with RunWriter(run).claim(wait=0) as writer:
        writer.reset_records(keep_through=3)
    assert losses.read_text() == "1,2.5\n2,2.25\n3,\n"


# ----------------------------------------------------------- leftovers
def test_a_claim_removes_the_temporary_files_a_killed_writer_left(run):
    files = run_files(run)
    old = time.time() - 3600
    stale = [files.root / ".status.json.ab12cd.tmp", files.checkpoints / ".step_000002.pt.x1y2z3.tmp"]
    fresh = files.root / ".annotations.json.qq11.tmp"  # a write going on now (the app renaming the run)
    for path in stale + [fresh]:
        path.write_bytes(b"half")
    for path in stale:
        os.utime(path, (old, old))
    with RunWriter(run).claim(wait=0):
        pass
    assert not any(p.exists() for p in stale) and fresh.exists()


def test_staging_folders_left_by_a_killed_process_are_removed(tmp_path):
    root = prepare_root(tmp_path / "runs")
    left = root / ".new-abc123"
    left.mkdir()
    (left / "config.json").write_text("{}")
    old = time.time() - 3600
    os.utime(left, (old, old))
    probe = root / ".probe-zz99"
    probe.write_text("")
    os.utime(probe, (old, old))
    young = root / ".new-def456"
    young.mkdir()
    create_run_folder(root, "mnist", {"arch": "conv"}, "x", 1)
    assert not left.exists() and not probe.exists() and young.exists()
    assert remove_stale_staging(root, older_than=-1) == [young.name]


def test_runs_made_one_after_another_get_different_colours(tmp_path):
    root = tmp_path / "runs"
    colors = [load_run(create_run_folder(root, "mnist", {"arch": "conv"}, "x", 1)).color for _ in range(4)]
    assert len(set(colors)) == 4


def test_an_empty_runs_folder_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="must be named"):
        prepare_root("")
    assert os.listdir(tmp_path) == []


def test_a_damaged_folder_can_still_be_deleted_and_what_it_links_to_stays(run, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    _replace_with_link(run_files(run).checkpoints, target)
    delete_run(run)
    assert not run.exists() and (target / "keep").read_text() == "x"


def test_a_huge_status_message_is_cut_for_the_listing(run):
    status = json.loads(run_files(run).status.read_text())
    run_files(run).status.write_text(json.dumps({**status, "status": "failed", "message": "x" * 500_000}))
    rec = load_run(run)
    assert rec.damaged is None and len(rec.status["message"]) == MAX_MESSAGE + 1


def test_a_long_metrics_file_is_read_in_batches_with_the_same_verdicts(run):
    good = [json.dumps({"step": i, "test_loss": 1.0}) + "\n" for i in range(5000)]
    metrics = run_files(run).metrics
    metrics.write_text("".join(good[:4499] + ["{oops\n"] + good[4500:]))
    with pytest.raises(Damaged, match="line 4500 is not valid JSON"):
        read_metrics(run)
    metrics.write_text("".join(good + ['{"no step": 1}\n']))
    records, warning = read_metrics(run)
    assert len(records) == 5000 and "skipped a damaged last line" in warning
    metrics.write_text("".join(good + ['{"step": 5000, "te']))
    records, warning = read_metrics(run)
    assert len(records) == 5000 and "unfinished last line" in warning
    assert len(METRICS_CACHE.read(run)) == 5000


def test_annotations_linked_out_are_neither_read_nor_written_through(run, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text('{"name": "from outside"}')
    _replace_with_link(run_files(run).annotations, outside)
    assert read_annotations(run).name == ""
    write_annotations(run, name="mine")
    assert outside.read_text() == '{"name": "from outside"}'
    assert not run_files(run).annotations.is_symlink() and read_annotations(run).name == "mine"
