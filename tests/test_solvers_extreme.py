"""Solvers and AMOO helpers on extreme but finite input (an outside audit).

Huge, tiny and mixed row norms, rank-deficient, duplicated, zero and (anti)parallel rows, in float32
and float64. The contract: a valid finite result (weights on the simplex where documented, a
non-conflicting direction where documented) or a ValueError naming the argument; never NaN, never
numpy.linalg.LinAlgError, never a RuntimeWarning (overflow), never weights silently off their set.
Each test below failed on the code before its fix.
"""
import math
import warnings

import numpy as np
import pytest

import madam
from madam import amoo
from madam import solvers as S


def _rows(seed, k, n, norms):
    """k random directions in R^n with the given row norms (float64)."""
    g = np.random.default_rng(seed).standard_normal((k, n))
    unit = g / np.linalg.norm(g, axis=1, keepdims=True)
    return unit * np.asarray(norms, dtype=np.float64)[:, None]


def _strict(fn, *args, **kwargs):
    """fn(*args, **kwargs) with every warning raised as an error (overflow, invalid, cast)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


def _pref(k):
    p = np.arange(1.0, k + 1.0)
    return p / p.sum()


# the solvers whose weights come from the Gramian, by a factory of C
GRAM_SOLVERS = {
    "mgda": lambda k: S.MGDA(),
    "mgda-active-set": lambda k: S.MGDA(method="active-set"),
    "pcgrad": lambda k: S.PCGrad(seed=0),
    "upgrad": lambda k: S.UPGrad(),
    "cagrad": lambda k: S.CAGrad(c=0.5),
    "imtlg": lambda k: S.IMTLG(),
    "nashmtl": lambda k: S.NashMTL(max_norm=0.0),
    "epo": lambda k: S.EPO(_pref(k)),
}


# ----------------------------------------------------------------------------- 1. MGDA float32 3e19
@pytest.mark.parametrize("k", [2, 3])
def test_mgda_float32_rows_of_norm_3e19_give_the_unit_scale_weights(k):
    """Rows of norm 3e19 in float32: the float32 Gramian overflowed (9e38 > 3.4e38) and MGDA
    returned NaN weights (C = 2) or raised LinAlgError (C = 3). MGDA is scale invariant, so the
    weights must be those of the same rows scaled by 2^-64 (exact in float32)."""
    jac = _rows(1, k, 5, [3e19] * k).astype(np.float32)
    lam, d = _strict(S.MGDA().solve, jac)
    lam_unit, _ = S.MGDA().solve(jac * np.float32(2.0 ** -64))
    assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d))
    assert np.all(lam >= 0.0) and lam.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(lam, lam_unit, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- 2. LinAlgError
def _extreme_cases():
    rng_norms = {"same": lambda k, s: [s] * k, "spread": lambda k, s: s * 2.0 ** np.arange(k)}
    cases = []
    for dtype, scale in ((np.float32, 3e19), (np.float32, 1e-19), (np.float64, 1e200),
                         (np.float64, 1e-200), (np.float64, 1e300)):
        for kind in rng_norms:
            cases.append(pytest.param(dtype, scale, kind,
                                      id=f"{np.dtype(dtype).name}-{scale:g}-{kind}"))
    return cases


@pytest.mark.parametrize("sid", sorted(GRAM_SOLVERS))
@pytest.mark.parametrize("dtype, scale, kind", _extreme_cases())
def test_gramian_solvers_are_scale_invariant_at_the_extremes(sid, dtype, scale, kind):
    """Rows of norm 1e200 (or 3e19 in float32) overflowed the Gramian: eigh raised LinAlgError
    (PCGrad, UPGrad, CAGrad, ... alike); rows of norm 1e-200 underflowed it to 0 and were treated
    as a zero Jacobian. Every one of these solvers is invariant to J -> s J for s > 0, so the
    weights must match those of the rows brought to norm ~1 by a power of two (an exact scaling);
    Nash-MTL's scale goes as 1/s (tested for the documented relation)."""
    k = 3
    factor = 2.0 ** -math.frexp(scale)[1]
    spread = (np.ones(k) if kind == "same" else 2.0 ** np.arange(k))
    jac = (_rows(7, k, 6, spread) / factor * 0.75).astype(dtype)   # norms ~ scale
    unit = (jac.astype(np.float64) * factor).astype(dtype)           # exact: a power of two
    losses = np.array([1.0, 2.0, 3.0])
    solver = GRAM_SOLVERS[sid](k)
    lam, d = _strict(solver.solve, jac, losses)
    ref = GRAM_SOLVERS[sid](k)
    lam_unit, _ = ref.solve(unit, losses)
    assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d)) and math.isfinite(solver.scale)
    if sid != "imtlg":
        assert np.all(lam >= 0.0) and lam.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(lam, lam_unit, rtol=1e-9, atol=1e-12)
    if sid == "nashmtl":
        assert solver.scale == pytest.approx(ref.scale * factor, rel=1e-9)
    else:
        assert solver.scale == pytest.approx(ref.scale, rel=1e-9)


# found by the random search (float64, row norms 10^U(-300, 300), C = 6, n = 8)
EIGH_STOPPER = [
    [1.2324783668909116e-274, 2.6576057795719529e-274, -1.0662085899918723e-273,
     -4.3552855254580931e-275, 6.9069381809957259e-274, -3.2042833244787031e-274,
     -3.5960354111179768e-274, 7.1042452446271645e-274],
    [-2.7612893124675502e+050, -1.6237968350341734e+050, 2.0111765309224400e+050,
     -4.7205946946308243e+049, -8.0415191600833127e+049, -1.8973906255149251e+050,
     8.1244821934855140e+049, -3.6611562653582965e+050],
    [3.3729110941844340e+103, 1.4061815597241967e+104, -6.3474712899046656e+104,
     -3.4616768082982279e+103, 4.1900956462395472e+104, -2.2998186720547545e+104,
     -2.1198037595072317e+104, 3.8655004077355096e+104],
    [2.1737173376985297e+031, 6.2169921094663402e+030, 1.7336833570319834e+031,
     5.9112969073805371e+030, -1.5912768641742757e+031, 2.8698003324041774e+031,
     4.5879736642414973e+030, 1.0239411395159681e+031],
    [1.2898901578110111e+048, 2.4459104844875981e+049, -1.2067133904204219e+050,
     -7.7035773706481486e+048, 8.0667771998051818e+049, -4.8789335960218561e+049,
     -4.0027746018465972e+049, 6.8785184102022670e+049],
    [-1.3379999513527289e-086, -6.9599200806504543e-087, 5.1567390652071682e-087,
     -2.5910724381141860e-087, -8.1949390427447961e-088, -1.1097669531216789e-086,
     2.4173102375786669e-087, -1.5169815411169216e-086],
]


@pytest.mark.parametrize("sid", sorted(GRAM_SOLVERS))
def test_gramian_spanning_1e_minus_240_to_1e210_does_not_stop_eigh(sid):
    """Row norms 1e-274 .. 1e104 (no overflow: the Gramian's entries run from 1e-240 to 1e209):
    LAPACK's eigh raised LinAlgError 'Eigenvalues did not converge'. Found by the random search
    below; the Gramian is now formed from J scaled to max|J| ~ 1 when max|J| > 2^128."""
    jac = np.array(EIGH_STOPPER)
    k = jac.shape[0]
    solver = GRAM_SOLVERS[sid](k)
    if sid == "upgrad":
        # UPGrad's natural weights go as |g_i| / |g_j| (up to 1e378 here): not representable,
        # which is said (its lam would be fine, its scale not)
        with pytest.raises(ValueError, match="jacobian"):
            _strict(solver.solve, jac)
        jac = jac[1:]                                          # ratios up to 1e190: fine
        k = jac.shape[0]
        solver = GRAM_SOLVERS[sid](k)
    lam, d = _strict(solver.solve, jac, np.arange(1.0, k + 1.0))
    assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d)) and math.isfinite(solver.scale)
    if sid != "imtlg":
        assert np.all(lam >= 0.0) and lam.sum() == pytest.approx(1.0, abs=1e-12)


def test_cagrad_step_ratios_do_not_overflow():
    """Two opposite pairs with norms 1e162 / 1e-208 and 1e120 / 1e-65: once the Gramian is
    scaled, CAGrad's inner QP takes steps so small that the ratio test x / -step overflowed
    (RuntimeWarning); only the blocking bounds are divided now."""
    g = np.array([1.77887046, 1.20926435, 0.92460251, 0.533143003, 2.76402215, 2.42570546])
    h = np.array([1.59754195, 0.848005071, -2.96012778, -1.81261449, -0.130108075, -0.638390164])
    jac = np.stack([g * 1e162, h * 1e120, -g * 1.68e-208, -h * 3.49e-65])
    for c in (0.5, 2.0):
        lam, d = _strict(S.CAGrad(c=c).solve, jac)
        assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d))
        assert np.all(lam >= 0.0) and lam.sum() == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------- 3. PAMOO lr
def test_pamoo_weights_refuses_a_step_that_cannot_converge():
    """pamoo_weights(2 I, f = 1, lr = 1e6) returned w ~ 2e6 (the solution is 1/2): for
    lr >= 1 / lambda_max(A) the projected ascent oscillates. It is refused, naming lr."""
    a, f = 2.0 * np.eye(2), np.ones(2)
    with pytest.raises(ValueError, match="lr"):
        amoo.pamoo_weights(a, f, lr=1e6)
    with pytest.raises(ValueError, match="lr"):
        amoo.pamoo_weights(a, f, lr=0.5)             # the boundary: eigenvalue exactly -1
    with pytest.raises(ValueError, match="lr"):
        amoo.pamoo_weights(np.full((2, 2), 1e308), f, lr=1.0)   # lambda_max overflows
    w = amoo.pamoo_weights(a, f, lr=0.25, iters=200)
    np.testing.assert_allclose(w, [0.5, 0.5], rtol=1e-12)


def test_pamoo_solver_caps_an_lr_that_cannot_converge():
    """PAMOO(lr=1) on rows of norm 1e100 (lambda_max(A) ~ 1e200): the ascent overflowed and the
    solve was refused. The jacobian's scale changes from call to call, so the solver caps the
    step at 1 / (2 lambda_max(A)) when lr * lambda_max >= 1 (pamoo_weights refuses such an lr):
    finite weights on the simplex, and the step used is in info["lr"]."""
    solver = amoo.PAMOO(lr=1.0, iters=3)
    jac = np.array([[1.0, 0.0], [-1.0, 1e-3]]) * 1e100
    lam, d = _strict(solver.solve, jac, np.ones(2))
    assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d))
    assert np.all(lam >= 0.0) and lam.sum() == pytest.approx(1.0, abs=1e-12)
    assert solver.info["lr"] * np.linalg.eigvalsh(jac @ jac.T)[-1] == pytest.approx(0.5)


def test_pu_solve_refuses_an_eta_that_overflows_with_a():
    """A float32 A holding 3.4e38 with eta = 1: eta A overflows float32 and PU returned NaN
    weights; such an eta is refused, naming it."""
    a = np.zeros((3, 3), dtype=np.float32)
    a[2, 2] = np.finfo(np.float32).max
    with pytest.raises(ValueError, match="eta"):
        _strict(amoo.pu_solve, a, tau=0.0, iters=1, eta=1.0)
    res = _strict(amoo.pu_solve, a, tau=0.0, iters=1)          # the default step is fine
    assert np.all(np.isfinite(res.w)) and np.all(np.isfinite(res.q))


@pytest.mark.parametrize("corruption", ["no step", "no ema", "ema nan", "ema text", "step float"])
def test_hutchinson_ema_refuses_a_corrupt_state_and_changes_nothing(corruption):
    """HutchinsonEMA.load_state_dict took any 'ema' (NaN, a string) and raised KeyError for a
    missing key; now a ValueError/TypeError names the key and the average is left as it was."""
    ema = amoo.HutchinsonEMA(beta=0.5)
    ema.update(np.array([1.0, 2.0, 3.0]))
    bad = dict(ema.state_dict())
    key = "step"
    if corruption == "no step":
        del bad["step"]
    elif corruption == "no ema":
        del bad["ema"]
        key = "ema"
    elif corruption == "ema nan":
        bad["ema"] = np.full(3, np.nan)
        key = "ema"
    elif corruption == "ema text":
        bad["ema"] = "not an array"
        key = "ema"
    else:
        bad["step"] = 1.5
    other = amoo.HutchinsonEMA(beta=0.5)
    other.update(np.array([4.0, 5.0, 6.0]))
    keep = other.state_dict()
    with pytest.raises((ValueError, TypeError), match=key):
        other.load_state_dict(bad)
    assert other.step == keep["step"]
    np.testing.assert_array_equal(other.ema, keep["ema"])


# ----------------------------------------------------------------------------- 4. Hutchinson
@pytest.mark.parametrize("dtype, big", [(np.float64, 1e308), (np.float32, 3e38),
                                        (np.float64, 1.5 * 2.0 ** 1023),
                                        (np.float32, 1.5 * 2.0 ** 127)])
def test_hutchinson_diag_of_a_near_max_hessian_is_finite(dtype, big):
    """H = big * I: every product z * Hz is exactly big, and their sum over the probes overflowed
    to inf before the division by N (madam.hutchinson_diag(lambda v: 1e308 * v, 4) was inf). The
    estimate is big: exactly for N = 10 (its scaled sum is exact), and for the 1.5 * 2^e values
    with any N (sums of a few copies of 1.5 * 2^e are exact)."""
    est = _strict(madam.hutchinson_diag, lambda v: dtype(big) * v, 4, n_samples=10,
                  dtype=dtype)
    np.testing.assert_array_equal(est, np.full(4, big, dtype=dtype))
    rows = _strict(madam.hutchinson_diag, lambda v: np.stack([dtype(big) * v, -v]), 3,
                   n_samples=7, dtype=dtype)
    expected = np.stack([np.full(3, big, dtype=dtype), np.full(3, -1.0, dtype=dtype)])
    if math.frexp(big)[0] == 0.75:
        np.testing.assert_array_equal(rows, expected)
    else:
        np.testing.assert_allclose(rows, expected, rtol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hutchinson_diag_is_unchanged_bit_for_bit_on_ordinary_input(dtype):
    """The overflow guard scales only when a product comes near the limit: ordinary estimates
    are still the plain sum over the probes divided by N."""
    h = np.random.default_rng(3).standard_normal((5, 5)).astype(dtype)
    h = h + h.T
    est = madam.hutchinson_diag(lambda v: h @ v, 5, n_samples=13, seed=4, dtype=dtype)
    acc = np.zeros(5, dtype=dtype)
    for k in range(13):
        z = amoo.rademacher(5, 4, 0, k, dtype)
        acc = acc + z * (h @ z)
    np.testing.assert_array_equal(est, acc / dtype(13))


def test_hutchinson_diag_refuses_a_float64_hvp_beyond_float32():
    """A float64 HVP of 1e300 cast to a float32 estimate overflowed in the cast (RuntimeWarning,
    then 'NaN or Inf'): a ValueError naming hvp says why."""
    with pytest.raises(ValueError, match="hvp"):
        _strict(madam.hutchinson_diag, lambda v: 1e300 * v.astype(np.float64), 3,
                dtype=np.float32)


def test_camoo_with_a_near_max_hessian_gives_simplex_weights():
    """CAMOO averages the same probe products (then its EMA): finite, on the simplex."""
    solver = amoo.CAMOO(lambda x, v: np.stack([1e308 * v, 1.5e308 * v]), n_samples=6,
                        pu_iters=5, point=lambda: np.zeros(3))
    lam, d = _strict(solver.solve, np.eye(2, 3), np.ones(2))
    assert np.all(np.isfinite(lam)) and np.all(lam >= 0.0)
    assert lam.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("dtype, a", [
    (np.float64, [[1e308, -1e308], [-1.5e308, 1.5e308]]),
    (np.float64, [[1e308, 1e308], [1.5e308, 1.5e308]]),
    (np.float32, [[3e38, -3e38], [-3.3e38, 3.3e38], [1e38, 2e38]]),
])
def test_pu_solve_near_the_dtype_limit_matches_the_scaled_game(dtype, a):
    """max|A| ~ 1e308: 2 max|A| + tau in the default step overflowed (eta = 0) and PU returned NaN
    weights. PU sees A only through eta A and eta tau, so the game is solved on 2^-k A with
    2^-k tau: the weights must be those of that scaled game exactly, value and gap 2^k times its
    own (found by the random search below, through CAMOO)."""
    a = np.array(a, dtype=dtype)
    for w_min in (0.0, 0.1):
        res = _strict(amoo.pu_solve, a, iters=20, w_min=w_min)
        k = math.frexp(float(np.abs(a).max()))[1]
        ref = amoo.pu_solve(np.ldexp(a, -k), tau=math.ldexp(0.01, -k), iters=20, w_min=w_min)
        assert np.all(np.isfinite(res.w)) and np.all(np.isfinite(res.q))
        np.testing.assert_array_equal(res.w, ref.w)
        np.testing.assert_array_equal(res.q, ref.q)
        assert res.value == math.ldexp(ref.value, k)
        assert res.eta == math.ldexp(ref.eta, -k)


# ----------------------------------------------------------------------------- 5. float32 UPGrad
# float32 Jacobians whose UPGrad direction is small (2e-5 .. 2e-4 of the largest gradient) but not
# zero: a float32 Gramian and a float32 gemv left d conflicting with a gradient (cosine -1.8e-4,
# -1.7e-4, -1.1e-4); found by a random search over ill-conditioned low-rank matrices.
NEAR_CANCELLING = [
    np.array([[0.00041817894, -0.0008923395, -0.0006531551],
              [0.00015740497, -0.0003274024, -0.00024396807],
              [0.00043537474, -0.0010106415, -0.00069669733],
              [0.00066354166, -0.0014069874, -0.0010325081],
              [-0.0006561941, 0.00144534, 0.0010326385]], dtype=np.float32),
    np.array([[1.9145603e-04, 4.4051791e-05, 1.0552594e-04, -1.5564873e-04, -1.6580700e-04],
              [-3.8348275e-04, -6.6922868e-05, -2.6579655e-04, 4.0837051e-04, 2.7342667e-04],
              [1.9913717e-04, 3.3263022e-05, 1.4487669e-04, -2.0824114e-04, -1.4910227e-04],
              [7.0453803e-05, 9.7255588e-06, 4.8839567e-05, -7.2145667e-05, -5.0523096e-05],
              [-2.3802469e-04, -5.2961805e-05, -1.3267482e-04, 1.9499967e-04, 2.0447589e-04],
              [-2.7031492e-04, -5.9154812e-05, -1.6236561e-04, 2.4514875e-04, 2.2012420e-04]],
             dtype=np.float32),
    np.array([[4.4495970e-02, 3.2751138e+00, 1.9980196e-02, 7.1743145e+00, 5.8763809e+00,
               -4.0728765e+00, 4.4759922e+00, -3.8338952e+00, 1.0656261e+00, 7.1990252e+00,
               -1.6321156e+00],
              [-7.8820653e-02, -4.5234513e+00, -2.3465019e-02, -9.9557981e+00, -8.1128206e+00,
               5.6444497e+00, -6.1845832e+00, 5.3020082e+00, -1.4904102e+00, -9.9636440e+00,
               2.2539647e+00],
              [1.7721479e-01, 1.0511807e+01, 5.5945072e-02, 2.3119659e+01, 1.8854113e+01,
               -1.3110266e+01, 1.4371156e+01, -1.2318726e+01, 3.4571049e+00, 2.3146900e+01,
               -5.2379522e+00]], dtype=np.float32),
]

# rows that positively span their span (a line): the exact UPGrad direction is 0; the float32
# Gramian made it look like a direction of 5e-6 of the gradients, conflicting with cosine < -1e-4
CANCELLING = np.array([[0.0017303912, -0.00069068227],
                       [-0.002721066, 0.0010826843],
                       [-0.00062901067, 0.00025772344]], dtype=np.float32)

ROUNDING_LEVEL = 10.0 * math.sqrt(np.finfo(np.float64).eps)   # |d| / max|g| below: d is noise


def _cosines(jac, d):
    j64, d64 = jac.astype(np.float64), d.astype(np.float64)
    return (j64 @ d64) / (np.linalg.norm(j64, axis=1) * np.linalg.norm(d64)), \
        np.linalg.norm(d64) / np.linalg.norm(j64, axis=1).max()


@pytest.mark.parametrize("index", range(len(NEAR_CANCELLING)))
def test_upgrad_float32_direction_does_not_conflict(index):
    """UPGrad promises g_j^T d >= 0: up to the rounding of d itself (float32 eps relative to
    |d|), not of the gradients it combines."""
    jac = NEAR_CANCELLING[index]
    lam, d = S.UPGrad().solve(jac)
    cos, size = _cosines(jac, d)
    assert size > 1e-6                       # a genuine direction, not rounding noise
    assert cos.min() >= -1e-6


@pytest.mark.parametrize("index", range(len(NEAR_CANCELLING)))
def test_mgda_float32_direction_is_a_common_descent_direction(index):
    """MGDA promises g_i^T d >= |d|^2 (KKT of the min-norm point): the same float32 rounding broke
    it by 1e-3 of |g_i| |d|."""
    jac = NEAR_CANCELLING[index]
    lam, d = S.MGDA().solve(jac)
    j64, d64 = jac.astype(np.float64), d.astype(np.float64)
    slack = (j64 @ d64 - d64 @ d64) / (np.linalg.norm(j64, axis=1) * np.linalg.norm(d64))
    assert slack.min() >= -1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", [[0, 1, 2], [0, 2, 1], [1, 2, 0]])
def test_upgrad_rows_of_norm_1_next_to_1e30_keep_their_constraints(dtype, order):
    """Rows (1, 0, -1), (0, 0, 1e30), (1, 0, 0): the dual cone is x0 >= x2 >= 0, the projections
    are (1, 0, 0), (e, 0, e) with e = 1e30 / 2, and (1, 0, 0), so the natural direction is
    ((2 + e) / 3, 0, e / 3). Clipping the Gramian's rounding-level negative eigenvalue on G itself
    moved its O(1) entries by 10% (a direction 8% off, depending on the order of the rows), and
    the QP on G enforced the small rows' constraints only to 1e-12 * 1e60."""
    jac = np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 1e30], [1.0, 0.0, 0.0]], dtype=dtype)[order]
    solver = S.UPGrad()
    lam, d = _strict(solver.solve, jac)
    natural = solver.scale * d.astype(np.float64)
    e = float(dtype(1e30)) / 2.0
    np.testing.assert_allclose(natural, [(2.0 + e) / 3.0, 0.0, e / 3.0],
                               rtol=8 * np.finfo(dtype).eps)


def test_upgrad_enforces_the_constraint_of_a_row_1e30_times_smaller():
    """Rows (1e-30, 0) and (-1, 1): the cone is 0 <= x0 <= x1, the projections (e, e) / 2 with
    e = 1e-30 and (0, 1), the natural direction (e / 4, 1 / 2 + e / 4). The QP on G stopped at a
    multiplier of -1e-30 (below its tolerance of 1e-12 max|G|) and returned (-1/2, 1/2): at
    cosine -0.7 with the small row. Likewise (1.4e-203) and (-1) in one dimension, whose cone is
    {0}: the small row's square underflowed to 0, UPGrad took it for a zero gradient and returned
    d = -1/2."""
    jac = np.array([[1e-30, 0.0], [-1.0, 1.0]])
    solver = S.UPGrad()
    lam, d = _strict(solver.solve, jac)
    # (x0 = e / 4 is far below the rounding of d = lam @ J, whose weights are 1 and 1e-30:
    # it comes back as 0 within 1e-15)
    np.testing.assert_allclose(solver.scale * d, [0.25e-30, 0.5 + 0.25e-30], rtol=1e-12,
                               atol=1e-15)
    assert np.all(jac @ d >= -1e-12 * np.linalg.norm(jac, axis=1) * np.linalg.norm(d))
    tiny = np.array([[1.3720744431633414e-203], [-1.0]])
    solver = S.UPGrad()
    lam, d = _strict(solver.solve, tiny)
    rounding = 1e-15 * solver.scale * (np.abs(lam) @ np.abs(tiny[:, 0]))
    assert abs(float(solver.scale * d[0])) <= rounding


def test_upgrad_float32_cancelling_rows_give_a_rounding_level_direction():
    """When the exact direction is 0 the returned d is the rounding residue of the cancelling
    combination: it must be at that level (<= 10 sqrt(eps64) max|g|), where no cosine is
    meaningful; before, it was a spurious direction of 1e-6 max|g| that conflicted."""
    lam, d = S.UPGrad().solve(CANCELLING)
    cos, size = _cosines(CANCELLING, d)
    assert cos.min() >= -1e-6 or size <= ROUNDING_LEVEL


# ----------------------------------------------------------------------------- random search
def _random_jacobian(rng, dtype, lo, hi):
    k, n = int(rng.integers(1, 7)), int(rng.integers(1, 9))
    rank = int(rng.integers(1, min(k, n) + 1))
    base = rng.standard_normal((k, rank)) @ rng.standard_normal((rank, n))
    kind = int(rng.integers(0, 6))
    if kind == 1 and k > 1:
        base[int(rng.integers(1, k))] = base[0]                      # duplicated row
    elif kind == 2:
        base[rng.random(k) < 0.4] = 0.0                              # zero rows
    elif kind == 3 and k > 1:
        base = base[:1] + 1e-7 * base                                # near-parallel rows
    elif kind == 4 and k > 1:
        half = k // 2
        base[k - half:] = -base[:half]                               # opposite rows
    norms = np.linalg.norm(base, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    exponents = rng.uniform(lo, hi, (k, 1)) if kind != 5 else np.full((k, 1), rng.uniform(lo, hi))
    return (base / norms * 10.0 ** exponents).astype(dtype)


def _all_solvers(k):
    pref = _pref(k)
    made = {name: cls for name, cls in S.SOLVERS.items() if name not in ("camoo",)}
    out = {}
    for name, cls in made.items():
        if name in ("linear", "tchebycheff", "epo"):
            out[name] = lambda cls=cls: cls(pref)
        else:
            out[name] = cls
    out["upgrad-pref"] = lambda: S.UPGrad(preference=pref)
    out["cagrad-c2"] = lambda: S.CAGrad(c=2.0)
    out["mgda-active-set"] = lambda: S.MGDA(method="active-set")
    return out


@pytest.mark.parametrize("dtype, lo, hi", [(np.float64, -30, 30), (np.float32, -15, 15),
                                           (np.float64, -300, 300), (np.float32, -40, 38)],
                         ids=["f64-1e30", "f32-1e15", "f64-1e300", "f32-full"])
def test_random_extreme_jacobians(dtype, lo, hi):
    """Fixed-seed random Jacobians (ranks 1..C, duplicated, zero, near-parallel and opposite
    rows, row norms 10^U(lo, hi)) through every registered solver, three calls each: finite
    output, weights summing to 1 (on the simplex except IMTL-G), no warning; a ValueError is
    allowed only when it names the jacobian or a hyperparameter (PAMOO's lr). Before the fixes
    the wide ranges raised LinAlgError and overflow warnings in most Gramian-based solvers."""
    rng = np.random.default_rng(2024 + lo)
    for _ in range(25):
        jac = _random_jacobian(rng, dtype, lo, hi)
        k = jac.shape[0]
        losses = 10.0 ** rng.uniform(-3, 3, k)
        for name, make in _all_solvers(k).items():
            solver = make()
            try:
                for _ in range(3):
                    lam, d = _strict(solver.solve, jac, losses)
            except ValueError as exc:
                assert not isinstance(exc, np.linalg.LinAlgError), (name, jac)
                assert "jacobian" in str(exc) or "lr" in str(exc), (name, str(exc))
                continue
            assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d)), (name, jac)
            assert math.isfinite(solver.scale), (name, jac)
            assert lam.sum() == pytest.approx(1.0, abs=1e-9) or (name == "imtlg"
                                                                  and solver.scale == 0.0)
            if name != "imtlg":
                assert np.all(lam >= 0.0), (name, lam)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direction_is_the_ordered_float64_combination(dtype):
    """solve()'s d (cm_combine) against the NumPy formula of cmadam.h: d_j = lam_0 J_0j, then
    + lam_i J_ij for each row i in order, in float64, rounded once: the same bits, for a wide
    Jacobian (many tiles of columns, a partial one last) on 1 and 2 threads; and the Gramian of
    a float32 Jacobian equals the widened matrix's to float64 rounding."""
    rng = np.random.default_rng(5)
    jac = (rng.standard_normal((7, 3 * 16384 + 7)) * 10.0 ** rng.uniform(-3, 3, (7, 1))).astype(dtype)
    wide = jac.astype(np.float64)
    np.testing.assert_allclose(S._gramian(jac), wide @ wide.T, rtol=1e-12)
    saved = madam.get_num_threads()
    for threads in (1, 2):
        madam.set_num_threads(threads)
        lam, d = S.UPGrad().solve(jac)
        want = lam[0] * wide[0]
        for i in range(1, jac.shape[0]):
            want = want + lam[i] * wide[i]
        assert d.dtype == dtype
        np.testing.assert_array_equal(d, want.astype(dtype))
        np.testing.assert_array_equal(madam._core.combine(jac, lam), d)
    madam.set_num_threads(saved)


def test_combine_refuses_bad_arguments():
    jac = np.ones((2, 3))
    with pytest.raises(ValueError, match="lam"):
        madam._core.combine(jac, np.ones(3))
    with pytest.raises(ValueError, match="jac"):
        madam._core.combine(np.ones((2, 0)), np.ones(2))
    with pytest.raises(ValueError, match="jac"):
        madam._core.combine(np.ones((4, 3))[::2], np.ones(2))
    with pytest.raises(TypeError, match="jac"):
        madam._core.combine(np.ones((2, 3), dtype=np.int64), np.ones(2))


@pytest.mark.parametrize("dtype, lo, hi", [(np.float64, -300, 300), (np.float32, -40, 38)],
                         ids=["f64", "f32"])
def test_random_extreme_amoo_inputs(dtype, lo, hi):
    """pu_solve, pamoo_weights and hutchinson_diag on fixed-seed random input with entries of
    size 10^U(lo, hi): finite results on their sets, no warning; a ValueError only when it names
    the argument at fault (A, lr, hvp)."""
    rng = np.random.default_rng(7 + abs(lo))
    for _ in range(40):
        m, d = int(rng.integers(1, 6)), int(rng.integers(1, 8))
        a = (rng.standard_normal((m, d)) * 10.0 ** rng.uniform(lo, hi, (m, 1))).astype(dtype)
        a[rng.random(m) < 0.2] = 0.0
        try:
            res = _strict(amoo.pu_solve, a, tau=float(10.0 ** rng.uniform(-3, 0)), iters=30,
                          w_min=float(rng.uniform(0.0, 1.0 / m)))
        except ValueError as exc:
            assert "A " in str(exc) or "A is" in str(exc), str(exc)
        else:
            assert np.all(np.isfinite(res.w)) and np.all(np.isfinite(res.q))
            assert abs(float(res.w.sum()) - 1.0) < 1e-4 and abs(float(res.q.sum()) - 1.0) < 1e-4
        gram = np.diag(10.0 ** rng.uniform(-30, 30, m)) + 1e-4 * np.eye(m)
        lr = float(10.0 ** rng.uniform(-8, 8))
        try:
            w = _strict(amoo.pamoo_weights, gram, 10.0 ** rng.uniform(-3, 3, m), lr=lr, iters=50)
        except ValueError as exc:
            assert "lr" in str(exc), str(exc)
        else:
            assert np.all(np.isfinite(w)) and np.all(w >= 1e-6 * (1 - 1e-6))
        h = np.diag(rng.standard_normal(d)) * 10.0 ** rng.uniform(lo, hi)
        try:
            est = _strict(madam.hutchinson_diag, lambda v: h @ v.astype(np.float64), d,
                          n_samples=int(rng.integers(1, 40)), dtype=dtype)
        except ValueError as exc:
            assert "hvp" in str(exc), str(exc)
        else:
            assert np.all(np.isfinite(est))


# ----------------------------------------------------------------------------- property-suite finds
def test_pamoo_float32_jacobian_with_a_huge_gramian_is_solved():
    """A float32 row of norm 1e30 makes A = J J^T + damping I reach 1e60 (exact in float64), so
    the default lr = 3e-3 has lr * lambda_max = 3e57: the ascent blew up and the solve was
    refused with "diverged (sum inf); lower lr", blaming lr for the jacobian's scale. The step is
    now capped at 1 / (2 lambda_max) and the solve succeeds."""
    jac = np.array([[0, 1e30, 0], [0, 0, 0], [0, -1, 0]], np.float32)
    solver = amoo.PAMOO()
    lam, d = _strict(solver.solve, jac, np.ones(3))
    assert np.all(np.isfinite(lam)) and np.all(np.isfinite(d)) and d.dtype == np.float32
    assert np.all(lam >= 0.0) and lam.sum() == pytest.approx(1.0, abs=1e-12)
    assert solver.info["lr"] == pytest.approx(0.5 / (1e60 + 1e-4), rel=1e-6)
    # the heavy row's weight is driven to the floor w_min, the others barely move from w0 = 1
    np.testing.assert_allclose(solver.info["w"], [1e-6, 1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_upgrad_zero_preference_on_every_nonzero_row(dtype):
    """UPGrad(preference=(0, 1)) with rows (1) and (0): the only nonzero row has weight 0, so no
    projection is summed and the largest log2 term was -inf; ceil(-inf) raised OverflowError.
    The zero row keeps its preference: w = (0, 1), d = 0."""
    lam, d = _strict(S.UPGrad(preference=[0.0, 1.0]).solve, np.array([[1.0], [0.0]], dtype))
    np.testing.assert_array_equal(lam, [0.0, 1.0])
    assert d.dtype == dtype and np.array_equal(d, [0.0])


def test_imtlg_direction_beyond_the_dtype_is_refused_naming_jacobian():
    """IMTL-G on float32 rows M, -M, M (M = float32 max): lam = (1, -1, 1) is right, and the exact
    d = M + M + M = 3M lies beyond float32; it was returned as inf (with an overflow warning).
    Now refused, naming jacobian; a representable d (rows M/4) is still returned exactly."""
    big = np.finfo(np.float32).max
    with pytest.raises(ValueError, match="jacobian"):
        _strict(S.IMTLG().solve, np.array([[big], [-big], [big]], np.float32))
    quarter = np.float32(big / 4)
    lam, d = _strict(S.IMTLG().solve, np.array([[quarter], [-quarter], [quarter]], np.float32))
    np.testing.assert_allclose(lam, [1.0, -1.0, 1.0], rtol=1e-12)
    assert d[0] == np.float32(3 * float(quarter))


def test_direction_overflow_refusal_leaves_a_stateful_solver_unchanged():
    """PAMOO(natural_scale=True) with losses 1e300 and damping 0 on a float32 row 1: w ~ 1e300
    (the QP's solution f / A), so d = w @ J is beyond float32. scale * d was returned as inf;
    now the solve is refused naming jacobian, and the warm start it had stored is undone."""
    solver = amoo.PAMOO(natural_scale=True, damping=0.0)
    jac = np.array([[1.0]], np.float32)
    lam, d = _strict(solver.solve, jac, np.array([1.0]))
    before = solver.state_dict()
    with pytest.raises(ValueError, match="jacobian"):
        _strict(solver.solve, jac, np.array([1e300]))
    after = solver.state_dict()
    assert after.keys() == before.keys() and np.array_equal(after["w"], before["w"])
    assert solver.scale == pytest.approx(float(solver.info["w"].sum()))


def test_pamoo_single_step_that_would_zero_every_weight():
    """PAMOO(iters=1, w_min=0) on the row 23: lr * lambda_max = 3e-3 * 529 = 1.6, so the one
    step overshot to w < 0, was clamped to 0 and refused as "diverged (sum 0.0); lower lr". The
    capped step 1 / (2 * 529) lands on the QP's solution 1 / 529 in one step."""
    solver = amoo.PAMOO(iters=1, w_min=0.0)
    lam, d = _strict(solver.solve, np.array([[23.0]]), np.array([1.0]))
    np.testing.assert_array_equal(lam, [1.0])
    assert d[0] == 23.0
    np.testing.assert_allclose(solver.info["w"], [1.0 / (529.0 + 1e-4)], rtol=1e-9)


def test_pamoo_all_zero_weights_fall_back_to_uniform_with_scale_zero():
    """With w_min = 0 and no positive loss the QP's maximiser is w = 0 (no step); lam = w / sum(w)
    is undefined, and the solve was refused as "diverged (sum 0.0)". lam is uniform, scale 0, and
    the natural direction 0."""
    solver = amoo.PAMOO(lr=0.1, iters=200, w_min=0.0, natural_scale=True)
    lam, d = _strict(solver.solve, np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([-1.0, -0.5]))
    np.testing.assert_array_equal(lam, [0.5, 0.5])
    assert solver.scale == 0.0 and np.array_equal(d, [0.0, 0.0])
    assert np.array_equal(solver.info["w"], [0.0, 0.0])


def test_pamoo_solver_matches_pamoo_weights_at_the_capped_step():
    """PAMOO(iters=22, damping=0, natural_scale=True) on float32 rows -755, 9: lr * lambda_max =
    3e-3 * 570106 = 1710, which pamoo_weights refuses; the solver ran it anyway and returned
    w ~ 3e35 and d = -2.05e38 (inf for a few more steps). It now runs pamoo_weights' iteration
    at lr = 1 / (2 lambda_max) and returns a bounded direction."""
    jac = np.array([[-755.0], [9.0]], np.float32)
    solver = amoo.PAMOO(iters=22, damping=0.0, natural_scale=True)
    lam, d = _strict(solver.solve, jac, np.ones(2))
    gram = jac.astype(np.float64) @ jac.T.astype(np.float64)
    lr = 0.5 / np.linalg.eigvalsh(gram)[-1]
    w = amoo.pamoo_weights(gram, np.ones(2), lr=lr, iters=22)
    assert np.isfinite(d[0]) and abs(d[0]) <= float(np.abs(w) @ np.abs(jac[:, 0])) * 1.001
    np.testing.assert_allclose(solver.info["w"], w, rtol=1e-12)
    assert solver.info["lr"] == pytest.approx(lr, rel=1e-12)
