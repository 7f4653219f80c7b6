import math

import numpy as np
import pytest
import torch

from msr.analysis import inspection as mi
from msr.analysis import tables
from msr.core.data import load_source, prepare
from msr.mnist.config import RunConfig
from msr.runner.execute import train
from msr.store.checkpoints import checkpoint_mtime
from msr.store.layout import run_files
from msr.store.reader import load_run

ARCHS = ("shared", "dedicated", "dense", "conv")
ANGLES = [0.0, 90.0, 180.0]


def small_config(arch: str, runs_dir) -> RunConfig:
    return RunConfig(arch=arch, angles=ANGLES, channels=4, ways=2, shots=1, queries=2, tasks_per_step=2,
                     steps=4, eval_interval=2, eval_tasks=2, conv_latent=8, runs_dir=str(runs_dir))


@pytest.fixture(scope="module")
def data():
    return load_source("bundled")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data):
    """One tiny trained run per architecture: {arch: (run folder, RunResult)}."""
    root = tmp_path_factory.mktemp("inspect_runs")
    out = {}
    for arch in ARCHS:
        result = train(small_config(arch, root / arch), data=data)
        assert result.status == "completed"
        out[arch] = (result.run_dir, result)
    return out


def test_snapshot_reloads_the_trained_weights(runs):
    for arch, (path, result) in runs.items():
        snap = mi.load_snapshot(path)
        assert snap.step == 4
        trained = result.learner.model.state_dict()
        for name, value in snap.model.state_dict().items():
            assert torch.equal(value, trained[name]), (arch, name)
        assert snap.learner.lr_summary() == pytest.approx(result.learner.lr_summary())
        first = mi.load_snapshot(path, 0)
        assert first.step == 0
        assert not torch.equal(first.model.head.weight, snap.model.head.weight), arch


def test_snapshot_of_a_missing_step_is_the_nearest_kept_one(runs):
    path, _ = runs["shared"]
    assert mi.load_snapshot(path, 3).step in (2, 4)
    assert mi.load_snapshot(path, 1).step in (0, 2)


def test_circuits_and_labels(runs):
    assert mi.load_snapshot(runs["shared"][0]).circuit_labels() == ["single circuit"]
    ded = mi.load_snapshot(runs["dedicated"][0])
    assert ded.circuits == 3
    assert ded.circuit_labels() == ["0° circuit", "90° circuit", "180° circuit"]


def test_sample_digits_and_rotated_grid(data):
    images, labels = mi.sample_digits(data.test, per_class=2)
    assert labels.tolist() == [d for d in range(10) for _ in range(2)]
    again, _ = mi.sample_digits(data.test, per_class=2)
    assert torch.equal(images, again)
    grid = mi.rotated_grid(images[:3], [0.0, 90.0])
    assert grid.shape == (3, 2, 28, 28)
    assert np.allclose(grid[:, 0], prepare(images[:3], torch.zeros(3))[:, 0].numpy())
    # 90° counter-clockwise on a 28×28 pixel grid is exact
    assert np.allclose(grid[:, 1], np.rot90(grid[:, 0], k=1, axes=(1, 2)), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_activations_match_the_models_own_forward(runs, data, arch):
    snap = mi.load_snapshot(runs[arch][0])
    images, labels = mi.sample_digits(data.test)
    for angle_i in range(len(ANGLES)):
        acts = mi.activations(snap, images[4], angle_i, int(labels[4]))
        assert set(acts) == {"relu1"}
        act = acts["relu1"]
        assert act.maps.shape == (snap.circuits, 4, 26, 26)
        assert act.mean.shape == (snap.circuits, 26, 26)
        assert act.angle == ANGLES[angle_i] and act.label == 4
        x = prepare(images[4:5], torch.tensor([ANGLES[angle_i]]))
        with torch.no_grad():
            _, ref = snap.model.forward_with_activations(x, torch.tensor([angle_i]))
        assert np.allclose(act.maps[act.own_circuit], ref["relu1"][0].numpy(), atol=1e-6)
        assert (act.maps >= 0).all()
    if arch == "dedicated":
        assert act.own_circuit == len(ANGLES) - 1
        # each circuit has its own kernels, so their maps differ
        assert not np.allclose(act.maps[0], act.maps[1])
    with pytest.raises(ValueError, match="out of range"):
        mi.activations(snap, images[0], len(ANGLES))


@pytest.mark.parametrize("arch", ARCHS)
def test_first_layer_filters_are_the_effective_weights(runs, arch):
    snap = mi.load_snapshot(runs[arch][0])
    f = mi.first_layer_filters(snap)
    circuits = 3 if arch == "dedicated" else 1
    assert f.shape == (circuits, 4, 1, 3, 3)
    w = snap.model.first_layer().effective_weight().detach().reshape(circuits, 4, 1, 3, 3)
    assert np.allclose(f, w.numpy())
    start = mi.load_snapshot(runs[arch][0], 0)
    if arch in ("shared", "dedicated"):
        # A, B, C start at the identity, so at step 0 the filters are the kernels
        assert np.allclose(mi.first_layer_filters(start),
                           start.model.conv.weight.detach().reshape(circuits, 4, 1, 3, 3).numpy())


def test_filter_change_between_steps(runs):
    path = runs["dedicated"][0]
    a, b = mi.load_snapshot(path, 0), mi.load_snapshot(path, 4)
    delta = mi.filter_change(a, b)
    assert np.allclose(delta, mi.first_layer_filters(b) - mi.first_layer_filters(a))
    assert np.abs(delta).max() > 0
    frame = mi.filter_change_frame(a, b)
    assert len(frame) == 3 * 4
    row = frame[(frame["circuit"] == 2) & (frame["filter"] == 1)].iloc[0]
    assert row.change == pytest.approx(float(np.linalg.norm(delta[2, 1])), rel=1e-5)
    assert row.rel_change == pytest.approx(row.change / row.norm_from)
    assert (frame.from_step == 0).all() and (frame.to_step == 4).all()


def test_symmetry_matrices_per_architecture(runs):
    kinds = {arch: [(m.name, m.kind, m.value.shape) for m in mi.symmetry_matrices(mi.load_snapshot(p))]
             for arch, (p, _) in runs.items()}
    head = (2 * 4 * 26 * 26, 3)
    assert kinds["shared"] == [("conv.sym_A", "A", (1, 4, 4)), ("conv.sym_B", "B", (1, 1, 1)),
                               ("conv.sym_C", "C", (1, 9, 9)), ("head.sym_U", "U", (1, *head))]
    assert kinds["dedicated"] == [("conv.sym_A", "A", (3, 4, 4)), ("conv.sym_B", "B", (3, 1, 1)),
                                  ("conv.sym_C", "C", (3, 9, 9)), ("head.sym_U", "U", (3, *head))]
    assert kinds["dense"] == [("conv.sym_U", "U", (1, 36, 8)), ("head.sym_U", "U", (1, *head))]
    assert kinds["conv"] == []
    mats = {m.name: m for m in mi.symmetry_matrices(mi.load_snapshot(runs["shared"][0]))}
    assert mats["conv.sym_C"].drawable and not mats["head.sym_U"].drawable


def test_change_from_start(runs):
    """A, B and C minus the identity they start at; a dense U minus its value at the first step."""
    path = runs["dense"][0]
    s0, s4 = mi.load_snapshot(path, 0), mi.load_snapshot(path, 4)
    u0, u4 = (next(m for m in mi.symmetry_matrices(s) if m.name == "conv.sym_U") for s in (s0, s4))
    assert np.allclose(mi.change_from_start(u4, u0).value, u4.value - u0.value)
    assert not np.allclose(u4.value, u0.value), "U was trained"
    with pytest.raises(ValueError, match="first step"):
        mi.change_from_start(u4)
    shared = {m.kind: m for m in mi.symmetry_matrices(mi.load_snapshot(runs["shared"][0], 0))}
    assert np.allclose(mi.change_from_start(shared["C"]).value, 0), "A, B and C start at exactly the identity"


def test_drift_from_init_and_identity(runs):
    path = runs["dedicated"][0]
    s0, s4 = mi.load_snapshot(path, 0), mi.load_snapshot(path, 4)
    at0 = mi.drift(s0, s0)
    assert (at0.rel_from_init == 0).all()
    abc = at0[at0.kind.isin(["A", "B", "C"])]
    assert len(abc) == 3 * 3 and (abc.from_identity.abs() < 1e-7).all()
    assert at0[at0.kind == "U"].from_identity.isna().all()
    d = mi.drift(s4, s0)
    a = d[(d.matrix == "conv.sym_A") & (d.circuit == 1)].iloc[0]
    ref = s4.model.conv.sym_A[1].detach()
    ref0 = s0.model.conv.sym_A[1].detach()
    assert a.rel_from_init == pytest.approx(float((ref - ref0).norm() / ref0.norm()), rel=1e-5)
    assert a.from_identity == pytest.approx(float((ref - torch.eye(4)).norm() / 2.0), rel=1e-5)
    assert d[d.kind == "U"].rel_from_init.gt(0).all(), "the outer loop moved every head U"
    assert set(d.matrix) == {"conv.sym_A", "conv.sym_B", "conv.sym_C", "head.sym_U", "first-layer filters"}


def test_drift_over_steps_has_one_block_per_checkpoint(runs):
    path = runs["shared"][0]
    steps = load_run(path).checkpoint_steps()
    assert steps == [0, 2, 4]
    frame = mi.drift_over_steps(path, steps)
    assert sorted(frame.step.unique()) == steps
    assert len(frame) == 3 * 5
    assert (frame[frame.step == 0].rel_from_init == 0).all()
    assert frame[frame.step == 4].rel_from_init.max() > 0
    loaded = []
    mi.drift_over_steps(path, steps, loader=lambda p, s: loaded.append(s) or mi.load_snapshot(p, s))
    assert sorted(set(loaded)) == steps
    assert mi.drift_over_steps(path, []).empty


@pytest.mark.parametrize("arch", ["shared", "dedicated", "dense"])
def test_generated_filters_add_up_to_the_weight(runs, arch):
    snap = mi.load_snapshot(runs[arch][0])
    gens = {g.layer: g for g in mi.generated_filters(snap)}
    circuits = snap.circuits
    assert set(gens) == ({"conv", "head"} if arch == "dense" else {"head"})
    head = gens["head"]
    assert head.kind == "linear"
    assert head.basis.shape == (circuits, 3, 2, 26, 26)
    assert head.coeffs.shape == (circuits, 3)
    assert head.effective.shape == (circuits, 2, 26, 26)
    # averaging over channels is linear, so Σ_j v_j · basis_j is the averaged weight
    assert np.allclose(np.einsum("nl,nlohw->nohw", head.coeffs, head.basis), head.effective, atol=1e-6)
    u = snap.model.head.sym_U.detach().reshape(circuits, 2, 4, 26, 26, 3)
    assert np.allclose(head.basis[-1, 1, 1], u[-1, 1, :, :, :, 1].mean(0).numpy(), atol=1e-7)
    if arch == "dense":
        conv = gens["conv"]
        assert conv.kind == "conv" and conv.basis.shape == (1, 8, 4, 1, 3, 3)
        u = snap.model.conv.sym_U.detach()
        assert np.allclose(conv.basis[0, 5].reshape(-1), u[:, 5].numpy())
        w = snap.model.conv.effective_weight().detach().numpy()
        assert np.allclose(np.einsum("l,loikm->oikm", conv.coeffs[0], conv.basis[0]), w, atol=1e-6)
    assert mi.generated_filters(mi.load_snapshot(runs["conv"][0])) == []


def test_inner_rates_frame(runs):
    path = runs["shared"][0]
    records = load_run(path).metrics
    frame = tables.inner_rates_frame(records)
    tensors = ["conv.weight", "conv.bias", "head.weight", "head.bias"]
    assert len(frame) == len(records) * len(tensors)
    assert sorted(frame.tensor.unique()) == sorted(tensors)
    last = frame[frame.step == 4].set_index("tensor").lr
    for t in tensors:
        assert last[t] == pytest.approx(records[-1]["inner_lrs"][t])
    assert frame[frame.step == 0].lr.tolist() == pytest.approx([RunConfig().inner_lr] * 4)
    assert tables.inner_rates_frame([{"step": 0, "inner_lrs": {}}]).empty


def test_records_per_angle_and_class(runs):
    records = load_run(runs["conv"][0]).metrics
    assert [r["step"] for r in records] == [0, 2, 4]
    assert tables.record_at(records)["step"] == 4
    assert tables.record_at(records, 3)["step"] == 2
    assert tables.record_at(records, 0)["step"] == 0
    assert tables.record_at([], 3) == {}
    last = records[-1]
    ipa = tables.images_per_angle(last, ANGLES)
    assert len(ipa) == 2 * 3
    assert ipa[ipa.split == "train"].images.tolist() == last["images_per_angle"]["train"]
    assert ipa[ipa.split == "test"].images.sum() == 3 * 2 * 2 * (1 + 2)  # 3 evals × 2 tasks × 2 ways × 3 images
    ipc = tables.images_per_class(last)
    assert len(ipc) == 20 and ipc[ipc.split == "test"].images.sum() == 36

    test = tables.per_angle_errors(records, ANGLES, "test")
    assert len(test) == 3 * 3 and list(test.columns[:2]) == ["step", "angle"]
    row = test[(test.step == 2) & (test.angle == 90.0)].iloc[0]
    counts, errors = records[1]["per_angle"]["test"]["counts"][1], records[1]["per_angle"]["test"]["errors"][1]
    assert (row.images, row.errors) == (counts, errors)
    assert row.rate == pytest.approx(errors / counts) if counts else math.isnan(row.rate)
    assert test.groupby("step").images.sum().tolist() == [8, 8, 8]
    train_rows = tables.per_angle_errors(records, ANGLES, "train")
    assert sorted(train_rows.step.unique()) == [2, 4], "step 0 has no training queries"


def test_per_angle_accuracy():
    record = {"step": 7, "per_angle": {"test": {"counts": [10, 20, 0], "errors": [2, 0, 0]}}}
    frame = tables.per_angle_accuracy(record, ANGLES)
    assert frame.acc.iloc[0] == pytest.approx(0.8) and frame.acc.iloc[1] == 1.0
    assert math.isnan(frame.acc.iloc[2])
    assert frame.low.iloc[0] == pytest.approx(0.4902, abs=1e-4)
    assert frame.correct.tolist() == [8, 20, 0]
    assert (frame.step == 7).all()


@pytest.mark.parametrize("arch", ["shared", "dedicated"])
def test_confusion_at_angle(runs, data, arch):
    snap = mi.load_snapshot(runs[arch][0])
    conf = mi.confusion_at_angle(snap, data, 1, tasks=6)
    assert conf.matrix.shape == (10, 10)
    assert conf.images == 6 * 2 * 2  # tasks × ways × queries, all at the chosen angle
    assert conf.angle == 90.0 and conf.step == 4
    assert 0 <= conf.accuracy <= 1
    again = mi.confusion_at_angle(snap, data, 1, tasks=6)
    assert np.array_equal(conf.matrix, again.matrix), "fixed-seed tasks"
    frame = conf.frame()
    assert len(frame) == 100 and frame["count"].sum() == conf.images
    assert frame.set_index(["true", "predicted"])["count"].unstack().to_numpy().tolist() == conf.matrix.tolist()
    # the same tasks evaluated by hand give the same diagonal
    sampler = mi._QueryAngleSampler(data.test, snap.angles, 2, 1, 2, "mixed",
                                    torch.Generator().manual_seed(mi.CONFUSION_SEED), query_angle=1)
    batch = sampler.sample(6)
    assert (batch.aq == 1).all()
    from msr.core.meta import Episode
    out = snap.learner.evaluate(Episode.of(batch)).query_out
    assert int((out.argmax(-1) == batch.yq).sum()) == int(np.trace(conf.matrix))
    with pytest.raises(ValueError, match="out of range"):
        mi.confusion_at_angle(snap, data, 3)


def test_checkpoint_mtime(runs, tmp_path):
    path = runs["shared"][0]
    assert checkpoint_mtime(path, 4) > 0
    assert checkpoint_mtime(path, 3) == 0.0
    assert run_files(path).checkpoint(4).is_file()
