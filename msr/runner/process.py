"""Process plumbing, written once: detached launches, and SIGTERM / Ctrl-C as a stop request.

A run's worker (``python -m msr worker RUN``) and a sweep's driver
(``python -m msr sweep --resume SWEEP``) are launched the same way: in a
session of their own, so stopping the app that launched them (Ctrl-C,
SIGTERM) leaves them running, with the package on their PYTHONPATH and their
output in a log file. (Locks are in msr.store.locks, as run folders hold them.)
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from ..core.runtime import child_environment
from ..store.files import open_regular
from ..store.locks import HANDED_ENV

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the msr package
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main_thread() -> bool:
    """Signal handlers can only be set from the main thread."""
    return threading.current_thread() is threading.main_thread()


def msr_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "msr", *args]


def with_package(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this package first on PYTHONPATH, wherever the process starts."""
    return {**env, "PYTHONPATH": str(PACKAGE_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")}


def launch_detached(args: list[str], log: Path, threads: int | None = None, together: bool = False) -> int:
    """Start ``python -m msr ARGS`` in a session of its own, its output
    appended to ``log``; return its pid. ``threads``: its torch threads (None:
    torch's default). ``together``: it starts with others, so under
    MSR_OMP_WAIT=auto (the default) its idle threads sleep for good instead
    of choosing (msr.core.runtime.child_environment).
    A thread of this process reaps it when it ends, so it never lingers as a
    zombie."""
    cmd = msr_command(args)
    env = with_package(child_environment(os.environ, together))
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    with os.fdopen(open_regular(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as out:  # never through a link
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=os.getcwd())
    threading.Thread(target=proc.wait, name=f"msr-reap-{proc.pid}", daemon=True).start()
    return proc.pid


def block_stop_signals() -> None:
    """SIGTERM and SIGINT wait (pending) until StopSignals is entered, in this program or the one that replaces it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def replace_process(args: list[str], env: dict[str, str], keep_fd: int) -> OSError | None:
    """Become ``python -m msr ARGS`` (execve: the same pid, parent, session
    and output), keeping the descriptor ``keep_fd`` open and handing it on
    (msr.store.locks.take_handed_lock). SIGTERM and SIGINT are blocked across
    the exec, as the new program starts: one that comes meanwhile waits, and
    reaches StopSignals once the new program sets it up. Returns only when
    the exec failed (the error; the signals are unblocked again)."""
    block_stop_signals()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os.set_inheritable(keep_fd, True)
    cmd = msr_command(args)
    try:
        os.execve(cmd[0], cmd, {**with_package(env), HANDED_ENV: str(keep_fd)})
    except OSError as exc:
        os.set_inheritable(keep_fd, False)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return exc


class StopSignals:
    """While entered (in the main thread), SIGTERM and SIGINT set ``flag``: a
    stop request. With ``second_ends``, a second *signal* ends the work at
    once (KeyboardInterrupt): a second Ctrl-C is a person who will not wait.
    A flag set otherwise (the stop file that came with the first signal) does
    not count, so one Stop, file and signal, is one stop."""

    def __init__(self, flag: threading.Event, second_ends: bool = True):
        self.flag, self.second_ends = flag, second_ends
        self.previous: dict[int, Any] = {}
        self.received = 0  # stop signals so far

    def __enter__(self) -> "StopSignals":
        if main_thread():
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by a hand-over (replace_process)
        return self

    def _handle(self, signum, frame):
        self.received += 1
        self.flag.set()
        if self.second_ends and self.received > 1:
            raise KeyboardInterrupt(f"signal {signum} while stopping")

    def restore(self) -> None:
        """The handlers from before (at most once: later calls do nothing)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def __exit__(self, *exc) -> None:
        self.restore()


class SignalsWait:
    """While entered (in the main thread), SIGTERM and SIGINT are ignored:
    what is being written then is not cut short."""

    def __init__(self):
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "SignalsWait":
        if main_thread():
            self.previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
