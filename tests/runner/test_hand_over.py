"""A run whose idle threads spin hands itself over to a process whose threads sleep once other work starts.

OpenMP reads its wait policy only when it starts, so a run that chose to spin
(MSR_OMP_WAIT=auto on an idle machine) replaces itself (execve: same pid) with
``msr resume`` of its own folder, handing on its lock. These tests run
``python -m msr`` in a wrapper that makes the machine look idle at launch and
busy at every look after, with heartbeats every 0.2 s; the program it hands
over to is the real one. Faults: SIGTERM and kill -9 while the next program
starts.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from msr.core.loop import HANDED_OVER, run_loop
from msr.core.runtime import HandOver
from msr.runner.execute import create_run, train
from msr.store.checkpoints import load_checkpoint
from msr.store.liveness import worker_alive
from msr.store.locks import HANDED_ENV, acquire, release, take_handed_lock
from msr.store.reader import load_run, read_losses
from msr.store.status import read_status
from conftest import ENV, ROOT, TINY_FLAGS, msr, only_run, strip, tiny, wait_for

pytestmark = pytest.mark.slow

LATER = """
import runpy, sys
import msr.core.runtime as r
import msr.store.writer as w

class Looks:  # every look after the launch finds this much other work
    def cores(self):
        return {later}

r.other_work_cores = lambda seconds=0.2: {launch}  # what the launch finds
r.watch_other_work = lambda: Looks()
r.HANDOVER_MIN_SECONDS = {{"sleep": 0.0, "spin": 0.0}}
w.HEARTBEAT_SECONDS = 0.2
sys.argv = ["msr"] + sys.argv[1:]
runpy.run_module("msr", run_name="__main__", alter_sys=True)
"""
AUTO = {**ENV, "MSR_OMP_WAIT": "auto"}


def busy_later(*args: str, launch: float = 0.0, later: float = 2.0) -> subprocess.Popen:
    """python -m msr ARGS under MSR_OMP_WAIT=auto, the machine idle at launch and busy at every look after (or
    as ``launch`` and ``later`` say, in cores of other work); the program it hands over to looks for real."""
    env = {k: v for k, v in AUTO.items() if k not in ("OMP_WAIT_POLICY", "MSR_OMP_WAIT_CHOSEN")}
    return subprocess.Popen([sys.executable, "-c", LATER.format(launch=launch, later=later), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def handing_over(run) -> dict | None:
    status = read_status(run) or {}
    return status if status.get("status") == "starting" and "handing_over" in status else None


def same_tensors(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return True


def test_a_spinning_run_hands_over_and_goes_on_exactly_as_one_never_handed_over(tmp_path):
    root = tmp_path / "runs"
    proc = busy_later("train", *TINY_FLAGS, "--steps", "400", "--eval-interval", "50", "--runs-dir", str(root),
                      "--json")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    run = only_run(root)
    status = read_status(run)
    assert status["status"] == "completed" and status["pid"] == proc.pid, "the same process, replaced"
    assert status["idle_threads"] == "sleep", "its threads sleep after the hand-over"
    step = status["handed_over_at"]
    assert 0 < step < 400 and "handing_over" not in status
    assert status["start_step"] == 0 and status["process_started"] <= status["started"], "one run: its first start"
    assert status["evals"] == len(load_run(run).metrics) == 9, "and every evaluation's time, for the time left"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["steps"] == 400, "msr train's own last line"
    assert "Traceback" not in err
    whole = train(tiny(tmp_path / "whole", steps=400, eval_interval=50))
    assert strip(load_run(run).metrics) == strip(load_run(whole.run_dir).metrics)
    assert read_losses(run) == read_losses(whole.run_dir)
    assert same_tensors(load_checkpoint(run), load_checkpoint(whole.run_dir))


def test_a_run_that_found_other_work_at_launch_spins_once_the_machine_is_idle(tmp_path):
    """The browser still drawing the page whose click launched the run, say."""
    root = tmp_path / "runs"
    proc = busy_later("train", *TINY_FLAGS, "--steps", "400", "--eval-interval", "50", "--runs-dir", str(root),
                      "--json", launch=2.0, later=0.0)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    run = only_run(root)
    status = read_status(run)
    assert status["status"] == "completed" and status["pid"] == proc.pid
    assert status["idle_threads"] == "spin" and 0 < status["handed_over_at"] < 400
    whole = train(tiny(tmp_path / "whole", steps=400, eval_interval=50))
    assert strip(load_run(run).metrics) == strip(load_run(whole.run_dir).metrics)


def test_the_apps_worker_hands_over_to_a_worker(tmp_path):
    run = create_run(tiny(tmp_path, steps=300, eval_interval=100))
    proc = busy_later("worker", str(run))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    status = read_status(run)
    assert status["status"] == "completed" and status["handed_over_at"] > 0 and status["idle_threads"] == "sleep"
    assert out.strip().splitlines()[-1] == "completed: 300 steps"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_while_the_next_program_starts_stops_the_run_cleanly(tmp_path, sig):
    root = tmp_path / "runs"
    proc = busy_later("train", *TINY_FLAGS, "--steps", "100000", "--eval-interval", "50", "--runs-dir", str(root),
                      "--json", "--quiet")
    run = wait_for(lambda: only_run(root))
    status = wait_for(lambda: handing_over(run), timeout=300, every=0.01)
    assert worker_alive(run, status), "while it starts again, the run is still its worker's"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    rec = load_run(run)
    assert rec.state == "stopped" and rec.status["message"] == f"stopped by request at step {status['handing_over']}"
    # its final evaluation: the stop's own, or the regular one when it handed over right after it
    assert rec.metrics[-1]["step"] == status["handing_over"]
    assert rec.metrics[-1].get("stop") or status["handing_over"] % 50 == 0
    assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped"


def test_kill_9_while_the_next_program_starts_leaves_a_run_that_resumes_exactly(tmp_path):
    root = tmp_path / "runs"
    proc = busy_later("train", *TINY_FLAGS, "--steps", "300", "--eval-interval", "20", "--runs-dir", str(root),
                      "--quiet")
    run = wait_for(lambda: only_run(root))
    status = wait_for(lambda: handing_over(run), timeout=300, every=0.01)
    proc.kill()
    proc.wait()
    rec = load_run(run)
    assert rec.state == "interrupted" and rec.status["resume_step"] == status["handing_over"]
    assert msr("resume", str(run), "--quiet").returncode == 0
    whole = train(tiny(tmp_path / "whole", steps=300, eval_interval=20))
    assert strip(load_run(run).metrics) == strip(load_run(whole.run_dir).metrics)


# ------------------------------------------------------------ the pieces
class Looks:
    def __init__(self, *cores):
        self.seen = list(cores)

    def cores(self):
        return self.seen.pop(0)


def test_a_run_hands_over_after_consecutive_looks_that_call_for_it_with_enough_left():
    """The first look only sets where the next one counts from (the run's own start is not looked at)."""
    h = HandOver(Looks(9.0, 1.0, 0.0, 1.0, 1.0), "sleep", 2, 10.0)
    assert [h.due(60.0) for _ in range(4)] == [False, False, False, True], "a quiet look starts the count again"
    h = HandOver(Looks(9.0, 1.0, 1.0, 1.0), "sleep", 2, 10.0)
    assert [h.due(5.0), h.due(5.0), h.due(None)] == [False, False, False], "too little left, or not known yet"
    h = HandOver(Looks(9.0, 0.2, 0.2), "sleep", 2, 10.0)
    assert [h.due(60.0), h.due(60.0)] == [False, False], "less than a quarter of a core is not other work"
    h = HandOver(Looks(9.0, 0.1, 0.45, 0.1, 0.0), "spin", 2, 30.0)
    assert [h.due(60.0) for _ in range(4)] == [False, False, False, True], "to spin: quiet looks in a row"


def test_the_loop_hands_over_before_a_step_without_evaluating():
    evaluated = []
    outcome = run_loop(10, 5, lambda: torch.tensor(1.0), lambda s, stopping: evaluated.append(s), lambda: False,
                       lambda *a: None, hand_over=lambda step: step == 3)
    assert (outcome.status, outcome.steps, evaluated) == (HANDED_OVER, 3, [0])


def test_a_handed_lock_is_taken_only_if_it_is_that_file_and_held(tmp_path, monkeypatch):
    lock, other = tmp_path / "worker.lock", tmp_path / "other.lock"
    fd = acquire(lock)
    try:
        monkeypatch.setenv(HANDED_ENV, str(fd))
        assert take_handed_lock(lock) == fd and HANDED_ENV not in os.environ, "taken, and the variable consumed"
        assert not os.get_inheritable(fd)
        other.touch()
        monkeypatch.setenv(HANDED_ENV, str(fd))
        assert take_handed_lock(other) is None, "another file's descriptor"
        monkeypatch.setenv(HANDED_ENV, "twelve")
        assert take_handed_lock(lock) is None
        stranger = os.open(lock, os.O_RDWR)  # the same file, not holding its lock (another process holds it)
        try:
            monkeypatch.setenv(HANDED_ENV, str(stranger))
            assert take_handed_lock(lock) is None
        finally:
            os.close(stranger)
    finally:
        release(fd)


def test_only_a_run_that_chose_at_launch_hands_over_and_one_that_went_to_sleep_stays_asleep():
    code = ("import msr.core.runtime as r; r.other_work_cores = lambda: {busy}; r.share_cores(sample=True); "
            "h = r.hand_over(); print(h and h.to)")
    clean = {k: v for k, v in ENV.items() if k not in ("OMP_WAIT_POLICY", "MSR_OMP_WAIT_CHOSEN", "MSR_OMP_WAIT", "MSR_OMP_WAIT_START")}

    def hands_over(busy: float, **env) -> str:
        return subprocess.run([sys.executable, "-c", code.format(busy=busy)], cwd=ROOT, env={**clean, **env},
                              capture_output=True, text=True, check=True).stdout.strip()

    assert hands_over(0.0, MSR_OMP_WAIT="auto") == "sleep", "alone at launch: it spins, and keeps looking"
    assert hands_over(1.0, MSR_OMP_WAIT="auto") == "spin", "busy at launch: it sleeps, and keeps looking"
    assert hands_over(1.0, MSR_OMP_WAIT="auto", MSR_OMP_WAIT_START="spin") == "sleep", "handed over to spin"
    assert hands_over(0.0, MSR_OMP_WAIT="spin") == "None", "asked to spin: it spins to the end"
    assert hands_over(0.0, MSR_OMP_WAIT="sleep") == "None", "asked to sleep, or handed over to sleep: for good"
