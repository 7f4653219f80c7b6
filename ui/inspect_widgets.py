"""Widgets shared by the run inspection pages (Data, Errors, Weights, Symmetry).

Charts and pictures with their downloads, and a page body drawn live while
its run trains, or once after. (The step slider is ui.step_player's.)
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from msr.store.files import RunFolderError
from msr.store.reader import RunRecord, load_run
from msr.viz.export import figure_png, frame_csv
from ui.downloads import download
from ui.live import live, run_training
from ui.present import chart as present_chart


def show_png(png: bytes, name: str, key: str) -> None:
    st.image(png)
    download("Download PNG", png, f"{name}.png", "image/png", key=key)


def show_figure(fig, name: str, key: str) -> None:
    show_png(figure_png(fig), name, key)


def show_chart(chart, frame, name: str, key: str) -> None:
    present_chart(chart)
    download("Download CSV", frame_csv(frame), f"{name}.csv", "text/csv", key=key)


def guarded(body: Callable[[str], None], path: str) -> None:
    """body(path), with a run folder or checkpoint that cannot be read (a
    damaged, truncated or foreign checkpoint, a file of the wrong shape) said
    in one line instead of an exception box."""
    try:
        body(path)
    except RunFolderError as exc:  # CheckpointError included
        st.error(f"This run cannot be shown: {exc}")


def render_run(rec: RunRecord, body: Callable[[str], None], key: str, refresh_s: int) -> None:
    """Draw body(run path); while the run is training, redraw it every
    refresh_s seconds (a toggle stops following) and switch to a plain page
    once it ends. A damaged file is one line (see :func:`guarded`)."""
    if not rec.active:
        guarded(body, str(rec.path))
        return
    follow = st.toggle(f"Follow the live run (refresh every {refresh_s} s)", value=True, key=f"{key}_follow")
    live(lambda: guarded(body, str(rec.path)), refresh_s if follow else None, still_active=run_training(rec.path))


def readable_run(path: str, with_metrics: bool = True) -> RunRecord | None:
    """The run in ``path``, or None after saying why it cannot be read."""
    rec = load_run(path, with_metrics=with_metrics)
    if rec.damaged or rec.config is None:
        st.error(f"This run cannot be read: {rec.damaged}")
        return None
    return rec


def checkpointed_run(path: str, with_metrics: bool = True) -> tuple[RunRecord, list[int]] | None:
    """The run and its kept checkpoint steps, or None after saying why there is nothing to show."""
    rec = readable_run(path, with_metrics)
    if rec is None:
        return None
    steps = rec.checkpoint_steps()
    if not steps:
        st.info("This run has no checkpoint yet; the first one is written at step 0's evaluation.")
        return None
    return rec, steps
