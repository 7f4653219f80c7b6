import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from msr.analysis import inspection as mi
from msr.analysis import tables
from msr.core.data import load_source
from msr.mnist.config import RunConfig
from msr.runner.execute import train
from msr.store.reader import load_run
from msr.viz import inspect as vi
from msr.viz.export import chart_png, figure_png

ANGLES = [0.0, 90.0, 180.0]
PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def data():
    return load_source("bundled")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data):
    """Tiny trained runs: {arch: run folder}."""
    root = tmp_path_factory.mktemp("viz_runs")
    out = {}
    for arch in ("shared", "dedicated", "dense"):
        cfg = RunConfig(arch=arch, angles=ANGLES, channels=4, ways=2, shots=1, queries=2, tasks_per_step=2,
                        steps=4, eval_interval=2, eval_tasks=2, conv_latent=8, runs_dir=str(root))
        out[arch] = train(cfg, data=data).run_dir
    return out


def image_axes(fig: Figure):
    """Panels (colorbars draw no image, so they are left out)."""
    return [ax for ax in fig.axes if ax.images]


def test_figures_stay_out_of_pyplot(runs, data):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    snap = mi.load_snapshot(runs["dedicated"])
    fig = vi.filters_figure(mi.first_layer_filters(snap))
    assert isinstance(fig, Figure) and fig.canvas is not None
    assert figure_png(fig).startswith(PNG)
    assert plt.get_fignums() == before
    assert matplotlib.get_backend()  # no interactive window was needed


def test_digit_grid(data):
    images, labels = mi.sample_digits(data.test)
    grid = mi.rotated_grid(images[:4], ANGLES)
    fig = vi.digit_grid_figure(grid, labels[:4].tolist(), ANGLES)
    axes = image_axes(fig)
    assert len(axes) == 4 * 3
    assert np.array_equal(axes[1 * 3 + 2].images[0].get_array(), grid[1, 2])
    assert [ax.get_title() for ax in axes[:3]] == ["0°", "90°", "180°"]
    assert axes[3].get_ylabel() == str(int(labels[1]))


def test_images_per_angle_and_class_charts(runs):
    record = load_run(runs["shared"]).last
    frame = tables.images_per_angle(record, ANGLES)
    chart = vi.images_per_angle_chart(frame)
    assert len(chart.data) == 2 * 3
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["y"]["field"] == "images" and spec["encoding"]["xOffset"]["field"] == "split"
    assert chart.data[chart.data.split == "train"].images.tolist() == record["images_per_angle"]["train"]
    classes = vi.class_distribution_chart(tables.images_per_class(record))
    assert len(classes.data) == 20
    assert classes.data[classes.data.split == "test"].images.tolist() == record["images_per_class"]["test"]
    assert chart_png(chart).startswith(PNG)


def test_errors_over_steps_chart_counts_and_rates(runs):
    records = load_run(runs["dedicated"]).metrics
    frame = tables.per_angle_errors(records, ANGLES)
    counts = vi.errors_over_steps_chart(frame, "errors")
    rates = vi.errors_over_steps_chart(frame, "rate")
    assert len(counts.data) == len(records) * len(ANGLES), "one row per (step, angle)"
    assert counts.data.groupby(["step", "angle"]).size().eq(1).all()
    assert counts.to_dict()["encoding"]["y"]["field"] == "errors"
    assert rates.to_dict()["encoding"]["y"]["field"] == "rate"
    assert counts.to_dict()["encoding"]["color"]["field"] == "angle_label"
    with pytest.raises(ValueError, match="allowed"):
        vi.errors_over_steps_chart(frame, "accuracy")


def test_accuracy_per_angle_chart():
    record = {"step": 9, "per_angle": {"test": {"counts": [10, 20, 30], "errors": [2, 10, 0]}}}
    frame = tables.per_angle_accuracy(record, ANGLES)
    chart = vi.accuracy_per_angle_chart(frame)
    assert len(chart.layer) == 2
    assert len(chart.data) == 3
    assert (chart.data.low <= chart.data.acc).all() and (chart.data.acc <= chart.data.high).all()
    assert chart.data.acc.tolist() == pytest.approx([0.8, 0.5, 1.0])
    spec = chart.to_dict()
    assert "step 9" in str(spec["title"])
    assert spec["layer"][1]["mark"]["type"] == "errorbar"
    assert chart_png(chart).startswith(PNG)


def test_confusion_figure():
    matrix = np.zeros((10, 10), dtype=int)
    matrix[3, 3], matrix[3, 5], matrix[7, 7] = 6, 2, 4
    fig = vi.confusion_figure(mi.Confusion(matrix, 90.0, 4, 3))
    (ax,) = image_axes(fig)
    shown = ax.images[0].get_array()
    assert shown[3, 3] == pytest.approx(0.75) and shown[3, 5] == pytest.approx(0.25) and shown[7, 7] == 1.0
    assert shown[0].sum() == 0, "rows without images stay empty"
    assert sorted(t.get_text() for t in ax.texts) == ["2", "4", "6"]
    assert "90°" in ax.get_title() and "83.3%" in ax.get_title()


@pytest.mark.parametrize("arch, circuits", [("shared", 1), ("dedicated", 3)])
def test_filters_figure_has_one_panel_per_filter(runs, arch, circuits):
    snap = mi.load_snapshot(runs[arch])
    filters = mi.first_layer_filters(snap)
    fig = vi.filters_figure(filters, snap.circuit_labels())
    axes = image_axes(fig)
    assert len(axes) == circuits * 4
    assert np.allclose(axes[-1].images[0].get_array(), filters[-1, 3, 0])
    lim = np.abs(filters).max()
    assert axes[0].images[0].get_clim() == pytest.approx((-lim, lim))
    if circuits > 1:
        assert [axes[c * 4].get_ylabel() for c in range(3)] == snap.circuit_labels()


def test_filter_change_figure(runs):
    path = runs["dedicated"]
    a, b = mi.load_snapshot(path, 0), mi.load_snapshot(path, 4)
    delta = mi.filter_change(a, b)
    fig = vi.filter_change_figure(delta, 0, 4, b.circuit_labels())
    axes = image_axes(fig)
    assert len(axes) == 3 * 4
    assert np.allclose(axes[5].images[0].get_array(), delta[1, 1, 0])
    assert "0 → 4" in fig.get_suptitle()


@pytest.mark.parametrize("arch", ["shared", "dedicated", "dense"])
def test_activation_figures(runs, data, arch):
    snap = mi.load_snapshot(runs[arch])
    images, labels = mi.sample_digits(data.test)
    act = mi.activations(snap, images[2], 1, int(labels[2]))["relu1"]
    fig = vi.activation_mean_figure(act, snap.circuit_labels())
    axes = image_axes(fig)
    assert len(axes) == snap.circuits
    assert np.allclose(axes[0].images[0].get_array(), act.maps[0].mean(0))
    if snap.circuits > 1:
        own = [ax.get_title() for ax in axes if "(own)" in ax.get_title()]
        assert own == ["90° circuit (own)"]
    for circuit in range(snap.circuits):
        per = vi.activation_channels_figure(act, circuit, circuit_labels=snap.circuit_labels())
        panels = image_axes(per)
        assert len(panels) == 4
        assert np.allclose(panels[3].images[0].get_array(), act.maps[circuit, 3])
        assert figure_png(per).startswith(PNG)


def test_symmetry_figures(runs):
    snap = mi.load_snapshot(runs["dedicated"])
    mats = {m.name: m for m in mi.symmetry_matrices(snap)}
    fig = vi.symmetry_figure(mats["conv.sym_C"], snap.circuit_labels())
    axes = image_axes(fig)
    assert len(axes) == 3
    assert np.allclose(axes[2].images[0].get_array(), mats["conv.sym_C"].value[2])
    assert axes[2].images[0].get_array().shape == (9, 9)
    assert axes[0].get_xlabel() == "kernel position"
    dense = mi.load_snapshot(runs["dense"])
    u = next(m for m in mi.symmetry_matrices(dense) if m.name == "conv.sym_U")
    (ax,) = image_axes(vi.symmetry_figure(u))
    assert ax.images[0].get_array().shape == (36, 8)


def test_symmetry_change_is_drawn_on_a_scale_fitted_to_it():
    """A 0.18 move off the identity fills the colour scale, and the title says what is drawn and its range."""
    value = np.eye(4)[None].copy()
    value[0, 0, 1] = 0.18
    value[0, 2, 2] = 0.9
    mat = mi.SymmetryMatrix("conv.sym_A", "conv", "A", value)
    moved = mi.change_from_start(mat)
    assert moved.value[0, 0, 1] == pytest.approx(0.18) and moved.value[0, 2, 2] == pytest.approx(-0.1)
    fig = vi.symmetry_figure(moved, shows="A − I")
    (ax,) = image_axes(fig)
    assert ax.images[0].get_clim() == pytest.approx((-0.18, 0.18))
    assert fig.get_suptitle() == "A − I · first conv (4×4) · colour scale ±0.18"
    raw = vi.symmetry_figure(mat)
    assert image_axes(raw)[0].images[0].get_clim() == pytest.approx((-1, 1))
    assert raw.get_suptitle().startswith("A · first conv")


def test_drift_chart(runs):
    path = runs["dedicated"]
    frame = mi.drift_over_steps(path, load_run(path).checkpoint_steps())
    snap = mi.load_snapshot(path)
    chart = vi.drift_chart(frame, circuit_labels=snap.circuit_labels())
    assert len(chart.data) == len(frame)
    assert chart.data.series.nunique() == 5 * 3, "one line per matrix and circuit"
    assert "first conv A · 90° circuit" in set(chart.data.series)
    lines = chart.to_dict()["layer"][0]
    assert lines["encoding"]["color"]["field"] == "matrix_label"
    assert all("_" not in (t.get("title") or "") for t in lines["encoding"]["tooltip"]), "titles in words"
    ident = vi.drift_chart(frame, "from_identity", step=4)
    assert set(ident.data.kind) == {"A", "B", "C"}
    spec = ident.to_dict()
    assert spec["layer"][0]["encoding"]["y"]["field"] == "from_identity"
    assert spec["layer"][1]["mark"]["type"] == "rule", "the chosen step is marked"
    single = vi.drift_chart(mi.drift_over_steps(runs["shared"], [0, 4]))
    assert single.data.series.nunique() == 5 and not single.data.series.str.contains("circuit").any()
    log = vi.drift_chart(frame, log=True)
    assert (log.data.rel_from_init > 0).all(), "a log axis leaves the zero distances of the start out"
    assert log.to_dict()["layer"][0]["encoding"]["y"]["scale"]["type"] == "log"
    with pytest.raises(ValueError, match="allowed"):
        vi.drift_chart(frame, "size")


def test_drift_log_default_and_table():
    rows = [{"step": s, "matrix": m, "kind": k, "circuit": 0, "rel_from_init": v * s, "from_identity": i}
            for s in (0, 10) for m, k, v, i in (("conv.sym_A", "A", 0.02, 0.1), ("head.sym_U", "U", 0.2, np.nan))]
    frame = pd.DataFrame(rows, columns=mi.DRIFT_COLUMNS)
    assert vi.wide_spread(frame), "2.0 against 0.2: ten times apart"
    assert not vi.wide_spread(frame.assign(rel_from_init=frame.rel_from_init.clip(upper=1.0)))
    table = vi.drift_table(frame, 10)
    assert list(table.columns) == ["Matrix", "Distance from the first checkpoint", "Distance from the identity"]
    assert table["Matrix"].tolist() == ["first conv A", "linear head U"]
    assert table["Distance from the first checkpoint"].tolist() == pytest.approx([0.2, 2.0])


def test_filter_change_table(runs):
    path = runs["dedicated"]
    a, b = mi.load_snapshot(path, 0), mi.load_snapshot(path, 4)
    table = vi.filter_change_table(mi.filter_change_frame(a, b), b.circuit_labels())
    assert list(table.columns) == ["Circuit", "Filter", "Size at step 0", "Size at step 4", "Change",
                                   "Change relative to size"]
    assert table["Circuit"].iloc[-1] == "180° circuit"


def test_generated_filters_figures(runs):
    dense = mi.load_snapshot(runs["dense"])
    gens = {g.layer: g for g in mi.generated_filters(dense)}
    conv_fig = vi.generated_filters_figure(gens["conv"])
    axes = image_axes(conv_fig)
    assert len(axes) == 8, "one panel per latent column"
    tiled = axes[0].images[0].get_array()
    assert np.allclose(np.asarray(tiled[:3, :3]), gens["conv"].basis[0, 0, 0, 0])
    assert np.allclose(np.asarray(tiled[4:7, 4:7]), gens["conv"].basis[0, 0, 3, 0])
    head_fig = vi.generated_filters_figure(gens["head"])
    axes = image_axes(head_fig)
    assert len(axes) == (3 + 1) * 2, "latent rows plus the weight row, one column per task label"
    assert np.allclose(axes[1].images[0].get_array(), gens["head"].basis[0, 0, 1])
    assert np.allclose(axes[-1].images[0].get_array(), gens["head"].effective[0, 1])
    ded = mi.load_snapshot(runs["dedicated"])
    (g,) = mi.generated_filters(ded)
    fig = vi.generated_filters_figure(g, 2, ded.circuit_labels()[2])
    assert np.allclose(image_axes(fig)[0].images[0].get_array(), g.basis[2, 0, 0])
    assert "180° circuit" in fig.get_suptitle()


def test_inner_rates_chart(runs):
    records = load_run(runs["shared"]).metrics
    frame = tables.inner_rates_frame(records)
    chart = vi.inner_rates_chart(frame)
    assert len(chart.data) == len(records) * 4
    spec = chart.to_dict()
    assert spec["encoding"]["color"]["field"] == "tensor_label"
    assert set(chart.data.tensor_label) == {"first conv weights", "first conv bias", "linear head weights",
                                            "linear head bias"}
    assert spec["encoding"]["y"]["scale"]["zero"] is False, "the axis fits the rates, so their change shows"


def test_readable_names():
    assert mi.readable_name("conv.sym_A") == "first conv A"
    assert mi.readable_name("head.sym_U") == "linear head U"
    assert mi.readable_name("relu1") == "first conv + ReLU"
    assert mi.readable_name("first-layer filters") == "first-layer filters"
