"""Choosing which run a page looks at: a saved run or one still training.

A run in progress writes its metrics and checkpoints to its folder as it goes,
so live and saved runs are read the same way, from disk.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from msr.kinds import MNIST
from msr.store.layout import default_runs_dir
from msr.store.reader import RunRecord, list_runs, load_run

RUNS_DIR_KEY = "runs_dir"
RUN_PARAM = "run"  # the run a page shows, by folder name, in the page's address
FOLLOWED_KEY = "last_run_path"  # the run this session started or resumed last: the Train page follows it
CHOSEN_KEY = "chosen_run"  # the run this session chose, started or resumed last: the pages that show one open on it


def runs_dir() -> str:
    """The session's runs folder; else $MSR_RUNS_DIR (so a server can be
    pointed elsewhere); else 'runs'."""
    return st.session_state.get(RUNS_DIR_KEY) or default_runs_dir()


def _label(rec: RunRecord) -> str:
    """A run as a picker lists it: what changes as it trains (its step, its state) is left out, as a picker
    is not redrawn while the page below follows the run, and would say "stopped" of a run resumed since."""
    return f"{rec.name or rec.run_id} · {rec.config.model_label()}"


def select_run(key: str, label: str = "Run") -> RunRecord | None:
    """A selectbox of Rotated MNIST runs, newest first (see pick_run);
    returns the freshly loaded record, or None."""
    runs = list_runs(runs_dir(), kind=MNIST)
    if not runs:
        st.info("No runs yet. Start one on the **Train** page.")
        return None
    return pick_run(key, runs, label)


def pick_run(key: str, runs: list[RunRecord], label: str = "Run", with_metrics: bool = True,
             describe: Callable[[RunRecord], str] | None = None) -> RunRecord | None:
    """A selectbox of ``runs`` that opens on the run the page's address names
    (``?run=``), else the run this session started or chose last on any page,
    else the first. The pick is kept in the address and for the next page, so
    the run a person chose follows them through the pages."""
    paths = [str(r.path) for r in runs]
    linked = next((p for p, r in zip(paths, runs) if r.run_id == st.query_params.get(RUN_PARAM)), None)
    preferred = linked or st.session_state.get(CHOSEN_KEY) or st.session_state.get(FOLLOWED_KEY)  # a link wins
    if preferred in paths and st.session_state.get(key) not in paths:
        st.session_state.pop(key, None)  # a pick of a run no longer listed gives way
    index = paths.index(preferred) if preferred in paths else 0
    choice = st.selectbox(label, paths, index=index, key=key, on_change=_chosen, args=(key, runs),
                          format_func=lambda p: (describe or _label)(runs[paths.index(p)]))
    if not choice:
        return None
    st.query_params[RUN_PARAM] = runs[paths.index(choice)].run_id
    st.session_state[CHOSEN_KEY] = choice
    rec = load_run(choice, with_metrics=with_metrics)
    if rec.damaged:
        st.error(f"Run `{rec.run_id}` cannot be shown: {rec.damaged}.")
        return None
    return rec


def follow(path: str) -> None:
    """A run this session started or resumed: the Train page follows it and every page opens on it."""
    st.session_state[FOLLOWED_KEY] = st.session_state[CHOSEN_KEY] = str(path)


def _chosen(key: str, runs: list[RunRecord]) -> None:
    """A person picked a run: it is the one the address and the next page name."""
    path = st.session_state.get(key)
    run = next((r for r in runs if str(r.path) == path), None)
    if run is not None:
        st.session_state[CHOSEN_KEY] = path
        st.query_params[RUN_PARAM] = run.run_id
