import json
import time
from pathlib import Path

import pytest

from msr.config import ConfigError
from msr.jobs import JobRegistry
from msr.runs import load_run


def wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_job_runs_to_the_end_and_saves(tiny_config):
    registry = JobRegistry()
    job = registry.start(tiny_config(steps=4, eval_interval=2))
    assert job.wait(60)
    view = job.view()
    assert view.status == "completed" and view.step == 4 and not view.active
    assert [r["step"] for r in view.metrics] == [0, 2, 4]
    assert view.error is None and view.seconds_left is None
    saved = load_run(view.run_dir)
    assert saved.status["status"] == "completed"
    assert [r["step"] for r in saved.metrics] == [0, 2, 4]
    assert saved.metrics[-1]["test_loss"] == pytest.approx(view.metrics[-1]["test_loss"])
    assert all(step <= 4 for step, _ in view.step_losses) and len(view.step_losses) == 4


def test_stop_ends_the_run_within_a_step_and_keeps_its_records(tiny_config):
    registry = JobRegistry()
    job = registry.start(tiny_config(steps=100000, eval_interval=3))
    assert wait_for(lambda: job.view().step >= 2)
    seen = job.view().step
    job.stop()
    assert job.wait(30)
    view = job.view()
    assert view.status == "stopped"
    assert seen <= view.step <= seen + 1
    assert view.metrics[-1]["step"] == view.step  # the partial window was evaluated and kept
    status = json.loads((Path(view.run_dir) / "status.json").read_text())
    assert status["status"] == "stopped" and status["steps"] == view.step
    assert [r["step"] for r in load_run(view.run_dir).metrics] == [r["step"] for r in view.metrics]


def test_two_jobs_keep_their_own_state(tiny_config, tmp_path):
    registry = JobRegistry()
    a = registry.start(tiny_config(seed=1, name="a", steps=4, runs_dir=str(tmp_path / "ra")))
    b = registry.start(tiny_config(seed=2, name="b", steps=6, runs_dir=str(tmp_path / "rb")))
    assert a.wait(60) and b.wait(60)
    va, vb = a.view(), b.view()
    assert va.run_dir != vb.run_dir
    assert Path(va.run_dir).parent == tmp_path / "ra" and Path(vb.run_dir).parent == tmp_path / "rb"
    assert [r["step"] for r in va.metrics] == [0, 2, 4]
    assert [r["step"] for r in vb.metrics] == [0, 2, 4, 6]
    assert va.metrics[0]["test_loss"] != vb.metrics[0]["test_loss"]  # different seeds, not a shared list
    for view in (va, vb):
        assert [r["test_loss"] for r in load_run(view.run_dir).metrics] == [r["test_loss"] for r in view.metrics]
    assert registry.jobs([a.id]) == [a] and registry.jobs([b.id, "unknown"]) == [b]
    assert registry.owner_of(va.run_dir) is None  # finished jobs own nothing


def test_a_bad_config_is_refused_before_anything_starts(tiny_config, tmp_path):
    registry = JobRegistry()
    with pytest.raises(ConfigError, match="ways must be between 2 and 10"):
        registry.start(tiny_config(ways=11))
    assert registry.active() == [] and not (tmp_path / "runs").exists()


def test_a_run_that_cannot_read_its_data_fails_with_the_reason(tiny_config, tmp_path):
    registry = JobRegistry()
    job = registry.start(tiny_config(data_source="mnist", data_dir=str(tmp_path / "nothing")))
    assert job.wait(60)
    view = job.view()
    assert view.status == "failed" and "cannot read MNIST" in view.error
    assert view.run_dir is None and not (tmp_path / "runs").exists()


def test_a_live_job_owns_its_folder_until_it_ends(tiny_config):
    registry = JobRegistry()
    job = registry.start(tiny_config(steps=100000))
    try:
        run_dir = job.wait_started(30)
        assert run_dir and registry.owner_of(run_dir) is job
        assert wait_for(lambda: job.view().seconds_left is not None)
    finally:
        job.stop()
        assert job.wait(30)
    assert registry.owner_of(run_dir) is None
