"""The run store of madam.run(store=DIR): one file per finished run, written atomically as the run
completes, and a manifest that says which grid the directory holds (docs/big-grids.md, "Store").

Layout::

    DIR/manifest.json          format, grid hash, madam version, core source hash, run count,
                               record settings, the result's meta, the grid's description
    DIR/fronts.npz             the problems' analytic Pareto fronts and sets (labels in the
                               manifest)
    DIR/runs/run-0000012.npz   run 12, finished (diverged or not)
    DIR/runs/run-0000013.failed.npz
                               run 13, which raised (retried by the next call with this store)

A run file holds ``losses``, ``lambdas`` (R, C), ``final_losses``, ``final_lambdas`` (C,),
``x`` (R, n) and ``final_x`` (n,) when recorded, ``row_json`` (the grid row as JSON) and
``grid_hash``; no pickles (``np.load(..., allow_pickle=False)`` reads it). Every file is written
to a temporary name in the same directory and moved into place with ``os.replace``, so a reader
(or a process killed mid-write) never sees half a file.
"""
import hashlib
import json
import math
import os
import tempfile
import time

import numpy as np

from .spec import _plain

FORMAT = "madam.runs.store/1"
MANIFEST = "manifest.json"
FRONTS = "fronts.npz"
RUNS = "runs"
_RUN_ARRAYS = ("losses", "lambdas", "x", "final_losses", "final_lambdas", "final_x")


# ============================================================================ the grid's identity
def versions():
    """{"madam_version", "core_source_hash"} of the running package (the SHA-256 of the C
    sources compiled into the loaded core)."""
    from .. import __version__
    from .._core import ffi, lib

    return {"madam_version": __version__,
            "core_source_hash": ffi.string(lib.cm_source_hash()).decode()}


def _qualname(obj):
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


def _code_digest(code, h):
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_digest(const, h)
        else:
            h.update(repr(const).encode())


def _callable(obj, depth):
    out = {"ref": _qualname(obj)}
    func = getattr(obj, "__func__", obj)  # a bound method: its function (and its object's class)
    if func is not obj:
        out["self"] = _qualname(type(obj.__self__))
    code = getattr(func, "__code__", None)
    if code is not None:
        h = hashlib.sha256()
        _code_digest(code, h)
        out["code"] = h.hexdigest()
        cells = getattr(func, "__closure__", None) or ()
        if cells:
            values = []
            for cell in cells:
                try:
                    values.append(_value(cell.cell_contents, depth - 1))
                except ValueError:  # an empty cell
                    values.append(None)
            out["closure"] = values
    return out


def _value(value, depth=2):
    """A plain, deterministic description of a specification value: numbers, strings and
    containers as themselves, arrays by shape, dtype and SHA-256, classes and functions by
    qualified name (functions also by a digest of their bytecode and closure), other objects by
    class and (to ``depth`` levels) their attributes."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return _value(value.item(), depth)
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {"array": list(arr.shape), "dtype": str(arr.dtype),
                "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(value, (list, tuple)):
        if len(value) > 64:
            return _value(np.asarray(value, dtype=object).astype(str), depth)
        return [_value(v, depth) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v, depth) for k, v in sorted(value.items(), key=lambda kv:
                                                                str(kv[0]))}
    if isinstance(value, type):
        return {"class": _qualname(value)}
    func = getattr(value, "func", None)
    if func is not None and hasattr(value, "keywords"):  # functools.partial
        return {"partial": _value(func, depth), "args": _value(list(value.args), depth),
                "kwargs": _value(dict(value.keywords), depth)}
    if callable(value) and (hasattr(value, "__code__") or hasattr(value, "__func__")
                            or not hasattr(value, "__dict__")):
        return _callable(value, depth)
    out = {"class": _qualname(type(value))}
    state = getattr(value, "__dict__", None)
    if depth > 0 and isinstance(state, dict):
        out["state"] = {k: _value(v, depth - 1) for k, v in sorted(state.items())
                        if not k.startswith("_")}
    return out


def _probe(problem):
    """SHA-256 of a problem's start (seed 0), losses and Jacobian there: a fingerprint that
    changes with its data (None if the evaluation fails)."""
    try:
        with np.errstate(all="ignore"):
            x = np.array(problem.initial_points(1, np.random.default_rng(0))[0],
                         dtype=problem.dtype, order="C")
            f, jac = problem.losses_and_jacobian(x, None)
        h = hashlib.sha256()
        for arr in (x, f, jac):
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        return h.hexdigest()
    except Exception:  # noqa: BLE001 - a fingerprint is best effort
        return None


def _problem(spec):
    p = spec.problem
    bounds = getattr(p, "bounds", None)
    return {"class": _qualname(type(p)), "name": str(getattr(p, "name", "")),
            "dim": int(p.dim), "n_obj": int(p.n_obj), "dtype": str(np.dtype(p.dtype)),
            "bounds": None if bounds is None else [_value(np.asarray(b, np.float64))
                                                   for b in bounds],
            "probe": _probe(p)}


def _solver(spec):
    if spec.instance is not None:
        return {"instance": _value(spec.instance)}
    return {"factory": _value(spec.factory), "kwargs": _value(spec.kwargs),
            "conditioned": bool(spec.conditioned)}


def _optimizer(spec):
    if spec.cls is not None:
        return {"class": _qualname(spec.cls), "kwargs": _value(spec.kwargs)}
    return {"factory": _value(spec.factory)}


def describe(pspecs, sspecs, ospecs, plains, cfg):
    """The grid as plain data (what the store's hash covers): run settings, every problem,
    solver and optimiser specification, and the runs (labels, lr, preference, seed)."""
    runs = json.dumps(plains, default=_plain, separators=(",", ":"), allow_nan=True)
    return {
        "steps": cfg.steps, "record_steps": list(cfg.record_steps), "record_x": cfg.record_x,
        "keep_final_x": cfg.keep_final_x, "full_losses": cfg.full_losses,
        "max_loss": _value(float(cfg.max_loss)), "n_obj": cfg.n_obj, "max_dim": cfg.max_dim,
        "problems": {s.label: _problem(s) for s in pspecs},
        "solvers": {s.label: _solver(s) for s in sspecs},
        "optimizers": {s.label: _optimizer(s) for s in ospecs},
        "runs": len(plains), "runs_sha256": hashlib.sha256(runs.encode()).hexdigest(),
    }


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain,
                      allow_nan=True)


def grid_hash(description, vers):
    """SHA-256 of the grid's description and the package versions."""
    return hashlib.sha256(_canonical({"grid": description, **vers}).encode()).hexdigest()


# ============================================================================ files
def _atomic_write(path, write, binary=True):
    """Write a file through ``write(fh)`` to a temporary name beside ``path``, flush it to disk,
    and move it into place (os.replace: readers see the old file or the whole new one)."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _run_name(index, failed=False):
    return f"run-{index:07d}{'.failed' if failed else ''}.npz"


def _read_manifest(path):
    with open(os.path.join(path, MANIFEST)) as fh:
        manifest = json.load(fh)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"store {path!r}: {MANIFEST} is not a madam run store manifest "
                         f"(format {manifest.get('format') if isinstance(manifest, dict) else None!r},"
                         f" expected {FORMAT!r})")
    return manifest


class Store:
    """A run store directory, opened (created, or checked against the grid) by :func:`open_store`."""

    def __init__(self, path, manifest):
        self.path = path
        self.manifest = manifest
        self.hash = manifest["grid_hash"]
        self.runs_dir = os.path.join(path, RUNS)

    # ------------------------------------------------------------------ which runs are there
    def listing(self):
        """(finished, failed): the sets of run indices with a file."""
        done, failed = set(), set()
        try:
            entries = os.listdir(self.runs_dir)
        except FileNotFoundError:
            return done, failed
        for name in entries:
            if not (name.startswith("run-") and name.endswith(".npz")):
                continue
            stem = name[4:-4]
            is_failed = stem.endswith(".failed")
            digits = stem[:-7] if is_failed else stem
            if digits.isdigit():
                (failed if is_failed else done).add(int(digits))
        return done, failed - done

    def clean(self, indices):
        """Remove the temporary files that killed writers left for these runs."""
        wanted = set(indices)
        try:
            entries = os.listdir(self.runs_dir)
        except FileNotFoundError:
            return
        for name in entries:
            if name.startswith(".run-") and name.endswith(".tmp"):
                digits = name[5:].split(".", 1)[0]
                if digits.isdigit() and int(digits) in wanted:
                    try:
                        os.unlink(os.path.join(self.runs_dir, name))
                    except OSError:
                        pass

    # ------------------------------------------------------------------ one run
    def write(self, out):
        row = out["row"]
        index, failed = int(row["run"]), bool(row.get("failed"))
        arrays = {name: out[name] for name in _RUN_ARRAYS if out.get(name) is not None}
        arrays["row_json"] = np.array(json.dumps(row, default=_plain))
        arrays["grid_hash"] = np.array(self.hash)
        _atomic_write(os.path.join(self.runs_dir, _run_name(index, failed)),
                      lambda fh: np.savez(fh, **arrays))
        if not failed:  # a retried run that now finished: drop its failure
            try:
                os.unlink(os.path.join(self.runs_dir, _run_name(index, True)))
            except FileNotFoundError:
                pass

    def read(self, index):
        """The output of run ``index`` (its finished file, else its failed one)."""
        path = os.path.join(self.runs_dir, _run_name(index))
        if not os.path.exists(path):
            path = os.path.join(self.runs_dir, _run_name(index, True))
        with np.load(path, allow_pickle=False) as data:
            stored = str(data["grid_hash"][()])
            if stored != self.hash:
                raise ValueError(f"store {self.path!r}: {path} belongs to another grid "
                                 f"(hash {stored[:12]}, the manifest's {self.hash[:12]})")
            out = {name: (data[name] if name in data.files else None) for name in _RUN_ARRAYS}
            out["row"] = json.loads(str(data["row_json"][()]))
        if out["row"].get("run") != index:
            raise ValueError(f"store {self.path!r}: {path} holds run {out['row'].get('run')}")
        return out

    # ------------------------------------------------------------------ fronts
    def write_fronts(self, fronts, psets):
        arrays = {f"front.{i}": v for i, v in enumerate(fronts.values())}
        arrays.update({f"pareto_set.{i}": v for i, v in enumerate(psets.values())})
        arrays["labels_json"] = np.array(json.dumps({"fronts": list(fronts),
                                                     "pareto_sets": list(psets)}))
        _atomic_write(os.path.join(self.path, FRONTS), lambda fh: np.savez(fh, **arrays))

    def read_fronts(self):
        path = os.path.join(self.path, FRONTS)
        if not os.path.exists(path):
            return {}, {}
        with np.load(path, allow_pickle=False) as data:
            labels = json.loads(str(data["labels_json"][()]))
            fronts = {k: data[f"front.{i}"] for i, k in enumerate(labels["fronts"])}
            psets = {k: data[f"pareto_set.{i}"] for i, k in enumerate(labels["pareto_sets"])}
        return fronts, psets


def _differences(old, new):
    """What differs between two manifests, in words."""
    out = []
    for key in ("madam_version", "core_source_hash"):
        if old.get(key) != new.get(key):
            out.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    a, b = old.get("description") or {}, new.get("description") or {}
    for key in sorted(set(a) | set(b)):
        if _canonical(a.get(key)) == _canonical(b.get(key)):
            continue
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            labels = sorted(k for k in set(a[key]) | set(b[key])
                            if _canonical(a[key].get(k)) != _canonical(b[key].get(k)))
            out.append(f"{key} ({', '.join(map(repr, labels))})")
        else:
            out.append(key)
    return out or ["the grid hash"]


def open_store(path, manifest):
    """Open the store at ``path`` for the grid of ``manifest``: create it (directory, manifest)
    when new; refuse (ValueError naming ``store``) one that holds another grid or was made by
    another madam version, or a non-empty directory that is not a store."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"store must be a directory path (str or os.PathLike), got "
                        f"{type(path).__name__}")
    path = os.fsdecode(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"store {path!r} exists and is not a directory")
    os.makedirs(path, exist_ok=True)
    mpath = os.path.join(path, MANIFEST)
    if not os.path.exists(mpath):
        # (shards sharing a store may create it at the same time: what they write is the same)
        others = [n for n in os.listdir(path)
                  if not n.startswith(".") and n not in (MANIFEST, RUNS, FRONTS)]
        if others:
            raise ValueError(f"store {path!r} is a non-empty directory with no {MANIFEST} (not "
                             f"a madam run store: it holds {sorted(others)[:5]}); pass a new or "
                             "empty directory")
        new = dict(manifest, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        _atomic_write(mpath, lambda fh: fh.write(json.dumps(new, indent=1,
                                                            default=_plain).encode()))
    old = _read_manifest(path)
    if old.get("grid_hash") != manifest["grid_hash"]:
        raise ValueError(
            f"store {path!r} holds runs of another grid or madam version, which madam.run "
            f"does not mix: {'; '.join(_differences(old, manifest))} differ. Use a new "
            "store directory (or delete this one to start over)")
    os.makedirs(os.path.join(path, RUNS), exist_ok=True)
    return Store(path, old)


def load(path, partial=False):
    """The RunResult of a store directory (runs in grid order). Runs without a file (not run
    yet, or in flight) are an error naming them, unless ``partial``: then they are left out."""
    from .results import _from_outputs

    path = os.fsdecode(os.fspath(path))
    if not os.path.exists(os.path.join(path, MANIFEST)):
        raise ValueError(f"{path!r} is not a madam run store (no {MANIFEST})")
    store = Store(path, _read_manifest(path))
    m = store.manifest
    done, failed = store.listing()
    have = sorted(done | failed)
    missing = sorted(set(range(m["runs"])) - set(have))
    if missing and not partial:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise ValueError(f"store {path!r} has {len(have)} of {m['runs']} runs (missing: "
                         f"{shown}); finish it with madam.run(..., store=...) or pass "
                         "partial=True")
    fronts, psets = store.read_fronts()
    return _from_outputs([store.read(i) for i in have], m["record_steps"], m["n_obj"],
                         m["max_dim"], m["record_x"], m["keep_final_x"], m["meta"], fronts,
                         psets)
