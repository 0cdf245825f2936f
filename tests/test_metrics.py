"""Neural-collapse metrics against closed forms, invariances, streaming and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from allnc_edu.geometry import random_orthonormal, simplex_etf
from allnc_edu.metrics import (
    NCAccumulator,
    metrics_from_class_stats,
    nc_metrics,
)

SCALARS = (
    "nc1",
    "equinorm_means",
    "equinorm_weights",
    "equiangular_means",
    "equiangular_weights",
    "etf_distance_means",
    "etf_distance_weights",
    "self_duality",
    "ncc_agreement",
    "mc_means",
    "mc_weights",
)
PER_CLASS = ("mean_norms", "classifier_norms", "nc4_per_class", "mean_classifier_cosine")


def labels_for(counts):
    return torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts))


def noisy_problem(k=5, d=8, seed=0):
    """Separated but noisy classes with imbalanced counts and a random classifier."""
    gen = torch.Generator().manual_seed(seed)
    counts = [40, 25, 15, 8, 5][:k]
    y = labels_for(counts)
    centres = 3.0 * torch.randn(k, d, generator=gen, dtype=torch.float64)
    x = centres[y] + 1.5 * torch.randn(len(y), d, generator=gen, dtype=torch.float64)
    w = centres + torch.randn(k, d, generator=gen, dtype=torch.float64)
    b = torch.randn(k, generator=gen, dtype=torch.float64)
    return x, y, w, b


def assert_same_metrics(a, b, rel=1e-9, abs_=1e-12, perm=None, scales=None):
    """Scalars equal; per-class vectors equal, entry k of ``a`` at position perm[k] of ``b``
    (after multiplying ``a``'s per-class field by ``scales[name]`` when given)."""
    for name in SCALARS:
        va, vb = getattr(a, name), getattr(b, name)
        assert (va is None) == (vb is None), name
        if va is not None:
            assert va == pytest.approx(vb, rel=rel, abs=abs_), name
    for name in PER_CLASS:
        va, vb = getattr(a, name), getattr(b, name)
        if va is None:
            assert vb is None, name
            continue
        vb = np.asarray(vb)[perm] if perm is not None else np.asarray(vb)
        va = np.asarray(va) * (scales or {}).get(name, 1.0)
        np.testing.assert_allclose(va, vb, rtol=rel, atol=abs_, err_msg=name)


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize("within", ["pooled", "class"])
@pytest.mark.parametrize(
    ("k", "d", "counts"),
    [(2, 3, [7, 1]), (3, 2, [1, 4, 9]), (4, 4, [50, 20, 3, 1]), (10, 16, list(range(1, 11)))],
)
def test_exact_etf_gives_perfect_collapse_for_any_counts(k, d, counts, within):
    offset = torch.linspace(-4.0, 7.0, d, dtype=torch.float64)
    means = 2.5 * simplex_etf(k, d, seed=3) + offset
    y = labels_for(counts)
    weight = 0.7 * simplex_etf(k, d, seed=3)  # same seed: aligned with the centred means
    bias = -weight @ offset  # so that W h + b = W (h - offset): the offset favours no class
    minority = list(range(k // 2, k)) if k >= 4 else None
    r = nc_metrics(means[y], y, weight, bias, minority=minority, within=within)
    assert r.nc1 == pytest.approx(0.0, abs=1e-20)
    for name in SCALARS[1:8]:
        assert getattr(r, name) == pytest.approx(0.0, abs=1e-12), name
    assert r.ncc_agreement == 1.0
    assert r.nc4_per_class == [1.0] * k
    np.testing.assert_allclose(r.mean_classifier_cosine, 1.0, atol=1e-12)
    np.testing.assert_allclose(r.mean_norms, 2.5, rtol=1e-12)
    if minority is not None:
        assert r.mc_means == pytest.approx(-1 / (k - 1), abs=1e-12)
        assert r.mc_weights == pytest.approx(-1 / (k - 1), abs=1e-12)
    assert (r.global_mean, r.within, r.counts) == ("balanced", within, counts)


def test_weighted_global_mean_does_not_centre_an_imbalanced_etf():
    """The sample mean of an imbalanced ETF is pulled towards the majority, so the ETF is only
    recovered under the balanced convention; this is why balanced is the default."""
    counts = [30, 10, 2]
    y = labels_for(counts)
    means = simplex_etf(3, 3)
    balanced = nc_metrics(means[y], y)
    weighted = nc_metrics(means[y], y, global_mean="weighted")
    assert balanced.etf_distance_means == pytest.approx(0.0, abs=1e-12)
    assert weighted.etf_distance_means > 0.1
    assert weighted.global_mean == "weighted"


@pytest.mark.parametrize("within", ["pooled", "class"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_plus_minus_epsilon_toy_has_closed_form_nc1(k, within):
    """Class k has mean mu_k = c + r u_k (u_k the unit rows of a simplex ETF, c any offset) and
    2m samples mu_k +- v_k with v_k = eps u_k + delta e, e a unit vector orthogonal to every u_j.

    The samples average exactly to mu_k. Sigma_W = (1/K) sum_k v_k v_k^T (same for both
    conventions: equal counts, equal per-class covariances). Since U^T U = K/(K-1) P, with P the
    projector onto span(u), Sigma_B = (r^2/K) U^T U = r^2/(K-1) P and Sigma_B^+ = (K-1)/r^2 P.
    So Tr(Sigma_W Sigma_B^+) = (K-1)/r^2 (1/K) sum_k ||P v_k||^2 = (K-1) eps^2 / r^2 and
        NC1 = (K-1) eps^2 / (K r^2),
    independent of delta: within-class spread orthogonal to the means does not count.
    """
    r, eps, delta, m = 2.0, 0.3, 5.0, 3
    d = k + 2
    u = simplex_etf(k, d, seed=1)
    basis, _ = torch.linalg.qr(u.T)  # (d, K) whose first K-1 columns span the rows of u
    e = torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    e = e - basis[:, : k - 1] @ (basis[:, : k - 1].T @ e)
    e = e / e.norm()
    centre = torch.full((d,), -1.5, dtype=torch.float64)
    v = eps * u + delta * e
    x = torch.cat([centre + r * u[c] + s * v[c] for c in range(k) for s in [1, -1] * m]).view(-1, d)
    y = torch.arange(k).repeat_interleave(2 * m)
    got = nc_metrics(x, y, within=within)
    assert got.nc1 == pytest.approx((k - 1) * eps**2 / (k * r**2), rel=1e-12)


@pytest.mark.parametrize("within", ["pooled", "class"])
@pytest.mark.parametrize("global_mean", ["balanced", "weighted"])
def test_conventions_match_one_dimensional_closed_form(global_mean, within):
    """d = 1, K = 2: class 0 has n0 samples at r +- a, class 1 has n1 samples at -r +- b.

    Pooled Sigma_W = (n0 a^2 + n1 b^2) / N; class-averaged Sigma_W = (a^2 + b^2) / 2.
    Balanced mu_G = 0 gives Sigma_B = r^2; weighted mu_G = r (n0 - n1) / N gives
    Sigma_B = ((r - mu_G)^2 + (r + mu_G)^2) / 2 = r^2 + mu_G^2. NC1 = Sigma_W / Sigma_B / 2.
    """
    n0, n1, r, a, b = 8, 2, 1.5, 0.4, 0.9
    values = [r + a, r - a] * (n0 // 2) + [-r + b, -r - b] * (n1 // 2)
    x = torch.tensor(values, dtype=torch.float64)[:, None]
    y = torch.tensor([0] * n0 + [1] * n1)
    n = n0 + n1
    sigma_w = (n0 * a**2 + n1 * b**2) / n if within == "pooled" else (a**2 + b**2) / 2
    mu_g = 0.0 if global_mean == "balanced" else r * (n0 - n1) / n
    expected = sigma_w / (r**2 + mu_g**2) / 2
    got = nc_metrics(x, y, global_mean=global_mean, within=within)
    assert got.nc1 == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("within", ["pooled", "class"])
def test_nc1_matches_textbook_formula_on_random_data(within):
    """Sigma_W, Sigma_B and an explicit pseudo-inverse, written out with numpy loops."""
    x, y, _, _ = noisy_problem(k=4, d=6, seed=3)
    xs, ys = x.numpy(), y.numpy()
    mus = np.stack([xs[ys == c].mean(0) for c in range(4)])
    covs = [np.cov(xs[ys == c].T, bias=True) for c in range(4)]
    counts = np.bincount(ys)
    if within == "pooled":
        sigma_w = sum(n * cov for n, cov in zip(counts, covs, strict=True)) / len(ys)
    else:
        sigma_w = sum(covs) / 4
    centred = mus - mus.mean(0)
    sigma_b = sum(np.outer(m, m) for m in centred) / 4
    expected = np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10)) / 4
    assert nc_metrics(x, y, within=within).nc1 == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- invariances


def test_invariant_under_rotation_scaling_and_translation():
    x, y, w, b = noisy_problem()
    base = nc_metrics(x, y, w, b, minority=[3, 4])
    assert 0.0 < base.ncc_agreement < 1.0 and base.nc1 > 0.01  # a non-trivial configuration
    rot = random_orthonormal(8, 8, seed=5)
    shift = torch.linspace(-10.0, 10.0, 8, dtype=torch.float64)
    variants = {
        "rotation": (x @ rot, w @ rot, b, None),
        # logits scale by 0.75 (same argmax); norms scale, ratios and cosines do not
        "scaling": (3.0 * x, 0.25 * w, 0.75 * b, {"mean_norms": 3.0, "classifier_norms": 0.25}),
        "translation": (x + shift, w, b - w @ shift, None),  # W (h + t) + b - W t = W h + b
    }
    for xv, wv, bv, scales in variants.values():
        got = nc_metrics(xv, y, wv, bv, minority=[3, 4])
        assert_same_metrics(base, got, scales=scales)


def test_invariant_under_label_permutation():
    x, y, w, b = noisy_problem()
    perm = torch.tensor([2, 4, 0, 3, 1])  # class k becomes class perm[k]
    inv = torch.argsort(perm)
    base = nc_metrics(x, y, w, b, minority=[3, 4])
    got = nc_metrics(x, perm[y], w[inv], b[inv], minority=perm[[3, 4]])
    assert_same_metrics(base, got, perm=perm.numpy())
    assert got.counts == [base.counts[i] for i in inv.tolist()]


# ---------------------------------------------------------------- streaming and precision


@pytest.mark.parametrize("within", ["pooled", "class"])
def test_streamed_equals_full_batch_in_shuffled_order(within):
    x, y, w, b = noisy_problem(seed=4)
    x = x + 50.0  # a large common offset makes careless merging visible
    full = nc_metrics(x, y, w, b, minority=[3, 4], within=within, global_mean="weighted")
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=gen)
    cuts = sorted(torch.randint(0, len(y), (12,), generator=gen).tolist())
    batches = torch.tensor_split(order, cuts)  # uneven sizes, some empty, most missing classes
    acc = NCAccumulator(5, 8, within=within)
    for idx in batches:
        acc.update(x[idx], y[idx])
    for idx in reversed(batches):
        acc.update_agreement(x[idx], y[idx], w, b)
    streamed = acc.compute(w, b, minority=[3, 4], global_mean="weighted")
    assert_same_metrics(full, streamed, rel=1e-10, abs_=1e-10)
    assert streamed.ncc_agreement == full.ncc_agreement
    np.testing.assert_allclose(acc.means, torch.stack([x[y == c].mean(0) for c in range(5)]))


def test_float32_features_give_the_float64_result():
    """Nearly collapsed float32 features far from the origin: accumulating them in float32
    already changes NC1 in the fifth significant digit here; accumulated in float64 the result
    equals that of the same values given as float64."""
    gen = torch.Generator().manual_seed(0)
    counts = [3000, 800, 200, 50]
    y = labels_for(counts)
    means = 100.0 + simplex_etf(4, 6)
    x32 = (means[y] + 1e-3 * torch.randn(len(y), 6, generator=gen, dtype=torch.float64)).float()
    r32 = nc_metrics(x32, y)
    r64 = nc_metrics(x32.double(), y)
    assert r32.nc1 == pytest.approx(r64.nc1, rel=1e-12)
    acc = NCAccumulator(4, 6)
    for idx in torch.randperm(len(y), generator=gen).split(256):
        acc.update(x32[idx], y[idx])
    assert acc.compute().nc1 == pytest.approx(r64.nc1, rel=1e-9)


# ---------------------------------------------------------------- degenerate geometry


def assert_all_finite(result):
    for key, value in result.as_dict().items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float):
                assert math.isfinite(v), key


def test_coinciding_minority_means_give_finite_nc1_and_full_minority_collapse():
    gen = torch.Generator().manual_seed(1)
    counts = [50, 50, 10, 10, 10]
    y = labels_for(counts)
    centres = torch.cat([3 * simplex_etf(3, 6)[:2], 3 * simplex_etf(3, 6)[2:].repeat(3, 1)])
    x = centres[y] + 0.1 * torch.randn(len(y), 6, generator=gen, dtype=torch.float64)
    x = x - torch.stack([x[y == c].mean(0) for c in range(5)])[y] + centres[y]  # exact means
    w = torch.cat([simplex_etf(3, 6)[:2], simplex_etf(3, 6)[2:].repeat(3, 1)])
    r = nc_metrics(x, y, w, minority=[2, 3, 4])
    assert_all_finite(r)
    assert 0.0 <= r.nc1 < 1.0
    assert r.mc_means == pytest.approx(1.0, abs=1e-9)
    assert r.mc_weights == pytest.approx(1.0, abs=1e-12)
    assert r.ncc_agreement < 1.0  # the nearest-mean rule cannot separate classes 2, 3, 4


def test_all_means_coinciding_gives_zero_nc1_and_unit_etf_distance():
    gen = torch.Generator().manual_seed(2)
    y = labels_for([4, 4, 4])
    x = 0.1 + torch.randn(12, 3, generator=gen, dtype=torch.float64)
    x = x - torch.stack([x[y == c].mean(0) for c in range(3)])[y] + 0.1  # every mean = 0.1
    r = nc_metrics(x, y, torch.eye(3, dtype=torch.float64))
    assert_all_finite(r)
    assert r.nc1 == 0.0
    assert r.etf_distance_means == pytest.approx(1.0)
    assert r.mean_norms == [0.0, 0.0, 0.0]
    assert r.equiangular_means == 0.0  # every cosine with a zero-length mean is defined as 0


def test_zero_length_centred_mean_has_zero_cosines():
    means = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    r = metrics_from_class_stats([1, 1, 1], means, weight=w, minority=[1, 2])
    assert_all_finite(r)
    assert r.mean_norms[2] == 0.0
    assert r.mean_classifier_cosine == [1.0, 1.0, 0.0]
    assert r.mc_means == 0.0


def test_single_minority_class_gives_no_minority_collapse_score():
    x, y, w, b = noisy_problem()
    r = nc_metrics(x, y, w, b, minority=[4])
    assert r.minority == [4] and r.mc_means is None and r.mc_weights is None
    assert r.nc1 == nc_metrics(x, y, w, b, minority=[3, 4]).nc1
    two = metrics_from_class_stats(
        [50, 5], simplex_etf(2, 3), weight=simplex_etf(2, 3), minority=[1]
    )
    assert two.mc_means is None and two.mc_weights is None and two.etf_distance_means < 1e-12


@pytest.mark.parametrize("offset", [1e9, 1e11, 1e13])
def test_large_common_offset_gives_the_offset_free_metrics(offset):
    """A common feature offset cancels exactly in every metric; float64 keeps ~1e-16 * offset.

    Before centring twice, 1e11 gave NC1 ~ 1e9 and 1e13 reported perfect collapse.
    """
    x, y, w, _ = noisy_problem(k=4, d=8)
    tol = {1e9: 1e-6, 1e11: 1e-4, 1e13: 1e-2}[offset]
    base = nc_metrics(x, y, w, minority=[2, 3])
    full = nc_metrics(x + offset, y, w, minority=[2, 3])
    acc = NCAccumulator(4, 8)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    for rows in order.split(16):
        acc.update(x[rows] + offset, y[rows])
    streamed = acc.compute(w, minority=[2, 3])
    for got in (full, streamed):
        assert got.nc1 == pytest.approx(base.nc1, rel=tol)
        for name in ("etf_distance_means", "equinorm_means", "self_duality", "mc_means"):
            assert getattr(got, name) == pytest.approx(getattr(base, name), abs=tol), name


# ---------------------------------------------------------------- the class-statistics core


def test_class_stats_core_with_collapsed_features_matches_full_batch():
    counts = [9, 4, 1]
    means = 2.0 * simplex_etf(3, 5, seed=7) + 1.0
    w = simplex_etf(3, 5, seed=7) + 0.2 * torch.ones(3, 5, dtype=torch.float64)
    b = torch.tensor([0.5, 0.0, -0.4], dtype=torch.float64)
    y = labels_for(counts)
    core = metrics_from_class_stats(counts, means, weight=w, bias=b, minority=[1, 2])
    full = nc_metrics(means[y], y, w, b, minority=[1, 2])
    assert_same_metrics(core, full, rel=1e-12, abs_=1e-12)
    assert core.nc1 == 0.0


def test_class_stats_core_counts_wrong_predictions_at_the_means():
    means = simplex_etf(3, 3)
    w = simplex_etf(3, 3)[[0, 2, 1]]  # classes 1 and 2 swapped
    r = metrics_from_class_stats([5, 3, 2], means, weight=w)
    assert r.ncc_agreement == pytest.approx(0.5)
    assert r.nc4_per_class == [1.0, 0.0, 0.0]


def test_result_records_conventions_and_is_json_friendly():
    x, y, w, _ = noisy_problem()
    r = nc_metrics(x, y, minority=[3, 4], within="class", global_mean="weighted")
    d = json.loads(json.dumps(r.as_dict()))
    assert d["within"] == "class" and d["global_mean"] == "weighted" and d["pinv_rtol"] > 0
    assert d["minority"] == [3, 4] and d["num_samples"] == len(y) and d["dim"] == 8
    for name in ("equinorm_weights", "self_duality", "ncc_agreement", "mc_weights"):
        assert d[name] is None
    assert nc_metrics(x, y, w).mc_means is None


# ---------------------------------------------------------------- bad input


def good():
    x, y, w, b = noisy_problem()
    return x, y, w, b


BAD_CALLS = {
    "length mismatch": (lambda x, y, w, b: nc_metrics(x[:-1], y), "shape"),
    "labels too big": (lambda x, y, w, b: nc_metrics(x, y, num_classes=4), r"\[0, 4\)"),
    "negative label": (lambda x, y, w, b: nc_metrics(x, torch.where(y == 0, -1, y)), ">= 0"),
    "float labels": (lambda x, y, w, b: nc_metrics(x, y.double()), "integers"),
    "absent class": (lambda x, y, w, b: nc_metrics(x, y, num_classes=6), r"class\(es\) \[5\]"),
    "one class": (lambda x, y, w, b: nc_metrics(x, torch.zeros_like(y)), "num_classes"),
    "nan": (lambda x, y, w, b: nc_metrics(torch.where(x > 2, math.nan, x), y), "NaN"),
    "inf": (lambda x, y, w, b: nc_metrics(torch.where(x > 2, math.inf, x), y), "Inf"),
    "1-D features": (lambda x, y, w, b: nc_metrics(x[:, 0], y), "2-D"),
    "no samples": (lambda x, y, w, b: nc_metrics(x[:0], y[:0]), "at least one"),
    "weight shape": (lambda x, y, w, b: nc_metrics(x, y, w[:, :-1]), "weight"),
    "weight rows": (lambda x, y, w, b: nc_metrics(x, y, w[:-1], num_classes=5), "weight"),
    "bias shape": (lambda x, y, w, b: nc_metrics(x, y, w, b[:-1]), "bias"),
    "bias alone": (lambda x, y, w, b: nc_metrics(x, y, None, b), "bias"),
    "nan weight": (lambda x, y, w, b: nc_metrics(x, y, w * math.nan), "NaN"),
    "minority range": (lambda x, y, w, b: nc_metrics(x, y, minority=[3, 5]), "minority"),
    "minority empty": (lambda x, y, w, b: nc_metrics(x, y, minority=[]), "minority"),
    "minority repeated": (lambda x, y, w, b: nc_metrics(x, y, minority=[4, 4]), "minority"),
    "global_mean": (lambda x, y, w, b: nc_metrics(x, y, global_mean="sample"), "global_mean"),
    "within": (lambda x, y, w, b: nc_metrics(x, y, within="mean"), "within"),
    "pinv_rtol": (
        lambda x, y, w, b: nc_metrics(x, y, pinv_rtol=math.inf),
        "pinv_rtol must be a finite float > 0, got inf",
    ),
    "accumulator dim type": (lambda x, y, w, b: NCAccumulator(5, 2.5), "dim must be an integer"),
    "core zero count": (
        lambda x, y, w, b: metrics_from_class_stats([3, 0], torch.zeros(2, 2)),
        ">= 1",
    ),
    "core K=1": (lambda x, y, w, b: metrics_from_class_stats([3], torch.zeros(1, 2)), ">= 2"),
    "core means rows": (
        lambda x, y, w, b: metrics_from_class_stats([3, 2], torch.zeros(3, 2)),
        "one row per class",
    ),
    "core scatter shape": (
        lambda x, y, w, b: metrics_from_class_stats([3, 2], torch.eye(2), torch.eye(3)),
        "within_scatter",
    ),
    "core class needs per-class scatter": (
        lambda x, y, w, b: metrics_from_class_stats(
            [3, 2], torch.eye(2), torch.eye(2), within="class"
        ),
        r"\(K, d, d\)",
    ),
    "accumulator dim": (lambda x, y, w, b: NCAccumulator(5, 7).update(x, y), "7 columns"),
    "accumulator empty": (lambda x, y, w, b: NCAccumulator(5, 8).compute(), "no samples"),
    "accumulator K": (lambda x, y, w, b: NCAccumulator(1, 8), "num_classes"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_value_error_naming_the_problem(case):
    call, match = BAD_CALLS[case]
    with pytest.raises(ValueError, match=match):
        call(*good())


def test_num_classes_catches_an_absent_last_class():
    x, y, _, _ = noisy_problem()
    keep = y < 4  # class 4 of 5 has no sample
    assert nc_metrics(x[keep], y[keep]).num_classes == 4  # inferred from the labels: unnoticed
    with pytest.raises(ValueError, match=r"class\(es\) \[4\] have no samples"):
        nc_metrics(x[keep], y[keep], num_classes=5)


def test_accumulator_guards_its_two_passes():
    x, y, w, b = good()
    acc = NCAccumulator(5, 8)
    with pytest.raises(ValueError, match="no samples"):
        acc.update_agreement(x, y, w, b)  # before the means exist
    acc.update(x, y)
    acc.update_agreement(x[:50], y[:50], w, b)
    with pytest.raises(ValueError, match="same samples"):
        acc.compute(w, b)  # the agreement pass has not covered every sample
    with pytest.raises(ValueError, match="different classifier"):
        acc.update_agreement(x[50:], y[50:], 2 * w, b)
    acc.update_agreement(x[50:], y[50:], w, b)
    with pytest.raises(ValueError, match="different classifier"):
        acc.compute(w, None)
    assert acc.compute(w, b).ncc_agreement == nc_metrics(x, y, w, b).ncc_agreement
    assert acc.compute().ncc_agreement is None
    with pytest.raises(RuntimeError, match="frozen"):
        acc.update(x, y)
