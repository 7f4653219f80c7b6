import torch
import torch.nn.functional as F

from msr.core.layers import BankedConv2d, BankedLinear, DenseConv2d, DenseLinear, KroneckerConv2d, is_symmetry_param


def test_kronecker_conv_at_identity_is_plain_conv():
    torch.manual_seed(0)
    layer = KroneckerConv2d(3, 5, 3)
    x = torch.randn(4, 3, 10, 10)
    expected = F.conv2d(x, layer.weight, layer.bias)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert torch.equal(layer.effective_weight(), layer.weight)


def test_kronecker_conv_warp_matches_the_formula():
    torch.manual_seed(1)
    layer = KroneckerConv2d(2, 3, 3)
    with torch.no_grad():
        for p in (layer.sym_A, layer.sym_B, layer.sym_C):
            p.copy_(torch.randn_like(p))
    A, B, C = layer.sym_A, layer.sym_B, layer.sym_C
    V = layer.weight.reshape(3, 2, 9)
    # W = (A ⊗ B ⊗ C) vec(V)
    U = torch.kron(torch.kron(A, B), C)
    expected = (U @ V.reshape(-1)).reshape(3, 2, 3, 3)
    assert torch.allclose(layer.effective_weight(), expected, atol=1e-5)


def test_dense_conv_with_identity_u_is_plain_conv():
    torch.manual_seed(2)
    layer = DenseConv2d(2, 4, 3, latent=2 * 4 * 9)
    assert torch.equal(layer.sym_U, torch.eye(72))
    x = torch.randn(3, 2, 8, 8)
    w = layer.weight.reshape(4, 2, 3, 3)
    assert torch.allclose(layer(x), F.conv2d(x, w, layer.bias), atol=1e-6)


def test_dense_conv_small_latent_has_conv_scale():
    layer = DenseConv2d(1, 32, 3, latent=4)
    w = layer.effective_weight()
    assert w.shape == (32, 1, 3, 3)
    assert 0.05 < w.std().item() < 1.0


def test_dense_linear_is_u_times_v():
    torch.manual_seed(3)
    layer = DenseLinear(7, 5, latent=3)
    x = torch.randn(4, 7)
    W = (layer.sym_U @ layer.weight).view(5, 7)
    assert torch.allclose(layer(x), x @ W.T + layer.bias, atol=1e-6)
    assert abs(layer.sym_U.std().item() - 0.01) < 0.005


def test_banked_layers_route_each_sample_to_its_own_copy():
    torch.manual_seed(4)
    conv = KroneckerConv2d(1, 3, 3, bank=3)
    lin = DenseLinear(12, 2, latent=2, bank=3)
    x = torch.randn(5, 1, 6, 6)
    idx = torch.tensor([0, 2, 1, 2, 0])
    out = conv(x, idx)
    w = conv.effective_weight()
    for i in range(5):
        ref = F.conv2d(x[i:i + 1], w[idx[i]], conv.bias[idx[i]])
        assert torch.allclose(out[i:i + 1], ref, atol=1e-5)
    h = torch.randn(5, 12)
    out = lin(h, idx)
    W = lin.effective_weight()
    for i in range(5):
        assert torch.allclose(out[i], W[idx[i]] @ h[i] + lin.bias[idx[i]], atol=1e-5)
    # copies start different, so circuits are really independent
    assert not torch.allclose(conv.weight[0], conv.weight[1])


def test_plain_layers_match_torch():
    torch.manual_seed(5)
    conv, lin = BankedConv2d(1, 2, 3), BankedLinear(4, 3)
    x = torch.randn(2, 1, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight, conv.bias))
    h = torch.randn(2, 4)
    assert torch.allclose(lin(h), F.linear(h, lin.weight, lin.bias))


def test_symmetry_naming_rule():
    assert is_symmetry_param("conv.sym_A")
    assert is_symmetry_param("head.sym_U")
    assert not is_symmetry_param("conv.weight")
    assert not is_symmetry_param("sym_block.weight")
