"""Second-order MAML in which only the non-symmetry parameters adapt.

Two engines compute the same meta-gradient:

- ``func`` (default): ``torch.func.functional_call`` + ``grad``, vmapped over
  the tasks of a meta-batch, so one forward/backward covers every task.
- ``higher``: the reference, one task at a time through a ``higher`` inner-loop
  context with a backward per task, the way the authors' code does it.

Inner loop: SGD on the support loss over the adapted parameters, with the
symmetry matrices fixed. Outer loop: the mean query loss after adaptation is
differentiated with respect to the symmetry matrices, the initial adapted
parameters and (unless ``fixed``) the inner learning rates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .choices import ENGINES, LR_MODES, OUTER_OPTIMIZERS, MetaConfig
from .layers import is_symmetry_param

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": F.cross_entropy,
    "mse": F.mse_loss,
}


@dataclass
class Episode:
    """Support and query tensors of T tasks (angles may be None)."""
    xs: torch.Tensor
    ys: torch.Tensor
    xq: torch.Tensor
    yq: torch.Tensor
    as_: torch.Tensor | None = None
    aq: torch.Tensor | None = None

    @classmethod
    def of(cls, batch) -> "Episode":
        return cls(batch.xs, batch.ys, batch.xq, batch.yq, getattr(batch, "as_", None), getattr(batch, "aq", None))

    @property
    def tasks(self) -> int:
        return self.xs.shape[0]


@dataclass
class StepResult:
    loss: torch.Tensor  # scalar, detached: mean query loss after adaptation
    task_losses: torch.Tensor  # (T,)
    query_out: torch.Tensor  # (T, Q, ...) detached model outputs on the queries


def _lr_key(name: str) -> str:
    return name.replace(".", "__")


class MetaLearner(nn.Module):
    """Holds the model, the learned inner rates and the outer optimizer."""

    def __init__(self, model: nn.Module, cfg: MetaConfig = MetaConfig()):
        super().__init__()
        if cfg.lr_mode not in LR_MODES:
            raise ValueError(f"unknown lr mode {cfg.lr_mode!r}; allowed: {', '.join(LR_MODES)}")
        if cfg.engine not in ENGINES:
            raise ValueError(f"unknown engine {cfg.engine!r}; allowed: {', '.join(ENGINES)}")
        if cfg.outer_opt not in OUTER_OPTIMIZERS:
            raise ValueError(f"unknown outer optimizer {cfg.outer_opt!r}; allowed: {', '.join(OUTER_OPTIMIZERS)}")
        self.model, self.cfg = model, cfg
        self.loss_fn = LOSSES[cfg.loss]
        named = dict(model.named_parameters())
        self.fast_names = [n for n in named if not is_symmetry_param(n)]
        self.sym_names = [n for n in named if is_symmetry_param(n)]
        self.inner_lrs = nn.ParameterDict()
        if cfg.lr_mode != "fixed":
            for n in self.fast_names:
                shape = named[n].shape if cfg.lr_mode == "per_param" else ()
                self.inner_lrs[_lr_key(n)] = nn.Parameter(torch.full(shape, float(cfg.inner_lr)))
        outer = list(model.parameters()) + list(self.inner_lrs.parameters())
        if cfg.outer_opt == "adam":
            self.optimizer = torch.optim.Adam(outer, lr=cfg.outer_lr)
        else:
            self.optimizer = torch.optim.SGD(outer, lr=cfg.outer_lr)
        self._higher_opt = None

    # ----------------------------------------------------------------- rates
    def lrs(self) -> dict[str, torch.Tensor | float]:
        if self.cfg.lr_mode == "fixed":
            return {n: self.cfg.inner_lr for n in self.fast_names}
        return {n: self.inner_lrs[_lr_key(n)] for n in self.fast_names}

    def lr_summary(self) -> dict[str, float]:
        """One number per adapted tensor (the mean rate for per_param)."""
        return {n: float(v) if isinstance(v, float) else float(v.detach().mean())
                for n, v in self.lrs().items()}

    # ------------------------------------------------------------ func engine
    def _split_params(self) -> tuple[dict, dict]:
        named = dict(self.model.named_parameters())
        return {n: named[n] for n in self.fast_names}, {n: named[n] for n in self.sym_names}

    def _adapt(self, fast: dict, sym: dict, lrs: dict, xs, ys, as_) -> dict:
        first_order = self.cfg.first_order

        def support_loss(f: dict, s: dict) -> torch.Tensor:
            return self.loss_fn(functional_call(self.model, {**f, **s}, (xs, as_)), ys)

        for _ in range(self.cfg.inner_steps):
            if first_order:  # the inner gradient is a constant for the outer loop
                g = grad(support_loss)({k: v.detach() for k, v in fast.items()},
                                       {k: v.detach() for k, v in sym.items()})
            else:
                g = grad(support_loss)(fast, sym)
            fast = {k: fast[k] - lrs[k] * g[k] for k in fast}
        return fast

    def _task(self, fast, sym, lrs, xs, ys, as_, xq, yq, aq):
        adapted = self._adapt(fast, sym, lrs, xs, ys, as_)
        out = functional_call(self.model, {**adapted, **sym}, (xq, aq))
        return self.loss_fn(out, yq), out

    def _vmapped(self, ep: Episode):
        fast, sym = self._split_params()
        angles_dim = None if ep.as_ is None else 0
        fn = vmap(self._task, in_dims=(None, None, None, 0, 0, angles_dim, 0, 0, angles_dim),
                  randomness="error")
        return fn(fast, sym, self.lrs(), ep.xs, ep.ys, ep.as_, ep.xq, ep.yq, ep.aq)

    def _meta_grad_func(self, ep: Episode) -> StepResult:
        losses, out = self._vmapped(ep)
        loss = losses.mean()
        loss.backward()
        return StepResult(loss.detach(), losses.detach(), out.detach())

    # ---------------------------------------------------------- higher engine
    def _meta_grad_higher(self, ep: Episode) -> StepResult:
        import higher

        named = dict(self.model.named_parameters())
        if self._higher_opt is None:
            self._higher_opt = torch.optim.SGD([{"params": [named[n]]} for n in self.fast_names],
                                               lr=self.cfg.inner_lr)
        override = None
        if self.cfg.lr_mode != "fixed":
            lrs = self.lrs()
            override = {"lr": [lrs[n] for n in self.fast_names]}
        detach = (lambda gs: [g.detach() if g is not None else None for g in gs]) if self.cfg.first_order else None
        losses, outs = [], []
        for t in range(ep.tasks):
            a_s = None if ep.as_ is None else ep.as_[t]
            a_q = None if ep.aq is None else ep.aq[t]
            with higher.innerloop_ctx(self.model, self._higher_opt, copy_initial_weights=False,
                                      override=override) as (fnet, diffopt):
                for _ in range(self.cfg.inner_steps):
                    diffopt.step(self.loss_fn(fnet(ep.xs[t], a_s), ep.ys[t]), grad_callback=detach)
                out = fnet(ep.xq[t], a_q)
                loss = self.loss_fn(out, ep.yq[t])
                (loss / ep.tasks).backward()
            losses.append(loss.detach())
            outs.append(out.detach())
        losses_t = torch.stack(losses)
        return StepResult(losses_t.mean(), losses_t, torch.stack(outs))

    # ----------------------------------------------------------------- public
    def meta_gradient(self, ep: Episode) -> StepResult:
        """Fill ``.grad`` of every outer parameter with the meta-gradient."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.cfg.engine == "func":
            return self._meta_grad_func(ep)
        return self._meta_grad_higher(ep)

    def step(self, ep: Episode) -> StepResult:
        result = self.meta_gradient(ep)
        self.optimizer.step()
        return result

    def evaluate(self, ep: Episode, chunk: int = 50) -> StepResult:
        """Adapt on each task's support set and score its queries, without
        recording a graph for the outer loop."""
        losses, outs = [], []
        with torch.no_grad():
            for i in range(0, ep.tasks, chunk):
                part = Episode(*(None if v is None else v[i:i + chunk] for v in
                                 (ep.xs, ep.ys, ep.xq, ep.yq, ep.as_, ep.aq)))
                loss, out = self._vmapped(part)
                losses.append(loss)
                outs.append(out)
        losses_t = torch.cat(losses)
        return StepResult(losses_t.mean(), losses_t, torch.cat(outs))

    def adapt_one(self, xs, ys, as_=None) -> dict[str, torch.Tensor]:
        """All parameters after adapting to one task's support set."""
        fast, sym = self._split_params()
        adapted = self._adapt(fast, sym, self.lrs(), xs, ys, as_)
        return {k: v.detach() for k, v in {**adapted, **sym}.items()}


