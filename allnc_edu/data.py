"""Long-tailed data: class counts, deterministic subsets, MNIST-1D, synthetic Gaussians, CIFAR-LT.

Every loader returns a :class:`LongTailDataset` of float32, normalised tensors: MNIST-1D as
(N, 1, 40), CIFAR images as (N, 3, 32, 32), Gaussians as (N, d). Training sets are long-tailed
(counts from :func:`long_tail_counts`); test sets stay balanced. Nothing downloads unless asked.
:func:`load_dataset` also names the image-file data sets of :mod:`filelists` (ImageNet-LT,
iNaturalist 2018, Places-LT), which come as paths and labels, not tensors.

Files are untrusted input: CIFAR archives are unpickled admitting NumPy arrays and plain values
only, so a crafted one is refused, never run; a damaged archive, image folder or image, a seed
out of [0, 2**32 - 1] or a size that would not fit (``MNIST1D_MAX_SIGNALS``,
``GAUSSIAN_MAX_BYTES``, ``CIFAR_PER_CLASS``) is refused before any work with a one-line
ValueError naming the file or value; a damaged MNIST-1D cache is rebuilt, saying so on stderr.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._checks import (
    ArrayLike,
    as_counts,
    check_choice,
    check_num_classes,
    check_scalar,
    check_seed,
)
from .filelists import FILELIST_DATASETS, FileListDataset, load_filelist
from .geometry import simplex_etf

try:  # the modules whose functions rebuild pickled NumPy arrays (NumPy 2; NumPy 1 below)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # NumPy 1
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

PROFILES = ("exp", "step")
SPLITS = ("test", "validation")
#: Training images per class in the CIFAR archives: the largest ``n_max`` there is.
CIFAR_PER_CLASS = {10: 5000, 100: 500}
#: Validation images held out of each CIFAR class with ``split="validation"`` (a tenth).
CIFAR_VALIDATION = {10: 500, 100: 50}
#: Side of a CIFAR image; image-folder copies must hold images of this size.
CIFAR_SIDE = 32
#: Length of an MNIST-1D signal (``mnist1d``'s ``final_seq_length``).
MNIST1D_LENGTH = 40
#: Most MNIST-1D signals generated at once (about 1 GB and 5-15 min on a CPU); more are refused.
MNIST1D_MAX_SIGNALS = 10**6
#: Peak memory per MNIST-1D signal while generating and splitting them (measured).
MNIST1D_BYTES_PER_SIGNAL = 1000
#: Generating more MNIST-1D signals than this (several seconds) reports progress on stderr.
MNIST1D_PROGRESS_SIGNALS = 10_000
#: Largest Gaussian data set generated (float32 points, int64 labels); larger are refused.
GAUSSIAN_MAX_BYTES = 2**32
DATASETS = ("mnist1d", "gaussian", "cifar10-lt", "cifar100-lt", *FILELIST_DATASETS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class LongTailDataset:
    """A long-tailed training set and a balanced test set, as float32 normalised tensors.

    ``train_x`` is ``(N, *input_shape)``, ``train_y`` (N,) int64 with ``counts[k]`` samples of
    class k; ``test_x`` / ``test_y`` likewise for the test set. ``mean`` / ``std`` are the
    per-channel statistics used for normalisation (None when the data came normalised);
    ``seed`` the seed that drew the data (None when not known). ``split`` says what
    ``test_x`` holds ("test", or "validation": held out of the training pool); ``root`` is the
    folder the data was read from or cached in (None when generated without one).
    """

    name: str
    train_x: torch.Tensor = dataclasses.field(repr=False)
    train_y: torch.Tensor = dataclasses.field(repr=False)
    test_x: torch.Tensor = dataclasses.field(repr=False)
    test_y: torch.Tensor = dataclasses.field(repr=False)
    counts: list[int]
    num_classes: int
    class_names: list[str]
    input_shape: tuple[int, ...]
    imbalance_ratio: float
    profile: str
    mean: list[float] | None = None
    std: list[float] | None = None
    seed: int | None = None
    split: str = "test"
    root: str | None = None


def _size(nbytes: float) -> str:
    """A number of bytes as a reader should see it: "850.0 MB", "45.0 TB"."""
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:,.1f} TB"


def _reason(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def long_tail_counts(
    n_max: int, num_classes: int, imbalance_ratio: float, profile: str = "exp"
) -> list[int]:
    """Per-class training counts of a long-tailed profile, head class first.

    ``"exp"``: n_k = int(n_max * IR^(-k/(K-1))), k = 0..K-1 (truncation, as in the long-tail
    literature: CIFAR-10-LT at IR 100 has 12406 images, CIFAR-100-LT 10847). ``"step"``: the
    first floor(K/2) classes get n_max, the rest int(n_max / IR).
    """
    k = check_num_classes(num_classes)
    n_max = check_scalar("n_max", n_max, kind=int, low=1)
    imbalance_ratio = check_scalar("imbalance_ratio", imbalance_ratio, low=1)
    if check_choice("profile", profile, PROFILES) == "exp":
        counts = [int(n_max * imbalance_ratio ** (-i / (k - 1))) for i in range(k)]
    else:
        counts = [n_max] * (k // 2) + [int(n_max / imbalance_ratio)] * (k - k // 2)
    if counts[-1] < 1:
        raise ValueError(
            f"n_max={n_max} with imbalance_ratio={imbalance_ratio} leaves the smallest class "
            "empty; raise n_max or lower imbalance_ratio"
        )
    return counts


def long_tail_subset(labels: ArrayLike, counts: Sequence[int], seed: int = 0) -> torch.Tensor:
    """Indices (sorted, int64) that keep ``counts[k]`` samples of each class k.

    Within each class the samples are a seeded random choice without replacement, so the same
    labels, counts and seed always give the same subset. Labels must lie in [0, len(counts)).
    """
    y = torch.as_tensor(np.asarray(labels)).long()
    want = as_counts(counts)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(y.shape)}")
    if y.numel() and (y.min() < 0 or y.max() >= len(want)):
        raise ValueError(f"labels must lie in [0, {len(want)}) for {len(want)} class counts")
    have = torch.bincount(y, minlength=len(want))
    short = [(k, int(have[k]), int(n)) for k, n in enumerate(want) if have[k] < n]
    if short:
        k, h, n = short[0]
        raise ValueError(f"class {k} has {h} samples but {n} were requested ({len(short)} short)")
    gen = torch.Generator().manual_seed(check_scalar("seed", seed, kind=int))
    picked = []
    for k, n in enumerate(want.tolist()):
        members = torch.nonzero(y == k).flatten()
        picked.append(members[torch.randperm(len(members), generator=gen)[:n]])
    return torch.cat(picked).sort().values


def hold_out(labels: ArrayLike, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into a class-balanced held-out set and the rest: (held, rest), sorted int64.

    ``held`` has ``per_class`` samples of every class (a seeded random choice), ``rest`` all the
    others; the two are disjoint and together cover every index. Used for validation sets.
    """
    y = torch.as_tensor(np.asarray(labels)).long()
    k = int(y.max()) + 1 if y.numel() else 0
    held = long_tail_subset(y, [per_class] * k, seed=seed + 7919)
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[held] = False
    return held, torch.nonzero(keep).flatten()


# ----------------------------------------------------------------------------- MNIST-1D


def _generate_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``num_samples`` MNIST-1D signals (float32 (N, 40)) and labels, generated locally.

    The loop of ``mnist1d.data.make_dataset`` with its default arguments (the same random draws
    in the same order, so the same signals), written into one preallocated array and reporting
    its progress on stderr, a line per digit, when it is long (``MNIST1D_PROGRESS_SIGNALS``).
    """
    from mnist1d.data import get_dataset_args, get_templates
    from mnist1d.transform import transform

    args, templates = get_dataset_args(), get_templates()
    per_class = num_samples // 10
    xs = np.empty((10 * per_class, MNIST1D_LENGTH))
    start, report = time.perf_counter(), len(xs) > MNIST1D_PROGRESS_SIGNALS
    # Seeded as make_dataset does (the global `random` and NumPy generators), then restored.
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        for k in range(10):
            for i in range(k * per_class, (k + 1) * per_class):
                xs[i] = transform(templates["x"][k], templates["t"], args)[0]
            if report:
                done, elapsed = (k + 1) * per_class, time.perf_counter() - start
                print(f"MNIST-1D: {done}/{len(xs)} signals generated · {elapsed:.0f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
        order = np.random.permutation(len(xs))  # noqa: NPY002
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    xs = xs[order]
    mean, std = xs.mean(), xs.std()  # both of the raw signals, as make_dataset computes them
    xs -= mean
    xs /= std
    return xs.astype(np.float32), np.repeat(templates["y"], per_class)[order].astype(np.int64)


def _check_mnist1d_size(name: str, value: int, signals: int, most: int) -> None:
    """Refuse, before any work, more than ``MNIST1D_MAX_SIGNALS`` signals in one line giving the
    memory they would need and the largest ``name`` allowed (``most``)."""
    if signals > MNIST1D_MAX_SIGNALS:
        raise ValueError(
            f"{name}={value} asks for {signals} MNIST-1D signals, about "
            f"{_size(signals * MNIST1D_BYTES_PER_SIGNAL)} of memory to generate; at most "
            f"{MNIST1D_MAX_SIGNALS} are generated (data.MNIST1D_MAX_SIGNALS): {name} <= {most}"
        )


def _mnist1d_cache_problem(xs: np.ndarray, ys: np.ndarray, per_class: int) -> str | None:
    """What is wrong with cached MNIST-1D arrays; None when they are as ``load_mnist1d`` wrote."""
    n = 10 * per_class
    if xs.dtype != np.float32 or xs.shape != (n, MNIST1D_LENGTH):
        return f"x is {xs.dtype} {xs.shape}, not float32 {(n, MNIST1D_LENGTH)}"
    if ys.dtype != np.int64 or ys.shape != (n,):
        return f"y is {ys.dtype} {ys.shape}, not int64 {(n,)}"
    if ys.min() < 0 or ys.max() > 9 or (np.bincount(ys, minlength=10) != per_class).any():
        return f"y does not hold {per_class} labels of each digit 0-9"
    if not np.isfinite(xs).all():
        return "x holds NaN or Inf"
    return None


def _read_mnist1d_cache(path: Path, per_class: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The signals and labels cached in ``path``; None, after one line on stderr saying so, when
    the file is damaged (unreadable, truncated, not an .npz, mis-shaped) and is to be rebuilt."""
    try:
        with np.load(path) as f:
            xs, ys = f["x"], f["y"]
        problem = _mnist1d_cache_problem(xs, ys, per_class)
    except Exception as err:  # whatever a damaged file raises, it is rebuilt
        problem = _reason(err)
    if problem is None:
        return xs, ys
    print(
        f"MNIST-1D cache {path} is damaged ({problem}): rebuilding it", file=sys.stderr, flush=True
    )
    return None


def _write_mnist1d_cache(path: Path, xs: np.ndarray, ys: np.ndarray) -> None:
    """Store the signals in ``path`` atomically; a one-line ValueError when it cannot be."""
    tmp = path.with_suffix(".tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, x=xs, y=ys)
        os.replace(tmp, path)
    except OSError as err:
        raise ValueError(f"cannot write the MNIST-1D cache {path}: {err.strerror or err}") from None


def load_mnist1d(
    num_samples: int = 6000,
    *,
    test_per_class: int = 100,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MNIST-1D generated offline as ``mnist1d.data.make_dataset`` does (never downloaded).

    Generates ``num_samples // 10`` signals per digit (standardised to zero mean and unit
    variance, as ``make_dataset`` does) and splits every class into ``test_per_class`` test
    signals and the rest for training. Takes about 2 s per 6000 signals (progress on stderr
    beyond ``MNIST1D_PROGRESS_SIGNALS``); more than ``MNIST1D_MAX_SIGNALS`` are refused. With
    ``cache_dir`` the result is stored there as .npz and reused; a damaged cache file is
    rebuilt, with one line on stderr saying so.

    Returns:
        train_x (N, 1, 40) float32, train_y (N,) int64, test_x (10*test_per_class, 1, 40),
        test_y; both splits balanced, ordered by class.
    """
    num_samples = check_scalar("num_samples", num_samples, kind=int, low=20)
    _check_mnist1d_size("num_samples", num_samples, num_samples, MNIST1D_MAX_SIGNALS)
    per_class = num_samples // 10
    seed = check_seed(seed)
    if check_scalar("test_per_class", test_per_class, kind=int) not in range(1, per_class):
        raise ValueError(
            f"test_per_class must be an integer in [1, {per_class}) for num_samples="
            f"{num_samples} ({per_class} per class), got {test_per_class!r}"
        )
    path = Path(cache_dir) / f"mnist1d_{per_class * 10}_seed{seed}.npz" if cache_dir else None
    cached = _read_mnist1d_cache(path, per_class) if path is not None and path.exists() else None
    if cached is None:
        cached = _generate_mnist1d(per_class * 10, seed)
        if path is not None:
            _write_mnist1d_cache(path, *cached)
    xs, ys = cached
    order = np.argsort(ys, kind="stable")
    x = torch.from_numpy(xs[order]).reshape(10, per_class, 1, MNIST1D_LENGTH)
    y = torch.from_numpy(ys[order]).reshape(10, per_class)
    t = int(test_per_class)
    return (
        x[:, t:].reshape(-1, 1, MNIST1D_LENGTH),
        y[:, t:].reshape(-1),
        x[:, :t].reshape(-1, 1, MNIST1D_LENGTH),
        y[:, :t].reshape(-1),
    )


def load_mnist1d_lt(
    imbalance_ratio: float = 100.0,
    profile: str = "exp",
    *,
    n_max: int = 500,
    test_per_class: int = 100,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    split: str = "test",
) -> LongTailDataset:
    """Long-tailed MNIST-1D: ``long_tail_counts(n_max, 10, imbalance_ratio, profile)`` training
    signals per digit, a balanced test set of ``test_per_class`` per digit.

    With ``split="validation"`` the pool is generated ``test_per_class`` signals per digit
    larger; a class-balanced validation set of ``test_per_class`` per digit is held out of the
    training pool (``hold_out``) and returned as ``test_x``/``test_y``; the training subset is
    drawn from the rest, and the test signals are never loaded. Choose settings on this split.
    An ``n_max`` that would need more than ``MNIST1D_MAX_SIGNALS`` signals is refused up front.
    """
    check_choice("split", split, SPLITS)
    seed = check_seed(seed)
    n_max = check_scalar("n_max", n_max, kind=int, low=1)
    test_per_class = check_scalar("test_per_class", test_per_class, kind=int, low=1)
    per_digit = test_per_class * (2 if split == "validation" else 1)
    _check_mnist1d_size(
        "n_max", n_max, 10 * (n_max + per_digit), MNIST1D_MAX_SIGNALS // 10 - per_digit
    )
    counts = long_tail_counts(n_max, 10, imbalance_ratio, profile)
    x, y, tx, ty = load_mnist1d(
        10 * (n_max + per_digit),
        test_per_class=test_per_class,
        seed=seed,
        cache_dir=cache_dir,
    )
    if split == "validation":
        held, rest = hold_out(y, test_per_class, seed=seed)
        tx, ty, x, y = x[held], y[held], x[rest], y[rest]
    idx = long_tail_subset(y, counts, seed=seed)
    return LongTailDataset(
        name="mnist1d",
        train_x=x[idx],
        train_y=y[idx],
        test_x=tx,
        test_y=ty,
        counts=counts,
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        input_shape=(1, MNIST1D_LENGTH),
        imbalance_ratio=float(imbalance_ratio),
        profile=profile,
        seed=seed,
        split=split,
        root=None if cache_dir is None else str(Path(cache_dir).resolve()),
    )


# ----------------------------------------------------------------------------- Gaussians


def _check_gaussian_size(points: int, k: int, d: int) -> None:
    """Refuse, before any work, Gaussian data larger than ``GAUSSIAN_MAX_BYTES``, in one line
    giving the memory it would need."""
    nbytes = points * (4 * d + 8) + 8 * k * d  # float32 points, int64 labels, float64 centres
    if nbytes > GAUSSIAN_MAX_BYTES:
        raise ValueError(
            f"{points} Gaussian points (the counts plus the test points) in dimension {d} need "
            f"about {_size(nbytes)} of memory; at most {_size(GAUSSIAN_MAX_BYTES)} are generated "
            "(data.GAUSSIAN_MAX_BYTES): lower the counts (n_max) or dim"
        )


def make_gaussian_classes(
    counts: Sequence[int],
    *,
    dim: int | None = None,
    test_per_class: int = 100,
    separation: float = 3.0,
    noise: float = 1.0,
    seed: int = 0,
) -> LongTailDataset:
    """K isotropic Gaussian classes centred on a simplex ETF of radius ``separation``.

    Class k has ``counts[k]`` training points and ``test_per_class`` test points, drawn as
    ``separation * e_k + noise * N(0, I_d)`` with e_k the rows of ``simplex_etf(K, d)``
    (d defaults to K; d >= K-1). Instant; ``input_shape`` is (d,). Data sets larger than
    ``GAUSSIAN_MAX_BYTES`` are refused before any work.
    """
    c = as_counts(counts)
    k = len(c)
    d = k if dim is None else check_scalar("dim", dim, kind=int, low=k - 1)
    test_per_class = check_scalar("test_per_class", test_per_class, kind=int, low=1)
    separation = check_scalar("separation", separation, low=0)
    noise = check_scalar("noise", noise, low=0, include_low=False)
    seed = check_seed(seed)
    _check_gaussian_size(int(c.sum()) + k * test_per_class, k, d)
    centres = separation * simplex_etf(k, d, seed=seed).float()
    gen = torch.Generator().manual_seed(seed)

    def draw(per_class: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.repeat_interleave(torch.arange(k), per_class)
        return centres[y] + noise * torch.randn(len(y), d, generator=gen), y

    x, y = draw(c)
    tx, ty = draw(torch.full((k,), int(test_per_class)))
    return LongTailDataset(
        name="gaussian",
        train_x=x,
        train_y=y,
        test_x=tx,
        test_y=ty,
        counts=c.tolist(),
        num_classes=k,
        class_names=[f"class {i}" for i in range(k)],
        input_shape=(d,),
        imbalance_ratio=float(c.max() / c.min()),
        profile="custom",
        seed=seed,
    )


# ----------------------------------------------------------------------------- CIFAR-LT


#: The only globals a CIFAR archive may name: NumPy's array and dtype reconstruction, under the
#: module names of NumPy 1 (``numpy.core``, the original archives) and NumPy 2 (``numpy._core``).
_ARCHIVE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _multiarray._reconstruct
       for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _numeric._frombuffer
       for core in ("core", "_core")},
}  # fmt: skip


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global that a CIFAR archive never holds."""


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles what CIFAR archives hold, dicts, lists, strings, bytes and NumPy arrays, and
    refuses every other global before it is imported or called (a crafted file cannot run)."""

    def find_class(self, module: str, name: str) -> object:
        found = _ARCHIVE_GLOBALS.get((module, name))
        if found is None:
            raise _RefusedGlobal(f"{module}.{name}")
        return found


def _unpickle_archive(path: Path) -> object:
    """The object pickled in the CIFAR archive file ``path`` (read through
    ``_ArchiveUnpickler``); every failure is a one-line ValueError naming the file."""
    try:
        with open(path, "rb") as f:
            return _ArchiveUnpickler(f, encoding="latin1").load()
    except _RefusedGlobal as err:
        raise ValueError(
            f"{path}: refused to unpickle the global {err} (a CIFAR archive holds only dicts, "
            "lists, strings, bytes and NumPy arrays; a file naming others may run code)"
        ) from None
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror or err})") from None
    except Exception as err:  # whatever truncated or foreign bytes make the unpickler raise
        raise ValueError(f"{path}: truncated or not a CIFAR batch ({_reason(err)})") from None


def _cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One archive batch: uint8 (N, 3, 32, 32) images and int64 (N,) labels in [0, K)."""
    entry = _unpickle_archive(path)
    entry = entry if isinstance(entry, dict) else {}
    data, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
    shape = (len(labels), 3 * CIFAR_SIDE**2) if isinstance(labels, list) else None
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.shape == shape
        and all(type(v) is int for v in labels)
    ):
        raise ValueError(
            f"{path}: truncated or not a CIFAR batch (no uint8 'data' of N x 3072 pixels with "
            "N integer 'labels')"
        )
    bad = next((v for v in labels if not 0 <= v < num_classes), None)
    if bad is not None:
        raise ValueError(f"{path}: label {bad} outside [0, {num_classes}) for CIFAR-{num_classes}")
    return data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE), np.asarray(labels, dtype=np.int64)


def _cifar_names(path: Path, key: str, num_classes: int) -> list[str]:
    """The class names in the archive's meta file ``path`` (under ``key``), K strings."""
    entry = _unpickle_archive(path)
    names = entry.get(key) if isinstance(entry, dict) else None
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ValueError(f"{path}: not a CIFAR meta file (no list of class names {key!r})")
    if len(names) != num_classes:
        raise ValueError(f"{path}: {len(names)} class names, CIFAR-{num_classes} has {num_classes}")
    return names


def _read_cifar_archive(root: Path, num_classes: int):
    """Read torchvision's extracted CIFAR pickles (``cifar-10-batches-py`` or
    ``cifar-100-python``) under ``root``: uint8 (N, 3, 32, 32) train/test arrays, labels, names.

    File names and keys come from torchvision's CIFAR10/CIFAR100 classes. Returns None when the
    folder is absent. Checksums are verified by torchvision when it downloads; any file here is
    unpickled safely (``_ArchiveUnpickler``) and checked, a bad one refused in one line.
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if num_classes == 10 else CIFAR100
    folder = root / cls.base_folder
    if not folder.is_dir():
        return None

    def read(file_list):
        batches = [_cifar_batch(folder / file_name, num_classes) for file_name, _md5 in file_list]
        return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])

    names = _cifar_names(folder / cls.meta["filename"], cls.meta["key"], num_classes)
    return *read(cls.train_list), *read(cls.test_list), names


def _cifar_image(path: Path) -> np.ndarray:
    """One image file of a CIFAR image-folder copy as uint8 (32, 32, 3) RGB (grey or RGBA
    converted); a one-line ValueError names a file that does not decode or is not 32x32."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            size = image.size  # read from the header: a wrong size is refused undecoded
            rgb = np.asarray(image.convert("RGB")) if size == (CIFAR_SIDE, CIFAR_SIDE) else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: cannot be decoded as an image ({_reason(err)})") from None
    if rgb is None:
        raise ValueError(
            f"{path}: a {size[0]}x{size[1]} image; CIFAR images are {CIFAR_SIDE}x{CIFAR_SIDE}"
        )
    return rgb


class _ImageFiles:
    """Image files decoded on indexing: ``files[idx]`` -> uint8 (len(idx), 3, 32, 32)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return np.stack([_cifar_image(self.files[i]) for i in idx]).transpose(0, 3, 1, 2)


def _class_folders(base: Path) -> list[str]:
    """The class folders of ``base/train`` (sorted), which ``base/test`` must match one for one."""
    train, test = ({p.name for p in (base / s).iterdir() if p.is_dir()} for s in ("train", "test"))
    if train - test:
        name = min(train - test)
        raise ValueError(f"{base / 'test' / name}: missing, though {base / 'train' / name} exists")
    if test - train:
        name = min(test - train)
        raise ValueError(f"{base / 'test' / name}: no such class in {base / 'train'}")
    return sorted(train)


def _read_image_folder(root: Path):
    """Index a CIFAR-10 image-folder copy, ``root/{train,test}/<class>/*.jpg`` (also under
    ``root/cifar10-jpeg``), classes in sorted order; images are decoded only when selected.
    Returns None when absent. The same classes must be in train and test, none empty."""
    for base in (root, root / "cifar10-jpeg"):
        if (base / "train").is_dir() and (base / "test").is_dir():
            break
    else:
        return None
    names = _class_folders(base)

    def index(split: str) -> tuple[_ImageFiles, np.ndarray]:
        files, labels = [], []
        for k, name in enumerate(names):
            folder = base / split / name
            found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{folder}: an empty class folder (no {'/'.join(IMAGE_SUFFIXES)})")
            files += found
            labels += [k] * len(found)
        return _ImageFiles(files), np.asarray(labels, dtype=np.int64)

    (x, y), (tx, ty) = index("train"), index("test")
    return x, y, tx[np.arange(len(tx))], ty, names


def _channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and population std of uint8 (N, C, H, W) images, in [0, 1] units,
    from 256-bin histograms (no float copy of the whole array)."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = np.bincount(images[:, c].ravel(), minlength=256).astype(np.float64)
        p = hist / hist.sum()
        mean = float(p @ values)
        means.append(mean)
        stds.append(math.sqrt(max(float(p @ (values - mean) ** 2), 0.0)))
    return means, stds


def _normalise(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 tensor, (x/255 - mean) / std per channel, in one pass."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def _download_cifar(root: Path, num_classes: int) -> None:
    """Fetch CIFAR-K into ``root`` with torchvision (which verifies the checksums); a failed
    download or a corrupt copy is a one-line ValueError."""
    from torchvision.datasets import CIFAR10, CIFAR100

    try:
        (CIFAR10 if num_classes == 10 else CIFAR100)(str(root), train=False, download=True)
    except (OSError, RuntimeError) as err:
        raise ValueError(
            f"could not download CIFAR-{num_classes} into {root}: {_reason(err)}"
        ) from None


def load_cifar_lt(
    root: str | os.PathLike | None,
    num_classes: int = 10,
    imbalance_ratio: float = 100.0,
    profile: str = "exp",
    download: bool = False,
    seed: int = 0,
    n_max: int | None = None,
    split: str = "test",
) -> LongTailDataset:
    """CIFAR-10-LT / CIFAR-100-LT as in the long-tail literature (LDAM-DRW, GLMC).

    Reads torchvision's extracted archive under ``root`` (downloading it there through
    ``torchvision.datasets.CIFAR10/100`` only when ``download=True``); for CIFAR-10 an
    image-folder copy ``root/{train,test}/<class>/*.jpg`` is accepted too. The training set is
    a seeded subset with ``long_tail_counts(n_max, K, imbalance_ratio, profile)`` images per
    class (n_max defaults to 5000 for CIFAR-10, 500 for CIFAR-100); the test set is the full
    balanced one. Images are normalised per channel with the mean and std of the long-tailed
    training subset and returned as float32 (N, 3, 32, 32).

    With ``split="validation"`` a class-balanced validation set of ``CIFAR_VALIDATION[K]``
    images per class (500 / 50, a tenth of each class) is held out of the training images
    (``hold_out``) and returned as ``test_x``/``test_y``; the long-tailed subset is drawn from
    the rest, so n_max defaults to 4500 / 450 there. The test images are never read.

    Refused in one line, before reading: an ``n_max`` above the images per class there are,
    a seed out of [0, 2**32 - 1]; while reading: an archive file that is missing, truncated,
    not a CIFAR batch or names any global but NumPy's array reconstruction (never unpickled),
    and in an image folder a class folder empty or missing from ``test``, or an image that does
    not decode or is not 32x32.
    """
    check_choice("num_classes", num_classes, (10, 100))
    check_choice("split", split, SPLITS)
    held = CIFAR_VALIDATION[num_classes] if split == "validation" else 0
    download = check_scalar("download", download, kind=bool)
    seed = check_seed(seed)
    most = CIFAR_PER_CLASS[num_classes] - held
    n_max = most if n_max is None else check_scalar("n_max", n_max, kind=int, low=1)
    if n_max > most:
        raise ValueError(
            f"n_max={n_max} is more than the {most} training images per class of CIFAR-"
            f"{num_classes}{' left beside the validation images' if held else ''}"
        )
    counts = long_tail_counts(n_max, num_classes, imbalance_ratio, profile)
    if root is None:
        raise ValueError(f"CIFAR-{num_classes} needs a data root: pass root=DIR (a folder)")
    root = Path(root).expanduser()
    if download:
        _download_cifar(root, num_classes)
    found = _read_cifar_archive(root, num_classes)
    if found is None and num_classes == 10:
        found = _read_image_folder(root)
    if found is None:
        raise ValueError(
            f"CIFAR-{num_classes} not found under {str(root)!r}; pass download=True (CLI: "
            "--download) to fetch it there with torchvision, or point root at an existing copy"
        )
    x, y, tx, ty, names = found
    if len(names) != num_classes:
        raise ValueError(f"expected {num_classes} classes under {str(root)!r}, found {len(names)}")
    pool = np.arange(len(y))
    if held:  # index lazily: an image folder decodes only the images it is asked for
        held_idx, pool = (i.numpy() for i in hold_out(y, held, seed=seed))
        tx, ty = x[held_idx], y[held_idx]
    idx = pool[long_tail_subset(y[pool], counts, seed=seed).numpy()]
    train = x[idx]
    mean, std = _channel_stats(train)
    return LongTailDataset(
        name=f"cifar{num_classes}-lt",
        train_x=_normalise(train, mean, std),
        train_y=torch.from_numpy(y[idx]),
        test_x=_normalise(tx, mean, std),
        test_y=torch.from_numpy(ty),
        counts=counts,
        num_classes=num_classes,
        class_names=names,
        input_shape=(3, 32, 32),
        imbalance_ratio=float(imbalance_ratio),
        profile=profile,
        mean=mean,
        std=std,
        seed=seed,
        split=split,
        root=str(root.resolve()),
    )


# ----------------------------------------------------------------------------- dispatcher


def load_dataset(
    name: str,
    *,
    imbalance_ratio: float = 100.0,
    profile: str = "exp",
    root: str | os.PathLike | None = None,
    download: bool = False,
    seed: int = 0,
    n_max: int | None = None,
    split: str = "test",
    split_dir: str | os.PathLike | None = None,
    image_size: int = 224,
) -> LongTailDataset | FileListDataset:
    """Load a long-tailed data set by name: "mnist1d", "gaussian", "cifar10-lt", "cifar100-lt",
    or one of the image-file data sets "imagenet-lt", "inat2018", "places-lt".

    ``n_max`` is the head-class size (defaults: 500 for MNIST-1D and Gaussians, 5000 / 500 for
    CIFAR-10 / CIFAR-100). For MNIST-1D ``root`` is an optional cache folder; for CIFAR it is
    the data folder (required). ``split="validation"`` puts a class-balanced validation set,
    held out of the training pool, in place of the test set (MNIST-1D and CIFAR; see
    ``load_mnist1d_lt`` and ``load_cifar_lt``): tune on it, report on ``split="test"``.

    The image-file data sets come as a ``filelists.FileListDataset`` (paths, not tensors) read
    from their split lists in ``split_dir`` (default: ``root``), images under ``root``, decoded
    at ``image_size`` while training (``filelists.load_filelist``; what ``split`` means for
    each is in the ``filelists`` docstring). Their class counts are the train list's:
    ``imbalance_ratio`` and ``profile`` are ignored, ``n_max`` and ``download`` refused.

    A seed outside [0, 2**32 - 1] and a size that cannot fit are refused before any work, a
    damaged file in one line naming it (see the module docstring).
    """
    check_choice("split", split, SPLITS)
    check_choice("name", name, DATASETS)
    check_scalar("download", download, kind=bool)
    check_seed(seed)
    if name in FILELIST_DATASETS:
        if download or n_max is not None:
            raise ValueError(
                f"{name} is read from its split lists as they are: no download, no n_max"
            )
        return load_filelist(name, root, split_dir, split=split, image_size=image_size)
    if name == "mnist1d":
        return load_mnist1d_lt(
            imbalance_ratio,
            profile,
            n_max=500 if n_max is None else n_max,
            seed=seed,
            cache_dir=root,
            split=split,
        )
    if name == "gaussian":
        if split != "test":
            raise ValueError("split='validation' is available for mnist1d and CIFAR, not gaussian")
        counts = long_tail_counts(500 if n_max is None else n_max, 10, imbalance_ratio, profile)
        data = make_gaussian_classes(counts, seed=seed)
        return dataclasses.replace(data, imbalance_ratio=float(imbalance_ratio), profile=profile)
    k = 10 if name == "cifar10-lt" else 100
    return load_cifar_lt(root, k, imbalance_ratio, profile, download, seed, n_max, split)
