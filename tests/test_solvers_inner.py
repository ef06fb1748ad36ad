"""The small dense inner solvers of madam.solvers (the NumPy reference madam._inner, the C
versions in madam._qp that the solvers run, and the per-method weight functions), each against
scipy.optimize or an exact enumeration oracle, and the C versions against the reference."""
import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linprog as scipy_linprog
from scipy.optimize import minimize, nnls, root

from madam import _inner, _qp
from madam import solvers as S

SEEDS = range(40)
# the active-set QP and Frank-Wolfe: the NumPy reference and the C versions the solvers run
IMPLS = pytest.mark.parametrize("impl", [_inner, _qp], ids=["numpy", "c"])


def random_gram(rng, k, n=None, spread=True):
    """A Gramian of k random gradients in R^n (n < k gives a singular one), rows of mixed norms."""
    n = int(rng.integers(1, 2 * k + 3)) if n is None else n
    jac = rng.standard_normal((k, n))
    if spread:
        jac *= np.exp(rng.uniform(-1.5, 1.5, size=(k, 1)))
    return jac @ jac.T, jac


def enumerate_qp(Q, c, simplex):
    """Exact oracle: the best KKT point over every support (k <= 7)."""
    k = Q.shape[0]
    best, best_x = np.inf, None
    for size in range(0 if not simplex else 1, k + 1):
        for support in itertools.combinations(range(k), size):
            s = list(support)
            x = np.zeros(k)
            if s:
                if simplex:
                    m = len(s)
                    kkt = np.zeros((m + 1, m + 1))
                    kkt[:m, :m] = Q[np.ix_(s, s)]
                    kkt[:m, m] = 1.0
                    kkt[m, :m] = 1.0
                    sol = np.linalg.lstsq(kkt, np.concatenate([-c[s], [1.0]]), rcond=None)[0]
                    x[s] = sol[:m]
                else:
                    x[s] = np.linalg.lstsq(Q[np.ix_(s, s)], -c[s], rcond=None)[0]
            if np.any(x < -1e-12):
                continue
            x = np.maximum(x, 0.0)
            f = 0.5 * x @ Q @ x + c @ x
            if f < best:
                best, best_x = f, x
    return best, best_x


def qp_objective(Q, c, x):
    return 0.5 * x @ Q @ x + c @ x


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("simplex", [True, False], ids=["simplex", "orthant"])
@IMPLS
def test_qp_active_set_matches_enumeration(impl, seed, simplex):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 7))
    Q, jac = random_gram(rng, k)
    # c in the range of Q (bounded on every face), as in every use in madam
    c = Q @ rng.standard_normal(k) if seed % 3 else np.zeros(k)
    if not simplex and seed % 3 == 0:
        c = Q @ -np.abs(rng.standard_normal(k))
    x, info = impl.qp_active_set(Q, c, simplex=simplex)
    scale = max(np.abs(Q).max(), np.abs(c).max())
    assert info["converged"]
    assert info["kkt"] <= 1e-10
    assert np.all(x >= 0)
    if simplex:
        assert x.sum() == pytest.approx(1.0, abs=1e-14)
    best, _ = enumerate_qp(Q, c, simplex)
    assert qp_objective(Q, c, x) <= best + 1e-12 * scale


@pytest.mark.parametrize("seed", SEEDS)
@IMPLS
def test_qp_orthant_matches_scipy_nnls(impl, seed):
    """Positive-definite Q = L L^T: min 1/2 |L^T z|^2 + c^T z, z >= 0 is nnls(L^T, -L^{-1} c)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 9))
    Q, _ = random_gram(rng, k, n=k + 3)
    c = rng.standard_normal(k) * np.sqrt(np.diag(Q))
    x, info = impl.qp_active_set(Q, c, simplex=False)
    chol = np.linalg.cholesky(Q)
    ref, _ = nnls(chol.T, -np.linalg.solve(chol, c))
    assert info["converged"]
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max(initial=1.0))


@pytest.mark.parametrize("seed", SEEDS)
@IMPLS
def test_qp_simplex_matches_scipy_slsqp(impl, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    Q, _ = random_gram(rng, k, n=k + 2)
    c = rng.standard_normal(k) * np.diag(Q).mean()
    x, _ = impl.qp_active_set(Q, c, simplex=True)
    res = minimize(lambda y: qp_objective(Q, c, y), np.full(k, 1.0 / k),
                   jac=lambda y: Q @ y + c, method="SLSQP", bounds=[(0, None)] * k,
                   constraints=[{"type": "eq", "fun": lambda y: y.sum() - 1.0}],
                   options={"ftol": 1e-15, "maxiter": 500})
    ref = np.maximum(res.x, 0.0)
    ref /= ref.sum()  # SLSQP's point made exactly feasible
    scale = max(np.abs(Q).max(), np.abs(c).max())
    assert qp_objective(Q, c, x) <= qp_objective(Q, c, ref) + 1e-12 * scale  # never worse
    np.testing.assert_allclose(x, ref, atol=1e-5)         # SLSQP's own accuracy


@IMPLS
def test_qp_rejects_bad_shape(impl):
    with pytest.raises(ValueError, match="Q"):
        impl.qp_active_set(np.zeros((2, 3)))


@pytest.mark.parametrize("seed", SEEDS)
@IMPLS
def test_min_norm_frank_wolfe_and_closed_form(impl, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    G, _ = random_gram(rng, k)
    best, _ = enumerate_qp(2 * G, np.zeros(k), True)
    x, info = impl.min_norm_frank_wolfe(G, tol=1e-14)
    scale = np.diag(G).max()
    assert np.all(x >= 0) and x.sum() == pytest.approx(1.0, abs=1e-14)
    # the gap bounds the objective error: f(x) - f* <= 2 gap (relative to max diag)
    assert x @ G @ x <= best + 2.5 * max(info["gap"], 1e-14) * scale + 1e-15 * scale
    if k == 2:
        y = _inner.min_norm_2(G)
        assert y @ G @ y <= best + 1e-14 * scale


@pytest.mark.parametrize("seed", range(60))
def test_c_qp_matches_the_numpy_reference(seed):
    """The C active-set QP (what the solvers run) against the NumPy reference on larger,
    singular and badly scaled problems: the same optimal value to rounding, a KKT certificate,
    and the same point where the minimiser is unique (Q positive definite)."""
    rng = np.random.default_rng(1000 + seed)
    k = int(rng.integers(2, 41))
    n = [k + 5, max(1, k // 2), 1, 3 * k][seed % 4]   # full rank, singular, rank 1, generic
    Q, jac = random_gram(rng, k, n=n)
    if seed % 5 == 0:
        Q = Q * 10.0 ** rng.integers(-200, 200)
    for simplex in (True, False):
        c = Q @ (rng.standard_normal(k) - (0.0 if simplex else 1.0))
        x_ref, info_ref = _inner.qp_active_set(Q, c, simplex=simplex)
        x_c, info_c = _qp.qp_active_set(Q, c, simplex=simplex)
        scale = max(np.abs(Q).max(), np.abs(c).max())
        assert info_c["converged"] and info_c["kkt"] <= 1e-10
        assert np.all(x_c >= 0.0)
        f_ref, f_c = qp_objective(Q, c, x_ref), qp_objective(Q, c, x_c)
        assert abs(f_c - f_ref) <= 1e-12 * scale * max(1.0, np.abs(x_ref).sum())
        if n >= k + 5:
            np.testing.assert_allclose(x_c, x_ref, atol=1e-9 * max(1.0, np.abs(x_ref).max()))


@pytest.mark.parametrize("seed", range(20))
def test_c_frank_wolfe_matches_the_numpy_reference(seed):
    """Same algorithm, same stopping rule: the C Frank-Wolfe and the reference stop at points of
    the same quality (gap within tol) and agree with the exact min-norm point."""
    rng = np.random.default_rng(2000 + seed)
    k = int(rng.integers(3, 129))
    G, _ = random_gram(rng, k, n=int(rng.integers(k // 2 + 1, 3 * k)))
    x_c, info_c = _qp.min_norm_frank_wolfe(G, tol=1e-13, max_iter=20000)
    x_ref, info_ref = _inner.min_norm_frank_wolfe(G, tol=1e-13, max_iter=20000)
    exact, _ = _qp.qp_active_set(G, simplex=True, x0=x_c)
    top = np.diag(G).max()
    for x, info in ((x_c, info_c), (x_ref, info_ref)):
        assert x.sum() == pytest.approx(1.0, abs=1e-13) and np.all(x >= 0.0)
        assert x @ G @ x <= exact @ G @ exact + 2.5 * max(info["gap"], 1e-14) * top + 1e-14 * top
    assert info_c["converged"] == info_ref["converged"]


@pytest.mark.parametrize("seed", range(30))
def test_positive_definite_against_eigvalsh(seed):
    """madam._qp.positive_definite (the Cholesky test that spares _clip_psd its eigh) says yes
    only for matrices whose smallest eigenvalue is positive, and yes for well-conditioned
    ones; a Gramian of fewer columns than rows (singular) is refused."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 60))
    n = int(rng.integers(1, 2 * k + 3))
    G, _ = random_gram(rng, k, n=n)
    d = 1.0 / np.sqrt(np.diag(G))
    K = G * np.outer(d, d)
    low = np.linalg.eigvalsh(K)[0]
    definite = _qp.positive_definite(K)
    if definite:
        assert low > 0.0
    if low > 1e-8:
        assert definite
    if n < k:
        assert not definite
    assert not _qp.positive_definite(np.array([[1.0, 2.0], [2.0, 1.0]]))


@pytest.mark.parametrize("call, match", [
    (lambda: _qp.qp_active_set(np.eye(2), [np.nan, 0.0]), "c must be finite"),
    (lambda: _qp.qp_active_set(np.array([[1.0, np.inf], [0.0, 1.0]])), "Q must be finite"),
    (lambda: _qp.qp_active_set(np.eye(2), x0=[np.nan, 1.0]), "x0 must be finite"),
    (lambda: _qp.min_norm_frank_wolfe(np.ones((2, 3))), "G must be a non-empty square"),
    (lambda: _qp.positive_definite(np.zeros((0, 0))), "A must be a non-empty square"),
])
def test_c_inner_solvers_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_min_norm_2_identical_points_is_symmetric():
    G = np.full((2, 2), 3.0)
    np.testing.assert_array_equal(_inner.min_norm_2(G), [0.5, 0.5])
    np.testing.assert_array_equal(_inner.min_norm_2(np.zeros((2, 2))), [0.5, 0.5])


# ----------------------------------------------------------------------------- LP
def _scipy(c, a_ub, b_ub, a_eq, b_eq):
    return scipy_linprog(c, A_ub=a_ub if len(a_ub) else None, b_ub=b_ub if len(b_ub) else None,
                         A_eq=a_eq if len(a_eq) else None, b_eq=b_eq if len(b_eq) else None,
                         bounds=(0, None), method="highs")


@pytest.mark.parametrize("seed", range(80))
def test_linprog_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    m_ub, m_eq = int(rng.integers(0, 7)), int(rng.integers(0, 3))
    c = rng.standard_normal(n)
    a_ub, b_ub = rng.standard_normal((m_ub, n)), rng.standard_normal(m_ub)
    a_eq, b_eq = rng.standard_normal((m_eq, n)), rng.standard_normal(m_eq)
    if seed % 4 == 0:  # degenerate: a redundant equality and repeated inequality rows
        a_eq = np.vstack([a_eq, np.ones((2, n))])
        b_eq = np.concatenate([b_eq, [1.0, 1.0]])
        if m_ub:
            a_ub = np.vstack([a_ub, a_ub[:1]])
            b_ub = np.concatenate([b_ub, b_ub[:1]])
    ref = _scipy(c, a_ub, b_ub, a_eq, b_eq)
    res = _inner.linprog(c, a_ub, b_ub, a_eq, b_eq)
    assert res.status == ref.status, (res, ref.message)
    if ref.status == 0:
        assert res.fun == pytest.approx(ref.fun, rel=1e-9, abs=1e-9)
        assert np.all(res.x >= 0)
        if m_ub:
            assert np.all(a_ub @ res.x <= b_ub + 1e-9)
        if len(b_eq):
            np.testing.assert_allclose(a_eq @ res.x, b_eq, atol=1e-9)


def test_linprog_simplex_lp_with_ties():
    """A fully degenerate LP (every vertex optimal) still terminates (Bland's rule)."""
    k = 6
    res = _inner.linprog(np.zeros(k), -np.ones((k, k)), np.zeros(k), np.ones((1, k)), [1.0])
    assert res.status == 0 and res.x.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------------ method inner problems
@pytest.mark.parametrize("seed", SEEDS)
def test_upgrad_projection_weights_match_nnls(seed):
    """v_i = argmin_{v >= e_i} v^T G v via nnls on the Cholesky factor."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))
    G, _ = random_gram(rng, k, n=k + 2)
    pref = rng.dirichlet(np.ones(k))
    w, _ = S.upgrad_weights(G, pref)
    chol = np.linalg.cholesky(G)
    ref = np.zeros(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = 1.0
        z, _ = nnls(chol.T, -chol.T @ e)
        ref += pref[i] * (e + z)
    np.testing.assert_allclose(w, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_cagrad_inner_problem_beats_scipy(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))
    G, jac = random_gram(rng, k)
    c = float(rng.choice([0.1, 0.5, 0.9, 2.0]))
    w, info = S.cagrad_weights(G, c)
    u = np.full(k, 1.0 / k)
    r = c * math.sqrt(u @ G @ u)

    def F(x):
        return x @ G @ u + r * math.sqrt(max(x @ G @ x, 0.0))

    starts = [u] + [np.eye(k)[i] for i in range(k)]
    ref = min(minimize(F, x0, method="SLSQP", bounds=[(0, 1)] * k,
                       constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0}],
                       options={"ftol": 1e-15, "maxiter": 500}).fun for x0 in starts)
    scale = np.diag(G).max()
    if info["degenerate"]:
        assert c >= 1.0
        assert F(w) <= ref + 1e-7 * scale
        return
    inner = info.get("inner_weights", u)
    assert F(inner) <= ref + 1e-12 * scale
    # strong duality: the natural direction is on the ball and attains min_i g_i^T d = F(w*)
    d = jac.T @ w
    g0 = jac.mean(axis=0)
    assert np.linalg.norm(d - g0) == pytest.approx(r, abs=1e-10 * math.sqrt(scale))
    assert (jac @ d).min() == pytest.approx(F(inner), abs=1e-10 * scale)


@pytest.mark.parametrize("seed", SEEDS)
def test_nash_weights_match_scipy_root(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))
    G, _ = random_gram(rng, k, n=k + 2)
    alpha, info = S.nash_weights(G)
    assert not info["degenerate"]
    np.testing.assert_allclose(alpha * (G @ alpha), 1.0, atol=1e-11)
    ref = root(lambda a: G @ a - 1.0 / a, 1.0 / np.sqrt(np.diag(G)) / k, method="hybr",
               options={"xtol": 1e-14})
    if ref.success and np.all(ref.x > 0):  # the positive root is unique
        np.testing.assert_allclose(alpha, ref.x, rtol=1e-8)
    warm, winfo = S.nash_weights(G, alpha0=alpha * 3.0)
    np.testing.assert_allclose(warm, alpha, rtol=1e-10)
    assert winfo["iterations"] <= info["iterations"]


def test_nash_weights_no_solution_at_pareto_stationary_points():
    G = np.array([[1.0, -1.0], [-1.0, 1.0]])       # opposite gradients
    assert S.nash_weights(G)[0] is None
    G = np.array([[1.0, 0.0], [0.0, 0.0]])         # a zero gradient
    assert S.nash_weights(G)[0] is None


@pytest.mark.parametrize("seed", SEEDS)
def test_epo_lp_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    G, _ = random_gram(rng, k)
    pref = rng.dirichlet(np.ones(k)) + 0.01
    pref /= pref.sum()
    losses = np.exp(rng.normal(size=k) * (0.0 if seed % 5 == 0 else 1.0))
    alpha, info = S.epo_lp(G, losses, pref, eps=1e-4)
    assert np.all(alpha >= 0) and alpha.sum() == pytest.approx(1.0, abs=1e-12)
    # the same LP, built independently, solved by HiGHS
    rl = pref * losses
    lh = rl / rl.sum()
    mu = np.sum(lh * np.log(k * lh))
    a = pref * (np.log(k * lh) - mu)
    ga = G @ a
    if mu > 1e-4:
        assert info["mode"] == "balance"
        rhs = np.where(ga > 0, -np.inf, ga) if np.any(ga > 0) else np.zeros(k)
        if np.any(ga > 0):
            rhs[rl == rl.max()] = 0.0
        keep = np.isfinite(rhs)
        ref = scipy_linprog(-ga, A_ub=-G[keep], b_ub=-rhs[keep], A_eq=np.ones((1, k)),
                            b_eq=[1.0], bounds=(0, None), method="highs")
        assert ref.status == 0
        assert alpha @ ga == pytest.approx(-ref.fun, rel=1e-8, abs=1e-10 * np.abs(G).max())
        assert np.all((G @ alpha)[keep] >= rhs[keep] - 1e-9 * np.abs(G).max())
    else:
        assert info["mode"] == "descent"
        a_ub = np.vstack([-G, -ga[None]])
        b_ub = np.concatenate([np.zeros(k), [-min(ga.max(), 0.0)]])
        ref = scipy_linprog(-G.sum(0), A_ub=a_ub, b_ub=b_ub, A_eq=np.ones((1, k)), b_eq=[1.0],
                            bounds=(0, None), method="highs")
        if ref.status != 0:
            assert info["relaxed"]
            ref = scipy_linprog(-G.sum(0), A_ub=-G, b_ub=np.zeros(k), A_eq=np.ones((1, k)),
                                b_eq=[1.0], bounds=(0, None), method="highs")
        assert G.sum(0) @ alpha == pytest.approx(-ref.fun, rel=1e-8)
        assert np.all(G @ alpha >= -1e-9 * np.abs(G).max())
