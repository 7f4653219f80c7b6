"""Weights: what a run's checkpoints hold, one view at a time.

Filters, activations, the learned symmetry matrices and how far they moved,
what a dense U generates, and the learned inner rates; VIEWS maps each view's
name to the function that draws it and says whether it reads the checkpoint
step (only those views show the step slider). The view and the step are kept
in the page's address (``?view=drift&step=300``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import streamlit as st

from msr.analysis import inspection as mi
from msr.analysis import tables
from msr.core.data import DataError
from msr.mnist.snapshot import ModelSnapshot
from msr.store.checkpoints import checkpoint_mtime
from msr.store.reader import RunRecord
from ui.downloads import download
from ui.page_cache import dataset, snapshot
from ui.step_player import step_player
from ui import present
from ui.inspect_page import inspect_page

LIVE_REFRESH_S = 10
VIEW_PARAM = "view"
NO_CHANGE = 1e-12  # a symmetry matrix that moved less than this has learned nothing yet


# ------------------------------------------------------------------ caches
@st.cache_data(show_spinner="Drawing the filters…", max_entries=64)
def _filters_png(path: str, step: int, mtime: float) -> bytes:
    from msr.viz import inspect as vi
    from msr.viz.export import figure_png

    snap = snapshot(path, step)
    return figure_png(vi.filters_figure(mi.first_layer_filters(snap), snap.circuit_labels(),
                                        title=f"First-layer filters at step {snap.step}"))


@st.cache_data(show_spinner="Drawing the filter change…", max_entries=64)
def _change_png(path: str, a: int, b: int, mtimes: tuple) -> bytes:
    from msr.viz import inspect as vi
    from msr.viz.export import figure_png

    sa, sb = snapshot(path, a), snapshot(path, b)
    return figure_png(vi.filter_change_figure(mi.filter_change(sa, sb), sa.step, sb.step, sb.circuit_labels()))


@st.cache_data(show_spinner="Measuring drift over every checkpoint…", max_entries=16)
def _drift(path: str, steps: tuple, mtimes: tuple):
    return mi.drift_over_steps(path, steps, loader=snapshot)


@st.cache_data(show_spinner="Drawing the symmetry matrix…", max_entries=64)
def _matrix_png(path: str, step: int, first: int, mtimes: tuple, name: str, change: bool) -> bytes:
    """One matrix's heatmap: its change from where it started (see shown_matrix), or its raw values."""
    from msr.viz import inspect as vi
    from msr.viz.export import figure_png

    snap = snapshot(path, step)
    mat = next(m for m in mi.symmetry_matrices(snap) if m.name == name)
    shows = None
    if change:
        mat, shows = shown_matrix(mat, path, first)
    return figure_png(vi.symmetry_figure(mat, snap.circuit_labels(), shows))


def shown_matrix(mat: mi.SymmetryMatrix, path: str, first: int) -> tuple[mi.SymmetryMatrix, str]:
    """The matrix's change from its start, and how its title writes it: "A − I" for the Kronecker
    factors, "U − U at step 0" for a dense U (read from the run's first checkpoint)."""
    if mat.kind in mi.STARTS_AT_IDENTITY:
        return mi.change_from_start(mat), f"{mat.kind} − I"
    start = next(m for m in mi.symmetry_matrices(snapshot(path, first)) if m.name == mat.name)
    return mi.change_from_start(mat, start), f"{mat.kind} − {mat.kind} at step {first}"


# ------------------------------------------------------------------- views
@dataclass(frozen=True)
class Shown:
    """What every view draws from: the run, its kept checkpoint steps and the step chosen above the view."""
    path: str
    rec: RunRecord
    steps: list[int]  # every kept checkpoint step
    step: int

    @property
    def slug(self) -> str:
        return self.rec.run_id

    @cached_property
    def snap(self) -> ModelSnapshot:
        return snapshot(self.path, self.step)

    @property
    def labels(self) -> list[str]:
        return self.snap.circuit_labels()


def filters(shown: Shown) -> None:
    from ui.inspect_widgets import show_png

    snap = shown.snap
    st.subheader("First-layer filters")
    st.caption("The kernels the first conv actually applies: U (or A ⊗ B ⊗ C) already multiplied into v. "
               + ("One row block per dedicated circuit." if snap.circuits > 1 else ""))
    png = _filters_png(shown.path, snap.step, checkpoint_mtime(shown.path, snap.step))
    show_png(png, f"{shown.slug}-filters-step{snap.step}", "dl_filters")


def activations(shown: Shown) -> None:
    from msr.viz import inspect as vi
    from ui.inspect_widgets import show_figure

    snap, labels = shown.snap, shown.labels
    try:
        data = dataset(snap.config.data_source, snap.config.data_dir)
    except DataError as exc:
        st.error(str(exc))
        return
    images, digit_labels = mi.sample_digits(data.test, per_class=5)
    c1, c2, c3 = st.columns(3)
    digit = c1.selectbox("Digit", sorted(set(digit_labels.tolist())), key="act_digit")
    example = c2.number_input("Example", 0, 4, 0, key="act_example")
    angle_i = c3.selectbox("Angle", range(len(snap.angles)), key="act_angle",
                           format_func=lambda i: f"{snap.angles[i]:g}°")
    idx = (digit_labels == digit).nonzero().squeeze(1)
    pick = int(idx[min(int(example), len(idx) - 1)])
    acts = mi.activations(snap, images[pick], angle_i, int(digit_labels[pick]))
    for name, act in acts.items():
        layer = mi.readable_name(name)
        st.subheader(f"After the {layer}: mean over channels")
        if snap.circuits > 1:
            st.caption("The digit is sent through every circuit; '(own)' marks the circuit the model "
                       "uses for this angle.")
        show_figure(vi.activation_mean_figure(act, labels), f"{shown.slug}-{name}-mean-step{snap.step}",
                    f"dl_act_mean_{name}")
        st.subheader(f"After the {layer}: every channel")
        circuit = 0
        if snap.circuits > 1:
            circuit = st.selectbox("Circuit", range(snap.circuits), index=act.own_circuit,
                                   format_func=lambda c: labels[c], key=f"act_circuit_{name}_{angle_i}")
        show_figure(vi.activation_channels_figure(act, circuit, circuit_labels=labels),
                    f"{shown.slug}-{name}-channels-step{snap.step}", f"dl_act_channels_{name}")


def _one_by_one(m: mi.SymmetryMatrix, labels: list[str]) -> None:
    """A 1×1 matrix is one number per circuit: shown as that number and its change from 1."""
    values = m.value.reshape(-1)
    cols = st.columns(min(len(values), 5))
    for i, (label, value) in enumerate(zip(labels, values)):
        name = f"{m.kind} ({label})" if len(values) > 1 else m.kind
        cols[i % len(cols)].metric(name, f"{value:.3f}", f"{value - 1:+.3f} from the identity",
                                   delta_color="off", delta_arrow="off")


def symmetry_matrices(shown: Shown) -> None:
    from ui.inspect_widgets import show_png

    mats = mi.symmetry_matrices(shown.snap)
    if not mats:
        st.info("This architecture has no symmetry matrices (plain MAML conv baseline).")
        return
    change = st.radio("Show", (True, False), horizontal=True, key="sym_change",
                      format_func=lambda c: "change from the start" if c else "raw values",
                      help="A, B and C start at the identity I, and a dense U usually at a random draw: a "
                           "heatmap of the raw matrix shows mostly that start. Its change shows what was learned.")
    first = shown.steps[0]
    kinds = {m.kind for m in mats}
    notes = []
    if kinds & set(mi.STARTS_AT_IDENTITY):
        notes.append("A, B and C start at the identity: off-diagonal mass is learned sharing across output "
                     "channels (A), input channels (B) or kernel positions (C).")
    if "U" in kinds:
        notes.append(f"A dense U is compared with its value at step {first}, the run's first checkpoint.")
    if change:
        notes.append("Red: grew since the start; blue: shrank.")
    st.caption(" ".join(notes))
    mtimes = (checkpoint_mtime(shown.path, shown.step), checkpoint_mtime(shown.path, first))
    for m in mats:
        rows, cols = m.value.shape[-2:]
        st.subheader(f"{m.kind} · {mi.readable_name(m.layer)} ({rows}×{cols})")
        if rows * cols == 1:
            _one_by_one(m, shown.labels)
            continue
        if not m.drawable:
            st.caption("Too tall to read as a heatmap; see **Generated filters** for the maps each of its "
                       "columns produces.")
            continue
        if change:
            moved, shows = shown_matrix(m, shown.path, first)
            limit = float(abs(moved.value).max())
            st.caption(f"Drawn as **{shows}**, colour scale ±{limit:.2g}." if limit > NO_CHANGE else
                       f"Drawn as **{shows}**: it has not moved from its start yet.")
        png = _matrix_png(shown.path, shown.step, first, mtimes, m.name, change)
        show_png(png, f"{shown.slug}-{m.layer}-{m.kind}-{'change' if change else 'raw'}-step{shown.step}",
                 f"dl_sym_{m.name}")


def drift(shown: Shown) -> None:
    from msr.viz import inspect as vi
    from ui.inspect_widgets import show_chart

    steps = shown.steps
    mtimes = tuple(checkpoint_mtime(shown.path, step) for step in steps)
    frame = _drift(shown.path, tuple(steps), mtimes)
    labels = shown.labels if frame["circuit"].nunique() > 1 else None
    log = st.toggle("Log scale", value=vi.wide_spread(frame), key="drift_log",
                    help="On by default when the lines end ten times or more apart: on a linear axis the "
                         "smallest would lie flat on zero.")
    st.caption(f"Every checkpoint against step {steps[0]}; the first-layer filters are included for "
               f"comparison. Dedicated circuits each get their own line. The dashed rule marks step {shown.step}, "
               "the step of the table below.")
    show_chart(vi.drift_chart(frame, "rel_from_init", log, shown.step, labels), frame, f"{shown.slug}-drift",
               "dl_drift")
    if frame["from_identity"].notna().any():
        show_chart(vi.drift_chart(frame, "from_identity", log, shown.step, labels), frame,
                   f"{shown.slug}-drift-identity", "dl_drift_id")
    st.markdown(f"**At step {shown.step}**")
    table = vi.drift_table(frame, shown.step, labels)
    present.table(table, hide_index=True, placeholder="—",
                  column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns[-2:]})


def generated_filters(shown: Shown) -> None:
    from msr.viz import inspect as vi
    from ui.inspect_widgets import show_figure

    labels = shown.labels
    gens = mi.generated_filters(shown.snap)
    if not gens:
        st.info("This architecture has no dense symmetry matrix U.")
        return
    circuit = 0
    if shown.snap.circuits > 1:
        circuit = st.selectbox("Circuit", range(shown.snap.circuits), format_func=lambda c: labels[c],
                               key="gen_circuit")
    for g in gens:
        st.subheader(mi.readable_name(g.layer) + (" (conv kernels)" if g.kind == "conv" else ""))
        st.caption("Column j of U on its own, i.e. what the layer's weight would be with v = e_j; the "
                   "actual weight is Σ_j v_j · column j." +
                   (" Head maps are per task label (the i-th smallest digit of a task)." if g.kind == "linear"
                    else ""))
        show_figure(vi.generated_filters_figure(g, circuit, labels[circuit] if shown.snap.circuits > 1 else None),
                    f"{shown.slug}-{g.layer}-generated-step{shown.snap.step}", f"dl_gen_{g.layer}")


def filter_change(shown: Shown) -> None:
    from msr.viz import inspect as vi
    from msr.viz.export import frame_csv
    from ui.inspect_widgets import show_png

    path, steps, slug = shown.path, shown.steps, shown.slug
    if len(steps) < 2:
        st.info("Only one checkpoint so far; a change needs two.")
        return
    chosen = st.session_state.get("change_steps")
    if not (isinstance(chosen, tuple) and all(step in steps for step in chosen)):
        st.session_state["change_steps"] = (steps[0], steps[-1])
    a, b = st.select_slider("From step → to step", steps, key="change_steps")
    if a == b:
        st.info("Pick two different steps.")
        return
    st.caption("Each filter at the second step minus itself at the first, on a colour scale fitted to the "
               "change. Size: the filter's Frobenius norm.")
    mtimes = (checkpoint_mtime(path, a), checkpoint_mtime(path, b))
    show_png(_change_png(path, a, b, mtimes), f"{slug}-filter-change-{a}-{b}", "dl_change")
    after = snapshot(path, b)
    frame = mi.filter_change_frame(snapshot(path, a), after)
    table = vi.filter_change_table(frame, after.circuit_labels())
    present.table(table, hide_index=True, placeholder="—",
                  column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns[-4:]})
    download("Download CSV", frame_csv(frame), f"{slug}-filter-change-{a}-{b}.csv", "text/csv",
             key="dl_change_csv")


def inner_rates(shown: Shown) -> None:
    from msr.viz import inspect as vi
    from ui.inspect_widgets import show_chart

    frame = tables.inner_rates_frame(shown.rec.metrics)
    if frame.empty:
        st.info("This run keeps its inner learning rate fixed (or has no evaluation yet).")
        return
    st.caption("One learned rate per adapted tensor; runs that learn a rate per entry show each tensor's mean "
               "rate. Symmetry matrices never adapt in the inner loop, so they have none.")
    show_chart(vi.inner_rates_chart(frame), frame, f"{shown.slug}-inner-rates", "dl_inner")


@dataclass(frozen=True)
class View:
    draw: Callable[[Shown], None]
    uses_step: bool  # whether it reads the checkpoint step (else the slider is not shown)

    @staticmethod
    def slug(name: str) -> str:
        return name.lower().replace(" ", "-")


# Each view of the selector, in its order: what draws it and whether it reads the step.
VIEWS = {"Filters": View(filters, True), "Activations": View(activations, True),
         "Symmetry matrices": View(symmetry_matrices, True), "Drift": View(drift, True),
         "Generated filters": View(generated_filters, True), "Filter change": View(filter_change, False),
         "Inner rates": View(inner_rates, False)}


# -------------------------------------------------------------------- body
def choose_view() -> str:
    """The view radio; a link's ``?view=`` opens that view, and a pick is kept in the address."""
    if "weights_view" not in st.session_state:
        linked = {View.slug(name): name for name in VIEWS}.get(st.query_params.get(VIEW_PARAM))
        if linked:
            st.session_state["weights_view"] = linked
    view = st.radio("View", tuple(VIEWS), horizontal=True, key="weights_view")
    st.query_params[VIEW_PARAM] = View.slug(view)
    return view


def body(path: str) -> None:
    from ui.inspect_widgets import checkpointed_run

    found = checkpointed_run(path)
    if found is None:
        return
    rec, steps = found
    name = choose_view()
    view = VIEWS[name]
    step = step_player("Checkpoint step", steps, "weights_step", what="checkpoint") if view.uses_step else steps[-1]
    view.draw(Shown(path, rec, steps, step))


def page() -> None:
    inspect_page("Weights", "Loading the weights views…", "weights", body, LIVE_REFRESH_S,
                 caption="Everything here is read from the run's checkpoints, saved at every evaluation step "
                         "(thinned evenly once a run reaches its checkpoint disk budget). Weights are the "
                         "meta-learned initialization, before any task adapts them.")


page()
