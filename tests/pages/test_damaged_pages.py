"""The inspection pages on a run whose files are damaged: one line (st.error), never an exception box."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from msr.mnist.config import RunConfig
from msr.runner.execute import train
from msr.store.layout import run_files

ROOT = Path(__file__).resolve().parents[2]
CONFIG = RunConfig(arch="conv", angles=[0.0, 90.0], channels=4, ways=2, shots=1, queries=2, tasks_per_step=2,
                   steps=2, eval_interval=2, eval_tasks=2)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _wrong_keys(path: Path) -> None:
    blob = torch.load(path, weights_only=True)
    blob["model"] = {f"x.{k}": v for k, v in blob["model"].items()}
    torch.save(blob, path)


def _huge_config(path: Path) -> None:
    blob = torch.load(path, weights_only=True)
    blob["config"].update(channels=1024, latent=4096)
    torch.save(blob, path)


def _not_a_checkpoint(path: Path) -> None:
    torch.save([1, 2, 3], path)


DAMAGE = {"truncated": _truncate, "wrong keys": _wrong_keys, "huge config": _huge_config,
          "not a checkpoint": _not_a_checkpoint}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return Path(train(CONFIG.replace(runs_dir=str(tmp_path_factory.mktemp("trained") / "runs"))).run_dir)


@pytest.mark.parametrize("name", ["weights", "errors", "symmetry"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_checkpoint_is_one_line_on_every_page(trained, tmp_path, name, damage):
    run = tmp_path / "runs" / trained.name
    shutil.copytree(trained, run)
    for step in run_files(run).checkpoint_steps():
        DAMAGE[damage](run_files(run).checkpoint(step))
    at = AppTest.from_file(str(ROOT / "views" / f"{name}.py"), default_timeout=120)
    at.session_state["runs_dir"] = str(tmp_path / "runs")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0] and "checkpoint" in errors[0], errors


def test_the_data_page_says_one_line_for_damaged_records(trained, tmp_path):
    run = tmp_path / "runs" / trained.name
    shutil.copytree(trained, run)
    run_files(run).metrics.write_bytes(b"\x00\xff garbage\n{\"step\": 2}\n")
    at = AppTest.from_file(str(ROOT / "views" / "data.py"), default_timeout=120)
    at.session_state["runs_dir"] = str(tmp_path / "runs")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
