"""The paper's 1-D synthetic problems: generator, cache, models, convolution score, a short run in which
MSR-FC learns convolution, bad settings in one line, and validation tasks apart from test tasks."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import msr.synthetic.data as syn
from conftest import toeplitz
from msr.core.errors import ConfigError
from msr.synthetic.data import PROBLEMS, TaskSampler1D, generate, load_or_generate
from msr.synthetic.models import MODELS, PAPER_LATENT, build_synthetic_model
from msr.synthetic.run import run_synthetic
from msr.synthetic.score import conv_score, dense_weight, symmetry_conv_score, toeplitz_filter, toeplitz_projection


# A budget at which MSR-FC reliably finds the convolution within seconds: a
# larger outer step, fewer tasks per step, 5 support examples (fewer than
# the paper's 1000 steps × 32 tasks × 1 shot).
FAST = dict(steps=200, tasks_per_step=8, outer_lr=1e-2, shots=5, queries=15, n_tasks=500, test_tasks=50,
            eval_interval=50, seed=0, threads=1)


# ------------------------------------------------------------------ generator
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_generator_shapes_and_split(problem):
    data = generate(problem, seed=3, n_tasks=50)
    rank = PROBLEMS[problem]
    assert data.x.shape == (50, 20, 1, 70)
    assert data.y.shape == (50, 20, 1, 68)
    assert data.basis.shape == (50, rank, 3)
    assert data.mixing_logits.shape == (68, rank)
    assert data.filters().shape == (50, 68, 3)
    xs, ys = data.split("train")
    xt, yt = data.split("test")
    assert (len(xs), len(xt)) == (40, 10)
    assert torch.equal(torch.cat([xs, xt]), data.x) and torch.equal(torch.cat([ys, yt]), data.y)


def test_rank1_is_a_convolution_with_the_task_filter():
    data = generate("rank1", seed=0, n_tasks=20)
    filters = data.filters()
    # One filter per task, the same at every position...
    assert torch.allclose(filters, filters[:, :1].expand_as(filters))
    assert torch.allclose(filters[:, 0], data.basis[:, 0])
    # ...and y is conv1d of x with it (torch's cross-correlation, valid padding).
    for t in range(20):
        expected = F.conv1d(data.x[t], data.basis[t, 0].view(1, 1, 3))
        assert torch.allclose(data.y[t], expected, atol=1e-5)
    # Different tasks really have different filters.
    assert torch.cdist(data.basis[:, 0], data.basis[:, 0]).triu(1)[torch.triu_indices(20, 20, 1).unbind()].min() > 0


@pytest.mark.parametrize("problem", ["rank2", "rank5"])
def test_rank_r_is_locally_connected_with_the_stated_mixing(problem):
    rank = PROBLEMS[problem]
    data = generate(problem, seed=1, n_tasks=12)
    logits = data.mixing_logits.double()
    mix = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(axis=1, keepdims=True)
    x, y, basis = data.x.double().numpy(), data.y.double().numpy(), data.basis.double().numpy()
    for t in range(12):
        for p in range(68):
            f = mix[p] @ basis[t]  # this position's filter: a softmax mix of the task's r basis filters
            assert f.shape == (3,)
            np.testing.assert_allclose(y[t, :, 0, p], x[t, :, 0, p:p + 3] @ f, rtol=1e-4, atol=1e-5)
    # The mixing is one per dataset (same for every task) and it is not a
    # convolution: positions use different filters.
    filters = data.filters()
    assert not torch.allclose(filters[:, 0], filters[:, 30], atol=1e-3)
    assert rank == data.basis.shape[1]


def test_generator_is_seeded_and_leaves_global_state_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = generate("rank2", seed=7, n_tasks=10), generate("rank2", seed=7, n_tasks=10), \
        generate("rank2", seed=8, n_tasks=10)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.mixing_logits, b.mixing_logits)
    assert not torch.equal(a.x, c.x)


def test_cache_returns_identical_data_and_is_read_back(tmp_path, monkeypatch):
    first = load_or_generate("rank5", seed=2, n_tasks=30, cache_dir=tmp_path)
    path = syn.cache_path(tmp_path, "rank5", 2, 30)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left over
    blob = torch.load(path, weights_only=True)
    assert set(blob) == {"x", "y", "basis", "mixing_logits"}

    def no_generation(*args, **kwargs):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(syn, "generate", no_generation)
    second = load_or_generate("rank5", seed=2, n_tasks=30, cache_dir=tmp_path)
    for name in ("x", "y", "basis", "mixing_logits"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    # Another seed or size is another file.
    assert syn.cache_path(tmp_path, "rank5", 3, 30) != path
    assert syn.cache_path(tmp_path, "rank5", 2, 40) != path


def test_a_broken_cache_file_is_regenerated(tmp_path):
    path = syn.cache_path(tmp_path, "rank1", 0, 20)
    path.write_bytes(b"not a torch file")
    data = load_or_generate("rank1", seed=0, n_tasks=20, cache_dir=tmp_path)
    assert torch.equal(data.x, generate("rank1", 0, 20).x)
    assert torch.equal(torch.load(path, weights_only=True)["x"], data.x)


def test_task_sampler_splits_support_and_query_from_one_task():
    data = generate("rank1", seed=0, n_tasks=40)
    x, y = data.split("train")
    ep = TaskSampler1D(x, y, 1, 19, torch.Generator().manual_seed(0)).sample(8)
    assert ep.xs.shape == (8, 1, 1, 70) and ep.xq.shape == (8, 19, 1, 70) and ep.yq.shape == (8, 19, 1, 68)
    for t in range(8):
        # Every example of a sampled task obeys that task's filter: find the filter from its support.
        task = int((x == ep.xs[t, 0]).all(-1).all(-1).nonzero()[0, 0])
        all_x = torch.cat([ep.xs[t], ep.xq[t]])
        assert len({tuple(r.flatten().tolist()) for r in all_x}) == 20  # 20 distinct examples
        assert torch.allclose(F.conv1d(all_x, data.basis[task, 0].view(1, 1, 3)), torch.cat([ep.ys[t], ep.yq[t]]),
                              atol=1e-5)


# --------------------------------------------------------------------- models
@pytest.mark.parametrize("name", list(MODELS))
def test_models_are_bias_free_linear_maps_with_the_right_shapes(name):
    model = build_synthetic_model(name, problem="rank1", seed=0)
    x = torch.randn(5, 1, 70)
    out = model(x, None)
    assert out.shape == (5, 1, 68)
    w = dense_weight(model)
    assert w.shape == (68, 70)
    assert torch.allclose(out, x @ w.T, atol=1e-5)
    assert torch.allclose(model(torch.zeros(2, 1, 70)), torch.zeros(2, 1, 68))  # no bias
    params = dict(model.named_parameters())
    if name == "maml-lc":
        assert params["weight"].shape == (68, 3)
    if name == "maml-conv":
        assert params["weight"].shape == (1, 1, 3)
    if name == "msr-fc":
        assert params["fc.sym_U"].shape == (68 * 70, 3) and params["fc.weight"].shape == (3,)


def test_msr_fc_uses_the_papers_latent_per_problem():
    for problem, latent in PAPER_LATENT.items():
        assert build_synthetic_model("msr-fc", problem=problem).fc.latent == latent
    assert build_synthetic_model("msr-fc", latent=7).fc.latent == 7
    assert PAPER_LATENT == {"rank1": 3, "rank2": 6, "rank5": 30}


def test_model_seed_is_reproducible():
    a, b = build_synthetic_model("msr-fc", seed=4), build_synthetic_model("msr-fc", seed=4)
    assert torch.equal(a.fc.sym_U, b.fc.sym_U)
    assert not torch.equal(a.fc.sym_U, build_synthetic_model("msr-fc", seed=5).fc.sym_U)


# --------------------------------------------------------------- conv score
def test_conv_score_of_known_matrices():
    assert conv_score(toeplitz([0.5, -1.0, 2.0])) == pytest.approx(1.0)
    assert conv_score(toeplitz([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.0)  # a band, but 3 off: not 3 taps
    g = torch.Generator().manual_seed(0)
    assert conv_score(torch.randn(68, 70, generator=g)) < 0.01
    lc = torch.zeros(68, 70)  # banded but each position its own filter: locally connected
    taps = torch.randn(68, 3, generator=g)
    for p in range(68):
        lc[p, p:p + 3] = taps[p]
    assert conv_score(lc) < 0.15
    assert conv_score(torch.zeros(68, 70)) == 0.0


def test_toeplitz_projection_is_the_orthogonal_projection():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(68, 70, generator=g, dtype=torch.float64)
    p = toeplitz_projection(w)
    assert torch.allclose(toeplitz_projection(p), p)  # idempotent
    assert torch.allclose(p, toeplitz(toeplitz_filter(w).tolist()).double())
    # The residual is orthogonal to every 3-tap Toeplitz matrix.
    for k in range(3):
        basis = toeplitz([1.0 if i == k else 0.0 for i in range(3)]).double()
        assert float(((w - p) * basis).sum()) == pytest.approx(0.0, abs=1e-9)
    assert conv_score(w) == pytest.approx(float(p.pow(2).sum() / w.pow(2).sum()))


def test_symmetry_score_is_the_expected_score_over_random_v():
    g = torch.Generator().manual_seed(2)
    cols = torch.stack([toeplitz([1.0, 0.0, 0.0]) * 3, torch.randn(68, 70, generator=g) * 0.2])
    exact = symmetry_conv_score(cols)
    v = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    ws = torch.einsum("nl,lij->nij", v, cols.double())
    proj = toeplitz_projection(ws)
    monte_carlo = float(proj.pow(2).sum() / ws.pow(2).sum())
    assert exact == pytest.approx(monte_carlo, rel=0.05)
    # Energy-weighted over the columns: the 3·band column carries 612 units, all convolutional.
    band = [float(toeplitz_projection(c.double()).pow(2).sum()) for c in cols]
    energy = [float(c.double().pow(2).sum()) for c in cols]
    assert band[0] == pytest.approx(612) and energy[0] == pytest.approx(612)
    assert exact == pytest.approx(sum(band) / sum(energy), rel=1e-9)
    assert 0.7 < exact < 0.8


# ------------------------------------------------------------ learning (rank1)
@pytest.fixture(scope="module")
def rank1_runs(tmp_path_factory):
    data = load_or_generate("rank1", seed=0, n_tasks=FAST["n_tasks"], cache_dir=tmp_path_factory.mktemp("cache"))
    return {m: run_synthetic("rank1", m, data=data, **FAST) for m in ("msr-fc", "maml-fc")}


def test_msr_fc_beats_maml_fc_tenfold_on_rank1(rank1_runs):
    msr, fc = rank1_runs["msr-fc"], rank1_runs["maml-fc"]
    assert msr.status == fc.status == "completed" and msr.steps == fc.steps == FAST["steps"]
    assert msr.test_mse < fc.test_mse / 10, (msr.test_mse, fc.test_mse)
    # The interval is the authors' test_err: a t half-width over the test tasks.
    assert 0 < msr.test_err < msr.test_mse


def test_msr_fc_conv_score_rises_while_maml_fc_stays_dense(rank1_runs):
    msr, fc = rank1_runs["msr-fc"], rank1_runs["maml-fc"]
    scores = [r["conv_score"] for r in msr.history]
    assert [r["step"] for r in msr.history] == [0, 50, 100, 150, 200]
    assert scores[0] < 0.05 and scores[-1] > 0.8, scores
    assert msr.history[-1]["u_conv_score"] > 0.8 and msr.history[0]["u_conv_score"] < 0.05
    assert max(r["conv_score"] for r in fc.history) < 0.5
    assert fc.history[-1]["u_conv_score"] is None


def test_snapshots_hold_u_and_w_at_every_evaluation(rank1_runs):
    msr, fc = rank1_runs["msr-fc"], rank1_runs["maml-fc"]
    assert [s.step for s in msr.snapshots] == [r["step"] for r in msr.history]
    last = msr.snapshots[-1]
    assert last.u.shape == (3, 68, 70) and last.w_init.shape == last.w_task.shape == (68, 70)
    assert fc.snapshots[-1].u is None
    # The adapted weight of MSR-FC lies in the span of U's columns.
    coef = torch.linalg.lstsq(last.u.reshape(3, -1).T, last.w_task.reshape(-1, 1)).solution
    assert torch.allclose(last.u.reshape(3, -1).T @ coef, last.w_task.reshape(-1, 1), atol=1e-4)
    assert conv_score(last.w_task) > 0.8
    summary = msr.summary()
    json.dumps(summary)
    assert summary["conv_score"] == msr.history[-1]["conv_score"] and summary["latent"] == 3


def test_runs_are_reproducible_from_the_seed(tmp_path):
    kw = dict(steps=3, tasks_per_step=4, n_tasks=100, test_tasks=10, eval_interval=3, threads=1,
              cache_dir=str(tmp_path))
    a = run_synthetic("rank2", "msr-fc", seed=5, **kw)
    b = run_synthetic("rank2", "msr-fc", seed=5, **kw)
    c = run_synthetic("rank2", "msr-fc", seed=6, **kw)
    assert [r["test_mse"] for r in a.history] == [r["test_mse"] for r in b.history]
    assert [r["test_mse"] for r in a.history] != [r["test_mse"] for r in c.history]
    assert a.snapshots[-1].u.shape == (6, 68, 70)


def test_stop_and_callbacks(tmp_path):
    seen, steps = [], []
    res = run_synthetic("rank1", "maml-conv", steps=50, n_tasks=100, test_tasks=10, eval_interval=100,
                        cache_dir=str(tmp_path), on_eval=lambda r, s: seen.append(r["step"]),
                        on_step=lambda i, n: steps.append(i), should_stop=lambda: len(steps) >= 7)
    assert res.status == "stopped" and res.steps == 7
    assert seen == [0, 7] and steps == list(range(1, 8))


@pytest.mark.parametrize("changes, fragment", [
    (dict(problem="rank3"), "unknown problem"),
    (dict(model="mlp"), "unknown model"),
    (dict(steps=0), "steps"),
    (dict(shots=5, queries=16), "exceeds the 20 examples"),
    (dict(test_tasks=500, n_tasks=1000), "test tasks"),
    (dict(tasks_per_step=0), "tasks per step"),
    (dict(outer_lr=float("nan")), "outer learning rate"),
    (dict(model="maml-conv", latent=3), "latent size applies to msr-fc and msr-conv-dense only"),
    (dict(problem="rot4", model="msr-fc"), "unknown model 'msr-fc' for rot4"),
    (dict(latent=0), "latent size"),
    (dict(lr_mode="adaptive"), "lr mode"),
    (dict(bogus=1), "unknown setting"),
])
def test_bad_settings_raise_one_clear_line(changes, fragment, tmp_path):
    kw = dict(problem="rank1", model="msr-fc", cache_dir=str(tmp_path))
    kw.update(changes)
    with pytest.raises(ConfigError) as exc:
        run_synthetic(kw.pop("problem"), kw.pop("model"), **kw)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)
    assert not any(tmp_path.iterdir())  # nothing written


def test_validation_tasks_are_the_last_fifth_of_the_training_tasks():
    from msr.synthetic.split import task_range

    n = 1000
    fit, val, train, test = (task_range(n, part) for part in ("fit", "validation", "train", "test"))
    assert train == (0, 800) and test == (800, 200)
    assert fit == (0, 640) and val == (640, 160), "validation lies inside training, never in test"


def test_a_validation_run_never_draws_a_test_task(tmp_path):
    from msr.synthetic.config import SyntheticConfig
    from msr.synthetic.trainer import SyntheticTrainer

    cfg = SyntheticConfig(problem="rot4", model="maml-conv", steps=2, eval_interval=1, n_tasks=100, test_tasks=4,
                          tasks_per_step=4, eval_on="validation", cache_dir=str(tmp_path / "cache"))
    trainer = SyntheticTrainer(cfg)
    assert (trainer.train_sampler.offset, trainer.train_sampler.size) == (0, 64)
    assert (trainer.test_sampler.offset, trainer.test_sampler.size) == (64, 16)
    tasks, _ = trainer.test_draw
    assert tasks.min() >= 64 and tasks.max() < 80
    errors = SyntheticConfig(problem="rot4", n_tasks=100, test_tasks=17, eval_on="validation").check().errors
    assert "test_tasks" in errors, "no more validation tasks than there are"
