"""Charts for looking inside a run: data, errors, filters, activations and
symmetry matrices.

Altair charts carry their DataFrame as ``chart.data`` (the CSV download);
matplotlib Figures are built with ``Figure()`` and never registered with
pyplot, so nothing is kept alive after the caller drops them. Heatmaps of
signed weights use one colour scale centred on zero per figure, so cells
compare across panels.
"""
from __future__ import annotations

import math
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..inspect import Activations, Confusion, GeneratedFilters, SymmetryMatrix

SIGNED = "RdBu_r"
POSITIVE = "viridis"


# ----------------------------------------------------------------- helpers
def _grid(fig: Figure, rows: int, cols: int):
    return fig.subplots(rows, cols, squeeze=False)


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _symmetric_limit(*arrays: np.ndarray) -> float:
    m = max(float(np.nanmax(np.abs(a))) if a.size else 0.0 for a in arrays)
    return m if m > 0 else 1.0


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
    fig = Figure(figsize=(1.1 * m + 0.6, 1.1 * n + 0.4), layout="constrained")
    axes = _grid(fig, n, m)
    for i in range(n):
        for j in range(m):
            ax = axes[i, j]
            ax.imshow(grid[i, j], cmap="gray", vmin=float(grid.min()), vmax=float(grid.max()))
            _bare(ax)
            if i == 0:
                ax.set_title(f"{angles[j]:g}°", fontsize=9)
            if j == 0:
                ax.set_ylabel(str(int(labels[i])), rotation=0, labelpad=10, fontsize=10)
    return fig


def images_per_angle_chart(frame: pd.DataFrame) -> alt.Chart:
    """Images per angle (support + query), train and test side by side."""
    order = list(dict.fromkeys(frame.sort_values("angle")["angle_label"]))
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("angle_label:N", sort=order, title="angle", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("split:N", sort=["train", "test"]),
        y=alt.Y("images:Q", title="images"),
        color=alt.Color("split:N", sort=["train", "test"], title="split"),
        tooltip=["split", "angle_label", "images"],
    ).properties(title="Images per angle", height=260)


def class_distribution_chart(frame: pd.DataFrame) -> alt.Chart:
    """Images per digit, train and test side by side."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("digit:O", title="digit", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("split:N", sort=["train", "test"]),
        y=alt.Y("images:Q", title="images"),
        color=alt.Color("split:N", sort=["train", "test"], title="split"),
        tooltip=["split", "digit", "images"],
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
        tooltip=["step", "angle_label", "images", "errors", alt.Tooltip("rate:Q", format=".1%")],
    ).properties(title="Wrong predictions per angle" + (" (rate)" if measure == "rate" else ""), height=300)


def accuracy_per_angle_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Accuracy per angle with its 95% interval as an error bar."""
    order = list(dict.fromkeys(frame.sort_values("angle")["angle_label"]))
    base = alt.Chart(frame).encode(x=alt.X("angle_label:N", sort=order, title="angle",
                                           axis=alt.Axis(labelAngle=0)))
    bars = base.mark_bar(opacity=0.75).encode(
        y=alt.Y("acc:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=["angle_label", "images", "correct", alt.Tooltip("acc:Q", format=".1%"),
                 alt.Tooltip("low:Q", format=".1%"), alt.Tooltip("high:Q", format=".1%")])
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
    fig = Figure(figsize=(6.2, 5.2), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for t in range(10):
        for p in range(10):
            if m[t, p]:
                ax.text(p, t, str(int(m[t, p])), ha="center", va="center", fontsize=7,
                        color="white" if share[t, p] > 0.5 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(f"{conf.angle:g}° · step {conf.step} · {conf.tasks} tasks, {conf.images} images · "
                 f"accuracy {conf.accuracy:.1%}", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true digit's images")
    return fig


# ------------------------------------------------------- filters, activations
def filters_figure(filters: np.ndarray, circuit_labels: Sequence[str] | None = None,
                   title: str = "First-layer filters", max_cols: int = 16,
                   limit: float | None = None) -> Figure:
    """One heatmap per filter, circuits stacked as row blocks.

    ``filters`` is (circuits, c_out, c_in, k, k); several input channels are
    averaged (the first layer has one). All panels share a zero-centred scale."""
    circuits, c_out = filters.shape[:2]
    kernels = filters.mean(axis=2)                     # (circuits, c_out, k, k)
    labels = list(circuit_labels or [f"circuit {c}" for c in range(circuits)])
    rows_per, cols = _square_layout(c_out, max_cols)
    fig = Figure(figsize=(0.55 * cols + 1.6, 0.62 * rows_per * circuits + 0.6), layout="constrained")
    axes = _grid(fig, rows_per * circuits, cols)
    vmax = limit if limit is not None else _symmetric_limit(kernels)
    image = None
    for c in range(circuits):
        block = axes[c * rows_per:(c + 1) * rows_per]
        for o in range(c_out):
            ax = block.flat[o]
            image = ax.imshow(kernels[c, o], cmap=SIGNED, vmin=-vmax, vmax=vmax)
            _bare(ax)
            ax.set_title(str(o), fontsize=6, pad=1)
        if circuits > 1:
            block[0, 0].set_ylabel(labels[c], fontsize=7, rotation=0, ha="right", va="center")
        _drop_unused(fig, block, c_out)
    fig.suptitle(title, fontsize=10)
    fig.colorbar(image, ax=fig.axes, shrink=0.6, label="weight")
    return fig


def filter_change_figure(delta: np.ndarray, from_step: int, to_step: int,
                         circuit_labels: Sequence[str] | None = None) -> Figure:
    """Per-filter difference between two steps (red: grew, blue: shrank)."""
    return filters_figure(delta, circuit_labels, title=f"Filter change, step {from_step} → {to_step}")


def activation_mean_figure(act: Activations, circuit_labels: Sequence[str] | None = None) -> Figure:
    """The channel-averaged map, one panel per circuit on a shared scale; the
    circuit the model would use for this angle is marked."""
    mean = act.mean
    n = mean.shape[0]
    labels = list(circuit_labels or [f"circuit {c}" for c in range(n)])
    rows, cols = _square_layout(n, 6)
    fig = Figure(figsize=(2.1 * cols + 1.0, 2.2 * rows + 0.5), layout="constrained")
    axes = _grid(fig, rows, cols)
    vmax = max(float(mean.max()), 1e-12)
    image = None
    for c in range(n):
        ax = axes.flat[c]
        image = ax.imshow(mean[c], cmap=POSITIVE, vmin=0, vmax=vmax)
        _bare(ax)
        mark = " (own)" if n > 1 and c == act.own_circuit else ""
        ax.set_title(labels[c] + mark, fontsize=8, fontweight="bold" if mark else "normal")
    _drop_unused(fig, axes, n)
    fig.suptitle(f"{act.layer}, mean over channels · digit {act.label} at {act.angle:g}°", fontsize=10)
    fig.colorbar(image, ax=fig.axes, shrink=0.8, label="activation")
    return fig


def activation_channels_figure(act: Activations, circuit: int = 0, max_cols: int = 8,
                               circuit_labels: Sequence[str] | None = None) -> Figure:
    """Every channel's map for one circuit, on a shared scale."""
    maps = act.maps[circuit]
    n = maps.shape[0]
    rows, cols = _square_layout(n, max_cols)
    fig = Figure(figsize=(1.3 * cols + 1.0, 1.4 * rows + 0.5), layout="constrained")
    axes = _grid(fig, rows, cols)
    vmax = max(float(maps.max()), 1e-12)
    image = None
    for ch in range(n):
        ax = axes.flat[ch]
        image = ax.imshow(maps[ch], cmap=POSITIVE, vmin=0, vmax=vmax)
        _bare(ax)
        ax.set_title(f"ch {ch}", fontsize=7, pad=1)
    _drop_unused(fig, axes, n)
    name = (list(circuit_labels)[circuit] if circuit_labels else f"circuit {circuit}")
    fig.suptitle(f"{act.layer} per channel · {name} · digit {act.label} at {act.angle:g}°", fontsize=10)
    fig.colorbar(image, ax=fig.axes, shrink=0.8, label="activation")
    return fig


# -------------------------------------------------------- symmetry matrices
def symmetry_figure(mat: SymmetryMatrix, circuit_labels: Sequence[str] | None = None) -> Figure:
    """Heatmap of one symmetry matrix, one panel per circuit, zero-centred.

    A, B and C start at the identity, so a clean diagonal means no sharing
    was learned; off-diagonal mass mixes output channels (A), input channels
    (B) or kernel positions (C)."""
    value = mat.value
    n, r, c = value.shape
    labels = list(circuit_labels or [f"circuit {i}" for i in range(n)])
    rows, cols = _square_layout(n, 5)
    aspect = "equal" if r <= 4 * c else "auto"
    cell = 2.6 if aspect == "equal" else 2.0
    fig = Figure(figsize=(cell * cols + 1.0, (cell if aspect == "equal" else 4.0) * rows + 0.5),
                 layout="constrained")
    axes = _grid(fig, rows, cols)
    vmax = _symmetric_limit(value)
    image = None
    for i in range(n):
        ax = axes.flat[i]
        image = ax.imshow(value[i], cmap=SIGNED, vmin=-vmax, vmax=vmax, aspect=aspect,
                          interpolation="nearest")
        if n > 1:
            ax.set_title(labels[i], fontsize=8)
        if r <= 12 and c <= 12:
            ax.set_xticks(range(c))
            ax.set_yticks(range(r))
            ax.tick_params(labelsize=6)
        else:
            ax.tick_params(labelsize=7)
        ax.set_xlabel("column", fontsize=7)
        ax.set_ylabel("row", fontsize=7)
    _drop_unused(fig, axes, n)
    fig.suptitle(f"{mat.name}  ({mat.kind}, {r}×{c})", fontsize=10)
    fig.colorbar(image, ax=fig.axes, shrink=0.8)
    return fig


def drift_chart(frame: pd.DataFrame, measure: str = "rel_from_init") -> alt.Chart:
    """How far each matrix has moved over the steps, one line per matrix
    (and circuit). ``measure``: rel_from_init or from_identity."""
    if measure not in ("rel_from_init", "from_identity"):
        raise ValueError(f"unknown measure {measure!r}; allowed: rel_from_init, from_identity")
    data = frame.dropna(subset=[measure]).copy()
    many = data["circuit"].nunique() > 1 if len(data) else False
    data["series"] = data["matrix"] + (" · circuit " + data["circuit"].astype(str) if many else "")
    title = ("Distance from the step-0 value, ||X - X0|| / ||X0|| (Frobenius)" if measure == "rel_from_init"
             else "Distance from the identity, ||X - I|| / ||I|| (Frobenius)")
    # colour names the matrix; circuits of one matrix share its colour, so
    # 25 dedicated lines stay readable (the tooltip names the circuit)
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y(f"{measure}:Q", title=measure.replace("_", " ")),
        color=alt.Color("matrix:N", title="matrix"),
        detail="series:N",
        tooltip=["step", "matrix", "circuit", alt.Tooltip(f"{measure}:Q", format=".4f")],
    ).properties(title=title, height=300)


def generated_filters_figure(gen: GeneratedFilters, circuit: int = 0,
                             circuit_label: str | None = None) -> Figure:
    """What each latent coordinate of a dense U generates on its own.

    conv: one panel per latent column, its kernel for every output channel
    tiled. linear: one row per latent column plus a last row with the actual
    weight W = U v, one panel per task label (the i-th smallest digit of a
    task), each map averaged over channels."""
    basis, coeffs = gen.basis[circuit], gen.coeffs[circuit]
    where = f" · {circuit_label}" if circuit_label else ""
    if gen.kind == "conv":
        latent, c_out = basis.shape[:2]
        kernels = basis.mean(axis=2)                   # (latent, c_out, k, k)
        tile_cols = _tile_columns(c_out)
        rows, cols = _square_layout(latent, 6)
        fig = Figure(figsize=(2.0 * cols + 1.0, 2.1 * rows + 0.6), layout="constrained")
        axes = _grid(fig, rows, cols)
        vmax = _symmetric_limit(kernels)
        image = None
        for j in range(latent):
            ax = axes.flat[j]
            image = ax.imshow(_tile(kernels[j], tile_cols), cmap=SIGNED, vmin=-vmax, vmax=vmax)
            _bare(ax)
            ax.set_title(f"column {j} · v={coeffs[j]:+.2f}", fontsize=7)
        _drop_unused(fig, axes, latent)
        fig.suptitle(f"{gen.layer}: kernels generated by each column of U "
                     f"({c_out} output channels tiled){where}", fontsize=10)
        fig.colorbar(image, ax=fig.axes, shrink=0.7)
        return fig
    latent, classes = basis.shape[:2]
    fig = Figure(figsize=(1.7 * classes + 1.6, 1.75 * (latent + 1) + 0.6), layout="constrained")
    axes = _grid(fig, latent + 1, classes)
    vb = _symmetric_limit(basis)
    ve = _symmetric_limit(gen.effective[circuit])
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
                ax.set_title(f"label {k}", fontsize=8)
            if k == 0:
                ax.set_ylabel(f"U[:, {j}]\nv={coeffs[j]:+.2f}" if j < latent else "W = U v", fontsize=8)
    fig.suptitle(f"{gen.layer}: map per task label generated by each column of U, "
                 f"mean over channels{where}", fontsize=10)
    fig.colorbar(img_b, ax=axes[:latent].ravel().tolist(), shrink=0.8, label="U column")
    fig.colorbar(img_e, ax=axes[latent].ravel().tolist(), shrink=0.8, label="W")
    return fig


def inner_rates_chart(frame: pd.DataFrame) -> alt.Chart:
    """The learned inner learning rate of each adapted tensor over the steps."""
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("lr:Q", title="inner learning rate"),
        color=alt.Color("tensor:N", title="adapted tensor"),
        tooltip=["step", "tensor", alt.Tooltip("lr:Q", format=".5f")],
    ).properties(title="Learned inner learning rates", height=280)
