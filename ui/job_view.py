"""Watching a background run: progress, live charts, Stop, the outcome.

The live part is a fragment that reruns on a timer, so only it refreshes
while the rest of the page (the settings form) stays as the user left it.
"""
from __future__ import annotations

import math
from typing import Callable

import streamlit as st

from msr.jobs import REGISTRY, Job, JobView
from msr.viz.training import accuracy_chart, inner_lr_chart, loss_chart

JOB_IDS_KEY = "job_ids"  # this browser session's jobs, oldest first
REFRESH_SECONDS = 2.0


def session_job_ids() -> list[str]:
    return st.session_state.setdefault(JOB_IDS_KEY, [])


def session_jobs() -> list[Job]:
    return REGISTRY.jobs(session_job_ids())


def remember(job: Job) -> None:
    session_job_ids().append(job.id)
    note_run_dir(job.view())


def note_run_dir(view: JobView) -> None:
    """Point the other pages at this session's newest run once its folder exists."""
    ids = session_job_ids()
    if view.run_dir and ids and ids[-1] == view.id and st.session_state.get("last_run_path") != view.run_dir:
        st.session_state["last_run_path"] = view.run_dir


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value, spec: str = ".4f") -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def progress_text(view: JobView) -> str:
    if view.status == "starting":
        return "Preparing the model…"
    parts = [f"Step {view.step} / {view.total}"]
    if view.steps_per_sec:
        parts.append(f"{view.steps_per_sec:.2f} steps/s")
    if view.active:
        parts.append(f"about {duration(view.seconds_left)} left" if view.seconds_left is not None
                     else "first evaluation…")
    else:
        parts.append(f"took {duration(view.elapsed)}")
    return " · ".join(parts)


def render_metrics(view: JobView) -> None:
    last = view.last
    cols = st.columns(4)
    cols[0].metric("Test loss", _fmt(last.get("test_loss")),
                   help="Mean query loss over the test tasks of the latest evaluation.")
    cols[1].metric("± 95%", _fmt(last.get("test_err")), help="Half-width of the 95% Student-t interval.")
    acc = last.get("test_acc")
    cols[2].metric("Test accuracy", f"{100 * acc:.1f} %" if _finite(acc) else "–")
    cols[3].metric("Train loss (last step)", _fmt(view.loss))


def render_charts(view: JobView) -> None:
    if not view.metrics:
        st.caption("Charts appear after the first evaluation.")
        return
    left, right = st.columns(2)
    left.altair_chart(loss_chart(view.metrics, view.step_losses), width="stretch")
    right.altair_chart(accuracy_chart(view.metrics), width="stretch")
    if any(rec.get("inner_lrs") for rec in view.metrics):
        if view.config.lr_mode == "fixed":
            st.caption(f"Inner learning rate fixed at {view.config.inner_lr:g}.")
        else:
            st.altair_chart(inner_lr_chart(view.metrics), width="stretch")


def render_outcome(view: JobView) -> None:
    last = view.last
    where = f" Saved in `{view.run_dir}`; find it on the Runs page." if view.run_dir else ""
    result = ""
    parts = []
    if _finite(last.get("test_loss")):
        parts.append(f"test loss {last['test_loss']:.4f}"
                     + (f" ± {last['test_err']:.4f}" if _finite(last.get("test_err")) else ""))
    if _finite(last.get("test_acc")):
        parts.append(f"test accuracy {100 * last['test_acc']:.1f} %")
    if parts:
        result = f" At step {last.get('step')}: {', '.join(parts)}."
    if view.status == "completed":
        st.success(f"Run completed: {view.step} steps in {duration(view.elapsed)}.{result}{where}")
    elif view.status == "stopped":
        st.warning(f"Run stopped at step {view.step} of {view.total}; what was recorded is kept.{result}{where}")
    elif view.status == "failed":
        reason = view.message or view.error or "unknown error"
        nothing = "" if view.run_dir else " Nothing was saved."
        st.error(f"Run failed: {reason}.{nothing}{result}{where}")


def render_job(view: JobView, controls: Callable[[], None] | None = None) -> None:
    """A job as it stands now (no timer); ``controls`` draws beside the
    progress bar while the run goes."""
    title = view.config.name or (view.run_dir.rsplit("/", 1)[-1] if view.run_dir else view.id)
    st.subheader(f"Run {title}")
    if view.active:
        bar, side = st.columns([8, 1], vertical_alignment="bottom")
        bar.progress(view.fraction, text=progress_text(view))
        if controls is not None:
            with side:
                controls()
    else:
        render_outcome(view)
        st.progress(view.fraction, text=progress_text(view))
    render_metrics(view)
    render_charts(view)


@st.fragment(run_every=REFRESH_SECONDS)
def live_job(job_id: str) -> None:
    """Re-drawn every second while the job runs; a full rerun once it ends
    so the page settles on the outcome and stops polling."""
    job = REGISTRY.get(job_id)
    if job is None:
        return
    if job.done:
        st.rerun()
    view = job.view()
    note_run_dir(view)

    def stop_button() -> None:
        if st.button("Stopping…" if job.stop_requested else "Stop", key=f"stop.{job_id}",
                     disabled=job.stop_requested, icon=":material/stop_circle:", width="stretch",
                     help="End the run after the current step; everything recorded so far is kept."):
            job.stop()

    render_job(view, stop_button)


def show_job(job: Job) -> None:
    if job.done:
        render_job(job.view())
    else:
        live_job(job.id)


def render_history(jobs: list[Job]) -> None:
    """This session's earlier runs, newest first."""
    if not jobs:
        return
    with st.expander(f"Earlier runs started here ({len(jobs)})"):
        for job in reversed(jobs):
            view = job.view()
            last = view.last
            acc = f", test accuracy {100 * last['test_acc']:.1f} %" if _finite(last.get("test_acc")) else ""
            st.markdown(f"- **{view.status}** · step {view.step}/{view.total}{acc} · `{view.run_dir or 'not saved'}`"
                        + (f" · {view.message}" if view.message and view.status == "failed" else ""))
