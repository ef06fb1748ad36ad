r"""AMOO: aligned multi-objective optimisation (Efroni et al., OPT 2024; ICML 2025).

Aligned objectives share a minimiser. CAMOO weights them by the w that maximises the smallest
eigenvalue of the weighted Hessian sum_i w_i H_i; with diagonal Hessians (rows of A, A[i, j] =
(H_i)_jj) that is the bilinear game

    max_{w in Delta_{m, w_min}} min_{q in Delta_d} w^T A q,

solved by the predictive update (PU) of Cen, Wei & Chi (2021) on its entropy-regularised version,
with A estimated by Hutchinson's method, diag(H) = E[z * (H z)] for Rademacher z. PAMOO instead
chooses w >= w_min maximising 2 w^T f - w^T (J J^T + damping I) w (a Polyak-like step on the
losses f). Every array loop runs in C (``cmadam/include/cmadam_amoo.h``)::

    z = madam.amoo.rademacher(n, seed=0, step=1, probe=0)          # entries exactly +-1
    diag = madam.hutchinson_diag(lambda v: H @ v, n, n_samples=100, seed=0)
    hvp = madam.amoo.hvp_from_grad(grad, x)                         # central differences
    res = madam.pu_solve(A, tau=0.01, iters=100)                    # res.w, res.q, res.gap, ...
    solver = madam.solvers.CAMOO(hvp=problem.hvps)                  # the seed's settings
    solver = madam.solvers.CAMOO.icml(**madam.amoo.output_curvature(problem))
    solver = madam.solvers.PAMOO()

CAMOO needs Hessian-vector products at the current point, which the solver interface
``solve(jacobian, losses)`` does not carry: the runner (:func:`madam.runs.run`) calls
``solver.observe(x, batch)`` before each ``solve``; outside the runner call it yourself, or give
CAMOO ``point=`` (a callable returning x, or (x, batch)). See docs/amoo.md.
"""
import math
from typing import NamedTuple

import numpy as np

from . import _core
from ._core import ffi, lib
from ._validate import Hyper, decay_rate, float_dtype, integer, one_of, optional
from ._validate import nonnegative as _nonneg
from ._validate import positive as _positive
from ._validate import real as _real
from .problems import TeacherStudent
from .solvers.base import _ldexp

__all__ = ["rademacher", "hutchinson_diag", "HutchinsonEMA", "hvp_from_grad", "pu_solve",
           "PUResult", "pamoo_weights", "output_curvature"]

_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
_TRANSFORMS = {"signed": 0, "abs": 1, "clip": 2}
_MATVEC = {"fused": 0, "blas": 1}
_STATE_FORMAT = 1


# ============================================================================ argument checks
def _uint64(name, value):
    value = integer(name, value, 0)
    if value >= 2 ** 64:
        raise ValueError(f"{name} must be < 2**64, got {value}")
    return value


_optional_positive = optional(_positive)


def _matrix(name, value, dtype=None):
    """A finite real 2-D array, C-contiguous, float32 kept, everything else float64."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in _FLOAT_TYPES else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    if not _core.all_finite(arr):
        raise ValueError(f"{name} holds NaN or Inf")
    return arr


def _distribution(name, value, size, dtype, floor=None):
    """A non-negative finite vector with a positive sum (a warm start), as a fresh array."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of real numbers") from None
    if arr.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or not arr.sum() > 0:
        raise ValueError(f"{name} must be finite and >= 0 with a positive sum, got {arr}")
    if floor is not None and np.any(arr / arr.sum() < floor - 1e-12):
        raise ValueError(f"{name} (normalised) must be >= w_min = {floor}")
    return np.ascontiguousarray(arr, dtype=dtype)


# ============================================================================ probes, Hutchinson
def rademacher(n, seed=0, step=0, probe=0, dtype=np.float64):
    """The Rademacher probe (seed, step, probe) of length n: entries exactly +1 or -1.

    Counter-based (SplitMix64 of (seed, step, probe, index // 64), one sign bit per entry; the
    formula is in cmadam_amoo.h): the same numbers for any thread count, and a prefix of a longer
    probe is the shorter one.
    """
    n = integer("n", n, 0)
    dt = float_dtype(dtype)
    z = np.empty(n, dtype=dt)
    _core.check_status(_core.kernel("cm_rademacher", dt)(
        _core.exec_config(), _uint64("seed", seed), _uint64("step", step),
        _uint64("probe", probe), n, _core.pointer(z, True)), "rademacher")
    return z


def _accumulate(z, hz, acc, what):
    rows = 1 if acc.ndim == 1 else acc.shape[0]
    _core.check_status(_core.kernel("cm_hutchinson_accumulate", acc.dtype)(
        _core.exec_config(), rows, z.size, _core.pointer(z), _core.pointer(hz),
        _core.pointer(acc, True)), what)


def _hutch_update(acc, n_samples, step, beta, transform, clip_min, ema, out):
    cfg = ffi.new("cm_hutchinson_config *")
    lib.cm_hutchinson_config_default(cfg)
    cfg.beta = beta
    cfg.transform = _TRANSFORMS[transform]
    cfg.clip_min = clip_min
    _core.check_status(_core.kernel("cm_hutchinson_update", acc.dtype)(
        cfg, _core.exec_config(), step, n_samples, acc.size, _core.pointer(acc),
        ffi.NULL if ema is None else _core.pointer(ema, True), _core.pointer(out, True)),
        "hutchinson_update")
    return out


def _probe_products(hvp, dim, n_samples, seed, step, dt, what):
    """The mean of z_k * hvp(z_k) over the probes (seed, step, k), k < n_samples: (dim,) or
    (C, dim), in dt.

    The products are summed (in C) and the sum divided by N = n_samples. A plain sum overflows to
    inf once the products come within a factor N of the dtype's largest value (a finite HVP of
    size 1e308 gave inf), so as soon as a product is above max / (2N), the sum so far and every
    later product are scaled by 2^-p, 2^p > 2N, and the mean is that sum divided by N 2^-p.
    Scaling by a power of two is exact, so the quotient is the correctly rounded sum / N, bit for
    bit what the C update computes (acc / N) whenever the plain sum would not have overflowed;
    inputs that never come near the limit are not scaled at all.
    """
    acc = None
    shift = 0                                       # p once scaling started, else 0
    limit = float(np.finfo(dt).max) / (2.0 * n_samples)
    for k in range(n_samples):
        z = rademacher(dim, seed, step, k, dt)
        hz = np.asarray(hvp(z))
        if hz.dtype.kind not in "fiu":
            raise TypeError(f"{what} must return real numbers, got dtype {hz.dtype}")
        if hz.ndim not in (1, 2) or hz.shape[-1] != dim:
            raise ValueError(f"{what} must return an array (dim,) or (C, dim) with dim = {dim}, "
                             f"got shape {hz.shape}")
        # checked before the cast to dt: a float64 1e300 would become a float32 inf (with an
        # overflow warning) and be reported as one
        finite = (_core.all_finite(np.ascontiguousarray(hz)) if hz.dtype in _FLOAT_TYPES
                  else bool(np.all(np.isfinite(hz))))
        if not finite:
            raise ValueError(f"{what} returned NaN or Inf")
        if hz.dtype.kind == "f" and np.finfo(hz.dtype).max > np.finfo(dt).max:
            big = max(float(hz.max()), -float(hz.min()))
            if big > float(np.finfo(dt).max):
                raise ValueError(f"{what} returned values above the {dt} range (max |Hv| = "
                                 f"{big:.3g}); use dtype=np.float64")
        hz = np.ascontiguousarray(hz, dtype=dt)
        if acc is None:
            acc = np.zeros(hz.shape, dtype=dt)
        elif hz.shape != acc.shape:
            raise ValueError(f"{what} returned shape {hz.shape} after {acc.shape}")
        if not shift and n_samples > 1 and max(float(hz.max()), -float(hz.min())) > limit:
            shift = (2 * n_samples).bit_length()    # 2^p > 2N: N scaled terms stay below max/2
            acc *= dt.type(2.0 ** -shift)
        if shift:
            hz = hz * dt.type(2.0 ** -shift)
        _accumulate(z, hz, acc, "hutchinson_accumulate")
    # the C update's divisor is (REAL)(double)N; scaled by the same power of two here
    divisor = dt.type(dt.type(n_samples) * dt.type(2.0 ** -shift))
    return acc / divisor


def hutchinson_diag(hvp, dim, n_samples=100, seed=0, step=0, dtype=np.float64,
                    transform="signed", clip_min=0.0):
    r"""Hutchinson's estimate of diag(H) from Hessian-vector products.

    ``hvp(v)`` returns H v, an array (dim,), or the products of C Hessians with the same v, an
    array (C, dim) (e.g. ``lambda v: problem.hvps(x, v)``). With the probes z_k =
    :func:`rademacher` (dim, seed, step, k), k < n_samples::

        diag ~ (1/N) sum_k z_k * (H z_k)

    (unbiased: E[z z^T] = I; the variance of entry i is sum_{j != i} H_ij^2 / N). ``transform``:
    ``"signed"`` (default; AMOO keeps signed values), ``"abs"`` (AdaHessian) or ``"clip"``
    (max(., clip_min), Sophia-like). Returns an array of hvp's shape in ``dtype``.
    """
    if not callable(hvp):
        raise TypeError(f"hvp must be callable (v -> H v), got {type(hvp).__name__}")
    dim = integer("dim", dim, 1)
    n_samples = integer("n_samples", n_samples, 1)
    dt = float_dtype(dtype)
    transform = one_of(*_TRANSFORMS)("transform", transform)
    clip_min = _real("clip_min", clip_min)
    mean = _probe_products(hvp, dim, n_samples, _uint64("seed", seed), _uint64("step", step),
                           dt, "hvp")
    return _hutch_update(mean, 1, 1, 0.0, transform, clip_min, None, mean)


class HutchinsonEMA:
    r"""Bias-corrected exponential moving average of diagonal-Hessian estimates (in C).

    ``update(estimate)`` at call t (from 1): e = transform(estimate),
    ema = beta ema + (1 - beta) e, returns ema / (1 - beta^t). beta = 0 returns e (a fresh
    estimate each step, as the ICML code); beta = 0.99 is seed 002's setting.
    """

    beta = Hyper(decay_rate)
    transform = Hyper(one_of(*_TRANSFORMS))
    clip_min = Hyper(_real)

    def __init__(self, beta=0.99, transform="signed", clip_min=0.0):
        self.beta = beta
        self.transform = transform
        self.clip_min = clip_min
        self.reset()

    def reset(self):
        self.step = 0
        self.ema = None

    def update(self, estimate):
        est = _matrix("estimate", np.atleast_2d(estimate)).reshape(np.shape(estimate))
        if self.ema is not None and (self.ema.shape != est.shape or self.ema.dtype != est.dtype):
            raise ValueError(f"estimate has shape {est.shape} and dtype {est.dtype}, the average "
                             f"{self.ema.shape} and {self.ema.dtype}; call reset() first")
        ema = np.zeros_like(est) if self.ema is None else self.ema.copy()
        out = np.empty_like(est)
        _hutch_update(est, 1, self.step + 1, self.beta, self.transform, self.clip_min, ema, out)
        self.ema, self.step = ema, self.step + 1
        return out

    def state_dict(self):
        return {"step": self.step, "ema": None if self.ema is None else self.ema.copy()}

    def load_state_dict(self, sd):
        """Restore a :meth:`state_dict` (a dict or what ``np.load`` returns); everything is
        checked before anything changes: a missing key, a non-integer or negative step, or an
        ema that is not a finite float array is refused with a ValueError/TypeError naming it."""
        for key in ("step", "ema"):
            if key not in sd:
                raise ValueError(f"state_dict lacks {key!r}")
        step, ema = sd["step"], sd["ema"]
        if isinstance(step, np.ndarray) and step.ndim == 0:
            step = step.item()
        if isinstance(ema, np.ndarray) and ema.dtype == object and ema.ndim == 0:
            ema = ema.item()                       # None saved by np.savez
        step = integer("state_dict['step']", step, 0)
        if (ema is None) != (step == 0):
            raise ValueError("state_dict['ema'] must be given exactly when "
                             "state_dict['step'] > 0")
        if ema is not None:
            ema = np.array(ema)
            if ema.dtype not in _FLOAT_TYPES or ema.ndim not in (1, 2) or ema.size == 0:
                raise ValueError("state_dict['ema'] must be a float32/float64 array (dim,) or "
                                 f"(C, dim), got {ema.dtype} {ema.shape}")
            if not np.all(np.isfinite(ema)):
                raise ValueError("state_dict['ema'] must be finite")
        self.ema, self.step = ema, step


def hvp_from_grad(grad, x=None, h=None):
    r"""A Hessian-vector product from a gradient function by central differences::

        H v ~ (grad(x + eps v) - grad(x - eps v)) / (2 eps),
        eps = h / |v|_2,   h = eps_mach^(1/3) max(1, |x|_2)   (unless given)

    (error O(eps^2) from the third derivative plus O(eps_mach / eps) from rounding; the cube
    root balances them). ``grad(x)`` may return (n,) or (C, n) (e.g. ``problem.jacobian``).
    With ``x`` given, returns ``hvp(v)``; without, ``hvp(x, v)``. Prefer exact HVPs where the
    problem has them (``problem.hvps``); this helper is for functions that only have gradients.
    """
    if not callable(grad):
        raise TypeError(f"grad must be callable, got {type(grad).__name__}")
    h_given = None if h is None else _positive("h", h)

    def at(x0, v):
        x0 = np.asarray(x0)
        v = np.asarray(v, dtype=x0.dtype if x0.dtype in _FLOAT_TYPES else np.float64)
        if v.shape != x0.shape:
            raise ValueError(f"v must have shape {x0.shape}, got {v.shape}")
        vn = float(np.linalg.norm(v))
        if vn == 0.0:
            return np.zeros_like(np.asarray(grad(x0)))
        hh = h_given
        if hh is None:
            tiny = np.finfo(v.dtype).eps
            hh = tiny ** (1.0 / 3.0) * max(1.0, float(np.linalg.norm(x0)))
        eps = hh / vn
        gp = np.asarray(grad(x0 + eps * v))
        gm = np.asarray(grad(x0 - eps * v))
        return (gp - gm) / (2.0 * eps)

    if x is None:
        return at
    x = np.array(x)
    return lambda v: at(x, v)


# ============================================================================ PU
class PUResult(NamedTuple):
    """Result of :func:`pu_solve`."""
    w: np.ndarray      # (m,) weights of the max player (on Delta_{m, w_min})
    q: np.ndarray      # (d,) the min player's distribution
    gap: float         # duality gap of the unregularised game at (w, q)
    value: float       # w^T A q
    iters: int         # iterations done
    eta: float         # the step used


class _PU:
    """Reusable PU call: keeps the work array between calls of the same shape and dtype."""

    def __init__(self):
        self._work = None
        self._cfg = ffi.new("cm_pu_config *")
        self._res = ffi.new("cm_pu_result *")

    def __call__(self, a, w, q, tau, iters, eta, w_min, tol, warm, matvec):
        m, d = a.shape
        # PU sees A only through eta A and eta tau (and the gap through tol), so running it on
        # (2^-k A, 2^-k tau, 2^k eta, 2^-k tol) gives the same iterates, exactly (powers of two).
        # That is done when max|A| is so close to the dtype's limit that the C loop's sums
        # (A^T w, the column sums of A for w_min, 2 max|A| + tau in the default eta) would
        # overflow: A ~ 1e308 returned NaN weights. Gap and value are scaled back (to inf if they
        # exceed the range: the gap can reach 2 max|A|).
        shift = 0
        top = max(float(a.max()), -float(a.min()))
        limit = float(np.finfo(a.dtype).max) / (4.0 * (m + 1))
        if eta is not None and eta * top > limit:     # (Python floats: inf compares fine)
            raise ValueError(f"eta = {eta:.3g} is too large for A (max|A| = {top:.3g}): eta A "
                             f"overflows {a.dtype}; the stable default is about "
                             f"1 / (tau + 2 max|A|)")
        if top > limit:
            shift = math.frexp(top)[1]
            a = np.ldexp(a, -shift)
            tau, tol = math.ldexp(tau, -shift), math.ldexp(tol, -shift)
            if eta is not None:
                eta = math.ldexp(eta, shift)       # finite: eta top <= limit
        size = lib.cm_pu_work_size(m, d)
        if self._work is None or self._work.size != size or self._work.dtype != a.dtype:
            self._work = np.empty(size, dtype=a.dtype)
        cfg = self._cfg
        lib.cm_pu_config_default(cfg)
        cfg.tau, cfg.iters, cfg.w_min, cfg.tol = tau, iters, w_min, tol
        cfg.eta = 0.0 if eta is None else eta
        cfg.warm_start = 1 if warm else 0
        cfg.matvec = _MATVEC[matvec]
        _core.check_status(_core.kernel("cm_pu_solve", a.dtype)(
            cfg, _core.exec_config(), m, d, _core.pointer(a), _core.pointer(w, True),
            _core.pointer(q, True), _core.pointer(self._work, True), self._res), "pu_solve")
        r = self._res
        return (_ldexp(float(r.gap), shift), _ldexp(float(r.value), shift), int(r.iters_used),
                math.ldexp(float(r.eta), -shift))


def _pu_args(tau, iters, eta, w_min, tol, matvec, m):
    tau = _nonneg("tau", tau)
    iters = integer("iters", iters, 0)
    eta = _optional_positive("eta", eta)
    w_min = _nonneg("w_min", w_min)
    if w_min * m > 1.0 + 1e-12:
        raise ValueError(f"w_min must be <= 1/m = {1.0 / m} (m = {m} weights), got {w_min}")
    w_min = min(w_min, 1.0 / m)
    tol = _nonneg("tol", tol)
    matvec = one_of(*_MATVEC)("matvec", matvec)
    return tau, iters, eta, w_min, tol, matvec


def pu_solve(A, tau=0.01, iters=100, eta=None, w0=None, q0=None, w_min=0.0, tol=0.0,
             matvec="fused"):
    r"""The predictive update for  max_{w in Delta_{m, w_min}} min_{q in Delta_d} w^T A q.

    PU (Cen, Wei & Chi, NeurIPS 2021) on the entropy-regularised game
    max_p min_q p^T A' q + tau H(p) - tau H(q), where w = w_min + (1 - m w_min) p and
    A' = (1 - m w_min) A + w_min 1 1^T A (so w_min = 0 is the plain simplex), c = 1 - eta tau::

        p_bar ~ p^c exp(eta A' q),        q_bar ~ q^c exp(-eta A'^T p)
        p     ~ p^c exp(eta A' q_bar),    q     ~ q^c exp(-eta A'^T p_bar)

    in the log domain with max-shifts. ``eta`` None: 1 / (tau + 2 max|A|), for which the KL
    divergence to the regularised equilibrium shrinks by (1 - eta tau) per iteration. The value
    of the regularised game is within tau (log m + log d) of the unregularised one.

    A: (m, d) real (float32 stays float32, anything else runs in float64). ``w0`` / ``q0``: warm
    start (normalised; the other one starts uniform); both None: uniform start. ``tol`` > 0 stops
    once the duality gap max_i (A' q)_i - min_j (A^T w)_j is <= tol. ``matvec``: ``"fused"``
    (default: one pass over A forms A q and A^T w together, bit-identical for any thread count)
    or ``"blas"`` (two OpenBLAS gemv calls). Returns :class:`PUResult` (w, q, gap, value, iters,
    eta), w and q in A's dtype.
    """
    a = _matrix("A", A)
    m, d = a.shape
    tau, iters, eta, w_min, tol, matvec = _pu_args(tau, iters, eta, w_min, tol, matvec, m)
    if eta is None and tau == 0.0 and not np.any(a):
        raise ValueError("A is zero and tau = 0: there is no default step eta; give eta")
    warm = w0 is not None or q0 is not None
    w = (np.full(m, 1.0 / m, a.dtype) if w0 is None
         else _distribution("w0", w0, m, a.dtype, floor=w_min if w_min > 0 else None))
    q = np.full(d, 1.0 / d, a.dtype) if q0 is None else _distribution("q0", q0, d, a.dtype)
    gap, value, used, eta_used = _PU()(a, w, q, tau, iters, eta, w_min, tol, warm, matvec)
    return PUResult(w, q, gap, value, used, eta_used)


def pamoo_weights(A, f, w0=None, lr=3e-3, iters=1000, w_min=1e-6):
    r"""PAMOO's weights: projected gradient ascent on 2 w^T f - w^T A w over w >= w_min::

        w <- max(w + lr (2 f - 2 A w), w_min)        (iters times, from w0; default all ones)

    as the ICML code (lr 3e-3, 1000 iterations, w_min 1e-6). A: (m, m) symmetric positive
    definite (PAMOO uses J J^T + 1e-4 I), f: (m,). It converges to the QP's solution when
    lr < 1 / lambda_max(A) and enough iterations are run (rate 1 - 2 lr lambda_min(A)).

    A larger lr is refused (ValueError naming lr): the unprojected step w -> (I - 2 lr A) w + 2 lr f
    then has an eigenvalue <= -1, and the iterates oscillate between w_min and ever larger values
    instead of approaching the solution (A = 2 I, f = 1, lr = 1e6 returned w ~ 2e6, the solution
    being 1/2). Projecting onto the simplex would not help: the feasible set is w >= w_min, and
    the weights need not sum to 1.
    """
    a = _matrix("A", A)
    m = a.shape[0]
    if a.shape != (m, m):
        raise ValueError(f"A must be square, got shape {a.shape}")
    f = np.array(f, dtype=np.float64)
    if f.shape != (m,) or not np.all(np.isfinite(f)):
        raise ValueError(f"f must be {m} finite numbers, got {f}")
    f = f.astype(a.dtype)
    lr = _positive("lr", lr)
    iters = integer("iters", iters, 0)
    w_min = _nonneg("w_min", w_min)
    top = _lambda_max(a)
    if lr * top >= 1.0:       # Python floats: an overflowing product is inf, still refused
        raise ValueError(f"lr must be < 1 / lambda_max(A) = {1.0 / top:.6g} for the projected "
                         f"ascent to converge, got {lr}")
    if w0 is None:
        w = np.ones(m, dtype=a.dtype)
    else:
        w = np.array(w0, dtype=np.float64)
        if w.shape != (m,) or not np.all(np.isfinite(w)):
            raise ValueError(f"w0 must be {m} finite numbers, got {w}")
        w = w.astype(a.dtype)
    return _pamoo(a, f, w, lr, iters, w_min)


def _lambda_max(a):
    """The largest eigenvalue of the symmetric part of a (0 if none is positive), computed on
    a / max|a| so that no entry of a near the float64 limit can overflow the solver."""
    a = np.asarray(a, dtype=np.float64)
    top = float(np.max(np.abs(a)))
    if top == 0.0:
        return 0.0
    unit = a / top
    return max(float(np.linalg.eigvalsh(0.5 * (unit + unit.T))[-1]), 0.0) * top


def _pamoo(a, f, w, lr, iters, w_min):
    cfg = ffi.new("cm_pamoo_config *")
    cfg.lr, cfg.iters, cfg.w_min = lr, iters, w_min
    work = np.empty_like(w)
    _core.check_status(_core.kernel("cm_pamoo_weights", a.dtype)(
        cfg, a.shape[0], _core.pointer(a), _core.pointer(f), _core.pointer(w, True),
        _core.pointer(work, True)), "pamoo_weights")
    return w


# ============================================================================ output-space curvature
def _batch_of(problem, batch):
    return problem.batch if batch is None else batch


def output_curvature(problem):
    r"""Arguments for :class:`CAMOO` that estimate Hessians w.r.t. the network *outputs* of an
    MLP problem (TeacherStudent or :class:`PowerLossMLP`), as the ICML code does.

    For a batch of B samples the outputs O are (B, d_out); the probe is z in {+-1}^(B d_out), the
    HVP is the output Hessian of each f_i times z (block diagonal per sample), and ``reduce``
    sums the per-sample estimates over the batch, giving A (C, d_out). For TeacherStudent the
    output Hessian of f_i is (2/B) diag(H_i) per sample (x-independent). Use as
    ``CAMOO.icml(**output_curvature(problem))``.
    """
    if not isinstance(problem, TeacherStudent):
        raise TypeError("output_curvature needs a TeacherStudent-like problem (an MLP with "
                        f"d_out outputs), got {type(problem).__name__}")
    d_out, c = problem.d_out, problem.n_obj

    def hvp(x, v, batch=None):
        return problem.output_hvps(x, v, batch) if hasattr(problem, "output_hvps") \
            else _quadratic_output_hvps(problem, v, batch)

    def probe_dim(x, batch):
        return len(_batch_of(problem, batch)) * d_out

    def reduce(est):
        return est.reshape(c, -1, d_out).sum(axis=1)

    return {"hvp": hvp, "probe_dim": probe_dim, "reduce": reduce}


def _quadratic_output_hvps(problem, v, batch):
    b = len(_batch_of(problem, batch))
    hd = problem.output_hessian_diags
    vv = np.asarray(v, dtype=problem.dtype).reshape(1, b, problem.d_out)
    return ((2.0 / b) * hd[:, None, :] * vv).reshape(problem.n_obj, -1)


def __getattr__(name):
    """CAMOO and PAMOO now live in madam.solvers.amoo, PowerLossMLP in madam.problems.learning;
    ``madam.amoo.CAMOO`` and friends still work (resolved here, lazily: an import at module level
    would be a cycle, since those modules import this one's kernels)."""
    if name in ("CAMOO", "PAMOO"):
        from .solvers import amoo as solvers_amoo
        return getattr(solvers_amoo, name)
    if name == "PowerLossMLP":
        from .problems.learning import PowerLossMLP
        return PowerLossMLP
    raise AttributeError(f"module 'madam.amoo' has no attribute {name!r}")
