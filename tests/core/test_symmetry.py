"""The equivariance measures (msr.core.symmetry), calibrated at both ends: an exact group convolution scores
error 0 and orbit score 1, random filters clearly worse, and banks built to fool them do not."""
import math

import pytest
import torch

from msr.core.layers import DenseConv2d, KroneckerConv2d
from msr.synthetic.rotation import generate_rotation
from msr.core.symmetry import (C4, C8_RING, equivariance_error, generated_filters, inner_mask, isotropic_share, lifting_conv, orbit_score, permutation_cycles, quarter_turn_average, random_conv, rotate, smooth_probes)


PROBES = smooth_probes(16)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def test_rotate_is_exact_for_quarter_turns_and_counter_clockwise():
    x = torch.randn(2, 1, 9, 9)
    assert torch.equal(rotate(x, 90), torch.rot90(x, 1, (-2, -1)))
    assert torch.equal(rotate(x, -90), torch.rot90(x, 3, (-2, -1)))
    assert torch.equal(rotate(x, 360), x)
    # A bilinear 90° rotation agrees with the exact one away from the borders.
    bilinear = rotate(x, 89.999)
    assert torch.allclose(bilinear[..., 1:-1, 1:-1], torch.rot90(x, 1, (-2, -1))[..., 1:-1, 1:-1], atol=1e-3)


def test_inner_mask_is_a_centred_disc():
    m = inner_mask(30, margin=2)
    assert m[15, 15] and not m[0, 0] and not m[15, 1] and m[15, 3]
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.T)


@pytest.mark.parametrize("channels", [12, 32])
def test_group_conv_scores_zero_error_and_orbit_one(channels):
    w = lifting_conv(channels, generator=seeded(0))
    for angle in (90, 180, 270):
        eq = equivariance_error(w, PROBES, angle)
        assert eq.error < 1e-6
    assert orbit_score(w).score == pytest.approx(1.0, abs=1e-9)


def test_group_conv_channels_in_any_order_still_score_exactly():
    """The lens must find the permutation itself."""
    w = lifting_conv(32, generator=seeded(1))
    shuffled = w[torch.randperm(32, generator=seeded(2))]
    assert equivariance_error(shuffled, PROBES, 90).error < 1e-6
    orbits = orbit_score(shuffled)
    assert orbits.score == pytest.approx(1.0, abs=1e-9)
    cycles = orbits.cycles()
    assert sorted(len(c) for c in cycles) == [4] * 8
    for cycle in cycles:  # each orbit lists rotated copies in turn
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            assert torch.allclose(torch.rot90(shuffled[a], 1, (-2, -1)), shuffled[b])


def test_random_conv_is_clearly_worse():
    errors, scores = [], []
    for seed in range(6):
        w = random_conv(32, generator=seeded(10 + seed))
        errors.append(equivariance_error(w, PROBES, 90).error)
        scores.append(orbit_score(w).score)
    assert min(errors) > 0.3
    assert max(scores) < 0.3 and sum(scores) / len(scores) < 0.12


def test_the_data_layers_are_group_convs_for_the_lens():
    for problem, rotation in (("rot4", C4), ("rot8", C8_RING), ("rot8_flip", C8_RING)):
        w = generate_rotation(problem, seed=0, n_tasks=3).weights(torch.tensor([1]))[0]
        assert equivariance_error(w, PROBES, 90).error < 1e-5
        assert orbit_score(w, C4).score > 0.999
        assert orbit_score(w, rotation).score > 0.999
    # rot4's filters are not 45° copies of one another.
    w = generate_rotation("rot4", seed=0, n_tasks=3).weights(torch.tensor([1]))[0]
    assert orbit_score(w, C8_RING).score < 0.9


def test_zero_filters_have_nothing_to_read():
    assert math.isnan(orbit_score(torch.zeros(8, 1, 3, 3)).score)
    assert math.isnan(equivariance_error(torch.zeros(8, 1, 3, 3), PROBES, 90).error)


# ------------------------------------------------- banks built to fool the lens
def _with_offsets(w, share, generator):
    """Each filter plus a constant offset carrying about ``share`` of its energy."""
    norms = w.reshape(len(w), -1).norm(dim=1).view(-1, 1, 1, 1)
    signs = torch.randint(0, 2, (len(w), 1, 1, 1), generator=generator) * 2 - 1
    offset = signs * norms * math.sqrt(share / (1 - share)) / 3  # a 3×3 constant c has energy 9c²
    return w + offset


def test_random_filters_plus_offsets_read_as_random():
    """The offset bank: about 80% of each filter's energy in a constant. Before the
    lens left the isotropic part out it read as close to equivariant (orbit ~0.8)."""
    for seed in range(3):
        g = seeded(40 + seed)
        rand = random_conv(32, generator=g)
        bank = _with_offsets(rand, 0.8, g)
        assert isotropic_share(bank) > 0.75
        assert orbit_score(bank).score < 0.15
        ratio = equivariance_error(bank, PROBES, 90).error / equivariance_error(rand, PROBES, 90).error
        assert ratio == pytest.approx(1.0, abs=1e-6)  # the offsets change nothing the lens reads


def test_a_group_conv_with_the_same_offsets_still_reads_as_one():
    for seed in range(3):
        g = seeded(50 + seed)
        bank = _with_offsets(lifting_conv(32, generator=g), 0.8, g)
        assert isotropic_share(bank) > 0.75
        assert equivariance_error(bank, PROBES, 90).error < 1e-6
        assert orbit_score(bank).score == pytest.approx(1.0, abs=1e-9)


def test_an_isotropic_bank_has_nothing_to_read():
    """Blobs and constants are their own rotations: no orbit, no equivariance claim."""
    bank = quarter_turn_average(torch.randn(16, 1, 3, 3, generator=seeded(60)))
    assert isotropic_share(bank) == pytest.approx(1.0)
    assert math.isnan(orbit_score(bank).score)
    assert math.isnan(equivariance_error(bank, PROBES, 90).error)


def test_a_shuffled_group_conv_is_not_a_group_conv():
    """The values of an exact group conv with every filter's taps shuffled (a
    shuffle of its own each) are not rotated copies any more; shuffling the
    channels instead changes nothing (see above)."""
    w = lifting_conv(32, generator=seeded(70))
    g = seeded(71)
    perms = torch.stack([torch.randperm(9, generator=g) for _ in range(32)])
    shuffled = w.reshape(32, -1).gather(1, perms).reshape(w.shape)
    rand_err = equivariance_error(random_conv(32, generator=seeded(72)), PROBES, 90).error
    assert orbit_score(shuffled).score < 0.2
    assert equivariance_error(shuffled, PROBES, 90).error > 0.5 * rand_err


def test_a_random_bank_reads_as_random_at_every_angle():
    w = random_conv(32, generator=seeded(80))
    assert orbit_score(w).score < 0.15
    assert 0.2 < isotropic_share(w) < 0.5


def test_permutation_cycles():
    assert permutation_cycles([1, 2, 0, 3, 5, 4]) == [[0, 1, 2], [3], [4, 5]]


def test_generated_filters_follow_u_and_plain_convs_have_none():
    dense = DenseConv2d(1, 8, 3, latent=4, bias=False, generator=seeded(0))
    g = generated_filters(dense, draws=3)
    assert g.shape == (3, 8, 1, 3, 3)
    # Every generated layer lies in the span of U's columns.
    cols = dense.sym_U.detach()
    flat = g.reshape(3, -1).T
    coef = torch.linalg.lstsq(cols, flat).solution
    assert torch.allclose(cols @ coef, flat, atol=1e-5)
    kron = KroneckerConv2d(1, 8, 3, bias=False, generator=seeded(0))
    assert generated_filters(kron, draws=2).shape == (2, 8, 1, 3, 3)
    from msr.core.layers import BankedConv2d
    assert generated_filters(BankedConv2d(1, 8, 3, generator=seeded(0))) is None


def test_a_dense_u_holding_a_group_conv_generates_only_group_convs():
    """Proposition 1: a suitable U makes every v a group convolution."""
    base = torch.randn(2, 9, generator=seeded(3))
    columns = []
    for f in range(2):
        for t in range(9):
            delta = torch.zeros(2, 1, 1, 3, 3)
            delta[f, 0, 0].view(-1)[t] = 1.0
            copies = torch.cat([torch.rot90(delta, r, (-2, -1)) for r in range(4)], dim=1)
            columns.append(copies.reshape(-1))
    layer = DenseConv2d(1, 8, 3, latent=18, bias=False, generator=seeded(0))
    with torch.no_grad():
        layer.sym_U.copy_(torch.stack(columns, dim=1))
    for w in generated_filters(layer, draws=3):
        assert equivariance_error(w, PROBES, 90).error < 1e-5
        assert orbit_score(w).score > 0.999
    del base
