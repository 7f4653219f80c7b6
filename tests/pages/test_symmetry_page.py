"""The Symmetry page: its chart builders on a hand-made lens report (exact
numbers, no training), and the page itself on a tiny Rotated MNIST run, a
tiny rot4 run and a 1-D run it must not offer."""
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from streamlit.testing.v1 import AppTest

from msr.analysis.lens import LensReport, LensStep, informative_angles, verdict
from msr.analysis.tables import equivariance_frame, invariance_frame, orbit_frame, reference_frame
from msr.cli.main import main
from msr.core.symmetry import agreement
from msr.viz import symmetry as vs
from msr.viz.export import figure_png

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = {
    "group_conv": {"equivariance": {45.0: 0.20, 90.0: 0.0}, "orbit_score": 1.0, "orbit_scores": {"C4": 1.0}},
    "random_conv": {"equivariance": {45.0: 0.25, 90.0: 0.65}, "orbit_score": 0.03, "orbit_scores": {"C4": 0.03}},
}


def exact_bank(rng) -> np.ndarray:
    """Two filters with their 90° turns (two orbits of 4) and one loose filter."""
    base = rng.normal(size=(2, 3, 3))
    turned = [np.rot90(b, r) for b in base for r in range(4)]
    return np.stack(turned + [rng.normal(size=(3, 3))])


@pytest.fixture
def report() -> LensReport:
    rng = np.random.default_rng(0)
    start = LensStep(0, {"45": 0.26, "90": 0.66}, 0.02, {"C4": 0.02}, isotropic_share=0.33,
                     u_equivariance={"45": 0.24, "90": 0.6}, u_orbit_score=0.1, invariance={"90": 0.4},
                     invariance_chance={"90": 0.3}, invariance_kappa={"90": 1 / 7},
                     accuracy={"0": 0.5, "90": 0.3}, filters=rng.normal(size=(9, 3, 3)),
                     orbits=[list(range(9))], generated=rng.normal(size=(9, 3, 3)), generated_orbits=[[0, 1], *[
                         [i] for i in range(2, 9)]])
    end = LensStep(10, {"45": 0.21, "90": 0.05}, 0.9, {"C4": 0.9}, isotropic_share=0.3,
                   u_equivariance={"45": 0.2, "90": 0.01}, u_orbit_score=0.95, invariance={"90": 0.85},
                   invariance_chance={"90": 0.25}, invariance_kappa={"90": 0.8}, accuracy={"0": 0.9, "90": 0.85},
                   filters=exact_bank(rng),
                   orbits=[[0, 1, 2, 3], [4, 5, 6, 7], [8]], generated=exact_bank(rng),
                   generated_orbits=[[0, 1, 2, 3], [4, 5, 6, 7], [8]])
    return LensReport("run-x", "mnist", "dense on Rotated MNIST", [45.0, 90.0], REFERENCE, [start, end])


def layer_data(chart) -> list[pd.DataFrame]:
    """Each layer's table (Altair hoists a table all layers share to the top)."""
    return [layer.data if isinstance(layer.data, pd.DataFrame) else chart.data for layer in chart.layer]


def rule_values(chart, field: str) -> list[float]:
    return [float(v) for layer, data in zip(chart.layer, layer_data(chart))
            if layer.to_dict().get("mark", {}).get("type") == "rule" for v in data[field]]


# ------------------------------------------------------------ chart builders
def test_equivariance_chart_has_one_line_per_angle_and_layer_and_the_references(report):
    eq, ref = equivariance_frame(report), reference_frame(report)
    chart = vs.equivariance_chart(eq, ref, angle=90.0)
    lines = layer_data(chart)[0]
    assert len(lines) == 2 * 2 * 2, "steps × angles × layers"
    assert sorted(set(lines["angle_label"])) == ["45°", "90°"]
    assert sorted(rule_values(chart, "error")) == [0.0, 0.65], "exact and random conv at 90°"
    spec = chart.to_dict()
    assert spec["config"]["axis"]["labelFontSize"] >= 12
    assert spec["layer"][0]["encoding"]["strokeDash"]["field"] == "layer"
    assert spec["height"] >= 260

    applied_only = vs.equivariance_chart(eq, ref, angle=None, layers=(vs.APPLIED,))
    assert len(applied_only.layer) == 1, "no reference rules without a chosen angle"
    assert set(layer_data(applied_only)[0]["layer"]) == {vs.APPLIED}


def test_orbit_chart_sits_between_the_random_and_the_exact_reference(report):
    chart = vs.orbit_chart(orbit_frame(report), report.reference)
    assert len(layer_data(chart)[0]) == 4, "applied and generated at two steps"
    applied = vs.orbit_chart(orbit_frame(report), report.reference, (vs.APPLIED,))
    assert set(layer_data(applied)[0]["layer"]) == {vs.APPLIED}, "what U generates can be left out"
    assert sorted(rule_values(chart, "orbit_score")) == [0.03, 1.0]
    names = layer_data(chart)[1]["name"].tolist()
    assert names == ["exact group conv (1.00)", "random conv (0.03)"], "named with their values in the legend"


def test_angle_errors_chart_marks_both_references_at_every_angle(report):
    eq, ref = equivariance_frame(report), reference_frame(report)
    frame = vs.angle_errors_frame(eq, ref, 10, vs.LAYERS)
    assert len(frame) == 2 * 2 + 2 * 2, "model layers and references, per angle"
    chart = vs.angle_errors_chart(frame, 10)
    bars, ticks = layer_data(chart)
    assert set(bars["series"]) == set(vs.LAYERS)
    assert set(ticks["series"]) == {vs.EXACT, vs.RANDOM}
    assert ticks.groupby("series").size().tolist() == [2, 2]
    assert chart.to_dict()["height"] >= 260


def test_invariance_is_read_beyond_chance_beside_its_accuracy(report):
    frame = invariance_frame(report)
    chart = vs.invariance_chart(frame)
    spec = chart.to_dict()
    assert len(chart.data) == 2 and chart.data["kappa"].tolist() == pytest.approx([1 / 7, 0.8])
    assert "kappa" in spec["encoding"]["y"]["title"]
    tips = {t["title"] for t in spec["encoding"]["tooltip"]}
    assert {"predictions unchanged", "unchanged by chance"} <= tips
    acc = vs.accuracy_chart(frame)
    assert len(acc.data) == 4 and acc.to_dict()["encoding"]["y"]["axis"]["format"] == "%"
    assert sorted(acc.data["angle_label"].unique()) == ["0°", "90°"], "the upright accuracy is shown too"
    colours = [c.to_dict()["encoding"]["color"]["scale"] for c in (chart, acc)]
    assert colours[0] == colours[1], "an angle has the same colour in both charts"


def test_filter_grid_has_one_row_per_orbit_and_wraps_long_ones(report):
    open_before = plt.get_fignums()
    end = report.steps[-1]
    rows = vs.orbit_rows(end.orbits)
    assert [label for label, _ in rows] == ["orbit 1 (4 filters)", "orbit 2 (4 filters)", "no partner (1 filter)"]
    assert [r for _, r in rows] == end.orbits, "rotation order kept"
    fig = vs.orbit_filters_figure(end.filters, end.orbits, "applied")
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 9, "every filter once (the colour bar draws no image)"
    labels = [ax.get_ylabel() for ax in panels if ax.get_ylabel()]
    assert len(labels) == len(end.orbits)
    image = panels[0].images[0]
    assert image.get_clim()[0] == -image.get_clim()[1], "scale centred at 0"
    assert figure_png(fig).startswith(b"\x89PNG")
    assert plt.get_fignums() == open_before, "kept out of pyplot"

    long = vs.orbit_rows(report.steps[0].orbits, wrap=8)
    assert [len(r) for _, r in long] == [8, 1] and long[1][0] == "", "one 9-filter orbit on two rows"
    singles = vs.orbit_rows(report.steps[0].generated_orbits)
    assert [label for label, _ in singles] == ["orbit 1 (2 filters)", "no partner (7 filters)"]


def test_tooltips_name_their_fields_in_words(report):
    eq, ref = equivariance_frame(report), reference_frame(report)
    charts = [vs.equivariance_chart(eq, ref, 90.0), vs.orbit_chart(orbit_frame(report), report.reference),
              vs.angle_errors_chart(vs.angle_errors_frame(eq, ref, 10), 10),
              vs.invariance_chart(invariance_frame(report)), vs.accuracy_chart(invariance_frame(report))]
    for chart in charts:
        spec = chart.to_dict()
        for part in spec.get("layer", [spec]):
            for tip in part["encoding"].get("tooltip", []):
                assert "_" not in tip.get("title", tip["field"]), tip


def test_numbers_and_headlines(report):
    frame = vs.numbers_frame(report)
    assert set(frame["measure"]) == {"equivariance error", "orbit score", "unchanged predictions",
                                     "unchanged by chance", "unchanged beyond chance (kappa)", "accuracy",
                                     "isotropic share"}
    refs = frame[frame["step"].isna()]
    assert set(refs["layer"]) == {vs.EXACT, vs.RANDOM} and len(refs) == 2 * 2 + 2
    heads = vs.headlines(report, [0.0, 45.0, 90.0])
    # 45° does not inform (the exact group conv is not clearly better than a random conv there): no run-angle error
    assert [h.label for h in heads] == ["Orbit score", "Error at 90°", "Isotropic share", "U orbit score"]
    assert heads[1].text() == "0.05" and heads[1].delta_text(0) == "-0.61 since step 0"
    assert "0.65" in heads[1].help, "the random reference is named"


# -------------------------------------------------------------------- page
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One folder with tiny runs: Rotated MNIST, rot4 with a dense U, rot8_flip
    with a plain conv (no U), and a 1-D one."""
    root = tmp_path_factory.mktemp("symmetry_runs")
    assert main(["train", "--preset", "demo", "--steps", "20", "--eval-interval", "10", "--runs-dir", str(root),
                 "--quiet"]) == 0
    common = ["--steps", "20", "--eval-interval", "10", "--test-tasks", "10", "--no-cache", "--runs-dir", str(root),
              "--quiet"]
    assert main(["synthetic", "--problem", "rot4", "--model", "msr-conv-dense", *common]) == 0
    assert main(["synthetic", "--problem", "rot8_flip", "--model", "maml-conv", *common]) == 0
    assert main(["synthetic", "--problem", "rank1", *common]) == 0
    return root


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_page_answers_for_mnist_rot4_and_rot8_flip_and_leaves_1d_runs_out(runs):
    at = AppTest.from_file(str(ROOT / "views" / "symmetry.py"), default_timeout=240)
    at.session_state["runs_dir"] = str(runs)
    at.run()
    assert_clean(at)
    picker = at.selectbox(key="symmetry_run")
    assert at.query_params["run"] == Path(picker.value).name, "the run is kept in the address"
    names = [Path(p).name for p in picker.options]
    assert len(names) == 3 and not any("rank1" in n for n in names)
    assert any("1-D problems" in c.value for c in at.caption)

    seen = set()
    for option in picker.options:
        at.selectbox(key="symmetry_run").set_value(option).run()
        assert_clean(at)
        kind = next((k for k in ("rot4", "rot8_flip") if k in option), "mnist")
        seen.add(kind)
        has_u = kind != "rot8_flip"
        assert any(i.value.startswith("At step 20: the layer") for i in at.info), "the verdict"
        labels = [m.label for m in at.metric]
        assert labels[0] == "Orbit score" and "Error at 90°" in labels
        assert ("U orbit score" in labels) == has_u
        assert ("Orbit score, 45°" in labels) == (kind == "rot8_flip")
        assert at.toggle(key="symmetry_show_u").disabled != has_u
        assert len(at.get("vega_lite_chart")) == (5 if kind == "mnist" else 3), "invariance and accuracy on MNIST only"
        assert len(at.get("image")) == (2 if has_u else 1), "applied filters, and what U generates"
        assert "Download all numbers (CSV)" in [b.label for b in at.get("download_button")]
        notes = [e for e in at.expander if "What was tried" in e.label]
        assert bool(notes) == (kind == "mnist"), "what the search on digits found, on digit runs"
        if notes:
            assert any("U did not learn rotation sharing" in m.value for m in notes[0].markdown)
    assert seen == {"mnist", "rot4", "rot8_flip"}

    at.selectbox(key="symmetry_run").set_value(next(o for o in picker.options if "rot4" in o)).run()
    at.toggle(key="symmetry_show_u").set_value(False).run()
    at.select_slider(key="symmetry_step").set_value(0).run()
    assert_clean(at)
    assert len(at.get("image")) == 2


def test_page_opens_the_run_and_step_a_link_names(runs):
    rot4 = next(p.name for p in runs.iterdir() if "rot4" in p.name)
    at = AppTest.from_file(str(ROOT / "views" / "symmetry.py"), default_timeout=240)
    at.session_state["runs_dir"] = str(runs)
    at.query_params["run"] = rot4
    at.query_params["step"] = "9"  # the nearest measured checkpoint is step 10
    at.run()
    assert_clean(at)
    assert Path(at.selectbox(key="symmetry_run").value).name == rot4
    assert at.select_slider(key="symmetry_step").value == 10
    assert any(c.value.startswith("Filters arranged") for c in at.caption)


def test_page_without_runs(tmp_path):
    at = AppTest.from_file(str(ROOT / "views" / "symmetry.py"), default_timeout=60)
    at.session_state["runs_dir"] = str(tmp_path / "none")
    at.run()
    assert_clean(at)
    assert any("No run to read yet" in i.value for i in at.info)


# ---------------------------------------------------------------- the verdict
def test_verdict_rests_only_on_angles_where_the_references_differ(report):
    text = verdict(report)
    assert "close to rotation-equivariant at 90°" in text
    assert "At 45° an exact group conv is not clearly better than a random conv" in text
    assert "45°" not in text.split("close to rotation-equivariant at")[1].split(".")[0]
    assert informative_angles(REFERENCE) == ["90"]


def test_verdict_on_an_isotropic_layer_says_there_is_nothing_to_read(report):
    last = report.steps[-1]
    flat = LensStep(20, {"45": math.nan, "90": math.nan}, math.nan, {"C4": math.nan}, isotropic_share=1.0)
    text = verdict(LensReport("run-x", "mnist", "m", [45.0, 90.0], REFERENCE, [last, flat]))
    assert "rotation-invariant on their own" in text and "equivariant at" not in text


def test_verdict_names_a_large_isotropic_share(report):
    step = LensStep(20, {"45": 0.3, "90": 0.6}, 0.05, {"C4": 0.05}, isotropic_share=0.8)
    text = verdict(LensReport("run-x", "mnist", "m", [45.0, 90.0], REFERENCE, [step]))
    assert "not rotation-equivariant at 90°" in text and "80% of the filters' energy is rotation-invariant" in text


def test_agreement_is_corrected_for_chance():
    labels = torch.tensor([[0, 1, 2, 0, 1, 2]] * 4)
    same = agreement({0.0: labels.clone(), 90.0: labels.clone()}, 0.0, labels, 3)
    assert same["invariance"]["90"] == 1.0 and same["kappa"]["90"] == pytest.approx(1.0)
    assert same["accuracy"] == {"0": 1.0, "90": 1.0}
    constant = torch.zeros_like(labels)  # one digit for every query: agrees with itself every time
    const = agreement({0.0: constant, 90.0: constant.clone()}, 0.0, labels, 3)
    assert const["invariance"]["90"] == 1.0 and const["chance"]["90"] == 1.0 and math.isnan(const["kappa"]["90"])
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randint(0, 3, (200, 30), generator=g) for _ in range(2))
    unrelated = agreement({0.0: a, 90.0: b}, 0.0, torch.zeros_like(a), 3)
    assert unrelated["invariance"]["90"] == pytest.approx(1 / 3, abs=0.02)
    assert abs(unrelated["kappa"]["90"]) < 0.03
