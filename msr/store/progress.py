"""Where a run stands, for a progress bar: the steps done, the rate, and the time left, from its status.json."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from .files import is_number, is_whole
from .layout import ACTIVE, LIVE, run_files
from .reader import RunRecord


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for a progress bar: its speed now (its recent
    steps; before those, since this worker started) and the time left."""
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
        per_step = recent_step_seconds(st_) if rec.state in ACTIVE else None
        if per_step is not None:
            rate = 1.0 / per_step
        elif done > 0 and elapsed > 0:
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
RECENT_MIN_STEPS = 3  # the recent window is read once it holds this many steps


def recent_step_seconds(status: dict) -> float | None:
    """Seconds a step takes now: over the worker's last few steps, its
    warm-up left out (msr.store.writer); None before enough are timed."""
    n, seconds = status.get("recent_steps"), status.get("recent_seconds")
    if not is_whole(n) or n < RECENT_MIN_STEPS or not is_number(seconds) or seconds <= 0:
        return None
    return seconds / n


def time_left(status: dict, step: int, total: int, eval_interval: int | None) -> float | None:
    """Seconds to the end: the steps left at the time a step takes now (the
    worker's recent steps, its slow first steps left out; a worker that does
    not record them: its average), plus the evaluations left at its time per
    evaluation. Measured apart, as the evaluation at step 0 comes before any
    step and carries the warm-up; it is left out of the time per evaluation
    once a later one is timed. None until ESTIMATE_AFTER_STEPS steps are
    timed, or from a worker that does not record these times."""
    start_step = status.get("start_step") if is_whole(status.get("start_step")) else 0
    done, train_seconds = step - start_step, status.get("train_seconds")
    if done < ESTIMATE_AFTER_STEPS or not is_number(train_seconds) or train_seconds <= 0:
        return None
    per_step = recent_step_seconds(status) or train_seconds / done
    left = (total - step) * per_step
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


# --------------------------------------------- how long a run will take, before it starts
def _wall_rate(rec: RunRecord) -> float | None:
    """Steps per second of wall time of a completed run trained in one go, its
    evaluations included; else the training rate its last evaluation gives."""
    st_ = rec.status
    steps, wall = rec.step - (st_.get("start_step") or 0), st_.get("wall_seconds")
    if st_.get("start_step") == 0 and is_number(wall) and wall > 0 and steps > 0:
        return steps / wall
    rate = rec.last.get("steps_per_sec_overall")
    return rate if is_number(rate) and rate > 0 else None


def _completed_rates(records: Iterable[RunRecord]):
    """(record, wall rate) of the completed runs whose speed is known: what every estimate rests on."""
    for rec in records:
        if rec.damaged or rec.state != "completed" or not hasattr(rec.config, "model_label"):
            continue
        rate = _wall_rate(rec)
        if rate is not None:
            yield rec, rate


def measured_speeds(records: Iterable[RunRecord]) -> dict[str, float]:
    """Model (its label, e.g. "shared" or "plain conv + dense head") -> median
    steps per second of wall time of its completed runs here (evaluations
    included); models never run are absent."""
    seen: dict[str, list[float]] = {}
    for rec, rate in _completed_rates(records):
        seen.setdefault(rec.config.model_label(), []).append(rate)
    return {model: statistics.median(rates) for model, rates in seen.items()}


def measured_startup(records: Iterable[RunRecord]) -> float | None:
    """Median seconds from a worker process's start to its first step (Python,
    torch, the data and the model), over the runs here whose worker was
    started for them; None before any was."""
    seen = []
    for rec in records:
        st_ = rec.status
        began, process, created = st_.get("started"), st_.get("process_started"), st_.get("created")
        if rec.damaged or not (is_number(began) and is_number(process) and is_number(created)):
            continue
        if process >= created and began >= process:  # a process started for this run (not a reused Ray worker)
            seen.append(began - process)
    return statistics.median(seen) if seen else None


def estimate_seconds(configs: Sequence, speeds: dict[str, float], workers: int,
                     startup: float | None = None) -> float | None:
    """Wall time of the configs' runs, ``workers`` at once, at the measured
    speeds, each with ``startup`` seconds to start; None when a model has no
    measured speed."""
    if not configs:
        return 0.0
    if any(c.model_label() not in speeds for c in configs):
        return None
    total = sum((startup or 0.0) + c.steps / speeds[c.model_label()] for c in configs)
    return total / max(1, min(workers, len(configs)))


@dataclass(frozen=True)
class RunEstimate:
    """How long a run of some settings would take here, and what that rests on."""
    seconds: float
    runs: int  # completed runs of the same model it was scaled from
    startup: float | None  # seconds to start a worker, when measured


def run_estimate(config, records: Iterable[RunRecord]) -> RunEstimate | None:
    """The wall time of a run of ``config`` at the speed completed runs of the
    same model measured here, scaled by each step's work (``step_work()``:
    more tasks, images, channels or inner steps take longer), evaluations as
    those runs had them, plus a worker's start-up. None before any such run."""
    records = list(records)
    label, work = config.model_label(), config.step_work()
    per_work = [1.0 / (rate * rec.config.step_work()) for rec, rate in _completed_rates(records)
                if type(rec.config) is type(config) and rec.config.model_label() == label and rec.config.step_work() > 0]
    if not per_work:
        return None
    startup = measured_startup(records)
    return RunEstimate((startup or 0.0) + config.steps * work * statistics.median(per_work), len(per_work), startup)
