"""Time one MADA step (hypergradient + hyper step + update, all six coefficients learned) against one
Adam step, and both against the STREAM triad, at n = 1e6 and 1e7 parameters (float32 by default).

Contenders, on the same data, interleaved round by round (median of --repeats rounds; in each round
a contender runs `number` back-to-back steps, `number` chosen so a cell lasts >= --min-time s):

  adam            madam.Adam(nonfinite="ignore"): one fused pass, read p g m v, write p m v
  mada recompute  madam.mada.MADA(derivatives="recompute", nonfinite="ignore"), past hyper_start:
                  pass 1 reads g_{t+1} and the state (m, v_t, v_{t-1}, vbar, n, mL, g_t, g_{t-1})
                  and writes g_{t+1} into the g_{t-1} slot; pass 2 (update) reads p g m v vbar n mL
                  g_t and writes p m vbar n mL in place and v_{t+1} into the v_{t-1} slot
  mada store      derivatives="store": pass 1 reads g_{t+1} and 6 stored derivative arrays; pass 2
                  reads p g m v vbar n mL g_prev, writes them in place and the 6 derivatives
  mada delayed    hyper_delay=True: the hypergradient of step t is computed inside step t's update
                  pass (one fused pass: reads p g m v_t v_{t-1} vbar n mL g_t g_{t-1}, writes p m
                  vbar n mL in place, v and g into the ring) and applied at step t + 1
  mada frozen     learn=() (no hypergradient): the update pass alone
  triad           madam._core.triad, a = b + s c (12 bytes/element the STREAM way)

Bytes counted (the minimum each step must move, element size e): Adam 7e; MADA recompute
(9 + 1) + (8 + 6) = 24e; MADA store 7 + (8 + 7 + 6) = 28e; MADA delayed 10 + 7 = 17e; MADA
frozen 8 + 7 = 15e (it writes g into the ring slot itself; with write-allocate, its two ring
slots, written but not read, are read too: 17e reach memory).
Ratios are times relative to the Adam step; the issue's target is MADA (recompute) < 2.5x Adam.
Nothing is asserted.

    python benchmarks/bench_mada.py [--sizes 1e6,1e7] [--dtype float32] [--repeats 5]
                                    [--min-time 0.3] [--threads N]
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np

import madam
from madam import _core
from madam.mada import MADA

BYTES = {"adam": 7, "mada recompute": 24, "mada store": 28, "mada delayed": 17,
         "mada frozen": 15, "triad": 3}


def make_contenders(n, dtype, rng):
    g = (rng.standard_normal(n) * 1e-2).astype(dtype)
    out = {}
    p = rng.standard_normal(n).astype(dtype)
    opt = madam.Adam(p, lr=1e-3, nonfinite="ignore")
    out["adam"] = lambda opt=opt: opt.step(g)
    for name, kw in (("mada recompute", {"derivatives": "recompute"}),
                     ("mada store", {"derivatives": "store"}),
                     ("mada delayed", {"hyper_delay": True}),
                     ("mada frozen", {"learn": ()})):
        p = rng.standard_normal(n).astype(dtype)
        opt = MADA(p, lr=1e-3, hyper_start=0, nonfinite="ignore", **kw)
        out[name] = lambda opt=opt: opt.step(g)
    a, b, c = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    out["triad"] = lambda: _core.triad(a, b, c, 0.5)
    for fn in out.values():  # first touch, and MADA past its first (hyper-free) steps
        fn()
        fn()
    return out


def time_cell(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=0, help="0: madam's default")
    args = ap.parse_args()
    if args.threads:
        madam.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    esize = dtype.itemsize
    print(f"madam {madam.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads {madam.get_num_threads()}, {args.dtype}, median of {args.repeats} rounds")
    print(f"build: {_core.config()['build']}")
    rng = np.random.default_rng(0)
    for n in (int(float(s)) for s in args.sizes.split(",")):
        fns = make_contenders(n, dtype, rng)
        number = {k: max(1, int(args.min_time / max(time_cell(f, 1), 1e-6))) for k, f in fns.items()}
        samples = {k: [] for k in fns}
        for _ in range(args.repeats):
            for k, f in fns.items():
                samples[k].append(time_cell(f, number[k]))
        med = {k: statistics.median(v) for k, v in samples.items()}
        triad_bw = BYTES["triad"] * esize * n / med["triad"] / 1e9
        print(f"\nn = {n:.0e}")
        print(f"{'contender':16s} {'ms/step':>9s} {'x Adam':>7s} {'bytes/elem':>10s} "
              f"{'GB/s':>7s} {'x triad BW':>10s}")
        for k in fns:
            gbs = BYTES[k] * esize * n / med[k] / 1e9
            print(f"{k:16s} {1e3 * med[k]:9.3f} {med[k] / med['adam']:7.2f} "
                  f"{BYTES[k] * esize:10d} {gbs:7.1f} {gbs / triad_bw:10.2f}")
        for k in ("mada recompute", "mada delayed"):
            ratio = med[k] / med["adam"]
            print(f"{k} / adam = {ratio:.2f} (target < 2.5: {'PASS' if ratio < 2.5 else 'MISS'})")
        print(f"store / recompute = {med['mada store'] / med['mada recompute']:.2f}")


if __name__ == "__main__":
    main()
