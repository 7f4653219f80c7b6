import math

import altair as alt
import numpy as np
import pandas as pd
import pytest

from msr.viz.training import (MAX_CURVE_POINTS, accuracy_chart, hover_frame, inner_lr_chart, inner_lr_frame,
                              loss_chart, overlay_chart, overlay_frame, smooth, typical_gap)
from msr.analysis.tables import metrics_frame


def record(step, train_loss, test_loss, test_err, train_acc, test_acc, lrs):
    return {"step": step, "train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss,
            "test_err": test_err, "test_acc": test_acc, "test_acc_err": 0.05, "steps_per_sec": None,
            "steps_per_sec_overall": None, "train_seconds": 0.0, "inner_lrs": lrs,
            "per_angle": {"train": {"counts": [1], "errors": [0]}}}


RECORDS = [
    record(0, None, 2.3, 0.1, None, 0.10, {"conv.v": 0.1, "head.v": 0.1}),
    record(5, 2.0, 1.9, 0.2, 0.30, 0.35, {"conv.v": 0.12, "head.v": 0.09}),
    record(10, 1.5, 1.4, 0.15, 0.55, 0.60, {"conv.v": 0.15, "head.v": 0.08}),
]


def test_metrics_frame_is_one_row_per_evaluation_with_a_column_per_rate():
    frame = metrics_frame(RECORDS)
    assert list(frame["step"]) == [0, 5, 10]
    assert {"train_loss", "test_loss", "test_err", "test_acc", "test_acc_err"} <= set(frame.columns)
    assert ["inner_lr:conv.v", "inner_lr:head.v"] == [c for c in frame.columns if c.startswith("inner_lr:")]
    assert math.isnan(frame.loc[0, "train_loss"]) and frame.loc[2, "inner_lr:head.v"] == pytest.approx(0.08)
    assert "per_angle" not in frame.columns
    csv = frame.to_csv(index=False).splitlines()
    assert len(csv) == 4 and csv[0].startswith("step,train_loss")


def test_metrics_frame_of_nothing_still_has_its_columns():
    frame = metrics_frame([])
    assert frame.empty and "test_loss" in frame.columns


def _spec_data(chart) -> pd.DataFrame:
    chart.to_dict()  # validates against the Vega-Lite schema
    return chart.data


def test_loss_chart_has_train_and_test_with_a_band_on_test_only():
    data = _spec_data(loss_chart(RECORDS))
    assert set(data.columns) >= {"step", "series", "value", "lower", "upper"}
    test = data[data.series == "test loss"]
    train = data[data.series == "train loss"]
    assert list(test.step) == [0, 5, 10] and list(train.step) == [5, 10]  # no train loss before step 1
    assert list(test.lower) == pytest.approx([2.2, 1.7, 1.25]) and list(test.upper) == pytest.approx([2.4, 2.1, 1.55])
    assert train.lower.isna().all()


def test_loss_chart_can_add_per_step_losses():
    chart = loss_chart(RECORDS, step_losses=[(1, 2.5), (2, 2.4), (3, 2.2)])
    data = _spec_data(chart)
    raw = data[data.series == "train loss (each step)"]
    assert list(raw.step) == [1, 2, 3] and list(raw.value) == [2.5, 2.4, 2.2]
    assert len(chart.layer) == 3 and len(loss_chart(RECORDS).layer) == 2


def test_accuracy_chart_bands_the_test_accuracy():
    chart = accuracy_chart(RECORDS)
    data = _spec_data(chart)
    test = data[data.series == "test accuracy"]
    assert list(test.value) == [0.10, 0.35, 0.60]
    assert list(test.upper - test.lower) == pytest.approx([0.1, 0.1, 0.1])
    assert len(data[data.series == "train accuracy"]) == 2
    assert isinstance(chart, alt.LayerChart) and len(chart.layer) == 2


def test_inner_rates_are_one_line_per_parameter():
    long = inner_lr_frame(RECORDS)
    assert len(long) == 6 and set(long.param) == {"conv.v", "head.v"}
    data = _spec_data(inner_lr_chart(RECORDS))
    assert list(data[data.param == "conv.v"].lr) == [0.1, 0.12, 0.15]
    assert set(data.parameter) == {"first conv v", "linear head v"}  # in words on the chart


def test_inner_rates_of_a_fixed_rate_run_are_empty_not_an_error():
    data = _spec_data(inner_lr_chart([{**r, "inner_lrs": {}} for r in RECORDS]))
    assert data.empty and list(data.columns) == ["step", "param", "lr", "parameter"]


def test_overlay_puts_each_run_on_the_same_axes():
    other = [{**r, "test_loss": r["test_loss"] + 1} for r in RECORDS[:2]]
    data = _spec_data(overlay_chart({"run a": RECORDS, "run b": other}, "test_loss"))
    assert list(data.columns) == ["run", "step", "value", "lower", "upper", "smoothed"]
    assert (data.run == "run a").sum() == 3 and (data.run == "run b").sum() == 2
    assert list(data[data.run == "run b"].value) == [3.3, 2.9]
    train = overlay_frame({"run a": RECORDS}, "train_acc")
    assert list(train.step) == [5, 10] and train.lower.isna().all()
    with pytest.raises(ValueError, match="allowed"):
        overlay_frame({"run a": RECORDS}, "nonsense")


def test_bands_stay_where_the_metric_can_be():
    wide = [{**r, "test_err": 5.0, "test_acc_err": 0.5} for r in RECORDS]
    loss = loss_chart(wide).data
    assert (loss.lower.dropna() >= 0).all() and loss[loss.series == "test loss"].lower.eq(0).all()
    acc = accuracy_chart(wide).data
    test = acc[acc.series == "test accuracy"]
    assert list(test.lower) == pytest.approx([0.0, 0.0, 0.10]) and list(test.upper) == pytest.approx([0.60, 0.85, 1.0])


# ------------------------------------------------------------- smoothing
def test_smoothing_leaves_a_constant_series_as_it_is():
    steps = [0, 3, 4, 10, 30]
    assert list(smooth(steps, [0.7] * 5, 0.9)) == pytest.approx([0.7] * 5)


def test_smoothing_by_zero_is_the_identity():
    values = [2.0, 1.0, 3.0, 0.5]
    assert list(smooth([0, 1, 5, 6], values, 0.0)) == values


def test_evenly_spaced_smoothing_is_the_debiased_average_of_tensorboard():
    values = [3.0, 1.0, 2.0, 5.0]
    w = 0.6
    expected = [sum(w ** (t - i) * values[i] for i in range(t + 1)) / sum(w ** (t - i) for i in range(t + 1))
                for t in range(len(values))]
    assert list(smooth([0, 10, 20, 30], values, w)) == pytest.approx(expected)
    assert smooth([0, 10, 20, 30], values, w)[0] == 3.0  # debiased: the first point is not pulled towards 0


def test_a_point_far_back_in_steps_weighs_less_than_one_just_before():
    # the same values; in the second series the last point comes long after the others
    near = smooth([0, 10, 20], [1.0, 1.0, 4.0], 0.5, unit=10)
    far = smooth([0, 10, 50], [1.0, 1.0, 4.0], 0.5, unit=10)
    assert near[-1] == pytest.approx((0.25 + 0.5 + 4) / 1.75)
    assert far[-1] == pytest.approx((0.5 ** 5 + 0.5 ** 4 + 4) / (0.5 ** 5 + 0.5 ** 4 + 1))
    assert far[-1] > near[-1]  # the old points weigh less, so it sits nearer the new value


def test_smoothing_skips_missing_values_and_keeps_them_missing():
    out = smooth([0, 10, 20, 30], [1.0, math.nan, 3.0, math.inf], 0.5, unit=10)
    assert out[0] == 1.0 and math.isnan(out[1]) and math.isnan(out[3])
    assert out[2] == pytest.approx((0.25 * 1 + 3) / 1.25)  # the gap still counts as steps


def test_smoothing_weight_outside_zero_to_one_is_refused():
    for weight in (-0.1, 1.0):
        with pytest.raises(ValueError, match="smoothing weight"):
            smooth([0, 1], [1.0, 2.0], weight)


def test_overlay_smooths_every_run_in_the_same_step_unit():
    sparse = [{**r, "step": r["step"] * 2} for r in RECORDS]  # evaluated every 10 steps, not 5
    frame = overlay_frame({"a": RECORDS, "b": sparse}, "test_loss", smoothing=0.5)
    a, b = frame[frame.run == "a"], frame[frame.run == "b"]
    assert list(a.smoothed) == pytest.approx(list(smooth(a.step, a.value, 0.5, unit=5)))
    assert list(b.smoothed) == pytest.approx(list(smooth(b.step, b.value, 0.5, unit=5)))
    assert typical_gap([0, 5, 10, 30]) == 5 and typical_gap([3]) == 1.0


# ---------------------------------------------------------------- hover
def test_hover_shows_each_run_at_its_nearest_step_within_its_own_range():
    short = [{**r, "step": s} for r, s in zip(RECORDS[:2], (0, 7))]
    hover = hover_frame(overlay_frame({"a": RECORDS, "b": short}))
    at = {(row.step, row.run): row.at for row in hover.itertuples()}
    assert at[(5.0, "b")] == 7 and at[(7.0, "a")] == 5 and (10.0, "b") not in at  # b ended at step 7
    assert hover[(hover.run == "a") & (hover.step == 10)].label.item() == "a: 1.4000"


def test_the_hover_readout_lists_the_highest_value_first_and_the_raw_one_when_smoothed():
    higher = [{**r, "test_loss": r["test_loss"] + 1} for r in RECORDS]
    hover = hover_frame(overlay_frame({"low": RECORDS, "high": higher}, smoothing=0.5), smoothed=True)
    at_10 = hover[hover.step == 10].set_index("run")
    assert at_10.loc["high", "line"] == 1 and at_10.loc["low", "line"] == 2
    assert at_10.loc["low", "label"] == f"low: {at_10.loc['low', 'value']:.4f} (raw 1.4000)"


def _layers(chart) -> list[dict]:
    return chart.to_dict()["layer"]


def test_overlay_draws_each_run_in_its_colour_with_its_name_and_a_hover_rule():
    chart = overlay_chart({"Shared U": RECORDS, "Plain CNN": RECORDS[:2]}, "test_loss",
                          colors={"Shared U": "#4c78a8", "Plain CNN": "#f58518"})
    spec = chart.to_dict()
    scales = [l["encoding"]["color"]["scale"] for l in spec["layer"] if "color" in l.get("encoding", {})]
    assert {"domain": ["Shared U", "Plain CNN"], "range": ["#4c78a8", "#f58518"]} in scales
    (hover,) = spec["params"]  # hoisted to the top level by Altair
    assert hover["select"]["nearest"] and hover["select"]["fields"] == ["step"]
    marks = [l["mark"]["type"] if isinstance(l["mark"], dict) else l["mark"] for l in spec["layer"]]
    assert "rule" in marks and "text" in marks and "area" in marks  # no smoothing: the 95% band
    readout = next(d for name, d in spec["datasets"].items() if d and "top" in d[0])
    assert {"step 5", "Shared U: 1.9000", "Plain CNN: 1.9000"} <= {row["label"] for row in readout}


def test_smoothing_keeps_the_raw_curve_faint_under_the_smoothed_one():
    chart = overlay_chart({"a": RECORDS}, "test_loss", smoothing=0.8)
    layers = _layers(chart)
    lines = [l for l in layers if (l["mark"]["type"] if isinstance(l["mark"], dict) else l["mark"]) == "line"]
    assert [l["encoding"]["y"]["field"] for l in lines] == ["value", "smoothed"]
    assert lines[0]["mark"]["opacity"] < 0.5
    assert not any((l["mark"]["type"] if isinstance(l["mark"], dict) else l["mark"]) == "area" for l in layers)
    assert chart.to_dict()["title"]["subtitle"].startswith("Smoothed (0.8)")


def test_log_axes_leave_out_what_they_cannot_draw():
    wide = [{**r, "test_err": 5.0} for r in RECORDS]
    chart = overlay_chart({"a": wide}, "test_loss", log_y=True, log_x=True)
    spec = chart.to_dict()
    data = chart.data
    assert list(data.step) == [5, 10] and data.lower.isna().all()  # step 0 and bands reaching 0 are gone
    line = next(l for l in spec["layer"] if l["mark"] == "line" or l["mark"].get("type") == "line")
    assert line["encoding"]["y"]["scale"]["type"] == "log" and line["encoding"]["x"]["scale"]["type"] == "log"


def test_overlay_of_runs_without_records_is_an_empty_chart_not_an_error():
    chart = overlay_chart({"a": []}, "test_acc")
    chart.to_dict()
    assert chart.data.empty


def _brute_hover(frame):
    """The hover rows by comparing every step with every point (what the binary search must equal)."""
    rows = []
    steps = np.unique(frame["step"].to_numpy(dtype=float))
    for run, part in frame.groupby("run", sort=False):
        at = part["step"].to_numpy(dtype=float)
        inside = steps[(steps >= at.min()) & (steps <= at.max())]
        for step in inside:
            i = int(np.abs(at - step).argmin())
            rows.append((step, run, at[i], part["smoothed"].iloc[i]))
    return rows


def test_the_hover_join_finds_each_runs_nearest_point_as_a_full_comparison_would():
    rng = np.random.default_rng(0)
    runs = {}
    for name, count, gap in (("a", 40, 7), ("b", 25, 13), ("c", 3, 50)):
        steps = np.sort(rng.choice(np.arange(0, count * gap * 2), size=count, replace=False))
        runs[name] = [{"step": int(s), "test_loss": float(v), "test_err": 0.1}
                      for s, v in zip(steps, rng.random(count))]
    frame = overlay_frame(runs, smoothing=0.3)
    hover = hover_frame(frame, smoothed=True)
    assert list(zip(hover["step"], hover["run"], hover["at"], hover["value"])) == _brute_hover(frame)
    assert set(hover.groupby("step")["line"].max()) <= {1, 2, 3}


def test_long_curves_are_thinned_to_what_a_chart_shows_with_their_ends_kept():
    records = [{"step": i, "test_loss": 1.0 / (i + 1), "test_err": 0.01} for i in range(20_000)]
    frame = overlay_frame({"long": records, "short": records[:50]})
    long = frame[frame["run"] == "long"]
    assert len(long) <= MAX_CURVE_POINTS and long["step"].iloc[0] == 0 and long["step"].iloc[-1] == 19_999
    assert len(frame[frame["run"] == "short"]) == 50
    assert len(overlay_frame({"long": records}, most=None)) == 20_000
    smoothed = overlay_frame({"long": records}, smoothing=0.9)
    full = overlay_frame({"long": records}, smoothing=0.9, most=None).set_index("step")["smoothed"]
    assert np.allclose(smoothed["smoothed"], full.loc[smoothed["step"]].to_numpy())  # smoothed before thinning


def test_the_overlay_gives_its_domains_so_the_empty_hover_layers_warn_of_nothing():
    """A hover layer is empty until the pointer is on the chart; a scale computed from it has an infinite
    extent (a browser console warning per layer), and layers hiding a legend the curves show conflict."""
    for kwargs in ({}, {"log_y": True, "log_x": True}, {"smoothing": 0.5}):
        spec = overlay_chart({"a": RECORDS, "b": RECORDS[:2]}, "test_loss", **kwargs).to_dict()
        for layer in spec["layer"]:
            enc = layer.get("encoding", {})
            for channel in ("x", "y"):
                scale = enc.get(channel, {}).get("scale")
                if scale is not None:  # the readout's own pixel offsets have no scale
                    assert "domain" in scale, (kwargs, channel, layer["mark"])
            if "color" in enc:
                assert enc["color"].get("legend") is not None, "one legend setting for every layer"
    acc = overlay_chart({"a": RECORDS}, "test_acc").to_dict()
    assert all(l["encoding"]["y"]["scale"]["domain"] == [0, 1] for l in acc["layer"]
               if "y" in l.get("encoding", {}) and l["encoding"]["y"].get("scale"))
