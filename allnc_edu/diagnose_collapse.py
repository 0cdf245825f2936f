"""What a correct answer is, and the usual mistakes: notebooks 01-03 (geometry, metrics, the
explorer).

For each code exercise X (registered in ``exercises``): ``X_given()`` builds its inputs (seeded,
a fresh copy each call), ``X_reference()`` computes the answer with the library (``geometry``,
``metrics``, ``groups``), and ``judge_X(answer)`` returns a sentence of praise or raises
``feedback.Mistake`` naming the mistake the answer matches: unequal norms, a sample-weighted or
missing global mean, W transposed, degrees for radians, cosines of unnormalised rows, a wrong
shape. Each candidate mistake is computed on the same inputs, so a diagnosis is never a guess.

Explore exercises read a number off notebook 02's minority-collapse explorer; their reference
ratios were found by bisection with ``ufm.simulate`` at the explorer's settings (the tests
recheck them), and a wrong answer is answered with the MC_W the explorer shows there.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from . import ufm
from .feedback import (
    ATOL,
    RTOL,
    Mistake,
    as_array,
    as_number,
    as_tensors,
    close,
    match_mistake,
    number_judge,
)
from .geometry import cosine_matrix, simplex_etf
from .groups import minority_classes
from .metrics import metrics_from_class_stats, nc_metrics

# The explorer of notebook 02 (K = 4, two minority classes, 10 000 samples per majority class,
# ufm.DEFAULT_STEPS, seed 0): imbalance ratios found by bisection with ufm.simulate, rechecked
# by tests/test_exercises.py. (weight decay, event) -> ratio.
EXPLORER_N_MAX = 10_000
EXPLORER_RATIOS = {
    (5e-3, "zero"): 43.4,  # MC_W crosses 0
    (1e-2, "zero"): 27.0,
    (5e-3, "complete"): 198.0,  # MC_W reaches 1 (>= 0.999): complete minority collapse
    (1e-2, "complete"): 99.5,
}
EXPLORE_TOLERANCE = 0.12  # relative: about two steps of the explorer's ratio slider


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _mean_pair_cosine(rows: np.ndarray, classes: Sequence[int], *, diagonal: bool = False) -> float:
    """Mean cosine over the pairs of ``classes`` (with ``diagonal``: over the whole block)."""
    block = (_unit_rows(rows) @ _unit_rows(rows).T)[np.ix_(classes, classes)]
    if diagonal:
        return float(block.mean())
    return float(block[np.triu_indices(len(classes), 1)].mean())


# ------------------------------------------------------------------------------ notebook 01


def etf_reference() -> torch.Tensor:
    """A K = 4 simplex ETF in 3 dimensions, (4, 3)."""
    return simplex_etf(4, 3)


def judge_etf(answer: Any) -> str:
    etf = as_array(answer, "a (4, d) matrix, one row per class")
    if etf.ndim != 2 or 4 not in etf.shape:
        raise Mistake(f"wrong shape: expected a (4, d) matrix, one row per class, got {etf.shape}.")
    if etf.shape[0] != 4:
        raise Mistake(
            f"transposed: your matrix is {etf.shape}, one column per class; transpose it."
        )
    norms = np.linalg.norm(etf, axis=1)
    if etf.shape[1] < 3 or (norms < 1e-12).any():
        raise Mistake("four vectors at cosine -1/3 need three dimensions and no zero row.")
    off = (_unit_rows(etf) @ _unit_rows(etf).T)[~np.eye(4, dtype=bool)]
    if np.allclose(off, -1 / 3, atol=1e-5):
        if not np.allclose(norms, norms.mean(), rtol=1e-5):
            raise Mistake(
                f"unequal norms: the angles are right (cosine -1/3) but the row norms range from "
                f"{norms.min():.3f} to {norms.max():.3f}; every vector of this ETF has length 1."
            )
        if not np.allclose(norms, 1.0, rtol=1e-5):
            raise Mistake(
                f"the directions are right and the norms equal, but each row has norm "
                f"{norms[0]:.4f}, not 1: for I - J/K, multiply by sqrt(K/(K-1))."
            )
        return "four unit vectors with pairwise cosine -1/3, 109.47° apart: a tetrahedron."
    if np.ptp(off) < 1e-5:
        cosine = off.mean()
        if abs(cosine) < 1e-5:
            raise Mistake("orthogonal rows (cosine 0) are not a simplex: subtract the mean row.")
        if abs(cosine + 0.25) < 1e-5:
            raise Mistake("cosine -1/4 is -1/K: the simplex ETF's cosine is -1/(K-1) = -1/3.")
        raise Mistake(f"equiangular, but at cosine {cosine:.4f} instead of -1/(K-1) = -1/3.")
    raise Mistake(
        f"not equiangular: the pairwise cosines range from {off.min():.3f} to {off.max():.3f}, "
        "where an ETF has -1/3 for every pair."
    )


ETF_ANGLE = math.degrees(math.acos(-1 / 3))
judge_etf_angle = number_judge(
    ETF_ANGLE - 0.01,
    ETF_ANGLE + 0.01,
    praise="arccos(-1/3) = 109.47°: the angle between the centre and two corners of a "
    "regular tetrahedron.",
    mistakes=(
        (math.acos(-1 / 3), 0.01, "that is the angle in radians (1.911): convert to degrees."),
        (-1 / 3, 0.005, "that is the cosine, -1/3: take its arccos and convert to degrees."),
        (math.degrees(math.acos(-1 / 4)), 0.05, "arccos(-1/4) uses -1/K; the cosine is -1/(K-1)."),
        (120.0, 0.05, "120° is the K = 3 triangle; a K = 4 ETF has cosine -1/3."),
        (math.degrees(math.acos(1 / 3)), 0.05, "wrong sign: the ETF cosine is -1/3, not +1/3."),
        (90.0, 0.05, "90° is orthogonal; the ETF's vectors are further apart (cosine -1/3)."),
    ),
    expects="the angle in degrees, a number",
    otherwise=lambda value: (
        f"cos({value:g}°) = {math.cos(math.radians(value)):.3f}, while the "
        "ETF's cosine is -1/(K-1) = -1/3."
    ),
)


def cosines_given() -> dict:
    vectors = [[3.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-1.0, -1.0, 1.0], [-0.3, 0.4, -0.5]]
    return as_tensors(vectors=vectors)


def cosines_reference() -> torch.Tensor:
    return cosine_matrix(cosines_given()["vectors"])


def judge_cosines(answer: Any) -> str:
    vectors = cosines_given()["vectors"].numpy()
    cosines = as_array(answer, "the (4, 4) matrix of cosines between the rows")
    if cosines.shape == (3, 3):
        raise Mistake("transposed: a (3, 3) matrix compares the 3 columns; use V V^T, (4, 4).")
    if cosines.shape != (4, 4):
        raise Mistake(
            f"wrong shape: expected (4, 4), one entry per pair of rows, got {cosines.shape}."
        )
    unit = _unit_rows(vectors)
    reference = unit @ unit.T
    if close(cosines, reference):
        return "each entry is the dot product of two unit rows; 1 on the diagonal."
    match_mistake(
        cosines,
        [
            (vectors @ vectors.T, "dot products of unnormalised rows: divide by both row norms."),
            (np.degrees(np.arccos(np.clip(reference, -1, 1))), "angles in degrees, not cosines."),
            (np.arccos(np.clip(reference, -1, 1)), "angles in radians, not cosines."),
            (
                unit @ vectors.T,
                "only one side is normalised: divide each dot product by both norms.",
            ),
            (
                vectors @ unit.T,
                "only one side is normalised: divide each dot product by both norms.",
            ),
            (
                _cols := vectors / np.linalg.norm(vectors, axis=0),
                "normalised the columns (dim=0) instead of the rows (dim=1).",
            ),
            (_cols @ _cols.T, "normalised the columns (dim=0) instead of the rows (dim=1)."),
        ],
    )
    if not np.allclose(np.diag(cosines), 1.0, atol=1e-4):
        raise Mistake("the diagonal must be 1: every row has cosine 1 with itself.")
    i, j = np.unravel_index(np.abs(cosines - reference).argmax(), cosines.shape)
    raise Mistake(f"entry ({i}, {j}) is off by {abs(cosines[i, j] - reference[i, j]):.3f}.")


def nc1_given() -> dict:
    rng = np.random.default_rng(1)
    counts = [40, 25, 15, 8]
    means = 3.0 * simplex_etf(4, 3).numpy() * np.array([[1.0], [1.2], [0.8], [0.6]]) + 2.0
    labels = np.repeat(np.arange(4), counts)
    features = means[labels] + rng.normal(scale=[0.6, 0.3, 0.4], size=(len(labels), 3))
    return as_tensors(features=features, labels=labels)


def _nc1_variant(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    weighted: bool = False,
    per_class: bool = False,
    centred: bool = True,
    inverted: bool = False,
) -> float:
    """NC1 = Tr(Sigma_W Sigma_B^+) / K, and the usual mistakes' versions of it."""
    k = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=k)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(k)])
    centre = (counts @ means) / counts.sum() if weighted else means.mean(axis=0)
    bar = means - centre if centred else means
    sigma_b = bar.T @ bar / k
    deviations = features - means[labels]
    if per_class:
        covariances = [
            deviations[labels == c].T @ deviations[labels == c] / counts[c] for c in range(k)
        ]
        sigma_w = sum(covariances) / k
    else:
        sigma_w = deviations.T @ deviations / len(labels)
    if inverted:
        return float(np.trace(sigma_b @ np.linalg.pinv(sigma_w)) / k)
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / k)


def nc1_reference() -> float:
    given = nc1_given()
    return nc_metrics(given["features"], given["labels"]).nc1


def judge_nc1(answer: Any) -> str:
    value = as_number(answer, "NC1, a single number")
    given = nc1_given()
    features, labels = given["features"].numpy(), given["labels"].numpy()
    if close(value, nc1_reference()):
        return "Tr(Sigma_W Sigma_B^+)/K with the class-balanced global mean, as metrics.nc_metrics."
    reference = nc1_reference()
    match_mistake(
        np.asarray(value),
        [
            (
                _nc1_variant(features, labels, weighted=True),
                "sample-weighted global mean: the package centres on the class-balanced mean, "
                "(1/K) sum_k mu_k.",
            ),
            (reference * 4, "you forgot to divide the trace by K = 4."),
            (
                _nc1_variant(features, labels, per_class=True),
                "you averaged per-class covariances; Sigma_W pools all N samples (divide by N).",
            ),
            (
                _nc1_variant(features, labels, centred=False),
                "uncentred class means in Sigma_B: subtract the global mean first.",
            ),
            (
                _nc1_variant(features, labels, inverted=True),
                "inverted: that is Tr(Sigma_B Sigma_W^+)/K; NC1 is Tr(Sigma_W Sigma_B^+)/K.",
            ),
            (reference * 4 / 3, "Sigma_B divided by K - 1: here it is an average over K classes."),
        ],
    )
    raise Mistake(f"{value:.4g} is not NC1 of these features: recheck Sigma_W, Sigma_B and the /K.")


# ------------------------------------------------------------------------------ notebook 02


_MC_W_MINORITY = [3, 4, 5]


def mc_w_given() -> dict:
    rng = np.random.default_rng(2)
    weight = rng.normal(size=(6, 8))
    weight[3:] = 0.4 * weight[3:] + rng.normal(size=8)  # squeezed minority rows
    return as_tensors(weight=weight, counts=[1000, 1000, 1000, 10, 10, 10])


def mc_w_reference() -> float:
    given = mc_w_given()
    counts, weight = given["counts"], given["weight"]
    minority = minority_classes(counts)
    return metrics_from_class_stats(counts, weight, weight=weight, minority=minority).mc_weights


def judge_mc_w(answer: Any) -> str:
    value = as_number(answer, "MC_W, a single number")
    weight = mc_w_given()["weight"].numpy()
    minority = _MC_W_MINORITY
    if close(value, mc_w_reference()):
        return "the mean cosine over the 3 pairs of minority classifier rows."
    pairs = np.array([[i, j] for i in minority for j in minority if i < j])
    match_mistake(
        np.asarray(value),
        [
            (
                _mean_pair_cosine(weight.T, minority),
                "W transposed: you compared columns 3, 4, 5; the classifier rows are W[k].",
            ),
            (
                _mean_pair_cosine(weight, range(6)),
                "that averages all classes; MC_W takes the minority.",
            ),
            (_mean_pair_cosine(weight, [0, 1, 2]), "those are the majority classes 0, 1, 2."),
            (
                _mean_pair_cosine(weight, minority, diagonal=True),
                "you included each class's cosine with itself (1); average over pairs i < j.",
            ),
            (
                float(np.mean([weight[i] @ weight[j] for i, j in pairs])),
                "dot products of unnormalised rows: divide by both norms to get cosines.",
            ),
            (
                _mean_pair_cosine(weight - weight.mean(axis=0), minority),
                "you centred the classifier rows; MC_W uses them as they are (means are centred).",
            ),
        ],
    )
    raise Mistake(
        f"{value:.4f} is not the mean cosine of the minority pairs (3, 4), (3, 5), (4, 5)."
    )


@functools.lru_cache(maxsize=64)
def explorer_mc_w(ratio: float, weight_decay: float) -> float:
    """MC_W the explorer of notebook 02 shows at an imbalance ratio and weight decay (CE,
    K = 4, two minority classes, its default steps and seed); cached, ~0.2 s a new value."""
    minority_count = max(1, round(EXPLORER_N_MAX / ratio))
    counts = [EXPLORER_N_MAX] * 2 + [minority_count] * 2
    result = ufm.simulate(
        counts,
        weight_decay_w=weight_decay,
        weight_decay_h=weight_decay,
        record_every=ufm.DEFAULT_STEPS,
    )
    return result.final["mc_weights"]


def explore_judge(weight_decay: float, event: str) -> Callable[[Any], str]:
    """Judge a ratio read off the explorer: where MC_W crosses 0 ("zero") or reaches 1."""
    reference = EXPLORER_RATIOS[weight_decay, event]
    other_decay = 1e-2 if weight_decay == 5e-3 else 5e-3
    other_event = "complete" if event == "zero" else "zero"
    says = {"zero": "MC_W crosses 0", "complete": "MC_W reaches 1 (complete collapse)"}
    confusions = [
        (
            EXPLORER_RATIOS[other_decay, event],
            f"that is where {says[event]} at weight decay {other_decay:g}; set the slider to "
            f"{weight_decay:g}.",
        ),
        (
            EXPLORER_RATIOS[weight_decay, other_event],
            f"that is where {says[other_event]}; the question is where {says[event]}.",
        ),
    ]

    def near(ratio: float, target: float) -> bool:
        return abs(math.log(ratio / target)) <= math.log1p(EXPLORE_TOLERANCE)

    def judge(answer: Any) -> str:
        ratio = as_number(answer, "an imbalance ratio, a number from 1 to 1000")
        if 0 < ratio < 1:
            raise Mistake(f"{ratio:g} is n_min / n_max; the imbalance ratio is n_max / n_min >= 1.")
        if not 1 <= ratio <= 1000:
            raise Mistake(f"the explorer's imbalance ratio runs from 1 to 1000; got {ratio:g}.")
        if near(ratio, reference):
            return f"the UFM puts it at IR {reference:g} (weight decay {weight_decay:g})."
        for target, sentence in confusions:
            if near(ratio, target):
                raise Mistake(sentence)
        mc_w = explorer_mc_w(ratio, weight_decay)
        side = "larger" if ratio < reference else "smaller"
        raise Mistake(
            f"at IR {ratio:.0f} the explorer shows MC_W = {mc_w:+.3f}: {says[event]} at a {side} "
            "ratio."
        )

    return judge


# ------------------------------------------------------------------------------ notebook 03


def mc_h_given() -> dict:
    rng = np.random.default_rng(3)
    means = 2.0 * simplex_etf(6, 8).numpy()
    means[3:] *= 0.3  # short minority means
    means += rng.normal(scale=0.1, size=(6, 8)) + rng.normal(size=8)  # a common offset
    return as_tensors(means=means, counts=[500, 500, 500, 5, 5, 5])


def _mc_h(means: np.ndarray, counts: np.ndarray, centre: str, **options: Any) -> float:
    """MC_H of the minority (classes 3, 4, 5) centred on "balanced", "weighted" or "none"."""
    offsets = {"balanced": means.mean(axis=0), "weighted": counts @ means / counts.sum()}
    centred = means - offsets.get(centre, 0.0)
    classes = options.pop("classes", [3, 4, 5])
    return _mean_pair_cosine(centred, classes, **options)


def mc_h_reference() -> tuple[float, float]:
    given = mc_h_given()
    counts, means = given["counts"], given["means"]
    return tuple(
        metrics_from_class_stats(
            counts, means, minority=minority_classes(counts), global_mean=centre
        ).mc_means
        for centre in ("balanced", "weighted")
    )


def judge_mc_h(answer: Any) -> str:
    pair = as_array(answer, "two numbers: MC_H with the balanced, then the weighted global mean")
    if pair.shape != (2,):
        got = "a single number" if pair.ndim == 0 else f"shape {pair.shape}"
        raise Mistake(f"expected two numbers (balanced, weighted), got {got}.")
    given = mc_h_given()
    means, counts = given["means"].numpy(), given["counts"].numpy().astype(float)
    reference = np.asarray(mc_h_reference())
    if close(pair, reference):
        return (
            f"MC_H is {reference[0]:+.3f} with the balanced mean and {reference[1]:+.3f} with the "
            "sample-weighted one: the convention alone moves it."
        )
    match_mistake(
        pair, [(reference[::-1], "swapped: first the class-balanced, then the weighted.")]
    )
    position = int(np.argmax(~np.isclose(pair, reference, rtol=RTOL, atol=ATOL)))
    centre, other = ("balanced", "weighted")[:: 1 - 2 * position]
    which = ("first (class-balanced)", "second (sample-weighted)")[position]
    how = {
        "balanced": "the class-balanced global mean (the mean of the class means)",
        "weighted": "the sample-weighted global mean (sum_k n_k mu_k / N)",
    }
    match_mistake(
        pair[position : position + 1],
        [
            (
                [_mc_h(means, counts, other)],
                f"your {which} number uses {how[other]}.",
            ),
            ([_mc_h(means, counts, "none")], "uncentred means: subtract the global mean first."),
            (
                [_mc_h(means, counts, centre, diagonal=True)],
                "you included each class's cosine with itself; average over pairs i < j.",
            ),
            (
                [_mc_h(means, counts, centre, classes=range(6))],
                "that averages all classes; MC_H takes the minority classes 3, 4, 5.",
            ),
        ],
    )
    raise Mistake(f"your {which} number, {pair[position]:+.4f}, is not MC_H of these means.")
