"""The Problem interface, the minibatch record, and the argument checks every problem uses."""
import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._validate import FLOAT_TYPES, float_dtype
from .._validate import integer as _int_arg


# ============================================================================ argument checks
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
        self.dtype = float_dtype(dtype)
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
        if x.dtype not in FLOAT_TYPES:
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
