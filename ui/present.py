"""Presentation mode, and how every page puts a chart on screen.

Presentation mode is for a projector: chart text and heights grow and the
sidebar starts collapsed. It is remembered in the URL (``?present=1``), so a
bookmarked or shared link opens the same way, and in the session, so moving
between pages keeps it.
"""
from __future__ import annotations

import streamlit as st

from msr.viz.style import LARGE, NORMAL, readable, taller

PARAM = "present"
KEY = "present.on"


def presenting() -> bool:
    if KEY not in st.session_state:
        st.session_state[KEY] = st.query_params.get(PARAM) == "1"
    return bool(st.session_state[KEY])


def keep_in_url() -> None:
    """Put the mode back in the URL after a page change cleared it."""
    if presenting():
        st.query_params[PARAM] = "1"
    elif PARAM in st.query_params:
        del st.query_params[PARAM]


def _toggled() -> None:
    st.session_state[KEY] = bool(st.session_state.get(f"{KEY}.widget"))
    keep_in_url()


def toggle() -> None:
    st.session_state[f"{KEY}.widget"] = presenting()
    st.toggle("Presentation mode", key=f"{KEY}.widget", on_change=_toggled,
              help="For a projector: larger chart text, taller charts, the sidebar folded away. "
                   "Kept in the page's address, so a link opens the same way.")


# Streamlit leaves about 100 px blank above a page's title; on a 720-px projector that is a chart's worth.
_PAGE_CSS = """
[data-testid="stMainBlockContainer"] { padding-top: 4rem; }  /* just below the 60-px header */
"""


def page_style() -> None:
    st.html(f"<style>{_PAGE_CSS}</style>")


def _ink() -> str | None:
    """The theme's own text colour, darker than the charts' default grey."""
    try:
        kind = st.context.theme.type
    except AttributeError:
        return None
    return {"light": "#262730", "dark": "#fafafa"}.get(kind)


def styled(chart):
    """The chart as this session shows it: its text (and, presenting, its height) sized for the room."""
    sizes = LARGE if presenting() else NORMAL
    return readable(taller(chart, sizes.height_factor), sizes, _ink())


def chart(chart_, where=None, **kwargs) -> None:
    """Draw an Altair chart in ``where`` (a column or container; the page by default), full width."""
    kwargs.setdefault("width", "stretch")
    (where or st).altair_chart(styled(chart_), **kwargs)


def folded(label: str):
    """Where a page's choices go: in presentation mode an expander that starts folded, so the picture is in
    the first screen of a projector; otherwise the page itself."""
    return st.expander(label, icon=":material/tune:") if presenting() else st.container()
