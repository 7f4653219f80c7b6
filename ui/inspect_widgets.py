"""Widgets shared by the run inspection pages (Data, Errors, Weights, Symmetry).

Charts and pictures with their downloads, a step slider that follows a live
run and is kept in the page's address, and a page body drawn live while its
run trains, or once after.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from msr.runs import RunRecord, load_run
from msr.viz.export import figure_png, frame_csv
from ui.downloads import download
from ui.live import live, run_training
from ui.present import chart as present_chart

STEP_PARAM = "step"  # the step a page shows, in its address


def show_png(png: bytes, name: str, key: str) -> None:
    st.image(png)
    download("Download PNG", png, f"{name}.png", "image/png", key=key)


def show_figure(fig, name: str, key: str) -> None:
    show_png(figure_png(fig), name, key)


def show_chart(chart, frame, name: str, key: str) -> None:
    present_chart(chart)
    download("Download CSV", frame_csv(frame), f"{name}.csv", "text/csv", key=key)


def linked_step(steps: list[int], param: str = STEP_PARAM) -> int | None:
    """The step the page's address names (``?step=N``), as the nearest of
    ``steps``; None when it names none."""
    try:
        wanted = int(st.query_params.get(param, ""))
    except ValueError:
        return None
    return min(steps, key=lambda s: (abs(s - wanted), s)) if steps else None


def _step_to_url(key: str, param: str, newest: int) -> None:
    """Keep a picked step in the address; the newest is left out, so a link
    to a live run keeps following it."""
    if st.session_state[key] == newest:
        st.query_params.pop(param, None)
    else:
        st.query_params[param] = str(st.session_state[key])


def choose_step(label: str, steps: list[int], key: str, what: str = "one", param: str = STEP_PARAM) -> int:
    """A step slider that follows a live run's newest step unless the user
    picked an earlier one, and survives checkpoints being thinned. The pick
    is kept in the page's address under ``param``, and a link with it opens
    at that step."""
    if len(steps) == 1:
        st.caption(f"{label}: {steps[0]} (the only {what} so far)")
        return steps[0]
    if key not in st.session_state:
        linked = linked_step(steps, param)
        if linked is not None:
            st.session_state[key] = linked
    following = st.session_state.get(key) == st.session_state.get(f"{key}__last")
    if st.session_state.get(key) not in steps or following:
        st.session_state[key] = steps[-1]
    st.session_state[f"{key}__last"] = steps[-1]
    return st.select_slider(label, steps, key=key, on_change=_step_to_url, args=(key, param, steps[-1]))


def render_run(rec: RunRecord, body: Callable[[str], None], key: str, refresh_s: int) -> None:
    """Draw body(run path); while the run is training, redraw it every
    refresh_s seconds (a toggle stops following) and switch to a plain page
    once it ends."""
    if not rec.active:
        body(str(rec.path))
        return
    follow = st.toggle(f"Follow the live run (refresh every {refresh_s} s)", value=True, key=f"{key}_follow")
    live(lambda: body(str(rec.path)), refresh_s if follow else None, still_active=run_training(rec.path))


def readable_run(path: str, with_metrics: bool = True) -> RunRecord | None:
    """The run in ``path``, or None after saying why it cannot be read."""
    rec = load_run(path, with_metrics=with_metrics)
    if rec.damaged or rec.config is None:
        st.error(f"This run cannot be read: {rec.damaged}")
        return None
    return rec


def checkpointed_run(path: str, with_metrics: bool = True) -> tuple[RunRecord, list[int]] | None:
    """The run and its kept checkpoint steps, or None after saying why there is nothing to show."""
    rec = readable_run(path, with_metrics)
    if rec is None:
        return None
    steps = rec.checkpoint_steps()
    if not steps:
        st.info("This run has no checkpoint yet; the first one is written at step 0's evaluation.")
        return None
    return rec, steps
