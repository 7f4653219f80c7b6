"""The ablation's tables and chart: accuracy at 0° and on rotated queries per first layer × head, and the gains.

Pure functions of an ``msr.analysis.ablation.Ablation`` (and a sweep's rates.json);
tests build them by hand.
"""
from __future__ import annotations

import json
import math
from typing import Mapping

import altair as alt
import pandas as pd

from ..analysis.ablation import Ablation, Interval, setting_label
from ..core.choices import CONV_LAYERS, HEAD_LAYERS
from .style import readable

UPRIGHT, ROTATED = "0° (upright queries)", "rotated queries"
PART_COLORS = {UPRIGHT: "#868e96", ROTATED: "#3b5bdb"}
SETTING_COLUMNS = ["first layer", "head", "inner rate", "runs", "accuracy at 0°", "accuracy rotated", "gain rotated",
                   "gain at 0°", "rotation-specific gain"]
FACTOR_COLUMNS = ["change", "gain on rotated queries", "gain at 0°", "rotation-specific gain", "seeds"]


def _layer(registry, name: str | None) -> str:
    """The layer's name without the word its column already says ("Kronecker-U", "plain")."""
    if name not in registry:
        return "(fixed)"
    return registry[name].label.replace(" linear head", "").replace(" head", "").replace(" conv", "")


def settings_frame(result: Ablation) -> pd.DataFrame:
    """One row per setting: its chosen rate, accuracy at 0° and on rotated
    queries (mean over seeds ± 95%, as text), and its gains over the plain
    model (paired by seed; the plain model's row has none)."""
    rows = []
    for s in result.settings:
        up, rot = Interval.of(list(s.upright.values())), Interval.of(list(s.rotated.values()))
        gain = result.gains.get(setting_label(s.setting))
        rows.append({"first layer": _layer(CONV_LAYERS, s.setting.get("conv_layer")),
                     "head": _layer(HEAD_LAYERS, s.setting.get("head_layer")),
                     "inner rate": s.rate, "runs": up.n,
                     "accuracy at 0°": up.text(signed=False), "accuracy rotated": rot.text(signed=False),
                     "gain rotated": gain.rotated.text() if gain else "baseline" if s is result.baseline else "–",
                     "gain at 0°": gain.upright.text() if gain else "",
                     "rotation-specific gain": gain.specific.text() if gain else ""})
    return pd.DataFrame(rows, columns=SETTING_COLUMNS)


def factors_frame(result: Ablation) -> pd.DataFrame:
    """The main effects: each change averaged over the other factor's values."""
    rows = [{"change": e.name, "gain on rotated queries": e.rotated.text(), "gain at 0°": e.upright.text(),
             "rotation-specific gain": e.specific.text(), "seeds": e.rotated.n} for e in result.factors]
    return pd.DataFrame(rows, columns=FACTOR_COLUMNS)


def accuracy_frame(result: Ablation) -> pd.DataFrame:
    """Long form (setting, part, mean, low, high, n) for the chart, the
    interval cut to [0, 1]."""
    rows = []
    for s in result.settings:
        for part, values in ((UPRIGHT, s.upright), (ROTATED, s.rotated)):
            i = Interval.of(list(values.values()))
            if not i.n:
                continue
            half = i.half if math.isfinite(i.half) else 0.0
            rows.append({"setting": setting_label(s.setting), "part": part, "mean": i.mean,
                         "low": max(0.0, i.mean - half), "high": min(1.0, i.mean + half), "n": i.n})
    return pd.DataFrame(rows, columns=["setting", "part", "mean", "low", "high", "n"])


def accuracy_chart(frame: pd.DataFrame, bar: int = 22):
    """Accuracy at 0° and on rotated queries side by side for every setting,
    each with its 95% interval over seeds; one row per setting, so its name
    is never dropped or cut."""
    order = list(dict.fromkeys(frame["setting"]))
    y = alt.Y("setting:N", sort=order, title=None, axis=alt.Axis(labelLimit=0))
    offset = alt.YOffset("part:N", sort=[UPRIGHT, ROTATED])
    color = alt.Color("part:N", title=None, sort=[UPRIGHT, ROTATED], legend=alt.Legend(orient="bottom"),
                      scale=alt.Scale(domain=[UPRIGHT, ROTATED], range=[PART_COLORS[UPRIGHT], PART_COLORS[ROTATED]]))
    x = alt.X("mean:Q", title="test accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    tooltip = [alt.Tooltip("setting:N", title="model"), alt.Tooltip("part:N", title="queries"),
               alt.Tooltip("mean:Q", format=".3f", title="mean"), alt.Tooltip("low:Q", format=".3f", title="95% low"),
               alt.Tooltip("high:Q", format=".3f", title="95% high"), alt.Tooltip("n:Q", title="seeds")]
    bars = alt.Chart(frame).mark_bar().encode(y=y, yOffset=offset, x=x, color=color, tooltip=tooltip)
    whiskers = alt.Chart(frame).mark_rule(strokeWidth=2, color="#212529").encode(
        y=y, yOffset=offset, x="low:Q", x2="high:Q", tooltip=tooltip)
    # under Streamlit's theme the height is the whole chart's: title, axis and legend included
    chart = alt.layer(bars, whiskers).properties(
        title="Accuracy at 0° and on rotated queries, mean over seeds (whiskers: 95% interval)",
        height=2 * bar * max(1, len(order)) + 110)
    return readable(chart)


def rates_frame(rates: Mapping | None, settings: list[dict]) -> pd.DataFrame:
    """One row per setting: each candidate inner rate's final validation
    accuracy (empty: diverged, failed or not run yet) and the one chosen,
    marked when it is the smallest or largest tried (the best rate may then
    lie beyond the candidates)."""
    candidates = (rates or {}).get("candidates") or {}
    chosen = (rates or {}).get("chosen") or {}
    values = sorted({float(r) for accs in candidates.values() for r in accs})
    rows = []
    for setting in settings:
        group = json.dumps(setting, sort_keys=True)
        accs = candidates.get(group, {})
        row = {"model": setting_label(setting)}
        for v in values:
            acc = accs.get(f"{v:g}")
            row[f"{v:g}"] = None if acc is None else float(acc)
        row["chosen"] = f"{chosen[group]:g}" if group in chosen else "none trained"
        if group in chosen and len(values) > 1 and chosen[group] in (values[0], values[-1]):
            row["chosen"] += " (the " + ("smallest" if chosen[group] == values[0] else "largest") + " tried)"
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", *[f"{v:g}" for v in values], "chosen"])
