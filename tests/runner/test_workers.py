"""Runs as worker processes: faults injected on purpose.

kill -9 at random moments, SIGTERM and Ctrl-C, a launcher that goes away,
resume against an uninterrupted run (every kind), several runs at once, a
disk that fills, and the app's launch, stop and resume through the folder.
"""
from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from msr.mnist.config import RunConfig
from msr.runner.execute import create_run, execute, train
from msr.runner.launch import resume_run, start_run
from msr.store.checkpoints import load_resume_state
from msr.store.folders import create_run_folder
from msr.store.liveness import request_stop, worker_alive
from msr.store.reader import list_runs, load_run, read_losses
from msr.store.status import read_status
from msr.store.writer import RunWriter
from conftest import ENV, ROOT, TINY_FLAGS, listing, msr, only_run, start, stopper, strip, tiny, wait_for


def twelve(tmp_path, **changes) -> RunConfig:
    """The tiny config over 12 steps, evaluated every 3."""
    return tiny(tmp_path, **{"steps": 12, "eval_interval": 3, **changes})


# ------------------------------------------------------------ kill -9
def test_a_run_ended_right_after_its_first_evaluation_resumes_without_repeating_it(tmp_path):
    """The state saved after the step-0 evaluation already holds it: resuming
    from there goes on with the steps, as a kill -9 at that moment would need."""
    cfg = twelve(tmp_path)
    path = create_run_folder(cfg.runs_dir, "mnist", cfg.to_dict(), "first", cfg.steps)
    assert execute(path, should_stop=lambda: True).status == "stopped"
    assert [r["step"] for r in load_run(path).metrics] == [0]
    assert execute(path, resume=True).status == "completed"
    assert [r["step"] for r in load_run(path).metrics] == [0, 3, 6, 9, 12]
    alone = train(twelve(tmp_path / "alone"))
    assert strip(load_run(path).metrics) == strip(alone.metrics)  # as if it had never stopped


@pytest.mark.parametrize("moment", range(4))
def test_kill_9_at_a_random_moment_leaves_no_run_that_lies(tmp_path, moment):
    """However far it got, a killed run is listed as interrupted (never
    running) or not at all, nothing in its folder is damaged, and resume
    finishes it with every scheduled evaluation exactly once."""
    root = tmp_path / "runs"
    delay = random.Random(moment).uniform(0.5, 6.0)
    proc = start("train", *TINY_FLAGS, "--steps", "400", "--eval-interval", "25", "--runs-dir", str(root), "--quiet")
    time.sleep(delay)
    proc.kill()
    proc.wait()
    run = only_run(root)
    if run is None:  # killed before the folder existed: nothing half-written (.new-*: staging; .runs.lock)
        assert not root.exists() or not [p for p in root.iterdir() if not p.name.startswith(".")]
        return
    rows = listing(root)
    assert [r["status"] for r in rows] in (["interrupted"], ["completed"])
    rec = load_run(run)
    assert rec.damaged is None and rec.state in ("interrupted", "completed")
    if rec.state == "completed":
        return
    resumed = msr("resume", str(run), "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["status"] == "completed"
    steps = [r["step"] for r in load_run(run).metrics]
    assert steps == list(range(0, 401, 25))
    assert listing(root)[0]["status"] == "completed"


def test_a_launched_worker_outlives_its_launcher(tmp_path):
    """What a server shutdown does to the runs it started: the launcher (a
    stand-in for the Streamlit server) dies; its worker trains on, stays
    controllable from its folder, and stops cleanly when asked."""
    root = tmp_path / "runs"
    script = (
        "import sys, time\n"
        "from msr.mnist.config import RunConfig\n"
        "from msr.runner.launch import start_run\n"
        f"cfg = RunConfig(arch='conv', channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=100000,\n"
        f"                eval_interval=50, eval_tasks=2, n_angles=2, angle_step=90.0, runs_dir={str(root)!r})\n"
        "print(start_run(cfg), flush=True)\n"
        "time.sleep(600)\n")
    launcher = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    run = Path(launcher.stdout.readline().strip())
    wait_for(lambda: (read_status(run) or {}).get("status") == "running")
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(30) == -signal.SIGTERM
    step = (read_status(run) or {}).get("step", 0)
    wait_for(lambda: (read_status(run) or {}).get("step", 0) > step + 5)  # still training
    assert listing(root)[0]["status"] == "running"
    stopped = msr("stop", str(run))
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: (read_status(run) or {}).get("status") == "stopped")
    wait_for(lambda: not worker_alive(run, read_status(run)))
    assert load_run(run).metrics[-1]["step"] == read_status(run)["step"]


# ------------------------------------------------------- SIGTERM, Ctrl-C
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_like_the_stop_button(tmp_path, sig):
    root = tmp_path / "runs"
    proc = start("train", *TINY_FLAGS, "--steps", "100000", "--eval-interval", "50", "--runs-dir", str(root), "--json",
                 "--quiet")
    run = wait_for(lambda: only_run(root))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err  # documented: 3 = stopped
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "stopped" and 3 <= summary["steps"] < 100000
    rec = load_run(run)
    assert rec.state == "stopped" and rec.metrics[-1]["step"] == summary["steps"]  # the final evaluation
    assert rec.metrics[-1]["test_loss"] == pytest.approx(summary["test_loss"])
    assert "Traceback" not in err


def test_a_second_signal_ends_at_once_and_resume_continues(tmp_path):
    root = tmp_path / "runs"
    proc = start("train", "--arch", "shared", "--ways", "10", "--shots", "5", "--queries", "10",
                 "--tasks-per-step", "8", "--eval-tasks", "40", "--steps", "100000", "--eval-interval", "2",
                 "--runs-dir", str(root), "--quiet")
    run = wait_for(lambda: only_run(root))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 2)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    rec = load_run(run)
    assert rec.damaged is None and rec.state in ("stopped", "interrupted")
    # what the banner says is where resuming really continues
    assert rec.resume_step == load_resume_state(run)["step"]
    if "second signal" in (rec.status.get("message") or ""):
        assert f"resume continues from step {rec.resume_step}" in rec.status["message"]


# --------------------------------------------------------- resume = never stopped
@pytest.mark.parametrize("kind", ["mnist", "synthetic", "rotation"])
@pytest.mark.parametrize("stop_at", [6, 7])  # on an evaluation, and between two
def test_resume_gives_the_records_of_a_run_never_interrupted(tmp_path, kind, stop_at):
    if kind == "mnist":
        cfg = twelve(tmp_path)
        whole = train(cfg)
        half_dir = train_until(cfg, stop_at)
    else:
        from msr.synthetic.config import SyntheticConfig
        if kind == "synthetic":
            cfg = SyntheticConfig(model="msr-fc", steps=12, eval_interval=3, n_tasks=100, test_tasks=10,
                                  tasks_per_step=4, latent=2, cache_dir=str(tmp_path / "cache"),
                                  runs_dir=str(tmp_path / "runs"))
        else:  # a 2-D problem: tasks made when drawn, the lens in every record
            cfg = SyntheticConfig(problem="rot4", model="msr-conv-dense", steps=12, eval_interval=3, n_tasks=40,
                                  test_tasks=4, tasks_per_step=4, cache_dir=str(tmp_path / "cache"),
                                  runs_dir=str(tmp_path / "runs"))
        whole = execute(create_run(cfg))
        half_dir = create_run(cfg)
        half = execute(half_dir, should_stop=stopper(stop_at))
        assert half.status == "stopped"
    assert load_run(half_dir).state == "stopped"
    resumed = execute(half_dir, resume=True)
    assert resumed.status == "completed" and resumed.steps == 12
    after = [r for r in load_run(half_dir).metrics if r["step"] > stop_at]
    expected = [r for r in load_run(whole.run_dir).metrics if r["step"] > stop_at]
    assert strip(after) == strip(expected) and after


def train_until(cfg: RunConfig, at: int) -> str:
    result = train(cfg, should_stop=stopper(at))
    assert result.status == "stopped" and result.steps == at
    return result.run_dir


def test_resume_after_kill_9_equals_the_uninterrupted_run(tmp_path):
    cfg = twelve(tmp_path, steps=300, eval_interval=20)
    whole = train(cfg)
    proc = start("train", *TINY_FLAGS, "--steps", "300", "--eval-interval", "20", "--runs-dir", str(tmp_path / "k"),
                 "--quiet")
    run = wait_for(lambda: only_run(tmp_path / "k"))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 45)
    proc.kill()
    proc.wait()
    assert msr("resume", str(run), "--quiet").returncode == 0
    assert strip(load_run(run).metrics) == strip(load_run(whole.run_dir).metrics)


# --------------------------------------------------------- concurrency
def test_four_runs_at_once_give_the_metrics_of_one_alone(tmp_path):
    alone = strip(train(twelve(tmp_path, seed=7), save=False).metrics)
    results = [None] * 4

    def one(i: int) -> None:
        results[i] = strip(train(twelve(tmp_path, seed=7), save=False).metrics)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r == alone for r in results)
    procs = [start("train", *TINY_FLAGS, "--steps", "12", "--eval-interval", "3", "--seed", "7", "--runs-dir",
                   str(tmp_path / f"p{i}"), "--json", "--quiet") for i in range(4)]
    for p in procs:
        assert p.wait(120) == 0
    for i in range(4):
        assert strip(load_run(only_run(tmp_path / f"p{i}")).metrics) == alone


def test_a_disk_that_fills_during_the_run_fails_it_with_one_line(tmp_path, monkeypatch):
    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(RunWriter, "append_metrics", full)
    with pytest.raises(OSError):
        train(twelve(tmp_path, steps=4, eval_interval=2))
    rec = list_runs(tmp_path / "runs")[0]
    assert rec.state == "failed" and "is full" in rec.status["message"]


def test_the_app_launch_path_trains_stops_and_resumes(tmp_path):
    """start_run (the app's Start), request_stop (its Stop) and a resumed
    worker, all through the run folder."""
    run = start_run(twelve(tmp_path, steps=100000, eval_interval=50))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 60)
    assert request_stop(run)
    wait_for(lambda: load_run(run, with_metrics=False).state == "stopped")
    stopped_at = read_status(run)["step"]
    resume_run(run)
    wait_for(lambda: (read_status(run) or {}).get("step", 0) > stopped_at + 10)
    assert load_run(run, with_metrics=False).state == "running"
    assert request_stop(run)
    wait_for(lambda: load_run(run, with_metrics=False).state == "stopped")
    steps = [r["step"] for r in load_run(run).metrics]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert "Traceback" not in (run / "worker.log").read_text()


def test_a_stop_asked_while_the_worker_starts_is_honoured(tmp_path):
    run = start_run(twelve(tmp_path, steps=100000, eval_interval=50))
    assert load_run(run, with_metrics=False).state == "starting"
    assert request_stop(run)  # before the worker has even imported torch
    wait_for(lambda: load_run(run, with_metrics=False).state == "stopped")
    assert read_status(run)["step"] == 0 and [r["step"] for r in load_run(run).metrics] == [0]


def test_asking_twice_to_stop_still_makes_the_final_evaluation(tmp_path):
    run = start_run(twelve(tmp_path, steps=100000, eval_interval=1000))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 5)
    assert request_stop(run) and request_stop(run)  # two browsers, or a double click
    wait_for(lambda: load_run(run, with_metrics=False).state == "stopped")
    rec = load_run(run)
    assert rec.metrics[-1].get("stop") and rec.metrics[-1]["step"] == rec.step
    assert "second signal" not in (rec.status.get("message") or "")
    assert not (run / "stop").exists()  # answered, so a later resume is not stopped by it
    assert rec.resume_step == rec.step == load_resume_state(run)["step"]
    assert rec.resume_text() == f"Resume continues from step {rec.step}"


def test_after_kill_9_every_loss_up_to_the_resume_point_is_kept(tmp_path):
    proc = start("train", *TINY_FLAGS, "--steps", "100000", "--eval-interval", "40", "--runs-dir", str(tmp_path / "k"),
                 "--quiet")
    run = wait_for(lambda: only_run(tmp_path / "k"))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 130)
    proc.kill()
    proc.wait()
    writer = RunWriter(run).claim()  # what resume does to the records, without training on
    try:
        state_step = load_resume_state(run)["step"]
        writer.reset_records(state_step)
    finally:
        writer.release()
    assert state_step >= 120
    assert [s for s, _ in read_losses(run, keep=None)] == list(range(1, state_step + 1))
    assert max(load_run(run).checkpoint_steps()) == state_step


def test_a_stop_left_by_a_killed_worker_does_not_stop_its_resume(tmp_path):
    run = start_run(twelve(tmp_path, steps=100000, eval_interval=50))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 60)
    (run / "stop").write_text("asked, never answered")  # the worker is killed before it reads this
    os.kill(read_status(run)["pid"], signal.SIGKILL)
    wait_for(lambda: load_run(run, with_metrics=False).state == "interrupted")
    proc = start("resume", str(run), "--quiet")
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 3
