"""Thread count does not change results: 1 vs 2 threads give bitwise-identical trajectories for
arrays above the parallel threshold (cm_exec_config.min_parallel_size = 32768 elements)."""

import functools
import os
import subprocess
import sys

import numpy as np
import pytest

from cases import FULL_CASES, params

import madam  # noqa: E402  (a broken build must fail the suite, not skip it)

N = 300_000  # well above the parallel threshold
SHAPES = ((N,), (600, 500))  # two arrays, both parallel
STEPS = 4


@pytest.fixture
def restore_threads():
    saved = madam.get_num_threads()
    yield
    madam.set_num_threads(saved)


@functools.lru_cache(maxsize=None)
def _data(dtype):
    """Start point and STEPS gradients (never written to by the optimisers)."""
    rng = np.random.default_rng(42)
    x0 = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(10 * rng.standard_normal(s)).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return x0, grads


def _run(name, kwargs, dtype, threads):
    madam.set_num_threads(threads)
    assert madam.get_num_threads() == threads
    x0, grads = _data(dtype)
    ps = [x.copy() for x in x0]
    opt = getattr(madam, name)(ps, **kwargs)
    out = []
    for g in grads:
        opt.step(g)
        out.append([p.copy() for p in ps])
    return out, opt.state_dict()


@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=lambda d: d.__name__)
@pytest.mark.parametrize("name, kwargs", params(FULL_CASES))
def test_threads_bitwise(name, kwargs, dtype, restore_threads):
    one, sd1 = _run(name, kwargs, dtype, 1)
    two, sd2 = _run(name, kwargs, dtype, 2)
    for k, (a, b) in enumerate(zip(one, two)):
        for i, (x, y) in enumerate(zip(a, b)):
            assert x.tobytes() == y.tobytes(), f"step {k + 1}, params[{i}] differ"
    for key, value in sd1.items():
        if isinstance(value, np.ndarray):
            assert value.tobytes() == sd2[key].tobytes(), key
    assert not np.array_equal(one[0][0], one[-1][0])  # the runs moved


@pytest.mark.parametrize("where", (0, N // 2 + 1, N - 1), ids=("first", "middle", "last"))
@pytest.mark.parametrize("threads", (1, 2))
def test_nonfinite_scan_parallel(threads, where, restore_threads):
    madam.set_num_threads(threads)
    ps = [np.ones(N), np.ones(SHAPES[1])]
    opt = madam.Adam(ps, lr=0.1)
    g = [np.ones(N), np.ones(SHAPES[1])]
    g[0][where] = np.nan
    with pytest.raises(madam.NonFiniteError, match=r"grads\[0\]"):
        opt.step(g)
    assert (ps[0] == 1).all() and opt.step_count == 0



def test_follows_openmp_limit_until_set(monkeypatch):
    """Until set_num_threads is called, madam follows OpenMP's current limit, so
    threadpoolctl.threadpool_limits(n, user_api="openmp") applies to madam's loops too."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from madam import _core

    monkeypatch.setitem(_core._settings, "n_threads", None)  # as in a fresh process
    blas = _core.lib.cm_blas_get_num_threads()
    try:
        outside = _core.lib.cm_openmp_max_threads()
        assert madam.get_num_threads() == outside == _core.exec_config().n_threads
        with threadpoolctl.threadpool_limits(1, user_api="openmp"):
            assert madam.get_num_threads() == 1
            assert _core.exec_config().n_threads == 1
            madam.set_num_threads(2)  # an explicit count wins over the limit
            assert madam.get_num_threads() == 2 == _core.exec_config().n_threads
        assert madam.get_num_threads() == 2
    finally:
        _core.lib.cm_blas_set_num_threads(blas)


def test_threadpoolctl_limit_in_fresh_process():
    """A fresh process (set_num_threads never called): OMP_NUM_THREADS gives the default and
    threadpool_limits lowers it for the duration of the block."""
    pytest.importorskip("threadpoolctl")
    code = ("import madam, threadpoolctl\n"
            "from madam import _core\n"
            "before = madam.get_num_threads()\n"
            "with threadpoolctl.threadpool_limits(1, user_api='openmp'):\n"
            "    inside = (madam.get_num_threads(), _core.exec_config().n_threads)\n"
            "print(before, *inside, madam.get_num_threads())\n")
    env = dict(os.environ, OMP_NUM_THREADS="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "1", "1", "3"]


# ------------------------------------------- one optimiser, two Python threads (issue 12, item 2)
def _hammer(opt, grad, tries):
    """Two threads call opt.step(grad) ``tries`` times each; returns (applied, refused)."""
    import threading

    counts = {"applied": 0, "refused": 0}
    other = []
    count_lock = threading.Lock()
    start = threading.Barrier(2)

    def worker():
        start.wait()
        for _ in range(tries):
            try:
                applied = opt.step(grad)
            except RuntimeError as e:
                assert "two threads at once" in str(e)
                with count_lock:
                    counts["refused"] += 1
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                other.append(e)
            else:
                assert applied is True
                with count_lock:
                    counts["applied"] += 1

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other, other
    return counts["applied"], counts["refused"]


@pytest.mark.parametrize("name", ("Adam", "SGD"))
def test_concurrent_steps_never_lose_updates(name):
    """Each overlapping step either raises RuntimeError in the second caller (changing
    nothing) or completes: step_count and the params equal a sequential run of exactly the
    applied number of steps, bit for bit."""
    n, tries = 2_000_000, 25
    grad = np.full(n, 0.5)
    x = np.zeros(n)
    opt = getattr(madam, name)(x, lr=1e-3)
    applied, refused = _hammer(opt, grad, tries)
    assert applied + refused == 2 * tries and applied >= 1
    assert opt.step_count == applied
    ref = np.zeros(n)
    ref_opt = getattr(madam, name)(ref, lr=1e-3)
    for _ in range(applied):
        ref_opt.step(grad)
    assert x.tobytes() == ref.tobytes()
    assert freeze(opt.state_dict()) == freeze(ref_opt.state_dict())


def freeze(sd):
    return {k: v.tobytes() if isinstance(v, np.ndarray) else v for k, v in sd.items()}


def _stepper(kind):
    """(optimiser, a call of its step) for every step implementation."""
    x = np.ones(8)
    if kind == "MAdam":
        opt = madam.MAdam(x, solver=None, n_obj=2)
        return opt, lambda: opt.step(np.ones((2, 8)), preference=np.array([0.5, 0.5]))
    if kind == "MADA-delay":
        opt = madam.MADA(x, hyper_delay=True)
    else:
        opt = getattr(madam, kind)(x)
    return opt, lambda: opt.step(np.ones(8))


@pytest.mark.parametrize("kind", ("SGD", "Adam", "Lion", "MADA", "MADA-delay", "HyperAdam",
                                  "AdamHD", "MAdam"))
def test_step_refused_while_another_thread_steps(kind):
    """Deterministic: while another thread holds the optimiser's step lock (as it does for the
    whole of a step), step() raises RuntimeError at once and changes nothing; afterwards it
    works. Covers every class's own step method (they all go through the base class lock)."""
    import threading

    opt, step = _stepper(kind)
    assert step() and opt.step_count == 1
    before = freeze(opt.state_dict())
    held, done = threading.Event(), threading.Event()

    def holder():
        with opt._step_lock:
            held.set()
            done.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(RuntimeError, match="called from two threads at once"):
            step()
    finally:
        done.set()
        t.join()
    assert freeze(opt.state_dict()) == before
    assert step() and opt.step_count == 2
