"""The meta-training step as the student project and the authors' code wrote
it: a ``higher`` inner-loop context per task, one task after another, a
backward per task, and the query loss pulled to the host per task.

``StudentNet`` is the student project's single circuit written the way the
authors' layers compute it (the kernel warp by three einsums then
``F.conv2d``; the dense layer's weight built as ``U @ v`` then
``F.linear``). It is loaded from one of our ``shared`` models, so both compute
the same function and the same meta-gradient.
"""
from __future__ import annotations

import higher
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from msr.core.layers import is_symmetry_param


class StudentNet(nn.Module):
    """Kronecker conv → ReLU → flatten → dense-U linear, authors' style."""

    def __init__(self, shared_model: nn.Module):
        super().__init__()
        conv, head = shared_model.conv, shared_model.head
        self.out_channels, self.in_channels = conv.out_channels, conv.in_channels
        self.out_features, self.in_features = head.out_features, head.in_features
        clone = lambda t: nn.Parameter(t.detach().clone())  # noqa: E731
        self.conv_weight, self.conv_bias = clone(conv.weight), clone(conv.bias)
        self.A_warp, self.B_warp, self.C_warp = clone(conv.sym_A), clone(conv.sym_B), clone(conv.sym_C)
        self.warp, self.latent_params, self.bias = clone(head.sym_U), clone(head.weight), clone(head.bias)

    def fast_parameters(self) -> list[nn.Parameter]:
        return [self.conv_weight, self.conv_bias, self.latent_params, self.bias]

    def forward(self, x, angle_idx=None):
        w = self.conv_weight.reshape(self.out_channels, self.in_channels, -1)
        w = torch.einsum("ij,jkl->ikl", self.A_warp, w)
        w = torch.einsum("ik,jkl->jil", self.B_warp, w)
        w = torch.einsum("il,jkl->jki", self.C_warp, w)
        h = F.relu(F.conv2d(x, w.reshape(self.conv_weight.shape), self.conv_bias))
        weight = (self.warp @ self.latent_params).view(self.out_features, self.in_features)
        return F.linear(h.flatten(1), weight, self.bias)


class ReferenceLoop:
    def __init__(self, model: nn.Module, inner_lr: float = 0.01, outer_lr: float = 1e-4,
                 inner_steps: int = 1, first_order: bool = False):
        self.model = model
        if hasattr(model, "fast_parameters"):
            fast = model.fast_parameters()
        else:
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
