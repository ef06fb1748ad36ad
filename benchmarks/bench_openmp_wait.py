"""How libgomp's wait policy changes madam's times: the default spin (GOMP_SPINCOUNT=300000),
short spins (10000; 1000, madam's default) and none (0, as OMP_WAIT_POLICY=passive), each in a
fresh process (libgomp reads the setting once, at load).

Timed in each: MGDA's solve of a (8, 1e5) float64 J (two OpenMP passes, the Gramian and the
direction d = lam @ J, with NumPy's small C x C work between them), madam.Adam's step at n = 1e5
and 1e6 float32 and MAdam + MGDA at C = 2, n = 1e6 float32; medians of back-to-back calls. The
effect depends on what else runs: spinning workers hold the cores other threads and processes need,
so run it idle and under load (the load average is printed). Nothing is asserted.

    python benchmarks/bench_openmp_wait.py [--settings 300000,10000,1000,0] [--calls 40]
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
import madam
from madam import solvers

calls = int(sys.argv[1])
rng = np.random.default_rng(0)


def median_ms(f, k=calls):
    f()
    ts = []
    for _ in range(k):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


out = {"wait": madam.config()["openmp_wait"]}
jac = rng.standard_normal((8, 10**5))
mgda = solvers.MGDA()
out["MGDA solve C=8 n=1e5 f64"] = median_ms(lambda: mgda.solve(jac))
for n in (10**5, 10**6):
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    opt = madam.Adam(p, nonfinite="ignore")
    out[f"Adam step n={n:.0e} f32"] = median_ms(lambda: opt.step(g), 5 * calls)
rows = rng.standard_normal((2, 10**6)).astype(np.float32)
opt = madam.MAdam(np.zeros(10**6, np.float32), solver=solvers.MGDA())
out["MAdam+MGDA C=2 n=1e6 f32"] = median_ms(lambda: opt.step(rows))
print(json.dumps(out))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="300000,10000,1000,0",
                    help="GOMP_SPINCOUNT values, one fresh process each")
    ap.add_argument("--calls", type=int, default=40)
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results = []
    for count in args.settings.split(","):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY",)}
        env["GOMP_SPINCOUNT"] = count.strip()
        res = subprocess.run([sys.executable, "-c", CHILD, str(args.calls)], env=env,
                             capture_output=True, text=True, check=True)
        results.append(json.loads(res.stdout))
    keys = [k for k in results[0] if k != "wait"]
    print(f"{'GOMP_SPINCOUNT':>16}" + "".join(f"{k:>28}" for k in keys))
    for count, r in zip(args.settings.split(","), results):
        print(f"{count:>16}" + "".join(f"{r[k]:>25.3f} ms" for k in keys))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
