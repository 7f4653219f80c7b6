"""Watching a run from its folder: progress, live charts, Stop, the outcome.

A run trains in a worker process of its own; this page only reads the run's
folder, so any browser session, after a reload or a server restart, sees the
same run and can stop it. The live part is a fragment on a timer, so only it
refreshes while the rest of the page stays as the user left it.
"""
from __future__ import annotations

import time

import math
import os

import streamlit as st

from msr.analysis.tables import time_left_text
from msr.store.files import Damaged, open_file
from msr.store.layout import run_files
from msr.store.liveness import force_stop, request_stop
from msr.store.progress import Progress, progress_of
from msr.store.reader import METRICS_CACHE, load_run, read_losses
from msr.viz.training import accuracy_chart, inner_lr_chart, loss_chart
from ui.live import live, run_training
from ui.present import chart

REFRESH_SECONDS = 3.0
CHART_REFRESH_SECONDS = 10.0
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
    if p.state == "starting":  # (one with a message and steps behind it is handing its run over: msr.runner.execute)
        return f"Step {p.step} / {p.total} · {p.message}…" if p.step and p.message else \
            "Starting the worker and preparing the model…"
    parts = [f"Step {p.step} / {p.total}"]
    if p.steps_per_sec:
        parts.append(f"{p.steps_per_sec:.2f} steps/s")
    if p.state in ("starting", "running"):
        if p.stopping:
            parts.append("stopping after this step…")
        else:
            parts.append(f"{time_left_text(p.seconds_left)} left" if p.seconds_left is not None
                         else "timing the first steps…")
    elif p.state == "not responding":
        parts.append("not responding: its worker lives but has not reported for a while (paused?)")
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


def render_metrics(last: dict) -> None:
    cols = st.columns(4)
    cols[0].metric("Test loss", _fmt(last.get("test_loss")),
                   help="Mean query loss over the test tasks of the latest evaluation.")
    cols[1].metric("± 95%", _fmt(last.get("test_err")), help="Half-width of the 95% Student-t interval.")
    acc = last.get("test_acc")
    cols[2].metric("Test accuracy", f"{100 * acc:.1f} %" if _finite(acc) else "–")
    cols[3].metric("Evaluated at step", str(last.get("step", "–")),
                   help="These numbers and the charts are refreshed every few seconds while the run trains.")


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
        st.warning(f"Run stopped at step {p.step} of {p.total}; what was recorded is kept. {rec.resume_text()} "
                   f"(from the Runs page).{result}{where}")
    elif p.state == "interrupted" and p.step == 0 and (log := worker_log_tail(rec.path)):
        st.error(f"The run's worker ended before its first step: {log}{where}")
    elif p.state == "interrupted":
        st.warning(f"Run interrupted at step {p.step} of {p.total}: its worker process is gone (killed, or the "
                   f"machine restarted). {rec.resume_text()} (from the Runs page).{result}{where}")
    elif p.state == "failed":
        st.error(f"Run failed: {p.message or 'unknown error'}.{result}{where}")


LOG_TAIL_BYTES = 64 * 1024


def worker_log_tail(path) -> str | None:
    """The last line a worker wrote, to say why it ended early."""
    try:
        with open_file(run_files(path).log) as fh:  # its end only: a long run's log may be large
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - LOG_TAIL_BYTES))
            lines = fh.read(LOG_TAIL_BYTES).decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return None
    return lines[-1][:300] if lines else None


def _read(path: str):
    """(record, metrics) of a run, or None after showing why it cannot be read."""
    rec = load_run(path, with_metrics=False)
    if rec.damaged:
        st.error(f"Run `{rec.run_id}` cannot be read: {rec.damaged}.")
        return None
    try:
        return rec, METRICS_CACHE.read(path)
    except Damaged as exc:
        st.error(f"Run `{rec.run_id}`: {exc}.")
        return None


def run_title(rec) -> str:
    """A run as a person names it: its display name, else its model and when it started (its folder id is
    for machines, and is in the title's help)."""
    if rec.name:
        return rec.name
    model = rec.config.model_label() if hasattr(rec.config, "model_label") else rec.kind.label(rec.config)
    when = time.strftime("%d %b %H:%M", time.localtime(rec.created)) if rec.created else None
    return f"{model} run" + (f", started {when}" if when else "")


def render_status(path: str, key: str = "run") -> None:
    """Title, progress (Stop while it trains, the outcome after) and the latest numbers."""
    read = _read(path)
    if read is None:
        return
    rec, metrics = read
    p = progress_of(rec)
    losses = read_losses(path, keep=1)
    st.header(run_title(rec), anchor=False, help=f"Saved in the folder `{rec.run_id}`.")
    text = progress_text(p) + (f" · train loss {losses[-1][1]:.4f}" if losses else "")
    if rec.active:
        bar, side = st.columns([8, 1], vertical_alignment="bottom")
        bar.progress(p.fraction, text=text)
        with side:
            stop_controls(path, p, key)
    else:
        render_outcome(rec, p, metrics[-1] if metrics else {})
        st.progress(p.fraction, text=text)


def render_charts(path: str) -> None:
    """The latest evaluation's numbers; loss (evaluations with their 95%
    band, and every step), accuracy, inner rates."""
    read = _read(path)
    if read is None:
        return
    rec, metrics = read
    render_metrics(metrics[-1] if metrics else {})
    if not metrics:
        st.caption("Charts appear after the first evaluation.")
        return
    left, right = st.columns(2)
    chart(loss_chart(metrics, read_losses(path)), left)
    chart(accuracy_chart(metrics), right)
    if any(r.get("inner_lrs") for r in metrics):
        if rec.config.lr_mode == "fixed":
            st.caption(f"Inner learning rate fixed at {rec.config.inner_lr:g}.")
        else:
            chart(inner_lr_chart(metrics))


def show_run(path: str, key: str = "run") -> None:
    """The run as its folder says. While it trains, the progress refreshes
    every few seconds and the numbers and charts less often: redrawing them
    is what costs a browser most, and the run shares the CPU with it
    (benchmarks/watched_run.py). A full rerun once it ends, so the page
    settles on the outcome."""
    if not load_run(path, with_metrics=False).active:
        render_status(path, key)
        render_charts(path)
        return
    live(lambda: render_status(path, key), REFRESH_SECONDS, still_active=run_training(path))
    live(lambda: render_charts(path), CHART_REFRESH_SECONDS)
