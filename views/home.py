"""Home: what MSR is and what each page shows."""
import streamlit as st

from msr.models import ARCHITECTURES

st.title("MSR Explorer")
st.markdown(
    """
**Meta-learning Symmetries by Reparameterization** (MSR; Zhou, Knowles & Finn, ICLR 2021) writes each
layer's weight as `vec(W) = U v`. The **symmetry matrix** `U` decides which weights share values; the
**filter parameters** `v` are what a task adapts. Meta-training is MAML-style: an inner loop adapts `v` on a
task's few support images with `U` fixed, and an outer loop learns `U`, the initial `v` and the inner learning
rates from the query loss after adaptation. Here the tasks are few-shot digit classification on
**Rotated MNIST**, so a good `U` is one that shares filters across rotations.

| Page | What it shows |
|---|---|
| **Train** | Pick an architecture, angles and learning rates, launch a run, watch loss and accuracy live, stop it. |
| **Runs** | Every saved run: overlay curves, compare configs, download, delete. |
| **Sweeps** | A grid of settings over seeds (e.g. MSR vs MAML on rotated queries): launch, watch, compare means with 95% intervals. |
| **Data** | Digits at each angle, images per angle and per class that a run actually sampled. |
| **Errors** | Wrong predictions per angle over training, per-angle accuracy, confusion matrices. |
| **Weights** | Filters, activations, the learned symmetry matrices and how far they moved. |
| **Symmetry** | Has a run's first layer learned rotation symmetry, and for which angles? |
| **Paper check** | The paper's synthetic problems: does MSR-FC discover convolution, and MSR-Conv rotation sharing, from data? |
"""
)
st.subheader("Architectures")
st.table({"name": list(ARCHITECTURES), "what it is": [a.summary for a in ARCHITECTURES.values()]})
