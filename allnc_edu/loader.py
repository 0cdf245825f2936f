"""Batches from a training set that lives on the device as one tensor.

No worker processes, no PIL, no per-image Python: each batch is one index gather, and the CIFAR
augmentation (random crop with zero padding plus horizontal flip) runs on whole batches on the
same device. Random numbers come from a seeded ``torch.Generator`` on that device.

Data parallel training shares one global order between ranks: every rank draws the same epoch
order (:func:`epoch_order`, from the same seed) and the same augmentation for the whole global
batch, then keeps its stride of it (:func:`rank_share`: rank r of N takes ``batch[r::N]``). The
ranks' shares of a step are exactly the single-process batch, so a sample is seen once per epoch
across ranks and the steps per epoch do not depend on N. :func:`epoch_seed`,
:func:`balanced_weights`, :func:`num_batches` and :func:`shard_drop_last` are the pieces a
streaming loader (``stream.StreamLoader``) reuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from ._checks import check_scalar

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
    dy, dx, flip = crop_flip_params(x.shape[0], int(padding), generator, x.device)
    return crop_flip(x, dy, dx, flip, int(padding))


def crop_flip_params(
    b: int, padding: int, generator: torch.Generator | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random draws of :func:`random_crop_flip` for a batch of ``b``: (b,) offsets dy, dx
    in [0, 2 * padding] and (b,) flips, drawn in that order from ``generator``."""
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=device)
    flip = torch.rand(b, generator=generator, device=device) < 0.5
    return dy, dx, flip


def shift(x: torch.Tensor, offsets: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Crop every signal of a batch from its zero-padded copy: the 1-D analogue of
    :func:`crop_flip` without the flip (a mirrored MNIST-1D digit is another pattern).

    Args:
        x: (B, C, L) signals.
        offsets: (B,) integers in [0, 2 * padding], each crop's start in the padded signal;
            ``padding`` is the unshifted signal. Out-of-range offsets fail in ``gather``.
        padding: zeros added at both ends before cropping.

    Returns:
        (B, C, L) tensor: sample b is x[b] moved by padding - offsets[b] positions, zero-filled.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be a (B, C, L) batch, got shape {tuple(x.shape)}")
    b, c, length = x.shape
    if offsets.shape != (b,):
        raise ValueError(f"offsets must have shape ({b},) for a batch of {b}")
    xp = F.pad(x, (padding, padding)) if padding else x
    cols = offsets.view(b, 1, 1) + torch.arange(length, device=x.device)
    return xp.gather(2, cols.expand(b, c, length))


def shift_params(
    b: int, padding: int, generator: torch.Generator | None, device: torch.device
) -> tuple[torch.Tensor]:
    """The random draws of the "shift" augmentation for a batch of ``b``: (b,) offsets in
    [0, 2 * padding]."""
    return (torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=device),)


#: The built-in augmentations by name: (random draws for a global batch, apply to a batch).
_AUGMENTATIONS = {"crop_flip": (crop_flip_params, crop_flip), "shift": (shift_params, shift)}


def epoch_seed(seed: int, epoch: int, *, balanced: bool = False) -> int:
    """The seed of epoch ``epoch``'s loader in a run seeded ``seed`` (the class-balanced loader
    of GBBN gets its own): every epoch replays from (seed, epoch) alone, so resume is exact."""
    return seed * 100_003 + (50_000 if balanced else 0) + epoch


def balanced_weights(y: torch.Tensor, q: float) -> torch.Tensor:
    """(N,) float32 sampling weights n_{y_i}^-q of the balanced sampler, for labels y (N,)."""
    y_cpu = y.detach().cpu().long()
    return torch.bincount(y_cpu).double()[y_cpu].pow(-float(q)).float()


def epoch_order(
    n: int,
    generator: torch.Generator,
    *,
    shuffle: bool = True,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The (n,) global sample order of one epoch, on the generator's device (advances it).

    ``weights`` (n,) (:func:`balanced_weights`) draws n samples with replacement (the balanced
    sampler); else a random permutation (``shuffle``) or the data order. Every rank calls this
    with an identically seeded generator and gets the same order.
    """
    device = generator.device
    if weights is not None:
        return torch.multinomial(weights.to(device), n, replacement=True, generator=generator)
    if shuffle:
        return torch.randperm(n, generator=generator, device=device)
    return torch.arange(n, device=device)


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Global batches per epoch of n samples."""
    return n // batch_size if drop_last else -(-n // batch_size)


def shard_drop_last(n: int, batch_size: int, world_size: int = 1) -> bool:
    """Whether to drop the last global batch: when it would leave some rank fewer than 2
    samples (BatchNorm needs 2). With one process: when it holds a single sample."""
    last = n % batch_size
    return 0 < last < 2 * world_size


def check_rank(rank: int, world_size: int) -> tuple[int, int]:
    """Validate a (rank, world_size) pair: world_size >= 1 and 0 <= rank < world_size."""
    world_size = check_scalar("world_size", world_size, kind=int, low=1)
    rank = check_scalar("rank", rank, kind=int, low=0, high=world_size - 1)
    return rank, world_size


def rank_share(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s stride of a global batch (or of anything indexed like it): ``batch[rank::
    world_size]``. Over the ranks the shares partition the batch; their sizes differ by <= 1."""
    return batch[rank::world_size]


class DeviceLoader:
    """Mini-batches ``(xb, yb)`` of a tensor data set held on one device.

    Args:
        x: (N, ...) inputs; y: (N,) integer labels. Both are moved to ``device`` once (default:
            the device ``x`` is on).
        batch_size: samples per batch.
        shuffle: a fresh seeded permutation each epoch (instance sampling); else data order.
        drop_last: drop the final short batch.
        augment: None, ``"crop_flip"`` (images: :func:`random_crop_flip`, padding 4),
            ``"shift"`` (signals: :func:`shift`, padding 4), both seeded by this loader, or any
            callable mapping a batch to a batch.
        sampling: ``"instance"`` (every sample once per epoch) or ``"balanced"`` (each epoch
            draws the same number of samples with replacement, sample i with weight
            n_{y_i}^-q, so class k is drawn with probability proportional to n_k^(1-q):
            q = 1 class-balanced, q = 0 instance-balanced, q = 2 BBN's reversed sampler).
        q: exponent of the balanced sampler.
        seed: seed of this loader's generator; the same seed replays the same epochs.
        rank, world_size: this process's share of every global batch of ``batch_size``
            (:func:`rank_share`); every rank must use the same seed. The augmentation's random
            draws are made for the global batch and then shared, so the ranks' batches of a
            step together are the single-process batch (a callable ``augment`` is applied to
            the rank's share only). ``world_size=1`` is the single-process loader.

    ``len(loader)`` is the number of global batches per epoch, the same for both samplings.
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
        rank: int = 0,
        world_size: int = 1,
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
        if augment is not None and augment not in _AUGMENTATIONS and not callable(augment):
            raise ValueError(
                f"augment must be None, 'crop_flip', 'shift' or a callable, got {augment!r}"
            )
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
        self.rank, self.world_size = check_rank(rank, world_size)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.sample_weights = balanced_weights(y, self.q).to(self.device)

    def __len__(self) -> int:
        return num_batches(self.x.shape[0], self.batch_size, self.drop_last)

    def epoch_indices(self) -> torch.Tensor:
        """The (N,) global sample order of the next epoch, on the device (advances the
        generator)."""
        weights = self.sample_weights if self.sampling == "balanced" else None
        return epoch_order(self.x.shape[0], self.generator, shuffle=self.shuffle, weights=weights)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.epoch_indices()
        r, n = self.rank, self.world_size
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            if isinstance(self.augment, str):
                draw, apply = _AUGMENTATIONS[self.augment]
                params = draw(len(idx), 4, self.generator, self.device)
                idx = rank_share(idx, r, n)
                shares = (rank_share(t, r, n) for t in params)
                yield apply(self.x[idx], *shares, 4), self.y[idx]
                continue
            idx = rank_share(idx, r, n)
            xb = self.x[idx]
            if self.augment is not None:
                xb = self.augment(xb)
            yield xb, self.y[idx]
