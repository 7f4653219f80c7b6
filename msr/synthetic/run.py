"""``run_synthetic``: one synthetic run in this process, without a run folder (benchmarks and tests).

The app and the command line save runs (msr.runner); this is the same driver
(msr.core.loop.drive) without a folder, keeping every evaluation's weight
pictures in memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..core.loop import Event, RunResult, drive
from .config import SyntheticConfig, make_config
from .data import SyntheticData
from .report import summarize
from .trainer import SyntheticTrainer, WeightSnapshot


@dataclass
class SyntheticResult:
    config: SyntheticConfig
    status: str  # completed, stopped, failed
    steps: int = 0
    history: list[dict] = field(default_factory=list)
    snapshots: list[WeightSnapshot] = field(default_factory=list)
    seconds: float = 0.0
    message: str | None = None

    @property
    def last(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def test_mse(self) -> float | None:
        return self.last.get("test_mse")

    @property
    def test_err(self) -> float | None:
        return self.last.get("test_err")

    @property
    def conv_score(self) -> float | None:
        return self.last.get("conv_score")

    def summary(self) -> dict:
        """The command line's --json object."""
        out = summarize(self.config, self.status, self.steps, self.history, self.message)
        out["seconds"] = round(self.seconds, 3)
        out["steps_per_sec"] = self.steps / self.seconds if self.seconds > 0 else None
        return out


def run_synthetic(problem: str = "rank1", model: str = "msr-fc", *,
                  on_eval: Callable[[dict, WeightSnapshot], None] | None = None,
                  on_step: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  data: SyntheticData | None = None, keep_snapshots: bool = True,
                  config: SyntheticConfig | None = None, **settings) -> SyntheticResult:
    """Meta-train one model on one problem in this process, without a run
    folder. Evaluates at step 0, every ``eval_interval`` steps and at the end.

    ``settings`` are SyntheticConfig fields (steps, seed, latent, ...). ``data``
    reuses a loaded dataset (it must be the config's problem). Raises
    ConfigError on bad input before any work; a non-finite loss ends the run as
    'failed' with its records kept.
    """
    cfg = make_config(problem, model, base=config, **settings)
    emit_eval = on_eval or (lambda record, snap: None)
    emit_step = on_step or (lambda step, total: None)
    previous_threads = torch.get_num_threads()
    try:
        trainer = SyntheticTrainer(cfg, data)
        result = SyntheticResult(cfg, "running")

        def watch(event: Event) -> None:
            if event.kind == "progress":
                result.steps, result.seconds = event.step, trainer.train_seconds
                emit_step(event.step, cfg.steps)
            elif event.kind == "eval":
                if keep_snapshots:
                    result.snapshots.append(trainer.snapshot)
                emit_eval(event.record, trainer.snapshot)

        run = RunResult(cfg, "running", 0)
        result.history = run.metrics  # the driver appends each evaluation's record
        drive(trainer, run, on_event=watch, should_stop=should_stop)
        result.status, result.message, result.steps = run.status, run.message, run.steps
        return result
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(previous_threads)
