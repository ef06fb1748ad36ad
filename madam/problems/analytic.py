"""Problems with closed-form losses, Jacobians and Hessians: CAGrad's toy, ZDT1/2, VLMOP2 and
Fonseca-Fleming, and the AMOO examples (diagonal quadratics)."""
import math

import numpy as np

from .._validate import integer as _int_arg
from .._validate import real as _real_arg
from .base import Problem, _real_array


_TOY_STARTS = {
    "cagrad": ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0)),
    "nashmtl": ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)),
}


def _toy_terms(x, f1_scale, lower, hessians):
    """Losses (2,), Jacobian (2, 2) and, if asked, Hessians (2, 2, 2) of the toy, in x's dtype."""
    dt = x.dtype.type
    x1, x2 = x[0], x[1]
    # gates c1 = max(tanh(x2/2), 0), c2 = max(-tanh(x2/2), 0); derivatives pass where the clamped
    # argument is >= 0 (PyTorch's clamp), so at x2 = 0 both gates pass their slope.
    th = np.tanh(dt(0.5) * x2)
    dth = dt(0.5) * (dt(1) - th * th)           # d/dx2 tanh(x2/2)
    d2th = -th * dth                             # d2/dx2^2 tanh(x2/2)
    on1, on2 = th >= 0, -th >= 0
    c = (np.maximum(th, dt(0)), np.maximum(-th, dt(0)))
    dc = (dth if on1 else dt(0), -dth if on2 else dt(0))
    d2c = (d2th if on1 else dt(0), -d2th if on2 else dt(0))
    # log branches: u1 = (-x1 - 7)/2 + tanh(x2), u2 = (-x1 + 3)/2 - tanh(x2) + 2
    t2 = np.tanh(x2)
    sech2 = dt(1) - t2 * t2
    us = (dt(0.5) * (-x1 - dt(7)) - np.tanh(-x2), dt(0.5) * (-x1 + dt(3)) + np.tanh(-x2) + dt(2))
    dus = (np.array([-0.5, sech2], dtype=dt), np.array([-0.5, -sech2], dtype=dt))
    d2us = (dt(-2) * t2 * sech2, dt(2) * t2 * sech2)   # only the (x2, x2) entry is nonzero
    # square branches
    sq_shift = (dt(7), dt(-7))                  # f1_sq uses (x1 - 7)^2, f2_sq uses (x1 + 7)^2
    scale = (dt(f1_scale), dt(1))
    f = np.empty(2, dtype=dt)
    jac = np.empty((2, 2), dtype=dt)
    hess = np.zeros((2, 2, 2), dtype=dt) if hessians else None
    for j in range(2):
        u, du, d2u = us[j], dus[j], d2us[j]
        active = np.abs(u) >= lower             # log(max(|u|, LOWER)) passes its slope here
        flog = np.log(np.maximum(np.abs(u), dt(lower))) + dt(6)
        gflog = du / u if active else np.zeros(2, dtype=dt)
        s = sq_shift[j]
        fsq = ((-x1 + s) ** 2 + dt(0.1) * (-x2 - dt(8)) ** 2) / dt(10) - dt(20)
        gfsq = np.array([(x1 - s) / dt(5), (x2 + dt(8)) / dt(50)], dtype=dt)
        gc1 = np.array([0, dc[0]], dtype=dt)
        gc2 = np.array([0, dc[1]], dtype=dt)
        f[j] = c[0] * flog + c[1] * fsq
        jac[j] = c[0] * gflog + flog * gc1 + c[1] * gfsq + fsq * gc2
        if hessians:
            hlog = np.zeros((2, 2), dtype=dt)
            if active:
                hlog = -np.outer(du, du) / (u * u)
                hlog[1, 1] += d2u / u
            hsq = np.diag(np.array([0.2, 0.02], dtype=dt))
            h = (c[0] * hlog + np.outer(gc1, gflog) + np.outer(gflog, gc1)
                 + c[1] * hsq + np.outer(gc2, gfsq) + np.outer(gfsq, gc2))
            h[1, 1] += flog * d2c[0] + fsq * d2c[1]
            hess[j] = h
        f[j] *= scale[j]
        jac[j] *= scale[j]
        if hessians:
            hess[j] *= scale[j]
    return f, jac, hess


class CAGradToy(Problem):
    r"""The 2-objective toy of CAGrad (Liu et al. 2021), also used by Nash-MTL and FAMO.

    With x = (x1, x2) and LOWER = 5e-6::

        c1 = max(tanh(x2/2), 0),   c2 = max(tanh(-x2/2), 0)
        f1_log = log(max(|(-x1 - 7)/2 - tanh(-x2)|, LOWER)) + 6
        f2_log = log(max(|(-x1 + 3)/2 + tanh(-x2) + 2|, LOWER)) + 6
        f1_sq = ((-x1 + 7)^2 + 0.1 (-x2 - 8)^2)/10 - 20
        f2_sq = ((-x1 - 7)^2 + 0.1 (-x2 - 8)^2)/10 - 20
        f1 = f1_scale (c1 f1_log + c2 f1_sq),   f2 = c1 f2_log + c2 f2_sq

    ``f1_scale = 0.1`` with ``starts="nashmtl"`` is the Nash-MTL/FAMO variant (registry name
    ``nashmtl_toy``); ``f1_scale = 1`` with ``starts="cagrad"`` is CAGrad's (``cagrad_toy``).

    Kinks (``smooth`` is False): max and abs make the losses non-differentiable on the line
    x2 = 0 and where |u_j| = LOWER. There :meth:`jacobian` and :meth:`hvp` return the values that
    PyTorch autograd gives for the reference implementation written with ``clamp`` and ``abs``:
    a clamp passes its slope when its argument is >= the bound (so at x2 = 0 both gates pass,
    df/dx2 = (f_log - f_sq)/2 there), and log(max(|u|, LOWER)) has slope 1/u for |u| >= LOWER
    and 0 below. Elsewhere they are the gradient and the Hessian of the smooth piece x lies in;
    :meth:`hvp` is that almost-everywhere Hessian (it never raises).

    Pareto set: for a weight w in [0, 1], the weighted sum w f1/f1_scale + (1 - w) f2 is
    minimised at x1 = 14 w - 7 and at the unique root x2 < 0 of
    d/dx2 [tanh(-x2/2) (19.6 w (1 - w) - 20 + 0.01 (x2 + 8)^2)] = 0, which :meth:`pareto_set`
    solves by bisection (x2 runs from -8.4345 at the ends to -8.3551 at x1 = 0; the literature
    quotes the constant -8.3552). Points with x2 >= 0 have losses >= -6.2 > those of the set, so
    these weighted-sum minimisers are the Pareto set. The front is their image.

    :meth:`initial_points` returns the published starting points of ``starts`` first, in order,
    then points uniform in [-init_box, init_box]^2.
    """

    name = "cagrad_toy"
    smooth = False
    LOWER = 5e-6

    def __init__(self, f1_scale=1.0, starts="cagrad", init_box=10.0, dtype=np.float64):
        super().__init__(2, 2, dtype)
        self.f1_scale = _real_arg("f1_scale", f1_scale, 0.0, low_open=True)
        if not isinstance(starts, str):
            raise TypeError(f"starts must be 'cagrad' or 'nashmtl', got {type(starts).__name__}")
        if starts not in _TOY_STARTS:
            raise ValueError(f"starts must be 'cagrad' or 'nashmtl', got {starts!r}")
        self.starts = starts
        self.init_box = _real_arg("init_box", init_box, 0.0, low_open=True)

    @property
    def starting_points(self):
        """The published starting points of ``starts``, (k, 2)."""
        return np.array(_TOY_STARTS[self.starts], dtype=self.dtype)

    def _losses(self, x, batch):
        return _toy_terms(x, self.f1_scale, self.LOWER, False)[0]

    def _jacobian(self, x, batch):
        return _toy_terms(x, self.f1_scale, self.LOWER, False)[1]

    def _losses_and_jacobian(self, x, batch):
        return _toy_terms(x, self.f1_scale, self.LOWER, False)[:2]

    def _hvp(self, x, v, i, batch):
        return _toy_terms(x, self.f1_scale, self.LOWER, True)[2][i] @ v

    def _hvps(self, x, v, batch):
        return _toy_terms(x, self.f1_scale, self.LOWER, True)[2] @ v

    def _initial_points(self, k, rng):
        starts = np.array(_TOY_STARTS[self.starts], dtype=np.float64)[:k]
        extra = rng.uniform(-self.init_box, self.init_box, size=(k - len(starts), 2))
        return np.concatenate([starts, extra])

    def _pareto_set(self, n_points):
        w = np.linspace(0.0, 1.0, n_points)
        kappa = 19.6 * w * (1.0 - w)
        lo, hi = np.full(n_points, -30.0), np.full(n_points, -1.0)

        def slope(x2):                          # d/dx2 of tanh(-x2/2) (kappa - 20 + 0.01 (x2+8)^2)
            c2 = np.tanh(-0.5 * x2)
            return -0.5 * (1.0 - c2 * c2) * (kappa - 20.0 + 0.01 * (x2 + 8.0) ** 2) \
                + c2 * 0.02 * (x2 + 8.0)
        for _ in range(200):                    # slope < 0 at -30, > 0 at -1: bisect to the ulp
            mid = 0.5 * (lo + hi)
            neg = slope(mid) < 0
            lo = np.where(neg, mid, lo)
            hi = np.where(neg, hi, mid)
        return np.stack([14.0 * w - 7.0, 0.5 * (lo + hi)], axis=1)

    def _pareto_front(self, n_points):
        return np.stack([_toy_terms(p, self.f1_scale, self.LOWER, False)[0]
                         for p in self._pareto_set(n_points)])


# ============================================================================ ZDT
class _ZDT(Problem):
    smooth = True

    def __init__(self, n=30, dtype=np.float64, boundary_eps=1e-12):
        n = _int_arg("n", n, 2)
        super().__init__(2, n, dtype, bounds=(0.0, 1.0))
        self.boundary_eps = _real_arg("boundary_eps", boundary_eps, 0.0)
        self._c = 9.0 / (n - 1)

    def _g(self, x):
        return self.dtype.type(1) + self.dtype.type(self._c) * np.sum(x[1:])

    def _losses(self, x, batch):
        f1, g = x[0], self._g(x)
        return np.array([f1, self._f2(f1, g)], dtype=self.dtype)

    def _jacobian(self, x, batch):
        d1, dg = self._d(x[0], self._g(x))
        jac = np.zeros((2, self.dim), dtype=self.dtype)
        jac[0, 0] = 1
        jac[1, 0] = d1
        jac[1, 1:] = self.dtype.type(self._c) * dg
        return jac

    def _hvp(self, x, v, i, batch):
        out = np.zeros(self.dim, dtype=self.dtype)
        if i == 0:
            return out                              # f1 = x1 is linear
        h11, h1g, hgg = self._d2(x[0], self._g(x))
        c = self.dtype.type(self._c)
        s = c * np.sum(v[1:])                       # the change of g along v
        out[0] = h11 * v[0] + h1g * s
        out[1:] = c * (h1g * v[0] + hgg * s)
        return out

    def _pareto_set(self, n_points):
        pset = np.zeros((n_points, self.dim))
        pset[:, 0] = np.linspace(0.0, 1.0, n_points)
        return pset


class ZDT1(_ZDT):
    r"""ZDT1 (Zitzler, Deb, Thiele 2000) on the box [0, 1]^n (default n = 30).

    f1 = x1,  g = 1 + 9/(n-1) sum_{i>=2} x_i,  f2 = g (1 - sqrt(f1/g)) = g - sqrt(f1 g).
    Pareto set: x1 in [0, 1], x_i = 0 for i >= 2; front f2 = 1 - sqrt(f1), convex.

    Boundary convention: df2/dx1 = -sqrt(g/x1)/2 tends to -inf as x1 -> 0, so f2 is not
    differentiable at x1 = 0 (``smooth`` is False). For x1 < ``boundary_eps`` (default 1e-12) the
    derivatives of f2 (Jacobian row and Hessian) are those at x1 = boundary_eps: finite, very steep
    (about -5e5 sqrt(g)), pointing into the box. The losses themselves are exact.
    ``boundary_eps = 0`` gives the true one-sided value, -inf, at x1 = 0.

    Derivatives (with f1 floored as above): df2/df1 = -sqrt(g/f1)/2,
    df2/dg = 1 - sqrt(f1/g)/2, d2f2/df1^2 = sqrt(g) f1^(-3/2)/4, d2f2/df1 dg = -1/(4 sqrt(f1 g)),
    d2f2/dg^2 = sqrt(f1) g^(-3/2)/4, chained through dg/dx_i = 9/(n-1).
    """

    name = "zdt1"
    smooth = False

    def _floor(self, f1):
        return np.maximum(f1, self.dtype.type(self.boundary_eps))

    def _f2(self, f1, g):
        return g * (self.dtype.type(1) - np.sqrt(f1 / g))

    def _d(self, f1, g):
        f1 = self._floor(f1)
        with np.errstate(divide="ignore"):
            return (-np.sqrt(g / f1) / 2, 1 - np.sqrt(f1 / g) / 2)

    def _d2(self, f1, g):
        f1 = self._floor(f1)
        with np.errstate(divide="ignore"):
            return (np.sqrt(g) / (f1 * np.sqrt(f1)) / 4, -1 / (4 * np.sqrt(f1 * g)),
                    np.sqrt(f1) / (g * np.sqrt(g)) / 4)

    def _pareto_front(self, n_points):
        f1 = np.linspace(0.0, 1.0, n_points)
        return np.stack([f1, 1.0 - np.sqrt(f1)], axis=1)


class ZDT2(_ZDT):
    r"""ZDT2 (Zitzler, Deb, Thiele 2000) on the box [0, 1]^n (default n = 30).

    f1 = x1,  g = 1 + 9/(n-1) sum_{i>=2} x_i,  f2 = g (1 - (f1/g)^2) = g - f1^2/g.
    Pareto set: x1 in [0, 1], x_i = 0 for i >= 2; front f2 = 1 - f1^2, concave.
    Smooth on the box: df2/df1 = -2 f1/g, df2/dg = 1 + (f1/g)^2, d2f2/df1^2 = -2/g,
    d2f2/df1 dg = 2 f1/g^2, d2f2/dg^2 = -2 f1^2/g^3, chained through dg/dx_i = 9/(n-1).
    (``boundary_eps`` is accepted for symmetry with ZDT1 and unused.)
    """

    name = "zdt2"

    def _f2(self, f1, g):
        return g * (self.dtype.type(1) - (f1 / g) ** 2)

    def _d(self, f1, g):
        return -2 * f1 / g, 1 + (f1 / g) ** 2

    def _d2(self, f1, g):
        return -2 / g, 2 * f1 / (g * g), -2 * f1 * f1 / (g * g * g)

    def _pareto_front(self, n_points):
        f1 = np.linspace(0.0, 1.0, n_points)
        return np.stack([f1, 1.0 - f1 ** 2], axis=1)


# ==================================================================== VLMOP2 / Fonseca-Fleming
class VLMOP2(Problem):
    r"""VLMOP2 / Fonseca-Fleming: two Gaussian wells at -/+ a, a = 1/sqrt(n) (all coordinates).

    f1 = 1 - exp(-||x - a 1||^2),  f2 = 1 - exp(-||x + a 1||^2),  x in [-bound, bound]^n.
    grad f_j = 2 (x -/+ a) (1 - f_j);  Hessian f_j = (1 - f_j) (2 I - 4 d_j d_j^T), d_j = x -/+ a.
    Defaults n = 2, bound = 2 (VLMOP2); registry ``fonseca_fleming`` uses n = 3, bound = 4.
    Pareto set: x = t 1, t in [-a, a]; front, with s = sqrt(n) t in [-1, 1]:
    (1 - exp(-(s-1)^2), 1 - exp(-(s+1)^2)), i.e. f2 = 1 - exp(-(2 - sqrt(-log(1 - f1)))^2): concave.
    """

    name = "vlmop2"

    def __init__(self, n=2, bound=2.0, dtype=np.float64):
        n = _int_arg("n", n, 1)
        bound = _real_arg("bound", bound, 0.0, low_open=True)
        if bound < 1.0 / math.sqrt(n):
            raise ValueError(f"bound must be >= 1/sqrt(n) = {1 / math.sqrt(n)} to hold the "
                             f"Pareto set, got {bound}")
        super().__init__(2, n, dtype, bounds=(-bound, bound))
        self.bound = bound
        self._a = 1.0 / math.sqrt(n)

    def _diffs(self, x):
        a = self.dtype.type(self._a)
        return x - a, x + a

    def _losses(self, x, batch):
        return np.array([1 - np.exp(-np.dot(d, d)) for d in self._diffs(x)], dtype=self.dtype)

    def _jacobian(self, x, batch):
        return np.stack([2 * d * np.exp(-np.dot(d, d)) for d in self._diffs(x)])

    def _losses_and_jacobian(self, x, batch):
        ds = self._diffs(x)
        e = [np.exp(-np.dot(d, d)) for d in ds]
        return (np.array([1 - ej for ej in e], dtype=self.dtype),
                np.stack([2 * d * ej for d, ej in zip(ds, e)]))

    def _hvp(self, x, v, i, batch):
        d = self._diffs(x)[i]
        return np.exp(-np.dot(d, d)) * (2 * v - 4 * d * np.dot(d, v))

    def _pareto_set(self, n_points):
        t = np.linspace(-self._a, self._a, n_points)
        return np.repeat(t[:, None], self.dim, axis=1)

    def _pareto_front(self, n_points):
        s = np.linspace(-1.0, 1.0, n_points)
        return np.stack([1.0 - np.exp(-(s - 1.0) ** 2), 1.0 - np.exp(-(s + 1.0) ** 2)], axis=1)


# ============================================================================ AMOO examples
class DiagonalQuadratics(Problem):
    r"""Aligned diagonal quadratics f_i(x) = sum_j A_ij x_j^2 with A >= 0 (C, n).

    grad f_i = 2 A_i * x,  Hessian f_i = 2 Diag(A_i) (constant: ``hessian_diagonals`` = 2 A,
    the matrix of AMOO's bilinear game). All objectives are minimised at x = 0: the Pareto set
    and front are the single points 0 in R^n and 0 in R^C (``n_points`` is ignored).
    :meth:`initial_points` draws N(0, init_scale^2 I).
    """

    name = "diagonal_quadratics"

    def __init__(self, coefficients, dtype=np.float64, init_scale=1.0):
        a = _real_array("coefficients", coefficients, dtype=np.float64)
        if a.ndim != 2 or a.size == 0:
            raise ValueError(f"coefficients must be a non-empty (C, n) matrix, got shape {a.shape}")
        if np.any(a < 0):
            raise ValueError("coefficients must be >= 0 (convex quadratics)")
        super().__init__(a.shape[0], a.shape[1], dtype)
        self.init_scale = _real_arg("init_scale", init_scale, 0.0, low_open=True)
        self.coefficients = a.astype(self.dtype)
        self.coefficients.flags.writeable = False

    @property
    def hessian_diagonals(self):
        """The exact diagonal Hessians, (C, n): row i = diag Hessian of f_i = 2 A_i."""
        return 2 * self.coefficients

    def _losses(self, x, batch):
        return self.coefficients @ (x * x)

    def _jacobian(self, x, batch):
        return 2 * self.coefficients * x

    def _hvp(self, x, v, i, batch):
        return 2 * self.coefficients[i] * v

    def _hvps(self, x, v, batch):
        return 2 * self.coefficients * v

    def _initial_points(self, k, rng):
        return self.init_scale * rng.standard_normal((k, self.dim))

    def _pareto_set(self, n_points):
        return np.zeros((1, self.dim))

    def _pareto_front(self, n_points):
        return np.zeros((1, self.n_obj))


class AMOOSpecification(DiagonalQuadratics):
    r"""AMOO's specification example (Efroni et al., OPT 2024, section 2), x in R^2.

    f1 = (1 - delta) x1^2 + delta x2^2,   f2 = delta x1^2 + (1 - delta) x2^2,   delta in [0, 0.5].
    Each f_i is only 2 delta-strongly convex; the uniform mix (x1^2 + x2^2)/2 is 1-strongly convex.
    Shared minimiser x* = 0 (aligned).
    """

    name = "amoo_specification"

    def __init__(self, delta=0.01, dtype=np.float64, init_scale=1.0):
        self.delta = _real_arg("delta", delta, 0.0, 0.5)
        d = self.delta
        super().__init__([[1 - d, d], [d, 1 - d]], dtype, init_scale)


class AMOOSelection(DiagonalQuadratics):
    r"""AMOO's selection example (Efroni et al., OPT 2024, section 2), x in R^n, C objectives.

    f_i = (1 - delta) x1^2 + delta sum_{j>=2} x_j^2  for i < C,   f_C = sum_j x_j^2.
    (The workshop text prints the delta-terms as x_j, without the square; that would make the
    f_i unbounded below and break the shared minimiser x* = 0 the example is about, so the squares
    are used, as in its analysis.) Only f_C is Omega(1)-strongly convex; the uniform weighting
    is O(1/C)-strongly convex. Defaults C = 10, n = 10, delta = 0.01.
    """

    name = "amoo_selection"

    def __init__(self, n_obj=10, dim=10, delta=0.01, dtype=np.float64, init_scale=1.0):
        n_obj = _int_arg("n_obj", n_obj, 2)
        dim = _int_arg("dim", dim, 2)
        self.delta = _real_arg("delta", delta, 0.0, 0.5)
        a = np.full((n_obj, dim), self.delta)
        a[:, 0] = 1 - self.delta
        a[-1] = 1.0
        super().__init__(a, dtype, init_scale)
