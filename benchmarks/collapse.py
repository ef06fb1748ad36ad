"""Test the MAdam paper's collapse claim: the first study (balanced scales) and the scale study.

Claim 1 (collapse): "Adam's adaptive learning rate conflates preference weightings with gradient
statistics, collapsing distinct Pareto trade-offs into near-identical solutions." Here: at equal
budgets (same steps, same gradients per step), with the learning rate tuned per (problem, method,
optimiser) on a grid (seeds 100, 101; criterion: hypervolume), on 5 evaluation seeds (0-4):

  methods     RLW (random weights every step), MGDA (adaptive), EPO over a preference grid (one
              run per preference), PSL (Pareto set learning: a small hypernetwork p -> x trained
              with EPO at a random preference p each step, as LibMOON does with Adam)
  optimisers  Adam, MAdam (full pairs, rampup 0), SGD
  problems    ZDT1, VLMOP2, the CAGrad toy, teacher-student (AMOO, C = 2, 16 hidden units),
              wine (a real-data 3-task network, scikit-learn's data set)

  metrics per set of solutions (EPO: its K preference runs of one seed; PSL: h(p) at the K grid
  preferences; RLW, MGDA: the 5 seeds' endpoints, one set): hypervolume (w.r.t. one reference
  point per problem), IGD to the true front where known, spread (mean pairwise distance of the
  solutions, objectives normalised by the front's ideal-nadir box) and the collapse index
  CI = 1 - spread / spread of K points spread evenly along the front (farthest-point sampling of
  the true front, or of the nondominated union of every run on that problem where the front is
  unknown): 0 = as spread as an even cover of the front, 1 = all solutions on one point.

Claim 2 (apparent conflict) is measured by benchmarks/conflict.py (Adam and MAdam with and
without momentum, at one learning rate per problem, problems labelled by measured front extent);
it reads this study's tuned MGDA learning rates (madam.study.CONFLICT_LR).

Problems with possibly non-positive losses are shifted by a constant (OFFSET) for every method:
EPO takes logarithms of the losses; a shift changes neither gradients nor Pareto sets.

    python benchmarks/collapse.py                 # the first study (~12-20 min on 2 cores)
    python benchmarks/collapse.py --quick         # a smoke run (~1 min)
    python benchmarks/collapse.py --out results.json
    python benchmarks/collapse.py --summarise benchmarks/results/collapse.json   # tables only
    python benchmarks/collapse.py --psl-scale     # the scale study below (~4 min on 2 cores)

The scale study (``--psl-scale``, madam.psl): where collapse can act. One PSL hypernetwork is
trained at a new preference p every step on two quadratics whose first loss is scaled by
s in {1, 1e2, 1e4}; the step scalarises the raw losses with lambda(p) = (p / s) / sum(p / s), so
the exact target of every preference is the same for every s while the scalarised direction's
size changes with p by up to s. Gradients exact or noisy (noise scaled with each objective, as
minibatch noise); budgets 250, 1000, 4000 steps; Adam, MAdam, SGD and Adam on the normalised
losses (the practitioner's fix); learning rates tuned per (s, noise, budget, method) on seeds
100, 101 by the mean distance to the targets; 10 paired evaluation seeds (0-9). Writes
benchmarks/results/collapse_psl.json (with the package version and core source hash).

Writes a JSON file (default benchmarks/results/collapse.json) that notebooks/01_pareto_collapse.ipynb
reads, and prints the tables.
"""
import argparse
import json
import os
import time

import numpy as np

import madam
from madam import pareto, psl, solvers, stats, study
from madam.madam_opt import MAdam
from madam.study import FrontInfo, epo_ray

OPTIMIZERS = ("adam", "madam", "sgd")
LR_GRID = {"adam": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1), "madam": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
           "sgd": (1e-3, 1e-2, 1e-1, 1.0, 10.0)}
EVAL_SEEDS = (0, 1, 2, 3, 4)
TUNE_SEEDS = (100, 101)


# ============================================================================ problems
# the study's problems (loss offsets, teacher-student's settings, the CAGrad toy's starts) are
# madam.study.study_problem, shared with benchmarks/conflict.py, notebook 01 and the demo
make_problem = study.study_problem
OFFSET = study.STUDY_OFFSETS


def preference_grid(n_obj):
    return madam.preference_grid(n_obj, 6 if n_obj == 2 else 5, interior=True)


# the study's measures (epo_ray, FrontInfo: collapse index, apparent conflict) live in
# madam/study.py, shared with notebook 01 and `python -m madam demo`


# ============================================================================ PSL
def Hypernet(problem, hidden, rng):
    """madam.psl.Hypernet for ``problem`` (2 -> hidden -> n, sigmoid output on a box), its start
    from the problem's sampler."""
    return psl.Hypernet(problem.n_obj, problem.dim, hidden, rng,
                        problem.initial_points(1, rng)[0], problem.bounds)


make_optimizer = psl.make_optimizer   # adam, madam (no solver: it is given lambda), sgd


def train_psl(problem, opt_name, lr, seed, steps, eval_prefs, checkpoints, hidden=16):
    """Train a hypernetwork with EPO at a fresh Dirichlet preference each step. Returns the
    losses at eval_prefs at each checkpoint (dict step -> (K, C)), None if it diverged."""
    rng = np.random.default_rng(seed)
    batch_rng = np.random.default_rng(seed + 10_000)
    net = Hypernet(problem, hidden, rng)
    opt = make_optimizer(opt_name, net.theta, lr)
    epo = solvers.EPO(np.full(problem.n_obj, 1.0 / problem.n_obj))
    batch = problem.new_batch(batch_rng)
    out = {}

    def evaluate():
        pts = []
        for w in eval_prefs:
            x, _, _ = net.forward(w)
            pts.append(problem.losses(x))
        return np.array(pts)

    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            if t in checkpoints:
                out[t] = evaluate()
            if t == steps:
                break
            p = rng.dirichlet(np.ones(problem.n_obj))
            x, a, dxdz = net.forward(p)
            f, jac_x = problem.losses_and_jacobian(x, batch)
            if batch is not None:
                batch = problem.new_batch(batch_rng)
            if not (np.all(np.isfinite(f)) and np.all(f > 0) and np.all(np.isfinite(jac_x))):
                return None
            jac = net.jacobian(p, jac_x, a, dxdz)
            epo.preference = epo_ray(p)
            try:
                if opt_name == "madam":
                    opt.solver = epo
                    opt.step(jac, f)
                else:
                    _, d = epo.solve(jac, f)
                    opt.step(d)
            except (ValueError, FloatingPointError):
                return None
            if not np.all(np.isfinite(net.theta)):
                return None
    return out


# ============================================================================ claim 1
def run_grid(problem, lrs, seeds, steps, prefs, record_every, workers):
    sol = {"rlw": "rlw", "mgda": "mgda",
           "epo": lambda preference: solvers.EPO(epo_ray(preference))}
    opts = {"adam": ("Adam", {}), "madam": (MAdam, {}), "sgd": ("SGD", {})}
    return madam.run(problem, sol, opts, preferences=prefs, seeds=seeds, steps=steps, lr=lrs,
                     record_every=record_every, workers=workers, max_loss=1e6)


def tune(problem, steps, prefs, workers):
    lrs = {o: LR_GRID[o] for o in OPTIMIZERS}
    sol = {"rlw": "rlw", "mgda": "mgda",
           "epo": lambda preference: solvers.EPO(epo_ray(preference))}
    opts = {"adam": ("Adam", {}), "madam": (MAdam, {}), "sgd": ("SGD", {})}
    tuned = madam.tune_lr(problem, sol, opts, lrs, preferences=prefs, seeds=TUNE_SEEDS,
                          steps=steps, workers=workers, max_loss=1e6, allow_divergence=False)
    return {f"{s}/{o}": lr for (s, o), lr in tuned.chosen.items()}


def tune_psl(problem, steps, prefs, fronts_ref):
    chosen = {}
    for o in OPTIMIZERS:
        best = (-1.0, None)
        for lr in LR_GRID[o]:
            hv = []
            for seed in TUNE_SEEDS:
                res = train_psl(problem, o, lr, seed, steps, prefs, {steps})
                if res is None:
                    hv = None
                    break
                pts = res[steps]
                inside = pts[np.all(pts < fronts_ref, axis=1)]
                hv.append(pareto.hypervolume(inside, fronts_ref) if inside.shape[0] else 0.0)
            if hv is not None and np.mean(hv) > best[0]:
                best = (float(np.mean(hv)), lr)
        chosen[o] = best[1]
    return chosen


t_interval = stats.t_interval


def claim1(names, steps_by, quick, workers, log):
    out = {}
    for name in names:
        t0 = time.perf_counter()
        problem = make_problem(name)
        steps = steps_by(name)
        prefs = preference_grid(problem.n_obj)
        k = prefs.shape[0]
        record_every = max(1, steps // 10)
        lrs = tune(problem, steps, prefs, workers)
        res = run_grid(problem, {key: lrs[f"{key[0]}/{key[1]}"] for key in
                                 [(s, o) for s in ("rlw", "mgda", "epo") for o in OPTIMIZERS]},
                       EVAL_SEEDS, steps, prefs, record_every, workers)
        known_front = problem.pareto_front(500)
        # PSL: tune against a provisional reference (the grid runs' pooled endpoints)
        pooled = res.final_losses[~res.diverged]
        pooled = pooled[np.all(np.isfinite(pooled), axis=1)]
        front_for_ref = known_front if known_front is not None else pooled
        hi = np.maximum(front_for_ref.max(axis=0), np.percentile(pooled, 90, axis=0))
        lo = front_for_ref.min(axis=0)
        ref = hi + 0.1 * np.where(hi > lo, hi - lo, 1.0)
        psl_steps = steps * 2
        psl_lrs = tune_psl(problem, psl_steps, prefs, ref)
        psl_check = set(range(0, psl_steps + 1, max(1, psl_steps // 10))) | {psl_steps}
        psl = {o: {s: (train_psl(problem, o, psl_lrs[o], s, psl_steps, prefs, psl_check)
                       if psl_lrs[o] is not None else None) for s in EVAL_SEEDS}
               for o in OPTIMIZERS}
        if known_front is None:
            union = [pooled] + [r[psl_steps] for o in psl.values() for r in o.values()
                                if r is not None]
            allpts = np.concatenate(union, axis=0)
            allpts = allpts[np.all(np.isfinite(allpts), axis=1)]
            front = pareto.filter_dominated(allpts)
        else:
            front = known_front
        info = FrontInfo(front, ref, k, prefs if known_front is not None else None)
        entry = {"steps": steps, "psl_steps": psl_steps, "lr": lrs, "psl_lr": psl_lrs,
                 "prefs": prefs.tolist(), "front": front.tolist(), "ref": ref.tolist(),
                 "known_front": known_front is not None, "methods": {},
                 "front_extent": info.even_spread,
                 "ci_targets": (info.collapse_index(info.targets)
                                if info.targets is not None else None),
                 "targets": info.targets.tolist() if info.targets is not None else None}
        # EPO and the preference-free solvers
        for s in ("rlw", "mgda", "epo"):
            for o in OPTIMIZERS:
                sel = res.select(solver=s, optimizer=o)
                rows = sel.grid
                per_seed, budget = [], []
                diverged = int(sel.diverged.sum())
                if s == "epo":
                    for seed in EVAL_SEEDS:
                        idx = [i for i, g in enumerate(rows) if g["seed"] == seed]
                        per_seed.append(info.metrics(sel.final_losses[idx], entry["known_front"]))
                        budget.append([info.metrics(sel.losses[idx, r], entry["known_front"])["ci"]
                                       for r in range(sel.losses.shape[1])])
                    endpoints = [sel.final_losses[[i for i, g in enumerate(rows)
                                                   if g["seed"] == seed]].tolist()
                                 for seed in EVAL_SEEDS]
                else:
                    m = info.metrics(sel.final_losses, entry["known_front"], False)
                    m["gd"] = [float(np.min(np.linalg.norm(info.normalise(f) - info.normalise(
                        front), axis=1))) for f in sel.final_losses]
                    per_seed = [m]
                    endpoints = [sel.final_losses.tolist()]
                entry["methods"][f"{s}/{o}"] = {
                    "per_set": per_seed, "budget_ci": budget, "budget_steps":
                    sel.steps.tolist(), "endpoints": endpoints, "diverged": diverged,
                    "lambdas_seed0": sel.lambdas[[i for i, g in enumerate(rows)
                                                  if g["seed"] == 0][:1]].tolist()
                    if s != "epo" else sel.lambdas[[i for i, g in enumerate(rows)
                                                    if g["seed"] == 0][k // 2:k // 2 + 1]].tolist()}
        for o in OPTIMIZERS:
            per_seed, budget, endpoints, div = [], [], [], 0
            for seed in EVAL_SEEDS:
                r = psl[o][seed]
                if r is None:
                    div += 1
                    continue
                per_seed.append(info.metrics(r[psl_steps], entry["known_front"]))
                budget.append([info.metrics(r[c], entry["known_front"])["ci"]
                               for c in sorted(r)])
                endpoints.append(r[psl_steps].tolist())
            entry["methods"][f"psl/{o}"] = {"per_set": per_seed, "budget_ci": budget,
                                            "budget_steps": sorted(psl_check),
                                            "endpoints": endpoints, "diverged": div}
        entry["seconds"] = time.perf_counter() - t0
        out[name] = entry
        log(f"{name}: {entry['seconds']:.0f} s; lr {lrs}; psl lr {psl_lrs}")
    return out


# ============================================================================ summary
def summarise(c1):
    """Per (problem, method, optimiser): mean and 95 % t-interval of each metric over sets;
    paired (by seed) MAdam - Adam differences for EPO and PSL."""
    table = []
    for name, entry in c1.items():
        for key, m in entry["methods"].items():
            sets = m["per_set"]
            row = {"problem": name, "method": key.split("/")[0], "optimizer": key.split("/")[1],
                   "sets": len(sets), "diverged": m["diverged"]}
            for metric in ("hv", "igd", "spread", "ci"):
                row[metric] = t_interval([s.get(metric) for s in sets])
            if "gd" in (sets[0] if sets else {}):
                row["gd"] = t_interval(sets[0]["gd"])
            table.append(row)
        entry["paired"] = {}
        for method in ("epo", "psl"):
            a = entry["methods"][f"{method}/adam"]["per_set"]
            b = entry["methods"][f"{method}/madam"]["per_set"]
            if len(a) == len(b) and a:
                for metric in ("hv", "igd", "ci"):
                    diff = [y[metric] - x[metric] for x, y in zip(a, b)
                            if x[metric] is not None and y[metric] is not None]
                    if diff:
                        entry["paired"][f"{method}/{metric}"] = t_interval(diff)
        for method in ("rlw", "mgda"):   # distance of each seed's endpoint to the front
            a = entry["methods"][f"{method}/adam"]["per_set"][0]["gd"]
            b = entry["methods"][f"{method}/madam"]["per_set"][0]["gd"]
            if entry["known_front"]:
                entry["paired"][f"{method}/gd"] = t_interval([y - x for x, y in zip(a, b)])
    return table


def print_tables(c1, table):
    print(f"{'problem':<16} {'method':<5} {'opt':<6} {'HV':>18} {'IGD':>18} {'CI':>18} "
          f"{'GD (RLW, MGDA)':>18} div")
    for r in table:
        def fmt(v):
            mean, half, _ = v
            if mean is None:
                return f"{'-':>18}"
            return f"{mean:>9.4f} +- {half:<6.4f}" if half is not None else f"{mean:>9.4f}{'':9}"
        gd = fmt(r["gd"]) if "gd" in r and c1[r["problem"]]["known_front"] else f"{'-':>18}"
        print(f"{r['problem']:<16} {r['method']:<5} {r['optimizer']:<6} {fmt(r['hv'])} "
              f"{fmt(r['igd'])} {fmt(r['ci'])} {gd} {r['diverged']}")
    print("\npaired MAdam - Adam (mean +- 95% t half-width over seeds):")
    for name, entry in c1.items():
        for key, (mean, half, nn) in entry.get("paired", {}).items():
            if mean is not None:
                print(f"  {name:<16} {key:<8} {mean:+.4f} +- {half if half is not None else 0:.4f}"
                      f" (n={nn})")


def psl_scale_study(workers, quick):
    """Run madam.psl.scale_study, print its paired table, write results/collapse_psl.json."""
    t0 = time.perf_counter()
    kw = dict(budgets=(250,), eval_seeds=(0, 1, 2)) if quick else {}
    result = psl.scale_study(workers=workers, **kw)
    result["provenance"] = study.provenance()
    result["seconds"] = time.perf_counter() - t0
    print(f"{'noise':>5} {'s':>6} {'steps':>5} {'method':<16} {'lr':>8} "
          + "".join(f"{m:>22}" for m in psl.METRICS) + "   paired vs Adam (mean +- 95 %)")
    for r in psl.paired_table(result):
        cells = "".join(f"{r[m][0]:>13.3f} +- {r[m][1]:<5.3f}" for m in psl.METRICS)
        vs = r.get("vs_adam")
        pair = "" if vs is None else "  ".join(
            f"{m[:6]} {vs[m]['mean']:+.3f}+-{vs[m]['half']:.3f}" for m in psl.METRICS
            if vs[m]["mean"] is not None and vs[m]["half"] is not None)
        print(f"{r['noise']:>5g} {r['scale']:>6g} {r['steps']:>5} {r['method']:<16} "
              f"{r['lr']:>8.1e} {cells}  {pair}")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                       "collapse_psl_quick.json" if quick else "collapse_psl.json")
    with open(out, "w") as fh:
        json.dump(result, fh)
    print(f"wrote {out} in {result['seconds']:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results", "collapse.json"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--problems", default="vlmop2,zdt1,cagrad_toy,teacher_student,wine_mtl")
    ap.add_argument("--psl-scale", action="store_true", help="run only the PSL scale study "
                    "(madam.psl.scale_study) and write results/collapse_psl.json")
    ap.add_argument("--summarise", metavar="JSON", help="only recompute and print the summary "
                    "of an existing results file (rewritten in place)")
    args = ap.parse_args()
    if args.psl_scale:
        psl_scale_study(args.workers, args.quick)
        return
    if args.summarise:
        with open(args.summarise) as fh:
            saved = json.load(fh)
        saved["table"] = summarise(saved["claim1"])
        print_tables(saved["claim1"], saved["table"])
        with open(args.summarise, "w") as fh:
            json.dump(saved, fh)
        return
    names = args.problems.split(",")
    if args.quick:
        global EVAL_SEEDS, TUNE_SEEDS
        EVAL_SEEDS, TUNE_SEEDS = (0, 1), (100,)
        steps_by = lambda name: 200  # noqa: E731
    else:
        steps_by = lambda name: {"teacher_student": 1000, "wine_mtl": 1500}.get(name, 1500)  # noqa
    t0 = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)  # noqa
    madam.set_num_threads(1)
    c1 = claim1(names, steps_by, args.quick, args.workers, log)
    table = summarise(c1)
    print_tables(c1, table)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"claim1": c1, "table": table, "quick": args.quick,
                   "provenance": study.provenance(),
                   "eval_seeds": list(EVAL_SEEDS), "tune_seeds": list(TUNE_SEEDS),
                   "lr_grid": LR_GRID, "offset": OFFSET,
                   "seconds": time.perf_counter() - t0}, fh)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
