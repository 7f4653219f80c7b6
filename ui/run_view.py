"""Watching a run from its folder: progress, live charts, Stop, the outcome.

A run trains in a worker process of its own; this page only reads the run's
folder, so any browser session, after a reload or a server restart, sees the
same run and can stop it. The live part is a fragment on a timer, so only it
refreshes while the rest of the page stays as the user left it.
"""
from __future__ import annotations

import math

import streamlit as st

from msr.runs import (METRICS_CACHE, Damaged, Progress, force_stop, load_run, progress_of, read_losses,
                      request_stop)
from msr.viz.training import accuracy_chart, inner_lr_chart, loss_chart

REFRESH_SECONDS = 2.0
FORCE_AFTER_SECONDS = 20.0  # a stop not honoured by then may be forced


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
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value, spec: str = ".4f") -> str:
    return format(value, spec) if _finite(value) else "–"


def progress_text(p: Progress) -> str:
    if p.state == "starting":
        return "Starting the worker and preparing the model…"
    parts = [f"Step {p.step} / {p.total}"]
    if p.steps_per_sec:
        parts.append(f"{p.steps_per_sec:.2f} steps/s")
    if p.state in ("starting", "running"):
        if p.stopping:
            parts.append("stopping after this step…")
        else:
            parts.append(f"about {duration(p.seconds_left)} left" if p.seconds_left is not None
                         else "first evaluation…")
    elif p.elapsed is not None:
        parts.append(f"took {duration(p.elapsed)}")
    return " · ".join(parts)


def stop_controls(path: str, p: Progress, key: str) -> None:
    """Stop, then (if the worker does not honour it) Force stop."""
    if p.stopping and p.stop_age is not None and p.stop_age > FORCE_AFTER_SECONDS:
        if st.button("Force stop", key=f"{key}.force", icon=":material/cancel:", width="stretch",
                     help="End the worker now. The run becomes 'interrupted' and can be resumed from its "
                          "last evaluation."):
            force_stop(path)
        return
    if st.button("Stopping…" if p.stopping else "Stop", key=f"{key}.stop", disabled=p.stopping,
                 icon=":material/stop_circle:", width="stretch",
                 help="End the run after the current step, with a final evaluation; everything recorded "
                      "so far is kept."):
        request_stop(path)


def render_metrics(last: dict, step_loss: float | None) -> None:
    cols = st.columns(4)
    cols[0].metric("Test loss", _fmt(last.get("test_loss")),
                   help="Mean query loss over the test tasks of the latest evaluation.")
    cols[1].metric("± 95%", _fmt(last.get("test_err")), help="Half-width of the 95% Student-t interval.")
    acc = last.get("test_acc")
    cols[2].metric("Test accuracy", f"{100 * acc:.1f} %" if _finite(acc) else "–")
    cols[3].metric("Train loss (last step)", _fmt(step_loss))


def render_outcome(rec, p: Progress, last: dict) -> None:
    where = f" Saved in `{rec.path}`; find it on the Runs page."
    parts = []
    if _finite(last.get("test_loss")):
        parts.append(f"test loss {last['test_loss']:.4f}"
                     + (f" ± {last['test_err']:.4f}" if _finite(last.get("test_err")) else ""))
    if _finite(last.get("test_acc")):
        parts.append(f"test accuracy {100 * last['test_acc']:.1f} %")
    result = f" At step {last.get('step')}: {', '.join(parts)}." if parts else ""
    if p.state == "completed":
        st.success(f"Run completed: {p.step} steps in {duration(p.elapsed)}.{result}{where}")
    elif p.state == "stopped":
        st.warning(f"Run stopped at step {p.step} of {p.total}; what was recorded is kept, and it can be "
                   f"resumed from the Runs page.{result}{where}")
    elif p.state == "interrupted":
        st.warning(f"Run interrupted at step {p.step} of {p.total}: its worker process is gone (killed, or the "
                   f"machine restarted). Resume it from the Runs page; it continues from its last "
                   f"evaluation.{result}{where}")
    elif p.state == "failed":
        st.error(f"Run failed: {p.message or 'unknown error'}.{result}{where}")


def render_run(path: str, key: str = "run") -> None:
    """A run as its folder says now (no timer)."""
    rec = load_run(path, with_metrics=False)
    if rec.damaged:
        st.error(f"Run `{rec.run_id}` cannot be read: {rec.damaged}.")
        return
    try:
        metrics = METRICS_CACHE.read(path)
    except Damaged as exc:
        st.error(f"Run `{rec.run_id}`: {exc}.")
        return
    p = progress_of(rec)
    losses = read_losses(path)
    title = rec.config.name or rec.run_id
    st.subheader(f"Run {title}")
    if rec.active:
        bar, side = st.columns([8, 1], vertical_alignment="bottom")
        bar.progress(p.fraction, text=progress_text(p))
        with side:
            stop_controls(path, p, key)
    else:
        last = metrics[-1] if metrics else {}
        render_outcome(rec, p, last)
        st.progress(p.fraction, text=progress_text(p))
    last = metrics[-1] if metrics else {}
    render_metrics(last, losses[-1][1] if losses else None)
    if not metrics:
        st.caption("Charts appear after the first evaluation.")
        return
    left, right = st.columns(2)
    left.altair_chart(loss_chart(metrics, losses), width="stretch")
    right.altair_chart(accuracy_chart(metrics), width="stretch")
    if any(r.get("inner_lrs") for r in metrics):
        if rec.config.lr_mode == "fixed":
            st.caption(f"Inner learning rate fixed at {rec.config.inner_lr:g}.")
        else:
            st.altair_chart(inner_lr_chart(metrics), width="stretch")


def show_run(path: str, key: str = "run") -> None:
    """The run, refreshed every couple of seconds while it trains; a full
    rerun once it ends, so the page settles on the outcome."""
    rec = load_run(path, with_metrics=False)
    if not rec.active:
        render_run(path, key)
        return

    @st.fragment(run_every=REFRESH_SECONDS)
    def live() -> None:
        render_run(path, key)
        if not load_run(path, with_metrics=False).active:
            st.rerun()

    live()
