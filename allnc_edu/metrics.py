"""Neural-collapse metrics: NC1-NC4, minority collapse, per-class views, streaming.

Shapes: N samples, K classes, d feature dimensions; features (N, d), labels (N,), classifier
weight W (K, d), bias b (K,). Everything is accumulated in float64 whatever the input dtype:
when training succeeds, float32 features collapse to within rounding error of their class means,
and float32 accumulation would then report a wrong NC1.

One core function, :func:`metrics_from_class_stats`, works from class statistics (counts, class
means, within-class scatter). :func:`nc_metrics` (full batch) and :class:`NCAccumulator`
(mini-batches streamed over a loader, merged exactly) both compute those statistics and call it.

Conventions (recorded in every result):

- ``global_mean``: ``"balanced"`` mu_G = (1/K) sum_k mu_k (default) or ``"weighted"``, the
  sample mean (1/N) sum_k n_k mu_k. Centred means are mu_k - mu_G.
- ``within``: ``"pooled"`` Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T (default)
  or ``"class"`` Sigma_W = (1/K) sum_k Sigma_k, the average of the per-class covariances.
- Sigma_B = (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T; NC1 = Tr(Sigma_W Sigma_B^+) / K, with the
  pseudo-inverse keeping the eigenvalues of Sigma_B above ``pinv_rtol`` times the largest.
- Centring is done twice: the second pass removes what float64 rounding left of a large common
  offset (features 1e11 from the origin give the offset-free metrics to ~1e-5; at 1e13, where
  float64 resolves only ~1e-3, to ~1e-3).
- A centred mean (or classifier row) shorter than 1e-14 times the largest class-mean norm
  (about 45 float64 roundings of the uncentred means) counts as zero length: its cosine with
  any vector is defined as 0 (never NaN), and a matrix of zero-length rows normalises to zero.
  When all class means coincide, Sigma_B = 0, its pseudo-inverse is 0 and NC1 = 0: read NC1
  together with the ETF distance (then 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ._checks import ArrayLike, as_counts, as_float64, check_choice, check_num_classes, check_scalar
from .measures import METRICS, ClassGeometry

GLOBAL_MEANS = ("balanced", "weighted")
WITHIN = ("pooled", "class")
PINV_RTOL = 1e-12
_ZERO_RTOL = 1e-14


@dataclass(frozen=True)
class NCMetrics:
    """Neural-collapse metrics of one model state. Fields that need the classifier are None when
    no weight was given; ``ncc_agreement`` and ``nc4_per_class`` are None when the samples were
    not available (see :class:`NCAccumulator`); ``mc_*`` are None when ``minority`` is None or
    names a single class (no pair to compare, as for K = 2).

    Attributes:
        nc1: Tr(Sigma_W Sigma_B^+) / K (0 at perfect variability collapse).
        equinorm_means, equinorm_weights: std / mean of the K norms (population std) of the
            centred class means and of the classifier rows (0 = equal norms).
        equiangular_means, equiangular_weights: std of the K(K-1)/2 pairwise cosines.
        etf_distance_means, etf_distance_weights: ||A A^T / ||A A^T||_F - (I - J/K)/sqrt(K-1)||_F
            with A the centred means or W (0 at a simplex ETF of any scale and rotation).
        self_duality: ||W / ||W||_F - Mbar / ||Mbar||_F||_F, Mbar the centred means (NC3; not
            squared; between 0 and 2).
        ncc_agreement: fraction of samples on which argmax(W h + b) is the class of the nearest
            (uncentred) class mean (NC4); distance ties go to the lowest class index.
        mc_means, mc_weights: mean pairwise cosine among the ``minority`` classes' centred means
            and classifier rows (-1/(K-1) at an ETF, 1 at total minority collapse).
        counts: (K,) samples per class.
        mean_norms: (K,) norms of the centred class means.
        classifier_norms: (K,) norms of the classifier rows.
        nc4_per_class: (K,) per-class NC4, the fraction of class-k samples on which the
            classifier and the nearest-class-mean rule agree.
        mean_classifier_cosine: (K,) cosine between centred mean k and classifier row k.
        num_classes, num_samples, dim: K, N, d.
        minority: the minority class indices used, or None.
        global_mean, within, pinv_rtol: the conventions used (see the module docstring).
    """

    nc1: float
    equinorm_means: float
    equinorm_weights: float | None
    equiangular_means: float
    equiangular_weights: float | None
    etf_distance_means: float
    etf_distance_weights: float | None
    self_duality: float | None
    ncc_agreement: float | None
    mc_means: float | None
    mc_weights: float | None
    counts: list[int]
    mean_norms: list[float]
    classifier_norms: list[float] | None
    nc4_per_class: list[float] | None
    mean_classifier_cosine: list[float] | None
    num_classes: int
    num_samples: int
    dim: int
    minority: list[int] | None
    global_mean: str
    within: str
    pinv_rtol: float
    extra: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """All fields as plain Python numbers, lists, strings and None (JSON-serialisable);
        the metrics of ``METRICS`` entries with their own ``compute`` sit beside the others."""
        out = asdict(self)
        extra = out.pop("extra")
        return {**out, **extra}


def metrics_from_class_stats(
    counts: ArrayLike,
    means: ArrayLike,
    within_scatter: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    *,
    minority: ArrayLike | None = None,
    global_mean: str = "balanced",
    within: str = "pooled",
    ncc_agree: ArrayLike | None = None,
    pinv_rtol: float = PINV_RTOL,
) -> NCMetrics:
    """Neural-collapse metrics from class statistics.

    Args:
        counts: (K,) positive sample counts n_k, K >= 2.
        means: (K, d) class means mu_k (uncentred).
        within_scatter: un-normalised within-class scatter sum_i (h_i - mu_{y_i})(...)^T, either
            (d, d) summed over all classes (enough for ``within="pooled"``) or (K, d, d) one per
            class (needed for ``within="class"``). None means every sample sits exactly at its
            class mean (collapsed features, as in the unconstrained-features model): then
            Sigma_W = 0 and, when ``weight`` is given and ``ncc_agree`` is not, the agreement is
            evaluated with each class's samples at its mean.
        weight: (K, d) classifier W; bias: (K,) b (default 0).
        minority: distinct class indices for the minority-collapse scores; with a single
            minority class (the default for K = 2) there is no pair, and ``mc_*`` are None.
        global_mean: "balanced" or "weighted"; within: "pooled" or "class".
        ncc_agree: (K,) number of class-k samples on which argmax(W h + b) equals the nearest
            class mean (as counted by :class:`NCAccumulator`); gives ``ncc_agreement`` and
            ``nc4_per_class``.
        pinv_rtol: relative eigenvalue tolerance of the pseudo-inverse of Sigma_B.
    """
    check_choice("global_mean", global_mean, GLOBAL_MEANS)
    check_choice("within", within, WITHIN)
    pinv_rtol = check_scalar("pinv_rtol", pinv_rtol, low=0, include_low=False)
    n = as_counts(counts)
    k = n.numel()
    mu = as_float64(means, "means", ndim=2)
    if mu.shape[0] != k:
        raise ValueError(f"means must have one row per class: expected {k} rows, got {mu.shape[0]}")
    d = mu.shape[1]
    nf = n.to(torch.float64)
    num = int(n.sum())
    w, b = _check_classifier(weight, bias, k, d)

    def centre(a: torch.Tensor) -> torch.Tensor:
        return a - (a.mean(dim=0) if global_mean == "balanced" else (nf @ a) / num)

    zero_len = _ZERO_RTOL * float(mu.norm(dim=1).max())
    mbar = _snap_zero_rows(centre(centre(mu)), zero_len)  # twice: see the module docstring
    sigma_w = _sigma_w(within_scatter, nf, d, within)
    nc1 = _nc1(mbar, sigma_w, pinv_rtol)

    minority_idx = None if minority is None else _check_minority(minority, k)
    mean_norms = mbar.norm(dim=1)
    mean_cos = _cosines(mbar, mbar)
    result = {
        "nc1": nc1,
        "equinorm_means": _equinorm(mean_norms),
        "equiangular_means": _pairwise(mean_cos).std(unbiased=False).item(),
        "etf_distance_means": _etf_distance(mbar),
        "mc_means": _mc(mean_cos, minority_idx),
        "counts": n.tolist(),
        "mean_norms": mean_norms.tolist(),
        "num_classes": k,
        "num_samples": num,
        "dim": d,
        "minority": minority_idx,
        "global_mean": global_mean,
        "within": within,
        "pinv_rtol": float(pinv_rtol),
    }
    result.update(dict.fromkeys(_WEIGHT_FIELDS))
    if w is not None:
        w0 = _snap_zero_rows(w, _ZERO_RTOL * float(w.norm(dim=1).max()))
        w_cos = _cosines(w0, w0)
        result.update(
            equinorm_weights=_equinorm(w0.norm(dim=1)),
            equiangular_weights=_pairwise(w_cos).std(unbiased=False).item(),
            etf_distance_weights=_etf_distance(w0),
            self_duality=(_unit_frobenius(w0) - _unit_frobenius(mbar)).norm().item(),
            mc_weights=_mc(w_cos, minority_idx),
            classifier_norms=w0.norm(dim=1).tolist(),
            mean_classifier_cosine=(_unit_rows(mbar) * _unit_rows(w0)).sum(dim=1).tolist(),
        )
        if ncc_agree is None and within_scatter is None:
            agree_at_mean = _classify(mu, w, b) == _nearest_mean(mu, mu)
            ncc_agree = torch.where(agree_at_mean, n, 0)
        if ncc_agree is not None:
            agree = _check_agree(ncc_agree, n)
            result.update(
                ncc_agreement=float(agree.sum()) / num,
                nc4_per_class=(agree.to(torch.float64) / nf).tolist(),
            )
    added = [spec for spec in METRICS.values() if spec.compute is not None]
    if added:
        shared = ClassGeometry(n, mu, mbar, sigma_w, w, minority_idx)
        result["extra"] = {spec.name: spec.compute(shared) for spec in added}
    return NCMetrics(**result)


def nc_metrics(
    features: ArrayLike,
    labels: ArrayLike,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    *,
    minority: ArrayLike | None = None,
    global_mean: str = "balanced",
    within: str = "pooled",
    num_classes: int | None = None,
    pinv_rtol: float = PINV_RTOL,
) -> NCMetrics:
    """Neural-collapse metrics of a full batch of features.

    Args:
        features: (N, d) penultimate-layer features h_i (any float dtype and device).
        labels: (N,) integer class labels in [0, K).
        weight: (K, d) classifier W; bias: (K,) b. Without them the classifier fields are None.
        minority: class indices for MC_H / MC_W (e.g. ``groups.minority_classes(counts)``).
        global_mean, within, pinv_rtol: conventions, see the module docstring.
        num_classes: K; default the number of rows of ``weight``, else ``max(labels) + 1``.
            Every class must have at least one sample. Pass it to catch an absent class:
            without it (and without ``weight``) a missing LAST class goes unnoticed, since K is
            then taken from the labels, and the metrics silently describe K - 1 classes; with
            it, a class without samples raises a ValueError naming the class.
    """
    x = as_float64(features, "features", ndim=2)
    if x.shape[0] == 0:
        raise ValueError("features must hold at least one sample, got 0 rows")
    if num_classes is None:
        if weight is not None:
            num_classes = int(np.shape(weight)[0])
        else:
            num_classes = int(_as_labels(labels, x.shape[0], None).max()) + 1
    acc = NCAccumulator(num_classes, x.shape[1], within=within)
    acc.update(x, labels)
    if weight is not None:
        acc.update_agreement(x, labels, weight, bias)
    return acc.compute(
        weight, bias, minority=minority, global_mean=global_mean, pinv_rtol=pinv_rtol
    )


class NCAccumulator:
    """Neural-collapse metrics streamed over mini-batches, so a whole set never sits in memory.

    Per-class counts, means and within-class scatter are merged exactly in float64 (the pairwise
    update of Chan, Golub and LeVeque), so any batch order gives the full-batch result to
    rounding error. NC4 needs the final class means, hence a second, optional pass::

        acc = NCAccumulator(num_classes=10, dim=64)
        for x, y in loader:
            acc.update(model(x).features, y)
        for x, y in loader:                      # only if ncc_agreement is wanted
            acc.update_agreement(model(x).features, y, weight, bias)
        result = acc.compute(weight, bias, minority=minority)

    Args:
        num_classes: K >= 2; dim: feature dimension d.
        within: "pooled" stores one (d, d) scatter; "class" stores (K, d, d) per-class ones.
    """

    def __init__(self, num_classes: int, dim: int, *, within: str = "pooled") -> None:
        self.num_classes = check_num_classes(num_classes)
        self.dim = check_scalar("dim", dim, kind=int, low=1)
        self.within = check_choice("within", within, WITHIN)
        k, d = self.num_classes, self.dim
        self._counts = torch.zeros(k, dtype=torch.long)
        self._means = torch.zeros(k, d, dtype=torch.float64)
        shape = (d, d) if within == "pooled" else (k, d, d)
        self._scatter = torch.zeros(shape, dtype=torch.float64)
        self._agree = torch.zeros(k, dtype=torch.long)
        self._agree_seen = torch.zeros(k, dtype=torch.long)
        self._agree_classifier: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def counts(self) -> torch.Tensor:
        """(K,) samples seen per class."""
        return self._counts.clone()

    @property
    def means(self) -> torch.Tensor:
        """(K, d) running class means (rows of unseen classes are meaningless zeros)."""
        return self._means.clone()

    def update(self, features: ArrayLike, labels: ArrayLike) -> None:
        """Add a batch: features (B, d), labels (B,) in [0, K)."""
        if self._agree_classifier is not None:
            raise RuntimeError("update() after update_agreement(): the class means are frozen")
        x, y = self._check_batch(features, labels)
        k = self.num_classes
        n_b = torch.bincount(y, minlength=k)
        mean_b = torch.zeros(k, self.dim, dtype=torch.float64).index_add_(0, y, x)
        mean_b /= n_b.clamp(min=1)[:, None]
        centred = x - mean_b[y]
        if self.within == "pooled":
            scatter_b = centred.T @ centred
        else:
            scatter_b = torch.zeros_like(self._scatter)
            for c in y.unique().tolist():
                rows = centred[y == c]
                scatter_b[c] = rows.T @ rows
        self._absorb(n_b, mean_b, scatter_b)

    def state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Copies of the class statistics: (K,) counts (int64), (K, d) means and the float64
        within-class scatter ((d, d) pooled, (K, d, d) per class)."""
        return self._counts.clone(), self._means.clone(), self._scatter.clone()

    def merge(self, other: NCAccumulator | tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        """Fold in the statistics of samples seen elsewhere: another accumulator (same K, d and
        ``within``) or its :meth:`state`. The Chan et al. pairwise update is exact, so merging
        accumulators fed disjoint parts of a set gives the statistics of one accumulator fed
        all of it, up to float64 rounding. Only before :meth:`update_agreement` (on both)."""
        if self._agree_classifier is not None:
            raise RuntimeError("merge() after update_agreement(): the class means are frozen")
        if isinstance(other, NCAccumulator):
            if (other.num_classes, other.dim, other.within) != (self.num_classes, self.dim,
                                                                self.within):  # fmt: skip
                raise ValueError("merge needs an accumulator with the same K, d and within")
            if other._agree_classifier is not None:
                raise ValueError("merge got an accumulator whose agreement pass has started")
            other = other.state()
        counts, means, scatter = other
        if counts.shape != self._counts.shape or means.shape != self._means.shape:
            raise ValueError("merge got statistics of another shape")
        if scatter.shape != self._scatter.shape:
            raise ValueError("merge got a scatter of another shape")
        self._absorb(counts.long(), means.double(), scatter.double())

    def reduce_agreement(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace the NC4 counts by ``reduce`` of them, e.g. a sum over the ranks of a data
        parallel run (``distributed.all_reduce_sum``), each rank having run
        :meth:`update_agreement` on its part of the set with the merged class means."""
        self._agree = reduce(self._agree)
        self._agree_seen = reduce(self._agree_seen)

    def _absorb(self, n_b: torch.Tensor, mean_b: torch.Tensor, scatter_b: torch.Tensor) -> None:
        """Chan et al.'s exact merge of a part with counts (K,), means (K, d), scatter."""
        n_a = self._counts.to(torch.float64)
        n_new = n_a + n_b
        total = n_new.clamp(min=1)
        delta = mean_b - self._means
        self._means += delta * (n_b / total)[:, None]
        c = n_a * n_b / total
        if self.within == "pooled":
            self._scatter += scatter_b + (delta * c[:, None]).T @ delta
        else:
            self._scatter += scatter_b + c[:, None, None] * delta[:, :, None] * delta[:, None, :]
        self._counts += n_b

    def update_agreement(
        self,
        features: ArrayLike,
        labels: ArrayLike,
        weight: ArrayLike,
        bias: ArrayLike | None = None,
    ) -> None:
        """Second pass: count the samples on which argmax(W h + b) equals the nearest class mean.

        Call after all :meth:`update` calls, on the same samples, with the same W (K, d) and
        b (K,) as later given to :meth:`compute`.
        """
        self._check_all_seen()
        w, b = _check_classifier(weight, bias, self.num_classes, self.dim)
        if w is None:
            raise ValueError("update_agreement needs the classifier weight (K, d)")
        if self._agree_classifier is None:
            self._agree_classifier = (w, b)
        elif not _same_classifier(self._agree_classifier, (w, b)):
            raise ValueError("update_agreement got a different classifier than in earlier calls")
        x, y = self._check_batch(features, labels)
        agree = _classify(x, w, b) == _nearest_mean(x, self._means)
        self._agree += torch.bincount(y[agree], minlength=self.num_classes)
        self._agree_seen += torch.bincount(y, minlength=self.num_classes)

    def compute(
        self,
        weight: ArrayLike | None = None,
        bias: ArrayLike | None = None,
        *,
        minority: ArrayLike | None = None,
        global_mean: str = "balanced",
        pinv_rtol: float = PINV_RTOL,
    ) -> NCMetrics:
        """The metrics of everything seen so far; arguments as in :func:`nc_metrics`.

        ``ncc_agreement`` is None unless :meth:`update_agreement` covered every sample.
        """
        self._check_all_seen()
        ncc_agree = None
        if self._agree_classifier is not None and weight is not None:
            w, b = _check_classifier(weight, bias, self.num_classes, self.dim)
            if not _same_classifier(self._agree_classifier, (w, b)):
                raise ValueError("compute got a different classifier than update_agreement")
            if not torch.equal(self._agree_seen, self._counts):
                raise ValueError(
                    f"update_agreement saw {self._agree_seen.tolist()} samples per class but "
                    f"update saw {self._counts.tolist()}: pass the same samples to both"
                )
            ncc_agree = self._agree
        return metrics_from_class_stats(
            self._counts,
            self._means,
            self._scatter,
            weight,
            bias,
            minority=minority,
            global_mean=global_mean,
            within=self.within,
            ncc_agree=ncc_agree,
            pinv_rtol=pinv_rtol,
        )

    def _check_batch(self, features: ArrayLike, labels: ArrayLike) -> tuple[torch.Tensor, ...]:
        x = as_float64(features, "features", ndim=2)
        if x.shape[1] != self.dim:
            raise ValueError(f"features must have {self.dim} columns, got {x.shape[1]}")
        return x, _as_labels(labels, x.shape[0], self.num_classes)

    def _check_all_seen(self) -> None:
        absent = (self._counts == 0).nonzero().flatten().tolist()
        if absent:
            raise ValueError(
                f"class(es) {absent} have no samples; every one of the {self.num_classes} "
                "classes needs at least one sample (an absent class has no mean)"
            )


_WEIGHT_FIELDS = (
    "equinorm_weights",
    "equiangular_weights",
    "etf_distance_weights",
    "self_duality",
    "ncc_agreement",
    "mc_weights",
    "classifier_norms",
    "nc4_per_class",
    "mean_classifier_cosine",
)


def _as_labels(
    labels: ArrayLike, n: int, num_classes: int | None, name: str = "labels"
) -> torch.Tensor:
    """Validate (n,) integer labels in [0, num_classes); num_classes None checks >= 0 only."""
    t = labels if torch.is_tensor(labels) else torch.as_tensor(np.asarray(labels))
    t = t.detach().cpu()
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must be integers, got dtype {t.dtype}")
    if t.ndim != 1 or t.numel() != n:
        raise ValueError(f"{name} must have shape ({n},) to match, got {tuple(t.shape)}")
    t = t.to(torch.long)
    if n and (t.min() < 0 or (num_classes is not None and t.max() >= num_classes)):
        allowed = "be >= 0" if num_classes is None else f"lie in [0, {num_classes})"
        raise ValueError(f"{name} must {allowed}, got values in [{t.min()}, {t.max()}]")
    return t


def _check_classifier(
    weight: ArrayLike | None, bias: ArrayLike | None, k: int, d: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if weight is None:
        if bias is not None:
            raise ValueError("bias given without weight")
        return None, None
    w = as_float64(weight, "weight", ndim=2)
    if w.shape != (k, d):
        raise ValueError(f"weight must have shape (K, d) = ({k}, {d}), got {tuple(w.shape)}")
    if bias is None:
        return w, torch.zeros(k, dtype=torch.float64)
    b = as_float64(bias, "bias", ndim=1)
    if b.shape != (k,):
        raise ValueError(f"bias must have shape (K,) = ({k},), got {tuple(b.shape)}")
    return w, b


def _same_classifier(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _check_minority(minority: ArrayLike, k: int) -> list[int]:
    idx = [int(i) for i in np.asarray(minority).reshape(-1)]
    if not idx or len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= k:
        raise ValueError(f"minority must list distinct class indices in [0, {k}), got {idx}")
    return idx


def _check_agree(agree: ArrayLike, n: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(np.asarray(agree) if not torch.is_tensor(agree) else agree).to(torch.long)
    if a.shape != n.shape or (a < 0).any() or (a > n).any():
        raise ValueError(f"ncc_agree must be (K,) integers in [0, n_k], got {a.tolist()}")
    return a


def _sigma_w(scatter: ArrayLike | None, nf: torch.Tensor, d: int, within: str) -> torch.Tensor:
    """Sigma_W (d, d) from the un-normalised scatter, under the ``within`` convention."""
    if scatter is None:
        return torch.zeros(d, d, dtype=torch.float64)
    s = as_float64(scatter, "within_scatter")
    k = nf.numel()
    if s.shape == (k, d, d):
        return (s / nf[:, None, None]).mean(dim=0) if within == "class" else s.sum(0) / nf.sum()
    if s.shape == (d, d):
        if within == "class":
            raise ValueError("within='class' needs the per-class scatter of shape (K, d, d)")
        return s / nf.sum()
    raise ValueError(f"within_scatter must be ({d}, {d}) or ({k}, {d}, {d}), got {tuple(s.shape)}")


def _nc1(mbar: torch.Tensor, sigma_w: torch.Tensor, rtol: float) -> float:
    """Tr(Sigma_W Sigma_B^+) / K with Sigma_B = Mbar^T Mbar / K, through the SVD of Mbar.

    With Mbar = P S Q^T, Sigma_B^+ = Q (K / S^2) Q^T over the kept singular values, so
    NC1 = sum_i q_i^T Sigma_W q_i / s_i^2.
    """
    _, s, qt = torch.linalg.svd(mbar, full_matrices=False)
    if float(s.max()) == 0.0:
        return 0.0
    keep = s**2 > rtol * float(s.max()) ** 2
    q = qt[keep]
    quad = ((q @ sigma_w) * q).sum(dim=1)
    return max(float((quad / s[keep] ** 2).sum()), 0.0)


def _snap_zero_rows(a: torch.Tensor, tol: float) -> torch.Tensor:
    return torch.where(a.norm(dim=1, keepdim=True) <= tol, 0.0, a)


def _unit_rows(a: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length; zero rows stay zero (their cosines are defined as 0)."""
    norms = a.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, a / norms.clamp(min=torch.finfo(a.dtype).tiny), 0.0)


def _unit_frobenius(a: torch.Tensor) -> torch.Tensor:
    norm = a.norm()
    return a / norm if norm > 0 else torch.zeros_like(a)


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (_unit_rows(a) @ _unit_rows(b).T).clamp(-1.0, 1.0)


def _pairwise(cos: torch.Tensor) -> torch.Tensor:
    """The K(K-1)/2 entries above the diagonal."""
    i, j = torch.triu_indices(cos.shape[0], cos.shape[0], offset=1)
    return cos[i, j]


def _equinorm(norms: torch.Tensor) -> float:
    mean = float(norms.mean())
    return 0.0 if mean == 0.0 else float(norms.std(unbiased=False)) / mean


def _etf_distance(a: torch.Tensor) -> float:
    k = a.shape[0]
    target = (torch.eye(k, dtype=torch.float64) - 1.0 / k) / (k - 1) ** 0.5
    return (_unit_frobenius(a @ a.T) - target).norm().item()


def _mc(cos: torch.Tensor, idx: list[int] | None) -> float | None:
    """Mean pairwise cosine among the classes ``idx``; None without a pair (0 or 1 class)."""
    return None if idx is None or len(idx) < 2 else _pairwise(cos[idx][:, idx]).mean().item()


def _classify(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (x @ w.T + b).argmax(dim=1)


def _nearest_mean(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Index of the nearest class mean for each row of x (ties: lowest index)."""
    return torch.cdist(x, means, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
