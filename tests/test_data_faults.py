"""Damaged, hostile or oversized data give one line naming the file or value, never a traceback
and never a silently wrong data set (issues 21 and 27): CIFAR archives, CIFAR image folders,
split lists, the MNIST-1D cache, sizes and seeds. Everything here is tiny and written in tmp_path.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import struct
import time
from typing import ClassVar

import numpy as np
import pytest
import torch
from _cli import fails
from _filelist_tree import write_imagenet_lt
from test_data import _fake_cifar10, _fake_cifar100

from allnc_edu import mnist1d_lt
from allnc_edu.data import load_cifar_lt, load_dataset, load_mnist1d, make_gaussian_classes
from allnc_edu.filelists import load_filelist, read_split_file


def _refused(call, *names: str) -> str:
    """``call()`` raises a one-line ValueError naming every one of ``names``; its message."""
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    for name in names:
        assert name in message, (name, message)
    return message


# ----------------------------------------------------------------------------- CIFAR archives


class _RunsACommand:
    """Unpickling this calls ``os.system(command)``: what a crafted archive could do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize(
    ("write", "file"),
    [
        (_fake_cifar10, "cifar-10-batches-py/data_batch_1"),
        (_fake_cifar10, "cifar-10-batches-py/test_batch"),
        (_fake_cifar10, "cifar-10-batches-py/batches.meta"),
        (_fake_cifar100, "cifar-100-python/train"),
        (_fake_cifar100, "cifar-100-python/meta"),
    ],
)
def test_a_crafted_archive_is_refused_and_never_run(tmp_path, write, file) -> None:
    write(tmp_path)
    marker = tmp_path / "ran"
    with open(tmp_path / file, "wb") as f:
        pickle.dump({"data": _RunsACommand(f"touch {marker}"), "labels": [0]}, f)
    k = 10 if write is _fake_cifar10 else 100
    message = _refused(
        lambda: load_cifar_lt(tmp_path, k, imbalance_ratio=2, n_max=2),
        str(tmp_path / file),
        f"{os.system.__module__}.system",
    )
    assert "refused to unpickle the global" in message
    assert not marker.exists()


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _pickle(obj):
    return lambda path: path.write_bytes(pickle.dumps(obj))


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_truncate, "truncated or not a CIFAR batch"),
        (lambda path: path.write_bytes(b"\x80\x04garbage, not a pickle"), "truncated or not"),
        (lambda path: path.write_bytes(b""), "truncated or not a CIFAR batch"),
        (_pickle([1, 2, 3]), "not a CIFAR batch (no uint8 'data'"),
        (_pickle({"data": np.zeros((2, 3072), np.uint8)}), "with N integer 'labels'"),
        (_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}), "N x 3072"),
        (_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}), "label 10 outside"),
        (lambda path: path.unlink(), "cannot be read (No such file"),
    ],
)
def test_a_damaged_archive_names_the_file(tmp_path, damage, says) -> None:
    _fake_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    damage(path)
    _refused(lambda: load_cifar_lt(tmp_path, 10, imbalance_ratio=2, n_max=12), str(path), says)


def test_a_damaged_meta_file_names_the_file(tmp_path) -> None:
    _fake_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "batches.meta"
    path.write_bytes(pickle.dumps({"label_names": ["a", "b"]}))
    _refused(
        lambda: load_cifar_lt(tmp_path, 10, imbalance_ratio=2, n_max=12), str(path), "2 class names"
    )
    path.write_bytes(pickle.dumps({"names": []}))
    _refused(
        lambda: load_cifar_lt(tmp_path, 10, imbalance_ratio=2, n_max=12),
        str(path),
        "not a CIFAR meta file",
    )


class _Python2Pickler(pickle._Pickler):
    """Writes bytes with Python 2's string opcodes, as the cPickle of the CIFAR archives did."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _python2_dump(obj, f) -> None:
    """``obj`` pickled as the original CIFAR archives are: protocol 2, bytes as Python 2
    strings, NumPy's reconstruction under ``numpy.core`` (NumPy 1's module name)."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    f.write(buffer.getvalue().replace(b"numpy._core.", b"numpy.core."))


@pytest.mark.parametrize(
    "dump",
    [
        _python2_dump,
        functools.partial(pickle.dump, protocol=3),
        functools.partial(pickle.dump, protocol=4),
        functools.partial(pickle.dump, protocol=5),
    ],
    ids=["python2-cifar", "protocol3", "protocol4", "protocol5"],
)
def test_genuine_archives_of_every_pickle_flavour_load(tmp_path, dump) -> None:
    _, _, tx, _, names = _fake_cifar10(tmp_path, per_class=4, test_per_class=1, dump=dump)
    ds = load_cifar_lt(tmp_path, 10, imbalance_ratio=2, n_max=4)
    assert ds.class_names == names and ds.test_x.shape == (10, 3, 32, 32)
    mean, std = torch.tensor(ds.mean).view(1, 3, 1, 1), torch.tensor(ds.std).view(1, 3, 1, 1)
    stored = torch.from_numpy(tx).float()
    assert torch.allclose((ds.test_x * std + mean) * 255, stored, atol=1e-3)
    if dump is _python2_dump:  # the names NumPy 1 wrote, which NumPy 2 no longer uses
        batch = (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
        assert b"cnumpy.core.multiarray\n_reconstruct\n" in batch


def test_a_failed_download_is_one_line(tmp_path, monkeypatch) -> None:
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    _refused(lambda: load_cifar_lt(tmp_path, 10, download=True), "could not download", "urlopen")


def test_the_cli_refuses_a_crafted_archive_in_one_line(tmp_path, capsys) -> None:
    _fake_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps(_RunsACommand(f"touch {tmp_path / 'ran'}")))
    argv = ["train", "--dataset", "cifar10-lt", "--data-root", str(tmp_path), "--n-max", "12",
            "--imbalance-ratio", "2", "--epochs", "1", "--device", "cpu"]  # fmt: skip
    assert str(path) in fails(argv, capsys)
    assert not (tmp_path / "ran").exists()


# ----------------------------------------------------------------------------- CIFAR image folder


def _image_folder(root, train: int = 2, test: int = 1):
    """A CIFAR-10 image-folder copy: ``root/{train,test}/c<k>/<i>.png``, 32x32 RGB."""
    from PIL import Image

    rng = np.random.default_rng(5)
    for split, n in (("train", train), ("test", test)):
        for k in range(10):
            (root / split / f"c{k}").mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"c{k}" / f"{i}.png")
    return root


def _load_folder(root):
    return load_cifar_lt(root, 10, imbalance_ratio=2, n_max=2)


def test_a_complete_image_folder_loads(tmp_path) -> None:
    ds = _load_folder(_image_folder(tmp_path))
    assert ds.class_names == [f"c{k}" for k in range(10)] and len(ds.test_y) == 10


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_class_folder_is_refused(tmp_path, split) -> None:
    folder = _image_folder(tmp_path) / split / "c9"
    for image in folder.iterdir():
        image.unlink()
    _refused(lambda: _load_folder(tmp_path), str(folder), "empty class folder")


def test_a_class_missing_from_test_or_train_is_refused(tmp_path) -> None:
    root = _image_folder(tmp_path)
    for image in (root / "test" / "c3").iterdir():
        image.unlink()
    (root / "test" / "c3").rmdir()
    _refused(lambda: _load_folder(root), str(root / "test" / "c3"), "missing, though")
    (root / "test" / "c3").mkdir()
    (root / "test" / "extra").mkdir()
    _refused(lambda: _load_folder(root), str(root / "test" / "extra"), "no such class")


def _jpeg(path, side: int) -> None:
    from PIL import Image

    Image.new("RGB", (side, side), (120, 30, 200)).save(path.with_suffix(".jpg"))
    path.unlink()


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda path: _jpeg(path, 40), "a 40x40 image; CIFAR images are 32x32"),
        (lambda path: path.write_bytes(b"not an image at all"), "cannot be decoded as an image"),
        (lambda path: path.write_bytes(path.read_bytes()[:60]), "cannot be decoded as an image"),
    ],
    ids=["wrong-size", "garbage", "truncated"],
)
def test_a_bad_image_names_the_file(tmp_path, damage, says) -> None:
    path = _image_folder(tmp_path) / "test" / "c4" / "0.png"
    damage(path)
    shown = path if path.exists() else path.with_suffix(".jpg")
    _refused(lambda: _load_folder(tmp_path), str(shown), says)


# ----------------------------------------------------------------------------- split lists


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("../../etc/passwd 0", "'../../etc/passwd' has a '..' part: it could leave"),
        ("train/../../x.jpg 0", "has a '..' part"),
        ("C:/Windows/win.ini 0", "is absolute"),
        ("\\\\server\\share\\x.jpg 0", "is absolute"),
        ("/ 0", "names no file"),
        ("train/a.jpg", "expected 'relative/path.jpg label' (2 fields)"),
        ("train/a.jpg -1", "label '-1' is not a class index"),
        ("train/a.jpg 1.5", "label '1.5' is not a class index"),
        ("train/a.jpg ²", "is not a class index"),
        ("train/a.jpg 3", "label 3 out of range [0, 3)"),
    ],
)
def test_a_bad_split_line_names_the_file_and_line(tmp_path, line, says) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"train/ok.jpg 0\n{line}\n", encoding="utf-8")
    _refused(lambda: read_split_file(path, 3), f"{path}, line 2: ", says)


def test_a_split_list_that_is_not_utf8_names_the_line(tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"train/ok.jpg 0\n\n\xff\xfe 1\n")
    _refused(lambda: read_split_file(path), f"{path}, line 3: ", "can't decode")


def test_a_leading_slash_stays_inside_the_image_folder(tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("/etc/passwd 0\n")
    assert read_split_file(path)[0] == ["etc/passwd"]  # ROOT/etc/passwd, never /etc/passwd


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet_lt")
    write_imagenet_lt(root)
    return root


def test_labels_beyond_the_data_sets_classes_are_refused(tmp_path, tree) -> None:
    train = (tree / "ImageNet_LT_train.txt").read_text()
    (tmp_path / "ImageNet_LT_train.txt").write_text(train + "x.jpg 1000\n")
    (tmp_path / "ImageNet_LT_test.txt").write_text("x.jpg 0\n")
    lines = len(train.splitlines()) + 1
    _refused(
        lambda: load_filelist("imagenet-lt", tree, tmp_path),
        f"ImageNet_LT_train.txt, line {lines}: label 1000 out of range [0, 1000)",
    )
    (tmp_path / "ImageNet_LT_train.txt").write_text(train)
    (tmp_path / "ImageNet_LT_test.txt").write_text("x.jpg 0\nx.jpg 3\n")
    _refused(
        lambda: load_filelist("imagenet-lt", tree, tmp_path),
        "ImageNet_LT_test.txt, line 2: label 3 out of range [0, 3)",
    )


def test_the_cli_refuses_a_list_leaving_the_root_in_one_line(tmp_path, tree, capsys) -> None:
    train = (tree / "ImageNet_LT_train.txt").read_text()
    (tmp_path / "ImageNet_LT_train.txt").write_text("../../etc/passwd 0\n" + train)
    (tmp_path / "ImageNet_LT_test.txt").write_text("x.jpg 0\n")
    argv = ["train", "--dataset", "imagenet-lt", "--data-root", str(tree), "--split-dir",
            str(tmp_path), "--epochs", "1", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert "ImageNet_LT_train.txt, line 1: path '../../etc/passwd'" in fails(argv, capsys)


# ----------------------------------------------------------------------------- MNIST-1D cache


def _npz(x, y):
    def write(path):
        with open(path, "wb") as f:
            np.savez(f, x=x, y=y)

    return write


def _as_npy(path) -> None:
    """Replace the .npz at ``path`` by a plain .npy file (np.load returns an array)."""
    with open(path, "wb") as f:
        np.save(f, GOOD_X)


GOOD_X = np.zeros((200, 40), np.float32)
GOOD_Y = np.repeat(np.arange(10), 20)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_truncate, "BadZipFile"),
        (lambda path: path.write_bytes(b"garbage " * 40), "damaged ("),
        (_as_npy, "damaged ("),
        (_npz(GOOD_X[:, :30], GOOD_Y), "x is float32 (200, 30), not float32 (200, 40)"),
        (_npz(GOOD_X.astype(np.float64), GOOD_Y), "x is float64"),
        (_npz(GOOD_X, GOOD_Y[:100]), "y is int64 (100,), not int64 (200,)"),
        (_npz(GOOD_X, np.zeros(200, np.int64)), "y does not hold 20 labels of each digit"),
        (_npz(GOOD_X, GOOD_Y - 1), "y does not hold 20 labels of each digit"),
        (_npz(np.full((200, 40), np.nan, np.float32), GOOD_Y), "x holds NaN or Inf"),
        (lambda path: path.write_bytes(pickle.dumps({"x": 1})), "damaged ("),
    ],
    ids=["truncated", "garbage", "npy", "short-signals", "float64", "few-labels", "one-digit",
         "label-minus-one", "nan", "pickle"],
)  # fmt: skip
def test_a_damaged_mnist1d_cache_is_rebuilt_saying_so(tmp_path, capsys, damage, says) -> None:
    fresh = load_mnist1d(200, test_per_class=5, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    damage(path)
    capsys.readouterr()
    again = load_mnist1d(200, test_per_class=5, cache_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(fresh, again, strict=True))
    (line,) = capsys.readouterr().err.splitlines()
    assert str(path) in line and says in line and line.endswith("rebuilding it")
    load_mnist1d(200, test_per_class=5, cache_dir=tmp_path)  # the rebuilt cache is sound
    assert capsys.readouterr().err == ""


def test_an_unwritable_mnist1d_cache_is_one_line(tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    cache = tmp_path / "file" / "cache"
    _refused(
        lambda: load_mnist1d(200, test_per_class=5, cache_dir=cache), "cannot write", str(cache)
    )


# ----------------------------------------------------------------------------- sizes and seeds


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: load_dataset("mnist1d", n_max=10**12, imbalance_ratio=1e12),
         ("n_max=1000000000000", "10000000001000 MNIST-1D signals", "TB of memory", "n_max <= ")),
        (lambda: load_dataset("mnist1d", n_max=10**8, imbalance_ratio=1),
         ("n_max=100000000", "1.0 TB of memory", "n_max <= 99900")),
        (lambda: load_dataset("mnist1d", n_max=99_850, split="validation"),
         ("n_max=99850", "n_max <= 99800")),
        (lambda: load_mnist1d(10**7), ("num_samples=10000000", "GB of memory")),
        (lambda: load_dataset("gaussian", n_max=10**12, imbalance_ratio=10),
         ("Gaussian points", "TB of memory", "GAUSSIAN_MAX_BYTES")),
        (lambda: make_gaussian_classes([5, 5], dim=10**9), ("dimension 1000000000", "GB")),
        (lambda: load_dataset("cifar10-lt", root="nowhere", n_max=5001),
         ("n_max=5001 is more than the 5000 training images per class of CIFAR-10",)),
        (lambda: load_dataset("cifar100-lt", root="nowhere", n_max=451, split="validation"),
         ("n_max=451", "450", "beside the validation images")),
    ],
)  # fmt: skip
def test_sizes_that_cannot_fit_are_refused_at_once(call, names) -> None:
    start = time.perf_counter()
    _refused(call, *names)
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
@pytest.mark.parametrize(
    "load",
    [
        lambda seed: load_dataset("mnist1d", n_max=20, imbalance_ratio=2, seed=seed),
        lambda seed: load_dataset("gaussian", n_max=20, imbalance_ratio=2, seed=seed),
        lambda seed: load_dataset("cifar10-lt", root="nowhere", seed=seed),
    ],
    ids=["mnist1d", "gaussian", "cifar10-lt"],
)
def test_a_seed_out_of_range_names_seed_and_the_range(load, seed) -> None:
    _refused(lambda: load(seed), f"seed must be an integer in [0, 4294967295], got {seed!r}")


def test_a_long_mnist1d_generation_reports_progress(monkeypatch, capsys) -> None:
    mnist1d_lt._generate_mnist1d(200, 0)
    assert capsys.readouterr().err == ""  # short: silent
    monkeypatch.setattr(mnist1d_lt, "MNIST1D_PROGRESS_SIGNALS", 100)
    mnist1d_lt._generate_mnist1d(200, 0)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" · ")[0] for line in lines] == [
        f"MNIST-1D: {20 * k}/200 signals generated" for k in range(1, 11)
    ]
