"""Charts for the paper's synthetic problems (pure functions, no UI).

Frames first (the CSV downloads are exactly what a chart draws), then Altair
charts for the numbers and matplotlib Figures for the weight matrices.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import altair as alt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..synthetic import MODELS, TAPS, conv_score, toeplitz_filter

MODEL_ORDER = list(MODELS)
MODEL_LABELS = [MODELS[m].label for m in MODEL_ORDER]
# The convolution model gets the "right answer" colour, MSR-FC the accent.
MODEL_COLORS = {"MAML-FC": "#868e96", "MAML-LC": "#f08c00", "MAML-Conv": "#2f9e44", "MSR-FC": "#3b5bdb"}


def _label(model: str) -> str:
    return MODELS[model].label if model in MODELS else model


def _color_scale(labels: Iterable[str]) -> alt.Scale:
    """Fixed colours per model, listing only the models present (legend order = MODELS order)."""
    present = set(labels)
    shown = [lab for lab in MODEL_COLORS if lab in present] + sorted(present - set(MODEL_COLORS))
    return alt.Scale(domain=shown, range=[MODEL_COLORS.get(lab, "#495057") for lab in shown])


# -------------------------------------------------------------------- frames
def results_frame(summaries: Iterable[Mapping]) -> pd.DataFrame:
    """One row per run from ``SyntheticResult.summary()`` dicts, with the 95 %
    interval's ends (lo is clipped at 0: an MSE cannot be negative)."""
    rows = []
    for s in summaries:
        mse, err = s.get("test_mse"), s.get("test_err")
        half = err if err is not None and math.isfinite(err) else 0.0
        rows.append({"problem": s.get("problem"), "model": s.get("model"), "label": _label(s.get("model")),
                     "latent": s.get("latent"), "steps": s.get("steps"), "test_mse": mse, "test_err": err,
                     "lo": None if mse is None else max(mse - half, 0.0),
                     "hi": None if mse is None else mse + half,
                     "conv_score": s.get("conv_score"), "seconds": s.get("seconds")})
    cols = ["problem", "model", "label", "latent", "steps", "test_mse", "test_err", "lo", "hi", "conv_score", "seconds"]
    return pd.DataFrame(rows, columns=cols)


def history_frame(histories: Mapping[str, list[dict]]) -> pd.DataFrame:
    """Long format: one row per (model, evaluation step)."""
    rows = []
    for model, records in histories.items():
        for r in records:
            rows.append({"model": model, "label": _label(model), "step": r["step"], "test_mse": r["test_mse"],
                         "test_err": r["test_err"], "train_mse": r.get("train_mse"),
                         "conv_score": r.get("conv_score"), "u_conv_score": r.get("u_conv_score")})
    cols = ["model", "label", "step", "test_mse", "test_err", "train_mse", "conv_score", "u_conv_score"]
    return pd.DataFrame(rows, columns=cols)


def matrix_frame(w: torch.Tensor, name: str = "value") -> pd.DataFrame:
    """A matrix as (row, col, value) rows, for a CSV download of a heatmap."""
    a = w.detach().cpu().numpy()
    rows, cols = np.indices(a.shape)
    return pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), name: a.ravel()})


def symmetry_frame(columns: torch.Tensor) -> pd.DataFrame:
    """U's latent columns as (column, row, col, value) rows, numbered from 1 as in the figure."""
    parts = []
    for j, c in enumerate(columns.detach().cpu()):
        f = matrix_frame(c)
        f.insert(0, "column", j + 1)
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


# -------------------------------------------------------------- altair charts
def mse_bar_chart(frame: pd.DataFrame, title: str = "Test MSE after adaptation (95% interval)") -> alt.TopLevelMixin:
    """Bars of test MSE per model with 95 % error bars; one panel per problem
    when the frame holds several."""
    data = frame.dropna(subset=["test_mse"])
    order = [lab for lab in MODEL_LABELS if lab in set(data["label"])]
    x = alt.X("label:N", sort=order, title=None, axis=alt.Axis(labelAngle=0))
    tooltip = [alt.Tooltip("label:N", title="model"), alt.Tooltip("test_mse:Q", format=".4f"),
               alt.Tooltip("test_err:Q", title="± 95%", format=".4f"), alt.Tooltip("conv_score:Q", format=".3f"),
               alt.Tooltip("steps:Q")]
    base = alt.Chart(data)
    bars = base.mark_bar().encode(x=x, y=alt.Y("test_mse:Q", title="test MSE"),
                                  color=alt.Color("label:N", scale=_color_scale(order), legend=None), tooltip=tooltip)
    errors = base.mark_rule(strokeWidth=2, color="#1f2430").encode(x=x, y="lo:Q", y2="hi:Q")
    ticks = base.mark_tick(color="#1f2430", width=14).encode(x=x, y="hi:Q")
    layered = alt.layer(bars, errors, ticks).properties(width=max(90 * len(order), 200), height=260)
    if data["problem"].nunique() > 1:
        return (layered.facet(column=alt.Column("problem:N", title=None))
                .resolve_scale(y="independent").properties(title=title))
    return layered.properties(title=title)


def history_chart(frame: pd.DataFrame, field: str = "test_mse") -> alt.Chart:
    """A metric over the evaluation steps, one line per model."""
    titles = {"test_mse": "test MSE", "conv_score": "convolution score", "train_mse": "train MSE",
              "u_conv_score": "convolution score of U"}
    if field not in titles:
        raise ValueError(f"unknown field {field!r}; allowed: {', '.join(titles)}")
    data = frame.dropna(subset=[field])
    y = alt.Y(f"{field}:Q", title=titles[field])
    if field in ("conv_score", "u_conv_score"):
        y = alt.Y(f"{field}:Q", title=titles[field], scale=alt.Scale(domain=[0, 1]))
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("step:Q", title="outer step"), y=y,
        color=alt.Color("label:N", scale=_color_scale(data["label"]), title="model"),
        tooltip=["label:N", "step:Q", alt.Tooltip(f"{field}:Q", format=".4f")],
    ).properties(title=f"{titles[field]} over training", height=240)


# ---------------------------------------------------------- matplotlib figures
def _heatmap(ax, a: np.ndarray, title: str, lim: float | None = None):
    """Diverging colours centred on 0, so sign and sharing are both visible."""
    lim = lim or float(np.abs(a).max()) or 1.0
    im = ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest", aspect="equal")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def symmetry_figure(columns: torch.Tensor, step: int | None = None, max_columns: int = 12,
                    per_row: int = 4) -> Figure:
    """Each latent column of U reshaped to the 68×70 weight it adds per unit of
    v, with its own convolution score: a Toeplitz band is a shift-shared filter tap."""
    cols = columns.detach().cpu()
    shown = min(len(cols), max_columns)
    n_rows = math.ceil(shown / per_row)
    n_cols = min(per_row, shown)
    fig = Figure(figsize=(2.9 * n_cols, 2.9 * n_rows + 0.4), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i in range(n_rows * n_cols):
        ax = axes[i // n_cols][i % n_cols]
        if i >= shown:
            ax.set_axis_off()
            continue
        _heatmap(ax, cols[i].numpy(), f"column {i + 1}: score {conv_score(cols[i]):.3f}")
    head = "Symmetry matrix U, one column per panel (68×70)"
    if step is not None:
        head += f", step {step}"
    if shown < len(cols):
        head += f" — first {shown} of {len(cols)} columns"
    fig.suptitle(head, fontsize=10)
    return fig


def weight_figure(w: torch.Tensor, title: str = "Weight W (68×70)", zoom: int = 14) -> Figure:
    """The full weight and its top-left corner enlarged, where a 3-tap band
    is easy to see, labelled with the convolution score and the nearest filter."""
    a = w.detach().cpu()
    h = toeplitz_filter(a.double()).tolist()
    fig = Figure(figsize=(8.4, 3.6), layout="constrained")
    ax_full, ax_zoom = fig.subplots(1, 2, width_ratios=[1.6, 1])
    lim = float(a.abs().max()) or 1.0
    im = _heatmap(ax_full, a.numpy(), f"{title}: conv score {conv_score(a):.3f}", lim)
    z = min(zoom, a.shape[0])
    _heatmap(ax_zoom, a[:z, :z + TAPS - 1].numpy(), "top-left corner", lim)
    ax_zoom.set_xticks(range(0, z + TAPS - 1, 2))
    ax_zoom.set_yticks(range(0, z, 2))
    ax_zoom.tick_params(labelsize=7)
    fig.colorbar(im, ax=[ax_full, ax_zoom], shrink=0.8)
    fig.suptitle("nearest 3-tap filter h = [" + ", ".join(f"{v:+.3f}" for v in h) + "]", fontsize=9)
    return fig
