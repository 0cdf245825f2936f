"""Tests for allnc_edu.data: long-tail counts and subsets, MNIST-1D, Gaussians, CIFAR-LT.

CIFAR tests write a small fake archive in torchvision's on-disk format (pickled uint8 batches)
into tmp_path; nothing downloads.
"""

import itertools
import math
import pickle
import random

import numpy as np
import pytest
import torch

from allnc_edu import cifar, mnist1d_lt
from allnc_edu.data import (
    load_cifar_lt,
    load_dataset,
    load_mnist1d,
    long_tail_counts,
    long_tail_subset,
    make_gaussian_classes,
)

# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("n_max", "k", "total"),
    [(5000, 10, 12406), (500, 100, 10847)],  # CIFAR-10-LT and CIFAR-100-LT at IR 100
)
def test_literature_cifar_lt_sizes(n_max, k, total):
    counts = long_tail_counts(n_max, k, 100)
    assert sum(counts) == total
    assert counts[0] == n_max and counts[-1] == n_max // 100


def test_exp_profile_closed_form():
    # 100 * 4^(-k/2): 100, 50, 25 exactly.
    assert long_tail_counts(100, 3, 4) == [100, 50, 25]
    # 1000 * 10^(-k/3) = 1000, 464.15..., 215.44..., 100: truncated, not rounded.
    assert long_tail_counts(1000, 4, 10) == [1000, 464, 215, 100]


def test_exp_profile_is_non_increasing_and_balanced_at_ir_one():
    counts = long_tail_counts(500, 37, 73.5)
    assert all(a >= b for a, b in itertools.pairwise(counts))
    assert long_tail_counts(7, 5, 1.0) == [7] * 5


def test_step_profile():
    assert long_tail_counts(100, 5, 10, "step") == [100, 100, 10, 10, 10]
    assert long_tail_counts(90, 4, 4, "step") == [90, 90, 22, 22]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((100, 10, 0.5), "imbalance_ratio"),
        ((100, 10, float("nan")), "imbalance_ratio"),
        ((100, 1, 10), "num_classes"),
        ((0, 10, 10), "n_max"),
        ((2.5, 10, 10), "n_max"),
        ((10, 10, 100), "smallest class"),
        ((100, 10, math.inf), "imbalance_ratio must be a finite float >= 1, got inf"),
    ],
)
def test_long_tail_counts_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        long_tail_counts(*args)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: long_tail_counts(True, 10, 10), TypeError, "n_max must be an integer >= 1"),
        (lambda: long_tail_counts(100, 10, "10"), TypeError, "imbalance_ratio must be a finite"),
        (lambda: make_gaussian_classes([5, 5], noise=math.inf), ValueError, "noise .* got inf"),
        (
            lambda: make_gaussian_classes([5, 5], noise=0),
            ValueError,
            "noise must be a finite float > 0",
        ),
        (lambda: make_gaussian_classes([5, 5], separation=math.nan), ValueError, "separation"),
        (
            lambda: make_gaussian_classes([5, 5, 5], dim=1),
            ValueError,
            "dim must be an integer >= 2",
        ),
        (lambda: make_gaussian_classes([5, 5], test_per_class=0), ValueError, "test_per_class"),
        (lambda: make_gaussian_classes([5, 5], seed=0.5), ValueError, "seed must be an integer"),
        (lambda: load_dataset("gaussian", download="yes"), TypeError, "download must be a bool"),
        (lambda: load_dataset("gaussian", profile="linear"), ValueError, "profile must be one of"),
    ],
)
def test_loaders_check_their_arguments(call, error, match):
    with pytest.raises(error, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_long_tail_counts_rejects_unknown_profile():
    with pytest.raises(ValueError, match="profile must be one of"):
        long_tail_counts(100, 10, 10, "linear")


# ----------------------------------------------------------------------------- subsets, groups


def test_long_tail_subset_counts_uniqueness_and_determinism():
    labels = torch.arange(6).repeat_interleave(50)[torch.randperm(300)]
    counts = [50, 30, 20, 9, 4, 1]
    idx = long_tail_subset(labels, counts, seed=3)
    assert idx.dtype == torch.long and len(idx.unique()) == len(idx) == sum(counts)
    assert torch.bincount(labels[idx], minlength=6).tolist() == counts
    assert torch.equal(idx, long_tail_subset(labels.numpy(), counts, seed=3))
    assert not torch.equal(idx, long_tail_subset(labels, counts, seed=4))


def test_long_tail_subset_errors():
    labels = torch.tensor([0, 0, 1, 2])
    with pytest.raises(ValueError, match="class 1 has 1 samples but 2"):
        long_tail_subset(labels, [1, 2, 1])
    with pytest.raises(ValueError, match="labels must lie in"):
        long_tail_subset(labels, [1, 1])


# ----------------------------------------------------------------------------- MNIST-1D


def test_mnist1d_shapes_balance_and_determinism():
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    x, y, tx, ty = load_mnist1d(300, test_per_class=10, seed=1)
    assert x.shape == (200, 1, 40) and tx.shape == (100, 1, 40)
    assert x.dtype == tx.dtype == torch.float32
    assert torch.bincount(y).tolist() == [20] * 10 and torch.bincount(ty).tolist() == [10] * 10
    assert random.getstate() == py_state  # make_dataset's reseeding does not leak
    np_now = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(np_now, np_state, strict=True))
    again = load_mnist1d(300, test_per_class=10, seed=1)
    assert torch.equal(x, again[0]) and torch.equal(tx, again[2])
    assert not torch.equal(x, load_mnist1d(300, test_per_class=10, seed=2)[0])
    # Train and test signals are distinct draws.
    assert torch.cdist(x.flatten(1), tx.flatten(1)).min() > 0


def test_mnist1d_cache_dir_reuses_the_file(tmp_path, monkeypatch):
    first = load_mnist1d(200, test_per_class=5, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_generation(*args):
        raise AssertionError("regenerated despite the cache")

    monkeypatch.setattr(mnist1d_lt, "_generate_mnist1d", no_generation)
    second = load_mnist1d(200, test_per_class=5, cache_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_mnist1d_signals_are_make_datasets():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = 300, 4, 1.0
    reference = make_dataset(args)
    x, y = mnist1d_lt._generate_mnist1d(300, 4)
    assert np.array_equal(x, reference["x"].astype(np.float32))
    assert np.array_equal(y, reference["y"].astype(np.int64))


def test_mnist1d_rejects_bad_split():
    with pytest.raises(ValueError, match="test_per_class"):
        load_mnist1d(100, test_per_class=10)


def test_mnist1d_long_tail_through_dispatcher():
    ds = load_dataset("mnist1d", imbalance_ratio=10, n_max=20, seed=0)
    assert ds.counts == long_tail_counts(20, 10, 10)
    assert torch.bincount(ds.train_y, minlength=10).tolist() == ds.counts
    assert ds.train_x.shape == (sum(ds.counts), 1, 40) and ds.input_shape == (1, 40)
    assert torch.bincount(ds.test_y).tolist() == [100] * 10
    assert ds.num_classes == 10 and ds.profile == "exp" and ds.imbalance_ratio == 10.0


# ----------------------------------------------------------------------------- Gaussians


def test_gaussian_classes_sit_on_a_simplex_etf():
    ds = make_gaussian_classes([3000, 3000, 3000], dim=5, separation=4.0, noise=1.0, seed=0)
    assert ds.train_x.shape == (9000, 5) and ds.train_x.dtype == torch.float32
    assert torch.bincount(ds.test_y).tolist() == [100] * 3
    means = torch.stack([ds.train_x[ds.train_y == k].mean(0) for k in range(3)]).double()
    assert torch.allclose(means.norm(dim=1), torch.full((3,), 4.0, dtype=torch.float64), atol=0.1)
    cos = (
        torch.nn.functional.normalize(means, dim=1) @ torch.nn.functional.normalize(means, dim=1).T
    )
    off = cos[~torch.eye(3, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -0.5), atol=0.02)
    # Within-class spread is the requested noise.
    assert abs(float((ds.train_x[ds.train_y == 0] - means[0].float()).std()) - 1.0) < 0.03


def test_gaussian_through_dispatcher_is_long_tailed_and_seeded():
    a = load_dataset("gaussian", imbalance_ratio=10, profile="step", n_max=50, seed=5)
    assert torch.bincount(a.train_y).tolist() == long_tail_counts(50, 10, 10, "step")
    assert a.profile == "step" and a.imbalance_ratio == 10.0
    assert torch.equal(
        a.train_x,
        load_dataset("gaussian", imbalance_ratio=10, profile="step", n_max=50, seed=5).train_x,
    )


# ----------------------------------------------------------------------------- fake CIFAR


def _dump(path, obj, dump=pickle.dump):
    with open(path, "wb") as f:
        dump(obj, f)


def _images(rng, n):
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _fake_cifar10(root, per_class=12, test_per_class=3, dump=pickle.dump):
    """CIFAR-10 in torchvision's layout: 5 training batches, a test batch, batches.meta, each
    file written by ``dump(obj, file)``."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x = _images(rng, 10 * per_class)
    y = rng.permutation(np.repeat(np.arange(10), per_class))
    for b, part in enumerate(np.array_split(np.arange(len(y)), 5)):
        _dump(
            folder / f"data_batch_{b + 1}",
            {"data": x[part].reshape(len(part), 3072), "labels": y[part].tolist()},
            dump,
        )
    tx = _images(rng, 10 * test_per_class)
    ty = np.repeat(np.arange(10), test_per_class)
    _dump(folder / "test_batch", {"data": tx.reshape(-1, 3072), "labels": ty.tolist()}, dump)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]  # fmt: skip
    _dump(folder / "batches.meta", {"label_names": names}, dump)
    return x, y, tx, ty, names


def _fake_cifar100(root, per_class=6, test_per_class=2):
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    x = _images(rng, 100 * per_class)
    y = rng.permutation(np.repeat(np.arange(100), per_class))
    coarse = (y // 5).tolist()
    _dump(folder / "train", {"data": x.reshape(-1, 3072), "fine_labels": y.tolist(),
                             "coarse_labels": coarse})  # fmt: skip
    tx = _images(rng, 100 * test_per_class)
    ty = np.repeat(np.arange(100), test_per_class)
    _dump(folder / "test", {"data": tx.reshape(-1, 3072), "fine_labels": ty.tolist()})
    names = [f"fine{k}" for k in range(100)]
    _dump(folder / "meta", {"fine_label_names": names, "coarse_label_names": list(range(20))})
    return x, y, tx, ty, names


def _denormalise(ds, x):
    mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
    std = torch.tensor(ds.std).view(1, 3, 1, 1)
    return x * std + mean


def test_cifar10_lt_from_fake_archive(tmp_path):
    x, y, tx, ty, names = _fake_cifar10(tmp_path)
    ds = load_cifar_lt(tmp_path, 10, imbalance_ratio=6, n_max=12, seed=7)
    counts = long_tail_counts(12, 10, 6)
    assert ds.counts == counts and ds.class_names == names and ds.name == "cifar10-lt"
    assert ds.train_x.shape == (sum(counts), 3, 32, 32) and ds.train_x.dtype == torch.float32
    assert ds.test_x.shape == (30, 3, 32, 32) and torch.equal(ds.test_y, torch.from_numpy(ty))
    idx = long_tail_subset(y, counts, seed=7).numpy()
    assert torch.equal(ds.train_y, torch.from_numpy(y[idx]))
    # Normalised with the training subset's own per-channel statistics ...
    flat = ds.train_x.double().transpose(0, 1).reshape(3, -1)
    assert torch.allclose(flat.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(flat.std(1, correction=0), torch.ones(3, dtype=torch.float64), atol=1e-5)
    # ... and undoing it gives back the stored pixels, channel-first as in the archive.
    assert torch.allclose(_denormalise(ds, ds.train_x) * 255, torch.from_numpy(x[idx]).float(),
                          atol=1e-3)  # fmt: skip
    assert torch.allclose(_denormalise(ds, ds.test_x) * 255, torch.from_numpy(tx).float(),
                          atol=1e-3)  # fmt: skip


def test_cifar_lt_is_deterministic_per_seed(tmp_path):
    _fake_cifar10(tmp_path)
    a = load_cifar_lt(tmp_path, 10, imbalance_ratio=4, n_max=12, seed=0)
    b = load_cifar_lt(tmp_path, 10, imbalance_ratio=4, n_max=12, seed=0)
    c = load_cifar_lt(tmp_path, 10, imbalance_ratio=4, n_max=8, seed=1)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.train_x[:10], c.train_x[:10])


def test_cifar100_lt_from_fake_archive_via_dispatcher(tmp_path):
    x, y, _, _, names = _fake_cifar100(tmp_path)
    ds = load_dataset("cifar100-lt", root=tmp_path, imbalance_ratio=6, n_max=6, seed=2)
    counts = long_tail_counts(6, 100, 6)
    assert ds.num_classes == 100 and ds.counts == counts and ds.class_names == names
    assert torch.bincount(ds.train_y, minlength=100).tolist() == counts
    assert torch.bincount(ds.test_y).tolist() == [2] * 100
    idx = long_tail_subset(y, counts, seed=2).numpy()
    assert torch.allclose(_denormalise(ds, ds.train_x) * 255, torch.from_numpy(x[idx]).float(),
                          atol=1e-3)  # fmt: skip


def test_cifar10_image_folder_layout(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    names = [f"c{k}" for k in range(10)]
    base = tmp_path / "cifar10-jpeg"
    stored = {}
    for split, n in (("train", 4), ("test", 2)):
        for k, name in enumerate(names):
            (base / split / name).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(img).save(base / split / name / f"{i:04d}.png")
                stored[split, k, i] = img
    ds = load_cifar_lt(tmp_path, 10, imbalance_ratio=4, n_max=4)
    assert ds.class_names == names and ds.counts == long_tail_counts(4, 10, 4)
    assert torch.bincount(ds.test_y).tolist() == [2] * 10
    expected = np.stack([stored["test", k, i] for k in range(10) for i in range(2)])
    got = _denormalise(ds, ds.test_x) * 255
    assert torch.allclose(got, torch.from_numpy(expected.transpose(0, 3, 1, 2)).float(), atol=1e-3)


def test_missing_cifar_says_how_to_fix(tmp_path):
    with pytest.raises(ValueError, match="download=True") as err:
        load_cifar_lt(tmp_path, 100)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="root"):
        load_dataset("cifar10-lt")
    with pytest.raises(ValueError, match="num_classes must be one of 10, 100, got 20"):
        load_cifar_lt(tmp_path, 20)


def test_cifar_subset_larger_than_archive_is_refused(tmp_path):
    _fake_cifar10(tmp_path)
    with pytest.raises(ValueError, match="samples but"):
        load_cifar_lt(tmp_path, 10, imbalance_ratio=100)  # n_max 5000 > 12 stored


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(
        ValueError,
        match="'mnist1d', 'gaussian', 'cifar10-lt', 'cifar100-lt', 'imagenet-lt', 'inat2018', "
        "'places-lt', got 'tiny-imagenet'",
    ):
        load_dataset("tiny-imagenet")


def test_cifar_channel_stats_are_exact():
    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, size=(7, 3, 5, 5), dtype=np.uint8)
    mean, std = cifar._channel_stats(imgs)
    ref = imgs.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1) / 255
    assert np.allclose(mean, ref.mean(1), atol=1e-12) and np.allclose(std, ref.std(1), atol=1e-12)
    assert math.isclose(sum(mean), float(ref.mean(1).sum()), rel_tol=1e-12)


def test_download_goes_through_torchvision_only_when_asked(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    class FakeCIFAR10(tvd.CIFAR10):
        def __init__(self, root, train=True, download=False):
            calls.append(download)
            _fake_cifar10(tmp_path)  # stands in for the network

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR10)
    with pytest.raises(ValueError, match="download=True"):
        load_cifar_lt(tmp_path, 10, imbalance_ratio=4, n_max=12)
    assert calls == []
    ds = load_cifar_lt(str(tmp_path), 10, imbalance_ratio=4, n_max=12, download=True)
    assert calls == [True] and sum(ds.counts) == len(ds.train_y)
