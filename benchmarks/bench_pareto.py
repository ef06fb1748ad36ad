"""Time madam.pareto against moocore on the same random point sets and print a table.

Rows: hypervolume (2-D, 3-D at n = 1e3, 1e4, 1e5, and 4-D at n = 1e3), is_nondominated (2-D,
3-D at the same n), pareto_rank and hv_contributions (2-D, 3-D). Point sets (minimisation):

  front  n points on the positive unit sphere, reflected (1 - x): all mutually nondominated,
         the hard case for the hypervolume (reference point 1.1 in every objective);
  mixed  n/2 front points, n/2 dominated copies shifted away (a quarter of them exact copies).

Every time is the median over --repeats rounds of one call each, madam and moocore interleaved
round by round, after one untimed warm-up call each; both include their Python wrappers
(validation, conversion). "ratio" is madam's time over moocore's (< 1: madam faster); "dev" is
the relative deviation of madam's result from moocore's (max over the elements for arrays;
0 for identical masks or ranks). madam runs with --threads threads (default 1; the 2-D / 3-D
kernels are serial anyway; moocore is single-threaded).

    python benchmarks/bench_pareto.py [--sizes 1e3,1e4,1e5] [--repeats 7] [--threads 1]
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np

import madam
from madam import pareto

try:
    import moocore
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(f"moocore is needed for this benchmark: pip install moocore ({exc})")


def front(rng, n, m):
    x = np.abs(rng.standard_normal((n, m))) + 1e-12
    return 1.0 - x / np.linalg.norm(x, axis=1, keepdims=True)


def mixed(rng, n, m):
    k = max(1, n // 2)
    x = front(rng, n, m)
    x[k:] = x[rng.integers(0, k, size=n - k)] + rng.random((n - k, m)) * 0.05
    x[k::4] = x[rng.integers(0, k, size=len(x[k::4]))]
    return x


def median_times(f, g, repeats, pause=0.0):
    """Median seconds of f and of g over repeats rounds, f then g in each; with pause, each call
    starts that many seconds after the previous one ended (the other's idle pool threads, e.g.
    OpenBLAS's, spin for a while after it returns and would share the cores)."""
    f(), g()  # warm-up
    tf, tg = [], []
    for _ in range(repeats):
        time.sleep(pause)
        t0 = time.perf_counter()
        f()
        tf.append(time.perf_counter() - t0)
        time.sleep(pause)
        t0 = time.perf_counter()
        g()
        tg.append(time.perf_counter() - t0)
    return statistics.median(tf), statistics.median(tg)


def deviation(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "bi" or b.dtype.kind in "bi":
        return 0.0 if np.array_equal(a, b) else float("nan")
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b))) / scale


def rows(sizes):
    for m in (2, 3):
        for n in sizes:
            yield "hypervolume", m, n, "front"
    yield "hypervolume", 4, 1000, "front"
    for m in (2, 3):
        for n in sizes:
            yield "is_nondominated", m, n, "mixed"
    for m in (2, 3):
        for n in sizes:
            yield "pareto_rank", m, n, "mixed"
    for m in (2, 3):
        for n in sizes:
            yield "hv_contributions", m, n, "front"


def calls(op, pts, ref):
    if op == "hypervolume":
        return (lambda: pareto.hypervolume(pts, ref)), (lambda: moocore.hypervolume(pts, ref=ref))
    if op == "hv_contributions":
        return ((lambda: pareto.hv_contributions(pts, ref)),
                (lambda: moocore.hv_contributions(pts, ref=ref)))
    if op == "is_nondominated":
        return (lambda: pareto.is_nondominated(pts)), (lambda: moocore.is_nondominated(pts))
    if op == "pareto_rank":
        return (lambda: pareto.pareto_rank(pts)), (lambda: moocore.pareto_rank(pts))
    raise ValueError(op)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e3,1e4,1e5")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    madam.set_num_threads(args.threads)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cpus = os.cpu_count()
    print(f"madam {madam.__version__} vs moocore {moocore.__version__}; numpy {np.__version__}; "
          f"{platform.machine()}, {cpus} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; madam threads {args.threads}; "
          f"median of {args.repeats}")
    header = (f"{'operation':<17}{'M':>2}{'n':>8}  {'set':<6}{'madam ms':>10}{'moocore ms':>12}"
              f"{'ratio':>8}{'dev':>10}")
    print(header)
    print("-" * len(header))
    for op, m, n, kind in rows(sizes):
        rng = np.random.default_rng([m, n])
        pts = (front if kind == "front" else mixed)(rng, n, m)
        ref = np.full(m, 1.1)
        f, g = calls(op, pts, ref)
        dev = deviation(f(), g())
        tf, tg = median_times(f, g, args.repeats)
        print(f"{op:<17}{m:>2}{n:>8}  {kind:<6}{tf * 1e3:>10.3f}{tg * 1e3:>12.3f}"
              f"{tf / tg:>8.2f}{dev:>10.1e}")


if __name__ == "__main__":
    main()
