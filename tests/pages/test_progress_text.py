"""The progress line under a run's bar, for the states a worker passes through."""
from __future__ import annotations

from msr.store.progress import Progress
from ui.run_view import progress_text


def progress(state: str, step: int, message: str | None = None) -> Progress:
    return Progress(state, step, 600, None, None, None, message, False)


def test_a_worker_starting_says_so_and_one_handing_over_says_why():
    assert progress_text(progress("starting", 0)) == "Starting the worker and preparing the model…"
    assert progress_text(progress("starting", 120)) == "Starting the worker and preparing the model…", "a resume"
    why = "other work started: going on from step 120 in a process whose idle threads sleep"
    assert progress_text(progress("starting", 120, why)) == f"Step 120 / 600 · {why}…"
