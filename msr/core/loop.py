"""The schedule every meta-training run follows: when to step, evaluate and stop."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .runtime import keep_freed_memory


@dataclass
class LoopOutcome:
    status: str  # completed, stopped, failed
    message: str | None
    steps: int


def run_loop(total: int, eval_interval: int, step: Callable[[], torch.Tensor],
             evaluate: Callable[[int, bool], None], should_stop: Callable[[], bool],
             on_step: Callable[[int, float | None, float], None], sync_every: int = 1,
             start: int = 0, since_eval: int = 0, evaluated_at_start: bool = False) -> LoopOutcome:
    """The schedule every meta-training run follows (Rotated MNIST and the
    synthetic problems alike): evaluate at step 0, every eval_interval steps,
    at the last step, and where a stop request ends the run; poll the stop
    flag before each step; end as failed on a non-finite loss.

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
    if start == 0 and not evaluated_at_start:
        evaluate(0, False)
    while done < total:
        if should_stop():
            if since_eval and done > 0:
                evaluate(done, True)
            return LoopOutcome("stopped", f"stopped by request at step {done}", done)
        t0 = time.perf_counter()
        loss = step()
        done += 1
        since_eval += 1
        value = float(loss) if done % sync_every == 0 or done == total else None
        seconds = time.perf_counter() - t0
        if value is not None and not math.isfinite(value):
            return LoopOutcome("failed", f"the loss became {value} at step {done}; "
                                         "try a smaller inner or outer learning rate", done)
        on_step(done, value, seconds)
        if done % eval_interval == 0 or done == total:
            evaluate(done, False)
            since_eval = 0
    return LoopOutcome("completed", None, done)
