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

**Dynamics without P2P (what the history shows).** Gradient descent in which every sample's
feature moves with the same learning rate: the gradient with respect to m_k is divided by pi_k.
Weight-decay terms are taken implicitly (a proximal step, stable for any step size).
Within-class deviations e_i = h_i - m_k start as seeded Gaussian noise and follow the same
per-sample gradient, linearised around the class mean (exact to first order in the spread, which
only shrinks): e <- (I - eta_k pi_k W^T S_k W) e / (1 + eta_k lambda_H rho_k), eta_k = eta / pi_k
and S_k the softmax Hessian at the mean. They never move the means (they sum to zero per class),
so NC1 in the history is meaningful and the means stay exact. The linear maps are accumulated per
class, so the per-sample features are only formed when asked for. Everything is float64 NumPy.

**With P2P: a solver, not training.** P2P is scale-invariant in each classifier row and in the
centred means, hence stiff along short (minority) rows: gradient descent needs ~2000 small steps.
Instead F is minimised directly by L-BFGS (backtracking line search) whose initial inverse Hessian
is diagonal, per row 1 / (CE curvature + weight decay + lambda_p / (K^2 ||row||^2)), recomputed
at every iterate: 50-250 iterations for K <= 10, to the same optimum. So with P2P the history
records the solver's iterates, not training steps, and the within-class deviations are not
simulated: every feature sits at its class mean (NC1 = 0 throughout, its value at the optimum).
F is float64: CE in NumPy, P2P's value and gradient from ``losses.p2p_loss`` (float64 in,
float64 out) through autograd, about 0.5 ms a call. The run stops when the largest entry of the
gradient rescaled by that preconditioner, g_i sqrt(D_i), is below ``tol``; at least 1e-8, since
smaller gradients change F by less than its float64 rounding and the line search stalls. The
final metrics then agree within 1e-6 with a run to the float64 floor (measured: <= 2e-7).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import ArrayLike, as_counts, check_choice, check_num_classes, check_scalar
from .data import long_tail_counts
from .geometry import seli_geometry, simplex_etf
from .groups import minority_classes
from .losses import P2P_MODES, p2p_loss
from .metrics import metrics_from_class_stats

LOSSES = ("ce",)
CLASSIFIERS = ("learned", "etf")
FEATURE_PENALTIES = ("class", "sample")
DEFAULT_WEIGHT_DECAY = 5e-3
DEFAULT_STEPS = 4000
DEFAULT_STEP_SIZE = 4.0
P2P_TOL = 1e-8  # smallest tolerance with P2P: below it steps change F less than float64 rounding
P2P_RECORD_EVERY = 10  # default record interval with P2P, in solver iterations (~3 ms each)
LBFGS_MEMORY = 10  # curvature pairs kept by the P2P solver


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
        steps_run: gradient steps taken (with P2P: solver iterations); converged: whether the
            step norm (with P2P: the rescaled gradient) fell below ``tol``.
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
    k = check_num_classes(num_classes)
    _check_positive(weight_decay_w, "weight_decay_w")
    _check_positive(weight_decay_h, "weight_decay_h")
    r = math.sqrt(k * weight_decay_w * weight_decay_h)
    if r >= 1.0:
        return 0.0, 0.0
    c = k / (k - 1)
    t = math.log((k - 1) * (c - r) / r) / c
    ratio = math.sqrt(weight_decay_h / (k * weight_decay_w))  # a^2 / t
    return math.sqrt(t * ratio), math.sqrt(t / ratio)


@np.errstate(over="ignore", divide="ignore", invalid="ignore")  # non-finite values raise
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
        steps: maximum number of gradient steps (with P2P: L-BFGS iterations); the run stops
            earlier once converged.
        dim: feature dimension d >= K-1 (default K).
        seed: seeds the initial W, means and within-class deviations.
        classifier: "learned", or "etf": W fixed to a simplex ETF with the row norm a balanced
            run would learn (:func:`balanced_norms`), the classifier-only fix.
        allnc: add the P2P term: a :class:`P2PTerm`, a ``lambda_p`` number, a dict with keys
            ``lambda_p`` / ``mode`` (or ``p2p_mode``), or an ``allnc.AllNCConfig`` (its
            ``p2p``, ``lambda_p`` and ``p2p_mode`` are used).
        feature_penalty: "class" (default) or "sample", see the module docstring.
        step_size: gradient step eta, the per-sample learning rate (default 4; unused with P2P);
            init_scale: typical norm of the initial rows of W, means and deviations;
            tol: stop when the step norm / eta < tol (with P2P: when the largest rescaled
            gradient entry < tol, at least ``P2P_TOL``; see the module docstring).
        return_features: also return the (N, d) per-sample features (with P2P: the means).
        record_every: record metrics every this many steps (default: about 40 records; with
            P2P every 10 iterations).
        minority: classes for MC_W / MC_H (default ``groups.minority_classes(counts)``: for K = 2
            the smaller class alone, and MC_W / MC_H, cosines among minority pairs, are None).

    Raises:
        ValueError: a bad argument, or the simulation diverged (a NaN or Inf objective, or a
            step too large to compute), naming the step and the step size to lower.
    """

    n = as_counts(counts)
    k = n.numel()
    p2p = _as_p2p(allnc)
    if record_every is None and p2p is not None:
        record_every = P2P_RECORD_EVERY
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
    step_size = DEFAULT_STEP_SIZE if step_size is None else step_size
    settings["step_size"] = _check_positive(step_size, "step_size")
    d = settings["dim"]
    minority = minority_classes(n) if minority is None else [int(i) for i in minority]
    seed = check_scalar("seed", seed, kind=int)
    return_features = check_scalar("return_features", return_features, kind=bool)
    settings.update(seed=seed, allnc=None if p2p is None else vars(p2p), minority=minority)

    nf = n.to(torch.float64).numpy()
    pi = nf / nf.sum()
    rho = np.full(k, 1.0 / k) if feature_penalty == "class" else pi
    eta, lam_w, lam_h = step_size, weight_decay_w, weight_decay_h

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
        p2p_value = None if p2p is None else _p2p(means, weight, p2p, grad=False)[0]
        total = ce + penalty / 2 + (p2p_value or 0.0)
        if not math.isfinite(total):
            _diverged(total, step, None if p2p is not None else step_size)
        nc = metrics_from_class_stats(n, means, scatter, weight, minority=minority).as_dict()
        return {"step": step, "loss": total, "ce": ce, "p2p": p2p_value, **nc}

    history: list[dict] = []
    if p2p is not None:
        propagator = np.zeros((k, d, d))  # features at their class means: see the module docstring

        def on_iterate(iteration: int, new_means: np.ndarray, new_weight: np.ndarray) -> None:
            nonlocal means, weight
            means, weight = new_means, new_weight
            if iteration % settings["record_every"] == 0:
                history.append(record(iteration, _softmax(means @ weight.T)))

        history.append(record(0, _softmax(means @ weight.T)))
        objective = _Objective(pi, rho, lam_w, lam_h, p2p)
        steps_run, converged = objective.minimise(
            means, weight, classifier == "learned", steps, max(tol, P2P_TOL), on_iterate
        )
    else:
        converged = False
        step = 0
        rate_m = eta / pi  # per-class step of the means: the same step for every sample
        shrink = 1.0 + rate_m * lam_h * rho  # implicit weight decay
        for step in range(steps + 1):
            probs = _softmax(means @ weight.T)
            if step % settings["record_every"] == 0:
                history.append(record(step, probs))
            if step == steps:
                break
            resid = probs - eye_k  # row k: p(W m_k) - e_k
            grad_m = pi[:, None] * (resid @ weight)
            grad_w = (pi[:, None] * resid).T @ means
            pw = probs @ weight
            hess = np.einsum("kc,cd,ce->kde", probs, weight, weight)
            hess -= pw[:, :, None] * pw[:, None, :]
            propagator = propagator - (rate_m * pi)[:, None, None] * (hess @ propagator)
            propagator /= shrink[:, None, None]
            new_means = (means - rate_m[:, None] * grad_m) / shrink[:, None]
            move = ((new_means - means) ** 2).sum()
            means = new_means
            if classifier == "learned":
                new_weight = (weight - eta * grad_w) / (1.0 + eta * lam_w)
                move += ((new_weight - weight) ** 2).sum()
                weight = new_weight
            if not np.isfinite(move):
                _diverged(move, step + 1, step_size)
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


def _p2p(
    means: np.ndarray, weight: np.ndarray, term: P2PTerm, grad: bool = True
) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """lambda_p * P2P from ``losses.p2p_loss`` and (if ``grad``) its float64 gradients."""

    m = torch.from_numpy(means).requires_grad_(grad)
    w = torch.from_numpy(weight).requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        value = term.lambda_p * p2p_loss(m, w, mode=term.mode)
    if not grad:
        return value.item(), None, None
    grad_m, grad_w = torch.autograd.grad(value, (m, w))
    return value.item(), grad_m.numpy(), grad_w.numpy()


@dataclass(frozen=True)
class _Objective:
    """F of the module docstring with the P2P term, on the class means (and W), for L-BFGS."""

    pi: np.ndarray
    rho: np.ndarray
    lam_w: float
    lam_h: float
    term: P2PTerm

    def value_and_grads(
        self, means: np.ndarray, weight: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """(F, dF/dmeans, dF/dW): the CE part in closed form, P2P's by autograd."""
        logits = means @ weight.T
        top = logits.max(axis=1, keepdims=True)
        z = np.exp(logits - top)
        total = z.sum(axis=1, keepdims=True)
        ce = self.pi @ (np.log(total[:, 0]) + top[:, 0] - np.diagonal(logits))
        resid = self.pi[:, None] * (z / total - np.eye(len(self.pi)))
        penalty = self.lam_w * (weight**2).sum() + self.lam_h * (self.rho * (means**2).sum(1)).sum()
        p2p, p2p_m, p2p_w = _p2p(means, weight, self.term)
        grad_m = resid @ weight + self.lam_h * self.rho[:, None] * means + p2p_m
        grad_w = resid.T @ means + self.lam_w * weight + p2p_w
        return ce + penalty / 2 + p2p, grad_m, grad_w

    def inverse_curvature(self, means: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """(2K,) rough inverse curvature of F along each row of the means, then of W.

        Per row: the trace of the CE Hessian block / d, the weight decay, and lambda_p / (K^2
        ||row||^2) for P2P, which only sees directions (centred means, W rows), so its curvature
        grows as a row shrinks. A preconditioner only: it changes the path, not the optimum.
        """
        k, d = means.shape
        probs = _softmax(means @ weight.T)
        sq_w = (weight**2).sum(axis=1)
        ce_m = self.pi * (probs @ sq_w - ((probs @ weight) ** 2).sum(axis=1)) / d
        ce_w = (self.pi[:, None] * probs * (1.0 - probs)).T @ (means**2).sum(axis=1) / d
        stiff = self.term.lambda_p / k**2
        curv_m = ce_m + self.lam_h * self.rho + stiff / _sq_norms(means - means.mean(axis=0))
        curv_w = ce_w + self.lam_w + stiff / _sq_norms(weight)
        return 1.0 / np.concatenate([curv_m, curv_w])

    def minimise(
        self,
        means: np.ndarray,
        weight: np.ndarray,
        learn_w: bool,
        max_iter: int,
        tol: float,
        on_iterate: Callable[[int, np.ndarray, np.ndarray], None],
    ) -> tuple[int, bool]:
        """L-BFGS over the means (and W if ``learn_w``); every iterate goes to ``on_iterate``.

        Returns (iterations, converged); the final state is the last one reported.
        """
        k, d = means.shape

        def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = x.reshape(-1, d)
            return rows[:k], (rows[k:] if learn_w else weight)

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad_m, grad_w = self.value_and_grads(*unpack(x))
            return value, (np.concatenate([grad_m, grad_w]) if learn_w else grad_m).ravel()

        def inverse_curvature(x: np.ndarray) -> np.ndarray:
            rows = self.inverse_curvature(*unpack(x))
            return np.repeat(rows[: x.size // d], d)

        start = np.concatenate([means, weight]) if learn_w else means
        return _lbfgs(
            fun,
            start.ravel(),
            inverse_curvature,
            max_iter,
            tol,
            lambda iteration, x: on_iterate(iteration, *unpack(x)),
        )


def _lbfgs(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    inverse_curvature: Callable[[np.ndarray], np.ndarray],
    max_iter: int,
    tol: float,
    on_iterate: Callable[[int, np.ndarray], None],
) -> tuple[int, bool]:
    """Minimise ``fun`` (x -> (value, gradient)) by L-BFGS with a diagonal initial inverse Hessian.

    D = ``inverse_curvature(x)`` (> 0) at each iterate, scaled by the latest secant pair
    (s^T y / y^T D y); backtracking (Armijo) line search from the full step; pairs with
    s^T y <= 0 are skipped. Stops when max_i |g_i| sqrt(D_i) < tol (converged), after
    ``max_iter`` iterations, or when no step decreases ``fun`` (not converged).
    ``on_iterate(iteration, x)`` follows every accepted step. Returns (iterations, converged).
    """
    value, grad = fun(x)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    for iteration in range(max_iter + 1):
        diag = inverse_curvature(x)
        if np.abs(grad * np.sqrt(diag)).max() < tol:
            return iteration, True
        if iteration == max_iter:
            break
        direction = -_two_loop(grad, pairs, diag)
        slope = grad @ direction
        if not slope < 0:  # not a descent direction: forget the curvature pairs
            pairs.clear()
            direction = -diag * grad
            slope = grad @ direction
        t = 1.0
        while True:
            new_value, new_grad = fun(x + t * direction)
            if new_value <= value + 1e-4 * t * slope:
                break
            t /= 2.0
            if t < 1e-10:
                return iteration, False
        step, change = t * direction, new_grad - grad
        if step @ change > 1e-12 * math.sqrt((step @ step) * (change @ change)):
            pairs = [*pairs[1 - LBFGS_MEMORY :], (step, change, 1.0 / (step @ change))]
        x, value, grad = x + step, new_value, new_grad
        on_iterate(iteration + 1, x)
    return max_iter, False


def _two_loop(
    grad: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray, float]], diag: np.ndarray
) -> np.ndarray:
    """The L-BFGS two-loop recursion: H grad, H the inverse Hessian built on D and the pairs."""
    q = grad.copy()
    alphas = []
    for s, y, r in reversed(pairs):
        alphas.append(r * (s @ q))
        q -= alphas[-1] * y
    if pairs:
        s, y, _ = pairs[-1]
        diag = diag * ((s @ y) / (y @ (diag * y)))
    out = diag * q
    for (s, y, r), alpha in zip(pairs, reversed(alphas), strict=True):
        out += s * (alpha - r * (y @ out))
    return out


def _as_p2p(allnc: P2PTerm | Mapping | float | object | None) -> P2PTerm | None:
    """Normalise the ``allnc`` argument of :func:`simulate` to a P2PTerm (or None)."""
    if allnc is None or isinstance(allnc, P2PTerm):
        term = allnc
    elif isinstance(allnc, bool):
        raise ValueError("allnc must be None, a lambda_p number, a dict or a config, not a bool")
    elif isinstance(allnc, int | float):
        term = P2PTerm(lambda_p=allnc)
    elif isinstance(allnc, Mapping):
        unknown = set(allnc) - {"lambda_p", "mode", "p2p_mode"}
        if unknown:
            raise ValueError(
                f"allnc dict keys must be among lambda_p, mode, p2p_mode; got {sorted(unknown)}"
            )
        mode = allnc.get("mode", allnc.get("p2p_mode", "cross"))
        term = P2PTerm(lambda_p=allnc.get("lambda_p", 1.0), mode=mode)
    elif hasattr(allnc, "lambda_p") and hasattr(allnc, "p2p_mode"):
        if not getattr(allnc, "p2p", True):
            return None
        term = P2PTerm(lambda_p=allnc.lambda_p, mode=allnc.p2p_mode)
    else:
        raise ValueError(
            "allnc must be None, a lambda_p number, a dict, a P2PTerm or an AllNCConfig; "
            f"got {type(allnc).__name__}"
        )
    if term is None:
        return None

    lambda_p = check_scalar("lambda_p", term.lambda_p, low=0)
    mode = check_choice("P2P mode", term.mode, P2P_MODES)
    return P2PTerm(lambda_p, mode) if lambda_p > 0 else None


def _diverged(value: float, step: int, step_size: float | None) -> None:
    """Raise the one-line error of a diverged simulation (``step_size`` None: the P2P solver)."""
    fix = f"lower step_size (got {step_size})"
    if step_size is None:
        fix = "lower lambda_p or the weight decays"
    raise ValueError(f"the simulation diverged: a non-finite value ({value}) at step {step}; {fix}")


def _check_positive(value: float, name: str) -> float:
    return check_scalar(name, value, low=0, include_low=False)


def _check_int(value: int, name: str, minimum: int) -> int:
    return check_scalar(name, value, kind=int, low=minimum)


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
    check_choice("loss", loss, LOSSES)
    check_choice("classifier", classifier, CLASSIFIERS)
    check_choice("feature_penalty", feature_penalty, FEATURE_PENALTIES)
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


def minority_norm_ratios(record: Mapping) -> tuple[float, float]:
    """(minority / majority classifier norm, minority / majority centred-mean norm) of a record.

    ``record`` is a history entry of :func:`simulate` (or any ``NCMetrics.as_dict()`` with a
    classifier and ``minority``); each ratio compares the average norms of the two groups, so it
    is 1 at an ETF and falls below 1 as the minority rows shrink.
    """
    minority = record.get("minority")
    k = record.get("num_classes")
    if not minority or record.get("classifier_norms") is None:
        raise ValueError("the record needs minority classes and classifier_norms (a classifier)")
    majority = [c for c in range(k) if c not in minority]
    if not majority:
        raise ValueError("every class is a minority class: no majority to compare with")

    def ratio(norms: list[float]) -> float:
        values = np.asarray(norms, dtype=float)
        return float(values[minority].mean() / values[majority].mean())

    return ratio(record["classifier_norms"]), ratio(record["mean_norms"])


def imbalance_sweep(
    ratios: ArrayLike,
    *,
    num_classes: int = 4,
    n_max: int = 1000,
    profile: str = "step",
    **simulate_kwargs,
) -> list[dict]:
    """Run :func:`simulate` at each imbalance ratio of a long-tailed profile.

    Counts come from ``data.long_tail_counts(n_max, num_classes, ratio, profile)`` (the step
    profile: the first K//2 classes get n_max, the other K - K//2, the minority, n_max / ratio).

    Returns:
        one dict per ratio: ``ratio``, ``counts``, ``minority``, ``mc_weights``, ``mc_means``,
        ``weight_norm_ratio`` and ``mean_norm_ratio`` (:func:`minority_norm_ratios`),
        ``etf_distance_weights``, ``etf_distance_means``, ``self_duality``, ``steps_run``,
        ``converged``.
    """

    values = np.asarray(ratios, dtype=float).reshape(-1)
    if values.size == 0:
        raise ValueError("ratios must hold at least one imbalance ratio >= 1, got none")
    records = []
    for ratio in values.tolist():
        counts = long_tail_counts(n_max, num_classes, ratio, profile=profile)
        result = simulate(counts, **simulate_kwargs)
        final = result.final
        weight_ratio, mean_ratio = minority_norm_ratios(final)
        records.append(
            {
                "ratio": ratio,
                "counts": counts,
                "minority": final["minority"],
                "mc_weights": final["mc_weights"],
                "mc_means": final["mc_means"],
                "weight_norm_ratio": weight_ratio,
                "mean_norm_ratio": mean_ratio,
                "etf_distance_weights": final["etf_distance_weights"],
                "etf_distance_means": final["etf_distance_means"],
                "self_duality": final["self_duality"],
                "steps_run": result.steps_run,
                "converged": result.converged,
            }
        )
    return records


def seli_sweep(
    counts: ArrayLike,
    weight_decays: ArrayLike,
    *,
    feature_penalty: str = "sample",
    steps: int = 50_000,
    **simulate_kwargs,
) -> list[dict]:
    """Distance of the UFM optimum to ``geometry.seli_geometry(counts)`` as weight decay shrinks.

    For each lambda in ``weight_decays`` (used for both lambda_W and lambda_H) the UFM is run to
    convergence and its Gram matrices are compared with SELI's, scale removed:
    ||G / ||G||_F - G* / ||G*||_F||_F, for the classifier (W W^T) and for the class means
    centred on their class-balanced mean (M M^T against the SELI embeddings'). Both go to 0 as
    lambda -> 0 with ``feature_penalty="sample"`` (Thrampoulidis et al. 2022), slowly.

    Returns:
        one dict per lambda: ``weight_decay``, ``weight_distance``, ``means_distance``,
        ``mc_weights``, ``mc_means``, ``steps_run``, ``converged``.
    """

    lams = np.asarray(weight_decays, dtype=float).reshape(-1)
    if lams.size == 0:
        raise ValueError("weight_decays must hold at least one number > 0, got none")
    target = seli_geometry(counts)
    records = []
    for lam in lams.tolist():
        result = simulate(
            counts,
            weight_decay_w=lam,
            weight_decay_h=lam,
            feature_penalty=feature_penalty,
            steps=steps,
            **simulate_kwargs,
        )
        centred = result.means - result.means.mean(dim=0)
        records.append(
            {
                "weight_decay": lam,
                "weight_distance": _gram_distance(result.weight, target.weight),
                "means_distance": _gram_distance(centred, target.embeddings),
                "mc_weights": result.final["mc_weights"],
                "mc_means": result.final["mc_means"],
                "steps_run": result.steps_run,
                "converged": result.converged,
            }
        )
    return records


def _gram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||A A^T / ||A A^T||_F - B B^T / ||B B^T||_F||_F (a zero Gram counts as the zero matrix)."""

    def unit_gram(x: torch.Tensor) -> torch.Tensor:
        gram = x @ x.T
        norm = gram.norm()
        return gram / norm if norm > 0 else gram

    return float((unit_gram(a) - unit_gram(b)).norm())


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
