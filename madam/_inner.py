"""Small dense inner solvers for the multi-objective solvers (``madam.solvers``), in NumPy.

The problems are tiny (C objectives, C x C Gramians), so these are plain dense algorithms run in
float64, written for exactness rather than speed:

* :func:`qp_active_set`: convex QP  min 1/2 x^T Q x + c^T x  over the probability simplex
  {x >= 0, sum x = 1} or the nonnegative orthant {x >= 0}; primal active-set method.
* :func:`min_norm_frank_wolfe`: the min-norm point of a convex hull, min_{x in simplex} x^T G x,
  by Frank-Wolfe with away steps and exact line search (linear convergence on this problem).
* :func:`min_norm_2`: the same problem in closed form for two points.
* :func:`linprog`: dense two-phase primal simplex (Bland's rule) for
  min c^T x  s.t.  A_ub x <= b_ub, A_eq x = b_eq, x >= 0.

Each is tested against ``scipy.optimize`` in ``tests/test_solvers_inner.py``; none imports SciPy.
"""
import numpy as np

__all__ = ["qp_active_set", "min_norm_frank_wolfe", "min_norm_2", "linprog", "LPResult"]

_TINY = np.finfo(np.float64).tiny


def _lstsq(a, b):
    """Minimum-norm least-squares solution of a x = b (SVD; exact for a non-singular a)."""
    return np.linalg.lstsq(a, b, rcond=None)[0]


def qp_active_set(Q, c=None, *, simplex=True, x0=None, tol=1e-12, max_iter=None):
    """Solve  min_x 1/2 x^T Q x + c^T x  over the simplex (``simplex=True``) or x >= 0.

    Q must be symmetric positive semi-definite, and the objective bounded below on every face of
    the feasible set: true when Q is positive definite, or when c lies in the range of Q (every
    use in madam: c = Q u, the objective is 1/2 |J^T x|^2 + (J u)^T (J^T x)). Then each face's
    equality-constrained minimiser exists, and the minimum-norm least-squares solution of its KKT
    system is one.

    Primal active-set method (Nocedal & Wright, Alg. 16.3) from a feasible start (``x0``, else the
    barycentre for the simplex and 0 for the orthant): on the free set F, take the minimum-norm
    step to a minimiser of the face (KKT system by SVD least squares, so a singular Q is fine),
    shortened where a bound blocks; at a face minimiser release the bound whose multiplier is the
    most negative (for the simplex the bound multipliers are g_i - theta, with g = Qx + c and theta
    the common value of g on F). Multipliers count as nonnegative within ``tol`` plus the rounding
    of g; a released bound that blocks at once (a rounding-level multiplier) is not released again
    until the iterate moves, which rules out cycling.

    The problem is scaled by max(max|Q|, max|c|) first; ``tol`` is the multiplier tolerance on that
    scale. Returns (x, info) with info = {"iterations", "converged", "kkt"}: "kkt" is the largest
    violation of the optimality conditions (negative bound multipliers, spread of g on the free
    set), relative to the scale.
    """
    Q = np.array(Q, dtype=np.float64)
    k = Q.shape[0]
    if Q.shape != (k, k) or k == 0:
        raise ValueError(f"Q must be a non-empty square matrix, got shape {Q.shape}")
    c = np.zeros(k) if c is None else np.array(c, dtype=np.float64).reshape(k)
    scale = max(float(np.max(np.abs(Q))), float(np.max(np.abs(c))), _TINY)
    Q = Q / scale
    c = c / scale
    Q = 0.5 * (Q + Q.T)
    if max_iter is None:
        max_iter = 50 + 20 * k

    if x0 is None:
        x = np.full(k, 1.0 / k) if simplex else np.zeros(k)
    else:
        x = np.maximum(np.array(x0, dtype=np.float64).reshape(k), 0.0)
        if simplex:
            total = x.sum()
            x = x / total if total > 0 else np.full(k, 1.0 / k)
    active = x <= 0.0
    if simplex and active.all():
        active[:] = False
    abs_q = np.abs(Q)
    eps = np.finfo(np.float64).eps

    converged = False
    released = -1        # the bound released last, if no step has been taken since
    tabu = set()         # released bounds that blocked at once (rounding-level multipliers)
    it = 0
    for it in range(1, max_iter + 1):
        free = np.flatnonzero(~active)
        grad = Q @ x + c
        step = np.zeros(k)
        if free.size:
            # the minimum-norm step to a minimiser of this face (one always exists: the objective
            # is bounded below on it), so a released bound always moves off zero
            qf = Q[np.ix_(free, free)]
            if simplex:
                kkt = np.zeros((free.size + 1, free.size + 1))
                kkt[:-1, :-1] = qf
                kkt[:-1, -1] = 1.0
                kkt[-1, :-1] = 1.0
                step[free] = _lstsq(kkt, np.concatenate([-grad[free], [0.0]]))[:-1]
            else:
                step[free] = _lstsq(qf, -grad[free])
        # ratio test: the largest step in [0, 1] keeping the free variables nonnegative
        # (only the bounds that block within the step, x_i < -step_i, are divided: for the
        # others x / -step may overflow when the step is tiny, and is >= 1 anyway)
        shrinking = free[x[free] < -step[free]]
        alpha, blocking = 1.0, -1
        if shrinking.size:
            ratios = x[shrinking] / -step[shrinking]
            j = int(np.argmin(ratios))
            if ratios[j] < 1.0:
                alpha, blocking = float(ratios[j]), int(shrinking[j])
        if blocking >= 0:
            if alpha <= 0.0 and released >= 0:
                tabu.add(released)   # no progress: the release was rounding noise
            elif alpha > 0.0:
                tabu.clear()
            x = x + alpha * step
            x[blocking] = 0.0
            active[blocking] = True
            np.maximum(x, 0.0, out=x)
            released = -1
            continue
        x = np.maximum(x + step, 0.0)  # full step: x minimises this face
        if simplex:
            x /= x.sum()
        if np.any(step != 0.0):
            tabu.clear()
        released = -1
        grad = Q @ x + c
        free = np.flatnonzero(~active)
        theta = float(np.mean(grad[free])) if (simplex and free.size) else 0.0
        bound = np.array([i for i in np.flatnonzero(active) if i not in tabu], dtype=np.intp)
        if bound.size == 0:
            converged = True
            break
        # bound multipliers, with a tolerance covering the rounding of Qx + c
        slack = tol + 32.0 * eps * (abs_q[bound] @ x + np.abs(c[bound]) + abs(theta))
        multipliers = grad[bound] - theta
        j = int(np.argmin(multipliers + slack))
        if multipliers[j] >= -slack[j]:
            converged = True
            break
        active[bound[j]] = False
        released = int(bound[j])
    return x, {"iterations": it, "converged": converged, "kkt": _qp_kkt(Q, c, x, simplex)}


def _qp_kkt(Q, c, x, simplex):
    """Largest violation of the KKT conditions of the (scaled) QP at x."""
    grad = Q @ x + c
    support = x > 0.0
    if simplex:
        theta = float(np.min(grad))
        spread = float(np.max(grad[support]) - theta) if support.any() else 0.0
        return max(spread, float(abs(x.sum() - 1.0)), float(max(-x.min(), 0.0)))
    neg = float(max(-grad.min(), 0.0))
    comp = float(np.max(np.abs(grad[support]))) if support.any() else 0.0
    return max(neg, comp, float(max(-x.min(), 0.0)))


def min_norm_2(G):
    """Closed-form min-norm point of two points: argmin_{x in simplex} x^T G x for a 2 x 2 Gramian.

    x = (gamma, 1 - gamma), gamma = clip((G22 - G12) / (G11 + G22 - 2 G12), 0, 1); when the two
    points coincide (denominator 0) every gamma is optimal and gamma = 1/2 is returned.
    """
    g11, g12, g22 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
    denom = g11 + g22 - 2.0 * g12
    if not denom > 0.0:
        gamma = 0.5
    else:
        gamma = min(max((g22 - g12) / denom, 0.0), 1.0)
    return np.array([gamma, 1.0 - gamma])


def min_norm_frank_wolfe(G, *, x0=None, tol=1e-13, max_iter=20000):
    """min_{x in simplex} x^T G x by Frank-Wolfe with away steps (Lacoste-Julien & Jaggi 2015).

    From the barycentre (or ``x0``), each iteration takes the better of the Frank-Wolfe direction
    e_s - x (s = argmin (Gx)_s) and the away direction x - e_v (v = argmax_{x_v > 0} (Gx)_v), with
    the exact line search of the quadratic. It stops when the Frank-Wolfe gap
    x^T G x - min_s (Gx)_s (half the duality gap, >= (f(x) - f*)/2) is at most ``tol`` times
    max diag G. Returns (x, info) with info = {"iterations", "gap", "converged"} (gap relative).
    """
    G = np.array(G, dtype=np.float64)
    k = G.shape[0]
    scale = max(float(np.max(np.diag(G))), _TINY)
    G = G / scale
    x = np.full(k, 1.0 / k) if x0 is None else np.array(x0, dtype=np.float64)
    gx = G @ x
    gap = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        if it % 64 == 0:
            gx = G @ x  # drop the drift of the incremental updates
        xgx = float(x @ gx)
        s = int(np.argmin(gx))
        gap = xgx - float(gx[s])
        if gap <= tol:
            break
        support = np.flatnonzero(x > 0.0)
        v = int(support[np.argmax(gx[support])])
        away_gap = float(gx[v]) - xgx
        if gap >= away_gap:
            # d = e_s - x: d^T G x = gx_s - xgx, d^T G d = G_ss - 2 gx_s + xgx
            slope = float(gx[s]) - xgx
            curv = float(G[s, s]) - 2.0 * float(gx[s]) + xgx
            step = 1.0 if curv <= 0.0 else min(1.0, -slope / curv)
            x *= 1.0 - step
            x[s] += step
            gx = (1.0 - step) * gx + step * G[:, s]
        else:
            # d = x - e_v: d^T G x = xgx - gx_v, d^T G d = xgx - 2 gx_v + G_vv
            max_step = x[v] / (1.0 - x[v]) if x[v] < 1.0 else np.inf
            slope = xgx - float(gx[v])
            curv = xgx - 2.0 * float(gx[v]) + float(G[v, v])
            step = max_step if curv <= 0.0 else min(max_step, -slope / curv)
            x *= 1.0 + step
            x[v] -= step
            if step == max_step:
                x[v] = 0.0
            gx = (1.0 + step) * gx - step * G[:, v]
        np.maximum(x, 0.0, out=x)
        x /= x.sum()
    return x, {"iterations": it, "gap": float(max(gap, 0.0)), "converged": gap <= tol}


class LPResult:
    """Result of :func:`linprog`: x, fun (c^T x), status (0 optimal, 2 infeasible, 3 unbounded,
    1 iteration limit; SciPy's codes) and iterations."""

    __slots__ = ("x", "fun", "status", "iterations")

    def __init__(self, x, fun, status, iterations):
        self.x, self.fun, self.status, self.iterations = x, fun, status, iterations

    def __repr__(self):
        return f"LPResult(status={self.status}, fun={self.fun}, x={self.x})"


def _pivot(tab, row, col):
    tab[row] /= tab[row, col]
    pivot_row = tab[row]
    factors = tab[:, col].copy()
    factors[row] = 0.0
    tab -= np.outer(factors, pivot_row)


def _simplex_phase(tab, basis, n_cols, obj_row, tol, max_iter):
    """Minimise with the reduced costs in tab[obj_row] over columns < n_cols (Bland's rule).

    Returns "optimal", "unbounded" or "limit" and the number of pivots."""
    m = len(basis)
    for it in range(max_iter):
        costs = tab[obj_row, :n_cols]
        entering = np.flatnonzero(costs < -tol)
        if entering.size == 0:
            return "optimal", it
        col = int(entering[0])
        column = tab[:m, col]
        rows = np.flatnonzero(column > tol)
        if rows.size == 0:
            return "unbounded", it
        ratios = tab[rows, -1] / column[rows]
        best = ratios.min()
        ties = rows[ratios <= best + tol * max(1.0, abs(best))]
        row = int(min(ties, key=lambda r: basis[r]))
        _pivot(tab, row, col)
        basis[row] = col
    return "limit", max_iter


def linprog(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, *, tol=1e-10, max_iter=None):
    """min c^T x  s.t.  A_ub x <= b_ub,  A_eq x = b_eq,  x >= 0, by the two-phase tableau simplex.

    Rows are scaled to unit max-norm, every row gets an artificial variable (phase 1 minimises
    their sum; a remaining sum > tol means infeasible), artificials left in the basis at level 0
    are pivoted out or their redundant rows dropped, then phase 2 minimises c^T x. Bland's rule
    (smallest entering index, smallest basic index among ratio ties) prevents cycling. The final x
    is re-solved from the optimal basis with the original data. Returns an :class:`LPResult`.
    """
    c = np.array(c, dtype=np.float64).ravel()
    n = c.size
    a_ub = np.zeros((0, n)) if A_ub is None else np.array(A_ub, dtype=np.float64).reshape(-1, n)
    b_ub_ = np.zeros(0) if b_ub is None else np.array(b_ub, dtype=np.float64).ravel()
    a_eq = np.zeros((0, n)) if A_eq is None else np.array(A_eq, dtype=np.float64).reshape(-1, n)
    b_eq_ = np.zeros(0) if b_eq is None else np.array(b_eq, dtype=np.float64).ravel()
    m_ub, m_eq = a_ub.shape[0], a_eq.shape[0]
    m = m_ub + m_eq
    if b_ub_.size != m_ub or b_eq_.size != m_eq:
        raise ValueError("b_ub/b_eq must have one entry per row of A_ub/A_eq")
    if max_iter is None:
        max_iter = 50 * (n + m + 10)
    # columns: x (n), slacks (m_ub), artificials (m), rhs
    a = np.zeros((m, n + m_ub))
    a[:m_ub, :n] = a_ub
    a[:m_ub, n:] = np.eye(m_ub)
    a[m_ub:, :n] = a_eq
    b = np.concatenate([b_ub_, b_eq_])
    norms = np.maximum(np.max(np.abs(np.column_stack([a, b])), axis=1), _TINY) if m else np.ones(0)
    a /= norms[:, None]
    b = b / norms
    sign = np.where(b < 0.0, -1.0, 1.0)
    a *= sign[:, None]
    b = b * sign
    n_real = n + m_ub
    cscale = max(float(np.max(np.abs(c))), _TINY) if n else 1.0
    tab = np.zeros((m + 2, n_real + m + 1))
    tab[:m, :n_real] = a
    tab[:m, n_real:n_real + m] = np.eye(m)
    tab[:m, -1] = b
    tab[m, :n] = c / cscale                      # phase-2 costs (kept reduced throughout)
    tab[m + 1, n_real:n_real + m] = 1.0          # phase-1 costs: sum of artificials
    basis = list(range(n_real, n_real + m))
    for r in range(m):                           # make the phase-1 row reduced
        tab[m + 1] -= tab[r]
    total_it = 0
    status, its = _simplex_phase(tab, basis, n_real + m, m + 1, tol, max_iter)
    total_it += its
    if status == "limit":
        return LPResult(None, None, 1, total_it)
    if -tab[m + 1, -1] > tol * max(1.0, float(np.max(np.abs(b), initial=0.0))) * 10:
        return LPResult(None, None, 2, total_it)
    # drive artificials at level zero out of the basis; drop redundant rows
    keep = []
    for r in range(m):
        if basis[r] >= n_real:
            candidates = np.flatnonzero(np.abs(tab[r, :n_real]) > 1e3 * tol)
            if candidates.size:
                col = int(candidates[0])
                _pivot(tab, r, col)
                basis[r] = col
                keep.append(r)
        else:
            keep.append(r)
    rows = keep + [m]
    tab = np.concatenate([tab[rows, :n_real], tab[rows, -1:]], axis=1)
    basis = [basis[r] for r in keep]
    status, its = _simplex_phase(tab, basis, n_real, len(keep), tol, max_iter)
    total_it += its
    if status == "unbounded":
        return LPResult(None, None, 3, total_it)
    if status == "limit":
        return LPResult(None, None, 1, total_it)
    # re-solve the basic variables from the scaled original data
    x_full = np.zeros(n_real)
    if basis:
        basic = np.array(basis)
        a_rows = a[keep]
        x_full[basic] = _lstsq(a_rows[:, basic], b[keep])
    x = np.maximum(x_full[:n], 0.0)
    return LPResult(x, float(c @ x), 0, total_it)
