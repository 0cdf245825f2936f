"""What a correct answer is, and the usual mistakes: notebooks 04-05 (the remedies, the
benchmark).

As in ``diagnose_collapse``: ``X_given()`` builds an exercise's inputs, ``X_reference()``
computes the answer with the library (``losses``, ``allnc``, ``groups``, ``data``), and
``judge_X(answer)`` returns praise or raises ``feedback.Mistake`` naming the mistake: a loss off
by a constant or with the prior subtracted, a detached gradient, a schedule reversed or linear,
a shot-group edge on the wrong side, a wrong shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .allnc import gbbn_alpha
from .data import long_tail_counts
from .feedback import (
    Mistake,
    NotAttempted,
    as_array,
    as_number,
    as_tensors,
    close,
    describe,
    match_mistake,
)
from .geometry import etf_gram
from .groups import mean_over, minority_classes, shot_groups
from .losses import logit_adjusted_ce, p2p_loss

# ------------------------------------------------------------------------------ notebook 04


def logit_adjustment_given() -> dict:
    rng = np.random.default_rng(4)
    return {
        **as_tensors(logits=rng.normal(scale=2.0, size=(8, 5)), targets=[0, 1, 2, 3, 4, 4, 3, 0]),
        "counts": [500, 200, 50, 20, 5],
    }


def logit_adjustment_reference() -> float:
    given = logit_adjustment_given()
    return float(logit_adjusted_ce(given["logits"], given["targets"], given["counts"]))


def judge_logit_adjustment(answer: Any) -> str:
    value = as_number(answer, "the mean loss over the batch, a single number")
    given = logit_adjustment_given()
    logits, targets, counts = given["logits"], given["targets"], given["counts"]
    n = torch.tensor(counts, dtype=torch.float64)
    log_prior = (n / n.sum()).log()
    if close(value, logit_adjustment_reference()):
        return "CE(z + log pi, y); log n_k gives the same loss (a constant shift per row)."

    def ce(z: torch.Tensor, reduction: str = "mean") -> float:
        return float(F.cross_entropy(z, targets, reduction=reduction))

    match_mistake(
        np.asarray(value),
        [
            (ce(logits), "that is plain cross-entropy: add log pi_k to the logits first."),
            (
                ce(logits - log_prior),
                "you subtracted log pi; logit adjustment adds it in training.",
            ),
            (ce(logits + n / n.sum()), "you added pi_k itself; add its logarithm, log pi_k."),
            (ce(logits + n), "you added the counts n_k themselves; add log pi_k (or log n_k)."),
            (ce(logits + log_prior, "sum"), "a sum over the batch: take the mean (divide by 8)."),
        ],
    )
    raise Mistake(f"{value:.4f} is not CE(logits + log pi, targets), averaged over the batch.")


GBBN_STEPS = 20


def gbbn_reference() -> list[float]:
    return [gbbn_alpha(t / GBBN_STEPS, gamma=2.0) for t in range(GBBN_STEPS + 1)]


def judge_gbbn(answer: Any) -> str:
    alphas = as_array(answer, f"{GBBN_STEPS + 1} numbers, alpha(t) for t = 0, ..., {GBBN_STEPS}")
    if alphas.ndim != 1 or alphas.size != GBBN_STEPS + 1:
        raise Mistake(
            f"wrong shape {alphas.shape}: expected {GBBN_STEPS + 1} values, t = 0, 1, ..., T "
            "(both ends included)."
        )
    progress = np.arange(GBBN_STEPS + 1) / GBBN_STEPS
    reference = np.asarray(gbbn_reference())
    if close(alphas, reference):
        return "alpha falls from 1 (feature learning) to 0 (classifier learning) as a parabola."
    match_mistake(
        alphas,
        [
            (
                progress**2,
                "that is 1 - alpha, the re-balancing branch's weight: alpha = 1 - (t/T)^2.",
            ),
            (1 - progress, "linear: gamma = 2 is missing, alpha = 1 - (t/T)^2."),
            (1 - progress**0.5, "gamma = 0.5 (notebook 04's default); this asks BBN's gamma = 2."),
            (reference[::-1], "reversed: alpha starts at 1 (t = 0) and ends at 0 (t = T)."),
            ((1 - progress) ** 2, "(1 - t/T)^2 is not BBN's parabola: alpha = 1 - (t/T)^2."),
        ],
    )
    raise Mistake("these are not 1 - (t/T)^2 for t = 0, ..., T with T = 20.")


def p2p_given() -> dict:
    rng = np.random.default_rng(5)
    return as_tensors(means=rng.normal(size=(5, 6)) + 1.0, weight=rng.normal(size=(5, 6)))


def _p2p_variant(
    means: torch.Tensor,
    weight: torch.Tensor,
    *,
    centre: bool = True,
    unit_means: bool = True,
    unit_weight: bool = True,
    off_diagonal: float | None = None,
    scale: float | None = None,
    versus_means: bool = False,
) -> float:
    """P2P, (1/K^2) ||M~ W^^T - G*||_F^2, and the usual mistakes' versions of it."""
    k = means.shape[0]
    m = means - means.mean(dim=0) if centre else means
    m = F.normalize(m, dim=1) if unit_means else m
    w = F.normalize(weight, dim=1) if unit_weight else weight
    target = (
        etf_gram(k) if off_diagonal is None else torch.full((k, k), off_diagonal).fill_diagonal_(1)
    )
    gram = m @ (m if versus_means else w).T
    return float((gram - target).pow(2).sum() * (1 / k**2 if scale is None else scale))


def p2p_reference() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return p2p_loss


def judge_p2p(answer: Any) -> str:
    if not callable(answer):
        raise Mistake(
            f"expected a function p2p(means, weight) returning the loss, got {describe(answer)}."
        )
    given = p2p_given()
    means, weight = given["means"].requires_grad_(), given["weight"].requires_grad_()
    try:
        loss = answer(means, weight)
    except Exception as error:
        transposed = "shapes cannot be multiplied" in str(error)
        fix = "; W transposed? compare the means with W^T (m @ w.T)" if transposed else ""
        raise Mistake(f"your function raised {type(error).__name__} ({error}){fix}.") from None
    if loss is None or loss is Ellipsis:
        raise NotAttempted
    value = as_number(loss, "the loss, a single number")
    reference = p2p_loss(means, weight)  # float64 in, float64 out
    if close(value, reference.detach().item()):
        _check_p2p_gradient(loss, reference, means, weight)
        return (
            "value and gradient match losses.p2p_loss: means and classifiers pulled onto one ETF."
        )
    plain = {"means": means.detach(), "weight": weight.detach()}
    k = means.shape[0]
    match_mistake(
        np.asarray(value),
        [
            (_p2p_variant(**plain, centre=False), "uncentred means: subtract their mean first."),
            (
                _p2p_variant(**plain, unit_means=False),
                "unnormalised means: divide each by its norm.",
            ),
            (
                _p2p_variant(**plain, unit_weight=False),
                "unnormalised classifier rows: normalise W.",
            ),
            (
                _p2p_variant(**plain, scale=1.0),
                f"off by a constant factor K^2 = {k * k}: divide by it.",
            ),
            (
                _p2p_variant(**plain, scale=1 / k),
                f"off by a constant factor K = {k}: divide by K^2.",
            ),
            (_p2p_variant(**plain, off_diagonal=-1 / k), "ETF target with -1/K: use -1/(K-1)."),
            (
                _p2p_variant(**plain, versus_means=True),
                "M~ M~^T compares means with means; P2P uses M~ W^^T.",
            ),
        ],
    )
    raise Mistake(f"your loss is {value:.4f}, not (1/K^2) ||M~ W^^T - G*||^2 on these inputs.")


def _check_p2p_gradient(
    loss: Any, reference: torch.Tensor, means: torch.Tensor, weight: torch.Tensor
) -> None:
    """The value is right; raise the Mistake when the gradient does not follow it."""
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        raise Mistake("right value, but no gradient: use torch operations (no .item() or NumPy).")
    got = torch.autograd.grad(loss, (means, weight), allow_unused=True)
    want = torch.autograd.grad(reference, (means, weight))
    for name, mine, theirs in zip(("means", "weight"), got, want, strict=True):
        if mine is None or not close(mine.numpy(), theirs.numpy()):
            raise Mistake(f"right value, wrong gradient for the {name}: something was detached.")


# ------------------------------------------------------------------------------ notebook 05


def shots_given() -> dict:
    counts = [500, 240, 120, 100, 60, 20, 19, 8, 4, 2]
    accuracy = [0.95, 0.91, 0.83, 0.74, 0.66, 0.52, 0.41, 0.27, 0.12, 0.05]
    return {"counts": counts, "accuracy": accuracy}


def _groups_mean(accuracy: Sequence[float], counts: Sequence[int], many: int, few: int) -> list:
    """(many, medium, few) means with "many" at counts > ``many`` and "few" below ``few``."""
    members = (
        [k for k, n in enumerate(counts) if n > many],
        [k for k, n in enumerate(counts) if few <= n <= many],
        [k for k, n in enumerate(counts) if n < few],
    )
    return [mean_over(accuracy, classes) for classes in members]


def shots_reference() -> tuple[float, float, float]:
    given = shots_given()
    groups = shot_groups(given["counts"])
    return tuple(mean_over(given["accuracy"], groups[g]) for g in ("many", "medium", "few"))


def judge_shots(answer: Any) -> str:
    triple = as_array(answer, "three numbers: many-, medium- and few-shot accuracy")
    if triple.shape != (3,):
        raise Mistake(f"expected three numbers (many, medium, few), got shape {triple.shape}.")
    given = shots_given()
    accuracy, counts = given["accuracy"], given["counts"]
    reference = np.asarray(shots_reference())
    if close(triple, reference):
        return "many > 100, medium 20 to 100, few < 20 training images, each the mean over classes."
    minority = minority_classes(counts)
    weighted = [
        np.average([accuracy[k] for k in g], weights=[counts[k] for k in g])
        for g in shot_groups(counts).values()
    ]
    match_mistake(
        triple,
        [
            (reference * 100, "percentages: give fractions between 0 and 1."),
            (reference[::-1], "reversed: the order is (many, medium, few)."),
            (
                _groups_mean(accuracy, counts, 99, 20),
                "exactly 100 images is medium: many means > 100.",
            ),
            (
                _groups_mean(accuracy, counts, 100, 21),
                "exactly 20 images is medium: few means < 20.",
            ),
            (
                _groups_mean(accuracy, counts, 99, 21),
                "100 and 20 images are both medium (20 to 100).",
            ),
            (
                [*reference[:2], mean_over(accuracy, minority)],
                "the minority classes (the 5 smallest) are not the few-shot group (< 20 images).",
            ),
            (
                weighted,
                "weighted by training counts: a group's accuracy is the mean over its classes.",
            ),
        ],
    )
    wrong = ["many", "medium", "few"][int(np.abs(triple - reference).argmax())]
    raise Mistake(f"the {wrong}-shot number is off: recheck which classes fall in that group.")


CIFAR10_LT_IMAGES = sum(long_tail_counts(5000, 10, 100))  # 12406, exponential profile, IR 100


def _cifar_variants() -> list[tuple[float, str]]:
    k, n_max, ratio = 10, 5000, 100
    exact = [n_max * ratio ** (-i / (k - 1)) for i in range(k)]
    return [
        (sum(round(x) for x in exact), "rounded: the profile truncates each n_k with int()."),
        (sum(math.ceil(x) for x in exact), "rounded up: the profile truncates with int()."),
        (sum(exact), "not a whole number: truncate each class count with int()."),
        (sum(int(n_max * ratio ** (-i / k)) for i in range(k)), "exponent k/K: it is k/(K-1)."),
        (
            sum(long_tail_counts(n_max, k, ratio, profile="step")),
            "that is the step profile; CIFAR-10-LT's is exponential.",
        ),
        (10_000, "that is the (balanced) test set."),
        (50_000, "that is the full, balanced CIFAR-10 training set."),
        (sum(long_tail_counts(500, 100, ratio)), "that is CIFAR-100-LT (500 images at most)."),
    ]


def judge_cifar(answer: Any) -> str:
    value = as_number(answer, "a number of training images")
    if value == CIFAR10_LT_IMAGES:
        return "12406 images, from 5000 (airplane) down to 50 (truck)."
    for wrong, sentence in _cifar_variants():
        if abs(value - wrong) < 1e-6 * max(1.0, wrong):
            raise Mistake(sentence)
    raise Mistake(f"{value:g} is not sum_k int(5000 * 100^(-k/9)) over k = 0..9.")
