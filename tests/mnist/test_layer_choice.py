"""The first layer and the head chosen apart: every combination builds, gets the same meta-gradient from
both engines, is counted right by the memory estimate, and trains, saves, resumes and reads back."""
from __future__ import annotations

import itertools
import json

import pytest
import torch

from msr.cli.main import main
from msr.core.choices import ARCHITECTURES, CONV_LAYERS, HEAD_LAYERS, MetaConfig, ModelSpec, make_angles, model_label
from msr.core.data import TaskSampler, load_bundled
from msr.core.errors import ConfigError
from msr.core.layers import is_symmetry_param
from msr.core.meta import Episode, MetaLearner
from msr.core.models import build_model
from msr.mnist.config import RunConfig
from msr.mnist.memory import parameter_counts
from msr.store.reader import load_run
from conftest import stopper


PAIRS = list(itertools.product(CONV_LAYERS, HEAD_LAYERS))


def test_the_named_architectures_are_combinations_of_layers():
    assert {a: (x.conv_layer, x.head_layer) for a, x in ARCHITECTURES.items()} == {
        "shared": ("kronecker", "dense"), "dedicated": ("kronecker", "dense"), "dense": ("dense", "dense"),
        "conv": ("plain", "plain")}
    for name in ("shared", "dense", "conv"):
        a = ARCHITECTURES[name]
        spec = ModelSpec(arch=name, ways=3, channels=4, conv_latent=6)
        by_layers = ModelSpec(arch="shared", ways=3, channels=4, conv_latent=6, conv_layer=a.conv_layer,
                              head_layer=a.head_layer)
        a_state, b_state = build_model(spec, seed=5).state_dict(), build_model(by_layers, seed=5).state_dict()
        assert a_state.keys() == b_state.keys()
        assert all(torch.equal(a_state[k], b_state[k]) for k in a_state), "the same draws, value for value"
        assert model_label("shared", a.conv_layer, a.head_layer) == name


def test_labels_name_the_layers_when_no_architecture_has_them():
    assert model_label("shared", "plain", "dense") == "plain conv + dense head"
    assert model_label("conv", "kronecker", None) == "kronecker conv + plain head"
    assert model_label("dedicated", "plain", "plain") == "dedicated (plain conv + plain head)"
    assert model_label("dedicated") == "dedicated"
    assert RunConfig(conv_layer="dense", head_layer="plain").model_label() == "dense conv + plain head"


@pytest.fixture(scope="module")
def episode():
    sampler = TaskSampler(load_bundled().train, make_angles(3, 30.0), ways=3, shots=2, queries=2,
                          generator=torch.Generator().manual_seed(7))
    b = sampler.sample(2)
    return Episode(b.xs.double(), b.ys, b.xq.double(), b.yq, b.as_, b.aq)


@pytest.mark.parametrize("arch", ["shared", "dedicated"])
@pytest.mark.parametrize("conv,head", PAIRS)
def test_both_engines_agree_for_every_combination(episode, arch, conv, head):
    spec = ModelSpec(arch=arch, ways=3, n_angles=3, channels=3, conv_latent=5, conv_layer=conv, head_layer=head)
    grads = {}
    for engine in ("func", "higher"):
        learner = MetaLearner(build_model(spec, seed=0), MetaConfig(inner_lr=0.1, engine=engine, inner_steps=2)).double()
        learner.meta_gradient(episode)
        grads[engine] = {n: p.grad.clone() for n, p in learner.named_parameters()}
    symmetry = [n for n in grads["func"] if is_symmetry_param(n)]
    assert bool(symmetry) == (CONV_LAYERS[conv].symmetry or HEAD_LAYERS[head].symmetry)
    for name in grads["func"]:
        torch.testing.assert_close(grads["func"][name], grads["higher"][name], rtol=1e-4, atol=1e-10, msg=name)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("conv,head", PAIRS)
def test_memory_estimate_counts_every_combination(arch, conv, head):
    cfg = RunConfig(arch=arch, conv_layer=conv, head_layer=head, channels=4, ways=3, n_angles=3, conv_latent=7)
    named = dict(build_model(cfg.model_spec(), seed=0).named_parameters())
    adapted = sum(p.numel() for n, p in named.items() if not is_symmetry_param(n))
    symmetry = sum(p.numel() for n, p in named.items() if is_symmetry_param(n))
    assert parameter_counts(cfg)[:2] == (adapted, symmetry)


def test_an_unknown_layer_is_one_line():
    errors = RunConfig(conv_layer="wide", head_layer="tiny").check().errors
    assert errors["conv_layer"] == "unknown first layer 'wide'; allowed: plain, kronecker, dense"
    assert errors["head_layer"] == "unknown head 'tiny'; allowed: plain, dense"
    with pytest.raises(ConfigError):
        RunConfig(conv_layer="wide").validate()


TINY = ["--preset", "demo", "--steps", "4", "--eval-interval", "2", "--eval-tasks", "2", "--ways", "3",
        "--shots", "1", "--queries", "2", "--tasks-per-step", "2", "--channels", "4", "--conv-latent", "6",
        "--angles", "0,90", "--rotation", "query", "--quiet", "--json"]


def _numbers(path) -> list:
    return [(m["step"], m["test_loss"], m["test_acc"], m["train_loss"]) for m in load_run(path).metrics]


@pytest.mark.slow
@pytest.mark.parametrize("conv,head", PAIRS)
def test_every_combination_trains_saves_resumes_and_reads_back(tmp_path, capsys, conv, head):
    runs = str(tmp_path / "runs")
    assert main(["train", *TINY, "--conv-layer", conv, "--head-layer", head, "--runs-dir", runs]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["steps"] == 4
    rec = load_run(summary["run_dir"])
    assert rec.config.layers() == (conv, head)
    assert RunConfig.from_dict(rec.config.to_dict()) == rec.config, "the run's config loads back"

    # stopped after 3 steps, then resumed: the same records as the run never stopped
    from msr.runner.execute import create_run, execute
    half = create_run(rec.config)
    assert execute(half, should_stop=stopper(3)).status == "stopped"
    assert main(["resume", half.name, "--runs-dir", runs, "--quiet"]) == 0
    capsys.readouterr()
    whole, resumed = _numbers(rec.path), _numbers(half)
    assert [r for r in resumed if r[0] > 3] == [r for r in whole if r[0] > 3]

    assert main(["symmetry", rec.run_id, "--runs-dir", runs, "--json"]) == 0
    lens = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (lens["steps"][-1]["u_orbit_score"] is not None) == CONV_LAYERS[conv].symmetry
    assert lens["subject"] == f"{rec.config.model_label()} on Rotated MNIST"
    assert "isotropic_share" in lens["steps"][-1] and "invariance_kappa" in lens["steps"][-1]
