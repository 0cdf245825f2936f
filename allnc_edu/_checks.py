"""Input validation shared by the library: errors that say what was wrong and what is allowed."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

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
    return check_scalar("num_classes", num_classes, kind=int, low=2)


def as_counts(counts: ArrayLike, name: str = "counts") -> torch.Tensor:
    """Validate per-class sample counts: a 1-D sequence of K >= 2 positive integers."""
    t = torch.as_tensor(np.asarray(counts))
    if t.ndim != 1 or t.numel() < 2:
        raise ValueError(f"{name} must be a 1-D sequence of >= 2 class counts, got {counts!r}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must be integers, got {counts!r}")
    if t.is_floating_point() and not (torch.isfinite(t).all() and torch.equal(t, t.round())):
        raise ValueError(f"{name} must be integers, got {counts!r}")
    t = t.to(torch.long)
    if (t < 1).any():
        raise ValueError(f"every class count must be >= 1, got {t.tolist()}")
    return t


#: The largest seed: NumPy's generators and the data subsets take seeds in [0, 2**32 - 1].
SEED_MAX = 2**32 - 1


def check_seed(seed: object, name: str = "seed") -> int:
    """A seed: an integer in [0, ``SEED_MAX``] (NumPy's range), else a one-line error."""
    return check_scalar(name, seed, kind=int, low=0, high=SEED_MAX)


_KIND_WORDS = {float: "a float", int: "an integer", bool: "a bool (True or False)"}


def check_choice(name: str, value: object, choices: Iterable) -> object:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them.

    A bool never matches a number (``True`` is not accepted for a choice of ``1``).
    """
    allowed = tuple(choices)
    if not any(isinstance(value, bool) == isinstance(c, bool) and value == c for c in allowed):
        listed = ", ".join(repr(c) for c in allowed)
        raise ValueError(f"{name} must be one of {listed}, got {_show(value)}")
    return value


def check_scalar(
    name: str,
    value: object,
    *,
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    include_low: bool = True,
    include_high: bool = True,
    finite: bool = True,
) -> float | int | bool:
    """Validate one number (or bool) and return it as ``kind``; errors name ``name`` and the value.

    ``kind=bool`` accepts only True / False (NumPy bools too). ``kind=int`` accepts integers and
    integral floats such as ``1e3`` (returned as int), never bools. ``kind=float`` accepts any
    real number but a bool; a one-element tensor counts as its number. NaN is always refused,
    +-inf unless ``finite=False``. ``low`` / ``high`` bound the value, closed unless
    ``include_low`` / ``include_high`` is False.

    Raises:
        TypeError: the value is not of the kind (a string, None, a bool for a number, ...).
        ValueError: the value is of the kind but not integral, not finite or out of bounds, e.g.
            ``lambda_p must be a finite float >= 0, got inf``.
    """
    if kind not in _KIND_WORDS:
        raise ValueError(f"kind must be float, int or bool, got {kind!r}")
    if kind is bool:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        raise TypeError(f"{name} must be {_KIND_WORDS[bool]}, got {_show(value)}")
    what = _KIND_WORDS[kind]
    if kind is float and finite:
        what = "a finite float"
    what += _bounds(low, high, include_low, include_high)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {_show(value)}")
    number = float(value)
    if math.isnan(number) or (finite and math.isinf(number)):
        raise ValueError(f"{name} must be {what}, got {_show(value)}")
    if kind is int and not number.is_integer():  # also refuses +-inf
        raise ValueError(f"{name} must be {what}, got {_show(value)}")
    out = int(value) if kind is int else number
    too_low = low is not None and (out < low if include_low else out <= low)
    too_high = high is not None and (out > high if include_high else out >= high)
    if too_low or too_high:
        raise ValueError(f"{name} must be {what}, got {_show(value)}")
    return out


def _bounds(low: float | None, high: float | None, include_low: bool, include_high: bool) -> str:
    if low is not None and high is not None:
        return f" in {'[' if include_low else '('}{low}, {high}{']' if include_high else ')'}"
    if low is not None:
        return f" {'>=' if include_low else '>'} {low}"
    if high is not None:
        return f" {'<=' if include_high else '<'} {high}"
    return ""


def _show(value: object) -> str:
    """repr of a value, with NumPy scalars shown as the plain Python number they hold."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)
