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
