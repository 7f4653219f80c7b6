"""What the Sweeps page shows of a sweep: its points as tables, curves over seeds, a heat table.

Every point of a sweep is read once into a :class:`msr.runner.sweep.results.PointRun` (``point_runs``);
every frame and chart below is a pure function of those (or of the frames
made from them), so tests build them by hand. Tables use the fields' form
labels, never raw field names.
"""
from __future__ import annotations

import math
import statistics
from typing import Iterable, Mapping, Sequence

import altair as alt
import pandas as pd

from ..mnist.config import RunConfig
from ..core.choices import ARCHITECTURES
from ..core.settings import specs
from ..core.stats import t_halfwidth
from ..runner.sweep.results import PointRun
from .style import NORMAL, readable

STEP_AXIS = alt.Axis(format="d", tickMinStep=1)
METRICS = {"test_acc": "test accuracy", "test_loss": "test loss"}
STATE_TEXT = {"missing": "not started"}
SEED, STATE, STEPS, PROGRESS, RUN, STAGE = "seed", "state", "steps", "progress", "run", "stage"
ACC, ACC_CI, LOSS, LOSS_CI, N, BEST = ("test accuracy", "accuracy ± 95%", "test loss", "loss ± 95%", "runs done",
                                       "best")


# ------------------------------------------------------------------ reading


# ------------------------------------------------------------------- labels
def field_label(name: str) -> str:
    """A RunConfig field as the Train form names it."""
    s = specs(RunConfig).get(name)
    return s.label if s else name


def value_text(name: str, value) -> str:
    if name == "arch" and value in ARCHITECTURES:
        return ARCHITECTURES[value].shown_as
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def group_label(setting: Mapping) -> str:
    """The values of a grid point, in grid order ('all' for a grid of seeds only)."""
    return " · ".join(value_text(k, v) for k, v in setting.items()) or "all"


def legend_title(fields: Sequence[str]) -> str:
    return " · ".join(field_label(f) for f in fields) or "setting"


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


# ------------------------------------------------------------------- tables
def progress_frame(runs: Iterable[PointRun], fields: Sequence[str]) -> pd.DataFrame:
    """One row per point: its grid values, seed, state, steps done and the
    last test accuracy. With a rate search, a stage column says which runs
    search (at which inner rate, scored on validation tasks)."""
    runs = list(runs)
    staged = any(r.rate is not None for r in runs)
    rows = []
    for r in runs:
        row = {field_label(f): value_text(f, r.setting.get(f)) for f in fields}
        done = f"{r.step} / {r.total}" if r.total else ""
        row.update({SEED: r.seed, STATE: STATE_TEXT.get(r.state, r.state), STEPS: done,
                    PROGRESS: min(1.0, r.step / r.total) if r.total else 0.0,
                    ACC: _num(r.last.get("test_acc")), RUN: r.run_id or ""})
        if staged:
            row[STAGE] = f"rate search, inner rate {r.rate:g}" if r.rate is not None else "result"
        rows.append(row)
    stage = [STAGE] if staged else []
    return pd.DataFrame(rows, columns=[*stage, *(field_label(f) for f in fields), SEED, STATE, STEPS, PROGRESS, ACC,
                                       RUN])


def finals_frame(runs: Iterable[PointRun], fields: Sequence[str]) -> pd.DataFrame:
    """One row per point with its last evaluation: the numbers of the CSV
    download and of the heat table (grid values kept as values)."""
    rows = []
    for r in runs:
        row = {field_label(f): r.setting.get(f) for f in fields}
        row.update({SEED: r.seed, STATE: r.state, "step": r.step, "total steps": r.total,
                    ACC: _num(r.last.get("test_acc")), ACC_CI: _num(r.last.get("test_acc_err")),
                    LOSS: _num(r.last.get("test_loss")), LOSS_CI: _num(r.last.get("test_err")),
                    RUN: r.run_id or ""})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*(field_label(f) for f in fields), SEED, STATE, "step", "total steps", ACC,
                                       ACC_CI, LOSS, LOSS_CI, RUN])


def clearly_best(frame: pd.DataFrame) -> int | None:
    """The row whose test accuracy is clearly the highest: its 95% interval
    lies above every other setting's. None when the intervals overlap, when a
    setting has no interval (fewer than two runs), or with fewer than two
    settings measured: then no setting is clearly best."""
    done = frame[frame[ACC].notna()]
    if len(done) < 2 or done[ACC_CI].isna().any():
        return None
    acc, half = done[ACC].astype(float), done[ACC_CI].astype(float)
    top = acc.idxmax()
    others = done.index != top
    return top if (acc[top] - half[top] > (acc[others] + half[others])).all() else None


def groups_frame(summaries: Iterable[Mapping], fields: Sequence[str]) -> pd.DataFrame:
    """One row per grid point from ``Group.summary()``: completed runs, mean
    test accuracy and loss with their 95% intervals over seeds; a setting
    whose interval lies above every other's is marked best (clearly_best)."""
    rows = []
    for s in summaries:
        acc, loss = s.get("test_acc") or {}, s.get("test_loss") or {}
        row = {field_label(f): value_text(f, (s.get("setting") or {}).get(f)) for f in fields}
        row.update({N: s.get("n", 0), ACC: _num(acc.get("mean")), ACC_CI: _num(acc.get("ci95")),
                    LOSS: _num(loss.get("mean")), LOSS_CI: _num(loss.get("ci95"))})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*(field_label(f) for f in fields), N, ACC, ACC_CI, LOSS, LOSS_CI])
    frame.insert(0, BEST, "")
    best = clearly_best(frame)
    if best is not None:
        frame.loc[best, BEST] = "★ best"
    return frame


# ------------------------------------------------------------------- curves
def curves_frame(runs: Iterable[PointRun]) -> pd.DataFrame:
    """Long form (group, seed, run, step, test_acc, test_loss): every
    evaluation of every point that has one."""
    rows = [{"group": group_label(r.setting), "seed": r.seed, "run": r.run_id or "", "step": int(m["step"]),
             "test_acc": _num(m.get("test_acc")), "test_loss": _num(m.get("test_loss"))}
            for r in runs for m in r.metrics]
    return pd.DataFrame(rows, columns=["group", "seed", "run", "step", "test_acc", "test_loss"])


def mean_frame(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """(group, step, n, mean, lower, upper): the mean over the seeds that
    reached each step, with the 95% t-interval of that mean (none for one
    seed), cut to what the metric can be."""
    import torch

    cols = ["group", "step", "n", "mean", "lower", "upper"]
    if curves.empty:
        return pd.DataFrame(columns=cols)
    hi = 1.0 if metric == "test_acc" else math.inf
    rows = []
    for (group, step), part in curves.dropna(subset=[metric]).groupby(["group", "step"], sort=False):
        values = part[metric].astype(float).tolist()
        mean = statistics.fmean(values)
        half = t_halfwidth(torch.tensor(values, dtype=torch.float64)) if len(values) > 1 else math.nan
        lower, upper = (math.nan, math.nan) if math.isnan(half) else (max(0.0, mean - half), min(hi, mean + half))
        rows.append({"group": group, "step": int(step), "n": len(values), "mean": mean, "lower": lower,
                     "upper": upper})
    return pd.DataFrame(rows, columns=cols).sort_values(["group", "step"], kind="stable", ignore_index=True)


def _seeds_scale(values: pd.Series) -> alt.Scale:
    """A loss axis spanning what the seeds recorded: with few seeds the t
    interval can be many times wider than the data, and would flatten it."""
    values = values.dropna().astype(float)
    if values.empty:
        return alt.Scale(zero=False)
    lo, hi = float(values.min()), float(values.max())
    pad = 0.05 * (hi - lo) or 0.05 * abs(hi) or 0.05
    return alt.Scale(domain=[max(0.0, lo - pad), hi + pad], nice=False)


def curves_chart(curves: pd.DataFrame, metric: str, order: Sequence[str], legend: str = "setting",
                 each_seed: bool = False, height: int = 420):
    """One metric over steps, one colour per group in ``order``: the mean
    over seeds with its 95% band, or (``each_seed``) every seed's own line.
    The loss axis spans the seeds' values; a wider band is cut at its edge."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    label = METRICS[metric]
    y_scale = alt.Scale(domain=[0, 1]) if metric == "test_acc" else _seeds_scale(curves[metric])
    color = alt.Color("group:N", title=legend, sort=list(order), scale=alt.Scale(domain=list(order),
                                                                                 scheme="tableau10"),
                      legend=alt.Legend(orient="bottom", symbolOpacity=1,
                                        columns=min(len(order), 3 if max(map(len, order), default=0) <= 16 else 2)
                                        or 1))
    x = alt.X("step:Q", title="step", axis=STEP_AXIS)
    if each_seed:
        data = curves.dropna(subset=[metric])
        chart = alt.Chart(data).mark_line(point=True, clip=True, strokeWidth=1.5).encode(
            x=x, y=alt.Y(f"{metric}:Q", title=label, scale=y_scale), color=color, detail="run:N",
            tooltip=[alt.Tooltip("group:N", title=legend), "seed:Q", "step:Q",
                     alt.Tooltip(f"{metric}:Q", format=".4f", title=label), "run:N"])
        title = f"{label.capitalize()}, each seed"
    else:
        data = mean_frame(curves, metric)
        base = alt.Chart(data).encode(x=x)
        band = base.mark_area(opacity=0.18, clip=True).encode(
            y=alt.Y("lower:Q", title=label, scale=y_scale), y2="upper:Q", color=color,
        ).transform_filter("isValid(datum.lower) && isFinite(datum.lower)")
        line = base.mark_line(point=True, clip=True).encode(
            y=alt.Y("mean:Q", title=label, scale=y_scale), color=color,
            tooltip=[alt.Tooltip("group:N", title=legend), "step:Q", alt.Tooltip("n:Q", title="seeds"),
                     alt.Tooltip("mean:Q", format=".4f", title="mean"),
                     alt.Tooltip("lower:Q", format=".4f", title="95% low"),
                     alt.Tooltip("upper:Q", format=".4f", title="95% high")])
        chart = alt.layer(band, line)
        title = f"{label.capitalize()}: mean, 95% band"
    return readable(chart.properties(title=title, height=height))


# --------------------------------------------------------------- heat table
def heat_frame(finals: pd.DataFrame, rows: str, cols: str, where: Mapping | None = None) -> pd.DataFrame:
    """(row, col, acc, n, text): the mean final test accuracy of the
    completed runs in each cell of two grid columns (by their labels); the
    other grid columns are held at ``where`` (label -> value) or averaged."""
    out_cols = ["row", "col", "acc", "n", "text"]
    if finals.empty:
        return pd.DataFrame(columns=out_cols)
    done = finals[(finals[STATE] == "completed") & finals[ACC].notna()]
    for label, value in (where or {}).items():
        done = done[done[label] == value]
    row_order = list(dict.fromkeys(finals[rows]))
    col_order = list(dict.fromkeys(finals[cols]))
    out = []
    for rv in row_order:
        for cv in col_order:
            cell = done[(done[rows] == rv) & (done[cols] == cv)][ACC].astype(float)
            acc = float(cell.mean()) if len(cell) else math.nan
            out.append({"row": rv, "col": cv, "acc": acc, "n": len(cell),
                        "text": f"{acc:.3f} (n={len(cell)})" if len(cell) else "no run yet"})
    return pd.DataFrame(out, columns=out_cols)


def heat_chart(heat: pd.DataFrame, row_field: str, col_field: str):
    """Final test accuracy over two grid fields (field names), one cell per
    pair of values, each with its mean and run count."""
    data = heat.copy()
    data["row_text"] = [value_text(row_field, v) for v in data["row"]]
    data["col_text"] = [value_text(col_field, v) for v in data["col"]]
    rows, cols = list(dict.fromkeys(data["row_text"])), list(dict.fromkeys(data["col_text"]))
    base = alt.Chart(data).encode(
        x=alt.X("col_text:N", title=field_label(col_field), sort=cols, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("row_text:N", title=field_label(row_field), sort=rows))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("acc:Q", title="final test accuracy", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=alt.Legend(orient="right", format=".0%")),
        tooltip=[alt.Tooltip("row_text:N", title=field_label(row_field)),
                 alt.Tooltip("col_text:N", title=field_label(col_field)),
                 alt.Tooltip("acc:Q", format=".4f", title="mean test accuracy"), alt.Tooltip("n:Q", title="runs")])
    text = base.mark_text(fontSize=NORMAL.label + 1).encode(
        text="text:N", color=alt.condition("datum.acc > 0.55", alt.value("white"), alt.value("#212529")))
    # under Streamlit's theme the height is the whole chart's (title and axes included)
    height = 130 + 56 * len(rows)
    return readable(alt.layer(cells, text).properties(
        title="Final test accuracy, mean over seeds", height=height))


# ------------------------------------------------------------ time estimate


