"""Streaming image batches from files: a ``torch.utils.data.DataLoader`` for data sets too big
for device memory (ImageNet-LT, iNaturalist 2018, Places-LT; see :mod:`filelists`).

Worker processes read each file's bytes, decode them with ``torchvision.io.decode_jpeg`` and
crop: for training a random resized crop (scale 0.08-1, aspect ratio 3/4-4/3) plus a
horizontal flip with probability 1/2, resized to ``image_size``; for evaluation a resize of the
shorter side to ``image_size / 0.875`` (256 for 224) and a centre crop, in one step
(:func:`centre_box`). Batches leave the workers as uint8 (B, 3, S, S) in pinned memory, are
copied to the device without blocking, and are normalised and made channels_last there: four
times fewer bytes cross the bus than floats.

Every random number is drawn in the main process from a generator seeded by ``seed``: the
epoch's order (a permutation, or with ``sampling="balanced"`` draws with replacement as
``loader.DeviceLoader``'s balanced sampler) and each position's crop and flip, for the whole
global batch. The images and their augmentation are therefore the same for any number of
workers, and under data parallelism rank r of N takes ``global_batch[r::N]`` with its crops, so
the union of the ranks' step-i batches is the single-process step-i batch
(``loader.rank_share``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import check_choice, check_scalar
from .loader import (
    SAMPLINGS,
    balanced_weights,
    check_rank,
    epoch_order,
    num_batches,
    rank_share,
)

#: Random-resized-crop ranges (torchvision's defaults, the ImageNet recipe since Inception).
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
#: Evaluation resizes the shorter side to image_size / EVAL_CROP, then centre-crops.
EVAL_CROP = 0.875


def default_workers() -> int:
    """DataLoader workers per process when none are given: this process's share of the cores
    (divided among torchrun's ``LOCAL_WORLD_SIZE`` processes on the node), less one for the
    process itself, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_process = (cores or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(0, min(8, per_process - 1))


def crop_box(height: int, width: int, params: Sequence[float]) -> tuple[int, int, int, int]:
    """The random-resized-crop box (top, left, h, w) of a height x width image.

    ``params`` = (s, r, u, v, ...) uniform in [0, 1): the crop covers a fraction
    CROP_SCALE[0] + s * (CROP_SCALE[1] - CROP_SCALE[0]) of the area with aspect ratio (w/h)
    exp(log-uniform over CROP_RATIO at r), clipped to the image; u and v place it. One draw, no
    rejection loop (torchvision retries up to 10 times, then falls back to a centre crop), so
    the box is a pure function of the image size and the draw.
    """
    s, r, u, v = (float(p) for p in params[:4])
    area = height * width * (CROP_SCALE[0] + s * (CROP_SCALE[1] - CROP_SCALE[0]))
    lo, hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    aspect = math.exp(lo + r * (hi - lo))
    w = min(width, max(1, round(math.sqrt(area * aspect))))
    h = min(height, max(1, round(math.sqrt(area / aspect))))
    return int(u * (height - h + 1)), int(v * (width - w + 1)), h, w


def decode(path: str) -> torch.Tensor:
    """A JPEG file as uint8 (3, H, W) RGB (grey and CMYK converted): ``torchvision.io.decode_jpeg``
    of the file's bytes; a file that is not a JPEG despite its name (a few ImageNet ones are
    PNGs) goes through ``decode_image``."""
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file

    data = read_file(path)
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB)
    except RuntimeError:
        return decode_image(data, mode=ImageReadMode.RGB)


def centre_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """The evaluation box (top, left, h, w) for output size S: the centred square that
    ``Resize(round(S / EVAL_CROP))`` then ``CenterCrop(S)`` keep (256 then 224: 0.875 of the
    shorter side). Resized to S, it gives their result in one step, up to rounding."""
    side = max(1, round(min(height, width) * size / round(size / EVAL_CROP)))
    return (height - side) // 2, (width - side) // 2, side, side


def resized_crop(image: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """The ``box`` = (top, left, h, w) of a uint8 (C, H, W) image, resized to uint8 (C, S, S)
    with antialiased bilinear interpolation (as torchvision's ``resized_crop``; calling
    ``F.interpolate`` on a contiguous copy of the crop is 2-3x faster on a CPU)."""
    top, left, h, w = box
    crop = image[:, top : top + h, left : left + w].contiguous()
    out = F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True)
    return out[0]


class _Images(torch.utils.data.Dataset):
    """Decoded, cropped uint8 images: item (index, params) -> ((3, S, S) uint8, label).

    ``params`` (5,) are the crop draws of :func:`crop_box` plus a flip draw (flip when < 0.5),
    or None for the evaluation transform. Paths are kept as one NumPy bytes array so that
    forked workers do not copy them (no per-string reference counts to touch).
    """

    def __init__(
        self, root: str, files: Sequence[str], labels: torch.Tensor, image_size: int
    ) -> None:
        self.root = root
        self.files = np.array([f.encode("utf-8") for f in files])
        self.labels = labels.numpy()
        self.size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: tuple[int, list[float] | None]) -> tuple[torch.Tensor, int]:
        index, params = item
        image = decode(os.path.join(self.root, self.files[index].decode("utf-8")))
        height, width = image.shape[1:]
        if params is None:
            box = centre_box(height, width, self.size)
        else:
            box = crop_box(height, width, params)
        image = resized_crop(image, box, self.size)
        if params is not None and params[4] < 0.5:
            image = image.flip(-1)
        return image, int(self.labels[index])


class _RankBatches(torch.utils.data.Sampler):
    """Yields, per global batch, this rank's list of (index, crop params or None) items;
    an empty share (the last batch of an evaluation pass with few samples) is skipped."""

    def __init__(self, loader: StreamLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[list[tuple[int, list[float] | None]]]:
        ld = self.loader
        for i in range(len(ld)):
            lo, hi = i * ld.batch_size, (i + 1) * ld.batch_size
            idx = ld.order[lo:hi].tolist()
            crops = ld.crops[lo:hi].tolist() if ld.crops is not None else [None] * len(idx)
            share = rank_share(list(zip(idx, crops, strict=True)), ld.rank, ld.world_size)
            if share:
                yield share


class StreamLoader:
    """Mini-batches ``(x, y)`` on ``device`` decoded from image files by DataLoader workers.

    Args:
        files: (N,) image paths relative to ``root``; labels: (N,) integer classes.
        batch_size: the GLOBAL batch; each of ``world_size`` ranks gets its stride
            ``global_batch[rank::world_size]``.
        train: random resized crop + flip (else resize + centre crop).
        image_size: side S of the (3, S, S) images.
        sampling, q: ``"instance"`` (each sample once per epoch) or ``"balanced"`` (N draws with
            replacement, sample i with weight n_{y_i}^-q), as ``loader.DeviceLoader``.
        shuffle: a seeded permutation (instance sampling); else file order.
        drop_last: drop the last global batch when it is short.
        seed: seeds the order and the augmentation; the same seed replays the same epoch.
        device: where batches go; uint8 crosses, normalisation with ``mean`` / ``std`` (per
            channel, in [0, 1] units) and channels_last happen there.
        workers: DataLoader worker processes (0: decode in this process); default
            :func:`default_workers`.

    ``len(loader)`` is the number of global batches per epoch; iterating yields this rank's
    share of each as float32 (B_r, 3, S, S) and int64 (B_r,) on ``device``.
    """

    def __init__(
        self,
        files: Sequence[str],
        labels: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        image_size: int,
        root: str | os.PathLike,
        mean: Sequence[float],
        std: Sequence[float],
        sampling: str = "instance",
        q: float = 1.0,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        workers: int | None = None,
        channels_last: bool = True,
    ) -> None:
        labels = torch.as_tensor(labels).long().cpu()
        if labels.ndim != 1 or len(labels) != len(files) or not len(files):
            raise ValueError(
                f"need as many labels as files (>= 1), got {len(labels)} and {len(files)}"
            )
        self.batch_size = check_scalar("batch_size", batch_size, kind=int, low=1)
        self.rank, self.world_size = check_rank(rank, world_size)
        size = check_scalar("image_size", image_size, kind=int, low=8)
        check_choice("sampling", sampling, SAMPLINGS)
        q = check_scalar("q", q, low=0)
        workers = default_workers() if workers is None else workers
        workers = check_scalar("workers", workers, kind=int, low=0)
        if drop_last and len(files) < self.batch_size:
            raise ValueError(
                f"drop_last=True with batch_size {batch_size} > {len(files)} samples gives no batch"
            )
        self.n, self.drop_last, self.train = len(files), drop_last, bool(train)
        self.device = torch.device(device)
        self.channels_last = channels_last
        gen = torch.Generator().manual_seed(check_scalar("seed", seed, kind=int))
        weights = balanced_weights(labels, q) if sampling == "balanced" else None
        self.order = epoch_order(self.n, gen, shuffle=shuffle, weights=weights)
        self.crops = torch.rand(self.n, 5, generator=gen, dtype=torch.float64) if train else None
        shape = (1, 3, 1, 1)
        self.scale = 255.0 * torch.tensor(std, dtype=torch.float32).view(shape).to(self.device)
        self.shift = 255.0 * torch.tensor(mean, dtype=torch.float32).view(shape).to(self.device)
        self.dataloader = torch.utils.data.DataLoader(
            _Images(os.fspath(root), files, labels, size),
            batch_sampler=_RankBatches(self),
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
        )

    def __len__(self) -> int:
        return num_batches(self.n, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for xb, yb in self.dataloader:
            x = xb.to(self.device, non_blocking=True).float().sub_(self.shift).div_(self.scale)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, yb.to(self.device, non_blocking=True)


def eval_loader(
    dataset,
    part: str,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    rank: int = 0,
    world_size: int = 1,
    workers: int | None = None,
    channels_last: bool = True,
) -> StreamLoader:
    """An evaluation pass over a ``filelists.FileListDataset``'s ``part`` ("train": the train
    list, "test": the evaluation list its ``split`` chose), in list order, resize + centre crop,
    this rank's stride of every global batch (the ranks together cover every image once)."""
    check_choice("part", part, ("train", "test"))
    files, labels = (
        (dataset.train_files, dataset.train_y)
        if part == "train"
        else (dataset.test_files, dataset.test_y)
    )
    return StreamLoader(
        files, labels, batch_size, train=False, image_size=dataset.image_size,
        root=dataset.root, mean=dataset.mean, std=dataset.std, shuffle=False, rank=rank,
        world_size=world_size, device=device, workers=workers, channels_last=channels_last,
    )  # fmt: skip
