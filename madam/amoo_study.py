r"""The AMOO study of notebook 03 and ``benchmarks/amoo_full.py``: tuned on some seeds, tested on
others, compared by paired tests.

Seed 002 (Efroni et al., OPT 2024), section 4 and appendix C: a 2-layer ReLU MLP student
(10 -> hidden -> 10) fits a random teacher of the same shape under 10 quadratic output losses
(:class:`madam.problems.TeacherStudent`, problem seed ``PROBLEM_SEED``), targets
y = teacher(u) + sigma eps, a fresh batch every step. Methods: equal weights (EW), CAMOO
(Hutchinson on the exact parameter-space HVPs, N probes, EMA 0.99, one PU iteration per step)
and PAMOO (the ICML code's weights from the output-bias gradients); optimisers SGD and Adam for
every method, and MAdam for CAMOO. Metric: the distance to the teacher,
E ||h_x(u) - h_teacher(u)||^2 / d_out on 8192 fixed inputs (``output_error``).

Protocol (:func:`teacher_student`):

1. **Tuning** (:func:`tune`): every (sigma, optimiser, method) runs every learning rate of its
   grid on the *tuning seeds* (default 100, 101); the chosen lr has the lowest mean final
   distance over them (a run that diverges disqualifies its lr; ties go to the first lr of the
   grid).
2. **Evaluation** (:func:`evaluate`): each (sigma, optimiser, method) runs its chosen lr on the
   *evaluation seeds* 0, ..., seeds - 1, which tuning never saw. A run seed fixes the student's
   initialisation, the batches and CAMOO's probes, so the methods are paired by seed.
3. **Paired tests** (:func:`compare`, :func:`paired`): per sigma and optimiser, the per-seed
   differences CAMOO - EW and PAMOO - EW of the final distance (and per sigma CAMOO under MAdam -
   CAMOO under Adam): the mean, its 95 % Student-t interval and the number of seeds on which the
   method ended closer to the teacher. A method is "better" only when the interval lies below 0,
   "worse" only when it lies above 0; otherwise "no significant difference".

Extra compute (:func:`count_hvp_calls`, :func:`extra_compute`): EW and PAMOO take no
Hessian-vector products; CAMOO takes N (``probes``) calls of ``problem.hvps`` per step, each the
HVPs of all C objectives with one probe (C N objective-HVPs per step).

The ICML 2025 code's setups (:func:`icml_setups`): :class:`madam.problems.PowerLossMLP` with the
code's learning rates, compared on log10 of the final training MSE by the same paired test.

Everything here is deterministic: the same arguments give the same numbers, bit for bit, for any
``workers`` (the runner forks; results are identical to ``workers=1``), provided BLAS runs one
thread per process (the callers use ``threadpoolctl.threadpool_limits(1)``).
"""
import math

import numpy as np

from .stats import t_interval, t_quantile

__all__ = ["SIGMAS", "PROBLEM_SEED", "TUNING_SEEDS", "PRESETS", "ICML_LRS", "t_quantile",
           "paired", "lr_grid", "make_problems", "make_solvers", "tune", "evaluate", "compare",
           "teacher_student", "count_hvp_calls", "extra_compute", "icml_setups", "icml_compare",
           "verdict_text", "report_lines", "summary_record"]

SIGMAS = (1.0, 0.1, 0.001)
PROBLEM_SEED = 1000      # TeacherStudent(seed=s) draws its teacher from default_rng(s) and the
#                          runner the student from default_rng(run seed): they must differ
TUNING_SEEDS = (100, 101)
METHODS = ("CAMOO", "EW", "PAMOO")

PRESETS = {
    # seed 002's sizes and lr grid (every method the same grid); the number of steps is not given
    # in the paper. About 130 CPU-hours (CAMOO: 100 HVP calls of ~21 ms per step), days on 2 cores.
    "paper": dict(hidden=256, batch=1024, steps=2000, seeds=5, tuning_seeds=list(TUNING_SEEDS),
                  probes=100,
                  camoo_sgd_lrs=[1e-5, 1e-4, 1e-3, 1e-2], camoo_adam_lrs=[1e-5, 1e-4, 1e-3, 1e-2],
                  ew_sgd_lrs=[1e-5, 1e-4, 1e-3, 1e-2], ew_adam_lrs=[1e-5, 1e-4, 1e-3, 1e-2],
                  madam_lrs=[1e-4, 1e-3, 1e-2], madam_sigmas=list(SIGMAS), records=21),
    # notebook 03's budget (about a minute on 2 cores): the baselines EW and PAMOO, which take no
    # HVPs, get a wider grid than CAMOO (so a win of CAMOO cannot come from an under-tuned EW);
    # CAMOO under MAdam only at sigma 0.1
    "notebook": dict(hidden=32, batch=128, steps=250, seeds=5, tuning_seeds=list(TUNING_SEEDS),
                     probes=10,
                     camoo_sgd_lrs=[0.1, 0.3, 0.6], camoo_adam_lrs=[3e-3, 1e-2, 3e-2],
                     ew_sgd_lrs=[0.03, 0.1, 0.3, 0.6], ew_adam_lrs=[1e-3, 3e-3, 1e-2, 3e-2, 0.1],
                     madam_lrs=[3e-3, 1e-2], madam_sigmas=[0.1], records=6),
}

ICML_LRS = {  # the ICML code's learning rates (EW and CAMOO on the mean of the 3 losses)
    "SGD": {"EW": 1.5e-3, "CAMOO": 1.5e-3, "PAMOO": 5e-4},
    "Adam": {"EW": 5e-3, "CAMOO": 1.5e-2, "PAMOO": 5e-3},
}


# ============================================================================ statistics
# t_quantile: madam.stats (Student's t by bisection on its exact CDF)


def paired(a, b, level=0.95):
    """Paired comparison of a against b (per-seed values, lower is better): the differences
    d = a - b, their mean, its ``level`` Student-t interval [lo, hi], the number of pairs with
    d < 0 (``better``), and the verdict: "better" (hi < 0), "worse" (lo > 0) or "no significant
    difference". Non-finite pairs (diverged runs) make the test "not testable"."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need two equal 1-D arrays of >= 2 values, got {a.shape}, {b.shape}")
    d = a - b
    n = int(d.size)
    out = {"n": n, "diffs": d.tolist(), "better": int(np.sum(d < 0)), "level": level}
    if not np.all(np.isfinite(d)):
        out.update(mean=math.nan, sd=math.nan, lo=math.nan, hi=math.nan,
                   verdict="not testable (a run diverged)")
        return out
    mean, half, _ = t_interval(d, level)
    sd = float(np.std(d, ddof=1))
    lo, hi = mean - half, mean + half
    verdict = "better" if hi < 0 else "worse" if lo > 0 else "no significant difference"
    out.update(mean=mean, sd=sd, lo=lo, hi=hi, verdict=verdict)
    return out


# ============================================================================ the study
def lr_grid(camoo_sgd_lrs, camoo_adam_lrs, ew_sgd_lrs, ew_adam_lrs, madam_lrs, **_):
    """{(method, optimiser): [lr, ...]}: CAMOO its grids, EW and PAMOO the ew_* grids, CAMOO under
    MAdam ``madam_lrs`` (none when empty)."""
    grid = {("CAMOO", "SGD"): list(camoo_sgd_lrs), ("CAMOO", "Adam"): list(camoo_adam_lrs)}
    for m in ("EW", "PAMOO"):
        grid[(m, "SGD")], grid[(m, "Adam")] = list(ew_sgd_lrs), list(ew_adam_lrs)
    if madam_lrs:
        grid[("CAMOO", "MAdam")] = list(madam_lrs)
    return grid


def make_problems(sigmas, hidden, batch, problem_seed=PROBLEM_SEED):
    """{sigma: TeacherStudent}: the same teacher and network for every noise level."""
    from .problems import TeacherStudent

    return {float(s): TeacherStudent(hidden=hidden, batch_size=batch, sigma=s, seed=problem_seed)
            for s in sigmas}


def make_solvers(problem, probes, hvp=None):
    """{method: factory} for EW, CAMOO and PAMOO on a TeacherStudent ``problem``. CAMOO's probes
    are seeded by the run (the runner passes ``seed``), so a run seed fixes them for every lr and
    optimiser. ``hvp`` defaults to ``problem.hvps``, which does not depend on sigma (the noise
    only moves the targets, which come with the batch), so one problem serves all noise levels."""
    from .amoo import CAMOO, PAMOO
    from .solvers import LinearScalarization

    hvp = problem.hvps if hvp is None else hvp
    c, d_out = problem.n_obj, problem.d_out
    return {"CAMOO": lambda seed: CAMOO(hvp, n_samples=probes, beta=0.99, pu_iters=1, seed=seed),
            "EW": lambda: LinearScalarization(np.full(c, 1.0 / c)),
            "PAMOO": lambda: PAMOO(columns=slice(-d_out, None))}


def _optimizers(names):
    from .madam_opt import MAdam

    table = {"SGD": "SGD", "Adam": "Adam", "MAdam": lambda x: MAdam(x, solver=None)}
    return {n: table[n] for n in names}


def _distance(problem, x, diverged=False):
    x = np.asarray(x)[:problem.dim]
    if diverged or not np.all(np.isfinite(x)):
        return math.nan
    return float(problem.output_error(x))


def _grid_calls(probs, grid, probes, seeds, steps, workers, record_every=None, record_x=False):
    """Run ``grid`` {(sigma, method, optimiser): [lr, ...]} on ``seeds``; yields (sigma, method,
    optimiser, lr, seed, RunResult, row index). The runner runs the product methods x optimisers
    with an lr axis keyed by (method, optimiser) only, so there is one call per optimiser family
    (SGD + Adam, or MAdam) and group of sigmas sharing the same lr table (in tuning: all sigmas),
    a table that is not a full product being split into one call per (method, optimiser)."""
    from .runs import run

    p0 = next(iter(probs.values()))
    factories = make_solvers(p0, probes)
    sigmas = sorted({k[0] for k in grid}, key=lambda s: -s)
    # group the sigmas that share an identical lr table into one call (tuning: all of them)
    families = (("SGD", "Adam"), ("MAdam",))
    calls = []
    for fam in families:
        tables = {}
        for s in sigmas:
            table = {(m, o): tuple(v) for (ss, m, o), v in grid.items() if ss == s and o in fam}
            if table:
                tables.setdefault(tuple(sorted(table.items())), []).append(s)
        for table, group in tables.items():
            table = dict(table)
            methods = {m for m, _ in table}
            opts = {o for _, o in table}
            if len(table) == len(methods) * len(opts):
                calls.append((fam, table, group))
            else:   # the runner takes the product methods x optimisers: split an incomplete one
                calls.extend((fam, {key: lrs}, group) for key, lrs in table.items())
    for fam, table, group in calls:
        methods = [m for m in METHODS if any(k[0] == m for k in table)]
        opts = [o for o in fam if any(k[1] == o for k in table)]
        # repr round-trips a float exactly, so float(label) finds the problem again
        res = run({repr(s): probs[s] for s in group}, {m: factories[m] for m in methods},
                  _optimizers(opts), lr={k: list(v) for k, v in table.items()}, seeds=list(seeds),
                  steps=steps, record_every=record_every or steps, record_x=record_x,
                  workers=workers, front_points=0)
        for i, row in enumerate(res.grid):
            yield float(row["problem"]), row["solver"], row["optimizer"], row["lr"], \
                row["seed"], res, i


def tune(probs, grid, tuning_seeds, steps, probes, workers=1, madam_sigmas=None):
    """Every (sigma, method, optimiser, lr) of ``grid`` ({(method, optimiser): lrs}, the same for
    every sigma; MAdam only at ``madam_sigmas``, default all) on the tuning seeds. Returns (rows,
    chosen): rows hold each lr's final distance per tuning seed and their mean (``score``; inf
    when a run diverged); ``chosen`` is {(sigma, method, optimiser): lr} at the lowest score
    (None when every lr diverged)."""
    madam_sigmas = list(probs) if madam_sigmas is None else [float(s) for s in madam_sigmas]
    full = {(s, m, o): lrs for s in probs for (m, o), lrs in grid.items()
            if o != "MAdam" or s in madam_sigmas}
    finals = {}
    for s, m, o, lr, seed, res, i in _grid_calls(probs, full, probes, tuning_seeds, steps,
                                                      workers):
        d = _distance(probs[s], res.final_x[i], res.grid[i]["diverged"])
        finals.setdefault((s, m, o, lr), {})[seed] = d
    rows, chosen = [], {}
    for s in probs:
        for (m, o), lrs in grid.items():
            if (s, m, o) not in full:
                continue
            best = None
            for lr in lrs:
                per_seed = [finals[(s, m, o, lr)][seed] for seed in tuning_seeds]
                score = float(np.mean(per_seed)) if np.all(np.isfinite(per_seed)) else math.inf
                rows.append({"sigma": s, "method": m, "optimizer": o, "lr": lr,
                             "tuning_seeds": list(tuning_seeds), "finals": per_seed,
                             "score": score})
                if math.isfinite(score) and (best is None or score < best[1]):
                    best = (lr, score)
            chosen[(s, m, o)] = None if best is None else best[0]
    return rows, chosen


def evaluate(probs, chosen, seeds, steps, probes, records, workers=1):
    """Each (sigma, method, optimiser) at its ``chosen`` lr on the evaluation ``seeds``.
    Returns (recorded steps, rows): rows hold the final distance per seed (``finals``), the
    distance at the recorded steps (``distance``, per seed) and CAMOO's / PAMOO's weight on f_1
    (``lambda0``, per seed)."""
    every = max(1, steps // max(1, records - 1))
    grid = {k: [lr] for k, lr in chosen.items() if lr is not None}
    runs = {}
    rec_steps = None
    for s, m, o, lr, seed, res, i in _grid_calls(probs, grid, probes, seeds, steps, workers,
                                                record_every=every, record_x=True):
        p = probs[s]
        div = res.grid[i]["diverged"]
        rec_steps = res.steps.tolist()
        runs[(s, m, o, seed)] = {
            "final": _distance(p, res.final_x[i], div),
            "distance": [_distance(p, x) for x in res.x[i]],
            "lambda0": res.lambdas[i][:, 0].tolist()}
    rows = []
    for (s, m, o), lr in chosen.items():
        if lr is None:
            continue
        per = [runs[(s, m, o, seed)] for seed in seeds]
        rows.append({"sigma": s, "method": m, "optimizer": o, "lr": lr, "seeds": list(seeds),
                     "finals": [r["final"] for r in per],
                     "distance": [r["distance"] for r in per],
                     "lambda0": [r["lambda0"] for r in per]})
    return rec_steps, rows


def compare(rows, level=0.95):
    """The paired tests: per sigma and optimiser (SGD, Adam), CAMOO - EW and PAMOO - EW; per sigma
    CAMOO-MAdam - CAMOO-Adam. Returns a list of dicts (see :func:`paired`) with sigma, optimizer,
    method and baseline."""
    table = {(r["sigma"], r["method"], r["optimizer"]): r for r in rows}
    sigmas = sorted({r["sigma"] for r in rows}, key=lambda s: -s)
    out = []
    pairs = [(opt, m, ("EW", opt)) for opt in ("SGD", "Adam") for m in ("CAMOO", "PAMOO")]
    pairs.append(("MAdam", "CAMOO", ("CAMOO", "Adam")))
    for s in sigmas:
        for opt, m, base in pairs:
            a, b = table.get((s, m, opt)), table.get((s,) + base)
            if a is None or b is None:
                continue
            test = paired(a["finals"], b["finals"], level)
            out.append({"sigma": s, "optimizer": opt, "method": m,
                        "baseline": f"{base[0]}-{base[1]}", "lr": a["lr"], "baseline_lr": b["lr"],
                        "mean_method": float(np.mean(a["finals"])),
                        "mean_baseline": float(np.mean(b["finals"])), **test})
    return out


def teacher_student(sigmas=SIGMAS, *, hidden, batch, steps, seeds, tuning_seeds, probes,
                    camoo_sgd_lrs, camoo_adam_lrs, ew_sgd_lrs, ew_adam_lrs, madam_lrs, records,
                    madam_sigmas=None, workers=1, problem_seed=PROBLEM_SEED):
    """The whole protocol (tune, evaluate, compare); CAMOO under MAdam at ``madam_sigmas``
    (default: every sigma). Returns a dict: config, grid (as lists),
    tuning rows, chosen lrs (rows with ``at_grid_end``), recorded steps, evaluation rows and
    paired tests."""
    cfg = dict(hidden=hidden, batch=batch, steps=steps, seeds=seeds,
               tuning_seeds=list(tuning_seeds), probes=probes, camoo_sgd_lrs=camoo_sgd_lrs,
               camoo_adam_lrs=camoo_adam_lrs, ew_sgd_lrs=ew_sgd_lrs, ew_adam_lrs=ew_adam_lrs,
               madam_lrs=madam_lrs,
               madam_sigmas=[float(s) for s in (sigmas if madam_sigmas is None else madam_sigmas)],
               records=records, problem_seed=problem_seed)
    eval_seeds = list(range(seeds))
    if set(eval_seeds) & set(tuning_seeds):
        raise ValueError(f"tuning seeds {list(tuning_seeds)} overlap the evaluation seeds "
                         f"{eval_seeds}")
    probs = make_problems(sigmas, hidden, batch, problem_seed)
    grid = lr_grid(**cfg)
    tuning, chosen = tune(probs, grid, tuning_seeds, steps, probes, workers,
                          cfg["madam_sigmas"])
    rec_steps, rows = evaluate(probs, chosen, eval_seeds, steps, probes, records, workers)
    chosen_rows = [{"sigma": s, "method": m, "optimizer": o, "lr": lr,
                    "at_grid_end": lr is not None and lr in (min(grid[(m, o)]),
                                                             max(grid[(m, o)]))}
                   for (s, m, o), lr in chosen.items()]
    return {"config": cfg, "sigmas": [float(s) for s in sigmas], "eval_seeds": eval_seeds,
            "grid": [{"method": m, "optimizer": o, "lrs": v} for (m, o), v in grid.items()],
            "tuning": tuning, "chosen": chosen_rows, "steps": rec_steps, "evaluation": rows,
            "paired": compare(rows)}


# ============================================================================ extra compute
def count_hvp_calls(problem, method, probes, steps=10, seed=0):
    """Run ``method`` (EW, CAMOO or PAMOO) for ``steps`` SGD steps on ``problem`` in this process
    with a counting wrapper around ``problem.hvps``. Returns (hvps calls, solves): the runner
    solves once per step and once more at the final record, so solves = steps + 1."""
    from .runs import run

    calls = [0]

    def counted(x, v, batch=None):
        calls[0] += 1
        return problem.hvps(x, v, batch)

    solvers = make_solvers(problem, probes, hvp=counted)
    run(problem, {method: solvers[method]}, {"SGD": "SGD"}, lr=1e-3, seeds=[seed], steps=steps,
        workers=1, front_points=0)
    return calls[0], steps + 1


def extra_compute(problem, probes, steps, count_steps=10):
    """The Hessian-vector products each method takes, counted (on a ``count_steps`` run) and
    scaled to ``steps``: rows with hvp_calls_per_step (each call = the HVPs of all C objectives
    with one probe), objective_hvps_per_step (C x calls) and the totals over ``steps`` steps."""
    c = problem.n_obj
    rows = []
    for m in METHODS:
        calls, solves = count_hvp_calls(problem, m, probes, count_steps)
        if calls % solves:
            raise RuntimeError(f"{m}: {calls} hvps calls in {solves} solves is not a whole "
                               "number per step")
        per = calls // solves
        rows.append({"method": m, "hvp_calls_per_step": per, "objective_hvps_per_step": c * per,
                     "hvp_calls_total": per * steps, "objective_hvps_total": c * per * steps,
                     "counted_calls": calls, "counted_solves": solves})
    return rows


# ============================================================================ the ICML setups
def icml_setups(seeds=3, steps=200, workers=1, setups=("switching", "selection")):
    """The ICML code's setups with its learning rates: per-step training MSE, losses and weights
    of every run. Returns {setup: {"steps": [...], "runs": [...]}}."""
    from .amoo import CAMOO, PAMOO, PowerLossMLP, output_curvature
    from .runs import run
    from .solvers import LinearScalarization

    out = {}
    for setup in setups:
        p = PowerLossMLP(setup, seed=PROBLEM_SEED)
        solvers = {"EW": lambda: LinearScalarization(np.full(3, 1.0 / 3)),
                   "CAMOO": lambda: CAMOO.icml(**output_curvature(p)),
                   "PAMOO": lambda: PAMOO(columns=slice(-p.d_out, None), natural_scale=True)}
        lr = {(m, o): ICML_LRS[o][m] for o in ICML_LRS for m in solvers}
        res = run(p, solvers, {"SGD": "SGD", "Adam": "Adam"}, lr=lr, seeds=list(range(seeds)),
                  steps=steps, record_every=1, workers=workers, front_points=0)
        out[setup] = {"steps": res.steps.tolist(), "runs": [
            {"method": row["solver"], "optimizer": row["optimizer"], "lr": row["lr"],
             "seed": row["seed"], "diverged": bool(row["diverged"]),
             # f_1 = mean_b |o_b - y_b|^2 (H_1 = I): the training MSE times d_out
             "mse": (res.losses[i][:, 0] / p.d_out).tolist(),
             "losses": res.losses[i].tolist(), "lambdas": res.lambdas[i].tolist()}
            for i, row in enumerate(res.grid)]}
    return out


def icml_compare(icml, level=0.95):
    """Per setup and optimiser: the mean final MSE of each method, its mean final weights, and
    paired tests of log10(final MSE) for CAMOO - EW and PAMOO - EW over the seeds."""
    out = []
    for setup, res in icml.items():
        for opt in ("SGD", "Adam"):
            by = {}
            for r in res["runs"]:
                if r["optimizer"] == opt:
                    by.setdefault(r["method"], {})[r["seed"]] = r
            seeds = sorted(by["EW"])
            mse = {m: np.array([by[m][s]["mse"][-1] for s in seeds]) for m in by}
            row = {"setup": setup, "optimizer": opt, "seeds": seeds,
                   "lr": {m: by[m][seeds[0]]["lr"] for m in by},
                   "final_mse": {m: v.tolist() for m, v in mse.items()},
                   "final_mse_mean": {m: float(v.mean()) for m, v in mse.items()},
                   "final_weights_mean": {m: np.mean([by[m][s]["lambdas"][-1] for s in seeds],
                                                     0).tolist() for m in by}}
            with np.errstate(divide="ignore", invalid="ignore"):
                row["log10_tests"] = {m: paired(np.log10(mse[m]), np.log10(mse["EW"]), level)
                                      for m in ("CAMOO", "PAMOO")}
            out.append(row)
    return out


# ============================================================================ reports
def verdict_text(test, baseline="EW"):
    """The wording a paired test allows: "beats EW" / "worse than EW" only when the interval
    excludes 0, else "no significant difference (better on k of n seeds)"."""
    k, n = test["better"], test["n"]
    if test["verdict"] == "better":
        return f"beats {baseline} (better on {k} of {n} seeds)"
    if test["verdict"] == "worse":
        return f"worse than {baseline} (better on {k} of {n} seeds)"
    if test["verdict"] == "no significant difference":
        return f"no significant difference (better on {k} of {n} seeds)"
    return test["verdict"]


def report_lines(study):
    """The study as text: the chosen lrs (with the tuning score), the evaluation (mean and sd of
    the final distance over the evaluation seeds) and the paired tests."""
    cfg = study["config"]
    lines = [f"tuning seeds {cfg['tuning_seeds']}, evaluation seeds {study['eval_seeds']}, "
             f"{cfg['steps']} steps",
             f"{'sigma':>6} {'optimizer':>9} {'method':>6} {'lr':>7} {'tuning score':>12}   "
             "evaluation: final distance (mean +- sd)"]
    score = {(r["sigma"], r["method"], r["optimizer"], r["lr"]): r["score"]
             for r in study["tuning"]}
    ends = {(r["sigma"], r["method"], r["optimizer"]): r["at_grid_end"] for r in study["chosen"]}
    for r in study["evaluation"]:
        key = (r["sigma"], r["method"], r["optimizer"])
        f = np.asarray(r["finals"])
        lines.append(f"{r['sigma']:>6g} {r['optimizer']:>9} {r['method']:>6} {r['lr']:>7g} "
                     f"{score[key + (r['lr'],)]:>12.3e}   {f.mean():.3e} +- {f.std(ddof=1):.1e}"
                     + ("   (lr at an end of its grid)" if ends[key] else ""))
    for (s, m, o), end in ends.items():
        if not any((r["sigma"], r["method"], r["optimizer"]) == (s, m, o)
                   for r in study["evaluation"]):
            lines.append(f"{s:>6g} {o:>9} {m:>6}: every lr of the grid diverged on the tuning "
                         "seeds")
    lines.append("")
    lines.append("paired tests on the evaluation seeds (difference of final distances; < 0: "
                 "closer to the teacher), 95 % t interval")
    for t in study["paired"]:
        lines.append(f"  sigma {t['sigma']:>5g} {t['method']}-{t['optimizer']} - {t['baseline']}: "
                     f"{t['mean']:+.3e} [{t['lo']:+.3e}, {t['hi']:+.3e}]  -> "
                     + verdict_text(t, t["baseline"] if t["baseline"] != f"EW-{t['optimizer']}"
                                    else "EW"))
    return lines


# ============================================================================ stored records
def summary_record(preset, study, compute=None, icml=None):
    """The small JSON record kept under benchmarks/results: provenance, config, the tuning table,
    the chosen lrs, every evaluation run's final distance, the paired tests, the extra compute
    and the ICML setups' summary (no curves)."""
    from .study import provenance

    evaluation = [{k: v for k, v in r.items() if k not in ("distance", "lambda0")}
                  for r in study["evaluation"]]
    for r in evaluation:
        r["mean"] = float(np.mean(r["finals"]))
    return {"provenance": provenance(), "preset": preset, "config": study["config"],
            "sigmas": study["sigmas"], "eval_seeds": study["eval_seeds"], "grid": study["grid"],
            "tuning": study["tuning"], "chosen": study["chosen"], "evaluation": evaluation,
            "paired": study["paired"], "extra_compute": compute,
            "icml": None if icml is None else icml_compare(icml)}
