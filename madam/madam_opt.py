r"""MAdam: metric-aware multi-objective Adam (Liu et al., arXiv 2606.03904, 2026).

A multi-objective solver reconciles the C per-objective gradients :math:`g_i` into
:math:`d = \sum_i \lambda_i g_i` under a preference :math:`\lambda` that may change every step.
Adam's second moment of :math:`d` then averages the preference over its history. MAdam whitens
:math:`d` by the curvature of the *current* scalarisation before Adam sees it (per element):

.. math::
    F_{ij} &\leftarrow \beta_2 F_{ij} + (1 - \beta_2)\, g_i g_j, \qquad
    \hat F_{ij} = F_{ij} / (1 - \beta_2^t) \\
    C_\lambda &= \max\Big(0, \sum_{ij} \lambda_i \lambda_j \hat F_{ij}\Big), \qquad
    M = (1 - r_t) + r_t \big(\sqrt{C_\lambda} + \epsilon\big) \\
    u &= d / M \quad\text{then Adam on } u:\quad
    m \leftarrow \beta_1 m + (1 - \beta_1) u, \quad v \leftarrow \beta_2 v + (1 - \beta_2) u^2 \\
    p &\leftarrow p (1 - \eta \lambda_{wd}) - \frac{\eta}{1 - \beta_1^t}\,
         \frac{m}{\sqrt{v}/\sqrt{1 - \beta_2^t} + \epsilon}

Usage::

    opt = madam.MAdam(x, solver=madam.solvers.MGDA(), lr=1e-3)
    opt.step(jacobian, losses)            # jacobian (C, n); the solver picks lambda
    opt.last_preference                   # the lambda of the last step
    opt.step(jacobian, preference=lam)    # a lambda of your own (the solver is not called)

    # stochastic pair sampling: O(1) gradients per step
    opt = madam.MAdam(x, solver=None, n_obj=8, pair_sampling=2)
    objs = opt.requested_objectives()     # e.g. (1, 6)
    opt.step(jacobian_rows, preference=lam, direction=d)   # rows (2, n) for objs, d = lam @ J

``docs/madam.md`` has the derivations (the fixed-preference identity, the bias of the sampling
estimators) and every choice the paper left open; ``cmadam/include/cmadam_madam.h`` the exact
per-element arithmetic of the fused C kernel.
"""
import contextlib
import math
import re

import numpy as np

from . import _core
from ._core import ffi
from ._validate import Hyper, _overlapping, nonnegative
from ._validate import integer as _int
from ._validate import betas as _betas
from .optim import Optimizer, _scalar

__all__ = ["MAdam", "ESTIMATORS", "RAMPUP_SCHEDULES"]

#: Estimators of F under stochastic pair sampling (docs/madam.md derives their bias).
ESTIMATORS = ("elapsed", "count", "ipw")
#: Rampup schedules r_t (t = step, T = rampup_steps; T = 0: r_t = 1).
RAMPUP_SCHEDULES = ("linear", "cosine")

_STATE_FORMAT = 1
_MAX_OBJ = 4096
# What _layout builds: attached on the first step (or at construction when n_obj is given).
_LAYOUT_ATTRS = ("_n_obj", "_pair_i", "_pair_j", "_pair_mult", "_fisher", "_fisher_ptr",
                 "_pair_updates", "_pair_last", "_pair_prob")


# ----------------------------------------------------------------------------- validators
def _nonneg_int(name, value):
    return _int(name, value, 0)


def _schedule(name, value):
    if value not in RAMPUP_SCHEDULES:
        raise ValueError(f"{name} must be one of {RAMPUP_SCHEDULES}, got {value!r}")
    return value


def _solver(value):
    """A solver instance, a registry name (built with no arguments) or None.

    A solver *class* is refused (TypeError: pass an instance, e.g. ``MGDA()``), as is a name
    whose class needs constructor arguments (``"camoo"`` needs ``hvp``; ``"epo"`` a preference).
    """
    from . import solvers
    from .solvers import required_arguments as _required_arguments

    if value is None:
        return None
    if isinstance(value, str):
        if value not in solvers.SOLVERS:
            raise ValueError(f"solver must be a madam.solvers.Solver, one of "
                             f"{tuple(solvers.SOLVERS)} or None, got {value!r}")
        cls = solvers.SOLVERS[value]
        required = _required_arguments(cls)
        if required:
            raise ValueError(f"solver {value!r} ({cls.__name__}) needs the constructor "
                             f"argument(s) {', '.join(required)}, which a name cannot supply: "
                             f"pass an instance, e.g. solver=madam.solvers.{cls.__name__}("
                             f"{', '.join(f'{r}=...' for r in required)})")
        return cls()
    if isinstance(value, type):
        example = "MGDA()"
        if hasattr(value, "solve"):
            args = ", ".join(f"{r}=..." for r in _required_arguments(value))
            example = f"{value.__name__}({args})"
        raise TypeError(f"solver must be a solver instance, a name or None, got the class "
                        f"{value.__name__}: pass an instance, e.g. {example}")
    if not callable(getattr(value, "solve", None)):
        raise TypeError("solver must be a madam.solvers.Solver (anything with solve(jacobian, "
                        f"losses) -> (lam, d)), a solver name or None, got {type(value).__name__}")
    return value


def _preference(value, n_obj):
    """A user's lambda: :func:`madam.solvers.check_preference` (C finite entries >= 0 summing to
    1 within its dtype's :func:`~madam.solvers.simplex_tolerance`) with C = ``n_obj`` entries.
    Returns a writable float64 copy, not renormalised."""
    from .solvers import check_preference

    lam = np.array(check_preference(value))
    if n_obj is not None and lam.size != n_obj:
        raise ValueError(f"preference has {lam.size} entries but there are {n_obj} objectives")
    return lam


def _solver_checkpoint(solver):
    """What a failed step puts back into the solver, which has already committed its solve (RLW's
    and PCGrad's random stream, DWA's loss history, NashMTL's warm start, ``scale``, ``info``):
    a madam Solver's own checkpoint; for a duck-typed solver its state_dict (if it has one) and
    its ``scale`` and ``info``. None for no solver."""
    if solver is None:
        return None
    if callable(getattr(solver, "_checkpoint", None)):
        return solver._checkpoint()
    sd = None
    if callable(getattr(solver, "state_dict", None)) and \
            callable(getattr(solver, "load_state_dict", None)):
        sd = solver.state_dict()
    attrs = {name: value for name, value in getattr(solver, "__dict__", {}).items()
             if name in ("scale", "info")}
    return sd, attrs


@contextlib.contextmanager
def solver_keys_named(prefix="solver."):
    """Re-raise a solver's state_dict error with the keys as the caller's dict names them: the
    solver says ``state_dict lacks 'format'``, the optimiser's dict holds ``'solver.format'``."""
    try:
        yield
    except ValueError as exc:
        message = re.sub(r"(\[|lacks )'([^']+)'",
                         lambda m: f"{m.group(1)}'{prefix}{m.group(2)}'", str(exc))
        raise ValueError(message) from None


def _solver_restore(solver, saved):
    if callable(getattr(solver, "_checkpoint", None)):
        solver._restore(saved)
        return
    sd, attrs = saved
    if sd is not None:
        solver.load_state_dict(sd)
    for name, value in attrs.items():
        setattr(solver, name, value)


def _reads_gramian_only(solver):
    """Whether ``solver.weights(G)`` gives the lambda ``solver.solve(J)`` would (a madam solver
    whose method reads J only through its Gramian), so that MAdam need not hand it J."""
    return callable(getattr(solver, "reads_gramian_only", None)) and solver.reads_gramian_only()


def _scan(jacs, names, c):
    """One read of each (C,) + shape array (``cm_gram_scan``): ``(G, bad)``, G the float64 sum of
    the arrays' Gramians J_k J_k^T (= J J^T of the concatenation, without forming it) and bad
    the name of the first array holding NaN or Inf (None if none; G is then None). G is None as
    well where solve() must see J itself: float64 entries beyond 2^+-128 (solve() rescales J
    by a power of two first, which a Gramian of the unscaled J cannot undo), a squared row norm
    lost to underflow, or mixed dtypes."""
    from .solvers.base import _GRAM_EXPONENT

    gram = np.zeros((c, c))
    usable = True
    for name, j in zip(names, jacs):
        g, finite, top = _core.gram_scan(j, c)
        if not finite:
            return None, name
        gram += g
        if j.dtype != jacs[0].dtype or (j.dtype == np.float64 and top > 0.0
                                        and abs(math.frexp(top)[1]) > _GRAM_EXPONENT):
            usable = False
    # a row whose squared norm is below 2^-900 has lost bits to underflow in G (or all of them:
    # rows of ~1e-170 next to rows of ~1 give G_ii = 0 with nonzero G_ij); solve() recomputes
    # such rows from J scaled row by row (UPGrad), which a Gramian cannot
    if np.any(np.diag(gram) < 2.0 ** -900):
        usable = False
    return (gram if usable else None), None


def _pow(base, exponents):
    """base ** e for an integer array e, by libm's pow per distinct exponent (the value Python's
    ``base ** t`` gives), so every mode computes its bias corrections with the same bits."""
    e = np.asarray(exponents)
    values, inverse = np.unique(e, return_inverse=True)
    table = np.array([base ** float(v) for v in values], dtype=np.float64)
    return table[inverse].reshape(e.shape)


def rampup_factor(step, rampup_steps, schedule="linear"):
    """r_t of the metric blend M = (1 - r_t) I + r_t Diag(sqrt(C) + eps).

    ``rampup_steps = 0``: 1 from step 1 (the pure metric). Else, with s = min(1, t / T):
    ``"linear"``: s;  ``"cosine"``: (1 - cos(pi s)) / 2.
    """
    if rampup_steps == 0:
        return 1.0
    s = min(1.0, step / rampup_steps)
    if schedule == "linear":
        return s
    return 0.5 * (1.0 - math.cos(math.pi * s))


# ===================================================================================== MAdam
class MAdam(Optimizer):
    r"""MAdam: whiten the solver's direction by the preference-conditioned curvature, then Adam.

    Parameters
    ----------
    params : ndarray or list of ndarrays (float32/float64, C-contiguous), updated in place.
    solver : a :class:`madam.solvers.Solver` instance (or a registry name such as ``"mgda"``;
        default), used by ``step(jacobian, losses)`` to pick :math:`\lambda`; ``None``: every
        step must pass ``preference=``. A solver *class* (``solver=MGDA``) is a TypeError: pass
        an instance, ``MGDA()``. A name is built with no arguments, so names whose class needs
        some (``"camoo"``: ``hvp``; ``"epo"``, ``"linear"``: a preference) are a ValueError.
        Any solver of :mod:`madam.solvers` works; its ``lam`` must be
        finite (IMTL-G's affine weights may be negative: :math:`C_\lambda = \lambda^T F \lambda`
        is still >= 0, since F is a positive semi-definite C x C matrix per element).
    lr, betas, eps : Adam's, applied to u. ``betas[1]`` is also the decay of the F EMAs (the
        paper shares it), and ``eps`` appears twice: in M and in Adam's denominator.
    weight_decay : decoupled (AdamW-style): :math:`p \leftarrow p(1 - \eta\lambda_{wd})` before
        the update. Chosen over L2 because an L2 term added to d would be whitened by a metric
        that does not describe it.
    rampup_steps, rampup : the metric blend :math:`M_t = (1 - r_t) I + r_t
        \mathrm{Diag}(\sqrt{C_\lambda} + \epsilon)`; ``rampup_steps=0`` (default): :math:`r_t = 1`
        from step 1; else :math:`s = \min(1, t/T)` and ``rampup="linear"`` (default) gives
        :math:`r_t = s`, ``"cosine"`` :math:`r_t = (1 - \cos\pi s)/2`. At :math:`r_t = 0`, MAdam
        is Adam on d (u = d); note that I and :math:`\sqrt{C_\lambda}` have different units, so
        in between the blend is dominated by the larger of 1 and :math:`\sqrt{C_\lambda}`.
    n_obj : the number of objectives C; inferred from the first Jacobian when None (required
        with ``pair_sampling``).
    pair_sampling : None (default): every step reads all C gradients and moves every
        :math:`F_{ij}`. An int k (2 <= k <= C; 1 when C = 1): each step draws k distinct
        objectives uniformly (:meth:`requested_objectives`); only the pairs among them move
        (k (k + 1) / 2 of the C (C + 1) / 2 EMAs), so a step needs d and k gradients.
    estimator : how sampled EMAs are kept (``docs/madam.md`` derives each one's bias):
        ``"elapsed"`` (default): :math:`F_p \leftarrow \beta^\Delta F_p + (1 - \beta^\Delta) g_i
        g_j` with :math:`\Delta` the steps since pair p last moved, read as
        :math:`F_p / (1 - \beta^{\tau_p})` (:math:`\tau_p`: the step it last moved): each sample
        stands for the steps since the previous one, so the time constant in steps is the full
        EMA's; unbiased for stationary gradients. ``"count"``: a plain EMA over the pair's own
        updates, read as :math:`F_p / (1 - \beta^{n_p})` (:math:`n_p` updates): unbiased for
        stationary gradients, but its time constant is :math:`1/q_p` times longer.
        ``"ipw"``: inverse-probability weighting, :math:`F_p \leftarrow \beta^\Delta F_p +
        (1 - \beta) g_i g_j / q_p`, read as :math:`\beta^{t - \tau_p} F_p / (1 - \beta^t)`:
        its expectation over the sampling is the full-pairs :math:`\hat F` exactly, for any
        gradient sequence, at the price of more variance. :math:`q_p` is the probability that
        pair p is drawn: k/C on the diagonal, k(k-1)/(C(C-1)) off it. With k = C all three are
        the full-pairs optimiser bit for bit. Sampled F is not PSD per element, so
        :math:`C_\lambda` is clamped at 0.
    seed : seed of the sampling stream (NumPy PCG64); saved in the state_dict.
    nonfinite : ``"raise"``, ``"skip"`` or ``"ignore"``, as every madam optimiser (applied to the
        Jacobian and the direction).

    lr, eps and weight_decay are bounded by :func:`madam.optim.scale_limit` of the params'
    dtype. A step is all or nothing (see :meth:`step`): a failure leaves the optimiser, the
    sampling stream and the solver's state as they were.

    Attributes: :attr:`last_preference`, :attr:`solver` (settable), :attr:`n_obj`,
    :meth:`requested_objectives`, :meth:`curvature`, :meth:`fisher`, and the hyperparameters.
    """

    lr = Hyper(nonnegative, scale=True)
    betas = Hyper(_betas(2))
    eps = Hyper(nonnegative, scale=True)
    weight_decay = Hyper(nonnegative, scale=True)
    rampup_steps = Hyper(_nonneg_int)
    rampup = Hyper(_schedule)
    _buffers = ("exp_avg", "exp_avg_sq")
    _nonnegative_buffers = ("exp_avg_sq",)    # Adam's v of u; F's off-diagonal pairs may be < 0
    _extra_state_keys = ("n_obj", "pair_sampling", "estimator", "seed", "rng.state", "rng.inc",
                         "rng.has_uint32", "rng.uinteger", "pending", "last_preference",
                         "pair_updates", "pair_last", "solver.")
    #: runs.py hands optimisers with this flag the Jacobian and losses instead of d.
    family = "multi-objective"  # madam.multi.MultiObjectiveOptimizer: steps on a Jacobian

    def __init__(self, params, solver="mgda", lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, rampup_steps=0, pair_sampling=None, *, rampup="linear",
                 n_obj=None, estimator="elapsed", seed=0, nonfinite="raise"):
        self._solver = _solver(solver)
        self._n_obj = None if n_obj is None else _int("n_obj", n_obj, 1)
        if self._n_obj is not None and self._n_obj > _MAX_OBJ:
            raise ValueError(f"n_obj must be <= {_MAX_OBJ}, got {self._n_obj}")
        if pair_sampling is not None:
            k = _int("pair_sampling", pair_sampling, 1)
            if self._n_obj is None:
                raise ValueError("pair_sampling needs n_obj (the number of objectives)")
            if k > self._n_obj or (k < 2 and self._n_obj > 1):
                raise ValueError(f"pair_sampling must be in [{min(2, self._n_obj)}, "
                                 f"{self._n_obj}] (objectives drawn per step), got {k}")
            pair_sampling = k
        self._k = pair_sampling
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self._estimator = estimator
        self._seed = _int("seed", seed, 0)
        self._rng = np.random.Generator(np.random.PCG64(self._seed))
        self._pending = None
        super().__init__(params, nonfinite, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay, rampup_steps=rampup_steps, rampup=rampup)
        self._last_preference = None
        self._fisher = None
        if self._n_obj is not None:
            self._allocate(self._n_obj)

    # ------------------------------------------------------------------ layout
    def _layout(self, n_obj):
        """Packed F buffers (P,) + shape per parameter, the pair tables and counters, as a
        dict of attribute values; nothing is attached to the optimiser (see _allocate)."""
        iu, ju = np.triu_indices(n_obj)
        n_pairs = iu.size
        lay = {"_n_obj": n_obj,
               "_pair_i": iu.astype(np.intc),            # packed order: (0,0), (0,1), ...
               "_pair_j": ju.astype(np.intc),
               "_pair_mult": np.where(iu == ju, 1.0, 2.0),
               "_fisher": [np.zeros((n_pairs,) + p.shape, dtype=p.dtype) for p in self._params],
               "_pair_updates": np.zeros(n_pairs, dtype=np.int64),   # n_p
               "_pair_last": np.zeros(n_pairs, dtype=np.int64),      # tau_p (0: never)
               "_pair_prob": None}
        lay["_fisher_ptr"] = [_core.pointer(f, writable=True) for f in lay["_fisher"]]
        if self._k is not None:
            k, c = self._k, n_obj
            q_off = k * (k - 1) / (c * (c - 1)) if c > 1 else 1.0
            lay["_pair_prob"] = np.where(iu == ju, k / c, q_off)
        return lay

    def _allocate(self, n_obj):
        """Build the layout for n_obj objectives and attach it."""
        self.__dict__.update(self._layout(n_obj))

    def _current_layout(self):
        """The attached layout, in _layout's form (the arrays themselves, not copies)."""
        return {name: getattr(self, name, None) for name in _LAYOUT_ATTRS}

    # ------------------------------------------------------------------ public attributes
    @property
    def solver(self):
        """The solver that picks lambda when step() gets no preference (None: none)."""
        return self._solver

    @solver.setter
    def solver(self, value):
        self._solver = _solver(value)

    @property
    def n_obj(self):
        """The number of objectives C (None until known)."""
        return self._n_obj

    @property
    def pair_sampling(self):
        """Objectives drawn per step (None: all pairs every step); fixed at construction."""
        return self._k

    @property
    def estimator(self):
        """The sampled-F estimator (fixed at construction)."""
        return self._estimator

    @property
    def seed(self):
        return self._seed

    @property
    def last_preference(self):
        """The lambda used by the last step (a float64 copy), None before the first."""
        return None if self._last_preference is None else self._last_preference.copy()

    def requested_objectives(self):
        """The objectives whose gradients the next step needs, as a sorted tuple.

        Full pairs: all of them. Pair sampling: k drawn uniformly without replacement; the draw
        is kept until a step is applied (a skipped or failed step asks for the same ones).
        """
        if self._n_obj is None:
            raise ValueError("the number of objectives is not known yet (give n_obj= or take "
                             "a first step with the full Jacobian)")
        if self._k is None:
            return tuple(range(self._n_obj))
        if self._pending is None:
            self._pending, self._rng = self._draw()
        return self._pending

    def _draw(self):
        """The next k objectives and the sampling stream after drawing them, drawn on a copy:
        the caller commits both (requested_objectives at once, step only once it succeeded),
        so a rejected step leaves the stream where it was."""
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = self._rng.bit_generator.state
        draw = rng.choice(self._n_obj, size=self._k, replace=False)
        return tuple(sorted(int(i) for i in draw)), rng

    def rampup_factor(self, step=None):
        """r_t for step t (default: the next step)."""
        t = self.step_count + 1 if step is None else _int("step", step, 1)
        return rampup_factor(t, self.rampup_steps, self.rampup)

    # ------------------------------------------------------------------ read-out
    def _read_scale(self, t, lay=None):
        """(lag, bc) per pair after step t: F_hat_p = lag_p * F_p / bc_p (bc 0: not yet).
        ``lay``: the layout and counters to read (default: the attached ones)."""
        lay = self._current_layout() if lay is None else lay
        b2 = self.betas[1]
        n_pairs = lay["_pair_i"].size
        ones = np.ones(n_pairs)
        if self._k is None:
            return ones, np.full(n_pairs, 1.0 - b2 ** float(t))
        if self._estimator == "count":
            return ones, 1.0 - _pow(b2, lay["_pair_updates"])
        if self._estimator == "elapsed":
            return ones, 1.0 - _pow(b2, lay["_pair_last"])
        lag = _pow(b2, t - lay["_pair_last"])
        return lag, np.full(n_pairs, 1.0 - b2 ** float(t))

    def _pair_weights(self, lam, lag, bc, lay=None):
        lay = self._current_layout() if lay is None else lay
        pi, pj, mult = lay["_pair_i"], lay["_pair_j"], lay["_pair_mult"]
        w = np.zeros(pi.size)
        ok = bc > 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by _plan
            w[ok] = mult[ok] * lam[pi[ok]] * lam[pj[ok]] * lag[ok] / bc[ok]
        return w

    def fisher(self, index=0):
        r"""The bias-corrected :math:`\hat F` of parameter ``index`` as a symmetric
        (C, C) + shape float64 array (as the last step read it)."""
        if self._fisher is None:
            raise ValueError("no step taken yet: F is not allocated")
        f = self._fisher[index]
        lag, bc = self._read_scale(self.step_count)
        scale = np.where(bc > 0.0, lag / np.where(bc > 0.0, bc, 1.0), 0.0)
        c = self._n_obj
        out = np.zeros((c, c) + f.shape[1:])
        for p, (i, j) in enumerate(zip(self._pair_i, self._pair_j)):
            out[i, j] = out[j, i] = scale[p] * f[p].astype(np.float64)
        return out

    def curvature(self, preference=None):
        r""":math:`C_\lambda = \max(0, \lambda^T \hat F \lambda)` per element, as the last step
        formed it (preference None: :attr:`last_preference`), in the structure of params
        (float64). Sampled estimators are read with their current counters."""
        if self._fisher is None:
            raise ValueError("no step taken yet: F is not allocated")
        lam = self._last_preference if preference is None else _preference(preference,
                                                                           self._n_obj)
        if lam is None:
            raise ValueError("no preference: take a step first or pass preference=")
        w = self._pair_weights(lam, *self._read_scale(self.step_count))
        out = []
        for f in self._fisher:
            c = np.zeros(f.shape[1:])
            for p in range(w.size):
                c = c + w[p] * f[p].astype(np.float64)
            out.append(np.maximum(c, 0.0))
        return out[0] if self._single else out

    # ------------------------------------------------------------------ input checks
    def _rows_list(self, jacobian):
        """Jacobian as a list of (R, n_k) arrays (views), one per parameter; returns (list, R)."""
        if self._single:
            if not isinstance(jacobian, np.ndarray):
                raise TypeError("jacobian must be a NumPy array of shape (C,) + params.shape, "
                                f"got {type(jacobian).__name__}")
            jacs, names = [jacobian], ["jacobian"]
        else:
            if not isinstance(jacobian, (list, tuple)):
                raise TypeError("jacobian must be a list/tuple of (C,) + param.shape arrays like "
                                f"params, got {type(jacobian).__name__}")
            if len(jacobian) != len(self._params):
                raise ValueError(f"jacobian has {len(jacobian)} arrays but params has "
                                 f"{len(self._params)}")
            jacs, names = list(jacobian), [f"jacobian[{i}]" for i in range(len(jacobian))]
        rows = None
        for name, j, p in zip(names, jacs, self._params):
            if not isinstance(j, np.ndarray):
                raise TypeError(f"{name} must be a NumPy array, got {type(j).__name__}")
            if j.dtype != p.dtype:
                raise TypeError(f"{name} has dtype {j.dtype} but its parameter has {p.dtype}")
            if j.ndim != p.ndim + 1 or j.shape[1:] != p.shape or j.shape[0] < 1:
                raise ValueError(f"{name} must have shape (C,) + {p.shape}, got {j.shape}")
            if rows is None:
                rows = j.shape[0]
            elif j.shape[0] != rows:
                raise ValueError(f"{name} has {j.shape[0]} rows but jacobian[0] has {rows}")
            if not j.flags.c_contiguous:
                raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
            hit = _overlapping(self._param_spans, j)
            if hit is not None:
                raise ValueError(f"{name} shares memory with "
                                 f"{'params' if self._single else f'params[{hit}]'}")
        return jacs, names, rows

    def _direction_list(self, direction):
        if self._single:
            ds, names = ([direction], ["direction"])
            if not isinstance(direction, np.ndarray):
                raise TypeError("direction must be a NumPy array like params, got "
                                f"{type(direction).__name__}")
        else:
            if not isinstance(direction, (list, tuple)):
                raise TypeError("direction must be a list/tuple like params, got "
                                f"{type(direction).__name__}")
            if len(direction) != len(self._params):
                raise ValueError(f"direction has {len(direction)} arrays but params has "
                                 f"{len(self._params)}")
            ds, names = list(direction), [f"direction[{i}]" for i in range(len(direction))]
        for name, d, p in zip(names, ds, self._params):
            if not isinstance(d, np.ndarray):
                raise TypeError(f"{name} must be a NumPy array, got {type(d).__name__}")
            if d.dtype != p.dtype:
                raise TypeError(f"{name} has dtype {d.dtype} but its parameter has {p.dtype}")
            if d.shape != p.shape:
                raise ValueError(f"{name} has shape {d.shape} but its parameter has {p.shape}")
            if not d.flags.c_contiguous:
                raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
            hit = _overlapping(self._param_spans, d)
            if hit is not None:
                raise ValueError(f"{name} shares memory with "
                                 f"{'params' if self._single else f'params[{hit}]'}")
        return ds, names

    # ------------------------------------------------------------------ the step
    def step(self, jacobian, losses=None, *, preference=None, direction=None):
        """One MAdam step in place.

        jacobian: (R,) + params.shape (a list of such arrays for a list of params), the
            per-objective gradients. Full pairs: R = C, rows in objective order. Pair sampling:
            R = k, the rows of :meth:`requested_objectives` in that order, or R = C (all rows;
            only the requested ones are read for F).
        losses: (C,), passed to the solver (ignored with ``preference``).
        preference: a lambda on the simplex; the solver is then not called. Off the simplex,
            negative or NaN: ValueError, nothing updated.
        direction: d (params' structure). Needed with pair sampling when R = k; otherwise d is
            computed in the kernel as sum_i lambda_i g_i.

        All or nothing: a step that raises, wherever it fails (bad input, the solver, the
        solver's lambda, the kernel), leaves the parameters, the optimiser's state, the
        pair-sampling stream and the solver's state (through its state_dict /
        load_state_dict, plus its ``scale`` and ``info``) as they were. A custom solver with
        no state_dict cannot be rolled back.

        Returns True if the step was applied, False if skipped (nonfinite="skip").
        """
        jacs, names, n_rows = self._rows_list(jacobian)
        c = self._n_obj if self._n_obj is not None else n_rows
        if c > _MAX_OBJ:
            raise ValueError(f"jacobian has {c} rows; at most {_MAX_OBJ} objectives")
        if self._k is None and n_rows != c:
            raise ValueError(f"jacobian has {n_rows} rows but there are {c} objectives")
        if self._k is not None and n_rows not in (self._k, c):
            # no requested_objectives() here: it would draw (and keep) a sample for a step
            # that is being refused
            wanted = ("the requested rows (those requested_objectives() returns)"
                      if self._pending is None else f"the requested rows {self._pending}")
            raise ValueError(f"with pair_sampling={self._k}, jacobian must hold {wanted} "
                             f"({self._k} rows) or all {c}, got {n_rows} rows")
        lam = None if preference is None else _preference(preference, c)
        if lam is None and self._solver is None:
            raise TypeError("this MAdam has no solver: pass preference= (a lambda on the "
                            "simplex) to step()")
        if lam is None and n_rows != c:
            raise ValueError(f"the solver needs all {c} gradients; got {n_rows} rows (pass "
                             "preference= and direction= in the pair-sampling mode)")
        dirs = None if direction is None else self._direction_list(direction)[0]
        if dirs is None and n_rows != c:
            raise ValueError("direction= (d = lambda @ J) is required when the jacobian holds "
                             "only the requested rows")
        self._check_combination()

        arrays = list(zip(names, jacs))
        if dirs is not None:
            arrays += list(zip(["direction"] if self._single else
                               [f"direction[{i}]" for i in range(len(dirs))], dirs))
        # With a solver that reads J only through its Gramian, one C pass per array gives the
        # Gramian and the NaN/Inf scan; the kernel's pass is the second and last read of J.
        gram = None
        if lam is None and dirs is None and _reads_gramian_only(self._solver):
            gram, bad = _scan(jacs, names, c)
            if bad is not None and self.nonfinite != "ignore":
                return self._found_nonfinite(bad)
        elif not self._inputs_finite(arrays):
            return False

        # Compute: a layout of our own on the first step, the sample on a copy of the stream,
        # the solver's lambda (its state saved first), the plan; nothing is attached yet.
        lay = self._current_layout() if self._fisher is not None else self._layout(c)
        chosen, rng = None, None
        if self._k is not None:
            chosen, rng = ((self._pending, None) if self._pending is not None
                           else self._draw())
        saved_solver = None if lam is not None else _solver_checkpoint(self._solver)
        try:
            if lam is None:
                lam = self._solve(jacs, losses, c, gram)
            t = self.step_count + 1
            plan, counters = self._plan(lam, t, n_rows, chosen, lay)
            cfg = ffi.new("cm_madam_config *")
            _core.lib.cm_madam_config_default(cfg)
            cfg.lr, (cfg.beta1, cfg.beta2) = self.lr, self.betas
            cfg.eps, cfg.weight_decay = self.eps, self.weight_decay
            cfg.rampup = rampup_factor(t, self.rampup_steps, self.rampup)
            exec_cfg = _core.exec_config()
            plan_ptrs = [ffi.from_buffer("int[]", plan[0]), ffi.from_buffer("int[]", plan[1])]
            plan_ptrs += [ffi.from_buffer("double[]", a) for a in plan[2:]]
            row_weight = ffi.from_buffer("double[]", lam)
            # The kernel checks its arguments before it writes, and they are the same for
            # every array: it either fails on the first array, untouched, or not at all.
            for k, ((n, p_ptr, (m_ptr, v_ptr)), p, j) in enumerate(
                    zip(self._pointers, self._params, jacs)):
                d_ptr = ffi.NULL if dirs is None else _core.pointer(dirs[k])
                status = _core.kernel("cm_madam_step", p.dtype)(
                    cfg, exec_cfg, t, n, c, n_rows, p_ptr, _core.pointer(j), d_ptr, row_weight,
                    lay["_fisher_ptr"][k], *plan_ptrs, m_ptr, v_ptr)
                _core.check_status(status, "MAdam.step")
        except BaseException:
            if saved_solver is not None:
                _solver_restore(self._solver, saved_solver)
            raise
        # Commit.
        if self._fisher is None:
            self.__dict__.update(lay)
        if rng is not None:
            self._rng = rng
        self._pair_updates, self._pair_last = counters
        self._pending = None
        self._last_preference = lam
        self.step_count = t
        return True

    def _solve(self, jacs, losses, c, gram):
        """The solver's lambda: from the Gramian ``gram`` of :func:`_scan` where there is one,
        else by ``solve`` on J (the arrays concatenated for a list of params)."""
        if gram is not None:
            lam = self._solver.weights_of_scan(gram, losses, jacs[0].dtype)
        elif self._single:
            lam, _ = self._solver.solve(jacs[0].reshape(c, -1), losses)
        else:
            lam, _ = self._solver.solve(np.concatenate([j.reshape(c, -1) for j in jacs], axis=1),
                                        losses)
        lam = np.array(lam, dtype=np.float64).ravel()
        if lam.size != c or not np.all(np.isfinite(lam)):
            raise ValueError(f"the solver {type(self._solver).__name__} returned lambda {lam}: "
                             f"need {c} finite weights; nothing was updated")
        return lam

    def _plan(self, lam, t, n_rows, chosen, lay):
        """The kernel's per-pair plan for step t and the pair counters after it, for the
        layout ``lay`` and (pair sampling) the objectives ``chosen``; reads, never writes.

        ValueError if lambda's curvature weights (lambda_i lambda_j / (1 - beta2^t), per pair)
        or lambda itself do not fit the params' dtypes: a solver's affine weights can be
        finite but huge, and the kernel would then refuse them (or overflow in float32)."""
        b2 = self.betas[1]
        pair_i, pair_j = lay["_pair_i"], lay["_pair_j"]
        n_pairs = pair_i.size
        if self._k is None:
            a, b = pair_i.copy(), pair_j.copy()
            decay, gain = np.full(n_pairs, b2), np.full(n_pairs, 1.0 - b2)
            updates, last = lay["_pair_updates"] + 1, np.full(n_pairs, t, dtype=np.int64)
        else:
            n_obj = lay["_n_obj"]
            member = np.zeros(n_obj, dtype=bool)
            member[list(chosen)] = True
            moving = member[pair_i] & member[pair_j]
            if n_rows == n_obj:
                row_of = np.arange(n_obj, dtype=np.intc)
            else:
                row_of = np.full(n_obj, -1, dtype=np.intc)
                row_of[list(chosen)] = np.arange(len(chosen), dtype=np.intc)
            a = np.where(moving, row_of[pair_i], -1).astype(np.intc)
            b = np.where(moving, row_of[pair_j], -1).astype(np.intc)
            if self._estimator == "count":
                decay, gain = np.full(n_pairs, b2), np.full(n_pairs, 1.0 - b2)
            elif self._estimator == "elapsed":
                decay = _pow(b2, t - lay["_pair_last"])
                gain = 1.0 - decay
            else:
                decay = _pow(b2, t - lay["_pair_last"])
                gain = (1.0 - b2) / lay["_pair_prob"]
            decay = np.where(moving, decay, 1.0)
            gain = np.where(moving, gain, 0.0)
            updates = lay["_pair_updates"] + moving
            last = np.where(moving, t, lay["_pair_last"])
        lag, bc = self._read_scale(t, dict(lay, _pair_updates=updates, _pair_last=last))
        weight = self._pair_weights(lam, lag, bc, lay)
        # The kernel rounds lambda and the weights to each array's dtype.
        top = min(float(np.finfo(p.dtype).max) for p in self._params)
        if not (np.all(np.abs(weight) <= top) and np.all(np.abs(lam) <= top)):
            raise ValueError(f"lambda {lam} is too large: its curvature weights lambda_i "
                             f"lambda_j / (1 - beta2^t) overflow the params' dtype (max "
                             f"{top:.4g}); nothing was updated")
        plan = (np.ascontiguousarray(a, dtype=np.intc), np.ascontiguousarray(b, dtype=np.intc),
                np.ascontiguousarray(decay, dtype=np.float64),
                np.ascontiguousarray(gain, dtype=np.float64), weight)
        return plan, (updates, last)

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """A flat dict of copies (``np.savez(path, **sd)`` stores it): the base optimiser's
        keys, ``n_obj`` (0: unknown yet), ``pair_sampling`` (0: full pairs), ``estimator``,
        ``seed``, the pair counters, the sampling stream (decimal strings), the pending
        request, ``last_preference``, ``state.<i>.fisher`` ((P,) + shape, packed) and the
        solver's own state under ``solver.<key>``."""
        sd = super().state_dict()
        st = self._rng.bit_generator.state
        sd.update({
            "n_obj": self._n_obj or 0, "pair_sampling": self._k or 0,
            "estimator": self._estimator, "seed": self._seed,
            "rng.state": str(st["state"]["state"]), "rng.inc": str(st["state"]["inc"]),
            "rng.has_uint32": int(st["has_uint32"]), "rng.uinteger": int(st["uinteger"]),
            "pending": np.array(self._pending if self._pending is not None else [],
                                dtype=np.int64),
            "last_preference": (np.zeros(0) if self._last_preference is None
                                else self._last_preference.copy()),
        })
        if self._fisher is not None:
            sd["pair_updates"] = self._pair_updates.copy()
            sd["pair_last"] = self._pair_last.copy()
            for i, f in enumerate(self._fisher):
                sd[f"state.{i}.fisher"] = f.copy()
        if self._solver is not None and hasattr(self._solver, "state_dict"):
            for key, value in self._solver.state_dict().items():
                sd[f"solver.{key}"] = value
        return sd

    def load_state_dict(self, state_dict):
        """Restore a state_dict; everything is checked before anything changes, and resuming
        reproduces the run bit for bit (the solver's state included)."""
        sd = dict(state_dict)
        for key, mine in (("pair_sampling", self._k or 0), ("seed", self._seed)):
            value = _scalar(sd, key, int)
            if value != mine:
                raise ValueError(f"state_dict[{key!r}] is {value}, this optimiser has {mine} "
                                 "(fixed at construction)")
        estimator = _scalar(sd, "estimator", str)
        if estimator != self._estimator:
            raise ValueError(f"state_dict['estimator'] is {estimator!r}, this optimiser uses "
                             f"{self._estimator!r} (fixed at construction)")
        n_obj = _scalar(sd, "n_obj", int)
        if n_obj < 0 or n_obj > _MAX_OBJ:
            raise ValueError(f"state_dict['n_obj'] is invalid: {n_obj}")
        if self._n_obj is not None and n_obj not in (0, self._n_obj):
            raise ValueError(f"state_dict['n_obj'] is {n_obj}, this optimiser has {self._n_obj}")
        if self._k is not None and n_obj != self._n_obj:
            raise ValueError(f"state_dict['n_obj'] is {n_obj}, this optimiser has {self._n_obj}")
        step_count = _scalar(sd, "step_count", int)
        if n_obj == 0 and step_count > 0:
            raise ValueError("state_dict has steps but no objectives (n_obj = 0)")
        n_pairs = n_obj * (n_obj + 1) // 2
        fisher, counters = None, None
        if n_obj:
            fisher = []
            for i, p in enumerate(self._params):
                key = f"state.{i}.fisher"
                if key not in sd:
                    raise ValueError(f"state_dict lacks {key!r}")
                a = np.asarray(sd[key])
                if a.dtype != p.dtype:
                    raise TypeError(f"state_dict[{key!r}] has dtype {a.dtype}, expected {p.dtype}")
                if a.shape != (n_pairs,) + p.shape:
                    raise ValueError(f"state_dict[{key!r}] has shape {a.shape}, expected "
                                     f"{(n_pairs,) + p.shape}")
                self._check_state_array(key, "fisher", a)
                fisher.append(a)
            counters = []
            for key in ("pair_updates", "pair_last"):
                if key not in sd:
                    raise ValueError(f"state_dict lacks {key!r}")
                a = np.asarray(sd[key])
                if a.shape != (n_pairs,) or not np.issubdtype(a.dtype, np.integer) or \
                        np.any(a < 0) or np.any(a > step_count):
                    raise ValueError(f"state_dict[{key!r}] must be {n_pairs} integers in "
                                     f"[0, step_count]")
                counters.append(a.astype(np.int64))
        if "last_preference" not in sd:
            raise ValueError("state_dict lacks 'last_preference'")
        try:
            lam = np.array(sd["last_preference"], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ValueError("state_dict['last_preference'] must be numbers") from None
        if lam.size not in (0, n_obj) or not np.all(np.isfinite(lam)):
            raise ValueError("state_dict['last_preference'] must be empty or n_obj finite values")
        if "pending" not in sd:
            raise ValueError("state_dict lacks 'pending'")
        pending = np.asarray(sd["pending"]).ravel()
        if pending.size and (self._k is None or pending.size != self._k or
                             np.any(pending < 0) or np.any(pending >= n_obj)):
            raise ValueError(f"state_dict['pending'] is invalid: {pending}")
        try:
            bitgen = np.random.PCG64()
            bitgen.state = {"bit_generator": "PCG64",
                            "state": {"state": int(_scalar(sd, "rng.state", str)),
                                      "inc": int(_scalar(sd, "rng.inc", str))},
                            "has_uint32": _scalar(sd, "rng.has_uint32", int),
                            "uinteger": _scalar(sd, "rng.uinteger", int)}
        except ValueError as exc:
            if "lacks" in str(exc):
                raise
            raise ValueError("state_dict['rng.*'] is not a valid PCG64 state") from None
        solver_sd = {k[len("solver."):]: v for k, v in sd.items() if k.startswith("solver.")}
        if solver_sd and self._solver is None:
            raise ValueError("state_dict has solver state but this MAdam has no solver")
        # the base class checks Adam's buffers, hyperparameters and counters, then copies
        base = {k: v for k, v in sd.items() if not (k.startswith("state.") and
                                                    k.endswith(".fisher"))}
        scratch_solver = None
        if solver_sd and hasattr(self._solver, "load_state_dict"):
            import copy

            scratch_solver = copy.deepcopy(self._solver)
            with solver_keys_named():
                scratch_solver.load_state_dict(solver_sd)
        super().load_state_dict(base)
        if n_obj and (self._n_obj != n_obj or self._fisher is None):
            self._allocate(n_obj)
        if fisher is not None:
            for dst, src in zip(self._fisher, fisher):
                np.copyto(dst, src)
            self._pair_updates, self._pair_last = counters
        elif self._fisher is not None:
            for dst in self._fisher:
                dst[...] = 0
            self._pair_updates[:] = 0
            self._pair_last[:] = 0
        self._last_preference = lam if lam.size else None
        self._pending = tuple(int(i) for i in pending) if pending.size else None
        self._rng = np.random.Generator(bitgen)
        if scratch_solver is not None:
            self._solver.load_state_dict(solver_sd)

    def __repr__(self):
        mode = "full pairs" if self._k is None else f"pair_sampling={self._k} ({self._estimator})"
        return (f"MAdam({len(self._params)} arrays, step {self.step_count}, lr={self.lr!r}, "
                f"betas={self.betas!r}, eps={self.eps!r}, weight_decay={self.weight_decay!r}, "
                f"rampup_steps={self.rampup_steps}, {mode}, solver={self._solver!r})")
