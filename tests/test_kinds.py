"""The run-kind registry: every kind answers for its runs, and a third kind is one package and one entry.

The toy kind below is such a package in a few lines: registered, its runs are
made, trained by the one driver, listed, resumed and reported like any other.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from msr import kinds
from msr.core.errors import ConfigError
from msr.core.kind import RunKind
from msr.core.settings import Checks, Settings, setting
from msr.mnist.config import RunConfig
from msr.runner.execute import create_run, execute
from msr.store.reader import list_runs, load_run
from msr.synthetic.config import SyntheticConfig
from conftest import stopper


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_a_kind_parses_its_own_config_and_is_found_from_it(name):
    kind = kinds.get(name)
    config = kind.config()
    assert kinds.of(config) is kind
    assert kind.parse(config.to_dict()) == config
    assert kinds.recorded({"kind": name, **config.to_dict()}) is kind
    assert kind.label(config) and kind.model_name(config) and kind.describe(config)


def test_a_folder_written_before_the_kind_was_recorded_is_read_by_its_fields():
    assert kinds.recorded(RunConfig().to_dict()) is kinds.MNIST
    assert kinds.recorded(SyntheticConfig().to_dict()) is kinds.SYNTHETIC


def test_an_unknown_kind_is_one_line():
    with pytest.raises(ConfigError, match="unknown run kind 'sound'; allowed: mnist, synthetic"):
        kinds.get("sound")


# ------------------------------------------------------------ a third kind
@dataclass
class ToyConfig(Settings):
    steps: int = setting(4, "Steps", check="whole", low=1)
    eval_interval: int = setting(2, "Evaluate every", check="whole", low=1)
    seed: int = setting(0, "Seed", check="whole", low=0)
    runs_dir: str = setting("runs", "Runs folder")
    name: str = setting("", "Name")

    def check(self) -> Checks:
        c = Checks(self)
        c.check("steps", "eval_interval", "seed")
        return c

    def validate(self) -> "ToyConfig":
        self.check().raise_any()
        return self


class ToyTrainer:
    """Fits one number to 3 by gradient steps."""
    sync_every = 1

    def __init__(self, config: ToyConfig, data=None):
        self.config = config.validate()
        self.w = torch.zeros(())
        self.train_seconds = 0.0

    def add_seconds(self, seconds: float) -> None:
        self.train_seconds += seconds

    def step(self) -> torch.Tensor:
        self.w += 0.5 * (3.0 - self.w)
        return (3.0 - self.w) ** 2

    def evaluate(self, step: int) -> dict:
        return {"step": step, "test_loss": float((3.0 - self.w) ** 2)}

    def state(self) -> dict:
        return {"model": {"w": self.w.clone()}}

    def resume_state(self) -> dict:
        return {**self.state(), "inner_lrs": {}, "optimizer": {}, "generators": {}}

    def load_resume_state(self, state: dict) -> None:
        self.w = state["model"]["w"].clone()


TOY = RunKind(name="toy", config=ToyConfig, trainer=ToyTrainer, label=lambda c: "toy", model_name=lambda c: "w",
              describe=lambda c: "one number", progress_line=lambda r: f"Step: {r['step']}.",
              summary=lambda result: {"status": result.status, "steps": result.steps},
              outcome_line=lambda result, s: f"{result.status}: toy", memory=lambda c, cuda: None,
              angles=lambda c: None)


def test_a_third_kind_is_one_package_and_one_registry_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(kinds.KINDS, TOY.name, TOY)
    config = ToyConfig(steps=6, runs_dir=str(tmp_path / "runs"))
    half = execute(create_run(config), should_stop=stopper(3))
    assert half.status == "stopped" and half.kind is TOY
    resumed = execute(half.run_dir, resume=True)
    assert resumed.status == "completed" and resumed.summary() == {"status": "completed", "steps": 6}
    assert [r["step"] for r in load_run(half.run_dir).metrics] == [0, 2, 3, 4, 6]
    [listed] = list_runs(tmp_path / "runs", kind=TOY)
    assert listed.kind is TOY and listed.state == "completed" and listed.run_id.split("-")[2] == "toy"
    assert json.loads((listed.path / "config.json").read_text())["kind"] == "toy"
    from msr.cli.main import main

    assert main(["runs", "--runs-dir", str(tmp_path / "runs"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]
    assert row["kind"] == "toy" and row["model"] == "w" and row["status"] == "completed"
