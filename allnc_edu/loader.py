"""Batches from a training set that lives on the device as one tensor.

No worker processes, no PIL, no per-image Python: each batch is one index gather, and the CIFAR
augmentation (random crop with zero padding plus horizontal flip) runs on whole batches on the
same device. Random numbers come from a seeded ``torch.Generator`` on that device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

SAMPLINGS = ("instance", "balanced")


def crop_flip(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, padding: int = 4
) -> torch.Tensor:
    """Crop every image of a batch from its zero-padded copy and optionally mirror it.

    Args:
        x: (B, C, H, W) images.
        dy, dx: (B,) integer offsets in [0, 2 * padding] of each crop's top-left corner in the
            padded image; ``dy = dx = padding`` is the uncropped image. Not range-checked here
            (that would synchronise a GPU every batch): out-of-range offsets fail in ``gather``.
        flip: (B,) booleans: mirror left-right.
        padding: zeros added on every side before cropping.

    Returns:
        (B, C, H, W) tensor of the same dtype, device and memory format (channels_last stays
        channels_last); one gather, no per-image loop.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if not dy.shape == dx.shape == flip.shape == (b,):
        raise ValueError(f"dy, dx and flip must have shape ({b},) for a batch of {b}")
    xp = F.pad(x, (padding, padding, padding, padding)) if padding else x
    cols_ar = torch.arange(w, device=x.device)
    rows = dy.view(b, 1) + torch.arange(h, device=x.device)
    cols = dx.view(b, 1) + torch.where(flip.view(b, 1), w - 1 - cols_ar, cols_ar)
    # One gather over the flattened padded planes: output pixel (i, j) reads (rows_i, cols_j).
    flat = rows.view(b, h, 1) * (w + 2 * padding) + cols.view(b, 1, w)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        # Gather whole pixels in (B, H, W, C) memory order and stay channels_last, copy-free.
        pixels = xp.permute(0, 2, 3, 1).reshape(b, -1, c)
        out = pixels.gather(1, flat.view(b, h * w, 1).expand(b, h * w, c))
        return out.view(b, h, w, c).permute(0, 3, 1, 2)
    out = xp.flatten(2).gather(2, flat.view(b, 1, h * w).expand(b, c, h * w))
    return out.view(b, c, h, w)


def random_crop_flip(
    x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The standard CIFAR augmentation on a whole (B, C, H, W) batch: a random crop of the
    zero-padded image (offsets uniform in [0, 2 * padding]) and a horizontal flip with
    probability 1/2. ``generator`` must live on ``x.device``; None uses the global RNG."""
    if int(padding) != padding or padding < 0:
        raise ValueError(f"padding must be an integer >= 0, got {padding!r}")
    b, dev = x.shape[0], x.device
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    flip = torch.rand(b, generator=generator, device=dev) < 0.5
    return crop_flip(x, dy, dx, flip, int(padding))


class DeviceLoader:
    """Mini-batches ``(xb, yb)`` of a tensor data set held on one device.

    Args:
        x: (N, ...) inputs; y: (N,) integer labels. Both are moved to ``device`` once (default:
            the device ``x`` is on).
        batch_size: samples per batch.
        shuffle: a fresh seeded permutation each epoch (instance sampling); else data order.
        drop_last: drop the final short batch.
        augment: None, ``"crop_flip"`` (:func:`random_crop_flip`, padding 4, seeded by this
            loader), or any callable mapping a batch to a batch.
        sampling: ``"instance"`` (every sample once per epoch) or ``"balanced"`` (each epoch
            draws the same number of samples with replacement, sample i with weight
            n_{y_i}^-q, so class k is drawn with probability proportional to n_k^(1-q):
            q = 1 class-balanced, q = 0 instance-balanced, q = 2 BBN's reversed sampler).
        q: exponent of the balanced sampler.
        seed: seed of this loader's generator; the same seed replays the same epochs.

    ``len(loader)`` is the number of batches per epoch, the same for both samplings.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        augment: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        sampling: str = "instance",
        q: float = 1.0,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        if x.shape[0] != y.shape[0] or y.ndim != 1:
            raise ValueError(
                f"x (N, ...) and y (N,) must match, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if y.is_floating_point() or y.is_complex():
            raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
        if y.numel() and int(y.min()) < 0:
            raise ValueError(f"class labels must be >= 0, got {int(y.min())}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if not q >= 0:
            raise ValueError(f"q must be >= 0, got {q!r}")
        if augment is not None and augment != "crop_flip" and not callable(augment):
            raise ValueError(f"augment must be None, 'crop_flip' or a callable, got {augment!r}")
        if drop_last and x.shape[0] < batch_size:
            raise ValueError(
                f"drop_last=True with batch_size {batch_size} > {x.shape[0]} samples gives no batch"
            )
        self.device = torch.device(device) if device is not None else x.device
        self.x = x.to(self.device)
        self.y = y.to(self.device, torch.long)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.augment = augment
        self.sampling = sampling
        self.q = float(q)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        y_cpu = y.detach().cpu().long()
        weights = torch.bincount(y_cpu).double()[y_cpu].pow(-self.q)
        self.sample_weights = weights.float().to(self.device)

    def __len__(self) -> int:
        n, b = self.x.shape[0], self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch_indices(self) -> torch.Tensor:
        """The (N,) sample indices of the next epoch, on the device (advances the generator)."""
        n = self.x.shape[0]
        if self.sampling == "balanced":
            return torch.multinomial(
                self.sample_weights, n, replacement=True, generator=self.generator
            )
        if self.shuffle:
            return torch.randperm(n, generator=self.generator, device=self.device)
        return torch.arange(n, device=self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.epoch_indices()
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            xb, yb = self.x[idx], self.y[idx]
            if self.augment == "crop_flip":
                xb = random_crop_flip(xb, 4, self.generator)
            elif self.augment is not None:
                xb = self.augment(xb)
            yield xb, yb
