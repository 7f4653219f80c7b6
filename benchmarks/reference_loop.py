"""The meta-training step as the student project and the authors' code wrote
it: a ``higher`` inner-loop context per task, one task after another, a
backward per task, and the query loss pulled to the host per task."""
from __future__ import annotations

import higher
import numpy as np
import torch
import torch.nn.functional as F

from msr.layers import is_symmetry_param


class ReferenceLoop:
    def __init__(self, model: torch.nn.Module, inner_lr: float = 0.01, outer_lr: float = 1e-4,
                 inner_steps: int = 1, first_order: bool = False):
        self.model = model
        fast = [p for n, p in model.named_parameters() if not is_symmetry_param(n)]
        # per-layer learned inner rates, as the authors' "maml" inner optimizer with learned lrs
        self.lrs = [torch.tensor(inner_lr, requires_grad=True, device=fast[0].device) for _ in fast]
        self.inner_opt = torch.optim.SGD([{"params": [p]} for p in fast], lr=inner_lr)
        self.meta_opt = torch.optim.Adam(list(model.parameters()) + self.lrs, lr=outer_lr)
        self.inner_steps = inner_steps
        self.first_order = first_order

    def step(self, ep) -> float:
        task_num = ep.xs.shape[0]
        qry_losses = []
        self.meta_opt.zero_grad()
        for i in range(task_num):
            with higher.innerloop_ctx(self.model, self.inner_opt, copy_initial_weights=False,
                                      override={"lr": self.lrs},
                                      track_higher_grads=True) as (fnet, diffopt):
                for _ in range(self.inner_steps):
                    spt_loss = F.cross_entropy(fnet(ep.xs[i], ep.as_[i]), ep.ys[i])
                    diffopt.step(spt_loss, grad_callback=(lambda gs: [g.detach() for g in gs])
                                 if self.first_order else None)
                qry_loss = F.cross_entropy(fnet(ep.xq[i], ep.aq[i]), ep.yq[i])
                qry_losses.append(qry_loss.detach().cpu().numpy())
                (qry_loss / task_num).backward()
        self.meta_opt.step()
        return float(np.mean(qry_losses))
