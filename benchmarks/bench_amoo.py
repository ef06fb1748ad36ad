"""Speed of AMOO's kernels: PU iterations on A (10 x 1e6) and Hutchinson accumulation, C vs NumPy.

PU (madam.pu_solve, one iteration = extrapolation + update): time per iteration, from
(t(iters = K) - t(iters = 0)) / K, of

  madam C fused   A q and A^T w formed together in one pass over A (the default; bit-identical
                  for any thread count)
  madam C BLAS    the same with two OpenBLAS gemv calls per half-step (matvec="blas")
  numpy           the same algorithm written with NumPy (A @ q, A.T @ w, log-domain, max-shifts)

Bytes counted per PU iteration: 2 x bytes(A), the least any PU iteration can move (A must be read
once for A q_bar, A^T w_bar and once more for the next A q, A^T w; the fused kernel does exactly
that, the BLAS and NumPy versions read A four times). The vectors of length d (q, log q, A^T w,
...) add ~7 d elements per iteration, not counted.

Hutchinson accumulation (acc += z * Hz over C = 10 objectives sharing one probe, n = 1e6):

  madam C         cm_hutchinson_accumulate (one fused pass)
  numpy           acc += z * hz (a temporary the size of hz)
  numpy in-place  np.multiply(hz, z, out=tmp); acc += tmp (preallocated)

Bytes: read z (n), hz (C n), acc (C n), write acc (C n): (3 C + 1) n elements.

The yardstick is the STREAM triad a = b + s c (madam._core.triad, 12 / 24 bytes per element for
float32 / float64) on 1e7 elements. GB/s = 1e9 bytes/s. Medians over --repeats interleaved rounds,
with 1 and 2 threads (madam.set_num_threads, which also sets OpenBLAS's pool; NumPy's own BLAS
is limited to the same count with threadpoolctl). Nothing is asserted.

    python benchmarks/bench_amoo.py [--d 1e6] [--m 10] [--iters 10] [--repeats 5] [--json out.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import madam
from madam import _core
from madam.amoo import pu_solve, rademacher

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_optim import CpuMeter, cpu_model, interference_note  # noqa: E402  (same folder)


def numpy_pu(a, iters, tau=0.01):
    """PU in NumPy (the same updates as the C kernel; uniform start, eta = 1/(tau + 2 max|A|))."""
    m, d = a.shape
    eta = 1.0 / (tau + 2.0 * np.abs(a).max())
    c = 1.0 - eta * tau
    lp, lq = np.zeros(m, a.dtype), np.zeros(d, a.dtype)
    w, q = np.full(m, 1.0 / m, a.dtype), np.full(d, 1.0 / d, a.dtype)

    def normalise(logits):
        logits = logits - logits.max()
        e = np.exp(logits)
        return logits, e / e.sum()

    for _ in range(iters):
        u, v = a @ q, a.T @ w
        _, pb = normalise(c * lp + eta * u)
        _, qb = normalise(c * lq - eta * v)
        ub, vb = a @ qb, a.T @ pb
        lp, w = normalise(c * lp + eta * ub)
        lq, q = normalise(c * lq - eta * vb)
    return w, q


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_pu(a, iters, repeats):
    nbytes = 2 * a.nbytes
    contenders = {
        "madam C fused": lambda k: pu_solve(a, iters=k),
        "madam C BLAS": lambda k: pu_solve(a, iters=k, matvec="blas"),
        "numpy": lambda k: numpy_pu(a, k),
    }
    rows = {}
    for name, fn in contenders.items():
        fn(1)  # warm up (first touch of the work arrays)
        t_k = median_time(lambda: fn(iters), repeats)
        t_0 = median_time(lambda: fn(0), repeats)
        per = (t_k - t_0) / iters
        rows[name] = {"ms_per_iter": per * 1e3, "gbs": nbytes / per / 1e9}
    w_c = pu_solve(a, iters=iters).w
    w_np, _ = numpy_pu(a, iters)
    rows["numpy"]["max_dev_w"] = float(np.abs(w_c.astype(np.float64) - w_np).max())
    return rows


def bench_hutch(z, hz, repeats):
    acc = np.zeros_like(hz)
    tmp = np.empty_like(hz)
    c, n = hz.shape
    nbytes = (3 * c + 1) * n * hz.itemsize
    ex = _core.exec_config()
    kern = _core.kernel("cm_hutchinson_accumulate", hz.dtype)
    pz, phz, pacc = _core.pointer(z), _core.pointer(hz), _core.pointer(acc, True)

    def c_acc():
        kern(ex, c, n, pz, phz, pacc)

    def np_acc():
        acc.__iadd__(z * hz)

    def np_inplace():
        np.multiply(hz, z, out=tmp)
        acc.__iadd__(tmp)

    rows = {}
    for name, fn in (("madam C", c_acc), ("numpy", np_acc), ("numpy in-place", np_inplace)):
        fn()
        t = median_time(fn, repeats)
        rows[name] = {"ms": t * 1e3, "gbs": nbytes / t / 1e9}
    return rows


def bench_triad(dtype, repeats, n=10_000_000):
    a, b, c = (np.full(n, 1.0, dtype) for _ in range(3))
    _core.triad(a, b, c, 2.0)
    t = median_time(lambda: _core.triad(a, b, c, 2.0), repeats)
    return 3 * a.itemsize * n / t / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--d", type=float, default=1e6, help="columns of A (and n of Hutchinson)")
    ap.add_argument("--m", type=int, default=10, help="rows of A (objectives)")
    ap.add_argument("--iters", type=int, default=10, help="PU iterations per timed call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    d, m = int(args.d), args.m
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; numpy {np.__version__}; "
          f"madam {madam.__version__}")
    rng = np.random.default_rng(0)
    a64 = rng.uniform(0.0, 1.0, (m, d))
    hz64 = rng.standard_normal((m, d))
    out = {"m": m, "d": d, "iters": args.iters, "results": [],
           "provenance": madam.study.provenance()}
    for threads in (1, 2):
        madam.set_num_threads(threads)
        with threadpool_limits(threads):
            meter = CpuMeter()
            for dtype in (np.float64, np.float32):
                a = a64.astype(dtype)
                z = rademacher(d, seed=0, step=1, probe=0, dtype=dtype)
                hz = hz64.astype(dtype)
                triad = bench_triad(dtype, args.repeats)
                pu = bench_pu(a, args.iters, args.repeats)
                hu = bench_hutch(z, hz, args.repeats)
                name = np.dtype(dtype).name
                print(f"\n== {threads} thread(s), {name}: triad {triad:.1f} GB/s")
                print(f"PU on A ({m} x {d:.0e}), {args.iters} iterations, bytes = 2 x A "
                      f"({2 * a.nbytes / 1e6:.0f} MB) per iteration")
                print(f"  {'contender':<16} {'ms/iter':>9} {'GB/s':>7} {'x triad':>8} {'C fused speedup':>16}")
                for k, r in pu.items():
                    print(f"  {k:<16} {r['ms_per_iter']:>9.2f} {r['gbs']:>7.1f} "
                          f"{r['gbs'] / triad:>8.2f} {r['ms_per_iter'] / pu['madam C fused']['ms_per_iter']:>15.2f}x")
                print(f"  (numpy's w differs from C's by {pu['numpy']['max_dev_w']:.1e})")
                print(f"Hutchinson accumulate, {m} x {d:.0e}, bytes = (3 C + 1) n")
                print(f"  {'contender':<16} {'ms':>9} {'GB/s':>7} {'x triad':>8} {'C speedup':>16}")
                for k, r in hu.items():
                    print(f"  {k:<16} {r['ms']:>9.2f} {r['gbs']:>7.1f} {r['gbs'] / triad:>8.2f} "
                          f"{r['ms'] / hu['madam C']['ms']:>15.2f}x")
                out["results"].append({"threads": threads, "dtype": name, "triad_gbs": triad,
                                       "pu": pu, "hutchinson": hu})
            print("\n" + interference_note(meter)[0])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
