"""A synthetic run: the trainer the worker drives, its results, and ``run_synthetic`` in-process."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.func import vmap

from ..config import ConfigError
from ..meta import Episode, MetaLearner
from ..schedule import run_loop
from ..stats import t_halfwidth
from ..symmetry import LENS_TASKS, PROBES, generated_filters, lens_record, smooth_probes
from .config import SyntheticConfig, make_config
from .data import SyntheticData, TaskSampler, load_or_generate
from .models import MODEL_ORDER, MSRFCModel, build_synthetic_model
from .rotation import IN_SIDE as IN_SIDE_2D
from .rotation import RotationTaskSampler, layer_filters
from .split import PARTS
from .score import adapted_weights, conv_score, dense_weight, symmetry_conv_score


@dataclass
class Snapshot:
    """Weights at one evaluation step (CPU tensors). 1-D problems: (68, 70)
    matrices, ``u`` MSR-FC's columns (latent, 68, 70). 2-D problems: filter
    banks (C, 1, 3, 3), ``u`` two layers U generates (2, C, 1, 3, 3)."""
    step: int
    w_init: torch.Tensor  # the meta-learned initial weight
    w_task: torch.Tensor  # after adapting to the first test task
    u: torch.Tensor | None = None  # None without a symmetry matrix


@dataclass
class SyntheticResult:
    config: SyntheticConfig
    status: str  # completed, stopped, failed
    steps: int = 0
    history: list[dict] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
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


def summarize(cfg: SyntheticConfig, status: str, steps: int, history: list[dict],
              message: str | None = None) -> dict:
    """The command line's --json object for a synthetic run."""
    last = history[-1] if history else {}
    seconds = last.get("seconds") or 0.0
    return {"problem": cfg.problem, "model": cfg.model, "latent": cfg.resolved_latent(),
            "status": status, "steps": steps, "test_mse": last.get("test_mse"),
            "test_err": last.get("test_err"), "conv_score": last.get("conv_score"),
            "u_conv_score": last.get("u_conv_score"),
            "conv_score_start": history[0].get("conv_score") if history else None,
            "equiv_error": last.get("equiv_error"), "orbit_score": last.get("orbit_score"),
            "u_equiv_error": last.get("u_equiv_error"), "u_orbit_score": last.get("u_orbit_score"),
            "seconds": round(seconds, 3), "steps_per_sec": last.get("step", 0) / seconds if seconds > 0 else None,
            "seed": cfg.seed, "data_seed": cfg.data_seed, "message": message}


class SyntheticTrainer:
    """State of one synthetic run, with the interface the worker drives
    (step, evaluate, state, resume_state) like msr.train.Trainer."""

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
            self.train_sampler = TaskSampler(*data.split(train_part), cfg.shots, cfg.queries, train_gen, self.device)
            self.test_ep = TaskSampler(*data.split(test_part), cfg.shots, cfg.queries, test_gen,
                                       self.device).sample(cfg.test_tasks)
        self.loss_sum = torch.zeros((), device=self.device)
        self.steps_since_eval = 0
        self.train_seconds = 0.0
        self.snapshot: Snapshot | None = None

    total = property(lambda self: self.config.steps)
    eval_interval = property(lambda self: self.config.eval_interval)
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
        self.snapshot = Snapshot(step, w_init.cpu().clone(), weights[0].cpu().clone(), u)
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
        self.snapshot = Snapshot(step, w_init.clone(), banks[0].clone(),
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


def snapshot_from_checkpoint(ckpt: dict) -> Snapshot | None:
    """The weight pictures a synthetic run's checkpoint holds (None: none)."""
    snap = ckpt.get("snapshot")
    if not isinstance(snap, dict) or "w_init" not in snap or "w_task" not in snap:
        return None
    return Snapshot(int(ckpt.get("step", 0)), snap["w_init"], snap["w_task"], snap.get("u"))


def run_synthetic(problem: str = "rank1", model: str = "msr-fc", *,
                  on_eval: Callable[[dict, Snapshot], None] | None = None,
                  on_step: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  data: SyntheticData | None = None, keep_snapshots: bool = True,
                  config: SyntheticConfig | None = None, **settings) -> SyntheticResult:
    """Meta-train one model on one problem in this process, without a run
    folder (benchmarks and tests; the app and the command line save runs
    through msr.worker). Evaluates at step 0, every ``eval_interval`` steps
    and at the end.

    ``settings`` are SyntheticConfig fields (steps, seed, latent, ...). ``data``
    reuses a loaded dataset (it must be the config's problem). Raises
    ConfigError on bad input before any work; a non-finite loss ends the run as
    'failed' with its records kept.
    """
    cfg = make_config(problem, model, base=config, **settings)
    emit_eval = on_eval or (lambda record, snap: None)
    emit_step = on_step or (lambda step, total: None)
    stop = should_stop or (lambda: False)
    previous_threads = torch.get_num_threads()
    try:
        trainer = SyntheticTrainer(cfg, data)
        result = SyntheticResult(cfg, "running")

        def on_step_(step: int, loss: float | None, seconds: float) -> None:
            trainer.add_seconds(seconds)
            result.steps, result.seconds = step, trainer.train_seconds
            emit_step(step, cfg.steps)

        def record_eval(step: int, stopping: bool) -> None:
            record = trainer.evaluate(step)
            result.history.append(record)
            if keep_snapshots:
                result.snapshots.append(trainer.snapshot)
            emit_eval(record, trainer.snapshot)

        outcome = run_loop(cfg.steps, cfg.eval_interval, trainer.step, record_eval, stop, on_step_)
        result.status, result.message, result.steps = outcome.status, outcome.message, outcome.steps
        return result
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(previous_threads)


def run_groups(records: list) -> dict[str, list]:
    """Synthetic run records by the group they were launched in, newest group
    first; a run launched alone is a group of its own."""
    groups: dict[str, list] = {}
    for rec in records:
        if rec.damaged or rec.kind != "synthetic":
            continue
        groups.setdefault(rec.config.group or rec.run_id, []).append(rec)
    order = MODEL_ORDER
    for runs in groups.values():
        runs.sort(key=lambda r: order.index(r.config.model) if r.config.model in order else len(order))
    return dict(sorted(groups.items(), key=lambda kv: -max(r.created for r in kv[1])))
