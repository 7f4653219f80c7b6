"""The one driver (msr.runner.execute, msr.core.loop.drive) in this process: the same seed gives the same
records, with or without a folder; a stop or a NaN ends the run keeping its records; bad input writes nothing."""
from __future__ import annotations

import json
import math

import pytest
import torch

from msr.core.errors import ConfigError
from msr.mnist.config import RunConfig
from msr.runner.execute import train
from msr.store.checkpoints import checkpoint_steps, load_checkpoint
from msr.store.reader import list_runs, load_run
from conftest import TIMING, tiny as tiny_conv


def tiny(tmp_path, **changes) -> RunConfig:
    """The tiny config on the shared architecture, three angles and three ways."""
    return tiny_conv(tmp_path, **{"arch": "shared", "ways": 3, "eval_tasks": 3, "n_angles": 3, "angle_step": 30.0,
                                  **changes})


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_same_seed_gives_the_same_metrics(tmp_path):
    a = train(tiny(tmp_path, seed=3), save=False)
    b = train(tiny(tmp_path, seed=3), save=False)
    c = train(tiny(tmp_path, seed=4), save=False)
    assert _strip(a.metrics) == _strip(b.metrics)
    assert _strip(a.metrics) != _strip(c.metrics)


def test_dedicated_runs_are_reproducible_too(tmp_path):
    cfg = tiny(tmp_path, arch="dedicated", engine="higher", steps=2)
    assert _strip(train(cfg, save=False).metrics) == _strip(train(cfg, save=False).metrics)


def test_a_short_run_really_learns(tmp_path):
    cfg = tiny(tmp_path, ways=10, shots=1, queries=3, tasks_per_step=4, outer_lr=3e-3, steps=30,
               eval_interval=30, eval_tasks=20)
    result = train(cfg, save=False)
    first, last = result.metrics[0], result.metrics[-1]
    assert first["step"] == 0 and last["step"] == 30
    assert last["test_loss"] < 0.6 * first["test_loss"], (first["test_loss"], last["test_loss"])
    assert last["test_acc"] > first["test_acc"] + 0.3


def test_records_hold_what_the_views_need(tmp_path):
    result = train(tiny(tmp_path))
    rec = result.metrics[-1]
    for key in ("train_loss", "test_loss", "test_err", "test_acc", "steps_per_sec", "inner_lrs"):
        assert rec[key] is not None, key
    assert math.isfinite(rec["test_err"]) and rec["test_err"] > 0
    assert len(rec["per_angle"]["test"]["counts"]) == 3
    assert sum(rec["per_angle"]["test"]["counts"]) == 3 * 3 * 2  # eval tasks × ways × queries
    # train counts cover the queries of the 2 steps since the last evaluation
    assert sum(rec["per_angle"]["train"]["counts"]) == 2 * 2 * 3 * 2
    # cumulative images per angle: supports and queries of all 4 steps
    assert sum(rec["images_per_angle"]["train"]) == 4 * 2 * 3 * 3
    assert sum(rec["images_per_class"]["train"]) == 4 * 2 * 3 * 3
    assert set(rec["inner_lrs"]) == {"conv.weight", "conv.bias", "head.weight", "head.bias"}
    summary = result.summary()
    assert set(summary["per_angle"]) == {"0", "30", "60"}
    assert summary["steps"] == 4 and summary["status"] == "completed"


def test_run_folder_holds_config_metrics_and_checkpoints(tmp_path):
    result = train(tiny(tmp_path))
    rec = load_run(result.run_dir)
    assert rec.damaged is None
    assert rec.config == tiny(tmp_path)
    assert [m["step"] for m in rec.metrics] == [0, 2, 4]
    assert rec.status["status"] == "completed"
    assert checkpoint_steps(result.run_dir) == [0, 2, 4]
    state = load_checkpoint(result.run_dir, 2)
    assert state["step"] == 2 and "model" in state and "inner_lrs" in state
    assert RunConfig.from_dict(state["config"]) == tiny(tmp_path)
    # the checkpoint restores the trained model exactly
    from msr.core.models import build_model
    model = build_model(rec.config.model_spec())
    model.load_state_dict(load_checkpoint(result.run_dir)["model"])
    assert torch.equal(model.conv.sym_A, result.learner.model.conv.sym_A)


def test_stop_flag_ends_the_run_and_keeps_its_records(tmp_path):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 3

    result = train(tiny(tmp_path, steps=50, eval_interval=2), should_stop=should_stop)
    assert result.status == "stopped" and result.steps == 3
    rec = load_run(result.run_dir)
    assert rec.status["status"] == "stopped"
    assert [m["step"] for m in rec.metrics] == [0, 2, 3]


def test_nan_loss_stops_the_run_with_a_clear_message(tmp_path):
    events = []
    result = train(tiny(tmp_path, inner_lr=1e30, lr_mode="fixed", steps=20), on_event=events.append)
    assert result.status == "failed"
    assert "loss diverged" in result.message and "learning rate" in result.message
    rec = load_run(result.run_dir)
    assert rec.status["status"] == "failed" and "loss diverged" in rec.status["message"]
    assert rec.metrics and rec.metrics[0]["step"] == 0
    assert events[-1].kind == "done" and events[-1].status == "failed"


def test_bad_config_writes_nothing(tmp_path):
    with pytest.raises(ConfigError):
        train(tiny(tmp_path, outer_lr=0.0))
    with pytest.raises(ConfigError):
        train(tiny(tmp_path, shots=60, queries=50))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_damaged_and_foreign_folders_are_skipped_with_a_warning(tmp_path):
    result = train(tiny(tmp_path, steps=2))
    root = tmp_path / "runs"
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("hello")
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    (root / "alien").mkdir()
    (root / "alien" / "config.json").write_text(json.dumps({"colour": "red"}))
    with pytest.warns(UserWarning, match="skipping"):
        runs = list_runs(root)
    assert [r.run_id for r in runs] == [load_run(result.run_dir).run_id]
    marked = list_runs(root, include_damaged=True)
    assert {r.run_id: bool(r.damaged) for r in marked} == {
        runs[0].run_id: False, "foreign": True, "broken": True, "alien": True}


def test_an_absurd_outer_rate_is_a_diverged_loss_not_a_traceback(tmp_path):
    result = train(tiny(tmp_path, outer_lr=1e300, outer_opt="sgd", steps=4))
    assert result.status == "failed"
    assert result.message.startswith("the loss diverged at step 1 (a number overflowed)")
    assert load_run(result.run_dir).status["message"] == result.message
