"""Home: what MSR is and what each page shows."""
from __future__ import annotations

import streamlit as st

from msr.core.errors import ConfigError
from msr.core.choices import ARCHITECTURES, CONV_LAYERS, HEAD_LAYERS
from msr.mnist.config import PRESET_SUMMARIES
from ui import train_form
from ui.run_picker import runs_dir

INTRO = """
**Meta-learning Symmetries by Reparameterization** (MSR; Zhou, Knowles & Finn, ICLR 2021) writes each
layer's weight as `vec(W) = U v`. The **symmetry matrix** `U` decides which weights share values; the
**filter parameters** `v` are what a task adapts. Meta-training is MAML-style: an inner loop adapts `v` on a
task's few support images with `U` fixed, and an outer loop learns `U`, the initial `v` and the inner learning
rates from the query loss after adaptation. Here the tasks are few-shot digit classification on
**Rotated MNIST**. Whether a `U` learns to share filters across rotations there, and where MSR's gain over
plain MAML comes from, the app answers with measurements and their controls: the **Sweeps** page's ablation
varies the first layer and the head apart, each at its own inner rate; the **Symmetry** page reads a first
layer against an exact group conv and a random one; **Paper check** reruns the paper's own problems.

| Page | What it shows |
|---|---|
| **Train** | Pick an architecture, angles and learning rates, launch a run, watch loss and accuracy live, stop it. |
| **Runs** | Every saved run: overlay curves, compare configs, download, delete. |
| **Sweeps** | A grid of settings over seeds: launch, watch, compare means with 95% intervals; the ready-made ablation asks where MSR's gain comes from (first layer or head). |
| **Data** | Digits at each angle, images per angle and per class that a run actually sampled. |
| **Errors** | Wrong predictions per angle over training, per-angle accuracy, confusion matrices. |
| **Weights** | Filters, activations, the learned symmetry matrices and how far they moved. |
| **Symmetry** | Has a run's first layer learned rotation symmetry, and for which angles? |
| **Paper check** | The paper's synthetic problems: does MSR-FC discover convolution, and MSR-Conv rotation sharing, from data? |
"""


def page() -> None:
    st.title("MSR Explorer")
    row = st.container(horizontal=True, vertical_alignment="center")
    if row.button("Train the demo model", type="primary", icon=":material/play_arrow:",
                  help=f"The demo preset: {PRESET_SUMMARIES['demo']}. The Train page then shows it learn."):
        try:
            train_form.launch(train_form.preset_values("demo"), runs_dir(), preset="demo")
        except ConfigError as exc:
            st.error(f"The demo run was not started: {exc}")
        else:
            st.switch_page("views/train.py")
    row.page_link("views/train.py", label="Choose your own settings", icon=":material/tune:")
    st.markdown(INTRO)
    st.subheader("Architectures")
    st.table({"name": list(ARCHITECTURES),
              "first layer": [CONV_LAYERS[a.conv_layer].label for a in ARCHITECTURES.values()],
              "head": [HEAD_LAYERS[a.head_layer].label for a in ARCHITECTURES.values()],
              "what it is": [a.summary for a in ARCHITECTURES.values()]})
    st.caption("The first layer and the head can also be chosen apart (the Train form's *First layer* and *Head*, "
               "`--conv-layer`, `--head-layer`): MSR's models differ from plain MAML in both places, so a "
               "comparison that changes both cannot say which one helped.")


page()
