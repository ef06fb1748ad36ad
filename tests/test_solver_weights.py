"""Solver.weights(gramian, losses): the weights of solve() from the C x C Gramian alone.

Every solver but CAMOO is checked against solve() on twin solvers (built alike, fed alike): lam,
scale, info and the state agree bit for bit on the Gramian solve() forms (float64 and float32
Jacobians, degenerate and rank-deficient ones, several calls so that warm starts, loss histories
and random streams are exercised), and within rounding on another J J^T. Bad gramians are refused
naming ``gramian`` with the solver left as it was.
"""
import math

import numpy as np
import pytest

import madam.solvers as S
from madam.solvers import _gramian


def pref_for(k):
    p = np.arange(1.0, k + 1.0)
    return p / p.sum()


# (id, factory(C) -> solver): every registered solver but CAMOO, plus the variants whose
# weights take other paths (the active-set MGDA, softmax RLW, a Nash-MTL that reuses alpha, an
# UPGrad with a preference, PAMOO without damping or warm start)
FACTORIES = [
    ("linear", lambda k: S.LinearScalarization(pref_for(k))),
    ("tchebycheff", lambda k: S.Tchebycheff(pref_for(k))),
    ("rlw", lambda k: S.RLW(seed=3)),
    ("rlw-softmax", lambda k: S.RLW(seed=3, distribution="softmax-normal")),
    ("dwa", lambda k: S.DWA()),
    ("mgda", lambda k: S.MGDA()),
    ("mgda-active-set", lambda k: S.MGDA(method="active-set")),
    ("pcgrad", lambda k: S.PCGrad(seed=3)),
    ("cagrad", lambda k: S.CAGrad()),
    ("cagrad-c2", lambda k: S.CAGrad(c=2.0, rescale=2)),
    ("imtlg", lambda k: S.IMTLG()),
    ("nashmtl", lambda k: S.NashMTL()),
    ("nashmtl-every2", lambda k: S.NashMTL(update_weights_every=2)),
    ("upgrad", lambda k: S.UPGrad()),
    ("upgrad-pref", lambda k: S.UPGrad(pref_for(k))),
    ("epo", lambda k: S.EPO(pref_for(k))),
    ("pamoo", lambda k: S.PAMOO()),
    ("pamoo-cold", lambda k: S.PAMOO(damping=0.0, warm_start=False, iters=50)),
]
IDS = [f[0] for f in FACTORIES]
MAKE = dict(FACTORIES)
STATEFUL = ["rlw", "rlw-softmax", "pcgrad", "dwa", "nashmtl", "nashmtl-every2", "pamoo"]


def test_every_registered_solver_is_covered():
    # a solver added to the registry must be added here (or to the CAMOO-like exceptions)
    covered = {type(MAKE[sid](3)).name for sid in IDS}
    assert covered | {"camoo"} == set(S.SOLVERS)


def problem(seed, k, n, dtype=np.float64):
    rng = np.random.default_rng(seed)
    jac = rng.standard_normal((k, n)) * np.exp(rng.uniform(-1.0, 1.0, size=(k, 1)))
    losses = np.exp(rng.normal(size=k))
    return jac.astype(dtype), losses


def same(a, b):
    """Exact equality of lam / info values: arrays by their bytes (so -0.0 differs from 0.0),
    floats with NaN equal to NaN, containers entry by entry."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def snapshot(solver):
    """Everything a refused call must leave as it was: scale, info and the state."""
    return solver.scale, solver.info, solver.state_dict()


def unscaled_gramian(jac):
    """The Gramian solve() forms, in J's own units (solve() scales J by 2^-e at extremes)."""
    gram, exponent = _gramian(np.ascontiguousarray(jac), with_exponent=True)
    return np.ldexp(gram, 2 * exponent)


def run_twins(sid, jac, losses, calls=4, dtype=None):
    """solve() on one solver and weights() on its twin, `calls` times with drifting losses;
    returns the pairs of (lam, scale, info, state) after each call."""
    k = jac.shape[0]
    by_solve, by_weights = MAKE[sid](k), MAKE[sid](k)
    gram = unscaled_gramian(jac)
    out = []
    for t in range(calls):
        f = losses * (1.0 + 0.25 * t)
        lam, _ = by_solve.solve(jac, f)
        lam_w = by_weights.weights(gram, f, dtype=dtype or jac.dtype)
        out.append(((lam, by_solve.scale, by_solve.info, by_solve.state_dict()),
                    (lam_w, by_weights.scale, by_weights.info, by_weights.state_dict())))
    return out


def assert_twins_agree(pairs):
    for t, (left, right) in enumerate(pairs):
        for what, a, b in zip(("lam", "scale", "info", "state"), left, right):
            assert same(a, b), f"call {t}: {what} differs: {a!r} vs {b!r}"


@pytest.mark.parametrize("sid", IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k,n", [(1, 5), (2, 7), (3, 40), (5, 12)])
def test_weights_equal_solve_bit_for_bit(sid, dtype, k, n):
    jac, losses = problem(10 * k + n, k, n, dtype)
    assert_twins_agree(run_twins(sid, jac, losses))


def _degenerate_jacobians():
    rng = np.random.default_rng(7)
    g = rng.standard_normal(6)
    h = rng.standard_normal(6)
    return {
        "identical": np.stack([g, g, g]),
        "zero": np.zeros((3, 6)),
        "one-zero-row": np.stack([g, np.zeros(6), h]),
        "opposite": np.stack([g, -g]),
        "rank-deficient": rng.standard_normal((6, 3)),        # C > n: clipped Gramians
        "duplicate-pair": np.stack([g, h, g, 2.0 * h]),
        "spread-norms": np.stack([1e-30 * g, h, 1e30 * g + h]),
    }


DEGENERATE = _degenerate_jacobians()


@pytest.mark.parametrize("sid", IDS)
@pytest.mark.parametrize("case", sorted(DEGENERATE))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weights_equal_solve_on_degenerate_jacobians(sid, case, dtype):
    jac = DEGENERATE[case].astype(dtype)
    if not np.all(np.isfinite(jac)):
        pytest.skip("beyond float32")
    losses = np.linspace(1.0, 2.0, jac.shape[0])
    k = jac.shape[0]
    try:
        MAKE[sid](k).solve(jac, losses)
    except ValueError as exc:
        # a method that refuses this jacobian must refuse its Gramian alike
        with pytest.raises(ValueError):
            MAKE[sid](k).weights(unscaled_gramian(jac), losses, dtype=dtype)
        pytest.skip(f"refused by solve too: {exc}")
    assert_twins_agree(run_twins(sid, jac, losses, calls=3))


@pytest.mark.parametrize("sid", IDS)
@pytest.mark.parametrize("scale", [1e150, 1e-150, 1e60, 1e-60])
def test_weights_at_extreme_magnitudes(sid, scale):
    # solve() scales J by 2^-e and weights() scales G by 4^-e' with another power of two: the
    # same weights within rounding (the methods are scale-equivariant and the scalings exact)
    jac, losses = problem(5, 3, 8)
    jac = jac * scale
    for (lam, scale_s, _, _), (lam_w, scale_w, _, _) in run_twins(sid, jac, losses, calls=3):
        np.testing.assert_allclose(lam_w, lam, rtol=1e-12, atol=1e-300)
        assert scale_w == pytest.approx(scale_s, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("sid", IDS)
def test_weights_from_another_product_agree_within_rounding(sid):
    # J @ J.T by NumPy's matmul (another summation order than syrk), not exactly symmetric
    jac, losses = problem(11, 4, 30)
    gram = jac @ jac.T
    gram[0, 1] *= 1.0 + 1e-15
    for step in range(2):
        a, b = MAKE[sid](4), MAKE[sid](4)
        lam, _ = a.solve(jac, losses)
        lam_w = b.weights(gram, losses)
        np.testing.assert_allclose(lam_w, lam, rtol=1e-8, atol=1e-12)
        assert b.scale == pytest.approx(a.scale, rel=1e-8)


def test_pamoo_columns_take_the_gramian_of_those_columns():
    jac, losses = problem(3, 3, 20)
    cols = slice(-5, None)
    a, b = S.PAMOO(columns=cols), S.PAMOO(columns=cols)
    for _ in range(3):
        lam, _ = a.solve(jac, losses)
        lam_w = b.weights(_gramian(np.ascontiguousarray(jac[:, cols])), losses)
        assert same(lam, lam_w) and a.scale == b.scale and same(a.info, b.info)


def test_dtype_names_the_jacobians_precision():
    # IMTL-G cuts eigenvalues below C eps(J's dtype): on a rank-deficient float32 Jacobian the
    # float64 Gramian needs dtype=float32 to reproduce solve(); dtype is validated by name
    jac = np.random.default_rng(4).standard_normal((5, 2)).astype(np.float32)
    gram = _gramian(jac)
    lam, _ = S.IMTLG().solve(jac)
    assert same(S.IMTLG().weights(gram, dtype=np.float32), lam)
    assert same(S.IMTLG().weights(gram, dtype="float32"), lam)
    with pytest.raises(TypeError, match="dtype"):
        S.IMTLG().weights(gram, dtype=np.float16)
    with pytest.raises(TypeError, match="dtype"):
        S.IMTLG().weights(gram, dtype="no such type")


def test_float32_and_noncontiguous_gramians_are_accepted_and_not_modified():
    jac, losses = problem(9, 3, 10)
    gram = _gramian(jac)
    keep = gram.copy()
    lam = S.MGDA().weights(gram, losses)
    assert same(gram, keep)
    fortran = np.asfortranarray(gram)
    assert same(S.MGDA().weights(fortran, losses), lam)
    assert same(S.MGDA().weights(gram.T, losses), lam)       # a transposed view: G^T = G
    lam32 = S.MGDA().weights(gram.astype(np.float32), losses)
    assert lam32.dtype == np.float64
    np.testing.assert_allclose(lam32, lam, rtol=1e-5, atol=1e-7)


def test_losses_follow_the_solvers_rules():
    gram = _gramian(problem(1, 3, 5)[0])
    assert S.MGDA().weights(gram).shape == (3,)                     # losses not read: may be None
    assert S.MGDA().weights(gram, [np.nan, 1.0, 2.0]).shape == (3,)
    with pytest.raises(TypeError, match="losses"):
        S.DWA().weights(gram)
    with pytest.raises(ValueError, match="losses"):
        S.EPO(pref_for(3)).weights(gram, [1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="preference"):
        S.LinearScalarization(pref_for(2)).weights(gram)


def _non_psd():
    # unit diagonal, every 2 x 2 minor fine, but the whole matrix indefinite (eigenvalue -0.8)
    return np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])


def _asymmetric():
    g = np.eye(3)
    g[0, 1] = 0.5
    return g


def _zero_row_with_entries():
    g = np.eye(3)
    g[0, 0] = 0.0
    g[0, 2] = g[2, 0] = 1e-3
    return g


BAD_GRAMIANS = [
    ("list", [[1.0, 0.0], [0.0, 1.0]], TypeError),
    ("int", np.eye(3, dtype=np.int64), TypeError),
    ("float16", np.eye(3, dtype=np.float16), TypeError),
    ("complex", np.eye(3, dtype=np.complex128), TypeError),
    ("1-D", np.ones(3), ValueError),
    ("3-D", np.ones((1, 3, 3)), ValueError),
    ("non-square", np.ones((3, 2)), ValueError),
    ("empty", np.zeros((0, 0)), ValueError),
    ("nan", np.where(np.eye(3) > 0, 1.0, np.nan), ValueError),
    ("inf", np.diag([1.0, np.inf, 1.0]), ValueError),
    ("asymmetric", _asymmetric(), ValueError),
    ("negative-diagonal", np.diag([1.0, -1e-3, 1.0]), ValueError),
    ("zero-row-with-entries", _zero_row_with_entries(), ValueError),
    ("not-psd", _non_psd(), ValueError),
    ("beyond-cauchy-schwarz", np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
     ValueError),
]


def _warmed(sid, k=3):
    """A solver with history: two calls, so a refusal has state to keep."""
    solver = MAKE[sid](k)
    jac, losses = problem(2, k, 6)
    for t in range(2):
        solver.solve(jac, losses * (1.0 + t))
    return solver


@pytest.mark.parametrize("sid", IDS)
@pytest.mark.parametrize("label,gramian,exc", BAD_GRAMIANS, ids=[b[0] for b in BAD_GRAMIANS])
def test_bad_gramian_is_refused_naming_it_and_changes_nothing(sid, label, gramian, exc):
    solver, twin = _warmed(sid), _warmed(sid)
    before = snapshot(solver)
    with pytest.raises(exc, match="gramian"):
        solver.weights(gramian, np.ones(3))
    assert same(snapshot(solver), before)
    # the random streams, warm starts and histories are where they were: the next call is the
    # twin's (which was never refused)
    jac, losses = problem(8, 3, 6)
    gram = _gramian(jac)
    assert same(solver.weights(gram, losses), twin.weights(gram, losses))
    assert same(solver.state_dict(), twin.state_dict())


@pytest.mark.parametrize("sid", IDS)
def test_wrong_number_of_losses_is_refused_naming_the_gramian(sid):
    solver = _warmed(sid)
    before = snapshot(solver)
    with pytest.raises(ValueError, match="gramian has 3 rows"):
        solver.weights(np.eye(3), np.ones(2))
    assert same(snapshot(solver), before)


def test_a_rounding_level_asymmetry_and_negative_eigenvalue_are_accepted():
    jac, _ = problem(6, 3, 2)                      # C > n: G is singular
    gram = jac @ jac.T
    noisy = gram.copy()
    noisy[0, 1] += 1e-12 * math.sqrt(gram[0, 0] * gram[1, 1])
    lam = S.MGDA().weights(noisy)
    np.testing.assert_allclose(lam, S.MGDA().solve(jac)[0], atol=1e-6)
    # an eigenvalue pushed below 0 well beyond rounding but within the tolerance is clipped
    evals, evecs = np.linalg.eigh(gram)
    shifted = gram - 1e-10 * float(evals[-1]) * np.outer(evecs[:, 0], evecs[:, 0])
    assert np.linalg.eigvalsh(shifted)[0] < 0.0
    lam = S.UPGrad().weights(shifted)
    np.testing.assert_allclose(lam, S.UPGrad().solve(jac)[0], atol=1e-6)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_method_failing_inside_weights_restores_the_state():
    # DWA's third call divides the last two losses: 1e300 / 1e-300 overflows, the weights turn
    # NaN after DWA recorded the losses; solve() refuses this in its direction check and
    # restores the history, and weights() must do the same
    gram = np.eye(2)
    jac = np.eye(2)
    by_weights, by_solve = S.DWA(), S.DWA()
    for f in ([1e-300, 1.0], [1e300, 1.0]):
        by_weights.weights(gram, f)
        by_solve.solve(jac, f)
    before = snapshot(by_weights)
    with pytest.raises(ValueError, match="not finite"):
        by_weights.weights(gram, [1.0, 1.0])
    with pytest.raises(ValueError, match="not finite"):
        by_solve.solve(jac, [1.0, 1.0])
    assert same(snapshot(by_weights), before)
    assert same(by_weights.state_dict(), by_solve.state_dict())
    # a change of C against the history is refused before anything changes
    with pytest.raises(ValueError, match="history"):
        by_weights.weights(np.eye(3), [1.0, 1.0, 1.0])
    assert same(snapshot(by_weights), before)


@pytest.mark.parametrize("sid", STATEFUL)
def test_stateful_solvers_mix_solve_and_weights(sid):
    # the state is one: calls alternating between solve and weights leave the solver where
    # calls of solve alone do, and a state_dict saved after weights loads into a solve twin
    jac, losses = problem(12, 3, 9)
    gram = _gramian(jac)
    mixed, plain = MAKE[sid](3), MAKE[sid](3)
    for t in range(5):
        f = losses * (1.0 + 0.3 * t)
        lam_p, _ = plain.solve(jac, f)
        lam_m = mixed.weights(gram, f) if t % 2 else mixed.solve(jac, f)[0]
        assert same(lam_m, lam_p) and mixed.scale == plain.scale
        assert same(mixed.state_dict(), plain.state_dict())
    other = MAKE[sid](3)
    other.load_state_dict(mixed.state_dict())
    assert same(other.solve(jac, losses)[0], mixed.weights(gram, losses))
    mixed.reset()
    plain.reset()
    assert same(mixed.weights(gram, losses), plain.solve(jac, losses)[0])


def test_camoo_has_no_weights():
    camoo = S.CAMOO(lambda x, v, batch: np.zeros((2, v.size)))
    before = snapshot(camoo)
    with pytest.raises(TypeError, match="Hessian-vector"):
        camoo.weights(np.eye(2), np.ones(2))
    assert same(snapshot(camoo), before)


def test_a_subclass_with_its_own_solve_has_no_weights():
    class Fixed(S.Solver):
        def _solve(self, jac, losses):
            return np.full(jac.shape[0], 1.0 / jac.shape[0]), 1.0, {}

    solver = Fixed()
    assert same(solver.solve(np.eye(2))[0], np.full(2, 0.5))
    with pytest.raises(TypeError, match="weights"):
        solver.weights(np.eye(2))


def test_a_subclass_with_weights_gets_solve():
    # a method written once, on the Gramian, serves both entry points
    class Trace(S.Solver):
        def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
            w = np.diag(gram).copy()
            return w / w.sum(), 1.0, {"exponent": exponent}

    jac = np.array([[1.0, 0.0], [0.0, 2.0]])
    lam, d = Trace().solve(jac)
    assert same(Trace().weights(jac @ jac.T), lam)
    np.testing.assert_allclose(d, lam @ jac)
