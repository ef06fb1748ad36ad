r"""Multi-objective test problems with analytic Jacobians and exact Hessian-vector products.

Every problem maps a flat parameter vector ``x`` of shape ``(n,)`` to ``C`` losses and implements
the :class:`Problem` interface::

    p = madam.problems.get("zdt1", n=30, dtype=np.float32)
    x = p.initial_points(1, np.random.default_rng(0))[0]
    f = p.losses(x)                      # (C,)
    J = p.jacobian(x)                    # (C, n), analytic
    Hv = p.hvp(x, v, i)                  # exact Hessian of f_i at x times v, (n,)
    p.project(x)                         # clip into the box (in place) for box-constrained problems
    batch = p.new_batch(rng)             # stochastic problems: a minibatch for losses(x, batch)
    p.pareto_front(100), p.pareto_set(100)   # where known, else None

Problems (see :func:`names`; :func:`get` builds one by name):

==================== ======== ============ ==================================================
name                 C        n            what
==================== ======== ============ ==================================================
cagrad_toy           2        2            CAGrad's toy (Liu et al. 2021), CAGrad starts
nashmtl_toy          2        2            the same with f1 scaled by 0.1, Nash-MTL/FAMO starts
zdt1, zdt2           2        30           box [0, 1]^n
vlmop2               2        2            box [-2, 2]^n, concave front
fonseca_fleming      2        3            box [-4, 4]^n, concave front
amoo_specification   2        2            AMOO "specification" example (aligned)
amoo_selection       10       10           AMOO "selection" example (aligned)
teacher_student      10       5386         AMOO teacher-student MLP, 10 quadratic losses
mtl_regression       3        11           shared low-rank linear model, conflicting tasks
linnerud_mtl         3        115          the Linnerud data (bundled), shared-bottom MLP
wine_mtl             3        275          the UCI wine data (bundled), 3 one-vs-rest tasks
==================== ======== ============ ==================================================

Conventions common to all problems:

- ``dtype`` is float32 or float64 (default); every returned array has the problem's dtype and the
  arithmetic runs in it. Random data (teachers, data sets, minibatches) are drawn in float64 and
  rounded, so the float32 and float64 variants of a problem see the same data.
- Inputs are validated: ``x`` and ``v`` must hold real numbers, have shape ``(n,)`` and be finite
  (they are cast to the problem's dtype); points of a box-constrained problem must lie in the box
  (call :meth:`Problem.project` after an optimiser step). Errors are TypeError/ValueError naming
  the argument.
- ``hvp`` is the exact Hessian-vector product, computed by hand (no finite differences). Where an
  objective is not twice differentiable everywhere (``smooth`` is False) the class docstring says
  which almost-everywhere Hessian ``hvp`` returns at the kinks.
"""
import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["Problem", "Batch", "CAGradToy", "ZDT1", "ZDT2", "VLMOP2", "DiagonalQuadratics",
           "AMOOSpecification", "AMOOSelection", "TeacherStudent", "MultiTaskRegression",
           "RealDataMTL", "get", "names"]

_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ============================================================================ argument checks
def _dtype_arg(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in _FLOAT_TYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _int_arg(name, value, minimum=None, maximum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def _real_arg(name, value, low=None, high=None, low_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def _rng_arg(rng):
    """A np.random.Generator, or an integer seed turned into one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError("rng must be a numpy.random.Generator or an integer seed "
                    f"(np.random.default_rng(seed)), got {type(rng).__name__}")


def _real_array(name, value, shape=None, dtype=None):
    """``value`` as a finite real array (cast to ``dtype`` when given) of the given shape."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} is not a rectangular array of numbers: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if dtype is not None:
        with np.errstate(over="ignore"):
            arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or Inf")
    return arr


def _torch_linear_init(rng, fan_in, shape):
    """PyTorch's default nn.Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), float64."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


# ============================================================================ base class
@dataclass(frozen=True)
class Batch:
    """A minibatch handle: ``inputs`` (B, d_in) and ``targets`` (B, d_out) in the problem's dtype.

    Returned by ``new_batch(rng)`` of the stochastic problems and accepted by their
    ``losses/jacobian/hvp(..., batch=...)``.
    """

    inputs: np.ndarray
    targets: np.ndarray

    def __len__(self):
        return self.inputs.shape[0]


class Problem:
    r"""Base class of the multi-objective test problems: C losses of a flat vector x in R^n.

    Attributes: ``name`` (str), ``n_obj`` (C), ``dim`` (n), ``dtype``, ``bounds`` (None, or a pair
    of (n,) arrays: the box lower <= x <= upper, kept by :meth:`project`), ``smooth`` (True when
    every objective is twice continuously differentiable on the whole domain, so :meth:`hvp` is
    the Hessian everywhere; False when it is the documented almost-everywhere Hessian).

    Subclasses implement ``_losses(x, batch)``, ``_jacobian(x, batch)`` and optionally
    ``_losses_and_jacobian``, ``_hvp(x, v, i, batch)``, ``_hvps``, ``_initial_points``,
    ``_pareto_set``, ``_pareto_front``, ``_check_batch`` and ``new_batch``; the public methods
    validate the arguments first.
    """

    name = "problem"
    smooth = True

    def __init__(self, n_obj, dim, dtype=np.float64, bounds=None):
        self.n_obj = _int_arg("n_obj", n_obj, 1)
        self.dim = _int_arg("dim", dim, 1)
        self.dtype = _dtype_arg(dtype)
        if bounds is not None:
            lower = np.broadcast_to(np.asarray(bounds[0], dtype=self.dtype), (self.dim,)).copy()
            upper = np.broadcast_to(np.asarray(bounds[1], dtype=self.dtype), (self.dim,)).copy()
            if not np.all(lower <= upper):
                raise ValueError("bounds: lower must be <= upper")
            lower.flags.writeable = False
            upper.flags.writeable = False
            bounds = (lower, upper)
        self.bounds = bounds

    def __repr__(self):
        return (f"<{type(self).__name__} {self.name!r}: C={self.n_obj}, n={self.dim}, "
                f"{self.dtype}{', box' if self.bounds is not None else ''}>")

    # ------------------------------------------------------------------ validation
    def _point(self, x, name="x"):
        x = _real_array(name, x, (self.dim,), self.dtype)
        if self.bounds is not None and not (np.all(x >= self.bounds[0])
                                            and np.all(x <= self.bounds[1])):
            raise ValueError(f"{name} lies outside the box of {self.name}; "
                             "call problem.project(x) after each step")
        return x

    def _objective(self, i):
        return _int_arg("i", i, 0, self.n_obj - 1)

    def _check_batch(self, batch):
        """Deterministic problems take no batch."""
        if batch is not None:
            raise TypeError(f"batch must be None for the deterministic problem {self.name}, "
                            f"got {type(batch).__name__}")
        return None

    def _out(self, arr):
        return np.asarray(arr, dtype=self.dtype)

    # ------------------------------------------------------------------ public interface
    def losses(self, x, batch=None):
        """The C losses at x: array (C,)."""
        x = self._point(x)
        return self._out(self._losses(x, self._check_batch(batch)))

    def jacobian(self, x, batch=None):
        """The analytic Jacobian at x: array (C, n), row i = grad f_i(x)."""
        x = self._point(x)
        return self._out(self._jacobian(x, self._check_batch(batch)))

    def losses_and_jacobian(self, x, batch=None):
        """``(losses(x), jacobian(x))`` from one pass where the problem allows it."""
        x = self._point(x)
        f, jac = self._losses_and_jacobian(x, self._check_batch(batch))
        return self._out(f), self._out(jac)

    def hvp(self, x, v, i, batch=None):
        """Exact Hessian-vector product (Hessian of f_i at x) @ v: array (n,)."""
        x = self._point(x)
        v = _real_array("v", v, (self.dim,), self.dtype)
        i = self._objective(i)
        return self._out(self._hvp(x, v, i, self._check_batch(batch)))

    def hvps(self, x, v, batch=None):
        """Hessian-vector products of every objective with the same v: array (C, n)."""
        x = self._point(x)
        v = _real_array("v", v, (self.dim,), self.dtype)
        return self._out(self._hvps(x, v, self._check_batch(batch)))

    def hessian(self, x, i, batch=None):
        """Dense Hessian of f_i at x, (n, n), from n Hessian-vector products (small n only)."""
        x = self._point(x)
        i = self._objective(i)
        batch = self._check_batch(batch)
        eye = np.eye(self.dim, dtype=self.dtype)
        return self._out(np.stack([self._hvp(x, eye[j], i, batch) for j in range(self.dim)], 1))

    def project(self, x):
        """Clip x into the box, in place; returns x. The identity (after the checks) without box."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a NumPy array (projected in place), got {type(x).__name__}")
        if x.dtype not in _FLOAT_TYPES:
            raise TypeError(f"x must be float32 or float64, got {x.dtype}")
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},), got {x.shape}")
        if not x.flags.writeable:
            raise ValueError("x is read-only; project() clips it in place")
        if np.isnan(x).any():
            raise ValueError("x holds NaN")
        if self.bounds is not None:
            np.clip(x, self.bounds[0].astype(x.dtype), self.bounds[1].astype(x.dtype), out=x)
        return x

    def initial_points(self, k, rng):
        """k starting points, (k, n), drawn from the problem's sampler with ``rng``."""
        k = _int_arg("k", k, 1)
        rng = _rng_arg(rng)
        pts = self._out(self._initial_points(k, rng))
        if self.bounds is not None:
            for row in pts:
                self.project(row)
        return pts

    def new_batch(self, rng):
        """A fresh minibatch for stochastic problems; None for deterministic ones."""
        _rng_arg(rng)
        return None

    def pareto_front(self, n_points=100):
        """n_points points of the analytic Pareto front, (N, C), or None where it is not known."""
        n_points = _int_arg("n_points", n_points, 2)
        front = self._pareto_front(n_points)
        return None if front is None else self._out(front)

    def pareto_set(self, n_points=100):
        """Pareto-optimal points, (N, n), row k mapping onto pareto_front(n_points); or None."""
        n_points = _int_arg("n_points", n_points, 2)
        pset = self._pareto_set(n_points)
        return None if pset is None else self._out(pset)

    # ------------------------------------------------------------------ defaults for subclasses
    def _losses_and_jacobian(self, x, batch):
        return self._losses(x, batch), self._jacobian(x, batch)

    def _hvp(self, x, v, i, batch):
        raise NotImplementedError(f"{self.name} has no Hessian-vector product")

    def _hvps(self, x, v, batch):
        return np.stack([self._hvp(x, v, i, batch) for i in range(self.n_obj)])

    def _initial_points(self, k, rng):
        if self.bounds is None:
            return rng.standard_normal((k, self.dim))
        lower, upper = (b.astype(np.float64) for b in self.bounds)
        return lower + (upper - lower) * rng.random((k, self.dim))

    def _pareto_front(self, n_points):
        return None

    def _pareto_set(self, n_points):
        return None


# ============================================================================ CAGrad toy
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


# ============================================================================ batched problems
class _Batched(Problem):
    """Shared batch checking: a :class:`Batch` of (B, d_in) inputs and (B, d_out) targets."""

    _d_in = _d_out = 0

    def _check_batch(self, batch):
        if batch is None:
            return self._default_batch()
        if not isinstance(batch, Batch):
            raise TypeError(f"batch must be a madam.problems.Batch (from new_batch) or None, "
                            f"got {type(batch).__name__}")
        inputs = _real_array("batch.inputs", batch.inputs, dtype=self.dtype)
        targets = _real_array("batch.targets", batch.targets, dtype=self.dtype)
        if inputs.ndim != 2 or inputs.shape[1] != self._d_in or inputs.shape[0] < 1:
            raise ValueError(f"batch.inputs must have shape (B, {self._d_in}) with B >= 1, "
                             f"got {inputs.shape}")
        if targets.shape != (inputs.shape[0], self._d_out):
            raise ValueError(f"batch.targets must have shape ({inputs.shape[0]}, {self._d_out}), "
                             f"got {targets.shape}")
        return Batch(inputs, targets)


class _Dataset(_Batched):
    """Problems on a fixed data set (inputs (N, d_in), targets (N, T)); batch None = all rows."""

    def _set_data(self, inputs, targets, batch_size):
        inputs = np.asarray(inputs, dtype=self.dtype)
        targets = np.asarray(targets, dtype=self.dtype)
        inputs.flags.writeable = False
        targets.flags.writeable = False
        self.data = Batch(inputs, targets)
        self._d_in, self._d_out = inputs.shape[1], targets.shape[1]
        self.batch_size = (None if batch_size is None
                           else _int_arg("batch_size", batch_size, 1, inputs.shape[0]))

    def _default_batch(self):
        return self.data

    def new_batch(self, rng):
        """Rows drawn without replacement (``batch_size`` of them); None when batch_size is None
        (full-batch training: losses(x) uses every row)."""
        rng = _rng_arg(rng)
        if self.batch_size is None:
            return None
        rows = np.sort(rng.choice(self.data.inputs.shape[0], self.batch_size, replace=False))
        return Batch(self.data.inputs[rows], self.data.targets[rows])


# ============================================================================ teacher-student
class TeacherStudent(_Batched):
    r"""AMOO's teacher-student problem (Efroni et al., OPT 2024, section 4 and appendix C).

    Student and teacher are 2-layer ReLU MLPs h(u) = W2 relu(W1 u + b1) + b2 from R^d_in to
    R^d_out with ``hidden`` units. The flat parameter vector x is laid out as
    ``[W1 (hidden, d_in) row-major, b1 (hidden), W2 (d_out, hidden) row-major, b2 (d_out)]``
    (PyTorch's nn.Linear layout), n = hidden (d_in + 1) + d_out (hidden + 1); :meth:`unflatten`
    returns the four views. On a batch of inputs u_b ~ N(0, I) with targets
    y_b = h_teacher(u_b) + sigma eps_b, eps_b ~ N(0, I), the C losses are::

        f_i(x) = (1/B) sum_b (o_b - y_b)^T H_i (o_b - y_b),    o_b = h_x(u_b)

    with diagonal H_1 = I and H_i = a I + (1 - a) e1 e1^T (a = ``alpha``) for i >= 2, unless
    ``output_hessian_diags`` (C, d_out, non-negative) gives the diagonals. All losses are minimised
    in expectation by the teacher (aligned objectives). Defaults follow the paper: d_in = d_out =
    10, hidden = 256, C = 10, a = 1e-4, batch 1024; sigma = 0.1 (the paper runs 1, 0.1, 0.001).

    Gradients (G_i = (2/B) (O - Y) H_i, rows per sample; m = 1[Z > 0], Z = U W1^T + b1, A = m Z):
    dW2 = G^T A, db2 = sum_b G, D = (G W2) * m, dW1 = D^T U, db1 = sum_b D.

    Hessian-vector product along v = (V1, c1, V2, c2), Pearlmutter's R-operator written by hand
    (forward R-pass, then the R-backward); relu'' = 0 and the masks are constant a.e., so::

        R(Z) = U V1^T + c1,   R(A) = m * R(Z),   R(O) = R(A) W2^T + A V2^T + c2
        R(G) = (2/B) R(O) H_i
        R(dW2) = R(G)^T A + G^T R(A),        R(db2) = sum_b R(G)
        R(D) = (R(G) W2 + G V2) * m,         R(dW1) = R(D)^T U,   R(db1) = sum_b R(D)

    i.e. the Gauss-Newton term J_o^T (2 H_i / B) J_o plus the output-residual curvature through the
    bilinear W2 * relu(.) coupling (the terms G^T R(A) and G V2). This is the exact Hessian
    wherever no pre-activation is exactly 0 (``smooth`` is False); there relu'(0) = 0 is used,
    as in PyTorch.

    Batches: ``new_batch(rng)`` draws a fresh :class:`Batch` of ``batch_size`` samples;
    ``batch=None`` uses a fixed batch drawn at construction (``self.batch``), so the problem is
    deterministic unless batches are passed. The teacher and that batch come from ``seed``.
    :meth:`initial_points` draws students from PyTorch's default nn.Linear initialisation (as the
    teacher). The Pareto set of the batch losses is not known in closed form (None); the teacher
    is ``self.teacher``.
    """

    name = "teacher_student"
    smooth = False

    def __init__(self, n_obj=None, alpha=1e-4, d_in=10, hidden=256, d_out=10, batch_size=1024,
                 sigma=0.1, seed=0, dtype=np.float64, output_hessian_diags=None):
        d_in = _int_arg("d_in", d_in, 1)
        hidden = _int_arg("hidden", hidden, 1)
        d_out = _int_arg("d_out", d_out, 1)
        self.alpha = _real_arg("alpha", alpha, 0.0, 1.0)
        if output_hessian_diags is None:
            n_obj = 10 if n_obj is None else _int_arg("n_obj", n_obj, 1)
            hd = np.full((n_obj, d_out), self.alpha)
            hd[:, 0] = 1.0
            hd[0] = 1.0
        else:
            hd = _real_array("output_hessian_diags", output_hessian_diags, dtype=np.float64)
            if hd.ndim != 2 or hd.shape[1] != d_out or hd.shape[0] < 1:
                raise ValueError(f"output_hessian_diags must have shape (C, d_out={d_out}), "
                                 f"got {hd.shape}")
            if np.any(hd < 0):
                raise ValueError("output_hessian_diags must be >= 0 (positive semi-definite H_i)")
            if n_obj is not None and _int_arg("n_obj", n_obj, 1) != hd.shape[0]:
                raise ValueError(f"n_obj={n_obj} disagrees with output_hessian_diags "
                                 f"({hd.shape[0]} rows)")
            n_obj = hd.shape[0]
        super().__init__(n_obj, hidden * (d_in + 1) + d_out * (hidden + 1), dtype)
        self.d_in, self.hidden, self.d_out = d_in, hidden, d_out
        self._d_in, self._d_out = d_in, d_out
        self.batch_size = _int_arg("batch_size", batch_size, 1)
        self.sigma = _real_arg("sigma", sigma, 0.0)
        self.seed = _int_arg("seed", seed, 0)
        self.output_hessian_diags = hd.astype(self.dtype)
        self.output_hessian_diags.flags.writeable = False
        rng = np.random.default_rng(self.seed)
        self._teacher64 = self._draw_params(rng)
        self.teacher = self._out(self._teacher64)
        self.teacher.flags.writeable = False
        self.batch = self._draw_batch(rng)
        self._validation_inputs = None

    # ------------------------------------------------------------------ layout and data
    def unflatten(self, x):
        """Views (W1 (hidden, d_in), b1 (hidden,), W2 (d_out, hidden), b2 (d_out,)) into x."""
        h, di, do = self.hidden, self.d_in, self.d_out
        s1, s2, s3 = h * di, h * di + h, h * di + h + do * h
        return x[:s1].reshape(h, di), x[s1:s2], x[s2:s3].reshape(do, h), x[s3:]

    def _draw_params(self, rng):
        h, di, do = self.hidden, self.d_in, self.d_out
        return np.concatenate([_torch_linear_init(rng, di, h * di), _torch_linear_init(rng, di, h),
                               _torch_linear_init(rng, h, do * h), _torch_linear_init(rng, h, do)])

    def _teacher_outputs(self, inputs):
        """Teacher outputs computed in float64, rounded to the problem's dtype."""
        return self._out(self._forward(self._teacher64, inputs.astype(np.float64))[2])

    def _draw_batch(self, rng):
        inputs64 = rng.standard_normal((self.batch_size, self.d_in))
        noise = rng.standard_normal((self.batch_size, self.d_out))
        targets = self._out(self._forward(self._teacher64, inputs64)[2] + self.sigma * noise)
        inputs = self._out(inputs64)
        inputs.flags.writeable = False
        targets.flags.writeable = False
        return Batch(inputs, targets)

    def _default_batch(self):
        return self.batch

    def new_batch(self, rng):
        """A fresh Batch: batch_size inputs ~ N(0, I), targets = teacher + sigma N(0, I)."""
        return self._draw_batch(_rng_arg(rng))

    def _initial_points(self, k, rng):
        return np.stack([self._draw_params(rng) for _ in range(k)])

    def output_error(self, x, inputs=None):
        """E ||h_x(u) - h_teacher(u)||^2 / d_out over ``inputs`` (m, d_in) (default: 8192 fixed
        N(0, I) validation inputs drawn from seed + 1): the paper's per-dimension distance."""
        x = self._point(x)
        if inputs is None:
            if self._validation_inputs is None:
                rng = np.random.default_rng(self.seed + 1)
                self._validation_inputs = self._out(rng.standard_normal((8192, self.d_in)))
            inputs = self._validation_inputs
        else:
            inputs = _real_array("inputs", inputs, dtype=self.dtype)
            if inputs.ndim != 2 or inputs.shape[1] != self.d_in or inputs.shape[0] < 1:
                raise ValueError(f"inputs must have shape (m, {self.d_in}), got {inputs.shape}")
        diff = self._forward(x, inputs)[2] - self._teacher_outputs(inputs)
        return float(np.mean(diff * diff))

    # ------------------------------------------------------------------ network
    def _forward(self, x, inputs):
        w1, b1, w2, b2 = self.unflatten(x)
        z = inputs @ w1.T + b1
        mask = z > 0
        act = z * mask                                          # relu, in z's dtype
        return mask, act, act @ w2.T + b2

    def _backward(self, x, g, act, mask, inputs):
        """Parameter gradients for stacked output gradients g (S, B, d_out): (S, n)."""
        _, _, w2, _ = self.unflatten(x)
        g_w2 = np.swapaxes(g, 1, 2) @ act
        g_b2 = g.sum(axis=1)
        d = (g @ w2) * mask
        g_w1 = np.swapaxes(d, 1, 2) @ inputs
        g_b1 = d.sum(axis=1)
        s = g.shape[0]
        return np.concatenate([g_w1.reshape(s, -1), g_b1, g_w2.reshape(s, -1), g_b2], axis=1)

    def _residual(self, x, batch):
        mask, act, out = self._forward(x, batch.inputs)
        return mask, act, out - batch.targets

    def _losses(self, x, batch):
        r = self._residual(x, batch)[2]
        return self.output_hessian_diags @ np.mean(r * r, axis=0)

    def _grad_outputs(self, r, hd):
        """G_i = (2/B) r H_i for the diagonal rows hd (S, d_out): (S, B, d_out)."""
        return (2 / r.shape[0]) * r[None, :, :] * hd[:, None, :]

    def _jacobian(self, x, batch):
        return self._losses_and_jacobian(x, batch)[1]

    def _losses_and_jacobian(self, x, batch):
        mask, act, r = self._residual(x, batch)
        f = self.output_hessian_diags @ np.mean(r * r, axis=0)
        g = self._grad_outputs(r, self.output_hessian_diags)
        jac = self._backward(x, g, act, mask, batch.inputs)
        return f, jac

    def _r_op(self, x, v, hd, batch):
        """Hessian-vector products for the objectives with diagonals hd (S, d_out): (S, n)."""
        mask, act, r = self._residual(x, batch)
        _, _, w2, _ = self.unflatten(x)
        v1, c1, v2, c2 = self.unflatten(v)
        u = batch.inputs
        r_act = (u @ v1.T + c1) * mask                        # R(A)
        r_out = r_act @ w2.T + act @ v2.T + c2                # R(O)
        g = self._grad_outputs(r, hd)                         # (S, B, d_out)
        rg = self._grad_outputs(r_out, hd)                    # R(G)
        r_w2 = np.swapaxes(rg, 1, 2) @ act + np.swapaxes(g, 1, 2) @ r_act
        r_b2 = rg.sum(axis=1)
        r_d = (rg @ w2 + g @ v2) * mask
        r_w1 = np.swapaxes(r_d, 1, 2) @ u
        r_b1 = r_d.sum(axis=1)
        s = hd.shape[0]
        return np.concatenate([r_w1.reshape(s, -1), r_b1, r_w2.reshape(s, -1), r_b2], axis=1)

    def _hvp(self, x, v, i, batch):
        return self._r_op(x, v, self.output_hessian_diags[i:i + 1], batch)[0]

    def _hvps(self, x, v, batch):
        return self._r_op(x, v, self.output_hessian_diags, batch)


# ============================================================================ synthetic MTL
class MultiTaskRegression(_Dataset):
    r"""Multi-task linear regression through a shared low-rank representation; tasks conflict.

    Data (from ``seed``): inputs u_b ~ N(0, I_p), b = 1..N; task directions
    beta_t = normalise(sqrt(rho) z_0 + sqrt(1 - rho) z_t), z ~ N(0, I_p), rho =
    ``task_correlation``; targets y_bt = u_b^T beta_t + noise eps_bt.
    Parameters: shared U (p, r) and task heads h_t (r), flat layout
    ``[U (p, r) row-major, heads (T, r) row-major]``, n = r (p + T). Losses::

        f_t(x) = (1/B) sum_b (u_b^T U h_t - y_bt)^2

    With rank r < T and rho < 1 no single representation fits every task: the objectives
    conflict and the Pareto front is a genuine trade-off (not known in closed form: None).
    rho = 1 makes every task the same (aligned). Gradients, with e_t = U_B U h_t - y_t:
    dU = (2/B) U_B^T e_t h_t^T, dh_t = (2/B) (U_B U)^T e_t, dh_s = 0 (s != t).
    Hessian-vector product along (dU, dh): R(p) = U_B dU h_t + U_B U dh_t and
    R(dU) = (2/B) U_B^T (R(p) h_t^T + e_t dh_t^T),
    R(dh_t) = (2/B) ((U_B dU)^T e_t + (U_B U)^T R(p)).
    Full batch by default; ``batch_size`` makes ``new_batch`` draw rows without replacement.
    Initial points: U ~ N(0, 1/p), heads ~ N(0, 1/r).
    """

    name = "mtl_regression"

    def __init__(self, n_tasks=3, n_features=8, rank=1, n_samples=128, noise=0.1,
                 task_correlation=0.0, batch_size=None, seed=0, dtype=np.float64):
        n_tasks = _int_arg("n_tasks", n_tasks, 2)
        p = _int_arg("n_features", n_features, 1)
        rank = _int_arg("rank", rank, 1, p)
        n_samples = _int_arg("n_samples", n_samples, 1)
        self.noise = _real_arg("noise", noise, 0.0)
        self.task_correlation = _real_arg("task_correlation", task_correlation, 0.0, 1.0)
        self.seed = _int_arg("seed", seed, 0)
        super().__init__(n_tasks, rank * (p + n_tasks), dtype)
        self.n_features, self.rank = p, rank
        rng = np.random.default_rng(self.seed)
        inputs = rng.standard_normal((n_samples, p))
        z = rng.standard_normal((n_tasks + 1, p))
        rho = self.task_correlation
        beta = math.sqrt(rho) * z[:1] + math.sqrt(1 - rho) * z[1:]
        beta /= np.linalg.norm(beta, axis=1, keepdims=True)
        targets = inputs @ beta.T + self.noise * rng.standard_normal((n_samples, n_tasks))
        self.task_directions = beta
        self._set_data(inputs, targets, batch_size)

    def unflatten(self, x):
        """Views (U (p, r), heads (T, r)) into x."""
        k = self.n_features * self.rank
        return x[:k].reshape(self.n_features, self.rank), x[k:].reshape(self.n_obj, self.rank)

    def _residuals(self, x, batch):
        u_mat, heads = self.unflatten(x)
        feats = batch.inputs @ u_mat                            # (B, r)
        return feats, feats @ heads.T - batch.targets          # (B, T)

    def _losses(self, x, batch):
        e = self._residuals(x, batch)[1]
        return np.mean(e * e, axis=0)

    def _jacobian(self, x, batch):
        return self._losses_and_jacobian(x, batch)[1]

    def _losses_and_jacobian(self, x, batch):
        heads = self.unflatten(x)[1]
        feats, e = self._residuals(x, batch)
        scale = self.dtype.type(2 / e.shape[0])
        t, r, p = self.n_obj, self.rank, self.n_features
        jac = np.zeros((t, self.dim), dtype=self.dtype)
        xe = batch.inputs.T @ e                                 # (p, T)
        jac[:, :p * r] = (scale * xe.T[:, :, None] * heads[:, None, :]).reshape(t, p * r)
        g_heads = scale * (e.T @ feats)                         # (T, r)
        for k in range(t):
            jac[k, p * r + k * r:p * r + (k + 1) * r] = g_heads[k]
        return np.mean(e * e, axis=0), jac

    def _hvp(self, x, v, i, batch):
        heads = self.unflatten(x)[1]
        du, dheads = self.unflatten(v)
        feats, e = self._residuals(x, batch)
        e = e[:, i]
        h, dh = heads[i], dheads[i]
        dfeats = batch.inputs @ du                              # (B, r)
        rp = dfeats @ h + feats @ dh                            # R(prediction), (B,)
        scale = self.dtype.type(2 / e.shape[0])
        out = np.zeros(self.dim, dtype=self.dtype)
        p, r = self.n_features, self.rank
        out[:p * r] = (scale * (np.outer(batch.inputs.T @ rp, h)
                                + np.outer(batch.inputs.T @ e, dh))).ravel()
        out[p * r + i * r:p * r + (i + 1) * r] = scale * (dfeats.T @ e + feats.T @ rp)
        return out

    def _initial_points(self, k, rng):
        p, r, t = self.n_features, self.rank, self.n_obj
        return np.concatenate([rng.standard_normal((k, p * r)) / math.sqrt(p),
                               rng.standard_normal((k, t * r)) / math.sqrt(r)], axis=1)


# ============================================================================ real data
_REAL_DATASETS = ("linnerud", "wine")


def _load_real(dataset):
    """Inputs (standardised), targets and loss kinds of a bundled data set.

    The data ship with madam (``madam/data/real_datasets.npz``, 7 KB): the values of
    scikit-learn's ``load_wine()`` (the UCI Wine data: Forina et al., 178 wines, 13 chemical
    measurements, 3 cultivars) and ``load_linnerud()`` (Tenenhaus: 20 athletes, 3 exercises,
    3 physiological measurements), checked equal to scikit-learn's in the tests."""
    from importlib import resources

    with resources.files(__package__).joinpath("data", "real_datasets.npz").open("rb") as fh:
        stored = np.load(fh)
        data, target = stored[f"{dataset}_data"], stored[f"{dataset}_target"]
    if dataset == "linnerud":
        inputs, targets, kinds = data, target, ("mse",) * 3
        targets = (targets - targets.mean(0)) / targets.std(0)
    else:
        inputs = data
        targets = (target[:, None] == np.arange(3)[None, :]).astype(np.float64)
        kinds = ("logistic",) * 3
    inputs = np.asarray(inputs, dtype=np.float64)
    inputs = (inputs - inputs.mean(0)) / inputs.std(0)
    return inputs, np.asarray(targets, dtype=np.float64), kinds


class RealDataMTL(_Dataset):
    r"""Multi-task learning on a small real data set that madam ships (no download).

    ``dataset="linnerud"``: 20 athletes, 3 standardised exercise inputs (chins, sit-ups, jumps),
    3 regression tasks (standardised weight, waist, pulse; squared loss). ``dataset="wine"``:
    178 wines, 13 standardised chemical inputs, 3 one-vs-rest classification tasks (logistic
    loss with labels in {0, 1}). The data are scikit-learn's, bundled with madam (see
    ``_load_real``).

    Model: a shared-bottom network, hidden layer a = tanh(W1 u + b1) (``hidden`` units) and one
    linear head per task, s_t = w_t^T a + c_t. Flat layout
    ``[W1 (hidden, d_in) row-major, b1 (hidden), heads W (T, hidden) row-major, c (T)]``.
    Losses f_t = (1/B) sum_b l_t(s_bt, y_bt) with l = (s - y)^2 or softplus(s) - y s; l', l''
    are 2 (s - y), 2 or sigma(s) - y, sigma(s)(1 - sigma(s)).

    Gradient of f_t: g = l'(s_t)/B (B,), dw_t = A^T g, dc_t = sum g, D = (g w_t^T) * (1 - A^2),
    dW1 = D^T U, db1 = sum_b D. Hessian-vector product (R-operator, tanh'' = -2 tanh (1 - tanh^2))
    along (V1, e1, dW, dc): R(Z) = U V1^T + e1, R(A) = (1 - A^2) R(Z), R(s) = R(A) w_t + A dw_t
    + dc_t, R(g) = l''(s) R(s)/B, R(dw_t) = R(A)^T g + A^T R(g), R(dc_t) = sum R(g),
    R(D) = (R(g) w_t^T + g dw_t^T)(1 - A^2) - 2 (g w_t^T) A R(A), R(dW1) = R(D)^T U,
    R(db1) = sum_b R(D). Smooth everywhere. Pareto front unknown (None).
    Full batch by default; ``batch_size`` makes ``new_batch`` draw rows without replacement.
    Initial points: PyTorch's default nn.Linear initialisation.
    """

    def __init__(self, dataset="linnerud", hidden=16, batch_size=None, dtype=np.float64):
        if not isinstance(dataset, str):
            raise TypeError(f"dataset must be one of {_REAL_DATASETS}, "
                            f"got {type(dataset).__name__}")
        if dataset not in _REAL_DATASETS:
            raise ValueError(f"dataset must be one of {_REAL_DATASETS}, got {dataset!r}")
        hidden = _int_arg("hidden", hidden, 1)
        inputs, targets, kinds = _load_real(dataset)
        n_tasks, d_in = targets.shape[1], inputs.shape[1]
        super().__init__(n_tasks, hidden * (d_in + 1) + n_tasks * (hidden + 1), dtype)
        self.dataset, self.hidden, self.d_in = dataset, hidden, d_in
        self.name = f"{dataset}_mtl"
        self.loss_kinds = kinds
        self._logistic = np.array([k == "logistic" for k in kinds])
        self._set_data(inputs, targets, batch_size)

    def unflatten(self, x):
        """Views (W1 (hidden, d_in), b1 (hidden,), W (T, hidden), c (T,)) into x."""
        h, di, t = self.hidden, self.d_in, self.n_obj
        s1, s2, s3 = h * di, h * di + h, h * di + h + t * h
        return x[:s1].reshape(h, di), x[s1:s2], x[s2:s3].reshape(t, h), x[s3:]

    def _forward(self, x, batch):
        w1, b1, w, c = self.unflatten(x)
        act = np.tanh(batch.inputs @ w1.T + b1)                 # (B, h)
        return act, act @ w.T + c                               # scores (B, T)

    def _loss_terms(self, s, y):
        """Per-sample losses, l' and l'' (B, T) for scores s and targets y."""
        one = self.dtype.type(1)
        half = self.dtype.type(0.5)
        sig = half * (one + np.tanh(half * s))                  # stable sigmoid
        log = self._logistic[None, :]
        loss = np.where(log, np.logaddexp(self.dtype.type(0), s) - y * s, (s - y) ** 2)
        d1 = np.where(log, sig - y, 2 * (s - y))
        d2 = np.where(log, sig * (one - sig), self.dtype.type(2))
        return loss, d1, d2

    def _losses(self, x, batch):
        _, s = self._forward(x, batch)
        return np.mean(self._loss_terms(s, batch.targets)[0], axis=0)

    def _jacobian(self, x, batch):
        return self._losses_and_jacobian(x, batch)[1]

    def _losses_and_jacobian(self, x, batch):
        w = self.unflatten(x)[2]
        act, s = self._forward(x, batch)
        loss, d1, _ = self._loss_terms(s, batch.targets)
        g = d1.T / self.dtype.type(s.shape[0])                 # (T, B)
        h, di, t = self.hidden, self.d_in, self.n_obj
        d = g[:, :, None] * w[:, None, :] * (1 - act * act)[None]   # (T, B, h)
        jac = np.zeros((t, self.dim), dtype=self.dtype)
        jac[:, :h * di] = (np.swapaxes(d, 1, 2) @ batch.inputs).reshape(t, h * di)
        jac[:, h * di:h * di + h] = d.sum(axis=1)
        head = h * di + h
        g_heads = g @ act                                       # (T, h)
        for k in range(t):
            jac[k, head + k * h:head + (k + 1) * h] = g_heads[k]
            jac[k, head + t * h + k] = g[k].sum()
        return np.mean(loss, axis=0), jac

    def _hvp(self, x, v, i, batch):
        w = self.unflatten(x)[2]
        v1, e1, dw, dc = self.unflatten(v)
        u = batch.inputs
        act, s = self._forward(x, batch)
        _, d1, d2 = self._loss_terms(s, batch.targets)
        nb = self.dtype.type(s.shape[0])
        slope = 1 - act * act                                   # tanh'
        r_act = slope * (u @ v1.T + e1)                         # R(A)
        r_s = r_act @ w[i] + act @ dw[i] + dc[i]                # R(s_i)
        g = d1[:, i] / nb
        r_g = d2[:, i] * r_s / nb
        r_d = (np.outer(r_g, w[i]) + np.outer(g, dw[i])) * slope \
            - 2 * np.outer(g, w[i]) * act * r_act
        h, di, t = self.hidden, self.d_in, self.n_obj
        out = np.zeros(self.dim, dtype=self.dtype)
        out[:h * di] = (r_d.T @ u).ravel()
        out[h * di:h * di + h] = r_d.sum(axis=0)
        head = h * di + h
        out[head + i * h:head + (i + 1) * h] = r_act.T @ g + act.T @ r_g
        out[head + t * h + i] = r_g.sum()
        return out

    def _initial_points(self, k, rng):
        h, di, t = self.hidden, self.d_in, self.n_obj
        return np.stack([np.concatenate([_torch_linear_init(rng, di, h * di),
                                         _torch_linear_init(rng, di, h),
                                         _torch_linear_init(rng, h, t * h),
                                         _torch_linear_init(rng, h, t)]) for _ in range(k)])


# ============================================================================ registry
_REGISTRY = {
    "cagrad_toy": (CAGradToy, {}),
    "nashmtl_toy": (CAGradToy, {"f1_scale": 0.1, "starts": "nashmtl"}),
    "zdt1": (ZDT1, {}),
    "zdt2": (ZDT2, {}),
    "vlmop2": (VLMOP2, {}),
    "fonseca_fleming": (VLMOP2, {"n": 3, "bound": 4.0}),
    "amoo_specification": (AMOOSpecification, {}),
    "amoo_selection": (AMOOSelection, {}),
    "teacher_student": (TeacherStudent, {}),
    "mtl_regression": (MultiTaskRegression, {}),
    "linnerud_mtl": (RealDataMTL, {"dataset": "linnerud"}),
    "wine_mtl": (RealDataMTL, {"dataset": "wine"}),
}


def names():
    """The registered problem names, sorted."""
    return sorted(_REGISTRY)


def get(name, **kwargs):
    """Build the problem registered as ``name``; keyword arguments override its defaults
    (e.g. ``get("teacher_student", hidden=16, batch_size=64, dtype=np.float32)``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown problem name {name!r}; known: {', '.join(names())}")
    cls, defaults = _REGISTRY[name]
    problem = cls(**{**defaults, **kwargs})
    problem.name = name
    return problem
