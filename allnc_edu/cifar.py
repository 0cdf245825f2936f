"""CIFAR-10/100-LT from the original archives or an image-folder copy, as long-tailed data.

Files are untrusted input: the archives are unpickled admitting NumPy arrays and plain values
only (a crafted one is refused, never run); a damaged archive, image folder or image is refused
in one line naming the file; ``n_max`` beyond the images a class has (``CIFAR_PER_CLASS``) is
refused before reading. Nothing downloads unless asked.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from ._checks import check_choice, check_scalar, check_seed
from .fmt import error_line
from .longtail import SPLITS, LongTailDataset, hold_out, long_tail_counts, long_tail_subset

try:  # the modules whose functions rebuild pickled NumPy arrays (NumPy 2; NumPy 1 below)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # NumPy 1
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

#: Training images per class in the CIFAR archives: the largest ``n_max`` there is.
CIFAR_PER_CLASS = {10: 5000, 100: 500}
#: Validation images held out of each CIFAR class with ``split="validation"`` (a tenth).
CIFAR_VALIDATION = {10: 500, 100: 50}
#: Side of a CIFAR image; image-folder copies must hold images of this size.
CIFAR_SIDE = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
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
        raise ValueError(f"{path}: truncated or not a CIFAR batch ({error_line(err)})") from None


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
        raise ValueError(f"{path}: cannot be decoded as an image ({error_line(err)})") from None
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
            f"could not download CIFAR-{num_classes} into {root}: {error_line(err)}"
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
