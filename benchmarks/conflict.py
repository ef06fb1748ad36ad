"""Apparent conflict: the metric or momentum? Adam and MAdam with and without momentum.

The first collapse study (``benchmarks/collapse.py``, claim 2) counted apparent conflicts
(MGDA's direction d decreases every objective to first order, the optimiser's realised step
increases one; definitions in ``madam/study.py``) for Adam and MAdam with betas (0.9, 0.999). An apparent conflict can come
from the diagonal metric (Adam's 1/sqrt(v_hat), MAdam's 1/(M sqrt(v_hat))) or from momentum (the
step follows m_hat, an average of past directions, not today's d). With beta1 = 0 there is no
momentum: the step is lr d through the metric alone. This benchmark runs

  problems    teacher_student (2 objectives, 16 hidden units, batches of 128, noise 0.1),
              zdt1, vlmop2, cagrad_toy (Nash-MTL's starts + jitter), amoo_specification,
              wine_mtl: built by ``madam.study.study_problem`` exactly as collapse.py builds them
  columns     Adam and MAdam (``madam.study.conflict_optimizer``), each at beta1 = 0.9 and 0
              (beta2 = 0.999), ALL FOUR AT ONE LEARNING RATE PER PROBLEM: the one collapse.py
              tuned for MGDA + Adam (``madam.study.CONFLICT_LR``: teacher-student 0.01, ZDT1,
              VLMOP2 and the toy 0.03, wine 0.1; AMOO's example 0.003, collapse.py's default)
  runs        MGDA, 1000 steps, seeds 0-4

and reports, per problem and column, the fraction of eligible steps that are apparent conflicts
(mean and 95 % t interval over the 5 seeds; per-seed counts in the JSON), the paired (by seed)
differences MAdam - Adam and (beta1 = 0) - (beta1 = 0.9), and each problem's **front extent**
(``madam.study.front_extent``: linear scalarisation at 7 preferences, 6 for wine's 3 objectives,
Adam with lr decayed linearly from the problem's lr to 0 over 2000 steps, from the seed-s start,
s = 0-4; the range each objective spans over the nondominated endpoints as a fraction of its
range over those endpoints and the start, max over objectives). It also gives the scatter of all
endpoints (the measurement's resolution) and, where the problem knows its front, the extent of
the true front from the same start. A problem is labelled by its median measured extent.

    python benchmarks/conflict.py                  # the full table (~1-1.5 min on 2 cores)
    python benchmarks/conflict.py --quick          # 2 seeds, 200 steps, 500 extent steps
    python benchmarks/conflict.py --out results.json

Writes benchmarks/results/conflict.json (provenance, settings, per-seed values, summaries).
"""
import argparse
import json
import os
import time

import numpy as np

import madam
from madam import study
from madam.stats import t_interval

PROBLEMS = ("teacher_student", "zdt1", "vlmop2", "cagrad_toy", "amoo_specification", "wine_mtl")
OPTIMIZERS = ("adam", "madam")
BETA1S = (0.9, 0.0)
BETA2 = 0.999
SEEDS = (0, 1, 2, 3, 4)
STEPS = 1000
EXTENT_STEPS = 2000
HERE = os.path.dirname(os.path.abspath(__file__))


def measure_extents(problem, lr, seeds, steps):
    """Per seed: extent (nondominated endpoints), scatter (all endpoints) and, where the
    problem knows its front, the true front's extent from the same start."""
    out = {"lr": lr, "steps": steps, "seeds": list(seeds), "per_seed": [], "scatter_per_seed": [],
           "true_front_per_seed": None}
    known = problem.pareto_front(500) is not None
    if known:
        out["true_front_per_seed"] = []
    for seed in seeds:
        f0, ends = study.scalarisation_endpoints(problem, None, seed, steps, lr)
        out["per_seed"].append(study.extent_of(f0, ends, nondominated=True))
        out["scatter_per_seed"].append(study.extent_of(f0, ends, nondominated=False))
        if known:
            out["true_front_per_seed"].append(study.front_extent(problem, seed=seed,
                                                                 known_front=True))
    out["median"] = float(np.median(out["per_seed"]))
    out["scatter_median"] = float(np.median(out["scatter_per_seed"]))
    if known:
        out["true_front_median"] = float(np.median(out["true_front_per_seed"]))
    return out


def summarise(entry):
    """Add mean / ci95 / n to every column and the paired differences (by seed)."""
    cols = entry["columns"]
    for col in cols.values():
        col["mean"], col["ci95"], col["n"] = t_interval(col["fractions"])
    paired = {}
    pairs = [(study.conflict_column("madam", b), study.conflict_column("adam", b)) for b in BETA1S]
    pairs += [(study.conflict_column(o, 0.0), study.conflict_column(o, 0.9)) for o in OPTIMIZERS]
    for a, b in pairs:
        diff = [x - y for x, y in zip(cols[a]["fractions"], cols[b]["fractions"])
                if np.isfinite(x) and np.isfinite(y)]
        mean, half, n = t_interval(diff)
        paired[f"{a} - {b}"] = {"per_seed": diff, "mean": mean, "ci95": half, "n": n}
    entry["paired"] = paired


def fmt(mean, half):
    if mean is None:
        return f"{'-':>15}"
    return f"{mean:6.3f} +- {half:5.3f}" if half is not None else f"{mean:6.3f}{'':9}"


def print_table(table, extents):
    labels = [study.conflict_column(o, b) for o in OPTIMIZERS for b in BETA1S]
    print("\napparent-conflict fraction (conflicts / eligible MGDA steps), mean +- 95% t "
          "half-width over seeds; one lr per problem for all four columns")
    print(f"{'problem':<19} {'lr':>6} {'extent':>9} {'scatter':>9} " +
          " ".join(f"{lab:>15}" for lab in labels) + "   eligible/run (min)")
    for name, entry in table.items():
        ext = extents[name]
        cols = entry["columns"]
        elig = min(min(c["eligible"]) for c in cols.values())
        print(f"{name:<19} {entry['lr']:>6g} {ext['median']:>9.2g} {ext['scatter_median']:>9.2g} "
              + " ".join(fmt(cols[lab]["mean"], cols[lab]["ci95"]) for lab in labels)
              + f"   {elig}")
    print("\npaired differences (per seed), mean +- 95% t half-width:")
    for name, entry in table.items():
        print(f"  {name:<19} " + "; ".join(f"{k}: {fmt(v['mean'], v['ci95']).strip()}"
                                            for k, v in entry["paired"].items()))
    print("\nfront extent per seed (scalarisation; nondominated / all endpoints / true front):")
    for name, ext in extents.items():
        true = ext.get("true_front_per_seed")
        print(f"  {name:<19} " + ", ".join(f"{a:.2g}" for a in ext["per_seed"]) + "  /  "
              + ", ".join(f"{a:.2g}" for a in ext["scatter_per_seed"])
              + ("  /  " + ", ".join(f"{a:.2g}" for a in true) if true else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "conflict.json"))
    args = ap.parse_args()
    seeds, steps, extent_steps = (SEEDS[:2], 200, 500) if args.quick else (SEEDS, STEPS,
                                                                           EXTENT_STEPS)
    madam.set_num_threads(1)
    t0 = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)  # noqa
    table, extents, seconds = {}, {}, {}
    for name in PROBLEMS:
        t1 = time.perf_counter()
        problem = study.study_problem(name)
        lr = study.CONFLICT_LR[name]
        table.update(study.conflict_table({name: problem}, lr, seeds, steps, BETA1S, OPTIMIZERS,
                                          BETA2))
        summarise(table[name])
        t2 = time.perf_counter()
        extents[name] = measure_extents(problem, lr, seeds, extent_steps)
        seconds[name] = {"conflicts": t2 - t1, "extent": time.perf_counter() - t2}
        cols = table[name]["columns"]
        log(f"{name}: extent {extents[name]['median']:.2g}; " + ", ".join(
            f"{k} {v['mean']:.3f}" for k, v in cols.items() if v["mean"] is not None)
            + f" ({seconds[name]['conflicts']:.0f} s + {seconds[name]['extent']:.0f} s)")
    print_table(table, extents)
    out = {"provenance": study.provenance(),
           "settings": {"problems": list(PROBLEMS), "optimizers": list(OPTIMIZERS),
                        "beta1s": list(BETA1S), "beta2": BETA2, "seeds": list(seeds),
                        "steps": steps, "solver": "MGDA", "lr": {n: study.CONFLICT_LR[n]
                                                                 for n in PROBLEMS},
                        "lr_rule": "one lr per problem for all four columns: collapse.py's "
                                   "MGDA + Adam tuned lr (AMOO's example: 3e-3)",
                        "offsets": {n: study.STUDY_OFFSETS.get(n, 0.0) for n in PROBLEMS},
                        "extent": {"optimizer": "Adam, lr decayed linearly to 0",
                                   "steps": extent_steps, "lr": "the problem's lr",
                                   "preferences": "7 interior (2 objectives), 6 (3 objectives)",
                                   "eval_batches": 32},
                        "quick": args.quick},
           "problems": {name: {**table[name], "front_extent": extents[name],
                               "seconds": seconds[name]} for name in PROBLEMS},
           "seconds": time.perf_counter() - t0}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
