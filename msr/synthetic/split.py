"""Which tasks of a synthetic dataset a run meta-trains on, and which it is scored on.

A run evaluated on "test" trains on the first 80% of the tasks and is scored
on the rest (as in the authors' loader). A run evaluated on "validation", for
choosing a setting, trains on the first 80% of those and is scored on the
remaining fifth of the training tasks, so no choice ever looks at a test task.
"""
from __future__ import annotations

TRAIN_FRACTION = 0.8
EVAL_SPLITS = ("test", "validation")
PARTS = {"test": ("train", "test"), "validation": ("fit", "validation")}  # eval_on -> (trains on, scored on)


def task_range(n_tasks: int, part: str) -> tuple[int, int]:
    """(first task, count) of a part: train, test, fit or validation."""
    n_train = int(TRAIN_FRACTION * n_tasks)
    n_fit = int(TRAIN_FRACTION * n_train)
    return {"train": (0, n_train), "test": (n_train, n_tasks - n_train), "fit": (0, n_fit),
            "validation": (n_fit, n_train - n_fit)}[part]
