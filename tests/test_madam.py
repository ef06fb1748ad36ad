"""MAdam (madam.madam_opt.MAdam): the NumPy reference of the paper's formulas, the
fixed-preference identity and its derived tolerance, time-varying preferences, stochastic pair
sampling, every solver, state round trips, bad input, threads."""
import copy
import io
import math

import numpy as np
import pytest

import madam
from madam import solvers
from madam.madam_opt import ESTIMATORS, MAdam, rampup_factor


# ============================================================================ helpers
class Quadratics:
    """f_i(x) = 0.5 sum_j A_ij (x_j - c_ij)^2: conflicting minimisers c_i, gradient A_i (x - c_i)."""

    def __init__(self, n_obj, n, seed, dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.a = rng.uniform(0.2, 3.0, (n_obj, n)) * rng.choice([0.1, 1.0, 10.0], (n_obj, 1))
        self.c = rng.standard_normal((n_obj, n))
        self.x0 = rng.standard_normal(n).astype(dtype)
        self.dtype = dtype

    def jacobian(self, x):
        return np.ascontiguousarray((self.a * (x.astype(np.float64) - self.c)).astype(self.dtype))

    def losses(self, x):
        return 0.5 * np.sum(self.a * (x - self.c) ** 2, axis=1)


def dirichlet_stream(n_obj, seed):
    rng = np.random.default_rng(seed)
    return lambda t: rng.dirichlet(np.ones(n_obj))


class Reference:
    """Section 1 of the reference notes, written plainly (unpacked C x C x n Fisher blocks)."""

    def __init__(self, x, n_obj, lr, betas, eps, weight_decay=0.0, rampup_steps=0,
                 schedule="linear"):
        self.x = x.astype(np.float64).copy()
        self.F = np.zeros((n_obj, n_obj) + x.shape)
        self.m = np.zeros(x.shape)
        self.v = np.zeros(x.shape)
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.wd, self.T, self.schedule = weight_decay, rampup_steps, schedule
        self.t = 0

    def step(self, g, lam):
        self.t += 1
        t, b1, b2 = self.t, self.b1, self.b2
        c_obj = g.shape[0]
        d = sum(lam[i] * g[i] for i in range(c_obj))
        for i in range(c_obj):
            for j in range(c_obj):
                self.F[i, j] = b2 * self.F[i, j] + (1 - b2) * g[i] * g[j]
        f_hat = self.F / (1 - b2 ** t)
        c_lam = sum(lam[i] * lam[j] * f_hat[i, j] for i in range(c_obj) for j in range(c_obj))
        c_lam = np.maximum(c_lam, 0.0)
        if self.T == 0:
            r = 1.0
        elif self.schedule == "linear":
            r = min(1.0, t / self.T)
        else:
            r = 0.5 * (1 - math.cos(math.pi * min(1.0, t / self.T)))
        metric = (1 - r) * 1.0 + r * (np.sqrt(c_lam) + self.eps)
        u = d / metric
        self.x *= 1 - self.lr * self.wd
        self.m = b1 * self.m + (1 - b1) * u
        self.v = b2 * self.v + (1 - b2) * u * u
        m_hat, v_hat = self.m / (1 - b1 ** t), self.v / (1 - b2 ** t)
        self.x -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return c_lam


def rel_dev(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def adam_moments(seq, beta1, beta2):
    """Bias-corrected m_hat, v_hat (and m_hat of |seq|) of a sequence, step by step."""
    m = v = ma = 0.0
    out = []
    for t, d in enumerate(seq, start=1):
        m = beta1 * m + (1 - beta1) * d
        ma = beta1 * ma + (1 - beta1) * np.abs(d)
        v = beta2 * v + (1 - beta2) * d * d
        out.append((m / (1 - beta1 ** t), ma / (1 - beta1 ** t), v / (1 - beta2 ** t)))
    return out


# ============================================================================ 1. the reference
REFERENCE_CASES = [
    # (C, rampup_steps, schedule, weight_decay, via_solver)
    (2, 0, "linear", 0.0, False),
    (3, 0, "linear", 0.0, False),
    (5, 0, "linear", 0.0, False),
    (3, 0, "linear", 0.0, True),       # lambda from RLW (a solver with a time-varying lambda)
    (3, 60, "linear", 0.0, False),
    (2, 60, "cosine", 0.05, False),
]


@pytest.mark.parametrize("n_obj, rampup_steps, schedule, wd, via_solver", REFERENCE_CASES)
def test_matches_numpy_reference_200_steps(n_obj, rampup_steps, schedule, wd, via_solver):
    prob = Quadratics(n_obj, 300, seed=n_obj)
    x = prob.x0.copy()
    kw = dict(lr=3e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd, rampup_steps=rampup_steps,
              rampup=schedule)
    opt = MAdam(x, solver=solvers.RLW(seed=7) if via_solver else None, **kw)
    ref = Reference(x, n_obj, kw["lr"], kw["betas"], kw["eps"], wd, rampup_steps, schedule)
    twin = solvers.RLW(seed=7)
    stream = dirichlet_stream(n_obj, 11)
    worst = 0.0
    for t in range(1, 201):
        g_ref = prob.jacobian(ref.x)
        if via_solver:
            lam, _ = twin.solve(g_ref)
            opt.step(prob.jacobian(x), prob.losses(x))
        else:
            lam = stream(t)
            opt.step(prob.jacobian(x), preference=lam)
        c_ref = ref.step(g_ref, lam)
        np.testing.assert_array_equal(opt.last_preference, lam)
        worst = max(worst, rel_dev(x, ref.x))
    assert worst <= 1e-12, worst
    # C_lam is a sum of terms of both signs: relative to the sum of their magnitudes
    f_abs = np.abs(ref.F / (1 - ref.b2 ** ref.t))
    scale = np.einsum("i,ij...,j->...", np.abs(lam), f_abs, np.abs(lam))
    assert np.all(np.abs(opt.curvature() - c_ref) <= 1e-12 * scale)
    f_hat = ref.F / (1 - ref.b2 ** ref.t)
    diag = np.sqrt(np.einsum("ii...->i...", f_hat))
    assert np.all(np.abs(opt.fisher() - f_hat) <= 1e-12 * diag[:, None] * diag[None, :])
    sd = opt.state_dict()
    np.testing.assert_allclose(sd["state.0.exp_avg"], ref.m, rtol=1e-11, atol=1e-14)


def test_float32_close_to_float64_reference():
    prob = Quadratics(3, 257, seed=5, dtype=np.float32)
    x = prob.x0.copy()
    opt = MAdam(x, solver=None, lr=1e-2)
    ref = Reference(x, 3, 1e-2, (0.9, 0.999), 1e-8)
    stream = dirichlet_stream(3, 2)
    for _ in range(50):
        lam = stream(0)
        opt.step(prob.jacobian(x), preference=lam)
        ref.step(prob.jacobian(ref.x.astype(np.float32)).astype(np.float64), lam)
    assert x.dtype == np.float32
    # float32 rounding: ~1e-7 relative per operation, accumulated over 50 normalised steps
    assert rel_dev(x.astype(np.float64), ref.x) < 1e-4


def test_list_of_params_equals_flat_vector():
    rng = np.random.default_rng(3)
    shapes = [(3, 4), (5,), (2, 1, 3)]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = rng.standard_normal(sum(sizes))
    parts = [flat[o:o + s].reshape(sh).copy()
             for o, s, sh in zip(np.cumsum([0] + sizes[:-1]), sizes, shapes)]
    opt_flat = MAdam(flat, solver=solvers.MGDA(), lr=1e-2)
    opt_list = MAdam(parts, solver=solvers.MGDA(), lr=1e-2)
    for _ in range(20):
        jac = rng.standard_normal((3, flat.size))
        jacs = [np.ascontiguousarray(jac[:, o:o + s]).reshape((3,) + sh)
                for o, s, sh in zip(np.cumsum([0] + sizes[:-1]), sizes, shapes)]
        opt_flat.step(jac)
        opt_list.step(jacs)
        # a list's Gramian is the sum of its arrays' Gramians (J is never concatenated), which
        # rounds differently from the Gramian of the flat vector: lambda agrees to rounding
        np.testing.assert_allclose(opt_flat.last_preference, opt_list.last_preference,
                                   rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.concatenate([p.ravel() for p in parts]), flat, rtol=1e-11,
                               atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["mgda", "upgrad", "cagrad", "imtlg", "nashmtl", "pcgrad",
                                    "rlw", "dwa"])
def test_solver_lambda_is_solves_and_a_list_sums_gramians(solver, dtype):
    """MAdam forms the Gramian in its NaN-scan pass and asks solver.weights, never handing J to
    the solver: a single array's lambda is the one solve(J) gives, bit for bit (solve forms the
    same Gramian), and a list's is weights_of_scan() of the sum of the arrays' Gramians."""
    rng = np.random.default_rng(11)
    shapes = [(40, 3), (7,), (2, 50)]
    n = sum(int(np.prod(s)) for s in shapes)
    losses = np.array([1.0, 2.0, 0.5])
    flat = rng.standard_normal(n).astype(dtype)
    parts = [rng.standard_normal(s).astype(dtype) for s in shapes]
    opt_flat = MAdam(flat, solver=solvers.SOLVERS[solver](), lr=1e-3)
    opt_list = MAdam(parts, solver=solvers.SOLVERS[solver](), lr=1e-3)
    twin_flat, twin_list = solvers.SOLVERS[solver](), solvers.SOLVERS[solver]()
    for _ in range(3):
        jac = rng.standard_normal((3, n)).astype(dtype)
        jacs = [rng.standard_normal((3,) + s).astype(dtype) for s in shapes]
        lam_solve, _ = twin_flat.solve(jac, losses)
        opt_flat.step(jac, losses)
        np.testing.assert_array_equal(opt_flat.last_preference, lam_solve)
        gram = sum(j.reshape(3, -1).astype(np.float64) @ j.reshape(3, -1).T.astype(np.float64)
                   for j in jacs)
        opt_list.step(jacs, losses)
        summed = sum(madam._core.gram_scan(j, 3)[0] for j in jacs)
        lam_weights = twin_list.weights_of_scan(summed, losses, dtype)
        np.testing.assert_array_equal(opt_list.last_preference, lam_weights)
        # and the summed Gramian is J J^T of the concatenation, to rounding
        np.testing.assert_allclose(summed, gram, rtol=1e-12, atol=1e-12 * np.abs(gram).max())


# ============================================================================ 2. fixed preference
def test_fixed_preference_exact_identity():
    """With a fixed lambda, C_lam = lam^T F lam is exactly the EMA of d * d, i.e. Adam's own v of
    d: MAdam is Adam applied to u = d / (sqrt(v_hat[d]) + eps), bit for bit up to the rounding of
    the two ways of forming that EMA. (That rounding is amplified where d nearly vanishes --
    lam^T F lam then cancels -- and Adam oscillates around a Pareto-stationary point; the step
    size keeps this run away from it: with lr = 1e-2 the two drift apart to ~1e-9.)"""
    prob = Quadratics(3, 200, seed=1)
    lam = np.array([0.5, 0.3, 0.2])
    x_m, x_a = prob.x0.copy(), prob.x0.copy()
    opt_m = MAdam(x_m, solver=solvers.LinearScalarization(lam), lr=1e-3)
    opt_a = madam.Adam(x_a, lr=1e-3)
    v = np.zeros_like(x_a)
    beta2, eps = 0.999, 1e-8
    for t in range(1, 301):
        opt_m.step(prob.jacobian(x_m))
        d = lam[0] * prob.jacobian(x_a)[0]
        for i in (1, 2):
            d = d + lam[i] * prob.jacobian(x_a)[i]
        v = beta2 * v + (1 - beta2) * d * d
        opt_a.step(d / (np.sqrt(v / (1 - beta2 ** t)) + eps))
    assert rel_dev(x_m, x_a) < 1e-12


def _bound_run(streams, lam, beta1=0.9, beta2=0.999, lr=1e-3):
    """MAdam (fixed lam, eps = 0) and Adam on d = lam @ g_t for x-independent gradients g_t.

    Returns the trajectories' difference, the derived tolerance and the per-step ratios."""
    n_obj, steps, n = streams.shape[0], streams.shape[1], streams.shape[2]
    x_m, x_a = np.zeros(n), np.zeros(n)
    opt_m = MAdam(x_m, solver=None, lr=lr, betas=(beta1, beta2), eps=0.0)
    opt_a = madam.Adam(x_a, lr=lr, betas=(beta1, beta2), eps=0.0)
    ds = [sum(lam[i] * streams[i, t] for i in range(n_obj)) for t in range(steps)]
    moments = adam_moments(ds, beta1, beta2)
    lo, hi = np.full(n, np.inf), np.zeros(n)
    tolerance = np.zeros(n)
    worst_ratio = 0.0
    kappa = np.zeros(n)  # cancellation in lam^T F lam: (sum_i |lam_i g_i|)^2 / d^2, worst so far
    for t in range(steps):
        kappa = np.maximum(kappa, sum(abs(lam[i] * streams[i, t]) for i in range(n_obj)) ** 2
                           / np.maximum(ds[t] ** 2, 1e-300))
        before_m, before_a = x_m.copy(), x_a.copy()
        opt_m.step(np.ascontiguousarray(streams[:, t]), preference=lam)
        opt_a.step(ds[t])
        m_hat, m_abs, v_hat = moments[t]
        lo, hi = np.minimum(lo, v_hat), np.maximum(hi, v_hat)
        r = (hi / lo) ** 0.25
        s_a = m_hat / np.sqrt(v_hat)
        eps = np.finfo(float).eps
        rounding = (1e-12 + 8 * eps * (np.abs(x_m) + np.abs(x_a)) / lr
                    + 4 * eps * kappa * (1 + np.abs(s_a) + m_abs / np.sqrt(v_hat)))
        bound = (r - 1) * (np.abs(s_a) + r * m_abs / np.sqrt(v_hat)) + rounding
        diff = np.abs((before_m - x_m) - (before_a - x_a)) / lr
        assert np.all(diff <= bound), float(np.max(diff - bound))
        worst_ratio = max(worst_ratio, float(np.max(diff / bound)))
        tolerance += lr * bound
    return np.abs(x_m - x_a), tolerance, worst_ratio, x_a


def test_fixed_preference_trajectories_within_derived_tolerance():
    """Derivation (docs/madam.md): with v_hat[d]_s in [lo_t, hi_t] for s <= t and
    r_t = (hi_t / lo_t)^(1/4), u_s = d_s / sqrt(V) * theta_s with theta_s in [1/r, r]
    (V = sqrt(lo hi)), hence, for eps = 0,
        |s_M - s_A| <= (r_t - 1) (|s_A| + r_t m_hat[|d|] / sqrt(v_hat[d]))
    per step (s = the normalised step m_hat / sqrt(v_hat)), and for gradients that do not
    depend on x the trajectories differ by at most lr * sum_t of that bound. Checked here on
    stationary noisy gradients (multiplicative noise 20 %, means of both signs)."""
    rng = np.random.default_rng(0)
    n, steps = 400, 600
    means = rng.standard_normal((2, n))
    streams = means[:, None, :] * (1 + 0.2 * rng.standard_normal((2, steps, n)))
    lam = np.array([0.7, 0.3])
    diff, tol, worst_ratio, x_a = _bound_run(streams, lam)
    assert np.all(diff <= tol)
    assert worst_ratio <= 1.0
    # the two are close, not equal: MAdam = Adam applied to the Adam-normalised direction
    path = 600 * 1e-3
    assert 0 < np.max(diff) < 0.25 * path
    # and when the scale of d does not move (constant gradients), they agree to rounding
    const = np.repeat(means[:, None, :], 50, axis=1)
    diff_c, tol_c, _, _ = _bound_run(const, lam)
    assert np.max(diff_c) < 1e-12


def test_time_varying_preference_differs_from_adam():
    """Two objectives of very different scales (|g_1| = 100, |g_2| = 1 per element), lam
    alternating between (1, 0) and (0, 1) every 50 steps. Progress on the preferred objective,
    -(step . g_k) / (lr |g_k|_1) (1 for a full sign step): Adam's v averages d^2 over the whole
    history, so in the (0, 1) phases its progress shrinks to ~ 1 / sqrt(mean of d^2) ~ 1/70: the
    preference is marginalised into a history average. MAdam whitens each phase by its own
    C_lam and makes full progress in both phases."""
    rng = np.random.default_rng(1)
    n, lr = 64, 1e-3
    a, b = 100.0 * rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], n)
    x_m, x_a = np.zeros(n), np.zeros(n)
    opt_m = MAdam(x_m, solver=None, lr=lr)
    opt_a = madam.Adam(x_a, lr=lr)
    jac = np.ascontiguousarray(np.stack([a, b]))
    progress = {"madam": [[], []], "adam": [[], []]}
    for t in range(600):
        phase = (t // 50) % 2
        lam = np.array([1.0, 0.0]) if phase == 0 else np.array([0.0, 1.0])
        pm, pa = x_m.copy(), x_a.copy()
        opt_m.step(jac, preference=lam)
        opt_a.step(lam @ jac)
        if t >= 100:  # after the first two phases
            g = jac[phase]
            progress["madam"][phase].append(-(x_m - pm) @ g / (lr * np.abs(g).sum()))
            progress["adam"][phase].append(-(x_a - pa) @ g / (lr * np.abs(g).sum()))
    mean = {k: [float(np.mean(v[0])), float(np.mean(v[1]))] for k, v in progress.items()}
    # MAdam: the same progress in both phases (~0.8: Adam's momentum on u needs ~10 steps to
    # turn after each switch)
    assert 0.7 < mean["madam"][0] <= 1.0 and 0.7 < mean["madam"][1] <= 1.0, mean
    assert abs(mean["madam"][1] / mean["madam"][0] - 1) < 0.05, mean
    # Adam: full progress in the large-scale phase, next to none in the other
    assert mean["adam"][0] > 0.7, mean
    assert abs(mean["adam"][1]) < 0.1, mean
    # the identity C_lam = EMA(d^2) is gone: in the (0, 1) phase MAdam's metric is |b| = 1
    assert np.allclose(np.sqrt(opt_m.curvature()), 1.0, rtol=1e-6)


# ============================================================================ 3. pair sampling
def _stationary(n_obj, n, seed):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((n_obj, 1)) * 0.5
    mix = rng.standard_normal((n_obj, n_obj)) / np.sqrt(n_obj)
    second = mu @ mu.T + mix @ mix.T           # E[g_i g_j] per element

    def draw():
        return np.ascontiguousarray(mu + mix @ rng.standard_normal((n_obj, n)))
    return draw, second


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_sampled_fisher_converges_to_full(estimator):
    """Stationary random gradients (iid over elements and steps), C = 4, k = 2: sampled F_hat
    is unbiased (its mean over elements and sampling seeds matches E[g_i g_j]), and its error
    shrinks as the EMA window grows, like the full estimator's, within a constant factor (the
    variance inflation derived in docs/madam.md). IPW's sampling noise is a common scale for
    all elements (every element is sampled at the same steps), so it averages out over seeds,
    not over elements."""
    n_obj, n, k, seeds = 4, 1000, 2, 6
    lam = np.full(n_obj, 1 / n_obj)
    errors, full_errors = [], []
    for beta2, steps in ((0.9, 150), (0.99, 1000)):
        seed_means, sq, sq_full = [], [], []
        for seed in range(seeds):
            draw, second = _stationary(n_obj, n, seed=4)
            draw = _stationary(n_obj, n, seed=100 + seed)[0] if seed else draw
            second = _stationary(n_obj, n, seed=100 + seed)[1] if seed else second
            x_s, x_f = np.zeros(n), np.zeros(n)
            kw = dict(solver=None, betas=(0.9, beta2), lr=1e-3)
            sampled = MAdam(x_s, n_obj=n_obj, pair_sampling=k, estimator=estimator, seed=seed,
                            **kw)
            full = MAdam(x_f, **kw)
            for _ in range(steps):
                g = draw()
                rows = np.ascontiguousarray(g[list(sampled.requested_objectives())])
                sampled.step(rows, preference=lam, direction=lam @ g)
                full.step(g, preference=lam)
            assert np.all(sampled.curvature() >= 0) and np.all(np.isfinite(x_s))
            f_s, f_f = sampled.fisher(), full.fisher()
            seed_means.append(f_s.mean(axis=-1) - second)
            sq.append(np.mean((f_s - second[..., None]) ** 2))
            sq_full.append(np.mean((f_f - second[..., None]) ** 2))
        seed_means = np.array(seed_means)
        se = seed_means.std(axis=0, ddof=1) / np.sqrt(seeds)
        assert np.all(np.abs(seed_means.mean(axis=0)) <= 5 * se + 1e-3), (seed_means, se)
        errors.append(np.sqrt(np.mean(sq)))
        full_errors.append(np.sqrt(np.mean(sq_full)))
    # a ~10x longer window: the error goes down by ~sqrt(10) (at least 2x), as the full one's
    assert errors[1] < errors[0] / 2, errors
    assert full_errors[1] < full_errors[0] / 2, full_errors
    # inflation relative to full pairs: about sqrt((2 - q) / q) = 3.3 off the diagonal (q = 1/6)
    assert errors[1] / full_errors[1] < 4.0, (errors, full_errors)


def test_sampled_clamp_and_negative_raw_curvature():
    """With sampling, lam^T F_hat lam can be < 0 per element (different pairs average different
    steps); C_lam is clamped at 0 and the parameters stay finite."""
    n_obj, n = 3, 2000
    draw, _ = _stationary(n_obj, n, seed=9)
    x = np.zeros(n)
    opt = MAdam(x, solver=None, n_obj=n_obj, pair_sampling=2, estimator="ipw", lr=1e-3,
                betas=(0.9, 0.9))
    lam = np.array([0.45, 0.1, 0.45])
    found = False
    for _ in range(60):
        g = draw()
        g[0] = -g[2] + 0.01 * g[1]     # conflicting pair: lam @ g nearly cancels
        opt.step(np.ascontiguousarray(g[list(opt.requested_objectives())]), preference=lam,
                 direction=lam @ g)
        raw = np.einsum("i,ij...,j->...", lam, opt.fisher(), lam)
        found = found or bool(np.any(raw < 0))
        assert np.all(opt.curvature() >= 0)
    assert found
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_sampling_all_objectives_is_full_pairs_bitwise(estimator):
    prob = Quadratics(3, 100, seed=2)
    x_s, x_f = prob.x0.copy(), prob.x0.copy()
    sampled = MAdam(x_s, solver=None, n_obj=3, pair_sampling=3, estimator=estimator, lr=1e-2)
    full = MAdam(x_f, solver=None, lr=1e-2)
    stream = dirichlet_stream(3, 0)
    for _ in range(30):
        lam = stream(0)
        assert sampled.requested_objectives() == (0, 1, 2)
        sampled.step(prob.jacobian(x_s), preference=lam)
        full.step(prob.jacobian(x_f), preference=lam)
    np.testing.assert_array_equal(x_s, x_f)


def test_only_sampled_entries_move_and_rows_match_full_jacobian():
    rng = np.random.default_rng(5)
    n_obj, n = 5, 300
    x1, x2 = np.zeros(n), np.zeros(n)
    o1 = MAdam(x1, solver=None, n_obj=n_obj, pair_sampling=2, seed=3, lr=1e-2)
    o2 = MAdam(x2, solver=None, n_obj=n_obj, pair_sampling=2, seed=3, lr=1e-2)
    lam = np.full(n_obj, 0.2)
    counts = np.zeros(n_obj)
    for _ in range(40):
        g = rng.standard_normal((n_obj, n))
        d = lam @ g
        req = o1.requested_objectives()
        assert req == o1.requested_objectives() == o2.requested_objectives()
        assert len(req) == 2 and req[0] < req[1]
        counts[list(req)] += 1
        before = o1.state_dict()["state.0.fisher"]
        o1.step(np.ascontiguousarray(g[list(req)]), preference=lam, direction=d)
        o2.step(g, preference=lam, direction=d)          # all rows: only the requested are read
        after = o1.state_dict()["state.0.fisher"]
        for p, (i, j) in enumerate(zip(*np.triu_indices(n_obj))):
            moved = not np.array_equal(before[p], after[p])
            assert moved == (i in req and j in req)
    np.testing.assert_array_equal(x1, x2)
    assert counts.min() > 0


def test_skipped_step_keeps_the_request():
    x = np.zeros(10)
    opt = MAdam(x, solver=None, n_obj=4, pair_sampling=2, nonfinite="skip")
    req = opt.requested_objectives()
    bad = np.full((2, 10), np.nan)
    assert opt.step(bad, preference=np.full(4, 0.25), direction=np.zeros(10)) is False
    assert opt.skipped_steps == 1 and opt.step_count == 0
    assert opt.requested_objectives() == req
    good = np.ones((2, 10))
    assert opt.step(good, preference=np.full(4, 0.25), direction=np.ones(10))
    assert opt.step_count == 1


# ============================================================================ 4. every solver
def _solver_instances(n_obj):
    pref = np.full(n_obj, 1.0 / n_obj)
    return [solvers.LinearScalarization(pref), solvers.Tchebycheff(pref), solvers.RLW(seed=1),
            solvers.DWA(), solvers.MGDA(), solvers.PCGrad(seed=1), solvers.CAGrad(),
            solvers.IMTLG(), solvers.NashMTL(), solvers.UPGrad(), solvers.EPO(pref),
            solvers.PAMOO(iters=50)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_solver(dtype):
    problem = madam.problems.get("vlmop2")
    lo, hi = problem.bounds
    names = set()
    for solver in _solver_instances(problem.n_obj):
        twin = copy.deepcopy(solver)
        x = np.array(problem.initial_points(1, np.random.default_rng(0))[0], dtype=dtype)
        opt = MAdam(x, solver=solver, lr=1e-2)
        for _ in range(15):
            f, jac = problem.losses_and_jacobian(x.astype(np.float64))
            jac = np.ascontiguousarray(jac.astype(dtype))
            lam_twin, _ = twin.solve(jac, f)
            opt.step(jac, f)
            np.testing.assert_array_equal(opt.last_preference, lam_twin)
            np.clip(x, lo.astype(dtype), hi.astype(dtype), out=x)
        assert np.all(np.isfinite(x))
        names.add(type(solver).__name__)
    # CAMOO needs the point its HVPs are taken at (solver.observe / the runner): tested in
    # tests/test_amoo.py under MAdam.
    assert names == {cls.__name__ for cls in solvers.SOLVERS.values()} - {"CAMOO"}


def test_solver_by_name_and_default():
    x = np.zeros(4)
    assert isinstance(MAdam(x).solver, solvers.MGDA)
    assert isinstance(MAdam(x, solver="rlw").solver, solvers.RLW)
    opt = MAdam(x, solver=None)
    opt.solver = solvers.MGDA()
    opt.step(np.ones((2, 4)))
    assert opt.step_count == 1


def test_solver_class_is_refused_with_a_hint():
    """Issue 12: a solver class (not an instance) is a TypeError at construction, naming
    ``solver`` and showing an instance; before, it failed later with a shape error."""
    x = np.zeros(4)
    with pytest.raises(TypeError, match=r"solver.*pass an instance, e\.g\. MGDA\(\)"):
        MAdam(x, solver=solvers.MGDA)
    with pytest.raises(TypeError, match=r"pass an instance, e\.g\. CAMOO\(hvp=\.\.\.\)"):
        MAdam(x, solver=solvers.CAMOO)
    opt = MAdam(x, solver=None)
    with pytest.raises(TypeError, match="MGDA()"):
        opt.solver = solvers.MGDA
    assert opt.solver is None
    assert isinstance(MAdam(x, solver=solvers.MGDA()).solver, solvers.MGDA)


def test_amoo_solvers_by_name():
    """Issue 12: "pamoo"/"camoo" are registry names; CAMOO's needs hvp, and says so."""
    assert solvers.SOLVERS["pamoo"] is solvers.PAMOO
    assert solvers.SOLVERS["camoo"] is solvers.CAMOO
    x = np.array([0.3, -0.2, 0.1])
    opt = MAdam(x, solver="pamoo", lr=1e-2)
    assert isinstance(opt.solver, solvers.PAMOO)
    opt.step(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([1.0, 2.0]))
    assert np.isclose(opt.last_preference.sum(), 1.0) and np.all(np.isfinite(x))
    with pytest.raises(ValueError, match=r"'camoo'.*hvp.*pass an instance"):
        MAdam(x, solver="camoo")
    with pytest.raises(ValueError, match=r"'epo'.*preference"):
        MAdam(x, solver="epo")


def _float32_dirichlet(n_obj):
    """A float32 Dirichlet sample summing to 1 in float32 but not within 1e-9 in float64."""
    for seed in range(1000):
        lam = np.random.default_rng(seed).dirichlet(np.ones(n_obj)).astype(np.float32)
        if (lam.sum(dtype=np.float32) == np.float32(1.0)
                and abs(lam.astype(np.float64).sum() - 1.0) > 1e-9):
            return lam
    raise AssertionError("no such sample")


@pytest.mark.parametrize("n_obj", [2, 5, 8])
def test_float32_preference_on_the_float32_simplex(n_obj):
    """Issue 12: the simplex tolerance follows the preference's dtype: float32 input is
    accepted within a few float32 eps; float64 input keeps 1e-9; off-simplex is refused."""
    lam = _float32_dirichlet(n_obj)
    x = np.linspace(-1, 1, 6).astype(np.float32)
    opt = MAdam(x, solver=None, lr=1e-2)
    jac = np.ones((n_obj, 6), np.float32)
    opt.step(jac, preference=lam)
    np.testing.assert_array_equal(opt.last_preference, lam.astype(np.float64))
    # the same numbers as float64 are off by more than 1e-9: still refused
    with pytest.raises(ValueError, match=r"sum to 1 \(within 1e-9\)"):
        opt.step(jac, preference=lam.astype(np.float64))
    off = lam.copy()
    off[0] += np.float32(1e-3)
    with pytest.raises(ValueError, match="sum to 1"):
        opt.step(jac, preference=off)
    assert opt.step_count == 1


def test_runs_grid_uses_madam_with_the_runs_solver():
    res = madam.run("vlmop2", ["mgda", "rlw"],
                    {"madam": (MAdam, {"lr": 1e-2}), "adam": ("Adam", {"lr": 1e-2})},
                    steps=40, seeds=[0], record_every=10)
    assert not any(g["diverged"] for g in res.grid)
    rows = [g for g in res.grid if g["optimizer"] == "madam"]
    assert {g["optimizer_class"] for g in rows} == {"MAdam"}
    lam = res.select(optimizer="madam", solver="rlw").lambdas
    assert np.all(np.isfinite(lam)) and np.allclose(lam.sum(axis=-1), 1.0)


# ============================================================================ 5. state
@pytest.mark.parametrize("mode", ["full-solver", "sampled"])
def test_state_round_trip_bitwise(mode, tmp_path):
    prob = Quadratics(3, 50, seed=8)

    def make(x):
        if mode == "full-solver":
            return MAdam(x, solver=solvers.RLW(seed=4), lr=1e-2, rampup_steps=7)
        return MAdam(x, solver=None, n_obj=3, pair_sampling=2, seed=5, lr=1e-2)

    def advance(opt, x, k):
        for t in range(k):
            jac = prob.jacobian(x)
            if mode == "full-solver":
                opt.step(jac)
            else:
                lam = np.array([0.2, 0.3, 0.5])
                rows = np.ascontiguousarray(jac[list(opt.requested_objectives())])
                opt.step(rows, preference=lam, direction=lam @ jac)

    x = prob.x0.copy()
    opt = make(x)
    advance(opt, x, 6)
    opt.requested_objectives() if mode == "sampled" else None   # a pending draw is saved too
    sd = opt.state_dict()
    x_saved = x.copy()
    path = tmp_path / "madam.npz"
    np.savez(path, **sd)
    advance(opt, x, 9)

    y = x_saved.copy()
    other = make(y)
    other.load_state_dict(dict(np.load(path)))
    advance(other, y, 9)
    np.testing.assert_array_equal(x, y)
    assert other.step_count == opt.step_count == 15
    np.testing.assert_array_equal(other.last_preference, opt.last_preference)


def test_load_state_dict_rejects_mismatch_and_changes_nothing():
    x = np.zeros(8)
    opt = MAdam(x, solver=None, n_obj=2, pair_sampling=2)
    opt.step(np.ones((2, 8)), preference=[0.5, 0.5], direction=np.ones(8))
    sd = opt.state_dict()
    other = MAdam(np.zeros(8), solver=None, n_obj=2, pair_sampling=2)
    before = other.state_dict()
    for key, value, exc in [("state.0.fisher", np.zeros((2, 8)), ValueError),
                            ("pair_updates", np.array([5, 5, 5]), ValueError),
                            ("estimator", "count", ValueError),
                            ("seed", 3, ValueError),
                            ("n_obj", 3, ValueError),
                            ("last_preference", np.array([np.nan, 1.0]), ValueError),
                            ("hyper.lr", -1.0, ValueError)]:
        bad = dict(sd)
        bad[key] = value
        with pytest.raises(exc):
            other.load_state_dict(bad)
        after = other.state_dict()
        for k2 in before:
            assert np.array_equal(np.asarray(before[k2]), np.asarray(after[k2])), k2


# ============================================================================ 6. bad input
def _snapshot(opt, x):
    sd = opt.state_dict()
    return x.copy(), {k: np.array(v, copy=True) for k, v in sd.items()}


def _unchanged(opt, x, snap):
    x0, sd0 = snap
    assert np.array_equal(x, x0)
    sd = opt.state_dict()
    assert set(sd) == set(sd0)
    for k in sd:
        assert np.array_equal(np.asarray(sd[k]), sd0[k]), k


class _NaNSolver(solvers.Solver):
    def _solve(self, jac, losses):
        return np.array([np.nan, 1.0]), 1.0, {}


BAD_STEPS = [
    # (description, kwargs for step, exception, message fragment)
    ("off simplex", dict(preference=[0.7, 0.7]), ValueError, "sum to 1"),
    ("negative", dict(preference=[1.5, -0.5]), ValueError, ">= 0"),
    ("nan", dict(preference=[np.nan, 1.0]), ValueError, "finite"),
    ("wrong length", dict(preference=[1.0]), ValueError, "preference"),
    ("string", dict(preference="ab"), TypeError, "preference"),
    ("jac dtype", dict(jacobian=np.ones((2, 6), np.float32)), TypeError, "jacobian"),
    ("jac shape", dict(jacobian=np.ones((2, 5))), ValueError, "jacobian"),
    ("jac rows", dict(jacobian=np.ones((3, 6))), ValueError, "rows"),
    ("jac list", dict(jacobian=[np.ones((2, 6))]), TypeError, "jacobian"),
    ("jac nan", dict(jacobian=np.full((2, 6), np.nan)), madam.NonFiniteError, "jacobian"),
    ("jac strided", dict(jacobian=np.ones((2, 12))[:, ::2]), ValueError, "C-contiguous"),
    ("direction shape", dict(direction=np.ones(5)), ValueError, "direction"),
    ("direction nan", dict(direction=np.full(6, np.inf)), madam.NonFiniteError, "direction"),
]


@pytest.mark.parametrize("what, kwargs, exc, fragment", BAD_STEPS, ids=[c[0] for c in BAD_STEPS])
def test_bad_step_input_changes_nothing(what, kwargs, exc, fragment):
    x = np.linspace(-1, 1, 6)
    opt = MAdam(x, solver=None, lr=1e-2)
    opt.step(np.ones((2, 6)), preference=[0.5, 0.5])
    snap = _snapshot(opt, x)
    kwargs = dict(kwargs)
    jac = kwargs.pop("jacobian", np.ones((2, 6)))
    kwargs.setdefault("preference", [0.5, 0.5])
    with pytest.raises(exc, match=fragment):
        opt.step(jac, **kwargs)
    _unchanged(opt, x, snap)


def test_bad_solver_output_and_missing_lambda_change_nothing():
    x = np.linspace(-1, 1, 6)
    opt = MAdam(x, solver=_NaNSolver(), lr=1e-2)
    snap = _snapshot(opt, x)
    with pytest.raises(ValueError, match="finite"):
        opt.step(np.ones((2, 6)))
    _unchanged(opt, x, snap)
    opt.solver = None
    snap = _snapshot(opt, x)
    with pytest.raises(TypeError, match="preference"):
        opt.step(np.ones((2, 6)))
    _unchanged(opt, x, snap)


def test_sampling_input_rules():
    x = np.zeros(6)
    opt = MAdam(x, solver=solvers.MGDA(), n_obj=4, pair_sampling=2)
    with pytest.raises(ValueError, match="direction"):
        opt.step(np.ones((2, 6)), preference=np.full(4, 0.25))
    with pytest.raises(ValueError, match="solver needs all"):
        opt.step(np.ones((2, 6)), direction=np.ones(6))
    with pytest.raises(ValueError, match="requested rows"):
        opt.step(np.ones((3, 6)), preference=np.full(4, 0.25), direction=np.ones(6))
    assert opt.step_count == 0
    opt.step(np.ones((4, 6)))               # the full Jacobian: the solver picks lambda
    assert opt.step_count == 1


def test_shared_memory_rejected():
    x = np.zeros(12)
    opt = MAdam(x[:6], solver=None)
    with pytest.raises(ValueError, match="shares memory"):
        opt.step(x.reshape(2, 6), preference=[0.5, 0.5])


@pytest.mark.parametrize("kwargs, exc", [
    (dict(lr=-1.0), ValueError), (dict(betas=(0.9, 1.0)), ValueError),
    (dict(eps=float("nan")), ValueError), (dict(weight_decay=-0.1), ValueError),
    (dict(rampup_steps=-1), ValueError), (dict(rampup_steps=1.5), TypeError),
    (dict(rampup="exp"), ValueError), (dict(pair_sampling=2), ValueError),
    (dict(n_obj=3, pair_sampling=1), ValueError), (dict(n_obj=3, pair_sampling=4), ValueError),
    (dict(n_obj=0), ValueError), (dict(estimator="mean"), ValueError),
    (dict(solver="nope"), ValueError), (dict(solver=3), TypeError),
    (dict(nonfinite="maybe"), ValueError), (dict(seed=-1), ValueError),
])
def test_bad_constructor_arguments(kwargs, exc):
    with pytest.raises(exc):
        MAdam(np.zeros(3), **kwargs)


def test_hyperparameters_are_validated_attributes():
    opt = MAdam(np.zeros(3))
    opt.lr = 0.5
    assert opt.lr == 0.5
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1
    with pytest.raises(ValueError, match="rampup"):
        opt.rampup = "step"
    assert "MAdam" in repr(opt)


def test_rampup_schedules():
    assert rampup_factor(1, 0) == 1.0
    assert rampup_factor(5, 10) == 0.5 and rampup_factor(50, 10) == 1.0
    assert rampup_factor(5, 10, "cosine") == pytest.approx(0.5)
    assert rampup_factor(1, 10, "cosine") < rampup_factor(1, 10, "linear")


def test_rampup_zero_factor_is_adam_on_d():
    """r_t = 0 (the first steps of a long rampup are close to it): u = d, so MAdam is Adam."""
    prob = Quadratics(2, 40, seed=6)
    x_m, x_a = prob.x0.copy(), prob.x0.copy()
    opt = MAdam(x_m, solver=None, lr=1e-2, rampup_steps=10 ** 12)
    adam = madam.Adam(x_a, lr=1e-2)
    lam = np.array([0.3, 0.7])
    for _ in range(20):
        opt.step(prob.jacobian(x_m), preference=lam)
        adam.step(lam[0] * prob.jacobian(x_a)[0] + lam[1] * prob.jacobian(x_a)[1])
    assert rel_dev(x_m, x_a) < 1e-9


def test_threads_bit_identical():
    rng = np.random.default_rng(0)
    n = 70_001
    jac = rng.standard_normal((3, n)).astype(np.float32)
    out = []
    old = madam.get_num_threads()
    try:
        for threads in (1, 2):
            madam.set_num_threads(threads)
            x = np.zeros(n, np.float32)
            opt = MAdam(x, solver=None)
            for t in range(3):
                opt.step(jac, preference=[0.2, 0.3, 0.5])
            out.append(x)
    finally:
        madam.set_num_threads(old)
    np.testing.assert_array_equal(out[0], out[1])


def test_a_step_reads_the_jacobian_twice(monkeypatch):
    """With a Gramian-only solver: one cm_gram_scan pass per array (Gramian and NaN scan) and the
    kernel; no separate NaN scan, no solve() (no lam @ J), no concatenation of a list."""
    rng = np.random.default_rng(2)
    parts = [rng.standard_normal((30,)), rng.standard_normal((4, 5))]
    jacs = [rng.standard_normal((3,) + p.shape) for p in parts]
    opt = MAdam(parts, solver=solvers.MGDA(), lr=1e-3)
    scans, calls = [], []
    real_scan = madam._core.gram_scan
    monkeypatch.setattr(madam._core, "gram_scan",
                        lambda j, r: scans.append(j.shape) or real_scan(j, r))
    real_all_finite = madam._core.all_finite

    def all_finite(x):  # the solvers' own C-sized checks (of lambda) are not reads of J
        if any(np.shares_memory(x, j) for j in jacs):
            calls.append("all_finite")
        return real_all_finite(x)

    monkeypatch.setattr(madam._core, "all_finite", all_finite)
    real_concatenate = np.concatenate

    def concatenate(arrays, *args, **kwargs):
        arrays = list(arrays)
        if any(isinstance(a, np.ndarray) and np.shares_memory(a, j) for a in arrays for j in jacs):
            calls.append("concatenate")
        return real_concatenate(arrays, *args, **kwargs)

    monkeypatch.setattr(np, "concatenate", concatenate)
    monkeypatch.setattr(type(opt.solver), "solve", lambda *a, **k: calls.append("solve"))
    assert opt.step(jacs, np.ones(3))
    assert scans == [(3, 30), (3, 4, 5)] and calls == []


@pytest.mark.parametrize("nonfinite", ["raise", "skip"])
def test_the_gramian_pass_names_a_nonfinite_array(nonfinite):
    rng = np.random.default_rng(4)
    parts = [rng.standard_normal(6), rng.standard_normal(5)]
    jacs = [rng.standard_normal((2, 6)), rng.standard_normal((2, 5))]
    jacs[1][1, 3] = np.inf
    before = [p.copy() for p in parts]
    opt = MAdam(parts, solver=solvers.MGDA(), nonfinite=nonfinite)
    if nonfinite == "raise":
        with pytest.raises(madam.NonFiniteError, match=r"jacobian\[1\]"):
            opt.step(jacs)
    else:
        assert opt.step(jacs) is False and opt.skipped_steps == 1
    assert opt.step_count == 0
    for p, b in zip(parts, before):
        np.testing.assert_array_equal(p, b)


@pytest.mark.parametrize("solver", ["mgda", "upgrad", "nashmtl"])
def test_underflowing_row_norms_take_solves_path(solver):
    """A row of ~1e-170 next to rows of ~1: its squared norm underflows to 0 in the Gramian while
    its products with the other rows do not (no Gramian of a real matrix looks like that, so
    weights() would refuse it); MAdam's lambda is still the one solve() gives, bit for bit."""
    rng = np.random.default_rng(8)
    jac = rng.standard_normal((3, 40))
    jac[0] *= 1e-170
    x = rng.standard_normal(40)
    opt = MAdam(x, solver=solvers.SOLVERS[solver](), lr=1e-3)
    opt.step(jac, np.ones(3))
    lam, _ = solvers.SOLVERS[solver]().solve(jac, np.ones(3))
    np.testing.assert_array_equal(opt.last_preference, lam)
