"""madam.study: the collapse index and the apparent-conflict count, against hand-computed cases."""
import json
from pathlib import Path

import numpy as np
import pytest

import madam
from madam import problems, study


def linear_front(n=201):
    t = np.linspace(0.0, 1.0, n)
    return np.column_stack([t, 1.0 - t])


def test_mean_pairwise_by_hand():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    # pairs: 5, 4, 3 (each counted twice over ordered pairs)
    assert study.mean_pairwise(pts) == pytest.approx((5 + 4 + 3) / 3)
    assert study.mean_pairwise(pts[:1]) == 0.0


def test_farthest_points_picks_the_ends_first():
    pts = linear_front(101)
    chosen = study.farthest_points(pts, 3)
    np.testing.assert_allclose(chosen, [[0, 1], [1, 0], [0.5, 0.5]])
    assert study.farthest_points(pts[:2], 5).shape == (2, 2)
    with pytest.raises(ValueError, match="k"):
        study.farthest_points(pts, 0)


def test_collapse_index_zero_for_even_cover_one_for_a_point():
    front = linear_front()
    info = study.FrontInfo(front, ref=[1.0, 1.0], k=5)
    even = study.farthest_points(front, 5)
    assert info.collapse_index(even) == pytest.approx(0.0, abs=1e-12)
    assert info.collapse_index(np.tile([[0.3, 0.7]], (5, 1))) == pytest.approx(1.0)
    # the two ends only: spread of {0, 1} pairs over 5 points would be larger than the even cover
    half = np.array([[0.25, 0.75], [0.75, 0.25]] * 2 + [[0.5, 0.5]])
    ci = info.collapse_index(half)
    assert 0.0 < ci < 1.0
    expected = 1 - study.mean_pairwise(half) / study.mean_pairwise(even)
    assert ci == pytest.approx(expected)


def test_collapse_index_undefined_on_a_tiny_front():
    info = study.FrontInfo(np.array([[1.0, 1.0], [1.001, 0.999]]), ref=[100.0, 100.0], k=3)
    assert info.collapse_index(np.zeros((3, 2))) is None


def test_front_info_targets_and_metrics():
    front = linear_front() + 0.5               # losses in [0.5, 1.5]: a point per direction
    prefs = np.array([[0.5, 0.5], [0.25, 0.75]])
    info = study.FrontInfo(front, ref=[2.0, 2.0], k=2, prefs=prefs)
    np.testing.assert_allclose(info.targets[0], [1.0, 1.0])
    # the target is parallel to the preference: (a, 2 - a) parallel to (1, 3) -> a = 0.5
    np.testing.assert_allclose(info.targets[1], [0.5, 1.5])
    m = info.metrics(front[[0, -1]], known=True)
    assert m["igd"] > 0 and 0 < m["hv"] < 1
    m_empty = info.metrics(np.full((2, 2), np.nan), known=True)
    assert m_empty["hv"] == 0.0 and m_empty["ci"] == 1.0
    with pytest.raises(ValueError, match="ref"):
        study.FrontInfo(front, ref=[2.0], k=2)


def test_epo_ray_is_normalised_inverse():
    np.testing.assert_allclose(study.epo_ray([0.25, 0.75]), [0.75, 0.25])
    for bad in ([1.0], [0.5, 0.0], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="w"):
            study.epo_ray(bad)


@pytest.mark.parametrize("step, expected", [
    ([1.0, 1.0], (True, False)),      # along d: decreases both
    ([1.0, -0.5], (True, True)),      # increases f2 (g2 . s = -0.5 < 0)
    ([1e-20, 0.0], (True, False)),    # tiny: g2 . s = 0 is not a conflict
])
def test_is_apparent_conflict_by_hand(step, expected):
    jac = np.array([[1.0, 0.0], [0.0, 1.0]])
    d = np.array([0.5, 0.5])
    assert study.is_apparent_conflict(jac, d, np.array(step), np.zeros(2)) == expected


def test_not_eligible_when_d_increases_an_objective():
    jac = np.array([[1.0, 0.0], [-1.0, 0.1]])
    assert study.is_apparent_conflict(jac, np.array([1.0, 0.0]), np.array([1.0, 0.0]),
                                      np.zeros(2)) == (False, False)


def test_sgd_never_conflicts_and_adam_does_on_vlmop2():
    vlmop2 = problems.get("vlmop2")
    c, e = study.apparent_conflict(vlmop2, lambda x: madam.SGD(x, lr=0.1), 0, 200)
    assert e > 100 and c == 0
    c, e = study.apparent_conflict(vlmop2, lambda x: madam.Adam(x, lr=0.03), 0, 200)
    assert e > 100 and c > e // 2     # the study measured 0.91 of eligible steps


def test_shifted_moves_losses_and_front_not_gradients():
    base = problems.get("zdt1", n=5)
    shifted = study.Shifted(base, 0.25)
    x = base.initial_points(1, np.random.default_rng(0))[0]
    f0, j0 = base.losses_and_jacobian(x)
    f1, j1 = shifted.losses_and_jacobian(x)
    np.testing.assert_allclose(f1, f0 + 0.25)
    np.testing.assert_array_equal(j1, j0)
    np.testing.assert_allclose(shifted.pareto_front(11), base.pareto_front(11) + 0.25)
    assert shifted.dim == base.dim and shifted.name == base.name


# ============================================================================ metric vs momentum
class TwoWells(problems.Problem):
    """f1 = |x - (0, 0)|^2, f2 = |x - (1, 0)|^2 on R^2, started at (0.5, 1). Pareto set: x = (t, 0),
    t in [0, 1], front (t^2, (1 - t)^2); w1 f1 + w2 f2 is minimised at t = w2 / (w1 + w2)."""

    name = "two_wells"

    def __init__(self):
        super().__init__(2, 2)

    def _losses(self, x, batch):
        return np.array([x @ x, (x[0] - 1.0) ** 2 + x[1] ** 2])

    def _jacobian(self, x, batch):
        return np.array([2.0 * x, [2.0 * (x[0] - 1.0), 2.0 * x[1]]])

    def _initial_points(self, k, rng):
        return np.tile([0.5, 1.0], (k, 1))

    def _pareto_front(self, n_points):
        t = np.linspace(0.0, 1.0, n_points)
        return np.column_stack([t * t, (1.0 - t) ** 2])


def test_extent_of_by_hand():
    f0 = np.array([1.0, 1.0])
    pts = np.array([[0.0, 0.5], [0.5, 0.0], [0.9, 0.9]])
    # nondominated: the first two; ranges 0.5 and 0.5 in a box [0, 1]
    assert study.extent_of(f0, pts) == pytest.approx(0.5)
    # every point: f1 spans [0, 0.9] of [0, 1]
    assert study.extent_of(f0, pts, nondominated=False) == pytest.approx(0.9)
    # one point (or one that dominates the rest): no trade-off at all
    assert study.extent_of(f0, [[0.2, 0.3], [0.4, 0.4]]) == 0.0
    # a start below the points widens the box: range 1 of [0, 2]
    assert study.extent_of([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]) == pytest.approx(0.5)
    # a NaN row is dropped; an objective that never moves contributes 0
    assert study.extent_of([1.0, 1.0], [[0.0, 1.0], [np.nan, 0.0]]) == 0.0
    with pytest.raises(ValueError, match="finite"):
        study.extent_of(f0, [[np.nan, 1.0]])


def test_scalarisation_endpoints_and_extent_on_a_known_front():
    prob = TwoWells()
    w = study._default_preferences(2)
    np.testing.assert_allclose(w[:, 0], np.arange(7, 0, -1) / 8)
    f0, ends = study.scalarisation_endpoints(prob, seed=0, steps=3000, lr=0.05)
    np.testing.assert_allclose(f0, [1.25, 1.25])
    # minimiser of w1 f1 + w2 f2: t = w2, losses (w2^2, w1^2)
    np.testing.assert_allclose(ends, np.column_stack([w[:, 1] ** 2, w[:, 0] ** 2]), atol=1e-4)
    # f1 spans 1/64 .. 49/64 of the box [1/64, 1.25]: (48/64) / (79/64)
    assert study.front_extent(prob, steps=3000, lr=0.05) == pytest.approx(48 / 79, rel=1e-3)
    # the true front: f1 spans [0, 1] of the box [0, 1.25]
    assert study.front_extent(prob, known_front=True) == pytest.approx(0.8)


def test_front_extent_separates_aligned_from_conflicting():
    aligned = problems.get("amoo_specification")      # shared minimiser x = 0
    assert study.front_extent(aligned, known_front=True) == 0.0
    assert study.front_extent(aligned, steps=500, lr=0.01) < 1e-6
    conflicting = problems.get("vlmop2")
    assert study.front_extent(conflicting, steps=500, lr=0.03) > 0.9


def test_study_problem_matches_the_collapse_study():
    ts = study.study_problem("teacher_student")
    assert (ts.n_obj, ts.hidden, ts.batch_size, ts.sigma) == (2, 16, 128, 0.1)
    assert study.study_problem("zdt1").offset == 0.01
    toy = study.study_problem("cagrad_toy")
    starts = toy.initial_points(20, np.random.default_rng(0))
    gap = np.abs(starts[:, None, :] - study.ToyStarts.STARTS[None]).max(axis=2).min(axis=1)
    assert np.all(gap <= 0.5) and len(np.unique(starts[:, 0])) == 20


def test_conflict_optimizer_sets_betas():
    x = np.zeros(3)
    adam = study.conflict_optimizer("adam", 0.02, 0.0)(x)
    assert isinstance(adam, madam.Adam) and adam.betas == (0.0, 0.999) and adam.lr == 0.02
    m = study.conflict_optimizer("madam", 0.02, 0.5, 0.99)(x)
    assert isinstance(m, madam.MAdam) and m.betas == (0.5, 0.99)
    with pytest.raises(ValueError, match="optimizer"):
        study.conflict_optimizer("sgd", 0.1)


def test_conflict_table_four_columns_at_one_lr():
    vlmop2 = problems.get("vlmop2")
    table = study.conflict_table([vlmop2], 0.03, seeds=[0, 1], steps=60)
    entry = table["vlmop2"]
    assert entry["lr"] == 0.03 and entry["steps"] == 60 and entry["seeds"] == [0, 1]
    assert list(entry["columns"]) == ["adam b1=0.9", "adam b1=0", "madam b1=0.9", "madam b1=0"]
    for label, col in entry["columns"].items():
        make = (lambda x, b=col["beta1"]: madam.Adam(x, lr=0.03, betas=(b, 0.999))) \
            if col["optimizer"] == "adam" else \
            (lambda x, b=col["beta1"]: madam.MAdam(x, solver=None, lr=0.03, betas=(b, 0.999)))
        direct = [study.apparent_conflict(vlmop2, make, s, 60) for s in (0, 1)]
        assert col["conflicts"] == [c for c, _ in direct], label
        assert col["eligible"] == [e for _, e in direct], label
        assert col["fractions"] == [c / e for c, e in direct], label
    # a dict of rates: every column of a problem runs at its rate
    two = study.conflict_table({"a": vlmop2, "b": vlmop2}, {"a": 0.03, "b": 0.1}, [0], 20,
                               beta1s=(0.0,), optimizers=("adam",))
    assert two["a"]["lr"] == 0.03 and two["b"]["lr"] == 0.1
    assert list(two["a"]["columns"]) == ["adam b1=0"]


@pytest.mark.parametrize("optimizer", ["adam", "madam"])
def test_no_momentum_no_conflict_on_diagonal_quadratics(optimizer):
    # grad f_i = 2 A_i * x with A >= 0: every coordinate of every g_i, and of d, has the sign of
    # x_j, so a positive diagonal rescaling of d (beta1 = 0: the metric alone) keeps g_i . s >= 0
    prob = problems.get("amoo_specification", delta=0.01)
    for seed in range(3):
        c, e = study.apparent_conflict(prob, study.conflict_optimizer(optimizer, 0.01, 0.0),
                                       seed, 300)
        assert e > 0 and c == 0
    # two identical objectives: d = g, and g . (P g) > 0 for any positive diagonal P
    twin = problems.DiagonalQuadratics([[1.0, 100.0, 0.01], [1.0, 100.0, 0.01]])
    c, e = study.apparent_conflict(twin, study.conflict_optimizer(optimizer, 0.01, 0.0), 0, 300)
    assert e > 0 and c == 0


STORED = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "conflict.json"


@pytest.mark.skipif(not STORED.exists(), reason="benchmarks/results/conflict.json not stored")
def test_stored_conflict_table_recomputes():
    saved = json.loads(STORED.read_text())
    assert set(saved["provenance"]) == {"madam_version", "core_source_hash"}
    assert saved["settings"]["beta1s"] == [0.9, 0.0]
    name, label, seed = "vlmop2", "adam b1=0", 0
    entry = saved["problems"][name]
    col = entry["columns"][label]
    assert entry["lr"] == study.CONFLICT_LR[name]
    again = study.conflict_table({name: study.study_problem(name)}, entry["lr"], [seed],
                                 entry["steps"], beta1s=(col["beta1"],),
                                 optimizers=(col["optimizer"],))
    fresh = again[name]["columns"][label]
    i = entry["seeds"].index(seed)
    assert fresh["conflicts"][0] == col["conflicts"][i]
    assert fresh["eligible"][0] == col["eligible"][i]
    assert abs(fresh["fractions"][0] - col["fractions"][i]) <= 1e-12


def test_stored_collapse_study_recomputes():
    """benchmarks/results/collapse.json (the first collapse study) records what made it, and one
    EPO run (ZDT1, Adam at its tuned lr, seed 0, the middle preference) recomputes exactly."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "collapse.json"
    saved = json.loads(path.read_text())
    assert set(saved["provenance"]) == {"madam_version", "core_source_hash"}
    entry = saved["claim1"]["zdt1"]
    prefs = np.array(entry["prefs"])
    k = len(prefs) // 2
    lr = entry["lr"]["epo/adam"]
    res = madam.run(study.study_problem("zdt1"),
                    {"epo": lambda preference: madam.solvers.EPO(study.epo_ray(preference))},
                    {"adam": ("Adam", {})}, preferences=prefs[k:k + 1], seeds=[0],
                    steps=entry["steps"], lr=lr, max_loss=1e6, progress=False)
    stored = np.array(entry["methods"]["epo/adam"]["endpoints"][0][k])
    np.testing.assert_allclose(res.final_losses[0], stored, rtol=1e-12)


def test_every_stored_result_records_what_made_it():
    """Every benchmarks/results/*.json carries madam.study.provenance(): the package version and
    the SHA-256 of the C sources of the core that produced it."""
    folder = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
    files = sorted(folder.glob("*.json"))
    assert files
    for path in files:
        prov = json.loads(path.read_text()).get("provenance")
        assert prov is not None, f"{path.name} has no provenance"
        assert prov["madam_version"] and len(prov["core_source_hash"]) == 64, path.name
    assert set(study.provenance()) == {"madam_version", "core_source_hash"}
