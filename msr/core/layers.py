"""Symmetry-reparameterized layers: vec(W) = U v.

Naming rule: every symmetry parameter's own name starts with ``sym_``. The
meta-learner keeps those out of the inner loop (see :func:`is_symmetry_param`),
so a layer only has to follow the rule to be handled correctly.

Every layer may hold a *bank* of independent copies (``bank=n``): parameters get
a leading dimension of size n, and ``forward(x, index)`` sends each sample
through its own copy. The dedicated architecture uses this to give every
rotation angle its own circuit without a Python loop over circuits.

Every constructor takes an optional ``generator`` and draws all its random
values from it, so a model can be built reproducibly without touching the
global random state; with ``generator=None`` the global generator is used.
Layers that copy PyTorch's default initialization reproduce it draw for draw:
for the same seed they get the same values as ``nn.Conv2d`` / ``nn.Linear``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import init

SYMMETRY_PREFIX = "sym_"


def is_symmetry_param(name: str) -> bool:
    """True for outer-loop-only parameters (the U / A, B, C matrices)."""
    return name.rsplit(".", 1)[-1].startswith(SYMMETRY_PREFIX)


def _bank_shape(bank: int | None, *shape: int) -> tuple[int, ...]:
    return ((bank,) if bank else ()) + tuple(shape)


def _eye(bank: int | None, n: int) -> torch.Tensor:
    eye = torch.eye(n)
    return eye.expand(bank, n, n).clone() if bank else eye


def _default_init(shape: tuple[int, ...], bias: bool, generator: torch.Generator | None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight (and bias) drawn as ``nn.Conv2d`` / ``nn.Linear.reset_parameters``
    would for a weight of ``shape`` (out, in, *kernel): kaiming-uniform with
    a = √5 on the weight, then U(±1/√fan_in) on the bias, in that order."""
    weight = torch.empty(*shape)
    init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if not bias:
        return weight, None
    fan_in = math.prod(shape[1:])
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    return weight, torch.empty(shape[0]).uniform_(-bound, bound, generator=generator)


def _patches(x: torch.Tensor, k: int, ones: bool) -> torch.Tensor:
    """im2col by k² slices, tap-major: row t·c + ch holds channel ch at tap t.
    With ``ones`` a last row of ones is appended in the same pass, so a bias
    rides along in the matmul instead of costing a pass of its own over the
    (large) output. Several times faster than F.unfold on CPU here."""
    n, c, h, w = x.shape
    ho, wo = h - k + 1, w - k + 1
    rows = [x[:, :, i:i + ho, j:j + wo] for i in range(k) for j in range(k)]
    if ones:
        rows.append(x.new_ones(n, 1, ho, wo))
    return torch.cat(rows, dim=1).reshape(n, -1, ho * wo)


def _tap_major(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """(..., out, in, k, k) weight as (..., out, k²·in [+1]) rows matching
    :func:`_patches`, with the bias as the last column."""
    w = weight.movedim(-3, -1).reshape(*weight.shape[:-3], -1)
    return w if bias is None else torch.cat([w, bias.unsqueeze(-1)], dim=-1)


def _banked_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   index: torch.Tensor | None) -> torch.Tensor:
    """Valid, stride-1 conv2d as im2col + matmul; sample i uses weight[index[i]]
    when an index is given.

    These convs are tiny (1→32 channels, 3×3), and once the inner loop has
    made the weights task-specific, vmap turns ``F.conv2d`` into a grouped
    convolution whose backward is slow on CPU. A matmul over unfolded patches
    computes the same thing and batches well under vmap (see
    benchmarks/profile_step.py).
    """
    n, c_in, h, w = x.shape
    k = weight.shape[-1]
    cols = _patches(x, k, ones=bias is not None)            # (n, k·k·c_in [+1], L)
    rows = _tap_major(weight, bias)                         # ([bank,] c_out, k·k·c_in [+1])
    if index is not None:
        rows = rows[index]                                  # (n, c_out, ...)
    out = torch.matmul(rows, cols)
    return out.reshape(n, out.shape[-2], h - k + 1, w - k + 1)


def _banked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   index: torch.Tensor | None) -> torch.Tensor:
    """linear where sample i uses weight[index[i]]."""
    if index is None:
        return F.linear(x, weight, bias)
    # One matmul against every copy, then pick each sample's own: cheaper
    # than gathering an (n, out, in) weight tensor when `in` is large.
    every = torch.einsum("ni,boi->nbo", x, weight)
    out = every.gather(1, index.view(-1, 1, 1).expand(-1, 1, every.shape[-1])).squeeze(1)
    if bias is not None:
        out = out + bias[index]
    return out


class KroneckerConv2d(nn.Module):
    """Conv whose kernel is warped by U = A ⊗ B ⊗ C (the authors' ShareConv2d).

    W[o,c,s] = Σ A[o,o'] B[c,c'] C[s,s'] V[o',c',s']. A, B, C start at the
    identity, so at init the layer is exactly ``nn.Conv2d`` with kernel V.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 bias: bool = True, bank: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.bank = bank
        weight, b = _default_init((out_channels, in_channels, kernel_size, kernel_size), bias, generator)
        self.weight = nn.Parameter(weight.expand(*_bank_shape(bank, *weight.shape)).clone())
        if b is not None:
            self.bias = nn.Parameter(b.expand(*_bank_shape(bank, *b.shape)).clone())
        else:
            self.register_parameter("bias", None)
        self.sym_A = nn.Parameter(_eye(bank, out_channels))
        self.sym_B = nn.Parameter(_eye(bank, in_channels))
        self.sym_C = nn.Parameter(_eye(bank, kernel_size * kernel_size))
        if bank:
            self.reset_bank(generator=generator)

    def reset_bank(self, generator: torch.Generator | None = None) -> None:
        """Give every copy in a bank its own random kernel."""
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        with torch.no_grad():
            for i in range(self.bank or 0):
                weight, b = _default_init(shape, self.bias is not None, generator)
                self.weight[i].copy_(weight)
                if b is not None:
                    self.bias[i].copy_(b)

    def effective_weight(self) -> torch.Tensor:
        k2 = self.kernel_size * self.kernel_size
        v = self.weight.reshape(*self.weight.shape[:-2], k2)
        # One factor at a time: three small matmuls, never the (o·c·k²)² matrix U.
        w = torch.matmul(v, self.sym_C.transpose(-1, -2).unsqueeze(-3))        # C on the taps
        w = torch.matmul(self.sym_B.unsqueeze(-3), w)                            # B on in-channels
        w = torch.matmul(self.sym_A, w.reshape(*w.shape[:-2], -1))               # A on out-channels
        return w.reshape(self.weight.shape)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return _banked_conv2d(x, self.effective_weight(), self.bias, index)


class DenseConv2d(nn.Module):
    """Conv with a dense symmetry matrix over the whole kernel: vec(W) = U v.

    With latent = c_out·c_in·k² and U = I this is a plain conv; smaller latents
    force sharing. By Proposition 1 of the MSR paper a suitable U turns it into
    a group convolution (e.g. rotated copies of each filter).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, latent: int,
                 bias: bool = True, bank: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.latent = latent
        self.bank = bank
        numel = out_channels * in_channels * kernel_size * kernel_size
        fan_in = in_channels * kernel_size * kernel_size
        if latent == numel:
            u = _eye(bank, numel)
            v = torch.empty(*_bank_shape(bank, latent)).uniform_(-1, 1, generator=generator) / math.sqrt(fan_in)
        else:
            # Var(W) = latent · Var(U) · Var(v) = 1/fan_in, as for a usual conv.
            u = torch.randn(*_bank_shape(bank, numel, latent), generator=generator) / math.sqrt(latent)
            v = torch.randn(*_bank_shape(bank, latent), generator=generator) / math.sqrt(fan_in)
        self.sym_U = nn.Parameter(u)
        self.weight = nn.Parameter(v)
        if bias:
            self.bias = nn.Parameter(torch.empty(*_bank_shape(bank, out_channels)).uniform_(
                -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator))
        else:
            self.register_parameter("bias", None)

    def effective_weight(self) -> torch.Tensor:
        w = torch.einsum("...il,...l->...i", self.sym_U, self.weight)
        return w.reshape(*w.shape[:-1], self.out_channels, self.in_channels,
                         self.kernel_size, self.kernel_size)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return _banked_conv2d(x, self.effective_weight(), self.bias, index)


class DenseLinear(nn.Module):
    """The authors' ShareLinearFull: W = (U v).view(out, in).

    U ~ N(0, 0.01²), v ~ N(0, 1/out²) and bias ~ U(±1/√in), as in the authors'
    code.

    The forward never builds W. With U split into latent columns U_l (each
    out×in), x Wᵀ = Σ_l v_l (x U_lᵀ): the projections z = x U_lᵀ do not depend
    on v, so one matmul serves every task in a meta-batch and the inner loop
    only touches a (n, out, latent) tensor. Materializing W per task instead
    means several passes over a U-sized tensor per task (see
    benchmarks/profile_step.py), which dominated the step.
    """

    def __init__(self, in_features: int, out_features: int, latent: int = 3,
                 bias: bool = True, bank: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.in_features, self.out_features, self.latent = in_features, out_features, latent
        self.bank = bank
        self.sym_U = nn.Parameter(torch.randn(*_bank_shape(bank, out_features * in_features, latent),
                                              generator=generator) * 0.01)
        self.weight = nn.Parameter(torch.randn(*_bank_shape(bank, latent), generator=generator) / out_features)
        if bias:
            bound = 1 / math.sqrt(in_features)
            self.bias = nn.Parameter(torch.empty(*_bank_shape(bank, out_features)).uniform_(
                -bound, bound, generator=generator))
        else:
            self.register_parameter("bias", None)

    def effective_weight(self) -> torch.Tensor:
        w = torch.einsum("...il,...l->...i", self.sym_U, self.weight)
        return w.reshape(*w.shape[:-1], self.out_features, self.in_features)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """z[n, (b,) o, l] = Σ_i x[n, i] U[(b,) o·in + i, l], as one plain matmul
        (under vmap the task dimension folds into its rows)."""
        o, i, l = self.out_features, self.in_features, self.latent
        u = self.sym_U.reshape(-1, o, i, l).permute(2, 0, 1, 3).reshape(i, -1)   # (in, [b·]o·l)
        z = torch.matmul(x, u)
        return z.reshape(x.shape[0], *((self.bank,) if self.bank else ()), o, l)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        z = self.project(x)
        if index is None:
            out = torch.matmul(z, self.weight)
            return out + self.bias if self.bias is not None else out
        z = z[torch.arange(x.shape[0], device=x.device), index]         # (n, out, latent)
        out = torch.matmul(z, self.weight[index].unsqueeze(-1)).squeeze(-1)
        return out + self.bias[index] if self.bias is not None else out


def _init_banked(module: nn.Module, shape: tuple[int, ...], bias: bool, bank: int | None,
                 generator: torch.Generator | None) -> None:
    """Give a plain layer its weight (and bias): torch's default init, one
    copy per bank entry when banked (a leading bank axis), else one."""
    copies = [_default_init(shape, bias, generator) for _ in range(bank or 1)]
    w = torch.stack([weight for weight, _ in copies])
    module.weight = nn.Parameter(w if bank else w[0])
    if bias:
        b = torch.stack([b for _, b in copies])
        module.bias = nn.Parameter(b if bank else b[0])
    else:
        module.register_parameter("bias", None)


class BankedConv2d(nn.Module):
    """A plain conv (no symmetry matrices), optionally one copy per bank entry."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 bias: bool = True, bank: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        _init_banked(self, (out_channels, in_channels, kernel_size, kernel_size), bias, bank, generator)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return _banked_conv2d(x, self.weight, self.bias, index)


class BankedLinear(nn.Module):
    """A plain linear layer, optionally one copy per bank entry."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 bank: int | None = None, generator: torch.Generator | None = None):
        super().__init__()
        _init_banked(self, (out_features, in_features), bias, bank, generator)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return _banked_linear(x, self.weight, self.bias, index)
