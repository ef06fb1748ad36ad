"""madam.runs: the experiment grid runner, its result object, hypervolume and tune_lr.

Checked against hand-written loops (bit for bit), with tiny local stand-ins for the Problem and
Solver interfaces as well as the real madam.problems / madam.solvers, at small step counts.
"""
import copy
import io
import json
import math

import numpy as np
import pytest

import madam
from madam import problems as P
from madam import solvers as S
from madam.runs import (LRTuning, RunResult, hypervolume, load_results,
                        preference_grid, run, tune_lr)


# ============================================================================ stand-ins
class Quad:
    """f_i(x) = a_i/2 |x - c_i|^2 with c_1 = (1, 0), c_2 = (0, 1): the Pareto set is the segment."""

    name = "quad"
    n_obj, dim, bounds = 2, 2, None
    dtype = np.dtype(np.float64)
    centres = np.array([[1.0, 0.0], [0.0, 1.0]])

    def __init__(self, a=(1.0, 1.0)):
        self.a = np.asarray(a, dtype=np.float64)

    def losses(self, x, batch=None):
        diff = x[None, :] - self.centres
        return 0.5 * self.a * np.einsum("ij,ij->i", diff, diff)

    def losses_and_jacobian(self, x, batch=None):
        diff = x[None, :] - self.centres
        return 0.5 * self.a * np.einsum("ij,ij->i", diff, diff), self.a[:, None] * diff

    def project(self, x):
        return x

    def initial_points(self, k, rng):
        return rng.standard_normal((k, self.dim))

    def new_batch(self, rng):
        return None

    def pareto_set(self, n_points=100):
        t = np.linspace(0.0, 1.0, n_points)[:, None]
        return self.centres[0] + t * (self.centres[1] - self.centres[0])

    def pareto_front(self, n_points=100):
        return np.array([self.losses(z) for z in self.pareto_set(n_points)])


class NoisyQuad(Quad):
    """Quad whose batches shift the centres by a random offset; batch None = no noise."""

    name = "noisy_quad"

    def new_batch(self, rng):
        return rng.standard_normal(2) * 0.1

    def losses_and_jacobian(self, x, batch=None):
        shift = 0.0 if batch is None else batch
        diff = x[None, :] - self.centres - shift
        return 0.5 * self.a * np.einsum("ij,ij->i", diff, diff), self.a[:, None] * diff

    def losses(self, x, batch=None):
        return self.losses_and_jacobian(x, batch)[0]


class Fixed:
    """A fixed-weight solver: lam = preference."""

    name = "fixed"

    def __init__(self, preference):
        self.preference = np.asarray(preference, dtype=np.float64)
        self.calls = 0

    def solve(self, jacobian, losses=None):
        self.calls += 1
        return self.preference.copy(), self.preference.astype(jacobian.dtype) @ jacobian

    def reset(self):
        self.calls = 0


def manual(problem, solver, make_opt, seed, steps, record_every):
    """The reference loop of the runner's documentation (deterministic problems)."""
    x = np.array(problem.initial_points(1, np.random.default_rng(seed))[0], order="C")
    opt = make_opt(x)
    rec_steps = list(range(0, steps, record_every)) + [steps]
    losses, lambdas, xs = [], [], []
    for t in range(steps + 1):
        f, jac = problem.losses_and_jacobian(x)
        lam, d = solver.solve(jac, f)
        if t in rec_steps:
            losses.append(np.array(f, dtype=np.float64))
            lambdas.append(lam)
            xs.append(x.astype(np.float64))
        if t == steps:
            break
        opt.step(d)
        if problem.bounds is not None:
            problem.project(x)
    return np.array(losses), np.array(lambdas), np.array(xs), x


PREFS3 = preference_grid(2, 4, interior=True)  # (0.75, 0.25), (0.5, 0.5), (0.25, 0.75)


# ============================================================================ the loop itself
@pytest.mark.parametrize("problem, solver, optimizer, dtype", [
    ("vlmop2", S.MGDA(), ("adam", {"lr": 1e-2}), np.float64),
    ("zdt1", S.MGDA(), ("sgd", {"lr": 1e-2, "momentum": 0.9}), np.float32),
    ("cagrad_toy", S.LinearScalarization([0.3, 0.7]), ("adam", {"lr": 0.05}), np.float64),
    ("quad", Fixed([0.3, 0.7]), ("adamw", {"lr": 1e-2}), np.float64),
])
def test_matches_hand_loop_bit_for_bit(problem, solver, optimizer, dtype):
    prob = Quad() if problem == "quad" else P.get(problem, dtype=dtype, **(
        {"n": 5} if problem == "zdt1" else {}))
    name, kwargs = optimizer
    cls = {"adam": madam.Adam, "sgd": madam.SGD, "adamw": madam.AdamW}[name]
    steps, every = 57, 10
    res = run(prob, solver, optimizer, seeds=[3], steps=steps, record_every=every,
              record_x=True)
    losses, lambdas, xs, x_end = manual(prob, copy.deepcopy(solver),
                                        lambda x: cls(x, **kwargs), 3, steps, every)
    assert res.steps.tolist() == [0, 10, 20, 30, 40, 50, 57]
    np.testing.assert_array_equal(res.losses[0], losses)
    np.testing.assert_array_equal(res.lambdas[0], lambdas)
    np.testing.assert_array_equal(res.x[0], xs)
    np.testing.assert_array_equal(res.final_x[0], x_end.astype(np.float64))
    np.testing.assert_array_equal(res.final_losses[0], losses[-1])
    np.testing.assert_array_equal(res.final_lambdas[0], lambdas[-1])
    assert res.grid[0]["steps_done"] == steps and not res.grid[0]["diverged"]


def test_initial_point_is_default_rng_of_the_seed_and_shared_across_the_grid():
    prob = P.get("vlmop2")
    res = run(prob, ["mgda", "epo"], ["adam", "sgd"], preferences=PREFS3, seeds=[0, 7],
              steps=3, record_every=1, record_x=True)
    for row, x0 in zip(res.grid, res.x[:, 0]):
        expect = prob.initial_points(1, np.random.default_rng(row["seed"]))[0]
        np.testing.assert_array_equal(x0, expect)


def test_box_projection_keeps_iterates_in_the_box():
    prob = P.get("zdt1", n=4)
    res = run(prob, "mgda", ("sgd", {"lr": 5.0}), seeds=range(3), steps=20, record_every=1,
              record_x=True)
    assert not res.diverged.any()
    assert res.x.min() >= 0.0 and res.x.max() <= 1.0


def test_records_default_to_about_100():
    res = run(Quad(), Fixed([0.5, 0.5]), "sgd", steps=1000)
    assert res.steps[:3].tolist() == [0, 10, 20] and res.steps[-1] == 1000
    assert res.losses.shape == (1, 101, 2)
    res = run(Quad(), Fixed([0.5, 0.5]), "sgd", steps=7)
    assert res.steps.tolist() == list(range(8))


# ============================================================================ grid expansion
def test_grid_size_order_and_columns():
    prefs = preference_grid(2, 5, interior=True)  # 4 preferences
    res = run({"v": "vlmop2"}, ["mgda", "epo", S.LinearScalarization([0.2, 0.8])],
              ["adam", ("sgd", {"lr": 0.1})], preferences=prefs, seeds=[1, 2], steps=2, lr=None)
    # mgda: 2 opt x 2 seeds; epo: 2 opt x 4 prefs x 2 seeds; linear instance: 2 x 2
    assert len(res) == 4 + 16 + 4
    assert res.column("run") == list(range(24))
    assert res.column("solver")[:4] == ["mgda"] * 4
    assert res.column("optimizer")[:4] == ["adam", "adam", "sgd", "sgd"]
    assert res.column("seed")[:4] == [1, 2, 1, 2]
    assert res.column("problem") == ["v"] * 24
    epo = res.select(solver="epo")
    assert [tuple(r["preference"]) for r in epo.grid[:4]] == [tuple(prefs[0])] * 2 + \
        [tuple(prefs[1])] * 2
    assert res.select(solver="mgda").column("preference") == [None] * 4
    # an instance keeps (and records) its own preference
    assert res.select(solver="linear").column("preference") == [[0.2, 0.8]] * 4
    assert set(res.select(optimizer="adam").column("lr")) == {1e-3}
    assert set(res.select(optimizer="sgd").column("lr")) == {0.1}
    assert set(res.grid[0]) >= {"run", "problem", "solver", "solver_class", "optimizer",
                                "optimizer_class", "lr", "preference", "seed", "dim", "diverged",
                                "diverged_step", "reason", "steps_done", "time_s"}


@pytest.mark.parametrize("lr, expect", [
    (0.05, {("fixed", "adam"): [0.05], ("fixed", "sgd"): [0.05]}),
    ([1e-3, 1e-2], {("fixed", "adam"): [1e-3, 1e-2], ("fixed", "sgd"): [1e-3, 1e-2]}),
    ({"sgd": [0.1, 0.2]}, {("fixed", "adam"): [1e-3], ("fixed", "sgd"): [0.1, 0.2]}),
    ({("fixed", "adam"): 0.3, "adam": 0.1}, {("fixed", "adam"): [0.3], ("fixed", "sgd"): [1e-3]}),
])
def test_lr_axis(lr, expect):
    res = run(Quad(), Fixed([0.5, 0.5]), {"adam": "adam", "sgd": madam.SGD}, steps=2, lr=lr)
    got = {}
    for row in res.grid:
        got.setdefault((row["solver"], row["optimizer"]), []).append(row["lr"])
    assert got == expect


def test_lr_override_reaches_factories():
    res = run(Quad(), Fixed([0.5, 0.5]), lambda x: madam.Adam(x, lr=0.5), steps=2,
              lr=[0.01, 0.02])
    assert res.column("lr") == [0.01, 0.02]
    assert res.column("optimizer") == ["adam", "adam"]


@pytest.mark.parametrize("spec, label, cls", [
    ("mgda", "mgda", "MGDA"),
    (S.MGDA, "mgda", "MGDA"),
    (("mgda", {"method": "active-set"}), "mgda", "MGDA"),
    ((S.CAGrad, {"c": 0.2}), "cagrad", "CAGrad"),
    (S.MGDA(), "mgda", "MGDA"),
    (lambda: S.MGDA(), "mgda", "MGDA"),
])
def test_solver_specs_without_preference(spec, label, cls):
    res = run("vlmop2", spec, "adam", preferences=PREFS3, seeds=[0, 1], steps=2)
    assert len(res) == 2  # not multiplied by the preferences
    if label is not None:
        assert res.column("solver") == [label] * 2
        assert res.column("solver_class") == [cls] * 2


@pytest.mark.parametrize("spec", [
    "epo", S.EPO, ("epo", {"eps": 1e-3}), lambda p: S.EPO(p),
    lambda preference, seed: S.EPO(preference),
])
def test_solver_specs_with_preference(spec):
    res = run("vlmop2", spec, "adam", preferences=PREFS3, seeds=[0], steps=2)
    assert len(res) == 3
    np.testing.assert_allclose(np.array(res.column("preference")), PREFS3)
    assert res.column("solver_class") == ["EPO"] * 3


def test_optional_preference_solver():
    # UPGrad(preference=None): per preference when preferences are given, else once
    with_prefs = run("vlmop2", "upgrad", "adam", preferences=PREFS3, seeds=[0], steps=2)
    assert len(with_prefs) == 3
    np.testing.assert_allclose(np.array(with_prefs.column("preference")), PREFS3)
    assert not np.array_equal(with_prefs.final_lambdas[0], with_prefs.final_lambdas[2])
    without = run("vlmop2", "upgrad", "adam", seeds=[0], steps=2)
    assert len(without) == 1 and without.column("solver_class") == ["UPGrad"]


def test_solver_instance_is_copied_and_reset_per_run():
    solver = Fixed([0.5, 0.5])
    solver.calls = 99
    res = run(Quad(), solver, "sgd", seeds=range(3), steps=4)
    assert solver.calls == 99  # never touched
    assert len(res) == 3


def test_stochastic_solver_seeded_per_run():
    res = run("vlmop2", ["rlw", S.RLW(seed=5)], "sgd", seeds=[0, 0, 1], steps=5, record_every=1)
    lam = res.lambdas
    np.testing.assert_array_equal(lam[0], lam[1])          # same seed: same stream
    assert not np.array_equal(lam[0], lam[2])              # another seed: another stream
    np.testing.assert_array_equal(lam[3], lam[5])          # an instance keeps its own seed
    lam_ref = S.RLW(seed=5)
    x = P.get("vlmop2").initial_points(1, np.random.default_rng(0))[0]
    f, jac = P.get("vlmop2").losses_and_jacobian(x)
    np.testing.assert_array_equal(lam[3, 0], lam_ref.solve(jac, f)[0])


def test_solver_receives_seed_keyword_factory():
    seen = []

    def factory(preference, seed):
        seen.append(seed)
        return Fixed(preference)

    run(Quad(), factory, "sgd", preferences=[0.5, 0.5], seeds=[0, 0, 1], steps=1)
    assert seen[1] == seen[2] and seen[2] != seen[3]  # seen[0] is the labelling probe


@pytest.mark.parametrize("spec, label", [
    ("adam", "adam"), ("Adam", "adam"), (madam.Adam, "adam"), (("lion", {"lr": 1e-4}), "lion"),
    ((madam.Yogi, {}), "yogi"), (lambda x: madam.AMSGrad(x, lr=1e-3), "amsgrad"),
])
def test_optimizer_specs(spec, label):
    res = run(Quad(), Fixed([0.5, 0.5]), spec, steps=2)
    assert res.column("optimizer") == [label]


def test_labels_from_dicts_and_duplicates():
    res = run({"a": Quad(), "b": Quad((2.0, 1.0))}, {"w": Fixed([0.5, 0.5])},
              ["adam", "adam", ("adam", {"lr": 0.1})], steps=1)
    assert sorted(set(res.column("problem"))) == ["a", "b"]
    assert res.column("optimizer")[:3] == ["adam", "adam#2", "adam#3"]
    assert res.column("lr")[:3] == [1e-3, 1e-3, 0.1]


def test_problems_with_different_dims_are_padded():
    res = run([P.get("zdt1", n=3), P.get("zdt1", n=5)], "mgda", "adam", steps=3,
              record_x=True)
    assert res.final_x.shape == (2, 5) and res.x.shape[2] == 5
    assert np.isnan(res.final_x[0, 3:]).all() and not np.isnan(res.final_x[1]).any()
    assert res.column("dim") == [3, 5]
    assert res.column("problem") == ["zdt1", "zdt1#2"]


# ============================================================================ stochastic problems
def test_stochastic_batches_and_full_losses():
    prob = NoisyQuad()
    res = run(prob, Fixed([0.5, 0.5]), ("sgd", {"lr": 0.1}), seeds=[0, 0, 4], steps=30,
              record_every=5, record_x=True)
    np.testing.assert_array_equal(res.losses[0], res.losses[1])
    assert not np.array_equal(res.losses[0], res.losses[2])
    # batch losses are recorded, the endpoint is the full loss at the final point
    for i in range(3):
        np.testing.assert_allclose(res.final_losses[i], prob.losses(res.final_x[i]), rtol=1e-15)
        assert not np.allclose(res.losses[i, 1], prob.losses(res.x[i, 1]))
    full = run(prob, Fixed([0.5, 0.5]), ("sgd", {"lr": 0.1}), seeds=[0], steps=30,
               record_every=5, record_x=True, full_losses=True)
    np.testing.assert_array_equal(full.x[0], res.x[0])  # same trajectory
    for r in range(full.steps.size):
        np.testing.assert_allclose(full.losses[0, r], prob.losses(full.x[0, r]), rtol=1e-15)


def test_real_stochastic_problem():
    prob = P.get("mtl_regression", n_samples=40, batch_size=8)
    res = run(prob, ["mgda", "rlw"], ("adam", {"lr": 1e-2}), seeds=[0, 1], steps=25,
              record_every=5)
    assert not res.diverged.any()
    np.testing.assert_allclose(res.final_losses[0], prob.losses(res.final_x[0]), rtol=1e-12)
    assert res.losses[:, -1].mean() < res.losses[:, 0].mean()


# ============================================================================ divergence
def test_divergence_is_recorded_and_stops_only_that_run():
    res = run(Quad(), Fixed([0.5, 0.5]), "sgd", lr=[0.1, 1e3], seeds=[0], steps=200,
              record_every=10)
    ok, bad = res.grid
    assert not ok["diverged"] and ok["steps_done"] == 200
    assert bad["diverged"] and bad["reason"] in ("|loss| > max_loss", "non-finite loss")
    t = bad["diverged_step"]
    assert 0 < t < 200 and bad["steps_done"] == t
    after = res.steps > t
    assert np.isnan(res.losses[1, after]).all() and np.isnan(res.lambdas[1, after]).all()
    assert np.isfinite(res.losses[1, res.steps < t]).all()
    assert not np.all(np.abs(res.final_losses[1]) <= 1e12)
    np.testing.assert_array_equal(res.diverged, [False, True])


@pytest.mark.parametrize("nonfinite, max_loss, reasons", [
    ("raise", 1e300, {"non-finite loss", "non-finite jacobian", "non-finite direction",
                      "jacobian overflow"}),
    ("ignore", 1e300, {"non-finite loss", "non-finite parameters", "non-finite jacobian",
                       "jacobian overflow"}),
    ("raise", 10.0, {"|loss| > max_loss"}),
])
def test_divergence_reasons_on_a_real_problem(nonfinite, max_loss, reasons):
    prob = P.get("mtl_regression", n_samples=40)
    res = run(prob, "mgda", ("sgd", {"lr": 1e4, "nonfinite": nonfinite}), steps=300,
              max_loss=max_loss)
    row = res.grid[0]
    assert row["diverged"] and row["reason"] in reasons, row


def test_errors_that_are_not_divergence_propagate():
    # EPO takes logarithms of the losses: the CAGrad toy's negative losses are an error
    with pytest.raises(ValueError, match="losses"):
        run("cagrad_toy", "epo", "adam", preferences=[0.5, 0.5], seeds=[0], steps=500,
            lr=0.5, errors="raise")


def test_errors_are_recorded_as_failed_runs_by_default():
    """Issue 15: an error (not a divergence) fails its run only; the grid goes on, the row says
    what failed, and a warning at the end gives the count and the first error."""
    with pytest.warns(RuntimeWarning, match=r"1 of 3 runs failed.*run 2 .*losses must be > 0"):
        res = run("cagrad_toy", {"ok": "mgda", "bad": "epo"}, "adam", preferences=[0.5, 0.5],
                  seeds=[0], steps=500, lr={("ok", "adam"): [0.5, 0.1], ("bad", "adam"): 0.5})
    np.testing.assert_array_equal(res.failed, [False, False, True])
    assert not res.diverged.any()
    bad = res.grid[2]
    assert bad["error"].startswith("ValueError: losses must be > 0")
    assert bad["solver"] == "bad" and bad["seed"] == 0 and bad["steps_done"] is None
    assert np.isnan(res.losses[2]).all() and np.isnan(res.final_x[2]).all()
    assert res.grid[0]["error"] is None and not res.grid[0]["failed"]
    assert len(res.select(failed=True)) == 1 and "1 failed" in repr(res)
    with pytest.raises(ValueError, match="errors"):
        run("cagrad_toy", "mgda", "adam", steps=2, errors="ignore")


# ============================================================================ RunResult
@pytest.fixture(scope="module")
def grid_result():
    return run("vlmop2", ["mgda", "epo"], {"adam": ("adam", {"lr": 0.02}), "sgd": "sgd"},
               preferences=PREFS3, seeds=[0, 1], steps=40, record_every=10, record_x=True)


@pytest.mark.parametrize("criteria, count", [
    ({}, 16),
    ({"solver": "mgda"}, 4),
    ({"solver": "epo", "optimizer": "sgd"}, 6),
    ({"optimizer": ["adam", "sgd"], "seed": 1}, 8),
    ({"seed": lambda s: s > 0}, 8),
    ({"preference": None}, 4),
    ({"preference": [0.5, 0.5]}, 4),
    ({"preference": [[0.5, 0.5], [0.25, 0.75]]}, 8),
    ({"diverged": False}, 16),
])
def test_select(grid_result, criteria, count):
    sub = grid_result.select(**criteria)
    assert len(sub) == count
    idx = [r["run"] for r in sub.grid]
    np.testing.assert_array_equal(sub.losses, grid_result.losses[idx])
    np.testing.assert_array_equal(sub.final_x, grid_result.final_x[idx])
    assert sub.losses.shape[1:] == grid_result.losses.shape[1:]


@pytest.mark.parametrize("criteria, name", [
    ({"optimizer": "Adam"}, "optimizer"),
    ({"solver": "nope"}, "solver"),
    ({"solver": "MGDA"}, "solver"),
    ({"optimizer": ["adam", "sdg"]}, "optimizer"),
    ({"problem": "VLMOP2"}, "problem"),
])
def test_select_unknown_label_raises(grid_result, criteria, name):
    """Issue 12: a label that matches none of the grid's (wrong case, typo) is an error naming
    the argument and listing the available labels, not a silent empty selection."""
    with pytest.raises(ValueError, match=name) as info:
        grid_result.select(**criteria)
    message = str(info.value)
    for label in set(grid_result.column(name)):
        assert repr(label) in message
    # the valid labels still select as before
    assert len(grid_result.select(optimizer="adam")) == 8
    assert len(grid_result.select(optimizer=lambda o: o.lower() == "adam")) == 8


def test_select_unknown_column(grid_result):
    with pytest.raises(KeyError, match="colour"):
        grid_result.select(colour="red")
    with pytest.raises(KeyError, match="colour"):
        grid_result.column("colour")


def test_groups_take_concat(grid_result):
    groups = grid_result.groups("solver", "optimizer")
    assert list(groups) == [("mgda", "adam"), ("mgda", "sgd"), ("epo", "adam"), ("epo", "sgd")]
    assert [len(v) for v in groups.values()] == [2, 2, 6, 6]
    mask = grid_result.take(np.arange(16) % 2 == 0)
    assert len(mask) == 8
    both = RunResult.concat([grid_result.select(solver="mgda"), grid_result.select(solver="epo")])
    assert both.column("run") == list(range(16))
    np.testing.assert_array_equal(both.losses, grid_result.losses)
    with pytest.raises(ValueError, match="steps"):
        RunResult.concat([grid_result, run(Quad(), Fixed([0.5, 0.5]), "sgd", steps=3)])


def test_save_load_round_trip(grid_result, tmp_path):
    path = grid_result.save(tmp_path / "res")
    assert path.endswith(".npz")
    with np.load(path, allow_pickle=False) as data:  # no pickles needed
        assert "losses" in data.files
    for loaded in (RunResult.load(path), load_results(path)):
        assert loaded.grid == grid_result.grid
        assert loaded.meta == json.loads(json.dumps(grid_result.meta))
        for name in ("steps", "losses", "lambdas", "x", "final_losses", "final_lambdas",
                     "final_x"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(grid_result, name))
        assert list(loaded.fronts) == ["vlmop2"]
        np.testing.assert_array_equal(loaded.fronts["vlmop2"], grid_result.fronts["vlmop2"])
        np.testing.assert_array_equal(loaded.pareto_sets["vlmop2"],
                                      grid_result.pareto_sets["vlmop2"])


def test_save_load_with_divergence_and_no_x(tmp_path):
    res = run(Quad(), Fixed([0.5, 0.5]), "sgd", lr=[0.1, 1e3], steps=100, keep_final_x=False)
    loaded = load_results(res.save(tmp_path / "d.npz"))
    assert loaded.x is None and loaded.final_x is None
    np.testing.assert_array_equal(loaded.losses, res.losses)
    assert loaded.grid == res.grid and loaded.column("diverged") == [False, True]


def test_to_dict_is_plain_and_round_trips(grid_result):
    d = grid_result.to_dict()
    text = json.dumps(d)  # plain Python only
    back = RunResult.from_dict(json.loads(text))
    np.testing.assert_array_equal(back.losses, grid_result.losses)
    np.testing.assert_array_equal(back.final_x, grid_result.final_x)
    assert back.grid == grid_result.grid
    recs = grid_result.to_records()
    assert len(recs) == 16 and recs[3]["final_loss_1"] == grid_result.final_losses[3, 1]
    assert recs[3]["final_lambda_0"] == grid_result.final_lambdas[3, 0]
    with pytest.raises(ValueError, match="format"):
        RunResult.from_dict({"grid": []})


def test_scalarized(grid_result):
    lin = grid_result.scalarized()
    tch = grid_result.scalarized("tchebycheff")
    for i, row in enumerate(grid_result.grid):
        w = np.array(row["preference"] or [0.5, 0.5])
        assert lin[i] == pytest.approx(w @ grid_result.final_losses[i])
        assert tch[i] == pytest.approx(np.max(w * grid_result.final_losses[i]))
    with pytest.raises(ValueError, match="kind"):
        grid_result.scalarized("nope")


def test_repr(grid_result):
    assert "16 runs" in repr(grid_result) and "mgda" in repr(grid_result)


# ============================================================================ parallel workers
def test_workers_give_the_same_results():
    kw = dict(preferences=PREFS3, seeds=[0, 1], steps=30, record_every=5, record_x=True)
    one = run("vlmop2", ["mgda", "epo", "rlw"], "adam", **kw)
    two = run("vlmop2", ["mgda", "epo", "rlw"], "adam", workers=2, **kw)
    for name in ("losses", "lambdas", "x", "final_losses", "final_lambdas", "final_x"):
        np.testing.assert_array_equal(getattr(two, name), getattr(one, name))
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in one.grid]
    assert strip == [{k: v for k, v in r.items() if k != "time_s"} for r in two.grid]


# ============================================================================ progress bar
def test_progress_bar(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    run(Quad(), Fixed([0.5, 0.5]), "sgd", seeds=[0, 1], steps=3000, progress=True)
    out = buf.getvalue()
    assert "100.0%" in out and "steps/s" in out and out.endswith("\n")
    buf2 = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf2)
    run(Quad(), Fixed([0.5, 0.5]), "sgd", steps=10)  # default: off under pytest / no TTY
    run(Quad(), Fixed([0.5, 0.5]), "sgd", steps=10, progress=False)
    assert buf2.getvalue() == ""


# ============================================================================ hypervolume
@pytest.mark.parametrize("c, n", [(1, 5), (2, 1), (2, 30), (3, 12), (4, 8), (3, 1)])
def test_hypervolume_against_moocore(c, n):
    fn = hypervolume
    moocore = pytest.importorskip("moocore")
    rng = np.random.default_rng(c * 100 + n)
    pts = rng.random((n, c))
    pts[0] = pts[-1]  # a duplicate
    ref = np.full(c, 1.1)
    expect = float(moocore.hypervolume(pts, ref=ref))
    assert fn(pts, ref) == pytest.approx(expect, rel=1e-12, abs=1e-15)
    # points on a front (all non-dominated)
    if c >= 2:
        front = rng.random((n, c))
        front /= front.sum(axis=1, keepdims=True)
        assert fn(front, ref) == pytest.approx(
            float(moocore.hypervolume(front, ref=ref)), rel=1e-12)


@pytest.mark.parametrize("points, ref, expect", [
    ([[0.0, 0.0]], [1.0, 2.0], 2.0),
    ([[0.0, 1.0], [1.0, 0.0]], [2.0, 2.0], 3.0),
    ([[0.0, 1.0], [0.0, 1.0]], [2.0, 2.0], 2.0),           # duplicates
    ([[3.0, 0.0], [0.5, 0.5]], [2.0, 2.0], 2.25),          # outside the box: ignored
    ([[np.nan, 0.0], [0.5, 0.5]], [2.0, 2.0], 2.25),       # NaN: ignored
    (np.zeros((0, 2)), [1.0, 1.0], 0.0),
    ([0.5, 0.5], [1.0, 1.0], 0.25),                        # one point as (C,)
])
def test_hypervolume_cases(points, ref, expect):
    assert hypervolume(points, ref) == pytest.approx(expect)


@pytest.mark.parametrize("points, ref, exc, match", [
    ([[0.0, 0.0]], [1.0], ValueError, "ref"),
    ([[0.0, 0.0]], [1.0, np.inf], ValueError, "finite"),
    (np.zeros((2, 2, 2)), [1.0, 1.0], ValueError, "points"),
])
def test_hypervolume_bad_input(points, ref, exc, match):
    with pytest.raises(exc, match=match):
        hypervolume(points, ref)


# ============================================================================ preference grid
@pytest.mark.parametrize("c, d, interior, count", [
    (2, 4, False, 5), (2, 4, True, 3), (3, 3, False, 10), (3, 3, True, 1), (3, 6, True, 10),
    (1, 3, False, 1), (4, 2, False, 10),
])
def test_preference_grid(c, d, interior, count):
    grid = preference_grid(c, d, interior=interior)
    assert grid.shape == (count, c)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert np.all(grid >= 0) and len({tuple(r) for r in grid}) == count
    assert np.allclose(grid * d, np.round(grid * d))
    if interior:
        assert np.all(grid > 0)


def test_preference_grid_order_and_errors():
    np.testing.assert_allclose(preference_grid(2, 2), [[1, 0], [0.5, 0.5], [0, 1]])
    with pytest.raises(ValueError, match="divisions"):
        preference_grid(3, 2, interior=True)
    with pytest.raises(TypeError, match="n_obj"):
        preference_grid(2.0, 3)


# ============================================================================ tune_lr
def test_tune_lr_picks_the_best_score_per_method():
    out = tune_lr("vlmop2", ["mgda", "epo"], {"adam": "adam", "sgd": "sgd"},
                  [1e-3, 3e-2, 0.3], preferences=PREFS3, seeds=[0, 1], steps=60)
    assert isinstance(out, LRTuning)
    chosen, table, result = out
    assert set(chosen) == {("mgda", "adam"), ("mgda", "sgd"), ("epo", "adam"), ("epo", "sgd")}
    assert len(table) == 12 and len(result) == 3 * (2 * 2 + 2 * 6)
    for key, lr in chosen.items():
        rows = [r for r in table if (r["solver"], r["optimizer"]) == key]
        best = max(rows, key=lambda r: r["score"])
        assert lr == best["lr"] and best["chosen"]
        assert sum(r["chosen"] for r in rows) == 1
        assert rows[0]["runs"] == (2 if key[0] == "mgda" else 6)
    # the score is the hypervolume of the pooled endpoints w.r.t. one common ref
    ref = np.array(table[0]["ref"])
    assert all(r["ref"] == table[0]["ref"] for r in table)
    row = table[4]
    sub = result.select(solver=row["solver"], optimizer=row["optimizer"], lr=row["lr"])
    assert row["score"] == pytest.approx(hypervolume(sub.final_losses, ref))
    # the chosen lrs feed straight back into run
    again = run("vlmop2", ["mgda", "epo"], {"adam": "adam", "sgd": "sgd"}, lr=chosen,
                preferences=PREFS3, seeds=[0], steps=5)
    for r in again.grid:
        assert r["lr"] == chosen[r["solver"], r["optimizer"]]


def test_tune_lr_scalarized_and_callable_and_divergence():
    kw = dict(seeds=[0, 1], steps=80)
    out = tune_lr(Quad(), Fixed([0.5, 0.5]), "sgd", [1e-3, 0.5, 1e3], criterion="scalarized",
                  **kw)
    scores = {r["lr"]: r["score"] for r in out.table}
    assert math.isnan(scores[1e3]) and out.table[2]["diverged"] == 2
    assert scores[0.5] < scores[1e-3] and out.chosen == {("fixed", "sgd"): 0.5}
    assert not out.table[0]["maximize"]
    # a callable criterion, maximised: picks the slowest lr (largest final loss sum)
    out = tune_lr(Quad(), Fixed([0.5, 0.5]), "sgd", [1e-3, 0.5],
                  criterion=lambda r: float(r.final_losses.sum()), maximize=True, **kw)
    assert out.chosen == {("fixed", "sgd"): 1e-3}
    # every lr diverging: None and a warning
    with pytest.warns(RuntimeWarning, match="disqualified"):
        out = tune_lr(Quad(), Fixed([0.5, 0.5]), "sgd", [1e3, 1e4], criterion="scalarized", **kw)
    assert out.chosen == {("fixed", "sgd"): None}
    # divergence allowed: scored on the others
    out = tune_lr(Quad(), Fixed([0.5, 0.5]), "sgd", [0.5, 1e3], criterion="scalarized",
                  allow_divergence=True, **kw)
    assert math.isnan(out.table[1]["score"])  # all its runs diverged


def test_tune_lr_per_optimizer_grid():
    out = tune_lr(Quad(), Fixed([0.5, 0.5]), ["adam", "sgd"], {"adam": [1e-2, 1e-1],
                                                                "sgd": [0.1, 0.5, 0.9]},
                  criterion="scalarized", seeds=[0], steps=30)
    assert [(r["optimizer"], r["lr"]) for r in out.table] == [
        ("adam", 1e-2), ("adam", 1e-1), ("sgd", 0.1), ("sgd", 0.5), ("sgd", 0.9)]


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"criterion": "nope"}, ValueError, "criterion"),
    ({"criterion": "hypervolume", "maximize": False}, ValueError, "maximize"),
    ({"lrs": None}, ValueError, "lrs"),
    ({"problem": [Quad()]}, TypeError, "one problem"),
])
def test_tune_lr_bad_input(kwargs, exc, match):
    args = {"problem": Quad(), "solvers": Fixed([0.5, 0.5]), "optimizers": "sgd",
            "lrs": [0.1], "steps": 2, **kwargs}
    with pytest.raises(exc, match=match):
        tune_lr(**args)


# ============================================================================ bad input
def _quad_run(**kw):
    args = {"problems": Quad(), "solvers": Fixed([0.5, 0.5]), "optimizers": "sgd", "steps": 2}
    args.update(kw)
    return run(**args)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"steps": 0}, ValueError, "steps"),
    ({"steps": 2.5}, TypeError, "steps"),
    ({"record_every": 0}, ValueError, "record_every"),
    ({"workers": 0}, ValueError, "workers"),
    ({"max_loss": -1.0}, ValueError, "max_loss"),
    ({"seeds": [-1]}, ValueError, r"seeds\[0\]"),
    ({"seeds": []}, ValueError, "seeds"),
    ({"seeds": "abc"}, TypeError, r"seeds\[0\]"),
    ({"progress": "yes"}, TypeError, "progress"),
    ({"record_x": 1}, TypeError, "record_x"),
    ({"preferences": [0.5, 0.6]}, ValueError, "simplex"),
    ({"preferences": [[0.2, 0.3, 0.5]]}, ValueError, "columns"),
    ({"preferences": [["a", "b"]]}, TypeError, "preferences"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"lr": "big"}, TypeError, "lr"),
    ({"lr": {"adom": 0.1}}, ValueError, "adom"),
    ({"lr": []}, ValueError, "lr"),
    ({"optimizers": "adom"}, ValueError, "adom"),
    ({"optimizers": 3}, TypeError, "optimizer"),
    ({"optimizers": madam.Adam(np.zeros(2))}, TypeError, "instance"),
    ({"optimizers": lambda x: madam.Adam(x.copy())}, ValueError, "copy"),
    ({"solvers": "nope"}, ValueError, "nope"),
    ({"solvers": 3}, TypeError, "solver"),
    ({"solvers": "epo"}, ValueError, "preferences="),
    ({"solvers": lambda a, b: None}, TypeError, "at most one"),
    ({"solvers": lambda: 3}, TypeError, "solve"),
    ({"problems": 3}, TypeError, "problem"),
    ({"problems": "nope"}, ValueError, "nope"),
    ({"problems": [Quad(), P.get("amoo_selection", n_obj=3, dim=3)]}, ValueError,
     "number of objectives"),
    ({"problems": {}}, ValueError, "empty"),
    ({"problems": {1: Quad()}}, TypeError, "keys"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _quad_run(**kwargs)


def test_optimizer_names_come_from_the_registry_and_the_base_is_refused():
    """Every registered optimiser is a runner name; the abstract base is neither a name nor a
    class the runner accepts."""
    from madam.optim import OPTIMIZERS

    assert {"adam", "lion", "mada", "adamhd", "madam"} <= set(OPTIMIZERS)
    for name in OPTIMIZERS:
        res = run(Quad(), Fixed([0.5, 0.5]), name, steps=2)
        assert res.grid[0]["optimizer_class"].lower() == name
    with pytest.raises(ValueError, match="unknown optimizer name 'optimizer'"):
        run(Quad(), Fixed([0.5, 0.5]), "optimizer", steps=2)
    with pytest.raises(TypeError, match="abstract base"):
        run(Quad(), Fixed([0.5, 0.5]), madam.Optimizer, steps=2)


def test_every_first_order_optimiser_has_a_reference_formula():
    """Registering a first-order optimiser without its NumPy reference fails here."""
    import reference

    assert set(reference.ALL) == {c.__name__ for c in madam.optim.first_order().values()}


def test_every_reference_states_its_own_test_settings():
    """Each reference class carries its optimiser's settings (tests/cases.py gathers them into
    the tables): the contract defaults, the cases (the lr-only "defaults" one first), the ids of
    the full cases among them, and its second-moment buffers. They are its own, not inherited
    (AdamW must not run Adam's cases), and well formed."""
    import reference

    optimisers = {c.__name__: c for c in madam.optim.first_order().values()}
    ids = []
    for name, ref in reference.ALL.items():
        own = vars(ref)
        for attr in ("defaults", "cases", "full_cases", "nonnegative"):
            assert attr in own, f"reference.{name} does not set {attr}"
        assert isinstance(ref.defaults, dict) and ref.defaults, name
        assert ref.cases and all(isinstance(cid, str) and cid.startswith(f"{name}-") and
                                 isinstance(kw, dict) for cid, kw in ref.cases), name
        assert ref.cases[0] == (f"{name}-defaults", {"lr": ref.cases[0][1]["lr"]}), name
        case_ids = [cid for cid, _ in ref.cases]
        assert ref.full_cases and set(ref.full_cases) <= set(case_ids), name
        assert all(set(kw) <= set(ref.defaults) for _, kw in ref.cases), name
        # the buffers named must exist (whether the class declares them >= 0 is test_state's)
        assert set(ref.nonnegative) <= set(optimisers[name]._buffers), name
        ids += case_ids
    assert len(ids) == len(set(ids)), "case ids repeat"
