"""madam.solvers: the Solver contract, torchjd side by side, KKT conditions and properties,
degenerate inputs, input validation and state round trips.

Convention mapping to torchjd 0.18 (details in each class's docstring): torchjd's aggregators
return the *natural* direction J^T w; madam returns lam = w / sum(w) and d = lam @ J with
``solver.scale = sum(w)``, so torchjd's vector is compared with ``solver.scale * d``.
CAGrad is compared with ``rescale=0`` (torchjd does not rescale), Nash-MTL with the same
``max_norm``; torchjd's CAGrad and Nash-MTL need cvxpy (torchjd[cagrad,nash_mtl]) and its default
UPGrad projector needs quadprog: those comparisons are skipped where the extras are missing,
while UPGrad is always compared through torchjd's own UPGrad with an exact SciPy projector.
"""
import math
import os

import numpy as np
import pytest
from scipy.optimize import nnls

import madam.solvers as S

try:  # the oracles of test-peers; with the torch-free test extra their tests skip
    import torch
    from torchjd import aggregation as tja
    from torchjd.linalg import DualConeProjector
except ImportError as exc:
    if os.environ.get("CI"):  # CI installs test-peers: a missing oracle is a failure there
        raise
    torch = tja = None
    DualConeProjector = object
    TORCHJD_MISSING = f"torchjd oracle not installed ({exc}): pip install -e '.[test-peers]'"
else:
    TORCHJD_MISSING = ""
needs_torchjd = pytest.mark.skipif(bool(TORCHJD_MISSING), reason=TORCHJD_MISSING)


def pref_for(k):
    p = np.arange(1.0, k + 1.0)
    return p / p.sum()


# (id, factory(C) -> solver, reads loss values, lam on the simplex)
SOLVERS = [
    ("linear", lambda k: S.LinearScalarization(pref_for(k)), False, True),
    ("tchebycheff", lambda k: S.Tchebycheff(pref_for(k)), True, True),
    ("rlw", lambda k: S.RLW(seed=1), False, True),
    ("rlw-softmax", lambda k: S.RLW(seed=1, distribution="softmax-normal"), False, True),
    ("dwa", lambda k: S.DWA(), True, True),
    ("mgda", lambda k: S.MGDA(), False, True),
    ("mgda-active-set", lambda k: S.MGDA(method="active-set"), False, True),
    ("pcgrad", lambda k: S.PCGrad(seed=1), False, True),
    ("cagrad", lambda k: S.CAGrad(), False, True),
    ("imtlg", lambda k: S.IMTLG(), False, False),
    ("nashmtl", lambda k: S.NashMTL(), False, True),
    ("upgrad", lambda k: S.UPGrad(), False, True),
    ("epo", lambda k: S.EPO(pref_for(k)), True, True),
]
IDS = [s[0] for s in SOLVERS]
BY_ID = {s[0]: s for s in SOLVERS}
DETERMINISTIC = ["linear", "tchebycheff", "mgda", "mgda-active-set", "cagrad", "imtlg", "nashmtl",
                 "upgrad", "epo"]
PREFERENCE_BASED = {"linear", "tchebycheff", "epo"}


def problem(seed, k, n, dtype=np.float64, spread=True):
    rng = np.random.default_rng(seed)
    jac = rng.standard_normal((k, n))
    if spread:
        jac *= np.exp(rng.uniform(-1.0, 1.0, size=(k, 1)))
    losses = np.exp(rng.normal(size=k))
    return jac.astype(dtype), losses


def solve_n(solver, jac, losses, times=3):
    """Call solve a few times (DWA needs two calls of history before it adapts)."""
    out = None
    for t in range(times):
        out = solver.solve(jac, losses * (1.0 + 0.1 * t))
    return out


def natural(solver, d):
    return solver.scale * np.asarray(d, dtype=np.float64)


def rel_dev(a, b, ref_scale):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) / ref_scale


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("sid", IDS)
def test_contract(sid, k, dtype):
    _, factory, _, on_simplex = BY_ID[sid]
    jac, losses = problem(k, k, 9, dtype)
    solver = factory(k)
    lam, d = solve_n(solver, jac, losses)
    assert lam.shape == (k,) and lam.dtype == np.float64 and np.all(np.isfinite(lam))
    assert d.shape == (9,) and d.dtype == dtype
    lam_d = lam.astype(dtype)
    bound = 4 * k * np.finfo(dtype).eps * (np.abs(lam_d) @ np.abs(jac))  # summation order only
    assert np.all(np.abs(d - lam_d @ jac) <= bound)                      # d = lam @ J
    assert lam.sum() == pytest.approx(1.0, abs=1e-12)
    if on_simplex:
        assert np.all(lam >= 0.0)
    assert math.isfinite(solver.scale) and solver.scale >= 0.0
    assert isinstance(solver.info, dict)
    assert isinstance(repr(solver), str) and solver.name in S.SOLVERS


@pytest.mark.parametrize("sid", DETERMINISTIC + ["pcgrad"])
def test_float32_agrees_with_float64(sid):
    _, factory, _, _ = BY_ID[sid]
    jac, losses = problem(7, 4, 12)
    lam64, d64 = factory(4).solve(jac, losses)
    lam32, d32 = factory(4).solve(jac.astype(np.float32), losses)
    np.testing.assert_allclose(lam32, lam64, atol=2e-5)
    np.testing.assert_allclose(d32, d64, atol=1e-4 * np.abs(d64).max())


def test_input_is_not_modified_and_noncontiguous_is_accepted():
    jac, losses = problem(3, 3, 8)
    keep = jac.copy()
    fortran = np.asfortranarray(jac)
    lam, d = S.UPGrad().solve(fortran, losses)
    np.testing.assert_array_equal(fortran, keep)
    lam2, d2 = S.UPGrad().solve(jac, losses)
    np.testing.assert_array_equal(lam, lam2)
    np.testing.assert_array_equal(d, d2)
    strided = np.ascontiguousarray(np.repeat(jac, 2, axis=1))[:, ::2]
    np.testing.assert_array_equal(S.MGDA().solve(strided)[1], S.MGDA().solve(jac)[1])


# ----------------------------------------------------------------------------- torchjd side by side
def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


class NNLSProjector(DualConeProjector):
    """Exact dual-cone projection weights for torchjd's UPGrad, by SciPy's NNLS:
    v = argmin_{v >= u} v^T G v = u + nnls(L^T, -L^T u) with G = L L^T (G positive definite)."""

    def __call__(self, U, G):
        gram = G.detach().numpy().astype(np.float64)
        chol = np.linalg.cholesky(gram)
        rows = U.detach().numpy().astype(np.float64).reshape(-1, gram.shape[0])
        out = np.stack([u + nnls(chol.T, -chol.T @ u)[0] for u in rows]).reshape(U.shape)
        return torch.from_numpy(out)


TORCHJD_SEEDS = range(12)


@needs_torchjd
@pytest.mark.parametrize("seed", TORCHJD_SEEDS)
def test_mgda_vs_torchjd(seed):
    """Same convention (lam on the simplex, d the min-norm point). C = 2: torchjd's first
    Frank-Wolfe step is exact, so they agree to rounding; C > 2: torchjd stops plain Frank-Wolfe at
    a step < 1e-3, madam solves exactly: madam's norm is never larger, and d agrees only to a few
    percent of max |g_ij| (4% seen)."""
    k = 2 if seed % 3 == 0 else 3 + seed % 4
    jac, _ = problem(seed, k, k + 4)
    lam, d = S.MGDA().solve(jac)
    w_t = tja.MGDAWeighting()(_t(jac @ jac.T)).numpy()
    d_t = tja.MGDA()(_t(jac)).numpy()
    np.testing.assert_allclose(d_t, w_t @ jac, atol=1e-12)
    gmax = np.abs(jac).max()
    if k == 2:
        np.testing.assert_allclose(lam, w_t, atol=1e-12)
        np.testing.assert_allclose(d, d_t, atol=1e-12 * gmax)
    else:
        assert d @ d <= d_t @ d_t * (1 + 1e-12)
        assert rel_dev(d, d_t, gmax) < 0.1


@needs_torchjd
@pytest.mark.parametrize("seed", TORCHJD_SEEDS)
def test_pcgrad_vs_torchjd_with_the_same_task_orders(seed):
    """torchjd draws one torch.randperm per task: replay those orders through madam's
    pcgrad_weights; torchjd's vector is the natural direction (the sum of projected gradients)."""
    k = 2 + seed % 5
    jac, _ = problem(seed, k, 6)
    gram = jac @ jac.T
    torch.manual_seed(seed)
    perms = [torch.randperm(k).numpy() for _ in range(k)]
    torch.manual_seed(seed)
    w_t = tja.PCGradWeighting()(_t(gram)).numpy()
    w = S.pcgrad_weights(gram, perms)
    np.testing.assert_allclose(w, w_t, rtol=1e-12, atol=1e-12)
    if k == 2:  # one order only: the solver itself must agree
        solver = S.PCGrad(seed=seed)
        lam, d = solver.solve(jac)
        np.testing.assert_allclose(natural(solver, d), tja.PCGrad()(_t(jac)).numpy(),
                                   atol=1e-12 * np.abs(jac).max())


@needs_torchjd
@pytest.mark.parametrize("seed", TORCHJD_SEEDS)
def test_imtlg_vs_torchjd(seed):
    k = 2 + seed % 5
    n = k + 3 if seed % 4 else max(k - 1, 1)   # every fourth Jacobian is rank-deficient
    jac, _ = problem(seed, k, n)
    solver = S.IMTLG()
    lam, d = solver.solve(jac)
    w_t = tja.IMTLGWeighting()(_t(jac @ jac.T)).numpy()
    d_t = tja.IMTLG()(_t(jac)).numpy()
    tol = 1e-10 if n > k else 1e-6
    np.testing.assert_allclose(lam, w_t, atol=tol * np.abs(w_t).max())
    np.testing.assert_allclose(d, d_t, atol=tol * np.abs(jac).max() * np.abs(w_t).max())


@needs_torchjd
@pytest.mark.parametrize("seed", TORCHJD_SEEDS)
def test_upgrad_vs_torchjd_with_an_exact_projector(seed):
    k = 1 + seed % 6
    jac, _ = problem(seed, k, k + 3)
    solver = S.UPGrad()
    lam, d = solver.solve(jac)
    w_t = tja.UPGradWeighting(projector=NNLSProjector())(_t(jac @ jac.T)).numpy()
    d_t = tja.UPGrad(projector=NNLSProjector())(_t(jac)).numpy()
    np.testing.assert_allclose(solver.scale * lam, w_t, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(natural(solver, d), d_t, atol=1e-9 * np.abs(d_t).max())

@needs_torchjd
def test_upgrad_vs_torchjd_quadprog_projector():
    pytest.importorskip("quadprog")
    pytest.importorskip("qpsolvers")
    from torchjd.linalg import QuadprogProjector

    for seed in TORCHJD_SEEDS:
        k = 2 + seed % 5
        jac, _ = problem(seed, k, k + 3)
        solver = S.UPGrad()
        lam, d = solver.solve(jac)
        exact = tja.UPGrad(projector=QuadprogProjector(reg_eps=0.0))(_t(jac)).numpy()
        np.testing.assert_allclose(natural(solver, d), exact, atol=1e-8 * np.abs(exact).max())
        default = tja.UPGrad()(_t(jac)).numpy()   # reg_eps = 1e-4 on the normalised Gramian
        assert rel_dev(natural(solver, d), default, np.abs(default).max()) < 0.5


@needs_torchjd
@pytest.mark.parametrize("c", [0.1, 0.5, 0.9])
def test_cagrad_vs_torchjd(c):
    pytest.importorskip("cvxpy")
    pytest.importorskip("clarabel")
    for seed in TORCHJD_SEEDS:
        k = 1 + seed % 6
        jac, _ = problem(seed, k, k + 3)
        solver = S.CAGrad(c=c, rescale=0)
        lam, d = solver.solve(jac)
        d_t = tja.CAGrad(c=c)(_t(jac)).numpy()
        # torchjd solves the inner problem with Clarabel (interior point, ~1e-8 accuracy)
        assert rel_dev(natural(solver, d), d_t, np.abs(d_t).max()) < 1e-3

@needs_torchjd
def test_nashmtl_vs_torchjd():
    """torchjd (the official CCP + ECOS) sometimes fails silently and returns its previous
    alpha (ones); compare where its fixed-point residual shows it converged."""
    pytest.importorskip("cvxpy")
    pytest.importorskip("ecos")
    compared = 0
    for seed in TORCHJD_SEEDS:
        k = 2 + seed % 5
        jac, _ = problem(seed, k, k + 3)
        gram = jac @ jac.T
        for max_norm in (0.0, 1.0):
            solver = S.NashMTL(max_norm=max_norm)
            lam, d = solver.solve(jac)
            agg = tja.NashMTL(n_tasks=k, max_norm=max_norm)
            alpha_t = agg.weighting(_t(jac)).numpy()
            d_t = alpha_t @ jac
            # undo torchjd's clipping (|J^T alpha| = sqrt(C) at the solution) to check convergence
            unclipped = alpha_t * math.sqrt(k) / np.linalg.norm(d_t) if max_norm else alpha_t
            if np.max(np.abs(unclipped * (gram @ unclipped) - 1.0)) > 1e-6:
                continue
            np.testing.assert_allclose(solver.scale * lam, alpha_t, rtol=1e-5)
            np.testing.assert_allclose(natural(solver, d), d_t, atol=1e-5 * np.abs(d_t).max())
            compared += 1
    assert compared >= len(TORCHJD_SEEDS)


# ----------------------------------------------------------------------------- KKT and properties
@pytest.mark.parametrize("method", ["frank-wolfe", "active-set"])
@pytest.mark.parametrize("seed", range(10))
def test_mgda_kkt_and_common_descent(seed, method):
    k = 3 + seed % 5
    n = k + 2 if seed % 2 else max(k - 2, 1)
    jac, _ = problem(seed, k, n)
    lam, d = S.MGDA(method=method).solve(jac)
    gram = jac @ jac.T
    scale = np.diag(gram).max()
    gl = gram @ lam
    # KKT of min lam^T G lam on the simplex: (G lam)_i >= lam^T G lam, equality on the support
    assert np.all(gl >= lam @ gl - 1e-12 * scale)
    assert np.all(np.abs(gl[lam > 1e-9] - lam @ gl) <= 1e-12 * scale)
    # non-conflicting: g_i^T d >= |d|^2 >= 0
    assert np.all(jac @ d >= d @ d - 1e-12 * scale)


@pytest.mark.parametrize("seed", range(10))
def test_upgrad_is_non_conflicting_and_projects(seed):
    k = 2 + seed % 5
    n = k + 2 if seed % 2 else max(k - 1, 1)
    jac, _ = problem(seed, k, n)
    solver = S.UPGrad()
    lam, d = solver.solve(jac)
    scale = np.abs(jac @ jac.T).max()
    assert np.all(jac @ d >= -1e-10 * scale)
    # each projection weight v_i >= e_i / C, so w >= 1/C and scale >= 1
    assert np.all(solver.scale * lam >= 1.0 / k - 1e-12) and solver.scale >= 1.0 - 1e-12


@pytest.mark.parametrize("seed", range(8))
def test_imtlg_equal_projections(seed):
    k = 2 + seed % 4
    jac, _ = problem(seed, k, k + 3)
    lam, d = S.IMTLG().solve(jac)
    proj = jac @ d / np.linalg.norm(jac, axis=1)
    np.testing.assert_allclose(proj, proj[0], rtol=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_nashmtl_bargaining_solution_and_scale_invariance(seed):
    k = 2 + seed % 4
    jac, _ = problem(seed, k, k + 3)
    solver = S.NashMTL(max_norm=0.0)
    lam, d = solver.solve(jac)
    alpha = solver.scale * lam
    nat = natural(solver, d)
    np.testing.assert_allclose(alpha * (jac @ nat), 1.0, atol=1e-10)     # g_i^T d = 1/alpha_i
    assert np.linalg.norm(nat) == pytest.approx(math.sqrt(k), rel=1e-10)
    # rescaling each objective leaves Nash-MTL's natural direction unchanged
    s = np.exp(np.random.default_rng(seed).uniform(-2, 2, size=(k, 1)))
    other = S.NashMTL(max_norm=0.0)
    _, d2 = other.solve(jac * s)
    np.testing.assert_allclose(natural(other, d2), nat, atol=1e-9 * np.abs(nat).max())
    # clipping: max_norm = 1 scales the natural direction to norm 1 (sqrt(C) > 1)
    clipped = S.NashMTL(max_norm=1.0)
    _, d3 = clipped.solve(jac)
    assert np.linalg.norm(natural(clipped, d3)) == pytest.approx(1.0, rel=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_cagrad_certificates_and_options(seed):
    k = 2 + seed % 4
    jac, _ = problem(seed, k, k + 3)
    g0 = jac.mean(axis=0)
    for c in (0.2, 0.5):
        solver = S.CAGrad(c=c, rescale=0)
        lam, d = solver.solve(jac)
        nat = natural(solver, d)
        assert np.linalg.norm(nat - g0) == pytest.approx(c * np.linalg.norm(g0), rel=1e-9)
        # the natural direction maximises min_i g_i^T x over the ball: no ball point does better
        rng = np.random.default_rng(seed)
        dirs = rng.standard_normal((200, jac.shape[1]))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        ball = g0 + c * np.linalg.norm(g0) * dirs
        assert (jac @ nat).min() >= (ball @ jac.T).min(axis=1).max() - 1e-12
        for rescale, factor in ((1, 1 / (1 + c * c)), (2, 1 / (1 + c))):
            other = S.CAGrad(c=c, rescale=rescale)
            lam2, _ = other.solve(jac)
            np.testing.assert_array_equal(lam2, lam)
            assert other.scale == pytest.approx(solver.scale * factor, rel=1e-14)
    mean_solver = S.CAGrad(c=0.0, rescale=0)
    lam, d = mean_solver.solve(jac)
    np.testing.assert_allclose(lam, np.full(k, 1 / k))
    assert mean_solver.scale == 1.0


PERMUTATION_INVARIANT = ["linear", "tchebycheff", "mgda", "mgda-active-set", "cagrad", "imtlg",
                         "nashmtl", "upgrad", "epo", "dwa"]


@pytest.mark.parametrize("sid", PERMUTATION_INVARIANT)
@pytest.mark.parametrize("seed", range(3))
def test_permutation_invariance(sid, seed):
    k = 4
    jac, losses = problem(seed, k, 7)
    perm = np.random.default_rng(seed).permutation(k)
    pref = pref_for(k)
    if sid in PREFERENCE_BASED:
        cls = {"linear": S.LinearScalarization, "tchebycheff": S.Tchebycheff, "epo": S.EPO}[sid]
        a, b = cls(pref), cls(pref[perm])
    else:
        a, b = BY_ID[sid][1](k), BY_ID[sid][1](k)
    lam, d = solve_n(a, jac, losses)
    lam_p, d_p = solve_n(b, jac[perm], losses[perm])
    np.testing.assert_allclose(lam_p, lam[perm], atol=1e-10)
    np.testing.assert_allclose(d_p, d, atol=1e-10 * np.abs(jac).max())


SCALE_INVARIANT_WEIGHTS = ["mgda", "mgda-active-set", "pcgrad", "cagrad", "imtlg", "nashmtl",
                           "upgrad", "epo", "linear", "rlw"]


@pytest.mark.parametrize("sid", SCALE_INVARIANT_WEIGHTS)
def test_scaling_the_jacobian(sid):
    """J -> s J leaves the weights unchanged and scales d by s; Nash-MTL's scale goes as 1/s (its
    natural direction does not change), the others' scale is unchanged."""
    k = 3
    jac, losses = problem(11, k, 8)
    a, b = BY_ID[sid][1](k), BY_ID[sid][1](k)
    if sid == "nashmtl":
        a, b = S.NashMTL(max_norm=0.0), S.NashMTL(max_norm=0.0)
    lam, d = a.solve(jac, losses)
    for s in (1e-3, 7.0):
        lam_s, d_s = b.solve(jac * s, losses)
        np.testing.assert_allclose(lam_s, lam, atol=1e-10)
        np.testing.assert_allclose(d_s, s * d, atol=1e-10 * s * np.abs(d).max())
        expected = a.scale / s if sid == "nashmtl" else a.scale
        assert b.scale == pytest.approx(expected, rel=1e-9)
        b.reset()


# ----------------------------------------------------------------------------- weighting methods
def test_linear_scalarization():
    jac, losses = problem(0, 3, 5)
    pref = np.array([0.2, 0.3, 0.5])
    solver = S.LinearScalarization(pref)
    lam, d = solver.solve(jac, None)
    np.testing.assert_array_equal(lam, pref)
    np.testing.assert_allclose(d, pref @ jac)
    assert solver.scale == 1.0


def test_tchebycheff_subgradient_ties_and_ideal():
    jac, _ = problem(0, 3, 5)
    pref = np.array([0.2, 0.3, 0.5])
    solver = S.Tchebycheff(pref)
    lam, d = solver.solve(jac, np.array([1.0, 2.0, 1.0]))          # values 0.2, 0.6, 0.5
    np.testing.assert_array_equal(lam, [0.0, 1.0, 0.0])
    assert solver.scale == pytest.approx(0.3)
    np.testing.assert_allclose(natural(solver, d), 0.3 * jac[1])
    tie_pref = np.array([0.25, 0.25, 0.5])
    tied = S.Tchebycheff(tie_pref)
    lam, d = tied.solve(jac, np.array([2.0, 2.0, 1.0]))            # 0.5 each: a three-way tie
    np.testing.assert_allclose(lam, tie_pref, rtol=1e-15)           # w = pref / 3, lam = pref
    assert tied.scale == pytest.approx(1.0 / 3.0, rel=1e-15)
    shifted = S.Tchebycheff(pref, ideal=[1.0, 2.0, 0.0])
    lam, _ = shifted.solve(jac, np.array([1.0, 2.0, 1.0]))          # 0, 0, 0.5
    np.testing.assert_array_equal(lam, [0.0, 0.0, 1.0])
    zero = S.Tchebycheff([1.0, 0.0])
    lam, d = zero.solve(jac[:2], np.array([-1.0, 5.0]))             # values -1, 0: max has pref 0
    np.testing.assert_array_equal(lam, [0.0, 1.0])
    assert zero.scale == 0.0


def test_rlw_distribution_seed_and_reset():
    jac, _ = problem(0, 4, 5)
    a, b = S.RLW(seed=5), S.RLW(seed=5)
    draws = np.array([a.solve(jac)[0] for _ in range(4000)])
    np.testing.assert_array_equal(draws[:3], [b.solve(jac)[0] for _ in range(3)])
    assert np.all(draws >= 0) and np.allclose(draws.sum(axis=1), 1.0)
    np.testing.assert_allclose(draws.mean(axis=0), 0.25, atol=0.01)   # Dirichlet(1): mean 1/C
    assert draws.var(axis=0).mean() == pytest.approx(3 / 80, rel=0.1)  # (C-1)/(C^2 (C+1))
    a.reset()
    np.testing.assert_array_equal(a.solve(jac)[0], draws[0])
    soft = S.RLW(seed=3, distribution="softmax-normal")
    z = np.random.Generator(np.random.PCG64(3)).standard_normal(4)
    np.testing.assert_allclose(soft.solve(jac)[0], np.exp(z) / np.exp(z).sum(), rtol=1e-14)
    concentrated = np.array([S.RLW(seed=s, alpha=1e3).solve(jac)[0] for s in range(20)])
    np.testing.assert_allclose(concentrated, 0.25, atol=0.03)


def test_dwa_follows_the_paper():
    jac, _ = problem(0, 3, 5)
    solver = S.DWA(temperature=2.0)
    history = [np.array([3.0, 2.0, 1.0]), np.array([2.0, 2.0, 1.5]), np.array([1.0, 1.9, 1.0]),
               np.array([0.5, 1.0, 1.0])]
    lams = [solver.solve(jac, L)[0] for L in history]
    np.testing.assert_allclose(lams[0], 1 / 3)
    np.testing.assert_allclose(lams[1], 1 / 3)
    for t in (2, 3):
        z = history[t - 1] / history[t - 2] / 2.0
        np.testing.assert_allclose(lams[t], np.exp(z) / np.exp(z).sum(), rtol=1e-14)
    assert solver.scale == 3.0   # the paper's weights sum to C
    with pytest.raises(ValueError, match="reset"):
        solver.solve(jac[:2], np.ones(2))


def test_epo_reaches_the_preference_ray():
    """Two quadratics in R^2 with minima a_1, a_2: EPO's descent ends on r_1 l_1 = r_2 l_2 (to
    within its non-uniformity threshold eps: KL(l_hat | uniform) <= eps)."""
    anchors = np.array([[1.0, 0.0], [0.0, 1.0]])
    for r in ([0.5, 0.5], [0.3, 0.7], [0.8, 0.2]):
        r = np.array(r)
        solver = S.EPO(r, eps=1e-9)
        x = np.array([2.0, -1.5])
        for _ in range(1500):
            losses = np.sum((x - anchors) ** 2, axis=1) + 0.05
            lam, d = solver.solve(2 * (x - anchors), losses)
            x = x - 0.05 * d
        losses = np.sum((x - anchors) ** 2, axis=1) + 0.05
        rl = r * losses
        assert rl[0] == pytest.approx(rl[1], rel=1e-3)
        assert np.sum(x) == pytest.approx(1.0, abs=1e-3)   # on the Pareto set (the segment)


def test_epo_descent_mode_is_non_conflicting():
    jac, _ = problem(2, 4, 9)
    solver = S.EPO(np.full(4, 0.25))
    lam, d = solver.solve(jac, np.ones(4))          # balanced losses: descent mode
    assert solver.info["mode"] == "descent"
    assert np.all(jac @ d >= -1e-10 * np.abs(jac).max() ** 2)


# ----------------------------------------------------------------------------- degenerate input
@pytest.mark.parametrize("sid", IDS)
@pytest.mark.parametrize("k", [2, 3])
def test_identical_gradients(sid, k):
    g = np.random.default_rng(0).standard_normal(6)
    jac = np.tile(g, (k, 1))
    solver = BY_ID[sid][1](k)
    lam, d = solve_n(solver, jac, np.ones(k))
    np.testing.assert_allclose(d, g, rtol=1e-12, atol=1e-12)     # any sum-1 combination is g
    if sid in ("mgda", "mgda-active-set", "upgrad", "pcgrad", "nashmtl", "imtlg", "dwa"):
        np.testing.assert_allclose(lam, np.full(k, 1 / k), atol=1e-12)


@pytest.mark.parametrize("sid", IDS)
def test_zero_jacobian(sid):
    k = 3
    solver = BY_ID[sid][1](k)
    lam, d = solve_n(solver, np.zeros((k, 4)), np.ones(k))
    assert np.all(np.isfinite(lam))
    np.testing.assert_array_equal(d, 0.0)
    if sid == "imtlg":
        np.testing.assert_array_equal(lam, 0.0)
        assert solver.scale == 0.0
    else:
        assert lam.sum() == pytest.approx(1.0)
    if sid == "nashmtl":
        assert solver.scale == 0.0


@pytest.mark.parametrize("sid", IDS)
def test_one_zero_gradient(sid):
    jac, losses = problem(4, 3, 5)
    jac[1] = 0.0
    solver = BY_ID[sid][1](3)
    lam, d = solve_n(solver, jac, losses)
    assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d))
    if sid.startswith("mgda"):
        np.testing.assert_allclose(lam, [0.0, 1.0, 0.0], atol=1e-15)   # the zero gradient
        np.testing.assert_allclose(d, 0.0, atol=1e-15)
    if sid == "nashmtl":                                     # no bargaining solution
        assert solver.scale == 0.0
        np.testing.assert_allclose(d, 0.0, atol=1e-12)


@pytest.mark.parametrize("sid", IDS)
def test_opposite_gradients(sid):
    g = np.array([1.0, -2.0, 0.5])
    jac = np.stack([g, -g])
    solver = BY_ID[sid][1](2)
    lam, d = solve_n(solver, jac, np.ones(2))
    assert np.all(np.isfinite(lam))
    if sid in ("mgda", "mgda-active-set", "upgrad", "cagrad", "nashmtl"):
        np.testing.assert_allclose(lam, [0.5, 0.5], atol=1e-12)
        np.testing.assert_allclose(d, 0.0, atol=1e-12)
    if sid in ("nashmtl", "imtlg"):
        assert solver.scale == 0.0


@pytest.mark.parametrize("sid", IDS)
def test_single_objective(sid):
    jac, losses = problem(1, 1, 6)
    solver = BY_ID[sid][1](1)
    lam, d = solve_n(solver, jac, losses)
    np.testing.assert_array_equal(lam, [1.0])
    np.testing.assert_array_equal(d, jac[0])


def test_single_objective_natural_scales():
    g = np.array([[3.0, 4.0]])
    solver = S.NashMTL(max_norm=0.0)
    solver.solve(g)
    assert solver.scale == pytest.approx(1 / 5)          # alpha |g|^2 = 1/alpha
    cag = S.CAGrad(c=0.5, rescale=0)
    cag.solve(g)
    assert cag.scale == pytest.approx(1.5)                # d = g + c |g| g/|g|


@pytest.mark.parametrize("sid", IDS)
def test_nan_loss_policy(sid):
    """Solvers that read the losses raise ValueError naming them; the others ignore the values
    (and accept losses=None), giving the same result as with finite losses."""
    _, factory, reads, _ = BY_ID[sid]
    jac, losses = problem(5, 3, 4)
    bad = losses.copy()
    bad[1] = np.nan
    if reads:
        with pytest.raises(ValueError, match="losses"):
            factory(3).solve(jac, bad)
        with pytest.raises(TypeError, match="losses"):
            factory(3).solve(jac, None)
    else:
        lam_bad, d_bad = factory(3).solve(jac, bad)
        lam, d = factory(3).solve(jac, losses)
        lam_none, _ = factory(3).solve(jac, None)
        np.testing.assert_array_equal(lam_bad, lam)
        np.testing.assert_array_equal(lam_none, lam)
        np.testing.assert_array_equal(d_bad, d)


@pytest.mark.parametrize("sid", ["dwa", "epo"])
def test_nonpositive_losses_rejected_where_logs_or_ratios_are_taken(sid):
    jac, _ = problem(5, 3, 4)
    for losses in ([1.0, 0.0, 2.0], [1.0, -1.0, 2.0]):
        with pytest.raises(ValueError, match="losses"):
            BY_ID[sid][1](3).solve(jac, np.array(losses))
    S.Tchebycheff(pref_for(3)).solve(jac, np.array([1.0, -1.0, 2.0]))   # fine there


# ----------------------------------------------------------------------------- validation
BAD_JACOBIANS = [
    ("list", [[1.0, 2.0]], TypeError),
    ("int", np.ones((2, 3), dtype=np.int64), TypeError),
    ("f16", np.ones((2, 3), dtype=np.float16), TypeError),
    ("1-D", np.ones(3), ValueError),
    ("3-D", np.ones((2, 3, 1)), ValueError),
    ("no rows", np.ones((0, 3)), ValueError),
    ("no cols", np.ones((2, 0)), ValueError),
    ("nan", np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError),
    ("inf", np.array([[1.0, np.inf], [0.0, 1.0]], dtype=np.float32), ValueError),
]


@pytest.mark.parametrize("sid", IDS)
@pytest.mark.parametrize("name,jac,exc", BAD_JACOBIANS, ids=[b[0] for b in BAD_JACOBIANS])
def test_bad_jacobian(sid, name, jac, exc):
    with pytest.raises(exc, match="jacobian"):
        BY_ID[sid][1](2).solve(jac, np.ones(2))


@pytest.mark.parametrize("sid", IDS)
def test_bad_losses_shape(sid):
    jac, _ = problem(0, 2, 3)
    solver = BY_ID[sid][1](2)
    with pytest.raises(ValueError, match="losses"):
        solver.solve(jac, np.ones(3))
    with pytest.raises(ValueError, match="losses"):
        solver.solve(jac, np.ones((2, 1)))
    with pytest.raises(TypeError, match="losses"):
        solver.solve(jac, np.array(["a", "b"]))


@pytest.mark.parametrize("cls", [S.LinearScalarization, S.Tchebycheff, S.EPO])
def test_bad_preference(cls):
    for bad, exc in (([0.5, 0.6], ValueError), ([1.5, -0.5], ValueError),
                     ([np.nan, 1.0], ValueError), ([], ValueError), ([[0.5, 0.5]], ValueError),
                     ("ab", TypeError)):
        with pytest.raises(exc, match="preference"):
            cls(bad)
    solver = cls([0.5, 0.5])
    jac, _ = problem(0, 3, 3)
    with pytest.raises(ValueError, match="preference"):
        solver.solve(jac, np.ones(3))


def test_epo_needs_positive_preference_and_upgrad_validates_its_own():
    with pytest.raises(ValueError, match="preference"):
        S.EPO([1.0, 0.0])
    with pytest.raises(ValueError, match="preference"):
        S.UPGrad(preference=[0.2, 0.2])
    with pytest.raises(ValueError, match="preference"):
        S.UPGrad(preference=[0.5, 0.5]).solve(np.ones((3, 2)))
    with pytest.raises(ValueError, match="ideal"):
        S.Tchebycheff([0.5, 0.5], ideal=[0.0])
    with pytest.raises(ValueError, match="ideal"):
        S.Tchebycheff([0.5, 0.5], ideal=[0.0, np.inf])


BAD_HYPER = [
    (lambda: S.DWA(temperature=0.0), ValueError, "temperature"),
    (lambda: S.DWA(temperature="2"), TypeError, "temperature"),
    (lambda: S.CAGrad(c=-0.1), ValueError, "c"),
    (lambda: S.CAGrad(rescale=3), ValueError, "rescale"),
    (lambda: S.RLW(seed=-1), ValueError, "seed"),
    (lambda: S.RLW(seed=1.5), TypeError, "seed"),
    (lambda: S.RLW(alpha=0.0), ValueError, "alpha"),
    (lambda: S.RLW(distribution="gamma"), ValueError, "distribution"),
    (lambda: S.PCGrad(seed=True), TypeError, "seed"),
    (lambda: S.MGDA(method="pgd"), ValueError, "method"),
    (lambda: S.MGDA(tol=0.0), ValueError, "tol"),
    (lambda: S.MGDA(max_iter=0), ValueError, "max_iter"),
    (lambda: S.NashMTL(max_norm=-1.0), ValueError, "max_norm"),
    (lambda: S.NashMTL(update_weights_every=0), ValueError, "update_weights_every"),
    (lambda: S.IMTLG(rtol=-1.0), ValueError, "rtol"),
    (lambda: S.EPO([0.5, 0.5], eps=-1.0), ValueError, "eps"),
    (lambda: S.EPO([0.5, 0.5], relax=1), TypeError, "relax"),
]


@pytest.mark.parametrize("make,exc,name", BAD_HYPER,
                         ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_HYPER)])
def test_bad_hyperparameters(make, exc, name):
    with pytest.raises(exc, match=name):
        make()


def test_hyperparameters_are_validated_settable_attributes():
    jac, losses = problem(0, 2, 3)
    solver = S.LinearScalarization([0.5, 0.5])
    solver.preference = [0.25, 0.75]                 # e.g. a preference-conditioned run
    np.testing.assert_array_equal(solver.solve(jac)[0], [0.25, 0.75])
    with pytest.raises(ValueError, match="preference"):
        solver.preference = [0.5, 0.6]
    dwa = S.DWA()
    with pytest.raises(ValueError, match="temperature"):
        dwa.temperature = -1.0
    assert dwa.temperature == 2.0
    cag = S.CAGrad()
    with pytest.raises(ValueError, match="rescale"):
        cag.rescale = True
    nash = S.NashMTL(max_norm=None)
    assert nash.max_norm == 0.0
    tch = S.Tchebycheff([0.5, 0.5])
    tch.ideal = [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="ideal"):
        tch.solve(jac, losses)


def test_failed_solve_changes_no_state():
    jac, losses = problem(0, 3, 4)
    solver = S.DWA()
    solver.solve(jac, losses)
    before = solver.state_dict()
    with pytest.raises(ValueError):
        solver.solve(jac, np.array([1.0, np.nan, 1.0]))
    after = solver.state_dict()
    np.testing.assert_array_equal(before["history"], after["history"])


# ----------------------------------------------------------------------------- state
STATEFUL = ["rlw", "pcgrad", "dwa", "nashmtl"]


@pytest.mark.parametrize("sid", IDS)
def test_state_round_trip(sid, tmp_path):
    k = 3
    factory = BY_ID[sid][1]
    jac, losses = problem(9, k, 6)
    rng = np.random.default_rng(0)
    calls = [(jac + 0.1 * rng.standard_normal(jac.shape), losses * (1 + 0.1 * i)) for i in range(6)]
    a = factory(k)
    for J, L in calls[:3]:
        a.solve(J, L)
    sd = a.state_dict()
    assert sd["solver"] == type(a).__name__ and sd["format"] == 1
    np.savez(tmp_path / "sd.npz", **sd)
    expected = [a.solve(J, L) for J, L in calls[3:]]
    for source in (sd, dict(np.load(tmp_path / "sd.npz"))):
        b = factory(k)
        b.load_state_dict(source)
        for (J, L), (lam, d) in zip(calls[3:], expected):
            lam2, d2 = b.solve(J, L)
            np.testing.assert_array_equal(lam2, lam)
            np.testing.assert_array_equal(d2, d)
    # reset: behaves like a fresh solver
    fresh = factory(k)
    a.reset()
    for J, L in calls:
        np.testing.assert_array_equal(a.solve(J, L)[0], fresh.solve(J, L)[0])


@pytest.mark.parametrize("sid", STATEFUL)
def test_state_dict_errors(sid):
    solver = BY_ID[sid][1](3)
    sd = solver.state_dict()
    with pytest.raises(ValueError, match="solver"):
        solver.load_state_dict({**sd, "solver": "MGDA"})
    with pytest.raises(ValueError, match="format"):
        solver.load_state_dict({**sd, "format": 99})
    key = next(k for k in sd if k not in ("solver", "format"))
    broken = dict(sd)
    del broken[key]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        solver.load_state_dict(broken)


def test_nashmtl_warm_start_and_update_every():
    jac, _ = problem(3, 4, 8)
    solver = S.NashMTL(max_norm=0.0)
    solver.solve(jac)
    cold = solver.info["iterations"]
    solver.solve(jac * 1.01)
    assert solver.info["iterations"] < cold
    lazy = S.NashMTL(max_norm=0.0, update_weights_every=3)
    lam0, _ = lazy.solve(jac)
    lam1, _ = lazy.solve(jac * np.array([[1.0], [2.0], [1.0], [1.0]]))
    np.testing.assert_array_equal(lam1, lam0)                 # reused alpha
    assert lazy.info["reused"]
    lazy.solve(jac)
    lam3, _ = lazy.solve(jac * np.array([[1.0], [2.0], [1.0], [1.0]]))
    assert not lazy.info["reused"] and not np.allclose(lam3, lam0)


# ----------------------------------------------------------------------------- hard inner problems
def _hard_jacobians():
    """Near-colinear float32 rows (Gramian rounding leaves negative eigenvalues), rows scaled over
    e^+-6 with C > n (singular, badly scaled), and the float64 near-colinear case."""
    rng = np.random.default_rng(123)
    out = []
    for k, n in ((15, 6), (9, 4), (12, 20)):
        base = rng.standard_normal((k, 1)) @ rng.standard_normal((1, n))
        out.append((base + 1e-9 * rng.standard_normal((k, n))).astype(np.float32))
        out.append(base + 1e-9 * rng.standard_normal((k, n)))
        out.append(rng.standard_normal((k, n)) * np.exp(rng.uniform(-6, 6, size=(k, 1))))
    return out


@pytest.mark.parametrize("sid", ["mgda", "mgda-active-set", "upgrad", "cagrad", "nashmtl", "imtlg",
                                 "pcgrad", "epo"])
def test_hard_inputs_converge(sid):
    """Regression: these made the active-set QP cycle before its rounding-aware multipliers and
    anti-cycling rule, and the float32 Gramian indefinite before its eigenvalues were clipped."""
    for jac in _hard_jacobians():
        k = jac.shape[0]
        solver = BY_ID[sid][1](k)
        lam, d = solver.solve(jac, np.exp(np.linspace(-1, 1, k)))
        assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d))
        assert lam.sum() == pytest.approx(1.0, abs=1e-9) or sid == "imtlg"
        if sid == "upgrad":
            assert max(solver.info["iterations"]) < 50 + 20 * k
            gram = jac.astype(np.float64) @ jac.T.astype(np.float64)
            tol = (1e-6 if jac.dtype == np.float32 else 1e-10) * np.diag(gram).max()
            assert np.all(jac.astype(np.float64) @ d.astype(np.float64) >= -tol)
        if sid == "mgda-active-set":
            assert solver.info["converged"]


def test_float32_preference_tolerance_follows_the_dtype():
    """Issue 12: a float32 preference that sums to 1 in float32 is a valid preference (the
    tolerance is a few float32 eps), the same numbers in float64 are not (1e-9)."""
    for seed in range(1000):
        pref = np.random.default_rng(seed).dirichlet(np.ones(5)).astype(np.float32)
        if (pref.sum(dtype=np.float32) == np.float32(1.0)
                and abs(pref.astype(np.float64).sum() - 1.0) > 1e-9):
            break
    assert S.simplex_tolerance(pref, 5) > 1e-9
    assert S.simplex_tolerance(pref.astype(np.float64), 5) == 1e-9
    assert S.simplex_tolerance(pref.tolist(), 5) == 1e-9
    for cls in (S.LinearScalarization, S.Tchebycheff, S.EPO):
        np.testing.assert_array_equal(cls(pref).preference, pref.astype(np.float64))
        with pytest.raises(ValueError, match="sum to 1"):
            cls(pref.astype(np.float64))
        with pytest.raises(ValueError, match="sum to 1"):
            cls(np.array([0.5, 0.51], np.float32))
