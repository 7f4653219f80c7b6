"""What the pages read from disk, loaded once and shared by every page and session.

A checkpoint is cached under its file's modification time as well as its
step, so a checkpoint rewritten under the same step (a resumed run) is read
again.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from msr import inspect as mi
from msr.data import MnistSplits, load_source
from msr.runs import checkpoint_mtime, load_checkpoint
from msr.synthetic.run import Snapshot as SyntheticSnapshot, snapshot_from_checkpoint


@st.cache_resource(show_spinner="Loading digits…")
def dataset(source: str, data_dir: str) -> MnistSplits:
    """A run's digits (its config's data_source and data_dir). Raises DataError."""
    return load_source(source, data_dir)


@st.cache_resource(show_spinner="Loading checkpoint…", max_entries=24)
def _snapshot(path: str, step: int, mtime: float) -> mi.Snapshot:
    return mi.load_snapshot(path, step)


def snapshot(path: str | Path, step: int) -> mi.Snapshot:
    """A Rotated MNIST run's model at a checkpoint step (msr.inspect.load_snapshot)."""
    return _snapshot(str(path), step, checkpoint_mtime(path, step))


@st.cache_resource(show_spinner=False, max_entries=32)
def _synthetic_snapshot(path: str, step: int, mtime: float) -> SyntheticSnapshot | None:
    return snapshot_from_checkpoint(load_checkpoint(path, step))


def synthetic_snapshot(path: str | Path, step: int) -> SyntheticSnapshot | None:
    """A synthetic run's weight pictures at a checkpoint step (None: the
    checkpoint holds none). Raises CheckpointError."""
    return _synthetic_snapshot(str(path), step, checkpoint_mtime(path, step))
