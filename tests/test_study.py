"""madam.study: the collapse index and the apparent-conflict count, against hand-computed cases."""
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
