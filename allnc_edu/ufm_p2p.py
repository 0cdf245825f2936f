"""The P2P term in the unconstrained-features model, and the solver that minimises it.

P2P (AllNC's peer-to-peer loss, ``losses.p2p_loss``) is scale-invariant in each classifier row
and in the centred means, hence stiff along short (minority) rows; ``ufm.simulate`` therefore
minimises the whole UFM objective with it by L-BFGS (SciPy's L-BFGS-B) in variables scaled by a
diagonal preconditioner refreshed every ``LBFGS_RESTART`` iterations (:class:`Objective`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy import optimize

from ._checks import check_choice, check_scalar
from .losses import P2P_MODES, p2p_loss

P2P_TOL = 1e-8  # smallest tolerance with P2P: below it steps change F less than float64 rounding

LBFGS_MEMORY = 10  # curvature pairs kept by the P2P solver

LBFGS_RESTART = 20  # iterations between refreshes of the P2P solver's preconditioner


@dataclass(frozen=True)
class P2PTerm:
    """The AllNC term simulated in the UFM: ``lambda_p * losses.p2p_loss(means, W, mode)``.

    HyCon (individual activations) and GBBN (a two-head sampling schedule) have no counterpart
    in a model whose features collapse exactly onto their class means, so only P2P is simulated.
    """

    lambda_p: float = 1.0
    mode: str = "cross"


def _sq_norms(rows: np.ndarray) -> np.ndarray:
    return np.maximum((rows**2).sum(axis=1), np.finfo(float).tiny)


def p2p_term(
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
class Objective:
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
        p2p, p2p_m, p2p_w = p2p_term(means, weight, self.term)
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
        probs = softmax(means @ weight.T)
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
        """L-BFGS (SciPy's L-BFGS-B) over the means (and W if ``learn_w``), preconditioned by
        :meth:`inverse_curvature`: the variables are scaled by its square root, refreshed every
        ``LBFGS_RESTART`` iterations (a restart). Every iterate goes to ``on_iterate``; converged
        when the largest rescaled gradient entry is below ``tol``. Returns (iterations,
        converged); the final state is the last one reported."""
        k, d = means.shape

        def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = x.reshape(-1, d)
            return rows[:k], (rows[k:] if learn_w else weight)

        x = (np.concatenate([means, weight]) if learn_w else means).ravel()
        done = 0
        while True:
            scale = np.sqrt(np.repeat(self.inverse_curvature(*unpack(x))[: x.size // d], d))

            def fun(z: np.ndarray, scale: np.ndarray = scale) -> tuple[float, np.ndarray]:
                value, grad_m, grad_w = self.value_and_grads(*unpack(z * scale))
                grad = (np.concatenate([grad_m, grad_w]) if learn_w else grad_m).ravel()
                return value, grad * scale

            if np.abs(fun(x / scale)[1]).max() < tol:
                return done, True
            if done >= max_iter:
                return done, False

            def step(z: np.ndarray, scale: np.ndarray = scale) -> None:
                nonlocal done
                done += 1
                on_iterate(done, *unpack(z * scale))

            budget = min(LBFGS_RESTART, max_iter - done)
            result = optimize.minimize(
                fun, x / scale, jac=True, method="L-BFGS-B", callback=step,
                options={"maxiter": budget, "gtol": tol, "ftol": 0.0, "maxcor": LBFGS_MEMORY},
            )  # fmt: skip
            if result.nit == 0:  # no step decreased F: float64's floor
                return done, False
            x = result.x * scale


def as_p2p(allnc: P2PTerm | Mapping | float | object | None) -> P2PTerm | None:
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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted for stability."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
