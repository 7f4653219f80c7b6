"""Training curves as Altair charts, from a run's metric records.

Each builder takes the records (a list of dicts as written to metrics.jsonl)
or the frame ``metrics_frame`` makes of them, so the live view, the Runs page
and the CSV download all read the same table.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import altair as alt
import pandas as pd

from ..tables import LR_PREFIX, metrics_frame


# what each overlay-able metric is called, and which column holds its 95% half-width
METRICS: dict[str, tuple[str, str | None]] = {
    "test_loss": ("test loss", "test_err"),
    "test_acc": ("test accuracy", "test_acc_err"),
    "train_loss": ("train loss", None),
    "train_acc": ("train accuracy", None),
}

Records = Sequence[Mapping] | pd.DataFrame


def _frame(data: Records) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else metrics_frame(data)


def _long(frame: pd.DataFrame, series: Mapping[str, tuple[str, str | None]],
          bounds: tuple[float | None, float | None] = (None, None)) -> pd.DataFrame:
    """Stack columns into (step, series, value, lower, upper); the band is
    value ± half-width where a half-width column is given, else empty, and
    is cut to ``bounds`` (a loss is never below 0, an accuracy never above 1)."""
    parts = []
    for column, (label, err) in series.items():
        if column not in frame:
            continue
        part = pd.DataFrame({"step": frame["step"], "series": label, "value": frame[column]})
        if err and err in frame:
            part["lower"] = (frame[column] - frame[err]).clip(lower=bounds[0], upper=bounds[1])
            part["upper"] = (frame[column] + frame[err]).clip(lower=bounds[0], upper=bounds[1])
        else:
            part["lower"] = math.nan
            part["upper"] = math.nan
        parts.append(part.dropna(subset=["value"]))
    if not parts:
        return pd.DataFrame(columns=["step", "series", "value", "lower", "upper"])
    return pd.concat(parts, ignore_index=True)


# fixed colours, so a series looks the same in every chart and under any theme
COLORS = {"train loss (each step)": "#c5cad6", "train loss": "#3b5bdb", "test loss": "#e8590c",
          "train accuracy": "#3b5bdb", "test accuracy": "#e8590c"}
STEP_AXIS = alt.Axis(tickMinStep=1, format="d")


RAW = "train loss (each step)"


def _band_chart(long: pd.DataFrame, y_title: str, title: str, order: list[str],
                y_domain: tuple[float, float] | None = None) -> alt.LayerChart:
    color = alt.Color("series:N", title=None, sort=order,
                      scale=alt.Scale(domain=order, range=[COLORS.get(s, "#868e96") for s in order]),
                      legend=alt.Legend(orient="bottom", symbolOpacity=1))
    y_scale = alt.Scale(domain=list(y_domain)) if y_domain else alt.Scale(zero=False)
    base = alt.Chart().encode(x=alt.X("step:Q", title="step", axis=STEP_AXIS))
    band = base.mark_area(opacity=0.2, clip=True).encode(
        y=alt.Y("lower:Q", title=y_title, scale=y_scale), y2="upper:Q", color=color,
    ).transform_filter("isValid(datum.lower) && isFinite(datum.lower)")
    line = base.mark_line(point=True, clip=True).encode(
        y=alt.Y("value:Q", title=y_title, scale=y_scale), color=color,
        tooltip=[alt.Tooltip("series:N"), alt.Tooltip("step:Q"), alt.Tooltip("value:Q", format=".4f"),
                 alt.Tooltip("lower:Q", format=".4f", title="95% low"),
                 alt.Tooltip("upper:Q", format=".4f", title="95% high")],
    ).transform_filter(f"datum.series != '{RAW}'")
    layers = [band, line]
    if RAW in order:  # every step: a thin line under the rest, no dots
        layers.insert(0, base.mark_line(clip=True, strokeWidth=1).encode(
            y=alt.Y("value:Q", title=y_title, scale=y_scale), color=color,
        ).transform_filter(f"datum.series == '{RAW}'"))
    # height is the whole chart's (legend included) under Streamlit's theme, so leave room
    return alt.layer(*layers, data=long).properties(title=title, height=340)


def loss_chart(data: Records, step_losses: Sequence[tuple[int, float]] | None = None) -> alt.LayerChart:
    """Train and test loss over steps, the test loss with its 95% band
    (test_loss ± test_err). ``step_losses`` adds the raw per-step loss, so a
    live chart moves between evaluations."""
    long = _long(_frame(data), {"train_loss": ("train loss", None), "test_loss": ("test loss", "test_err")},
                 bounds=(0.0, None))
    order = ["train loss", "test loss"]
    if step_losses:
        raw = pd.DataFrame(list(step_losses), columns=["step", "value"])
        raw["series"] = RAW
        raw["lower"] = raw["upper"] = math.nan
        long = pd.concat([raw[long.columns], long], ignore_index=True)
        order = [RAW] + order
    return _band_chart(long, "loss", "Loss (band: 95% interval of the test mean)", order)


def accuracy_chart(data: Records) -> alt.LayerChart:
    """Train and test accuracy over steps, the test accuracy with its 95% band."""
    long = _long(_frame(data), {"train_acc": ("train accuracy", None),
                                "test_acc": ("test accuracy", "test_acc_err")}, bounds=(0.0, 1.0))
    return _band_chart(long, "accuracy", "Query accuracy (band: 95% interval of the test mean)",
                       ["train accuracy", "test accuracy"], y_domain=(0.0, 1.0))


def inner_lr_frame(data: Records) -> pd.DataFrame:
    """(step, param, lr): one row per evaluation and adapted tensor."""
    frame = _frame(data)
    cols = [c for c in frame.columns if c.startswith(LR_PREFIX)]
    if not cols:
        return pd.DataFrame(columns=["step", "param", "lr"])
    long = frame.melt(id_vars=["step"], value_vars=cols, var_name="param", value_name="lr")
    long["param"] = long["param"].str.slice(len(LR_PREFIX))
    return long.dropna(subset=["lr"]).reset_index(drop=True)


def inner_lr_chart(data: Records) -> alt.Chart:
    """Learned inner learning rates over steps, one line per adapted tensor
    (the mean rate of the tensor in per_param mode)."""
    long = inner_lr_frame(data)
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=STEP_AXIS),
        y=alt.Y("lr:Q", title="inner learning rate", scale=alt.Scale(zero=False)),
        color=alt.Color("param:N", title="parameter", legend=alt.Legend(orient="right", labelLimit=300)),
        tooltip=["param:N", "step:Q", alt.Tooltip("lr:Q", format=".5f")],
    ).properties(title="Learned inner learning rates", height=300)


def overlay_frame(runs: Mapping[str, Records], metric: str = "test_loss") -> pd.DataFrame:
    """(run, step, value, lower, upper) for one metric of several runs."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    label, err = METRICS[metric]
    bounds = (0.0, 1.0) if metric.endswith("acc") else (0.0, None)
    parts = []
    for run, data in runs.items():
        long = _long(_frame(data), {metric: (label, err)}, bounds)
        long.insert(0, "run", run)
        parts.append(long.drop(columns="series"))
    if not parts:
        return pd.DataFrame(columns=["run", "step", "value", "lower", "upper"])
    return pd.concat(parts, ignore_index=True)


def overlay_chart(runs: Mapping[str, Records], metric: str = "test_loss") -> alt.LayerChart:
    """One metric of several runs on shared axes, each with its 95% band
    where the metric has one."""
    frame = overlay_frame(runs, metric)
    label, _ = METRICS[metric]
    y_scale = alt.Scale(domain=[0, 1]) if metric.endswith("acc") else alt.Scale(zero=False)
    color = alt.Color("run:N", title="run", scale=alt.Scale(scheme="tableau10"),
                      legend=alt.Legend(orient="bottom", columns=1, labelLimit=600, symbolOpacity=1))
    base = alt.Chart().encode(x=alt.X("step:Q", title="step", axis=STEP_AXIS))
    band = base.mark_area(opacity=0.15, clip=True).encode(
        y=alt.Y("lower:Q", title=label, scale=y_scale), y2="upper:Q", color=color,
    ).transform_filter("isValid(datum.lower) && isFinite(datum.lower)")
    line = base.mark_line(point=True, clip=True).encode(
        y=alt.Y("value:Q", title=label, scale=y_scale), color=color,
        tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4f", title=label)],
    )
    return alt.layer(band, line, data=frame).properties(title=f"{label.capitalize()} over steps", height=420)
