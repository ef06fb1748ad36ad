"""One run of the grid (one problem, solver, optimiser, lr, preference and seed), and the task
that runs it on an executor's worker: the grid's specifications arrive once per worker as a
pickled bundle, the run itself as plain data, under a fixed thread count (the per-step loop is
described in madam.runs' module doc)."""
import hashlib
import math
import pickle
import threading
import time
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from .._validate import NonFiniteError, is_real
from ..multi import as_multi_objective


# ============================================================================ one run
#: runs started by _execute in this process (a count the store's resume tests read)
EXECUTED = [0]


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


def _check_losses(f, lo, hi):
    """A run diverges at a loss that is not finite or beyond max_loss (a Python loop over the C
    losses: C is small, and this is cheaper than NumPy's per-call overhead)."""
    for v in f.tolist():
        if not lo <= v <= hi:
            raise _Diverged("non-finite loss" if not math.isfinite(v) else "|loss| > max_loss")


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
    EXECUTED[0] += 1
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
    lr_used = float(lr_used) if is_real(lr_used) else None
    pref_used = task.preference
    if pref_used is None and getattr(solver, "preference", None) is not None:
        pref_used = tuple(float(v) for v in np.asarray(solver.preference).ravel())

    rec = cfg.record_steps
    n_rec, c, n = len(rec), cfg.n_obj, x.size
    losses = np.full((n_rec, c), np.nan)
    lambdas = np.full((n_rec, c), np.nan)
    xs = np.full((n_rec, cfg.max_dim), np.nan) if cfg.record_x else None

    lj = problem.losses_and_jacobian
    multi = as_multi_objective(opt, solver)  # MAdam gets the solver; Adam, SGD: Scalarized
    step = multi.step
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
                    _check_losses(f, lo, hi)
                    if observe is not None:
                        observe(x, batch)
                    if t == due:
                        losses[r] = full(x) if full_rec else f
                        if xs is not None:
                            xs[r, :n] = x
                    step(jac, f)
                    lam = multi.last_preference
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
            _check_losses(f, lo, hi)
            if observe is not None:
                observe(x, batch)
            lam, _ = solver.solve(jac, f)  # the weights at the final point (no step)
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
        "time_s": time.perf_counter() - t_start, "failed": False, "error": None,
    }
    return {"row": row, "losses": losses, "lambdas": lambdas, "x": xs,
            "final_losses": final_losses, "final_lambdas": final_lambdas, "final_x": final_x}




def _failed_output(task, cfg, exc, t_start):
    """The output of a run that raised: NaN arrays and a row with ``failed`` and ``error``."""
    rec, c = len(cfg.record_steps), cfg.n_obj
    problem = task.problem.problem
    final_x = np.full(cfg.max_dim, np.nan) if cfg.keep_final_x else None
    message = f"{type(exc).__name__}: {exc}"
    row = {
        "run": task.index, "problem": task.problem.label, "solver": task.solver.label,
        "solver_class": None, "optimizer": task.optimizer.label, "optimizer_class": None,
        "lr": task.lr, "preference": None if task.preference is None
        else [float(v) for v in task.preference],
        "seed": task.seed, "dim": int(problem.dim), "diverged": False, "diverged_step": None,
        "reason": None, "steps_done": None, "time_s": time.perf_counter() - t_start,
        "failed": True, "error": message,
    }
    return {"row": row, "losses": np.full((rec, c), np.nan),
            "lambdas": np.full((rec, c), np.nan),
            "x": np.full((rec, cfg.max_dim), np.nan) if cfg.record_x else None,
            "final_losses": np.full(c, np.nan), "final_lambdas": np.full(c, np.nan),
            "final_x": final_x}


def _execute_or_record(task, cfg, progress=None, record=True):
    """_execute; with ``record``, an exception becomes a failed run's output instead."""
    t_start = time.perf_counter()
    if not record:
        return _execute(task, cfg, progress)
    try:
        return _execute(task, cfg, progress)
    except Exception as exc:  # noqa: BLE001 - every error of a run is recorded, none is lost
        return _failed_output(task, cfg, exc, t_start)


# ============================================================================ thread count
_THREADS_LOCK = threading.Lock()
_THREADS = {"depth": 0, "saved": None}


@contextmanager
def thread_count(n):
    """madam's thread count set to ``n`` inside (None: unchanged) and restored after, exactly
    (a count that followed OpenMP's limit follows it again). Nested and concurrent uses (the
    threads of a ThreadPoolExecutor) set it once and restore it when the last one leaves."""
    if n is None:
        yield
        return
    from .. import _core

    with _THREADS_LOCK:
        if _THREADS["depth"] == 0:
            _THREADS["saved"] = (_core._settings["n_threads"], _core.lib.cm_blas_get_num_threads())
            _core.set_num_threads(n)
        _THREADS["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS["depth"] -= 1
            if _THREADS["depth"] == 0:
                setting, blas = _THREADS["saved"]
                _core.lib.cm_blas_set_num_threads(blas)
                _core._settings["n_threads"] = setting


# ============================================================================ worker tasks
class _Bundle(NamedTuple):
    """What every run of a grid shares: {label: spec} of problems, solvers, optimisers, and the
    run settings. Pickled once by the driver (cloudpickle when installed: lambdas travel too)."""

    problems: dict
    solvers: dict
    optimizers: dict
    cfg: object

    def task(self, plain):
        index, p, s, o, lr, pref, seed = plain
        return _Task(index, self.problems[p], self.solvers[s], self.optimizers[o], lr, pref, seed)


def plain_task(task):
    """A _Task as plain data: (index, problem, solver, optimizer labels, lr, preference, seed)."""
    return (task.index, task.problem.label, task.solver.label, task.optimizer.label, task.lr,
            task.preference, task.seed)


def dumps_bundle(bundle):
    """(key, bytes) of a bundle: cloudpickle when importable (it pickles lambdas and functions
    of __main__ by value), else pickle."""
    try:
        import cloudpickle
        data = cloudpickle.dumps(bundle)
    except ImportError:
        data = pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.sha256(data).hexdigest(), data


# key -> _Bundle, per worker process (a forked pool finds the driver's entry already here)
_BUNDLES = {}
_BUNDLES_KEPT = 4


def _bundle(key, data):
    bundle = _BUNDLES.get(key)
    if bundle is None:
        if data is None:
            raise RuntimeError("madam.run: a worker was given no specifications (a forked "
                               "worker must be forked after the run starts)")
        bundle = pickle.loads(data)
        while len(_BUNDLES) >= _BUNDLES_KEPT:
            _BUNDLES.pop(next(iter(_BUNDLES)))
        _BUNDLES[key] = bundle
    return bundle


def run_task(key, data, plain, threads, record):
    """One run on a worker: the module-level function an executor is given. ``data`` is the
    pickled bundle (None for forked workers, which inherit it), ``plain`` the run as plain data
    (see :func:`plain_task`), ``threads`` madam's thread count inside the run (restored after),
    ``record``: record an exception as a failed run rather than raise it."""
    bundle = _bundle(key, data)
    with thread_count(threads):
        return _execute_or_record(bundle.task(plain), bundle.cfg, None, record)
