"""A Rotated MNIST run's trainer: sample tasks, meta-step, evaluate, record.

The driver (msr.core.loop.drive) runs it; it knows nothing about who watches
the run or where it is kept.
"""
from __future__ import annotations

import math

import torch

from ..core.data import MnistSplits, TaskSampler, load_source
from ..core.errors import ConfigError
from ..core.meta import Episode, MetaLearner
from ..core.models import build_model
from ..core.stats import per_angle_counts, t_halfwidth
from .config import RunConfig


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

    # ------------------------------------------------- what the driver keeps
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
