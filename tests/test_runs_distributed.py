"""madam.run past one process (issue 15): executors (ProcessPoolExecutor, a 2-worker Dask
LocalCluster, threads), shards, the run store (resume after SIGKILL, refusal of another grid or
version), failed runs and the progress bar.

Every result is compared bit for bit (array bytes, grid rows but ``time_s``, meta, fronts) with
the serial in-process run of the same grid. Grids are tiny (20 runs of 60 steps; 400 steps for
the kill test) so that the file stays well under a minute on two cores.
"""
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import madam
from madam import solvers as S
from madam.runs import RunResult, load_results, preference_grid, run
from madam.runs import execute as _execute_mod
from madam.runs import progress as _progress
from madam.runs import store as _store

PREFS3 = preference_grid(2, 4, interior=True)
SOLVERS = {"mgda": "mgda", "epo": "epo", "rlw": "rlw"}
OPTIMIZERS = {"adam": ("adam", {"lr": 0.02}), "sgd": "sgd"}
GRID = dict(preferences=PREFS3, seeds=[0, 1], steps=60, record_every=10, record_x=True)
N_RUNS = 20   # mgda, rlw: 2 optimisers x 2 seeds; epo: 2 x 3 preferences x 2 seeds
ARRAYS = ("steps", "losses", "lambdas", "x", "final_losses", "final_lambdas", "final_x")


def grid(**kw):
    return run("vlmop2", SOLVERS, OPTIMIZERS, **{**GRID, **kw})


@pytest.fixture(scope="module")
def serial():
    return grid()


def rows(result):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in result.grid]


def assert_identical(got, want, meta=True):
    """Bit for bit: array bytes and dtypes, grid rows (but the wall time), meta and fronts."""
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert a.tobytes() == b.tobytes(), f"{name} differs"
    assert rows(got) == rows(want)
    if meta:
        assert json.dumps(got.meta, sort_keys=True) == json.dumps(want.meta, sort_keys=True)
    assert list(got.fronts) == list(want.fronts)
    for label in want.fronts:
        assert got.fronts[label].tobytes() == want.fronts[label].tobytes()


def _epo(preference):   # a module-level factory: picklable by reference
    return S.EPO(preference)


# ============================================================================ executors
def test_process_pool_executor_matches_serial(serial):
    assert len(serial) == N_RUNS and not serial.failed.any()
    with ProcessPoolExecutor(2) as ex:
        assert_identical(grid(executor=ex), serial)
        # a lambda factory travels too when cloudpickle is installed (it is a dask dependency)
        if importlib.util.find_spec("cloudpickle") is None:
            return
        factory = lambda preference: S.EPO(preference)  # noqa: E731
        lam = run("vlmop2", {"epo": factory}, OPTIMIZERS, executor=ex, **GRID)
        assert_identical(lam, run("vlmop2", {"epo": factory}, OPTIMIZERS, **GRID))
        assert_identical(run("vlmop2", {"epo": _epo}, OPTIMIZERS, executor=ex, **GRID), lam,
                         meta=False)   # another factory: another grid hash, the same runs
        np.testing.assert_array_equal(lam.final_x, serial.select(solver="epo").final_x)


def test_forked_workers_take_lambdas(serial):
    """workers=2 forks: specifications are inherited, never pickled (lambdas, local classes)."""
    lam = run("vlmop2", {"epo": lambda preference: S.EPO(preference)}, OPTIMIZERS, workers=2,
              **GRID)
    np.testing.assert_array_equal(lam.final_x, serial.select(solver="epo").final_x)
    assert lam.losses.tobytes() == serial.select(solver="epo").losses.tobytes()


def test_thread_pool_executor_and_thread_count(serial):
    seen = []

    class Spy(S.MGDA):
        def solve(self, jacobian, losses=None):
            seen.append(madam.get_num_threads())
            return super().solve(jacobian, losses)

    before = (madam._core._settings["n_threads"], madam.get_num_threads())
    with ThreadPoolExecutor(2) as ex:
        assert_identical(grid(executor=ex), serial)
        run("vlmop2", Spy, "adam", steps=3, executor=ex)
    assert set(seen) == {1}                       # one thread each on an executor
    assert (madam._core._settings["n_threads"], madam.get_num_threads()) == before  # restored
    seen.clear()
    run("vlmop2", Spy, "adam", steps=3, threads=2)
    assert set(seen) == {2}
    assert (madam._core._settings["n_threads"], madam.get_num_threads()) == before


def test_dask_local_cluster_matches_serial(serial, tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install 'madam[dask]')")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        ex = client.get_executor()
        assert_identical(grid(executor=ex), serial)
        # one shard into a store through the cluster, the rest here: the same grid
        part = grid(executor=ex, shard=(1, 2), store=tmp_path / "s")
        assert part.column("run") == list(range(1, N_RUNS, 2))
    assert_identical(grid(store=tmp_path / "s"), serial)


def test_workers_and_executor_arguments():
    with pytest.raises(TypeError, match="executor"):
        grid(executor=3)
    with ThreadPoolExecutor(1) as ex, pytest.raises(ValueError, match="workers= or executor="):
        grid(executor=ex, workers=2)
    with pytest.raises(ValueError, match="threads"):
        grid(threads=0)


def test_errors_raise_on_an_executor():
    with ProcessPoolExecutor(2) as ex, pytest.raises(ValueError, match="losses must be > 0"):
        run("cagrad_toy", "epo", "adam", preferences=[0.5, 0.5], seeds=[0, 1], steps=500,
            lr=0.5, executor=ex, errors="raise")
    with ProcessPoolExecutor(2) as ex, pytest.warns(RuntimeWarning, match="2 of 4 runs failed"):
        res = run("cagrad_toy", {"ok": "mgda", "bad": "epo"}, "adam", preferences=[0.5, 0.5],
                  seeds=[0], steps=500, lr=[0.5, 0.1], executor=ex)
    assert res.failed.tolist() == [False, False, True, True]  # the good lr of epo fails too
    assert all(e.startswith("ValueError") for e in res.select(failed=True).column("error"))


# ============================================================================ shards
def test_shards_concatenate_to_the_whole_grid(serial):
    parts = [grid(shard=(k, 3)) for k in range(3)]
    for k, part in enumerate(parts):
        assert part.column("run") == [i for i in range(N_RUNS) if i % 3 == k]
        assert part.meta["shard"] == [k, 3]
    whole = RunResult.concat([parts[2], parts[0], parts[1]])   # any order
    assert_identical(whole, serial)
    two = RunResult.concat(parts[:2])
    assert two.meta["shard"] == [[0, 3], [1, 3]] and len(two) == 14
    assert_identical(RunResult.concat([two, parts[2]]), serial)
    with pytest.raises(ValueError, match="twice"):
        RunResult.concat([parts[0], parts[0]])
    with pytest.raises(ValueError, match="different grids"):
        RunResult.concat([parts[0], grid(seeds=[0, 2], shard=(1, 3))])
    empty = grid(shard=(24, 25))   # more shards than runs: an empty slice
    assert len(empty) == 0 and empty.losses.shape == (0, serial.steps.size, 2)


@pytest.mark.parametrize("shard, exc", [
    ((3, 3), ValueError), ((-1, 3), ValueError), ((0, 0), ValueError), ((0,), TypeError),
    ("0/3", TypeError), ((0.0, 3), TypeError), ((True, 3), TypeError),
])
def test_shard_validation(shard, exc):
    with pytest.raises(exc, match="shard"):
        grid(shard=shard)


# ============================================================================ the store
def test_store_writes_each_run_and_resumes_without_recomputing(serial, tmp_path):
    path = tmp_path / "store"
    first = grid(shard=(0, 2), store=path)        # half the grid
    names = sorted(os.listdir(path / "runs"))
    assert names == [f"run-{i:07d}.npz" for i in range(0, N_RUNS, 2)]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == _store.FORMAT and manifest["runs"] == N_RUNS
    assert manifest["madam_version"] == madam.__version__
    assert manifest["grid_hash"] == first.meta["grid_hash"] == serial.meta["grid_hash"]
    with np.load(path / "runs" / names[0], allow_pickle=False) as data:   # no pickles
        assert json.loads(str(data["row_json"][()]))["run"] == 0
    # a partial store: an error naming the missing runs, or the runs done with partial=True
    with pytest.raises(ValueError, match="10 of 20 runs"):
        load_results(path)
    assert load_results(path, partial=True).column("run") == list(range(0, N_RUNS, 2))
    stamps = {n: os.stat(path / "runs" / n).st_mtime_ns for n in names}
    before = _execute_mod.EXECUTED[0]
    whole = grid(store=path)                      # only the other half runs
    assert _execute_mod.EXECUTED[0] - before == N_RUNS // 2
    assert {n: os.stat(path / "runs" / n).st_mtime_ns for n in names} == stamps
    assert_identical(whole, serial)
    assert_identical(load_results(path), serial)
    before = _execute_mod.EXECUTED[0]
    assert_identical(grid(store=path, workers=2), serial)   # nothing left to run
    assert _execute_mod.EXECUTED[0] == before


def test_shards_share_a_store_or_keep_one_each(serial, tmp_path):
    shared = tmp_path / "shared"
    for k in (2, 0, 1):
        grid(shard=(k, 3), store=shared)
    assert_identical(load_results(shared), serial)
    parts = [grid(shard=(k, 3), store=tmp_path / f"shard-{k}") for k in range(3)]
    before = _execute_mod.EXECUTED[0]
    again = [grid(shard=(k, 3), store=tmp_path / f"shard-{k}") for k in range(3)]
    assert _execute_mod.EXECUTED[0] == before                  # read back, not rerun
    assert_identical(RunResult.concat(again), serial)
    saved = [load_results(p.save(tmp_path / f"part-{k}")) for k, p in enumerate(parts)]
    assert_identical(RunResult.concat(saved[::-1]), serial)    # saved shards keep meta["shard"]


def test_store_refuses_another_grid_or_version(tmp_path, monkeypatch):
    path = tmp_path / "store"
    grid(steps=5, store=path)
    with pytest.raises(ValueError, match=r"store .*another grid.*steps"):
        grid(steps=6, store=path)
    with pytest.raises(ValueError, match=r"store .*optimizers \('adam'\)"):
        run("vlmop2", SOLVERS, {"adam": ("adam", {"lr": 0.03}), "sgd": "sgd"},
            **{**GRID, "steps": 5, "store": path})
    real = _store.versions()
    monkeypatch.setattr(_store, "versions", lambda: {**real, "madam_version": "9.9"})
    with pytest.raises(ValueError, match=r"store .*madam_version '.*' -> '9.9'"):
        grid(steps=5, store=path)
    monkeypatch.undo()
    assert len(grid(steps=5, store=path)) == N_RUNS          # the same grid still opens
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="store .*no manifest.json"):
        grid(steps=5, store=other)
    with pytest.raises(ValueError, match="store .*not a directory"):
        grid(steps=5, store=other / "notes.txt")
    with pytest.raises(TypeError, match="store"):
        grid(steps=5, store=3)


FLAKY = {"fail": True}


class Flaky(S.MGDA):
    """MGDA that raises while FLAKY["fail"] (a run that fails once, then succeeds)."""

    def solve(self, jacobian, losses=None):
        if FLAKY["fail"]:
            raise RuntimeError("flaky")
        return super().solve(jacobian, losses)


def test_store_retries_failed_runs(tmp_path):
    path = tmp_path / "store"
    FLAKY["fail"] = True
    try:
        with pytest.warns(RuntimeWarning, match="2 of 4 runs failed.*RuntimeError: flaky"):
            res = run("vlmop2", {"mgda": "mgda", "flaky": Flaky}, "adam", seeds=[0, 1],
                      steps=20, store=path)
    finally:
        FLAKY["fail"] = False
    assert res.failed.tolist() == [False, False, True, True]
    assert sorted(os.listdir(path / "runs"))[2:] == ["run-0000002.failed.npz",
                                                     "run-0000003.failed.npz"]
    assert load_results(path).failed.tolist() == [False, False, True, True]
    before = _execute_mod.EXECUTED[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = run("vlmop2", {"mgda": "mgda", "flaky": Flaky}, "adam", seeds=[0, 1],
                    steps=20, store=path)
    assert _execute_mod.EXECUTED[0] - before == 2 and not again.failed.any()
    assert sorted(os.listdir(path / "runs")) == [f"run-{i:07d}.npz" for i in range(4)]


KILLED_GRID = """
import sys
import madam
madam.run("vlmop2", {"mgda": "mgda", "epo": "epo", "rlw": "rlw"},
          {"adam": ("adam", {"lr": 0.02}), "sgd": "sgd"},
          preferences=madam.preference_grid(2, 4, interior=True), seeds=[0, 1], steps=400,
          record_every=10, record_x=True, store=sys.argv[1], progress=False)
"""


def test_store_resumes_after_sigkill(tmp_path):
    """Kill a grid (SIGKILL) once two runs are stored, rerun it with the same store: the runs
    stored are not run again, and the result equals the uninterrupted serial run bit for bit."""
    path = tmp_path / "store"
    script = tmp_path / "grid.py"
    script.write_text(textwrap.dedent(KILLED_GRID))
    proc = subprocess.Popen([sys.executable, str(script), str(path)])
    runs_dir = path / "runs"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if runs_dir.is_dir() and sum(n.endswith(".npz") for n in os.listdir(runs_dir)) >= 2:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the grid finished before it could be killed"
    kept = sorted(n for n in os.listdir(runs_dir) if n.endswith(".npz"))
    assert 2 <= len(kept) < N_RUNS
    stamps = {n: (os.stat(runs_dir / n).st_ino, os.stat(runs_dir / n).st_mtime_ns)
              for n in kept}
    kw = dict(GRID, steps=400)
    before = _execute_mod.EXECUTED[0]
    resumed = run("vlmop2", SOLVERS, OPTIMIZERS, store=path, **kw)
    assert _execute_mod.EXECUTED[0] - before == N_RUNS - len(kept)   # nothing recomputed
    assert {n: (os.stat(runs_dir / n).st_ino, os.stat(runs_dir / n).st_mtime_ns)
            for n in kept} == stamps
    assert not [n for n in os.listdir(runs_dir) if n.endswith(".tmp")]   # leftovers cleaned
    assert_identical(resumed, run("vlmop2", SOLVERS, OPTIMIZERS, **kw))


# ============================================================================ progress
@pytest.mark.parametrize("tqdm", [True, False], ids=["tqdm", "text"])
@pytest.mark.parametrize("engine", ["serial", "threads"])
def test_progress_bar_counts_runs_and_failures(monkeypatch, tqdm, engine):
    if tqdm:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)       # tqdm not importable
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    FLAKY["fail"] = True
    try:
        with warnings.catch_warnings(), ThreadPoolExecutor(2) as ex:
            warnings.simplefilter("ignore", RuntimeWarning)
            buf = io.StringIO()
            monkeypatch.setattr("sys.stderr", buf)
            run("vlmop2", {"ok": "mgda", "bad": Flaky}, "adam", seeds=[0, 1], steps=50,
                progress=True, executor=ex if engine == "threads" else None)
            out = buf.getvalue()
    finally:
        FLAKY["fail"] = False
    assert "runs 4/4, 2 failed" in out and "100.0%" in out and "steps/s" in out
    assert out.endswith("\n")
    assert ("ETA" in out) != tqdm and ("|" in out) == tqdm


def test_progress_default_shows_in_jupyter(monkeypatch):
    class Shell:
        kernel = object()

    class IPython:
        @staticmethod
        def get_ipython():
            return Shell()

    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())   # not a TTY
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert not _progress.enabled(None)
    monkeypatch.setitem(sys.modules, "ipykernel", type(sys)("ipykernel"))
    monkeypatch.setitem(sys.modules, "IPython", IPython)
    assert _progress.enabled(None)
    assert not _progress.enabled(False)
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "x")
    assert not _progress.enabled(None)
