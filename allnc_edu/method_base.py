"""The ``Method`` interface every training recipe (CE, LA, LDAM-DRW, ETF+DR, AllNC) implements.

The trainer (``train.fit``) only talks to a recipe through it; ``methods.make_method`` builds one
by name.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def check_progress(progress: float) -> float:
    """Validate the fraction of training done, t/T in [0, 1]; returns it as a float."""
    value = float(progress)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    return value


class Method(nn.Module):
    """What every training recipe provides to the trainer.

    - ``forward(x) -> models.ModelOutput(features, logits)``: the logits used at inference.
    - ``loss(x, y, *, progress, epoch, balanced_batch) -> (loss, stats)``: the training loss of
      one step and its parts as detached 0-d tensors (no host sync: the trainer averages them);
      ``progress`` in [0, 1] is the fraction of training done (:func:`check_progress`),
      ``balanced_batch`` an extra class-balanced ``(x, y)`` batch for recipes with
      ``needs_balanced_batch``.
    - ``classifier() -> (weight (K, d), bias (K,) | None)``: the inference head, for NC metrics.
    - ``class_means() -> (K, d) | None``: the class-mean bank, if the recipe keeps one.
    - ``balanced_q``: exponent q of the balanced sampler (weights proportional to n_k^-q).
    - ``unused_parameters``: True when some parameters may get no gradient in a step (data
      parallel training then asks DDP to find them: ``find_unused_parameters``).
    - ``name``: the recipe's name in ``methods.METHODS``, and ``options``: every option it was
      built with, defaults included (both set by ``make_method``; recorded in a run's config).
    """

    name: str = ""
    options: dict[str, Any] = {}  # noqa: RUF012 (replaced per instance by make_method)
    needs_balanced_batch: bool = False
    balanced_q: float = 1.0
    unused_parameters: bool = False

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        progress: float,
        epoch: int,
        balanced_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def classifier(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def class_means(self) -> torch.Tensor | None:
        return None
