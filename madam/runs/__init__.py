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
      multi.step(J, f)                             # x updated in place; lam_t = its
                                                   # multi.last_preference (madam.multi: MAdam
                                                   # with optimizer.solver = solver, or
                                                   # Scalarized(optimizer, solver), whose step
                                                   # is lam, d = solver.solve(J, f); step(d))
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
  failed; also ``steps_done``) and ``reason``. Other errors fail the run (``failed``,
  ``error``; see "Big grids" below). NumPy's overflow and invalid-value warnings are silenced
  inside a run (divergence is reported this way instead).

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
records are written into preallocated arrays.

Big grids (docs/big-grids.md): ``workers > 1`` runs the grid in forked processes (Linux/macOS);
``executor=`` runs it on any ``concurrent.futures.Executor`` (a ProcessPoolExecutor, a Dask
cluster's ``Client.get_executor()``); ``shard=(k, K)`` runs the runs i with i % K == k (SLURM
arrays; ``RunResult.concat`` merges the K shards back); ``store=DIR`` writes every finished run
to DIR as it completes and skips the runs already there (resume after a crash). Each run's seed
and thread count are fixed inside the run, so results are identical, bit for bit, whatever the
engine, the worker count or the sharding. A run that raises is recorded as failed (grid columns
``failed``, ``error``) and reported in a warning at the end (``errors="raise"`` stops instead).
"""
from .grid import run
from .results import RunResult, hypervolume, load_results
from .spec import preference_grid
from .tune import LRTuning, tune_lr

__all__ = ["run", "RunResult", "load_results", "tune_lr", "LRTuning", "preference_grid",
           "hypervolume"]
