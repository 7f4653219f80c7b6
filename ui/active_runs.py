"""The sidebar panel of every page: each run training on this machine, with its progress and a Stop button.

Runs belong to no browser session, so every session sees them all.
"""
from __future__ import annotations

import streamlit as st

from msr.runs import active_runs, progress_of
from ui.live import live
from ui.run_picker import runs_dir
from ui.run_view import stop_controls

LIVE_KEY = "active_runs.count"
# On every page, so kept light: a run started elsewhere appears within this many seconds.
SIDEBAR_REFRESH_SECONDS = 6.0


def _title(rec) -> str:
    cfg = rec.config
    name = getattr(cfg, "name", "") or rec.run_id
    what = cfg.arch if rec.kind == "mnist" else f"{cfg.problem} · {cfg.model}"
    return f"{name} ({what})"


def sidebar_panel() -> None:
    live(_draw, SIDEBAR_REFRESH_SECONDS)


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
        st.progress(p.fraction, text=f"{_title(rec)}: step {p.step} / {p.total}")
        stop_controls(str(rec.path), p, key=f"side.{rec.run_id}")
