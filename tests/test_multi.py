"""madam.multi: the multi-objective step protocol and Scalarized (a solver's direction handed to a
first-order optimiser), against the hand-written loop it replaces."""
import numpy as np
import pytest

import madam
import madam.solvers as S
from madam.multi import MultiObjectiveOptimizer, Scalarized, as_multi_objective
from snapshot import freeze_state


def _jacobians(seed, steps, k=3, n=5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((k, n)).astype(dtype) for _ in range(steps)]


def _losses(k):
    return np.linspace(1.0, 2.0, k)


SOLVER_FACTORIES = {
    "mgda": lambda: S.MGDA(),
    "rlw": lambda: S.RLW(seed=3),
    "dwa": lambda: S.DWA(),
    "pcgrad": lambda: S.PCGrad(seed=5),
    "upgrad": lambda: S.UPGrad(),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver_name", sorted(SOLVER_FACTORIES))
def test_scalarized_equals_the_hand_loop_bit_for_bit(solver_name, dtype):
    jacs = _jacobians(1, 6, dtype=dtype)
    x_hand = np.linspace(-1, 1, 5).astype(dtype)
    x_multi = x_hand.copy()
    opt_hand, solver_hand = madam.Adam(x_hand, lr=0.05), SOLVER_FACTORIES[solver_name]()
    multi = Scalarized(madam.Adam(x_multi, lr=0.05), SOLVER_FACTORIES[solver_name]())
    for jac in jacs:
        lam, d = solver_hand.solve(jac, _losses(3))
        opt_hand.step(d)
        assert multi.step(jac, _losses(3)) is True
        np.testing.assert_array_equal(multi.last_preference, lam)
    np.testing.assert_array_equal(x_multi, x_hand)


def test_preference_and_direction_bypass_the_solver():
    jac = _jacobians(2, 1)[0]
    pref = np.array([0.2, 0.3, 0.5])
    x1, x2, x3 = (np.zeros(5) for _ in range(3))
    Scalarized(madam.SGD(x1, lr=0.1), None).step(jac, preference=pref)
    madam.SGD(x2, lr=0.1).step(pref @ jac)
    np.testing.assert_allclose(x1, x2, rtol=1e-15, atol=1e-15)
    multi = Scalarized(madam.SGD(x3, lr=0.1), "mgda")
    multi.step(jac, direction=np.ones(5))
    np.testing.assert_array_equal(x3, -0.1 * np.ones(5))
    assert multi.last_preference is None  # no lambda was given or chosen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_preference_step_forms_the_solvers_direction_bit_for_bit(dtype):
    """study.apparent_conflict solves, then steps with preference=lam: the optimiser must see
    exactly the solver's d."""
    jac = _jacobians(6, 1, k=4, n=7, dtype=dtype)[0]
    lam, d = S.UPGrad().solve(jac)
    x1, x2 = np.zeros(7, dtype), np.zeros(7, dtype)
    Scalarized(madam.SGD(x1, lr=1.0), None).step(jac, preference=lam)
    madam.SGD(x2, lr=1.0).step(d)
    np.testing.assert_array_equal(x1, x2)


def test_as_multi_objective_wraps_first_order_and_hands_madam_the_solver():
    x = np.zeros(3)
    solver = S.MGDA()
    wrapped = as_multi_objective(madam.Adam(x), solver)
    assert isinstance(wrapped, Scalarized) and wrapped.solver is solver
    mad = madam.MAdam(np.zeros(3))
    assert as_multi_objective(mad, solver) is mad and mad.solver is solver
    assert isinstance(mad, MultiObjectiveOptimizer)
    assert not isinstance(madam.Adam(np.zeros(2)), MultiObjectiveOptimizer)


@pytest.mark.parametrize("make, error, needle", [
    (lambda: Scalarized(madam.MAdam(np.zeros(2)), "mgda"), TypeError, "optimizer"),
    (lambda: Scalarized(object(), "mgda"), TypeError, "optimizer"),
    (lambda: Scalarized(madam.Adam([np.zeros(2), np.zeros(3)]), "mgda"), ValueError,
     "one parameter array"),
    (lambda: Scalarized(madam.Adam(np.zeros(2)), S.MGDA), TypeError, "solver"),
    (lambda: Scalarized(madam.Adam(np.zeros(2)), "no-such-solver"), ValueError, "solver"),
])
def test_bad_construction_names_the_argument(make, error, needle):
    with pytest.raises(error, match=needle):
        make()


@pytest.mark.parametrize("kwargs, error, needle", [
    (dict(jacobian=np.zeros((2, 4))), ValueError, "jacobian"),
    (dict(jacobian=np.zeros((2, 3)), preference=[0.7, 0.7]), ValueError, "preference"),
    (dict(jacobian=np.zeros((2, 3)), preference=[1.0]), ValueError, "preference"),
])
def test_bad_step_changes_nothing(kwargs, error, needle):
    x = np.arange(3.0)
    multi = Scalarized(madam.Adam(x), S.RLW(seed=0))
    before = freeze_state(multi.state_dict()), x.copy()
    with pytest.raises(error, match=needle):
        multi.step(**kwargs)
    assert freeze_state(multi.state_dict()) == before[0]
    np.testing.assert_array_equal(x, before[1])


def test_no_solver_needs_preference_or_direction():
    multi = Scalarized(madam.Adam(np.zeros(3)), None)
    with pytest.raises(TypeError, match="preference= or direction="):
        multi.step(np.zeros((2, 3)))


def test_a_refused_step_puts_the_solvers_stream_back():
    """The solver draws its random weights, then the optimiser refuses the step (its parameter
    was reallocated): the RLW stream must be where it was, so the rerun draws the same lambda."""
    x = np.zeros(3)
    multi = Scalarized(madam.Adam(x), S.RLW(seed=7))
    multi.step(np.ones((2, 3)))
    solver_before = freeze_state(multi.solver.state_dict())
    x.resize((4,), refcheck=False)  # the optimiser refuses a moved parameter before any C call
    with pytest.raises(ValueError, match="params"):
        multi.step(np.ones((2, 4)))
    assert freeze_state(multi.solver.state_dict()) == solver_before


def test_state_dict_resumes_bit_for_bit_and_refusals_change_nothing():
    jacs = _jacobians(4, 8)
    x_a = np.linspace(0, 1, 5)
    a = Scalarized(madam.Adam(x_a, lr=0.02), S.RLW(seed=11))
    for jac in jacs[:4]:
        a.step(jac)
    x_b = x_a.copy()
    b = Scalarized(madam.Adam(x_b, lr=0.02), S.RLW(seed=99))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.last_preference, a.last_preference)
    for jac in jacs[4:]:
        a.step(jac)
        b.step(jac)
    np.testing.assert_array_equal(x_a, x_b)

    good = b.state_dict()
    for bad, needle in [({**good, "extra": 1}, "unknown"),
                        ({**good, "solver.rng.state": "x"}, "rng"),
                        ({**good, "last_preference": [np.nan, 1.0]}, "last_preference")]:
        with pytest.raises(ValueError, match=needle):
            b.load_state_dict(bad)
        assert freeze_state(b.state_dict()) == freeze_state(good)


def test_runner_steps_first_order_optimisers_through_scalarized():
    """madam.run's record for Adam + MGDA equals a Scalarized loop written by hand."""
    res = madam.run("vlmop2", "mgda", "adam", steps=20, seeds=[0], lr=0.01, record_every=20)
    problem = madam.problems.get("vlmop2")
    x = np.array(problem.initial_points(1, np.random.default_rng(0))[0], dtype=problem.dtype)
    multi = Scalarized(madam.Adam(x, lr=0.01), S.MGDA())
    for _ in range(20):
        f, jac = problem.losses_and_jacobian(x, None)
        multi.step(jac, f)
        problem.project(x)
    np.testing.assert_array_equal(res.final_losses[0], problem.losses(x))


@pytest.mark.parametrize("build", [
    lambda: madam.MAdam(np.zeros(3), solver=S.RLW(seed=1)),
    lambda: Scalarized(madam.Adam(np.zeros(3)), S.RLW(seed=1)),
], ids=["MAdam", "Scalarized"])
def test_a_bad_solver_part_is_named_by_its_key_in_the_optimisers_dict(build):
    """The solver says 'format'; the optimiser's dict calls it 'solver.format'."""
    opt = build()
    opt.step(np.ones((2, 3)), np.ones(2))
    sd = opt.state_dict()
    del sd["solver.format"]
    with pytest.raises(ValueError, match=r"lacks 'solver\.format'"):
        opt.load_state_dict(sd)
    sd = opt.state_dict()
    sd["solver.rng.state"] = "x"
    with pytest.raises(ValueError, match=r"\['solver\.rng\.state'\]"):
        opt.load_state_dict(sd)
