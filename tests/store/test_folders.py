"""New run folders: complete before they appear, under ids that never collide; a runs folder that cannot
take a run is a machine problem (StorageError), said in one line."""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import namedtuple

import pytest

from msr.core.errors import MachineError
from msr.store import folders
from msr.store.annotations import read_annotations
from msr.store.files import StorageError
from msr.store.folders import create_run_folder, make_new_folder
from msr.store.reader import list_runs

BURST = 500
PROCESSES = 5


def _make(root: str, count: int) -> list[str]:
    return [str(create_run_folder(root, "mnist", {"arch": "conv"}, "burst", 1)) for _ in range(count)]


def test_500_run_folders_made_in_a_burst_by_several_processes_never_collide(tmp_path):
    """Within a second or two, 1 in 65,536 ids per second would collide about twice; none may."""
    root = str(tmp_path / "runs")
    os.makedirs(root)
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        made = [p for chunk in pool.starmap(_make, [(root, BURST // PROCESSES)] * PROCESSES) for p in chunk]
    assert len(made) == BURST and len(set(made)) == BURST
    shown = [n for n in os.listdir(root) if not n.startswith(".")]
    assert sorted(shown) == sorted(os.path.basename(p) for p in made)
    assert not [n for n in os.listdir(root) if n.startswith(".new-")]  # no staging folder left over
    runs = list_runs(root)
    assert len(runs) == BURST and not any(r.damaged for r in runs)


def test_an_id_already_taken_draws_another(tmp_path, monkeypatch):
    """Every id drawn the same: the second folder cannot take it and gets the next one."""
    tokens = iter(["aaaa", "aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(tokens))
    monkeypatch.setattr(folders, "stamp", lambda: "20260101-000000")
    first = create_run_folder(tmp_path, "mnist", {"arch": "conv"}, "same", 1)
    second = create_run_folder(tmp_path, "mnist", {"arch": "conv"}, "same", 1)
    assert first.name == "20260101-000000-same-aaaa" and second.name == "20260101-000000-same-bbbb"
    assert json.loads((first / "config.json").read_text())["kind"] == "mnist"


def test_a_new_folder_name_taken_draws_another(tmp_path):
    names = iter(["x", "x", "y"])
    assert make_new_folder(tmp_path, lambda: next(names)).name == "x"
    assert make_new_folder(tmp_path, lambda: next(names)).name == "y"


@pytest.mark.parametrize("code,words", [(errno.EACCES, "permission denied"), (errno.ENOSPC, "is full")])
def test_an_unwritable_or_full_runs_folder_is_a_machine_problem_in_one_line(tmp_path, monkeypatch, code, words):
    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(StorageError, match=words) as caught:
        create_run_folder(tmp_path / "runs", "mnist", {}, "x", 1)
    assert isinstance(caught.value, MachineError) and "\n" not in str(caught.value)
    assert not any((tmp_path / "runs").iterdir())


def test_too_little_free_disk_is_refused(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9, 1000))
    with pytest.raises(StorageError, match="MiB free"):
        create_run_folder(tmp_path / "runs", "mnist", {}, "x", 1)


def test_a_runs_folder_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(StorageError, match="is a file, not a folder"):
        create_run_folder(target, "mnist", {}, "x", 1)


def test_runs_made_at_once_get_different_colours(tmp_path, monkeypatch):
    """Choosing a colour takes a while (here 0.2 s); runs made meanwhile still each get their own, as the
    colour is chosen, and the folder appears, under the runs folder's lock."""
    chosen = folders.least_used_color

    def slow(root):
        color = chosen(root)
        time.sleep(0.2)
        return color

    monkeypatch.setattr(folders, "least_used_color", slow)
    root = tmp_path / "runs"
    made = []
    threads = [threading.Thread(target=lambda: made.append(create_run_folder(root, "mnist", {"arch": "conv"}, "x", 1)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    colors = [read_annotations(p).color for p in made]
    assert len(made) == 4 and len(set(colors)) == 4
