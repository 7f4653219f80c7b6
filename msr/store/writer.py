"""The worker's side of a run folder: the one writer of its records, status and checkpoints.

While it lives, the writer holds the run's lock (msr.store.locks), so a dead
worker is seen at once. It owns every file the worker writes and when they
reach the disk: records are appended and flushed one by one, the per-step
losses are buffered and flushed about once a second, and a heartbeat thread
writes the progress into status.json every couple of seconds, whatever the
step. The progress carries train and evaluation time apart, so a page can
say honestly how long is left (msr.store.progress).
"""
from __future__ import annotations

import math
import os
from collections import deque
import threading
import time
from pathlib import Path
from typing import Callable

from .checkpoints import checkpoint_steps, write_checkpoint, write_resume_state
from .files import RunFolderError, atomic_write_text, dumps, is_number, is_whole, open_file, real_folder
from .layout import remove_stale_temporaries, run_files
from .liveness import HEARTBEAT_SECONDS
from .locks import acquire, release, take_handed_lock
from .reader import read_loss_lines, read_metrics
from .status import read_status

FLUSH_SECONDS = 1.0  # buffered losses reach the file at least this often while a run steps
WARMUP_STEPS = 2  # a worker's first steps fill caches and allocate: left out of its recent speed
RECENT_STEPS = 30  # the recent speed is read over at most this many of the last steps
CLAIM_SECONDS = 5.0  # how long a worker waits for a run's lock
CARRIED = ("train_seconds", "eval_seconds", "evals", "first_eval_seconds")  # times a hand-over goes on with


def scalars(record: dict) -> dict:
    """The numbers of a record worth keeping in the run's summary."""
    return {k: v for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and (not isinstance(v, float) or math.isfinite(v))}


class RunWriter:
    """The worker's side of a run folder: it holds the lock while it lives."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files = run_files(self.path)
        self.status: dict = {}
        self.progress: dict = {}
        self._lock_fd: int | None = None
        self._metrics_fh = None
        self._losses_fh = None
        self._status_lock = threading.RLock()  # the heartbeat writes status.json and reads the progress too
        self._heartbeat: _Heartbeat | None = None
        self._last_flush = 0.0
        self._wall_start = 0.0
        self._start = self._first = 0  # the run's first step in this timeline, and this process's
        self.continued = False  # this process took the run over from the program it replaced (hand_over)

    # ------------------------------------------------------------ claiming
    def claim(self, wait: float = CLAIM_SECONDS) -> "RunWriter":
        """Take the run's lock; RunFolderError if another worker holds it, or
        if the folder holds a link or a special file where its files belong.
        Temporary files a killed writer left are removed once the lock is held."""
        if not real_folder(self.path) or not self.files.marker.is_file():
            raise RunFolderError(f"'{self.path}' is not a run folder")
        unsafe = self.files.unsafe()
        if unsafe:
            raise RunFolderError(f"run '{self.path.name}' cannot be used: {unsafe}")
        fd = take_handed_lock(self.files.lock)  # a run handed over by the program this process replaced
        self.continued = fd is not None
        try:
            fd = fd if fd is not None else acquire(self.files.lock, wait)
        except OSError as exc:
            raise RunFolderError(f"run '{self.path.name}' cannot be used: {exc.strerror}") from None
        if fd is None:
            raise RunFolderError(f"run '{self.path.name}' is already being trained by another process")
        self._lock_fd = fd
        remove_stale_temporaries(self.path)
        current = read_status(self.path)
        self.status = current if isinstance(current, dict) else {}
        # A stop request left from an earlier worker is stale; one made since
        # this worker was launched (while it was starting) still counts. Only
        # a worker the app launched (its pid is the one recorded) has a launch
        # time; a command-line worker starts now.
        launched = self.status.get("launched") if self.status.get("pid") == os.getpid() else None
        try:
            if self.files.stop.stat().st_mtime < (launched if is_number(launched) else time.time()):
                self.files.stop.unlink()
        except OSError:
            pass
        return self

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Close the files and drop the lock (the heartbeat stops first)."""
        self.stop_heartbeat()
        self._close_files()
        if self._lock_fd is not None:
            release(self._lock_fd)
            self._lock_fd = None

    def _close_files(self) -> None:
        for fh in (self._metrics_fh, self._losses_fh):
            if fh is not None:
                try:
                    fh.close()
                except OSError:
                    pass
        self._metrics_fh = self._losses_fh = None

    @property
    def run_id(self) -> str:
        return self.path.name

    # ------------------------------------------------------------- records
    def reset_records(self, keep_through: int | None) -> list[dict]:
        """Keep the records up to step ``keep_through`` (None: none) and
        rewrite the files once; a resumed run continues after them."""
        records = read_metrics(self.path)[0] if keep_through is not None else []
        records = [r for r in records if r["step"] <= keep_through] if keep_through is not None else []
        atomic_write_text(self.files.metrics, "".join(dumps(r) + "\n" for r in records))
        kept = []
        if keep_through is not None:
            # line by line, by step only (a step whose loss was not read back keeps its empty value);
            # a line that is not "step,loss" (damaged bytes, an unfinished last line) is dropped
            for step, value in read_loss_lines(self.files.losses):
                if step <= keep_through:
                    kept.append(f"{step},{value}\n")
        atomic_write_text(self.files.losses, "".join(kept))
        for step in checkpoint_steps(self.path):  # weights of a timeline that resuming abandons
            if keep_through is None or step > keep_through:
                self.files.checkpoint(step).unlink(missing_ok=True)
        return records

    def append_metrics(self, record: dict) -> None:
        """One line, flushed and synced: O(1) however long the run."""
        if self._metrics_fh is None:
            self._metrics_fh = open_file(self.files.metrics, "a", encoding="utf-8")
        self._metrics_fh.write(dumps(record) + "\n")
        self._metrics_fh.flush()
        os.fsync(self._metrics_fh.fileno())

    def append_loss(self, step: int, loss: float | None) -> None:
        """Buffered; ``flush_losses`` makes them visible."""
        if self._losses_fh is None:
            self._losses_fh = open_file(self.files.losses, "a", encoding="utf-8")
        value = repr(float(loss)) if loss is not None and math.isfinite(loss) else ""
        self._losses_fh.write(f"{step},{value}\n")

    def flush_losses(self, sync: bool = False) -> None:
        if self._losses_fh is not None:
            self._losses_fh.flush()
            if sync:
                os.fsync(self._losses_fh.fileno())

    def write_status(self, sync: bool = False, **fields) -> None:
        with self._status_lock:
            self.status.update(fields)
            self.status["updated"] = time.time()
            atomic_write_text(self.files.status, dumps(self.status), sync=sync)

    # --------------------------------------------------------- checkpoints
    def save_checkpoint(self, step: int, state: dict, config: dict, budget_mb: float) -> Path:
        return write_checkpoint(self.path, step, state, config, budget_mb)

    def save_resume(self, state: dict) -> None:
        """The state to resume from; every loss up to it is on disk first.
        Its step is kept in status.json (``resume_step``), so a page can say
        where Resume continues without reading the file."""
        self.flush_losses(sync=True)
        write_resume_state(self.path, state)
        with self._status_lock:
            self.status["resume_step"] = int(state["step"])

    # ------------------------------------------------ progress while it runs
    def begin(self, start: int, total: int, on_beat: Callable[[], None] | None = None,
              process_started: float | None = None, idle_threads: str | None = None) -> None:
        """The run trains from step ``start``: say so, and from now on write
        the heartbeat and progress every HEARTBEAT_SECONDS (calling
        ``on_beat`` first each time). ``process_started``: when the process
        began, so the time it took to start is known (msr.store.progress);
        ``idle_threads``: whether its OpenMP threads spin or sleep when idle
        (msr.core.runtime.share_cores), which decides how it fares beside
        work that starts later. A process that took the run over from the
        program it replaced (hand_over) goes on with its start, clock and
        times: it is one run, its gap included."""
        now = time.time()
        handed = self.status.pop("handing_over", None)
        self.status.pop("handed_over_at", None)
        carried = self.continued and is_whole(handed) and is_number(self.status.get("started"))
        self._first, self._last_flush = start, time.monotonic()
        self._start = self.status["start_step"] if carried and is_whole(self.status.get("start_step")) else start
        self._wall_start = self.status["started"] if carried else now
        self._recent: deque[float] = deque(maxlen=RECENT_STEPS)
        self.progress = {"step": start, "total": total, "wall_seconds": now - self._wall_start, "steps_per_sec": None,
                         "train_seconds": 0.0, "eval_seconds": 0.0, "evals": 0}
        process = {"process_started": process_started, "idle_threads": idle_threads}  # what is known of it
        if carried:
            self.progress.update({k: self.status[k] for k in CARRIED if is_number(self.status.get(k))})
            process.update(process_started=self.status.get("process_started"), handed_over_at=handed)
        self.write_status(sync=True, status="running", message=None, started=self._wall_start,
                          start_step=self._start, **self.progress, steps=start,
                          **{k: v for k, v in process.items() if v is not None})
        self._heartbeat = _Heartbeat(self, on_beat or (lambda: None))
        self._heartbeat.start()

    def stepped(self, step: int, loss: float | None, seconds: float) -> None:
        """A step is done: its loss (buffered) and the progress."""
        self.append_loss(step, loss)
        now = time.monotonic()
        elapsed = time.time() - self._wall_start
        self.progress.update(step=step, wall_seconds=elapsed, train_seconds=self.progress["train_seconds"] + seconds,
                             steps_per_sec=(step - self._start) / elapsed if elapsed > 0 else None)
        if step - self._first > WARMUP_STEPS:  # the speed now, for the time left: not this process's warm-up
            self._recent.append(seconds)
            self.progress.update(recent_steps=len(self._recent), recent_seconds=sum(self._recent))
        if now - self._last_flush >= FLUSH_SECONDS:
            self.flush_losses()
            self._last_flush = now

    def evaluated(self, step: int, record: dict, began: float) -> None:
        """An evaluation is kept (its record, checkpoint and resume state
        written): the progress, with the time it took since ``began``
        (time.monotonic()), and the record's numbers as the run's last."""
        with self._status_lock:
            took = time.monotonic() - began
            progress = self.progress
            if not progress["evals"]:
                progress["first_eval_seconds"] = took
            progress.update(step=step, evals=progress["evals"] + 1, eval_seconds=progress["eval_seconds"] + took)
            self.write_status(last=scalars(record), **progress)

    def beat(self) -> None:
        with self._status_lock:
            self.write_status(heartbeat=time.time(), **dict(self.progress))

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.done.set()

    def finish(self, status: str, message: str | None, steps: int) -> None:
        """The run is over: its outcome, with every loss on disk; a stop
        request is answered, so a later resume does not see it."""
        self.stop_heartbeat()
        self.flush_losses()
        self.write_status(sync=True, status=status, message=message, step=steps, steps=steps, heartbeat=time.time())
        self.files.stop.unlink(missing_ok=True)

    def hand_over(self, step: int, message: str) -> int:
        """This process is about to replace itself with one that goes on from
        ``step`` (msr.runner.execute): every loss on disk, the status
        ``starting`` with ``message``, and the lock's descriptor to hand on.
        A stop asked from now on is kept for the next program: the stop
        file counts from this run's start (``launched``)."""
        self.stop_heartbeat()
        self.flush_losses(sync=True)
        self._close_files()
        with self._status_lock:
            self.write_status(sync=True, status="starting", message=message, handing_over=step, **self.progress,
                              steps=step, launched=self.status.get("launched", self._wall_start), heartbeat=time.time())
        return self._lock_fd

    def fail(self, message: str) -> None:
        """The run ended on an error: status failed, with its line (once)."""
        self.stop_heartbeat()
        try:
            with self._status_lock:
                if (self.status or {}).get("status") != "failed":
                    self.write_status(sync=True, status="failed", message=message)
        except OSError:
            pass


class _Heartbeat(threading.Thread):
    """Writes the heartbeat and progress into status.json every couple of
    seconds, whatever the step."""

    def __init__(self, writer: RunWriter, on_beat: Callable[[], None]):
        super().__init__(name="msr-heartbeat", daemon=True)
        self.writer, self.on_beat = writer, on_beat
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_SECONDS):
            self.on_beat()
            try:
                self.writer.beat()
            except Exception:  # noqa: BLE001 - a full disk, say: the lock still says the worker lives
                pass
