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
:func:`is_apparent_conflict`) keep rounding from deciding either side. :func:`conflict_table`
counts them for Adam and MAdam with and without momentum (beta1 = 0.9 and 0) at one learning rate
per problem, to tell the metric's conflicts from momentum's.

**Front extent** (:func:`front_extent`): how far apart the trade-offs of a problem lie, as a
fraction of its loss box, measured by linear scalarisation from one start point; it labels a
problem as conflicting (extent of order 1) or aligned (a shared minimiser: extent near 0) by
measurement rather than by name.
"""
import numpy as np

from . import pareto
from . import solvers as _solvers
from .multi import as_multi_objective

__all__ = ["Shifted", "epo_ray", "farthest_points", "mean_pairwise", "FrontInfo", "is_apparent_conflict",
           "apparent_conflict", "provenance", "ToyStarts", "study_problem", "conflict_optimizer",
           "conflict_column", "conflict_table", "scalarisation_endpoints", "front_extent",
           "extent_of"]


class Shifted:
    """``problem`` with every loss shifted by the constant ``offset`` (gradients, Hessians and
    the Pareto set unchanged; the front moves by ``offset``). EPO takes logarithms of the
    losses, so problems whose losses can reach 0 (ZDT1, VLMOP2) are shifted for every method."""

    def __init__(self, problem, offset):
        self._p = problem
        self.offset = float(offset)
        self.name = problem.name

    def __getattr__(self, name):
        # unpickling looks attributes up before __init__ ran (no _p yet): no recursion there
        if name == "_p" or name.startswith("__"):
            raise AttributeError(name)
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

    ``make_optimizer(x)`` returns the optimiser updating x in place: a first-order one (Adam,
    SGD: stepped through :class:`madam.multi.Scalarized`, it gets the solver's d) or a
    multi-objective one (MAdam: it gets the Jacobian and the solver's preference). ``solver`` defaults to MGDA, whose d decreases
    every objective away from Pareto-stationary points. Batches (stochastic problems) are drawn
    from a generator seeded ``seed + 1``; the problem's box projection follows each step.
    """
    rng = np.random.default_rng(seed)
    batch_rng = np.random.default_rng(seed + 1)
    x = np.array(problem.initial_points(1, rng)[0], dtype=np.float64)
    opt = make_optimizer(x)
    solver = _solvers.MGDA() if solver is None else solver
    multi = as_multi_objective(opt, solver)
    eligible = conflicts = 0
    batch = problem.new_batch(batch_rng)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            f, jac = problem.losses_and_jacobian(x, batch)
            if not np.all(np.isfinite(jac)):
                break
            lam, d = solver.solve(jac, f)  # d for the conflict test; lam for the step
            before = x.copy()
            multi.step(jac, f, preference=lam)  # Scalarized: lam @ J, the same d bit for bit
            e, c = is_apparent_conflict(jac, d, before - x, before)
            eligible += e
            conflicts += c
            problem.project(x)
            if batch is not None:
                batch = problem.new_batch(batch_rng)
    return conflicts, eligible


def provenance():
    """What made a stored result: ``{"madam_version": ..., "core_source_hash": ...}``, the
    package version and the SHA-256 of the C sources compiled into the loaded core. Stored
    results (``benchmarks/results/*.json``) carry it, so a reader can tell which code made them."""
    from . import __version__
    from ._core import ffi, lib

    return {"madam_version": __version__,
            "core_source_hash": ffi.string(lib.cm_source_hash()).decode()}


# ============================================================================ metric vs momentum
# The problems of the collapse and conflict studies (benchmarks/collapse.py, conflict.py): EPO
# takes logarithms of the losses, so those that can reach 0 are shifted; no gradient changes.
STUDY_OFFSETS = {"zdt1": 0.01, "vlmop2": 0.01, "cagrad_toy": 25.0, "teacher_student": 0.0,
                 "wine_mtl": 0.0, "amoo_specification": 0.01}
# teacher-student's problem seed is 1000, not its default 0: the teacher is drawn from
# default_rng(problem seed) exactly as a run's start is drawn from default_rng(run seed), so with
# problem seed 0 the run of seed 0 would start at the teacher (the shared minimiser).
STUDY_KWARGS = {"teacher_student": {"n_obj": 2, "hidden": 16, "batch_size": 128, "sigma": 0.1,
                                    "seed": 1000}}

#: The learning rate of every apparent-conflict column per problem: the one
#: ``benchmarks/collapse.py`` tuned for MGDA + Adam (claim 1, ``mgda/adam`` in
#: ``benchmarks/results/collapse.json``); AMOO's example is not in claim 1: 3e-3, collapse.py's
#: default there.
CONFLICT_LR = {"teacher_student": 0.01, "zdt1": 0.03, "vlmop2": 0.03, "cagrad_toy": 0.03,
               "amoo_specification": 0.003, "wine_mtl": 0.1}


class ToyStarts(Shifted):
    """The CAGrad toy with one of Nash-MTL's five starts per run (drawn by the run's generator)
    plus a uniform jitter in [-0.5, 0.5]^2, so that seeds differ (the problem's own sampler
    returns the first start for every seed)."""

    STARTS = np.array([(-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)])

    def initial_points(self, k, rng):
        idx = rng.integers(0, len(self.STARTS), size=k)
        return self.STARTS[idx] + rng.uniform(-0.5, 0.5, size=(k, 2))


def study_problem(name):
    """The problem ``name`` as the collapse and conflict studies run it: teacher-student with
    2 objectives, 16 hidden units, batches of 128, noise 0.1 and problem seed 1000; the CAGrad
    toy from Nash-MTL's starts (:class:`ToyStarts`); losses shifted by ``STUDY_OFFSETS[name]``
    (0 if absent)."""
    from . import problems

    cls = ToyStarts if name == "cagrad_toy" else Shifted
    return cls(problems.get(name, **STUDY_KWARGS.get(name, {})), STUDY_OFFSETS.get(name, 0.0))


def conflict_column(optimizer, beta1):
    """The label of one column of :func:`conflict_table`, e.g. ``"adam b1=0.9"``,
    ``"madam b1=0"``."""
    return f"{optimizer} b1={float(beta1):g}"


def conflict_optimizer(optimizer, lr, beta1=0.9, beta2=0.999):
    """``make_optimizer`` for :func:`apparent_conflict`: x -> ``madam.Adam(x, lr, betas)`` for
    ``"adam"``, x -> ``madam.MAdam(x, solver=None, lr, betas)`` (all other settings default, as
    in ``benchmarks/collapse.py``; the lambda comes from the study's solver) for ``"madam"``,
    with betas = (beta1, beta2). beta1 = 0 removes momentum: the step is then the solver's d
    through the optimiser's diagonal metric alone."""
    from .psl import make_optimizer

    if optimizer not in ("adam", "madam"):
        raise ValueError(f"optimizer must be 'adam' or 'madam', got {optimizer!r}")
    return lambda x: make_optimizer(optimizer, x, lr, float(beta1), float(beta2))


def conflict_table(problems, lr, seeds, steps, beta1s=(0.9, 0.0), optimizers=("adam", "madam"),
                   beta2=0.999, solver=None):
    """Apparent conflicts with and without momentum, every column at one learning rate.

    ``problems``: a dict name -> problem, or a sequence of problems (keyed by ``.name``).
    ``lr``: one learning rate for every problem, or a dict name -> lr; within a problem every
    column (each optimiser at each beta1) runs at that same lr, so columns differ only in the
    optimiser and beta1. Each (problem, optimiser, beta1, seed) is one :func:`apparent_conflict`
    run of ``steps`` steps under ``solver`` (default MGDA) from the seed's start, with
    betas = (beta1, beta2).

    Returns ``{name: {"lr": lr, "steps": steps, "seeds": [...], "columns": {label: {"optimizer",
    "beta1", "conflicts": [...], "eligible": [...], "fractions": [...]}}}}``, labels from
    :func:`conflict_column` in the order optimisers x beta1s, lists per seed; a fraction is
    conflicts / eligible steps (NaN when no step was eligible).
    """
    if not isinstance(problems, dict):
        problems = {p.name: p for p in problems}
    seeds = [int(s) for s in seeds]
    out = {}
    for name, problem in problems.items():
        rate = float(lr[name] if isinstance(lr, dict) else lr)
        columns = {}
        for opt in optimizers:
            for beta1 in beta1s:
                make = conflict_optimizer(opt, rate, beta1, beta2)
                counts = [apparent_conflict(problem, make, seed, steps, solver) for seed in seeds]
                columns[conflict_column(opt, beta1)] = {
                    "optimizer": opt, "beta1": float(beta1),
                    "conflicts": [c for c, _ in counts], "eligible": [e for _, e in counts],
                    "fractions": [c / e if e else float("nan") for c, e in counts]}
        out[name] = {"lr": rate, "steps": int(steps), "seeds": seeds, "columns": columns}
    return out


def _default_preferences(n_obj):
    """Interior Das-Dennis grid: 7 weights (7/8, 1/8) ... (1/8, 7/8) for 2 objectives; for
    C > 2 objectives the interior points with denominator C + 2 (6 points for C = 3)."""
    from .runs import preference_grid

    return preference_grid(n_obj, 8 if n_obj == 2 else n_obj + 2, interior=True)


def _eval_batch(problem, seed, n_batches):
    """None for a deterministic problem; for a stochastic one (``new_batch`` returns batches),
    ``n_batches`` fresh batches drawn from a generator seeded ``seed + 2``, concatenated: an
    estimate of the expected losses that no training step sees."""
    from .problems import Batch

    rng = np.random.default_rng(seed + 2)
    first = problem.new_batch(rng)
    if first is None:
        return None
    parts = [first] + [problem.new_batch(rng) for _ in range(n_batches - 1)]
    return Batch(np.concatenate([b.inputs for b in parts]),
                 np.concatenate([b.targets for b in parts]))


def scalarisation_endpoints(problem, preferences=None, seed=1, steps=2000, lr=1e-2,
                            eval_batches=32):
    """Linear scalarisation from one start. Returns (f0, endpoints (P, C)).

    From x0, the seed-``seed`` start (``problem.initial_points(1, default_rng(seed))``, the start
    :func:`apparent_conflict` uses for that seed), one run per preference w (rows of
    ``preferences``, default :func:`_default_preferences`): Adam (betas (0.9, 0.999)) on the
    direction w @ J(x) for ``steps`` steps, its learning rate decayed linearly from ``lr`` to 0
    (step t uses lr (1 - t / steps)), the problem's box projection after each step. A stochastic
    problem trains on a fresh batch per step (generator seeded ``seed + 1``, as
    :func:`apparent_conflict`) and f0 and the endpoints are its losses on ``eval_batches``
    other fresh batches, concatenated (generator ``seed + 2``): the expected losses, which the
    study's stochastic runs minimise, not one batch's. f0 = losses at x0; an endpoint is the
    losses at the last iterate (a row of NaN if the run became non-finite).
    """
    from .optim import Adam

    prefs = _default_preferences(problem.n_obj) if preferences is None else np.asarray(
        preferences, dtype=np.float64)
    x0 = np.array(problem.initial_points(1, np.random.default_rng(seed))[0], dtype=np.float64)
    evaluation = _eval_batch(problem, seed, eval_batches)
    f0 = np.asarray(problem.losses(x0, evaluation), dtype=np.float64)
    ends = []
    with np.errstate(all="ignore"):
        for w in prefs:
            x = x0.copy()
            opt = Adam(x, lr=lr)
            batch_rng = np.random.default_rng(seed + 1)
            ok = True
            for t in range(steps):
                _, jac = problem.losses_and_jacobian(x, problem.new_batch(batch_rng))
                d = w @ jac
                if not np.all(np.isfinite(d)):
                    ok = False
                    break
                opt.lr = lr * (1.0 - t / steps)
                opt.step(d)
                problem.project(x)
            ends.append(np.asarray(problem.losses(x, evaluation), dtype=np.float64) if ok
                        else np.full(problem.n_obj, np.nan))
    return f0, np.array(ends)


def front_extent(problem, seed=1, steps=2000, lr=1e-2, preferences=None, known_front=False,
                 nondominated=True, eval_batches=32):
    """The measured extent of the Pareto front as a fraction of the loss box, in [0, 1].

    Let f0 be the losses at the seed-``seed`` start and E the nondominated rows of the finite
    endpoints of :func:`scalarisation_endpoints` (linear scalarisation at the preference grid:
    Adam, lr decayed linearly from ``lr`` to 0 over ``steps`` steps; a stochastic problem trains
    on fresh batches and is evaluated on ``eval_batches`` held-out ones). Per objective i,

        range_E(f_i)  = max_E f_i - min_E f_i                    (how far apart the trade-offs lie)
        box_i         = max(f0_i, max_E f_i) - min(f0_i, min_E f_i)   (how far f_i fell, or rose)
        extent        = max_i range_E(f_i) / box_i               (a term is 0 when box_i = 0)

    About 1 when the trade-offs span the losses (a conflicting problem: ZDT1, VLMOP2), near 0
    when every preference ends at the same losses (aligned: a shared minimiser). Losses, not
    parameters, are compared: runs that end at different x with equal losses give 0. With one
    dominating endpoint E is that point and the extent is exactly 0; ``nondominated=False``
    uses every finite endpoint instead (their scatter: an upper bound, and the measurement's
    resolution on a noisy problem).

    ``known_front=True`` uses ``problem.pareto_front(500)`` as E where the problem knows its
    front (no runs then), the scalarisation otherwise. The default seed is 1: with
    teacher-student's default problem seed 0, the start of seed 0 is the teacher itself, the
    shared minimiser, from which the runs cannot descend (f0 is then the lowest point and the box
    holds only their noise); :func:`study_problem` uses problem seed 1000 for that reason.
    """
    front = problem.pareto_front(500) if known_front else None
    if front is not None:
        x0 = problem.initial_points(1, np.random.default_rng(seed))[0]
        f0 = problem.losses(x0, _eval_batch(problem, seed, eval_batches))
        return extent_of(f0, front, nondominated=False)
    f0, ends = scalarisation_endpoints(problem, preferences, seed, steps, lr, eval_batches)
    if not np.any(np.all(np.isfinite(ends), axis=1)):
        raise ValueError(f"every scalarisation run on {problem.name} became non-finite; lower lr")
    return extent_of(f0, ends, nondominated)


def extent_of(f0, points, nondominated=True):
    """The extent formula of :func:`front_extent` for the start's losses ``f0`` (C,) and loss
    vectors ``points`` (K, C): non-finite rows dropped, then (``nondominated``) the dominated
    ones; max_i range(f_i) / box_i, box_i the range of f_i over the kept points and f0."""
    f0 = np.asarray(f0, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if pts.shape[0] == 0:
        raise ValueError("points holds no finite row")
    if nondominated:
        pts = pareto.filter_dominated(pts)
    spread = pts.max(axis=0) - pts.min(axis=0)
    box = np.maximum(f0, pts.max(axis=0)) - np.minimum(f0, pts.min(axis=0))
    ratio = np.where(box > 0, spread / np.where(box > 0, box, 1.0), 0.0)
    return float(ratio.max())
