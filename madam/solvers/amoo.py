"""The AMOO weightings as solvers: CAMOO (curvature-aligned, Hutchinson + PU game) and PAMOO
(Polyak-like, a box-constrained QP on the Gramian). Their kernels are in :mod:`madam.amoo`."""
import inspect
import math

import numpy as np

from .. import _core
from .._validate import Hyper, at_least, decay_rate, one_of
from .._validate import flag as _flag
from .._validate import integer as _int
from .._validate import nonnegative as _nonneg
from .._validate import positive as _positive
from .._validate import real as _real
from ..amoo import (_FLOAT_TYPES, _MATVEC, _PU, _TRANSFORMS, _hutch_update, _lambda_max,
                    _optional_positive, _pamoo, _probe_products, _uint64)
from .base import Solver, _gramian


def _call_arity(func):
    """How many positional arguments func takes: 2 for (x, v), 3 for (x, v, batch)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 3
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 3:
        return 3
    return 2


class CAMOO(Solver):
    r"""CAMOO: weights maximising the curvature of the weighted loss (Efroni et al.).

    Each ``solve`` (step t = 1, 2, ...) at the current point x (see :meth:`observe`):

    1. Hutchinson: D = (1/N) sum_k z_k * HVP(x, z_k), z_k = rademacher(m, seed, t, k), k < N
       (``n_samples``), for every objective at once: ``hvp(x, v, batch)`` returns the (C, m)
       products (``problem.hvps`` works as is; a callable ``(x, v)`` is also accepted). m is
       x.size unless ``probe_dim`` (an int or a callable (x, batch) -> int) says otherwise.
       ``transform``: ``"signed"`` (default, as AMOO), ``"abs"`` or ``"clip"`` (clip_min).
    2. A = reduce(D) when ``reduce`` is given (e.g. summing output-space estimates over the
       batch), then its bias-corrected EMA with rate ``beta`` (0: none). ``hessian_diagonals``
       holds the latest A (C, k).
    3. ``pu_iters`` PU iterations (:func:`pu_solve`, ``tau``, ``eta``, ``w_min``) on A, warm-started
       from the previous (w, q) when ``warm_start`` (else from uniform).

    lam = w (on the simplex, >= w_min), scale = 1. info: gap, value, eta, pu_iters, step.

    Two presets: the constructor's defaults are seed 002's (N = 100, beta = 0.99, one warm-started
    PU iteration per step, parameter-space Hessians); :meth:`icml` gives the ICML code's (N = 10,
    no EMA, 100 PU iterations from uniform, tau 0.01), meant for output-space Hessians
    (:func:`output_curvature`). The probes are reproducible: the same seed and step give the
    same z for any thread count.
    """

    name = "camoo"
    n_samples = Hyper(at_least(1))
    beta = Hyper(decay_rate)
    pu_iters = Hyper(at_least(0))
    tau = Hyper(_nonneg)
    eta = Hyper(_optional_positive)
    warm_start = Hyper(_flag)
    w_min = Hyper(_nonneg)
    seed = Hyper(_uint64)
    transform = Hyper(one_of(*_TRANSFORMS))
    clip_min = Hyper(_real)
    matvec = Hyper(one_of(*_MATVEC))

    def __init__(self, hvp, n_samples=100, beta=0.99, pu_iters=1, tau=0.01, eta=None,
                 warm_start=True, w_min=0.0, seed=0, transform="signed", clip_min=0.0,
                 probe_dim=None, reduce=None, point=None, matvec="fused"):
        super().__init__()
        if not callable(hvp):
            raise TypeError(f"hvp must be callable (x, v, batch) -> (C, m), got "
                            f"{type(hvp).__name__}")
        if probe_dim is not None and not callable(probe_dim):
            probe_dim = _int("probe_dim", probe_dim, 1)
        for name, fn in (("reduce", reduce), ("point", point)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
        self.hvp, self.probe_dim, self.reduce, self.point = hvp, probe_dim, reduce, point
        self._arity = _call_arity(hvp)
        self.n_samples = n_samples
        self.beta = beta
        self.pu_iters = pu_iters
        self.tau = tau
        self.eta = eta
        self.warm_start = warm_start
        self.w_min = w_min
        self.seed = seed
        self.transform = transform
        self.clip_min = clip_min
        self.matvec = matvec
        self._pu = _PU()
        self._x = self._batch = None
        self._clear()

    @classmethod
    def seed_variant(cls, hvp, **kwargs):
        """Seed 002's settings: 100 probes, EMA 0.99, one warm-started PU iteration per step."""
        settings = dict(n_samples=100, beta=0.99, pu_iters=1, tau=0.01, warm_start=True)
        settings.update(kwargs)
        return cls(hvp, **settings)

    @classmethod
    def icml(cls, hvp, **kwargs):
        """The ICML code's settings: 10 probes, no EMA, 100 PU iterations from uniform,
        tau = 0.01, eta = 1 / (2 max|A| + tau) (pass output-space Hessians: see
        :func:`output_curvature`)."""
        settings = dict(n_samples=10, beta=0.0, pu_iters=100, tau=0.01, warm_start=False)
        settings.update(kwargs)
        return cls(hvp, **settings)

    def weights(self, gramian, losses=None, *, dtype=None):
        """Not available: CAMOO's weights come from Hessian-vector products at the current point
        (the Hutchinson estimates of the Hessian diagonals), which the Gramian J J^T does not
        hold. Raises TypeError; use :meth:`solve` (after :meth:`observe`)."""
        raise TypeError("CAMOO has no weights(gramian): its weights come from Hessian-vector "
                        "products at the current point (Hutchinson estimates of the Hessian "
                        "diagonals), not from the Gramian J J^T; use solve(jacobian, losses) "
                        "after observe(x, batch)")

    def _clear(self):
        self.step = 0
        self.hessian_diagonals = None
        self._ema = None
        self._w = self._q = None

    def observe(self, x, batch=None):
        """The point (and minibatch) the next ``solve`` is at; the runner calls it every step.
        The references are used by that ``solve`` (x is not copied)."""
        self._x, self._batch = x, batch

    def _current(self):
        if self.point is not None:
            got = self.point()
            if isinstance(got, tuple) and len(got) == 2:
                return got
            return got, None
        if self._x is None:
            raise RuntimeError("CAMOO needs the current point for its Hessian-vector products: "
                               "call solver.observe(x, batch) before solve(), give point=, or "
                               "run it under madam.runs.run (which calls observe)")
        return self._x, self._batch

    def _hvp_at(self, x, batch):
        fn = self.hvp
        if self._arity == 2:
            return lambda v: fn(x, v)
        return lambda v: fn(x, v, batch)

    def _solve(self, jac, losses):
        x, batch = self._current()
        x = np.asarray(x)
        dt = x.dtype if x.dtype in _FLOAT_TYPES else np.dtype(np.float64)
        if self.probe_dim is None:
            dim = x.size
        elif callable(self.probe_dim):
            dim = _int("probe_dim(x, batch)", self.probe_dim(x, batch), 1)
        else:
            dim = self.probe_dim
        t = self.step + 1
        acc = _probe_products(self._hvp_at(x, batch), dim, self.n_samples, self.seed, t, dt,
                              "hvp")                # the mean over the probes
        if acc.ndim == 1:
            acc = acc[None, :]
        if acc.shape[0] != jac.shape[0]:
            raise ValueError(f"hvp returned {acc.shape[0]} rows but jacobian has "
                             f"{jac.shape[0]} objectives")
        if self.reduce is None:
            est, n_avg, transform, clip_min = acc, 1, self.transform, self.clip_min
        else:
            est = _hutch_update(acc, 1, 1, 0.0, self.transform, self.clip_min, None, acc)
            est = np.ascontiguousarray(self.reduce(est), dtype=dt)
            if est.ndim != 2 or est.shape[0] != jac.shape[0] or est.shape[1] < 1:
                raise ValueError(f"reduce must return ({jac.shape[0]}, k), got {est.shape}")
            n_avg, transform, clip_min = 1, "signed", 0.0
        if self._ema is None or self._ema.shape != est.shape or self._ema.dtype != est.dtype:
            self._ema = np.zeros_like(est)
        a = np.empty_like(est)
        _hutch_update(est, n_avg, t, self.beta, transform, clip_min, self._ema, a)
        if not _core.all_finite(a):
            raise ValueError("CAMOO's Hessian diagonals hold NaN or Inf (check hvp)")
        c, d = a.shape
        warm = (self.warm_start and self._w is not None and self._w.shape == (c,)
                and self._q.shape == (d,))
        w_min = min(self.w_min, 1.0 / c)
        if warm:
            w, q = self._w.astype(dt), self._q.astype(dt)
        else:
            w, q = np.full(c, 1.0 / c, dt), np.full(d, 1.0 / d, dt)
        if self.eta is None and self.tau == 0.0 and not np.any(a):
            w, q = np.full(c, 1.0 / c, dt), np.full(d, 1.0 / d, dt)
            gap, value, used, eta = 0.0, 0.0, 0, float("nan")
        else:
            gap, value, used, eta = self._pu(a, w, q, self.tau, self.pu_iters, self.eta, w_min,
                                             0.0, warm, self.matvec)
        self._w, self._q = w, q
        self.hessian_diagonals = a
        self.step = t
        lam = w.astype(np.float64)
        lam /= lam.sum()
        return lam, 1.0, {"gap": gap, "value": value, "eta": eta, "pu_iters": used, "step": t}

    def reset(self):
        super().reset()
        self._clear()

    def _get_state(self):
        sd = {"step": self.step}
        if self.step:
            sd.update({"ema": self._ema.copy(), "w": self._w.copy(), "q": self._q.copy(),
                       "hessian_diagonals": self.hessian_diagonals.copy()})
        return sd

    def _set_state(self, sd):
        step = sd.get("step")
        step = _int("state_dict['step']", np.asarray(step).item() if step is not None else None, 0)
        if step == 0:
            self._clear()
            return
        arrays = {}
        for key in ("ema", "w", "q", "hessian_diagonals"):
            if key not in sd:
                raise ValueError(f"state_dict lacks {key!r}")
            arr = np.array(sd[key])
            if arr.dtype not in _FLOAT_TYPES or not np.all(np.isfinite(arr)):
                raise ValueError(f"state_dict[{key!r}] must be a finite float array")
            arrays[key] = arr
        c, d = arrays["ema"].shape if arrays["ema"].ndim == 2 else (0, 0)
        if (arrays["ema"].ndim != 2 or arrays["w"].shape != (c,) or arrays["q"].shape != (d,)
                or arrays["hessian_diagonals"].shape != (c, d)):
            raise ValueError("state_dict: 'ema' (C, k), 'w' (C,), 'q' (k,) and "
                             "'hessian_diagonals' (C, k) must agree")
        self._ema, self._w, self._q = arrays["ema"], arrays["w"], arrays["q"]
        self.hessian_diagonals = arrays["hessian_diagonals"]
        self.step = step

    def __repr__(self):
        return (f"CAMOO(n_samples={self.n_samples}, beta={self.beta}, pu_iters={self.pu_iters}, "
                f"tau={self.tau}, eta={self.eta}, warm_start={self.warm_start}, "
                f"w_min={self.w_min}, seed={self.seed}, transform={self.transform!r})")


def _columns(name, value):
    if value is None or isinstance(value, slice):
        return value
    try:
        idx = np.array(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be None, a slice or integer indices") from None
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must be None, a slice or a non-empty 1-D array of integers")
    return idx


class PAMOO(Solver):
    r"""PAMOO (Efroni et al., ICML 2025): Polyak-like weights from the Gramian of the gradients.

    With J the Jacobian (restricted to ``columns`` when given), f the losses and
    A = J J^T + damping I, the weights maximise 2 w^T f - w^T A w over w >= w_min by
    :func:`pamoo_weights` (projected gradient ascent, ``lr``, ``iters``), warm-started from the
    previous call's w (``warm_start``; the first call starts from ``w0`` ones). The ICML code
    uses the gradients of the losses w.r.t. the network *outputs*, summed over the batch; for the
    MLP problems of :mod:`madam.problems` (TeacherStudent, :class:`PowerLossMLP`) those are
    exactly the Jacobian's columns of the output bias b2: ``columns=slice(-problem.d_out, None)``.

    The natural weights w need not sum to 1: lam = w / sum(w), scale = sum(w), and ``d`` is
    lam @ J as for every solver, unless ``natural_scale=True``, which returns d = w @ J (the
    ICML code's step: its SGD learning rates assume it). Losses are read (finite).

    The ascent converges only for lr < 1 / lambda_max(A). A is set by the jacobian, which changes
    from call to call, so a larger lr is not refused (as :func:`pamoo_weights` does) but replaced
    by 1 / (2 lambda_max(A)) for that call; ``info["lr"]`` is the step used. When every weight
    ends at 0 (w_min = 0 and no positive loss: the QP's maximiser, no step), lam is uniform and
    scale = 0. A direction beyond the jacobian's dtype is refused (ValueError naming jacobian).
    """

    name = "pamoo"
    uses_losses = True
    lr = Hyper(_positive)
    iters = Hyper(at_least(0))
    w_min = Hyper(_nonneg)
    damping = Hyper(_nonneg)
    warm_start = Hyper(_flag)
    natural_scale = Hyper(_flag)
    w0 = Hyper(_positive)
    columns = Hyper(_columns)

    def __init__(self, lr=3e-3, iters=1000, w_min=1e-6, damping=1e-4, warm_start=True,
                 columns=None, natural_scale=False, w0=1.0):
        super().__init__()
        self.lr = lr
        self.iters = iters
        self.w_min = w_min
        self.damping = damping
        self.warm_start = warm_start
        self.columns = columns
        self.natural_scale = natural_scale
        self.w0 = w0
        self._w = None

    def reads_gramian_only(self):
        # with columns, the Gramian of the selected columns, not of J
        return self.columns is None

    def _direction_weights(self, lam, scale):
        # natural_scale: d = w @ J with w = scale * lam, formed (and checked for overflow) by
        # Solver.solve like every direction, so a d beyond the dtype's range is refused with the
        # solver's state restored instead of returned as inf (scaling lam @ J afterwards was not)
        return lam * scale if self.natural_scale else lam

    def _solve(self, jac, losses):
        sub = jac if self.columns is None else np.ascontiguousarray(jac[:, self.columns])
        if sub.shape[1] == 0:
            raise ValueError("columns selects no column of the jacobian")
        gram, exponent = _gramian(sub, with_exponent=True)
        return self._weights(jac.shape[0], gram, exponent, jac.dtype, losses)

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        c = k
        # PAMOO's weights depend on the Gramian's absolute size (the damping, the losses), so the
        # scaled Gramian (of _gramian, float64 even for float32 input, which a float32 syrk would
        # overflow for rows of norm ~2e19; or the one weights() scaled) is scaled back; beyond
        # float64 the objective itself is not representable
        if exponent:
            with np.errstate(over="ignore", under="ignore"):
                gram = np.ldexp(gram, 2 * exponent)
            if not np.all(np.isfinite(gram)):
                raise ValueError(f"{against} is too large for PAMOO: J J^T overflows float64")
        gram = gram + self.damping * np.eye(c)
        # The ascent converges only for lr < 1 / lambda_max(A) (pamoo_weights refuses a larger
        # lr); beyond it the iterates swing between w_min and ever larger values (w ~ 3e35 after
        # 22 steps for rows -755, 9) or are clamped to 0 by a single step. lambda_max is set by
        # the jacobian's scale, which changes from call to call, so a fixed lr cannot be checked
        # up front: the step is capped at 1 / (2 lambda_max(A)), the steepest-ascent step of this
        # concave quadratic (Hessian -2A), only when lr would not converge; otherwise lr is used
        # as given (the ICML code's iterates). info["lr"] is the step used.
        top = _lambda_max(gram)
        lr = self.lr if self.lr * top < 1.0 else 0.5 / top
        if self.warm_start and self._w is not None and self._w.shape == (c,):
            w = self._w.copy()
        else:
            w = np.full(c, self.w0)
        w = _pamoo(gram, np.ascontiguousarray(losses, dtype=np.float64), w, lr, self.iters,
                   self.w_min)
        total = float(w.sum()) if np.all(np.isfinite(w)) else math.inf
        if not math.isfinite(total):                         # checked before the state changes
            # with a converging step the iterates stay bounded unless the QP is unbounded
            # (a direction of A's null space with f > 0 and damping 0) and lr * iters * f is huge
            raise ValueError(f"PAMOO's weights overflowed (sum {total}): lr = {lr:.6g} is too "
                             f"large for these losses and this jacobian (or add damping)")
        self._w = w.copy()
        info = {"w": w.copy(), "lr": lr}
        if total <= 0.0:
            # every weight is 0 (w_min = 0): the maximiser of 2 w^T f - w^T A w is w = 0 when no
            # loss is positive, i.e. PAMOO takes no step. lam = w / sum(w) is undefined, so lam is
            # uniform (on the simplex, as promised) and scale = 0: the natural direction is 0
            return np.full(c, 1.0 / c), 0.0, info
        return w / total, total, info

    def reset(self):
        super().reset()
        self._w = None

    def _get_state(self):
        return {} if self._w is None else {"w": self._w.copy()}

    def _set_state(self, sd):
        if "w" not in sd:
            self._w = None
            return
        w = np.array(sd["w"], dtype=np.float64)
        if w.ndim != 1 or not np.all(np.isfinite(w)):
            raise ValueError("state_dict['w'] must be a finite 1-D array")
        self._w = w

    def __repr__(self):
        return (f"PAMOO(lr={self.lr}, iters={self.iters}, w_min={self.w_min}, "
                f"damping={self.damping}, warm_start={self.warm_start}, "
                f"natural_scale={self.natural_scale})")
