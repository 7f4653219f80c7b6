"""Seeded model construction never touches the global random state.

``build_model(spec, seed)`` and ``build_synthetic_model(..., seed=seed)`` draw
every initial value from a private ``torch.Generator``; the values must be
exactly those the global generator gives after ``torch.manual_seed(seed)``
(the earlier ``fork_rng`` + ``manual_seed`` construction), and runs built at
once from several threads must not disturb each other.
"""
from __future__ import annotations

import sys
import threading

import pytest
import torch
from torch import nn

from msr.core.choices import ARCHITECTURES, ModelSpec
from msr.core.layers import BankedConv2d, BankedLinear, DenseConv2d, DenseLinear, KroneckerConv2d
from msr.core.models import build_architecture, build_model
from msr.synthetic.data import IN_SIZE, OUT_SIZE, TAPS
from msr.synthetic.models import MODELS, build_synthetic_model

# Default sizes, and a small dense spec whose conv latent equals the kernel
# size (identity U, uniform v: the other initialization branch).
SPECS = [ModelSpec(arch=a) for a in ARCHITECTURES] + [
    ModelSpec(arch="dense", channels=4, conv_latent=4 * 9),
    ModelSpec(arch="dedicated", ways=3, n_angles=3, channels=3),
]


def _id(spec: ModelSpec) -> str:
    return f"{spec.arch}-c{spec.channels}-l{spec.conv_latent}-n{spec.n_angles}"


def _global_build(spec: ModelSpec, seed: int) -> nn.Module:
    """The earlier construction: seed the global generator inside fork_rng and
    build with the layers' default (global) generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_architecture(ARCHITECTURES[spec.arch], spec, None)


def _global_build_synthetic(model: str, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_synthetic_model(model, problem="rank1")


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert sa[name].dtype == sb[name].dtype, name
        assert torch.equal(sa[name], sb[name]), name


# ------------------------------------------------------- no global draws
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_build_model_leaves_global_rng_alone(arch):
    before = torch.random.get_rng_state()
    build_model(ModelSpec(arch=arch), seed=3)
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize("model", list(MODELS))
def test_build_synthetic_model_leaves_global_rng_alone(model):
    before = torch.random.get_rng_state()
    build_synthetic_model(model, problem="rank1", seed=3)
    assert torch.equal(before, torch.random.get_rng_state())


def test_unseeded_build_still_uses_global_rng():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        a = build_model(ModelSpec(arch="shared"))
        torch.manual_seed(11)
        b = build_model(ModelSpec(arch="shared"))
        _assert_same_state(a, b)
        before = torch.random.get_rng_state()
        build_model(ModelSpec(arch="shared"))
        assert not torch.equal(before, torch.random.get_rng_state())


# --------------------------------------------- same values as the global path
@pytest.mark.parametrize("spec", SPECS, ids=_id)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_build_model_matches_global_seeding(spec, seed):
    _assert_same_state(build_model(spec, seed=seed), _global_build(spec, seed))


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_build_synthetic_model_matches_global_seeding(model, seed):
    _assert_same_state(build_synthetic_model(model, problem="rank1", seed=seed),
                       _global_build_synthetic(model, seed))


def _reference(seed: int, make):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


@pytest.mark.parametrize("bias", [True, False])
def test_layers_match_pytorch_default_init(bias):
    """The generator path reproduces nn.Conv2d / nn.Linear draw for draw."""
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731

    ref = _reference(5, lambda: nn.Conv2d(2, 7, 3, bias=bias))
    for layer in (KroneckerConv2d(2, 7, 3, bias=bias, generator=g()),
                  BankedConv2d(2, 7, 3, bias=bias, generator=g())):
        assert torch.equal(layer.weight, ref.weight)
        if bias:
            assert torch.equal(layer.bias, ref.bias)

    ref = _reference(5, lambda: nn.Linear(13, 4, bias=bias))
    layer = BankedLinear(13, 4, bias=bias, generator=g())
    assert torch.equal(layer.weight, ref.weight)
    if bias:
        assert torch.equal(layer.bias, ref.bias)

    # Banks: copy i is the i-th freshly built module.
    refs = _reference(5, lambda: [nn.Conv2d(1, 3, 3, bias=bias) for _ in range(4)])
    banked = BankedConv2d(1, 3, 3, bias=bias, bank=4, generator=g())
    assert torch.equal(banked.weight, torch.stack([r.weight for r in refs]))
    refs = _reference(5, lambda: [nn.Linear(6, 2, bias=bias) for _ in range(3)])
    banked = BankedLinear(6, 2, bias=bias, bank=3, generator=g())
    assert torch.equal(banked.weight, torch.stack([r.weight for r in refs]))
    # The Kronecker bank draws one shared kernel first, then one per copy.
    refs = _reference(5, lambda: [nn.Conv2d(1, 3, 3, bias=bias) for _ in range(5)])
    kron = KroneckerConv2d(1, 3, 3, bias=bias, bank=4, generator=g())
    assert torch.equal(kron.weight, torch.stack([r.weight for r in refs[1:]]))
    if bias:
        assert torch.equal(kron.bias, torch.stack([r.bias for r in refs[1:]]))


def test_layers_generator_matches_global_generator():
    makers = [
        lambda g: DenseConv2d(2, 4, 3, latent=2 * 4 * 9, generator=g),
        lambda g: DenseConv2d(1, 8, 3, latent=5, bank=2, generator=g),
        lambda g: DenseLinear(9, 4, latent=3, generator=g),
        lambda g: DenseLinear(9, 4, latent=2, bank=3, bias=False, generator=g),
    ]
    for make in makers:
        _assert_same_state(make(torch.Generator().manual_seed(8)), _reference(8, lambda: make(None)))


def test_synthetic_models_match_pytorch_default_init():
    fc = build_synthetic_model("maml-fc", seed=2)
    assert torch.equal(fc.weight, _reference(2, lambda: nn.Linear(IN_SIZE, OUT_SIZE, bias=False)).weight)
    conv = build_synthetic_model("maml-conv", seed=2)
    assert torch.equal(conv.weight, _reference(2, lambda: nn.Conv1d(1, 1, TAPS, bias=False)).weight)
    lc = build_synthetic_model("maml-lc", seed=2)
    bound = 1 / TAPS ** 0.5
    assert torch.equal(lc.weight, _reference(2, lambda: torch.empty(OUT_SIZE, TAPS).uniform_(-bound, bound)))


def test_dedicated_align_starts_at_identity():
    model = build_model(ModelSpec(arch="dedicated", ways=4), seed=0)
    assert torch.equal(model.align.weight, torch.eye(4))
    assert torch.equal(model.align.bias, torch.zeros(4))
    assert model.align.weight.device.type == "cpu" and model.align.weight.requires_grad


# ------------------------------------------------------------------ threads
def _build_concurrently(build, workers: int = 4, rounds: int = 3) -> list[dict[str, torch.Tensor]]:
    """Run ``build`` on ``workers`` threads at once while another thread keeps
    reseeding and drawing from the global generator."""
    results: list[dict[str, torch.Tensor]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()
    start = threading.Barrier(workers + 1)

    def noise():
        start.wait()
        i = 0
        while not stop.is_set():
            torch.manual_seed(i)
            torch.rand(64)
            i += 1

    def worker():
        try:
            start.wait()
            for _ in range(rounds):
                state = build().state_dict()
                with lock:
                    results.append(state)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    before = torch.random.get_rng_state()
    try:
        noisy = threading.Thread(target=noise)
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        noisy.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        noisy.join()
        sys.setswitchinterval(old_interval)
        torch.random.set_rng_state(before)
    assert not errors, errors
    assert len(results) == workers * rounds
    return results


def _assert_all_equal(states: list[dict[str, torch.Tensor]]) -> None:
    first = states[0]
    for other in states[1:]:
        assert other.keys() == first.keys()
        for name in first:
            assert torch.equal(other[name], first[name]), name


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_concurrent_builds_agree(arch):
    spec = ModelSpec(arch=arch)
    states = _build_concurrently(lambda: build_model(spec, seed=42))
    _assert_all_equal(states + [build_model(spec, seed=42).state_dict()])


@pytest.mark.parametrize("model", list(MODELS))
def test_concurrent_synthetic_builds_agree(model):
    states = _build_concurrently(lambda: build_synthetic_model(model, problem="rank1", seed=42))
    _assert_all_equal(states + [build_synthetic_model(model, problem="rank1", seed=42).state_dict()])


# ------------------------------------------------------------- seeds differ
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_different_seeds_differ(arch):
    a = build_model(ModelSpec(arch=arch), seed=0).state_dict()
    b = build_model(ModelSpec(arch=arch), seed=1).state_dict()
    differing = [name for name in a if not torch.equal(a[name], b[name])]
    # Every randomly initialized tensor differs; the symmetry matrices that
    # start at the identity (and the dedicated alignment head) do not.
    assert "head.weight" in differing and "conv.weight" in differing


@pytest.mark.parametrize("model", list(MODELS))
def test_different_synthetic_seeds_differ(model):
    a = build_synthetic_model(model, problem="rank1", seed=0).state_dict()
    b = build_synthetic_model(model, problem="rank1", seed=1).state_dict()
    assert all(not torch.equal(a[name], b[name]) for name in a)
