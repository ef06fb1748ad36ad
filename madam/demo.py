"""``python -m madam demo``: does Adam collapse Pareto fronts? The MAdam study, re-run live.

MAdam's paper claims that Adam (1) collapses the solutions of distinct preferences towards one
trade-off and (2) turns directions that decrease every objective into steps that increase one
("apparent conflict"). This demo re-runs the clearest pieces of ``benchmarks/collapse.py`` (the
full study, summarised in notebook 01) in well under a minute and draws them in one figure:

(a) ZDT1 (n = 30; losses shifted by 0.01 because EPO takes their logarithm), EPO at 5
    preferences, 1500 steps: the endpoints under Adam, MAdam and SGD beside the true front and
    EPO's exact targets (seed 0).
(b) The collapse index (``madam.study``) of those 5 endpoints against steps, per seed, with the
    exact targets' index as the line to reach. Objectives are normalised by the box from the
    front's ideal point to its nadir plus 10 % of its range.
(c) Apparent conflict under MGDA: per seed, the fraction of steps on which MGDA's direction d
    decreases every objective to first order but the optimiser's realised step increases one;
    on an aligned problem (teacher-student: 2 objectives, 16 hidden units, noise 0.1) and two
    conflicting ones (ZDT1, VLMOP2). SGD's step is lr d, so its fraction is 0: not drawn.

Learning rates are those ``benchmarks/collapse.py`` tuned per (problem, solver, optimiser) on
{1e-3, 3e-3, 1e-2, 3e-2, 1e-1} (SGD: {1e-3, 1e-2, 1e-1, 1, 10}) by hypervolume on seeds 100 and
101 (``benchmarks/results/collapse.json``); this demo uses seeds 0, 1, 2. Whatever the figure
shows is measured in this run: the panel titles print the numbers.
"""
import numpy as np

import madam
from madam import problems, solvers
from madam.study import FrontInfo, Shifted, apparent_conflict, epo_ray

STEPS = 1500
SEEDS = (0, 1, 2)
OPTIMIZERS = {"Adam": "Adam", "MAdam": madam.MAdam, "SGD": "SGD"}
COLORS = {"Adam": "tab:blue", "MAdam": "tab:orange", "SGD": "tab:green"}
EPO_LR = {"Adam": 0.1, "MAdam": 0.1, "SGD": 0.1}           # tuned for EPO on ZDT1
CONFLICT_LR = {                                            # tuned for MGDA on each problem
    "teacher-student": {"Adam": 0.01, "MAdam": 0.01},
    "ZDT1": {"Adam": 0.03, "MAdam": 0.001},
    "VLMOP2": {"Adam": 0.03, "MAdam": 0.1},
}
ZDT1_OFFSET = 0.01


def _conflict_problems():
    return {"teacher-student": problems.get("teacher_student", n_obj=2, hidden=16,
                                            batch_size=128, sigma=0.1),
            "ZDT1": problems.get("zdt1"), "VLMOP2": problems.get("vlmop2")}


def collapse_runs(steps=STEPS, seeds=SEEDS, workers=2):
    """EPO on shifted ZDT1 at 5 interior preferences under each optimiser. Returns
    (FrontInfo, preferences, {optimizer: RunResult selection})."""
    zdt1 = Shifted(problems.get("zdt1"), ZDT1_OFFSET)
    prefs = madam.preference_grid(2, 6, interior=True)
    front = zdt1.pareto_front(500)
    lo, hi = front.min(axis=0), front.max(axis=0)
    info = FrontInfo(front, hi + 0.1 * (hi - lo), len(prefs), prefs)
    res = madam.run(zdt1, {"epo": lambda preference: solvers.EPO(epo_ray(preference))},
                    {name: (cls, {}) for name, cls in OPTIMIZERS.items()}, preferences=prefs,
                    seeds=seeds, steps=steps, lr={name: EPO_LR[name] for name in OPTIMIZERS},
                    record_every=max(1, steps // 30), workers=workers, max_loss=1e6,
                    front_points=0, progress=False)
    return info, prefs, {name: res.select(optimizer=name) for name in OPTIMIZERS}


def _per_seed(sel, seed):
    return [i for i, row in enumerate(sel.grid) if row["seed"] == seed]


def conflict_fractions(steps=STEPS, seeds=SEEDS):
    """{problem: {optimizer: [fraction per seed]}} of apparent-conflict steps under MGDA."""
    out = {}
    for name, problem in _conflict_problems().items():
        out[name] = {}
        for opt, lr in CONFLICT_LR[name].items():
            cls = madam.Adam if opt == "Adam" else madam.MAdam
            fractions = []
            for seed in seeds:
                c, e = apparent_conflict(problem, lambda x: cls(x, lr=lr), seed, steps)
                fractions.append(c / e if e else np.nan)
            out[name][opt] = fractions
    return out


def figure(steps=STEPS, seeds=SEEDS, workers=2):
    """Run the experiments and draw the figure; returns (Figure, summary dict)."""
    from matplotlib.figure import Figure

    info, prefs, sels = collapse_runs(steps, seeds, workers)
    fractions = conflict_fractions(steps, seeds)
    ci_targets = info.collapse_index(info.targets)
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    ax_front, ax_ci, ax_conf = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.2]})

    ax_front.plot(info.front[:, 0], info.front[:, 1], "-", color="0.7", lw=2,
                  label="true front")
    ax_front.plot(info.targets[:, 0], info.targets[:, 1], "kx", ms=9, mew=2,
                  label=f"EPO's exact targets (CI {ci_targets:.2f})")
    summary = {"ci_targets": ci_targets, "ci_final": {}, "conflict": {}}
    for name, sel in sels.items():
        ends = sel.final_losses[_per_seed(sel, seeds[0])]
        per_seed = np.array([[info.collapse_index(sel.losses[_per_seed(sel, s), r])
                              for r in range(sel.steps.size)] for s in seeds], dtype=float)
        final = per_seed[:, -1]
        summary["ci_final"][name] = final.tolist()
        ax_front.plot(ends[:, 0], ends[:, 1], "o", color=COLORS[name], ms=7, alpha=0.8,
                      mfc="none" if name == "SGD" else COLORS[name],
                      label=f"{name} (lr {EPO_LR[name]:g}): CI {np.nanmean(final):.2f}")
        for row in per_seed:
            ax_ci.plot(sel.steps, row, color=COLORS[name], lw=1, alpha=0.7)
        ax_ci.plot([], [], color=COLORS[name], label=name)
    lim = info.front.max(axis=0) * 1.15
    ax_front.set(xlim=(0, lim[0]), ylim=(0, lim[1]), xlabel="f1 + 0.01", ylabel="f2 + 0.01",
                 title=f"(a) ZDT1, EPO at {len(prefs)} preferences, {steps} steps "
                       f"(seed {seeds[0]})")
    ax_front.legend(fontsize=8, loc="upper right")
    ax_ci.axhline(ci_targets, color="k", ls="--", lw=1, label="exact targets")
    ax_ci.axhline(0.0, color="0.7", lw=0.8)
    ax_ci.set(xlabel="step", ylabel="collapse index (0 even cover, 1 one point)",
              ylim=(-0.3, 1.05),
              title=f"(b) Collapse index against steps ({len(seeds)} seeds)")
    ax_ci.legend(fontsize=8)

    width = 0.38
    names = list(fractions)
    for k, opt in enumerate(("Adam", "MAdam")):
        for j, name in enumerate(names):
            vals = np.array(fractions[name][opt], dtype=float)
            pos = j + (k - 0.5) * width
            ax_conf.bar(pos, np.nanmean(vals), width * 0.9, color=COLORS[opt], alpha=0.6,
                        label=opt if j == 0 else None)
            ax_conf.plot(np.full(vals.size, pos), vals, "k.", ms=5)
            ax_conf.text(pos, np.nanmax(vals) + 0.02, f"{np.nanmean(vals):.2f}", ha="center",
                         fontsize=8)
            summary["conflict"].setdefault(name, {})[opt] = vals.tolist()
    ax_conf.set_xticks(range(len(names)))
    ax_conf.set_xticklabels([f"{n}\n({'aligned' if n == 'teacher-student' else 'conflicting'})"
                             for n in names], fontsize=9)
    ax_conf.set(ylim=(0, 1.08), ylabel="fraction of steps",
                title="(c) Apparent conflict under MGDA (bar: mean; dots: seeds)")
    ax_conf.legend(fontsize=8)
    fig.suptitle("Does Adam collapse Pareto fronts, and does MAdam undo apparent conflicts? "
                 f"Live re-run (seeds {', '.join(map(str, seeds))}; learning rates as tuned by "
                 "benchmarks/collapse.py)", fontsize=11)
    return fig, summary


def main(out="madam-demo.png", steps=STEPS, workers=2):
    """Write the figure to ``out`` and print the measured numbers; returns ``out``."""
    fig, summary = figure(steps, workers=workers)
    fig.savefig(out, dpi=110)
    print(f"collapse index of EPO's 5 endpoints on ZDT1 after {steps} steps "
          f"(exact targets {summary['ci_targets']:.3f}):")
    for name, vals in summary["ci_final"].items():
        print(f"  {name:<6} " + "  ".join(f"{v:.3f}" for v in vals))
    print("fraction of apparent-conflict steps under MGDA (per seed):")
    for problem, row in summary["conflict"].items():
        print(f"  {problem:<16} " + "   ".join(
            f"{opt} " + " ".join(f"{v:.3f}" for v in vals) for opt, vals in row.items()))
    return out
