"""The validation split: class-balanced, held out of the training pool, disjoint from training."""

import pytest
import torch

from allnc_edu.data import hold_out, load_dataset


def test_hold_out_is_balanced_disjoint_and_complete():
    labels = torch.tensor([0] * 7 + [1] * 4 + [2] * 9)
    held, rest = hold_out(labels, 3, seed=1)
    assert torch.bincount(labels[held]).tolist() == [3, 3, 3]
    assert not set(held.tolist()) & set(rest.tolist())
    assert sorted(held.tolist() + rest.tolist()) == list(range(len(labels)))
    assert torch.equal(held, hold_out(labels, 3, seed=1)[0])


def test_mnist1d_validation_is_balanced_and_never_a_training_signal():
    val = load_dataset("mnist1d", imbalance_ratio=10, profile="step", n_max=60, split="validation")
    test = load_dataset("mnist1d", imbalance_ratio=10, profile="step", n_max=60)
    assert val.counts == test.counts
    assert torch.bincount(val.train_y).tolist() == val.counts
    assert torch.bincount(val.test_y).tolist() == [100] * 10
    rows = {tuple(r.flatten().tolist()) for r in val.train_x}
    assert not any(tuple(r.flatten().tolist()) in rows for r in val.test_x)
    held = {tuple(r.flatten().tolist()) for r in val.test_x}
    assert not any(tuple(r.flatten().tolist()) in held for r in test.test_x)


def test_validation_split_is_refused_where_there_is_none():
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist1d", split="train")
    with pytest.raises(ValueError, match="gaussian"):
        load_dataset("gaussian", split="validation")


def _fake_cifar10(root, per_class: int) -> None:
    """A tiny stand-in for torchvision's extracted CIFAR-10 archive: constant images whose
    first two channels spell the image's index (id // 256, id % 256)."""
    import pickle

    import numpy as np
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    labels = np.repeat(np.arange(10), per_class)
    ids = np.arange(len(labels))
    image = np.zeros((len(labels), 3, 1024), dtype=np.uint8)
    image[:, 0], image[:, 1] = (ids // 256)[:, None], (ids % 256)[:, None]
    files = [name for name, _ in CIFAR10.train_list] + [CIFAR10.test_list[0][0]]
    for i, name in enumerate(files):
        rows = {0: slice(None), len(files) - 1: slice(0, 10)}.get(i, slice(0, 0))
        entry = {"data": image[rows].reshape(-1, 3072), "labels": labels[rows].tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {CIFAR10.meta["key"]: [f"c{k}" for k in range(10)]}
    (folder / CIFAR10.meta["filename"]).write_bytes(pickle.dumps(meta))


def _image_ids(x: torch.Tensor, mean, std) -> set[int]:
    raw = (x[:, :2, 0, 0] * torch.tensor(std[:2]) + torch.tensor(mean[:2])) * 255
    raw = raw.round().long()
    return set((raw[:, 0] * 256 + raw[:, 1]).tolist())


def test_cifar_validation_is_held_out_of_the_training_images(tmp_path):
    from allnc_edu.cifar import CIFAR_VALIDATION

    _fake_cifar10(tmp_path, per_class=CIFAR_VALIDATION[10] + 20)
    data = load_dataset(
        "cifar10-lt", root=tmp_path, imbalance_ratio=2, n_max=20, split="validation"
    )
    assert torch.bincount(data.test_y).tolist() == [CIFAR_VALIDATION[10]] * 10
    train = _image_ids(data.train_x, data.mean, data.std)
    held = _image_ids(data.test_x, data.mean, data.std)
    assert len(train) == sum(data.counts) and len(held) == 10 * CIFAR_VALIDATION[10]
    assert not train & held
