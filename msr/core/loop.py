"""The one loop every run follows, and the one driver around it.

:func:`run_loop` is the schedule: step, evaluate, stop. :func:`drive` runs a
trainer through it and keeps what happened in a :class:`RunResult`, telling a
:class:`Recorder` (where the run is kept: nowhere, or a run folder written by
msr.runner.execute) and a watcher (``on_event``, :class:`Event`) as it goes.
Every run goes through :func:`drive`: the app's worker, the command line,
sweeps, and in-process runs of tests and benchmarks.

A trainer is any object with ``step() -> loss``, ``evaluate(step) -> record``,
``add_seconds(seconds)``, ``train_seconds`` and ``sync_every`` (the kinds'
trainers: msr.mnist.trainer.Trainer, msr.synthetic.trainer.SyntheticTrainer).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .runtime import keep_freed_memory


HANDED_OVER = "handed over"  # a run another process goes on with (msr.runner.execute); never a run's status
DIVERGED = 1e6  # a loss this many times its first value (or 1, if larger) has diverged


def diverged(step: int, how: str) -> str:
    return f"the loss diverged at step {step} ({how}); try a smaller inner or outer learning rate"


def optimizer_finite(trainer) -> bool:
    """Whether the parameters the trainer's outer optimizer updates, and its
    state (Adam's moments, say), are all finite (True for a trainer without one)."""
    optimizer = getattr(getattr(trainer, "learner", None), "optimizer", None)
    if optimizer is None:
        return True
    with torch.no_grad():
        tensors = [p for group in optimizer.param_groups for p in group["params"]]
        tensors += [v for state in optimizer.state.values() for v in state.values()
                    if isinstance(v, torch.Tensor) and v.is_floating_point()]
        return all(bool(torch.isfinite(t).all()) for t in tensors)


@dataclass
class LoopOutcome:
    status: str  # completed, stopped, failed
    message: str | None
    steps: int


def run_loop(total: int, eval_interval: int, step: Callable[[], torch.Tensor],
             evaluate: Callable[[int, bool], None], should_stop: Callable[[], bool],
             on_step: Callable[[int, float | None, float], None], sync_every: int = 1,
             start: int = 0, since_eval: int = 0, evaluated_at_start: bool = False,
             healthy: Callable[[], bool] | None = None, hand_over: Callable[[int], bool] | None = None) -> LoopOutcome:
    """The schedule every meta-training run follows (Rotated MNIST and the
    synthetic problems alike): evaluate at step 0, every eval_interval steps,
    at the last step, and where a stop request ends the run; poll the stop
    flag before each step; end as failed when the loss diverges: a number
    overflows, the loss is not finite, it exceeds DIVERGED times its first
    value, or (checked before each evaluation) ``healthy()`` says the
    parameters or the optimizer's state are no longer finite. ``hand_over(step)``,
    asked before each step after the stop flag, ends the loop as HANDED_OVER
    with no evaluation: it has saved the state to resume from, and another
    process goes on from there.

    evaluate(step, stopping) is told whether it is the extra evaluation of a
    stop, so the caller can save the state to resume from *before* it: a
    resumed run then continues exactly as an uninterrupted one. A resumed
    run passes ``start`` (steps already done) and ``since_eval`` (steps since
    the last evaluation), and ``evaluated_at_start`` when its state was saved
    right after the evaluation at step 0 (so it is not made twice). step()
    returns the step's loss; it is read back (a host sync) only every
    sync_every steps. on_step(step, loss or None,
    seconds the step took) runs after each good step.
    """
    keep_freed_memory()  # every step re-allocates the same large blocks
    done = start
    first: float | None = None  # the first loss read back: the scale a diverged loss is measured against
    if start == 0 and not evaluated_at_start:
        evaluate(0, False)
    while done < total:
        if should_stop():
            if since_eval and done > 0:
                evaluate(done, True)
            return LoopOutcome("stopped", f"stopped by request at step {done}", done)
        if hand_over is not None and hand_over(done):
            return LoopOutcome(HANDED_OVER, None, done)
        t0 = time.perf_counter()
        try:
            loss = step()
        except (OverflowError, FloatingPointError, RuntimeError) as exc:
            if not isinstance(exc, (OverflowError, FloatingPointError)) and "overflow" not in str(exc):
                raise
            return LoopOutcome("failed", diverged(done + 1, "a number overflowed"), done)
        done += 1
        since_eval += 1
        value = float(loss) if done % sync_every == 0 or done == total else None
        seconds = time.perf_counter() - t0
        if value is not None:
            if not math.isfinite(value):
                return LoopOutcome("failed", diverged(done, f"it became {value}"), done)
            first = abs(value) if first is None else first
            if abs(value) > DIVERGED * max(first, 1.0):
                return LoopOutcome("failed", diverged(done, f"it reached {value:.3g}"), done)
        on_step(done, value, seconds)
        if done % eval_interval == 0 or done == total:
            if healthy is not None and not healthy():
                return LoopOutcome("failed", diverged(done, "the optimizer's state is not finite"), done)
            evaluate(done, False)
            since_eval = 0
    return LoopOutcome("completed", None, done)


@dataclass
class Event:
    """What the driver tells its watcher. kind: start, progress, eval, done."""
    kind: str
    step: int
    total: int
    loss: float | None = None
    steps_per_sec: float | None = None
    record: dict | None = None
    status: str | None = None
    message: str | None = None
    run_dir: str | None = None


@dataclass
class RunResult:
    """What a run did: its outcome and its evaluation records."""
    config: Any
    status: str  # completed, stopped, failed
    steps: int
    metrics: list[dict] = field(default_factory=list)
    message: str | None = None
    run_dir: str | None = None
    learner: Any = None
    kind: Any = None  # the run's kind (msr.core.kind.RunKind)

    def summary(self) -> dict:
        """The command line's --json object, as the run's kind writes it."""
        return self.kind.summary(self)

    def done(self) -> Event:
        """The event that ends the run."""
        return Event("done", self.steps, self.config.steps, status=self.status, message=self.message,
                     run_dir=self.run_dir)


class Recorder:
    """Where a run is kept while it goes. This one keeps nothing (a run in
    this process only); msr.runner.execute keeps a run folder."""

    def stepped(self, step: int, loss: float | None, seconds: float) -> None:
        """After each good step."""

    def before_stop(self, step: int) -> None:
        """Before the extra evaluation a stop makes, and before a hand-over: the state to resume from."""

    def evaluated(self, step: int, record: dict, stopping: bool, began: float) -> None:
        """After an evaluation (``began``: its time.monotonic() at the start)."""


def _ignore(event: Event) -> None:
    pass


def _never() -> bool:
    return False


def drive(trainer, result: RunResult, *, recorder: Recorder | None = None,
          on_event: Callable[[Event], None] | None = None, should_stop: Callable[[], bool] | None = None,
          start: int = 0, since_eval: int = 0, evaluated_at_start: bool = False,
          hand_over: Callable[[], bool] | None = None) -> RunResult:
    """Train ``trainer`` through :func:`run_loop` from step ``start`` to the
    config's steps; keep the records, steps and outcome in ``result`` (and
    return it). The extra evaluation a stop makes is marked ``"stop": True``.
    When ``hand_over()`` says so (asked before each step), the state to resume
    from is saved and the run ends as HANDED_OVER, for another process.
    The caller tells the watcher that the run is done (``result.done()``),
    once it has kept the outcome."""
    emit = on_event or _ignore
    recorder = recorder or Recorder()
    total, run_dir = result.config.steps, result.run_dir

    def evaluate(step: int, stopping: bool) -> None:
        began = time.monotonic()
        if stopping:
            recorder.before_stop(step)  # the state before the extra evaluation: resuming goes on as if never stopped
        record = trainer.evaluate(step)
        if stopping:
            record["stop"] = True
        result.metrics.append(record)
        recorder.evaluated(step, record, stopping, began)
        emit(Event("eval", step, total, record=record, run_dir=run_dir))

    def on_step(step: int, loss: float | None, seconds: float) -> None:
        trainer.add_seconds(seconds)
        result.steps = step
        recorder.stepped(step, loss, seconds)
        emit(Event("progress", step, total, loss=loss,
                   steps_per_sec=step / trainer.train_seconds if trainer.train_seconds else None, run_dir=run_dir))

    def handing_over(step: int) -> bool:
        if hand_over is None or not hand_over():
            return False
        recorder.before_stop(step)  # the state another process resumes from, exactly
        return True

    emit(Event("start", start, total, run_dir=run_dir))
    outcome = run_loop(total, result.config.eval_interval, trainer.step, evaluate, should_stop or _never, on_step,
                       sync_every=trainer.sync_every, start=start, since_eval=since_eval,
                       evaluated_at_start=evaluated_at_start, healthy=lambda: optimizer_finite(trainer),
                       hand_over=handing_over)
    result.status, result.message, result.steps = outcome.status, outcome.message, outcome.steps
    return result
