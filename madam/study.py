r"""The measures of the Pareto-collapse study (``benchmarks/collapse.py``, notebook 01, the demo).

**Collapse index** of a set of K solutions (their loss vectors), with objectives normalised by
the front's box [ideal, ref]::

    spread(P) = mean over ordered pairs p != q in P of |p - q|_2
    CI(P)     = 1 - spread(P) / spread(E)

where E is K points spread evenly along the front (greedy farthest-point sampling of a dense
sample of it). CI = 0: as spread as an even cover of the front; CI = 1: every solution on one
point; CI < 0: more spread than the even cover (e.g. solutions off the front). It is undefined
(``None``) when the front's even cover spreads less than ``FrontInfo.MIN_EXTENT``.

**Apparent conflict** at one step: the solver's direction d decreases every objective to first
order (g_i . d > 0 for all i, steps being x <- x - s), yet the step the optimiser takes,
s = x_t - x_{t+1}, increases one (g_i . s < 0 for some i). Margins (see
:func:`is_apparent_conflict`) keep rounding from deciding either side.
"""
import numpy as np

from . import pareto
from . import solvers as _solvers

__all__ = ["Shifted", "epo_ray", "farthest_points", "mean_pairwise", "FrontInfo", "is_apparent_conflict",
           "apparent_conflict"]


class Shifted:
    """``problem`` with every loss shifted by the constant ``offset`` (gradients, Hessians and
    the Pareto set unchanged; the front moves by ``offset``). EPO takes logarithms of the
    losses, so problems whose losses can reach 0 (ZDT1, VLMOP2) are shifted for every method."""

    def __init__(self, problem, offset):
        self._p = problem
        self.offset = float(offset)
        self.name = problem.name

    def __getattr__(self, name):
        return getattr(self._p, name)

    def losses(self, x, batch=None):
        return self._p.losses(x, batch) + self.offset

    def losses_and_jacobian(self, x, batch=None):
        f, jac = self._p.losses_and_jacobian(x, batch)
        return f + self.offset, jac

    def pareto_front(self, n_points=100):
        front = self._p.pareto_front(n_points)
        return None if front is None else front + self.offset


def epo_ray(w):
    """EPO's ray r for the target "losses proportional to w" (LibMOON's r = 1/w), summing to 1."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1 or w.size < 2 or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"w must be a 1-D vector of >= 2 positive finite weights, got {w!r}")
    r = 1.0 / w
    return r / r.sum()


def farthest_points(points, k):
    """k well-spread rows of ``points``: greedy farthest-point sampling, starting from the row
    with the smallest first coordinate. Returns all rows when there are at most k."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2:
        raise ValueError(f"points must be 2-D (n, m), got shape {pts.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if pts.shape[0] <= k:
        return pts
    chosen = [int(np.argmin(pts[:, 0]))]
    dist = np.linalg.norm(pts - pts[chosen[0]], axis=1)
    while len(chosen) < k:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[i], axis=1))
    return pts[chosen]


def mean_pairwise(points):
    """Mean Euclidean distance over ordered pairs of distinct rows (0 for fewer than 2 rows)."""
    pts = np.asarray(points, dtype=np.float64)
    k = pts.shape[0]
    if k < 2:
        return 0.0
    diff = pts[:, None, :] - pts[None, :, :]
    return float(np.sqrt((diff ** 2).sum(-1)).sum() / (k * (k - 1)))


class FrontInfo:
    """A reference front (true, or a proxy such as the nondominated union of all runs), the
    hypervolume reference point ``ref`` and the box [ideal, ref] every metric is normalised by.

    ``k`` is the number of solutions in the sets to be compared (the even cover has k points).
    With ``prefs`` (EPO's preference vectors, (k, m)), ``targets`` holds EPO's exact answers:
    the front points whose loss vector is most nearly parallel to each preference.
    """

    MIN_EXTENT = 0.05  # CI is undefined when an even cover of the front spreads less than this

    def __init__(self, front, ref, k, prefs=None):
        self.front = np.asarray(front, dtype=np.float64)
        if self.front.ndim != 2 or self.front.shape[0] < 1:
            raise ValueError(f"front must be a non-empty (n, m) array, got shape "
                             f"{self.front.shape}")
        self.ideal = self.front.min(axis=0)
        self.ref = np.asarray(ref, dtype=np.float64)
        if self.ref.shape != (self.front.shape[1],):
            raise ValueError(f"ref must have shape ({self.front.shape[1]},), got {self.ref.shape}")
        self.scale = np.where(self.ref > self.ideal, self.ref - self.ideal, 1.0)
        self.even_spread = mean_pairwise(self.normalise(farthest_points(self.front, k)))
        self.targets = None
        if prefs is not None:
            unit = self.front / np.linalg.norm(self.front, axis=1, keepdims=True)
            self.targets = np.array([self.front[np.argmax(unit @ (w / np.linalg.norm(w)))]
                                     for w in np.asarray(prefs, dtype=np.float64)])

    def normalise(self, pts):
        """(pts - ideal) / (ref - ideal), coordinate-wise."""
        return (np.asarray(pts, dtype=np.float64) - self.ideal) / self.scale

    def collapse_index(self, pts):
        """CI = 1 - spread(pts) / spread(even cover), on normalised objectives (None if the
        front is too small to define it)."""
        if self.even_spread < self.MIN_EXTENT:
            return None
        return 1.0 - mean_pairwise(self.normalise(pts)) / self.even_spread

    def metrics(self, pts, known, preference_set=True):
        """hv: hypervolume of the set as a fraction of the box volume; igd: IGD (normalised) to
        the front when ``known``; spread: mean pairwise normalised distance; ci: the collapse
        index (preference sets only). Non-finite rows are dropped; an empty set has hv 0 and
        (for preference sets) ci 1."""
        pts = np.asarray(pts, dtype=np.float64)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if pts.shape[0] == 0:
            return {"hv": 0.0, "igd": np.inf if known else None, "spread": 0.0,
                    "ci": 1.0 if preference_set and self.even_spread >= self.MIN_EXTENT
                    else None}
        inside = pts[np.all(pts < self.ref, axis=1)]
        hv = (pareto.hypervolume(inside, self.ref) / float(np.prod(self.scale))
              if inside.shape[0] else 0.0)
        return {"hv": float(hv), "spread": mean_pairwise(self.normalise(pts)),
                "ci": self.collapse_index(pts) if preference_set else None,
                "igd": float(pareto.igd(self.normalise(pts), self.normalise(self.front)))
                if known else None}


def is_apparent_conflict(jacobian, d, step, x_before, rel=1e-6):
    """Classify one step; returns (eligible, conflicting).

    eligible: g_i . d > rel |g_i| |d| for every objective i (d decreases them all, clearly).
    conflicting: eligible, and g_i . s < -(rel |g_i| |s| + 8 eps |g_i| |x|) for some i, where
    s = x_t - x_{t+1} is the realised step; the second margin covers the rounding of s computed
    as a difference of iterates of size |x|.
    """
    jac = np.asarray(jacobian, dtype=np.float64)
    gnorm = np.linalg.norm(jac, axis=1)
    eligible = bool(np.all(jac @ d > rel * gnorm * np.linalg.norm(d)))
    if not eligible:
        return False, False
    tol = (rel * gnorm * np.linalg.norm(step)
           + 8 * np.finfo(np.float64).eps * gnorm * np.linalg.norm(x_before))
    return True, bool(np.any(jac @ step < -tol))


def apparent_conflict(problem, make_optimizer, seed, steps, solver=None):
    """Run ``steps`` steps on ``problem`` from its seed-``seed`` start and count apparent
    conflicts. Returns (conflicting steps, eligible steps).

    ``make_optimizer(x)`` returns the optimiser updating x in place: one whose ``step`` takes a
    direction (Adam, SGD: it gets the solver's d) or one with ``takes_jacobian`` (MAdam: it gets
    the Jacobian and the solver's preference). ``solver`` defaults to MGDA, whose d decreases
    every objective away from Pareto-stationary points. Batches (stochastic problems) are drawn
    from a generator seeded ``seed + 1``; the problem's box projection follows each step.
    """
    rng = np.random.default_rng(seed)
    batch_rng = np.random.default_rng(seed + 1)
    x = np.array(problem.initial_points(1, rng)[0], dtype=np.float64)
    opt = make_optimizer(x)
    solver = _solvers.MGDA() if solver is None else solver
    takes_jac = getattr(opt, "takes_jacobian", False)
    eligible = conflicts = 0
    batch = problem.new_batch(batch_rng)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            f, jac = problem.losses_and_jacobian(x, batch)
            if not np.all(np.isfinite(jac)):
                break
            lam, d = solver.solve(jac, f)
            before = x.copy()
            if takes_jac:
                opt.step(jac, preference=lam)
            else:
                opt.step(d)
            e, c = is_apparent_conflict(jac, d, before - x, before)
            eligible += e
            conflicts += c
            problem.project(x)
            if batch is not None:
                batch = problem.new_batch(batch_rng)
    return conflicts, eligible
