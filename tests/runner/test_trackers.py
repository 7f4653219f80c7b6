"""Logging to TensorBoard and W&B (msr.runner.trackers): read back with TensorBoard's own reader and from an
offline W&B run folder. No network."""
import glob
import importlib.util
import json
import struct
from pathlib import Path

import pytest

from msr.cli.main import main
from msr.core.errors import ConfigError
from msr.runner.execute import train
from msr.runner.trackers import TENSORBOARD_DIR, export_tensorboard

from conftest import tiny

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

EVALS = [0, 2, 4]


def events(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def scalar_steps(acc, tag) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def test_a_tensorboard_run_logs_every_evaluation(tmp_path):
    result = train(tiny(tmp_path, log_to="tensorboard"))
    acc = events(f"{result.run_dir}/{TENSORBOARD_DIR}")
    tags = acc.Tags()
    assert [e.value for e in acc.Scalars("loss/test")] == pytest.approx([r["test_loss"] for r in result.metrics])
    assert scalar_steps(acc, "loss/test") == EVALS
    assert scalar_steps(acc, "accuracy/test") == EVALS and scalar_steps(acc, "loss/train") == [2, 4]
    assert {"accuracy_by_angle/0deg", "accuracy_by_angle/90deg", "inner_lr/conv.weight"} <= set(tags["scalars"])
    last = result.metrics[-1]["per_angle"]["test"]
    assert acc.Scalars("accuracy_by_angle/90deg")[-1].value == pytest.approx(1 - last["errors"][1] / last["counts"][1])
    images = acc.Images("filters/first_layer")
    assert [i.step for i in images] == EVALS and images[0].width > 0


def test_export_writes_a_trained_runs_evaluations(tmp_path, capsys):
    result = train(tiny(tmp_path))  # trained without logging
    out = tmp_path / "tb"
    assert main(["export", result.run_dir, "--tensorboard", str(out), "--json"]) == 0
    target = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tensorboard"]
    acc = events(target)
    assert scalar_steps(acc, "loss/test") == EVALS
    assert [i.step for i in acc.Images("filters/first_layer")] == EVALS  # one per kept checkpoint
    assert export_tensorboard(result.run_dir, tmp_path / "again") == tmp_path / "again" / Path(result.run_dir).name


def wandb_records(path):
    """The records of an offline W&B run file (a LevelDB-style log of protobuf records after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, block, chunk = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += block - pos % block
            continue
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or its last part
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def test_an_offline_wandb_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = train(tiny(tmp_path, log_to="wandb"))
    files = glob.glob(f"{result.run_dir}/wandb/offline-run-*/run-*.wandb")
    assert len(files) == 1
    history = []
    for record in wandb_records(files[0]):
        if record.WhichOneof("record_type") == "history":
            items = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.history.item}
            history.append((items["_step"], items.get("loss/test")))
    assert history == [(r["step"], pytest.approx(r["test_loss"])) for r in result.metrics]
    assert glob.glob(f"{result.run_dir}/wandb/offline-run-*/files/media/images/filters/*.png")


def test_a_tracker_that_is_not_installed_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'msr-explorer\[wandb\]'"):
        train(tiny(tmp_path, log_to="tensorboard,wandb"))
    assert not (tmp_path / "runs").exists()
    assert main(["train", "--arch", "conv", "--log-to", "wandb", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "needs the wandb package" in err


def test_log_to_is_a_checked_choice(capsys):
    assert main(["train", "--log-to", "tensorbord"]) == 2
    assert "did you mean tensorboard?" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="log to"):
        tiny("/tmp", log_to="mlflow").validate()
