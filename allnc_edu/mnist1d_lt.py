"""MNIST-1D (Greydanus 2020), generated locally by the ``mnist1d`` package, as long-tailed data.

Signals are (1, 40) float32 tensors, standardised; the generation makes the same random draws
as ``mnist1d.data.make_dataset`` (bit for bit) and never downloads. An optional cache folder
keeps the generated signals; a damaged cache is rebuilt, saying so on stderr. Sizes beyond
``MNIST1D_MAX_SIGNALS`` are refused before any work.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ._checks import check_choice, check_scalar, check_seed
from .fmt import error_line, nbytes_text
from .longtail import SPLITS, LongTailDataset, hold_out, long_tail_counts, long_tail_subset

#: Length of an MNIST-1D signal (``mnist1d``'s ``final_seq_length``).
MNIST1D_LENGTH = 40
#: Most MNIST-1D signals generated at once (about 1 GB and 5-15 min on a CPU); more are refused.
MNIST1D_MAX_SIGNALS = 10**6
#: Peak memory per MNIST-1D signal while generating and splitting them (measured).
MNIST1D_BYTES_PER_SIGNAL = 1000
#: Generating more MNIST-1D signals than this (several seconds) reports progress on stderr.
MNIST1D_PROGRESS_SIGNALS = 10_000


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
            f"{nbytes_text(signals * MNIST1D_BYTES_PER_SIGNAL)} of memory to generate; at most "
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
        problem = error_line(err)
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
