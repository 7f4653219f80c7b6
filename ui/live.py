"""Part of a page drawn live: redrawn on a timer while something trains.

Once it stops training the whole page reruns once, so it settles on the
outcome.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import streamlit as st

from msr.store.reader import load_run


def live(draw: Callable[[], None], refresh_s: float | None,
         still_active: Callable[[], bool] | None = None) -> None:
    """Call draw() in a fragment that redraws itself every refresh_s seconds
    (None: only when a widget inside it changes). After each draw,
    still_active() is asked whether what it shows still trains; once it says
    no, the whole page reruns. Without still_active the fragment never
    reruns the page."""

    @st.fragment(run_every=refresh_s)
    def fragment() -> None:
        draw()
        if still_active is not None and not still_active():
            st.rerun()

    fragment()


def run_training(path: str | Path) -> Callable[[], bool]:
    """A still_active for one run: whether its folder says it trains now."""
    return lambda: load_run(path, with_metrics=False).active
