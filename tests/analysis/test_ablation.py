"""Where MSR's gain comes from: the rate search on validation tasks, the
first layer × head ablation and the words it says, on hand-made numbers and
on a tiny sweep run end to end."""
from __future__ import annotations

import json
import math

import pytest
import torch

from msr.analysis import ablation
from msr.analysis.ablation import Interval, Setting, analyse, angle_accuracy, summary
from msr.cli.main import main
from msr.core.data import load_bundled
from msr.core.errors import ConfigError
from msr.runner.sweep.folder import load_sweep
from msr.runner.sweep.results import groups
from msr.runner.sweep.spec import SweepSpec, check, parse_rates
from msr.store.reader import load_run
from msr.viz import ablation as va


# ------------------------------------------------------------------ data
def test_validation_tasks_come_from_the_training_images_only():
    data = load_bundled()
    val = data.validation()
    assert len(val.train) + len(val.test) == len(data.train)
    key = lambda split: {bytes(img.numpy().tobytes()) for img in split.images}  # noqa: E731
    train, held, test = key(val.train), key(val.test), key(data.test)
    assert not train & held, "meta-train and validation images are apart"
    assert held <= key(data.train) and not held & (test - key(data.train)), "validation is drawn from training"
    assert torch.bincount(val.test.labels, minlength=10).tolist() == [80] * 10
    assert val.test.labels.tolist() == data.validation().test.labels.tolist(), "the same images every time"


# ------------------------------------------------------------ per angle
def test_accuracy_at_zero_and_on_rotated_queries_is_read_apart():
    record = {"per_angle": {"test": {"counts": [100, 50, 50], "errors": [10, 25, 15]}}}
    assert angle_accuracy(record, [0.0, 90.0, 180.0]) == pytest.approx((0.9, 0.6))
    assert angle_accuracy(record, [0.0, 90.0]) is None  # the record does not match the angles
    assert angle_accuracy({"per_angle": {"test": {"counts": [0, 5], "errors": [0, 1]}}}, [0.0, 90.0]) is None


def test_interval_is_the_student_t_over_seeds():
    i = Interval.of([0.1, 0.2, 0.3])
    assert i.mean == pytest.approx(0.2) and i.half == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
    assert not i.above_zero and not i.below_zero, "0.2 ± 0.25 includes zero"
    assert Interval.of([0.2, 0.25, 0.3]).above_zero and Interval.of([-0.2, -0.25, -0.3]).below_zero
    assert math.isnan(Interval.of([0.5]).half) and not Interval.of([0.5]).above_zero
    assert Interval.of([]).n == 0 and Interval.of([]).text() == "–"


# ------------------------------------------------------- hand-made ablations
def _setting(conv, head, upright, rotated):
    return Setting({"conv_layer": conv, "head_layer": head}, 0.1, dict(enumerate(upright)), dict(enumerate(rotated)))


def _head_carries_it():
    """The dense head adds 0.12 at 0° and on rotated queries alike; the first
    layer adds nothing."""
    noise = [0.0, 0.01, -0.01]
    out = []
    for conv in ("plain", "kronecker", "dense"):
        for head, gain in (("plain", 0.0), ("dense", 0.12)):
            up = [0.80 + gain + n for n in noise]
            rot = [0.60 + gain + n * 0.5 for n in noise]
            out.append(_setting(conv, head, up, rot))
    return out


def test_the_head_effect_is_named_and_not_called_rotation():
    result = analyse(_head_carries_it())
    assert result.baseline.setting == {"conv_layer": "plain", "head_layer": "plain"}
    head = result.factors[0]
    assert head.name == "dense-U head instead of a plain head"
    assert head.rotated.mean == pytest.approx(0.12) and head.upright.mean == pytest.approx(0.12)
    assert head.specific.mean == pytest.approx(0.0, abs=1e-12)
    assert [e.name for e in result.factors[1:]] == ["Kronecker-U conv first layer instead of a plain conv",
                                                     "dense-U conv first layer instead of a plain conv"]
    text = summary(result)
    assert text.startswith("The gain on rotated queries comes from the dense-U head instead of a plain head: +0.120")
    assert "not about rotation" in text and "rotation-specific part" in text


def test_a_rotation_specific_gain_is_called_one():
    settings = _head_carries_it()
    for s in settings:
        if s.setting["conv_layer"] == "dense":  # the dense first layer helps on rotated queries only
            s.rotated = {k: v + 0.2 + 0.01 * k for k, v in s.rotated.items()}
    result = analyse(settings)
    dense = next(e for e in result.factors if e.name.startswith("dense-U conv"))
    assert dense.upright.mean == pytest.approx(0.0, abs=1e-12) and dense.specific.above_zero
    text = summary(result)
    assert text.startswith("The gain on rotated queries comes from the dense-U conv first layer")
    assert "appears only on rotated queries" in text


def test_no_clear_gain_says_so():
    flat = [_setting(c, h, [0.7, 0.72, 0.68], [0.5, 0.52, 0.48]) for c in ("plain", "dense") for h in ("plain",
                                                                                                          "dense")]
    flat[3].rotated = {0: 0.5, 1: 0.9, 2: 0.1}  # noisy: the interval spans zero
    assert summary(analyse(flat)).startswith("No change clearly raises the accuracy on rotated queries")
    assert "at least two completed seeds" in summary(analyse([_setting("plain", "plain", [0.5], [0.4]),
                                                              _setting("plain", "dense", [0.6], [0.5])]))


def test_frames_for_the_page():
    result = analyse(_head_carries_it())
    table = va.settings_frame(result)
    assert table["first layer"].tolist()[::2] == ["plain", "Kronecker-U", "dense-U"]
    assert table["head"].tolist()[:2] == ["plain", "dense-U"]
    assert table["gain rotated"].tolist()[0] == "baseline"
    assert table["gain rotated"].tolist()[1].startswith("+0.120 ± ")
    assert len(va.factors_frame(result)) == 3
    assert table["accuracy at 0°"].tolist()[0].startswith("0.800 ± ")
    bars = va.accuracy_frame(result)
    assert len(bars) == 12 and bars["high"].max() <= 1.0 and bars["low"].min() >= 0.0
    spec = va.accuracy_chart(bars).to_dict()
    assert spec["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0, 1]
    assert spec["layer"][0]["encoding"]["y"]["axis"]["labelLimit"] == 0, "model names are never cut"
    rates = {"chosen": {json.dumps({"conv_layer": "plain"}, sort_keys=True): 0.03},
             "candidates": {json.dumps({"conv_layer": "plain"}, sort_keys=True): {"0.03": 0.7, "0.3": None}}}
    frame = va.rates_frame(rates, [{"conv_layer": "plain"}, {"conv_layer": "dense"}])
    assert frame.columns.tolist() == ["model", "0.03", "0.3", "chosen"]
    assert frame["chosen"].tolist() == ["0.03 (the smallest tried)", "none trained"]


# -------------------------------------------------------------- the sweep
def test_a_rate_search_is_checked_before_anything_is_written(tmp_path):
    base = {"runs_dir": str(tmp_path / "runs")}
    for search, words in [({"values": [], "steps": 5}, "1 to 12 distinct"),
                          ({"values": [0.1, -1.0], "steps": 5}, "distinct inner rates > 0"),
                          ({"values": [0.1], "steps": 0}, "steps must be a whole number")]:
        with pytest.raises(ConfigError, match=words):
            check(SweepSpec(base=base, grid={}, seeds=[0], rate_search=search))
    with pytest.raises(ConfigError, match="do not also vary inner_lr"):
        check(SweepSpec(base=base, grid={"inner_lr": [0.1, 0.2]}, seeds=[0],
                        rate_search={"values": [0.1], "steps": 5}))
    with pytest.raises(ConfigError, match="rate search"):
        check(SweepSpec(base={**base, "queries": 85}, grid={}, seeds=[0], rate_search={"values": [0.1], "steps": 5}))
    assert parse_rates("0.01, 0.1,1") == [0.01, 0.1, 1.0]
    with pytest.raises(ConfigError):
        parse_rates("0.1,fast")
    assert not (tmp_path / "runs").exists()


TINY = dict(steps=4, eval_interval=2, eval_tasks=4, ways=3, shots=1, queries=2, tasks_per_step=2, channels=4,
            conv_latent=6, latent=3)


@pytest.mark.slow
def test_the_ablation_runs_end_to_end_each_setting_at_its_chosen_rate(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["sweep", "--ablation", "--seeds", "0,1", "--steps", "4", "--rate-search", "0.01,0.5",
                 "--search-steps", "3", "--angles", "0,90", "--workers", "2", "--runs-dir", str(runs),
                 *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "steps"], "--json", "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code in (0, 1), out  # a candidate may diverge; the sweep proper decides the code
    result = json.loads(out[-1])
    sweep = load_sweep(result["path"])
    assert sweep.spec.grid == ablation.GRID and sweep.spec.base["rotation"] == "query"
    # the search: every setting at every rate, evaluated on validation tasks, recorded in rates.json
    searched = [load_run(sweep.runs[p.key], with_metrics=False) for p in sweep.spec.search_points()]
    assert len(searched) == 6 * 2
    assert all(r.config.eval_on == "validation" and r.config.steps == 3 for r in searched)
    assert set(result["rates"]["candidates"]) == {p.group for p in sweep.spec.points()}
    for p in sweep.spec.points():
        rec = load_run(sweep.runs[p.key], with_metrics=False)
        chosen = sweep.chosen_rates[p.group]
        accs = {float(k): v for k, v in sweep.rates["candidates"][p.group].items() if v is not None}
        assert chosen == max(accs, key=lambda r: (accs[r], -r)), "the best validation accuracy"
        assert rec.config.inner_lr == chosen and rec.config.eval_on == "test" and rec.state == "completed"
    assert len(groups(sweep)) == 6 and all(g.n == 2 for g in groups(sweep))
    study = result["ablation"]
    assert len(study["settings"]) == 6 and study["summary"]
    assert [f["name"] for f in study["factors"]][0] == "dense-U head instead of a plain head"
    # resuming a finished sweep runs nothing again
    assert main(["sweep", "--resume", result["sweep"], "--runs-dir", str(runs), "--quiet"]) == 0
    assert len(list(runs.glob("2*"))) == 12 + 12
