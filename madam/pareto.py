"""Pareto metrics: hypervolume, hypervolume contributions, nondominance, nondominated sorting,
IGD / IGD+, spacing and spread, computed by C kernels (``cmadam/src/pareto*.c``).

Conventions
-----------
* Every objective is **minimised**. A point set is an array of shape ``(N, M)``: N points, M
  objectives. ``p`` *dominates* ``q`` when ``p_k <= q_k`` for every k and ``p != q``.
* Inputs may be any real array-like (lists, float32, float64, integers); they are converted to
  float64 first (float32 exactly), and the kernels compute in float64. Every coordinate must be
  finite.
* Bad input raises ``TypeError`` (not a real numeric array) or ``ValueError`` (shape, size,
  NaN/Inf), and the message names the argument.
* Semantics follow moocore where moocore has the function (``hypervolume``, ``hv_contributions``,
  ``is_nondominated`` with ``keep_weakly``, ``pareto_rank``, ``igd``, ``igd_plus``), and the
  values agree with moocore to rounding (see tests/test_pareto.py).
* The C loops use ``madam.set_num_threads``'s thread count where they are parallel; the results
  are bit-identical for any thread count.
"""
import numpy as np

from ._core import check_status, exec_config, ffi, lib
from ._validate import choice, flag

__all__ = ["hypervolume", "hv_contributions", "is_nondominated", "filter_dominated",
           "pareto_rank", "igd", "igd_plus", "spacing", "spread"]

_ALGORITHMS = {"auto": 0, "generic": 1}


# ----------------------------------------------------------------------------- validation
def _as_float64(value, name):
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be a real numeric array, got {type(value).__name__} "
                        f"({exc})") from None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiu" or (
            arr.dtype.kind == "f" and arr.dtype.itemsize > 8):
        raise TypeError(f"{name} must hold real numbers (float64, float32, float16 or "
                        f"integers), got dtype {arr.dtype}")
    return arr


def _finite(arr, name):
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite: it holds NaN or Inf")


def _point_set(value, name, min_rows=0, n_obj=None, like="points"):
    """An (N, M) float64 C-contiguous copy-or-view of ``value``, validated (``n_obj``: the
    number of columns it must have, the same as the array named ``like``)."""
    arr = _as_float64(value, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, M) (one row per point), "
                         f"got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column (objective), got shape "
                         f"{arr.shape}")
    if n_obj is not None and arr.shape[1] != n_obj:
        raise ValueError(f"{name} must have {n_obj} columns like {like}, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} point"
                         f"{'s' if min_rows > 1 else ''} (rows), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    _finite(arr, name)
    return arr


def _ref_point(value, name, n_obj):
    arr = _as_float64(value, name)
    if arr.shape != (n_obj,):
        raise ValueError(f"{name} must have shape ({n_obj},) (one coordinate per objective), "
                         f"got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    _finite(arr, name)
    return arr


def _config(algorithm="auto", keep_weakly=False, ignore_dominated=True):
    choice("algorithm", algorithm, _ALGORITHMS)
    cfg = ffi.new("cm_pareto_config *")
    lib.cm_pareto_config_default(cfg)
    cfg.algorithm = _ALGORITHMS[algorithm]
    cfg.keep_weakly = int(keep_weakly)
    cfg.ignore_dominated = int(ignore_dominated)
    return cfg


def _ptr(arr, ctype="double[]", writable=False):
    return ffi.from_buffer(ctype, arr, require_writable=writable)


# ----------------------------------------------------------------------------- hypervolume
def hypervolume(points, ref, *, algorithm="auto"):
    r"""Hypervolume of ``points`` (N, M) with respect to the reference point ``ref`` (M,).

    .. math::
        \mathrm{HV}(P) = \lambda\Big(\bigcup_{p \in P} [p_1, r_1] \times \dots \times
        [p_M, r_M]\Big)

    (Lebesgue measure, minimisation). Points that do not strictly dominate ``ref``
    (``p_k >= r_k`` for some k) enclose no volume and are ignored, as in moocore; dominated and
    duplicated points add nothing; an empty set (or none below ``ref``) has volume 0.

    Algorithms: M = 1: ``ref - min``; M = 2: sort and sweep; M = 3: a sweep over the third
    objective keeping the 2-D staircase in a 64-ary bitmap search tree, both O(N log N);
    M = 4: HV4D+ (Guerreiro and Fonseca 2018), a sweep over the fourth objective adding each
    point's exclusive 3-D volume over the points before it, each found in O(N), O(N^2) in all;
    M >= 5: WFG (While et al. 2012) with the
    dimension-reducing sort, ending in the 4-D sweep (exponential in M in the worst case; fine
    for M = 5..6 and hundreds of points). ``algorithm="generic"`` uses WFG down to the 2-D
    sweep for every M >= 3 (for cross-checks).
    """
    pts = _point_set(points, "points")
    r = _ref_point(ref, "ref", pts.shape[1])
    cfg = _config(algorithm)
    out = ffi.new("double *")
    if pts.shape[0] == 0:
        return 0.0
    check_status(lib.cm_hypervolume_f64(cfg, exec_config(), pts.shape[0], pts.shape[1],
                                        _ptr(pts), _ptr(r), out), "hypervolume")
    return float(out[0])


def hv_contributions(points, ref, *, ignore_dominated=True, algorithm="auto"):
    r"""Exclusive hypervolume contribution of every point: an array of shape (N,).

    .. math:: c_i = \mathrm{HV}(X) - \mathrm{HV}(X \setminus \{x_i\})

    Points that do not strictly dominate ``ref``, dominated points and every copy of a
    duplicated point get 0 (removing one copy leaves the volume unchanged). With
    ``ignore_dominated=True`` (the default, as moocore) the dominated points are dropped before
    the others' contributions are computed; with ``False`` they count, so a point that is the
    only dominator of another has a smaller contribution (the formula above on the full set).

    Algorithms (``ignore_dominated=True``): M = 2: one sweep; M = 3: one sweep over the third
    objective tracking each staircase point's exclusive region (Emmerich and Fonseca 2011),
    both O(N log N); otherwise, and always for ``ignore_dominated=False``: leave-one-out,
    ``c_i = vol([x_i, ref]) - HV({max(x_j, x_i) : j != i})``, in parallel over i (one
    hypervolume of N - 1 clipped points per nondominated point: O(N^2 log N) in 2-D and 3-D).
    """
    pts = _point_set(points, "points")
    r = _ref_point(ref, "ref", pts.shape[1])
    cfg = _config(algorithm, ignore_dominated=flag("ignore_dominated", ignore_dominated))
    n = pts.shape[0]
    out = np.zeros(n, dtype=np.float64)
    if n == 0:
        return out
    check_status(lib.cm_hv_contributions_f64(cfg, exec_config(), n, pts.shape[1], _ptr(pts),
                                             _ptr(r), _ptr(out, writable=True)),
                 "hv_contributions")
    return out


# ----------------------------------------------------------------------------- dominance
def is_nondominated(points, *, keep_weakly=False, algorithm="auto"):
    """Boolean mask of shape (N,): True where no other point dominates the point.

    Identical points do not dominate each other. With ``keep_weakly=False`` (the default, as
    moocore) only the first copy (lowest index) of a duplicated nondominated point is True;
    with ``keep_weakly=True`` every copy is. A point equal to another in some objectives and
    worse in the rest (weakly dominated) is dominated, hence False either way.

    M = 2: sort and sweep; M = 3: a sweep with the bitmap-tree staircase, both O(N log N);
    M >= 4: lexicographic sort, then each point against the nondominated points before it,
    O(M N |front|), in parallel.
    """
    pts = _point_set(points, "points")
    cfg = _config(algorithm, keep_weakly=flag("keep_weakly", keep_weakly))
    n = pts.shape[0]
    mask = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return mask
    check_status(lib.cm_nondominated_f64(cfg, exec_config(), n, pts.shape[1], _ptr(pts),
                                         _ptr(mask.view(np.uint8), "unsigned char[]", True)),
                 "is_nondominated")
    return mask


def filter_dominated(points, *, keep_weakly=False):
    """The rows of ``points`` that :func:`is_nondominated` keeps, in their original order
    (float64, shape (K, M))."""
    pts = _point_set(points, "points")
    return pts[is_nondominated(pts, keep_weakly=keep_weakly)]


def pareto_rank(points, *, algorithm="auto"):
    """Nondominated sorting: an int64 array of shape (N,) with 0 for the nondominated points,
    1 for those nondominated once rank 0 is removed, and so on. Identical points share a rank
    (as moocore's ``pareto_rank``).

    M = 2: Jensen's O(N log N) sweep; M = 3: a sweep over the third objective keeping one
    balanced-tree staircase per front, O(N log N log F) for F fronts; M >= 4: efficient
    nondominated sort with binary search over the fronts (Zhang et al. 2015), O(M N^2) in the
    worst case.
    """
    pts = _point_set(points, "points")
    cfg = _config(algorithm)
    n = pts.shape[0]
    rank = np.zeros(n, dtype=np.int64)
    if n == 0:
        return rank
    check_status(lib.cm_pareto_rank_f64(cfg, exec_config(), n, pts.shape[1], _ptr(pts),
                                        _ptr(rank, "int64_t[]", True)), "pareto_rank")
    return rank


# ----------------------------------------------------------------------------- distances
def _igd(points, ref, plus, what):
    front = _point_set(ref, "ref", min_rows=1)
    pts = _point_set(points, "points", n_obj=front.shape[1], like="ref")
    if pts.shape[0] == 0:
        return float("inf")
    out = ffi.new("double *")
    fn = lib.cm_igd_plus_f64 if plus else lib.cm_igd_f64
    check_status(fn(exec_config(), pts.shape[0], pts.shape[1], _ptr(pts), front.shape[0],
                    _ptr(front), out), what)
    return float(out[0])


def igd(points, ref):
    r"""Inverted generational distance of the approximation ``points`` (N, M) to the reference
    front ``ref`` (K, M), K >= 1:

    .. math:: \mathrm{IGD}(A, R) = \frac{1}{|R|} \sum_{r \in R} \min_{a \in A} \lVert a - r
              \rVert_2

    (moocore's ``igd``, i.e. IGD_p with p = 1). An empty approximation gives ``inf``.
    """
    return _igd(points, ref, False, "igd")


def igd_plus(points, ref):
    r"""IGD+ (Ishibuchi et al. 2015), the Pareto-compliant IGD: like :func:`igd` with the
    dominance-aware distance (minimisation)

    .. math:: d^+(a, r) = \sqrt{\textstyle\sum_k \max(a_k - r_k, 0)^2},
              \qquad \mathrm{IGD^+}(A, R) = \frac{1}{|R|} \sum_{r \in R} \min_{a \in A}
              d^+(a, r).
    """
    return _igd(points, ref, True, "igd_plus")


def spacing(points):
    r"""Schott's spacing of ``points`` (N, M), N >= 2, with Manhattan nearest-neighbour
    distances (Schott 1995):

    .. math::
        d_i = \min_{j \ne i} \sum_k |a_{ik} - a_{jk}|, \qquad
        S = \sqrt{\frac{1}{N - 1} \sum_i (d_i - \bar d)^2}.

    0 means evenly spaced. Duplicated points count (their distance is 0).
    """
    pts = _point_set(points, "points", min_rows=2)
    out = ffi.new("double *")
    check_status(lib.cm_spacing_f64(exec_config(), pts.shape[0], pts.shape[1], _ptr(pts), out),
                 "spacing")
    return float(out[0])


def spread(points, ref=None):
    r"""Deb's spread :math:`\Delta` (Deb et al. 2002) of a 2-objective set ``points`` (N, 2),
    N >= 2.

    The points are sorted by the first objective (ties by the second); :math:`d_i` are the
    N - 1 Euclidean distances between consecutive points and :math:`\bar d` their mean. With a
    reference front ``ref`` (K, 2), :math:`d_f` is the distance from the first sorted point to
    the reference point with the least first objective and :math:`d_l` the distance from the
    last sorted point to the reference point with the least second objective (the extremes of
    the true front); with ``ref=None``, :math:`d_f = d_l = 0`. Then

    .. math::
        \Delta = \frac{d_f + d_l + \sum_i |d_i - \bar d|}{d_f + d_l + (N - 1) \bar d}.

    No normalisation is applied. 0 means evenly spaced and reaching the extremes; the value is
    NaN when the denominator is 0 (all points identical and equal to the extremes).
    """
    pts = _point_set(points, "points", min_rows=2)
    if pts.shape[1] != 2:
        raise ValueError(f"points must have 2 columns: spread is defined for 2 objectives, got "
                         f"shape {pts.shape}")
    if ref is None:
        front, n_ref, front_ptr = None, 0, ffi.NULL
    else:
        front = _point_set(ref, "ref", min_rows=1, n_obj=2, like="points")
        n_ref, front_ptr = front.shape[0], _ptr(front)
    out = ffi.new("double *")
    check_status(lib.cm_spread_f64(pts.shape[0], 2, _ptr(pts), n_ref, front_ptr, out), "spread")
    return float(out[0])

