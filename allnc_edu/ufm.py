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
centred means, hence stiff along short (minority) rows: gradient descent needs ~2000 small
steps. Instead F is minimised directly by L-BFGS (SciPy's L-BFGS-B) in variables scaled by a
diagonal preconditioner, per row 1 / (CE curvature + weight decay + lambda_p / (K^2 ||row||^2)),
refreshed every ``LBFGS_RESTART`` iterations: 50-250 iterations for K <= 10, to the same
optimum. So with P2P the history records the solver's iterates, not training steps, and the
within-class deviations are not simulated: every feature sits at its class mean (NC1 = 0
throughout, its value at the optimum). F is float64: CE in NumPy, P2P's value and gradient from
``losses.p2p_loss`` (float64 in, float64 out) through autograd, about 0.5 ms a call. The run
stops when the largest entry of the gradient rescaled by that preconditioner, g_i sqrt(D_i), is
below ``tol``; at least 1e-8, since smaller gradients change F by less than its float64 rounding
and the line search stalls. The final metrics then agree within 1e-6 with a run to the float64
floor (measured: <= 2e-7)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import ArrayLike, as_counts, check_choice, check_num_classes, check_scalar
from .data import long_tail_counts
from .geometry import seli_geometry, simplex_etf
from .groups import minority_classes
from .metrics import metrics_from_class_stats
from .ufm_p2p import P2P_TOL, Objective, P2PTerm, as_p2p, p2p_term, softmax

LOSSES = ("ce",)
CLASSIFIERS = ("learned", "etf")
FEATURE_PENALTIES = ("class", "sample")
DEFAULT_WEIGHT_DECAY = 5e-3
DEFAULT_STEPS = 4000
DEFAULT_STEP_SIZE = 4.0
P2P_RECORD_EVERY = 10  # default record interval with P2P, in solver iterations (~3 ms each)


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
    p2p = as_p2p(allnc)
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
    # With P2P the features sit at their class means throughout (see the module docstring).
    carried = np.tile(np.eye(d), (k, 1, 1)) if p2p is None else np.zeros((k, d, d))
    state = _State(means, weight, carried)

    def record(step: int) -> dict:
        means, weight, probs = state.means, state.weight, softmax(state.means @ state.weight.T)
        scatter = state.propagator @ scatter0 @ state.propagator.transpose(0, 2, 1)
        ce = float(-(pi * np.log(np.diagonal(probs))).sum())
        penalty = lam_w * (weight**2).sum() + lam_h * (rho * (means**2).sum(1)).sum()
        p2p_value = None if p2p is None else p2p_term(means, weight, p2p, grad=False)[0]
        total = ce + penalty / 2 + (p2p_value or 0.0)
        if not math.isfinite(total):
            _diverged(total, step, None if p2p is not None else step_size)
        nc = metrics_from_class_stats(n, means, scatter, weight, minority=minority).as_dict()
        return {"step": step, "loss": total, "ce": ce, "p2p": p2p_value, **nc}

    history = [record(0)]
    every = settings["record_every"]

    def on_iterate(iteration: int, new_means: np.ndarray, new_weight: np.ndarray) -> None:
        state.means, state.weight = new_means, new_weight
        if iteration % every == 0:
            history.append(record(iteration))

    learn_w = classifier == "learned"
    if p2p is not None:
        objective = Objective(pi, rho, lam_w, lam_h, p2p)
        steps_run, converged = objective.minimise(
            state.means, state.weight, learn_w, steps, max(tol, P2P_TOL), on_iterate
        )
    else:
        rates = (eta, lam_w, lam_h)
        steps_run, converged = _descend(
            state, pi, rho, rates, learn_w, steps, tol, lambda t: history.append(record(t)), every
        )
    if history[-1]["step"] != steps_run:
        history.append(record(steps_run))
    means, weight, propagator = state.means, state.weight, state.propagator

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


def _class_sums(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, x.shape[1]))
    np.add.at(out, labels, x)
    return out


@dataclass
class _State:
    """The simulator's moving parts: class means (K, d), W (K, d) and the per-class linear maps
    (K, d, d) that carry the initial within-class deviations."""

    means: np.ndarray
    weight: np.ndarray
    propagator: np.ndarray


def _descend(
    state: _State,
    pi: np.ndarray,
    rho: np.ndarray,
    rates: tuple[float, float, float],
    learn_w: bool,
    steps: int,
    tol: float,
    on_record: Callable[[int], None],
    every: int,
) -> tuple[int, bool]:
    """Gradient descent without P2P (see the module docstring): per-sample learning rate,
    implicit weight decay, the deviations' linear maps carried along; ``on_record(step)`` every
    ``every`` steps after the first. Returns (steps run, converged)."""
    eta, lam_w, lam_h = rates
    rate_m = eta / pi  # per-class step of the means: the same step for every sample
    shrink = 1.0 + rate_m * lam_h * rho  # implicit weight decay
    eye_k = np.eye(len(pi))
    for step in range(1, steps + 1):
        probs = softmax(state.means @ state.weight.T)
        resid = probs - eye_k  # row k: p(W m_k) - e_k
        grad_m = pi[:, None] * (resid @ state.weight)
        grad_w = (pi[:, None] * resid).T @ state.means
        pw = probs @ state.weight
        hess = np.einsum("kc,cd,ce->kde", probs, state.weight, state.weight)
        hess -= pw[:, :, None] * pw[:, None, :]
        state.propagator = (
            state.propagator - (rate_m * pi)[:, None, None] * (hess @ state.propagator)
        ) / shrink[:, None, None]
        new_means = (state.means - rate_m[:, None] * grad_m) / shrink[:, None]
        move = ((new_means - state.means) ** 2).sum()
        state.means = new_means
        if learn_w:
            new_weight = (state.weight - eta * grad_w) / (1.0 + eta * lam_w)
            move += ((new_weight - state.weight) ** 2).sum()
            state.weight = new_weight
        if not np.isfinite(move):
            _diverged(move, step, eta)
        if math.sqrt(move) / eta < tol:
            return step, True
        if step % every == 0:
            on_record(step)
    return steps, False


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
