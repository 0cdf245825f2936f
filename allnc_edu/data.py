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
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ._checks import as_counts, check_choice, check_scalar, check_seed
from .cifar import CIFAR_PER_CLASS, load_cifar_lt
from .filelists import FILELIST_DATASETS, FileListDataset, load_filelist
from .fmt import nbytes_text
from .geometry import simplex_etf
from .longtail import (
    PROFILES,
    SPLITS,
    LongTailDataset,
    hold_out,
    long_tail_counts,
    long_tail_subset,
)
from .mnist1d_lt import MNIST1D_MAX_SIGNALS, load_mnist1d, load_mnist1d_lt

__all__ = [
    "CIFAR_PER_CLASS",
    "DATASETS",
    "GAUSSIAN_MAX_BYTES",
    "MNIST1D_MAX_SIGNALS",
    "PROFILES",
    "SPLITS",
    "DatasetSpec",
    "LongTailDataset",
    "hold_out",
    "load_cifar_lt",
    "load_dataset",
    "load_mnist1d",
    "load_mnist1d_lt",
    "long_tail_counts",
    "long_tail_subset",
    "make_gaussian_classes",
    "recipe_for",
]

#: Largest Gaussian data set generated (float32 points, int64 labels); larger are refused.
GAUSSIAN_MAX_BYTES = 2**32


def _check_gaussian_size(points: int, k: int, d: int) -> None:
    """Refuse, before any work, Gaussian data larger than ``GAUSSIAN_MAX_BYTES``, in one line
    giving the memory it would need."""
    nbytes = points * (4 * d + 8) + 8 * k * d  # float32 points, int64 labels, float64 centres
    if nbytes > GAUSSIAN_MAX_BYTES:
        raise ValueError(
            f"{points} Gaussian points (the counts plus the test points) in dimension {d} need "
            f"about {nbytes_text(nbytes)} of memory; at most {nbytes_text(GAUSSIAN_MAX_BYTES)} "
            "are generated (data.GAUSSIAN_MAX_BYTES): lower the counts (n_max) or dim"
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


@dataclass(frozen=True)
class DatasetSpec:
    """A data set the package loads by name: everything the rest of the package needs to know.

    Attributes:
        name: its name (``load_dataset(name)``, ``--dataset``).
        load: builds it: ``load(imbalance_ratio=, profile=, root=, download=, seed=, n_max=,
            split=, split_dir=, image_size=)``; options it cannot use are refused there.
        backbone: the ``models.BACKBONES`` name a run uses when none is given.
        recipe: the training recipe, ``config.TrainConfig`` values for the settings left None
            (epochs, batch_size, lr, weight_decay, metrics_every).
        needs_root: whether it is read from a folder the user gives (``--data-root``).
        description: one line for ``--help``.
    """

    name: str
    load: Callable[..., LongTailDataset | FileListDataset]
    backbone: str
    recipe: Mapping[str, float] = field(default_factory=dict)
    needs_root: bool = False
    description: str = ""


def _load_mnist1d(*, download: bool, split_dir, image_size, **options) -> LongTailDataset:
    _refuse(download=download, split_dir=split_dir, image_size=image_size, name="mnist1d")
    n_max = options.pop("n_max")
    return load_mnist1d_lt(
        options.pop("imbalance_ratio"), options.pop("profile"),
        n_max=500 if n_max is None else n_max, cache_dir=options.pop("root"), **options,
    )  # fmt: skip


def _load_gaussian(*, download: bool, split_dir, image_size, root, split, **options):
    _refuse(download=download, split_dir=split_dir, image_size=image_size, root=root,
            name="gaussian")  # fmt: skip
    if split != "test":
        raise ValueError("split='validation' is available for mnist1d and CIFAR, not gaussian")
    n_max = 500 if options["n_max"] is None else options["n_max"]
    counts = long_tail_counts(n_max, 10, options["imbalance_ratio"], options["profile"])
    data = make_gaussian_classes(counts, seed=options["seed"])
    return dataclasses.replace(
        data, imbalance_ratio=float(options["imbalance_ratio"]), profile=options["profile"]
    )


def _cifar_loader(num_classes: int) -> Callable[..., LongTailDataset]:
    def load(*, split_dir, image_size, **options) -> LongTailDataset:
        _refuse(split_dir=split_dir, image_size=image_size, name=f"cifar{num_classes}-lt")
        return load_cifar_lt(
            options["root"], num_classes, options["imbalance_ratio"], options["profile"],
            options["download"], options["seed"], options["n_max"], options["split"],
        )  # fmt: skip

    return load


def _filelist_loader(name: str) -> Callable[..., FileListDataset]:
    def load(*, root, split_dir, split, image_size, download, n_max, **_ignored):
        if download or n_max is not None:
            raise ValueError(
                f"{name} is read from its split lists as they are: no download, no n_max"
            )
        return load_filelist(name, root, split_dir, split=split,
                             image_size=224 if image_size is None else image_size)  # fmt: skip

    return load


def _refuse(*, name: str, **given: Any) -> None:
    """Refuse the loader options a data set cannot use (given as anything but None/False)."""
    used = [k for k, v in given.items() if v not in (None, False)]
    if used:
        raise ValueError(f"{', '.join(used)}: not an option of the {name} data set")


_CIFAR_RECIPE = {"epochs": 200, "batch_size": 64, "lr": 0.01, "weight_decay": 5e-3,
                 "metrics_every": 10}  # fmt: skip
_SMALL_RECIPE = {"epochs": 20, "batch_size": 128, "lr": 0.1, "weight_decay": 5e-3}
_FILELIST_NAMES = {"imagenet-lt": "ImageNet-LT", "inat2018": "iNaturalist 2018",
                   "places-lt": "Places-LT"}  # fmt: skip
#: The image-file data sets' recipes (global batch; sources in docs/recipes.md).
_FILELIST_RECIPES = {"imagenet-lt": 5e-4, "inat2018": 1e-4, "places-lt": 5e-4}  # weight decay

#: Every data set ``load_dataset`` knows, by name: the one place a data set is added.
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mnist1d", _load_mnist1d, "cnn1d", {**_SMALL_RECIPE, "metrics_every": 2},
                    description="MNIST-1D signals generated locally (Greydanus 2020)"),
        DatasetSpec("gaussian", _load_gaussian, "mlp", {**_SMALL_RECIPE, "metrics_every": 1},
                    description="Gaussian classes around a simplex ETF, 10 classes"),
        DatasetSpec("cifar10-lt", _cifar_loader(10), "resnet32-ldam", _CIFAR_RECIPE,
                    needs_root=True, description="CIFAR-10-LT (archive or image folder)"),
        DatasetSpec("cifar100-lt", _cifar_loader(100), "resnet32-ldam", _CIFAR_RECIPE,
                    needs_root=True, description="CIFAR-100-LT (archive)"),
        *(DatasetSpec(name, _filelist_loader(name),
                      "resnext50_32x4d" if name == "imagenet-lt" else "resnet50",
                      {"epochs": 90, "batch_size": 256, "lr": 0.1, "metrics_every": 10,
                       "weight_decay": _FILELIST_RECIPES[name]},
                      needs_root=True, description=f"{_FILELIST_NAMES[name]}, from its split lists")
          for name in FILELIST_DATASETS),
    )
}  # fmt: skip


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
    image_size: int | None = None,
) -> LongTailDataset | FileListDataset:
    """Load a long-tailed data set by name (a ``DATASETS`` key): "mnist1d", "gaussian",
    "cifar10-lt", "cifar100-lt", or one of the image-file data sets "imagenet-lt", "inat2018",
    "places-lt".

    ``n_max`` is the head-class size (defaults: 500 for MNIST-1D and Gaussians, 5000 / 500 for
    CIFAR-10 / CIFAR-100). For MNIST-1D ``root`` is an optional cache folder; for CIFAR it is
    the data folder (required). ``split="validation"`` puts a class-balanced validation set,
    held out of the training pool, in place of the test set (MNIST-1D and CIFAR; see
    ``mnist1d.load_mnist1d_lt`` and ``cifar.load_cifar_lt``): tune on it, report on
    ``split="test"``.

    The image-file data sets come as a ``filelists.FileListDataset`` (paths, not tensors) read
    from their split lists in ``split_dir`` (default: ``root``), images under ``root``, decoded
    at ``image_size`` (default 224) while training (``filelists.load_filelist``; what ``split``
    means for each is in the ``filelists`` docstring). Their class counts are the train list's:
    ``imbalance_ratio`` and ``profile`` are ignored, ``n_max`` and ``download`` refused.

    A seed outside [0, 2**32 - 1] and a size that cannot fit are refused before any work, a
    damaged file in one line naming it (see the module docstring).
    """
    check_choice("split", split, SPLITS)
    check_choice("name", name, tuple(DATASETS))
    check_scalar("download", download, kind=bool)
    check_seed(seed)
    return DATASETS[name].load(
        imbalance_ratio=imbalance_ratio, profile=profile, root=root, download=download,
        seed=seed, n_max=n_max, split=split, split_dir=split_dir, image_size=image_size,
    )  # fmt: skip


def recipe_for(name: str) -> Mapping[str, float]:
    """The training recipe of the data set ``name`` (``config.FALLBACK_RECIPE``-style values),
    or an empty mapping for a data set the registry does not know."""
    spec = DATASETS.get(name)
    return spec.recipe if spec is not None else {}
