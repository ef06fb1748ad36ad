"""madam.problems: analytic Jacobians and Hessian-vector products against central finite
differences and torch autograd (float64), Pareto sets and fronts, projection, float32 against
float64, the registry, the problem-specific facts, and bad input.

Every problem is run at a small size (``SMALL``) so the dense checks stay fast.
"""
import sys

import numpy as np
import pytest

from madam import problems as P

TORCH_ORACLE = "torch autograd is a test-peers oracle: pip install -e '.[test-peers]'"

SMALL = {  # registry name -> keyword arguments that keep it small
    "cagrad_toy": {},
    "nashmtl_toy": {},
    "zdt1": {"n": 6},
    "zdt2": {"n": 6},
    "vlmop2": {},
    "fonseca_fleming": {},
    "amoo_specification": {"delta": 0.05},
    "amoo_selection": {"n_obj": 4, "dim": 5},
    "teacher_student": {"n_obj": 3, "d_in": 3, "hidden": 6, "d_out": 4, "batch_size": 16},
    "mtl_regression": {"n_samples": 40},
    "linnerud_mtl": {"hidden": 4},
    "wine_mtl": {"hidden": 3},
    "power_loss_mlp": {"d_in": 3, "hidden": 6, "d_out": 4, "batch_size": 16},
}
NAMES = sorted(SMALL)
# PowerLossMLP (the AMOO ICML code's problem) has output-space HVPs only (output_hvps, which
# tests/test_amoo.py checks); its hvp/hvps raise NotImplementedError by design
OUTPUT_HVP_ONLY = ("power_loss_mlp",)
WITH_HVP = [n for n in NAMES if n not in OUTPUT_HVP_ONLY]
BOXED = ("zdt1", "zdt2", "vlmop2", "fonseca_fleming")
WITH_FRONT = ("cagrad_toy", "nashmtl_toy", "zdt1", "zdt2", "vlmop2", "fonseca_fleming",
              "amoo_specification", "amoo_selection")


def make(name, dtype=np.float64, **extra):
    return P.get(name, dtype=dtype, **{**SMALL[name], **extra})


def points(problem, count=3, seed=1):
    """Points away from the kinks and box faces, so central differences stay on one piece."""
    rng = np.random.default_rng(seed)
    pts = problem.initial_points(count, rng).astype(np.float64)
    if problem.name.startswith("zdt"):
        pts = 0.05 + 0.9 * pts
    elif problem.name in ("vlmop2", "fonseca_fleming"):
        pts *= 0.9
    elif problem.name.endswith("_toy"):
        pts = rng.uniform(-9.5, 9.5, size=(count, 2))
        pts[:, 1] = np.where(np.abs(pts[:, 1]) < 0.5, 1.0, pts[:, 1])
    return pts


def scale(a):
    return max(1.0, float(np.max(np.abs(a))))


def fd_jacobian(problem, x, h=1e-6):
    cols = []
    for j in range(problem.dim):
        e = np.zeros(problem.dim)
        e[j] = h
        cols.append((problem.losses(x + e) - problem.losses(x - e)) / (2 * h))
    return np.stack(cols, axis=1)


def unit(rng, n):
    v = rng.standard_normal(n)
    return v / np.linalg.norm(v)


# ============================================================================ registry
def test_registry_covers_every_problem():
    assert P.names() == NAMES
    for name in NAMES:
        problem = make(name)
        assert isinstance(problem, P.Problem)
        assert problem.name == name
        assert problem.dtype == np.float64
        assert (problem.bounds is not None) == (name in BOXED)
        assert problem.smooth == (name not in ("cagrad_toy", "nashmtl_toy", "zdt1",
                                               "teacher_student", "power_loss_mlp"))
        assert name in repr(problem)


def test_registry_bad_names():
    with pytest.raises(ValueError, match="unknown problem name 'zdt3'.*zdt1"):
        P.get("zdt3")
    with pytest.raises(TypeError, match="name"):
        P.get(3)
    with pytest.raises(TypeError):
        P.get("zdt1", no_such_option=1)


DIMS = [  # (name, kwargs, C, n) at the documented defaults
    ("cagrad_toy", {}, 2, 2), ("nashmtl_toy", {}, 2, 2), ("zdt1", {}, 2, 30), ("zdt2", {}, 2, 30),
    ("vlmop2", {}, 2, 2), ("fonseca_fleming", {}, 2, 3), ("amoo_specification", {}, 2, 2),
    ("amoo_selection", {}, 10, 10), ("teacher_student", {}, 10, 10 * 256 + 256 + 256 * 10 + 10),
    ("mtl_regression", {}, 3, 11), ("linnerud_mtl", {}, 3, 115), ("wine_mtl", {}, 3, 275),
]


@pytest.mark.parametrize("name,kwargs,n_obj,dim", DIMS, ids=[d[0] for d in DIMS])
def test_default_dimensions(name, kwargs, n_obj, dim):
    problem = P.get(name, **kwargs)
    assert (problem.n_obj, problem.dim) == (n_obj, dim)


# ============================================================================ derivatives
@pytest.mark.parametrize("name", NAMES)
def test_jacobian_matches_central_differences(name):
    problem = make(name)
    for x in points(problem):
        jac = problem.jacobian(x)
        assert jac.shape == (problem.n_obj, problem.dim) and jac.dtype == np.float64
        err = np.max(np.abs(jac - fd_jacobian(problem, x))) / scale(jac)
        assert err < 1e-6, err


@pytest.mark.parametrize("name", WITH_HVP)
def test_hvp_matches_differences_of_the_jacobian(name):
    problem = make(name)
    rng = np.random.default_rng(2)
    h = 1e-5
    for x in points(problem, 2):
        v = unit(rng, problem.dim)
        fd = (problem.jacobian(x + h * v) - problem.jacobian(x - h * v)) / (2 * h)
        hv = problem.hvps(x, v)
        assert hv.shape == (problem.n_obj, problem.dim)
        err = np.max(np.abs(hv - fd)) / scale(fd)
        assert err < 1e-6, err


@pytest.mark.parametrize("name", WITH_HVP)
def test_hvps_hessian_and_losses_and_jacobian_agree(name):
    problem = make(name)
    rng = np.random.default_rng(3)
    x = points(problem, 1)[0]
    v = rng.standard_normal(problem.dim)
    hv = problem.hvps(x, v)
    for i in range(problem.n_obj):
        np.testing.assert_allclose(problem.hvp(x, v, i), hv[i], rtol=1e-12, atol=1e-12)
    f, jac = problem.losses_and_jacobian(x)
    np.testing.assert_allclose(f, problem.losses(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(jac, problem.jacobian(x), rtol=1e-13, atol=1e-13)
    if problem.dim <= 64:
        for i in range(problem.n_obj):
            hess = problem.hessian(x, i)
            np.testing.assert_allclose(hess, hess.T, rtol=1e-9, atol=1e-9 * scale(hess))
            np.testing.assert_allclose(hess @ v, hv[i], rtol=1e-9, atol=1e-9 * scale(hess))


# ------------------------------------------------------------------ torch oracles (float64)
def torch_losses(problem, batch=None):
    """An independent torch implementation of the problem's losses: theta (n,) -> (C,)."""
    import torch

    def t(a):
        return torch.tensor(np.array(a, dtype=np.float64))

    if isinstance(problem, P.CAGradToy):
        lower, scale1 = problem.LOWER, problem.f1_scale

        def fn(x):
            x1, x2 = x[0], x[1]
            f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), lower).log() + 6
            f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), lower).log() + 6
            c1 = torch.clamp(torch.tanh(x2 * 0.5), 0)
            f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
            f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
            c2 = torch.clamp(torch.tanh(-x2 * 0.5), 0)
            return torch.stack([scale1 * (f1 * c1 + f1_sq * c2), f2 * c1 + f2_sq * c2])
        return fn
    if isinstance(problem, (P.ZDT1, P.ZDT2)):
        n = problem.dim

        def fn(x):
            f1 = x[0]
            g = 1 + 9 / (n - 1) * x[1:].sum()
            f2 = g * (1 - torch.sqrt(f1 / g)) if isinstance(problem, P.ZDT1) \
                else g * (1 - (f1 / g) ** 2)
            return torch.stack([f1, f2])
        return fn
    if isinstance(problem, P.VLMOP2):
        a = 1 / np.sqrt(problem.dim)
        return lambda x: torch.stack([1 - torch.exp(-((x - a) ** 2).sum()),
                                      1 - torch.exp(-((x + a) ** 2).sum())])
    if isinstance(problem, P.DiagonalQuadratics):
        coef = t(problem.coefficients)
        return lambda x: coef @ (x * x)
    if isinstance(problem, P.TeacherStudent):  # and PowerLossMLP, its subclass
        batch = problem.batch if batch is None else batch
        u, y = t(batch.inputs), t(batch.targets)
        hd = t(problem.output_hessian_diags)
        h, di, do = problem.hidden, problem.d_in, problem.d_out

        def residual(x):  # the 2-layer ReLU network's outputs minus the targets, (B, d_out)
            w1 = x[:h * di].reshape(h, di)
            b1 = x[h * di:h * di + h]
            w2 = x[h * di + h:h * di + h + do * h].reshape(do, h)
            b2 = x[h * di + h + do * h:]
            hidden = torch.relu(torch.nn.functional.linear(u, w1, b1))
            return torch.nn.functional.linear(hidden, w2, b2) - y

        if isinstance(problem, P.PowerLossMLP):
            offsets, powers = t(problem.offsets), t(problem.powers)

            def fn(x):  # f_i = mean_b ((r_b + e_i)^T H_i (r_b + e_i))^p_i
                rp = residual(x)[None, :, :] + offsets[:, None, None]   # (C, B, d_out)
                return ((rp * rp * hd[:, None, :]).sum(2) ** powers[:, None]).mean(1)
            return fn

        def fn(x):  # f_i = mean_b r_b^T H_i r_b
            r = residual(x)
            return torch.stack([(r * hd[i] * r).sum(1).mean() for i in range(hd.shape[0])])
        return fn
    if isinstance(problem, P.MultiTaskRegression):
        u, y = t(problem.data.inputs), t(problem.data.targets)
        p, r, nt = problem.n_features, problem.rank, problem.n_obj

        def fn(x):
            pred = u @ x[:p * r].reshape(p, r) @ x[p * r:].reshape(nt, r).T
            return ((pred - y) ** 2).mean(0)
        return fn
    if isinstance(problem, P.RealDataMTL):
        u, y = t(problem.data.inputs), t(problem.data.targets)
        h, di, nt = problem.hidden, problem.d_in, problem.n_obj

        def fn(x):
            w1 = x[:h * di].reshape(h, di)
            b1 = x[h * di:h * di + h]
            w = x[h * di + h:h * di + h + nt * h].reshape(nt, h)
            c = x[h * di + h + nt * h:]
            s = torch.tanh(u @ w1.T + b1) @ w.T + c
            if problem.dataset == "wine":
                return torch.nn.functional.binary_cross_entropy_with_logits(
                    s, y, reduction="none").mean(0)
            return ((s - y) ** 2).mean(0)
        return fn
    raise AssertionError(f"no torch oracle for {problem.name}")


def torch_derivatives(problem, x, v, batch=None):
    """Losses (C,), Jacobian (C, n) and Hessian-vector products (C, n) from torch autograd."""
    import torch

    fn = torch_losses(problem, batch)
    xt, vt = torch.tensor(x, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(fn, xt)
    hvps = [torch.autograd.functional.hvp(lambda z, i=i: fn(z)[i], xt, vt)[1]
            for i in range(problem.n_obj)]
    return fn(xt).numpy(), jac.numpy(), torch.stack(hvps).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_against_torch_autograd(name):
    pytest.importorskip("torch", reason=TORCH_ORACLE)
    problem = make(name)
    rng = np.random.default_rng(4)
    for x in points(problem, 2):
        v = rng.standard_normal(problem.dim)
        f, jac, hv = torch_derivatives(problem, x, v)
        np.testing.assert_allclose(problem.losses(x), f, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(problem.jacobian(x), jac, rtol=1e-10, atol=1e-11 * scale(jac))
        if name in OUTPUT_HVP_ONLY:
            with pytest.raises(NotImplementedError, match="output_hvps"):
                problem.hvps(x, v)
            continue
        np.testing.assert_allclose(problem.hvps(x, v), hv, rtol=1e-9, atol=1e-10 * scale(hv))


@pytest.mark.parametrize("x", [(0.0, 0.0), (3.0, 0.0), (-7.0 + 2 * np.tanh(1.0), 1.0),
                               (-7.0 + 2 * np.tanh(1.0) + 4e-6, 1.0), (9.0, 9.0), (-8.5, -5.0)])
@pytest.mark.parametrize("name", ["cagrad_toy", "nashmtl_toy"])
def test_toy_kink_conventions_follow_torch(name, x):
    """On x2 = 0 and where |u| <= LOWER, jacobian/hvp give what autograd gives for the reference
    implementation (documented in CAGradToy)."""
    pytest.importorskip("torch", reason=TORCH_ORACLE)
    problem = make(name)
    x = np.array(x)
    rng = np.random.default_rng(5)
    v = rng.standard_normal(2)
    f, jac, hv = torch_derivatives(problem, x, v)
    np.testing.assert_allclose(problem.losses(x), f, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(problem.jacobian(x), jac, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(problem.hvps(x, v), hv, rtol=1e-9, atol=1e-9 * scale(hv))


def test_toy_gradient_on_the_gate_line():
    """At x2 = 0 both gates pass their slope: df/dx2 = (f_log - f_sq)/2, df/dx1 = 0."""
    problem = P.get("cagrad_toy")
    x = np.array([1.0, 0.0])
    u1, u2 = 0.5 * (-1 - 7), 0.5 * (-1 + 3) + 2
    f_log = np.log(np.abs([u1, u2])) + 6
    f_sq = np.array([((-1 + 7) ** 2 + 0.1 * 64) / 10 - 20, ((-1 - 7) ** 2 + 0.1 * 64) / 10 - 20])
    jac = problem.jacobian(x)
    np.testing.assert_allclose(jac[:, 0], 0.0, atol=1e-15)
    np.testing.assert_allclose(jac[:, 1], (f_log - f_sq) / 2, rtol=1e-14)
    np.testing.assert_allclose(problem.losses(x), 0.0, atol=1e-15)


# ====================================================================== Pareto sets and fronts
def nondominated(front):
    """True where no other row is <= everywhere and < somewhere."""
    le = np.all(front[:, None, :] <= front[None, :, :], axis=2)
    lt = np.any(front[:, None, :] < front[None, :, :], axis=2)
    return ~np.any(le & lt, axis=0)


@pytest.mark.parametrize("name", NAMES)
def test_pareto_set_maps_onto_a_nondominated_front(name):
    problem = make(name)
    front, pset = problem.pareto_front(41), problem.pareto_set(41)
    if name not in WITH_FRONT:
        assert front is None and pset is None
        return
    assert front.shape[1] == problem.n_obj and pset.shape == (front.shape[0], problem.dim)
    assert np.all(nondominated(front))
    for x, f in zip(pset, front):
        np.testing.assert_allclose(problem.losses(x), f, rtol=1e-12, atol=1e-12)
    # no sampled point of the domain dominates a front point
    rng = np.random.default_rng(6)
    samples = np.stack([problem.losses(x) for x in problem.initial_points(400, rng)])
    for f in front:
        dominated = np.all(samples <= f, axis=1) & np.any(samples < f, axis=1)
        assert not dominated.any()


@pytest.mark.parametrize("name", ["zdt1", "zdt2", "vlmop2", "fonseca_fleming"])
def test_front_lies_on_the_analytic_curve(name):
    problem = make(name)
    f1, f2 = problem.pareto_front(101).T
    if name == "zdt1":
        curve = 1 - np.sqrt(f1)
    elif name == "zdt2":
        curve = 1 - f1 ** 2
    else:
        curve = 1 - np.exp(-(2 - np.sqrt(-np.log1p(-f1))) ** 2)
    np.testing.assert_allclose(f2, curve, rtol=1e-12, atol=1e-12)
    assert f1.min() == pytest.approx(0.0, abs=1e-15) and f2.min() == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("name", ["cagrad_toy", "nashmtl_toy", "vlmop2", "fonseca_fleming",
                                  "zdt1", "zdt2"])
def test_pareto_set_is_pareto_critical(name):
    """Some convex combination of the two gradients vanishes (for ZDT: vanishes in x1 and points
    out of the box along the active faces x_i = 0, the KKT conditions)."""
    problem = make(name)
    for x in problem.pareto_set(21)[1:-1]:
        g1, g2 = problem.jacobian(x)
        d = g1 - g2
        w = np.clip(-(g2 @ d) / (d @ d), 0.0, 1.0)        # min-norm point of the segment
        comb = w * g1 + (1 - w) * g2
        if name.startswith("zdt"):
            w = -g2[0] / (g1[0] - g2[0])
            comb = w * g1 + (1 - w) * g2
            assert 0 <= w <= 1 and abs(comb[0]) < 1e-12 and np.all(comb[1:] > 0)
        else:
            assert np.linalg.norm(comb) < 1e-9 * max(np.linalg.norm(g1), np.linalg.norm(g2), 1)


def test_toy_pareto_set_and_starts():
    cagrad, nash = P.get("cagrad_toy"), P.get("nashmtl_toy")
    pset = cagrad.pareto_set(101)
    np.testing.assert_allclose(pset[:, 0], np.linspace(-7, 7, 101), atol=1e-12)
    assert pset[50, 1] == pytest.approx(-8.3552, abs=1e-4)          # the value quoted in papers
    assert np.all((pset[:, 1] > -8.44) & (pset[:, 1] < -8.355))
    np.testing.assert_array_equal(nash.pareto_set(11), cagrad.pareto_set(11))
    np.testing.assert_allclose(nash.pareto_front(11)[:, 0], 0.1 * cagrad.pareto_front(11)[:, 0])
    x = np.array([2.0, -3.0])
    np.testing.assert_allclose(nash.losses(x), cagrad.losses(x) * [0.1, 1.0], rtol=1e-15)
    np.testing.assert_array_equal(cagrad.starting_points, [(-8.5, 7.5), (-8.5, -5), (9, 9)])
    np.testing.assert_array_equal(nash.starting_points,
                                  [(-8.5, 7.5), (0, 0), (9, 9), (-7.5, -0.5), (9, -1)])
    pts = nash.initial_points(7, np.random.default_rng(0))
    np.testing.assert_array_equal(pts[:5], nash.starting_points)
    assert np.all(np.abs(pts[5:]) <= 10)
    np.testing.assert_array_equal(cagrad.initial_points(2, 0), cagrad.starting_points[:2])


# ============================================================================ boxes
@pytest.mark.parametrize("name", BOXED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_projection_keeps_the_box(name, dtype):
    problem = make(name, dtype)
    lower, upper = problem.bounds
    rng = np.random.default_rng(7)
    for _ in range(5):
        x = (3 * rng.standard_normal(problem.dim)).astype(dtype)
        x[rng.integers(problem.dim)] = rng.choice([-5.0, 5.0])   # at least one face crossed
        expected = np.clip(x, lower, upper)
        assert np.any(x != expected)
        with pytest.raises(ValueError, match="outside the box"):
            problem.losses(x)
        out = problem.project(x)
        assert out is x
        np.testing.assert_array_equal(x, expected)
        assert np.all((x >= lower) & (x <= upper))
        problem.losses(x)
        problem.jacobian(x)
    pts = problem.initial_points(50, rng)
    assert np.all((pts >= lower) & (pts <= upper))


@pytest.mark.parametrize("name", [n for n in NAMES if n not in BOXED])
def test_projection_is_identity_without_box(name):
    problem = make(name)
    x = 100 * np.ones(problem.dim)
    assert problem.project(x) is x and np.all(x == 100)


def test_zdt1_boundary_gradient_convention():
    problem = P.get("zdt1", n=4)
    x = np.array([0.0, 0.5, 0.0, 0.0])
    g = 1 + 9 / 3 * 0.5
    jac = problem.jacobian(x)
    assert jac[1, 0] == pytest.approx(-0.5 * np.sqrt(g / 1e-12), rel=1e-12)
    assert np.all(np.isfinite(jac)) and np.all(np.isfinite(problem.hvp(x, np.ones(4), 1)))
    np.testing.assert_allclose(problem.losses(x), [0.0, g])
    exact = P.ZDT1(n=4, boundary_eps=0.0)
    assert exact.jacobian(x)[1, 0] == -np.inf
    inside = np.array([0.3, 0.5, 0.0, 0.0])    # above the floor the derivative is the true one
    np.testing.assert_array_equal(exact.jacobian(inside), problem.jacobian(inside))
    np.testing.assert_allclose(P.get("zdt2", n=4).jacobian(x)[1], [0, 3, 3, 3])


# ============================================================================ float32
@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_float64(name):
    p64, p32 = make(name), make(name, np.float32)
    rng = np.random.default_rng(8)
    for x in points(p64, 2):
        x32 = x.astype(np.float32)
        x64 = x32.astype(np.float64)
        v32 = rng.standard_normal(p64.dim).astype(np.float32)
        outs = [(p32.losses(x32), p64.losses(x64)), (p32.jacobian(x32), p64.jacobian(x64))]
        if name not in OUTPUT_HVP_ONLY:
            outs.append((p32.hvps(x32, v32), p64.hvps(x64, v32.astype(np.float64))))
        for got, want in outs:
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * scale(want))
    for method in ("pareto_front", "pareto_set"):
        a32, a64 = getattr(p32, method)(5), getattr(p64, method)(5)
        assert (a32 is None) == (a64 is None)
        if a32 is not None:
            assert a32.dtype == np.float32
            np.testing.assert_allclose(a32, a64, rtol=1e-6, atol=1e-6)
    assert p32.initial_points(2, 0).dtype == np.float32


# ============================================================================ sampler, batches
@pytest.mark.parametrize("name", NAMES)
def test_initial_points_and_batches(name):
    problem = make(name)
    pts = problem.initial_points(4, np.random.default_rng(9))
    assert pts.shape == (4, problem.dim) and np.all(np.isfinite(pts))
    np.testing.assert_array_equal(pts, problem.initial_points(4, np.random.default_rng(9)))
    batch = problem.new_batch(np.random.default_rng(0))
    if name == "teacher_student":
        assert isinstance(batch, P.Batch)
        assert not np.allclose(problem.losses(pts[0], batch), problem.losses(pts[0]))
    else:
        assert batch is None
        with pytest.raises(TypeError, match="batch"):
            problem.losses(pts[0], batch=(1, 2))


# ============================================================================ problem facts
def test_amoo_examples():
    spec = P.get("amoo_specification", delta=0.1)
    np.testing.assert_allclose(spec.losses(np.array([1.0, 2.0])), [0.9 + 0.4, 0.1 + 3.6])
    h = spec.hessian(np.zeros(2), 0) + spec.hessian(np.zeros(2), 1)
    assert np.linalg.eigvalsh(h / 2).min() == pytest.approx(1.0)      # uniform mix: 1-str. convex
    assert np.linalg.eigvalsh(spec.hessian(np.ones(2), 0)).min() == pytest.approx(0.2)
    sel = P.get("amoo_selection", n_obj=5, dim=4, delta=0.01)
    x = np.array([1.0, 2.0, -1.0, 0.5])
    np.testing.assert_allclose(sel.losses(x)[:4], 0.99 + 0.01 * 5.25)
    assert sel.losses(x)[4] == pytest.approx(6.25)
    for i in range(5):
        np.testing.assert_allclose(np.diag(sel.hessian(x, i)), sel.hessian_diagonals[i])
    np.testing.assert_allclose(sel.hessian_diagonals[-1], 2.0)
    w = np.full(5, 0.2)
    assert (w @ sel.hessian_diagonals).min() == pytest.approx(2 * (0.8 * 0.01 + 0.2))
    for problem in (spec, sel):
        assert np.all(problem.losses(problem.initial_points(1, 0)[0]) > 0)
        np.testing.assert_array_equal(problem.pareto_front(), np.zeros((1, problem.n_obj)))


def test_teacher_student_defaults_follow_the_paper():
    problem = P.get("teacher_student")
    assert (problem.d_in, problem.hidden, problem.d_out, problem.batch_size) == (10, 256, 10, 1024)
    hd = problem.output_hessian_diags
    np.testing.assert_array_equal(hd[0], 1.0)
    np.testing.assert_array_equal(hd[1:, 0], 1.0)
    np.testing.assert_array_equal(hd[1:, 1:], 1e-4)
    x = problem.initial_points(1, 0)[0]
    f, jac = problem.losses_and_jacobian(x)
    assert f.shape == (10,) and jac.shape == (10, problem.dim)
    np.testing.assert_allclose(f[2:], f[1], rtol=1e-12)
    w1, b1, w2, b2 = problem.unflatten(x)
    assert w1.shape == (256, 10) and b2.shape == (10,) and np.shares_memory(w1, x)
    assert np.all(np.abs(w1) <= 1 / np.sqrt(10)) and np.all(np.abs(w2) <= 1 / 16)
    batch = problem.new_batch(np.random.default_rng(1))
    assert batch.inputs.shape == (1024, 10) and batch.targets.shape == (1024, 10)
    v = np.random.default_rng(2).standard_normal(problem.dim)
    np.testing.assert_allclose(problem.hvps(x, v, batch)[3], problem.hvp(x, v, 3, batch),
                               rtol=1e-12, atol=1e-12)


def test_teacher_student_aligned_minimiser_and_hvp_against_torch_on_a_new_batch():
    pytest.importorskip("torch", reason=TORCH_ORACLE)
    problem = make("teacher_student", sigma=0.0)
    teacher = problem.teacher.copy()
    batch = problem.new_batch(np.random.default_rng(3))
    np.testing.assert_allclose(problem.losses(teacher, batch), 0.0, atol=1e-28)
    np.testing.assert_allclose(problem.jacobian(teacher, batch), 0.0, atol=1e-14)
    assert problem.output_error(teacher) == 0.0
    rng = np.random.default_rng(4)
    for _ in range(5):  # zero residual: only the Gauss-Newton term remains, so H >= 0
        v = rng.standard_normal(problem.dim)
        assert np.all(problem.hvps(teacher, v, batch) @ v >= -1e-12)
    x = points(problem, 1)[0]
    v = rng.standard_normal(problem.dim)
    f, jac, hv = torch_derivatives(problem, x, v, batch)
    np.testing.assert_allclose(problem.losses(x, batch), f, rtol=1e-12)
    np.testing.assert_allclose(problem.jacobian(x, batch), jac, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(problem.hvps(x, v, batch), hv, rtol=1e-9, atol=1e-12)
    assert problem.output_error(x) > 0
    assert problem.output_error(x, np.ones((3, 3))) >= 0


def test_teacher_student_data_and_options():
    a, b = make("teacher_student", seed=5), make("teacher_student", seed=5, dtype=np.float32)
    np.testing.assert_array_equal(a.teacher.astype(np.float32), b.teacher)
    np.testing.assert_array_equal(a.batch.inputs.astype(np.float32), b.batch.inputs)
    ba = a.new_batch(np.random.default_rng(6))
    bb = b.new_batch(np.random.default_rng(6))
    np.testing.assert_allclose(ba.targets, bb.targets, rtol=1e-6, atol=1e-6)
    assert len(ba) == 16
    assert not np.array_equal(a.teacher, make("teacher_student", seed=6).teacher)
    custom = make("teacher_student", n_obj=None, output_hessian_diags=[[1, 0, 0, 0], [0, 0, 0, 2]])
    x = points(custom, 1)[0]
    r = custom._forward(x, custom.batch.inputs)[2] - custom.batch.targets
    np.testing.assert_allclose(custom.losses(x), [np.mean(r[:, 0] ** 2), 2 * np.mean(r[:, 3] ** 2)])
    with pytest.raises(ValueError, match="n_obj"):
        make("teacher_student", output_hessian_diags=np.ones((2, 4)))   # SMALL says n_obj=3
    with pytest.raises(ValueError, match="output_hessian_diags"):
        make("teacher_student", n_obj=None, output_hessian_diags=-np.ones((2, 4)))
    with pytest.raises(ValueError, match="batch.targets"):
        a.losses(points(a, 1)[0], P.Batch(ba.inputs, ba.targets[:, :2]))
    with pytest.raises(ValueError, match="batch.inputs"):
        a.losses(points(a, 1)[0], P.Batch(ba.inputs[:, :2], ba.targets))


def test_mtl_regression_tasks_conflict_unless_correlated():
    problem = P.get("mtl_regression", noise=0.0)
    beta = problem.task_directions
    u = problem.data.inputs
    losses = []
    for t in range(3):   # fit the representation to task t, every head by least squares
        feats = u @ beta[t]
        heads = (feats @ problem.data.targets) / (feats @ feats)
        losses.append(problem.losses(np.concatenate([beta[t], heads])))
    losses = np.array(losses)
    assert np.all(np.diag(losses) < 1e-20)                   # each task alone is solvable...
    assert np.all(losses.max(axis=1) > 0.2)                  # ...but not all at once
    aligned = P.get("mtl_regression", noise=0.0, task_correlation=1.0)
    x = np.concatenate([aligned.task_directions[0], np.ones(3)])
    np.testing.assert_allclose(aligned.losses(x), 0.0, atol=1e-20)
    batched = P.get("mtl_regression", batch_size=16)
    batch = batched.new_batch(np.random.default_rng(0))
    assert len(batch) == 16
    rows = [np.flatnonzero((batched.data.inputs == r).all(1))[0] for r in batch.inputs]
    assert len(set(rows)) == 16


def test_real_data_problems():
    lin = P.get("linnerud_mtl")
    np.testing.assert_allclose(lin.data.inputs.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(lin.data.targets.std(0), 1, rtol=1e-12)
    assert lin.data.inputs.shape == (20, 3) and lin.loss_kinds == ("mse",) * 3
    wine = P.get("wine_mtl", batch_size=32)
    assert wine.data.inputs.shape == (178, 13)
    np.testing.assert_array_equal(wine.data.targets.sum(1), 1.0)
    batch = wine.new_batch(np.random.default_rng(0))
    assert batch.inputs.shape == (32, 13)
    x = wine.initial_points(1, 0)[0]
    assert not np.allclose(wine.losses(x, batch), wine.losses(x))
    assert np.all(wine.losses(x) > 0)


def test_real_data_need_no_sklearn(monkeypatch):
    """The bundled data load with scikit-learn unimportable."""
    monkeypatch.setitem(sys.modules, "sklearn", None)
    assert P.get("linnerud_mtl").data.inputs.shape == (20, 3)
    assert P.get("wine_mtl").data.inputs.shape == (178, 13)


def test_bundled_data_equal_sklearns():
    """madam/data/real_datasets.npz holds exactly scikit-learn's load_wine / load_linnerud."""
    datasets = pytest.importorskip("sklearn.datasets")
    from importlib import resources

    with resources.files("madam").joinpath("data", "real_datasets.npz").open("rb") as fh:
        stored = dict(np.load(fh))
    wine, linnerud = datasets.load_wine(), datasets.load_linnerud()
    np.testing.assert_array_equal(stored["wine_data"], wine.data)
    np.testing.assert_array_equal(stored["wine_target"], wine.target)
    np.testing.assert_array_equal(stored["linnerud_data"], linnerud.data)
    np.testing.assert_array_equal(stored["linnerud_target"], linnerud.target)


# ============================================================================ bad input
@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments(name):
    problem = make(name)
    x = points(problem, 1)[0]
    n = problem.dim
    for bad, exc, what in [
        (np.ones(n + 1), ValueError, "shape"), (np.ones((1, n)), ValueError, "shape"),
        (np.full(n, np.nan), ValueError, "NaN"), (np.full(n, np.inf), ValueError, "Inf"),
        (np.ones(n, dtype=complex), TypeError, "real"), (["a"] * n, TypeError, "real"),
        (np.ones(n, dtype=bool), TypeError, "real"),
    ]:
        for call in (problem.losses, problem.jacobian, problem.losses_and_jacobian,
                     lambda z: problem.hvp(z, x, 0)):
            with pytest.raises(exc, match=what):
                call(bad)
    with pytest.raises(ValueError, match="v must have shape"):
        problem.hvp(x, np.ones(n + 1), 0)
    with pytest.raises(ValueError, match="v holds NaN"):
        problem.hvps(x, np.full(n, np.nan))
    with pytest.raises(ValueError, match="i must be <="):
        problem.hvp(x, x, problem.n_obj)
    with pytest.raises(ValueError, match="i must be >="):
        problem.hvp(x, x, -1)
    with pytest.raises(TypeError, match="i must be an integer"):
        problem.hvp(x, x, 0.0)
    with pytest.raises(TypeError, match="batch"):
        problem.jacobian(x, batch="all")
    with pytest.raises(ValueError, match="k must be >= 1"):
        problem.initial_points(0, 0)
    with pytest.raises(TypeError, match="rng"):
        problem.initial_points(1, "seed")
    with pytest.raises(TypeError, match="rng"):
        problem.new_batch(None)
    with pytest.raises(ValueError, match="n_points"):
        problem.pareto_front(1)
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        problem.project(list(x))
    with pytest.raises(TypeError, match="float32 or float64"):
        problem.project(np.zeros(n, dtype=np.int64))
    with pytest.raises(ValueError, match="read-only"):
        ro = x.copy()
        ro.flags.writeable = False
        problem.project(ro)
    with pytest.raises(TypeError, match="dtype"):
        make(name, dtype=np.int32)
    with pytest.raises(TypeError, match="dtype"):
        make(name, dtype="float16")
    problem.losses(list(x))          # array-likes of numbers are fine


@pytest.mark.parametrize("name,kwargs,exc,what", [
    ("cagrad_toy", {"f1_scale": 0.0}, ValueError, "f1_scale"),
    ("cagrad_toy", {"starts": "famo"}, ValueError, "starts"),
    ("cagrad_toy", {"starts": 1}, TypeError, "starts"),
    ("zdt1", {"n": 1}, ValueError, "n must be >= 2"),
    ("zdt1", {"boundary_eps": -1.0}, ValueError, "boundary_eps"),
    ("vlmop2", {"bound": 0.5}, ValueError, "bound"),
    ("vlmop2", {"n": 2.0}, TypeError, "n must be an integer"),
    ("amoo_specification", {"delta": 0.6}, ValueError, "delta"),
    ("amoo_selection", {"n_obj": 1}, ValueError, "n_obj"),
    ("amoo_selection", {"delta": float("nan")}, ValueError, "delta"),
    ("teacher_student", {"hidden": 0}, ValueError, "hidden"),
    ("teacher_student", {"sigma": -1.0}, ValueError, "sigma"),
    ("teacher_student", {"alpha": 2.0}, ValueError, "alpha"),
    ("teacher_student", {"batch_size": True}, TypeError, "batch_size"),
    ("mtl_regression", {"rank": 9}, ValueError, "rank"),
    ("mtl_regression", {"task_correlation": 1.5}, ValueError, "task_correlation"),
    ("mtl_regression", {"batch_size": 1000}, ValueError, "batch_size"),
    ("linnerud_mtl", {"dataset": "iris"}, ValueError, "dataset"),
    ("linnerud_mtl", {"dataset": None}, TypeError, "dataset"),
])
def test_bad_constructor_arguments(name, kwargs, exc, what):
    with pytest.raises(exc, match=what):
        make(name, **kwargs)


def test_diagonal_quadratics_validates_coefficients():
    with pytest.raises(ValueError, match="coefficients"):
        P.DiagonalQuadratics([[1.0, -1.0]])
    with pytest.raises(ValueError, match="coefficients"):
        P.DiagonalQuadratics([1.0, 2.0])
    problem = P.DiagonalQuadratics([[1.0, 2.0], [3.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(problem.losses([1, 1]), np.array([3, 3], np.float32))
