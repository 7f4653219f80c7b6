"""Peak memory of a synthetic run, estimated from its shapes (2-D problems only).

A 2-D task's 20 output maps (C × 30 × 30 floats) are made when it is drawn,
and the vmapped second-order step holds about four copies of them per task
(measured: rot8_flip, 32 tasks: +480 MB over the built trainer; an evaluation
chunk of 50 tasks: +580 MB). The 1-D problems are small: no estimate.
"""
from __future__ import annotations

from ..core.kind import MemoryNeed
from .rotation import OUT_SIDE, ROTATION_PROBLEMS

MIB = 2**20
ROTATION_BASE_MIB = 800
ROTATION_COPIES = 4
ROTATION_EVAL_CHUNK = 50


def rotation_peak_bytes(config) -> int:
    """Estimated peak memory of a 2-D rotation run."""
    problem = ROTATION_PROBLEMS[config.problem]
    per_task = 20 * problem.channels * OUT_SIDE * OUT_SIDE * 4 * ROTATION_COPIES
    tasks = max(config.tasks_per_step, min(ROTATION_EVAL_CHUNK, config.test_tasks))
    return ROTATION_BASE_MIB * MIB + tasks * per_task


def memory_need(config, cuda: bool) -> MemoryNeed | None:
    """The estimated peak of a 2-D run (held in the machine's memory, whatever
    the device); None for the 1-D problems."""
    if not config.is_rotation:
        return None
    return MemoryNeed(rotation_peak_bytes(config), False, "use fewer tasks per step")
