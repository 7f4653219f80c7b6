import pytest
import torch

from msr.core.choices import ARCHITECTURES, LR_MODES, MetaConfig, ModelSpec, make_angles
from msr.core.data import TaskSampler, load_bundled
from msr.core.meta import Episode, MetaLearner
from msr.core.models import build_model


@pytest.fixture(scope="module")
def episode():
    data = load_bundled()
    sampler = TaskSampler(data.train, make_angles(3, 30.0), ways=3, shots=2, queries=2,
                          generator=torch.Generator().manual_seed(7))
    b = sampler.sample(3)
    return Episode(b.xs.double(), b.ys, b.xq.double(), b.yq, b.as_, b.aq)


def _learner(arch, engine, lr_mode="per_layer", first_order=False, inner_steps=2):
    model = build_model(ModelSpec(arch=arch, ways=3, n_angles=3, channels=3, conv_latent=5), seed=0)
    cfg = MetaConfig(inner_lr=0.1, lr_mode=lr_mode, engine=engine, inner_steps=inner_steps,
                     first_order=first_order)
    return MetaLearner(model, cfg).double()


def _grads(learner):
    return {n: p.grad.clone() for n, p in learner.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("lr_mode", LR_MODES)
def test_engines_give_the_same_meta_gradient(episode, arch, lr_mode):
    results = {}
    for engine in ("func", "higher"):
        learner = _learner(arch, engine, lr_mode)
        res = learner.meta_gradient(episode)
        results[engine] = (res, _grads(learner))
    (rf, gf), (rh, gh) = results["func"], results["higher"]
    assert torch.allclose(rf.task_losses, rh.task_losses, rtol=1e-6)
    assert gf.keys() == gh.keys()
    names = {n for n, _ in _learner(arch, "func", lr_mode).named_parameters()}
    assert set(gf) == names, "every outer parameter gets a meta-gradient"
    for name in gf:
        torch.testing.assert_close(gf[name], gh[name], rtol=1e-4, atol=1e-10, msg=name)


def test_first_order_engines_agree_and_differ_from_second_order(episode):
    fo = {}
    for engine in ("func", "higher"):
        learner = _learner("shared", engine, first_order=True)
        learner.meta_gradient(episode)
        fo[engine] = _grads(learner)
    for name in fo["func"]:
        torch.testing.assert_close(fo["func"][name], fo["higher"][name], rtol=1e-4, atol=1e-10)
    so = _learner("shared", "func")
    so.meta_gradient(episode)
    second = _grads(so)
    assert not torch.allclose(second["model.conv.weight"], fo["func"]["model.conv.weight"], rtol=1e-3)


def test_meta_gradient_matches_finite_differences(episode):
    """The outer derivative through the inner loop, checked numerically."""
    learner = _learner("shared", "func", inner_steps=1)
    learner.meta_gradient(episode)
    lr = learner.inner_lrs["conv__weight"]
    analytic = lr.grad.item()
    eps = 1e-6
    with torch.no_grad():
        lr += eps
        up = learner.evaluate(episode).loss.item()
        lr -= 2 * eps
        down = learner.evaluate(episode).loss.item()
        lr += eps
    assert analytic == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-9)
    sym = learner.model.conv.sym_C
    analytic = sym.grad[0, 4].item()
    with torch.no_grad():
        sym[0, 4] += eps
        up = learner.evaluate(episode).loss.item()
        sym[0, 4] -= 2 * eps
        down = learner.evaluate(episode).loss.item()
        sym[0, 4] += eps
    assert analytic == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("arch", ["shared", "dense", "dedicated"])
def test_symmetry_params_do_not_adapt_but_get_meta_gradients(episode, arch):
    learner = _learner(arch, "func", inner_steps=3)
    before = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    adapted = learner.adapt_one(episode.xs[0], episode.ys[0], episode.as_[0])
    for name in learner.sym_names:
        assert torch.equal(adapted[name], before[name]), name
    assert any(not torch.equal(adapted[n], before[n]) for n in learner.fast_names)
    learner.meta_gradient(episode)
    for name in learner.sym_names:
        grad = dict(learner.model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert learner.sym_names, "these architectures have symmetry matrices"


def test_fixed_mode_learns_no_rates_and_per_param_rates_match_shapes():
    model = build_model(ModelSpec(arch="shared", channels=2), seed=0)
    assert len(MetaLearner(model, MetaConfig(lr_mode="fixed")).inner_lrs) == 0
    learner = MetaLearner(model, MetaConfig(lr_mode="per_param"))
    for name, p in model.named_parameters():
        if name in learner.fast_names:
            assert learner.lrs()[name].shape == p.shape


def test_outer_step_changes_symmetry_matrices(episode):
    learner = _learner("shared", "func")
    before = learner.model.conv.sym_C.detach().clone()
    learner.step(episode)
    assert not torch.equal(before, learner.model.conv.sym_C)
