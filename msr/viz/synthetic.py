"""Charts for the paper's synthetic problems (pure functions, no UI).

Frames first (the CSV downloads are exactly what a chart draws), then Altair
charts for the numbers and matplotlib Figures for the weight matrices (1-D)
and the 3×3 filter banks (2-D rotation problems).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import altair as alt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..synthetic.rotation import ROTATION_PROBLEMS
from ..core.symmetry import C4, C8_RING, FilterRotation, orbit_score
from ..synthetic.data import TAPS
from ..synthetic.models import MODEL_ORDER, model_label
from ..synthetic.score import conv_score, toeplitz_filter
from .style import readable

# The convolution model gets the "right answer" colour, the MSR models that
# can learn the sharing the accent.
# Listed in legend order: the model a problem asks about first on the 1-D problems.
MODEL_COLORS = {"MSR-FC": "#3b5bdb", "MAML-FC": "#868e96", "MAML-LC": "#f08c00", "MAML-Conv": "#2f9e44",
                "MSR-Conv": "#ae3ec9", "MSR-Conv (dense U)": "#3b5bdb"}
# Headers a reader sees for the frames' columns (tooltips, axes).
FIELD_TITLES = {"label": "model", "step": "outer step", "steps": "steps", "test_mse": "test MSE",
                "test_err": "± 95%", "train_mse": "train MSE", "conv_score": "convolution score",
                "u_conv_score": "convolution score of U", "orbit_score": "orbit score",
                "equiv_error": "equivariance error", "seconds": "time (s)"}
LOG_SCALE = " (log scale)"


def _color_scale(labels: Iterable[str]) -> alt.Scale:
    """Fixed colours per model, listing only the models present (legend order = MODELS order)."""
    present = set(labels)
    shown = [lab for lab in MODEL_COLORS if lab in present] + sorted(present - set(MODEL_COLORS))
    return alt.Scale(domain=shown, range=[MODEL_COLORS.get(lab, "#495057") for lab in shown])


# -------------------------------------------------------------------- frames


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
def log_domain(values: Iterable[float]) -> list[float]:
    """Whole powers of ten around the positive values, so a log axis is
    labelled 0.1, 1, 10 and an MSE of 0.15 reads as clearly as one of 2.8."""
    positive = [float(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    if not positive:
        return [0.1, 10.0]
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    return [10.0 ** low, 10.0 ** max(high, low + 1)]


def log_axis(title: str, domain: list[float]) -> alt.Axis:
    """A log axis ticked at 1, 2, 5 × 10^k (fewer, rounder numbers than the
    default), its end labels kept inside the plot so the title above is never cut."""
    low, high = (round(math.log10(v)) for v in domain)
    ticks = [m * 10.0 ** k for k in range(low, high + 1) for m in (1, 2, 5) if m * 10.0 ** k <= domain[1]]
    return alt.Axis(title=title + LOG_SCALE, values=ticks, format="~g", labelFlush=True)


def mse_bar_chart(frame: pd.DataFrame, title: str = "Test MSE after adaptation (95% interval)") -> alt.TopLevelMixin:
    """Bars of test MSE per model with 95 % error bars on a log axis; one
    panel per problem when the frame holds several. An interval reaching
    below the axis (or to 0) is drawn down to the axis."""
    data = frame.dropna(subset=["test_mse"]).copy()
    present = set(data["label"])
    labels = [model_label(m) for m in MODEL_ORDER]
    order = [lab for lab in labels if lab in present] + sorted(present - set(labels))
    domain = log_domain([*data["test_mse"], *data["hi"]])
    data["lo"] = pd.to_numeric(data["lo"]).clip(lower=domain[0])
    x = alt.X("label:N", sort=order, title=None, axis=alt.Axis(labelAngle=0, labelLimit=0))
    y_scale = alt.Scale(type="log", domain=domain, clamp=True, nice=False)
    tooltip = [alt.Tooltip("label:N", title=FIELD_TITLES["label"]),
               alt.Tooltip("test_mse:Q", title=FIELD_TITLES["test_mse"], format=".4f"),
               alt.Tooltip("test_err:Q", title=FIELD_TITLES["test_err"], format=".4f")]
    for col in ("conv_score", "orbit_score", "equiv_error"):
        if col in data and data[col].notna().any():
            tooltip.append(alt.Tooltip(f"{col}:Q", title=FIELD_TITLES[col], format=".3f"))
    tooltip.append(alt.Tooltip("steps:Q", title=FIELD_TITLES["steps"]))
    base = alt.Chart(data)
    bars = base.mark_bar().encode(x=x, y=alt.Y("test_mse:Q", axis=log_axis(FIELD_TITLES["test_mse"], domain),
                                               scale=y_scale),
                                  color=alt.Color("label:N", scale=_color_scale(order), legend=None), tooltip=tooltip)
    errors = base.mark_rule(strokeWidth=2, color="#1f2430").encode(x=x, y=alt.Y("lo:Q", scale=y_scale), y2="hi:Q",
                                                                   tooltip=tooltip)
    ticks = base.mark_tick(color="#1f2430", width=14).encode(x=x, y=alt.Y("hi:Q", scale=y_scale))
    # Wide enough bands that the longest label ("MSR-Conv (dense U)") fits unbroken.
    band = 140 if any(len(lab) > 10 for lab in order) else 90
    layered = alt.layer(bars, errors, ticks).properties(width=max(band * len(order), 200), height=260)
    if data["problem"].nunique() > 1:
        return readable(layered.facet(column=alt.Column("problem:N", title=None))
                         .resolve_scale(y="independent").properties(title=title))
    return readable(layered.properties(title=title))


def history_chart(frame: pd.DataFrame, field: str = "test_mse") -> alt.Chart:
    """A metric over the evaluation steps, one line per model; an MSE on a
    log axis (the models end up orders of magnitude apart)."""
    if field not in ("test_mse", "train_mse", "conv_score", "u_conv_score"):
        raise ValueError(f"unknown field {field!r}; allowed: test_mse, train_mse, conv_score, u_conv_score")
    data = frame.dropna(subset=[field])
    title = FIELD_TITLES[field]
    if field in ("conv_score", "u_conv_score"):
        y = alt.Y(f"{field}:Q", title=title, scale=alt.Scale(domain=[0, 1]))
    else:
        domain = log_domain(data[field])
        y = alt.Y(f"{field}:Q", axis=log_axis(title, domain),
                  scale=alt.Scale(type="log", domain=domain, clamp=True, nice=False))
    return readable(alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("step:Q", title=FIELD_TITLES["step"]), y=y,
        color=alt.Color("label:N", scale=_color_scale(data["label"]), title=FIELD_TITLES["label"]),
        tooltip=[alt.Tooltip("label:N", title=FIELD_TITLES["label"]),
                 alt.Tooltip("step:Q", title=FIELD_TITLES["step"]),
                 alt.Tooltip(f"{field}:Q", title=title, format=".4f")],
    ).properties(title=f"{title} over training", height=240))


# ------------------------------------------------- the 2-D lens (rotation problems)
LENS_MEASURES = {"equiv": "equivariance error", "orbit": "orbit score"}


def lens_chart(frame: pd.DataFrame, measure: str = "equiv") -> alt.LayerChart:
    """One lens number over training: colour = model, dash = which layer it
    reads (adapted to test tasks, or generated by U from random v)."""
    if measure not in LENS_MEASURES:
        raise ValueError(f"unknown measure {measure!r}; allowed: {', '.join(LENS_MEASURES)}")
    data = frame[frame["measure"] == measure]
    layers = [lab for lab in ("adapted · 90°", "adapted · 45°", "from U · 90°") if lab in set(data["layer"])]
    top = max(1.0, float(data["value"].max())) if len(data) else 1.0
    # Two lines: in half a page's width at 1280 px one line would be cut.
    title = {"equiv": ["equivariance error", "0 = group conv, random ≈ 0.5–0.8"],
             "orbit": ["orbit score", "1 = rotated copies, random ≈ 0"]}[measure]
    # Legends on the right: below the plot they would take its height (the chart is fitted to its box).
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title=FIELD_TITLES["step"]),
        y=alt.Y("value:Q", title=LENS_MEASURES[measure], scale=alt.Scale(domain=[0, top])),
        color=alt.Color("label:N", scale=_color_scale(data["label"]), title="model"),
        tooltip=[alt.Tooltip("label:N", title="model"), alt.Tooltip("layer:N", title="layer"),
                 alt.Tooltip("step:Q", title=FIELD_TITLES["step"]),
                 alt.Tooltip("value:Q", title=LENS_MEASURES[measure], format=".3f")],
    )
    # Points as a layer of their own: on a line with points the dash legend loses its symbols.
    lines = base.mark_line(strokeWidth=2).encode(
        strokeDash=alt.StrokeDash("layer:N", sort=layers, title="layer read",
                                  scale=alt.Scale(domain=layers, range=[[1, 0], [6, 3], [2, 2]][:len(layers)])),
        detail="layer:N")
    points = base.mark_point(filled=True, size=28).encode(detail="layer:N")
    chart = alt.layer(lines, points).properties(title=title, height=260)
    return readable(chart)


# ---------------------------------------------------------- matplotlib figures
# Text sizes of the weight pictures: a page shows them about as wide as the figure, read from the back of a room.
MATRIX_FONT_PT = 13
MATRIX_HEAD_PT = 14


def _heatmap(ax, a: np.ndarray, title: str, lim: float | None = None):
    """Diverging colours centred on 0, so sign and sharing are both visible."""
    lim = lim or float(np.abs(a).max()) or 1.0
    im = ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest", aspect="equal")
    ax.set_title(title, fontsize=MATRIX_FONT_PT)
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
    head = "U, one column per panel (68×70)"
    if step is not None:
        head += f", step {step}"
    if shown < len(cols):
        head += f": first {shown} of {len(cols)}"
    fig.suptitle(head, fontsize=MATRIX_HEAD_PT)
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
    ax_zoom.tick_params(labelsize=MATRIX_FONT_PT - 2)
    bar = fig.colorbar(im, ax=[ax_full, ax_zoom], shrink=0.8)
    bar.ax.tick_params(labelsize=MATRIX_FONT_PT - 2)
    fig.suptitle("nearest 3-tap filter h = [" + ", ".join(f"{v:+.3f}" for v in h) + "]", fontsize=MATRIX_HEAD_PT)
    return fig


# ------------------------------------------- 3×3 filter banks (2-D problems)
ARRANGEMENTS = {"elements": "fields × group elements", "orbits": "matched rotation (orbits)"}
FILTER_FONT_PT = 13
CELL_INCHES = 0.55


def filter_rotation(problem: str) -> FilterRotation:
    """The rotation a bank's orbits are read under: 90° on C4, 45° (a shift of
    the ring of 8 neighbours) on C8 and D8."""
    return C8_RING if ROTATION_PROBLEMS[problem].rotations == 8 else C4


def element_grid(channels: int, order: int) -> np.ndarray:
    """Channel f·|G| + e at row f (field), column e (group element)."""
    if channels % order:
        raise ValueError(f"{channels} channels do not split into fields of {order} group elements")
    return np.arange(channels).reshape(-1, order)


@dataclass
class OrbitGrid:
    grid: np.ndarray  # (rows, order): the channel in each cell, -1 for none
    row_labels: list[str]
    score: float


def orbit_grid(filters: torch.Tensor, rotation: FilterRotation = C4) -> OrbitGrid:
    """Channels arranged by matched rotation, since a learned U may put the
    copies of one filter in any channels: each orbit starts a row, and column
    k holds the filter matched with the row's first one rotated k times.
    Orbits longer than the rotation's order wrap onto further rows ("…")."""
    c = filters.shape[0]
    w = filters.detach().reshape(c, 1, *filters.shape[-2:])
    orbits = orbit_score(w, rotation)
    n = rotation.order
    rows, labels = [], []
    for k, cycle in enumerate(sorted(orbits.cycles(), key=lambda cy: (-len(cy), cy[0])), start=1):
        for j in range(0, len(cycle), n):
            part = cycle[j:j + n]
            rows.append(part + [-1] * (n - len(part)))
            labels.append(f"orbit {k}" if j == 0 else "…")
    return OrbitGrid(np.array(rows, dtype=int), labels, orbits.score)


def _mosaic(filters: np.ndarray, grid: np.ndarray, scale: int = 4, gap: int = 1) -> np.ndarray:
    """The grid's 3×3 filters tiled into one image, each tap ``scale`` pixels
    wide, NaN (drawn blank) between cells and where a cell has no channel."""
    k = filters.shape[-1]
    cell = k * scale
    rows, cols = grid.shape
    out = np.full((rows * (cell + gap) - gap, cols * (cell + gap) - gap), np.nan)
    for r in range(rows):
        for col in range(cols):
            ch = grid[r, col]
            if ch < 0:
                continue
            tile = np.kron(filters[ch], np.ones((scale, scale)))
            out[r * (cell + gap):r * (cell + gap) + cell, col * (cell + gap):col * (cell + gap) + cell] = tile
    return out


def filter_bank_figure(filters: torch.Tensor, problem: str, arrange: str = "elements", title: str = "") -> Figure:
    """A bank of 3×3 filters (C, 1, 3, 3) of a 2-D problem, one cell per
    channel. ``elements``: rows are the 3 fields, columns the group elements,
    as the data are made, so a layer that shares like the data shows each row
    as rotated copies. ``orbits``: arranged by matched rotation (orbit_grid).
    The title carries the bank's orbit score."""
    if arrange not in ARRANGEMENTS:
        raise ValueError(f"unknown arrangement {arrange!r}; allowed: {', '.join(ARRANGEMENTS)}")
    group = ROTATION_PROBLEMS[problem]
    c, k = filters.shape[0], filters.shape[-1]
    a = filters.detach().cpu().double().reshape(c, k, k).numpy()
    rotation = filter_rotation(problem)
    step_deg = 360.0 / rotation.order
    if arrange == "elements":
        grid = element_grid(c, group.order)
        row_labels = [f"field {f + 1}" for f in range(grid.shape[0])]
        col_labels = [f"{(e % group.rotations) * group.degrees:g}°" for e in range(group.order)]
        xlabel = "rotation  |  mirrored, then rotation" if group.flips else "group element (rotation)"
        score = orbit_score(torch.from_numpy(a).reshape(c, 1, k, k), rotation).score
    else:
        og = orbit_grid(torch.from_numpy(a), rotation)
        grid, row_labels, score = og.grid, og.row_labels, og.score
        col_labels = [f"+{j * step_deg:g}°" for j in range(grid.shape[1])]
        xlabel = "rotation from the row's first"  # short: a long label would shrink the picture
    n_rows, n_cols = grid.shape
    scale, gap = 4, 1
    mosaic = _mosaic(a, grid, scale, gap)
    fig = Figure(figsize=(1.3 + n_cols * CELL_INCHES, 1.45 + n_rows * CELL_INCHES), layout="constrained")
    ax = fig.subplots()
    lim = float(np.abs(a).max()) or 1.0
    ax.imshow(mosaic, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest", aspect="equal")
    pitch = k * scale + gap
    centre = (k * scale - 1) / 2
    ax.set_xticks([j * pitch + centre for j in range(n_cols)], col_labels, fontsize=FILTER_FONT_PT)
    ax.set_yticks([r * pitch + centre for r in range(n_rows)], row_labels, fontsize=FILTER_FONT_PT)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if arrange == "elements" and group.flips:
        ax.axvline(group.rotations * pitch - (gap + 1) / 2, color="#1f2430", linewidth=1.5)
    ax.set_xlabel(xlabel, fontsize=FILTER_FONT_PT)
    head = f"{title}\n" if title else ""
    ax.set_title(f"{head}orbit score {score:.2f} ({step_deg:g}°)", fontsize=FILTER_FONT_PT, loc="left")
    return fig


def filters_frame(banks: Mapping[str, torch.Tensor], problem: str) -> pd.DataFrame:
    """Filter banks as (bank, channel, field, element, row, col, value) rows,
    the CSV of what the filter pictures draw."""
    group = ROTATION_PROBLEMS[problem]
    parts = []
    for name, filters in banks.items():
        c, k = filters.shape[0], filters.shape[-1]
        a = filters.detach().cpu().reshape(c, k, k).numpy()
        ch, rows, cols = np.indices(a.shape)
        parts.append(pd.DataFrame({"bank": name, "channel": ch.ravel(), "field": ch.ravel() // group.order + 1,
                                   "element": [group.element_label(int(e)) for e in (ch.ravel() % group.order)],
                                   "row": rows.ravel(), "col": cols.ravel(), "value": a.ravel()}))
    cols = ["bank", "channel", "field", "element", "row", "col", "value"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
