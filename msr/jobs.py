"""Runs in the background: ``train`` in a daemon thread, watched by polling.

A Streamlit script is re-executed on every click and dies with its browser
tab, so a run must not live in it. A job lives here instead, in a registry
that belongs to the process: closing the tab, moving to another page or
touching a widget leaves the run going and saving. The page keeps only job
ids (in its session state), so each browser session finds its own jobs and
never another session's.
"""
from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig

ACTIVE = ("starting", "running")
FINISHED = ("completed", "stopped", "failed")
STEP_LOSS_KEEP = 5000  # per-step losses kept for the live chart


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state, safe to read while it runs on."""
    id: str
    config: RunConfig
    status: str
    step: int
    total: int
    steps_per_sec: float | None
    seconds_left: float | None
    elapsed: float
    loss: float | None
    metrics: list[dict]
    step_losses: list[tuple[int, float]]
    run_dir: str | None
    message: str | None
    error: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0

    @property
    def last(self) -> dict:
        return self.metrics[-1] if self.metrics else {}


class Job:
    """One run in a worker thread; its watcher reads ``view()``."""

    def __init__(self, config: RunConfig, data=None):
        self.id = time.strftime("%H%M%S-") + secrets.token_hex(3)
        self.config = config
        self._data = data
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._started = threading.Event()  # the run folder exists, or the run failed before it
        self.status = "starting"
        self.step = 0
        self.total = config.steps
        self.steps_per_sec: float | None = None
        self.loss: float | None = None
        self.metrics: list[dict] = []
        self.step_losses: list[tuple[int, float]] = []
        self.run_dir: str | None = None
        self.message: str | None = None
        self.error: str | None = None
        self.created = time.time()
        self._clock_start: float | None = None
        self._clock_end: float | None = None
        self.thread = threading.Thread(target=self._work, name=f"msr-job-{self.id}", daemon=True)

    # --------------------------------------------------------------- control
    def start(self) -> "Job":
        self.thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to end; train() checks this before every step."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended; True if it has."""
        return self._finished.wait(timeout)

    def wait_started(self, timeout: float | None = None) -> str | None:
        """Block until the run folder exists (or the run failed first)."""
        self._started.wait(timeout)
        return self.run_dir

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    # ------------------------------------------------------------ the thread
    def _on_event(self, event) -> None:
        with self._lock:
            if event.run_dir and not self.run_dir:
                self.run_dir = event.run_dir
            if event.kind == "start":
                self.status = "running"
                self._clock_start = time.perf_counter()
                self._started.set()
            elif event.kind == "progress":
                self.step = event.step
                self.steps_per_sec = event.steps_per_sec
                if event.loss is not None:
                    self.loss = event.loss
                    if math.isfinite(event.loss):
                        self.step_losses.append((event.step, event.loss))
                        del self.step_losses[:-STEP_LOSS_KEEP]
            elif event.kind == "eval" and event.record is not None:
                self.metrics.append(event.record)
            elif event.kind == "done":
                self.step = event.step
                self.message = event.message

    def _work(self) -> None:
        from .train import train

        try:
            result = train(self.config, on_event=self._on_event, should_stop=self._stop.is_set,
                           data=self._data)
            with self._lock:
                self.status = result.status
                self.message = result.message
                self.step = result.steps
        except BaseException as exc:  # noqa: BLE001 - the watcher shows it; the thread must not die silently
            with self._lock:
                self.status = "failed"
                self.error = str(exc) or type(exc).__name__
                if not self.message:
                    self.message = self.error
        finally:
            with self._lock:
                self._data = None  # the job outlives its data; let it go
                self._clock_end = time.perf_counter()
            self._started.set()
            self._finished.set()

    # --------------------------------------------------------------- reading
    def view(self) -> JobView:
        with self._lock:
            now = self._clock_end or time.perf_counter()
            elapsed = now - self._clock_start if self._clock_start else 0.0
            seconds_left = None
            if self.status == "running" and self.step > 0 and elapsed > 0:
                # wall-clock rate, so evaluation pauses count too
                seconds_left = (self.total - self.step) * elapsed / self.step
            return JobView(self.id, self.config, self.status, self.step, self.total, self.steps_per_sec,
                           seconds_left, elapsed, self.loss, list(self.metrics), list(self.step_losses),
                           self.run_dir, self.message, self.error)


class JobRegistry:
    """Every job of this process, by id. Finished jobs beyond ``keep`` are
    forgotten oldest first (their runs stay on disk)."""

    def __init__(self, keep: int = 50):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.keep = keep

    def start(self, config: RunConfig, data=None) -> Job:
        """Validate, then start. A ConfigError surfaces here, before any
        thread or folder exists."""
        config.validate()
        job = Job(config, data)
        with self._lock:
            self._jobs[job.id] = job
            self._prune()
        return job.start()

    def _prune(self) -> None:
        finished = [j for j in self._jobs.values() if j.done]
        for job in sorted(finished, key=lambda j: j.created)[:max(0, len(finished) - self.keep)]:
            del self._jobs[job.id]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, ids) -> list[Job]:
        """The known jobs among ids, in the order given (unknown ids are skipped)."""
        with self._lock:
            return [self._jobs[i] for i in ids if i in self._jobs]

    def active(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.done]

    def owner_of(self, run_dir: str | Path) -> Job | None:
        """The live job writing this run folder, if any."""
        target = Path(run_dir).resolve()
        for job in self.active():
            if job.run_dir and Path(job.run_dir).resolve() == target:
                return job
        return None


REGISTRY = JobRegistry()


def start_job(config: RunConfig, data=None) -> Job:
    return REGISTRY.start(config, data)


def get_job(job_id: str) -> Job | None:
    return REGISTRY.get(job_id)
