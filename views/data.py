"""Data: a run's digits at each of its angles, and the images its tasks drew per angle and digit.

The digits are shown rotated at every angle of the run; the counts are of
the images each angle and each digit received in the tasks the run actually
sampled.
"""
from __future__ import annotations

import streamlit as st

from ui.inspect_page import inspect_page

LIVE_REFRESH_S = 5
MAX_GRID_ANGLES = 12


@st.cache_data(show_spinner="Drawing the digits…", max_entries=32)
def _grid_png(source: str, data_dir: str, angles: tuple, per_class: int) -> bytes:
    from msr.analysis import inspection as mi
    from msr.viz import inspect as vi
    from msr.viz.export import figure_png
    from ui.page_cache import dataset

    images, labels = mi.sample_digits(dataset(source, data_dir).test, per_class=per_class)
    return figure_png(vi.digit_grid_figure(mi.rotated_grid(images, angles), labels.tolist(), angles))


def digit_grid(config, slug: str) -> None:
    from msr.core.data import DataError
    from ui.downloads import download

    st.subheader("Digits at each angle")
    angles = config.angle_list()
    if len(angles) > MAX_GRID_ANGLES:
        every = -(-len(angles) // MAX_GRID_ANGLES)
        default = angles[::every]
        st.caption(f"The run has {len(angles)} angles; every {every}th is shown by default.")
    else:
        default = angles
    shown = st.multiselect("Angles", angles, default=default, format_func=lambda a: f"{a:g}°", key="grid_angles")
    per_class = st.slider("Digits per class", 1, 3, 1, key="grid_per_class")
    if not shown:
        st.info("Pick at least one angle.")
        return
    shown = tuple(sorted(shown, key=angles.index))
    try:
        png = _grid_png(config.data_source, config.data_dir, shown, per_class)
    except DataError as exc:
        st.error(str(exc))
        return
    st.caption("Held-out digits, rotated counter-clockwise and normalized exactly as the model sees them.")
    st.image(png)
    download("Download PNG", png, f"{slug}-digits.png", "image/png", key="dl_grid")


def counts(path: str) -> None:
    from msr.analysis import tables
    from msr.store.reader import load_run
    from msr.viz import inspect as vi
    from ui.inspect_widgets import show_chart
    from ui.step_player import step_player

    rec = load_run(path)
    if not rec.metrics:
        st.info("No evaluation yet: counts appear with the first record (step 0).")
        return
    angles = rec.config.angle_list()
    slug = rec.run_id
    st.subheader("Images the tasks drew")
    record = tables.record_at(rec.metrics, step_player("Counted up to step", [r["step"] for r in rec.metrics],
                                                       "data_step", what="one"))
    st.caption("Support and query images of every task the run sampled up to that step: training tasks "
               "(train) and evaluation tasks (test).")
    per_angle = tables.images_per_angle(record, angles)
    show_chart(vi.images_per_angle_chart(per_angle), per_angle, f"{slug}-images-per-angle-step{record['step']}",
               "dl_per_angle")
    per_class = tables.images_per_class(record)
    show_chart(vi.class_distribution_chart(per_class), per_class,
               f"{slug}-images-per-class-step{record['step']}", "dl_per_class")


def page() -> None:
    inspect_page("Data", "Loading the digits…", "data", counts, LIVE_REFRESH_S, fold=False,
                 before=lambda rec: digit_grid(rec.config, rec.run_id))


page()
