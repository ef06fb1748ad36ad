"""madam.run: a grid of runs, each stepped through the multi-objective protocol."""

import numpy as np

from .execute import _Config, _Progress, _progress_enabled, _run_tasks, _Task
from .results import RunResult
from .spec import (_check_preferences, _entries, _int_arg, _is_int, _is_pair, _lr_axis,
                   _OptimizerSpec, _positive_real, _ProblemSpec, _SolverSpec, _unique_labels)


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
