"""Charts for looking inside a run: data, errors, filters, activations and
symmetry matrices.

Altair charts carry their DataFrame as ``chart.data`` (the CSV download);
matplotlib Figures are built with ``Figure()`` and never registered with
pyplot, so nothing is kept alive after the caller drops them. Heatmaps of
signed weights use one colour scale centred on zero per figure, so cells
compare across panels, and their titles state its range. Figures are sized
so that their text stays legible when the page scales them to its width
(about 9 inches at 120 dpi).
"""
from __future__ import annotations

import math
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.inspection import Activations, Confusion, GeneratedFilters, SymmetryMatrix, readable_name

SIGNED = "RdBu_r"
POSITIVE = "viridis"
# Font sizes (points) of the figures: panel titles and ticks, axis and
# colour-bar labels, the figure's own title.
SMALL, MEDIUM, LARGE = 10, 12, 14
# What the rows and columns of each symmetry matrix index.
MATRIX_AXES = {"A": ("output channel", "output channel"), "B": ("input channel", "input channel"),
               "C": ("kernel position", "kernel position"), "U": ("weight entry", "latent coordinate")}
# measure: (chart title, its values as a tooltip names them); the axis says "relative distance", short
# enough to stay within the plot's height
DRIFT_MEASURES = {"rel_from_init": ("Distance from the first checkpoint, ‖X − X₀‖ / ‖X₀‖",
                                    "distance from the first checkpoint"),
                  "from_identity": ("Distance from the identity, ‖X − I‖ / ‖I‖",
                                    "distance from the identity")}
LOG_SPREAD = 10  # drift lines this many times apart get a log axis by default


# ----------------------------------------------------------------- helpers
def _grid(fig: Figure, rows: int, cols: int):
    return fig.subplots(rows, cols, squeeze=False)


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def symmetric_limit(*arrays: np.ndarray) -> float:
    """The half-range of a zero-centred colour scale that fits every value (1 when all are 0)."""
    m = max(float(np.nanmax(np.abs(a))) if a.size else 0.0 for a in arrays)
    return m if m > 0 else 1.0


def scale_text(limit: float) -> str:
    """A colour scale's range as a title says it: "colour scale ±0.18"."""
    return f"colour scale ±{limit:.2g}"


def _colorbar(fig: Figure, image, axes, label: str, shrink: float = 0.8) -> None:
    bar = fig.colorbar(image, ax=axes, shrink=shrink)
    bar.set_label(label, fontsize=MEDIUM)
    bar.ax.tick_params(labelsize=SMALL)


def _drop_unused(fig: Figure, axes, used: int) -> None:
    """Remove padding cells so the figure holds exactly one axes per panel."""
    for ax in axes.flat[used:]:
        fig.delaxes(ax)


def _square_layout(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _tile_columns(n: int) -> int:
    """A near-square row length that fills the last row when n allows (32 → 8)."""
    root = math.ceil(math.sqrt(n))
    for cols in range(root, 2 * root + 1):
        if n % cols == 0:
            return cols
    return root


def _tile(kernels: np.ndarray, cols: int, pad: float = np.nan) -> np.ndarray:
    """(n, k, k) → one image of kernels on a grid, NaN gaps between them."""
    n, k, _ = kernels.shape
    rows = math.ceil(n / cols)
    out = np.full((rows * (k + 1) - 1, cols * (k + 1) - 1), pad)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (k + 1):r * (k + 1) + k, c * (k + 1):c * (k + 1) + k] = kernels[i]
    return out


# -------------------------------------------------------------------- data
def digit_grid_figure(grid: np.ndarray, labels: Sequence[int], angles: Sequence[float]) -> Figure:
    """Each digit (rows) at each of the run's angles (columns), as the model sees it."""
    n, m = grid.shape[:2]
    fig = Figure(figsize=(1.1 * m + 0.7, 1.1 * n + 0.5), layout="constrained")
    axes = _grid(fig, n, m)
    for i in range(n):
        for j in range(m):
            ax = axes[i, j]
            ax.imshow(grid[i, j], cmap="gray", vmin=float(grid.min()), vmax=float(grid.max()))
            _bare(ax)
            if i == 0:
                ax.set_title(f"{angles[j]:g}°", fontsize=MEDIUM)
            if j == 0:
                ax.set_ylabel(str(int(labels[i])), rotation=0, labelpad=12, fontsize=MEDIUM)
    return fig


def images_per_angle_chart(frame: pd.DataFrame) -> alt.Chart:
    """Images per angle (support + query), train and test side by side."""
    order = list(dict.fromkeys(frame.sort_values("angle")["angle_label"]))
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("angle_label:N", sort=order, title="angle", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("split:N", sort=["train", "test"]),
        y=alt.Y("images:Q", title="images"),
        color=alt.Color("split:N", sort=["train", "test"], title="tasks"),
        tooltip=[alt.Tooltip("split:N", title="tasks"), alt.Tooltip("angle_label:N", title="angle"),
                 alt.Tooltip("images:Q", title="images")],
    ).properties(title="Images per angle", height=260)


def class_distribution_chart(frame: pd.DataFrame) -> alt.Chart:
    """Images per digit, train and test side by side."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("digit:O", title="digit", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("split:N", sort=["train", "test"]),
        y=alt.Y("images:Q", title="images"),
        color=alt.Color("split:N", sort=["train", "test"], title="tasks"),
        tooltip=[alt.Tooltip("split:N", title="tasks"), alt.Tooltip("digit:O", title="digit"),
                 alt.Tooltip("images:Q", title="images")],
    ).properties(title="Images per class", height=260)


# ------------------------------------------------------------------ errors
def errors_over_steps_chart(frame: pd.DataFrame, measure: str = "errors") -> alt.Chart:
    """Wrong predictions per angle over the steps, one line per angle.

    ``measure``: "errors" (counts) or "rate" (errors / images scored), which
    compares angles fairly when they received different numbers of images."""
    if measure not in ("errors", "rate"):
        raise ValueError(f"unknown measure {measure!r}; allowed: errors, rate")
    order = list(dict.fromkeys(frame.sort_values("angle")["angle_label"]))
    y = alt.Y("errors:Q", title="wrong predictions") if measure == "errors" else \
        alt.Y("rate:Q", title="error rate", axis=alt.Axis(format="%"))
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=y,
        color=alt.Color("angle_label:N", sort=order, title="angle"),
        tooltip=[alt.Tooltip("step:Q", title="step"), alt.Tooltip("angle_label:N", title="angle"),
                 alt.Tooltip("images:Q", title="images scored"), alt.Tooltip("errors:Q", title="wrong"),
                 alt.Tooltip("rate:Q", format=".1%", title="error rate")],
    ).properties(title="Wrong predictions per angle" + (" (rate)" if measure == "rate" else ""), height=300)


def accuracy_per_angle_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Accuracy per angle with its 95% interval as an error bar."""
    order = list(dict.fromkeys(frame.sort_values("angle")["angle_label"]))
    base = alt.Chart(frame).encode(x=alt.X("angle_label:N", sort=order, title="angle",
                                           axis=alt.Axis(labelAngle=0)))
    bars = base.mark_bar(opacity=0.75).encode(
        y=alt.Y("acc:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("angle_label:N", title="angle"), alt.Tooltip("images:Q", title="images"),
                 alt.Tooltip("correct:Q", title="correct"), alt.Tooltip("acc:Q", format=".1%", title="accuracy"),
                 alt.Tooltip("low:Q", format=".1%", title="95% interval from"),
                 alt.Tooltip("high:Q", format=".1%", title="95% interval to")])
    whiskers = base.mark_errorbar(ticks=True, color="black").encode(
        y=alt.Y("low:Q", title="accuracy"), y2="high:Q")
    step = frame["step"].iloc[0] if len(frame) else "?"
    return alt.layer(bars, whiskers, data=frame).properties(
        title=f"Accuracy per angle at step {step} (95% Wilson interval)", height=280,
        width=max(240, 60 * len(frame)))


def confusion_figure(conf: Confusion) -> Figure:
    """Row-normalized digit confusion (colour) with the raw counts written in."""
    m = conf.matrix.astype(float)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    fig = Figure(figsize=(6.4, 5.5), layout="constrained")  # fits a 720-pixel-high screen
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for t in range(10):
        for p in range(10):
            if m[t, p]:
                ax.text(p, t, str(int(m[t, p])), ha="center", va="center", fontsize=SMALL,
                        color="white" if share[t, p] > 0.5 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.tick_params(labelsize=MEDIUM)
    ax.set_xlabel("predicted digit", fontsize=MEDIUM)
    ax.set_ylabel("true digit", fontsize=MEDIUM)
    ax.set_title(f"{conf.angle:g}° · step {conf.step} · accuracy {conf.accuracy:.1%}\n"
                 f"{conf.tasks} tasks, {conf.images} images", fontsize=LARGE)
    _colorbar(fig, image, ax, "share of the true digit's images")
    return fig


# ------------------------------------------------------- filters, activations
def filters_figure(filters: np.ndarray, circuit_labels: Sequence[str] | None = None,
                   title: str = "First-layer filters", max_cols: int | None = None,
                   limit: float | None = None, value_label: str = "weight") -> Figure:
    """One heatmap per filter, circuits stacked as row blocks.

    ``filters`` is (circuits, c_out, c_in, k, k); several input channels are
    averaged (the first layer has one). All panels share a zero-centred scale,
    whose range the title states."""
    circuits, c_out = filters.shape[:2]
    kernels = filters.mean(axis=2)                     # (circuits, c_out, k, k)
    labels = list(circuit_labels or [f"circuit {c}" for c in range(circuits)])
    # one circuit: 8 large panels a row; a bank of circuits: 16 smaller ones, so the figure stays short
    max_cols = max_cols or (8 if circuits == 1 else 16)
    panel = 1.0 if max_cols <= 8 else 0.45
    rows_per, cols = _square_layout(c_out, max_cols)
    fig = Figure(figsize=(panel * cols + (2.8 if circuits > 1 else 1.6), (panel + 0.2) * rows_per * circuits + 0.8),
                 layout="constrained")
    axes = _grid(fig, rows_per * circuits, cols)
    vmax = limit if limit is not None else symmetric_limit(kernels)
    image = None
    for c in range(circuits):
        block = axes[c * rows_per:(c + 1) * rows_per]
        for o in range(c_out):
            ax = block.flat[o]
            image = ax.imshow(kernels[c, o], cmap=SIGNED, vmin=-vmax, vmax=vmax)
            _bare(ax)
            ax.set_title(str(o), fontsize=SMALL if panel >= 1 else SMALL - 2, pad=2)
        if circuits > 1:
            block[0, 0].set_ylabel(labels[c], fontsize=MEDIUM, rotation=0, ha="right", va="center")
        _drop_unused(fig, block, c_out)
    fig.suptitle(f"{title} · {scale_text(vmax)}", fontsize=LARGE)
    _colorbar(fig, image, fig.axes, value_label, shrink=0.6)
    return fig


def filter_change_figure(delta: np.ndarray, from_step: int, to_step: int,
                         circuit_labels: Sequence[str] | None = None) -> Figure:
    """Per-filter difference between two steps (red: grew, blue: shrank), on a
    scale fitted to the change."""
    return filters_figure(delta, circuit_labels, title=f"Filter change, step {from_step} → {to_step}",
                          value_label="change")


def activation_mean_figure(act: Activations, circuit_labels: Sequence[str] | None = None) -> Figure:
    """The channel-averaged map, one panel per circuit on a shared scale; the
    circuit the model would use for this angle is marked."""
    mean = act.mean
    n = mean.shape[0]
    labels = list(circuit_labels or [f"circuit {c}" for c in range(n)])
    rows, cols = _square_layout(n, 3)
    panel = 4.0 if n == 1 else 2.6
    fig = Figure(figsize=(panel * cols + 1.4, (panel + 0.3) * rows + 0.6), layout="constrained")
    axes = _grid(fig, rows, cols)
    vmax = max(float(mean.max()), 1e-12)
    image = None
    for c in range(n):
        ax = axes.flat[c]
        image = ax.imshow(mean[c], cmap=POSITIVE, vmin=0, vmax=vmax)
        _bare(ax)
        mark = " (own)" if n > 1 and c == act.own_circuit else ""
        if n > 1:
            ax.set_title(labels[c] + mark, fontsize=MEDIUM, fontweight="bold" if mark else "normal")
    _drop_unused(fig, axes, n)
    fig.suptitle(f"{readable_name(act.layer)}, mean over channels\ndigit {act.label} at {act.angle:g}°",
                 fontsize=LARGE)
    _colorbar(fig, image, fig.axes, "activation")
    return fig


def activation_channels_figure(act: Activations, circuit: int = 0, max_cols: int = 8,
                               circuit_labels: Sequence[str] | None = None) -> Figure:
    """Every channel's map for one circuit, on a shared scale."""
    maps = act.maps[circuit]
    n = maps.shape[0]
    rows, cols = _square_layout(n, max_cols)
    fig = Figure(figsize=(1.1 * cols + 1.4, 1.3 * rows + 0.8), layout="constrained")
    axes = _grid(fig, rows, cols)
    vmax = max(float(maps.max()), 1e-12)
    image = None
    for ch in range(n):
        ax = axes.flat[ch]
        image = ax.imshow(maps[ch], cmap=POSITIVE, vmin=0, vmax=vmax)
        _bare(ax)
        ax.set_title(f"channel {ch}" if cols <= 4 else str(ch), fontsize=SMALL, pad=2)
    _drop_unused(fig, axes, n)
    name = (list(circuit_labels)[circuit] if circuit_labels else f"circuit {circuit}")
    where = f" · {name}" if act.maps.shape[0] > 1 else ""
    fig.suptitle(f"{readable_name(act.layer)}, every channel{where}\ndigit {act.label} at {act.angle:g}°",
                 fontsize=LARGE)
    _colorbar(fig, image, fig.axes, "activation")
    return fig


# -------------------------------------------------------- symmetry matrices
def symmetry_figure(mat: SymmetryMatrix, circuit_labels: Sequence[str] | None = None,
                    shows: str | None = None) -> Figure:
    """Heatmap of one symmetry matrix, one panel per circuit, on one
    zero-centred scale fitted to the values, its range in the title.

    ``shows`` names what ``mat.value`` holds (e.g. "A − I", from
    msr.analysis.inspection.change_from_start); the raw matrix when None. A, B and C start
    at the identity, so their change shows what was learned: off-diagonal
    mass mixes output channels (A), input channels (B) or kernel positions (C)."""
    value = mat.value
    n, r, c = value.shape
    labels = list(circuit_labels or [f"circuit {i}" for i in range(n)])
    rows, cols = _square_layout(n, 3)
    aspect = "equal" if r <= 4 * c else "auto"
    if n == 1:
        size = (6.6, 5.8) if aspect == "equal" else (5.0, 7.0)
    else:
        size = (3.2 * cols + 1.4, (3.2 if aspect == "equal" else 5.0) * rows + 0.8)
    fig = Figure(figsize=size, layout="constrained")
    axes = _grid(fig, rows, cols)
    vmax = symmetric_limit(value)
    row_name, col_name = MATRIX_AXES.get(mat.kind, ("row", "column"))
    image = None
    for i in range(n):
        ax = axes.flat[i]
        image = ax.imshow(value[i], cmap=SIGNED, vmin=-vmax, vmax=vmax, aspect=aspect, interpolation="nearest")
        if n > 1:
            ax.set_title(labels[i], fontsize=MEDIUM)
        if r <= 12 and c <= 12:
            ax.set_xticks(range(c))
            ax.set_yticks(range(r))
        ax.tick_params(labelsize=SMALL)
        ax.set_xlabel(col_name, fontsize=MEDIUM)
        ax.set_ylabel(row_name, fontsize=MEDIUM)
    _drop_unused(fig, axes, n)
    what = shows or mat.kind
    fig.suptitle(f"{what} · {readable_name(mat.layer)} ({r}×{c}) · {scale_text(vmax)}", fontsize=LARGE)
    _colorbar(fig, image, fig.axes, what if shows else "value")
    return fig


def _drift_series(frame: pd.DataFrame, circuit_labels: Sequence[str] | None) -> pd.DataFrame:
    """The drift rows with the names a reader sees: matrix, circuit, and the line they make."""
    data = frame.copy()
    data["matrix_label"] = data["matrix"].map(readable_name)
    labels = list(circuit_labels or [])
    data["circuit_label"] = data["circuit"].map(lambda c: labels[c] if c < len(labels) else f"circuit {c}")
    many = data["circuit"].nunique() > 1 if len(data) else False
    data["series"] = data["matrix_label"] + (" · " + data["circuit_label"] if many else "")
    return data


def wide_spread(frame: pd.DataFrame, measure: str = "rel_from_init") -> bool:
    """Whether the lines end so far apart (LOG_SPREAD times or more) that on a
    linear axis the smallest ones lie flat on zero."""
    data = frame.dropna(subset=[measure])
    ends = data[data["step"] == data["step"].max()][measure] if len(data) else data[measure]
    ends = ends[ends > 0]
    return bool(len(ends) > 1 and ends.max() >= LOG_SPREAD * ends.min())


def drift_chart(frame: pd.DataFrame, measure: str = "rel_from_init", log: bool = False, step: int | None = None,
                circuit_labels: Sequence[str] | None = None) -> alt.LayerChart:
    """How far each matrix has moved over the steps, one line per matrix
    (and circuit). ``measure``: rel_from_init or from_identity. ``log``: a
    log axis, so lines far apart are all visible (the zero distances of the
    starting step are left out). ``step``: marked with a rule."""
    if measure not in DRIFT_MEASURES:
        raise ValueError(f"unknown measure {measure!r}; allowed: {', '.join(DRIFT_MEASURES)}")
    data = _drift_series(frame.dropna(subset=[measure]), circuit_labels)
    if log:
        data = data[data[measure] > 0]
    title, axis = DRIFT_MEASURES[measure]
    scale = alt.Scale(type="log") if log else alt.Scale(zero=True)
    # colour names the matrix; circuits of one matrix share its colour, so
    # 25 dedicated lines stay readable (the tooltip names the circuit)
    lines = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y(f"{measure}:Q", title="relative distance" + (" (log scale)" if log else ""), scale=scale),
        color=alt.Color("matrix_label:N", title="matrix"),
        detail="series:N",
        tooltip=[alt.Tooltip("step:Q", title="step"), alt.Tooltip("matrix_label:N", title="matrix"),
                 alt.Tooltip("circuit_label:N", title="circuit"),
                 alt.Tooltip(f"{measure}:Q", format=".4f", title=axis)],
    )
    layers = [lines]
    if step is not None:
        marker = pd.DataFrame({"step": [step], "label": [f"step {step}"]})
        layers.append(alt.Chart(marker).mark_rule(color="#868e96", strokeDash=[4, 4], strokeWidth=2).encode(
            x="step:Q", tooltip=[alt.Tooltip("label:N", title="shown below")]))
    return alt.layer(*layers, data=data).properties(title=title, height=320)


def drift_table(frame: pd.DataFrame, step: int, circuit_labels: Sequence[str] | None = None) -> pd.DataFrame:
    """The drift at one step as a reader's table: one row per matrix (and
    circuit), columns named in words; the circuit column only for several."""
    data = _drift_series(frame[frame["step"] == step], circuit_labels)
    out = pd.DataFrame({"Matrix": data["matrix_label"]})
    if frame["circuit"].nunique() > 1:
        out["Circuit"] = data["circuit_label"]
    out["Distance from the first checkpoint"] = data["rel_from_init"]
    out["Distance from the identity"] = data["from_identity"]
    return out.reset_index(drop=True)


def filter_change_table(frame: pd.DataFrame, circuit_labels: Sequence[str] | None = None) -> pd.DataFrame:
    """msr.analysis.inspection.filter_change_frame as a reader's table: columns named in
    words, with the two steps; the circuit column only for several."""
    a, b = int(frame["from_step"].iloc[0]), int(frame["to_step"].iloc[0])
    labels = list(circuit_labels or [])
    out = pd.DataFrame({"Filter": frame["filter"]})
    if frame["circuit"].nunique() > 1:
        out.insert(0, "Circuit", frame["circuit"].map(lambda c: labels[c] if c < len(labels) else f"circuit {c}"))
    out[f"Size at step {a}"] = frame["norm_from"]
    out[f"Size at step {b}"] = frame["norm_to"]
    out["Change"] = frame["change"]
    out["Change relative to size"] = frame["rel_change"]
    return out


def generated_filters_figure(gen: GeneratedFilters, circuit: int = 0,
                             circuit_label: str | None = None) -> Figure:
    """What each latent coordinate of a dense U generates on its own.

    conv: one panel per latent column, its kernel for every output channel
    tiled. linear: one row per latent column plus a last row with the actual
    weight W = U v, one panel per task label (the i-th smallest digit of a
    task), each map averaged over channels."""
    basis, coeffs = gen.basis[circuit], gen.coeffs[circuit]
    where = f" · {circuit_label}" if circuit_label else ""
    layer = readable_name(gen.layer)
    if gen.kind == "conv":
        latent, c_out = basis.shape[:2]
        kernels = basis.mean(axis=2)                   # (latent, c_out, k, k)
        tile_cols = _tile_columns(c_out)
        rows, cols = _square_layout(latent, 4)
        fig = Figure(figsize=(2.2 * cols + 1.4, 2.5 * rows + 0.9), layout="constrained")
        axes = _grid(fig, rows, cols)
        vmax = symmetric_limit(kernels)
        image = None
        for j in range(latent):
            ax = axes.flat[j]
            image = ax.imshow(_tile(kernels[j], tile_cols), cmap=SIGNED, vmin=-vmax, vmax=vmax)
            _bare(ax)
            ax.set_title(f"column {j} · v = {coeffs[j]:+.2f}", fontsize=SMALL)
        _drop_unused(fig, axes, latent)
        fig.suptitle(f"{layer}: kernels each column of U generates{where}\n"
                     f"({c_out} output channels tiled) · {scale_text(vmax)}", fontsize=LARGE)
        _colorbar(fig, image, fig.axes, "U column", shrink=0.7)
        return fig
    latent, classes = basis.shape[:2]
    fig = Figure(figsize=(1.7 * classes + 2.4, 1.75 * (latent + 1) + 0.9), layout="constrained")
    axes = _grid(fig, latent + 1, classes)
    vb = symmetric_limit(basis)
    ve = symmetric_limit(gen.effective[circuit])
    img_b = img_e = None
    for j in range(latent + 1):
        for k in range(classes):
            ax = axes[j, k]
            if j < latent:
                img_b = ax.imshow(basis[j, k], cmap=SIGNED, vmin=-vb, vmax=vb)
            else:
                img_e = ax.imshow(gen.effective[circuit][k], cmap=SIGNED, vmin=-ve, vmax=ve)
            _bare(ax)
            if j == 0:
                ax.set_title(f"label {k}", fontsize=MEDIUM)
            if k == 0:
                ax.set_ylabel(f"U[:, {j}]\nv = {coeffs[j]:+.2f}" if j < latent else "W = U v", fontsize=SMALL)
    fig.suptitle(f"{layer}: map per task label each column of U generates{where}\n"
                 f"mean over channels · columns {scale_text(vb)}, W {scale_text(ve)}", fontsize=LARGE)
    _colorbar(fig, img_b, axes[:latent].ravel().tolist(), "U column")
    _colorbar(fig, img_e, axes[latent].ravel().tolist(), "W")
    return fig


def inner_rates_chart(frame: pd.DataFrame) -> alt.Chart:
    """The learned inner learning rate of each adapted tensor over the steps,
    on an axis fitted to the rates (not from zero), so their change shows."""
    data = frame.assign(tensor_label=frame["tensor"].map(readable_name))
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("lr:Q", title="inner learning rate", scale=alt.Scale(zero=False)),
        color=alt.Color("tensor_label:N", title="adapted tensor"),
        tooltip=[alt.Tooltip("step:Q", title="step"), alt.Tooltip("tensor_label:N", title="adapted tensor"),
                 alt.Tooltip("lr:Q", format=".5f", title="inner learning rate")],
    ).properties(title="Learned inner learning rates", height=300)
