"""Inputs checked the same way by every command, before anything is written (the dataset cache included):
one line on stderr and exit code 2 for bad input, 4 for a runs folder that cannot take the run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from msr.cli.main import main
from msr.runner import admission
from conftest import ENV, ROOT, TINY_FLAGS

# The tiny flags without the angle count and step (a sweep below grids them)
NO_ANGLES = [f for i, f in enumerate(TINY_FLAGS) if f not in ("--n-angles", "--angle-step")
             and TINY_FLAGS[i - 1] not in ("--n-angles", "--angle-step")]
SYNTHETIC = ["synthetic", "--problem", "rank1", "--model", "msr-fc", "--steps", "2", "--eval-interval", "1"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("flags,words", [
    (["--steps", "20000000"], "steps"),
    (["--threads", "1000000000"], "threads"),
    (["--runs-dir", ""], "runs folder must be named"),
])
def test_synthetic_refuses_what_train_refuses_and_writes_nothing(tmp_path, capsys, monkeypatch, flags, words):
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    runs = [] if "--runs-dir" in flags else ["--runs-dir", str(tmp_path / "runs")]
    args = SYNTHETIC + ["--cache-dir", str(cache)] + runs
    assert main(args + flags) == 2
    assert words in _one_line(capsys)
    assert os.listdir(tmp_path) == []


def test_more_threads_than_cores_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(admission, "cores", lambda: 2)
    assert main(SYNTHETIC + ["--threads", "3", "--cache-dir", str(tmp_path / "c"), "--runs-dir",
                             str(tmp_path / "r")]) == 2
    assert "at most the 2 cores" in _one_line(capsys)
    assert os.listdir(tmp_path) == []


def test_a_runs_folder_that_cannot_take_the_run_writes_no_dataset_cache(tmp_path, capsys):
    (tmp_path / "runs").write_text("a file, not a folder")
    assert main(SYNTHETIC + ["--cache-dir", str(tmp_path / "cache"), "--runs-dir", str(tmp_path / "runs")]) == 4
    assert "is a file, not a folder" in _one_line(capsys)
    assert not (tmp_path / "cache").exists()


def test_train_refuses_an_empty_runs_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY_FLAGS, "--steps", "2", "--runs-dir", ""]) == 2
    assert "runs folder must be named" in _one_line(capsys)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flags,words", [
    (["--angles", "0,90", "--grid", "n_angles=2,3"], "either --angles or a grid of n_angles"),
    (["--gpus-per-run", "nan"], "gpus-per-run"),
    (["--gpus-per-run", "1.5"], "gpus-per-run"),
    (["--threads", "100000"], "threads"),
    (["--seeds", ",".join(map(str, range(1001)))], "seeds"),
])
def test_sweep_refuses_bad_input_before_anything_is_written(tmp_path, capsys, flags, words):
    assert main(["sweep", *NO_ANGLES, "--steps", "2", "--runs-dir", str(tmp_path / "runs"), *flags]) == 2
    assert words in _one_line(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("after", [0.3, 0.6, 1.0])
def test_ctrl_c_while_the_command_starts_is_one_line_and_exit_130(tmp_path, after):
    """Ctrl-C while torch, numpy and scipy load (a KeyboardInterrupt inside numpy's import once gave a
    RecursionError traceback), before any run exists."""
    proc = subprocess.Popen([sys.executable, "-m", "msr", "train", *TINY_FLAGS, "--steps", "2", "--runs-dir",
                             str(tmp_path / "runs")], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted before the run started; nothing was trained"
    assert not (tmp_path / "runs").exists() or not [n for n in os.listdir(tmp_path / "runs") if not n.startswith(".")]
