"""RunResult: the arrays and rows of a grid, selection, Pareto fronts, storage; hypervolume."""
import json
import os

import numpy as np

from .. import pareto as _pareto
from .spec import _plain

_FORMAT = 1
_ARRAYS = ("steps", "losses", "lambdas", "x", "final_losses", "final_lambdas", "final_x")


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
      ``reason``, ``steps_done``, ``time_s``, ``failed`` (the run raised an exception) and
      ``error`` (its type and message, else None). A failed run's arrays are NaN and its
      ``solver_class``, ``optimizer_class`` and ``steps_done`` are None.
    * ``steps`` (R,): the recorded step numbers; ``losses``, ``lambdas`` (N, R, C);
      ``x`` (N, R, n) or None; ``final_losses``, ``final_lambdas`` (N, C); ``final_x`` (N, n) or
      None. All float64; records after a divergence are NaN.
    * ``fronts`` / ``pareto_sets``: {problem label: (M, C) / (M, n)} analytic fronts and sets.
    * ``meta``: steps, record_every, n_obj, max_loss, the problems' names, dims, dtypes, boxes,
      ``grid_hash`` (the grid's identity: see docs/big-grids.md) and, for one shard of a grid,
      ``shard`` = [k, K].
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
        failed = int(self.failed.sum())
        return (f"<RunResult {len(self)} runs x {self.steps.size} records, C={self.n_obj}, "
                f"{int(self.diverged.sum())} diverged{f', {failed} failed' if failed else ''}; "
                f"{parts}>")

    @property
    def n_obj(self):
        return int(self.final_losses.shape[1]) if self.final_losses.ndim == 2 else 0

    @property
    def diverged(self):
        """(N,) bool: which runs diverged."""
        return np.array([bool(row["diverged"]) for row in self.grid], dtype=bool)

    @property
    def failed(self):
        """(N,) bool: which runs raised an exception (their ``error`` column says what)."""
        return np.array([bool(row.get("failed", False)) for row in self.grid], dtype=bool)

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
        """One RunResult from several with the same recorded steps and C.

        Shards of one grid (results of ``run(..., shard=(k, K))`` for the same grid, given in
        any order) are merged back into grid order: their runs keep their grid indices
        (``run``), and all K shards together give exactly the whole grid's result (same arrays,
        rows and meta). Any other results are appended in the order given, with ``run``
        renumbered 0, 1, ...
        """
        results = list(results)
        if not results:
            raise ValueError("results is empty")
        first = results[0]
        for r in results[1:]:
            if not np.array_equal(r.steps, first.steps):
                raise ValueError("results record different steps; they cannot be concatenated")
            if r.n_obj != first.n_obj:
                raise ValueError("results have different numbers of objectives")
        if all(r.meta.get("shard") is not None for r in results):
            return cls._merge_shards(results)
        return cls._append(results, renumber=True)

    @classmethod
    def _append(cls, results, renumber):
        first = results[0]
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
        if renumber:
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

    @classmethod
    def _merge_shards(cls, results):
        hashes = {r.meta.get("grid_hash") for r in results}
        if len(hashes) != 1 or None in hashes:
            raise ValueError("concat: these shards come from different grids (their "
                             "meta['grid_hash'] differ); shards merge only with shards of the "
                             "same grid and madam version")
        shards = []
        for r in results:
            shard = r.meta["shard"]
            shards.extend([tuple(s) for s in shard] if isinstance(shard[0], (list, tuple))
                          else [tuple(shard)])
        if len(set(shards)) != len(shards):
            raise ValueError(f"concat: a shard is given twice ({sorted(shards)})")
        runs = np.array([row["run"] for r in results for row in r.grid], dtype=np.int64)
        if np.unique(runs).size != runs.size:
            raise ValueError("concat: two shards hold the same run")
        out = cls._append(results, renumber=False).take(np.argsort(runs, kind="stable"))
        meta = dict(results[0].meta)
        counts = {k for _, k in shards}
        if len(counts) == 1 and len(shards) == counts.pop():   # every shard: the whole grid
            meta.pop("shard")
        else:
            meta["shard"] = [list(s) for s in sorted(shards)]
        problems = {}
        for r in results:
            problems.update(r.meta.get("problems", {}))
        meta["problems"] = {k: problems[k] for k in results[0].meta.get("problems", {})}
        meta["problems"].update(problems)
        out.meta = meta
        return out

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


def load_results(path, *, partial=False):
    """Read a :class:`RunResult`: a file saved with :meth:`RunResult.save`, or a run store
    directory (``madam.run(..., store=DIR)``; docs/big-grids.md), whose runs come in grid order.
    A store with runs not yet done is an error naming them, unless ``partial=True``: then the
    result holds the runs done so far (their ``run`` column says which)."""
    if os.path.isdir(os.fspath(path)):
        from . import store

        return store.load(path, partial=partial)
    return RunResult.load(path)


def _stack(arrays, empty_shape):
    return np.stack(arrays) if arrays else np.zeros(empty_shape)


def _from_outputs(outs, record_steps, n_obj, max_dim, record_x, keep_final_x, meta, fronts,
                  psets):
    """A RunResult from the runs' outputs (dicts of a row and arrays), in the order given."""
    r = len(record_steps)
    return RunResult(
        grid=[o["row"] for o in outs],
        steps=np.array(record_steps, dtype=np.int64),
        losses=_stack([o["losses"] for o in outs], (0, r, n_obj)),
        lambdas=_stack([o["lambdas"] for o in outs], (0, r, n_obj)),
        final_losses=_stack([o["final_losses"] for o in outs], (0, n_obj)),
        final_lambdas=_stack([o["final_lambdas"] for o in outs], (0, n_obj)),
        x=_stack([o["x"] for o in outs], (0, r, max_dim)) if record_x else None,
        final_x=_stack([o["final_x"] for o in outs], (0, max_dim)) if keep_final_x else None,
        meta=meta, fronts=fronts, pareto_sets=psets)


# ============================================================================ hypervolume
def hypervolume(points, ref):
    r"""Hypervolume (Lebesgue measure) dominated by ``points`` (N, C) and bounded by ``ref``
    (C,), for minimisation: the volume of the union of the boxes [p, ref], tolerant of the NaN
    endpoints of diverged runs.

    Rows holding a NaN or Inf (diverged runs) are dropped; points not strictly below ``ref`` in
    every objective add nothing. The volume is :func:`madam.pareto.hypervolume` (C kernels: exact
    sweeps for C <= 3, WFG above).
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
    return float(_pareto.hypervolume(pts, ref))
