"""Time one MAdam step (float32): madam's fused C kernel against a NumPy version and the triad.

For C in {2, 4, 8} objectives and n in {1e6, 1e7} parameters it times, in the same run, with
the contenders interleaved round by round:

  C full       madam.MAdam(nonfinite="ignore").step(J, preference=lam): reads the C gradient
               rows, updates all P = C (C + 1) / 2 packed F EMAs, forms C_lam, whitens, Adam
  C sampled    MAdam(pair_sampling=2).step(J, preference=lam, direction=d): reads d and the 2
               requested rows of J, updates the 3 sampled F EMAs, reads the other P - 3
  numpy full   the same full step as in-place NumPy ufuncs on preallocated arrays
  triad        madam._core.triad, a = b + s * c at the same n (the bandwidth yardstick)
  triad eq     the same triad over as many bytes as the full step moves: on this machine (a
               2-vCPU slice of an EPYC whose large L3 holds a 1e7-element triad, 120 MB) the
               same-n triad runs from cache while the step's working set (14-86 arrays) does not;
               "x triad" divides by the same-n triad, the targets line also by this one

Bytes counted (4 per float32 element): full = C rows + P F read + P F written + p, m, v read
and written = (C + 2 P + 6) x 4; sampled = (k + 1 + P + k (k + 1) / 2 + 6) x 4 with k = 2;
triad = 12 (the STREAM convention: read b, c, write a; its write-allocate read is not counted,
as in benchmarks/bench_optim.py). GB/s = 1e9 bytes/s, from the best of --repeats interleaved rounds (the STREAM convention;
the medians are printed too: this 2-vCPU VM shares its memory bus with other machines, and
medians moved by 2-5x between runs while the best times were stable to ~20 %). The CPU time
other processes took during the run is printed at the end, as in bench_optim.py.
Before timing, each contender takes one step from the same state, and the NumPy version's
parameters are compared with the kernel's (column "dev", max relative difference).

Targets of the issue (printed as PASS/MISS, nothing asserted): C full >= 0.7 x the triad's
GB/s, >= 5 x the NumPy version; the sampled mode's cost independent of C apart from reading the
packed F (column "model": the time the byte model predicts at the sampled mode's measured GB/s
for C = 2).

    python benchmarks/bench_madam.py [--objectives 2,4,8] [--sizes 1e6,1e7] [--repeats 5]
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

import madam
from madam import _core
from madam.madam_opt import MAdam

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_optim import CpuMeter, cpu_model, interference_note  # noqa: E402  (same folder)

LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
K = 2  # objectives drawn per step in the sampled mode


class NumpyMAdam:
    """The full-pairs MAdam step with in-place NumPy ufuncs and preallocated temporaries."""

    def __init__(self, p, n_obj):
        self.p, self.c_obj, self.t = p, n_obj, 0
        self.iu, self.ju = np.triu_indices(n_obj)
        self.F = np.zeros((self.iu.size,) + p.shape, dtype=p.dtype)
        self.m, self.v = np.zeros_like(p), np.zeros_like(p)
        self.d, self.c, self.tmp = np.empty_like(p), np.empty_like(p), np.empty_like(p)

    def step(self, jac, lam):
        self.t += 1
        b1, b2 = BETAS
        bc1, bc2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        d, c, tmp = self.d, self.c, self.tmp
        np.multiply(jac[0], lam[0], out=d)
        for i in range(1, self.c_obj):
            np.multiply(jac[i], lam[i], out=tmp)
            d += tmp
        c.fill(0.0)
        for p, (i, j) in enumerate(zip(self.iu, self.ju)):
            f = self.F[p]
            f *= b2
            np.multiply(jac[i], jac[j], out=tmp)
            tmp *= 1 - b2
            f += tmp
            np.multiply(f, (1.0 if i == j else 2.0) * lam[i] * lam[j] / bc2, out=tmp)
            c += tmp
        np.maximum(c, 0.0, out=c)
        np.sqrt(c, out=c)
        c += EPS
        np.divide(d, c, out=d)                       # u
        self.m *= b1
        np.multiply(d, 1 - b1, out=tmp)
        self.m += tmp
        self.v *= b2
        np.multiply(d, d, out=tmp)
        tmp *= 1 - b2
        self.v += tmp
        np.sqrt(self.v, out=tmp)
        tmp /= math.sqrt(bc2)
        tmp += EPS
        np.divide(self.m, tmp, out=tmp)
        tmp *= LR / bc1
        self.p -= tmp


def median_time(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def run_case(n_obj, n, repeats, min_time):
    rng = np.random.default_rng(n_obj)
    jac = rng.standard_normal((n_obj, n), dtype=np.float32)
    lam = rng.dirichlet(np.ones(n_obj))
    d = (lam.astype(np.float32) @ jac).astype(np.float32)
    p0 = rng.standard_normal(n, dtype=np.float32)
    n_pairs = n_obj * (n_obj + 1) // 2

    x_full, x_np, x_s = p0.copy(), p0.copy(), p0.copy()
    full = MAdam(x_full, solver=None, lr=LR, betas=BETAS, eps=EPS, nonfinite="ignore")
    ref = NumpyMAdam(x_np, n_obj)
    sampled = MAdam(x_s, solver=None, n_obj=n_obj, pair_sampling=K, lr=LR, betas=BETAS,
                    eps=EPS, nonfinite="ignore")
    a, b, c = (np.ones(n, np.float32) for _ in range(3))
    # a triad over as many bytes as the full step moves (same working set, out of cache)
    n_eq = (n_obj + 2 * n_pairs + 6) * n // 12
    a2, b2, c2 = (np.ones(n_eq, np.float32) for _ in range(3))

    # one untimed step each; deviation of NumPy from the kernel after it
    full.step(jac, preference=lam)
    ref.step(jac, lam)
    dev = float(np.max(np.abs(x_np - x_full)) / np.max(np.abs(x_full)))
    # the sampled mode gets the whole (C, n) Jacobian and reads only the requested rows (a
    # (k, n) array of just those rows gives the same step; copying them out is not timed)
    sampled.step(jac, preference=lam, direction=d)
    # every F_p written before the timing: the state starts as zeros the OS maps lazily, and a
    # pair not sampled yet was read from the shared zero page (cheap), which flattered the
    # step (run_all's section c at n = 1e7: 48-63 ms without this warm-up, 89 ms with it)
    for _ in range(4 * n_pairs):
        sampled.step(jac, preference=lam, direction=d)

    def do_sampled():
        sampled.step(jac, preference=lam, direction=d)

    contenders = {
        "C full": lambda: full.step(jac, preference=lam),
        "C sampled": do_sampled,
        "numpy full": lambda: ref.step(jac, lam),
        "triad": lambda: _core.triad(a, b, c, 0.5),
        "triad eq": lambda: _core.triad(a2, b2, c2, 0.5),
    }
    number = {}
    for name, fn in contenders.items():
        t = median_time(fn, 1)
        number[name] = max(1, int(math.ceil(min_time / max(t, 1e-9))))
    for name, fn in contenders.items():  # the sampled mode's row arrays made before timing
        fn()
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            times[name].append(median_time(fn, number[name]))
    med = {name: (min(v), statistics.median(v)) for name, v in times.items()}
    bytes_el = {"C full": (n_obj + 2 * n_pairs + 6) * 4,
                "C sampled": (K + 1 + n_pairs + K * (K + 1) // 2 + 6) * 4,
                "numpy full": (n_obj + 2 * n_pairs + 6) * 4, "triad": 12}
    gbs = {name: bytes_el[name] * n / med[name][0] / 1e9 for name in med if name != "triad eq"}
    gbs["triad eq"] = 12 * n_eq / med["triad eq"][0] / 1e9
    bytes_el["triad eq"] = 12 * n_eq / n
    return med, gbs, dev, bytes_el


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objectives", default="2,4,8")
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    args = ap.parse_args()
    objectives = [int(v) for v in args.objectives.split(",")]
    sizes = [int(float(v)) for v in args.sizes.split(",")]

    print(f"cpu: {cpu_model()}; {len(os.sched_getaffinity(0))} cores; madam threads "
          f"{madam.get_num_threads()}; numpy {np.__version__}; float32; best and median of "
          f"{args.repeats} interleaved rounds (GB/s, x triad and speedup from the best)")
    header = (f"{'C':>2} {'n':>6} | {'contender':<11} {'best ms':>9} {'median ms':>9} "
              f"{'GB/s':>7} {'x triad':>8} {'vs numpy':>8} {'model ms':>9} | {'dev':>8}")
    print(header)
    print("-" * len(header))
    verdicts = []
    meter = CpuMeter()
    for n in sizes:
        sampled_rate = None
        for n_obj in objectives:
            med, gbs, dev, bytes_el = run_case(n_obj, n, args.repeats, args.min_time)
            if sampled_rate is None:
                sampled_rate = gbs["C sampled"]
            for name in ("C full", "C sampled", "numpy full", "triad", "triad eq"):
                ratio = gbs[name] / gbs["triad"]
                speed = (med["numpy full"][0] / med[name][0] if name.startswith("C")
                         else float("nan"))
                model = (bytes_el[name] * n / (sampled_rate * 1e9) * 1e3
                         if name == "C sampled" else float("nan"))
                print(f"{n_obj:>2} {n:>6.0e} | {name:<11} {med[name][0] * 1e3:>9.3f} "
                      f"{med[name][1] * 1e3:>9.3f} {gbs[name]:>7.2f} {ratio:>8.2f} "
                      f"{speed:>8.1f} {model:>9.3f} | "
                      f"{dev if name == 'numpy full' else float('nan'):>8.1e}")
            verdicts.append((n_obj, n, gbs["C full"] / gbs["triad"],
                             gbs["C full"] / gbs["triad eq"],
                             med["numpy full"][0] / med["C full"][0],
                             med["C sampled"][0], bytes_el["C sampled"] * n / (sampled_rate * 1e9)))
        print("-" * len(header))
    print(interference_note(meter)[0])
    print("targets (C full >= 0.7 x triad GB/s, >= 5 x numpy; sampled time vs its byte model):")
    for n_obj, n, ratio, ratio_eq, speed, t_s, t_model in verdicts:
        print(f"  C={n_obj} n={n:.0e}: {ratio:.2f} x triad {'PASS' if ratio >= 0.7 else 'MISS'} "
              f"({ratio_eq:.2f} x the triad over the same bytes "
              f"{'PASS' if ratio_eq >= 0.7 else 'MISS'}); "
              f"{speed:.1f} x numpy {'PASS' if speed >= 5 else 'MISS'}; sampled "
              f"{t_s * 1e3:.2f} ms vs model {t_model * 1e3:.2f} ms ({t_s / t_model:.2f})")


if __name__ == "__main__":
    main()
