"""A tiny ImageNet-LT-format tree written by the tests themselves (no download).

Three classes with 101, 30 and 5 training lines (one of each shot group: many > 100, medium
20-100, few < 20), drawn from a few small solid-colour JPEGs per class (a list may name a file
more than once; counts come from the lines), plus val and test lists of 2 and 3 images per class.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import encode_jpeg, write_file

CLASSES = ("n000", "n001", "n002")
TRAIN_COUNTS = (101, 30, 5)
FILES_PER_CLASS = 3
#: Solid colours of class k's images (RGB, 0-255); file j adds 20 * j to every channel.
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))


def image_path(k: int, j: int) -> str:
    return f"train/{CLASSES[k]}/{CLASSES[k]}_{j}.JPEG"


def write_imagenet_lt(root: Path, *, sizes: tuple[int, int] = (40, 48)) -> dict[str, list]:
    """Write the images under ``root`` and ImageNet_LT_{train,val,test}.txt into ``root``.

    Returns {"train": [(path, label), ...], "val": [...], "test": [...]} as written.
    """
    h, w = sizes
    for k in range(len(CLASSES)):
        (root / "train" / CLASSES[k]).mkdir(parents=True, exist_ok=True)
        for j in range(FILES_PER_CLASS):
            colour = torch.tensor(COLOURS[k], dtype=torch.int32) + 20 * j
            image = colour.clamp(0, 255).to(torch.uint8).view(3, 1, 1).expand(3, h, w + 8 * j)
            write_file(str(root / image_path(k, j)), encode_jpeg(image.contiguous(), quality=95))
    lists = {
        "train": [(image_path(k, i % FILES_PER_CLASS), k)
                  for k, n in enumerate(TRAIN_COUNTS) for i in range(n)],
        "val": [(image_path(k, i), k) for k in range(len(CLASSES)) for i in range(2)],
        "test": [(image_path(k, i), k) for k in range(len(CLASSES)) for i in range(3)],
    }  # fmt: skip
    for part, lines in lists.items():
        text = "".join(f"{path} {label}\n" for path, label in lines)
        (root / f"ImageNet_LT_{part}.txt").write_text(text)
    return lists
