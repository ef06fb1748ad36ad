"""madam.plot: every figure function returns the Figure, draws into a given ax, renders to PNG
with Agg, and draws the data it is given (checked on the artists, not on pixels)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import madam.plot as mplot  # noqa: E402
from madam import problems as P  # noqa: E402
from madam.runs import preference_grid, run  # noqa: E402

PREFS = preference_grid(2, 4, interior=True)


@pytest.fixture(scope="module")
def res():
    # per optimiser: 2 mgda runs (one per seed) + 6 epo runs (3 preferences x 2 seeds)
    return run("vlmop2", ["mgda", "epo"], {"adam": ("adam", {"lr": 0.05}), "sgd": ("sgd", {})},
               preferences=PREFS, seeds=[0, 1], steps=30, record_every=5, record_x=True)


@pytest.fixture(scope="module")
def res_div():
    return run("mtl_regression", "mgda", "sgd", lr=[1e-3, 1e4], steps=20, record_every=2,
               front_points=0)


def scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def lines_labelled(ax, label):
    return [ln for ln in ax.get_lines() if ln.get_label() == label]


# ============================================================================ common behaviour
CALLS = [
    ("front", lambda r, ax: mplot.front(r, true_front=True, ax=ax)),
    ("objective_trajectories", lambda r, ax: mplot.objective_trajectories(r, ax=ax)),
    ("parameter_trajectories", lambda r, ax: mplot.parameter_trajectories(r, ax=ax)),
    ("preference_over_time", lambda r, ax: mplot.preference_over_time(r, ax=ax)),
]


@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
def test_returns_figure_and_renders(res, tmp_path, name, call):
    fig = call(res, None)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=50)
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
def test_draws_into_given_ax(res, tmp_path, name, call):
    fig = Figure()
    axes = fig.subplots(1, 2)
    out = call(res, axes[1])
    assert out is fig
    assert axes[1].has_data() and not axes[0].has_data()
    fig.savefig(tmp_path / "two.png", dpi=40)


def test_subfigure_axes_return_the_root_figure(res):
    fig = Figure()
    sub = fig.subfigures(1, 2)[0]
    ax = sub.add_subplot()
    assert mplot.front(res, ax=ax) is fig


@pytest.mark.parametrize("call", [c[1] for c in CALLS], ids=[c[0] for c in CALLS])
def test_bad_ax(res, call):
    with pytest.raises(TypeError, match="ax"):
        call(res, "axes")


# ============================================================================ front
def test_front_groups_and_points(res):
    fig = mplot.front(res, true_front=True)
    ax = fig.axes[0]
    groups = scatters(ax)
    assert [g.get_label() for g in groups] == ["mgda / adam", "mgda / sgd", "epo / adam",
                                               "epo / sgd"]
    for g, (key, idx) in zip(groups, res.groups("solver", "optimizer").items()):
        np.testing.assert_array_equal(g.get_offsets(), res.final_losses[idx])
    true = lines_labelled(ax, "true front")
    assert len(true) == 1
    front = res.fronts["vlmop2"]
    order = np.argsort(front[:, 0], kind="stable")
    np.testing.assert_array_equal(true[0].get_xydata(), front[order])
    assert ax.get_xlabel() == "$f_{1}$" and ax.get_ylabel() == "$f_{2}$"
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "true front"


def test_front_leaves_out_diverged_runs(res_div):
    ax = mplot.front(res_div).axes[0]
    (g,) = scatters(ax)
    assert g.get_offsets().shape == (1, 2)  # the lr=1e4 run diverged


@pytest.mark.parametrize("true_front", ["problem", "array", None])
def test_front_of_points(true_front):
    prob = P.get("vlmop2")
    pts = np.array([[0.1, 0.9], [0.5, 0.5], [0.9, 0.2]])
    tf = {"problem": prob, "array": prob.pareto_front(50), None: None}[true_front]
    ax = mplot.front(pts, true_front=tf, label="mine").axes[0]
    (g,) = scatters(ax)
    np.testing.assert_array_equal(g.get_offsets(), pts)
    assert g.get_label() == "mine"
    true = lines_labelled(ax, "true front")
    assert len(true) == (0 if tf is None else 1)
    if true_front == "array":
        assert true[0].get_xydata().shape == (50, 2)


def test_front_objectives_and_group_by():
    res3 = run(P.get("amoo_selection", n_obj=3, dim=3), "mgda", ["adam", "sgd"], seeds=[0, 1],
               steps=5)
    ax = mplot.front(res3, objectives=(2, 0), group_by="optimizer").axes[0]
    groups = scatters(ax)
    assert [g.get_label() for g in groups] == ["adam", "sgd"]
    np.testing.assert_array_equal(groups[1].get_offsets(), res3.final_losses[2:][:, [2, 0]])
    assert ax.get_xlabel() == "$f_{3}$" and ax.get_ylabel() == "$f_{1}$"


def test_front_rays(res):
    ax = mplot.front(res, rays=True).axes[0]
    rays = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(rays) == 3
    for ln, p in zip(rays, sorted(map(tuple, PREFS))):  # distinct preferences, sorted
        (x0, x1), (y0, y1) = ln.get_xdata(), ln.get_ydata()
        assert x0 == 0 and y0 == 0
        assert p[0] * x1 == pytest.approx(p[1] * y1)  # p_1 f_1 = p_2 f_2 on the ray
    ax = mplot.front(res, rays=[[0.5, 0.5]]).axes[0]
    assert len([ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]) == 1


def test_front_runs_selection(res):
    ax = mplot.front(res, runs=[0, 1]).axes[0]
    (g,) = scatters(ax)
    np.testing.assert_array_equal(g.get_offsets(), res.final_losses[:2])
    mask = np.zeros(len(res), bool)
    mask[-1] = True
    (g,) = scatters(mplot.front(res, runs=mask).axes[0])
    np.testing.assert_array_equal(g.get_offsets(), res.final_losses[-1:])


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((np.zeros(3),), {}, ValueError, "points"),
    ((np.zeros((2, 2)),), {"runs": [0]}, ValueError, "RunResult"),
    ((np.zeros((2, 2)),), {"true_front": True}, ValueError, "RunResult"),
    ((np.zeros((2, 2)),), {"objectives": (0, 2)}, ValueError, "objectives"),
    ((np.zeros((2, 2)),), {"objectives": "ab"}, TypeError, "objectives"),
    ((np.zeros((2, 2)),), {"true_front": np.zeros(3)}, ValueError, "true_front"),
    ((np.zeros((2, 2)),), {"true_front": P.get("mtl_regression", n_samples=20)}, ValueError,
     "no known"),
])
def test_front_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mplot.front(*args, **kwargs)


def test_front_bad_runs_and_group_by(res):
    with pytest.raises(ValueError, match="mask"):
        mplot.front(res, runs=np.ones(3, bool))
    with pytest.raises(ValueError, match="positions"):
        mplot.front(res, runs=[100])
    with pytest.raises(TypeError, match="runs"):
        mplot.front(res, runs=[0.5])
    with pytest.raises(KeyError, match="colour"):
        mplot.front(res, group_by="colour")


# ============================================================================ trajectories
def test_objective_trajectories_data(res):
    ax = mplot.objective_trajectories(res, runs=[0, 4, 5], true_front=True).axes[0]
    paths = [ln for ln in ax.get_lines() if ln.get_marker() in ("None", None, "")
             and ln.get_label() != "true front"]
    assert len(paths) == 3
    for ln, r in zip(paths, [0, 4, 5]):
        np.testing.assert_array_equal(ln.get_xydata(), res.losses[r])
    starts = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    ends = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert len(starts) == len(ends) == 3
    np.testing.assert_array_equal(ends[1].get_xydata()[0], res.losses[4, -1])
    assert len(lines_labelled(ax, "true front")) == 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["mgda / adam", "epo / adam", "true front"]


def test_objective_trajectories_stop_at_divergence(res_div):
    ax = mplot.objective_trajectories(res_div, markers=True).axes[0]
    ends = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    bad = res_div.losses[1]
    last = np.flatnonzero(np.all(np.isfinite(bad), axis=1))[-1]
    np.testing.assert_array_equal(ends[1].get_xydata()[0], bad[last, :2])


def test_parameter_trajectories(res):
    prob = P.get("vlmop2")
    w = np.array([0.5, 0.5])
    calls = []

    def fn(z):
        calls.append(z.shape)
        return float(prob.losses(z) @ w)

    ax = mplot.parameter_trajectories(res, runs=[2, 3], contour=fn, resolution=12, levels=5,
                                      pareto_set=True).axes[0]
    assert len(calls) == 144 and calls[0] == (2,)
    paths = [ln for ln in ax.get_lines() if ln.get_marker() in ("None", None, "")
             and ln.get_label() != "Pareto set"]
    for ln, r in zip(paths, [2, 3]):
        np.testing.assert_array_equal(ln.get_xydata(), res.x[r])
    (pset,) = lines_labelled(ax, "Pareto set")
    np.testing.assert_array_equal(pset.get_xydata(), res.pareto_sets["vlmop2"])
    from matplotlib.contour import ContourSet
    assert any(isinstance(c, ContourSet) for c in ax.get_children())
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-2.0, 2.0)  # the problem's box
    assert ax.get_xlabel() == "$x_{1}$"


def test_parameter_trajectories_extent_and_dims():
    res = run("fonseca_fleming", "mgda", "adam", seeds=[0], steps=5, record_x=True)
    ax = mplot.parameter_trajectories(res, dims=(2, 1), extent=(-1, 1, -2, 2)).axes[0]
    assert ax.get_xlim() == (-1.0, 1.0) and ax.get_ylim() == (-2.0, 2.0)
    (ln,) = [ln for ln in ax.get_lines() if ln.get_marker() in ("None", None, "")]
    np.testing.assert_array_equal(ln.get_xydata(), res.x[0][:, [2, 1]])
    assert ax.get_xlabel() == "$x_{3}$"


def test_parameter_trajectories_unbounded_extent():
    res = run("cagrad_toy", "mgda", ("adam", {"lr": 0.1}), seeds=[0], steps=10, record_x=True)
    ax = mplot.parameter_trajectories(res, contour=lambda z: z @ z, resolution=5).axes[0]
    lo, hi = ax.get_xlim()
    xs = res.x[0, :, 0]
    assert lo < xs.min() and hi > xs.max()


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"contour": 3}, TypeError, "contour"),
    ({"extent": (1, 0, 0, 1)}, ValueError, "extent"),
    ({"dims": (0, 5)}, ValueError, "dims"),
    ({"pareto_set": np.zeros((3, 1))}, ValueError, "pareto_set"),
])
def test_parameter_trajectories_bad_input(res, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mplot.parameter_trajectories(res, **kwargs)


def test_parameter_trajectories_needs_x(res_div):
    with pytest.raises(ValueError, match="record_x"):
        mplot.parameter_trajectories(res_div)
    with pytest.raises(TypeError, match="RunResult"):
        mplot.parameter_trajectories(np.zeros((2, 2)))


# ============================================================================ lambda over time
def test_preference_over_time_one_component(res):
    ax = mplot.preference_over_time(res, objective=1).axes[0]
    lines = ax.get_lines()
    assert len(lines) == len(res)
    for ln, r in zip(lines, np.concatenate(list(res.groups("solver", "optimizer").values()))):
        np.testing.assert_array_equal(ln.get_xdata(), res.steps)
        np.testing.assert_array_equal(ln.get_ydata(), res.lambdas[r, :, 1])
    assert ax.get_ylabel() == r"$\lambda_{2}$" and ax.get_xlabel() == "step"


def test_preference_over_time_all_components(res):
    ax = mplot.preference_over_time(res, runs=[3], objective=None).axes[0]
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == [r"$\lambda_{1}$", r"$\lambda_{2}$"]
    np.testing.assert_array_equal(lines[0].get_ydata() + lines[1].get_ydata(),
                                  res.lambdas[3].sum(axis=1))


@pytest.mark.parametrize("objective, exc", [(2, ValueError), (1.0, TypeError), (True, TypeError)])
def test_preference_over_time_bad_objective(res, objective, exc):
    with pytest.raises(exc, match="objective"):
        mplot.preference_over_time(res, objective=objective)
