"""AMOO reproductions at full size: seed 002's teacher-student grid and the ICML code's setups.

Seed 002 (Efroni et al., OPT 2024), section 4 and appendix C: a 2-layer ReLU MLP student
(10 -> hidden -> 10) fits a random teacher of the same shape under 10 quadratic output losses
f_i = mean_b (o_b - y_b)^T H_i (o_b - y_b), H_1 = I, H_i = a I + (1 - a) e1 e1^T (a = 1e-4),
targets y = teacher(u) + sigma eps. Methods: equal weights (EW), CAMOO (Hutchinson on the
parameter Hessians, N probes, EMA 0.99, one PU iteration per step) and PAMOO (the ICML code's
weights from the output-bias gradients); optimisers SGD, Adam, and MAdam (CAMOO only) when
madam has it. Metric: E ||h_x(u) - h_teacher(u)||^2 / d_out on 8192 fixed inputs (the paper's
"distance to the teacher"), at the best learning rate of the grid for each (sigma, optimiser,
method) (lowest mean final distance over the seeds).

ICML 2025 code (facebookresearch/AlignedMultiObjectiveOptimization): 20 -> 512 -> 7 MLP, three
power losses ((o - y + e_i)^T H_i (o - y + e_i))^p_i ("switching", "selection"), full batch of
100, 200 steps; EW (the code's sum of losses = the mean with 3x the lr), CAMOO with output-space
Hessians (10 probes, no EMA, 100 PU iterations from uniform), PAMOO (natural scale), with the
code's learning rates.

    python benchmarks/amoo_full.py                       # the paper's sizes (~200 CPU-hours)
    python benchmarks/amoo_full.py --preset notebook     # the notebook's budget (~1.5 minutes)
    python benchmarks/amoo_full.py --preset notebook --steps 600 --probes 20 --workers 16

Writes a summary table to stdout and, with --out DIR, amoo_full.json (every curve),
amoo_summary.json (config, best-lr table, verdicts; benchmarks/results/amoo_notebook_preset.json
is that file for --preset notebook) and two figures.
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

PRESETS = {
    # seed 002's sizes and lr grid (every method the same grid); the number of steps is not given
    # in the paper. About 200 CPU-hours (CAMOO: 100 HVPs of ~21 ms per step), days on 2 cores.
    "paper": dict(hidden=256, batch=1024, steps=2000, seeds=5, probes=100,
                  camoo_sgd_lrs=[1e-5, 1e-4, 1e-3, 1e-2], camoo_adam_lrs=[1e-5, 1e-4, 1e-3, 1e-2],
                  ew_sgd_lrs=[1e-5, 1e-4, 1e-3, 1e-2], ew_adam_lrs=[1e-5, 1e-4, 1e-3, 1e-2],
                  madam_lrs=[1e-4, 1e-3, 1e-2], records=21),
    # the notebook's budget (notebooks/03_amoo.ipynb; ~1.5 minutes on 2 cores): the baselines EW
    # and PAMOO, which cost no HVPs, get a wider grid than CAMOO
    "notebook": dict(hidden=32, batch=128, steps=300, seeds=5, probes=10,
                     camoo_sgd_lrs=[0.1, 0.3, 0.6], camoo_adam_lrs=[3e-3, 1e-2, 3e-2],
                     ew_sgd_lrs=[0.03, 0.1, 0.3, 0.6], ew_adam_lrs=[1e-3, 3e-3, 1e-2, 3e-2, 0.1],
                     madam_lrs=[3e-3, 1e-2], records=11),
}
SIGMAS = (1.0, 0.1, 0.001)
ICML_LRS = {  # the ICML code's learning rates (EW and CAMOO on the mean of the 3 losses)
    "SGD": {"EW": 1.5e-3, "CAMOO": 1.5e-3, "PAMOO": 5e-4},
    "Adam": {"EW": 5e-3, "CAMOO": 1.5e-2, "PAMOO": 5e-3},
}


def teacher_student(sigmas, hidden, batch, steps, seeds, probes, camoo_sgd_lrs, camoo_adam_lrs,
                    ew_sgd_lrs, ew_adam_lrs, madam_lrs, records, workers=1, problem_seed=1000):
    """Every noise level x method x optimiser x lr x seed, in two grid calls (SGD and Adam for
    all methods; MAdam for CAMOO). Returns {sigma: {"steps": [...], "runs": [...]}}."""
    from madam import MAdam
    from madam.amoo import CAMOO, PAMOO
    from madam.problems import TeacherStudent
    from madam.runs import run
    from madam.solvers import LinearScalarization

    # problem_seed differs from the run seeds: TeacherStudent draws its teacher from
    # default_rng(seed), and the runner draws the student from default_rng(run seed)
    probs = {f"{s:g}": TeacherStudent(hidden=hidden, batch_size=batch, sigma=s, seed=problem_seed)
             for s in sigmas}
    p0 = next(iter(probs.values()))   # hvps does not depend on sigma (only the targets do)
    c = p0.n_obj
    solvers = {"CAMOO": lambda: CAMOO(p0.hvps, n_samples=probes, beta=0.99, pu_iters=1),
               "EW": lambda: LinearScalarization(np.full(c, 1.0 / c)),
               "PAMOO": lambda: PAMOO(columns=slice(-p0.d_out, None))}
    grid = {("CAMOO", "SGD"): camoo_sgd_lrs, ("CAMOO", "Adam"): camoo_adam_lrs}
    for m in ("EW", "PAMOO"):
        grid[(m, "SGD")], grid[(m, "Adam")] = ew_sgd_lrs, ew_adam_lrs
    every = max(1, steps // (records - 1))
    common = dict(seeds=list(range(seeds)), steps=steps, record_every=every, record_x=True,
                  workers=workers)
    parts = [run(probs, solvers, {"SGD": "SGD", "Adam": "Adam"}, lr=grid, **common)]
    if madam_lrs:
        parts.append(run(probs, {"CAMOO": solvers["CAMOO"]},
                         {"MAdam": lambda x: MAdam(x, solver=None)},
                         lr={("CAMOO", "MAdam"): madam_lrs}, **common))
    out = {float(k): {"steps": parts[0].steps.tolist(), "runs": []} for k in probs}
    for part in parts:
        for i, row in enumerate(part.grid):
            p = probs[row["problem"]]
            xs = part.x[i][:, :p.dim]
            dist = [p.output_error(x) if np.all(np.isfinite(x)) else float("nan") for x in xs]
            out[float(row["problem"])]["runs"].append(
                {"method": row["solver"], "optimizer": row["optimizer"], "lr": row["lr"],
                 "seed": row["seed"], "diverged": bool(row["diverged"]), "distance": dist,
                 "lambda0": part.lambdas[i][:, 0].tolist()})
    return out


def best_lr_table(result):
    """{(optimizer, method): (lr, mean final distance, std, finals)} at each one's best lr."""
    groups = {}
    for r in result["runs"]:
        groups.setdefault((r["optimizer"], r["method"], r["lr"]), []).append(r)
    best = {}
    for (opt, method, lr), runs in groups.items():
        finals = np.array([r["distance"][-1] for r in runs])
        mean = float(np.mean(finals)) if np.all(np.isfinite(finals)) else math.inf
        key = (opt, method)
        if key not in best or mean < best[key][1]:
            best[key] = (lr, mean, float(np.std(finals)), finals)
    return best


def curves(result, optimizer, method, lr, field="distance"):
    runs = [r for r in result["runs"] if r["optimizer"] == optimizer and r["method"] == method
            and r["lr"] == lr]
    return np.array([r[field] for r in runs])


def summarize(results):
    """Lines of the summary table and the verdicts (CAMOO / PAMOO vs EW per setting)."""
    lines = [f"{'sigma':>7} {'optimizer':>9} {'method':>6} {'best lr':>8} "
             f"{'final distance (mean +- sd over seeds)':>40}"]
    verdicts = []
    for sigma, result in results.items():
        best = best_lr_table(result)
        for (opt, method), (lr, mean, sd, _) in sorted(best.items()):
            lines.append(f"{sigma:>7g} {opt:>9} {method:>6} {lr:>8.0e} {mean:>27.3e} +- {sd:.1e}")
        for opt in ("SGD", "Adam"):
            ew = best.get((opt, "EW"))
            for method in ("CAMOO", "PAMOO"):
                other = best.get((opt, method))
                if ew is None or other is None:
                    continue
                wins = int(np.sum(other[3] < ew[3]))
                verdicts.append({"sigma": sigma, "optimizer": opt, "method": method,
                                 "ew": ew[1], "amoo": other[1], "ratio": other[1] / ew[1],
                                 "beats_ew": other[1] < ew[1],
                                 "seed_wins": f"{wins}/{len(ew[3])}"})
    return lines, verdicts


def summary(cfg, sigmas, preset, results, verdicts, icml):
    """The small record kept under benchmarks/results: config, best-lr table, verdicts, and the
    ICML setups' final MSE and weights (means over seeds)."""
    table = []
    for sigma, result in results.items():
        for (opt, method), (lr, mean, sd, finals) in sorted(best_lr_table(result).items()):
            table.append({"sigma": sigma, "optimizer": opt, "method": method, "best_lr": lr,
                          "final_distance_mean": mean, "final_distance_sd": sd,
                          "final_distance_per_seed": [float(v) for v in finals]})
    icml_final = []
    for setup, res in icml.items():
        for opt in ("SGD", "Adam"):
            for method in ("EW", "CAMOO", "PAMOO"):
                rs = [r for r in res["runs"] if r["optimizer"] == opt and r["method"] == method]
                icml_final.append({
                    "setup": setup, "optimizer": opt, "method": method, "lr": rs[0]["lr"],
                    "seeds": len(rs), "final_mse_mean": float(np.mean([r["mse"][-1] for r in rs])),
                    "final_weights_mean": np.mean([r["lambdas"][-1] for r in rs], 0).tolist()})
    return {"preset": preset, "config": cfg, "sigmas": sigmas, "best_lr_table": table,
            "verdicts": verdicts,
            "camoo_beats_ew": sum(v["beats_ew"] for v in verdicts if v["method"] == "CAMOO"),
            "pamoo_beats_ew": sum(v["beats_ew"] for v in verdicts if v["method"] == "PAMOO"),
            "settings": sum(v["method"] == "CAMOO" for v in verdicts), "icml": icml_final}


def icml_setups(seeds=3, steps=200, workers=1, setups=("switching", "selection")):
    """The ICML code's setups with its learning rates: losses and weights over the steps."""
    from madam.amoo import CAMOO, PAMOO, PowerLossMLP, output_curvature
    from madam.runs import run
    from madam.solvers import LinearScalarization

    out = {}
    for setup in setups:
        p = PowerLossMLP(setup, seed=1000)
        solvers = {"EW": lambda: LinearScalarization(np.full(3, 1.0 / 3)),
                   "CAMOO": lambda: CAMOO.icml(**output_curvature(p)),
                   "PAMOO": lambda: PAMOO(columns=slice(-p.d_out, None), natural_scale=True)}
        lr = {(m, o): ICML_LRS[o][m] for o in ICML_LRS for m in solvers}
        res = run(p, solvers, {"SGD": "SGD", "Adam": "Adam"}, lr=lr, seeds=list(range(seeds)),
                  steps=steps, record_every=1, workers=workers)
        out[setup] = {"steps": res.steps.tolist(), "runs": [
            {"method": row["solver"], "optimizer": row["optimizer"], "lr": row["lr"],
             "seed": row["seed"], "diverged": bool(row["diverged"]),
             # f_1 = mean_b |o_b - y_b|^2 (H_1 = I): the training MSE times d_out
             "mse": (res.losses[i][:, 0] / p.d_out).tolist(),
             "losses": res.losses[i].tolist(), "lambdas": res.lambdas[i].tolist()}
            for i, row in enumerate(res.grid)]}
    return out


def plot(results, icml, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    colors = {"EW": "C0", "CAMOO": "C3", "PAMOO": "C2"}
    styles = {1.0: "-", 0.1: "--", 0.001: ":"}
    for ax, opt in zip(axes, ("SGD", "Adam", "MAdam")):
        for sigma, result in results.items():
            steps = np.array(result["steps"])
            for (o, method), (lr, *_rest) in best_lr_table(result).items():
                if o != opt:
                    continue
                dist = curves(result, o, method, lr)
                ax.plot(steps, dist.mean(0), styles.get(sigma, "-"), color=colors[method],
                        label=f"{method} sigma={sigma:g} (lr {lr:.0e})")
        ax.set(title=opt, xlabel="step", ylabel="distance to the teacher", yscale="log")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(Path(out_dir) / "amoo_teacher_student.png", dpi=120)
    plt.close(fig)
    if icml:
        fig, axes = plt.subplots(2, len(icml), figsize=(7 * len(icml), 7))
        axes = np.atleast_2d(axes).reshape(2, -1)
        for col, (setup, res) in enumerate(icml.items()):
            for r in res["runs"]:
                if r["seed"] != 0:
                    continue
                label = f"{r['method']}-{r['optimizer']}"
                axes[0, col].plot(r["mse"], label=label)
                if r["method"] == "CAMOO":
                    lam = np.array(r["lambdas"])
                    for k in range(lam.shape[1]):
                        axes[1, col].plot(lam[:, k], label=f"w{k + 1} ({r['optimizer']})")
            axes[0, col].set(title=f"{setup}: training MSE", yscale="log", xlabel="step")
            axes[1, col].set(title=f"{setup}: CAMOO weights", xlabel="step")
            axes[0, col].legend(fontsize=7)
            axes[1, col].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "amoo_icml_setups.png", dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    for key in ("hidden", "batch", "steps", "seeds", "probes", "records"):
        ap.add_argument(f"--{key}", type=int)
    lr_keys = ("camoo_sgd_lrs", "camoo_adam_lrs", "ew_sgd_lrs", "ew_adam_lrs", "madam_lrs")
    for key in lr_keys:
        ap.add_argument("--" + key.replace("_", "-"), type=float, nargs="+",
                        help="(EW and PAMOO share the ew_* grids)" if key.startswith("ew") else None)
    ap.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-icml", action="store_true", help="skip the ICML code's setups")
    ap.add_argument("--out", help="directory for amoo_full.json and the figures")
    args = ap.parse_args(argv)
    cfg = dict(PRESETS[args.preset])
    for key in ("hidden", "batch", "steps", "seeds", "probes", "records") + lr_keys:
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)

    import madam
    import madam.amoo, madam.problems, madam.runs, madam.solvers  # noqa: E401,F401
    from threadpoolctl import threadpool_limits
    # one thread per process for every BLAS / OpenMP pool: the runs are spread over worker
    # processes instead. After the imports: threadpool_limits acts on the libraries loaded.
    threadpool_limits(1)
    madam.set_num_threads(1)

    print(f"config: {json.dumps(cfg)}, sigmas {args.sigmas}, workers {args.workers}", flush=True)
    t0 = time.perf_counter()
    results = teacher_student(args.sigmas, workers=args.workers, **cfg)
    print(f"teacher-student grid done at {time.perf_counter() - t0:.0f} s", flush=True)
    icml = {} if args.no_icml else icml_setups(workers=args.workers)
    lines, verdicts = summarize(results)
    print("\n".join(lines))
    print("\nAMOO vs EW (best lr each; ratio < 1: AMOO closer to the teacher):")
    for v in verdicts:
        print(f"  sigma {v['sigma']:>6g} {v['optimizer']:>5} {v['method']}: {v['amoo']:.3e} vs EW "
              f"{v['ew']:.3e} (ratio {v['ratio']:.2f}, better on {v['seed_wins']} seeds) -> "
              f"{'beats EW' if v['beats_ew'] else 'does NOT beat EW'}")
    for setup, res in icml.items():
        print(f"\nICML setup {setup}: final training MSE (mean over seeds), CAMOO's final weights")
        for opt in ("SGD", "Adam"):
            for method in ("EW", "CAMOO", "PAMOO"):
                rs = [r for r in res["runs"] if r["optimizer"] == opt and r["method"] == method]
                mse = np.mean([r["mse"][-1] for r in rs])
                lam = np.mean([r["lambdas"][-1] for r in rs], axis=0)
                print(f"  {opt:>4} {method:>5} lr {rs[0]['lr']:.1e}: MSE {mse:.3e}  "
                      f"weights {np.round(lam, 3).tolist()}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {"config": cfg, "sigmas": args.sigmas, "preset": args.preset,
                   "teacher_student": {str(k): v for k, v in results.items()},
                   "verdicts": verdicts, "icml": icml}
        (out / "amoo_full.json").write_text(json.dumps(payload))
        (out / "amoo_summary.json").write_text(json.dumps(
            summary(cfg, args.sigmas, args.preset, results, verdicts, icml), indent=1) + "\n")
        plot(results, icml, out)
        print(f"wrote {out / 'amoo_full.json'}, {out / 'amoo_summary.json'} and figures")
    return results, verdicts, icml


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
