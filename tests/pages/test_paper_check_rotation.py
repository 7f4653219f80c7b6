"""The Paper check page on the 2-D rotation problems: lens tables and curves,
filter pictures per group element, and the page itself."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from msr.kinds import SYNTHETIC
import torch
from matplotlib.figure import Figure

from msr.analysis import tables
from msr.core.symmetry import C4, C8_RING
from msr.synthetic.config import make_config
from msr.synthetic.models import ROTATION_MODELS
from msr.synthetic.rotation import FIELDS, ROTATION_PROBLEMS, generating_basis, group_filters
from msr.viz import synthetic as vz


def _records(model: str, u: bool, rot8: bool = True) -> list[dict]:
    """Two evaluation records shaped like a 2-D run's metrics."""
    out = []
    for step, e, o in [(0, 0.7, 0.0), (100, 0.1 if u else 0.7, 0.9 if u else 0.0)]:
        errors = {"90": e, **({"45": e + 0.05} if rot8 else {})}
        orbits = {"C4": o, **({"C8": o - 0.1} if rot8 else {})}
        out.append({"step": step, "test_mse": 2.0 - step / 100, "test_err": 0.1, "train_mse": 2.0,
                    "equiv_error": e, "equiv_errors": errors, "orbit_score": o, "orbit_scores": orbits,
                    "u_equiv_error": e / 2 if u else None, "u_orbit_score": o if u else None, "seconds": 1.0})
    return out


def _exact_bank(problem: str, seed: int = 0) -> torch.Tensor:
    """(C, 1, 3, 3) made the way the data are: every field in every group element."""
    group = ROTATION_PROBLEMS[problem]
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(FIELDS, group.coefficients, generator=g) @ generating_basis(group)
    return group_filters(group, base)


# ------------------------------------------------------------------ numbers
def test_lens_frame_keeps_the_last_evaluation_in_model_order():
    hist = {"msr-conv-dense": _records("msr-conv-dense", u=True), "maml-conv": _records("maml-conv", u=False)}
    frame = tables.lens_frame(hist)
    assert list(frame["label"]) == ["MAML-Conv", "MSR-Conv (dense U)"]
    assert set(tables.LENS_COLUMNS) <= set(frame.columns)
    dense = frame.set_index("model").loc["msr-conv-dense"]
    assert dense["step"] == 100 and dense["equiv_90"] == pytest.approx(0.1)
    assert dense["equiv_45"] == pytest.approx(0.15) and dense["orbit_C8"] == pytest.approx(0.8)
    assert dense["u_equiv_90"] == pytest.approx(0.05) and dense["u_orbit"] == pytest.approx(0.9)
    assert pd.isna(frame.set_index("model").loc["maml-conv", "u_orbit"])
    # On C4 nothing is measured at 45°: those columns are left out.
    rot4 = tables.lens_frame({"maml-conv": _records("maml-conv", u=False, rot8=False)})
    assert "equiv_45" not in rot4 and "orbit_C8" not in rot4 and "equiv_90" in rot4


def test_lens_history_and_charts():
    hist = {"msr-conv-dense": _records("msr-conv-dense", u=True), "maml-conv": _records("maml-conv", u=False)}
    frame = tables.lens_history_frame(hist)
    # dense: 2 steps × 6 numbers; MAML-Conv: 2 steps × 4 (it has no U)
    assert len(frame) == 2 * 6 + 2 * 4
    assert set(frame["layer"]) == {"adapted · 90°", "adapted · 45°", "from U · 90°"}
    u = frame[(frame.model == "msr-conv-dense") & (frame.measure == "orbit") & (frame.layer == "from U · 90°")]
    assert list(u["value"]) == [0.0, 0.9]
    for measure in ("equiv", "orbit"):
        spec = vz.lens_chart(frame, measure).to_dict()
        lines, points = spec["layer"]
        assert lines["mark"]["type"] == "line" and points["mark"]["type"] == "point"
        enc = {**spec.get("encoding", {}), **lines["encoding"]}
        assert enc["y"]["scale"]["domain"] == [0, 1]
        assert enc["strokeDash"]["scale"]["domain"] == ["adapted · 90°", "adapted · 45°", "from U · 90°"]
        assert enc["color"]["scale"]["domain"] == ["MAML-Conv", "MSR-Conv (dense U)"]
        assert spec["config"]["axis"]["labelFontSize"] >= 12 and spec["config"]["legend"]["labelFontSize"] >= 12
    with pytest.raises(ValueError):
        vz.lens_chart(frame, "accuracy")


def test_results_and_bars_use_the_rotation_model_labels():
    summaries = [{"problem": "rot4", "model": m, "latent": None, "steps": 10, "test_mse": v, "test_err": 0.1,
                  "equiv_error": 0.5, "orbit_score": 0.2, "u_equiv_error": None, "u_orbit_score": None}
                 for m, v in [("msr-conv-dense", 0.5), ("maml-conv", 2.0), ("msr-conv", 1.9)]]
    frame = tables.results_frame(summaries)
    assert list(frame["label"]) == ["MSR-Conv (dense U)", "MAML-Conv", "MSR-Conv"]
    assert list(frame["orbit_score"]) == [0.2, 0.2, 0.2]
    spec = vz.mse_bar_chart(frame).to_dict()
    x = spec["layer"][0]["encoding"]["x"]
    assert x["sort"] == [ROTATION_MODELS[m].label for m in ROTATION_MODELS]
    assert x["axis"]["labelLimit"] == 0 and spec["width"] >= 3 * 130  # the long label fits unbroken
    assert spec["config"]["axis"]["labelFontSize"] >= 12


def test_history_frame_labels_the_rotation_models():
    frame = tables.history_frame({"msr-conv": _records("msr-conv", u=True)})
    assert set(frame["label"]) == {"MSR-Conv"} and list(frame["test_mse"]) == [2.0, 1.0]


# ------------------------------------------------------------------ filters
@pytest.mark.parametrize("problem", list(ROTATION_PROBLEMS))
def test_orbit_grid_undoes_a_channel_permutation(problem):
    bank = _exact_bank(problem)
    perm = torch.randperm(bank.shape[0], generator=torch.Generator().manual_seed(1))
    shuffled = bank[perm]
    rotation = vz.filter_rotation(problem)
    assert rotation is (C4 if problem == "rot4" else C8_RING)
    og = vz.orbit_grid(shuffled, rotation)
    assert og.score == pytest.approx(1.0)
    assert og.grid.shape == (bank.shape[0] // rotation.order, rotation.order)
    assert sorted(og.grid.ravel().tolist()) == list(range(bank.shape[0]))
    assert og.row_labels[0] == "orbit 1"
    for row in og.grid:  # each cell is the previous one turned by one rotation step
        for a, b in zip(row[:-1], row[1:]):
            torch.testing.assert_close(rotation.apply(shuffled[a], 1), shuffled[b])


def test_orbit_grid_of_random_filters_keeps_every_channel_once():
    w = torch.randn(24, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    og = vz.orbit_grid(w, C8_RING)
    cells = og.grid[og.grid >= 0].tolist()
    assert sorted(cells) == list(range(24)) and og.grid.shape[1] == 8
    assert len(og.row_labels) == og.grid.shape[0] and og.score < 0.5
    assert og.row_labels[0] == "orbit 1" and set(og.row_labels) <= {"…"} | {f"orbit {k}" for k in range(1, 25)}


def test_element_grid_is_field_major():
    grid = vz.element_grid(12, 4)
    assert grid.shape == (3, 4) and grid[1, 2] == 1 * 4 + 2
    with pytest.raises(ValueError):
        vz.element_grid(10, 4)


@pytest.mark.parametrize("problem", list(ROTATION_PROBLEMS))
def test_filter_bank_figure_draws_fields_by_group_elements(problem):
    group = ROTATION_PROBLEMS[problem]
    bank = _exact_bank(problem)
    fig = vz.filter_bank_figure(bank, problem, "elements", "MSR-Conv (dense U) · step 5")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == group.order and labels[:2] == ["0°", f"{group.degrees:g}°"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["field 1", "field 2", "field 3"]
    assert "MSR-Conv (dense U) · step 5" in ax.get_title(loc="left")
    assert "orbit score 1.00" in ax.get_title(loc="left")
    image = np.asarray(ax.images[0].get_array().filled(np.nan))
    # 3 rows of 3×3 cells drawn 4 pixels a tap with 1-pixel gaps; the first cell is channel 0
    assert image.shape == (3 * 13 - 1, group.order * 13 - 1)
    np.testing.assert_allclose(image[:12:4, :12:4], bank[0, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(image[13:25:4, :12:4], bank[group.order, 0].numpy(), rtol=1e-6)
    assert np.isnan(image[12, 0])  # the gap between the fields
    assert bool(ax.lines) == group.flips  # a line between rotations and mirror images on D8
    assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 12


def test_filter_bank_figure_by_orbits_and_bad_arrangement():
    bank = _exact_bank("rot4")
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    fig = vz.filter_bank_figure(bank[perm], "rot4", "orbits")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["+0°", "+90°", "+180°", "+270°"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["orbit 1", "orbit 2", "orbit 3"]
    assert "orbit score 1.00" in ax.get_title(loc="left")
    with pytest.raises(ValueError):
        vz.filter_bank_figure(bank, "rot4", "diagonal")


def test_filters_frame_names_fields_and_elements():
    bank = _exact_bank("rot8_flip")
    frame = vz.filters_frame({"dense: from U": bank, "MAML-Conv: adapted": -bank}, "rot8_flip")
    assert len(frame) == 2 * 48 * 9
    row = frame[(frame.bank == "dense: from U") & (frame.channel == 16 + 9) & (frame.row == 0) & (frame.col == 2)]
    assert row["field"].item() == 2 and row["element"].item() == "mirror, 45°"
    assert row["value"].item() == pytest.approx(float(bank[25, 0, 0, 2]))


# -------------------------------------------------------------------- page
def _page():
    from streamlit.testing.v1 import AppTest
    return AppTest.from_file("../../views/paper_check.py", default_timeout=60)


def test_choosing_a_rotation_problem_offers_its_models():
    at = _page()
    at.run()
    problem = at.selectbox[0]
    assert "rot4" in problem.options[3] and len(problem.options) == 6
    problem.set_value("rot4").run()
    assert not at.exception
    assert at.title[0].value.startswith("Paper check")
    assert at.multiselect[0].value == list(ROTATION_MODELS)
    assert at.multiselect[0].options == [m.label for m in ROTATION_MODELS.values()]
    tasks = next(n for n in at.number_input if n.label == "Tasks in the dataset")
    assert tasks.value is None and "10,000" in tasks.placeholder
    assert any("A⊗B⊗C" in m.value and "Proposition 1" in m.value for m in at.markdown)
    at.selectbox[0].set_value("rot8_flip").run()
    assert "2,000" in next(n for n in at.number_input if n.label == "Tasks in the dataset").placeholder
    at.selectbox[0].set_value("rank1").run()  # back to 1-D: its own models, none of the 2-D ones
    assert at.multiselect[0].value == ["msr-fc", "maml-fc", "maml-lc", "maml-conv"]


@pytest.fixture(scope="module")
def rot4_group(tmp_path_factory):
    """A finished rot4 group of the three models, trained in this process."""
    from msr.runner.execute import create_run, execute
    root = tmp_path_factory.mktemp("rot4") / "runs"
    for model in ROTATION_MODELS:
        cfg = make_config("rot4", model, steps=20, eval_interval=10, test_tasks=10, cache_dir=None, threads=1,
                          runs_dir=str(root), group="rot4-test")
        assert execute(create_run(cfg)).status == "completed"
    return root


def test_finished_rot4_group_shows_the_lens_and_the_filters(rot4_group):
    at = _page()
    at.session_state["runs_dir"] = str(rot4_group)
    at.run()
    assert not at.exception and not at.error
    assert "Finished 3 model(s) on rot4" in at.success[0].value
    shown = next(s for s in at.selectbox if s.label == "Runs shown")
    assert "MAML-Conv, MSR-Conv, MSR-Conv (dense U)" in shown.format_func(shown.value)
    assert len(at.get("vega_lite_chart")) == 4  # MSE bars, MSE history, equivariance, orbit score
    table = at.dataframe[0].value
    assert list(table["label"]) == ["MAML-Conv", "MSR-Conv", "MSR-Conv (dense U)"]
    assert {"equiv_90", "orbit_C4", "u_equiv_90", "u_orbit"} <= set(table.columns)
    assert (table["step"] == 20).all()
    assert table.loc[0, "u_equiv_90"] == "—" and "None" not in table.astype(str).to_string()  # MAML-Conv has no U
    assert len(at.get("image")) == 2 + 3  # what the two U generate, then every model's adapted filters
    at.selectbox(key="paper_check.arrange").set_value("orbits").run()
    assert not at.exception and len(at.get("image")) == 5
    at.selectbox(key="paper_check.layer").set_value("initial").run()
    assert not at.exception
    at.select_slider[0].set_value(10).run()
    assert not at.exception and len(at.get("image")) == 5


def test_launching_a_rot4_group_from_the_page(tmp_path):
    """Run starts one worker per chosen 2-D model, in one group, with the
    problem's own dataset size when the field is left blank."""
    from msr.store.reader import list_runs
    at = _page()
    at.session_state["runs_dir"] = str(tmp_path / "runs")
    at.run()
    at.selectbox[0].set_value("rot4").run()
    values = {"Outer steps": 4, "Evaluate every": 2, "Test tasks": 10, "Tasks per step": 2}
    for w in at.number_input:
        if w.label in values:
            w.set_value(values[w.label])
    at.text_input[0].set_value(str(tmp_path / "cache"))
    at.multiselect[0].set_value(["maml-conv", "msr-conv-dense"])
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    end = time.monotonic() + 180
    while time.monotonic() < end:
        runs = list_runs(tmp_path / "runs", kind=SYNTHETIC)
        if len(runs) == 2 and all(r.state in ("completed", "failed") for r in runs):
            break
        time.sleep(0.3)
    assert {r.config.model for r in runs} == {"maml-conv", "msr-conv-dense"}
    assert all(r.state == "completed" for r in runs)
    assert len({r.config.group for r in runs}) == 1
    assert {r.config.problem for r in runs} == {"rot4"} and {r.config.n_tasks for r in runs} == {None}


def test_problem_select_and_shown_group_follow_each_other(tmp_path):
    """The page opens on the problem of the group it shows; picking a problem
    shows its newest group, picking a group sets the problem."""
    from msr.runner.execute import create_run, execute
    root = tmp_path / "runs"
    for problem, model in [("rank1", "maml-fc"), ("rot4", "maml-conv")]:
        cfg = make_config(problem, model, steps=2, eval_interval=1, test_tasks=10, n_tasks=100, cache_dir=None,
                          threads=1, runs_dir=str(root), group=f"g-{problem}")
        assert execute(create_run(cfg)).status == "completed"
    at = _page()
    at.session_state["runs_dir"] = str(root)
    at.run()
    assert not at.exception
    shown = next(s for s in at.selectbox if s.label == "Runs shown")
    assert at.selectbox[0].value == "rot4" and shown.value == "g-rot4"
    assert "rotation" in at.title[0].value
    at.selectbox[0].set_value("rank1").run()
    assert not at.exception and next(s for s in at.selectbox if s.label == "Runs shown").value == "g-rank1"
    assert "convolution" in at.title[0].value
    assert at.multiselect[0].value == ["msr-fc", "maml-fc", "maml-lc", "maml-conv"]
    next(s for s in at.selectbox if s.label == "Runs shown").set_value("g-rot4").run()
    assert not at.exception and at.selectbox[0].value == "rot4"
    assert at.multiselect[0].value == list(ROTATION_MODELS)
