r"""Experiment grids: problems x solvers x optimisers x learning rates x preferences x seeds.

One call runs every combination for a fixed step budget and returns a :class:`RunResult`::

    from madam.runs import run, preference_grid
    res = run("vlmop2", ["mgda", "epo"],
              {"adam": ("Adam", {"lr": 1e-2}), "sgd": ("SGD", {"lr": 0.1})},
              preferences=preference_grid(2, 6, interior=True), seeds=range(5), steps=2000,
              record_every=10)
    res.losses        # (runs, records, C) loss trajectories; res.steps: the recorded steps
    res.lambdas       # (runs, records, C) solver weights
    res.final_losses  # (runs, C) endpoints
    res.grid[0]       # {'run': 0, 'problem': 'vlmop2', 'solver': 'mgda', 'optimizer': 'adam', ..}
    res.select(solver="epo", diverged=False).final_losses
    res.save("runs.npz"); RunResult.load("runs.npz")      # .npz without pickles

One run (for seed s, preference p, learning rate lr)
----------------------------------------------------
* ``x0 = problem.initial_points(1, np.random.default_rng(s))[0]`` (a copy; the optimiser updates
  it in place). Minibatches come from a second generator and stochastic solvers get a seed from a
  third one, both spawned from ``np.random.SeedSequence(s)``: the same seed gives the same start,
  batches and solver stream for every solver, optimiser, learning rate and preference (paired
  comparisons).
* The solver is built fresh for each run: from a factory called with the preference (when it
  takes one) and the seed (when it takes ``seed``), or as a reset deep copy of a given instance.
* Each step t = 0, ..., steps-1::

      batch = problem.new_batch(batch_rng)          # only for stochastic problems
      f, J = problem.losses_and_jacobian(x, batch)
      solver.observe(x, batch)                     # only solvers that have it (CAMOO)
      lam, d = solver.solve(J, f)                  # d = lam @ J
      optimizer.step(d)                            # x updated in place
                                                   # (MAdam: optimizer.solver = solver, then
                                                   #  optimizer.step(J, f), lam = its choice)
      problem.project(x)                           # only for box-constrained problems

  A problem whose first ``new_batch`` returns None is deterministic and is never asked again.
* Records are taken at steps 0, k, 2k, ... (k = ``record_every``) and at ``steps``: the losses
  f(x_t) (the batch losses the solver saw; the full losses with ``full_losses=True``), the
  weights lam_t the solver chose at x_t, and optionally x_t. The record at ``steps`` evaluates
  the final point and asks the solver once more. Endpoints: ``final_losses`` (always the full
  losses, batch None), ``final_lambdas``, ``final_x``.
* Divergence: a loss that is not finite or exceeds ``max_loss`` in absolute value, a non-finite
  Jacobian (or one whose Gramian J J^T overflows), direction or parameter vector stops the
  run. Its remaining records are NaN, its endpoints hold the last losses, weights and
  parameters computed, and its grid row has ``diverged=True``, ``diverged_step`` (the step that
  failed; also ``steps_done``) and ``reason``. Other errors propagate. NumPy's overflow and
  invalid-value warnings are silenced inside a run (divergence is reported this way instead).

Specifications
--------------
Each of ``problems``, ``solvers``, ``optimizers`` is one specification, a list of them, or a dict
``{label: specification}`` (labels name the runs in ``grid``; otherwise they are derived).

* problem: a :class:`madam.problems.Problem`, a registry name (``madam.problems.get``) or a
  zero-argument factory. All problems of one grid need the same number of objectives.
* solver: a :class:`madam.solvers.Solver` instance (deep-copied and reset per run; its own
  preference and seed are kept), a class or registry name (``madam.solvers.SOLVERS``; built with
  ``preference=`` and ``seed=`` when its constructor takes them), a ``(name or class, kwargs)``
  pair, or a factory: ``lambda p: EPO(p)`` gets the preference as its single argument, and a
  factory with parameters named ``preference`` and/or ``seed`` gets them by keyword. A solver that
  requires a preference is run once per preference; one whose preference is optional (UPGrad)
  once per preference when ``preferences`` is given, else once with its default; the others
  once (preference None in the grid, unless the built solver has a ``preference`` attribute,
  which is then recorded).
* optimiser: a class or name of a madam optimiser (case-insensitive: ``"adam"``), a
  ``(name or class, kwargs)`` pair, or a factory ``lambda x: madam.Adam(x, lr=1e-2)`` that must
  build the optimiser on the array it is given.
* ``lr``: None (each optimiser's own), a number, a sequence of numbers (a grid axis), or a dict
  keyed by optimiser label or ``(solver label, optimiser label)`` with a number or a sequence as
  values (missing keys keep the optimiser's own lr). It is applied as ``opt.lr = value`` after
  the optimiser is built, so it works for factories too.

Speed: the loop calls only the three interface methods (plus ``project`` for boxes and
``new_batch`` for stochastic problems); the divergence test is a Python loop over the C losses;
records are written into preallocated arrays. ``workers > 1`` runs the grid in forked processes
(Linux/macOS), with results identical to ``workers=1``.
"""
import copy
import inspect
import json
import math
import numbers
import os
import sys
import time
import warnings
from itertools import combinations
from typing import NamedTuple

import numpy as np

from ._validate import NonFiniteError

__all__ = ["run", "RunResult", "load_results", "tune_lr", "LRTuning", "preference_grid",
           "hypervolume"]

_FORMAT = 1
_ARRAYS = ("steps", "losses", "lambdas", "x", "final_losses", "final_lambdas", "final_x")


# ============================================================================ small helpers
def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _int_arg(name, value, minimum):
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _positive_real(name, value):
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _lr_value(name, value):
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def _entries(name, spec, is_single):
    """(label or None, spec) pairs from one spec, a list/tuple of specs or a {label: spec} dict."""
    if isinstance(spec, dict):
        if not spec:
            raise ValueError(f"{name} is an empty dict")
        for key in spec:
            if not isinstance(key, str):
                raise TypeError(f"{name}: dict keys must be strings (labels), got {key!r}")
        return list(spec.items())
    if isinstance(spec, (list, tuple)) and not is_single(spec):
        if not spec:
            raise ValueError(f"{name} is empty")
        return [(None, s) for s in spec]
    return [(None, spec)]


def _is_pair(spec):
    """A ``(name or class, kwargs)`` pair."""
    return (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict)
            and (isinstance(spec[0], (str, type))))


def _unique_labels(labels):
    out, seen = [], {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    if len(set(out)) != len(out):  # a given label collided with a generated one
        raise ValueError(f"labels are not unique: {out}")
    return out


def _parameters(func):
    try:
        return inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}


def _plain(value):
    """NumPy scalars and arrays to plain Python values (for the JSON grid)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ============================================================================ preferences
def preference_grid(n_obj, divisions, interior=False):
    """Das-Dennis preference lattice: every w with w_i = k_i / divisions, k_i >= 0 integers,
    sum k_i = divisions. Returns a float64 array (P, n_obj), P = binom(divisions + C - 1, C - 1).

    ``interior=True`` keeps only the points with every w_i > 0 (needed by EPO, whose preferences
    must be positive); then divisions >= n_obj. For C = 2 the points are (k/D, 1 - k/D) with k
    running down from D, i.e. from the first objective's vertex to the second's.
    """
    n_obj = _int_arg("n_obj", n_obj, 1)
    divisions = _int_arg("divisions", divisions, 1)
    if interior and divisions < n_obj:
        raise ValueError(f"divisions must be >= n_obj = {n_obj} for interior points, "
                         f"got {divisions}")
    rows = []
    # stars and bars: choose the C-1 bar positions among divisions + C - 1 slots
    for bars in combinations(range(divisions + n_obj - 1), n_obj - 1):
        edges = (-1,) + bars + (divisions + n_obj - 1,)
        counts = [edges[i + 1] - edges[i] - 1 for i in range(n_obj)]
        if interior and min(counts) == 0:
            continue
        rows.append(counts[::-1])
    grid = np.array(rows, dtype=np.float64).reshape(-1, n_obj) / divisions
    return grid


def _check_preferences(preferences, n_obj):
    arr = np.asarray(preferences)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"preferences must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"preferences must be an array (P, C) with P >= 1, got shape {arr.shape}")
    if arr.shape[1] != n_obj:
        raise ValueError(f"preferences must have C = {n_obj} columns (the problems' number of "
                         f"objectives), got {arr.shape[1]}")
    for i, row in enumerate(arr):
        if not np.all(np.isfinite(row)) or np.any(row < 0) or abs(row.sum() - 1.0) > 1e-9:
            raise ValueError(f"preferences[{i}] = {row.tolist()} is not on the simplex "
                             "(finite, >= 0, summing to 1 within 1e-9)")
    return arr


# ============================================================================ specifications
class _ProblemSpec:
    def __init__(self, label, spec):
        from . import problems as _problems

        if isinstance(spec, str):
            problem = _problems.get(spec)
        elif hasattr(spec, "losses_and_jacobian"):
            problem = spec
        elif callable(spec):
            problem = spec()
            if not hasattr(problem, "losses_and_jacobian"):
                raise TypeError("a problem factory must return a Problem, got "
                                f"{type(problem).__name__}")
        else:
            raise TypeError("problem must be a Problem, a registry name or a factory, got "
                            f"{type(spec).__name__}")
        self.problem = problem
        self.label = label or str(getattr(problem, "name", type(problem).__name__))


class _SolverSpec:
    """Builds a fresh solver per run; ``conditioned``: whether it takes the preference."""

    def __init__(self, label, spec):
        from . import solvers as _solvers

        self.instance = None
        self.optional_pref = False
        self.name = label or getattr(spec, "__name__", None) or str(spec)
        kwargs = {}
        if _is_pair(spec):
            spec, kwargs = spec
            kwargs = dict(kwargs)
        if isinstance(spec, str):
            key = spec.lower()
            if key not in _solvers.SOLVERS:
                raise ValueError(f"unknown solver name {spec!r}; known: "
                                 f"{', '.join(sorted(_solvers.SOLVERS))}")
            spec = _solvers.SOLVERS[key]
        self.kwargs = kwargs
        self.positional_pref = False
        if hasattr(spec, "solve") and not isinstance(spec, type):
            if kwargs:
                raise TypeError("solver: a (spec, kwargs) pair needs a class or a name, "
                                "not an instance")
            self.instance = spec
            self.factory = None
            self.conditioned = self.takes_seed = False
        elif callable(spec):
            self.factory = spec
            params = _parameters(spec)
            pref = params.get("preference")
            self.conditioned = pref is not None and pref.default is pref.empty
            self.optional_pref = pref is not None and not self.conditioned
            self.takes_seed = "seed" in params
            if isinstance(spec, type):
                missing = _solvers.required_arguments(spec, ("preference", "seed", *kwargs))
                if missing:
                    need = ", ".join(missing)
                    hint = ("; CAMOO takes the problem's Hessian-vector products: "
                            "lambda: CAMOO(problem.hvps)" if "hvp" in missing else "")
                    raise ValueError(
                        f"solver {self.name!r} ({spec.__name__}) needs {need}, which a name or "
                        f"class alone cannot supply: pass ({spec.__name__}, {{{missing[0]!r}: "
                        f"...}}), an instance or a factory{hint}")
            if not isinstance(spec, type) and pref is None:
                free = [p for name, p in params.items() if name != "seed"
                        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                        and p.default is p.empty]
                if len(free) == 1:
                    self.conditioned = self.positional_pref = True
                elif free:
                    raise TypeError("a solver factory takes at most one required argument (the "
                                    f"preference) besides seed, got {list(params)}")
        else:
            raise TypeError("solver must be a Solver, a class, a name, a (name, kwargs) pair or "
                            f"a factory, got {type(spec).__name__}")
        self.label = label

    def build(self, preference, seed):
        if self.instance is not None:
            solver = copy.deepcopy(self.instance)
            solver.reset()
            return solver
        kwargs = dict(self.kwargs)
        args = ()
        if self.conditioned:
            if preference is None:
                raise ValueError(f"solver {self.label or self.name!r} takes a preference: "
                                 "pass preferences=")
            if self.positional_pref:
                args = (np.array(preference),)
            else:
                kwargs["preference"] = np.array(preference)
        if self.takes_seed:
            kwargs["seed"] = seed
        solver = self.factory(*args, **kwargs)
        if not hasattr(solver, "solve"):
            raise TypeError(f"solver factory {self.label or self.name!r} returned "
                            f"{type(solver).__name__}, "
                            "which has no solve()")
        return solver


def _optimizer_classes():
    import madam

    from .optim import Optimizer

    found = {}
    pending = [Optimizer]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__name__.startswith("_") and cls is not Optimizer:
            found[cls.__name__.lower()] = cls
    for name, obj in vars(madam).items():
        if isinstance(obj, type) and hasattr(obj, "step") and not name.startswith("_"):
            found.setdefault(name.lower(), obj)
    return found


class _OptimizerSpec:
    def __init__(self, label, spec):
        kwargs = {}
        if _is_pair(spec):
            spec, kwargs = spec
            kwargs = dict(kwargs)
        if isinstance(spec, str):
            classes = _optimizer_classes()
            if spec.lower() not in classes:
                raise ValueError(f"unknown optimizer name {spec!r}; known: "
                                 f"{', '.join(sorted(classes))}")
            spec = classes[spec.lower()]
        if isinstance(spec, type):
            if not hasattr(spec, "step"):
                raise TypeError(f"optimizer class {spec.__name__} has no step()")
            cls = spec
            self.make = lambda x: cls(x, **kwargs)
            default = spec.__name__.lower()
        elif hasattr(spec, "step"):
            raise TypeError("optimizer must be a class, a name, a (name, kwargs) pair or a factory "
                            "taking the parameter array, not an optimizer instance (it is bound "
                            "to other parameters)")
        elif callable(spec):
            if kwargs:
                raise TypeError("optimizer: a (spec, kwargs) pair needs a class or a name")
            self.make = spec
            default = None
        else:
            raise TypeError("optimizer must be a class, a name, a (name, kwargs) pair or a "
                            f"factory, got {type(spec).__name__}")
        self.label = label
        self.default_label = default

    def build(self, x):
        opt = self.make(x)
        if not hasattr(opt, "step"):
            raise TypeError(f"optimizer factory {self.label!r} returned {type(opt).__name__}, "
                            "which has no step()")
        params = getattr(opt, "params", None)
        if params is not None:
            first = params[0] if isinstance(params, (list, tuple)) else params
            if not (isinstance(first, np.ndarray) and np.shares_memory(first, x)):
                raise ValueError(f"optimizer {self.label!r} was not built on the array it was "
                                 "given (the factory must pass x itself, not a copy)")
        return opt


def _lr_axis(lr, solver_labels, optimizer_labels):
    """{(solver, optimizer): tuple of lr values or (None,)} from the ``lr`` argument."""
    def values(name, v):
        if v is None:
            return (None,)
        if isinstance(v, (list, tuple, np.ndarray)):
            vals = tuple(_lr_value(name, u) for u in np.asarray(v, dtype=object).ravel())
            if not vals:
                raise ValueError(f"{name} is an empty sequence")
            return vals
        return (_lr_value(name, v),)

    table = {}
    if isinstance(lr, dict):
        for key in lr:
            ok = (key in optimizer_labels if isinstance(key, str) else
                  isinstance(key, tuple) and len(key) == 2 and key[0] in solver_labels
                  and key[1] in optimizer_labels)
            if not ok:
                raise ValueError(f"lr: key {key!r} names no optimizer label "
                                 f"{optimizer_labels} nor (solver, optimizer) pair of solvers "
                                 f"{solver_labels}")
        for s in solver_labels:
            for o in optimizer_labels:
                v = lr.get((s, o), lr.get(o))
                table[s, o] = values(f"lr[{(s, o)!r}]", v)
    else:
        vals = values("lr", lr)
        for s in solver_labels:
            for o in optimizer_labels:
                table[s, o] = vals
    return table


# ============================================================================ progress bar
class _Progress:
    """A one-line progress bar on stderr (no dependencies); redrawn at most every 0.2 s."""

    def __init__(self, total, runs, stream=None):
        self.total, self.runs = max(total, 1), runs
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.run = 0
        self.start = self.last = time.monotonic()

    def advance(self, n, run=None):
        self.done += n
        if run is not None:
            self.run = run
        now = time.monotonic()
        if now - self.last >= 0.2 or self.done >= self.total:
            self.last = now
            self._draw(now)

    def _draw(self, now):
        frac = min(self.done / self.total, 1.0)
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        self.stream.write(f"\rmadam.run [{bar}] {100 * frac:5.1f}%  run {self.run}/{self.runs}  "
                          f"{_si(rate)} steps/s  ETA {_duration(eta)}   ")
        self.stream.flush()

    def close(self):
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()


def _si(value):
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def _duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _progress_enabled(progress):
    if progress is None:
        return (not os.environ.get("PYTEST_CURRENT_TEST")
                and hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True, False or None, got {progress!r}")
    return bool(progress)


# ============================================================================ one run
class _Task(NamedTuple):
    index: int
    problem: object          # _ProblemSpec
    solver: object           # _SolverSpec
    optimizer: object        # _OptimizerSpec
    lr: object               # float or None
    preference: object       # tuple or None
    seed: int


class _Config(NamedTuple):
    steps: int
    record_steps: tuple
    record_x: bool
    keep_final_x: bool
    full_losses: bool
    max_loss: float
    n_obj: int
    max_dim: int


def _diagnose(exc, x, f, jac):
    if isinstance(exc, NonFiniteError):
        return "non-finite direction"
    if not np.all(np.isfinite(x)):
        return "non-finite parameters"
    if f is not None and not np.all(np.isfinite(f)):
        return "non-finite loss"
    if jac is not None:
        if not np.all(np.isfinite(jac)):
            return "non-finite jacobian"
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.asarray(jac)
            if not np.all(np.isfinite(scaled @ scaled.T)):
                return "jacobian overflow"  # finite, but its Gramian J J^T is not
    return None


class _Diverged(Exception):
    pass


def _segments(record_steps, tick):
    """(t0, t1, record_step) pieces of [0, steps): split at records and every ``tick`` steps;
    record_step is t0 where a record is due at t0, else -1."""
    out = []
    for r in range(len(record_steps) - 1):
        t0, t1 = record_steps[r], record_steps[r + 1]
        s = t0
        while s < t1:
            e = t1 if tick is None else min(t1, s + tick)
            out.append((s, e, r if s == t0 else -1))
            s = e
    return out


def _execute(task, cfg, progress=None):
    """Run one grid point; returns a dict of arrays and status values."""
    t_start = time.perf_counter()
    problem = task.problem.problem
    seq = np.random.SeedSequence(task.seed)
    init_rng = np.random.Generator(np.random.PCG64(seq))   # = np.random.default_rng(seed)
    batch_seq, solver_seq = seq.spawn(2)
    batch_rng = np.random.Generator(np.random.PCG64(batch_seq))
    solver_seed = int(solver_seq.generate_state(1, np.uint32)[0])

    x = np.array(problem.initial_points(1, init_rng)[0], dtype=problem.dtype, order="C")
    solver = task.solver.build(task.preference, solver_seed)
    opt = task.optimizer.build(x)
    if task.lr is not None:
        opt.lr = task.lr
    lr_used = getattr(opt, "lr", None)
    lr_used = float(lr_used) if _is_real(lr_used) else None
    pref_used = task.preference
    if pref_used is None and getattr(solver, "preference", None) is not None:
        pref_used = tuple(float(v) for v in np.asarray(solver.preference).ravel())

    rec = cfg.record_steps
    n_rec, c, n = len(rec), cfg.n_obj, x.size
    losses = np.full((n_rec, c), np.nan)
    lambdas = np.full((n_rec, c), np.nan)
    xs = np.full((n_rec, cfg.max_dim), np.nan) if cfg.record_x else None

    lj = problem.losses_and_jacobian
    solve = solver.solve
    step = opt.step
    takes_jac = getattr(opt, "takes_jacobian", False)  # MAdam: step(jac, f) runs the solver
    if takes_jac:
        opt.solver = solver
    observe = getattr(solver, "observe", None)  # CAMOO: the point its HVPs are taken at
    project = problem.project if getattr(problem, "bounds", None) is not None else None
    new_batch = problem.new_batch
    full = problem.losses
    hi, lo = cfg.max_loss, -cfg.max_loss
    batch = new_batch(batch_rng)
    stochastic = batch is not None
    full_rec = cfg.full_losses and stochastic
    advance = progress.advance if progress is not None else None
    run_number = task.index + 1
    reason = None
    t = 0
    f = jac = lam = None

    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for t0, t1, r in _segments(rec, None if advance is None else 1024):
                due = t0 if r >= 0 else -1
                for t in range(t0, t1):
                    f, jac = lj(x, batch)
                    for v in f.tolist():
                        if not lo <= v <= hi:
                            raise _Diverged("non-finite loss" if not math.isfinite(v)
                                            else "|loss| > max_loss")
                    if observe is not None:
                        observe(x, batch)
                    if not takes_jac:
                        lam, d = solve(jac, f)
                    if t == due:
                        losses[r] = full(x) if full_rec else f
                        if xs is not None:
                            xs[r, :n] = x
                    if takes_jac:
                        step(jac, f)
                        lam = opt.last_preference
                    else:
                        step(d)
                    if t == due:
                        lambdas[r] = lam
                    if project is not None:
                        project(x)
                    if stochastic:
                        batch = new_batch(batch_rng)
                if advance is not None:
                    advance(t1 - t0, run_number)
            t = cfg.steps
            f, jac = lj(x, batch)
            for v in f.tolist():
                if not lo <= v <= hi:
                    raise _Diverged("non-finite loss" if not math.isfinite(v)
                                    else "|loss| > max_loss")
            if observe is not None:
                observe(x, batch)
            lam, _ = solve(jac, f)
            losses[-1] = full(x) if full_rec else f
            lambdas[-1] = lam
            if xs is not None:
                xs[-1, :n] = x
        except _Diverged as exc:
            reason = str(exc)
        except (ValueError, FloatingPointError) as exc:
            reason = _diagnose(exc, x, f, jac)
            if reason is None:
                raise
    diverged = reason is not None
    if diverged:
        if advance is not None:
            advance(cfg.steps - t, run_number)
        final_losses = np.full(c, np.nan) if f is None else np.array(f, dtype=np.float64)
        final_lambdas = np.full(c, np.nan) if lam is None else np.array(lam, dtype=np.float64)
    else:
        final_losses = np.array(full(x) if stochastic else f, dtype=np.float64)
        final_lambdas = np.array(lam, dtype=np.float64)
    final_x = None
    if cfg.keep_final_x:
        final_x = np.full(cfg.max_dim, np.nan)
        final_x[:n] = x
    row = {
        "run": task.index, "problem": task.problem.label, "solver": task.solver.label,
        "solver_class": type(solver).__name__, "optimizer": task.optimizer.label,
        "optimizer_class": type(opt).__name__, "lr": lr_used,
        "preference": None if pref_used is None else [float(v) for v in pref_used],
        "seed": task.seed, "dim": int(n), "diverged": diverged,
        "diverged_step": int(t) if diverged else None, "reason": reason,
        "steps_done": int(t) if diverged else cfg.steps,
        "time_s": time.perf_counter() - t_start,
    }
    return {"row": row, "losses": losses, "lambdas": lambdas, "x": xs,
            "final_losses": final_losses, "final_lambdas": final_lambdas, "final_x": final_x}


# ============================================================================ parallel runs
_FORK_STATE = None


def _fork_init():
    from . import _core

    _core.set_num_threads(1)


def _fork_worker(index):
    tasks, cfg = _FORK_STATE
    return index, _execute(tasks[index], cfg)


def _run_tasks(tasks, cfg, progress, workers):
    if workers == 1 or len(tasks) <= 1:
        return [_execute(task, cfg, progress) for task in tasks]
    import multiprocessing

    global _FORK_STATE
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        raise ValueError("workers > 1 needs the 'fork' start method (Linux, macOS)") from None
    out = [None] * len(tasks)
    _FORK_STATE = (tasks, cfg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            with ctx.Pool(min(workers, len(tasks)), initializer=_fork_init) as pool:
                finished = 0
                for index, res in pool.imap_unordered(_fork_worker, range(len(tasks))):
                    out[index] = res
                    finished += 1
                    if progress is not None:
                        progress.advance(cfg.steps, finished)
    finally:
        _FORK_STATE = None
    return out


# ============================================================================ the grid runner
def run(problems, solvers, optimizers, *, preferences=None, seeds=(0,), steps=1000, lr=None,
        record_every=None, record_x=False, keep_final_x=True, full_losses=False, max_loss=1e12,
        front_points=200, progress=None, workers=1):
    """Run the grid problems x solvers x optimisers x lr x preferences x seeds; see the module
    docstring for the specifications and for what one run does.

    Args:
        problems: one specification, a list, or a ``{label: spec}`` dict.
        solvers: the same, for the solvers.
        optimizers: the same, for the optimisers.
        preferences: None, or an array (P, C) of preferences on the simplex (one row: (C,)).
            Only solvers that take a preference are run once per row; :func:`preference_grid`
            makes a lattice.
        seeds: an iterable of integers >= 0 (or one integer): one run per seed.
        steps: optimiser steps per run (>= 1).
        lr: learning-rate override or grid axis (see the module docstring).
        record_every: record every k steps (default: max(1, steps // 100)); the final point is
            always recorded.
        record_x: also record the parameters (``RunResult.x``, (runs, records, n)).
        keep_final_x: keep the final parameters (``RunResult.final_x``).
        full_losses: for stochastic problems, record full losses (batch None) rather than the
            batch losses the solver saw (costs one extra loss evaluation per record).
        max_loss: a run whose loss leaves [-max_loss, max_loss] (or is not finite) diverged.
        front_points: points of each problem's analytic Pareto front and set kept in the result
            (``fronts``, ``pareto_sets``) where known; 0 keeps none.
        progress: True/False; None (default) shows the bar only when stderr is a terminal and
            not under pytest.
        workers: processes to run the grid in (fork; results identical to workers=1).

    Returns:
        :class:`RunResult`.
    """
    steps = _int_arg("steps", steps, 1)
    record_every = (max(1, steps // 100) if record_every is None
                    else _int_arg("record_every", record_every, 1))
    workers = _int_arg("workers", workers, 1)
    max_loss = _positive_real("max_loss", max_loss)
    front_points = _int_arg("front_points", front_points, 0)
    for name, value in (("record_x", record_x), ("keep_final_x", keep_final_x),
                        ("full_losses", full_losses)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    show = _progress_enabled(progress)

    if _is_int(seeds):
        seeds = [seeds]
    try:
        seeds = list(seeds)
    except TypeError:
        raise TypeError(f"seeds must be an iterable of integers, got {type(seeds).__name__}") \
            from None
    if not seeds:
        raise ValueError("seeds is empty")
    seeds = [_int_arg(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds)]

    # problems
    pspecs = [_ProblemSpec(label, spec) for label, spec in
              _entries("problems", problems, lambda s: False)]
    for spec, label in zip(pspecs, _unique_labels([p.label for p in pspecs])):
        spec.label = label
    n_obj = pspecs[0].problem.n_obj
    for spec in pspecs:
        if spec.problem.n_obj != n_obj:
            raise ValueError("all problems of one grid need the same number of objectives; got "
                             + ", ".join(f"{s.label}: {s.problem.n_obj}" for s in pspecs))
    max_dim = max(int(s.problem.dim) for s in pspecs)
    prefs = None if preferences is None else _check_preferences(preferences, n_obj)
    pref_rows = None if prefs is None else [tuple(float(v) for v in row) for row in prefs]

    # solvers
    sspecs = [_SolverSpec(label, spec) for label, spec in
              _entries("solvers", solvers, _is_pair)]
    for spec in sspecs:
        if spec.optional_pref and pref_rows is not None:
            spec.conditioned = True  # e.g. UPGrad(preference=None): one run per preference
    for spec in sspecs:
        if spec.label is None:
            probe = spec.build(pref_rows[0] if (spec.conditioned and pref_rows) else None, 0)
            name = getattr(probe, "name", None)
            spec.label = name if isinstance(name, str) else type(probe).__name__
    for spec, label in zip(sspecs, _unique_labels([s.label for s in sspecs])):
        spec.label = label

    # optimisers
    ospecs = [_OptimizerSpec(label, spec) for label, spec in
              _entries("optimizers", optimizers, _is_pair)]
    probe_x = np.zeros(pspecs[0].problem.dim, dtype=pspecs[0].problem.dtype)
    for spec in ospecs:
        if spec.label is None:
            spec.label = spec.default_label or type(spec.build(probe_x)).__name__.lower()
    for spec, label in zip(ospecs, _unique_labels([o.label for o in ospecs])):
        spec.label = label
    lrs = _lr_axis(lr, [s.label for s in sspecs], [o.label for o in ospecs])

    tasks = []
    for p in pspecs:
        for s in sspecs:
            for o in ospecs:
                for lr_value in lrs[s.label, o.label]:
                    for pref in (pref_rows if s.conditioned else [None]):
                        for seed in seeds:
                            tasks.append(_Task(len(tasks), p, s, o, lr_value, pref, seed))

    record_steps = tuple(range(0, steps, record_every)) + (steps,)
    cfg = _Config(steps, record_steps, bool(record_x), bool(keep_final_x), bool(full_losses),
                  max_loss, n_obj, max_dim)
    progress_bar = _Progress(len(tasks) * steps, len(tasks)) if show else None
    try:
        outs = _run_tasks(tasks, cfg, progress_bar, workers)
    finally:
        if progress_bar is not None:
            progress_bar.close()

    fronts, psets = {}, {}
    if front_points:
        for p in pspecs:
            front = p.problem.pareto_front(front_points)
            if front is not None:
                fronts[p.label] = np.asarray(front, dtype=np.float64)
            pset = p.problem.pareto_set(front_points)
            if pset is not None:
                psets[p.label] = np.asarray(pset, dtype=np.float64)
    meta = {
        "steps": steps, "record_every": record_every, "n_obj": n_obj, "max_loss": max_loss,
        "full_losses": bool(full_losses),
        "problems": {p.label: {"name": str(getattr(p.problem, "name", "")),
                               "class": type(p.problem).__name__, "dim": int(p.problem.dim),
                               "dtype": str(np.dtype(p.problem.dtype)),
                               "bounds": (None if getattr(p.problem, "bounds", None) is None
                                          else [np.asarray(b, np.float64).tolist()
                                                for b in p.problem.bounds])}
                     for p in pspecs},
    }
    return RunResult(
        grid=[o["row"] for o in outs],
        steps=np.array(record_steps, dtype=np.int64),
        losses=_stack([o["losses"] for o in outs], (0, len(record_steps), n_obj)),
        lambdas=_stack([o["lambdas"] for o in outs], (0, len(record_steps), n_obj)),
        final_losses=_stack([o["final_losses"] for o in outs], (0, n_obj)),
        final_lambdas=_stack([o["final_lambdas"] for o in outs], (0, n_obj)),
        x=_stack([o["x"] for o in outs], (0, len(record_steps), max_dim)) if record_x else None,
        final_x=_stack([o["final_x"] for o in outs], (0, max_dim)) if keep_final_x else None,
        meta=meta, fronts=fronts, pareto_sets=psets)


def _stack(arrays, empty_shape):
    return np.stack(arrays) if arrays else np.zeros(empty_shape)


# ============================================================================ results
_LABEL_COLUMNS = ("problem", "solver", "optimizer", "solver_class", "optimizer_class")


def _check_labels(column, criterion, values):
    """ValueError when a requested label of a label column is none of the grid's labels."""
    if isinstance(criterion, str):
        requested = [criterion]
    elif isinstance(criterion, (list, tuple, set, frozenset)):
        requested = [c for c in criterion if isinstance(c, str)]
    else:
        return
    available = list(dict.fromkeys(values))
    missing = [c for c in requested if c not in available]
    if missing:
        hint = ""
        folded = {str(v).lower(): v for v in available}
        close = [folded[m.lower()] for m in missing if m.lower() in folded]
        if close:
            hint = f" (labels are case-sensitive: did you mean {close[0]!r}?)"
        raise ValueError(f"select({column}=...): no run has {column} "
                         f"{', '.join(map(repr, missing))}; available {column} labels: "
                         f"{available}{hint}")


def _matches(value, criterion, column):
    if callable(criterion):
        return bool(criterion(value))
    if column == "preference":
        if criterion is None:
            return value is None
        crit = np.asarray(criterion, dtype=np.float64)
        if value is None:
            return False
        v = np.asarray(value, dtype=np.float64)
        if crit.ndim == 1:
            return crit.shape == v.shape and np.allclose(crit, v, rtol=0, atol=1e-12)
        return any(row.shape == v.shape and np.allclose(row, v, rtol=0, atol=1e-12)
                   for row in crit)
    if isinstance(criterion, (list, tuple, set, frozenset, range)):
        return value in criterion
    return value == criterion


class RunResult:
    """Trajectories and endpoints of a grid of runs (see :func:`run`).

    Attributes (N runs, R records, C objectives, n parameters: the largest dimension of the
    grid's problems; smaller problems are NaN-padded):

    * ``grid``: list of N plain dicts, one per run: ``run`` (index in the grid that produced it),
      ``problem``, ``solver``, ``solver_class``, ``optimizer``, ``optimizer_class``, ``lr``,
      ``preference`` (list or None), ``seed``, ``dim``, ``diverged``, ``diverged_step``,
      ``reason``, ``steps_done``, ``time_s``.
    * ``steps`` (R,): the recorded step numbers; ``losses``, ``lambdas`` (N, R, C);
      ``x`` (N, R, n) or None; ``final_losses``, ``final_lambdas`` (N, C); ``final_x`` (N, n) or
      None. All float64; records after a divergence are NaN.
    * ``fronts`` / ``pareto_sets``: {problem label: (M, C) / (M, n)} analytic fronts and sets.
    * ``meta``: steps, record_every, n_obj, max_loss, the problems' names, dims, dtypes, boxes.
    """

    def __init__(self, grid, steps, losses, lambdas, final_losses, final_lambdas, x=None,
                 final_x=None, meta=None, fronts=None, pareto_sets=None):
        self.grid = [dict(row) for row in grid]
        self.steps = np.asarray(steps, dtype=np.int64)
        self.losses = np.asarray(losses, dtype=np.float64)
        self.lambdas = np.asarray(lambdas, dtype=np.float64)
        self.final_losses = np.asarray(final_losses, dtype=np.float64)
        self.final_lambdas = np.asarray(final_lambdas, dtype=np.float64)
        self.x = None if x is None else np.asarray(x, dtype=np.float64)
        self.final_x = None if final_x is None else np.asarray(final_x, dtype=np.float64)
        self.meta = dict(meta or {})
        self.fronts = {k: np.asarray(v, dtype=np.float64) for k, v in (fronts or {}).items()}
        self.pareto_sets = {k: np.asarray(v, dtype=np.float64)
                            for k, v in (pareto_sets or {}).items()}
        n = len(self.grid)
        for name in ("losses", "lambdas", "x", "final_losses", "final_lambdas", "final_x"):
            arr = getattr(self, name)
            if arr is not None and arr.shape[0] != n:
                raise ValueError(f"{name} has {arr.shape[0]} runs but grid has {n} rows")
        for name in ("losses", "lambdas", "x"):
            arr = getattr(self, name)
            if arr is not None and (arr.ndim != 3 or arr.shape[1] != self.steps.size):
                raise ValueError(f"{name} must have shape (runs, {self.steps.size}, .), "
                                 f"got {arr.shape}")

    # ------------------------------------------------------------------ basics
    def __len__(self):
        return len(self.grid)

    def __repr__(self):
        cols = ("problem", "solver", "optimizer")
        parts = ", ".join(f"{c}s={sorted(set(map(str, self.column(c))))}" for c in cols)
        return (f"<RunResult {len(self)} runs x {self.steps.size} records, C={self.n_obj}, "
                f"{int(self.diverged.sum())} diverged; {parts}>")

    @property
    def n_obj(self):
        return int(self.final_losses.shape[1]) if self.final_losses.ndim == 2 else 0

    @property
    def diverged(self):
        """(N,) bool: which runs diverged."""
        return np.array([bool(row["diverged"]) for row in self.grid], dtype=bool)

    def column(self, name):
        """The grid column ``name`` as a list (one value per run)."""
        if self.grid and name not in self.grid[0]:
            raise KeyError(f"no grid column {name!r}; columns: {list(self.grid[0])}")
        return [row[name] for row in self.grid]

    def groups(self, *keys):
        """{tuple of values of ``keys``: int array of run positions}, in first-seen order
        (preferences become tuples)."""
        out = {}
        for i, row in enumerate(self.grid):
            key = tuple(tuple(row[k]) if isinstance(row[k], list) else row[k] for k in keys)
            out.setdefault(key, []).append(i)
        return {k: np.array(v, dtype=np.intp) for k, v in out.items()}

    def select(self, **criteria):
        """The runs whose grid columns match every criterion, as a new RunResult.

        A criterion is a value (equality), a list/tuple/set/range of values (membership) or a
        predicate ``callable(value) -> bool``. For ``preference``: None, one preference (C
        numbers, matched within 1e-12) or an array of them (any row matches).
        Example: ``res.select(solver="mgda", optimizer=["adam", "sgd"], diverged=False)``.

        Labels are matched exactly (case-sensitive): for the label columns (``problem``,
        ``solver``, ``optimizer``, ``solver_class``, ``optimizer_class``) a requested string (or
        any string of a list/tuple/set of them) that is none of the grid's values raises a
        ValueError naming the argument and listing the available labels, so a typo or a wrong
        case (``optimizer="Adam"`` for the label ``"adam"``) cannot silently select 0 runs.
        Predicates are not checked. An unknown column raises a KeyError.
        """
        columns = set(self.grid[0]) if self.grid else set()
        for key in criteria:
            if self.grid and key not in columns:
                raise KeyError(f"no grid column {key!r}; columns: {sorted(columns)}")
        for key, crit in criteria.items():
            if self.grid and key in _LABEL_COLUMNS:
                _check_labels(key, crit, [row[key] for row in self.grid])
        keep = [i for i, row in enumerate(self.grid)
                if all(_matches(row[k], crit, k) for k, crit in criteria.items())]
        return self.take(keep)

    def take(self, indices):
        """The runs at the given positions (or a boolean mask), as a new RunResult."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.intp).ravel()
        labels = {self.grid[i]["problem"] for i in idx}
        return RunResult(
            grid=[self.grid[i] for i in idx], steps=self.steps, losses=self.losses[idx],
            lambdas=self.lambdas[idx], final_losses=self.final_losses[idx],
            final_lambdas=self.final_lambdas[idx],
            x=None if self.x is None else self.x[idx],
            final_x=None if self.final_x is None else self.final_x[idx], meta=self.meta,
            fronts={k: v for k, v in self.fronts.items() if k in labels},
            pareto_sets={k: v for k, v in self.pareto_sets.items() if k in labels})

    @classmethod
    def concat(cls, results):
        """One RunResult from several with the same recorded steps and C (``run`` renumbered)."""
        results = list(results)
        if not results:
            raise ValueError("results is empty")
        first = results[0]
        for r in results[1:]:
            if not np.array_equal(r.steps, first.steps):
                raise ValueError("results record different steps; they cannot be concatenated")
            if r.n_obj != first.n_obj:
                raise ValueError("results have different numbers of objectives")
        dim = max([0] + [r.final_x.shape[1] for r in results if r.final_x is not None]
                  + [r.x.shape[2] for r in results if r.x is not None])

        def pad(arr, last):
            if arr.shape[-1] == last:
                return arr
            out = np.full(arr.shape[:-1] + (last,), np.nan)
            out[..., :arr.shape[-1]] = arr
            return out

        grid = []
        for r in results:
            grid.extend(dict(row) for row in r.grid)
        for i, row in enumerate(grid):
            row["run"] = i
        meta = dict(first.meta)
        meta["problems"] = {}
        for r in results:
            meta["problems"].update(r.meta.get("problems", {}))
        fronts, psets = {}, {}
        for r in results:
            fronts.update(r.fronts)
            psets.update(r.pareto_sets)
        all_x = all(r.x is not None for r in results)
        all_fx = all(r.final_x is not None for r in results)
        return cls(
            grid=grid, steps=first.steps,
            losses=np.concatenate([r.losses for r in results]),
            lambdas=np.concatenate([r.lambdas for r in results]),
            final_losses=np.concatenate([r.final_losses for r in results]),
            final_lambdas=np.concatenate([r.final_lambdas for r in results]),
            x=np.concatenate([pad(r.x, dim) for r in results]) if all_x else None,
            final_x=np.concatenate([pad(r.final_x, dim) for r in results]) if all_fx else None,
            meta=meta, fronts=fronts, pareto_sets=psets)

    # ------------------------------------------------------------------ derived values
    def scalarized(self, kind="linear"):
        """(N,) final scalarised losses: ``linear``: w . f, ``tchebycheff``: max_i w_i f_i, with
        w the run's preference (uniform 1/C when it has none). NaN for diverged runs."""
        if kind not in ("linear", "tchebycheff"):
            raise ValueError(f"kind must be 'linear' or 'tchebycheff', got {kind!r}")
        c = self.n_obj
        w = np.array([row["preference"] if row["preference"] is not None else [1.0 / c] * c
                      for row in self.grid], dtype=np.float64).reshape(len(self), c)
        wf = w * self.final_losses
        return wf.sum(axis=1) if kind == "linear" else wf.max(axis=1)

    def to_records(self):
        """One flat plain dict per run: the grid row plus ``final_loss_i`` and
        ``final_lambda_i`` (e.g. for ``pandas.DataFrame(result.to_records())``)."""
        out = []
        for row, f, lam in zip(self.grid, self.final_losses, self.final_lambdas):
            rec = dict(row)
            rec.update({f"final_loss_{i}": float(v) for i, v in enumerate(f)})
            rec.update({f"final_lambda_{i}": float(v) for i, v in enumerate(lam)})
            out.append(rec)
        return out

    # ------------------------------------------------------------------ plain structure, files
    def to_dict(self):
        """Everything as plain Python (lists, dicts, floats, ints, str, None; NaN stays NaN).
        :meth:`from_dict` inverts it."""
        out = {"format": _FORMAT, "grid": [dict(r) for r in self.grid], "meta": self.meta}
        for name in _ARRAYS:
            arr = getattr(self, name)
            out[name] = None if arr is None else arr.tolist()
        out["fronts"] = {k: v.tolist() for k, v in self.fronts.items()}
        out["pareto_sets"] = {k: v.tolist() for k, v in self.pareto_sets.items()}
        return out

    @classmethod
    def from_dict(cls, data):
        """Rebuild a RunResult from :meth:`to_dict`'s structure."""
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise ValueError(f"data['format'] must be {_FORMAT}, got {data.get('format')!r}")
        missing = [k for k in ("grid", "meta", "steps", "losses", "lambdas", "final_losses",
                               "final_lambdas") if k not in data]
        if missing:
            raise ValueError(f"data lacks {missing}")
        n, r, c = len(data["grid"]), len(data["steps"]), data["meta"].get("n_obj", 0)

        def arr(key, shape):
            v = data.get(key)
            if v is None:
                return None
            a = np.asarray(v, dtype=np.float64)
            return a.reshape(shape) if a.size == 0 else a

        return cls(grid=data["grid"], steps=np.asarray(data["steps"], dtype=np.int64),
                   losses=arr("losses", (n, r, c)), lambdas=arr("lambdas", (n, r, c)),
                   final_losses=arr("final_losses", (n, c)),
                   final_lambdas=arr("final_lambdas", (n, c)),
                   x=arr("x", (n, r, 0)), final_x=arr("final_x", (n, 0)), meta=data["meta"],
                   fronts=data.get("fronts"), pareto_sets=data.get("pareto_sets"))

    def save(self, path):
        """Write a .npz (``np.savez``; the grid and meta as JSON text, no pickles): load it with
        :meth:`load` or :func:`load_results`. Returns the path written."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        arrays = {name: getattr(self, name) for name in _ARRAYS if getattr(self, name) is not None}
        front_labels = list(self.fronts)
        pset_labels = list(self.pareto_sets)
        for i, label in enumerate(front_labels):
            arrays[f"front.{i}"] = self.fronts[label]
        for i, label in enumerate(pset_labels):
            arrays[f"pareto_set.{i}"] = self.pareto_sets[label]
        header = {"format": _FORMAT, "grid": self.grid, "meta": self.meta,
                  "front_labels": front_labels, "pareto_set_labels": pset_labels}
        arrays["header_json"] = np.array(json.dumps(header, default=_plain))
        np.savez(path, **arrays)
        return path

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save` (``np.load`` with ``allow_pickle=False``)."""
        with np.load(os.fspath(path), allow_pickle=False) as data:
            if "header_json" not in data.files:
                raise ValueError(f"{os.fspath(path)} is not a madam RunResult file "
                                 "(no header_json)")
            header = json.loads(str(data["header_json"][()]))
            if header.get("format") != _FORMAT:
                raise ValueError(f"unsupported RunResult format {header.get('format')!r}")
            arrays = {name: data[name] for name in _ARRAYS if name in data.files}
            fronts = {label: data[f"front.{i}"]
                      for i, label in enumerate(header["front_labels"])}
            psets = {label: data[f"pareto_set.{i}"]
                     for i, label in enumerate(header["pareto_set_labels"])}
        return cls(grid=header["grid"], meta=header["meta"], fronts=fronts, pareto_sets=psets,
                   **arrays)


def load_results(path):
    """Read a :class:`RunResult` saved with :meth:`RunResult.save`."""
    return RunResult.load(path)


# ============================================================================ hypervolume
def hypervolume(points, ref):
    r"""Hypervolume (Lebesgue measure) dominated by ``points`` (N, C) and bounded by ``ref``
    (C,), for minimisation: the volume of the union of the boxes [p, ref], tolerant of the NaN
    endpoints of diverged runs.

    Rows holding a NaN or Inf (diverged runs) are dropped; points not strictly below ``ref`` in
    every objective add nothing. The volume is :func:`madam.pareto.hypervolume` (C kernels: exact
    sweeps for C <= 3, WFG above); where that module is unavailable, an exact NumPy fallback
    (sweep for C <= 2, slicing along the last objective above, after removing dominated points;
    meant for C <= 4 and tens to hundreds of points).
    """
    pts = np.asarray(points, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pts.ndim == 1:
        pts = pts[None, :]
    if pts.ndim != 2:
        raise ValueError(f"points must be an array (N, C), got shape {pts.shape}")
    if ref.shape != (pts.shape[1],):
        raise ValueError(f"ref must have shape ({pts.shape[1]},), got {ref.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError("ref must be finite")
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if pts.shape[0] == 0:
        return 0.0
    try:
        from .pareto import hypervolume as _c_hypervolume
    except ImportError:  # pragma: no cover - madam built without the Pareto kernels
        return _hv_numpy(pts, ref)
    return float(_c_hypervolume(pts, ref))


def _nondominated(pts):
    """The rows of pts no other row weakly dominates (duplicates kept once)."""
    pts = np.unique(pts, axis=0)
    keep = np.ones(pts.shape[0], dtype=bool)
    for i in range(pts.shape[0]):
        others = np.delete(pts, i, axis=0)
        if others.size and np.any(np.all(others <= pts[i], axis=1)):
            keep[i] = False
    return pts[keep]


def _hv_numpy(pts, ref):
    """Exact hypervolume of finite points strictly below ref (NumPy fallback)."""
    if pts.shape[0] == 0:
        return 0.0
    c = pts.shape[1]
    if c == 1:
        return float(ref[0] - pts[:, 0].min())
    if c == 2:
        order = np.lexsort((pts[:, 1], pts[:, 0]))
        total, best = 0.0, ref[1]
        for f0, f1 in pts[order]:
            if f1 < best:
                total += (ref[0] - f0) * (best - f1)
                best = f1
        return float(total)
    pts = _nondominated(pts)
    pts = pts[np.argsort(pts[:, -1], kind="stable")]
    total = 0.0
    for i in range(pts.shape[0]):
        top = pts[i + 1, -1] if i + 1 < pts.shape[0] else ref[-1]
        height = top - pts[i, -1]
        if height > 0:
            total += height * _hv_numpy(pts[:i + 1, :-1], ref[:-1])
    return float(total)


# ============================================================================ learning rates
class LRTuning(NamedTuple):
    """What :func:`tune_lr` returns: ``chosen`` {(solver, optimizer): lr or None}, ``table``
    (list of dicts, one per (solver, optimizer, lr)) and ``result`` (the tuning runs)."""

    chosen: dict
    table: list
    result: RunResult


def tune_lr(problem, solvers, optimizers, lrs, *, preferences=None, seeds=(0, 1, 2),
            steps=1000, criterion="hypervolume", ref=None, maximize=None,
            allow_divergence=False, **run_kwargs):
    r"""Pick the learning rate of every method (solver, optimiser) on a grid, by a stated
    criterion computed from the final points of the tuning runs.

    Runs :func:`run` on one problem with ``lr=lrs`` as a grid axis (a sequence of values for every
    method, or a dict keyed by optimiser label or (solver, optimiser) labels), then scores each
    (solver, optimiser, lr) over all its runs (every preference and seed):

    * ``"hypervolume"`` (maximised): the hypervolume of the pooled final losses of its runs
      w.r.t. ``ref``. Default ``ref``: for every objective, the largest finite final loss of all
      tuning runs plus 10% of that objective's range over them (one reference for all methods).
    * ``"scalarized"`` (minimised): the mean over its runs of w . f_final, w = the run's
      preference (1/C each for solvers without one).
    * ``"tchebycheff"`` (minimised): the mean of max_i w_i f_final,i.
    * a callable ``criterion(result_of_the_group) -> float``; ``maximize`` (default False) says
      whether larger is better.

    A group with a diverged run is disqualified (score NaN) unless ``allow_divergence``; then
    diverged runs are left out of its score. The chosen lr is the best-scoring one (the first of
    equal scores in grid order); None, with a warning, when every lr is disqualified.

    Returns :class:`LRTuning` ``(chosen, table, result)``; table rows: solver, optimizer, lr,
    score, criterion, maximize, runs, diverged, chosen (and ref for the hypervolume).
    ``chosen`` can be passed straight back as ``run(..., lr=chosen)``.
    """
    if isinstance(problem, (list, tuple, dict)):
        raise TypeError("tune_lr takes one problem; call it once per problem")
    builtin = {"hypervolume": True, "scalarized": False, "tchebycheff": False}
    if callable(criterion):
        maximize = False if maximize is None else bool(maximize)
    elif criterion in builtin:
        if maximize is not None and bool(maximize) != builtin[criterion]:
            raise ValueError(f"criterion {criterion!r} is {'max' if builtin[criterion] else 'min'}"
                             "imised; do not pass maximize")
        maximize = builtin[criterion]
    else:
        raise ValueError("criterion must be 'hypervolume', 'scalarized', 'tchebycheff' or a "
                         f"callable, got {criterion!r}")
    if lrs is None:
        raise ValueError("lrs must be given (a sequence of learning rates or a dict)")
    result = run(problem, solvers, optimizers, preferences=preferences, seeds=seeds, steps=steps,
                 lr=lrs, **run_kwargs)
    ok = ~result.diverged
    if criterion == "hypervolume":
        if ref is None:
            finite = result.final_losses[ok & np.all(np.isfinite(result.final_losses), axis=1)]
            if finite.shape[0] == 0:
                raise ValueError("every tuning run diverged: no reference point can be derived")
            hi, lo = finite.max(axis=0), finite.min(axis=0)
            span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
            ref = hi + 0.1 * span
        ref = np.asarray(ref, dtype=np.float64)
        if ref.shape != (result.n_obj,):
            raise ValueError(f"ref must have shape ({result.n_obj},), got {ref.shape}")
    table = []
    for (s, o, lr_value), idx in result.groups("solver", "optimizer", "lr").items():
        n_div = int(result.diverged[idx].sum())
        good = idx[~result.diverged[idx]]
        if (n_div and not allow_divergence) or good.size == 0:
            score = float("nan")
        elif criterion == "hypervolume":
            score = hypervolume(result.final_losses[good], ref)
        elif criterion in ("scalarized", "tchebycheff"):
            kind = "linear" if criterion == "scalarized" else "tchebycheff"
            score = float(np.mean(result.take(good).scalarized(kind)))
        else:
            score = float(criterion(result.take(good)))
        row = {"solver": s, "optimizer": o, "lr": lr_value, "score": score,
               "criterion": criterion if isinstance(criterion, str) else
               getattr(criterion, "__name__", "callable"),
               "maximize": maximize, "runs": int(idx.size), "diverged": n_div, "chosen": False}
        if criterion == "hypervolume":
            row["ref"] = ref.tolist()
        table.append(row)
    chosen = {}
    for row in table:
        key = (row["solver"], row["optimizer"])
        chosen.setdefault(key, None)
        if math.isnan(row["score"]):
            continue
        best = chosen[key]
        if best is None or (row["score"] > best["score"] if maximize
                            else row["score"] < best["score"]):
            chosen[key] = row
    out = {}
    for key, row in chosen.items():
        if row is None:
            warnings.warn(f"tune_lr: every lr of {key} was disqualified (diverged or NaN score)",
                          RuntimeWarning, stacklevel=2)
            out[key] = None
        else:
            row["chosen"] = True
            out[key] = row["lr"]
    return LRTuning(out, table, result)
