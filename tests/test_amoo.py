"""AMOO: Rademacher probes, Hutchinson, PU, PAMOO's weights, CAMOO and PAMOO as solvers.

Oracles: the documented probe formula in NumPy, the Hutchinson variance sum_{j != i} H_ij^2 / N,
scipy.optimize.linprog for the game value, the regularised equilibrium's fixed point
(w = softmax(A q / tau), q = softmax(-A^T w / tau)) for PU's linear rate, scipy's bounded least
squares for PAMOO's QP, finite differences for the MLP problem's derivatives, np.exp in float64
for PU's float exponential.
"""
import math

import numpy as np
import pytest
from scipy.optimize import linprog, lsq_linear

import madam
from madam import _core, amoo, problems
from madam.amoo import (CAMOO, PAMOO, HutchinsonEMA, PowerLossMLP, hutchinson_diag, hvp_from_grad,
                        output_curvature, pamoo_weights, pu_solve, rademacher)
from madam.runs import run
from madam.solvers import LinearScalarization

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


# ============================================================================ probes
def _mix(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & M64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & M64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & M64
    return x ^ (x >> np.uint64(31))


def _reference_probe(n, seed, step, probe):
    """The formula of cmadam_amoo.h, in NumPy uint64 arithmetic (wrapping)."""
    with np.errstate(over="ignore"):
        key = _mix(_mix(_mix(np.uint64(seed)) ^ np.uint64(step)) ^ np.uint64(probe))
        words = _mix(key + np.arange((n + 63) // 64, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    i = np.arange(n)
    bits = (words[i // 64] >> (i % 64).astype(np.uint64)) & np.uint64(1)
    return np.where(bits == 1, -1.0, 1.0)


@pytest.mark.parametrize("n,seed,step,probe", [(1, 0, 0, 0), (64, 1, 2, 3), (1000, 7, 3, 2),
                                               (100003, 2 ** 64 - 1, 12345, 99)])
def test_probe_matches_the_documented_formula(n, seed, step, probe):
    z = rademacher(n, seed, step, probe)
    np.testing.assert_array_equal(z, _reference_probe(n, seed, step, probe))
    np.testing.assert_array_equal(rademacher(n, seed, step, probe, np.float32), z)


def test_probe_signs_are_fair_coins():
    n = 200_000
    z = rademacher(n, seed=5, step=1, probe=0)
    assert set(np.unique(z)) == {-1.0, 1.0}            # exactly +-1, both present
    assert abs(z.mean()) < 5 / np.sqrt(n)              # not the always-minus-one bug
    # pairs (z_i, z_{i+1}) are independent: the lag-1 correlation is ~ 0
    assert abs(np.mean(z[1:] * z[:-1])) < 5 / np.sqrt(n)
    # every bit position of the 64-bit words is balanced
    per_bit = z[: n - n % 64].reshape(-1, 64).mean(axis=0)
    assert np.all(np.abs(per_bit) < 5 / np.sqrt(n / 64))


def test_probe_streams_and_threads():
    n = 100_000
    z = rademacher(n, 1, 2, 3)
    for other in [(2, 2, 3), (1, 3, 3), (1, 2, 4)]:
        diff = np.mean(rademacher(n, *other) != z)
        assert 0.48 < diff < 0.52
    np.testing.assert_array_equal(rademacher(77, 1, 2, 3), z[:77])     # prefixes agree
    saved = madam.get_num_threads()
    try:
        for threads in (1, 2):
            madam.set_num_threads(threads)
            np.testing.assert_array_equal(rademacher(n, 1, 2, 3), z)
    finally:
        madam.set_num_threads(saved)
    assert rademacher(0).shape == (0,)


@pytest.mark.parametrize("kwargs,exc", [({"n": -1}, ValueError), ({"n": 2.5}, TypeError),
                                        ({"n": 3, "seed": -1}, ValueError),
                                        ({"n": 3, "seed": 2 ** 64}, ValueError),
                                        ({"n": 3, "step": True}, TypeError),
                                        ({"n": 3, "dtype": np.int32}, TypeError)])
def test_probe_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        rademacher(**kwargs)


# ============================================================================ Hutchinson
def _dense_symmetric(n, seed):
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((n, n)) * 0.3
    return b + b.T + np.diag(rng.uniform(-1.0, 3.0, n))


def test_hutchinson_is_exact_on_diagonal_matrices():
    d = np.array([3.0, -1.0, 0.5, 2.0, 0.0])
    est = hutchinson_diag(lambda v: d * v, 5, n_samples=7, seed=3)
    np.testing.assert_allclose(est, d, rtol=1e-15, atol=0)
    stacked = hutchinson_diag(lambda v: np.stack([d * v, 2 * d * v]), 5, n_samples=3)
    np.testing.assert_allclose(stacked, [d, 2 * d], rtol=1e-15, atol=0)


@pytest.mark.parametrize("n,n_samples,seed", [(30, 400, 0), (60, 1000, 1), (10, 50, 2)])
def test_hutchinson_within_its_variance_bound(n, n_samples, seed):
    """Entry i of one probe's z * Hz is H_ii + sum_{j != i} H_ij z_i z_j: mean H_ii, variance
    s_i^2 = sum_{j != i} H_ij^2; over N probes the error has standard deviation s_i / sqrt(N).
    Bound used: |error_i| <= 6 s_i / sqrt(N) for every i (a union bound over n entries with the
    sub-Gaussian tail of a Rademacher sum, 2 exp(-36/2) ~ 3e-8 each)."""
    h = _dense_symmetric(n, seed)
    est = hutchinson_diag(lambda v: h @ v, n, n_samples=n_samples, seed=seed)
    sd = np.sqrt(((h ** 2).sum(1) - np.diag(h) ** 2) / n_samples)
    err = np.abs(est - np.diag(h))
    assert np.all(err <= 6 * sd), (err / sd).max()
    # and it is an average of N probes: not exact (the off-diagonals are seen)
    assert err.max() > 0.1 * sd.max()


def test_hutchinson_mean_and_variance_over_seeds():
    n, reps = 12, 3000
    h = _dense_symmetric(n, 4)
    single = np.array([hutchinson_diag(lambda v: h @ v, n, n_samples=1, seed=s)
                       for s in range(reps)])
    var = (h ** 2).sum(1) - np.diag(h) ** 2
    # unbiased: the mean over reps is within 5 standard errors
    assert np.all(np.abs(single.mean(0) - np.diag(h)) <= 5 * np.sqrt(var / reps))
    # the empirical variance matches sum_{j != i} H_ij^2
    np.testing.assert_allclose(single.var(0), var, rtol=0.15)


def test_hutchinson_transforms_and_errors():
    d = np.array([2.0, -4.0, 0.5])
    np.testing.assert_array_equal(hutchinson_diag(lambda v: d * v, 3, 2, transform="abs"),
                                  np.abs(d))
    np.testing.assert_array_equal(
        hutchinson_diag(lambda v: d * v, 3, 2, transform="clip", clip_min=1.0), [2.0, 1.0, 1.0])
    f32 = hutchinson_diag(lambda v: d * v, 3, 2, dtype=np.float32)
    assert f32.dtype == np.float32
    with pytest.raises(TypeError, match="hvp"):
        hutchinson_diag(3, 3)
    with pytest.raises(ValueError, match="hvp"):
        hutchinson_diag(lambda v: np.ones(4), 3)
    with pytest.raises(ValueError, match="NaN"):
        hutchinson_diag(lambda v: v * np.nan, 3)
    with pytest.raises(ValueError, match="transform"):
        hutchinson_diag(lambda v: v, 3, transform="square")
    with pytest.raises(ValueError, match="n_samples"):
        hutchinson_diag(lambda v: v, 3, n_samples=0)


def test_hutchinson_ema_bias_correction():
    rng = np.random.default_rng(0)
    seq = rng.standard_normal((50, 2, 6))
    for beta in (0.0, 0.9, 0.99):
        avg = HutchinsonEMA(beta=beta)
        ema = np.zeros((2, 6))
        for t, e in enumerate(seq, start=1):
            out = avg.update(e)
            ema = beta * ema + (1 - beta) * e
            np.testing.assert_allclose(out, ema / (1 - beta ** t), rtol=1e-12, atol=1e-14)
        if beta == 0.0:
            np.testing.assert_array_equal(out, seq[-1])
    # a constant estimate comes back unchanged from the first step on
    avg = HutchinsonEMA(beta=0.99)
    const = np.array([1.0, -2.0, 3.0])
    for _ in range(20):
        np.testing.assert_allclose(avg.update(const), const, rtol=1e-12)
    sd = avg.state_dict()
    other = HutchinsonEMA(beta=0.99)
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other.update(const), avg.update(const))
    with pytest.raises(ValueError, match="reset"):
        avg.update(np.ones(4))
    with pytest.raises(ValueError, match="beta"):
        HutchinsonEMA(beta=1.0)


def test_hvp_from_grad():
    h = _dense_symmetric(8, 5)
    grad = lambda x: h @ x + np.sin(x)                   # Hessian h + diag(cos x)
    x = np.linspace(-1, 1, 8)
    v = np.random.default_rng(1).standard_normal(8)
    exact = h @ v + np.cos(x) * v
    np.testing.assert_allclose(hvp_from_grad(grad, x)(v), exact, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(hvp_from_grad(grad)(x, v), exact, rtol=1e-7, atol=1e-8)
    # the problems' Jacobians give stacked HVPs that match their exact ones
    p = problems.TeacherStudent(hidden=8, batch_size=16, d_in=3, d_out=4, n_obj=3)
    x = p.initial_points(1, np.random.default_rng(0))[0]
    v = np.random.default_rng(2).standard_normal(p.dim)
    fd = hvp_from_grad(p.jacobian, x)(v)
    exact = p.hvps(x, v)
    assert np.abs(fd - exact).max() <= 1e-5 * np.abs(exact).max()
    # plugged into Hutchinson, both give the same diagonal to that accuracy
    a = hutchinson_diag(hvp_from_grad(p.jacobian, x), p.dim, n_samples=5)
    b = hutchinson_diag(lambda u: p.hvps(x, u), p.dim, n_samples=5)
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()
    np.testing.assert_array_equal(hvp_from_grad(grad, np.zeros(8))(np.zeros(8)), np.zeros(8))
    with pytest.raises(TypeError):
        hvp_from_grad(3)


# ============================================================================ PU
def _lp_value(a):
    """max_w min_j (A^T w)_j over the simplex, by linprog (variables w and v: max v)."""
    m, d = a.shape
    c = np.r_[np.zeros(m), -1.0]
    a_ub = np.hstack([-a.T, np.ones((d, 1))])
    a_eq = np.r_[np.ones(m), 0.0][None, :]
    res = linprog(c, a_ub, np.zeros(d), a_eq, [1.0], bounds=[(0, None)] * m + [(None, None)],
                  method="highs")
    assert res.status == 0
    return -res.fun


PU_GAMES = [(m, d, seed) for (m, d) in [(3, 5), (5, 3), (4, 8), (10, 20), (2, 50)]
            for seed in range(3)]


@pytest.mark.parametrize("m,d,seed", PU_GAMES)
def test_pu_value_matches_linprog(m, d, seed):
    a = np.random.default_rng(seed).standard_normal((m, d))
    exact = _lp_value(a)
    res = pu_solve(a, tau=1e-3, iters=20000)
    assert abs(res.value - exact) < 1e-3
    # the duality gap brackets the exact value: min_j (A^T w)_j <= value <= max_i (A q)_i
    assert (a.T @ res.w).min() <= exact + 1e-12 and (a @ res.q).max() >= exact - 1e-12
    assert res.gap == pytest.approx((a @ res.q).max() - (a.T @ res.w).min(), abs=1e-12)
    assert res.w.sum() == pytest.approx(1, abs=1e-14) and res.q.sum() == pytest.approx(1, abs=1e-14)
    assert res.iters == 20000 and res.eta == pytest.approx(1 / (1e-3 + 2 * np.abs(a).max()))


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _kl(p, q):
    return float(np.sum(p * np.log(p / q)))


@pytest.mark.parametrize("tau,m,d,seed", [(0.05, 3, 5, 0), (0.2, 6, 4, 1), (1.0, 4, 4, 2),
                                          (0.1, 2, 30, 3)])
def test_pu_kl_shrinks_at_the_linear_rate(tau, m, d, seed):
    """KL(z* || z_t) <= (1 - eta tau)^t KL(z* || z_0), z = (w, q), z* the regularised equilibrium
    (Cen, Wei & Chi 2021, Theorem 1), with eta = 1 / (tau + 2 max|A|)."""
    a = np.random.default_rng(seed).standard_normal((m, d))
    star = pu_solve(a, tau=tau, iters=100_000)
    # z* is the fixed point of the regularised best responses
    np.testing.assert_allclose(star.w, _softmax(a @ star.q / tau), atol=1e-13)
    np.testing.assert_allclose(star.q, _softmax(-a.T @ star.w / tau), atol=1e-13)
    eta = 1 / (tau + 2 * np.abs(a).max())
    kl0 = None
    for t in range(0, 60):
        r = pu_solve(a, tau=tau, iters=t)
        kl = _kl(star.w, r.w) + _kl(star.q, r.q)
        kl0 = kl if t == 0 else kl0
        bound = (1 - eta * tau) ** t * kl0
        if bound < 1e-11:
            break
        assert kl <= bound * (1 + 1e-9), (t, kl, bound)


def test_pu_options():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 1.0, (4, 6))
    full = pu_solve(a, iters=60)
    half = pu_solve(a, iters=25)
    cont = pu_solve(a, iters=35, w0=half.w, q0=half.q)
    np.testing.assert_allclose(cont.w, full.w, atol=1e-13)
    np.testing.assert_allclose(cont.q, full.q, atol=1e-13)
    # early stop by tol
    res = pu_solve(a, tau=0.01, iters=100_000, tol=0.05)
    assert res.iters < 100_000 and res.gap <= 0.05
    # the floor: w_min = 1/m pins uniform weights, 0.1 keeps every weight >= 0.1
    np.testing.assert_allclose(pu_solve(a, w_min=0.25).w, 0.25, atol=1e-15)
    sel = np.full((4, 6), 0.01)
    sel[:, 0] = 0.99
    sel[-1] = 1.0
    floored = pu_solve(sel, tau=1e-3, iters=5000, w_min=0.1)
    assert floored.w.min() >= 0.1 - 1e-14 and floored.w[-1] > 0.65
    assert pu_solve(sel, tau=1e-3, iters=5000).w[-1] > 0.95
    # float32, explicit eta, BLAS matvec
    r32 = pu_solve(a.astype(np.float32), iters=60)
    assert r32.w.dtype == np.float32
    np.testing.assert_allclose(r32.w, full.w, atol=1e-5)
    assert pu_solve(a, iters=10, eta=0.1).eta == 0.1
    blas = pu_solve(a, iters=60, matvec="blas")
    np.testing.assert_allclose(blas.w, full.w, atol=1e-14)
    np.testing.assert_allclose(blas.q, full.q, atol=1e-14)


def test_pu_same_bits_for_any_thread_count():
    a = np.random.default_rng(1).uniform(0, 1, (6, 100_001))
    saved = madam.get_num_threads()
    try:
        madam.set_num_threads(1)
        ref = pu_solve(a, iters=5)
        madam.set_num_threads(2)
        two = pu_solve(a, iters=5)
    finally:
        madam.set_num_threads(saved)
    np.testing.assert_array_equal(ref.w, two.w)
    np.testing.assert_array_equal(ref.q, two.q)
    assert ref.gap == two.gap and ref.value == two.value


def _pu_exp(x):
    """PU's exponential (cm_pu_exp) of the array x."""
    y = np.empty_like(x)
    _core.check_status(_core.kernel("cm_pu_exp", x.dtype)(
        _core.exec_config(), x.size, _core.pointer(x), _core.pointer(y, True)), "pu_exp")
    return y


def test_pu_float32_exp_against_numpy():
    """PU's float exponential (cmadam_amoo.h: at most 0.977 ulp) against np.exp in float64, in
    units in the last place of the float nearest the exact value, on a dense sweep of its range:
    every 509th float of [-104, 89] in bit order, every float of [-6, -5.5] (where the largest
    error lies), and the ends."""
    def bits(f):
        return int(np.float32(f).view(np.uint32))

    neg = np.arange(bits(-104), 0x80000000 - 1, -509, dtype=np.int64)
    pos = np.arange(0, bits(89) + 1, 509, dtype=np.int64)
    dense = np.arange(bits(-5.5), bits(-6) + 1, dtype=np.int64)
    x = np.concatenate([neg, pos, dense]).astype(np.uint32).view(np.float32)
    y = _pu_exp(x)
    exact = np.exp(x.astype(np.float64))
    with np.errstate(over="ignore"):
        nearest = exact.astype(np.float32)
    big = np.isinf(nearest)
    assert np.all(np.isinf(y[big]))
    err = np.abs(y[~big] - exact[~big]) / np.spacing(nearest[~big]).astype(np.float64)
    assert err.max() <= 0.977, (err.max(), x[~big][err.argmax()])
    sweep = slice(0, neg.size + pos.size)      # 99.2% of all floats are correctly rounded
    assert np.mean(y[sweep] == nearest[sweep]) > 0.99
    ends = np.array([0.0, -0.0, -104.0, -104.5, -1e30, -np.inf, 88.8, 1e30, np.inf, np.nan],
                    np.float32)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(_pu_exp(ends), np.float32(np.exp(ends.astype(np.float64))))
    xd = np.linspace(-700, 700, 1001)
    np.testing.assert_array_equal(_pu_exp(xd), [math.exp(v) for v in xd])   # float64: libm's


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"A": np.ones(3)}, ValueError, "A"),
    ({"A": np.array([[1.0, np.nan]])}, ValueError, "A"),
    ({"A": np.array([["a"]])}, TypeError, "A"),
    ({"A": np.ones((2, 2)), "tau": -1}, ValueError, "tau"),
    ({"A": np.ones((2, 2)), "iters": -1}, ValueError, "iters"),
    ({"A": np.ones((2, 2)), "eta": 0.0}, ValueError, "eta"),
    ({"A": np.ones((2, 2)), "w_min": 0.6}, ValueError, "w_min"),
    ({"A": np.ones((2, 2)), "w0": [-1, 2]}, ValueError, "w0"),
    ({"A": np.ones((2, 2)), "q0": [1, 2, 3]}, ValueError, "q0"),
    ({"A": np.ones((2, 2)), "matvec": "gpu"}, ValueError, "matvec"),
    ({"A": np.zeros((2, 2)), "tau": 0.0}, ValueError, "eta"),
])
def test_pu_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pu_solve(**kwargs)


# ============================================================================ PAMOO's weights
def _pamoo_qp(a, f, w_min):
    """argmax_{w >= w_min} 2 w^T f - w^T A w = argmin |L^T w - L^-1 f|^2, A = L L^T."""
    chol = np.linalg.cholesky(a)
    res = lsq_linear(chol.T, np.linalg.solve(chol, f), bounds=(w_min, np.inf), tol=1e-14,
                     lsmr_tol="auto", max_iter=10_000)
    return res.x


@pytest.mark.parametrize("c,seed", [(3, 0), (5, 1), (8, 2)])
def test_pamoo_weights_match_the_qp(c, seed):
    rng = np.random.default_rng(seed)
    jac = rng.standard_normal((c, 20))
    a = jac @ jac.T + 1e-4 * np.eye(c) + 0.5 * np.eye(c)
    f = rng.standard_normal(c)                         # some weights end at the floor
    lam = np.linalg.eigvalsh(a)
    w = pamoo_weights(a, f, lr=1 / (2 * lam[-1]), iters=20_000, w_min=1e-6)
    np.testing.assert_allclose(w, _pamoo_qp(a, f, 1e-6), atol=1e-8)
    assert w.min() >= 1e-6


def test_pamoo_solver():
    rng = np.random.default_rng(0)
    jac = rng.standard_normal((3, 10)) * 0.1
    f = np.array([1.0, 0.5, 0.2])
    solver = PAMOO(lr=0.5, iters=5000)
    lam, d = solver.solve(jac, f)
    a = jac @ jac.T + 1e-4 * np.eye(3)
    w = _pamoo_qp(a, f, 1e-6)
    np.testing.assert_allclose(lam * solver.scale, w, rtol=1e-6)
    np.testing.assert_allclose(d, lam @ jac, rtol=1e-12)
    nat = PAMOO(lr=0.5, iters=5000, natural_scale=True)
    lam2, d2 = nat.solve(jac, f)
    np.testing.assert_allclose(d2, w @ jac, rtol=1e-6)
    # warm start: a second call continues from the first call's w; reset forgets it
    short = PAMOO(lr=0.5, iters=2000)
    short.solve(jac, f)
    lam3, _ = short.solve(jac, f)
    np.testing.assert_allclose(lam3, lam, rtol=1e-9)
    sd = short.state_dict()
    again = PAMOO(lr=0.5, iters=2000)
    again.load_state_dict(sd)
    np.testing.assert_array_equal(again.solve(jac, f)[0], short.solve(jac, f)[0])
    # columns: only those columns' Gramian
    cols = PAMOO(columns=slice(-4, None), iters=10)
    ref = PAMOO(iters=10)
    np.testing.assert_allclose(cols.solve(jac, f)[0], ref.solve(jac[:, -4:], f)[0], rtol=1e-12)
    with pytest.raises(TypeError, match="losses"):
        PAMOO().solve(jac, None)
    with pytest.raises(ValueError, match="lr"):
        PAMOO(lr=0)


def test_pamoo_output_columns_are_the_icml_output_gradients():
    """For the MLP problems the b2 columns of the Jacobian are the loss gradients w.r.t. the
    outputs summed over the batch (what the ICML code's PAMOO uses)."""
    p = PowerLossMLP("switching", d_in=4, hidden=8, d_out=3, batch_size=6)
    x = p.initial_points(1, np.random.default_rng(0))[0]
    _, jac = p.losses_and_jacobian(x)
    r = p._residual(x, p.batch)[2]
    eps = 1e-6
    grads = np.zeros((3, 3))
    for k in range(3):   # d f / d o_{b k}, summed over b = d f / d (shift of every output k)
        e = np.zeros(3)
        e[k] = eps
        fp = np.mean(p._terms(r + e)[0] ** p.powers[:, None], 1)
        fm = np.mean(p._terms(r - e)[0] ** p.powers[:, None], 1)
        grads[:, k] = (fp - fm) / (2 * eps)
    np.testing.assert_allclose(jac[:, -3:], grads, rtol=1e-6)


# ============================================================================ CAMOO
def _train(problem, solver, steps, lr=0.05, seed=0):
    x = problem.initial_points(1, np.random.default_rng(seed))[0]
    opt = madam.SGD(x, lr=lr)
    lam = None
    for _ in range(steps):
        f, jac = problem.losses_and_jacobian(x)
        if hasattr(solver, "observe"):
            solver.observe(x)
        lam, d = solver.solve(jac, f)
        opt.step(d)
    return lam, x


@pytest.mark.parametrize("variant", ["seed", "icml"])
def test_camoo_selection_picks_the_well_conditioned_objective(variant):
    p = problems.AMOOSelection(n_obj=10, dim=10, delta=0.01)
    make = CAMOO.seed_variant if variant == "seed" else CAMOO.icml
    solver = make(p.hvps, n_samples=10)
    lam, x = _train(p, solver, 150 if variant == "seed" else 3)
    assert lam[-1] > 0.95, lam
    # the game's value is the curvature of the chosen objective, 2 (f_C = |x|^2)
    assert solver.info["value"] == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("variant", ["seed", "icml"])
def test_camoo_specification_picks_equal_weights(variant):
    p = problems.AMOOSpecification(delta=0.01)
    make = CAMOO.seed_variant if variant == "seed" else CAMOO.icml
    solver = make(p.hvps, n_samples=10)
    lam, _ = _train(p, solver, 150 if variant == "seed" else 3)
    np.testing.assert_allclose(lam, [0.5, 0.5], atol=0.02)


def test_camoo_converges_faster_than_equal_weights_on_selection():
    p = problems.AMOOSelection(n_obj=10, dim=10, delta=0.01)
    _, x_camoo = _train(p, CAMOO.icml(p.hvps, n_samples=4, pu_iters=200), 60, lr=0.2)
    _, x_ew = _train(p, LinearScalarization(np.full(10, 0.1)), 60, lr=0.2)
    assert np.linalg.norm(x_camoo) < 1e-3 * np.linalg.norm(x_ew)


def test_camoo_output_space_on_teacher_student():
    p = problems.TeacherStudent(hidden=16, batch_size=32, n_obj=4)
    solver = CAMOO.icml(**output_curvature(p))
    x = p.initial_points(1, np.random.default_rng(0))[0]
    f, jac = p.losses_and_jacobian(x)
    solver.observe(x)
    lam, _ = solver.solve(jac, f)
    assert lam[0] > 0.95                                  # H_1 = I, the others ~ e1 e1^T
    np.testing.assert_allclose(solver.hessian_diagonals, 2 * p.output_hessian_diags, rtol=1e-12)


def test_camoo_reproducible_and_state():
    p = problems.AMOOSelection(n_obj=4, dim=6)
    a = CAMOO(p.hvps, n_samples=3, seed=11)
    b = CAMOO(p.hvps, n_samples=3, seed=11)
    lam_a, _ = _train(p, a, 5)
    lam_b, _ = _train(p, b, 5)
    np.testing.assert_array_equal(lam_a, lam_b)
    sd = a.state_dict()
    c = CAMOO(p.hvps, n_samples=3, seed=11)
    c.load_state_dict(sd)
    x = np.ones(6)
    f, jac = p.losses_and_jacobian(x)
    for s in (a, c):
        s.observe(x)
    np.testing.assert_array_equal(a.solve(jac, f)[0], c.solve(jac, f)[0])
    a.reset()
    assert a.step == 0 and a.hessian_diagonals is None


def test_camoo_point_callable_and_two_argument_hvp():
    p = problems.AMOOSelection(n_obj=3, dim=4)
    x = np.ones(4)
    s = CAMOO(lambda x_, v: p.hvps(x_, v), n_samples=2, point=lambda: x, pu_iters=50)
    f, jac = p.losses_and_jacobian(x)
    lam, _ = s.solve(jac, f)
    assert lam[-1] > 0.9
    with pytest.raises(RuntimeError, match="observe"):
        CAMOO(p.hvps).solve(jac, f)
    with pytest.raises(TypeError, match="hvp"):
        CAMOO(3)
    with pytest.raises(ValueError, match="rows"):
        bad = CAMOO(lambda x_, v: p.hvps(x_, v)[:2], n_samples=1)
        bad.observe(x)
        bad.solve(jac, f)


def test_camoo_and_pamoo_under_the_runner():
    p = problems.AMOOSelection(n_obj=5, dim=5)
    res = run(p, {"camoo": lambda: CAMOO.icml(p.hvps, n_samples=2),
                  "pamoo": lambda: PAMOO(iters=50),
                  "ew": lambda: LinearScalarization(np.full(5, 0.2))},
              ("SGD", {"lr": 0.1}), seeds=[0, 1], steps=40, record_every=10)
    camoo = res.select(solver="camoo")
    assert np.all(camoo.final_lambdas[:, -1] > 0.95)
    ew = res.select(solver="ew")
    assert np.all(camoo.final_losses.sum(1) < ew.final_losses.sum(1))


@pytest.mark.parametrize("optimizer", [("SGD", {"lr": 0.1}), ("Adam", {"lr": 0.05}),
                                       ("MAdam", {"lr": 0.05})])
def test_camoo_and_pamoo_under_sgd_adam_and_madam(optimizer):
    """The solver interface is all they need: the same CAMOO/PAMOO run under each optimiser
    (MAdam calls the solver itself inside step(J, f)); CAMOO's weights are what it reports."""
    p = problems.AMOOSelection(n_obj=4, dim=6)
    res = run(p, {"camoo": lambda: CAMOO.icml(p.hvps, n_samples=2),
                  "camoo_seed": lambda: CAMOO.seed_variant(p.hvps, n_samples=4, pu_iters=20),
                  "pamoo": lambda: PAMOO(iters=50)},
              {optimizer[0]: optimizer}, seeds=[0], steps=30, record_every=10)
    assert not any(row["diverged"] for row in res.grid)
    for label in ("camoo", "camoo_seed"):
        sel = res.select(solver=label)
        assert np.all(sel.final_lambdas[:, -1] > 0.9), (label, sel.final_lambdas)
        assert np.all(np.isfinite(sel.lambdas))
    assert np.all(np.isfinite(res.select(solver="pamoo").final_losses))
    # under MAdam the runner's weights are the ones MAdam took from the solver
    if optimizer[0] == "MAdam":
        assert res.select(solver="camoo").grid[0]["optimizer_class"] == "MAdam"


def test_amoo_solvers_by_registry_name():
    """Issue 12: "pamoo" and "camoo" are registry names for the runner; "camoo" alone cannot
    supply its HVPs, and the error says how to."""
    assert madam.solvers.SOLVERS["pamoo"] is PAMOO and madam.solvers.SOLVERS["camoo"] is CAMOO
    p = problems.AMOOSelection(n_obj=3, dim=4)
    res = madam.run(p, "pamoo", "Adam", steps=5)
    assert len(res) == 1 and res.grid[0]["solver_class"] == "PAMOO"
    assert not res.grid[0]["diverged"] and np.all(np.isfinite(res.final_losses))
    np.testing.assert_allclose(res.final_lambdas.sum(1), 1.0)
    with pytest.raises(ValueError, match=r"'camoo'.*needs hvp.*CAMOO\(problem\.hvps\)"):
        madam.run(p, "camoo", "Adam", steps=5)
    res = madam.run(p, ("camoo", {"hvp": p.hvps, "n_samples": 2}), "Adam", steps=5)
    assert res.grid[0]["solver_class"] == "CAMOO" and not res.grid[0]["diverged"]
    opt = madam.MAdam(np.zeros(4), solver="pamoo")
    assert isinstance(opt.solver, PAMOO)


# ============================================================================ the ICML problem
@pytest.mark.parametrize("setup", ["switching", "selection", "approximate_optimum"])
def test_power_loss_mlp_derivatives(setup):
    p = PowerLossMLP(setup, d_in=3, hidden=8, d_out=4, batch_size=5)
    x = p.initial_points(1, np.random.default_rng(0))[0]
    f, jac = p.losses_and_jacobian(x)
    # losses by the formula
    r = p._forward(x, p.batch.inputs)[2] - p.batch.targets
    for i in range(3):
        rp = r + p.offsets[i]
        s = (rp * rp * p.output_hessian_diags[i]).sum(1)
        assert f[i] == pytest.approx(np.mean(s ** p.powers[i]), rel=1e-13)
    # Jacobian by central differences
    eps = 1e-6
    for k in range(0, p.dim, 5):
        e = np.zeros(p.dim)
        e[k] = eps
        fd = (p.losses(x + e) - p.losses(x - e)) / (2 * eps)
        np.testing.assert_allclose(jac[:, k], fd, rtol=1e-6, atol=1e-9)
    # output-space HVPs by central differences of the output gradient
    b, do = 5, 4

    def out_grad(rr):
        s, rp = p._terms(rr)
        coef = (p.powers[:, None] / b) * s ** (p.powers[:, None] - 1)
        return (coef[:, :, None] * 2 * rp * p.output_hessian_diags[:, None, :]).reshape(3, -1)

    v = np.random.default_rng(1).standard_normal(b * do)
    fd = (out_grad(r + eps * v.reshape(b, do)) - out_grad(r - eps * v.reshape(b, do))) / (2 * eps)
    np.testing.assert_allclose(p.output_hvps(x, v), fd, rtol=1e-6, atol=1e-9)
    # the per-point cache follows x (and the batch) by value
    fresh = PowerLossMLP(setup, d_in=3, hidden=8, d_out=4, batch_size=5)
    x2 = x + 0.1
    np.testing.assert_array_equal(p.output_hvps(x2, v), fresh.output_hvps(x2, v))
    other = fresh.new_batch(np.random.default_rng(5)) if not fresh.full_batch else \
        problems.Batch(p.batch.inputs + 0.5, p.batch.targets)
    np.testing.assert_array_equal(p.output_hvps(x2, v, other), fresh.output_hvps(x2, v, other))
    if setup != "selection":   # powers 1: the output Hessian does not depend on the residual
        assert not np.array_equal(p.output_hvps(x2, v, other), p.output_hvps(x2, v))
    assert p.new_batch(np.random.default_rng(0)) is None
    with pytest.raises(NotImplementedError):
        p.hvps(x, np.ones(p.dim))


def test_power_loss_mlp_switching_weights():
    """ICML's switching example: far from the teacher the quartic loss has the most curvature
    (CAMOO weights f_3), near it the quadratic one (f_1)."""
    p = PowerLossMLP("switching", d_in=5, hidden=16, d_out=3, batch_size=20)
    far = p.initial_points(1, np.random.default_rng(0))[0]
    near = far.copy()
    w1, b1, w2, b2 = p.unflatten(near)
    t1, tb1, t2, tb2 = p.unflatten(np.array(p.teacher))
    w1[:], b1[:] = t1, tb1
    w2[:], b2[:] = t2 * p.target_scale, tb2 * p.target_scale + 0.01   # outputs off by 0.01
    picks = []
    for x in (far, near):
        s = CAMOO.icml(**output_curvature(p))
        f, jac = p.losses_and_jacobian(x)
        s.observe(x)
        picks.append(int(np.argmax(s.solve(jac, f)[0])))
    assert picks == [2, 0]
    with pytest.raises(ValueError, match="setup"):
        PowerLossMLP("other")
