"""Exact neural-collapse geometry: the simplex ETF, the SELI geometry under imbalance, and helpers.

Shapes: K classes, d feature dimensions. Matrices of vectors are (K, d), one vector per row.
Everything is computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ._checks import ArrayLike, as_counts, as_float64, check_num_classes


def etf_gram(num_classes: int) -> torch.Tensor:
    """Gram matrix of a K-class simplex ETF, (K, K): 1 on the diagonal, -1/(K-1) off it.

    Equals K/(K-1) * (I - J/K), with J the all-ones matrix.
    """
    k = check_num_classes(num_classes)
    eye = torch.eye(k, dtype=torch.float64)
    return (eye - 1.0 / k) * (k / (k - 1))


def random_orthonormal(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """A seeded (rows, cols) matrix with orthonormal columns (rows >= cols), float64."""
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=torch.float64))
    return q * torch.where(torch.diagonal(r) < 0, -1.0, 1.0)  # unique QR: positive diag(R)


def simplex_etf(num_classes: int, dim: int | None = None, *, seed: int = 0) -> torch.Tensor:
    """A simplex equiangular tight frame: K unit vectors with pairwise cosine -1/(K-1).

    Args:
        num_classes: K >= 2.
        dim: ambient dimension d (default K). Any d >= K-1 works. With d = K-1 the K vectors
            fill the whole space (the most compact embedding: a triangle in the plane for K = 3,
            a regular tetrahedron in 3D for K = 4); with d > K-1 they span a (K-1)-dimensional
            subspace placed by a seeded random rotation.
        seed: seed of that rotation; the same seed gives the same matrix.

    Returns:
        (K, d) float64 tensor with unit-norm rows, rows summing to zero, Gram = ``etf_gram(K)``,
        rank K-1.
    """
    k = check_num_classes(num_classes)
    d = k if dim is None else int(dim)
    if d < k - 1:
        raise ValueError(
            f"a {k}-class simplex ETF spans {k - 1} dimensions, so dim must be >= {k - 1}; got {d}"
        )
    centring = torch.eye(k, dtype=torch.float64) - 1.0 / k
    # Orthonormal basis of the (K-1)-dim subspace orthogonal to the all-ones vector.
    u = torch.linalg.svd(centring).U[:, : k - 1]
    return math.sqrt(k / (k - 1)) * u @ random_orthonormal(d, k - 1, seed).T


def cosine_matrix(a: ArrayLike, b: ArrayLike | None = None) -> torch.Tensor:
    """Pairwise cosines between the rows of ``a`` (K, d) and of ``b`` (M, d), default ``b = a``.

    Returns (K, M) float64. A zero row raises ValueError (its direction is undefined).
    """
    a = as_float64(a, "a", ndim=2)
    b = a if b is None else as_float64(b, "b", ndim=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same width, got {a.shape[1]} and {b.shape[1]}")
    na, nb = a.norm(dim=1), b.norm(dim=1)
    if (na == 0).any() or (nb == 0).any():
        raise ValueError("cosines are undefined for zero vectors")
    return ((a / na[:, None]) @ (b / nb[:, None]).T).clamp(-1.0, 1.0)


def angles_degrees(cosines: ArrayLike) -> torch.Tensor:
    """Angles in degrees from cosines (clamped to [-1, 1]); same shape as the input."""
    return torch.rad2deg(torch.arccos(as_float64(cosines, "cosines").clamp(-1.0, 1.0)))


@dataclass(frozen=True)
class SELIGeometry:
    """The SELI geometry (Thrampoulidis et al. 2022) for given class counts.

    Attributes:
        weight: (K, K-1) classifier W with W W^T = (B D B)^(1/2).
        embeddings: (K, K-1) class embeddings h_k with H^T H = the same square root on the
            sample side, and W h_k = B e_k (the centred one-hot logits).
        counts: (K,) the class counts used.
    """

    weight: torch.Tensor
    embeddings: torch.Tensor
    counts: torch.Tensor


def seli_geometry(counts: ArrayLike) -> SELIGeometry:
    """Geometry the unconstrained-features model with cross-entropy approaches as regularisation
    vanishes, at class counts n_k (SELI: simplex-encoded-labels interpolation).

    With B = I - J/K, Y the (K, N) one-hot label matrix and Z = B Y = V S U^T its thin SVD:
    W = V S^(1/2), and every sample of class k has the embedding h_k = S^(-1/2) V^T B e_k.
    Hence W W^T = (B D B)^(1/2) with D = diag(n). Because all columns of Z for class k are
    equal, Z Z^T = (B D^(1/2)) (B D^(1/2))^T, so the SVD is taken on that (K, K) matrix: the same
    V and S as the (K, N) one, without forming N columns. At balance W is a scaled simplex ETF.

    Args:
        counts: (K,) positive integers n_k.
    """
    n = as_counts(counts)
    k = n.numel()
    centring = torch.eye(k, dtype=torch.float64) - 1.0 / k
    v, s, _ = torch.linalg.svd(centring * n.to(torch.float64).sqrt()[None, :])
    v, s = v[:, : k - 1], s[: k - 1]
    weight = v * s.sqrt()[None, :]
    embeddings = centring @ v / s.sqrt()[None, :]
    return SELIGeometry(weight=weight, embeddings=embeddings, counts=n)


@dataclass(frozen=True)
class Projection3D:
    """Vectors projected onto a common 3D basis.

    Attributes:
        coords: one (K_i, 3) tensor per input array, in the order given.
        basis: (d, 3) orthonormal columns spanning the plotted subspace.
        captured: fraction of the vectors' total squared length inside that subspace (1 = exact).
        exact: True when the projection preserves every length and angle (captured ~ 1).
        note: a sentence for a figure title or caption saying whether angles are preserved.
    """

    coords: list[torch.Tensor]
    basis: torch.Tensor
    captured: float
    exact: bool
    note: str


def project_to_3d(*arrays: ArrayLike, tol: float = 1e-9) -> Projection3D:
    """Project several (K_i, d) arrays of vectors (arrows from the origin) onto one 3D basis.

    The basis spans the three directions of largest energy (uncentred SVD of all rows stacked),
    so when all vectors lie in a subspace of dimension <= 3 (K <= 4 centred class means, a K <= 4
    simplex ETF, ...) lengths and angles are preserved exactly. Otherwise it is the best 3D view
    in the least-squares sense and ``exact`` is False. Directions are sign-fixed so that the
    result is deterministic. Arrays with d < 3 are padded with zeros.
    """
    if not arrays:
        raise ValueError("project_to_3d needs at least one array of vectors")
    mats = [as_float64(a, f"array {i}", ndim=2) for i, a in enumerate(arrays)]
    widths = {m.shape[1] for m in mats}
    if len(widths) != 1:
        raise ValueError(f"all arrays must have the same width d, got {sorted(widths)}")
    stacked = torch.cat(mats)
    if stacked.shape[1] < 3:
        mats = [torch.nn.functional.pad(m, (0, 3 - m.shape[1])) for m in mats]
        stacked = torch.cat(mats)
    # zero rows up to 3 so that fewer than 3 vectors still give 3 basis directions
    padded = torch.nn.functional.pad(stacked, (0, 0, 0, max(0, 3 - stacked.shape[0])))
    _, s, vh = torch.linalg.svd(padded, full_matrices=False)
    basis = vh[:3].T.clone()
    signs = torch.sign(basis[basis.abs().argmax(dim=0), torch.arange(3)])
    basis = basis * torch.where(signs == 0, torch.ones_like(signs), signs)
    total = float((s**2).sum())
    captured = 1.0 if total == 0 else float((s[:3] ** 2).sum()) / total
    exact = captured >= 1.0 - tol
    if exact:
        note = "exact 3D view: lengths and angles preserved"
    else:
        note = (
            f"projection onto the 3 main directions ({100 * captured:.0f}% of the energy): "
            "angles are distorted"
        )
    return Projection3D(
        coords=[m @ basis for m in mats], basis=basis, captured=captured, exact=exact, note=note
    )


def complete_collapse(records: Sequence[Mapping], tol: float = 1e-3) -> tuple[float, float] | None:
    """Where a sweep (``imbalance_sweep`` records, ratios increasing) reaches complete minority
    collapse: (the last ratio with MC_W < 1 - ``tol``, the first with MC_W >= 1 - ``tol`` from
    which every larger ratio stays there), or None when it never does or already does at the
    first ratio.

    Past a threshold ratio the UFM's optimum has the minority classifier rows (and centred means)
    pointing exactly the same way, MC_W = 1: a phase transition, not a gradual limit (Fang et
    al. 2021). Near the threshold gradient descent slows down, so run the sweep with enough
    ``steps`` (its records say whether each run ``converged``).
    """
    values = [r["mc_weights"] for r in records]
    if any(v is None for v in values):
        raise ValueError("every record needs mc_weights (at least two minority classes)")
    collapsed = [v >= 1.0 - tol for v in values]
    if not collapsed[-1]:
        return None
    first = len(collapsed) - collapsed[::-1].index(False) if False in collapsed else 0
    if first == 0:
        return None
    return float(records[first - 1]["ratio"]), float(records[first]["ratio"])
