"""madam.run: a grid of runs, each stepped through the multi-objective protocol."""
import os
import warnings

import numpy as np

from .._validate import integer as _int_arg
from .._validate import flag, is_integer, positive
from . import engine, progress as _progress, store as _store
from .execute import _Bundle, _Config, _Task, plain_task
from .results import _from_outputs
from .spec import (_check_preferences, _entries, _is_pair, _lr_axis, _OptimizerSpec,
                   _ProblemSpec, _SolverSpec, _unique_labels)


def run(problems, solvers, optimizers, *, preferences=None, seeds=(0,), steps=1000, lr=None,
        record_every=None, record_x=False, keep_final_x=True, full_losses=False, max_loss=1e12,
        front_points=200, progress=None, workers=1, executor=None, shard=None, store=None,
        threads=None, errors="record"):
    """Run the grid problems x solvers x optimisers x lr x preferences x seeds; see the module
    docstring for the specifications and for what one run does, and docs/big-grids.md for
    executors, shards and stores.

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
        progress: True/False; None (default) shows the bar in a terminal (stderr is a TTY) or a
            Jupyter kernel, never under pytest. tqdm's bar (``tqdm.auto``) when tqdm is
            installed, else a text line: runs done, runs failed, steps/s, ETA.
        workers: processes to run the grid in (forked from this one, so any specification
            works, lambdas included; Linux/macOS). Results identical to workers=1.
        executor: a ``concurrent.futures.Executor`` to run the grid on (mutually exclusive with
            ``workers``): a ``ProcessPoolExecutor``, a Dask ``Client.get_executor()`` for a
            cluster, ... Each run is one task; the specifications must pickle (cloudpickle is
            used when installed). Results identical to the in-process run.
        shard: ``(k, K)``: run only the runs whose grid index i has ``i % K == k`` (0 <= k < K),
            e.g. one SLURM array task each; ``RunResult.concat`` of the K shards' results is the
            whole grid's result.
        store: a directory: each finished run is written there (atomically) as it completes,
            and runs already there are not run again; a store made for another grid or madam
            version is refused. The result is read back from the store.
        threads: madam's thread count inside each run (restored after); None: 1 for runs on
            workers or an executor, this process's own setting for runs in it. Results do not
            depend on it.
        errors: ``"record"`` (default): a run that raises is recorded as failed (grid columns
            ``failed`` and ``error``, NaN arrays), the grid goes on, and a RuntimeWarning at
            the end gives the count and the first error; ``"raise"``: the first error stops
            the grid and propagates.

    Returns:
        :class:`RunResult` (for a shard: its runs only, in grid order).
    """
    steps = _int_arg("steps", steps, 1)
    record_every = (max(1, steps // 100) if record_every is None
                    else _int_arg("record_every", record_every, 1))
    workers = _int_arg("workers", workers, 1)
    max_loss = positive("max_loss", max_loss, finite=False)  # inf: no bound
    front_points = _int_arg("front_points", front_points, 0)
    record_x = flag("record_x", record_x)
    keep_final_x = flag("keep_final_x", keep_final_x)
    full_losses = flag("full_losses", full_losses)
    show = _progress.enabled(progress)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError("executor must be a concurrent.futures.Executor (an object with "
                        f"submit()), got {type(executor).__name__}")
    if executor is not None and workers != 1:
        raise ValueError(f"pass workers= or executor=, not both (got workers={workers} and "
                         f"executor={type(executor).__name__})")
    shard = _check_shard(shard)
    threads = None if threads is None else _threads_arg(threads)
    if errors not in ("record", "raise"):
        raise ValueError(f"errors must be 'record' or 'raise', got {errors!r}")
    if store is not None and not isinstance(store, (str, bytes, os.PathLike)):
        raise TypeError("store must be a directory path (str or os.PathLike), got "
                        f"{type(store).__name__}")

    if is_integer(seeds):
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
    plains = [plain_task(t) for t in tasks]
    description = _store.describe(pspecs, sspecs, ospecs, plains, cfg)
    versions = _store.versions()
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
        "grid_hash": _store.grid_hash(description, versions),
    }
    fronts, psets = {}, {}
    if front_points:
        for p in pspecs:
            front = p.problem.pareto_front(front_points)
            if front is not None:
                fronts[p.label] = np.asarray(front, dtype=np.float64)
            pset = p.problem.pareto_set(front_points)
            if pset is not None:
                psets[p.label] = np.asarray(pset, dtype=np.float64)

    mine = tasks if shard is None else [t for t in tasks if t.index % shard[1] == shard[0]]
    todo, held = mine, None
    if store is not None:
        held = _store.open_store(store, {
            "format": _store.FORMAT, "grid_hash": meta["grid_hash"], **versions,
            "runs": len(tasks), "record_steps": list(record_steps), "record_x": cfg.record_x,
            "keep_final_x": cfg.keep_final_x, "n_obj": n_obj, "max_dim": max_dim,
            "meta": meta, "description": description})
        held.clean(t.index for t in mine)
        done, _ = held.listing()
        todo = [t for t in mine if t.index not in done]
        if fronts or psets:
            held.write_fronts(fronts, psets)

    outs = {}

    def on_done(out):
        if held is not None:
            held.write(out)   # the arrays live in the store from now on, not here
        else:
            outs[out["row"]["run"]] = out

    bar = (_progress.make_bar(len(mine), steps, done=len(mine) - len(todo)) if show else None)
    try:
        engine.execute(todo, _Bundle({p.label: p for p in pspecs}, {s.label: s for s in sspecs},
                                     {o.label: o for o in ospecs}, cfg),
                       executor=executor, workers=workers, threads=threads,
                       record=errors == "record", progress=bar, on_done=on_done)
    finally:
        if bar is not None:
            bar.close()

    if held is not None:
        ordered = [held.read(t.index) for t in mine]
    else:
        ordered = [outs[t.index] for t in mine]
    if shard is not None:
        meta["shard"] = list(shard)
    result = _from_outputs(ordered, record_steps, n_obj, max_dim, cfg.record_x,
                           cfg.keep_final_x, meta, fronts, psets)
    failed = [row for row in result.grid if row.get("failed")]
    if failed:
        first = failed[0]
        warnings.warn(
            f"madam.run: {len(failed)} of {len(result)} runs failed (an exception, not a "
            f"divergence); the first, run {first['run']} ({first['problem']}, "
            f"{first['solver']}, {first['optimizer']}, lr {first['lr']}, seed "
            f"{first['seed']}): {first['error']}. Their rows have failed=True and error; "
            "result.select(failed=True) lists them; errors='raise' stops at the first one",
            RuntimeWarning, stacklevel=2)
    return result


def _check_shard(shard):
    """None, or (k, K) with integers 0 <= k < K."""
    if shard is None:
        return None
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or not all(is_integer(v) for v in shard)):
        raise TypeError(f"shard must be a pair (k, K) of integers (run the k-th of K slices), "
                        f"got {shard!r}")
    k, count = int(shard[0]), int(shard[1])
    if count < 1:
        raise ValueError(f"shard = {shard!r}: K (the number of shards) must be >= 1")
    if not 0 <= k < count:
        raise ValueError(f"shard = {shard!r}: k must satisfy 0 <= k < K = {count}")
    return k, count


def _threads_arg(threads):
    from .._core import MAX_THREADS

    threads = _int_arg("threads", threads, 1)
    if threads > MAX_THREADS:
        raise ValueError(f"threads must be <= {MAX_THREADS}, got {threads}")
    return threads
