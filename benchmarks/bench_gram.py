"""Time madam's Gramian pass (madam._core.gram_scan: G = J J^T in float64, the NaN scan and max|J|
in one read of J) against torch's and NumPy's J @ J.T in J's own dtype, and print a table.

Shapes: C = 2, 8, 32, 128 rows at n = 1e5 columns (the solvers' Gramians; from C = 32 on the
pass is bound by multiply-adds), and C = 2, 8 at n = 1e6 and 1e7 (MAdam's per-array pass, bound
by the one read of J: "GB/s" is J's bytes over madam's time). float32 and float64 J, the same
values for every contender (torch.from_numpy shares NumPy's buffer).

Every time is the median (and the best) over --repeats rounds, the contenders interleaved round
by round after one untimed call each, each batch after --pause seconds of rest (default 0.3: the
idle threads of the contender before spin for a while); each round times enough calls for
about 20 ms. madam includes its Python wrapper (validation, the float64 output and work
arrays). "vs torch" is
madam's time over torch's (< 1: madam faster). madam, torch and NumPy's BLAS all use --threads
threads (default 2). torch computes the whole product in J's dtype (float32 products rounded to
float32); NumPy calls BLAS syrk for J @ J.T, half the products.

--against PATH also times another build of the C core (a madam/_cmadam*.so, e.g. one built from
an older commit) as the column "other", with the same thread count, on the same arrays.

    python benchmarks/bench_gram.py [--repeats 9] [--threads 2] [--shapes 2x1e5,128x1e5]
                                    [--dtypes float32,float64] [--against OLD/_cmadam.so]
                                    [--pause 0.3]
"""
import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time

import numpy as np

import madam
from madam import _core

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_solvers import set_threads  # noqa: E402  (same folder: madam, torch and BLAS threads)

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

SHAPES = "2x1e5,8x1e5,32x1e5,128x1e5,2x1e6,8x1e6,2x1e7,8x1e7"


def other_core(path):
    """The cm_gram_scan entry points of another compiled core (a madam._cmadam .so file)."""
    spec = importlib.util.spec_from_file_location("_cmadam", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def other_call(module, jac, threads):
    """A call of the other core's cm_gram_scan on jac, allocating its outputs like gram_scan."""
    lib, ffi = module.lib, module.ffi
    rows, cols = jac.shape
    exec_cfg = ffi.new("cm_exec_config *")
    lib.cm_exec_config_default(exec_cfg)
    exec_cfg.n_threads = threads
    kernel = lib.cm_gram_scan_f32 if jac.dtype == np.float32 else lib.cm_gram_scan_f64
    ctype = "float *" if jac.dtype == np.float32 else "double *"

    def call():
        size = lib.cm_gram_scan_workspace(rows, cols)
        gram, work = np.empty((rows, rows)), np.empty(max(size, 1))
        finite, top = ffi.new("int *"), ffi.new("double *")
        status = kernel(exec_cfg, rows, cols, ffi.cast(ctype, jac.ctypes.data),
                        ffi.cast("double *", gram.ctypes.data),
                        ffi.cast("double *", work.ctypes.data), size, finite, top)
        if status != 0:
            raise RuntimeError(f"cm_gram_scan: status {status}")
        return gram

    return call


def interleaved(calls, repeats, pause=0.3):
    """Median and best seconds per call of each callable, timed round by round; each
    contender's batch starts ``pause`` seconds after the previous one ended (NumPy's OpenBLAS
    threads spin after a call and took a core from the next contender: madam's 2-thread pass
    at C = 128 timed 36 ms right after NumPy's product, 18 ms after a pause)."""
    for f in calls.values():
        f()
    t0 = time.perf_counter()
    next(iter(calls.values()))()
    per_round = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-7)))
    times = {k: [] for k in calls}
    for _ in range(repeats):
        for k, f in calls.items():
            time.sleep(pause)
            t0 = time.perf_counter()
            for _ in range(per_round):
                f()
            times[k].append((time.perf_counter() - t0) / per_round)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=SHAPES, help="CxN,... (rows x columns)")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--against", default=None, help="another build's madam/_cmadam*.so")
    ap.add_argument("--pause", type=float, default=0.3,
                    help="seconds of rest before each contender's batch (default 0.3)")
    args = ap.parse_args()
    shapes = [tuple(int(float(v)) for v in s.split("x")) for s in args.shapes.split(",")]
    set_threads(args.threads)
    other = other_core(args.against) if args.against else None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"madam {madam.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else '(not installed)'}; "
          f"{platform.machine()}, {cpus} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.threads} threads; "
          f"ms per call, median (best) of {args.repeats} interleaved rounds")
    names = ["madam"] + (["other"] if other else []) + (["torch"] if torch else []) + ["numpy"]
    header = (f"{'dtype':<8}{'C':>4}{'n':>10}" + "".join(f"{k:>19}" for k in names)
              + f"{'vs torch':>10}{'GB/s':>7}")
    print(header)
    print("-" * len(header))
    for dtype in args.dtypes.split(","):
        for rows, cols in shapes:
            jac = np.random.default_rng([rows, cols]).standard_normal((rows, cols)).astype(dtype)
            calls = {"madam": lambda: _core.gram_scan(jac, rows)}
            if other:
                calls["other"] = other_call(other, jac, args.threads)
            if torch is not None:
                t = torch.from_numpy(jac)
                calls["torch"] = lambda: t @ t.T
            calls["numpy"] = lambda: jac @ jac.T
            if other:
                if not np.array_equal(calls["madam"]()[0], calls["other"]()):
                    print(f"  note: {dtype} {rows}x{cols}: the two cores' Gramians differ")
            res = interleaved(calls, args.repeats, args.pause)
            cells = "".join(f"{res[k][0] * 1e3:>10.3f} ({res[k][1] * 1e3:>6.3f})" for k in names)
            ratio = f"{res['madam'][0] / res['torch'][0]:>10.2f}" if torch is not None else ""
            gbs = jac.nbytes / res["madam"][0] / 1e9
            print(f"{dtype:<8}{rows:>4}{cols:>10}{cells}{ratio}{gbs:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
