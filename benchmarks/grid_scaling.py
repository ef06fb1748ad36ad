"""Scaling of madam.run's engines on the collapse study's grids (docs/big-grids.md, "Scaling").

The grids are those of claim 1 of ``benchmarks/collapse.py``, on every study problem: the tuning
grid (RLW, MGDA, EPO at the preference lattice, x Adam, MAdam, SGD x the 5 learning rates of
collapse.LR_GRID x tuning seeds 100, 101; ``madam.tune_lr``, criterion hypervolume) and then the
evaluation grid at the tuned learning rates (evaluation seeds 0-4). PSL (trained outside
madam.run) is left out. The study runs 1500 steps (1000 for teacher-student); the preset here
runs ``--steps`` for every problem (default 300), with record_every = steps // 10 and
max_loss = 1e6 as the study.

Each engine runs the whole sequence, and its results are checked bit for bit against the
serial run's (every array of every grid, both the tuning and the evaluation grid):

    serial   madam.run in this process (workers=1)
    fork2    workers=2 (a pool of 2 forked processes)
    pool2    executor=concurrent.futures.ProcessPoolExecutor(2)
    dask2    executor=Client(LocalCluster(n_workers=2, threads_per_worker=1)).get_executor()
             (the cluster is started before the clock starts)

    python benchmarks/grid_scaling.py                        # the preset: 300 steps, ~10 min
    python benchmarks/grid_scaling.py --steps 1500           # the study's budget (much longer)
    python benchmarks/grid_scaling.py --engines serial,pool2 --problems vlmop2 --steps 100

Each worker runs madam with one thread (madam.run's default on workers), the serial run too
(--threads), and NumPy's BLAS gets one thread per process (OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS default to 1 here). Run it on an otherwise idle machine: the numbers are
wall-clock seconds, and the script prints the load average before and after.
"""
import os

# one BLAS thread per process for NumPy's own OpenBLAS too (the problems' matrix products), set
# before NumPy loads, for every engine alike: 2 workers x 2 BLAS threads on 2 cores only fight
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import copyreg  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

import madam  # noqa: E402
from madam import solvers, study  # noqa: E402
from madam.madam_opt import MAdam  # noqa: E402
from madam.study import epo_ray, study_problem  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import collapse  # noqa: E402  (the study's seeds, learning-rate grid and preference lattices)

ARRAYS = ("losses", "lambdas", "final_losses", "final_lambdas", "final_x")

# madam.study.Shifted forwards every attribute to its problem, also while being unpickled (when
# it has none yet: endless recursion); rebuilding it from its constructor's arguments avoids that
copyreg.pickle(study.Shifted, lambda s: (type(s), (s._p, s.offset)))
copyreg.pickle(study.ToyStarts, lambda s: (type(s), (s._p, s.offset)))


def epo(preference):
    """EPO aimed at the ray of ``preference`` (the study's EPO factory, as a module function)."""
    return solvers.EPO(epo_ray(preference))


def study_grids(problem, steps, run_kwargs):
    """claim 1's two madam.run grids on one problem: tune, then evaluate at the tuned lrs."""
    prefs = collapse.preference_grid(problem.n_obj)
    sol = {"rlw": "rlw", "mgda": "mgda", "epo": epo}
    opts = {"adam": ("Adam", {}), "madam": (MAdam, {}), "sgd": ("SGD", {})}
    common = dict(preferences=prefs, steps=steps, max_loss=1e6, progress=False, **run_kwargs)
    tuned = madam.tune_lr(problem, sol, opts, {o: collapse.LR_GRID[o] for o in opts},
                          seeds=collapse.TUNE_SEEDS, allow_divergence=False, **common)
    evaluation = madam.run(problem, sol, opts, lr=tuned.chosen, seeds=collapse.EVAL_SEEDS,
                           record_every=max(1, steps // 10), **common)
    return [tuned.result, evaluation]


def run_engine(name, names, steps):
    """(seconds, results) of the whole sequence on one engine."""
    cluster = client = pool = None
    if name == "serial":
        kwargs = {}
    elif name == "fork2":
        kwargs = {"workers": 2}
    elif name == "pool2":
        pool = ProcessPoolExecutor(2)
        kwargs = {"executor": pool}
    elif name == "dask2":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        kwargs = {"executor": client.get_executor()}
    else:
        raise SystemExit(f"unknown engine {name!r}")
    try:
        t0 = time.perf_counter()
        results = []
        for problem_name in names:
            results.extend(study_grids(study_problem(problem_name), steps, kwargs))
        return time.perf_counter() - t0, results
    finally:
        if pool is not None:
            pool.shutdown()
        if client is not None:
            client.close()
            cluster.close()


def identical(a, b):
    for ra, rb in zip(a, b):
        for name in ARRAYS:
            if getattr(ra, name).tobytes() != getattr(rb, name).tobytes():
                return False
        strip = [{k: v for k, v in row.items() if k != "time_s"} for row in ra.grid]
        if strip != [{k: v for k, v in row.items() if k != "time_s"} for row in rb.grid]:
            return False
    return len(a) == len(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--problems", default="vlmop2,zdt1,cagrad_toy,teacher_student,wine_mtl")
    ap.add_argument("--engines", default="serial,fork2,pool2,dask2")
    ap.add_argument("--threads", type=int, default=1, help="madam's threads in this process")
    args = ap.parse_args()
    madam.set_num_threads(args.threads)
    names = args.problems.split(",")
    engines = args.engines.split(",")
    if "serial" not in engines:
        engines.insert(0, "serial")
    print(f"madam {madam.__version__}; {os.cpu_count()} CPUs; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; steps {args.steps}; "
          f"problems {', '.join(names)}")
    rows, reference = [], None
    for engine in engines:
        seconds, results = run_engine(engine, names, args.steps)
        runs = sum(len(r) for r in results)
        if reference is None:
            reference = (seconds, results)
        same = identical(results, reference[1])
        rows.append((engine, seconds, runs, same))
        print(f"{engine:<7} {seconds:8.1f} s  {runs} runs  speed-up "
              f"{reference[0] / seconds:4.2f}  identical to serial: {same}", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if not all(r[3] for r in rows):
        raise SystemExit("an engine's results differ from the serial run's")
    return np.array([r[1] for r in rows])


if __name__ == "__main__":
    main()
