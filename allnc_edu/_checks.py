"""Input validation shared by the library: errors that say what was wrong and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray | Sequence


def as_float64(x: ArrayLike, name: str, ndim: int | None = None) -> torch.Tensor:
    """Return ``x`` as a detached float64 CPU tensor, checking its rank and finiteness."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    t = t.detach().to(device="cpu", dtype=torch.float64)
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return t


def check_num_classes(num_classes: int) -> int:
    """Validate a class count K >= 2."""
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return int(num_classes)


def as_counts(counts: ArrayLike, name: str = "counts") -> torch.Tensor:
    """Validate per-class sample counts: a 1-D sequence of K >= 2 positive integers."""
    t = torch.as_tensor(np.asarray(counts))
    if t.ndim != 1 or t.numel() < 2:
        raise ValueError(f"{name} must be a 1-D sequence of >= 2 class counts, got {counts!r}")
    if t.is_floating_point() and not torch.equal(t, t.round()):
        raise ValueError(f"{name} must be integers, got {counts!r}")
    t = t.to(torch.long)
    if (t < 1).any():
        raise ValueError(f"every class count must be >= 1, got {t.tolist()}")
    return t
