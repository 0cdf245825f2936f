"""The unconstrained-features model (UFM, or layer-peeled model): neural collapse in seconds.

The penultimate features h_i are free variables, trained together with the classifier W (K, d)
(Mixon et al. 2020; Fang et al. 2021). The objective, with pi_k = n_k / N:

    F(W, H) = (1/N) sum_i CE(W h_i, y_i) + (lambda_W / 2) ||W||_F^2 + (lambda_H / 2) R(H)
              [+ lambda_p P2P(class means, W)]

with the feature penalty R chosen by ``feature_penalty``:

- ``"class"`` (default): R = (1/K) sum_k (1/n_k) sum_{i in k} ||h_i||^2, every class's mean
  squared feature norm counted equally: the Lagrangian form of Fang et al.'s layer-peeled model,
  whose feature-norm budget is shared by the classes. Minority classes, whose samples weigh
  little in the loss, then get shorter features, and a fixed-ETF classifier leaves the
  minority means squeezed: the whole story of AllNC.
- ``"sample"``: R = (1/N) sum_i ||h_i||^2 (plain weight decay on every sample's feature). As the
  weight decays go to 0 this model approaches ``geometry.seli_geometry(counts)`` (Thrampoulidis
  et al. 2022); here the minority classifiers collapse but the minority means do not shrink.

At balance both are the same, and the optimum is a simplex ETF with the norms of
:func:`balanced_norms`.

**Why only class means are optimised.** Given W, F is strictly convex in each h_i (CE is
convex in the logits and the penalty is strictly convex), and h_i enters only through its own
term and its class mean, so at any stationary point all features of a class coincide. The
simulator therefore trains the K class means m_k (weighted by pi_k): exact, and independent of
N. The objective in the means is
F = sum_k pi_k CE(W m_k, k) + (lambda_W/2)||W||^2 + (lambda_H/2) sum_k rho_k ||m_k||^2 [+ P2P],
rho_k = 1/K ("class") or pi_k ("sample").

**Dynamics (what the history shows).** Gradient descent in which every sample's feature moves
with the same learning rate: the gradient with respect to m_k is divided by pi_k. P2P acts on
class means and is scale-invariant, hence stiff for short or minority means, so with P2P the
divisor is pi_k + 4 eta lambda_p / (K^2 ||m~_k||^2) (and W's rows get the matching damping);
a positive preconditioner, so the fixed points are unchanged. Weight-decay terms are taken
implicitly (a proximal step, stable for any step size). Within-class deviations e_i = h_i - m_k
start as seeded Gaussian noise and follow the same per-sample gradient, linearised around the
class mean (exact to first order in the spread, which only shrinks):
e <- (I - eta_k pi_k W^T S_k W) e / (1 + eta_k lambda_H rho_k), eta_k the class's step and S_k
the softmax Hessian at the mean. They never move the means (they sum to zero per class, and P2P
sees only means), so NC1 in the history is meaningful and the means stay exact. The linear maps
are accumulated per class, so the per-sample features are only formed when asked for.

Everything is float64 NumPy, except the P2P term, whose gradient comes from
``losses.p2p_loss`` through autograd (it computes in float32, so with P2P the run stops at a
step tolerance of 1e-5 rather than near machine precision, and takes about 1 ms a step).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import ArrayLike, as_counts
from .geometry import simplex_etf

LOSSES = ("ce",)
CLASSIFIERS = ("learned", "etf")
FEATURE_PENALTIES = ("class", "sample")
DEFAULT_WEIGHT_DECAY = 5e-3
DEFAULT_STEPS = 4000
DEFAULT_STEP_SIZE = 4.0
P2P_STEP_SIZE = 1.0  # P2P is scale-invariant, hence stiff at small norms: smaller steps
P2P_TOL = 1e-5  # losses.p2p_loss computes in float32: no finer convergence is measurable
P2P_DAMPING = 4.0  # keeps eta * (P2P curvature) / (preconditioned mass) well below 2


@dataclass(frozen=True)
class P2PTerm:
    """The AllNC term simulated in the UFM: ``lambda_p * losses.p2p_loss(means, W, mode)``.

    HyCon (individual activations) and GBBN (a two-head sampling schedule) have no counterpart
    in a model whose features collapse exactly onto their class means, so only P2P is simulated.
    """

    lambda_p: float = 1.0
    mode: str = "cross"


@dataclass
class UFMResult:
    """The outcome of :func:`simulate`.

    Attributes:
        weight: (K, d) classifier W at the end.
        means: (K, d) class means at the end (uncentred).
        features: (N, d) per-sample features (class means plus linearised deviations, samples of
            class 0 first, then class 1, ...) when asked for, else None.
        labels: (N,) labels of ``features``, or None.
        within_scatter: (K, d, d) un-normalised within-class scatter per class at the end.
        history: one dict per recorded step: ``step``, ``loss`` (the objective F), ``ce``,
            ``p2p`` (None without P2P) and every field of ``metrics.NCMetrics.as_dict()``.
        counts: (K,) the class counts.
        settings: the arguments used, with defaults filled in (JSON-friendly).
        steps_run: gradient steps taken; converged: whether the step norm fell below ``tol``.
    """

    weight: torch.Tensor
    means: torch.Tensor
    features: torch.Tensor | None
    labels: torch.Tensor | None
    within_scatter: torch.Tensor
    history: list[dict]
    counts: torch.Tensor
    settings: dict = field(default_factory=dict)
    steps_run: int = 0
    converged: bool = False

    @property
    def final(self) -> dict:
        """The metrics of the last recorded step (the end of the simulation)."""
        return self.history[-1]


def balanced_norms(
    num_classes: int, weight_decay_w: float, weight_decay_h: float
) -> tuple[float, float]:
    """Closed-form norms (||w_k||, ||m_k||) of the balanced UFM optimum, a simplex ETF.

    With W = a E and m_k = b e_k (E a unit simplex ETF, t = ab) the logits are t on the true class
    and -t/(K-1) elsewhere, and the penalty (lambda_W K a^2 + lambda_H b^2)/2 is smallest, for a
    given t, at lambda_W K a^2 = lambda_H b^2, where it equals r t with r = sqrt(K lambda_W
    lambda_H). Minimising log(1 + (K-1) exp(-c t)) + r t, c = K/(K-1), gives
    t = log((K-1)(c-r)/r)/c. For r >= 1 the optimum is W = H = 0 and (0, 0) is returned.
    """
    k = int(num_classes)
    if k < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    _check_positive(weight_decay_w, "weight_decay_w")
    _check_positive(weight_decay_h, "weight_decay_h")
    r = math.sqrt(k * weight_decay_w * weight_decay_h)
    if r >= 1.0:
        return 0.0, 0.0
    c = k / (k - 1)
    t = math.log((k - 1) * (c - r) / r) / c
    ratio = math.sqrt(weight_decay_h / (k * weight_decay_w))  # a^2 / t
    return math.sqrt(t * ratio), math.sqrt(t / ratio)


def simulate(
    counts: ArrayLike,
    *,
    loss: str = "ce",
    weight_decay_w: float = DEFAULT_WEIGHT_DECAY,
    weight_decay_h: float = DEFAULT_WEIGHT_DECAY,
    steps: int = DEFAULT_STEPS,
    dim: int | None = None,
    seed: int = 0,
    classifier: str = "learned",
    allnc: P2PTerm | Mapping | float | object | None = None,
    feature_penalty: str = "class",
    step_size: float | None = None,
    init_scale: float = 0.1,
    tol: float = 1e-8,
    return_features: bool = False,
    record_every: int | None = None,
    minority: ArrayLike | None = None,
) -> UFMResult:
    """Train the unconstrained-features model on class counts n_k (see the module docstring).

    Args:
        counts: (K,) positive integers n_k.
        loss: "ce" (cross-entropy, no bias).
        weight_decay_w, weight_decay_h: lambda_W, lambda_H > 0 (default 5e-3, the CIFAR-LT
            recipe's weight decay; with it the step profile at IR 1000 shows minority collapse).
        steps: maximum number of gradient steps; the run stops earlier once converged.
        dim: feature dimension d >= K-1 (default K).
        seed: seeds the initial W, means and within-class deviations.
        classifier: "learned", or "etf": W fixed to a simplex ETF with the row norm a balanced
            run would learn (:func:`balanced_norms`), the classifier-only fix.
        allnc: add the P2P term: a :class:`P2PTerm`, a ``lambda_p`` number, a dict with keys
            ``lambda_p`` / ``mode`` (or ``p2p_mode``), or an ``allnc.AllNCConfig`` (its
            ``p2p``, ``lambda_p`` and ``p2p_mode`` are used).
        feature_penalty: "class" (default) or "sample", see the module docstring.
        step_size: gradient step eta, the per-sample learning rate (default 4, or 1 with P2P);
            init_scale: typical norm of the initial rows of W, means and deviations;
            tol: stop when the step norm / eta < tol (at least 1e-5 with P2P).
        return_features: also return the (N, d) per-sample features.
        record_every: record metrics every this many steps (default: about 40 records).
        minority: classes for MC_W / MC_H (default ``data.minority_classes(counts)``).
    """
    from .data import minority_classes
    from .metrics import metrics_from_class_stats

    n = as_counts(counts)
    k = n.numel()
    settings = _check_settings(
        k,
        loss,
        weight_decay_w,
        weight_decay_h,
        steps,
        dim,
        classifier,
        feature_penalty,
        init_scale,
        tol,
        record_every,
    )
    p2p = _as_p2p(allnc)
    if step_size is None:
        step_size = DEFAULT_STEP_SIZE if p2p is None else P2P_STEP_SIZE
    settings["step_size"] = _check_positive(step_size, "step_size")
    d = settings["dim"]
    minority = minority_classes(n) if minority is None else [int(i) for i in minority]
    settings.update(seed=int(seed), allnc=None if p2p is None else vars(p2p), minority=minority)

    nf = n.to(torch.float64).numpy()
    pi = nf / nf.sum()
    rho = np.full(k, 1.0 / k) if feature_penalty == "class" else pi
    eta, lam_w, lam_h = step_size, weight_decay_w, weight_decay_h
    tol = tol if p2p is None else max(tol, P2P_TOL)

    rng = np.random.default_rng(seed)
    scale = init_scale / math.sqrt(d)
    if classifier == "etf":
        w_norm, _ = balanced_norms(k, weight_decay_w, weight_decay_h)
        weight = w_norm * simplex_etf(k, d, seed=seed).numpy()
    else:
        weight = rng.normal(scale=scale, size=(k, d))
    means = rng.normal(scale=scale, size=(k, d))
    labels = np.repeat(np.arange(k), nf.astype(int))
    deviations = rng.normal(scale=scale, size=(labels.size, d))
    deviations -= _class_sums(deviations, labels, k)[labels] / nf[labels, None]
    scatter0 = np.stack([deviations[labels == c].T @ deviations[labels == c] for c in range(k)])
    propagator = np.tile(np.eye(d), (k, 1, 1))
    eye_k = np.eye(k)

    def record(step: int, probs: np.ndarray) -> dict:
        scatter = propagator @ scatter0 @ propagator.transpose(0, 2, 1)
        ce = float(-(pi * np.log(np.diagonal(probs))).sum())
        penalty = lam_w * (weight**2).sum() + lam_h * (rho * (means**2).sum(1)).sum()
        p2p_value = None if p2p is None else _p2p(means, weight, p2p)[0]
        total = ce + penalty / 2 + (p2p_value or 0.0)
        nc = metrics_from_class_stats(n, means, scatter, weight, minority=minority).as_dict()
        return {"step": step, "loss": total, "ce": ce, "p2p": p2p_value, **nc}

    history: list[dict] = []
    converged = False
    step = 0
    for step in range(steps + 1):
        probs = _softmax(means @ weight.T)
        if step % settings["record_every"] == 0:
            history.append(record(step, probs))
        if step == steps:
            break
        resid = probs - eye_k  # row k: p(W m_k) - e_k
        grad_m = pi[:, None] * (resid @ weight)
        grad_w = (pi[:, None] * resid).T @ means
        damp_m, damp_w = 0.0, 0.0
        if p2p is not None:
            _, p2p_m, p2p_w = _p2p(means, weight, p2p)
            grad_m, grad_w = grad_m + p2p_m, grad_w + p2p_w
            damp_m = P2P_DAMPING * eta * p2p.lambda_p / k**2 / _sq_norms(means - means.mean(0))
            damp_w = P2P_DAMPING * eta * p2p.lambda_p / k**2 / _sq_norms(weight)
        rate_m = eta / (pi + damp_m)  # per-class step of the means (preconditioned)
        shrink = 1.0 + rate_m * lam_h * rho  # implicit weight decay
        pw = probs @ weight
        hess = np.einsum("kc,cd,ce->kde", probs, weight, weight) - pw[:, :, None] * pw[:, None, :]
        propagator = propagator - (rate_m * pi)[:, None, None] * (hess @ propagator)
        propagator /= shrink[:, None, None]
        new_means = (means - rate_m[:, None] * grad_m) / shrink[:, None]
        move = ((new_means - means) ** 2).sum()
        means = new_means
        if classifier == "learned":
            rate_w = (eta / (1.0 + damp_w))[:, None] if p2p is not None else eta
            new_weight = (weight - rate_w * grad_w) / (1.0 + rate_w * lam_w)
            move += ((new_weight - weight) ** 2).sum()
            weight = new_weight
        if not np.isfinite(move):
            raise ValueError(f"the simulation diverged; lower step_size (got {step_size})")
        if math.sqrt(move) / eta < tol:
            converged = True
            break
    steps_run = step + 1 if converged else step
    if history[-1]["step"] != steps_run:
        history.append(record(steps_run, _softmax(means @ weight.T)))

    scatter = propagator @ scatter0 @ propagator.transpose(0, 2, 1)
    features = None
    if return_features:
        moved = np.einsum("nij,nj->ni", propagator[labels], deviations)
        features = torch.from_numpy(means[labels] + moved)
    return UFMResult(
        weight=torch.from_numpy(weight),
        means=torch.from_numpy(means),
        features=features,
        labels=torch.from_numpy(labels) if return_features else None,
        within_scatter=torch.from_numpy(scatter),
        history=history,
        counts=n,
        settings=settings,
        steps_run=steps_run,
        converged=converged,
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _sq_norms(rows: np.ndarray) -> np.ndarray:
    return np.maximum((rows**2).sum(axis=1), np.finfo(float).tiny)


def _class_sums(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, x.shape[1]))
    np.add.at(out, labels, x)
    return out


def _p2p(means: np.ndarray, weight: np.ndarray, term: P2PTerm) -> tuple[float, ...]:
    """lambda_p * P2P and its gradients with respect to the means and W (float64 arrays)."""
    from .losses import p2p_loss

    m = torch.from_numpy(means).requires_grad_(True)
    w = torch.from_numpy(weight).requires_grad_(True)
    value = term.lambda_p * p2p_loss(m, w, mode=term.mode)
    grad_m, grad_w = torch.autograd.grad(value, (m, w))
    return value.item(), grad_m.double().numpy(), grad_w.double().numpy()


def _as_p2p(allnc: P2PTerm | Mapping | float | object | None) -> P2PTerm | None:
    """Normalise the ``allnc`` argument of :func:`simulate` to a P2PTerm (or None)."""
    if allnc is None or isinstance(allnc, P2PTerm):
        term = allnc
    elif isinstance(allnc, bool):
        raise ValueError("allnc must be None, a lambda_p number, a dict or a config, not a bool")
    elif isinstance(allnc, int | float):
        term = P2PTerm(lambda_p=float(allnc))
    elif isinstance(allnc, Mapping):
        unknown = set(allnc) - {"lambda_p", "mode", "p2p_mode"}
        if unknown:
            raise ValueError(
                f"allnc dict keys must be among lambda_p, mode, p2p_mode; got {sorted(unknown)}"
            )
        mode = allnc.get("mode", allnc.get("p2p_mode", "cross"))
        term = P2PTerm(lambda_p=float(allnc.get("lambda_p", 1.0)), mode=mode)
    elif hasattr(allnc, "lambda_p") and hasattr(allnc, "p2p_mode"):
        if not getattr(allnc, "p2p", True):
            return None
        term = P2PTerm(lambda_p=float(allnc.lambda_p), mode=allnc.p2p_mode)
    else:
        raise ValueError(
            "allnc must be None, a lambda_p number, a dict, a P2PTerm or an AllNCConfig; "
            f"got {type(allnc).__name__}"
        )
    if term is None:
        return None
    from .losses import P2P_MODES

    if term.mode not in P2P_MODES:
        raise ValueError(f"P2P mode must be one of {P2P_MODES}, got {term.mode!r}")
    if not (math.isfinite(term.lambda_p) and term.lambda_p >= 0):
        raise ValueError(f"lambda_p must be a finite number >= 0, got {term.lambda_p!r}")
    return term if term.lambda_p > 0 else None


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_settings(
    k: int,
    loss: str,
    weight_decay_w: float,
    weight_decay_h: float,
    steps: int,
    dim: int | None,
    classifier: str,
    feature_penalty: str,
    init_scale: float,
    tol: float,
    record_every: int | None,
) -> dict:
    for value, name, allowed in (
        (loss, "loss", LOSSES),
        (classifier, "classifier", CLASSIFIERS),
        (feature_penalty, "feature_penalty", FEATURE_PENALTIES),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    lam_w = _check_positive(weight_decay_w, "weight_decay_w")
    lam_h = _check_positive(weight_decay_h, "weight_decay_h")
    if k * lam_w * lam_h >= 1.0:
        raise ValueError(
            f"weight decays too strong: with sqrt(K * weight_decay_w * weight_decay_h) >= 1 "
            f"the optimum is W = H = 0 (K={k}, got {weight_decay_w}, {weight_decay_h})"
        )
    steps = _check_int(steps, "steps", 1)
    d = k if dim is None else _check_int(dim, "dim", max(k - 1, 1))
    if record_every is None:
        record_every = max(1, steps // 40)
    return {
        "loss": loss,
        "weight_decay_w": lam_w,
        "weight_decay_h": lam_h,
        "steps": steps,
        "dim": d,
        "classifier": classifier,
        "feature_penalty": feature_penalty,
        "init_scale": _check_positive(init_scale, "init_scale"),
        "tol": _check_positive(tol, "tol"),
        "record_every": _check_int(record_every, "record_every", 1),
    }
