"""Presentation mode, and how every page puts a chart on screen.

Presentation mode is for a projector: chart text and heights grow and the
sidebar starts collapsed. It is remembered in the URL (``?present=1``), so a
bookmarked or shared link opens the same way, and in the session, so moving
between pages keeps it.
"""
from __future__ import annotations

import math
from numbers import Number

import pandas as pd
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
# Presenting, tables are HTML (see table) and their text grows as the charts' does (18 px against 14).
_PRESENTING_CSS = """
[data-testid="stTable"] table, [data-testid="stTable"] th, [data-testid="stTable"] td { font-size: 1.15rem; }
"""


def page_style() -> None:
    st.html(f"<style>{_PAGE_CSS}{_PRESENTING_CSS if presenting() else ''}</style>")


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


def table(data, where=None, *, column_config: dict | None = None, column_order=None, placeholder: str | None = None,
          hide_index: bool = True, **kwargs) -> None:
    """Draw a table. st.dataframe draws on a canvas whose text no page style can enlarge, so in presentation
    mode the same columns, names and formats go to st.table (HTML, sized by _PRESENTING_CSS) instead; what
    is only interactive there (sorting, column widths, progress bars) is dropped."""
    where = where or st
    if not presenting():
        where.dataframe(data, column_config=column_config, column_order=column_order, placeholder=placeholder,
                        hide_index=hide_index, **kwargs)
        return
    where.table(text_table(data, column_config, column_order, placeholder), hide_index=hide_index)


def text_table(data, column_config: dict | None = None, column_order=None, placeholder: str | None = None
               ) -> pd.DataFrame:
    """``data`` as st.dataframe shows it, in text: the columns of ``column_order`` (all by default, less those
    ``column_config`` hides with None), named and formatted as ``column_config`` says, blanks as
    ``placeholder``."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    config = dict(column_config or {})
    columns = [c for c in (column_order if column_order is not None else frame.columns)
               if c in frame.columns and not (c in config and config[c] is None)]
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        spec = config.get(column)
        label = spec if isinstance(spec, str) else (spec or {}).get("label") or str(column)
        fmt = (spec or {}).get("type_config", {}).get("format") if isinstance(spec, dict) else None
        out[label] = [cell_text(v, fmt, placeholder) for v in frame[column]]
    return out


def cell_text(value, fmt: str | None = None, placeholder: str | None = None) -> str:
    """One cell as st.dataframe writes it: a printf format ("%.3f"), "percent", or as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return placeholder or ""
    if isinstance(value, Number) and not isinstance(value, bool):
        if fmt == "percent":
            return f"{value:.1%}"
        if fmt and "%" in fmt:
            try:
                return fmt % value
            except (TypeError, ValueError):
                pass
        if isinstance(value, float):
            return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 1e-4 or value == 0 else f"{value:.3g}"
    return str(value)
