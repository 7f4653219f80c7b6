"""The sidebar panel of every page: each run training on this machine, with its progress and a Stop button.

Runs belong to no browser session, so every session sees them all.
"""
from __future__ import annotations

import time

import streamlit as st

from msr.analysis.tables import time_left_text
from msr.store.progress import progress_of
from msr.store.reader import active_runs
from ui.live import live
from ui.run_picker import runs_dir
from ui.run_view import stop_controls

LIVE_KEY = "active_runs.count"
# As often as the page's own progress bar (ui.run_view.REFRESH_SECONDS), so the two never show steps far apart;
# a listing reads two small files per run (70 ms for 1,000 runs, benchmarks/list_runs.py).
SIDEBAR_REFRESH_SECONDS = 3.0


def _title(rec) -> str:
    what = rec.kind.describe(rec.config)
    if rec.name:
        return f"{rec.name} ({what})"
    return f"{what}, started {time.strftime('%H:%M', time.localtime(rec.created))}"


def _line(rec, p) -> str:
    left = f" · {time_left_text(p.seconds_left)} left" if p.seconds_left is not None else ""
    return f"{_title(rec)}: step {p.step} / {p.total}{left}"


def sidebar_panel() -> None:
    live(_draw, SIDEBAR_REFRESH_SECONDS)


def header_strip() -> None:
    """The same runs as one line each above the page, for when the sidebar is folded away (presentation mode)."""
    live(_draw_strip, SIDEBAR_REFRESH_SECONDS)


def _draw_strip() -> None:
    for rec in active_runs(runs_dir()):
        p = progress_of(rec)
        bar, stop = st.columns([6, 1], vertical_alignment="bottom")
        bar.progress(p.fraction, text=f"Training {_line(rec, p)}")
        with stop:
            stop_controls(str(rec.path), p, key=f"head.{rec.run_id}")


def _draw() -> None:
    runs = active_runs(runs_dir())
    previous = st.session_state.get(LIVE_KEY)
    st.session_state[LIVE_KEY] = len(runs)
    if not runs:
        if previous:
            st.caption("No run is training now.")
        return
    st.markdown(f"**Training now ({len(runs)})**")
    for rec in runs:
        p = progress_of(rec)
        st.progress(p.fraction, text=_line(rec, p))
        stop_controls(str(rec.path), p, key=f"side.{rec.run_id}")
