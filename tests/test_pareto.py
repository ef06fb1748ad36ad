"""madam.pareto against moocore (hypervolume, contributions, nondominance, ranks, IGD, IGD+) on
random fronts of 10 to 100,000 points, against NumPy references (spacing, spread), and its
argument checking. pymoo is not installed in this project's environment, so it is not used.

Point sets ("kinds"), all minimisation:
  front  points on the positive unit sphere, reflected (1 - x): mutually nondominated;
  cloud  uniform in the unit cube: mostly dominated, some points beyond the reference point;
  grid   integers in [0, 12): ties in every objective, duplicates, weakly dominated points and
         points on or beyond the reference point (ref = 10);
  mixed  a front, plus dominated copies shifted away, plus exact duplicates.
"""
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest

import madam
from madam import pareto

moocore = pytest.importorskip("moocore")


# ----------------------------------------------------------------------------- data
def _front(rng, n, m):
    x = np.abs(rng.standard_normal((n, m))) + 1e-12
    return 1.0 - x / np.linalg.norm(x, axis=1, keepdims=True)


def _cloud(rng, n, m):
    return rng.random((n, m))


def _grid(rng, n, m):
    x = rng.integers(0, 12, size=(n, m)).astype(np.float64)
    dup = rng.integers(0, n, size=n // 8)
    x[rng.integers(0, n, size=n // 8)] = x[dup]
    return x


def _mixed(rng, n, m):
    k = max(1, n // 2)
    x = _front(rng, n, m)
    shift = rng.random((n - k, m)) * 0.05
    x[k:] = x[rng.integers(0, k, size=n - k)] + shift
    x[k::4] = x[rng.integers(0, k, size=len(x[k::4]))]  # exact duplicates
    return x


KINDS = {"front": (_front, 1.1), "cloud": (_cloud, 0.9), "grid": (_grid, 10.0),
         "mixed": (_mixed, 1.05)}


def make(kind, n, m, seed=0):
    gen, ref = KINDS[kind]
    rng = np.random.default_rng([seed, n, m, list(KINDS).index(kind)])
    return gen(rng, n, m), np.full(m, ref)


# ----------------------------------------------------------------------------- hypervolume
HV_SIZES = ([(2, n) for n in (10, 100, 1000, 10_000, 100_000)]
            + [(3, n) for n in (10, 100, 1000, 10_000, 100_000)]
            + [(4, n) for n in (10, 100, 1000)]
            + [(5, n) for n in (10, 100, 300)]
            + [(6, n) for n in (10, 60)])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m,n", HV_SIZES)
def test_hypervolume_vs_moocore(m, n, kind):
    pts, ref = make(kind, n, m)
    want = moocore.hypervolume(pts, ref=ref)
    got = pareto.hypervolume(pts, ref)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("m,n", [(3, 2000), (4, 300), (5, 80)])
@pytest.mark.parametrize("kind", ["front", "grid", "mixed"])
def test_hypervolume_generic_algorithm_agrees(m, n, kind):
    pts, ref = make(kind, n, m, seed=1)
    assert pareto.hypervolume(pts, ref, algorithm="generic") == pytest.approx(
        pareto.hypervolume(pts, ref), rel=1e-12)


def test_hypervolume_small_exact():
    dat = np.array([[5, 5], [4, 6], [2, 7], [7, 4]])
    assert pareto.hypervolume(dat, [10, 10]) == 38.0            # moocore's documented example
    assert pareto.hypervolume([[0, 10], [10, 0], [5, -10]], [10, 10]) == 100.0  # on ref: nothing
    assert pareto.hypervolume([[0, 0, 1], [0, 1, 0]], [2, 2, 2]) == 6.0
    assert pareto.hypervolume([[3.0], [12.0], [-1.5]], [10.0]) == 11.5
    assert pareto.hypervolume(np.empty((0, 3)), np.ones(3)) == 0.0
    assert pareto.hypervolume([[2, 2]], [1, 1]) == 0.0           # nothing below ref


def _exact_hypervolume(pts, ref):
    """Inclusion-exclusion over all subsets, in exact rational arithmetic."""
    rows = [[Fraction(float(v)) for v in p] for p in pts if np.all(p < ref)]
    r = [Fraction(float(v)) for v in ref]
    total = Fraction(0)
    for k in range(1, len(rows) + 1):
        for subset in combinations(rows, k):
            vol = Fraction(1)
            for d in range(len(r)):
                vol *= r[d] - max(p[d] for p in subset)
            total += vol if k % 2 else -vol
    return total


@pytest.mark.parametrize("m,n,seed", [(3, 10, 0), (4, 9, 1), (5, 9, 2), (6, 8, 3), (7, 8, 4)])
def test_hypervolume_exact_rational(m, n, seed):
    # mixed signs and scales, where moocore's inclusion-exclusion (5-D and up) loses ~1e-12
    rng = np.random.default_rng(seed)
    pts = rng.standard_normal((n, m)) * 10.0 ** rng.integers(-3, 4, size=m)
    ref = np.where(np.arange(m) % 3 == 1, np.quantile(pts, 0.9, axis=0),  # cuts some points
                   pts.max(axis=0) + 0.1 * np.abs(pts).max(axis=0))
    exact = _exact_hypervolume(pts, ref)
    assert exact > 0
    got = Fraction(pareto.hypervolume(pts, ref))
    assert abs(got - exact) / exact < 1e-14


# ----------------------------------------------------------------------------- contributions
HVC_CASES = ([(2, n, True) for n in (10, 1000, 20_000)] + [(3, n, True) for n in (10, 1000, 20_000)]
             + [(4, 60, True), (5, 40, True)]
             + [(2, 150, False), (3, 150, False), (4, 40, False)])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m,n,ignore", HVC_CASES)
def test_hv_contributions_vs_moocore(m, n, ignore, kind):
    pts, ref = make(kind, n, m)
    want = moocore.hv_contributions(pts, ref=ref, ignore_dominated=ignore)
    got = pareto.hv_contributions(pts, ref, ignore_dominated=ignore)
    assert got.shape == (n,) and got.dtype == np.float64
    scale = max(moocore.hypervolume(pts, ref=ref), 1e-300)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13 * scale)
    assert np.all(got >= 0)


def test_hv_contributions_definition_and_examples():
    x = np.array([[5, 1], [1, 5], [4, 2], [4, 4], [5, 1]])
    assert pareto.hv_contributions(x, [6, 6]).tolist() == [0, 3, 3, 0, 0]
    assert pareto.hv_contributions(x, [6, 6], ignore_dominated=False).tolist() == [0, 3, 2, 0, 0]
    pts, ref = make("mixed", 30, 3, seed=4)
    full = pareto.hypervolume(pts, ref)
    got = pareto.hv_contributions(pts, ref, ignore_dominated=False)
    for i in range(len(pts)):  # hv(X) - hv(X \ {x_i})
        assert got[i] == pytest.approx(full - pareto.hypervolume(np.delete(pts, i, 0), ref),
                                       abs=1e-12)


# ----------------------------------------------------------------------------- nondominance
ND_SIZES = ([(2, n) for n in (10, 1000, 100_000)] + [(3, n) for n in (10, 1000, 100_000)]
            + [(4, n) for n in (10, 3000)] + [(5, n) for n in (10, 3000)])


@pytest.mark.parametrize("keep_weakly", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m,n", ND_SIZES)
def test_is_nondominated_vs_moocore(m, n, kind, keep_weakly):
    pts, _ = make(kind, n, m)
    got = pareto.is_nondominated(pts, keep_weakly=keep_weakly)
    assert got.dtype == np.bool_ and got.shape == (n,)
    np.testing.assert_array_equal(got, moocore.is_nondominated(pts, keep_weakly=keep_weakly))
    np.testing.assert_array_equal(
        pareto.filter_dominated(pts, keep_weakly=keep_weakly),
        moocore.filter_dominated(pts, keep_weakly=keep_weakly))


def test_is_nondominated_documented_example():
    s = np.array([[1, 1], [0, 1], [1, 0], [1, 0]])
    assert pareto.is_nondominated(s).tolist() == [False, True, True, False]
    assert pareto.is_nondominated(s, keep_weakly=True).tolist() == [False, True, True, True]
    assert pareto.is_nondominated(np.empty((0, 2))).shape == (0,)


RANK_SIZES = ([(2, n) for n in (10, 1000, 100_000)] + [(3, n) for n in (10, 1000, 20_000)]
              + [(4, n) for n in (10, 2000)] + [(5, n) for n in (10, 2000)])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m,n", RANK_SIZES)
def test_pareto_rank_vs_moocore(m, n, kind):
    pts, _ = make(kind, n, m)
    got = pareto.pareto_rank(pts)
    assert got.dtype == np.int64 and got.shape == (n,)
    np.testing.assert_array_equal(got, moocore.pareto_rank(pts))


@pytest.mark.parametrize("m", [2, 3, 4])
def test_pareto_rank_generic_agrees(m):
    pts, _ = make("grid", 3000, m, seed=2)
    np.testing.assert_array_equal(pareto.pareto_rank(pts, algorithm="generic"),
                                  pareto.pareto_rank(pts))
    np.testing.assert_array_equal(pareto.is_nondominated(pts, algorithm="generic"),
                                  pareto.is_nondominated(pts))


# ----------------------------------------------------------------------------- IGD, IGD+
IGD_CASES = [(2, 10, 50), (2, 1000, 500), (3, 2000, 300), (4, 500, 200), (5, 300, 100)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m,n,k", IGD_CASES)
def test_igd_vs_moocore(m, n, k, kind):
    pts, _ = make(kind, n, m)
    front, _ = make("front", k, m, seed=3)
    assert pareto.igd(pts, front) == pytest.approx(moocore.igd(pts, ref=front), rel=1e-14)
    assert pareto.igd_plus(pts, front) == pytest.approx(moocore.igd_plus(pts, ref=front),
                                                        rel=1e-14)


def test_igd_documented_examples():
    dat = np.array([[3.5, 5.5], [3.6, 4.1], [4.1, 3.2], [5.5, 1.5]])
    ref = np.array([[1, 6], [2, 5], [3, 4], [4, 3], [5, 2], [6, 1]])
    assert pareto.igd(dat, ref) == pytest.approx(1.0627908666722465, rel=1e-15)
    assert pareto.igd_plus(dat, ref) == pytest.approx(0.9855036468106652, rel=1e-15)
    ref = np.array([10, 0, 6, 1, 2, 2, 1, 6, 0, 10]).reshape(-1, 2)
    a = np.array([4, 2, 3, 3, 2, 4]).reshape(-1, 2)
    b = np.array([8, 2, 4, 4, 2, 8]).reshape(-1, 2)
    assert pareto.igd_plus(a, ref) == pytest.approx(1.482842712474619, rel=1e-15)
    assert pareto.igd_plus(b, ref) == pytest.approx(2.260112615949154, rel=1e-15)
    assert pareto.igd(np.empty((0, 2)), ref) == np.inf


# ----------------------------------------------------------------------------- spacing, spread
def spacing_ref(a):
    d = np.abs(a[:, None, :] - a[None, :, :]).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    d = d.min(axis=1)
    return float(np.sqrt(((d - d.mean()) ** 2).sum() / (len(a) - 1)))


def spread_ref(a, ref=None):
    a = a[np.lexsort((a[:, 1], a[:, 0]))]
    d = np.hypot(*(a[1:] - a[:-1]).T)
    df = dl = 0.0
    if ref is not None:
        e1 = ref[np.lexsort((ref[:, 1], ref[:, 0]))[0]]
        e2 = ref[np.lexsort((ref[:, 0], ref[:, 1]))[0]]
        df, dl = np.hypot(*(a[0] - e1)), np.hypot(*(a[-1] - e2))
    return float((df + dl + np.abs(d - d.mean()).sum()) / (df + dl + len(d) * d.mean()))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m,n", [(2, 2), (2, 50), (3, 400), (5, 200)])
def test_spacing_vs_numpy(m, n, kind):
    pts, _ = make(kind, n, m)
    assert pareto.spacing(pts) == pytest.approx(spacing_ref(pts), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("kind", ["front", "cloud", "mixed"])
@pytest.mark.parametrize("n", [3, 30, 1000])
def test_spread_vs_numpy(n, kind):
    pts, _ = make(kind, n, 2)
    front, _ = make("front", 100, 2, seed=5)
    assert pareto.spread(pts) == pytest.approx(spread_ref(pts), rel=1e-12)
    assert pareto.spread(pts, front) == pytest.approx(spread_ref(pts, front), rel=1e-12)


def test_spacing_spread_exact():
    assert pareto.spacing([[0, 0], [1, 1], [3, 3]]) == pytest.approx(np.sqrt(4 / 3), rel=1e-15)
    assert pareto.spread([[0, 2], [1, 1], [2, 0]]) == 0.0
    assert pareto.spread([[0, 2], [1, 1], [2, 0]], [[0, 2], [2, 0]]) == 0.0
    assert np.isnan(pareto.spread([[1, 1], [1, 1]]))


# ----------------------------------------------------------------------------- input handling
def test_float32_int_and_list_inputs_are_converted_to_float64():
    pts, ref = make("mixed", 500, 3)
    p32, r32 = pts.astype(np.float32), ref.astype(np.float32)
    p64, ref = p32.astype(np.float64), r32.astype(np.float64)  # float32 converts exactly
    assert pareto.hypervolume(p32, r32) == pareto.hypervolume(p64, ref)
    np.testing.assert_array_equal(pareto.hv_contributions(p32, r32),
                                  pareto.hv_contributions(p64, ref))
    np.testing.assert_array_equal(pareto.is_nondominated(p32), pareto.is_nondominated(p64))
    np.testing.assert_array_equal(pareto.pareto_rank(p32), pareto.pareto_rank(p64))
    assert pareto.igd(p32, p32[:50]) == pareto.igd(p64, p64[:50])
    assert pareto.spacing(p32) == pareto.spacing(p64)
    grid = np.array([[1, 2], [2, 1], [2, 2]], dtype=np.int32)
    assert pareto.hypervolume(grid, [3, 3]) == pareto.hypervolume(grid.tolist(), [3.0, 3.0]) == 3.0
    fortran = np.asfortranarray(pts)
    assert pareto.hypervolume(fortran, ref) == pareto.hypervolume(pts, ref)
    assert pareto.hypervolume(pts[::2], ref) == pareto.hypervolume(pts[::2].copy(), ref)


def test_results_do_not_depend_on_threads():
    pts, ref = make("mixed", 400, 4, seed=6)
    front, _ = make("front", 300, 4, seed=7)
    calls = [lambda: pareto.hypervolume(pts, ref),
             lambda: pareto.hypervolume(pts[:120], ref[:4]),
             lambda: pareto.hv_contributions(pts, ref, ignore_dominated=False),
             lambda: pareto.is_nondominated(pts),
             lambda: pareto.igd_plus(pts, front),
             lambda: pareto.spacing(pts)]
    saved = madam.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            madam.set_num_threads(threads)
            results.append([np.asarray(f()).tobytes() for f in calls])
    finally:
        madam.set_num_threads(saved)
    assert results[0] == results[1]


P2 = [[0.0, 1.0], [1.0, 0.0]]
BAD_INPUT = [
    # (function, args, kwargs, exception, text in the message)
    (pareto.hypervolume, ("abc", [1, 1]), {}, TypeError, "points"),
    (pareto.hypervolume, (np.ones((2, 2), dtype=complex), [1, 1]), {}, TypeError, "points"),
    (pareto.hypervolume, (np.ones((2, 2), dtype=bool), [1, 1]), {}, TypeError, "points"),
    (pareto.hypervolume, ([[0, 1], [1]], [1, 1]), {}, TypeError, "points"),
    (pareto.hypervolume, ([0.0, 1.0], [1, 1]), {}, ValueError, "points"),
    (pareto.hypervolume, (np.ones((2, 2, 2)), [1, 1]), {}, ValueError, "points"),
    (pareto.hypervolume, (np.ones((2, 0)), []), {}, ValueError, "points"),
    (pareto.hypervolume, ([[0.0, np.nan]], [1, 1]), {}, ValueError, "points"),
    (pareto.hypervolume, ([[0.0, np.inf]], [1, 1]), {}, ValueError, "points"),
    (pareto.hypervolume, (P2, [1, 1, 1]), {}, ValueError, "ref"),
    (pareto.hypervolume, (P2, [[1, 1]]), {}, ValueError, "ref"),
    (pareto.hypervolume, (P2, 1.0), {}, ValueError, "ref"),
    (pareto.hypervolume, (P2, [1, np.inf]), {}, ValueError, "ref"),
    (pareto.hypervolume, (P2, ["a", "b"]), {}, TypeError, "ref"),
    (pareto.hypervolume, (P2, [1, 1]), {"algorithm": "wfg"}, ValueError, "algorithm"),
    (pareto.hv_contributions, (P2, [1, 1]), {"ignore_dominated": 1}, TypeError, "ignore_dominated"),
    (pareto.hv_contributions, (P2, [1]), {}, ValueError, "ref"),
    (pareto.is_nondominated, (P2,), {"keep_weakly": "yes"}, TypeError, "keep_weakly"),
    (pareto.is_nondominated, ([[np.nan, 0.0]],), {}, ValueError, "points"),
    (pareto.filter_dominated, ([1.0, 2.0],), {}, ValueError, "points"),
    (pareto.pareto_rank, (np.ones(3),), {}, ValueError, "points"),
    (pareto.pareto_rank, (P2,), {"algorithm": 1}, ValueError, "algorithm"),
    (pareto.igd, (P2, np.empty((0, 2))), {}, ValueError, "ref"),
    (pareto.igd, (P2, [[0.0, 1.0, 2.0]]), {}, ValueError, "points"),
    (pareto.igd, (P2, [[0.0, np.nan]]), {}, ValueError, "ref"),
    (pareto.igd_plus, ([[np.inf, 0.0]], P2), {}, ValueError, "points"),
    (pareto.spacing, ([[0.0, 1.0]],), {}, ValueError, "points"),
    (pareto.spacing, ([[0.0, np.nan], [1.0, 1.0]],), {}, ValueError, "points"),
    (pareto.spread, ([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0]],), {}, ValueError, "points"),
    (pareto.spread, ([[0.0, 1.0]],), {}, ValueError, "points"),
    (pareto.spread, (P2, [[0.0, 1.0, 2.0]]), {}, ValueError, "ref"),
    (pareto.spread, (P2, np.empty((0, 2))), {}, ValueError, "ref"),
]


@pytest.mark.parametrize("func,args,kwargs,exc,name", BAD_INPUT,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(BAD_INPUT)])
def test_bad_input_names_the_argument(func, args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        func(*args, **kwargs)
