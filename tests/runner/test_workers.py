"""Runs as worker processes: faults injected on purpose.

kill -9 at random moments, SIGTERM and Ctrl-C, a launcher that goes away,
corrupt files of every shape, resume against an uninterrupted run, several
runs at once, and the confinement of delete and downloads.
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

from msr.config import RunConfig
from msr.layout import METRICS, STATUS
from msr.runs import (HOST, CheckpointError, RunFolderError, RunWriter, check_run_file, create_run_folder, delete_run,
                      dumps, list_runs, load_checkpoint, load_run, read_losses, read_metrics, read_run_file, read_status,
                      request_stop, worker_alive)
from msr.train import train
from msr.worker import execute
from conftest import stopper

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TINY = ["--arch", "conv", "--channels", "4", "--ways", "2", "--shots", "1", "--queries", "2",
        "--tasks-per-step", "2", "--eval-tasks", "2", "--n-angles", "2", "--angle-step", "90"]
TIMING = {"steps_per_sec", "steps_per_sec_overall", "train_seconds", "seconds"}


def msr(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msr", *args], capture_output=True, text=True, cwd=ROOT,
                          env=ENV, timeout=kw.pop("timeout", 300), **kw)


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "msr", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=ENV)


def wait_for(predicate, timeout=90.0, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def only_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if not p.name.startswith(".")] if root.exists() else []
    assert len(runs) <= 1
    return runs[0] if runs else None


def listing(root: Path) -> list[dict]:
    out = msr("runs", "--runs-dir", str(root), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING and k != "stop"} for r in records]


def tiny(tmp_path, **changes) -> RunConfig:
    base = dict(arch="conv", channels=4, ways=2, shots=1, queries=2, tasks_per_step=2, steps=12, eval_interval=3,
                eval_tasks=2, n_angles=2, angle_step=90.0, runs_dir=str(tmp_path / "runs"))
    return RunConfig(**{**base, **changes})


# ------------------------------------------------------------ kill -9
def test_a_run_ended_right_after_its_first_evaluation_resumes_without_repeating_it(tmp_path):
    """The state saved after the step-0 evaluation already holds it: resuming
    from there goes on with the steps, as a kill -9 at that moment would need."""
    cfg = tiny(tmp_path)
    path = create_run_folder(cfg.runs_dir, "mnist", cfg.to_dict(), "first", cfg.steps)
    assert execute(path, should_stop=lambda: True).status == "stopped"
    assert [r["step"] for r in load_run(path).metrics] == [0]
    assert execute(path, resume=True).status == "completed"
    assert [r["step"] for r in load_run(path).metrics] == [0, 3, 6, 9, 12]
    alone = train(tiny(tmp_path / "alone"))
    assert strip(load_run(path).metrics) == strip(alone.metrics)  # as if it had never stopped


@pytest.mark.parametrize("moment", range(4))
def test_kill_9_at_a_random_moment_leaves_no_run_that_lies(tmp_path, moment):
    """However far it got, a killed run is listed as interrupted (never
    running) or not at all, nothing in its folder is damaged, and resume
    finishes it with every scheduled evaluation exactly once."""
    root = tmp_path / "runs"
    delay = random.Random(moment).uniform(0.5, 6.0)
    proc = start("train", *TINY, "--steps", "400", "--eval-interval", "25", "--runs-dir", str(root), "--quiet")
    time.sleep(delay)
    proc.kill()
    proc.wait()
    run = only_run(root)
    if run is None:  # killed before the folder existed: nothing half-written either
        assert not root.exists() or not [p for p in root.iterdir() if not p.name.startswith(".new-")]
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
        "from msr.config import RunConfig\n"
        "from msr.worker import start_run\n"
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
    proc = start("train", *TINY, "--steps", "100000", "--eval-interval", "50", "--runs-dir", str(root), "--json",
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


# --------------------------------------------------------- resume = never stopped
@pytest.mark.parametrize("kind", ["mnist", "synthetic", "rotation"])
@pytest.mark.parametrize("stop_at", [6, 7])  # on an evaluation, and between two
def test_resume_gives_the_records_of_a_run_never_interrupted(tmp_path, kind, stop_at):
    if kind == "mnist":
        cfg = tiny(tmp_path)
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
        from msr.worker import create_run
        whole = execute(create_run(cfg, "synthetic"))
        half_dir = create_run(cfg, "synthetic")
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
    cfg = tiny(tmp_path, steps=300, eval_interval=20)
    whole = train(cfg)
    proc = start("train", *TINY, "--steps", "300", "--eval-interval", "20", "--runs-dir", str(tmp_path / "k"),
                 "--quiet")
    run = wait_for(lambda: only_run(tmp_path / "k"))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 45)
    proc.kill()
    proc.wait()
    assert msr("resume", str(run), "--quiet").returncode == 0
    assert strip(load_run(run).metrics) == strip(load_run(whole.run_dir).metrics)


def test_only_stopped_interrupted_or_failed_runs_resume(tmp_path):
    done = train(tiny(tmp_path, steps=2, eval_interval=1))
    out = msr("resume", done.run_dir)
    assert out.returncode == 2 and out.stderr.strip() == \
        f"error: run '{Path(done.run_dir).name}' has already completed its 2 steps"
    assert msr("resume", "no-such-run", "--runs-dir", str(tmp_path)).returncode == 2


# --------------------------------------------------------- concurrency
def test_four_runs_at_once_give_the_metrics_of_one_alone(tmp_path):
    alone = strip(train(tiny(tmp_path, seed=7), save=False).metrics)
    results = [None] * 4

    def one(i: int) -> None:
        results[i] = strip(train(tiny(tmp_path, seed=7), save=False).metrics)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r == alone for r in results)
    procs = [start("train", *TINY, "--steps", "12", "--eval-interval", "3", "--seed", "7", "--runs-dir",
                   str(tmp_path / f"p{i}"), "--json", "--quiet") for i in range(4)]
    for p in procs:
        assert p.wait(120) == 0
    for i in range(4):
        assert strip(load_run(only_run(tmp_path / f"p{i}")).metrics) == alone


# ------------------------------------------------------- corrupt files
def _good_run(tmp_path) -> Path:
    return Path(train(tiny(tmp_path, steps=4, eval_interval=2)).run_dir)


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


# ------------------------------------------------- environment errors
def test_a_runs_folder_that_is_a_file_exits_2_with_one_line(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    out = msr("train", *TINY, "--steps", "2", "--runs-dir", str(target))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: runs folder '{target}' is a file, not a folder; choose another runs folder"]


@pytest.mark.parametrize("code,words", [(errno.EACCES, "permission denied"), (errno.ENOSPC, "is full")])
def test_an_unwritable_or_full_runs_folder_is_one_line(tmp_path, monkeypatch, code, words):
    import tempfile
    from msr.config import ConfigError

    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(ConfigError, match=words):
        create_run_folder(tmp_path / "runs", "mnist", {}, "x", 1)
    assert not any((tmp_path / "runs").iterdir())


def test_too_little_free_disk_is_refused(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    from msr.config import ConfigError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9, 1000))
    with pytest.raises(ConfigError, match="MiB free"):
        create_run_folder(tmp_path / "runs", "mnist", {}, "x", 1)


def test_a_disk_that_fills_during_the_run_fails_it_with_one_line(tmp_path, monkeypatch):
    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(RunWriter, "append_metrics", full)
    with pytest.raises(OSError):
        train(tiny(tmp_path, steps=4, eval_interval=2))
    rec = list_runs(tmp_path / "runs")[0]
    assert rec.state == "failed" and "is full" in rec.status["message"]


def test_memory_refusal_writes_nothing(tmp_path):
    env = {**ENV, "MSR_MEMORY_LIMIT_MB": "100"}
    out = subprocess.run([sys.executable, "-m", "msr", "train", "--preset", "demo", "--runs-dir",
                          str(tmp_path / "runs")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "estimate" in lines[0] and "available" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_the_app_launch_path_trains_stops_and_resumes(tmp_path):
    """start_run (the app's Start), request_stop (its Stop) and a resumed
    worker, all through the run folder."""
    from msr.worker import resume_run, start_run
    run = start_run(tiny(tmp_path, steps=100000, eval_interval=50))
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
    from msr.worker import start_run
    run = start_run(tiny(tmp_path, steps=100000, eval_interval=50))
    assert load_run(run, with_metrics=False).state == "starting"
    assert request_stop(run)  # before the worker has even imported torch
    wait_for(lambda: load_run(run, with_metrics=False).state == "stopped")
    assert read_status(run)["step"] == 0 and [r["step"] for r in load_run(run).metrics] == [0]


def test_asking_twice_to_stop_still_makes_the_final_evaluation(tmp_path):
    from msr.worker import start_run
    run = start_run(tiny(tmp_path, steps=100000, eval_interval=1000))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 5)
    assert request_stop(run) and request_stop(run)  # two browsers, or a double click
    wait_for(lambda: load_run(run, with_metrics=False).state == "stopped")
    rec = load_run(run)
    assert rec.metrics[-1].get("stop") and rec.metrics[-1]["step"] == rec.step
    assert "second signal" not in (rec.status.get("message") or "")
    assert not (run / "stop").exists()  # answered, so a later resume is not stopped by it


def test_after_kill_9_every_loss_up_to_the_resume_point_is_kept(tmp_path):
    proc = start("train", *TINY, "--steps", "100000", "--eval-interval", "40", "--runs-dir", str(tmp_path / "k"),
                 "--quiet")
    run = wait_for(lambda: only_run(tmp_path / "k"))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 130)
    proc.kill()
    proc.wait()
    writer = RunWriter(run).claim()  # what resume does to the records, without training on
    try:
        from msr.runs import load_resume_state
        state_step = load_resume_state(run)["step"]
        writer.reset_records(state_step)
    finally:
        writer.release()
    assert state_step >= 120
    assert [s for s, _ in read_losses(run, keep=None)] == list(range(1, state_step + 1))
    assert max(load_run(run).checkpoint_steps()) == state_step


def test_a_wrong_type_inside_the_summary_marks_the_folder_damaged(tmp_path):
    run = _good_run(tmp_path)
    status = json.loads((run / STATUS).read_text())
    (run / STATUS).write_text(json.dumps({**status, "last": {"step": "x", "test_loss": "abc"}}))
    assert "'last' must be" in load_run(run).damaged
    out = msr("runs", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 0 and "Traceback" not in out.stderr


def test_a_damaged_resume_state_is_one_line(tmp_path):
    import torch
    run = Path(train_until(tiny(tmp_path), 7))
    torch.save({"step": 3}, run / "resume.pt")
    out = msr("resume", str(run))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "incomplete" in out.stderr


def test_a_stop_left_by_a_killed_worker_does_not_stop_its_resume(tmp_path):
    from msr.worker import start_run
    run = start_run(tiny(tmp_path, steps=100000, eval_interval=50))
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 60)
    (run / "stop").write_text("asked, never answered")  # the worker is killed before it reads this
    os.kill(read_status(run)["pid"], signal.SIGKILL)
    wait_for(lambda: load_run(run, with_metrics=False).state == "interrupted")
    proc = start("resume", str(run), "--quiet")
    wait_for(lambda: (read_status(run) or {}).get("step", 0) >= 120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 3
