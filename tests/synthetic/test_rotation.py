"""The 2-D rotation problems: the data are exactly what the group says, the
models train through the same meta-learner, runs save and resume."""
import json

import pytest
import torch
import torch.nn.functional as F

from msr.cli.main import main
from msr.core.errors import ConfigError
from msr.synthetic.config import SyntheticConfig
from msr.synthetic.data import load_or_generate
from msr.synthetic.models import ROTATION_MODELS, build_synthetic_model, models_for, paper_latent
from msr.synthetic.rotation import (FIELDS, ROTATION_PROBLEMS, RotationTaskSampler, apply_layers, generate_rotation,
                                    layer_filters, steerable_basis)
from msr.core.groups import RING, element_permutations, ring_permutation
from msr.runner.admission import admit
from msr.synthetic.run import run_synthetic

TINY = dict(steps=6, tasks_per_step=4, test_tasks=6, eval_interval=3, n_tasks=40, threads=1, cache_dir=None)


def channel_shift(problem: str, quarter_turns: int = 1) -> list[int]:
    """For each output channel, the channel whose map, rotated, it becomes
    when the input is rotated by 90°·quarter_turns."""
    g = ROTATION_PROBLEMS[problem]
    shift = quarter_turns * (g.rotations // 4)
    out = []
    for f in range(FIELDS):
        for e in range(g.order):
            s, r = divmod(e, g.rotations)
            out.append(f * g.order + s * g.rotations + (r - shift) % g.rotations)
    return out


def test_rot90_is_a_shift_of_the_ring_by_two_and_mirror_flips_rows():
    a = torch.arange(9.0).reshape(3, 3)
    assert torch.equal(a.flatten()[ring_permutation(2)].reshape(3, 3), torch.rot90(a, 1, (0, 1)))
    assert torch.equal(a.flatten()[ring_permutation(0, mirror=True)].reshape(3, 3), a.flip(0))
    assert sorted(RING) == [0, 1, 2, 3, 5, 6, 7, 8]


def test_steerable_basis_is_orthonormal_and_shifting_the_ring_only_changes_the_phase():
    b = steerable_basis().double()
    assert torch.allclose(b @ b.T, torch.eye(6, dtype=torch.float64), atol=1e-6)
    # A 45° shift maps the span of the basis onto itself (band-limited filters stay band-limited).
    shifted = b[:, ring_permutation(1)]
    residual = shifted - (shifted @ b.T) @ b
    assert residual.abs().max() < 1e-6


@pytest.mark.parametrize("problem, channels", [("rot4", 12), ("rot8", 24), ("rot8_flip", 48)])
def test_shapes_follow_the_authors(problem, channels):
    data = generate_rotation(problem, seed=1, n_tasks=20)
    x, y = data.task_tensors(torch.arange(3))
    assert x.shape == (3, 20, 1, 32, 32) and y.shape == (3, 20, channels, 30, 30)
    assert ROTATION_PROBLEMS[problem].channels == channels
    assert element_permutations(ROTATION_PROBLEMS[problem].group).shape == (ROTATION_PROBLEMS[problem].order, 9)
    assert ROTATION_PROBLEMS["rot8_flip"].tasks == 2000 and ROTATION_PROBLEMS["rot4"].tasks == 10_000


@pytest.mark.parametrize("problem", list(ROTATION_PROBLEMS))
def test_outputs_are_the_tasks_own_convolution(problem):
    data = generate_rotation(problem, seed=2, n_tasks=10)
    tasks = torch.tensor([0, 7])
    x, y = data.task_tensors(tasks)
    w = data.weights(tasks)
    for i in range(2):
        assert torch.allclose(y[i], F.conv2d(x[i], w[i]), atol=1e-5)


def test_rot4_data_is_exactly_equivariant_to_90_degrees():
    """Rotating the input by 90° rotates every output map and cycles the
    channels within each field (exact: the copies are torch.rot90 of each other)."""
    data = generate_rotation("rot4", seed=3, n_tasks=10)
    tasks = torch.arange(4)
    x, y = data.task_tensors(tasks)
    w = data.weights(tasks)
    for turns in (1, 2, 3):
        y_rot = apply_layers(torch.rot90(x, turns, (-2, -1)), w)
        expected = torch.rot90(y, turns, (-2, -1))[:, :, channel_shift("rot4", turns)]
        assert torch.allclose(y_rot, expected, atol=1e-5)
    # The filters themselves: field f's copy e is rot90(base, e).
    base = w[0, :4, 0]
    for e in range(4):
        assert torch.equal(base[e], torch.rot90(base[0], e, (0, 1)))


@pytest.mark.parametrize("problem", ["rot8", "rot8_flip"])
def test_rot8_data_is_equivariant_to_90_degrees_to_float_precision(problem):
    data = generate_rotation(problem, seed=4, n_tasks=10)
    tasks = torch.arange(3)
    x, y = data.task_tensors(tasks)
    y_rot = apply_layers(torch.rot90(x, 1, (-2, -1)), data.weights(tasks))
    expected = torch.rot90(y, 1, (-2, -1))[:, :, channel_shift(problem)]
    assert torch.allclose(y_rot, expected, atol=1e-5)


def test_d8_mirrors_the_input_onto_the_mirrored_half_of_each_field():
    data = generate_rotation("rot8_flip", seed=5, n_tasks=5)
    tasks = torch.arange(2)
    x, y = data.task_tensors(tasks)
    y_flip = apply_layers(x.flip(-2), data.weights(tasks))
    # Mirroring the input turns copy (r, plain) into copy (−r, mirrored) and back.
    idx = [f * 16 + (1 - s) * 8 + (-r) % 8 for f in range(FIELDS) for s in range(2) for r in range(8)]
    assert torch.allclose(y_flip, y.flip(-2)[:, :, idx], atol=1e-5)


def test_rot8_copies_are_45_degree_phase_shifts_of_a_band_limited_filter():
    data = generate_rotation("rot8", seed=6, n_tasks=3)
    w = data.weights(torch.tensor([0]))[0, :8, 0].reshape(8, 9)
    basis = steerable_basis()
    for e in range(8):
        assert torch.allclose(w[e], w[0][ring_permutation(e)], atol=1e-6)
        assert torch.allclose(w[e], (w[e] @ basis.T) @ basis, atol=1e-5)


def test_datasets_are_seeded_and_cached(tmp_path):
    a, b = generate_rotation("rot8", seed=7, n_tasks=12), generate_rotation("rot8", seed=7, n_tasks=12)
    assert torch.equal(a.coeffs, b.coeffs) and torch.equal(a.task_tensors(torch.arange(2))[1],
                                                          b.task_tensors(torch.arange(2))[1])
    assert not torch.equal(a.coeffs, generate_rotation("rot8", seed=8, n_tasks=12).coeffs)
    first = load_or_generate("rot4", seed=2, n_tasks=30, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].stat().st_size < 50_000
    again = load_or_generate("rot4", seed=2, n_tasks=30, cache_dir=tmp_path)
    assert torch.equal(first.coeffs, again.coeffs) and torch.equal(first.input_seeds, again.input_seeds)
    files[0].write_bytes(b"not a torch file")
    assert torch.equal(load_or_generate("rot4", seed=2, n_tasks=30, cache_dir=tmp_path).coeffs, first.coeffs)
    assert load_or_generate("rot8_flip", seed=0, cache_dir=None).n_tasks == 2000


def test_sampler_splits_train_and_test_tasks():
    data = generate_rotation("rot4", seed=0, n_tasks=50)
    train = RotationTaskSampler(data, "train", 1, 19, torch.Generator().manual_seed(0))
    test = RotationTaskSampler(data, "test", 1, 19, torch.Generator().manual_seed(0))
    tr_tasks, _ = train.draw(40)
    te_tasks, order = test.draw(10)
    assert set(tr_tasks.tolist()) == set(range(40)) and set(te_tasks.tolist()) == set(range(40, 50))
    ep = test.episode(te_tasks[:2], order[:2])
    assert ep.xs.shape == (2, 1, 1, 32, 32) and ep.yq.shape == (2, 19, 12, 30, 30)


@pytest.mark.parametrize("model", list(ROTATION_MODELS))
def test_models_are_bias_free_3x3_convs_and_layer_filters_reads_them(model):
    net = build_synthetic_model(model, problem="rot8", seed=0)
    assert not any(n.endswith("bias") for n, _ in net.named_parameters())
    x = torch.randn(2, 1, 32, 32)
    w = layer_filters(net)
    assert w.shape == (24, 1, 3, 3)
    assert torch.allclose(net(x), F.conv2d(x, w), atol=1e-5)


def test_dense_latent_defaults_to_the_generating_coefficients():
    assert paper_latent("rot4") == 27 and paper_latent("rot8") == 18 and paper_latent("rot8_flip") == 18
    assert build_synthetic_model("msr-conv-dense", problem="rot4").conv.latent == 27
    assert build_synthetic_model("msr-conv-dense", latent=5, problem="rot4").conv.latent == 5
    assert set(models_for("rot4")) == {"maml-conv", "msr-conv", "msr-conv-dense"}


@pytest.mark.parametrize("changes, fragment", [
    (dict(problem="rot4", model="msr-fc"), "unknown model 'msr-fc' for rot4; allowed: maml-conv, msr-conv"),
    (dict(problem="rank1", model="msr-conv"), "unknown model 'msr-conv' for rank1"),
    (dict(problem="rot4", model="msr-conv", latent=3), "latent size applies to msr-fc and msr-conv-dense only"),
    (dict(problem="rot4", model="msr-conv-dense", latent=109), "latent size must be a whole number from 1 to 108"),
    (dict(problem="rot8_flip", model="maml-conv", test_tasks=401), "test tasks must be a whole number from 2 to 400"),
])
def test_bad_2d_settings_are_one_line(changes, fragment):
    with pytest.raises(ConfigError) as exc:
        SyntheticConfig(**changes).validate()
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("model", list(ROTATION_MODELS))
def test_every_model_trains_and_records_the_lens(model):
    res = run_synthetic("rot4", model, **TINY)
    assert res.status == "completed" and [r["step"] for r in res.history] == [0, 3, 6]
    last = res.last
    assert last["test_mse"] > 0 and last["test_err"] > 0
    assert 0 <= last["orbit_score"] <= 1 and last["equiv_error"] > 0
    assert set(last["equiv_errors"]) == {"90"}
    assert (last["u_orbit_score"] is None) == (model == "maml-conv")
    summary = res.summary()
    for key in ("test_mse", "test_err", "equiv_error", "orbit_score", "u_equiv_error", "u_orbit_score"):
        assert key in summary
    assert res.snapshots[-1].w_task.shape == (12, 1, 3, 3)


def test_same_seed_same_records_and_the_engines_agree():
    a = run_synthetic("rot8", "msr-conv", **TINY)
    b = run_synthetic("rot8", "msr-conv", **TINY)
    assert [r["test_mse"] for r in a.history] == [r["test_mse"] for r in b.history]
    c = run_synthetic("rot8", "msr-conv", engine="higher", **TINY)
    for ra, rc in zip(a.history, c.history):
        assert ra["test_mse"] == pytest.approx(rc["test_mse"], rel=1e-4)


def test_command_line_saves_a_resumable_2d_run(tmp_path, capsys):
    args = ["synthetic", "--problem", "rot4", "--model", "msr-conv-dense", "--steps", "4", "--eval-interval", "2",
            "--test-tasks", "4", "--tasks", "40", "--no-cache", "--runs-dir", str(tmp_path), "--json", "--quiet"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["problem"] == "rot4" and summary["model"] == "msr-conv-dense" and summary["latent"] == 27
    assert summary["orbit_score"] is not None and summary["equiv_error"] is not None
    assert main(["synthetic", "--problem", "rot4", "--model", "msr-fc", "--runs-dir", str(tmp_path)]) == 2
    assert "allowed: maml-conv, msr-conv, msr-conv-dense" in capsys.readouterr().err


def test_a_run_too_big_for_memory_is_refused_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MSR_MEMORY_LIMIT_MB", "1500")
    admit(SyntheticConfig(problem="rot4", model="maml-conv").validate())  # about 1 GB: fits
    # the machine cannot take it: exit code 4, not bad input
    assert main(["synthetic", "--problem", "rot8_flip", "--tasks-per-step", "200", "--runs-dir", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert "needs about" in err and "MSR_MEMORY_LIMIT_MB" in err and "fewer tasks per step" in err
    assert not any(tmp_path.iterdir())
    # A saved run read back on a smaller machine is still readable.
    assert SyntheticConfig(problem="rot8_flip", model="maml-conv", tasks_per_step=200).validate()
