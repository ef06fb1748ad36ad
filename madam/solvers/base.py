"""The Solver contract (solve, weights, reset, state_dict), argument checks, and the numerics
every solver shares: the scaled float64 Gramian (from J, or from a given J J^T), its PSD clip, the
direction d = lam @ J."""
import math

import numpy as np

from .. import _core
from .. import _state
from .._qp import positive_definite
from .._validate import FLOAT_TYPES as _FLOAT_TYPES
from .._validate import at_least, optional
from .._validate import float_dtype as _float_dtype
from .._validate import real_vector as _vector

_STATE_FORMAT = 1

#: Every solver class madam ships, by its ``name``, filled as each is defined
#: (:meth:`Solver.__init_subclass__`); exported as ``madam.solvers.SOLVERS``.
SOLVERS = {}


# ----------------------------------------------------------------------------- validation
# (the rules themselves are madam._validate's: at_least, one_of, optional, nonnegative, ...)
#: A random stream's seed: an int >= 0, or None for fresh entropy from the OS.
_seed = optional(at_least(0))


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


_NONFINITE_JACOBIAN = "jacobian holds NaN or Inf"


def check_jacobian(jacobian, scan=True):
    """The (C, n) float32/float64 finite Jacobian, made C-contiguous (a copy only if needed).
    ``scan=False`` leaves the NaN/Inf check to the caller's own pass over J."""
    if not isinstance(jacobian, np.ndarray):
        raise TypeError(f"jacobian must be a NumPy array, got {type(jacobian).__name__}")
    if jacobian.dtype not in _FLOAT_TYPES:
        raise TypeError(f"jacobian must be float32 or float64, got {jacobian.dtype}")
    if jacobian.ndim != 2 or jacobian.shape[0] == 0 or jacobian.shape[1] == 0:
        raise ValueError(f"jacobian must have shape (C, n) with C, n >= 1, got {jacobian.shape}")
    jac = np.ascontiguousarray(jacobian)
    if scan and not _core.all_finite(jac):
        raise ValueError(_NONFINITE_JACOBIAN)
    return jac


def check_losses(losses, n_obj, read_values, positive=False, against="jacobian"):
    """(C,) float64 losses; values checked only when the solver reads them. ``against`` names
    the array C comes from in the length message (the jacobian, or the gramian of weights())."""
    if losses is None:
        if read_values:
            raise TypeError("losses is required by this solver (C real numbers), got None")
        return None
    arr = _vector("losses", losses)
    if arr.size != n_obj:
        raise ValueError(f"losses has {arr.size} entries but {against} has {n_obj} rows")
    if read_values:
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"losses must be finite for this solver, got {arr}")
        if positive and np.any(arr <= 0.0):
            raise ValueError(f"losses must be > 0 for this solver (it takes ratios/logs of "
                             f"losses), got {arr}")
    return arr


_GRAM_EXPONENT = 128    # |log2 max|J|| beyond which a float64 Jacobian is rescaled first


def _gramian(jac, with_exponent=False, refuse_nonfinite=False):
    """The Gramian of J in float64, exactly symmetric and positive semi-definite, from one read
    of J (``cm_gram_scan``: float64 accumulation in a summation order fixed by the shape, so the
    same bits for any thread count; MAdam forms its Gramian with the same call, so its lambda is
    the one ``solve`` gives).

    float32: each product of two floats is formed exactly in float64. A float32 Gramian would
    overflow for rows of norm ~1.8e19 (3e19^2 > 3.4e38) and carries errors of eps32 |g_i| |g_j|,
    which the inner QPs turn into directions that conflict with a gradient by far more than the
    rounding of d once the gradients nearly cancel; a float64 one has neither problem.
    float64: when max|J| lies outside 2^-128 .. 2^128 (the float32 range), the Gramian of J 2^-e
    is formed instead, 2^e the power of two of max|J| (scaling by a power of two is exact, so for
    in-range input the result is bit for bit the one of J); this keeps J J^T finite (rows of norm
    1e200 would overflow) and its larger entries normal. The solvers that need absolute units
    (Nash-MTL's alpha, EPO's gamma, PAMOO) take e with ``with_exponent=True``: the true Gramian is
    4^e times the returned one. ``refuse_nonfinite=True``: ValueError when the pass finds a NaN or
    Inf in J (solve() then skips its own scan).

    Rounding can leave eigenvalues slightly below 0, which would make the inner QPs non-convex;
    those are clipped to 0 by :func:`_clip_psd` (a change at the rounding level of each row).
    """
    exponent = 0
    gram, finite, top = _core.gram_scan(jac, jac.shape[0])
    if refuse_nonfinite and not finite:
        raise ValueError(_NONFINITE_JACOBIAN)
    if jac.dtype == np.float64 and top > 0.0 and abs(math.frexp(top)[1]) > _GRAM_EXPONENT:
        exponent = math.frexp(top)[1]
        # entries below 2^(e - 1074) flush to 0: they are below the Gramian's resolution anyway
        with np.errstate(under="ignore"):
            gram, _, _ = _core.gram_scan(np.ldexp(jac, -exponent), jac.shape[0])
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
    if np.all(np.isfinite(corr)) and positive_definite(corr):
        return gram   # the common case, without LAPACK (see madam._qp.positive_definite)
    evals, evecs = np.linalg.eigh(corr)
    if evals[0] >= 0.0:
        return gram
    corr = (evecs * np.maximum(evals, 0.0)) @ evecs.T
    corr = 0.5 * (corr + corr.T)
    clipped = np.zeros_like(gram)
    clipped[np.ix_(rows, rows)] = corr * np.outer(scale, scale)
    return clipped


# The binary exponents of max_i G_ii for which weights() keeps the given Gramian unscaled: every
# Gramian solve() forms without scaling (_gramian's exponent 0: max|J| in 2^-129 .. 2^128 for
# float64, any float32 J, down to its subnormal 2^-149) has max_i G_ii in 2^-298 .. n 2^256 with
# n < 2^64, so this window gives weights(G) the exponent 0 there and with it solve()'s bits.
_GRAM_DIAG_WINDOW = (-300, 320)


def check_gramian(gramian, dtype=None):
    """The Gramian G = J J^T given to :meth:`Solver.weights`, checked and made ready for the
    solvers' weights: returns (gram, exponent, precision), gram the float64 Gramian scaled by
    4^-exponent (exact: a power of two), its rounding-level negative eigenvalues clipped, so
    that G = 4^exponent gram exactly as for :func:`_gramian` with ``with_exponent=True``;
    precision the dtype of the Jacobian G came from (``dtype``, default G's own dtype), which
    sets the methods' rounding thresholds. O(C^3): one C x C eigendecomposition.

    A square float32/float64 finite array, symmetric and positive semi-definite within
    sqrt(eps) of its dtype relative to its rows' norms sqrt(G_ii) (what rounding leaves of a
    J J^T; anything further is not a Gramian and is refused, ValueError naming ``gramian``)."""
    if not isinstance(gramian, np.ndarray):
        raise TypeError(f"gramian must be a NumPy array, got {type(gramian).__name__}")
    if gramian.dtype not in _FLOAT_TYPES:
        raise TypeError(f"gramian must be float32 or float64, got {gramian.dtype}")
    precision = gramian.dtype if dtype is None else _float_dtype(dtype, "dtype")
    if gramian.ndim != 2 or gramian.shape[0] != gramian.shape[1] or gramian.shape[0] == 0:
        raise ValueError(f"gramian must be a square (C, C) array with C >= 1 (J J^T), got "
                         f"shape {gramian.shape}")
    if not np.all(np.isfinite(gramian)):
        raise ValueError("gramian holds NaN or Inf")
    k = gramian.shape[0]
    gram = np.array(gramian, dtype=np.float64)           # a copy: the caller's array is not touched
    diag = np.diag(gram).copy()
    if np.any(diag < 0.0):
        raise ValueError(f"gramian's diagonal (the squared gradient norms) must be >= 0, got "
                         f"{diag.tolist()}")
    # the scaling _gramian does on J, done on G: a power of two 4^-e brings max_i G_ii near 1
    # when it lies outside the window (so the solvers' products of G stay finite and normal),
    # and e = 0 inside it (solve()'s Gramian of the same J: the same bits)
    exponent = 0
    top = float(diag.max())
    if top > 0.0:
        binary = math.frexp(top)[1]
        if not _GRAM_DIAG_WINDOW[0] <= binary <= _GRAM_DIAG_WINDOW[1]:
            exponent = binary // 2
            with np.errstate(under="ignore"):
                gram = np.ldexp(gram, -2 * exponent)
                diag = np.ldexp(diag, -2 * exponent)
    # the checks run on the rows scaled to unit norm, by powers of two first (exact, so that
    # rows far smaller than the largest neither underflow nor divide by 0 here) and then by
    # their mantissas: entry (i, j) is then G_ij / (|g_i| |g_j|), compared with a tolerance
    # relative to each pair's own size, as rounding of J J^T errs by eps |g_i| |g_j|
    rows = np.flatnonzero(diag > 0.0)
    zero = np.ones(k, dtype=bool)
    zero[rows] = False
    tol = math.sqrt(float(np.finfo(gramian.dtype).eps))
    if np.any(gram[zero] != 0.0) or np.any(gram[:, zero] != 0.0):
        # G_ii = |g_i|^2 = 0 makes g_i = 0 and its whole row and column 0 (Cauchy-Schwarz)
        raise ValueError("gramian is not a Gramian: a row with a zero diagonal entry (a zero "
                         "gradient) has nonzero off-diagonal entries")
    sub = gram[np.ix_(rows, rows)]
    mant, powers = np.frexp(np.sqrt(diag[rows]))
    with np.errstate(under="ignore", over="ignore"):
        corr = np.ldexp(sub, -(powers[:, None] + powers[None, :])) / np.outer(mant, mant)
    if not np.all(np.isfinite(corr)):  # pragma: no cover - the power-of-two scaling bounds it
        raise ValueError("gramian's entries are out of proportion to its diagonal")
    if np.any(np.abs(corr - corr.T) > tol):
        raise ValueError(f"gramian must be symmetric (J J^T), within rounding (sqrt(eps) = "
                         f"{tol:.2g} of |g_i| |g_j|); max |G_ij - G_ji| / (|g_i| |g_j|) = "
                         f"{float(np.max(np.abs(corr - corr.T))):.3g}")
    low = float(np.linalg.eigvalsh(0.5 * (corr + corr.T))[0]) if rows.size > 1 else 1.0
    if low < -k * tol:
        raise ValueError(f"gramian must be positive semi-definite (J J^T), within rounding: "
                         f"its correlation matrix has the eigenvalue {low:.3g}")
    # exactly symmetric, as _gramian makes it (a no-op on an exactly symmetric G, e.g. the
    # Gramian solve() forms); the halving is after the scaling above, so G + G^T cannot overflow
    gram = 0.5 * (gram + gram.T)
    # Eigenvalues that rounding left below 0 are clipped to 0 on the correlation matrix, as
    # _clip_psd does, but only beyond the rounding of this check itself: the Gramian _gramian
    # returned is already clipped, and clipping it again is not a no-op (its recomputed
    # eigenvalues scatter around 0 at about k eps), which would change solve()'s bits; the
    # solvers see such matrices from solve() too. The clip works on the correlation computed
    # above (rows scaled by powers of two), where _clip_psd's G / (|g_i| |g_j|) could overflow
    if low < -64.0 * k * float(np.finfo(gramian.dtype).eps):
        corr = 0.5 * (corr + corr.T)
        evals, evecs = np.linalg.eigh(corr)
        corr = (evecs * np.maximum(evals, 0.0)) @ evecs.T
        corr = 0.5 * (corr + corr.T)
        with np.errstate(under="ignore"):
            gram = np.zeros_like(gram)
            gram[np.ix_(rows, rows)] = np.ldexp(corr * np.outer(mant, mant),
                                                powers[:, None] + powers[None, :])
    return gram, exponent, precision


def _direction(jac, lam):
    """d = lam @ J in J's dtype, by ``cm_combine`` (madam._core.combine): each d_j summed over the
    rows in order in float64 and rounded once, the same bits for any thread count. float32 J:
    the products are exact (J widened, lam not rounded), so d is within half an ulp of the exact
    lam @ J plus float64 rounding. A float32 gemv errs by eps32 * sum_i |lam_i| |g_i|, which is
    large next to |d| when the combination nearly cancels: UPGrad's and MGDA's directions then
    conflicted with a gradient (cosine -1e-3 for |d| ~ 1e-5 max|g_i|) although lam was exact."""
    if not _core.all_finite(lam):  # the method itself failed on this input (DWA's loss ratios)
        raise ValueError(f"the solver's weights lambda are not finite ({lam.tolist()}): its "
                         "method breaks down on this jacobian and these losses")
    jac = np.ascontiguousarray(jac)  # a reshaped view (madam.multi) may not be
    out = _core.combine(jac, lam)
    finite = _core.all_finite(out)
    if not finite and jac.dtype == np.float64:
        # the partial sums can overflow although d itself does not (rows of +-1e308 that
        # cancel): redo it on J 2^-e (exact, e the power of two of max|J|)
        top = max(float(jac.max()), -float(jac.min()))
        exponent = math.frexp(top)[1]
        with np.errstate(over="ignore", under="ignore"):
            out = np.ldexp(_core.combine(np.ldexp(jac, -exponent), lam), exponent)
        finite = _core.all_finite(out)
    # lam may be large (IMTL-G's affine weights) and the rows large: the exact d can lie beyond
    # the dtype's range (rows M, -M, M of float32 max M with lam 1, -1, 1 give d = 3M). No finite
    # d of that dtype is the combination, so the jacobian is refused rather than d returned inf
    if not finite:
        raise ValueError(f"jacobian is too large for this solver: the direction lam @ jacobian "
                         f"overflows {jac.dtype} (max |lam_i| = {float(np.max(np.abs(lam))):.3g})")
    return out


def _ldexp(value, exponent):
    """value * 2^exponent as a Python float, inf (with value's sign) where it overflows, with no
    warning (math.ldexp raises OverflowError, NumPy warns)."""
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


_sd_scalar, _sd_array = _state.scalar, _state.array


# ----------------------------------------------------------------------------- base class
class Solver:
    """Base class: ``solve(jacobian, losses) -> (lam, d)``, ``weights(gramian, losses) -> lam``,
    ``reset``, ``state_dict``, ``load_state_dict``; ``scale`` and ``info`` describe the last
    solve or weights call (see the module doc).

    A solver whose method reads J only through its Gramian implements
    ``_weights(k, gram, exponent, precision, losses, against)`` (gram: the float64 Gramian scaled by
    4^-exponent, clipped PSD; precision: the Jacobian's dtype; gram is None when the class sets
    ``uses_gramian = False``, i.e. the method reads only C and the losses; against: "jacobian"
    or "gramian", for messages), and both ``solve``
    and ``weights`` call it; one that needs J itself overrides ``_solve(jac, losses)`` and has no
    ``weights``.
    """

    name = "solver"
    uses_losses = False      # whether solve() reads the loss values
    positive_losses = False  # whether those values must be > 0
    uses_gramian = True      # whether _weights reads the Gramian (solve() then forms it)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and cls.__module__.startswith("madam."):
            SOLVERS[cls.name] = cls  # the registry (user subclasses stay out)

    def __init__(self):
        self.scale = 1.0
        self.info = {}

    def solve(self, jacobian, losses=None):
        """Return (lam (C,) float64, d = lam @ jacobian (n,) in the jacobian's dtype)."""
        # on the default path (the Gramian, then _weights) the NaN scan of J is the one the
        # Gramian's pass does (cm_gram_scan), still before the losses are read: one read of J
        # instead of two (about 1.5 ms of 25 at C = 128, n = 1e5 float32)
        gram_first = self.uses_gramian and type(self)._solve is Solver._solve
        jac = check_jacobian(jacobian, scan=not gram_first)
        if gram_first:
            gram, exponent = _gramian(jac, with_exponent=True, refuse_nonfinite=True)
        loss = check_losses(losses, jac.shape[0], self.uses_losses, self.positive_losses)
        # the direction is checked only after _solve has updated the history (warm starts, loss
        # records, random streams); a refusal there must leave the solver as it was, so the
        # attribute bindings and the state (whose arrays _solve may update in place) are kept
        saved = self._checkpoint()
        if gram_first:
            lam, scale, info = self._weights(jac.shape[0], gram, exponent, jac.dtype, loss)
        else:
            lam, scale, info = self._solve(jac, loss)
        lam = np.ascontiguousarray(lam, dtype=np.float64)
        try:
            direction = _direction(jac, self._direction_weights(lam, scale))
        except ValueError:
            self._restore(saved)
            raise
        self.scale = float(scale)
        self.info = info
        return lam, direction

    def weights(self, gramian, losses=None, *, dtype=None):
        """Return lam (C,) float64 from the C x C Gramian G = J J^T and the losses alone: the
        lam that ``solve(J, losses)`` returns, setting ``scale`` and ``info`` and advancing the
        state (warm starts, loss history, random streams) as it does, without J or d.

        The cost is O(C^3) (a C x C eigendecomposition checks G, then the method's own C x C
        work), independent of the number of parameters n: no n-sized array is read or formed.

        ``gramian``: a square float32/float64 finite array, symmetric and positive semi-definite
        within rounding (TypeError/ValueError naming ``gramian`` otherwise), in the Jacobian's
        own units (not scaled): extreme magnitudes are brought near 1 by an exact power of two
        here, as ``solve`` does to J. ``dtype``: the dtype of the Jacobian G came from (float32
        or float64; default G's own dtype); it sets the methods' rounding thresholds (CAGrad's and
        Nash-MTL's stationarity tolerance, IMTL-G's default rtol), so ``weights(G, f,
        dtype=np.float32)`` with G the float64 Gramian of a float32 J matches ``solve(J, f)``.
        On the Gramian ``solve`` forms (``madam.solvers._gramian(J)``; where that scaled J by
        2^-e, its result times 4^e) the weights are those of ``solve(J)`` bit for bit; on
        another J J^T (another summation order) they agree to the rounding of G. A refused call
        (bad input, or the method failing on it) leaves the solver as it was. Solvers that need
        more than G (CAMOO: Hessian-vector products) raise TypeError.
        """
        gram, exponent, precision = check_gramian(gramian, dtype)
        return self._weights_committed(gram, exponent, precision, losses, "gramian")

    def weights_of_scan(self, gram, losses, dtype):
        """lam from the float64 Gramian of a Jacobian of ``dtype`` as
        :func:`madam._core.gram_scan` forms it (MAdam's NaN-scan pass; unscaled, so only for
        max|J| within 2^+-128 in float64): the path ``solve`` takes after forming that same
        Gramian, bit for bit, without the checks ``weights`` applies to a caller's matrix
        (which a Gramian with underflowed squared norms can fail). Messages name the jacobian."""
        gram = _clip_psd(0.5 * (gram + gram.T))
        return self._weights_committed(gram, 0, np.dtype(dtype), losses, "jacobian")

    def _weights_committed(self, gram, exponent, precision, losses, against):
        """weights() after its Gramian is known to be one: the losses checked, ``_weights``
        run, lam checked finite, ``scale`` and ``info`` set; any refusal puts the state back."""
        k = gram.shape[0]
        loss = check_losses(losses, k, self.uses_losses, self.positive_losses, against)
        # _weights may update the state in place before it fails (or its weights turn out not
        # finite), so everything is kept as solve() keeps it and put back on any refusal
        saved = self._checkpoint()
        try:
            lam, scale, info = self._weights(k, gram if self.uses_gramian else None, exponent,
                                             precision, loss, against=against)
            lam = np.ascontiguousarray(lam, dtype=np.float64)
            if not _core.all_finite(lam):   # solve() refuses these in _direction
                raise ValueError(f"the solver's weights lambda are not finite ({lam.tolist()}): "
                                 f"its method breaks down on this {against} and these losses")
        except Exception:
            self._restore(saved)
            raise
        self.scale = float(scale)
        self.info = info
        return lam

    def _checkpoint(self):
        """What a refused call puts back: the attribute bindings and the state (whose arrays a
        solve may update in place). Used by solve/weights and by the optimisers that solve
        before their own step can still fail (MAdam, Scalarized)."""
        return dict(self.__dict__), self._get_state()

    def _restore(self, saved):
        bindings, state = saved
        self.__dict__.clear()
        self.__dict__.update(bindings)
        self._set_state(state)

    def reads_gramian_only(self):
        """Whether this solver's method reads J only through its Gramian, so that
        ``weights(J J^T, losses)`` gives the lambda ``solve(J, losses)`` gives (to the rounding of
        the Gramian): True for every solver that implements ``_weights``. MAdam then forms the
        Gramian itself, in the pass that scans J for NaN, and never hands the solver J.

        False as well for a subclass that overrides ``_solve`` below the class defining
        ``_weights`` (its solve() no longer goes through the weights weights() computes)."""
        mro = type(self).__mro__
        solve_at = next(c for c in mro if "_solve" in c.__dict__)
        weights_at = next(c for c in mro if "_weights" in c.__dict__)
        return weights_at is not Solver and issubclass(weights_at, solve_at)

    def _direction_weights(self, lam, scale):
        """The weights d is formed from: lam (a solver returning d in natural units overrides it)."""
        return lam

    def _solve(self, jac, losses):
        """(lam, scale, info) from J: its Gramian, formed only when the method reads it, given to
        :meth:`_weights` (the path weights() shares)."""
        if self.uses_gramian:
            gram, exponent = _gramian(jac, with_exponent=True)
        else:
            gram, exponent = None, 0
        return self._weights(jac.shape[0], gram, exponent, jac.dtype, losses)

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        """(lam, scale, info) from the scaled Gramian (true G = 4^exponent gram), the dtype of the
        Jacobian and the losses; ``against`` names the input in messages about C. A solver that
        needs J itself overrides _solve instead."""
        raise TypeError(f"{type(self).__name__} computes its weights from the jacobian itself "
                        "(it overrides _solve), not from the Gramian alone: it has no weights(); "
                        "use solve(jacobian, losses)")

    def _check_rows(self, k, pref, against="jacobian"):
        if k != pref.size:
            raise ValueError(f"{against} has {k} rows but preference has {pref.size} entries")

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
        _state.check_header(sd, "solver", type(self).__name__, "solver", _STATE_FORMAT)
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

    def reset(self):  # restart the stream from the seed
        super().reset()
        self._new_rng()

    def _get_state(self):
        return self._rng_state()

    def _set_state(self, sd):
        self._rng = self._set_rng_state(sd)

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
