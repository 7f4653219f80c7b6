import math

import altair as alt
import pandas as pd
import pytest

from msr.viz.training import accuracy_chart, inner_lr_chart, inner_lr_frame, loss_chart, overlay_chart, overlay_frame
from msr.tables import metrics_frame


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


def test_inner_rates_of_a_fixed_rate_run_are_empty_not_an_error():
    data = _spec_data(inner_lr_chart([{**r, "inner_lrs": {}} for r in RECORDS]))
    assert data.empty and list(data.columns) == ["step", "param", "lr"]


def test_overlay_puts_each_run_on_the_same_axes():
    other = [{**r, "test_loss": r["test_loss"] + 1} for r in RECORDS[:2]]
    data = _spec_data(overlay_chart({"run a": RECORDS, "run b": other}, "test_loss"))
    assert list(data.columns) == ["run", "step", "value", "lower", "upper"]
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
