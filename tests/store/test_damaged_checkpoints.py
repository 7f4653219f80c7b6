"""Damaged checkpoints and resume states: each is one line (CheckpointError), never a traceback, and a model
is never built from a config that is invalid, not the run's own, or too big for the memory."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from msr.analysis.inspection import load_snapshot
from msr.analysis.lens import lens_report
from msr.runner.execute import execute, train
from msr.store.checkpoints import CheckpointError, load_checkpoint
from msr.store.layout import run_files
from msr.store.reader import load_run
from conftest import tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return Path(train(tiny(tmp_path_factory.mktemp("trained"), steps=4, eval_interval=2)).run_dir)


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "runs" / trained.name
    shutil.copytree(trained, copy)
    return copy


def _rewrite(path: Path, change) -> None:
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)


def test_a_checkpoint_with_the_wrong_keys_is_one_line(run):
    _rewrite(run_files(run).checkpoint(4), lambda b: b["model"].update({"nonsense": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match="the checkpoint of step 4 of run .* does not fit its model"):
        load_snapshot(run, 4)


def test_a_truncated_checkpoint_is_one_line(run):
    path = run_files(run).checkpoint(4)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot be read .*the file is damaged"):
        load_snapshot(run, 4)


def test_a_checkpoint_of_another_config_is_refused_before_a_model_is_built(run, monkeypatch):
    def huge(blob):
        blob["config"].update(channels=1024, latent=4096)
    _rewrite(run_files(run).checkpoint(4), huge)
    monkeypatch.setattr("msr.mnist.snapshot.build_model", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(CheckpointError, match="was not written by this run"):
        load_checkpoint(run, 4)


def test_a_checkpoint_whose_model_does_not_fit_in_memory_is_refused(run, monkeypatch):
    """config.json says the same huge model: the memory estimate refuses it before anything is built."""
    def huge(blob):
        blob["config"].update(channels=1024, latent=4096)
    _rewrite(run_files(run).checkpoint(4), huge)
    config = json.loads(run_files(run).config.read_text())
    run_files(run).config.write_text(json.dumps({**config, "channels": 1024, "latent": 4096}))
    monkeypatch.setenv("MSR_MEMORY_LIMIT_MB", "512")
    with pytest.raises(CheckpointError, match="describes a model that needs about .* GiB, more than"):
        load_checkpoint(run, 4)


def test_an_invalid_checkpoint_config_is_one_line(run):
    _rewrite(run_files(run).checkpoint(4), lambda b: b["config"].update(channels=-3))
    with pytest.raises(CheckpointError, match="holds an invalid config"):
        load_checkpoint(run, 4)


def test_a_checkpoint_that_is_not_a_state_dict_is_one_line(run):
    _rewrite(run_files(run).checkpoint(4), lambda b: b.update(model=[1, 2]))
    with pytest.raises(CheckpointError, match="does not hold weights"):
        load_checkpoint(run, 4)


def test_the_symmetry_lens_says_one_line_for_a_damaged_checkpoint(run):
    _rewrite(run_files(run).checkpoint(4), lambda b: b["model"].pop(next(iter(b["model"]))))
    with pytest.raises(CheckpointError, match="does not fit its model"):
        lens_report(run, [4])


def test_a_resume_state_with_the_wrong_keys_fails_the_resume_in_one_line(run):
    _rewrite(run_files(run).resume, lambda b: b["model"].update({"nonsense": torch.zeros(2)}))
    status = json.loads(run_files(run).status.read_text())
    run_files(run).status.write_text(json.dumps({**status, "status": "stopped", "step": 2}))
    with pytest.raises(CheckpointError, match="the resume state of run .* does not fit its model"):
        execute(run, resume=True)
    rec = load_run(run)
    assert rec.state == "failed" and "does not fit its model" in rec.status["message"]
    assert "\n" not in rec.status["message"] and "Traceback" not in rec.status["message"]


def test_loading_a_checkpoint_prints_no_warning_of_torch(run):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checkpoint(run, 4)["step"] == 4
