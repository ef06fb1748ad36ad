"""AMOO reproductions: seed 002's teacher-student grid and the ICML code's setups.

The study itself (problems, methods, learning-rate grids, the tuning / evaluation protocol and the
paired tests) lives in :mod:`madam.amoo_study`, which notebook 03 imports too, so
``--preset notebook`` computes exactly what the notebook computes. In short: seed 002 (Efroni et
al., OPT 2024), section 4 and appendix C: a 2-layer ReLU MLP student (10 -> hidden -> 10) fits a
random teacher under 10 aligned quadratic output losses at noise sigma in {1, 0.1, 0.001}; EW,
CAMOO and PAMOO under SGD and Adam (and CAMOO under MAdam). Each (sigma, optimiser, method) picks
its learning rate on the tuning seeds (100, 101) and is then run on the evaluation seeds
0, ..., seeds - 1; CAMOO - EW and PAMOO - EW are compared per setting by a paired t test on the
final distance to the teacher. The ICML 2025 code's setups (20 -> 512 -> 7 MLP, power losses,
"switching" and "selection") run with the code's learning rates.

    python benchmarks/amoo_full.py                       # the paper's sizes (~130 CPU-hours)
    python benchmarks/amoo_full.py --preset notebook --workers 2 \
        --summary benchmarks/results/amoo_notebook_preset.json
    python benchmarks/amoo_full.py --preset notebook --steps 600 --probes 20 --workers 16

Prints the tuning choices, the evaluation and the paired tests. ``--summary PATH`` writes the
small record (:func:`madam.amoo_study.summary_record`: provenance, config, tuning table, chosen
lrs, every evaluation run's final distance, paired tests, extra compute, ICML summary);
``--out DIR`` writes amoo_full.json (every curve, with provenance), amoo_summary.json (the same
record as --summary) and two figures.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from madam import amoo_study
from madam.amoo_study import PRESETS, SIGMAS


def plot(study, icml, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    colors = {"EW": "C0", "CAMOO": "C3", "PAMOO": "C2"}
    styles = {1.0: "-", 0.1: "--", 0.001: ":"}
    steps = np.array(study["steps"])
    for ax, opt in zip(axes, ("SGD", "Adam", "MAdam")):
        for r in study["evaluation"]:
            if r["optimizer"] != opt:
                continue
            ax.plot(steps, np.mean(r["distance"], 0), styles.get(r["sigma"], "-"),
                    color=colors[r["method"]],
                    label=f"{r['method']} sigma={r['sigma']:g} (lr {r['lr']:g})")
        ax.set(title=f"{opt} (evaluation seeds, tuned lr)", xlabel="step",
               ylabel="distance to the teacher", yscale="log")
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
    ap.add_argument("--tuning-seeds", type=int, nargs="+")
    lr_keys = ("camoo_sgd_lrs", "camoo_adam_lrs", "ew_sgd_lrs", "ew_adam_lrs", "madam_lrs")
    for key in lr_keys:
        ap.add_argument("--" + key.replace("_", "-"), type=float, nargs="+",
                        help="(EW and PAMOO share the ew_* grids)" if key.startswith("ew") else None)
    ap.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    ap.add_argument("--madam-sigmas", type=float, nargs="*",
                    help="the noise levels CAMOO also runs under MAdam at (none: no MAdam)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-icml", action="store_true", help="skip the ICML code's setups")
    ap.add_argument("--summary", help="write the summary record (JSON) to this path")
    ap.add_argument("--out", help="directory for amoo_full.json, amoo_summary.json and figures")
    args = ap.parse_args(argv)
    cfg = dict(PRESETS[args.preset])
    for key in ("hidden", "batch", "steps", "seeds", "probes", "records", "tuning_seeds",
                "madam_sigmas") + lr_keys:
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)

    import madam
    from madam.study import provenance
    from threadpoolctl import threadpool_limits
    # one thread per process for every BLAS / OpenMP pool: the runs are spread over worker
    # processes instead. After the imports: threadpool_limits acts on the libraries loaded.
    threadpool_limits(1)
    madam.set_num_threads(1)

    print(f"config: {json.dumps(cfg)}, sigmas {args.sigmas}, workers {args.workers}", flush=True)
    t0 = time.perf_counter()
    study = amoo_study.teacher_student(args.sigmas, workers=args.workers, **cfg)
    print(f"teacher-student study done at {time.perf_counter() - t0:.0f} s", flush=True)
    p0 = amoo_study.make_problems(args.sigmas[:1], cfg["hidden"], cfg["batch"])[args.sigmas[0]]
    compute = amoo_study.extra_compute(p0, cfg["probes"], cfg["steps"])
    icml = {} if args.no_icml else amoo_study.icml_setups(workers=args.workers)
    print("\n".join(amoo_study.report_lines(study)))
    print("\nextra compute (Hessian-vector products; one hvps call = all 10 objectives, one probe)")
    for c in compute:
        print(f"  {c['method']:>5}: {c['hvp_calls_per_step']} hvps calls per step "
              f"({c['objective_hvps_per_step']} objective-HVPs), "
              f"{c['hvp_calls_total']} over {cfg['steps']} steps")
    icml_rows = amoo_study.icml_compare(icml) if icml else []
    for row in icml_rows:
        mse = row["final_mse_mean"]
        print(f"ICML {row['setup']:>9} {row['optimizer']:>4}: final training MSE (mean) "
              + ", ".join(f"{m} {mse[m]:.2e}" for m in ("EW", "CAMOO", "PAMOO")))
        for m, test in row["log10_tests"].items():
            print(f"    log10 MSE {m} - EW: {test['mean']:+.2f} [{test['lo']:+.2f}, "
                  f"{test['hi']:+.2f}] -> {amoo_study.verdict_text(test)}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    record = amoo_study.summary_record(args.preset, study, compute, icml if icml else None)
    record["sigmas"] = args.sigmas
    text = json.dumps(record, indent=1) + "\n"
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(text)
        print(f"wrote {args.summary}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {"provenance": provenance(), "preset": args.preset, "study": study,
                   "extra_compute": compute, "icml": icml}
        (out / "amoo_full.json").write_text(json.dumps(payload))
        (out / "amoo_summary.json").write_text(text)
        plot(study, icml, out)
        print(f"wrote {out / 'amoo_full.json'}, {out / 'amoo_summary.json'} and figures")
    return study


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
