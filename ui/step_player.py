"""The one step player: a slider over a run's saved steps, on every page that shows one step of a run.

It follows a live run (a view at the newest step moves on with each new
evaluation; one moved back holds its step), survives checkpoints being thinned
(a step gone shows the nearest kept one), keeps the step in the page's address
(a link opens at the kept step nearest the one it names; the newest is left
out of the address, so a link to a live run keeps following it), and where
asked plays through the steps, one a second. Nearest means the earlier of two
as near.

The shown step is ``st.session_state[key]`` (the slider's own value);
``<key>.newest`` is the newest step seen, ``<key>.playing`` is set while it
plays.
"""
from __future__ import annotations

import time

import streamlit as st

STEP_PARAM = "step"  # the step a page shows, in its address
PLAY_SECONDS = 1.0


def nearest(steps: list[int], wanted: int) -> int:
    """The one of ``steps`` nearest ``wanted`` (the earlier of two as near)."""
    return min(steps, key=lambda s: (abs(s - wanted), s))


def linked_step(steps: list[int], param: str = STEP_PARAM) -> int | None:
    """The step the page's address names (``?step=N``), as the nearest of
    ``steps``; None when it names none."""
    try:
        wanted = int(st.query_params.get(param, ""))
    except ValueError:
        return None
    return nearest(steps, wanted) if steps else None


def shown_step(steps: list[int], key: str, param: str = STEP_PARAM) -> int:
    """The step to show: a linked one at first (else the newest); the newest
    while the view is at the newest, so it follows training; else the one
    chosen (or the nearest kept one, if it was thinned away)."""
    state, newest_key = st.session_state, f"{key}.newest"
    step = state.get(key)
    if step is None:
        linked = linked_step(steps, param)
        step = steps[-1] if linked is None else linked
    elif step == state.get(newest_key):
        step = steps[-1]
    elif step not in steps:
        step = nearest(steps, step)
    state[key], state[newest_key] = step, steps[-1]
    return step


def playing(key: str) -> bool:
    return bool(st.session_state.get(f"{key}.playing"))


def stop_playing(key: str) -> None:
    st.session_state.pop(f"{key}.playing", None)


def toggle_play(key: str, steps: list[int]) -> None:
    state = st.session_state
    if playing(key):
        stop_playing(key)
        return
    state[f"{key}.playing"], state[f"{key}.played_at"] = True, time.monotonic()
    if state.get(key) == steps[-1]:
        state[key] = steps[0]  # from the start, not from the end


def _played_on(steps: list[int], key: str, step: int) -> int:
    """While it plays: the next saved step once a second, and at the last one
    the play ends (a full rerun, so the page stops redrawing)."""
    state = st.session_state
    if not playing(key) or time.monotonic() - state.get(f"{key}.played_at", 0.0) < 0.8 * PLAY_SECONDS:
        return step
    later = [s for s in steps if s > step]
    if not later:
        stop_playing(key)
        st.rerun()
    state[f"{key}.played_at"] = time.monotonic()
    state[key] = later[0]
    return later[0]


def _keep_in_address(step: int, steps: list[int], param: str) -> None:
    if step == steps[-1]:  # the newest: a link without a step keeps following training
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != str(step):
        st.query_params[param] = str(step)


def step_player(label: str, steps: list[int], key: str, *, param: str = STEP_PARAM, what: str | None = None,
                play_col=None, slider_col=None, help: str | None = None) -> int:
    """The step shown of ``steps`` (in order, at least one), with a slider
    where there is a choice, and a Play / Pause button in ``play_col`` when
    given. With a single step, ``what`` names it in a caption ("the only
    <what> so far")."""
    step = shown_step(steps, key, param)
    if play_col is not None:
        step = _played_on(steps, key, step)
    if len(steps) == 1:
        if what:
            st.caption(f"{label}: {steps[0]} (the only {what} so far)")
    else:
        now_playing = playing(key)
        if play_col is not None:
            if play_col.button("Pause" if now_playing else "Play", key=f"{key}.play",
                               icon=":material/pause:" if now_playing else ":material/play_arrow:",
                               on_click=toggle_play, args=(key, steps), width="stretch",
                               help="Step through every saved evaluation, one a second."):
                st.rerun()  # a timer that redraws the page starts or stops with the whole page
        (slider_col or st).select_slider(label, options=steps, key=key, disabled=now_playing, help=help)
    _keep_in_address(step, steps, param)
    return step
