"""Time left is estimated from step and evaluation times measured apart, and not guessed too early."""
import pytest

from msr.store.progress import ESTIMATE_AFTER_STEPS, recent_step_seconds, time_left
from msr.store.writer import WARMUP_STEPS


def status(step_seconds: float, steps: int, evals: int, eval_seconds: float, start_step: int = 0) -> dict:
    return {"start_step": start_step, "train_seconds": step_seconds * steps, "evals": evals,
            "eval_seconds": eval_seconds * evals}


def test_no_estimate_before_enough_steps_or_without_times():
    assert time_left(status(0.1, ESTIMATE_AFTER_STEPS - 1, 1, 5.0), ESTIMATE_AFTER_STEPS - 1, 600, 25) is None
    assert time_left({"start_step": 0}, 100, 600, 25) is None  # a worker that does not record the times


def test_a_slow_first_evaluation_does_not_inflate_the_early_estimate():
    # 10 steps of 0.05 s after a 2 s first evaluation: 590 steps and 24 evaluations are left
    left = time_left(status(0.05, 10, 1, 2.0), 10, 600, 25)
    assert left == pytest.approx(590 * 0.05 + 24 * 2.0)


def test_evaluations_left_count_the_final_one_off_the_interval():
    # step 90 of 100, evaluations every 25: at 100 only (the last)
    assert time_left(status(1.0, 90, 4, 3.0), 90, 100, 25) == pytest.approx(10 + 3.0)
    # step 90 of 110: at 100 and at 110
    assert time_left(status(1.0, 90, 4, 3.0), 90, 110, 25) == pytest.approx(20 + 2 * 3.0)


def test_a_resumed_worker_times_only_its_own_steps():
    # resumed at 300, which it does not evaluate again: before its first evaluation only steps are counted
    assert time_left(status(0.5, 20, 0, 0.0, start_step=300), 320, 400, 100) == pytest.approx(80 * 0.5)
    # at step 420 of 500 it evaluated at 400 and will at 500
    assert time_left(status(0.5, 120, 1, 4.0, start_step=300), 420, 500, 100) == pytest.approx(80 * 0.5 + 4.0)


def test_an_evaluation_under_way_is_still_counted():
    # the worker reports the last step before its last evaluation: that evaluation is still to come
    left = time_left(status(0.1, 100, 4, 2.0), 100, 100, 25)  # evaluated at 0, 25, 50, 75; 100 runs now
    assert left == pytest.approx(2.0)


def test_the_warm_up_in_the_first_evaluation_is_left_out_once_a_later_one_is_timed():
    st = {"start_step": 0, "train_seconds": 5.0, "evals": 3, "eval_seconds": 10.0 + 2 * 1.0, "first_eval_seconds": 10.0}
    assert time_left(st, 50, 100, 25) == pytest.approx(50 * 0.1 + 2 * 1.0)


def test_the_time_left_reads_the_recent_steps_not_the_warm_up():
    # two slow first steps (2 s each), then 0.1 s a step: the average says 0.48 s a step, the truth is 0.1
    st = {**status(0.0, 0, 1, 1.0), "train_seconds": 2 * 2.0 + 8 * 0.1, "recent_steps": 8, "recent_seconds": 0.8}
    assert time_left(st, 10, 100, 50) == pytest.approx(90 * 0.1 + 2 * 1.0)
    assert recent_step_seconds(st) == pytest.approx(0.1)
    too_few = {**st, "recent_steps": 2, "recent_seconds": 0.2}  # not yet enough: the average it is
    assert time_left(too_few, 10, 100, 50) == pytest.approx(90 * 0.48 + 2 * 1.0)


def test_a_running_worker_writes_the_times(tmp_path):
    from msr.mnist.config import RunConfig
    from msr.store.reader import load_run
    from msr.store.progress import progress_of
    from msr.runner.execute import execute
    from msr.store.folders import create_run_folder
    cfg = RunConfig(arch="shared", steps=8, eval_interval=4, eval_tasks=4,
                    tasks_per_step=2, runs_dir=str(tmp_path))
    path = create_run_folder(tmp_path, "mnist", cfg.to_dict(), "t", cfg.steps)
    execute(path)
    st = load_run(path).status
    assert st["evals"] == 3 and st["eval_seconds"] > st["first_eval_seconds"] > 0 and st["train_seconds"] > 0
    assert st["recent_steps"] == 8 - WARMUP_STEPS, "the recent window leaves the warm-up steps out"
    assert 0 < st["recent_seconds"] < st["train_seconds"]
    assert progress_of(load_run(path)).seconds_left is None  # finished: nothing left to estimate
