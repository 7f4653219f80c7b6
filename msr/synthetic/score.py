"""The convolution score: how much of a weight matrix is a 3-tap convolution.

The score (see :func:`conv_score`) is the fraction of a weight matrix's energy
that lies in the best-fitting 3-tap banded Toeplitz matrix; 1.0 means the
weight is exactly a 3-tap convolution.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap

from ..core.meta import Episode, MetaLearner
from .data import IN_SIZE, TAPS


def toeplitz_filter(w: torch.Tensor, taps: int = TAPS) -> torch.Tensor:
    """(..., taps): the filter h of the closest banded Toeplitz matrix
    (W[i, i+k] = h[k], zero elsewhere) to W (..., out, in) in Frobenius norm.

    The band matrices of different k have disjoint supports, so the projection
    is just the mean of each of the first ``taps`` diagonals.
    """
    return torch.stack([w.diagonal(offset=k, dim1=-2, dim2=-1).mean(-1) for k in range(taps)], dim=-1)


def toeplitz_projection(w: torch.Tensor, taps: int = TAPS) -> torch.Tensor:
    """The closest banded Toeplitz matrix to W (same shape as W)."""
    h = toeplitz_filter(w, taps)
    out = torch.zeros_like(w)
    for k in range(taps):
        n = w.diagonal(offset=k, dim1=-2, dim2=-1).shape[-1]
        idx = torch.arange(n, device=w.device)
        out[..., idx, idx + k] = h[..., k:k + 1]
    return out


def _band_energy(w: torch.Tensor, taps: int) -> torch.Tensor:
    """||P(W)||²: each diagonal's mean squared, times its length."""
    lengths = torch.tensor([w.diagonal(offset=k, dim1=-2, dim2=-1).shape[-1] for k in range(taps)],
                           dtype=w.dtype, device=w.device)
    return (toeplitz_filter(w, taps).pow(2) * lengths).sum(-1)


def conv_score(w: torch.Tensor, taps: int = TAPS) -> float:
    """||P(W)||² / ||W||², P the projection onto 3-tap banded Toeplitz matrices.

    1.0: W is exactly a 3-tap convolution. A random dense 68×70 matrix scores
    about 3/4760 ≈ 0.0006; a banded but unshared (locally connected) one about
    1/68. With a leading batch dimension the energies are pooled over the
    batch, i.e. the score of the whole collection, dominated by its large
    members rather than by near-zero ones.
    """
    w = w.detach().double()
    total = w.pow(2).sum()
    if float(total) == 0.0:
        return 0.0
    return float(_band_energy(w, taps).sum() / total)


def symmetry_conv_score(columns: torch.Tensor) -> float:
    """Conv score of what a symmetry matrix U lets the inner loop reach.

    ``columns`` is (latent, 68, 70). Since v changes on every task, U is scored
    on the weights it generates for v ~ N(0, I): E||P(Uv)||² / E||Uv||² =
    Σ_j ||P(U_j)||² / Σ_j ||U_j||², the energy-weighted score of its columns,
    so an almost-unused column counts little. This does not depend on the
    meta-learned v or on the rates, only on the sharing pattern itself.
    """
    return conv_score(columns)


def dense_weight(model: nn.Module, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The 68×70 matrix a bias-free synthetic model applies, found by feeding it
    the 70 unit vectors (so one function serves every architecture)."""
    probe = torch.eye(IN_SIZE, device=next(model.parameters()).device).unsqueeze(1)  # (70, 1, 70)
    out = model(probe) if params is None else functional_call(model, params, (probe,))
    return out.squeeze(1).T


def adapted_weights(learner: MetaLearner, ep: Episode) -> torch.Tensor:
    """(T, 68, 70): the weight each task's adapted parameters apply (all tasks at once)."""
    model = learner.model

    def one(xs, ys):
        return dense_weight(model, learner.adapt_one(xs, ys))

    return vmap(one, randomness="error")(ep.xs, ep.ys).detach()
