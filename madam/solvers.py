"""Multi-objective gradient solvers: from the Jacobian to a preference and a direction.

A solver maps the Jacobian ``J`` (C, n) of C objectives, their losses (C,) and its own state to
weights ``lam`` (C,) and the direction ``d = lam @ J`` (n,)::

    solver = madam.solvers.MGDA()
    lam, d = solver.solve(jacobian, losses)

Conventions shared by every solver
----------------------------------
* ``lam`` is float64 and sums to 1; it lies on the simplex for every method except IMTL-G (affine
  weights, possibly negative) and the degenerate IMTL-G case (lam = 0). For methods that combine
  projected gradients (PCGrad, UPGrad, CAGrad) and for Nash-MTL, ``lam`` holds the *effective*
  weights w of the method's natural direction ``J^T w``, normalised to sum 1.
* ``d = lam @ J`` in the Jacobian's dtype (float32 in, float32 out): one BLAS gemv for float64;
  for float32 accumulated in float64 and rounded once, so that d's error is relative to |d| and
  not to the gradients it combines (which matters when they nearly cancel: non-conflict).
* ``solver.scale`` (a float, set by every ``solve``) restores the method's natural direction:
  ``natural = solver.scale * d``, i.e. w = scale * lam. It is 1 for methods whose weights
  already sum to 1 (linear scalarisation, RLW, MGDA, IMTL-G, EPO); C for DWA (its weights sum
  to C); sum(w) for PCGrad, UPGrad, CAGrad (times CAGrad's rescale factor) and Nash-MTL (after
  its norm clipping); pref_k for Tchebycheff (k the maximising objective). ``scale = 0`` flags
  a degenerate input where the method's natural direction is zero (documented per solver;
  ``lam`` then is the combination that vanishes, or 0 for IMTL-G).
* ``solver.info`` (a dict) holds diagnostics of the last solve (iterations, residuals, modes).
* Every Gramian is ``J @ J.T`` from BLAS syrk (``madam._core.gramian``) in float64: a float32
  Jacobian is widened in blocks of columns (a float32 Gramian overflows for rows of norm ~2e19
  and its rounding makes nearly-cancelling directions conflict), a float64 Jacobian with max|J|
  beyond 2^+-128 is first scaled by a power of two (exact; the Gramian would overflow or
  underflow). Eigenvalues that rounding left below 0 are clipped to 0 (on the correlation
  matrix, so that small rows keep their accuracy). All inner optimisation
  runs in float64 on that Gramian with the small dense solvers of ``madam._inner`` (no SciPy at
  run time); the scale-invariant methods give the same weights for J and s J at any finite s.
* Hyperparameters are validated attributes: they may be changed between calls (e.g. a new
  ``preference`` each step), and a bad value raises TypeError/ValueError naming it.

Input rules
-----------
* ``jacobian``: a NumPy float32/float64 array of shape (C, n), C >= 1, n >= 1, all finite
  (TypeError / ValueError naming ``jacobian``).
* ``losses``: C real numbers. Solvers that use their values (Tchebycheff, DWA, EPO) require them
  finite, and DWA and EPO require them > 0 (ratios and logarithms of losses): otherwise
  ValueError naming ``losses``. The other solvers do not read the values (a NaN loss is ignored;
  ``losses`` may be None); the length is still checked when given.
* ``preference``: C non-negative finite numbers summing to 1 within 1e-9 (EPO: all > 0).

Degenerate inputs (identical gradients, zero gradients, C = 1) give defined outputs, documented
in each class and tested in ``tests/test_solvers.py``.
"""
import math
import numbers

import numpy as np

from . import _core
from ._validate import Hyper, flag
from ._validate import integer as _int
from ._validate import nonnegative as _nonnegative
from ._validate import positive as _positive
from ._validate import real_vector as _vector
from ._inner import linprog, min_norm_2, min_norm_frank_wolfe, qp_active_set

__all__ = ["Solver", "LinearScalarization", "Tchebycheff", "RLW", "DWA", "MGDA", "PCGrad",
           "CAGrad", "IMTLG", "NashMTL", "UPGrad", "EPO", "SOLVERS"]

_STATE_FORMAT = 1
_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------- validation
def _seed(name, value):
    if value is None:
        return None
    return _int(name, value, 0)


def _choice(name, value, options):
    if isinstance(value, (bool, np.bool_)) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _at_least(minimum):
    return lambda name, value: _int(name, value, minimum)


def _one_of(*options):
    return lambda name, value: _choice(name, value, options)


def _max_norm(name, value):
    return 0.0 if value is None else _nonnegative(name, value)


def _optional_nonnegative(name, value):
    return None if value is None else _nonnegative(name, value)


def required_arguments(cls, skip=()):
    """The constructor parameters of a solver class that have no default (those named in
    ``skip`` left out): what a registry name or a bare class cannot supply."""
    import inspect

    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is p.empty and p.name not in skip
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def simplex_tolerance(value, size):
    """How far from 1 the sum of a preference ``value`` of ``size`` entries may be: 1e-9 for
    float64 (and lists, ints), ``max(1e-9, 4 * size * eps)`` for a lower-precision float array
    (float32: a vector that sums to 1 in float32 is off by up to a few eps per entry)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or not np.issubdtype(dtype, np.floating):
        return 1e-9
    eps = float(np.finfo(dtype).eps)
    return max(1e-9, 4.0 * max(int(size), 1) * eps) if eps > np.finfo(np.float64).eps else 1e-9


def _tol_text(tol):
    return "1e-9" if tol == 1e-9 else f"{tol:.2g}"


def check_preference(value, name="preference", positive=False):
    """A preference vector: C >= 1 finite entries, >= 0 (> 0 if ``positive``), summing to 1 within
    :func:`simplex_tolerance` (1e-9 in float64; a few eps per entry for a float32/float16 array).
    Returns a read-only float64 copy (not renormalised)."""
    pref = _vector(name, value)
    if not np.all(np.isfinite(pref)):
        raise ValueError(f"{name} must be finite, got {pref}")
    if positive and np.any(pref <= 0.0):
        raise ValueError(f"{name} must be > 0 entrywise, got {pref}")
    if np.any(pref < 0.0):
        raise ValueError(f"{name} must be >= 0 entrywise (a point of the simplex), got {pref}")
    tol = simplex_tolerance(value, pref.size)
    if abs(pref.sum() - 1.0) > tol:
        raise ValueError(f"{name} must sum to 1 (within {_tol_text(tol)}), "
                         f"got sum {pref.sum()!r}")
    pref.setflags(write=False)
    return pref


def _preference(positive=False, optional=False):
    def check(name, value):
        if optional and value is None:
            return None
        return check_preference(value, name, positive)
    return check


def _ideal(name, value):
    if value is None:
        return None
    ideal = _vector(name, value)
    if not np.all(np.isfinite(ideal)):
        raise ValueError(f"{name} must be finite, got {ideal}")
    ideal.setflags(write=False)
    return ideal


def check_jacobian(jacobian):
    """The (C, n) float32/float64 finite Jacobian, made C-contiguous (a copy only if needed)."""
    if not isinstance(jacobian, np.ndarray):
        raise TypeError(f"jacobian must be a NumPy array, got {type(jacobian).__name__}")
    if jacobian.dtype not in _FLOAT_TYPES:
        raise TypeError(f"jacobian must be float32 or float64, got {jacobian.dtype}")
    if jacobian.ndim != 2 or jacobian.shape[0] == 0 or jacobian.shape[1] == 0:
        raise ValueError(f"jacobian must have shape (C, n) with C, n >= 1, got {jacobian.shape}")
    jac = np.ascontiguousarray(jacobian)
    if not _core.all_finite(jac):
        raise ValueError("jacobian holds NaN or Inf")
    return jac


def check_losses(losses, n_obj, read_values, positive=False):
    """(C,) float64 losses; values checked only when the solver reads them."""
    if losses is None:
        if read_values:
            raise TypeError("losses is required by this solver (C real numbers), got None")
        return None
    arr = _vector("losses", losses)
    if arr.size != n_obj:
        raise ValueError(f"losses has {arr.size} entries but jacobian has {n_obj} rows")
    if read_values:
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"losses must be finite for this solver, got {arr}")
        if positive and np.any(arr <= 0.0):
            raise ValueError(f"losses must be > 0 for this solver (it takes ratios/logs of "
                             f"losses), got {arr}")
    return arr


_GRAM_BLOCK = 1 << 14   # columns per float64 block of a float32 Jacobian's Gramian
_GRAM_EXPONENT = 128    # |log2 max|J|| beyond which a float64 Jacobian is rescaled first


def _gramian(jac, with_exponent=False):
    """The Gramian of J in float64, exactly symmetric and positive semi-definite, from BLAS syrk.

    float32: J is widened to float64 in blocks of columns (exact) and the blocks' syrk results
    summed. A float32 Gramian would overflow for rows of norm ~1.8e19 (3e19^2 > 3.4e38) and carries
    errors of eps32 |g_i| |g_j|, which the inner QPs turn into directions that conflict with a
    gradient by far more than the rounding of d once the gradients nearly cancel; a float64 one
    has neither problem (float32 squares cannot overflow or underflow float64).
    float64: when max|J| lies outside 2^-128 .. 2^128 (the float32 range), the Gramian of J 2^-e
    is formed instead, 2^e the power of two of max|J| (scaling by a power of two is exact, so for
    in-range input the result is bit for bit the one of J); this keeps J J^T finite (rows of norm
    1e200 would overflow) and its larger entries normal. The solvers that need absolute units
    (Nash-MTL's alpha, EPO's gamma, PAMOO) take e with ``with_exponent=True``: the true Gramian is
    4^e times the returned one.

    Rounding can leave eigenvalues slightly below 0, which would make the inner QPs non-convex;
    those are clipped to 0 by :func:`_clip_psd` (a change at the rounding level of each row).
    """
    exponent = 0
    if jac.dtype == np.float32:
        cols = jac.shape[1]
        if cols <= _GRAM_BLOCK:
            gram = _core.gramian(jac.astype(np.float64))
        else:
            gram = np.zeros((jac.shape[0], jac.shape[0]))
            for start in range(0, cols, _GRAM_BLOCK):
                block = np.ascontiguousarray(jac[:, start:start + _GRAM_BLOCK], dtype=np.float64)
                gram += _core.gramian(block)
    else:
        top = max(float(jac.max()), -float(jac.min()))   # max|J| without an |J| temporary
        if top > 0.0 and abs(math.frexp(top)[1]) > _GRAM_EXPONENT:
            exponent = math.frexp(top)[1]
            # entries below 2^(e - 1074) flush to 0: they are below the Gramian's resolution anyway
            with np.errstate(under="ignore"):
                gram = _core.gramian(np.ldexp(jac, -exponent))
        else:
            gram = _core.gramian(jac)
    gram = _clip_psd(0.5 * (gram + gram.T))
    return (gram, exponent) if with_exponent else gram


def _clip_psd(gram):
    """The Gramian with the eigenvalues that rounding left below 0 clipped to 0, done on the
    correlation matrix D^-1 G D^-1 (D = sqrt(diag G), zero rows left out and kept exactly zero):
    clipping G itself moves every entry by up to eps * max|G|, which wiped out rows much smaller
    than the largest (rows of norm 1 next to one of 1e30 came back with 10% errors), while on the
    unit-diagonal matrix the change is at the rounding level of each row's own size. (LAPACK's
    eigh also stopped converging on Gramians whose entries ran from 1e-240 to 1e209.)"""
    if gram.shape[0] < 2:
        return gram
    root = np.sqrt(np.diag(gram))
    rows = np.flatnonzero(root > 0.0)
    if rows.size < 2:
        return gram
    scale = root[rows]
    corr = gram[np.ix_(rows, rows)] / np.outer(scale, scale)
    evals, evecs = np.linalg.eigh(corr)
    if evals[0] >= 0.0:
        return gram
    corr = (evecs * np.maximum(evals, 0.0)) @ evecs.T
    corr = 0.5 * (corr + corr.T)
    clipped = np.zeros_like(gram)
    clipped[np.ix_(rows, rows)] = corr * np.outer(scale, scale)
    return clipped


def _direction(jac, lam):
    """d = lam @ J in J's dtype. float64: one BLAS gemv. float32: accumulated in float64 (J widened
    in blocks of columns, lam not rounded) and rounded once, so d is within half an ulp of the
    exact lam @ J. A float32 gemv errs by eps32 * sum_i |lam_i| |g_i|, which is large next to
    |d| when the combination nearly cancels: UPGrad's and MGDA's directions then conflicted with
    a gradient (cosine -1e-3 for |d| ~ 1e-5 max|g_i|) although lam was exact."""
    if not _core.all_finite(lam):  # the method itself failed on this input (DWA's loss ratios)
        raise ValueError(f"the solver's weights lambda are not finite ({lam.tolist()}): its "
                         "method breaks down on this jacobian and these losses")
    with np.errstate(over="ignore", invalid="ignore"):
        out = _raw_direction(jac, lam)
        if not _core.all_finite(out) and jac.dtype == np.float64:
            # the partial sums of a gemv can overflow although d itself does not (rows of
            # +-1e308 that cancel): redo it on J 2^-e (exact, e the power of two of max|J|)
            top = max(float(jac.max()), -float(jac.min()))
            exponent = math.frexp(top)[1]
            with np.errstate(under="ignore"):
                out = np.ldexp(_raw_direction(np.ldexp(jac, -exponent), lam), exponent)
    # lam may be large (IMTL-G's affine weights) and the rows large: the exact d can lie beyond
    # the dtype's range (rows M, -M, M of float32 max M with lam 1, -1, 1 give d = 3M). No finite
    # d of that dtype is the combination, so the jacobian is refused rather than d returned inf
    if not _core.all_finite(out):
        raise ValueError(f"jacobian is too large for this solver: the direction lam @ jacobian "
                         f"overflows {jac.dtype} (max |lam_i| = {float(np.max(np.abs(lam))):.3g})")
    return out


def _raw_direction(jac, lam):
    if jac.dtype == np.float64:
        return jac.T @ lam
    cols = jac.shape[1]
    if cols <= _GRAM_BLOCK:
        return (lam @ jac.astype(np.float64)).astype(jac.dtype)
    out = np.empty(cols, dtype=jac.dtype)
    for start in range(0, cols, _GRAM_BLOCK):
        out[start:start + _GRAM_BLOCK] = lam @ jac[:, start:start + _GRAM_BLOCK].astype(np.float64)
    return out


def _ldexp(value, exponent):
    """value * 2^exponent as a Python float, inf (with value's sign) where it overflows, with no
    warning (math.ldexp raises OverflowError, NumPy warns)."""
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


def _sd_scalar(sd, key, kind):
    if key not in sd:
        raise ValueError(f"state_dict lacks {key!r}")
    value = sd[key]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if kind is int and isinstance(value, (numbers.Integral,)) and not isinstance(value, bool):
        return int(value)
    if kind is str and isinstance(value, str):
        return value
    raise TypeError(f"state_dict[{key!r}] must be {kind.__name__}, got {type(value).__name__}")


def _sd_array(sd, key, shape_ok, what):
    if key not in sd:
        raise ValueError(f"state_dict lacks {key!r}")
    arr = np.array(sd[key], dtype=np.float64)
    if not shape_ok(arr.shape):
        raise ValueError(f"state_dict[{key!r}] has shape {arr.shape}, expected {what}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"state_dict[{key!r}] must be finite")
    return arr


# ----------------------------------------------------------------------------- base class
class Solver:
    """Base class: ``solve(jacobian, losses) -> (lam, d)``, ``reset``, ``state_dict``,
    ``load_state_dict``; ``scale`` and ``info`` describe the last solve (see the module doc)."""

    name = "solver"
    uses_losses = False      # whether solve() reads the loss values
    positive_losses = False  # whether those values must be > 0

    def __init__(self):
        self.scale = 1.0
        self.info = {}

    def solve(self, jacobian, losses=None):
        """Return (lam (C,) float64, d = lam @ jacobian (n,) in the jacobian's dtype)."""
        jac = check_jacobian(jacobian)
        loss = check_losses(losses, jac.shape[0], self.uses_losses, self.positive_losses)
        # the direction is checked only after _solve has updated the history (warm starts, loss
        # records, random streams); a refusal there must leave the solver as it was, so the
        # attribute bindings and the state (whose arrays _solve may update in place) are kept
        bindings, state = dict(self.__dict__), self._get_state()
        lam, scale, info = self._solve(jac, loss)
        lam = np.ascontiguousarray(lam, dtype=np.float64)
        try:
            direction = _direction(jac, self._direction_weights(lam, scale))
        except ValueError:
            self.__dict__.clear()
            self.__dict__.update(bindings)
            self._set_state(state)
            raise
        self.scale = float(scale)
        self.info = info
        return lam, direction

    def _direction_weights(self, lam, scale):
        """The weights d is formed from: lam (a solver returning d in natural units overrides it)."""
        return lam

    def _solve(self, jac, losses):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_rows(self, jac, pref):
        if jac.shape[0] != pref.size:
            raise ValueError(f"jacobian has {jac.shape[0]} rows but preference has "
                             f"{pref.size} entries")

    def reset(self):
        """Forget history (loss history, warm starts) and restart random streams."""
        self.scale = 1.0
        self.info = {}

    def state_dict(self):
        """A flat dict of plain values and arrays (copies), storable with ``np.savez``."""
        sd = {"solver": type(self).__name__, "format": _STATE_FORMAT}
        sd.update(self._get_state())
        return sd

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` (a dict or the mapping ``np.load`` returns); everything
        is checked before anything changes."""
        sd = dict(state_dict)
        kind = _sd_scalar(sd, "solver", str)
        if kind != type(self).__name__:
            raise ValueError(f"state_dict['solver'] is {kind!r}, this solver is "
                             f"{type(self).__name__}")
        if _sd_scalar(sd, "format", int) != _STATE_FORMAT:
            raise ValueError(f"state_dict['format'] must be {_STATE_FORMAT}")
        self._set_state(sd)

    def _get_state(self):
        return {}

    def _set_state(self, sd):
        pass

    def __repr__(self):
        return f"{type(self).__name__}()"


class _RngMixin:
    """A NumPy PCG64 stream: seeded at construction and by reset(); saved in state_dict as
    decimal strings (the 128-bit state does not fit a NumPy integer)."""

    def _new_rng(self):
        self._rng = np.random.Generator(np.random.PCG64(self.seed))

    def _rng_state(self):
        st = self._rng.bit_generator.state
        return {"rng.state": str(st["state"]["state"]), "rng.inc": str(st["state"]["inc"]),
                "rng.has_uint32": int(st["has_uint32"]), "rng.uinteger": int(st["uinteger"])}

    def _set_rng_state(self, sd):
        try:
            state = int(_sd_scalar(sd, "rng.state", str))
            inc = int(_sd_scalar(sd, "rng.inc", str))
        except ValueError as exc:
            if "lacks" in str(exc):
                raise
            raise ValueError("state_dict['rng.state'] and ['rng.inc'] must be decimal "
                             "integers") from None
        has = _sd_scalar(sd, "rng.has_uint32", int)
        uint = _sd_scalar(sd, "rng.uinteger", int)
        bitgen = np.random.PCG64()
        bitgen.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                        "has_uint32": has, "uinteger": uint}
        return np.random.Generator(bitgen)


# ----------------------------------------------------------------------------- weighting methods
class LinearScalarization(Solver):
    """Fixed preference: lam = preference, d = sum_i pref_i g_i (gradient of pref . f).

    Losses are not read. scale = 1. C must equal len(preference).
    """

    name = "linear"
    preference = Hyper(_preference())

    def __init__(self, preference):
        super().__init__()
        self.preference = preference

    def _solve(self, jac, losses):
        self._check_rows(jac, self.preference)
        return self.preference.copy(), 1.0, {}

    def __repr__(self):
        return f"LinearScalarization(preference={self.preference.tolist()})"


class Tchebycheff(Solver):
    """Weighted Tchebycheff scalarisation  max_i pref_i (f_i - z_i)  (z: ``ideal``, default 0).

    Its (sub)gradient is pref_k g_k for the maximising index k; exact ties (equal values) split
    the subgradient equally among the tied indices (the symmetric element of the subdifferential,
    which keeps the solver permutation invariant). With e the tie indicator normalised to sum 1,
    the effective weights are w = pref * e; lam = w / sum(w), scale = sum(w) (= pref_k without a
    tie). If every maximiser has pref_k = 0 the scalarised gradient is 0: lam = e, scale = 0.

    Losses are read and must be finite. ``ideal``: None (zeros) or C finite numbers.
    """

    name = "tchebycheff"
    uses_losses = True
    preference = Hyper(_preference())
    ideal = Hyper(_ideal)

    def __init__(self, preference, ideal=None):
        super().__init__()
        self.preference = preference
        self.ideal = ideal
        self._check_ideal(self.preference.size)

    def _check_ideal(self, k):
        if self.ideal is not None and self.ideal.size != k:
            raise ValueError(f"ideal has {self.ideal.size} entries but there are {k} objectives")

    def _solve(self, jac, losses):
        self._check_rows(jac, self.preference)
        self._check_ideal(jac.shape[0])
        shifted = losses if self.ideal is None else losses - self.ideal
        values = self.preference * shifted
        ties = (values == values.max()).astype(np.float64)
        ties /= ties.sum()
        weights = self.preference * ties
        total = float(weights.sum())
        if total > 0.0:
            return weights / total, total, {"argmax": np.flatnonzero(ties).tolist()}
        return ties, 0.0, {"argmax": np.flatnonzero(ties).tolist()}

    def __repr__(self):
        ideal = None if self.ideal is None else self.ideal.tolist()
        return f"Tchebycheff(preference={self.preference.tolist()}, ideal={ideal})"


class RLW(_RngMixin, Solver):
    """Random loss weighting (Lin et al., 2022): fresh random weights on the simplex every call.

    ``distribution="dirichlet"`` (default): lam ~ Dirichlet(alpha, ..., alpha); alpha = 1 is the
    uniform distribution on the simplex. ``distribution="softmax-normal"``: lam = softmax(z),
    z ~ N(0, I) (the RLW paper's and torchjd's ``Random`` sampler). Losses are not read;
    scale = 1. The stream is NumPy's PCG64 seeded with ``seed`` (None: fresh entropy); reset()
    reseeds, state_dict() saves the stream.
    """

    name = "rlw"
    seed = Hyper(_seed)
    alpha = Hyper(_positive)
    distribution = Hyper(_one_of("dirichlet", "softmax-normal"))

    def __init__(self, seed=0, alpha=1.0, distribution="dirichlet"):
        super().__init__()
        self.seed = seed
        self.alpha = alpha
        self.distribution = distribution
        self._new_rng()

    def _solve(self, jac, losses):
        k = jac.shape[0]
        if self.distribution == "dirichlet":
            lam = self._rng.dirichlet(np.full(k, self.alpha))
        else:
            z = self._rng.standard_normal(k)
            lam = np.exp(z - z.max())
            lam /= lam.sum()
        return lam, 1.0, {}

    def reset(self):
        super().reset()
        self._new_rng()

    def _get_state(self):
        return self._rng_state()

    def _set_state(self, sd):
        self._rng = self._set_rng_state(sd)

    def __repr__(self):
        return (f"RLW(seed={self.seed}, alpha={self.alpha}, "
                f"distribution={self.distribution!r})")


class DWA(Solver):
    """Dynamic weight average (Liu, Johns & Davison, CVPR 2019).

    As in the paper, with one call of solve() in the role of one epoch: the weights at call t use
    the descent rates r_i = L_i(t-1) / L_i(t-2) of the losses passed at the two previous calls,
    lam = softmax(r / temperature); the first two calls give uniform weights (the paper's
    w_i(1) = w_i(2) = 1). The paper's weights are C * lam (they sum to C), so scale = C.
    (Averaging the losses over an epoch, as the paper does, is the caller's choice.)

    Losses are read and must be finite and > 0. The history is the state: reset() forgets it,
    state_dict() saves it; a call with a different C than the history raises ValueError.
    """

    name = "dwa"
    uses_losses = True
    positive_losses = True
    temperature = Hyper(_positive)

    def __init__(self, temperature=2.0):
        super().__init__()
        self.temperature = temperature
        self._history = np.zeros((0, 0))  # up to the two previous loss vectors, oldest first

    def _solve(self, jac, losses):
        k = jac.shape[0]
        if self._history.shape[0] and self._history.shape[1] != k:
            raise ValueError(f"losses has {k} entries but the loss history has "
                             f"{self._history.shape[1]}; call reset() to change C")
        if self._history.shape[0] == 2:
            rates = self._history[1] / self._history[0]
            z = rates / self.temperature
            lam = np.exp(z - z.max())
            lam /= lam.sum()
            info = {"rates": rates}
        else:
            lam = np.full(k, 1.0 / k)
            info = {"rates": None}
        history = self._history if self._history.shape[0] else np.zeros((0, k))
        self._history = np.vstack([history, losses[None, :]])[-2:]
        return lam, float(k), info

    def reset(self):
        super().reset()
        self._history = np.zeros((0, 0))

    def _get_state(self):
        return {"history": self._history.copy()}

    def _set_state(self, sd):
        hist = _sd_array(sd, "history", lambda s: len(s) == 2 and s[0] <= 2, "(0..2, C)")
        if hist.size and np.any(hist <= 0.0):
            raise ValueError("state_dict['history'] must hold positive losses")
        self._history = hist

    def __repr__(self):
        return f"DWA(temperature={self.temperature})"


# ----------------------------------------------------------------------------- gradient methods
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
    fx, fy = float(x @ gram @ x), float(y @ gram @ y)
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
    method = Hyper(_one_of("frank-wolfe", "active-set"))
    tol = Hyper(_positive)
    max_iter = Hyper(_at_least(1))

    def __init__(self, method="frank-wolfe", tol=1e-13, max_iter=1000):
        super().__init__()
        self.method = method
        self.tol = tol
        self.max_iter = max_iter

    def _solve(self, jac, losses):
        lam, info = _min_norm(_gramian(jac), self.method, self.tol, self.max_iter)
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

    def _solve(self, jac, losses):
        k = jac.shape[0]
        perms = [self._rng.permutation(k) for _ in range(k)]
        w = pcgrad_weights(_gramian(jac), perms)
        total = float(w.sum())
        return w / total, total, {"weights": w}

    def reset(self):
        super().reset()
        self._new_rng()

    def _get_state(self):
        return self._rng_state()

    def _set_state(self, sd):
        self._rng = self._set_rng_state(sd)

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
    g0sq = float(u @ G @ u)
    r = c * math.sqrt(max(g0sq, 0.0))
    if r <= 0.0:
        return u.copy(), {"degenerate": False, "t": 0.0, "iterations": 0, "zero_mean": g0sq <= 0}
    b = G @ u
    big = math.sqrt(float(np.max(np.diag(G))))
    x_min, _ = _min_norm(G)
    lo = math.sqrt(max(float(x_min @ G @ x_min), 0.0))
    hi = big

    def solve_at(t, start):
        w, _ = qp_active_set((r / t) * G, b, simplex=True, x0=start)
        return w, math.sqrt(max(float(w @ G @ w), 0.0))

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
        a0, b0, c0 = float(p @ gff @ p), float(p @ gff @ q), float(q @ gff @ q)
        return [r * tau for tau in _positive_roots(c0 - r * r, 2.0 * b0, a0)]

    zero = zero_tol * big
    noise = 8.0 * np.finfo(np.float64).eps * big * big   # rounding of |g_w|^2 from the Gramian
    t = hi
    w, n = solve_at(t, None)
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
    rescale = Hyper(_one_of(0, 1, 2))

    def __init__(self, c=0.5, rescale=1):
        super().__init__()
        self.c = c
        self.rescale = rescale

    def _solve(self, jac, losses):
        zero_tol = 10.0 * math.sqrt(float(np.finfo(jac.dtype).eps))
        w, info = cagrad_weights(_gramian(jac), self.c, zero_tol)
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
    rtol = Hyper(_optional_nonnegative)

    def __init__(self, rtol=None):
        super().__init__()
        self.rtol = rtol

    def _solve(self, jac, losses):
        gram = _gramian(jac)
        k = gram.shape[0]
        rtol = k * float(np.finfo(jac.dtype).eps) if self.rtol is None else self.rtol
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
    max_norm = Hyper(_max_norm)
    update_weights_every = Hyper(_at_least(1))
    tol = Hyper(_positive)
    max_iter = Hyper(_at_least(1))

    def __init__(self, max_norm=1.0, update_weights_every=1, tol=1e-12, max_iter=500):
        super().__init__()
        self.max_norm = max_norm
        self.update_weights_every = update_weights_every
        self.tol = tol
        self.max_iter = max_iter
        self._alpha = np.zeros(0)
        self._calls = 0

    def _solve(self, jac, losses):
        k = jac.shape[0]
        warm = self._alpha if self._alpha.size == k else None
        # the Gramian of J 2^-e (e = 0 but for extreme float64 input): alpha solves
        # G alpha = 1/alpha, so the true alpha is 2^-e times the one of the scaled Gramian
        gram, exponent = _gramian(jac, with_exponent=True)
        with np.errstate(over="ignore", under="ignore"):
            warm_s = None if warm is None else np.ldexp(warm, exponent)
        if warm_s is not None and not np.all(np.isfinite(warm_s) & (warm_s > 0.0)):
            warm_s = None                      # a start from a wildly different scale: cold
        if warm_s is not None and self._calls % self.update_weights_every != 0:
            alpha_s, info = warm_s, {"degenerate": False, "reused": True, "iterations": 0}
        else:
            stationary = 10.0 * math.sqrt(float(np.finfo(jac.dtype).eps))
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
            raise ValueError("jacobian's rows are too far from 1 in norm for Nash-MTL's weights "
                             "alpha (~ 1/|g_i|) to be representable in float64")
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
        gram = _core.gramian(np.ascontiguousarray(np.ldexp(jac.astype(np.float64),
                                                           -exps[:, None])))
        gram = _clip_psd(0.5 * (gram + gram.T))
        diag = np.diag(gram).copy()
    zero = diag <= 0.0
    root = np.sqrt(np.where(zero, 1.0, diag))
    inv = np.where(zero, 0.0, 1.0 / root)
    corr = gram * np.outer(inv, inv)
    np.fill_diagonal(corr, np.where(zero, 0.0, 1.0))
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
        k = jac.shape[0]
        if self.preference is not None:
            self._check_rows(jac, self.preference)
            pref = self.preference
        else:
            pref = np.full(k, 1.0 / k)
        corr, root, exps, zero = _correlation(_gramian(jac), jac)
        w, shift, iterations = _upgrad_scaled_weights(corr, root, exps, zero, pref)
        total = _ldexp(float(w.sum()), shift)
        if not math.isfinite(total):
            raise ValueError("jacobian's row norms differ by more than the float64 range allows "
                             "for UPGrad's natural weights (~ |g_i| / |g_j|)")
        return w / float(w.sum()), total, {"iterations": iterations,
                                           "weights": _ldexp_array(w, shift)}

    def __repr__(self):
        pref = None if self.preference is None else self.preference.tolist()
        return f"UPGrad(preference={pref})"


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

    def _solve(self, jac, losses):
        self._check_rows(jac, self.preference)
        if jac.shape[0] == 1:
            return np.ones(1), 1.0, {"mode": "descent", "mu": 0.0}
        gram, exponent = _gramian(jac, with_exponent=True)
        alpha, info = epo_lp(gram, losses, self.preference, self.eps, self.relax)
        info["gamma"] = _ldexp(info["gamma"], 2 * exponent)   # in the true Gramian's units
        return alpha, 1.0, info

    def __repr__(self):
        return f"EPO(preference={self.preference.tolist()}, eps={self.eps}, relax={self.relax})"


SOLVERS = {cls.name: cls for cls in (LinearScalarization, Tchebycheff, RLW, DWA, MGDA, PCGrad,
                                     CAGrad, IMTLG, NashMTL, UPGrad, EPO)}
"""Solver classes by their ``name`` (:mod:`madam.amoo` adds ``"camoo"`` and ``"pamoo"`` when it is
imported, which ``import madam`` does)."""
