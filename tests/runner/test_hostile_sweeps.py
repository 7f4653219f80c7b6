"""Sweeps and their inputs where they are not what the code expects: sweep folders of the wrong shape, bounds
checked as for train, a point's folder the driver never recorded, and a worker that dies inside a sweep."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from msr.core.errors import ConfigError
from msr.runner import admission
from msr.runner.execute import create_run
from msr.runner.executors import Executor, LocalExecutor
from msr.runner.sweep import run as sweep_run
from msr.runner.sweep.folder import create_sweep, damaged_sweeps, find_sweep, list_sweeps, load_sweep
from msr.runner.sweep.run import _todo, adopt_unrecorded, run_sweep
from msr.runner.sweep.spec import MAX_SEEDS, SweepSpec, admit_points, check
from msr.store.files import RunFolderError
from msr.store.layout import run_files
from msr.store.liveness import HOST
from msr.store.reader import load_run
from conftest import tiny


def spec(tmp_path, **changes) -> SweepSpec:
    return SweepSpec(**{"base": tiny(tmp_path).to_dict(), "grid": {"arch": ["conv", "shared"]}, "seeds": [0],
                        **changes})


# ------------------------------------------------- sweep folders of the wrong shape
@pytest.mark.parametrize("name,content,words", [
    ("sweep.json", "[1, 2]", "sweep.json is not an object"),
    ("sweep.json", None, "'grid' must be an object of non-empty lists"),
    ("sweep.json", "{", "sweep.json is not valid JSON"),
    ("runs.json", "[1, 2]", "runs.json is not an object of run folders"),
    ("runs.json", '{"x": "/etc"}', "not a run folder of"),
    ("rates.json", "[1]", "rates.json has the wrong shape"),
    ("rates.json", '{"chosen": {}, "candidates": {"x": {"fast": 0.5}}}', "rates.json has the wrong shape"),
    ("rates.json", '{"chosen": {"x": "big"}}', "rates.json has the wrong shape"),
])
def test_a_sweep_folder_of_the_wrong_shape_is_damaged_and_the_others_still_list(tmp_path, name, content, words):
    good, bad = create_sweep(spec(tmp_path)), create_sweep(spec(tmp_path))
    if content is None:
        data = json.loads((bad.path / name).read_text())
        data["grid"] = "x"
        content = json.dumps(data)
    (bad.path / name).write_text(content)
    with pytest.raises(RunFolderError, match=words):
        load_sweep(bad.path)
    assert [s.path for s in list_sweeps(tmp_path / "runs")] == [good.path]
    [(path, why)] = damaged_sweeps(tmp_path / "runs")
    assert path == bad.path and words.split("'")[0] in why and "\n" not in why
    with pytest.raises(RunFolderError):
        find_sweep(str(bad.path), str(tmp_path / "runs"))


def test_sweep_files_that_are_links_or_huge_are_damaged(tmp_path):
    sweep = create_sweep(spec(tmp_path))
    (sweep.path / "runs.json").unlink()
    (sweep.path / "runs.json").symlink_to("/dev/zero")
    with pytest.raises(RunFolderError, match="runs.json is a symbolic link"):
        load_sweep(sweep.path)
    (sweep.path / "runs.json").unlink()
    with open(sweep.path / "sweep.json", "ab") as fh:
        fh.truncate(2 ** 21)
    with pytest.raises(RunFolderError, match="sweep.json is larger than 1 MiB"):
        load_sweep(sweep.path)


# ------------------------------------------------------ bounds as for train
@pytest.mark.parametrize("changes,words", [
    ({"gpus_per_run": math.nan}, "gpus-per-run must be a share of a GPU in \\(0, 1\\]"),
    ({"gpus_per_run": 0.0}, "gpus-per-run"), ({"gpus_per_run": 2.0}, "gpus-per-run"),
    ({"seeds": list(range(MAX_SEEDS + 1))}, f"1 to {MAX_SEEDS} seeds"),
    ({"threads": 10 ** 9}, "threads must be a whole number from 1 to"),
    ({"grid": {"ways": list(range(2, 11)), "channels": list(range(1, 40)),
               "inner_lr": [0.1 * i for i in range(1, 30)]}}, "at most 10,000"),
])
def test_sweep_bounds_are_checked_before_anything_is_written(tmp_path, changes, words):
    with pytest.raises(ConfigError, match=words):
        create_sweep(spec(tmp_path, **changes))
    assert not (tmp_path / "runs").exists()


def test_angles_with_a_gridded_angle_count_are_refused(tmp_path):
    base = tiny(tmp_path, angles=(0.0, 90.0)).to_dict()
    with pytest.raises(ConfigError, match="either --angles or a grid of n_angles"):
        check(spec(tmp_path, base=base, grid={"n_angles": [2, 3]}))


def test_more_threads_than_cores_are_refused_but_a_clusters_cores_are_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(admission, "cores", lambda: 2)
    with pytest.raises(ConfigError, match="at most the 2 cores"):
        admit_points(spec(tmp_path, threads=3))
    try:  # on a Ray cluster: refused, if at all, for another reason (no ray installed here)
        admit_points(spec(tmp_path, threads=3, executor="ray", address="10.0.0.1:6379"))
    except ConfigError as exc:
        assert "cores" not in str(exc)


def test_an_empty_runs_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="runs folder must be named"):
        check(spec(tmp_path, base={**tiny(tmp_path).to_dict(), "runs_dir": ""}))


# ------------------------------------------------------------ lifecycle
def test_a_resume_adopts_the_folder_a_killed_driver_never_recorded(tmp_path):
    sweep = create_sweep(spec(tmp_path))
    point = sweep.spec.points()[0]
    made = create_run(sweep.config(point))  # the driver was killed right after this, before runs.json
    other = create_run(tiny(tmp_path, name="not of the sweep"))
    assert adopt_unrecorded(sweep) == [made.name]
    assert load_sweep(sweep.path).runs == {point.key: str(made)}
    assert other.name not in json.dumps(load_sweep(sweep.path).runs)


def test_a_point_that_ended_at_step_0_starts_again_in_its_own_folder(tmp_path):
    sweep = create_sweep(spec(tmp_path))
    point = sweep.spec.points()[0]
    made = create_run(sweep.config(point))
    sweep.runs[point.key] = str(made)
    todo = _todo(sweep, [point])
    assert todo == [(point, False)] and sweep.runs[point.key] == str(made)
    assert sweep_run._run_dir(sweep, point) == made


class DyingExecutor(Executor):
    """Every run's worker dies at once (kill -9): its folder says running, but nobody holds its lock."""

    def __init__(self):
        self.started = []

    def start(self, run_dir: Path, resume: bool, config):
        status = json.loads(run_files(run_dir).status.read_text())
        status.update(status="running", pid=os.getpid(), host=HOST)
        run_files(run_dir).status.write_text(json.dumps(status))
        self.started.append(run_dir)
        return str(run_dir)

    def ended(self, running, wait):
        return LocalExecutor.ended(self, running, 0)


def test_a_crashed_worker_is_a_failed_point_and_the_driver_goes_on(tmp_path, monkeypatch):
    executor = DyingExecutor()
    monkeypatch.setattr(sweep_run, "_executor", lambda sweep, workers: executor)
    sweep = create_sweep(spec(tmp_path, workers=1))
    said = []
    assert run_sweep(sweep, said.append) == "failed"
    assert len(executor.started) == 2  # the second point still ran after the first died
    assert sum("failed (its worker ended without finishing)" in line for line in said) == 2
    assert all(load_run(p).state == "interrupted" for p in executor.started)
