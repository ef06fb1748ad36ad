r"""Pareto set learning (PSL) under a preference-induced gradient scale: where Adam bends a front.

A PSL hypernetwork x(p) maps a preference p on the simplex to a solution, and is trained with a
new preference every step. When the objectives have different scales, the scalarised direction's
size changes from step to step with the preference, and Adam's second moment (a history average
over all the preferences seen) divides every step by the same, large-preference, denominator.

**The problem** (:class:`ScaledQuadratics`). C convex quadratics with diagonal Hessians,

.. math::

    h_i(x) = \tfrac12 \sum_k H_{ik} (x_k - A_{ik})^2, \qquad f_i = s_i\, h_i,

observed through noisy gradients :math:`\tilde g_i = s_i (\nabla h_i(x) + \sigma \xi_i)`,
:math:`\xi_i \sim N(0, I)` drawn afresh every step (noise that scales with its objective, as
minibatch noise does). A researcher states the trade-off on the normalised losses h: for p on the
simplex the step scalarises the raw losses with :math:`\lambda(p) = (p / s) / \sum_i (p_i / s_i)`
(on the simplex, as every solver's weights are). Then

.. math::

    d = \lambda(p) \cdot \tilde g = c(p)\, \big(p \cdot (\nabla h + \sigma \xi)\big), \qquad
    c(p) = 1 / \textstyle\sum_i p_i / s_i ,

so the **exact target of every preference is the same for every s**,
:math:`x^*(p) = \operatorname{argmin}_x p \cdot h(x)`, elementwise
:math:`x^*_k(p) = \sum_i p_i H_{ik} A_{ik} / \sum_i p_i H_{ik}`, while the step's size c(p)
ranges over [min s, max s]. With s = (s, 1, ..., 1) the small-gradient end is p near the last
vertex (c = 1), the large one p near the first (c = s).

**The optimisers** (:func:`train`): ``"adam"`` and ``"sgd"`` take d; ``"madam"`` takes the
Jacobian and :math:`\lambda(p)` (its :math:`C_\lambda` scales with :math:`c(p)^2`, so its
whitened direction does not depend on c(p), see docs/madam.md); ``"adam-normalised"`` is the
practitioner's fix: Adam on :math:`p \cdot \tilde g / s`, the normalised losses' direction.

**The measures** (:func:`front_metrics`), in the normalised objectives h, scaled by the targets'
box (ideal to nadir of the targets at the evaluation preferences): each preference's distance to
its target; the error at the small-gradient end; and the spread ratio
``mean_pairwise(h(x(p_k))) / mean_pairwise(h(x*(p_k)))``: 1 when the solutions spread as the
targets do, below 1 when the front has shrunk.
"""
import math

import numpy as np

from ._validate import choice
from .madam_opt import MAdam
from .optim import SGD, Adam
from .study import mean_pairwise

__all__ = ["ScaledQuadratics", "Hypernet", "METHODS", "make_optimizer", "train", "front_metrics",
           "evaluation_preferences", "lr_grid", "evaluate", "tune", "run_cell", "scale_study",
           "find_cell", "paired_table"]

METHODS = ("adam", "madam", "sgd", "adam-normalised")


class ScaledQuadratics:
    """C quadratics h_i with diagonal Hessians, raw losses f_i = s_i h_i, noisy gradients.

    Parameters: ``dim`` (n), ``n_obj`` (C), ``scale`` (s: the first objective's factor; the
    others have 1; or a length-C sequence), ``noise`` (sigma, relative to the normalised
    gradients), ``seed`` (the problem's own draw of A ~ U(-1, 1)^(C x n) and
    H ~ 10^U(-1, 1)^(C x n): condition numbers up to 100 across coordinates and objectives).
    """

    def __init__(self, dim=8, n_obj=2, scale=1.0, noise=0.0, seed=0):
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if int(n_obj) != n_obj or n_obj < 2:
            raise ValueError(f"n_obj must be an integer >= 2, got {n_obj!r}")
        self.dim, self.n_obj = int(dim), int(n_obj)
        s = np.asarray(scale, dtype=np.float64)
        s = np.concatenate([[float(s)], np.ones(self.n_obj - 1)]) if s.ndim == 0 else s
        if s.shape != (self.n_obj,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"scale must be a positive number or {self.n_obj} positive "
                             f"numbers, got {scale!r}")
        if not (np.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        self.scales, self.noise = s, float(noise)
        rng = np.random.default_rng(seed)
        self.A = rng.uniform(-1.0, 1.0, size=(self.n_obj, self.dim))
        self.H = 10.0 ** rng.uniform(-1.0, 1.0, size=(self.n_obj, self.dim))
        self.bounds = None
        self.name = f"scaled_quadratics(s={self.scales[0]:g}, noise={self.noise:g})"

    def normalised_losses(self, x):
        """h(x), shape (C,)."""
        r = np.asarray(x, dtype=np.float64) - self.A
        return 0.5 * np.sum(self.H * r * r, axis=1)

    def losses(self, x):
        """The raw losses f = s h, shape (C,)."""
        return self.scales * self.normalised_losses(x)

    def gradients(self, x, rng):
        """Noisy raw gradients s_i (H_i (x - A_i) + sigma xi_i), shape (C, n); ``rng`` draws xi."""
        g = self.H * (np.asarray(x, dtype=np.float64) - self.A)
        if self.noise > 0:
            g = g + self.noise * rng.standard_normal(g.shape)
        return self.scales[:, None] * g

    def weights(self, p):
        """lambda(p) = (p / s) / sum(p / s): the simplex weights on the raw losses whose
        scalarisation has the normalised-loss target of p."""
        w = np.asarray(p, dtype=np.float64) / self.scales
        return w / w.sum()

    def gradient_scale(self, p):
        """c(p) = 1 / sum_i p_i / s_i, the factor by which the raw direction exceeds p . grad h."""
        return 1.0 / float(np.sum(np.asarray(p, dtype=np.float64) / self.scales))

    def target(self, p):
        """x*(p) = argmin p . h, elementwise sum_i p_i H_ik A_ik / sum_i p_i H_ik."""
        p = np.asarray(p, dtype=np.float64)[:, None]
        return np.sum(p * self.H * self.A, axis=0) / np.sum(p * self.H, axis=0)

    def initial_point(self, rng):
        """A start drawn uniformly from [-1, 1]^n."""
        return rng.uniform(-1.0, 1.0, size=self.dim)


class Hypernet:
    """x(p) = out(W2 tanh(W1 p + b1) + b2), p on the simplex (C) -> x (n); out(z) = z, or
    lo + (hi - lo) sigmoid(z) for a problem with ``bounds`` (lo, hi). The parameters are one flat
    float64 array ``theta`` = [W1 (h, C), b1 (h), W2 (n, h), b2 (n)], updated in place by the
    optimiser. Initialisation (from ``rng``): W1 ~ N(0, 4), b1 ~ N(0, 1/4), W2 ~ N(0, 0.01/h),
    b2 = the problem's start (through the inverse sigmoid when bounded)."""

    def __init__(self, n_obj, dim, hidden, rng, start, bounds=None):
        c, n, h = int(n_obj), int(dim), int(hidden)
        self.c, self.n, self.h, self.bounds = c, n, h, bounds
        sizes = [h * c, h, n * h, n]
        self.theta = np.zeros(sum(sizes))
        off = np.cumsum([0] + sizes)
        self.W1 = self.theta[off[0]:off[1]].reshape(h, c)
        self.b1 = self.theta[off[1]:off[2]]
        self.W2 = self.theta[off[2]:off[3]].reshape(n, h)
        self.b2 = self.theta[off[3]:off[4]]
        self.W1[...] = rng.standard_normal((h, c)) * 2.0
        self.b1[...] = rng.standard_normal(h) * 0.5
        self.W2[...] = rng.standard_normal((n, h)) * (0.1 / math.sqrt(h))
        if bounds is not None:
            lo, hi = bounds
            frac = np.clip((np.asarray(start) - lo) / (hi - lo), 0.05, 0.95)
            self.b2[...] = np.log(frac / (1 - frac))
        else:
            self.b2[...] = start

    def forward(self, p):
        """(x, a, dx/dz): the solution, the hidden activations and the output layer's slope."""
        a = np.tanh(self.W1 @ p + self.b1)
        z = self.W2 @ a + self.b2
        if self.bounds is None:
            return z, a, np.ones_like(z)
        lo, hi = self.bounds
        sig = 1.0 / (1.0 + np.exp(-z))
        return lo + (hi - lo) * sig, a, (hi - lo) * sig * (1 - sig)

    def jacobian(self, p, jac_x, a, dxdz):
        """(C, |theta|): the chain rule from the losses' Jacobian w.r.t. x, (C, n)."""
        dz = jac_x * dxdz                                   # (C, n)
        dw2 = dz[:, :, None] * a[None, None, :]             # (C, n, h)
        dpre = (dz @ self.W2) * (1 - a * a)                 # (C, h)
        dw1 = dpre[:, :, None] * p[None, None, :]           # (C, h, C)
        c = jac_x.shape[0]
        return np.ascontiguousarray(np.concatenate(
            [dw1.reshape(c, -1), dpre, dw2.reshape(c, -1), dz], axis=1))


def make_optimizer(method, theta, lr, beta1=0.9, beta2=0.999):
    """The optimiser of ``method`` (see METHODS) on ``theta``: Adam, MAdam (no solver: it is
    given lambda), or SGD; ``"adam-normalised"`` is Adam (it differs in what it is fed)."""
    if method in ("adam", "adam-normalised"):
        return Adam(theta, lr=lr, betas=(beta1, beta2))
    if method == "madam":
        return MAdam(theta, solver=None, lr=lr, betas=(beta1, beta2))
    if method == "sgd":
        return SGD(theta, lr=lr)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def evaluation_preferences(n_obj=2, divisions=10):
    """The interior preference lattice at which a trained hypernetwork is evaluated (for C = 2:
    (k/D, 1 - k/D), k = D-1 .. 1, from the first, scaled, objective's end to the last's)."""
    from .runs import preference_grid

    return preference_grid(n_obj, divisions, interior=True)


def train(problem, method, lr, seed, steps, eval_prefs, checkpoints=None, hidden=16, beta1=0.9):
    """Train a hypernetwork on ``problem`` (a :class:`ScaledQuadratics`) with ``method`` for
    ``steps`` steps, a preference p ~ Dirichlet(1) every step. Returns {step: (K, n) solutions
    x(p_k) at ``eval_prefs``} for each step in ``checkpoints`` (default: only the last), or None
    if the parameters stopped being finite.

    Seeding: ``seed`` draws the network's initialisation and start, then the preferences; the
    gradient noise has its own generator (seed + 10_000), so paired runs of different methods
    see the same initialisation, preferences and noise draws.
    """
    choice("method", method, METHODS)
    checkpoints = {steps} if checkpoints is None else set(checkpoints)
    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng(seed + 10_000)
    net = Hypernet(problem.n_obj, problem.dim, hidden, rng, problem.initial_point(rng),
                   problem.bounds)
    opt = make_optimizer(method, net.theta, lr, beta1)
    prefs = np.asarray(eval_prefs, dtype=np.float64)
    out = {}
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            if t in checkpoints:
                out[t] = np.array([net.forward(w)[0] for w in prefs])
            if t == steps:
                break
            p = rng.dirichlet(np.ones(problem.n_obj))
            x, a, dxdz = net.forward(p)
            jac = net.jacobian(p, problem.gradients(x, noise_rng), a, dxdz)
            if not np.all(np.isfinite(jac)):
                return None                                 # diverged
            if method == "madam":
                opt.step(jac, preference=problem.weights(p))
            elif method == "adam-normalised":
                opt.step(p @ (jac / problem.scales[:, None]))
            else:
                opt.step(problem.weights(p) @ jac)
            if not np.all(np.isfinite(net.theta)):
                return None
    return out


def front_metrics(problem, solutions, eval_prefs):
    """Measures of a trained front against the exact targets, in the normalised objectives
    scaled by the targets' box [min, max] over the evaluation preferences:

    ``distance`` (K,): |h(x(p_k)) - h(x*(p_k))| per preference; ``mean_distance``;
    ``end_error``: the distance at the small-gradient end (the preference with the smallest
    c(p); at s = 1, where every c is 1, the last preference); ``spread_ratio``: mean pairwise
    distance of the solutions over that of the targets. Non-finite solutions give inf/nan.
    """
    prefs = np.asarray(eval_prefs, dtype=np.float64)
    targets = np.array([problem.normalised_losses(problem.target(w)) for w in prefs])
    got = np.array([problem.normalised_losses(x) for x in np.asarray(solutions)])
    lo, hi = targets.min(axis=0), targets.max(axis=0)
    box = np.where(hi > lo, hi - lo, 1.0)
    t_n, g_n = (targets - lo) / box, (got - lo) / box
    dist = np.linalg.norm(g_n - t_n, axis=1)
    c = np.array([problem.gradient_scale(w) for w in prefs])
    end = int(np.flatnonzero(c == c.min())[-1])
    return {"distance": dist, "mean_distance": float(dist.mean()),
            "end_error": float(dist[end]),
            "spread_ratio": float(mean_pairwise(g_n) / mean_pairwise(t_n))}


# ============================================================================ the scale study
#: Learning-rate grids. SGD's step grows with c(p) up to max(s), so its grid is divided by max(s)
#: (otherwise every SGD run at s = 1e4 diverges); the adaptive methods share one grid.
ADAPTIVE_LRS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
SGD_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
METRICS = ("mean_distance", "end_error", "spread_ratio")


def lr_grid(method, problem):
    """The learning rates tried for ``method`` on ``problem`` (see ADAPTIVE_LRS, SGD_LRS)."""
    if method == "sgd":
        return tuple(lr / float(problem.scales.max()) for lr in SGD_LRS)
    return ADAPTIVE_LRS


def evaluate(problem, method, lr, seeds, steps, prefs, hidden=16):
    """{metric: [value per seed]} after ``steps`` steps (a diverged run: inf distances and a
    spread ratio of nan), and the (K, C) normalised losses of each seed's solutions."""
    out = {m: [] for m in METRICS}
    fronts = []
    for seed in seeds:
        res = train(problem, method, lr, seed, steps, prefs, hidden=hidden)
        if res is None:
            out["mean_distance"].append(np.inf)
            out["end_error"].append(np.inf)
            out["spread_ratio"].append(np.nan)
            fronts.append(None)
            continue
        met = front_metrics(problem, res[steps], prefs)
        for m in METRICS:
            out[m].append(met[m])
        fronts.append([problem.normalised_losses(x).tolist() for x in res[steps]])
    return out, fronts


def tune(problem, method, steps, prefs, seeds, hidden=16):
    """(best lr, {lr: mean distance over ``seeds``}) over lr_grid(method, problem); the
    criterion is the mean distance to the targets (a diverged seed counts as inf)."""
    scores = {}
    for lr in lr_grid(method, problem):
        scores[lr] = float(np.mean(evaluate(problem, method, lr, seeds, steps, prefs,
                                            hidden)[0]["mean_distance"]))
    return min(scores, key=scores.get), scores


def run_cell(scale, noise, steps, method, tune_seeds, eval_seeds, dim=8, hidden=16,
             problem_seed=0, divisions=10):
    """One cell of the scale study: tune ``method``'s lr on ``tune_seeds``, then evaluate it on
    ``eval_seeds``. Returns a JSON-ready dict."""
    from ._core import set_num_threads

    set_num_threads(1)   # tiny arrays; the study runs cells in parallel processes instead
    problem = ScaledQuadratics(dim=dim, scale=scale, noise=noise, seed=problem_seed)
    prefs = evaluation_preferences(problem.n_obj, divisions)
    lr, scores = tune(problem, method, steps, prefs, tune_seeds, hidden)
    per_seed, fronts = evaluate(problem, method, lr, eval_seeds, steps, prefs, hidden)
    return {"scale": scale, "noise": noise, "steps": steps, "method": method, "lr": lr,
            "tuning": {repr(k): v for k, v in scores.items()}, "per_seed": per_seed,
            "fronts": fronts}


def _cell_args(args):
    return run_cell(*args)


def scale_study(scales=(1.0, 1e2, 1e4), noises=(0.0, 1.0), budgets=(250, 1000, 4000),
                methods=METHODS, tune_seeds=(100, 101), eval_seeds=tuple(range(10)), dim=8,
                hidden=16, problem_seed=0, divisions=10, workers=2):
    """Every (scale, noise, budget, method) cell (see :func:`run_cell`), in ``workers``
    processes. Returns ``{"settings": ..., "cells": [cell, ...]}``; summarise with
    :func:`paired_table`."""
    jobs = [(s, nz, b, m, tuple(tune_seeds), tuple(eval_seeds), dim, hidden, problem_seed,
             divisions) for nz in noises for s in scales for b in budgets for m in methods]
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            cells = list(pool.map(_cell_args, jobs))
    else:
        cells = [run_cell(*job) for job in jobs]
    settings = {"scales": list(scales), "noises": list(noises), "budgets": list(budgets),
                "methods": list(methods), "tune_seeds": list(tune_seeds),
                "eval_seeds": list(eval_seeds), "dim": dim, "hidden": hidden,
                "problem_seed": problem_seed, "divisions": divisions,
                "adaptive_lrs": list(ADAPTIVE_LRS), "sgd_lrs_times_max_scale": list(SGD_LRS)}
    return {"settings": settings, "cells": cells}


def find_cell(study, scale, noise, steps, method):
    """The cell of ``study`` (from :func:`scale_study`) with these settings."""
    for cell in study["cells"]:
        if (cell["scale"], cell["noise"], cell["steps"], cell["method"]) == (
                scale, noise, steps, method):
            return cell
    raise KeyError((scale, noise, steps, method))


def paired_table(study, baseline="adam"):
    """Rows ``{scale, noise, steps, method, lr, <metric>: (mean, half, n)}`` per cell, plus
    ``vs_<baseline>``: {metric: paired_differences(baseline, method)} (method - baseline,
    paired by evaluation seed) for every other method."""
    from .stats import paired_differences, t_interval

    rows = []
    for cell in study["cells"]:
        row = {k: cell[k] for k in ("scale", "noise", "steps", "method", "lr")}
        for m in METRICS:
            row[m] = t_interval(cell["per_seed"][m])
        if cell["method"] != baseline:
            base = find_cell(study, cell["scale"], cell["noise"], cell["steps"], baseline)
            row[f"vs_{baseline}"] = {m: paired_differences(base["per_seed"][m],
                                                           cell["per_seed"][m])
                                     for m in METRICS}
        rows.append(row)
    return rows
