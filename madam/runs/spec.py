"""Grid specifications: parsing problems, solvers, optimisers, preferences and learning rates
into labelled specs (the rules are in madam.runs' module doc)."""
import copy
import inspect
from itertools import combinations

import numpy as np

from .._validate import integer as _int_arg
from .._validate import nonnegative


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
        from .. import problems as _problems

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
        from .. import solvers as _solvers

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
    """The optimiser registry (madam.optim.OPTIMIZERS): lower-case names to classes."""
    from ..optim import OPTIMIZERS

    return OPTIMIZERS


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
            if spec.__name__ in ("Optimizer", "MultiObjectiveOptimizer"):
                raise TypeError(f"optimizer {spec.__name__} is the abstract base; pick one of "
                                f"{', '.join(_optimizer_classes())}")
            self.cls, self.factory = spec, None   # plain attributes: the spec pickles
            default = spec.__name__.lower()
        elif hasattr(spec, "step"):
            raise TypeError("optimizer must be a class, a name, a (name, kwargs) pair or a factory "
                            "taking the parameter array, not an optimizer instance (it is bound "
                            "to other parameters)")
        elif callable(spec):
            if kwargs:
                raise TypeError("optimizer: a (spec, kwargs) pair needs a class or a name")
            self.cls, self.factory = None, spec
            default = None
        else:
            raise TypeError("optimizer must be a class, a name, a (name, kwargs) pair or a "
                            f"factory, got {type(spec).__name__}")
        self.kwargs = kwargs
        self.label = label
        self.default_label = default

    def build(self, x):
        opt = self.cls(x, **self.kwargs) if self.cls is not None else self.factory(x)
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
            vals = tuple(nonnegative(name, u) for u in np.asarray(v, dtype=object).ravel())
            if not vals:
                raise ValueError(f"{name} is an empty sequence")
            return vals
        return (nonnegative(name, v),)

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
