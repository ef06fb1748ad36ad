"""One run of the grid (one problem, solver, optimiser, lr, preference and seed), the progress
bar, and the forked worker pool (the per-step loop is described in madam.runs' module doc)."""
import math
import os
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np

from .._validate import NonFiniteError
from ..multi import as_multi_objective
from .spec import _is_real


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
        "time_s": time.perf_counter() - t_start,
    }
    return {"row": row, "losses": losses, "lambdas": lambdas, "x": xs,
            "final_losses": final_losses, "final_lambdas": final_lambdas, "final_x": final_x}


# ============================================================================ parallel runs
_FORK_STATE = None


def _fork_init():
    from .. import _core

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
