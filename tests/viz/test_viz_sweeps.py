"""The Sweeps page's frames and charts (msr.viz.sweeps) on hand-made points."""
from __future__ import annotations

import json
import math

import pytest

from msr.runner.sweep.results import PointRun
from msr.viz import sweeps as vs


def evals(accs, losses, every=2):
    return [{"step": i * every, "test_acc": a, "test_loss": l} for i, (a, l) in enumerate(zip(accs, losses))]


def point(arch, seed, accs, losses, state="completed", lr=None, total=4):
    setting = {"arch": arch} if lr is None else {"arch": arch, "inner_lr": lr}
    metrics = evals(accs, losses)
    return PointRun(setting, seed, state, f"{arch}-{seed}", metrics[-1]["step"], total,
                       {**metrics[-1], "test_acc_err": 0.01, "test_err": 0.02}, metrics)


RUNS = [point("shared", 0, [0.2, 0.5, 0.7], [2.0, 1.5, 1.0]), point("shared", 1, [0.2, 0.6, 0.9], [2.0, 1.2, 0.8]),
        point("conv", 0, [0.2, 0.3, 0.4], [2.0, 1.9, 1.8]), PointRun({"arch": "conv"}, 1, "missing")]


def test_labels_are_the_forms_not_field_names():
    assert vs.field_label("inner_lr") == "Inner learning rate"
    assert vs.value_text("arch", "conv") == "conv (MAML)" and vs.value_text("inner_lr", 0.10) == "0.1"
    assert vs.value_text("first_order", True) == "true"
    assert vs.group_label({"arch": "shared", "inner_lr": 0.05}) == "shared · 0.05"
    assert vs.group_label({}) == "all"
    assert vs.legend_title(["arch", "inner_lr"]) == "Architecture · Inner learning rate"


def test_progress_frame_has_one_row_per_point():
    frame = vs.progress_frame(RUNS, ["arch"])
    assert list(frame.columns) == ["Architecture", "seed", "state", "steps", "progress", "test accuracy", "run"]
    assert frame["state"].tolist() == ["completed", "completed", "completed", "not started"]
    assert frame["steps"].tolist() == ["4 / 4"] * 3 + [""]
    assert frame["progress"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert frame["Architecture"].tolist()[-1] == "conv (MAML)"
    assert math.isnan(frame["test accuracy"].iloc[-1])


def test_curves_mean_and_band_over_seeds():
    curves = vs.curves_frame(RUNS)
    assert len(curves) == 9 and set(curves["group"]) == {"shared", "conv (MAML)"}
    means = vs.mean_frame(curves, "test_acc")
    last = means[(means["group"] == "shared") & (means["step"] == 4)].iloc[0]
    assert last["n"] == 2 and last["mean"] == pytest.approx(0.8)
    # t(1 dof) half-width of [0.7, 0.9]: 12.706 · 0.1, cut at accuracy 1
    assert last["lower"] == pytest.approx(0.0) and last["upper"] == pytest.approx(1.0)
    one = means[(means["group"] == "conv (MAML)") & (means["step"] == 4)].iloc[0]
    assert one["n"] == 1 and math.isnan(one["lower"])  # one seed: no interval
    assert vs.mean_frame(vs.curves_frame([]), "test_loss").empty


def _font_sizes(spec: dict) -> list[int]:
    config = spec.get("config", {})
    return [config["axis"]["labelFontSize"], config["axis"]["titleFontSize"], config["legend"]["labelFontSize"],
            config["title"]["fontSize"]]


@pytest.mark.parametrize("each_seed", [False, True])
def test_curves_chart_is_readable(each_seed):
    curves = vs.curves_frame(RUNS)
    chart = vs.curves_chart(curves, "test_loss", ["shared", "conv (MAML)"], "Architecture", each_seed=each_seed)
    spec = chart.to_dict()
    assert min(_font_sizes(spec)) >= 12
    text = json.dumps(spec)
    assert ("\"detail\"" in text) == each_seed  # one line per run only when asked
    with pytest.raises(ValueError):
        vs.curves_chart(curves, "train_loss", [])


def test_groups_frame_marks_the_best_mean():
    summaries = [{"setting": {"arch": "shared"}, "n": 2, "test_acc": {"mean": 0.8, "ci95": 0.1},
                  "test_loss": {"mean": 0.9, "ci95": None}},
                 {"setting": {"arch": "conv"}, "n": 1, "test_acc": {"mean": 0.4, "ci95": None},
                  "test_loss": {"mean": 1.8, "ci95": None}},
                 {"setting": {"arch": "dense"}, "n": 0, "test_acc": {"mean": None, "ci95": None},
                  "test_loss": {"mean": None, "ci95": None}}]
    frame = vs.groups_frame(summaries, ["arch"])
    assert list(frame.columns) == ["best", "Architecture", "runs done", "test accuracy", "accuracy ± 95%",
                                   "test loss", "loss ± 95%"]
    assert frame["best"].tolist() == ["", "", ""], "conv has one run: no interval, so nothing is clearly best"
    assert frame["Architecture"].tolist() == ["shared", "conv (MAML)", "dense"]
    empty = vs.groups_frame(summaries[2:], ["arch"])
    assert empty["best"].tolist() == [""]


def _two(a: tuple, b: tuple) -> list[dict]:
    return [{"setting": {"arch": arch}, "n": 3, "test_acc": {"mean": m, "ci95": h}, "test_loss": {"mean": 1.0}}
            for arch, (m, h) in (("shared", a), ("conv", b))]


def test_best_is_marked_only_where_the_intervals_separate():
    assert vs.groups_frame(_two((0.80, 0.05), (0.60, 0.05)), ["arch"])["best"].tolist() == ["★ best", ""]
    assert vs.groups_frame(_two((0.60, 0.05), (0.80, 0.05)), ["arch"])["best"].tolist() == ["", "★ best"]
    overlap = vs.groups_frame(_two((0.80, 0.15), (0.60, 0.10)), ["arch"])  # 0.65 < 0.70: they overlap
    assert overlap["best"].tolist() == ["", ""] and vs.clearly_best(overlap) is None
    one = vs.groups_frame(_two((0.80, 0.05), (0.60, 0.05))[:1], ["arch"])
    assert one["best"].tolist() == [""], "one setting is best of nothing"


def test_heat_frame_averages_or_holds_the_other_field():
    runs = [point("shared", 0, [0.6], [1.0], lr=0.1), point("shared", 1, [0.8], [1.0], lr=0.1),
            point("shared", 0, [0.5], [1.0], lr=0.05), point("conv", 0, [0.3], [1.0], lr=0.1),
            point("conv", 1, [0.9], [1.0], lr=0.1, state="running")]
    finals = vs.finals_frame(runs, ["arch", "inner_lr"])
    assert list(finals.columns[:2]) == ["Architecture", "Inner learning rate"]
    heat = vs.heat_frame(finals, "Architecture", "Inner learning rate")
    cell = heat[(heat["row"] == "shared") & (heat["col"] == 0.1)].iloc[0]
    assert cell["acc"] == pytest.approx(0.7) and cell["n"] == 2 and cell["text"] == "0.700 (n=2)"
    conv = heat[(heat["row"] == "conv") & (heat["col"] == 0.1)].iloc[0]
    assert conv["n"] == 1 and conv["acc"] == pytest.approx(0.3)  # the running seed is left out
    empty = heat[(heat["row"] == "conv") & (heat["col"] == 0.05)].iloc[0]
    assert empty["n"] == 0 and empty["text"] == "no run yet"
    held = vs.heat_frame(finals, "Architecture", "seed", {"Inner learning rate": 0.05})
    assert held[held["n"] > 0][["row", "col", "acc"]].values.tolist() == [["shared", 0, 0.5]]
    chart = vs.heat_chart(heat, "arch", "inner_lr").to_dict()
    assert min(_font_sizes(chart)) >= 12
