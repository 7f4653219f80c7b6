"""A Rotated MNIST run: its trainer (sample tasks, meta-step, evaluate, record).

``train`` knows nothing about who watches it: progress goes to an ``on_event``
callback, and ``should_stop`` is polled once per step, so the same loop serves
the command line and a worker process of the app.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from .config import ConfigError, RunConfig
from .data import MnistSplits, TaskSampler, load_source
from .meta import Episode, MetaLearner
from .models import build_model
from .schedule import run_loop
from .stats import per_angle_counts, t_halfwidth


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
    kind: str = "mnist"

    def summary(self) -> dict:
        """The command line's --json object."""
        if self.kind == "synthetic":
            from .synthetic.run import summarize
            return {"run_dir": self.run_dir, **summarize(self.config, self.status, self.steps, self.metrics,
                                                          self.message)}
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


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Trainer:
    """State of one run; ``train()`` drives it."""

    def __init__(self, config: RunConfig, data: MnistSplits | None = None):
        self.config = config.validate()
        cfg = self.config
        self.device = torch.device(cfg.resolved_device())
        self.angles = cfg.angle_list()
        self.data = data if data is not None else load_source(cfg.data_source, cfg.data_dir, cfg.download)
        if cfg.eval_on == "validation":
            self.data = self.data.validation()
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

    # ------------------------------------------------- what the worker saves
    total = property(lambda self: self.config.steps)
    eval_interval = property(lambda self: self.config.eval_interval)
    sync_every = property(lambda self: 1 if self.device.type == "cpu" else 10)
    COUNTERS = ("train_counts", "train_errors", "train_counts_total", "train_class_total", "test_counts_total",
                "test_class_total", "loss_sum", "correct_sum")
    SCALARS = ("query_total", "steps_since_eval", "train_seconds", "window_seconds")

    def add_seconds(self, seconds: float) -> None:
        self.train_seconds += seconds
        self.window_seconds += seconds

    def state(self) -> dict:
        """The weights, for a checkpoint that the inspection pages read."""
        return {"model": _cpu(self.model.state_dict()), "inner_lrs": _cpu(self.learner.inner_lrs.state_dict())}

    def resume_state(self) -> dict:
        """Everything the run needs to go on exactly as if never interrupted."""
        return {**self.state(), "optimizer": self.learner.optimizer.state_dict(),
                "generators": {"train": self.train_sampler.generator.get_state(),
                               "test": self.test_sampler.generator.get_state()},
                "counters": {k: getattr(self, k).detach().cpu().clone() for k in self.COUNTERS},
                "scalars": {k: float(getattr(self, k)) for k in self.SCALARS}}

    def load_resume_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.learner.inner_lrs.load_state_dict(state["inner_lrs"])
        self.learner.optimizer.load_state_dict(state["optimizer"])
        self.train_sampler.generator.set_state(state["generators"]["train"])
        self.test_sampler.generator.set_state(state["generators"]["test"])
        for k in self.COUNTERS:
            getattr(self, k).copy_(state["counters"][k].to(self.device))
        for k in self.SCALARS:
            value = state["scalars"][k]
            setattr(self, k, int(value) if k in ("query_total", "steps_since_eval") else float(value))


def _cpu(tensors: dict) -> dict:
    return {k: v.detach().cpu() for k, v in tensors.items()}


def train(config: RunConfig, on_event: Callable[[Event], None] | None = None,
          should_stop: Callable[[], bool] | None = None, *, save: bool = True,
          data: MnistSplits | None = None) -> RunResult:
    """Run meta-training in this process. Raises ConfigError/DataError on bad
    input before anything is written; a NaN loss ends the run as 'failed',
    keeping its records. With ``save`` the run gets a folder, written as any
    worker writes it (see msr.worker)."""
    if save:
        from .worker import create_run, execute
        trainer = Trainer(config, data)
        run_dir = create_run(trainer.config, "mnist")
        return execute(run_dir, on_event=on_event, should_stop=should_stop, trainer=trainer)
    emit = on_event or (lambda event: None)
    stop = should_stop or (lambda: False)
    trainer = Trainer(config, data)
    cfg = trainer.config
    result = RunResult(cfg, "running", 0, learner=trainer.learner)

    def record_eval(step: int, stopping: bool) -> None:
        rec = trainer.evaluate(step)
        result.metrics.append(rec)
        emit(Event("eval", step, cfg.steps, record=rec))

    def on_step(step: int, loss: float | None, seconds: float) -> None:
        trainer.add_seconds(seconds)
        result.steps = step
        emit(Event("progress", step, cfg.steps, loss=loss,
                   steps_per_sec=step / trainer.train_seconds if trainer.train_seconds else None))

    emit(Event("start", 0, cfg.steps))
    outcome = run_loop(cfg.steps, cfg.eval_interval, trainer.step, record_eval, stop, on_step,
                       sync_every=trainer.sync_every)
    result.status, result.message, result.steps = outcome.status, outcome.message, outcome.steps
    emit(Event("done", result.steps, cfg.steps, status=result.status, message=result.message))
    return result
