"""madam.psl (the scale study) and MAdam's invariance to the preference-induced gradient scale
(docs/madam.md, "Invariance to the step's scale"); madam.stats against scipy."""
import numpy as np
import pytest

import madam
from madam import psl
from madam.madam_opt import MAdam
from madam.stats import paired_differences, t_interval, t_quantile


# ---------------------------------------------------------------------------- the invariance
def _scaled_runs(opt_cls, scales, eps, grad_size=1.0, steps=300, n=64, seed=3, **kw):
    """Two runs from one start on C = 3 quadratics h_i (gradients depend on x): (A) the
    normalised losses h with the preference mu_t (Dirichlet, new every step); (B) the raw losses
    f_i = s_i h_i with lambda_t = (mu_t / s) / sum(mu_t / s), whose direction is
    c_t (mu_t . grad h), c_t = 1 / sum_i mu_t,i / s_i. Returns the two endpoints and the range
    of c_t seen."""
    rng = np.random.default_rng(seed)
    hess = rng.uniform(0.2, 3.0, (3, n))
    centre = rng.standard_normal((3, n))
    x0 = rng.standard_normal(n)
    s = np.asarray(scales, dtype=np.float64)
    xa, xb = x0.copy(), x0.copy()
    oa, ob = opt_cls(xa, eps=eps, **kw), opt_cls(xb, eps=eps, **kw)
    prefs = np.random.default_rng(seed + 1)
    cs = []
    for _ in range(steps):
        mu = prefs.dirichlet(np.ones(3))
        lam = (mu / s) / np.sum(mu / s)
        cs.append(1.0 / np.sum(mu / s))
        ja = grad_size * hess * (xa - centre)
        jb = grad_size * s[:, None] * hess * (xb - centre)
        if opt_cls is MAdam:
            oa.step(ja, preference=mu)
            ob.step(jb, preference=lam)
        else:
            oa.step(mu @ ja)
            ob.step(lam @ jb)
    return xa, xb, (min(cs), max(cs))


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


@pytest.mark.parametrize("scales", [(1e2, 1.0, 1.0), (1e4, 1.0, 3.0), (1.0, 1e-2, 50.0)])
def test_madam_invariant_to_the_preference_induced_scale_at_eps_zero(scales):
    """At eps = 0, MAdam on (f = s h, lambda_t) takes the very steps of MAdam on (h, mu_t): the
    per-step factor c_t multiplies d and sqrt(C_lambda) alike. Adam's v averages c_t^2 over the
    past preferences, so the same pair of runs differs at order 1."""
    xa, xb, (c_lo, c_hi) = _scaled_runs(MAdam, scales, eps=0.0, solver=None, lr=1e-2)
    assert c_hi / c_lo > 10          # the direction's scale really moved from step to step
    assert _rel(xa, xb) < 1e-12
    ya, yb, _ = _scaled_runs(madam.Adam, scales, eps=0.0, lr=1e-2)
    assert _rel(ya, yb) > 1e-2


def test_eps_breaks_the_invariance_where_sqrt_c_lambda_is_comparable():
    """With gradients of size ~1e-8, sqrt(C_lambda) is of the order of eps = 1e-8, so
    u = d / (sqrt(C_lambda) + eps) no longer cancels c_t: the runs part. At eps = 0 they do not,
    whatever the gradients' size; with eps = 1e-8 and order-1 gradients they agree to ~eps."""
    tiny = dict(grad_size=1e-8, solver=None, lr=1e-2)
    xa, xb, _ = _scaled_runs(MAdam, (1e2, 1.0, 1.0), eps=1e-8, **tiny)
    assert _rel(xa, xb) > 1e-3
    xa, xb, _ = _scaled_runs(MAdam, (1e2, 1.0, 1.0), eps=0.0, **tiny)
    assert _rel(xa, xb) < 1e-12
    xa, xb, _ = _scaled_runs(MAdam, (1e2, 1.0, 1.0), eps=1e-8, solver=None, lr=1e-2)
    assert _rel(xa, xb) < 1e-5


def test_psl_madam_outputs_do_not_depend_on_the_scale():
    """The study's own pipeline: MAdam's trained hypernetwork is the same for s = 1, 1e2, 1e4 up
    to eps (exact gradients, so nothing else differs); Adam's is not."""
    prefs = psl.evaluation_preferences(2, 6)
    outs = {}
    for method in ("madam", "adam"):
        for s in (1.0, 1e2, 1e4):
            prob = psl.ScaledQuadratics(dim=4, scale=s, noise=0.0, seed=0)
            outs[method, s] = psl.train(prob, method, 1e-2, 0, 200, prefs)[200]
    for s in (1e2, 1e4):
        assert _rel(outs["madam", 1.0], outs["madam", s]) < 1e-6
        assert _rel(outs["adam", 1.0], outs["adam", s]) > 1e-2


# ---------------------------------------------------------------------------- the problem
def test_scaled_quadratics_targets_are_stationary_and_scale_free():
    for s in (1.0, 1e2, 1e4):
        prob = psl.ScaledQuadratics(dim=5, n_obj=3, scale=s, seed=2)
        ref = psl.ScaledQuadratics(dim=5, n_obj=3, scale=1.0, seed=2)
        rng = np.random.default_rng(0)
        for _ in range(5):
            p = rng.dirichlet(np.ones(3))
            x = prob.target(p)
            np.testing.assert_allclose(x, ref.target(p), rtol=1e-14)
            grad = prob.gradients(x, rng)                      # no noise: exact
            lam = prob.weights(p)
            np.testing.assert_allclose(lam.sum(), 1.0, rtol=1e-14)
            # lambda(p) . grad f = c(p) p . grad h, and both vanish at the target
            assert np.max(np.abs(lam @ grad)) < 1e-12 * s
            normalised = p @ (grad / prob.scales[:, None])
            np.testing.assert_allclose(lam @ grad, prob.gradient_scale(p) * normalised,
                                       atol=1e-12)
            np.testing.assert_allclose(prob.losses(x), prob.scales * ref.normalised_losses(x))


def test_scaled_quadratics_noise_scales_with_each_objective():
    prob = psl.ScaledQuadratics(dim=3, scale=100.0, noise=0.5, seed=0)
    x = prob.target(np.array([0.5, 0.5]))
    g = np.array([prob.gradients(x, np.random.default_rng(k)) for k in range(4000)])
    exact = prob.gradients(x, None) if prob.noise == 0 else \
        psl.ScaledQuadratics(dim=3, scale=100.0, noise=0.0, seed=0).gradients(x, None)
    sd = (g - exact).std(axis=0)
    np.testing.assert_allclose(sd[0], 50.0, rtol=0.06)
    np.testing.assert_allclose(sd[1], 0.5, rtol=0.06)


@pytest.mark.parametrize("kw,match", [({"scale": 0.0}, "scale"), ({"scale": [1, 2, 3]}, "scale"),
                                      ({"noise": -1.0}, "noise"), ({"n_obj": 1}, "n_obj"),
                                      ({"dim": 0}, "dim")])
def test_scaled_quadratics_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        psl.ScaledQuadratics(**kw)


def test_hypernet_jacobian_matches_finite_differences():
    rng = np.random.default_rng(1)
    for bounds in (None, (np.zeros(3), np.ones(3))):
        net = psl.Hypernet(2, 3, 5, rng, rng.uniform(0.2, 0.8, 3), bounds)
        p = np.array([0.3, 0.7])
        jac_x = rng.standard_normal((2, 3))
        x, a, dxdz = net.forward(p)
        jac = net.jacobian(p, jac_x, a, dxdz)
        fd = np.empty_like(jac)
        for k in range(net.theta.size):
            old = net.theta[k]
            net.theta[k] = old + 1e-6
            up = jac_x @ net.forward(p)[0]
            net.theta[k] = old - 1e-6
            down = jac_x @ net.forward(p)[0]
            net.theta[k] = old
            fd[:, k] = (up - down) / 2e-6
        np.testing.assert_allclose(jac, fd, atol=1e-7)


def test_front_metrics_hand_case():
    prob = psl.ScaledQuadratics(dim=2, scale=100.0, seed=0)
    prefs = psl.evaluation_preferences(2, 4)
    targets = np.array([prob.target(w) for w in prefs])
    exact = psl.front_metrics(prob, targets, prefs)
    assert exact["mean_distance"] == 0 and exact["end_error"] == 0
    assert exact["spread_ratio"] == pytest.approx(1.0, abs=1e-15)
    # every solution at the middle target: spread 0; the end error is that of the last
    # preference (c(p) smallest for p nearest the unscaled objective)
    mid = np.repeat(targets[1:2], len(prefs), axis=0)
    m = psl.front_metrics(prob, mid, prefs)
    assert m["spread_ratio"] == 0.0
    h = np.array([prob.normalised_losses(x) for x in targets])
    box = h.max(axis=0) - h.min(axis=0)
    assert m["end_error"] == pytest.approx(np.linalg.norm((h[1] - h[-1]) / box), rel=1e-12)


def test_train_pairs_seeds_across_methods_and_detects_divergence():
    prob = psl.ScaledQuadratics(dim=3, scale=1.0, noise=1.0, seed=0)
    prefs = psl.evaluation_preferences(2, 4)
    a = psl.train(prob, "adam", 1e-2, 5, 50, prefs, checkpoints=[0, 50])
    b = psl.train(prob, "adam-normalised", 1e-2, 5, 50, prefs, checkpoints=[0, 50])
    np.testing.assert_array_equal(a[0], b[0])                  # same initialisation
    np.testing.assert_allclose(a[50], b[50], rtol=1e-12)      # s = 1: the same run, up to
    #                                                            lambda = p / sum(p) rounding
    assert psl.train(prob, "sgd", 1e6, 0, 50, prefs) is None   # diverges: reported, not raised
    with pytest.raises(ValueError, match="method"):
        psl.train(prob, "adagrad", 1e-2, 0, 5, prefs)


def test_scale_study_cells_and_paired_table():
    study = psl.scale_study(scales=(1.0, 1e2), noises=(0.0,), budgets=(20,),
                            tune_seeds=(100,), eval_seeds=(0, 1, 2), dim=3, divisions=4,
                            workers=1)
    assert len(study["cells"]) == 2 * len(psl.METHODS)
    cell = psl.find_cell(study, 1e2, 0.0, 20, "madam")
    assert cell["lr"] in psl.ADAPTIVE_LRS and len(cell["per_seed"]["mean_distance"]) == 3
    sgd = psl.find_cell(study, 1e2, 0.0, 20, "sgd")
    assert any(sgd["lr"] * 1e2 == pytest.approx(v) for v in psl.SGD_LRS)
    # the cell reproduces: tuning then evaluating again gives the same numbers
    again = psl.run_cell(1e2, 0.0, 20, "madam", (100,), (0, 1, 2), dim=3, divisions=4)
    assert again["per_seed"] == cell["per_seed"]
    rows = psl.paired_table(study)
    row = next(r for r in rows if r["method"] == "madam" and r["scale"] == 1e2)
    diff = np.array(cell["per_seed"]["end_error"]) - np.array(
        psl.find_cell(study, 1e2, 0.0, 20, "adam")["per_seed"]["end_error"])
    assert row["vs_adam"]["end_error"]["mean"] == pytest.approx(diff.mean(), rel=1e-12)
    assert "vs_adam" not in next(r for r in rows if r["method"] == "adam")


# ---------------------------------------------------------------------------- statistics
def test_t_quantile_and_interval_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 9, 30, 1000):
        for p in (0.975, 0.995, 0.6, 0.025):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10, abs=1e-12)
    v = np.random.default_rng(0).standard_normal(10)
    mean, half, n = t_interval(list(v) + [np.inf, None])
    lo, hi = stats.t.interval(0.95, 9, loc=v.mean(), scale=stats.sem(v))
    assert n == 10 and mean == pytest.approx(v.mean())
    assert half == pytest.approx((hi - lo) / 2, rel=1e-10)
    assert t_interval([]) == (None, None, 0) and t_interval([2.0]) == (2.0, None, 1)
    with pytest.raises(ValueError, match="p"):
        t_quantile(1.0, 3)


def test_paired_differences():
    a = np.array([1.0, 2.0, 3.0, np.inf])
    b = np.array([0.5, 1.0, 3.5, 1.0])
    r = paired_differences(a, b)
    assert r["n"] == 3 and r["mean"] == pytest.approx((-0.5 - 1.0 + 0.5) / 3)
    assert (r["b_lower"], r["b_higher"]) == (2, 1) and not r["significant"]
    big = paired_differences(np.zeros(8), np.full(8, 1.0) + np.arange(8) * 1e-3)
    assert big["significant"] and big["b_higher"] == 8
    with pytest.raises(ValueError, match="pair"):
        paired_differences([1.0], [1.0, 2.0])


# ---------------------------------------------------------------------------- stored results
def test_stored_scale_study_reproduces():
    """benchmarks/results/collapse_psl.json: records what made it, and a slice recomputes
    exactly (each budget's noisy s = 100 cell: Adam and MAdam at their stored lr, seeds 0, 1)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "collapse_psl.json"
    stored = json.loads(path.read_text())
    prov = stored["provenance"]
    assert prov["madam_version"] and len(prov["core_source_hash"]) == 64
    settings = stored["settings"]
    prefs = psl.evaluation_preferences(2, settings["divisions"])
    prob = psl.ScaledQuadratics(dim=settings["dim"], scale=1e2, noise=1.0,
                                seed=settings["problem_seed"])
    for method in ("adam", "madam"):
        cell = psl.find_cell(stored, 1e2, 1.0, 250, method)
        got, _ = psl.evaluate(prob, method, cell["lr"], (0, 1), 250, prefs, settings["hidden"])
        for metric in psl.METRICS:
            np.testing.assert_allclose(got[metric], cell["per_seed"][metric][:2], rtol=1e-12)
