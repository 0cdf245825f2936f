"""Simplex ETF, SELI geometry and plotting helpers against their defining properties."""

from __future__ import annotations

import math

import pytest
import torch

from allnc_edu.geometry import (
    angles_degrees,
    cosine_matrix,
    etf_gram,
    project_to_3d,
    seli_geometry,
    simplex_etf,
)

ATOL = 1e-12


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Principal square root of a symmetric PSD matrix through its eigendecomposition."""
    vals, vecs = torch.linalg.eigh(a)
    return vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T


def centring(k: int) -> torch.Tensor:
    return torch.eye(k, dtype=torch.float64) - 1.0 / k


# ---------------------------------------------------------------- simplex ETF


@pytest.mark.parametrize("k", [2, 3, 4, 7, 10])
def test_etf_gram_closed_form(k):
    g = etf_gram(k)
    assert torch.allclose(torch.diagonal(g), torch.ones(k, dtype=torch.float64))
    off = g[~torch.eye(k, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1.0 / (k - 1)))


@pytest.mark.parametrize(("k", "d"), [(2, 1), (2, 5), (3, 2), (3, 3), (4, 3), (5, 12), (10, 9)])
def test_simplex_etf_properties(k, d):
    e = simplex_etf(k, d)
    assert e.shape == (k, d) and e.dtype == torch.float64
    assert torch.allclose(e @ e.T, etf_gram(k), atol=ATOL)  # unit norms and -1/(K-1) cosines
    assert torch.allclose(e.sum(dim=0), torch.zeros(d, dtype=torch.float64), atol=ATOL)
    assert torch.linalg.matrix_rank(e).item() == k - 1


def test_simplex_etf_default_dim_is_k():
    assert simplex_etf(6).shape == (6, 6)


@pytest.mark.parametrize(("k", "d"), [(3, 1), (5, 3), (10, 2)])
def test_simplex_etf_too_small_dim_raises(k, d):
    with pytest.raises(ValueError, match=f"dim must be >= {k - 1}"):
        simplex_etf(k, d)


@pytest.mark.parametrize("k", [1, 0, 2.5])
def test_simplex_etf_bad_num_classes_raises(k):
    with pytest.raises(ValueError, match="num_classes"):
        simplex_etf(k)


def test_simplex_etf_seeding():
    assert torch.equal(simplex_etf(5, 8, seed=3), simplex_etf(5, 8, seed=3))
    assert not torch.allclose(simplex_etf(5, 8, seed=3), simplex_etf(5, 8, seed=4))
    assert not torch.allclose(simplex_etf(5, 4, seed=0), simplex_etf(5, 4, seed=1))


# ---------------------------------------------------------------- SELI


@pytest.mark.parametrize("counts", [[5, 5, 5], [10, 3, 1], [100, 50, 20, 5, 1], [7, 1]])
def test_seli_weight_gram_is_square_root_of_bdb(counts):
    k = len(counts)
    b = centring(k)
    expected = sqrtm_psd(b @ torch.diag(torch.tensor(counts, dtype=torch.float64)) @ b)
    geo = seli_geometry(counts)
    assert geo.weight.shape == (k, k - 1) and geo.embeddings.shape == (k, k - 1)
    assert torch.allclose(geo.weight @ geo.weight.T, expected, atol=1e-10)
    assert geo.counts.tolist() == counts


@pytest.mark.parametrize("counts", [[5, 5, 5], [10, 3, 1], [100, 50, 20, 5, 1]])
def test_seli_logits_of_embeddings_are_centred_one_hot(counts):
    geo = seli_geometry(counts)
    # row k of H W^T holds the logits W h_k; they must be B e_k (B symmetric)
    assert torch.allclose(geo.embeddings @ geo.weight.T, centring(len(counts)), atol=1e-10)


@pytest.mark.parametrize(("k", "n"), [(2, 1), (3, 4), (6, 25)])
def test_seli_at_balance_is_a_scaled_etf(k, n):
    w = seli_geometry([n] * k).weight
    gram = w @ w.T
    # B D B = n B and B^(1/2) = B, so W W^T = sqrt(n) B = sqrt(n) (K-1)/K * ETF Gram
    assert torch.allclose(gram, math.sqrt(n) * (k - 1) / k * etf_gram(k), atol=1e-10)


@pytest.mark.parametrize("counts", [[3, 2, 1], [4, 1, 1, 2], [6, 2]])
def test_seli_matches_explicit_svd_with_one_column_per_sample(counts):
    """Z = (I - J/K) Y with Y the (K, N) one-hot matrix; thin SVD Z = V S U^T gives W = V S^(1/2)
    and sample embeddings S^(1/2) U^T. Singular vectors are unique only up to rotations inside
    repeated singular values, so compare the invariant products W W^T, H^T H and W H = Z."""
    k = len(counts)
    y = torch.repeat_interleave(torch.arange(k), torch.tensor(counts))
    z = centring(k) @ torch.nn.functional.one_hot(y, k).T.to(torch.float64)
    v, s, ut = torch.linalg.svd(z, full_matrices=False)
    v, s, ut = v[:, : k - 1], s[: k - 1], ut[: k - 1]
    w_ref = v * s.sqrt()
    h_ref = s.sqrt()[:, None] * ut  # (K-1, N)
    geo = seli_geometry(counts)
    h = geo.embeddings[y].T  # every sample of class k sits at h_k
    assert torch.allclose(geo.weight @ geo.weight.T, w_ref @ w_ref.T, atol=1e-10)
    assert torch.allclose(h.T @ h, h_ref.T @ h_ref, atol=1e-10)
    assert torch.allclose(geo.weight @ h, z, atol=1e-10)


@pytest.mark.parametrize("counts", [[5], [3, 0, 2], [2.5, 3], [[1, 2], [3, 4]]])
def test_seli_bad_counts_raise(counts):
    with pytest.raises(ValueError, match="count"):
        seli_geometry(counts)


# ---------------------------------------------------------------- cosines, angles, 3D


def test_cosine_matrix_and_angles_of_triangle():
    e = simplex_etf(3, 2)
    cos = cosine_matrix(e)
    assert torch.allclose(cos, etf_gram(3), atol=ATOL)
    ang = angles_degrees(cos)
    off = ~torch.eye(3, dtype=torch.bool)
    assert torch.allclose(ang[off], torch.full((6,), 120.0, dtype=torch.float64), atol=1e-6)
    assert angles_degrees(torch.tensor(0.5)).item() == pytest.approx(60.0)
    assert angles_degrees(torch.tensor([1.0 + 1e-12, -1.0 - 1e-12])).tolist() == [0.0, 180.0]


def test_cosine_matrix_between_two_sets_is_scale_free():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 3.0], [-5.0, 0.0], [0.0, 0.1]])
    s = 1 / math.sqrt(2)
    expected = torch.tensor([[s, -1.0, 0.0], [s, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(cosine_matrix(a, b), expected, atol=ATOL)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (torch.zeros(2, 3), None, "zero vectors"),
        (torch.ones(2, 3), torch.ones(2, 4), "same width"),
        (torch.ones(3), None, "2-D"),
        (torch.tensor([[1.0, math.nan]]), None, "NaN"),
    ],
)
def test_cosine_matrix_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        cosine_matrix(a, b)


@pytest.mark.parametrize(("k", "d"), [(2, 1), (2, 6), (3, 2), (3, 9), (4, 3), (4, 20)])
def test_project_to_3d_is_exact_for_small_etf(k, d):
    e = 1.7 * simplex_etf(k, d, seed=2)
    w = 0.5 * simplex_etf(k, d, seed=2)
    proj = project_to_3d(e, w)
    assert proj.exact and proj.captured == pytest.approx(1.0) and "preserved" in proj.note
    ce, cw = proj.coords
    assert ce.shape == (k, 3) and cw.shape == (k, 3)
    assert torch.allclose(cosine_matrix(ce), etf_gram(k), atol=1e-10)
    assert torch.allclose(ce.norm(dim=1), torch.full((k,), 1.7, dtype=torch.float64))
    assert torch.allclose(cosine_matrix(ce, cw), etf_gram(k), atol=1e-10)
    assert torch.allclose(proj.basis.T @ proj.basis, torch.eye(3, dtype=torch.float64), atol=ATOL)


def test_project_to_3d_reports_distortion_for_k6():
    proj = project_to_3d(simplex_etf(6, 8))
    assert not proj.exact
    assert proj.captured == pytest.approx(3 / 5)  # 3 of the 5 equal singular values
    assert "distorted" in proj.note


def test_project_to_3d_is_deterministic_and_validates():
    e = simplex_etf(5, 7, seed=1)
    a, b = project_to_3d(e), project_to_3d(e.clone())
    assert torch.equal(a.coords[0], b.coords[0])
    with pytest.raises(ValueError, match="at least one"):
        project_to_3d()
    with pytest.raises(ValueError, match="same width"):
        project_to_3d(torch.ones(3, 4), torch.ones(3, 5))


@pytest.mark.parametrize("d", [1, 2, 5])
def test_project_to_3d_of_two_vectors(d):
    """Fewer than three vectors still get a full 3D orthonormal basis."""
    proj = project_to_3d(simplex_etf(2, d))
    assert proj.exact and proj.basis.shape == (max(d, 3), 3)
    assert torch.allclose(proj.basis.T @ proj.basis, torch.eye(3, dtype=torch.float64), atol=ATOL)
    assert torch.allclose(cosine_matrix(proj.coords[0]), etf_gram(2), atol=ATOL)
