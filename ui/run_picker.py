"""Choosing which run a page looks at: a saved run or one still training.

A run in progress writes its metrics and checkpoints to its folder as it goes,
so live and saved runs are read the same way, from disk.
"""
from __future__ import annotations


import streamlit as st

from msr.kinds import MNIST
from msr.store.layout import default_runs_dir
from msr.store.reader import RunRecord, list_runs, load_run

RUNS_DIR_KEY = "runs_dir"
RUN_PARAM = "run"  # the run a page shows, by folder name, in the page's address


def runs_dir() -> str:
    """The session's runs folder; else $MSR_RUNS_DIR (so a server can be
    pointed elsewhere); else 'runs'."""
    return st.session_state.get(RUNS_DIR_KEY) or default_runs_dir()


def _label(rec: RunRecord) -> str:
    """A live run's label leaves its step out: the picker is not redrawn as the run goes, so it would lag."""
    name = rec.name or rec.run_id
    if rec.active:
        return f"{name} · {rec.config.model_label()} · ● {'starting' if rec.state == 'starting' else 'live'}"
    return f"{name} · {rec.config.model_label()} · step {rec.step} · {rec.state}"


def select_run(key: str, label: str = "Run") -> RunRecord | None:
    """A selectbox of Rotated MNIST runs, newest first; defaults to the run
    this browser session started last. Returns the freshly loaded record, or
    None."""
    runs = list_runs(runs_dir(), kind=MNIST)
    if not runs:
        st.info("No runs yet. Start one on the **Train** page.")
        return None
    paths = [str(r.path) for r in runs]
    linked = next((p for p, r in zip(paths, runs) if r.run_id == st.query_params.get(RUN_PARAM)), None)
    preferred = linked or st.session_state.get("last_run_path")  # a link names the run: it wins
    index = paths.index(preferred) if preferred in paths else 0
    choice = st.selectbox(label, paths, index=index, key=key,
                          format_func=lambda p: _label(runs[paths.index(p)]))
    if not choice:
        return None
    st.query_params[RUN_PARAM] = runs[paths.index(choice)].run_id
    rec = load_run(choice)
    if rec.damaged:
        st.error(f"Run `{rec.run_id}` cannot be shown: {rec.damaged}.")
        return None
    return rec
