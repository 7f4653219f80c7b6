"""How every Look-inside page opens (Data, Errors, Weights): its title at once, the plotting libraries loaded
under a spinner (seconds on a first visit), the run it shows, then its body, redrawn while the run trains."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from ui import present


def inspect_page(title: str, loading: str, key: str, body: Callable[[str], None], refresh_s: int, *,
                 caption: str | None = None, fold: bool = True, before: Callable | None = None) -> None:
    """``body(run path)`` for the chosen run, redrawn every ``refresh_s`` while it trains; ``fold``: in
    presentation mode the run picker folds away, so the picture is in the first screen; ``before(record)``:
    drawn once above the live part."""
    st.title(title)
    if caption and not present.presenting():
        st.caption(caption)
    with st.spinner(loading):  # imported here, not above: the title must show before matplotlib loads
        import msr.viz.inspect  # noqa: F401  (matplotlib: the slow part)
        from ui.inspect_widgets import render_run
        from ui.run_picker import select_run
    with present.folded("Run shown") if fold else st.container():
        rec = select_run(f"{key}_run")
    if rec is None:
        st.stop()
    if before is not None:
        before(rec)
    render_run(rec, body, key, refresh_s)
