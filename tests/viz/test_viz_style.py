"""Chart text sizes and presentation heights."""
import altair as alt
import pandas as pd

from msr.viz.style import LARGE, NORMAL, readable, taller


def chart(height=200):
    return alt.Chart(pd.DataFrame({"x": [1, 2], "y": [3, 4]})).mark_line().encode(x="x", y="y").properties(
        height=height, title="t")


def test_readable_sets_every_text_size_and_a_later_call_wins():
    spec = readable(readable(chart()), LARGE, color="#262730").to_dict()["config"]
    assert spec["axis"]["labelFontSize"] == LARGE.label and spec["axis"]["titleFontSize"] == LARGE.title
    assert spec["title"]["fontSize"] == LARGE.heading and spec["legend"]["labelLimit"] == 0
    assert spec["axis"]["labelColor"] == "#262730"
    assert readable(chart()).to_dict()["config"]["axis"]["labelFontSize"] == NORMAL.label >= 14


def test_taller_scales_single_views_only():
    assert taller(chart(200), 1.2).to_dict()["height"] == 240
    assert taller(chart(200), 1.0).to_dict()["height"] == 200
    both = alt.hconcat(chart(), chart())
    assert taller(both, 1.2) is both
