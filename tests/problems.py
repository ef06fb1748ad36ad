"""Test problems and the trajectory helpers shared by the optimiser tests (NumPy only).

A problem maps a flat parameter vector to its gradient, computed in the vector's own dtype with
element-wise operations only (no BLAS, no reductions whose order could depend on alignment or
threads), so two runs that see bitwise-equal parameters see bitwise-equal gradients.

``shapes`` says how the flat vector is handed to an optimiser: a list of arrays of those shapes, or
one array when ``single`` is true.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

DTYPES = (np.float32, np.float64)


@dataclass(frozen=True)
class Problem:
    name: str
    x0: np.ndarray  # float64 start point, flat
    grad: Callable[[np.ndarray], np.ndarray]  # flat x -> flat gradient, same dtype
    shapes: tuple  # shapes of the arrays the flat vector is split into
    single: bool = False  # hand the optimiser one ndarray instead of a list

    @property
    def n(self):
        return self.x0.size

    def start(self, dtype):
        """Flat start point in ``dtype`` (a fresh copy)."""
        return self.x0.astype(dtype)

    def arrays(self, flat):
        """A list of fresh C-contiguous arrays of ``shapes`` holding ``flat``."""
        out, k = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            out.append(np.array(flat[k:k + size].reshape(shape), order="C", copy=True))
            k += size
        return out

    def split(self, flat):
        """:meth:`arrays`, or its one array if ``single``: the structure madam gets."""
        out = self.arrays(flat)
        return out[0] if self.single else out


def flatten(arrays):
    """Concatenate one array or a list of arrays into a fresh flat vector."""
    if isinstance(arrays, np.ndarray):
        return arrays.ravel().copy()
    return np.concatenate([a.ravel() for a in arrays])


def _rosenbrock_grad(x):
    """Gradient of sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2, i = 0 .. n-2."""
    g = np.zeros_like(x)
    a, b = x[:-1], x[1:]
    r = b - a * a
    g[:-1] = -400 * a * r - 2 * (1 - a)
    g[1:] += 200 * r
    return g


def _make_quadratic(n=8, cond=1e3, seed=0):
    """f(x) = 1/2 (x - x*)^T A (x - x*), A = Q diag(logspace(0, log10 cond)) Q^T, Q random."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    hess = (q * np.logspace(0, np.log10(cond), n)) @ q.T
    hess = 0.5 * (hess + hess.T)
    xstar = rng.standard_normal(n)
    x0 = xstar + rng.standard_normal(n)
    cols = {dt: [np.ascontiguousarray(hess[:, j], dtype=dt) for j in range(n)] for dt in DTYPES}

    def grad(x):
        d = x - xstar.astype(x.dtype)
        c = cols[x.dtype.type]
        g = c[0] * d[0]
        for j in range(1, n):
            g = g + c[j] * d[j]
        return g

    return x0, grad


ROSENBROCK = Problem(
    name="rosenbrock",
    x0=np.array([-1.2, 1.0, -1.2, 1.0, -1.2, 1.0]),
    grad=_rosenbrock_grad,
    shapes=((2,), (2, 2)),  # list params of two different shapes
)

_qx0, _qgrad = _make_quadratic()
QUADRATIC = Problem(name="quadratic", x0=_qx0, grad=_qgrad, shapes=((8,),), single=True)

PROBLEMS = (ROSENBROCK, QUADRATIC)


def rel_dev(a, b):
    """Largest normwise relative deviation max_k ||a_k - b_k||_inf / ||b_k||_inf over the rows."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(b).max(axis=-1), np.finfo(np.float64).tiny)
    return float((np.abs(a - b).max(axis=-1) / scale).max())


def trajectory(problem, opt, params, steps):
    """Run ``steps`` steps of ``opt`` (madam-like: ``opt.step(grads)`` updates ``params`` in place).

    Returns a (steps, n) array with the flat parameters after every step.
    """
    out = np.empty((steps, problem.n), dtype=flatten(params).dtype)
    for k in range(steps):
        opt.step(problem.split(problem.grad(flatten(params))))
        out[k] = flatten(params)
    return out


def reference_trajectory(problem, ref, steps):
    """Same as :func:`trajectory` for a :mod:`reference` optimiser working on its flat ``ref.p``."""
    out = np.empty((steps, problem.n), dtype=ref.p.dtype)
    for k in range(steps):
        ref.step(problem.grad(ref.p))
        out[k] = ref.p
    return out
