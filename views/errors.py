"""Errors: which angles a run gets wrong, how that changes over training, and its confusions."""
from __future__ import annotations

import streamlit as st

from ui import present
from ui.inspect_page import inspect_page

LIVE_REFRESH_S = 5
CONFUSION_STEP_PARAM = "confusion_step"  # the confusion matrix's checkpoint, apart from the accuracy's step


@st.cache_data(show_spinner="Adapting to held-out tasks…", max_entries=64)
def _confusion(path: str, step: int, mtime: float, angle_index: int, tasks: int):
    from msr.analysis import inspection as mi
    from ui.page_cache import dataset, snapshot

    snap = snapshot(path, step)
    return mi.confusion_at_angle(snap, dataset(snap.config.data_source, snap.config.data_dir), angle_index, tasks)


def body(path: str) -> None:
    from msr.analysis import tables
    from msr.core.data import DataError
    from msr.store.checkpoints import checkpoint_mtime
    from msr.viz import inspect as vi
    from msr.viz.export import frame_csv
    from ui.downloads import download
    from ui.inspect_widgets import readable_run, show_chart, show_figure
    from ui.step_player import step_player

    rec = readable_run(path)
    if rec is None:
        return
    if not rec.metrics:
        st.info("No evaluation yet; the first one happens at step 0.")
        return
    angles = rec.config.angle_list()
    slug = rec.run_id

    st.subheader("Wrong predictions per angle over training")
    c1, c2 = st.columns(2)
    split = c1.radio("Images", ("test", "train"), horizontal=True, key="errors_split",
                     format_func=lambda s: {"test": "test evaluations", "train": "training queries"}[s])
    measure = c2.radio("Show", ("errors", "rate"), horizontal=True, key="errors_measure",
                       format_func=lambda m: {"errors": "counts", "rate": "rates"}[m])
    frame = tables.per_angle_errors(rec.metrics, angles, split)
    if frame.empty:
        st.info("No training queries have been scored yet.")
    else:
        if not present.presenting():  # on a projector the chart says it; the lecturer says the rest
            st.caption("Test: the query images of the evaluation at each step. Train: the meta-training queries "
                       "since the previous evaluation. Rates divide by the images each angle got, so angles compare "
                       "fairly.")
        show_chart(vi.errors_over_steps_chart(frame, measure), frame, f"{slug}-errors-{split}-{measure}",
                   "dl_errors")

    st.subheader("Accuracy per angle")
    record = tables.record_at(rec.metrics, step_player("At step", [r["step"] for r in rec.metrics], "acc_step", what="one"))
    acc = tables.per_angle_accuracy(record, angles, "test")
    st.caption("Query images of that step's test evaluation, with a 95% Wilson score interval per angle. "
               "It treats images as independent; queries of one task share an adapted model, so the true "
               "uncertainty is somewhat larger.")
    show_chart(vi.accuracy_per_angle_chart(acc), acc, f"{slug}-accuracy-step{record.get('step')}", "dl_acc")
    if acc["images"].sum() > 0:
        worst = acc.loc[acc["acc"].idxmin()]
        st.markdown(f"Hardest angle at step {record.get('step')}: **{worst['angle_label']}** "
                    f"({worst['acc']:.1%}, {worst['low']:.1%}–{worst['high']:.1%}).")

    st.subheader("Confusion matrix at one angle")
    steps = rec.checkpoint_steps()
    if not steps:
        st.info("No checkpoint yet.")
        return
    c1, c2 = st.columns(2)
    angle_i = c1.selectbox("Angle", range(len(angles)), format_func=lambda i: f"{angles[i]:g}°",
                           key="conf_angle")
    tasks = int(c2.number_input("Test tasks", 2, 500, 20, step=10, key="conf_tasks"))
    step = step_player("Checkpoint step", steps, "conf_step", param=CONFUSION_STEP_PARAM, what="one")
    st.caption(f"The checkpoint adapts to {tasks} fixed held-out tasks (the same ones at every step) drawn "
               "like the run's own test tasks, except that every query is shown at this angle. Rows are the "
               "true digit; a digit can only be confused with the others in its task.")
    try:
        conf = _confusion(path, step, checkpoint_mtime(path, step), angle_i, tasks)
    except DataError as exc:
        st.error(str(exc))
        return
    show_figure(vi.confusion_figure(conf), f"{slug}-confusion-{angles[angle_i]:g}deg-step{conf.step}", "dl_conf")
    download("Download CSV", frame_csv(conf.frame()), f"{slug}-confusion-{angles[angle_i]:g}deg-step{conf.step}.csv",
             "text/csv", key="dl_conf_csv")


def page() -> None:
    inspect_page("Errors", "Loading the errors…", "errors", body, LIVE_REFRESH_S)


page()
