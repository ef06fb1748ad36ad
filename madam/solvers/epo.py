"""EPO: exact Pareto optimal search for a preference (Mahapatra & Rajan 2020)."""

import numpy as np

from .._validate import Hyper, flag
from .._validate import nonnegative as _nonnegative
from .._inner import linprog

from .base import Solver, _ldexp, _preference


def epo_lp(gram, losses, preference, eps=1e-4, relax=False):
    """The EPO search linear programs (Mahapatra & Rajan, ICML 2020) on the Gramian.

    With rl = r * l, l_hat = rl / sum(rl), mu = sum_i l_hat_i log(C l_hat_i) (the KL divergence
    of l_hat from uniform) and the adjustment a = r * (log(C l_hat) - mu):
    * balance mode (mu > eps): maximise alpha^T G a over alpha in the simplex subject to
      (G alpha)_j >= 0 for the j with the largest rl and (G alpha)_j >= (G a)_j for the other j
      with (G a)_j <= 0 (the j with (G a)_j > 0 are unconstrained); when no (G a)_j is positive,
      (G alpha)_j >= 0 for every j;
    * descent mode (mu <= eps): maximise 1^T G alpha subject to G alpha >= 0 and
      alpha^T G a >= min(max_j (G a)_j, 0) (``relax=True`` drops the last constraint, and so does
      the fallback when that restricted LP is infeasible).
    Returns (alpha, info) with info = {"mode", "mu", "gamma" (the LP optimum, in the Gramian's
    units)}.
    """
    k = gram.shape[0]
    norm = max(float(np.max(np.diag(gram))), 0.0)
    G = gram / norm if norm > 0.0 else gram
    rl = preference * losses
    l_hat = rl / rl.sum()
    mu = float(np.sum(l_hat * np.log(k * l_hat)))
    adjust = preference * (np.log(k * l_hat) - mu)
    ga = G @ adjust
    ones = np.ones((1, k))
    if mu > eps:
        mode = "balance"
        rhs = ga.copy()
        if np.any(ga > 0.0):
            rhs[ga > 0.0] = -np.inf
            rhs[rl == rl.max()] = 0.0
        else:
            rhs[:] = 0.0
        rows = np.isfinite(rhs)
        res = linprog(-ga, -G[rows], -rhs[rows], ones, [1.0])
        relaxed = False
    else:
        mode = "descent"
        objective = -G.sum(axis=0)
        relaxed = relax
        res = None
        if not relax:
            a_ub = np.vstack([-G, -ga[None, :]])
            b_ub = np.concatenate([np.zeros(k), [-min(float(ga.max()), 0.0)]])
            res = linprog(objective, a_ub, b_ub, ones, [1.0])
            if res.status != 0:
                relaxed = True
        if relaxed:
            res = linprog(objective, -G, np.zeros(k), ones, [1.0])
    if res.status != 0:  # pragma: no cover - both LPs contain MGDA's weights (feasible, bounded)
        raise RuntimeError(f"EPO linear program failed (status {res.status})")
    alpha = res.x / res.x.sum()
    return alpha, {"mode": mode, "mu": mu, "gamma": -res.fun * norm, "relaxed": relaxed}


class EPO(Solver):
    """Exact Pareto optimal search (Mahapatra & Rajan, ICML 2020) for the preference ray r.

    EPO drives the losses to the ray r_1 l_1 = ... = r_C l_C (the original paper's r; the same ray
    as Tchebycheff(r); LibMOON passes r = 1/p to target l proportional to p) while descending:
    each call solves one of its linear programs (:func:`epo_lp`, by madam's own dense simplex)
    and lam = alpha on the simplex, d = J^T alpha, scale = 1. ``eps`` is the non-uniformity below
    which EPO switches from balancing to pure descent; ``relax`` uses the relaxed descent LP.

    Losses are read and must be finite and > 0 (the method takes their logarithms); preference
    entries must be > 0. The LP optimum is a vertex and need not be unique: ``alpha`` is one
    optimal vertex. C = 1: lam = [1].
    """

    name = "epo"
    uses_losses = True
    positive_losses = True

    preference = Hyper(_preference(positive=True))
    eps = Hyper(_nonnegative)
    relax = Hyper(flag)

    def __init__(self, preference, eps=1e-4, relax=False):
        super().__init__()
        self.preference = preference
        self.eps = eps
        self.relax = relax

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        self._check_rows(k, self.preference, against)
        if k == 1:
            return np.ones(1), 1.0, {"mode": "descent", "mu": 0.0}
        alpha, info = epo_lp(gram, losses, self.preference, self.eps, self.relax)
        info["gamma"] = _ldexp(info["gamma"], 2 * exponent)   # in the true Gramian's units
        return alpha, 1.0, info

    def __repr__(self):
        return f"EPO(preference={self.preference.tolist()}, eps={self.eps}, relax={self.relax})"
