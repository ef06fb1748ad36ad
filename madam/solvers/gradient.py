"""Gradient methods: weights from the Gramian J J^T (MGDA, PCGrad, CAGrad, IMTL-G, Nash-MTL,
UPGrad)."""
import math

import numpy as np

from .. import _core
from .._validate import Hyper, at_least, one_of, optional
from .._validate import nonnegative as _nonnegative
from .._validate import positive as _positive
from .._inner import min_norm_2
from .._qp import min_norm_frank_wolfe, qp_active_set
from .base import (Solver, _RngMixin, _clip_psd, _gramian, _ldexp, _preference, _sd_array,
                   _sd_scalar, _seed)


def _quad(G, x, y=None):
    """x^T G y (y = x by default) by einsum's own loop, not BLAS: a gemv on a Gramian of C >= 128
    woke NumPy's OpenBLAS threads, which then spin and took a core from the next pass over J
    (MGDA at C = 128: 39 ms a solve instead of 25)."""
    return float(np.einsum("i,ij,j->", x, G, x if y is None else y))


def _min_norm(gram, method="active-set", tol=1e-13, max_iter=1000):
    """argmin_{x in simplex} x^T G x: closed form for C <= 2, else Frank-Wolfe (+ exact polish)
    or the active-set QP. Returns (x, info)."""
    k = gram.shape[0]
    if k == 1:
        return np.ones(1), {"method": "trivial"}
    if k == 2:
        return min_norm_2(gram), {"method": "closed-form"}
    if method == "active-set":
        x, info = qp_active_set(gram, simplex=True)
        return x, {"method": "active-set", **info}
    x, info = min_norm_frank_wolfe(gram, tol=tol, max_iter=max_iter)
    # polish: the exact minimiser on (a neighbourhood of) Frank-Wolfe's support
    y, pinfo = qp_active_set(gram, simplex=True, x0=x)
    fx, fy = _quad(gram, x), _quad(gram, y)
    polished = pinfo["converged"] and fy <= fx + 1e-15 * max(float(np.max(np.diag(gram))), 0.0)
    return (y if polished else x), {"method": "frank-wolfe", "polished": polished, **info}


class MGDA(Solver):
    """Multiple-gradient descent (Desideri 2012; Sener & Koltun 2018): the min-norm point of the
    convex hull of the gradients,  lam = argmin_{lam in simplex} |J^T lam|^2 = lam^T G lam,
    d = J^T lam. Every g_i^T d >= |d|^2 >= 0: d is a common descent direction (non-conflicting),
    up to the rounding of d; at a Pareto-stationary point (0 in the hull) d is rounding residue.

    C = 1: lam = [1]; C = 2: closed form (identical gradients: lam = (1/2, 1/2)); C > 2:
    ``method="frank-wolfe"`` (default; Sener & Koltun's Algorithm 2 on the Gramian, with away
    steps for linear convergence, stopped at a Frank-Wolfe gap <= tol * max_i |g_i|^2 or after
    ``max_iter`` iterations, then an exact active-set polish started from its iterate, kept when
    it converges and does not raise the norm) or ``method="active-set"`` (the exact QP alone).
    Both start from the barycentre, so identical gradients give uniform weights and the result is
    permutation invariant. Losses are not read; scale = 1.

    torchjd's ``MGDA`` returns the same d (its weights via ``MGDAWeighting``) but stops plain
    Frank-Wolfe at a step size below epsilon = 1e-3 (max 100 iterations), so it agrees only to
    about that tolerance.
    """

    name = "mgda"
    method = Hyper(one_of("frank-wolfe", "active-set"))
    tol = Hyper(_positive)
    max_iter = Hyper(at_least(1))

    def __init__(self, method="frank-wolfe", tol=1e-13, max_iter=1000):
        super().__init__()
        self.method = method
        self.tol = tol
        self.max_iter = max_iter

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        lam, info = _min_norm(gram, self.method, self.tol, self.max_iter)
        return lam, 1.0, info

    def __repr__(self):
        return f"MGDA(method={self.method!r}, tol={self.tol}, max_iter={self.max_iter})"


def pcgrad_weights(gram, permutations):
    """PCGrad's effective weights from the Gramian, for given task orders.

    For each i, the coefficients c of g_i^PC = J^T c start at e_i; for j in permutations[i]
    (j != i), if g_i^PC . g_j = (G c)_j < 0 then c_j -= (G c)_j / G_jj. Returns sum_i c^(i)
    (PCGrad sums the projected gradients)."""
    k = gram.shape[0]
    total = np.zeros(k)
    floor = 1e-30 * float(np.max(np.diag(gram), initial=0.0))  # numerically zero gradients
    for i in range(k):
        coef = np.zeros(k)
        coef[i] = 1.0
        for j in permutations[i]:
            j = int(j)
            if j == i:
                continue
            inner = float(gram[j] @ coef)
            if inner < 0.0 and gram[j, j] > floor:
                coef[j] -= inner / gram[j, j]
        total += coef
    return total


class PCGrad(_RngMixin, Solver):
    """Projecting conflicting gradients (Yu et al., NeurIPS 2020, Algorithm 1), from the Gramian.

    Each g_i is projected, in a fresh random order of the other tasks, onto the normal plane of
    every g_j it conflicts with (g_i^PC . g_j < 0); the natural direction is sum_i g_i^PC = J^T w
    with w >= 0 and w_i >= 1, so lam = w / sum(w) and scale = sum(w) (>= C). Same convention as
    torchjd's ``PCGrad`` (which also sums; its weights via ``PCGradWeighting``); the orders come
    from NumPy's PCG64 (``seed``), not torch's generator. Zero gradients are never projected on.
    Losses are not read.
    """

    name = "pcgrad"
    seed = Hyper(_seed)

    def __init__(self, seed=0):
        super().__init__()
        self.seed = seed
        self._new_rng()

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        perms = [self._rng.permutation(k) for _ in range(k)]
        w = pcgrad_weights(gram, perms)
        total = float(w.sum())
        return w / total, total, {"weights": w}

    def __repr__(self):
        return f"PCGrad(seed={self.seed})"


def _positive_roots(a, b, c):
    """The positive real roots of a x^2 + b x + c (numerically stable form)."""
    if a == 0.0:
        return [-c / b] if b != 0.0 and -c / b > 0.0 else []
    disc = b * b - 4.0 * a * c
    if disc < 0.0:
        return []
    q = -0.5 * (b + math.copysign(math.sqrt(disc), b))
    roots = [q / a] + ([c / q] if q != 0.0 else [])
    return sorted(x for x in roots if x > 0.0)


def cagrad_weights(gram, c, zero_tol=1.5e-7):
    """CAGrad's natural weights w (d = J^T w) from the Gramian; returns (w, info).

    With u = 1/C, g0 = J^T u, r = c |g0|: w* = argmin_{w in simplex} F(w) = w^T G u + r |J^T w|,
    then w = u + (r / |J^T w*|) w*. F is minimised exactly: F(w) = min_t>0 b^T w +
    (r/2)(|g_w|^2/t + t), so w* = w(t*) where w(t) solves the simplex QP
    min b^T w + (r/(2t)) w^T G w and t* is the root of |g_w(t)| = t, which is bracketed by
    [min-norm of the hull, max_i |g_i|] (|g_w(t)|/t is non-increasing). On a fixed support the
    root solves a quadratic in t (then secant steps refine it); a bisection safeguards both. If
    t* = 0 (the hull holds 0 and F is minimised there: Pareto-stationary with c >= 1), the natural
    direction is 0: this is declared when |g_w*| <= zero_tol * max_i |g_i| (default 1.5e-7, about
    10 sqrt(eps64): below it |g_w| computed from the Gramian is rounding noise).
    """
    k = gram.shape[0]
    u = np.full(k, 1.0 / k)
    norm = max(float(np.max(np.diag(gram))), 0.0)
    if norm <= 0.0:
        return u.copy(), {"degenerate": False, "t": 0.0, "iterations": 0, "zero_mean": True}
    G = gram / norm
    g0sq = _quad(G, u)
    r = c * math.sqrt(max(g0sq, 0.0))
    if r <= 0.0:
        return u.copy(), {"degenerate": False, "t": 0.0, "iterations": 0, "zero_mean": g0sq <= 0}
    b = np.einsum("ij,j->i", G, u)
    big = math.sqrt(float(np.max(np.diag(G))))
    # above 32 objectives Frank-Wolfe then the exact active-set polish: from the barycentre the
    # active-set method drops one of the C bounds per iteration, a new factorisation each, when
    # the min-norm point has a small support (123 iterations at C = 128 on bench_solvers' rows);
    # both run in C, and below 32 objectives either takes well under a millisecond
    x_min, _ = _min_norm(G, method="frank-wolfe" if k > 32 else "active-set")
    lo = math.sqrt(max(_quad(G, x_min), 0.0))
    hi = big

    def solve_at(t, start):
        w, _ = qp_active_set((r / t) * G, b, simplex=True, x0=start)
        return w, math.sqrt(max(_quad(G, w), 0.0))

    def piece_roots(w):
        # on the support F of w: w_F(t) = p + (t/r) q exactly, so |g_w|^2 = t^2 is a quadratic
        free = np.flatnonzero(w > 0.0)
        m = free.size
        gff = G[np.ix_(free, free)]
        border = max(float(np.mean(np.diag(gff))), np.finfo(np.float64).tiny)  # balances the KKT
        kkt = np.zeros((m + 1, m + 1))
        kkt[:m, :m] = gff
        kkt[:m, m] = border
        kkt[m, :m] = border
        rhs = np.zeros((m + 1, 2))
        rhs[m, 0] = border
        rhs[:m, 1] = -b[free]
        sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
        p, q = sol[:m, 0], sol[:m, 1]
        a0, b0, c0 = _quad(gff, p), _quad(gff, p, q), _quad(gff, q)
        return [r * tau for tau in _positive_roots(c0 - r * r, 2.0 * b0, a0)]

    zero = zero_tol * big
    noise = 8.0 * np.finfo(np.float64).eps * big * big   # rounding of |g_w|^2 from the Gramian
    t = hi
    w, n = solve_at(t, x_min)   # warm: near x_min's small support, not the barycentre's C
    previous = None      # (t, n, support) of the evaluation before
    it = 0
    root_steps = 0
    degenerate = False
    for it in range(1, 200):
        if abs(n - t) <= 1e-12 * t + noise / max(t, zero):
            break
        if n < t:
            hi = t
        else:
            lo = t
        if hi <= zero or (n < t and n <= zero):  # t* = |g_w(t*)| <= |g_w(hi)| (non-decreasing)
            degenerate = True
            break
        if hi - lo <= 1e-14 * hi:
            break
        support = tuple(np.flatnonzero(w > 0.0))
        if previous is not None and previous[2] == support and previous[0] != t:
            # same support twice: f(t) = |g_w(t)|^2 - t^2 is a quadratic there; secant step
            t0, n0 = previous[0], previous[1]
            f0, f1 = n0 * n0 - t0 * t0, n * n - t * t
            candidates = [t - f1 * (t - t0) / (f1 - f0)] if f1 != f0 else []
        else:
            candidates = piece_roots(w)
        candidates = [x for x in candidates
                      if lo * (1.0 - 1e-12) <= x <= hi * (1.0 + 1e-12) and x != t]
        previous = (t, n, support)
        if candidates and root_steps < 3:
            t = min(max(candidates[0], lo), hi)
            root_steps += 1
        else:  # bisection: at least halves the bracket every fourth step
            t = 0.5 * (lo + hi)
            root_steps = 0
        w, n = solve_at(t, w)
    if degenerate or n <= zero:
        return w, {"degenerate": True, "t": t, "iterations": it, "zero_mean": False}
    return u + (r / n) * w, {"degenerate": False, "t": t, "iterations": it, "zero_mean": False,
                             "inner_weights": w}


class CAGrad(Solver):
    """Conflict-averse gradient descent (Liu et al., NeurIPS 2021), from the Gramian.

    d maximises min_i g_i^T d over the ball |d - g0| <= c |g0| (g0 the mean gradient); its dual
    gives the natural weights w = 1/C + (c |g0| / |g_w*|) w* (see :func:`cagrad_weights`; the
    inner problem is solved exactly, not by SLSQP as in the official code). lam = w / sum(w);
    scale = sum(w) * rescale factor, the factor being 1 (``rescale=0``), 1/(1 + c^2)
    (``rescale=1``, the official code's default) or 1/(1 + c) (``rescale=2``).

    torchjd's ``CAGrad(c)`` returns J^T w with no rescale (= this scale with rescale=0) and solves
    the inner problem with Clarabel. c = 0 gives the mean gradient. Degenerate: all-zero Jacobian
    or zero mean gradient -> lam uniform, d = mean (0), scale as for c = 0; Pareto-stationary
    optimum (t* = 0, possible for c >= 1; declared when |J^T w*| <= 10 sqrt(eps) max_i |g_i|, eps
    of the Jacobian's dtype) -> lam = w* (its combination vanishes), scale = 0 (torchjd returns
    0 too, below its own threshold). Losses are not read.
    """

    name = "cagrad"
    c = Hyper(_nonnegative)
    rescale = Hyper(one_of(0, 1, 2))

    def __init__(self, c=0.5, rescale=1):
        super().__init__()
        self.c = c
        self.rescale = rescale

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        zero_tol = 10.0 * math.sqrt(float(np.finfo(precision).eps))
        w, info = cagrad_weights(gram, self.c, zero_tol)
        factor = (1.0, 1.0 / (1.0 + self.c ** 2), 1.0 / (1.0 + self.c))[self.rescale]
        if info["degenerate"]:
            return w, 0.0, info
        total = float(w.sum())
        return w / total, total * factor, info

    def __repr__(self):
        return f"CAGrad(c={self.c}, rescale={self.rescale})"


class IMTLG(Solver):
    """Impartial MTL, gradient part (Liu et al., ICLR 2021), in torchjd's generalised form:
    v = G^+ s with s_i = |g_i| = sqrt(G_ii), lam = v / sum(v). For an invertible G, d = J^T lam is
    the unique affine combination (sum lam = 1) with equal projections d^T g_i/|g_i| on every
    unit gradient; lam may have negative entries (affine, not convex, weights). scale = 1.

    The pseudo-inverse comes from the eigendecomposition of G, cutting eigenvalues below
    rtol * max eigenvalue (default rtol = C * eps of the Jacobian's dtype, as torch.linalg.pinv).
    Degenerate: sum(v) = 0 within C * eps * sum|v| (zero Jacobian, opposite gradients...) -> no
    such combination; lam = 0, d = 0, scale = 0 (torchjd returns zero weights too).
    Losses are not read.
    """

    name = "imtlg"
    rtol = Hyper(optional(_nonnegative))

    def __init__(self, rtol=None):
        super().__init__()
        self.rtol = rtol

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        rtol = k * float(np.finfo(precision).eps) if self.rtol is None else self.rtol
        evals, evecs = np.linalg.eigh(gram)
        top = float(evals.max())
        keep = evals > rtol * top if top > 0.0 else np.zeros(k, dtype=bool)
        norms = np.sqrt(np.maximum(np.diag(gram), 0.0))
        proj = evecs[:, keep].T @ norms
        v = evecs[:, keep] @ (proj / evals[keep])
        total = float(v.sum())
        if not abs(total) > k * np.finfo(np.float64).eps * float(np.abs(v).sum()) or total == 0.0:
            return np.zeros(k), 0.0, {"degenerate": True, "rank": int(keep.sum())}
        return v / total, 1.0, {"degenerate": False, "rank": int(keep.sum())}

    def __repr__(self):
        return f"IMTLG(rtol={self.rtol})"


def nash_weights(gram, alpha0=None, tol=1e-12, max_iter=500, stationary_tol=1.5e-7):
    """The Nash bargaining weights of Nash-MTL: alpha > 0 with G alpha = 1 / alpha; returns
    (alpha, info) with alpha = None when no solution exists.

    The equation is the stationarity condition of the strictly convex, self-concordant
    psi(alpha) = 1/2 alpha^T G alpha - sum_i log alpha_i, minimised by damped Newton (step
    1/(1 + lambda) while the Newton decrement lambda >= 1/4, full steps after). It is solved in
    the scale-free variables beta = sqrt(diag G) * alpha (K beta = 1/beta, K the correlation
    matrix), from the warm start alpha0 (or 1) rescaled optimally along its ray, until
    max_i |beta_i (K beta)_i - 1| <= tol. No solution exists when a nonnegative combination of
    the gradients vanishes (a zero gradient, or 0 in the convex hull: Pareto stationary); this is
    declared when the min-norm point of the hull of the unit gradients has norm <=
    ``stationary_tol`` (default 1.5e-7 ~ 10 sqrt(eps64): below it the Gramian cannot tell), or if
    Newton fails to converge.
    """
    k = gram.shape[0]
    diag = np.diag(gram)
    if np.any(diag <= 0.0):
        return None, {"degenerate": True, "iterations": 0, "residual": np.inf}
    root = np.sqrt(diag)
    K = gram / np.outer(root, root)
    x_min, _ = _min_norm(K)
    if float(x_min @ K @ x_min) <= stationary_tol ** 2:
        return None, {"degenerate": True, "iterations": 0, "residual": np.inf}
    beta = np.ones(k) if alpha0 is None else np.maximum(alpha0 * root, 1e-300)
    beta *= math.sqrt(k / max(float(beta @ K @ beta), 1e-300))
    residual = np.inf
    it = 0
    try:
        for it in range(1, max_iter + 1):
            kb = K @ beta
            residual = float(np.max(np.abs(beta * kb - 1.0)))
            if residual <= tol:
                break
            grad = kb - 1.0 / beta
            hess = K + np.diag(1.0 / beta ** 2)
            step = -np.linalg.solve(hess, grad)
            decrement = math.sqrt(max(float(-grad @ step), 0.0))
            size = 1.0 if decrement < 0.25 else 1.0 / (1.0 + decrement)
            new = beta + size * step
            while np.any(new <= 0.0):  # never for a self-concordant damped step; guards rounding
                size *= 0.5
                new = beta + size * step
            beta = new
        else:
            kb = K @ beta
            residual = float(np.max(np.abs(beta * kb - 1.0)))
    except np.linalg.LinAlgError:
        residual = np.inf
    if not residual <= max(tol, 1e-9):
        return None, {"degenerate": True, "iterations": it, "residual": residual}
    return beta / root, {"degenerate": False, "iterations": it, "residual": residual}


class NashMTL(Solver):
    """Nash-MTL (Navon et al., ICML 2022): the Nash bargaining solution alpha > 0 of
    G alpha = 1/alpha (each g_i^T d = 1/alpha_i for d = J^T alpha), then the norm clipping of the
    official code: if |J^T alpha| > max_norm, alpha *= max_norm / |J^T alpha| (max_norm = 0 or None
    disables it; note |J^T alpha| = sqrt(C) exactly at the solution).

    The paper approximates alpha by a sequence of convex (CCP) problems solved with cvxpy/ECOS
    (20 iterations); here the same equation is solved to ``tol`` by damped Newton on its convex
    potential (:func:`nash_weights`), warm-started from the previous alpha. lam = alpha / sum
    (alpha); scale = sum(alpha) * clip factor. Every ``update_weights_every`` calls the weights
    are recomputed; in between the previous alpha is reused (clipped against the new Jacobian).

    Degenerate (no bargaining solution: a zero gradient, or 0 in the convex hull of the gradients
    - a Pareto-stationary point - to within 10 sqrt(eps) of the Jacobian's dtype on the unit
    gradients): lam = MGDA's min-norm weights (their combination vanishes), scale = 0. torchjd's
    ``NashMTL`` keeps its previous alpha there. Losses are not read.
    """

    name = "nashmtl"
    max_norm = Hyper(optional(_nonnegative, 0.0))  # None: no clipping (0)
    update_weights_every = Hyper(at_least(1))
    tol = Hyper(_positive)
    max_iter = Hyper(at_least(1))

    def __init__(self, max_norm=1.0, update_weights_every=1, tol=1e-12, max_iter=500):
        super().__init__()
        self.max_norm = max_norm
        self.update_weights_every = update_weights_every
        self.tol = tol
        self.max_iter = max_iter
        self._alpha = np.zeros(0)
        self._calls = 0

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        warm = self._alpha if self._alpha.size == k else None
        # gram is the Gramian over 4^e (e = 0 but for extreme input): alpha solves
        # G alpha = 1/alpha, so the true alpha is 2^-e times the one of the scaled Gramian
        with np.errstate(over="ignore", under="ignore"):
            warm_s = None if warm is None else np.ldexp(warm, exponent)
        if warm_s is not None and not np.all(np.isfinite(warm_s) & (warm_s > 0.0)):
            warm_s = None                      # a start from a wildly different scale: cold
        if warm_s is not None and self._calls % self.update_weights_every != 0:
            alpha_s, info = warm_s, {"degenerate": False, "reused": True, "iterations": 0}
        else:
            stationary = 10.0 * math.sqrt(float(np.finfo(precision).eps))
            alpha_s, info = nash_weights(gram, warm_s, self.tol, self.max_iter, stationary)
            info["reused"] = False
        self._calls += 1
        if alpha_s is None:
            lam, _ = _min_norm(gram)
            return lam, 0.0, info
        with np.errstate(over="ignore", under="ignore"):
            alpha = np.ldexp(alpha_s, -exponent)
        total = float(alpha.sum()) if np.all(np.isfinite(alpha)) else math.inf
        if not (math.isfinite(total) and np.all(alpha > 0.0)):
            raise ValueError(f"{against}'s rows are too far from 1 in norm for Nash-MTL's "
                             "weights alpha (~ 1/|g_i|) to be representable in float64")
        self._alpha = alpha.copy()
        norm = math.sqrt(max(float(alpha_s @ gram @ alpha_s), 0.0))   # |J^T alpha|, scale-free
        clip = 1.0
        if self.max_norm > 0.0 and norm > self.max_norm:
            clip = self.max_norm / norm
        info["alpha"] = alpha
        return alpha / total, total * clip, info

    def reset(self):
        super().reset()
        self._alpha = np.zeros(0)
        self._calls = 0

    def _get_state(self):
        return {"alpha": self._alpha.copy(), "calls": self._calls}

    def _set_state(self, sd):
        alpha = _sd_array(sd, "alpha", lambda s: len(s) == 1, "(C,) or (0,)")
        if alpha.size and np.any(alpha <= 0.0):
            raise ValueError("state_dict['alpha'] must be positive")
        calls = _sd_scalar(sd, "calls", int)
        if calls < 0:
            raise ValueError("state_dict['calls'] must be >= 0")
        self._alpha, self._calls = alpha, calls

    def __repr__(self):
        return (f"NashMTL(max_norm={self.max_norm}, update_weights_every="
                f"{self.update_weights_every}, tol={self.tol}, max_iter={self.max_iter})")


def _upgrad_scaled_weights(corr, root, exps, zero, preference):
    """UPGrad's natural weights as (w / 2^shift, shift), from the correlation matrix K of the
    rows (K_ij = g_i.g_j / (|g_i| |g_j|), 0 on zero rows) and |g_i| = root_i 2^exps_i.

    With G = D K D (D = diag |g_i|) and u = D v, v_i = argmin_{v >= e_i} v^T G v becomes
    v_i = |g_i| D^-1 u_i, u_i = argmin_{u >= e_i} u^T K u: the QP sees unit rows only, so every
    row's constraint g_j^T d >= 0 is enforced relative to that row's own size (on G itself the
    multiplier tolerance is relative to max|g|^2, which left rows 1e-30 times smaller
    unconstrained: directions conflicting with them at cosine -0.7). Then
    w_j = sum_i p_i (|g_i| / |g_j|) u_i[j]; the ratios can exceed the float64 range, so w is
    returned scaled by 2^-shift (shift = 0 unless it would overflow). A zero row j constrains
    nothing and keeps v_j = e_j (w_j = p_j)."""
    k = corr.shape[0]
    nonzero = ~zero
    iterations = [0] * k
    w = np.where(zero, np.asarray(preference, dtype=np.float64), 0.0)
    if not nonzero.any():
        return w, 0, iterations
    coef = np.zeros((k, k))                          # row i: p_i u_i
    for i in np.flatnonzero(nonzero):
        if preference[i] == 0.0:
            continue
        z, info = qp_active_set(corr, corr[:, i], simplex=False)
        iterations[i] = info["iterations"]
        z[i] += 1.0
        coef[i] = preference[i] * z
    # w_j = sum_i coef_ij |g_i| / |g_j|, each ratio (root_i / root_j) 2^(exps_i - exps_j): the
    # ratios may pass 2^1024, so every term is scaled by 2^-shift, shift = 0 unless needed
    idx = np.flatnonzero(nonzero)
    ratio = root[idx][:, None] / root[idx][None, :]
    power = exps[idx][:, None] - exps[idx][None, :]
    sub = coef[np.ix_(idx, idx)]
    with np.errstate(divide="ignore"):
        log2_terms = np.where(sub > 0.0, np.log2(np.where(sub > 0.0, sub * ratio, 1.0)) + power,
                              -np.inf)
    # every term is 0 when each nonzero row has preference 0 (p = (0, 1) with row 1 zero): the
    # largest log2 is then -inf, and ceil(-inf) raised OverflowError; nothing needs scaling
    top = float(np.max(log2_terms))
    shift = max(0, int(math.ceil(top + math.log2(k))) - 1000) if math.isfinite(top) else 0
    with np.errstate(under="ignore"):
        w[idx] = np.ldexp(sub * ratio, power - shift).sum(axis=0)
        if shift:
            w[zero] = np.ldexp(w[zero], -shift)
    return w, shift, iterations


def _correlation(gram, jac=None):
    """(K, root, exps, zero-row mask): the correlation matrix of the rows and their norms
    root_i 2^exps_i (up to a common factor), from the Gramian; or, when a nonzero row's squared
    norm is below 2^-900 there (lost to underflow next to the other rows), from J with every row
    scaled by the power of two of its largest entry (exact), whose Gramian has every nonzero
    diagonal entry in [2^-2, n]."""
    k = gram.shape[0]
    diag = np.diag(gram).copy()
    exps = np.zeros(k, dtype=np.int64)
    suspect = np.flatnonzero(diag < 2.0 ** -900)
    if jac is not None and any(np.any(jac[i] != 0.0) for i in suspect):
        top = np.maximum(jac.max(axis=1), -jac.min(axis=1)).astype(np.float64)
        exps[top > 0.0] = np.frexp(top[top > 0.0])[1]
        gram, _, _ = _core.gram_scan(np.ascontiguousarray(np.ldexp(jac.astype(np.float64),
                                                                   -exps[:, None])), k)
        gram = _clip_psd(0.5 * (gram + gram.T))
        diag = np.diag(gram).copy()
    zero = diag <= 0.0
    root = np.sqrt(np.where(zero, 1.0, diag))
    inv = np.where(zero, 0.0, 1.0 / root)
    corr = gram * np.outer(inv, inv)
    np.fill_diagonal(corr, np.where(zero, 0.0, 1.0))
    return corr, root, exps, zero


def _correlation_of_gramian(gram):
    """:func:`_correlation` with the Gramian alone (weights(): no J to recompute rows from).
    When a nonzero row's squared norm is below 2^-900 (where 1 / (|g_i| |g_j|) overflows for two
    such rows and the correlation became inf / NaN), G's rows and columns are first scaled by the
    powers of two of the rows' norms (exact), as J's rows are in the J path: the correlation is
    then finite and as accurate as G holds those rows (subnormal entries carry fewer bits)."""
    diag = np.diag(gram)
    if not np.any((diag > 0.0) & (diag < 2.0 ** -900)):
        return _correlation(gram)                   # the ordinary path: solve()'s bits
    exps = np.zeros(gram.shape[0], dtype=np.int64)
    rows = diag > 0.0
    exps[rows] = np.frexp(np.sqrt(diag[rows]))[1]
    with np.errstate(under="ignore"):
        scaled = np.ldexp(gram, -(exps[:, None] + exps[None, :]))
    corr, root, _, zero = _correlation(scaled)
    return corr, root, exps, zero


def upgrad_weights(gram, preference):
    """UPGrad's natural weights w = sum_i p_i v_i, v_i = argmin_{v >= e_i} v^T G v (the weights of
    the projection of g_i onto the dual cone {x : J x >= 0}), each by the nonnegative active-set
    QP in z = v - e_i: min 1/2 z^T G z + (G e_i)^T z, z >= 0, solved on the correlation matrix
    (see :func:`_upgrad_scaled_weights`). Returns (w, iterations)."""
    corr, root, exps, zero = _correlation(np.asarray(gram, dtype=np.float64))
    w, shift, iterations = _upgrad_scaled_weights(corr, root, exps, zero, preference)
    return _ldexp_array(w, shift), iterations


def _ldexp_array(values, exponent):
    with np.errstate(over="ignore"):
        return np.ldexp(values, exponent)


class UPGrad(Solver):
    """Unconflicting projection of gradients (Quinton & Rey, "Jacobian Descent for Multi-Objective
    Optimization", 2024): each g_i is projected onto the dual cone of the rows of J (the
    directions with J x >= 0), and the projections are averaged with ``preference`` (default
    uniform 1/C). The natural direction is J^T w, w = sum_i p_i v_i (see
    :func:`upgrad_weights`); lam = w / sum(w), scale = sum(w). Every g_j^T d >= 0
    (non-conflicting), up to the rounding of d (float32: a few eps32 of |g_j| |d|). When the rows
    positively span their span, the exact direction is 0 and d is the rounding residue of the
    cancelling combination (|d| below about 10 sqrt(eps64) max|g_i|), where no sign is
    meaningful.

    torchjd's ``UPGrad`` returns the same J^T w (its weights via ``UPGradWeighting``), but solves
    each projection with quadprog on the trace-normalised Gramian plus 1e-4 I (``reg_eps``), so it
    differs by O(1e-4) relative unless built with ``QuadprogProjector(reg_eps=0)``. For a
    rank-deficient G the weights are one minimiser (the natural direction is unique).
    Losses are not read.
    """

    name = "upgrad"
    preference = Hyper(_preference(optional=True))

    def __init__(self, preference=None):
        super().__init__()
        self.preference = preference

    def _solve(self, jac, losses):
        # J itself, beside its Gramian: _correlation recomputes from J, rows scaled, the rows
        # whose squared norms underflow in the Gramian (weights() has only G to go on there)
        if self.preference is not None:
            self._check_rows(jac.shape[0], self.preference)
        return self._upgrad(jac.shape[0], _gramian(jac), jac, "jacobian")

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        # w depends on the rows' norms only through their ratios: the exponent is not needed
        return self._upgrad(k, gram, None, against)

    def _upgrad(self, k, gram, jac, against):
        if self.preference is not None:
            self._check_rows(k, self.preference, against)
            pref = self.preference
        else:
            pref = np.full(k, 1.0 / k)
        if jac is None:
            corr, root, exps, zero = _correlation_of_gramian(gram)
        else:
            corr, root, exps, zero = _correlation(gram, jac)
        w, shift, iterations = _upgrad_scaled_weights(corr, root, exps, zero, pref)
        total = _ldexp(float(w.sum()), shift)
        if not math.isfinite(total):
            raise ValueError(f"{against}'s row norms differ by more than the float64 range "
                             "allows for UPGrad's natural weights (~ |g_i| / |g_j|)")
        return w / float(w.sum()), total, {"iterations": iterations,
                                           "weights": _ldexp_array(w, shift)}

    def __repr__(self):
        pref = None if self.preference is None else self.preference.tolist()
        return f"UPGrad(preference={pref})"
