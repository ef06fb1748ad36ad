"""tune_lr: the learning rate per (solver, optimiser) that a grid's metric prefers."""
import math
import warnings
from typing import NamedTuple

import numpy as np

from .grid import run
from .results import RunResult, hypervolume


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

    A group with a diverged run (or a failed one: a run that raised, see :func:`run`'s
    ``errors``) is disqualified (score NaN) unless ``allow_divergence``; then those runs are
    left out of its score. The chosen lr is the best-scoring one (the first of
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
    bad = result.diverged | result.failed   # a run that raised counts as a diverged one
    ok = ~bad
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
        n_div = int(bad[idx].sum())
        good = idx[~bad[idx]]
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
