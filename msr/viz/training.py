"""Training curves as Altair charts, from a run's metric records.

Each builder takes the records (a list of dicts as written to metrics.jsonl)
or the frame ``metrics_frame`` makes of them, so the live view, the Runs page
and the CSV download all read the same table.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from ..analysis.inspection import readable_name
from ..analysis.tables import LR_PREFIX, metrics_frame
from .style import readable


# what each overlay-able metric is called, and which column holds its 95% half-width
METRICS: dict[str, tuple[str, str | None]] = {
    "test_loss": ("test loss", "test_err"),
    "test_acc": ("test accuracy", "test_acc_err"),
    "train_loss": ("train loss", None),
    "train_acc": ("train accuracy", None),
    "cpu_percent": ("CPU use (% of a core)", None),  # the worker's, since the evaluation before (msr.runner.usage)
    "rss_mb": ("memory (MiB)", None),  # the worker's resident memory
}

Records = Sequence[Mapping] | pd.DataFrame


def _frame(data: Records) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else metrics_frame(data)


def _columns(data: Records, names: list[str]) -> pd.DataFrame:
    """Just these columns of the records, as numbers (NaN where a record has
    none): what one curve needs, far faster than the whole metrics frame of
    a long run."""
    if isinstance(data, pd.DataFrame):
        return data[[n for n in names if n in data]]
    out = {}
    for name in names:
        values = pd.to_numeric(pd.Series([r.get(name) for r in data], dtype=object), errors="coerce")
        out[name] = values.astype(float)
    frame = pd.DataFrame(out)
    if len(frame):
        frame = frame[frame["step"].notna()]
        frame["step"] = frame["step"].astype(int)
    return frame


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


MAX_CURVE_POINTS = 600  # points of one run's curve: about what a chart's width can show


def thin(part: pd.DataFrame, most: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """At most ``most`` rows of one run's curve, evenly spaced over its
    records, the first and last always kept (a chart a few hundred pixels
    wide shows no more, and the browser draws and hovers far faster)."""
    if len(part) <= most:
        return part
    keep = np.unique(np.linspace(0, len(part) - 1, most).round().astype(int))
    return part.iloc[keep]


# fixed colours, so a series looks the same in every chart and under any theme
COLORS = {"train loss (each step)": "#c5cad6", "train loss": "#3b5bdb", "test loss": "#e8590c",
          "train accuracy": "#3b5bdb", "test accuracy": "#e8590c"}
STEP_AXIS = alt.Axis(tickMinStep=1, format="d")


RAW = "train loss (each step)"


BAND_NOTE = "Band: 95% interval of the test mean"


def _title(text: str, note: str | None = None) -> alt.TitleParams:
    """A chart title, with what its band or smoothing means on a second, smaller line (a narrow chart
    would cut one long line)."""
    return alt.TitleParams(text, subtitle=note or alt.Undefined, subtitleFontSize=14, subtitleColor="#5f6470")


def _band_chart(long: pd.DataFrame, y_title: str, title: str, order: list[str],
                y_domain: tuple[float, float] | None = None) -> alt.LayerChart:
    color = alt.Color("series:N", title=None, sort=order,
                      scale=alt.Scale(domain=order, range=[COLORS.get(s, "#868e96") for s in order]),
                      legend=alt.Legend(orient="bottom", symbolOpacity=1))
    y_scale = alt.Scale(domain=list(y_domain)) if y_domain else alt.Scale(zero=False)
    long = pd.concat([thin(part) for _, part in long.groupby("series", sort=False)], ignore_index=True) \
        if len(long) else long  # each curve thinned to what the chart can show
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
    return readable(alt.layer(*layers, data=long).properties(title=_title(title, BAND_NOTE), height=340))


def loss_chart(data: Records, step_losses: Sequence[tuple[int, float]] | None = None) -> alt.LayerChart:
    """Train and test loss over steps, the test loss with its 95% band
    (test_loss ± test_err). ``step_losses`` adds the raw per-step loss, so a
    live chart moves between evaluations."""
    long = _long(_columns(data, ["step", "train_loss", "test_loss", "test_err"]),
                 {"train_loss": ("train loss", None), "test_loss": ("test loss", "test_err")}, bounds=(0.0, None))
    order = ["train loss", "test loss"]
    if step_losses:
        raw = pd.DataFrame(list(step_losses), columns=["step", "value"])
        raw["series"] = RAW
        raw["lower"] = raw["upper"] = math.nan
        long = pd.concat([raw[long.columns], long], ignore_index=True)
        order = [RAW] + order
    return _band_chart(long, "loss", "Loss", order)


def accuracy_chart(data: Records) -> alt.LayerChart:
    """Train and test accuracy over steps, the test accuracy with its 95% band."""
    long = _long(_columns(data, ["step", "train_acc", "test_acc", "test_acc_err"]),
                 {"train_acc": ("train accuracy", None), "test_acc": ("test accuracy", "test_acc_err")},
                 bounds=(0.0, 1.0))
    return _band_chart(long, "accuracy", "Query accuracy",
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
    long["parameter"] = long["param"].map(readable_name)  # "conv.weight" → "first conv weights"
    return readable(alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=STEP_AXIS),
        y=alt.Y("lr:Q", title="inner learning rate", scale=alt.Scale(zero=False)),
        color=alt.Color("parameter:N", title="parameter", legend=alt.Legend(orient="right", labelLimit=300)),
        tooltip=["parameter:N", "step:Q", alt.Tooltip("lr:Q", format=".5f", title="inner learning rate")],
    ).properties(title="Learned inner learning rates", height=300))


# ------------------------------------------------------------- smoothing
def typical_gap(steps: Sequence[float]) -> float:
    """The median distance between consecutive steps (1 when there is none):
    the spacing a smoothing weight refers to."""
    gaps = np.diff(np.unique(np.asarray(steps, dtype=float)))
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
    return float(np.median(gaps)) if len(gaps) else 1.0


def smooth(steps: Sequence[float], values: Sequence[float], weight: float,
           unit: float | None = None) -> np.ndarray:
    """A time-weighted exponential moving average, as W&B smooths by default.

    A previous point's weight falls by ``weight`` (0 = no smoothing, below 1)
    for every ``unit`` steps between it and the current point (``unit``
    defaults to the series' typical gap), so evaluations spaced unevenly, or
    runs evaluated at different intervals, are smoothed alike per step. The
    running weights are debiased, so the first points are not pulled towards
    zero. Points that are NaN or infinite are skipped and stay NaN in the
    result. ``steps`` must be increasing."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
    x = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    out = np.full(len(y), np.nan)
    valid = np.isfinite(y) & np.isfinite(x)
    if weight == 0.0:
        out[valid] = y[valid]
        return out
    unit = unit or typical_gap(x[valid])
    total = norm = 0.0
    last_x = None
    for i in np.flatnonzero(valid):
        decay = weight ** (max(0.0, x[i] - last_x) / unit) if last_x is not None else 0.0
        total = total * decay + y[i]
        norm = norm * decay + 1.0
        out[i] = total / norm
        last_x = x[i]
    return out


# --------------------------------------------------------------- overlay
OVERLAY_COLUMNS = ["run", "step", "value", "lower", "upper", "smoothed"]
def overlay_frame(runs: Mapping[str, Records], metric: str = "test_loss", smoothing: float = 0.0,
                  unit: float | None = None, most: int | None = MAX_CURVE_POINTS) -> pd.DataFrame:
    """(run, step, value, lower, upper, smoothed) for one metric of several
    runs. All runs are smoothed per the same ``unit`` of steps (default: the
    smallest typical evaluation gap among them), so their curves compare;
    each curve is smoothed over all its records and then thinned to ``most``
    points (None: all)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    label, err = METRICS[metric]
    bounds = (0.0, 1.0) if metric.endswith("acc") else (0.0, None)
    parts = []
    for run, data in runs.items():
        long = _long(_columns(data, ["step", metric] + ([err] if err else [])), {metric: (label, err)}, bounds)
        long.insert(0, "run", run)
        parts.append(long.drop(columns="series"))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=OVERLAY_COLUMNS)
    if unit is None:
        unit = min(typical_gap(p["step"]) for p in parts)
    for part in parts:
        part["smoothed"] = smooth(part["step"], part["value"], smoothing, unit)
    if most is not None:
        parts = [thin(p, most) for p in parts]
    return pd.concat(parts, ignore_index=True)[OVERLAY_COLUMNS]


HOVER_COLUMNS = ["step", "run", "at", "value", "raw", "line", "label"]


def hover_frame(frame: pd.DataFrame, smoothed: bool = False) -> pd.DataFrame:
    """What the hover rule shows at each step any run has: per run, the point
    nearest that step (a run is left out beyond its own first and last step).
    Columns: step (the rule's), run, at (the run's own step), value (as drawn),
    raw, line (1 for the highest value at that step, 2 for the next…) and
    label (the run's name and value, and the raw value when ``smoothed``).
    Linear in the points: each run's nearest point is found by a binary
    search over its sorted steps."""
    steps = np.unique(frame["step"].to_numpy(dtype=float))
    parts = []
    for run, part in frame.groupby("run", sort=False):
        part = part.sort_values("step", kind="stable")
        at = part["step"].to_numpy(dtype=float)
        inside = steps[(steps >= at[0]) & (steps <= at[-1])]
        right = np.clip(np.searchsorted(at, inside), 0, len(at) - 1)
        left = np.clip(right - 1, 0, len(at) - 1)
        nearest = np.where(np.abs(at[left] - inside) <= np.abs(at[right] - inside), left, right)
        value = part["smoothed"].to_numpy(dtype=float)[nearest]
        raw = part["value"].to_numpy(dtype=float)[nearest]
        parts.append(pd.DataFrame({"step": inside, "run": run, "at": at[nearest], "value": value, "raw": raw}))
    if not parts:
        return pd.DataFrame(columns=HOVER_COLUMNS)
    hover = pd.concat(parts, ignore_index=True)
    label = hover["run"].astype(str) + ": " + hover["value"].map("{:.4f}".format)
    if smoothed:
        label += " (raw " + hover["raw"].map("{:.4f}".format) + ")"
    hover["line"] = hover.groupby("step")["value"].rank(method="first", ascending=False).astype(int)
    hover["label"] = label
    return hover[HOVER_COLUMNS]


def overlay_chart(runs: Mapping[str, Records], metric: str = "test_loss", *, colors: Mapping[str, str] | None = None,
                  smoothing: float = 0.0, log_y: bool = False, log_x: bool = False) -> alt.LayerChart:
    """One metric of several runs on shared axes, each in its own colour
    (``colors``: run -> colour; a fixed scheme otherwise). Without smoothing
    each run has its 95% band where the metric has one; with smoothing the
    raw curve stays faint under the smoothed one. Hovering shows a rule at
    the nearest step with every run's name and value there. A log axis
    leaves out what it cannot draw (step 0, values at or below 0)."""
    frame = overlay_frame(runs, metric, smoothing)
    label, err = METRICS[metric]
    if log_x:
        frame = frame[frame["step"] > 0]
    if log_y:
        frame = frame[frame["value"] > 0].assign(lower=frame["lower"].where(frame["lower"] > 0))
    order = [run for run in runs if run in set(frame["run"])]
    colour_scale = (alt.Scale(domain=order, range=[colors.get(r, "#868e96") for r in order]) if colors
                    else alt.Scale(domain=order, scheme="tableau10"))
    color = alt.Color("run:N", title="run", scale=colour_scale, sort=order,
                      legend=alt.Legend(orient="bottom", columns=1, labelLimit=0, symbolOpacity=1,
                                        symbolStrokeWidth=4))
    # Domains given, not computed: the hover layers start empty, and an empty layer's extent is infinite (a
    # warning in the browser's console for every one).
    x_domain = _extent([frame["step"]])
    if metric.endswith("acc") and not log_y:
        y_scale = alt.Scale(domain=[0, 1])
    else:
        y_domain = _extent([frame[c] for c in ("value", "smoothed", "lower", "upper")])
        y_scale = alt.Scale(type="log" if log_y else "linear", zero=False, nice=True,
                            **({"domain": y_domain} if y_domain else {}))
    y_title = label
    base = alt.Chart().encode(x=_step_x("step", log_x, x_domain))
    layers = []
    smoothed = smoothing > 0
    if err and not smoothed:
        layers.append(base.mark_area(opacity=0.15, clip=True, tooltip=None).encode(
            y=alt.Y("lower:Q", title=y_title, scale=y_scale), y2="upper:Q", color=color,
        ).transform_filter("isValid(datum.lower) && isFinite(datum.lower)"))
    if smoothed:
        layers.append(base.mark_line(clip=True, opacity=0.3, strokeWidth=1.5, tooltip=None).encode(
            y=alt.Y("value:Q", title=y_title, scale=y_scale), color=color))
    layers.append(base.mark_line(point=not smoothed, clip=True, strokeWidth=2.5 if smoothed else 2,
                                 tooltip=None).encode(y=alt.Y("smoothed:Q", title=y_title, scale=y_scale), color=color))
    layers += _hover_layers(frame, color, smoothed, alt.Y("value:Q", title=y_title, scale=y_scale), log_x, x_domain)
    note = (f"Smoothed ({smoothing:g}); the faint lines are the evaluations themselves" if smoothed
            else BAND_NOTE if err else None)
    # the height is the whole chart's under Streamlit's theme: room for one legend line per run
    chart = alt.layer(*layers, data=frame).properties(
        title=_title(f"{label.capitalize()} over steps", note), height=380 + 30 * (len(order) + 1))
    return readable(chart)


def _extent(columns: list[pd.Series]) -> list[float] | None:
    """[lowest, highest] finite value of the columns (None: none; widened a little if they are all equal)."""
    values = pd.concat(columns, ignore_index=True).astype(float)
    values = values[np.isfinite(values)]
    if values.empty:
        return None
    low, high = float(values.min()), float(values.max())
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        low, high = (low / 2, high * 2) if low > 0 else (low - pad, high + pad)
    return [low, high]


def _step_x(field: str, log: bool, domain: list[float] | None = None) -> alt.X:
    scale = alt.Scale(type="log" if log else "linear", **({"domain": domain} if domain else {}))
    return alt.X(f"{field}:Q", title="step", axis=STEP_AXIS, scale=scale)


READOUT_LINE_PX = 20  # the hover readout's line height


def _hover_layers(frame: pd.DataFrame, color: alt.Color, smoothed: bool, y: alt.Y, log_x: bool,
                  x_domain: list[float] | None) -> list:
    """The rule at the step nearest the pointer, each run's point there, and a
    readout beside the rule: the step, then one line per run (name and value,
    highest first, each after a dot in its colour), stacked so that no two
    overlap however close the values are. ``color`` is the curves' own, legend
    included: layers that shared its scale but hid their legend made the
    legend's settings conflict."""
    if frame.empty:
        return []
    hover = hover_frame(frame, smoothed)
    steps = pd.DataFrame({"step": np.unique(hover["step"])})
    nearest = alt.selection_point(name="hover", nearest=True, on="pointerover", fields=["step"], empty=False,
                                  clear="pointerout")
    x, at = _step_x("step", log_x, x_domain), _step_x("at", log_x, x_domain)
    # invisible marks at mid-height, so the nearest one is the nearest step
    selectors = alt.Chart(steps).mark_point(size=0, opacity=0, tooltip=None).encode(x=x).add_params(nearest)
    rule = alt.Chart(steps).mark_rule(color="#868e96", strokeWidth=1.5, tooltip=None).encode(x=x).transform_filter(
        nearest)
    dots = alt.Chart(hover).mark_point(filled=True, size=90, opacity=1, stroke="white", strokeWidth=1,
                                       tooltip=None).encode(
        x=at, y=y, color=color).transform_filter(nearest)
    heading = steps.assign(run="", line=0, label=[f"step {s:g}" for s in steps["step"]])
    readout = pd.concat([heading, hover[["step", "run", "line", "label"]]], ignore_index=True)
    readout["top"] = 12 + readout["line"] * READOUT_LINE_PX
    # Beside the rule, on the side with more room: right of it in the left part of the chart, else left.
    first, last = frame["step"].min(), frame["step"].max()
    turn = first * (last / first) ** 0.6 if log_x and first > 0 else first + 0.6 * (last - first)
    layers = [selectors, rule, dots]
    for side, align, sign in (("<=", "left", 1), (">", "right", -1)):
        lines = alt.Chart(readout).encode(x=x, y=alt.Y("top:Q", scale=None)).transform_filter(
            nearest).transform_filter(f"datum.step {side} {turn}")
        labels = lines.encode(text="label:N")
        layers += [
            labels.mark_text(align=align, dx=sign * 24, fontSize=14, fontWeight="bold", stroke="white",
                             strokeWidth=5, strokeOpacity=0.9, strokeJoin="round", tooltip=None),
            labels.mark_text(align=align, dx=sign * 24, fontSize=14, fontWeight="bold", color="#1f2430",
                             tooltip=None),
            lines.transform_filter("datum.line > 0").mark_text(align="center", dx=sign * 12, fontSize=16,
                                                               text="●", tooltip=None).encode(color=color),
        ]
    return layers
