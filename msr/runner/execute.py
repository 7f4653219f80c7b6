"""A run's worker: the one process that trains a run and writes its folder.

The command line trains in its own process (``python -m msr train``); the app
launches ``python -m msr worker RUN`` detached, in a session of its own, so a
reload, a second browser or a restarted server finds the run in its folder
and can stop it there. Both go through :func:`execute`, for Rotated MNIST and
the synthetic problems alike.

While it lives, a worker holds the run's lock and writes a heartbeat into
status.json every couple of seconds. SIGTERM, Ctrl-C and a stop file all end
the run the same way: after the current step, with a final evaluation and the
status ``stopped``. A second signal ends it at once; it can then be resumed
from its last saved state.
"""
from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .config import ConfigError
from .layout import run_files
from .runs import (HEARTBEAT_SECONDS, HOST, INTERRUPTED, Damaged, RunFolderError, RunWriter,
                   create_run_folder, describe_os_error, load_resume_state, load_run, read_metrics, read_status,
                   stop_requested)
from .schedule import run_loop
from .train import Event, RunResult

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 3


def _label(kind: str, config) -> str:
    if kind == "mnist":
        return re.sub(r"[^a-z0-9]+", "-", config.model_label().lower()).strip("-")
    return f"{config.problem}-{config.model}"


def create_run(config, kind: str = "mnist") -> Path:
    """A new run folder for a validated config (RunFolderError when the runs
    folder cannot take it)."""
    root = config.runs_dir
    return create_run_folder(root, kind, config.to_dict(), _label(kind, config), config.steps)


def make_trainer(kind: str, config, data=None):
    if kind == "mnist":
        from .train import Trainer
        return Trainer(config, data)
    from .synthetic.run import SyntheticTrainer
    return SyntheticTrainer(config, data)


def scalars(record: dict) -> dict:
    """The numbers of a record worth keeping in the run's summary."""
    return {k: v for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and (not isinstance(v, float) or math.isfinite(v))}


class _Signals:
    """SIGTERM and SIGINT ask for a stop; a second one ends the process."""

    def __init__(self, flag: threading.Event):
        self.flag = flag
        self.previous: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.flag.is_set():
            raise KeyboardInterrupt(f"signal {signum} while stopping")
        self.flag.set()

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _ignore_stop_signals() -> dict:
    """While the outcome is written, SIGTERM and Ctrl-C wait (are ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


class _Heartbeat(threading.Thread):
    """Writes the heartbeat and progress into status.json, and turns a stop
    file into a stop request, every couple of seconds, whatever the step."""

    def __init__(self, writer: RunWriter, progress: dict, stop_flag: threading.Event, lock: threading.Lock):
        super().__init__(name="msr-heartbeat", daemon=True)
        self.writer, self.progress, self.stop_flag, self.lock = writer, progress, stop_flag, lock
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_SECONDS):
            if stop_requested(self.writer.path):
                self.stop_flag.set()
            try:
                with self.lock:
                    self.writer.write_status(heartbeat=time.time(), **dict(self.progress))
            except Exception:  # noqa: BLE001 - a full disk, say: the lock still says the worker lives
                pass


def execute(run_dir: str | Path, *, resume: bool = False, on_event: Callable[[Event], None] | None = None,
            should_stop: Callable[[], bool] | None = None, trainer=None, data=None) -> RunResult:
    """Train the run in ``run_dir`` in this process until it completes, is
    stopped or fails; return what happened. ``resume`` continues from the
    run's saved state (from the start if it has none)."""
    emit = on_event or (lambda event: None)
    external_stop = should_stop or (lambda: False)
    run_dir = Path(run_dir)
    stop_flag = threading.Event()
    signals = _Signals(stop_flag).__enter__()  # from here on SIGTERM and Ctrl-C stop the run cleanly
    try:
        writer = RunWriter(run_dir).claim()
    except BaseException:
        signals.__exit__(None, None, None)
        raise
    if stop_requested(run_dir):  # asked while this worker was starting
        stop_flag.set()
    status_lock = threading.Lock()
    heartbeat = None
    result = None
    try:
        rec = load_run(run_dir, with_metrics=False)
        if rec.damaged:
            raise RunFolderError(f"run '{run_dir.name}' cannot be trained: {rec.damaged}")
        kind, cfg = rec.kind, rec.config
        writer.write_status(status="starting", pid=os.getpid(), host=HOST, heartbeat=time.time(), message=None)
        try:
            trainer = trainer or make_trainer(kind, cfg, data)
        except BaseException as exc:
            writer.write_status(sync=True, status="failed", message=_reason(exc))
            raise
        start, records, resumed_state = 0, [], False
        if resume:
            state = load_resume_state(run_dir)
            if state is not None:
                resumed_state = True
                trainer.load_resume_state(state)
                start = int(state["step"])
            records = writer.reset_records(start if state is not None else None)
        else:
            writer.reset_records(None)
        result = RunResult(cfg, "running", start, metrics=list(records), run_dir=str(run_dir),
                           learner=getattr(trainer, "learner", None), kind=kind)
        total = cfg.steps
        # train and evaluation time apart, so the app can say honestly how long is left (msr.runs.time_left)
        progress = {"step": start, "total": total, "wall_seconds": 0.0, "steps_per_sec": None,
                    "train_seconds": 0.0, "eval_seconds": 0.0, "evals": 0}
        wall_start = time.time()
        with status_lock:
            writer.write_status(sync=True, status="running", started=wall_start, start_step=start, **progress,
                                steps=start)
        heartbeat = _Heartbeat(writer, progress, stop_flag, status_lock)
        heartbeat.start()
        emit(Event("start", start, total, run_dir=str(run_dir)))
        last_flush = [time.monotonic()]

        def save_resume(step: int) -> None:
            writer.flush_losses(sync=True)  # every loss up to the state saved is on disk before it
            writer.save_resume({**trainer.resume_state(), "step": step})

        def evaluate(step: int, stopping: bool) -> None:
            began = time.monotonic()
            if stopping:
                save_resume(step)  # the state before the extra evaluation: resuming goes on as if never stopped
            record = trainer.evaluate(step)
            if stopping:
                record["stop"] = True
            result.metrics.append(record)
            writer.append_metrics(record)
            writer.save_checkpoint(step, {**trainer.state(), "kind": kind}, cfg.to_dict(),
                                   getattr(cfg, "checkpoint_budget_mb", 200.0))
            if not stopping:
                save_resume(step)
            with status_lock:
                took = time.monotonic() - began
                if not progress["evals"]:
                    progress["first_eval_seconds"] = took
                progress.update(step=step, evals=progress["evals"] + 1, eval_seconds=progress["eval_seconds"] + took)
                writer.write_status(last=scalars(record), **progress)
            emit(Event("eval", step, total, record=record, run_dir=str(run_dir)))

        def on_step(step: int, loss: float | None, seconds: float) -> None:
            trainer.add_seconds(seconds)
            result.steps = step
            writer.append_loss(step, loss)
            now = time.monotonic()
            elapsed = time.time() - wall_start
            progress.update(step=step, wall_seconds=elapsed, train_seconds=progress["train_seconds"] + seconds,
                            steps_per_sec=(step - start) / elapsed if elapsed > 0 else None)
            if now - last_flush[0] >= 1.0:
                writer.flush_losses()
                last_flush[0] = now
            emit(Event("progress", step, total, loss=loss,
                       steps_per_sec=step / trainer.train_seconds if trainer.train_seconds else None,
                       run_dir=str(run_dir)))

        def stop_now() -> bool:
            return stop_flag.is_set() or external_stop()

        since = int(getattr(trainer, "steps_since_eval", 0)) if start else 0
        try:
            outcome = run_loop(total, cfg.eval_interval, trainer.step, evaluate, stop_now, on_step,
                               sync_every=trainer.sync_every, start=start, since_eval=since,
                               evaluated_at_start=resumed_state)
        except KeyboardInterrupt:
            outcome = None
            result.status = "stopped"
            result.message = (f"stopped at once by a second signal at step {result.steps}; "
                              "resume continues from the last evaluation")
        signals.__exit__(None, None, None)  # the run is over: a late signal must not rewrite its outcome
        signal_ignore = _ignore_stop_signals()
        if outcome is not None:
            result.status, result.message, result.steps = outcome.status, outcome.message, outcome.steps
        heartbeat.done.set()
        writer.flush_losses()
        with status_lock:
            writer.write_status(sync=True, status=result.status, message=result.message, step=result.steps,
                                steps=result.steps, heartbeat=time.time())
        run_files(run_dir).stop.unlink(missing_ok=True)  # answered; a later resume must not see it
        _restore(signal_ignore)
        emit(Event("done", result.steps, total, status=result.status, message=result.message,
                   run_dir=str(run_dir)))
        return result
    except BaseException as exc:
        if heartbeat is not None:
            heartbeat.done.set()
        try:
            with status_lock:
                if (writer.status or {}).get("status") != "failed":
                    writer.write_status(sync=True, status="failed", message=_reason(exc))
        except OSError:
            pass
        raise
    finally:
        signals.__exit__(None, None, None)
        if heartbeat is not None:
            heartbeat.done.set()
        writer.release()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return describe_os_error(exc, "the run folder")
    if isinstance(exc, ConfigError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------ launch
def launch(run_dir: str | Path, resume: bool = False, threads: int | None = None) -> int:
    """Start a detached worker for a run; return its pid. It lives in a
    session of its own, so stopping the server (Ctrl-C, SIGTERM) leaves it
    training, and the next server finds it in its folder. ``threads``: its
    torch threads (None: torch's default)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None:
        raise RunFolderError(f"'{run_dir}' is not a run folder")
    run_files(run_dir).stop.unlink(missing_ok=True)  # a request left from an earlier life of the run
    cmd = [sys.executable, "-m", "msr", "worker", str(run_dir.resolve())] + (["--resume"] if resume else [])
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    with open(run_files(run_dir).log, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=os.getcwd())
    # Reap it when it ends, so it never lingers as a zombie of this process.
    threading.Thread(target=proc.wait, name=f"msr-reap-{proc.pid}", daemon=True).start()
    writer = RunWriter(run_dir)
    writer.status = status
    writer.write_status(sync=True, status="starting", pid=proc.pid, host=HOST, launched=time.time(), message=None)
    return proc.pid


def start_run(config, kind: str = "mnist") -> Path:
    """Validate, create the folder and launch its worker: the app's Start."""
    config.validate()
    run_dir = create_run(config, kind)
    launch(run_dir)
    return run_dir


def resume_run(run_dir: str | Path) -> int:
    """Launch a worker that continues a stopped or interrupted run."""
    check_resumable(run_dir)
    return launch(run_dir, resume=True)


def check_resumable(run_dir: str | Path) -> None:
    rec = load_run(run_dir, with_metrics=False)
    if rec.damaged:
        raise RunFolderError(f"run '{Path(run_dir).name}' cannot be resumed: {rec.damaged}")
    if rec.active:
        raise RunFolderError(f"run '{rec.run_id}' is still training")
    if rec.state == "completed":
        raise RunFolderError(f"run '{rec.run_id}' has already completed its {rec.total} steps")
    if rec.state not in ("stopped", INTERRUPTED, "failed"):
        raise RunFolderError(f"run '{rec.run_id}' is {rec.state}; only stopped, interrupted or failed runs resume")
    try:
        read_metrics(run_dir)
    except Damaged as exc:
        raise RunFolderError(f"run '{rec.run_id}' cannot be resumed: {exc}") from None
    load_resume_state(run_dir)  # CheckpointError, one line, when it cannot be read
    if rec.kind == "mnist":
        rec.config.validate()  # the memory check, against what is free now
