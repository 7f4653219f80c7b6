"""Weights: what a run's checkpoints hold, one view at a time.

Filters, activations, the learned symmetry matrices and how far they moved,
what a dense U generates, and the learned inner rates; VIEWS maps each view's
name to the function that draws it.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from msr import inspect as mi
from msr import tables
from msr.data import DataError
from msr.runs import RunRecord, checkpoint_mtime
from msr.viz import inspect as vi
from msr.viz.export import figure_png, frame_csv
from ui.inspect_widgets import checkpointed_run, choose_step, render_run, show_chart, show_figure, show_png
from ui.page_cache import dataset, snapshot
from ui.run_picker import select_run

LIVE_REFRESH_S = 10

st.title("Weights")
st.caption("Everything here is read from the run's checkpoints, saved at every evaluation step (thinned evenly "
           "once a run reaches its checkpoint disk budget). Weights are the meta-learned initialization, before "
           "any task adapts them.")


# ------------------------------------------------------------------ caches
@st.cache_data(show_spinner=False, max_entries=64)
def _filters_png(path: str, step: int, mtime: float) -> bytes:
    snap = snapshot(path, step)
    return figure_png(vi.filters_figure(mi.first_layer_filters(snap), snap.circuit_labels(),
                                        title=f"First-layer filters at step {snap.step}"))


@st.cache_data(show_spinner=False, max_entries=64)
def _change_png(path: str, a: int, b: int, mtimes: tuple) -> bytes:
    sa, sb = snapshot(path, a), snapshot(path, b)
    return figure_png(vi.filter_change_figure(mi.filter_change(sa, sb), sa.step, sb.step, sb.circuit_labels()))


@st.cache_data(show_spinner="Measuring drift over every checkpoint…", max_entries=16)
def _drift(path: str, steps: tuple, mtimes: tuple):
    return mi.drift_over_steps(path, steps, loader=snapshot)


# ------------------------------------------------------------------- views
@dataclass(frozen=True)
class Shown:
    """What every view draws from: the run and the checkpoint chosen above the views."""
    path: str
    rec: RunRecord
    steps: list[int]  # every kept checkpoint step
    snap: mi.Snapshot

    @property
    def slug(self) -> str:
        return self.rec.run_id

    @property
    def labels(self) -> list[str]:
        return self.snap.circuit_labels()


def filters(shown: Shown) -> None:
    snap = shown.snap
    st.subheader("First-layer filters")
    st.caption("The kernels the first conv actually applies: U (or A ⊗ B ⊗ C) already multiplied into v. "
               + ("One row block per dedicated circuit." if snap.circuits > 1 else ""))
    png = _filters_png(shown.path, snap.step, checkpoint_mtime(shown.path, snap.step))
    show_png(png, f"{shown.slug}-filters-step{snap.step}", "dl_filters")


def activations(shown: Shown) -> None:
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
        st.subheader(f"After {name}: mean over channels")
        if snap.circuits > 1:
            st.caption("The digit is sent through every circuit; '(own)' marks the circuit the model "
                       "uses for this angle.")
        show_figure(vi.activation_mean_figure(act, labels), f"{shown.slug}-{name}-mean-step{snap.step}",
                    f"dl_act_mean_{name}")
        st.subheader(f"After {name}: every channel")
        circuit = 0
        if snap.circuits > 1:
            circuit = st.selectbox("Circuit", range(snap.circuits), index=act.own_circuit,
                                   format_func=lambda c: labels[c], key=f"act_circuit_{name}_{angle_i}")
        show_figure(vi.activation_channels_figure(act, circuit, circuit_labels=labels),
                    f"{shown.slug}-{name}-channels-step{snap.step}", f"dl_act_channels_{name}")


def symmetry_matrices(shown: Shown) -> None:
    mats = mi.symmetry_matrices(shown.snap)
    if not mats:
        st.info("This architecture has no symmetry matrices (plain MAML conv baseline).")
        return
    st.caption("A, B and C start at the identity: off-diagonal mass is learned sharing across output "
               "channels (A), input channels (B) or kernel positions (C).")
    for m in mats:
        st.subheader(f"{m.name} ({m.kind}, {m.value.shape[-2]}×{m.value.shape[-1]})")
        if not m.drawable:
            st.caption("Too tall to read as a heatmap; see **Generated filters** for the maps each of its "
                       "columns produces.")
            continue
        show_figure(vi.symmetry_figure(m, shown.labels), f"{shown.slug}-{m.name}-step{shown.snap.step}",
                    f"dl_sym_{m.name}")


def drift(shown: Shown) -> None:
    steps = shown.steps
    mtimes = tuple(checkpoint_mtime(shown.path, step) for step in steps)
    frame = _drift(shown.path, tuple(steps), mtimes)
    st.caption(f"Every checkpoint against step {steps[0]}; the first-layer filters are included for "
               "comparison. Dedicated circuits each get their own line.")
    show_chart(vi.drift_chart(frame, "rel_from_init"), frame, f"{shown.slug}-drift", "dl_drift")
    if frame["from_identity"].notna().any():
        show_chart(vi.drift_chart(frame, "from_identity"), frame, f"{shown.slug}-drift-identity", "dl_drift_id")
    now = frame[frame["step"] == shown.snap.step]
    st.dataframe(now, hide_index=True)


def generated_filters(shown: Shown) -> None:
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
        st.subheader(f"{g.layer} ({'conv kernels' if g.kind == 'conv' else 'linear head'})")
        st.caption("Column j of U on its own, i.e. what the layer's weight would be with v = e_j; the "
                   "actual weight is Σ_j v_j · column j." +
                   (" Head maps are per task label (the i-th smallest digit of a task)." if g.kind == "linear"
                    else ""))
        show_figure(vi.generated_filters_figure(g, circuit, labels[circuit]),
                    f"{shown.slug}-{g.layer}-generated-step{shown.snap.step}", f"dl_gen_{g.layer}")


def filter_change(shown: Shown) -> None:
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
    mtimes = (checkpoint_mtime(path, a), checkpoint_mtime(path, b))
    show_png(_change_png(path, a, b, mtimes), f"{slug}-filter-change-{a}-{b}", "dl_change")
    frame = mi.filter_change_frame(snapshot(path, a), snapshot(path, b))
    st.dataframe(frame, hide_index=True)
    st.download_button("Download CSV", frame_csv(frame), file_name=f"{slug}-filter-change-{a}-{b}.csv",
                       mime="text/csv", key="dl_change_csv")


def inner_rates(shown: Shown) -> None:
    frame = tables.inner_rates_frame(shown.rec.metrics)
    if frame.empty:
        st.info("This run keeps its inner learning rate fixed (or has no evaluation yet).")
        return
    st.caption("One learned rate per adapted tensor (per_layer); per_param runs show each tensor's mean "
               "rate. Symmetry matrices never adapt in the inner loop, so they have none.")
    show_chart(vi.inner_rates_chart(frame), frame, f"{shown.slug}-inner-rates", "dl_inner")


# Each view of the selector, in its order, and the function that draws it.
VIEWS = {"Filters": filters, "Activations": activations, "Symmetry matrices": symmetry_matrices, "Drift": drift,
         "Generated filters": generated_filters, "Filter change": filter_change, "Inner rates": inner_rates}


# -------------------------------------------------------------------- body
def body(path: str) -> None:
    found = checkpointed_run(path)
    if found is None:
        return
    rec, steps = found
    step = choose_step("Checkpoint step", steps, "weights_step", what="checkpoint")
    snap = snapshot(path, step)
    view = st.radio("View", tuple(VIEWS), horizontal=True, key="weights_view")
    VIEWS[view](Shown(path, rec, steps, snap))


rec = select_run("weights_run")
if rec is None:
    st.stop()
render_run(rec, body, "weights", LIVE_REFRESH_S)
