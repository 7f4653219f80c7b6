"""Where a run stands, for a progress bar: the steps done, the rate, and the time left, from its status.json."""
from __future__ import annotations

import time
from dataclasses import dataclass

from .files import is_number, is_whole
from .layout import ACTIVE, LIVE, run_files
from .reader import RunRecord


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for a progress bar: wall-clock rate and time left
    measured since this worker started (evaluations included)."""
    state: str
    step: int
    total: int
    steps_per_sec: float | None
    seconds_left: float | None
    elapsed: float | None
    message: str | None
    stopping: bool
    stop_age: float | None = None  # seconds since the stop request, while it is pending

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


def progress_of(rec: RunRecord, now: float | None = None) -> Progress:
    now = time.time() if now is None else now
    st_ = rec.status
    step, total = rec.step, rec.total or 0
    started = st_.get("started")
    start_step = st_.get("start_step") if is_whole(st_.get("start_step")) else 0
    elapsed = rate = left = None
    if is_number(started):
        end = st_.get("updated") if rec.state not in LIVE and is_number(st_.get("updated")) else now
        elapsed = max(0.0, end - started)
        done = step - start_step
        if done > 0 and elapsed > 0:
            rate = done / elapsed
        if rec.state in ACTIVE:  # (not while it does not respond: the clock would count down for nothing)
            left = time_left(st_, step, total, getattr(rec.config, "eval_interval", None))
    stop_age = None
    if rec.state in LIVE:
        try:
            stop_age = max(0.0, now - run_files(rec.path).stop.stat().st_mtime)
        except OSError:
            stop_age = None
    return Progress(rec.state, step, total, rate, left, elapsed, st_.get("message"), stop_age is not None, stop_age)


ESTIMATE_AFTER_STEPS = 5  # the first steps warm caches up: no estimate from fewer


def time_left(status: dict, step: int, total: int, eval_interval: int | None) -> float | None:
    """Seconds to the end: the steps left at this worker's time per step, plus
    the evaluations left at its time per evaluation. Measured apart, as the
    evaluation at step 0 comes before any step and carries the warm-up; it
    is left out of the time per evaluation once a later one is timed. None
    until ESTIMATE_AFTER_STEPS steps are timed, or from a worker that does
    not record these times."""
    start_step = status.get("start_step") if is_whole(status.get("start_step")) else 0
    done, train_seconds = step - start_step, status.get("train_seconds")
    if done < ESTIMATE_AFTER_STEPS or not is_number(train_seconds) or train_seconds <= 0:
        return None
    left = (total - step) * train_seconds / done
    evals, eval_seconds, first = status.get("evals"), status.get("eval_seconds"), status.get("first_eval_seconds")
    if eval_interval and is_whole(evals) and evals > 0 and is_number(eval_seconds):
        # this worker's evaluations: at step 0 (a fresh run), every eval_interval, and at the last step
        planned = (start_step == 0) + total // eval_interval - start_step // eval_interval + bool(total % eval_interval)
        if evals > 1 and start_step == 0 and is_number(first):
            per_eval = (eval_seconds - first) / (evals - 1)
        else:
            per_eval = eval_seconds / evals
        left += max(0, planned - evals) * per_eval
    return max(0.0, left)
