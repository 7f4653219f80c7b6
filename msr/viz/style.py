"""Chart text sizes every page shares, so a chart reads the same everywhere and from the back of a room.

Builders apply the normal sizes; the app applies the large ones again in
presentation mode (a later configure replaces an earlier one).
"""
from __future__ import annotations

from dataclasses import dataclass

import altair as alt


@dataclass(frozen=True)
class TextSizes:
    label: int  # axis tick labels and legend entries
    title: int  # axis and legend titles
    heading: int  # the chart's own title
    height_factor: float = 1.0  # how much taller than the builder drew it


NORMAL = TextSizes(label=14, title=15, heading=17)
LARGE = TextSizes(label=18, title=20, heading=22, height_factor=1.2)


def readable(chart, sizes: TextSizes = NORMAL, color: str | None = None):
    """The chart with legible text and legend labels never cut. ``color``
    (e.g. the theme's text colour) replaces the faint default grey."""
    ink = {"labelColor": color, "titleColor": color} if color else {}
    return (chart.configure_axis(labelFontSize=sizes.label, titleFontSize=sizes.title, labelFlush=False, **ink)
            .configure_legend(labelFontSize=sizes.label, titleFontSize=sizes.title, labelLimit=0, **ink)
            .configure_header(labelFontSize=sizes.title, titleFontSize=sizes.title, **ink)
            .configure_title(fontSize=sizes.heading, anchor="start", **({"color": color} if color else {})))


def taller(chart, factor: float):
    """A chart whose explicit height is scaled by ``factor``; charts of several
    views (concatenated, faceted) are returned as they are."""
    height = getattr(chart, "height", alt.Undefined)
    if factor == 1.0 or not isinstance(height, (int, float)) or isinstance(height, bool):
        return chart
    return chart.properties(height=round(height * factor))
