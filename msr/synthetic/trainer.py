"""A synthetic run's trainer: the state the driver (msr.core.loop.drive) steps, evaluates and saves.

Each evaluation also keeps the pictures of the weights (:class:`WeightSnapshot`),
which go into the checkpoint for the Paper check page.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import vmap

from ..core.errors import ConfigError
from ..core.meta import Episode, MetaLearner
from ..core.stats import t_halfwidth
from ..core.symmetry import PROBES, generated_filters, smooth_probes
from .config import SyntheticConfig
from .data import SyntheticData, TaskSampler1D, load_or_generate
from .equivariance import LENS_TASKS, lens_record
from .models import MSRFCModel, build_synthetic_model
from .rotation import IN_SIDE as IN_SIDE_2D
from .rotation import RotationTaskSampler, layer_filters
from .score import adapted_weights, conv_score, dense_weight, symmetry_conv_score
from .split import PARTS


@dataclass
class WeightSnapshot:
    """Weights at one evaluation step (CPU tensors). 1-D problems: (68, 70)
    matrices, ``u`` MSR-FC's columns (latent, 68, 70). 2-D problems: filter
    banks (C, 1, 3, 3), ``u`` two layers U generates (2, C, 1, 3, 3)."""
    step: int
    w_init: torch.Tensor  # the meta-learned initial weight
    w_task: torch.Tensor  # after adapting to the first test task
    u: torch.Tensor | None = None  # None without a symmetry matrix


class SyntheticTrainer:
    """State of one synthetic run, with the interface the driver drives
    (step, evaluate, state, resume_state) like msr.mnist.trainer.Trainer."""

    def __init__(self, config: SyntheticConfig, data: SyntheticData | None = None):
        self.config = cfg = config.validate()
        n_tasks = cfg.resolved_tasks()
        if data is None:
            data = load_or_generate(cfg.problem, cfg.data_seed, n_tasks, cache_dir=cfg.cache_dir)
        elif (data.problem, data.n_tasks, data.seed) != (cfg.problem, n_tasks, cfg.data_seed):
            raise ConfigError(f"the given dataset is {data.problem} with {data.n_tasks} tasks (seed {data.seed}), "
                              f"the run asks for {cfg.problem} with {n_tasks} (seed {cfg.data_seed})")
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.resolved_device())
        self.model = build_synthetic_model(cfg.model, cfg.resolved_latent(), cfg.problem, seed=cfg.seed).to(self.device)
        self.learner = MetaLearner(self.model, cfg.meta_config()).to(self.device)
        train_gen = torch.Generator().manual_seed(cfg.seed * 2 + 1)
        test_gen = torch.Generator().manual_seed(cfg.seed * 2 + 2)
        # One fixed test set per seed: every evaluation and every model of a seed
        # is scored on the same tasks and support/query splits.
        train_part, test_part = PARTS[cfg.eval_on]
        if cfg.is_rotation:
            # 2-D tasks are made when drawn; the test tasks are fixed by index
            # and built a chunk at a time (all 300 at once would take 1 GB).
            self.train_sampler = RotationTaskSampler(data, train_part, cfg.shots, cfg.queries, train_gen, self.device)
            self.test_sampler = RotationTaskSampler(data, test_part, cfg.shots, cfg.queries, test_gen, self.device)
            self.test_draw = self.test_sampler.draw(cfg.test_tasks)
            self.probes = smooth_probes(PROBES, IN_SIDE_2D)
        else:
            self.train_sampler = TaskSampler1D(*data.split(train_part), cfg.shots, cfg.queries, train_gen, self.device)
            self.test_ep = TaskSampler1D(*data.split(test_part), cfg.shots, cfg.queries, test_gen,
                                       self.device).sample(cfg.test_tasks)
        self.loss_sum = torch.zeros((), device=self.device)
        self.steps_since_eval = 0
        self.train_seconds = 0.0
        self.snapshot: WeightSnapshot | None = None

    sync_every = 1

    def add_seconds(self, seconds: float) -> None:
        self.train_seconds += seconds

    def step(self) -> torch.Tensor:
        loss = self.learner.step(self.train_sampler.sample(self.config.tasks_per_step)).loss
        self.loss_sum.add_(loss)
        self.steps_since_eval += 1
        return loss

    def evaluate(self, step: int) -> dict:
        if self.config.is_rotation:
            return self._evaluate_rotation(step)
        learner, model = self.learner, self.model
        train_mse = float(self.loss_sum / self.steps_since_eval) if self.steps_since_eval else None
        result = learner.evaluate(self.test_ep)
        weights = adapted_weights(learner, self.test_ep)
        with torch.no_grad():
            w_init = dense_weight(model).detach()
        record = {"step": step, "test_mse": float(result.loss), "test_err": t_halfwidth(result.task_losses.cpu()),
                  "train_mse": train_mse, "conv_score": conv_score(weights),
                  "init_conv_score": conv_score(w_init), "u_conv_score": None, "seconds": self.train_seconds,
                  "inner_lrs": learner.lr_summary()}
        u = None
        if isinstance(model, MSRFCModel):
            u = model.symmetry_columns().cpu().clone()
            record["u_conv_score"] = symmetry_conv_score(u)
        self.snapshot = WeightSnapshot(step, w_init.cpu().clone(), weights[0].cpu().clone(), u)
        self.loss_sum.zero_()
        self.steps_since_eval = 0
        return record

    def test_episode(self, start: int, stop: int) -> Episode:
        """Test tasks start..stop of a 2-D problem (the same at every evaluation)."""
        tasks, order = self.test_draw
        return self.test_sampler.episode(tasks[start:stop], order[start:stop])

    def adapted_filters(self, ep: Episode) -> torch.Tensor:
        """(T, C, 1, 3, 3): each task's layer after the inner loop."""
        learner, model = self.learner, self.model

        def one(xs, ys):
            return layer_filters(model, learner.adapt_one(xs, ys))

        return vmap(one, randomness="error")(ep.xs, ep.ys).detach()

    def _evaluate_rotation(self, step: int) -> dict:
        learner, model, cfg = self.learner, self.model, self.config
        train_mse = float(self.loss_sum / self.steps_since_eval) if self.steps_since_eval else None
        chunk = 50
        losses = torch.cat([learner.evaluate(self.test_episode(i, min(i + chunk, cfg.test_tasks))).task_losses
                            for i in range(0, cfg.test_tasks, chunk)]).cpu()
        banks = self.adapted_filters(self.test_episode(0, min(LENS_TASKS, cfg.test_tasks))).cpu()
        with torch.no_grad():
            w_init = layer_filters(model).detach().cpu()
        generated = generated_filters(model.conv, draws=LENS_TASKS)  # the lens's draws; the first two are pictured
        record = {"step": step, "test_mse": float(losses.mean()), "test_err": t_halfwidth(losses),
                  "train_mse": train_mse, **lens_record(banks, generated, cfg.problem, self.probes),
                  "seconds": self.train_seconds, "inner_lrs": learner.lr_summary()}
        self.snapshot = WeightSnapshot(step, w_init.clone(), banks[0].clone(),
                                 None if generated is None else generated[:2].clone())
        self.loss_sum.zero_()
        self.steps_since_eval = 0
        return record

    def state(self) -> dict:
        """Weights and the pictures of the latest evaluation, for a checkpoint."""
        snap = self.snapshot
        out = {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
               "inner_lrs": {k: v.detach().cpu() for k, v in self.learner.inner_lrs.state_dict().items()}}
        if snap is not None:
            out["snapshot"] = {"w_init": snap.w_init, "w_task": snap.w_task,
                               **({"u": snap.u} if snap.u is not None else {})}
        return out

    def resume_state(self) -> dict:
        return {**self.state(), "optimizer": self.learner.optimizer.state_dict(),
                "generators": {"train": self.train_sampler.generator.get_state()},
                "loss_sum": self.loss_sum.detach().cpu().clone(),
                "scalars": {"steps_since_eval": self.steps_since_eval, "train_seconds": self.train_seconds}}

    def load_resume_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.learner.inner_lrs.load_state_dict(state["inner_lrs"])
        self.learner.optimizer.load_state_dict(state["optimizer"])
        self.train_sampler.generator.set_state(state["generators"]["train"])
        self.loss_sum.copy_(state["loss_sum"].to(self.device))
        self.steps_since_eval = int(state["scalars"]["steps_since_eval"])
        self.train_seconds = float(state["scalars"]["train_seconds"])


def checkpoint_learner(ckpt: dict) -> MetaLearner:
    """The model and learned inner rates a synthetic run's checkpoint holds, rebuilt from its own config."""
    cfg = SyntheticConfig.from_dict(ckpt["config"])
    model = build_synthetic_model(cfg.model, cfg.resolved_latent(), cfg.problem, seed=cfg.seed)
    model.load_state_dict(ckpt["model"])
    model.eval()
    learner = MetaLearner(model, cfg.meta_config())
    learner.inner_lrs.load_state_dict(ckpt["inner_lrs"])
    return learner


def weight_snapshot(ckpt: dict) -> WeightSnapshot | None:
    """The weight pictures a synthetic run's checkpoint holds (None: none)."""
    snap = ckpt.get("snapshot")
    if not isinstance(snap, dict) or "w_init" not in snap or "w_task" not in snap:
        return None
    return WeightSnapshot(int(ckpt.get("step", 0)), snap["w_init"], snap["w_task"], snap.get("u"))
