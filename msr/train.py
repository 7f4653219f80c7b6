"""The run loop: sample tasks, meta-step, evaluate, record, save.

``train`` knows nothing about who watches it: progress goes to an ``on_event``
callback, and ``should_stop`` is polled once per step, so the same loop serves
the command line and a background thread of the app.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from scipy import stats

from .config import ConfigError, RunConfig
from .data import MnistSplits, TaskSampler, load_source
from .meta import Episode, MetaLearner, per_angle_counts
from .models import build_model
from .runs import RunWriter


@dataclass
class Event:
    """What the loop tells its watcher. kind: start, progress, eval, done."""
    kind: str
    step: int
    total: int
    loss: float | None = None
    steps_per_sec: float | None = None
    record: dict | None = None
    status: str | None = None
    message: str | None = None
    run_dir: str | None = None


@dataclass
class RunResult:
    config: RunConfig
    status: str  # completed, stopped, failed
    steps: int
    metrics: list[dict] = field(default_factory=list)
    message: str | None = None
    run_dir: str | None = None
    learner: MetaLearner | None = None

    def summary(self) -> dict:
        """The command line's --json object."""
        last = self.metrics[-1] if self.metrics else {}
        angles = self.config.angle_list()
        test = last.get("per_angle", {}).get("test", {})
        per_angle = {}
        for i, a in enumerate(angles):
            count = test.get("counts", [0] * len(angles))[i]
            errors = test.get("errors", [0] * len(angles))[i]
            per_angle[_angle_key(a)] = {"count": count, "errors": errors,
                                        "acc": (count - errors) / count if count else None}
        return {"run_dir": self.run_dir, "status": self.status, "steps": self.steps,
                "steps_per_sec": last.get("steps_per_sec_overall"), "train_loss": last.get("train_loss"),
                "test_loss": last.get("test_loss"), "test_err": last.get("test_err"),
                "test_acc": last.get("test_acc"), "per_angle": per_angle, "message": self.message}


def _angle_key(a: float) -> str:
    return f"{a:g}"


def t_halfwidth(values: torch.Tensor, confidence: float = 0.95) -> float:
    """Half-width of the Student-t interval of the mean (the authors' test_err)."""
    n = values.numel()
    if n < 2:
        return float("nan")
    sem = float(values.double().std(unbiased=True)) / math.sqrt(n)
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sem)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass
class LoopOutcome:
    status: str  # completed, stopped, failed
    message: str | None
    steps: int


def run_loop(total: int, eval_interval: int, step: Callable[[], torch.Tensor],
             evaluate: Callable[[int], None], should_stop: Callable[[], bool],
             on_step: Callable[[int, float | None, float], None], sync_every: int = 1) -> LoopOutcome:
    """The schedule every meta-training run follows (Rotated MNIST and the
    synthetic problems alike): evaluate at step 0, every eval_interval steps,
    at the last step, and where a stop request ends the run; poll the stop
    flag before each step; end as failed on a non-finite loss.

    step() returns the step's loss; it is read back (a host sync) only every
    sync_every steps. on_step(step, loss or None, seconds the step took) runs
    after each good step.
    """
    done, since_eval = 0, 0
    evaluate(0)
    while done < total:
        if should_stop():
            if since_eval and done > 0:
                evaluate(done)
            return LoopOutcome("stopped", f"stopped by request at step {done}", done)
        t0 = time.perf_counter()
        loss = step()
        done += 1
        since_eval += 1
        value = float(loss) if done % sync_every == 0 or done == total else None
        seconds = time.perf_counter() - t0
        if value is not None and not math.isfinite(value):
            return LoopOutcome("failed", f"the loss became {value} at step {done}; "
                                         "try a smaller inner or outer learning rate", done)
        on_step(done, value, seconds)
        if done % eval_interval == 0 or done == total:
            evaluate(done)
            since_eval = 0
    return LoopOutcome("completed", None, done)


class Trainer:
    """State of one run; ``train()`` drives it."""

    def __init__(self, config: RunConfig, data: MnistSplits | None = None):
        self.config = config.validate()
        cfg = self.config
        self.device = torch.device(cfg.resolved_device())
        self.angles = cfg.angle_list()
        self.data = data if data is not None else load_source(cfg.data_source, cfg.data_dir, cfg.download)
        torch.manual_seed(cfg.seed)  # any op that still reads the global generator
        self.model = build_model(cfg.model_spec(), seed=cfg.seed).to(self.device)
        self.learner = MetaLearner(self.model, cfg.meta_config()).to(self.device)
        try:
            self.train_sampler = TaskSampler(self.data.train, self.angles, cfg.ways, cfg.shots, cfg.queries,
                                             cfg.rotation, _seeded(cfg.seed * 2 + 1), self.device)
            self.test_sampler = TaskSampler(self.data.test, self.angles, cfg.ways, cfg.shots, cfg.queries,
                                            cfg.rotation, _seeded(cfg.seed * 2 + 2), self.device)
        except ValueError as exc:  # the data cannot supply such tasks
            raise ConfigError(str(exc)) from None
        n = len(self.angles)
        zeros = lambda k: torch.zeros(k, dtype=torch.long, device=self.device)  # noqa: E731
        self.train_counts, self.train_errors = zeros(n), zeros(n)  # since the last evaluation
        self.train_counts_total = zeros(n)
        self.train_class_total = zeros(10)
        self.test_counts_total = zeros(n)
        self.test_class_total = zeros(10)
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct_sum = torch.zeros((), device=self.device)
        self.query_total = 0
        self.steps_since_eval = 0
        self.train_seconds = 0.0
        self.window_seconds = 0.0

    # ---------------------------------------------------------------- steps
    def step(self) -> torch.Tensor:
        batch = self.train_sampler.sample(self.config.tasks_per_step)
        result = self.learner.step(Episode.of(batch))
        correct = result.query_out.argmax(-1) == batch.yq
        counts, errors = per_angle_counts(batch.aq, correct, len(self.angles))
        s_counts = torch.bincount(batch.as_.reshape(-1), minlength=len(self.angles))
        self.train_counts += counts
        self.train_errors += errors
        self.train_counts_total += counts + s_counts
        per_class = self.config.shots + self.config.queries
        self.train_class_total += torch.bincount(batch.classes.reshape(-1), minlength=10) * per_class
        self.loss_sum += result.loss
        self.correct_sum += correct.sum()
        self.query_total += correct.numel()
        self.steps_since_eval += 1
        return result.loss

    def evaluate(self, step: int) -> dict:
        cfg = self.config
        batch = self.test_sampler.sample(cfg.eval_tasks)
        result = self.learner.evaluate(Episode.of(batch))
        correct = result.query_out.argmax(-1) == batch.yq
        counts, errors = per_angle_counts(batch.aq, correct, len(self.angles))
        self.test_counts_total += counts + torch.bincount(batch.as_.reshape(-1), minlength=len(self.angles))
        self.test_class_total += torch.bincount(batch.classes.reshape(-1), minlength=10) * (cfg.shots + cfg.queries)
        task_acc = correct.float().mean(dim=1)
        train_loss = float(self.loss_sum / self.steps_since_eval) if self.steps_since_eval else None
        train_acc = float(self.correct_sum / self.query_total) if self.query_total else None
        record = {
            "step": step,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": float(result.loss),
            "test_err": t_halfwidth(result.task_losses),
            "test_acc": float(task_acc.mean()),
            "test_acc_err": t_halfwidth(task_acc),
            "steps_per_sec": (self.steps_since_eval / self.window_seconds) if self.window_seconds > 0 else None,
            "steps_per_sec_overall": (step / self.train_seconds) if self.train_seconds > 0 else None,
            "train_seconds": self.train_seconds,
            "inner_lrs": self.learner.lr_summary(),
            "per_angle": {
                "train": {"counts": self.train_counts.tolist(), "errors": self.train_errors.tolist()},
                "test": {"counts": counts.tolist(), "errors": errors.tolist()},
            },
            "images_per_angle": {"train": self.train_counts_total.tolist(), "test": self.test_counts_total.tolist()},
            "images_per_class": {"train": self.train_class_total.tolist(), "test": self.test_class_total.tolist()},
        }
        if train_loss is not None and not math.isfinite(train_loss):
            record["train_loss"] = None
        self.train_counts.zero_()
        self.train_errors.zero_()
        self.loss_sum.zero_()
        self.correct_sum.zero_()
        self.query_total = 0
        self.steps_since_eval = 0
        self.window_seconds = 0.0
        return record

    def state(self) -> dict:
        return {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "inner_lrs": {k: v.detach().cpu() for k, v in self.learner.inner_lrs.state_dict().items()}}


def train(config: RunConfig, on_event: Callable[[Event], None] | None = None,
          should_stop: Callable[[], bool] | None = None, *, save: bool = True,
          data: MnistSplits | None = None) -> RunResult:
    """Run meta-training. Raises ConfigError/DataError on bad input before
    anything is written; a NaN loss ends the run as 'failed', keeping its
    records."""
    emit = on_event or (lambda event: None)
    stop = should_stop or (lambda: False)
    trainer = Trainer(config, data)
    cfg = trainer.config
    writer = RunWriter.create(cfg) if save else None
    run_dir = str(writer.path) if writer else None
    result = RunResult(cfg, "running", 0, run_dir=run_dir, learner=trainer.learner)

    def record_eval(step: int) -> None:
        rec = trainer.evaluate(step)
        result.metrics.append(rec)
        if writer:
            writer.append_metrics(rec)
            writer.save_checkpoint(step, trainer.state())
        emit(Event("eval", step, cfg.steps, record=rec, run_dir=run_dir))

    emit(Event("start", 0, cfg.steps, run_dir=run_dir))

    def on_step(step: int, loss: float | None, seconds: float) -> None:
        trainer.train_seconds += seconds
        trainer.window_seconds += seconds
        result.steps = step
        emit(Event("progress", step, cfg.steps, loss=loss,
                   steps_per_sec=step / trainer.train_seconds if trainer.train_seconds else None,
                   run_dir=run_dir))

    try:
        outcome = run_loop(cfg.steps, cfg.eval_interval, trainer.step, record_eval, stop, on_step,
                           sync_every=1 if trainer.device.type == "cpu" else 10)
        result.status, result.message, result.steps = outcome.status, outcome.message, outcome.steps
    except BaseException as exc:
        result.status, result.message = "failed", f"{type(exc).__name__}: {exc}"
        if writer:
            writer.set_status("failed", result.message, steps=result.steps)
        emit(Event("done", result.steps, cfg.steps, status="failed", message=result.message, run_dir=run_dir))
        raise
    if writer:
        writer.set_status(result.status, result.message, steps=result.steps)
    emit(Event("done", result.steps, cfg.steps, status=result.status, message=result.message, run_dir=run_dir))
    return result
