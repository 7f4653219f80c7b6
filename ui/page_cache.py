"""What the pages read from disk, loaded once and shared by every page and session.

A checkpoint is cached under its file's modification time as well as its
step, so a checkpoint rewritten under the same step (a resumed run) is read
again.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from msr.analysis import inspection as mi
from msr.core.data import MnistSplits, load_source
from msr.mnist.snapshot import ModelSnapshot
from msr.store.checkpoints import checkpoint_mtime, load_checkpoint
from msr.synthetic.trainer import WeightSnapshot, weight_snapshot


@st.cache_resource(show_spinner="Loading digits…")
def dataset(source: str, data_dir: str) -> MnistSplits:
    """A run's digits (its config's data_source and data_dir). Raises DataError."""
    return load_source(source, data_dir)


@st.cache_resource(show_spinner="Loading checkpoint…", max_entries=24)
def _snapshot(path: str, step: int, mtime: float) -> ModelSnapshot:
    return mi.load_snapshot(path, step)


def snapshot(path: str | Path, step: int) -> ModelSnapshot:
    """A Rotated MNIST run's model at a checkpoint step (msr.analysis.inspection.load_snapshot)."""
    return _snapshot(str(path), step, checkpoint_mtime(path, step))


@st.cache_resource(show_spinner=False, max_entries=32)
def _synthetic_snapshot(path: str, step: int, mtime: float) -> WeightSnapshot | None:
    return weight_snapshot(load_checkpoint(path, step))


def synthetic_snapshot(path: str | Path, step: int) -> WeightSnapshot | None:
    """A synthetic run's weight pictures at a checkpoint step (None: the
    checkpoint holds none). Raises CheckpointError."""
    return _synthetic_snapshot(str(path), step, checkpoint_mtime(path, step))
