"""ImageNet-LT, iNaturalist 2018 and Places-LT from the long-tail literature's split files.

Since OLTR (Liu et al. 2019) these data sets are defined by text files of ``relative/path.jpg
label`` lines, one image per line, paths relative to the image folder (``data_root``):

==============  ==========================================================================
imagenet-lt     ``ImageNet_LT_train.txt``, ``ImageNet_LT_val.txt``, ``ImageNet_LT_test.txt``
inat2018        ``iNaturalist18_train.txt``, ``iNaturalist18_val.txt``
places-lt       ``Places_LT_train.txt``, ``Places_LT_val.txt``, ``Places_LT_test.txt``
==============  ==========================================================================

Class counts come from the train list (shot groups as in ``groups.shot_groups``: many > 100,
medium 20-100, few < 20). ``split`` picks the evaluation list: ``"test"`` the test list and
``"validation"`` the val list for ImageNet-LT and Places-LT (tune on val, report on test). The
iNaturalist 2018 literature has only train and val lists and reports on val, so there
``"test"`` is the val list and ``"validation"`` is refused: it has no list of its own, and
holding images out of the train list would change its class counts (the rarest classes have 2).
Nothing is downloaded, and images are not read here: :mod:`stream` decodes them while training.
A list is untrusted input: a line that is malformed, has a label out of range or a path that
could leave the image folder is refused in one line naming the file and the line number.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import torch

from ._checks import check_choice, check_scalar

#: Split-list file names per data set: (train, val, test); iNaturalist 2018 has no test list.
SPLIT_FILES: dict[str, tuple[str, str, str | None]] = {
    "imagenet-lt": ("ImageNet_LT_train.txt", "ImageNet_LT_val.txt", "ImageNet_LT_test.txt"),
    "inat2018": ("iNaturalist18_train.txt", "iNaturalist18_val.txt", None),
    "places-lt": ("Places_LT_train.txt", "Places_LT_val.txt", "Places_LT_test.txt"),
}
FILELIST_DATASETS = tuple(SPLIT_FILES)
TITLES = {"imagenet-lt": "ImageNet-LT", "inat2018": "iNaturalist 2018", "places-lt": "Places-LT"}
#: Classes of each data set: train-list labels must lie in [0, NUM_CLASSES[name]).
NUM_CLASSES = {"imagenet-lt": 1000, "inat2018": 8142, "places-lt": 365}
#: Per-channel ImageNet statistics (torchvision's): ImageNet-LT and Places-LT are normalised
#: with them.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
#: (mean, std) per data set, as Kang et al.'s code (facebookresearch/classifier-balancing,
#: data/dataloader.py) normalises them: iNaturalist 2018 with its own statistics.
STATISTICS = {
    "imagenet-lt": (IMAGENET_MEAN, IMAGENET_STD),
    "inat2018": ([0.466, 0.471, 0.380], [0.195, 0.194, 0.192]),
    "places-lt": (IMAGENET_MEAN, IMAGENET_STD),
}


@dataclass
class FileListDataset:
    """A long-tailed data set of image files: paths and labels, not pixels.

    ``train_files`` (N,) paths relative to ``root`` with labels ``train_y`` (N,) int64;
    ``test_files`` / ``test_y`` the evaluation list chosen by ``split`` (see the module
    docstring). ``counts[k]`` is the number of class-k lines of the train list; ``class_names``
    the folder holding each class's first training image (e.g. a WordNet id). Images are
    decoded to ``input_shape`` = (3, image_size, image_size) and normalised with ``mean`` /
    ``std`` (``STATISTICS``) by ``stream.StreamLoader``.
    """

    name: str
    root: str
    split_dir: str
    train_files: list[str] = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    test_files: list[str] = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    counts: list[int]
    num_classes: int
    class_names: list[str] = field(repr=False)
    input_shape: tuple[int, int, int]
    image_size: int
    imbalance_ratio: float
    split: str = "test"
    profile: str = "natural"
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    seed: int | None = None


def split_paths(name: str, split_dir: str | os.PathLike, split: str = "test") -> tuple[Path, Path]:
    """The (train list, evaluation list) files of ``name`` for ``split`` under ``split_dir``.

    Raises a one-line ValueError naming every missing file and the folder it looked in.
    """
    check_choice("dataset", name, FILELIST_DATASETS)
    check_choice("split", split, ("test", "validation"))
    train, val, test = SPLIT_FILES[name]
    if split == "validation" and test is None:
        raise ValueError(
            f"{TITLES[name]} has no validation list: its val list ({val}) is the test set of "
            "the literature; use split='test' (tune on ImageNet-LT or Places-LT validation)"
        )
    evaluation = test if split == "test" and test is not None else val
    folder = Path(split_dir).expanduser()
    missing = [f for f in dict.fromkeys((train, evaluation)) if not (folder / f).is_file()]
    if missing:
        raise ValueError(
            f"{TITLES[name]} split list(s) missing: {', '.join(missing)} (looked in "
            f"{folder.resolve()}); pass --split-dir, the folder holding them"
        )
    return folder / train, folder / evaluation


def _image_path(text: str) -> str:
    """A listed path made relative to the image folder (leading ``/`` dropped); a ValueError
    when it is still absolute (a drive, ``\\``), has a ``..`` part or names no file."""
    path = text.lstrip("/")
    windows = PureWindowsPath(path)  # splits at "/" and "\\" and knows drives ("C:")
    if windows.anchor:
        problem = "is absolute; list paths relative to the image folder"
    elif ".." in windows.parts:
        problem = "has a '..' part: it could leave the image folder"
    elif not windows.parts:
        problem = "names no file"
    else:
        return path
    raise ValueError(f"path {text[:80]!r} {problem}")


def _parse_line(text: str, num_classes: int | None) -> tuple[str, int]:
    """One ``relative/path.jpg label`` line as (path, label); a ValueError says what is wrong."""
    fields = text.rsplit(maxsplit=1)
    if len(fields) != 2:
        raise ValueError(f"expected 'relative/path.jpg label' (2 fields), got {text[:80]!r}")
    path = _image_path(fields[0])
    if not re.fullmatch(r"[0-9]+", fields[1]):
        raise ValueError(f"label {fields[1][:20]!r} is not a class index (an integer >= 0)")
    label = int(fields[1])
    if num_classes is not None and label >= num_classes:
        raise ValueError(f"label {label} out of range [0, {num_classes})")
    return path, label


def read_split_file(
    path: str | os.PathLike, num_classes: int | None = None
) -> tuple[list[str], torch.Tensor]:
    """Parse ``relative/path.jpg label`` lines: (paths, (N,) int64 labels), blank lines skipped.

    The label is the last whitespace-separated field (paths may hold spaces); a leading ``/``
    is dropped so every path stays relative to the image folder. A line that is not UTF-8 or
    malformed, a path that is absolute after that (a drive, ``\\``) or has a ``..`` part, a
    label that is not an integer >= 0 or (when given) not below ``num_classes``: each raises a
    one-line ValueError naming the file and the line number.
    """
    files, labels = [], []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8").strip()
                if text:
                    file, label = _parse_line(text, num_classes)
                    files.append(file)
                    labels.append(label)
            except ValueError as err:  # UnicodeDecodeError included
                raise ValueError(f"{path}, line {number}: {err}") from None
    if not files:
        raise ValueError(f"{path} lists no images")
    return files, torch.tensor(labels, dtype=torch.long)


def load_filelist(
    name: str,
    root: str | os.PathLike | None,
    split_dir: str | os.PathLike | None = None,
    *,
    split: str = "test",
    image_size: int = 224,
) -> FileListDataset:
    """Read ``name``'s split lists (from ``split_dir``, default ``root``) into a FileListDataset.

    ``root`` is the image folder the listed paths are relative to; its first training image
    must exist (a cheap check that ``root`` is the right folder). Train labels must lie in
    [0, ``NUM_CLASSES[name]``) and every class 0..K-1 appear; evaluation labels must lie in
    [0, K). Errors are one-line ValueErrors (see :func:`read_split_file`).
    """
    check_choice("dataset", name, FILELIST_DATASETS)
    image_size = check_scalar("image_size", image_size, kind=int, low=8)
    if root is None:
        raise ValueError(f"{TITLES[name]} needs the image folder: pass root=DIR (--data-root)")
    root_path = Path(root).expanduser()
    split_folder = root_path if split_dir is None else Path(split_dir).expanduser()
    train_path, eval_path = split_paths(name, split_folder, split)
    train_files, train_y = read_split_file(train_path, NUM_CLASSES[name])
    counts = torch.bincount(train_y)
    empty = torch.nonzero(counts == 0).flatten().tolist()
    if len(counts) < 2:
        raise ValueError(f"{train_path.name} lists a single class; a classifier needs 2 or more")
    if empty:
        raise ValueError(
            f"{train_path.name}: every class 0..{len(counts) - 1} needs training images; "
            f"classes {empty[:5]} have none"
        )
    k = len(counts)
    test_files, test_y = read_split_file(eval_path, k)
    if not (root_path / train_files[0]).is_file():
        raise ValueError(
            f"{TITLES[name]} image {train_files[0]!r} (the first of {train_path.name}) not "
            f"found under {root_path.resolve()}; pass --data-root, the folder the lists refer to"
        )
    first = {}
    for path, label in zip(train_files, train_y.tolist(), strict=True):
        first.setdefault(label, path)
    return FileListDataset(
        name=name,
        root=str(root_path.resolve()),
        split_dir=str(split_folder.resolve()),
        train_files=train_files,
        train_y=train_y,
        test_files=test_files,
        test_y=test_y,
        counts=counts.tolist(),
        num_classes=k,
        class_names=[PurePosixPath(first[c]).parent.name or str(c) for c in range(k)],
        input_shape=(3, image_size, image_size),
        image_size=image_size,
        imbalance_ratio=int(counts.max()) / int(counts.min()),
        split=split,
        mean=list(STATISTICS[name][0]),
        std=list(STATISTICS[name][1]),
    )
