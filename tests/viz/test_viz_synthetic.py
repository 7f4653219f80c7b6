"""The synthetic problems' charts and figures (msr.viz.synthetic): log axes, results, history, U and W
pictures, and the frames for download."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from conftest import toeplitz
from msr.analysis import tables
from msr.viz import synthetic as vz


# ------------------------------------------------------------------- charts
def _summaries():
    return [{"problem": "rank1", "model": m, "latent": 3 if m == "msr-fc" else None, "steps": 10,
             "test_mse": v, "test_err": e, "conv_score": s, "seconds": 1.0}
            for m, v, e, s in [("maml-fc", 2.8, 0.2, 0.02), ("maml-conv", 0.15, 0.02, 1.0),
                               ("msr-fc", 0.05, 0.08, 0.99)]]


def _chart_rows(spec: dict) -> list[dict]:
    return next(iter(spec["datasets"].values()))


def test_log_domain_spans_whole_decades():
    assert vz.log_domain([0.146, 2.83]) == [0.1, 10.0]
    assert vz.log_domain([2.8, 2.9]) == [1.0, 10.0]
    assert vz.log_domain([1.0]) == [1.0, 10.0]  # never a domain of one point
    assert vz.log_domain([0.0, None, float("nan")]) == [0.1, 10.0]  # nothing positive: a default


def test_results_frame_and_bar_chart():
    frame = tables.results_frame(_summaries())
    assert list(frame["label"]) == ["MAML-FC", "MAML-Conv", "MSR-FC"]
    assert frame.loc[0, "lo"] == pytest.approx(2.6) and frame.loc[0, "hi"] == pytest.approx(3.0)
    assert frame.loc[2, "lo"] == 0.0  # an MSE interval is clipped at 0
    spec = vz.mse_bar_chart(frame).to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["bar", "rule", "tick"]
    assert spec["layer"][1]["encoding"]["y"]["field"] == "lo" and spec["layer"][1]["encoding"]["y2"]["field"] == "hi"
    # A log axis, so 0.05 and 2.8 both read; its title says so.
    y = spec["layer"][0]["encoding"]["y"]
    assert y["scale"]["type"] == "log" and y["axis"]["title"] == "test MSE (log scale)"
    assert y["scale"]["domain"] == [0.01, 10.0] and {0.01, 0.1, 1, 10} <= set(y["axis"]["values"])
    # The interval clipped at 0 is drawn down to the axis (a log axis has no 0).
    assert min(row["lo"] for row in _chart_rows(spec)) == pytest.approx(0.01)
    assert {t.get("title") for t in spec["layer"][0]["encoding"]["tooltip"]} >= {"model", "test MSE", "± 95%",
                                                                                 "convolution score", "steps"}
    two = tables.results_frame(_summaries() + [dict(s, problem="rank2") for s in _summaries()])
    assert "facet" in vz.mse_bar_chart(two).to_dict()


def test_history_frame_and_charts():
    hist = {"msr-fc": [{"step": 0, "test_mse": 3.0, "test_err": 0.3, "conv_score": 0.0, "u_conv_score": 0.0},
                       {"step": 10, "test_mse": 1.0, "test_err": 0.1, "conv_score": 0.9, "u_conv_score": 0.95}],
            "maml-fc": [{"step": 0, "test_mse": 3.1, "test_err": 0.3, "conv_score": 0.001}]}
    frame = tables.history_frame(hist)
    assert len(frame) == 3 and set(frame["label"]) == {"MSR-FC", "MAML-FC"}
    spec = vz.history_chart(frame, "conv_score").to_dict()
    assert spec["encoding"]["y"]["field"] == "conv_score" and spec["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert spec["encoding"]["color"]["scale"]["domain"] == ["MSR-FC", "MAML-FC"]  # only the models present
    assert [t["title"] for t in spec["encoding"]["tooltip"]] == ["model", "outer step", "convolution score"]
    mse = vz.history_chart(frame, "test_mse").to_dict()["encoding"]["y"]
    assert mse["scale"]["type"] == "log" and mse["axis"]["title"] == "test MSE (log scale)"
    with pytest.raises(ValueError):
        vz.history_chart(frame, "accuracy")


def test_symmetry_and_weight_figures_draw_the_matrices():
    g = torch.Generator().manual_seed(0)
    cols = torch.stack([toeplitz([1.0, 0, 0]), toeplitz([0, 1.0, 0]), torch.randn(68, 70, generator=g)])
    fig = vz.symmetry_figure(cols, step=100)
    assert isinstance(fig, Figure)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    np.testing.assert_allclose(images[2].get_array(), cols[2].numpy())
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0] == "column 1: score 1.000" and "step 100" in fig.get_suptitle()
    many = vz.symmetry_figure(torch.randn(30, 68, 70, generator=g), max_columns=8)
    assert sum(1 for ax in many.axes if ax.images) == 8 and "first 8 of 30" in many.get_suptitle()

    wfig = vz.weight_figure(toeplitz([0.5, -1.0, 0.25]), "W")
    img_axes = [ax for ax in wfig.axes if ax.images]
    assert len(img_axes) == 2 and "conv score 1.000" in img_axes[0].get_title()
    assert "+0.500, -1.000, +0.250" in wfig.get_suptitle()


def test_frames_for_download_and_png_export():
    from msr.viz.export import chart_png, figure_png, frame_csv

    w = toeplitz([1.0, 2.0, 3.0])
    mf = vz.matrix_frame(w)
    assert len(mf) == 68 * 70 and mf.loc[(mf.row == 5) & (mf.col == 7), "value"].item() == 3.0
    sf = vz.symmetry_frame(torch.stack([w, -w]))
    assert list(sf["column"].unique()) == [1, 2] and len(sf) == 2 * 68 * 70
    assert pd.read_csv(__import__("io").BytesIO(frame_csv(mf))).shape == (68 * 70, 3)
    assert figure_png(vz.weight_figure(w)).startswith(b"\x89PNG")
    assert chart_png(vz.mse_bar_chart(tables.results_frame(_summaries()))).startswith(b"\x89PNG")
