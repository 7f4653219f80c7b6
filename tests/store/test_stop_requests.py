"""One Stop is one stop, and a signal only ever reaches the process that holds the run's lock.

A stop request writes the stop file and sends SIGTERM; the worker counts them as one request, so only a
second request from a person (a second Ctrl-C, Force stop) ends it at once. A pid in status.json that is
not the lock's holder (a worker still claiming the run, a pid reused by a stranger) gets no signal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from msr.runner.execute import create_run
from msr.runner.process import StopSignals
from msr.store.layout import NOT_RESPONDING, run_files
from msr.store.liveness import HOST, force_stop, request_stop
from msr.store.locks import acquire, lock_holders, release, signal_holder
from msr.store.progress import progress_of
from msr.store.reader import load_run
from conftest import tiny

# Holds the flock on argv[1] (or not, with "-"), counts the SIGTERMs it gets into argv[2].
HOLDER = """
import fcntl, os, signal, sys, time
path, out = sys.argv[1], sys.argv[2]
if path != "-":
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
count = 0
def on_term(signum, frame):
    global count
    count += 1
    open(out, "w").write(str(count))
signal.signal(signal.SIGTERM, on_term)
open(out, "w").write("0")
end = time.time() + 60
while time.time() < end:
    time.sleep(0.05)
"""


@pytest.fixture
def spawn():
    procs = []

    def start(lock: str, out: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, lock, str(out)])
        procs.append(proc)
        deadline = time.time() + 30
        while not out.exists() or (lock != "-" and proc.pid not in (lock_holders(Path(lock)) or set())):
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.02)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _running(run: Path, pid: int) -> None:
    status = json.loads(run_files(run).status.read_text())
    status.update(status="running", pid=pid, host=HOST, heartbeat=time.time(), updated=time.time())
    run_files(run).status.write_text(json.dumps(status))


def _signals(out: Path, wait: float = 0.3) -> int:
    time.sleep(wait)
    return int(out.read_text())


def test_two_stop_requests_send_one_signal(tmp_path, spawn):
    run = create_run(tiny(tmp_path))
    worker = spawn(str(run_files(run).lock), tmp_path / "count")
    _running(run, worker.pid)
    assert request_stop(run) and run_files(run).stop.exists()
    assert _signals(tmp_path / "count") == 1
    assert request_stop(run)  # a second click, another tab, the sweep's driver: the same request
    assert _signals(tmp_path / "count") == 1


def test_requests_at_once_from_several_threads_send_one_signal(tmp_path, spawn):
    run = create_run(tiny(tmp_path))
    worker = spawn(str(run_files(run).lock), tmp_path / "count")
    _running(run, worker.pid)
    threads = [threading.Thread(target=request_stop, args=(run,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _signals(tmp_path / "count") == 1


def test_a_pid_that_does_not_hold_the_lock_is_never_signalled(tmp_path, spawn):
    """A resume claimed the run (it holds the lock) but the status still names the old pid, now reused by a
    stranger: neither Stop nor Force stop reaches the stranger."""
    run = create_run(tiny(tmp_path))
    stranger = spawn("-", tmp_path / "count")
    fd = acquire(run_files(run).lock)  # the new worker, not yet recorded
    try:
        _running(run, stranger.pid)
        assert request_stop(run)  # the request still stands: the stop file
        assert run_files(run).stop.exists()
        assert not force_stop(run)
        assert _signals(tmp_path / "count") == 0 and stranger.poll() is None
    finally:
        release(fd)


def test_force_stop_ends_only_the_lock_holder(tmp_path, spawn):
    run = create_run(tiny(tmp_path))
    worker = spawn(str(run_files(run).lock), tmp_path / "count")
    _running(run, worker.pid)
    assert force_stop(run)
    assert worker.wait(timeout=10) == -signal.SIGKILL


def test_signal_holder_refuses_this_process_and_nonsense(tmp_path):
    lock = tmp_path / "lock"
    fd = acquire(lock)
    try:
        assert lock_holders(lock) == {os.getpid()}
        assert not signal_holder(lock, os.getpid(), signal.SIGTERM)
        assert not signal_holder(lock, None, signal.SIGTERM) and not signal_holder(lock, -1, signal.SIGTERM)
    finally:
        release(fd)
    assert lock_holders(lock) == set()


def test_the_stop_file_and_the_signal_of_one_request_count_once():
    """The worker's heartbeat saw the stop file first (the flag is set); the SIGTERM of the same request must
    not count as a second one. A second signal (a second Ctrl-C) ends it at once."""
    flag = threading.Event()
    with StopSignals(flag) as signals:
        flag.set()  # the stop file, seen by the heartbeat
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert signals.received == 1
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)


def test_a_live_worker_that_stopped_beating_is_not_responding_and_shows_no_time_left(tmp_path):
    """A SIGSTOPped worker still holds its lock: it is not interrupted, but not running either."""
    run = create_run(tiny(tmp_path))
    fd = acquire(run_files(run).lock)
    try:
        old = time.time() - 60
        status = json.loads(run_files(run).status.read_text())
        status.update(status="running", host=HOST, heartbeat=old, updated=old, started=old - 100, step=50,
                      start_step=0, train_seconds=50.0)
        run_files(run).status.write_text(json.dumps(status))
        rec = load_run(run)
        assert rec.state == NOT_RESPONDING and rec.active and not rec.resumable
        assert progress_of(rec).seconds_left is None
        status.update(heartbeat=time.time(), updated=time.time())
        run_files(run).status.write_text(json.dumps(status))
        assert load_run(run).state == "running" and progress_of(load_run(run)).seconds_left is not None
    finally:
        release(fd)
    assert load_run(run).state == "interrupted"
