r"""Figures of experiment runs (:mod:`madam.runs`), with matplotlib only.

Every function takes ``ax=`` (draw into those axes) and returns the matplotlib Figure. Without
``ax`` a new :class:`matplotlib.figure.Figure` is made directly (pyplot is never imported, so no
display is needed); save it with ``fig.savefig("front.png")``.

* :func:`front`: final losses in objective space (one colour per method), with the true front.
* :func:`objective_trajectories`: loss trajectories in objective space.
* :func:`parameter_trajectories`: trajectories in a 2-D slice of parameter space, optionally over
  the contours of a function and with the Pareto set.
* :func:`preference_over_time`: the solver weights lambda against the step.

Runs are grouped (coloured, one legend entry per group) by the grid columns ``group_by``
(default: solver and optimiser); ``runs=`` picks runs by position (or a boolean mask), and
``RunResult.select`` picks them by value. Diverged runs are left out of :func:`front` (their
trajectories are drawn up to the divergence).
"""
import numpy as np

__all__ = ["front", "objective_trajectories", "parameter_trajectories", "preference_over_time"]

_DEFAULT_GROUP = ("solver", "optimizer")


# ============================================================================ helpers
def _axes(ax, figsize=(5.0, 4.0)):
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not hasattr(ax, "plot") or not hasattr(ax, "get_figure"):
        raise TypeError(f"ax must be matplotlib Axes, got {type(ax).__name__}")
    try:
        fig = ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10
        fig = ax.figure
        while hasattr(fig, "figure") and fig.figure is not fig and fig.figure is not None:
            fig = fig.figure
    return fig, ax


def _is_result(obj):
    return hasattr(obj, "grid") and hasattr(obj, "final_losses") and hasattr(obj, "losses")


def _require_result(name, obj):
    if not _is_result(obj):
        raise TypeError(f"{name} must be a madam.runs.RunResult, got {type(obj).__name__}")


def _run_indices(result, runs):
    n = len(result.grid)
    if runs is None:
        return np.arange(n)
    idx = np.asarray(runs)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"runs: a boolean mask must have shape ({n},), got {idx.shape}")
        return np.flatnonzero(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"runs must be run positions (integers) or a boolean mask, got "
                        f"dtype {idx.dtype}")
    idx = idx.ravel().astype(np.intp)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ValueError(f"runs: positions must lie in [0, {n}), got {idx.tolist()}")
    return idx % n if n else idx


def _groups(result, idx, group_by):
    """[(label, color, positions)] in first-seen order, colours from the default cycle."""
    import matplotlib as mpl

    if isinstance(group_by, str):
        group_by = (group_by,)
    group_by = tuple(group_by or ())
    for key in group_by:
        if result.grid and key not in result.grid[0]:
            raise KeyError(f"group_by: no grid column {key!r}; columns: {list(result.grid[0])}")
    order = {}
    for i in idx:
        row = result.grid[i]
        key = tuple(_fmt(row[k]) for k in group_by)
        order.setdefault(key, []).append(i)
    cycle = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    out = []
    for g, (key, members) in enumerate(order.items()):
        label = " / ".join(key) if key else None
        out.append((label, cycle[g % len(cycle)], np.array(members, dtype=np.intp)))
    return out


def _fmt(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def _objectives(name, objectives, n_obj):
    try:
        i, j = (int(v) for v in objectives)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of objective indices, got {objectives!r}") \
            from None
    for v in (i, j):
        if not 0 <= v < n_obj:
            raise ValueError(f"{name}: index {v} out of range for C = {n_obj}")
    return i, j


def _true_fronts(true_front, result, idx):
    """List of (M, C) arrays to draw."""
    if true_front is None or true_front is False:
        return []
    if true_front is True:
        if result is None:
            raise ValueError("true_front=True needs a RunResult (its fronts); pass an array")
        labels = {result.grid[i]["problem"] for i in idx}
        return [result.fronts[k] for k in result.fronts if k in labels]
    if hasattr(true_front, "pareto_front"):
        pts = true_front.pareto_front(200)
        if pts is None:
            raise ValueError(f"the problem {getattr(true_front, 'name', '')!r} has no known "
                             "Pareto front")
        return [np.asarray(pts, dtype=np.float64)]
    pts = np.asarray(true_front, dtype=np.float64)
    if pts.ndim != 2:
        raise ValueError(f"true_front must be an array (M, C), got shape {pts.shape}")
    return [pts]


def _draw_true_fronts(ax, fronts, i, j):
    for k, pts in enumerate(fronts):
        if pts.shape[1] <= max(i, j):
            raise ValueError(f"true_front has {pts.shape[1]} objectives; objectives asks "
                             f"for {(i, j)}")
        order = np.argsort(pts[:, i], kind="stable")
        ax.plot(pts[order, i], pts[order, j], color="0.35", lw=1.5, ls="-", zorder=1,
                label="true front" if k == 0 else None)


def _legend(ax):
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        ax.legend(fontsize="small", frameon=False)


# ============================================================================ fronts
def front(data, true_front=None, *, ax=None, objectives=(0, 1), group_by=_DEFAULT_GROUP,
          runs=None, rays=None, label=None, title=None, marker="o", size=25.0):
    r"""Final points in objective space (f_i, f_j), one colour per group, over the true front.

    Args:
        data: a RunResult (its ``final_losses``; diverged runs left out) or points (N, C).
        true_front: None; an array (M, C); a problem (its ``pareto_front(200)``); or True: the
            fronts stored in the result for its problems. Drawn as a grey line.
        objectives: the two objectives on the axes.
        group_by: grid columns whose values make a group (RunResult only).
        runs: run positions or a boolean mask (RunResult only).
        rays: None, True (the distinct preferences of the runs) or preferences (P, C): dashed
            rays from the origin along (1/p_i, 1/p_j), where p_i f_i = p_j f_j (the ray EPO and
            Tchebycheff target).
        label: legend label of plain points.
    Returns:
        the Figure.
    """
    fig, ax = _axes(ax)
    result = data if _is_result(data) else None
    if result is not None:
        i, j = _objectives("objectives", objectives, result.n_obj)
        idx = _run_indices(result, runs)
        keep = idx[~result.diverged[idx]]
        for glabel, color, members in _groups(result, keep, group_by):
            pts = result.final_losses[members]
            ax.scatter(pts[:, i], pts[:, j], s=size, color=color, marker=marker,
                       label=glabel if label is None else label, zorder=3)
        fronts = _true_fronts(true_front, result, idx)
        prefs = None
        if rays is True:
            seen = {tuple(result.grid[k]["preference"]) for k in idx
                    if result.grid[k]["preference"] is not None}
            prefs = np.array(sorted(seen), dtype=np.float64).reshape(-1, result.n_obj)
    else:
        if runs is not None:
            raise ValueError("runs= needs a RunResult")
        pts = np.asarray(data, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[0] == 0:
            raise ValueError(f"data must be a RunResult or points (N, C), got shape {pts.shape}")
        i, j = _objectives("objectives", objectives, pts.shape[1])
        ax.scatter(pts[:, i], pts[:, j], s=size, marker=marker, label=label, zorder=3)
        fronts = _true_fronts(true_front, None, None)
        if rays is True:
            raise ValueError("rays=True needs a RunResult; pass the preferences")
    if rays is not None and rays is not True:
        prefs = np.asarray(rays, dtype=np.float64)
        if prefs.ndim == 1:
            prefs = prefs[None, :]
    _draw_true_fronts(ax, fronts, i, j)
    if rays is not None and prefs is not None and prefs.size:
        _draw_rays(ax, prefs, i, j)
    ax.set_xlabel(f"$f_{{{i + 1}}}$")
    ax.set_ylabel(f"$f_{{{j + 1}}}$")
    if title is not None:
        ax.set_title(title)
    _legend(ax)
    return fig


def _draw_rays(ax, prefs, i, j):
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    reach = max(abs(xlim[1]), abs(ylim[1]), 1e-12)
    for k, p in enumerate(prefs):
        if p[i] <= 0 or p[j] <= 0:
            continue
        direction = np.array([1.0 / p[i], 1.0 / p[j]])
        direction *= 2 * reach / direction.max()
        ax.plot([0.0, direction[0]], [0.0, direction[1]], ls="--", lw=0.8, color="0.6",
                zorder=0, label="preference rays" if k == 0 else None)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


# ============================================================================ trajectories
def objective_trajectories(result, runs=None, *, true_front=None, ax=None, objectives=(0, 1),
                           group_by=_DEFAULT_GROUP, alpha=0.8, markers=True, title=None):
    r"""Recorded losses of each run as a path in objective space (f_i, f_j); a circle marks the
    start and a star the last recorded point. ``true_front`` as in :func:`front`."""
    _require_result("result", result)
    fig, ax = _axes(ax)
    i, j = _objectives("objectives", objectives, result.n_obj)
    idx = _run_indices(result, runs)
    for glabel, color, members in _groups(result, idx, group_by):
        for k, r in enumerate(members):
            path = result.losses[r][:, [i, j]]
            ax.plot(path[:, 0], path[:, 1], color=color, alpha=alpha, lw=1.0,
                    label=glabel if k == 0 else None, zorder=2)
            if markers:
                _endpoints(ax, path, color)
    _draw_true_fronts(ax, _true_fronts(true_front, result, idx), i, j)
    ax.set_xlabel(f"$f_{{{i + 1}}}$")
    ax.set_ylabel(f"$f_{{{j + 1}}}$")
    if title is not None:
        ax.set_title(title)
    _legend(ax)
    return fig


def _endpoints(ax, path, color):
    finite = np.flatnonzero(np.all(np.isfinite(path), axis=1))
    if finite.size:
        a, b = path[finite[0]], path[finite[-1]]
        ax.plot([a[0]], [a[1]], marker="o", ms=4, color=color, ls="none", zorder=3)
        ax.plot([b[0]], [b[1]], marker="*", ms=8, color=color, ls="none", zorder=4)


def parameter_trajectories(result, runs=None, *, dims=(0, 1), contour=None, extent=None,
                           levels=20, resolution=100, pareto_set=None, ax=None,
                           group_by=_DEFAULT_GROUP, alpha=0.8, markers=True, title=None):
    r"""Recorded parameters of each run (needs ``run(..., record_x=True)``) as paths in the
    plane of coordinates ``dims``.

    Args:
        contour: None, or a function of a point z (2,) in that plane returning a float, drawn
            as ``levels`` contour lines on a ``resolution`` x ``resolution`` grid over ``extent``
            (e.g. ``lambda z: problem.losses(z) @ w`` for a 2-D problem).
        extent: (x_min, x_max, y_min, y_max); default: the problem's box when it has one, else
            the range of the drawn paths plus a 10% margin.
        pareto_set: None; True (the result's stored Pareto sets); or points (M, n) or (M, 2),
            drawn as a grey line.
    """
    _require_result("result", result)
    if result.x is None:
        raise ValueError("result has no parameter records; run with record_x=True")
    fig, ax = _axes(ax)
    dim = result.x.shape[2]
    a, b = _objectives("dims", dims, dim)
    idx = _run_indices(result, runs)
    for glabel, color, members in _groups(result, idx, group_by):
        for k, r in enumerate(members):
            path = result.x[r][:, [a, b]]
            ax.plot(path[:, 0], path[:, 1], color=color, alpha=alpha, lw=1.0,
                    label=glabel if k == 0 else None, zorder=2)
            if markers:
                _endpoints(ax, path, color)
    if pareto_set is not None and pareto_set is not False:
        if pareto_set is True:
            labels = {result.grid[i]["problem"] for i in idx}
            sets = [v for k, v in result.pareto_sets.items() if k in labels]
        else:
            sets = [np.asarray(pareto_set, dtype=np.float64)]
        for k, pts in enumerate(sets):
            if pts.ndim != 2 or pts.shape[1] <= max(a, b):
                raise ValueError(f"pareto_set must be points (M, n) with n > {max(a, b)}, got "
                                 f"shape {pts.shape}")
            ax.plot(pts[:, a], pts[:, b], color="0.35", lw=2.0, zorder=1,
                    label="Pareto set" if k == 0 else None)
    if contour is not None:
        if not callable(contour):
            raise TypeError(f"contour must be a function of a point (2,), got "
                            f"{type(contour).__name__}")
        box = _extent(extent, result, idx, a, b)
        gx = np.linspace(box[0], box[1], int(resolution))
        gy = np.linspace(box[2], box[3], int(resolution))
        zz = np.array([[float(contour(np.array([u, v]))) for u in gx] for v in gy])
        ax.contour(gx, gy, zz, levels=levels, cmap="Greys", linewidths=0.6, alpha=0.7,
                   zorder=0)
        ax.set_xlim(box[0], box[1])
        ax.set_ylim(box[2], box[3])
    elif extent is not None:
        box = _extent(extent, result, idx, a, b)
        ax.set_xlim(box[0], box[1])
        ax.set_ylim(box[2], box[3])
    ax.set_xlabel(f"$x_{{{a + 1}}}$")
    ax.set_ylabel(f"$x_{{{b + 1}}}$")
    if title is not None:
        ax.set_title(title)
    _legend(ax)
    return fig


def _extent(extent, result, idx, a, b):
    if extent is not None:
        box = [float(v) for v in extent]
        if len(box) != 4 or not (box[0] < box[1] and box[2] < box[3]):
            raise ValueError(f"extent must be (x_min, x_max, y_min, y_max) with min < max, "
                             f"got {extent!r}")
        return box
    problems = {result.grid[i]["problem"] for i in idx}
    bounds = [result.meta.get("problems", {}).get(p, {}).get("bounds") for p in problems]
    if bounds and all(bd is not None for bd in bounds):
        return [min(bd[0][a] for bd in bounds), max(bd[1][a] for bd in bounds),
                min(bd[0][b] for bd in bounds), max(bd[1][b] for bd in bounds)]
    pts = result.x[idx][:, :, [a, b]].reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if pts.shape[0] == 0:
        return [-1.0, 1.0, -1.0, 1.0]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.where(hi > lo, 0.1 * (hi - lo), 1.0)
    return [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]]


# ============================================================================ lambda over time
def preference_over_time(result, runs=None, *, objective=0, ax=None, group_by=_DEFAULT_GROUP,
                         alpha=0.8, title=None):
    r"""The solver weights lambda against the step.

    ``objective=i`` draws lambda_i of every run (one colour per group); ``objective=None`` draws
    every component lambda_1..lambda_C of every run, one colour per component (meant for one or a
    few runs).
    """
    _require_result("result", result)
    fig, ax = _axes(ax)
    idx = _run_indices(result, runs)
    steps = result.steps
    if objective is None:
        import matplotlib as mpl

        cycle = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        for c in range(result.n_obj):
            for k, r in enumerate(idx):
                ax.plot(steps, result.lambdas[r, :, c], color=cycle[c % len(cycle)],
                        alpha=alpha, lw=1.0, label=f"$\\lambda_{{{c + 1}}}$" if k == 0 else None)
        ax.set_ylabel(r"$\lambda$")
    else:
        if isinstance(objective, bool) or not isinstance(objective, (int, np.integer)):
            raise TypeError(f"objective must be an integer or None, got {objective!r}")
        if not 0 <= objective < result.n_obj:
            raise ValueError(f"objective {objective} out of range for C = {result.n_obj}")
        for glabel, color, members in _groups(result, idx, group_by):
            for k, r in enumerate(members):
                ax.plot(steps, result.lambdas[r, :, objective], color=color, alpha=alpha,
                        lw=1.0, label=glabel if k == 0 else None)
        ax.set_ylabel(f"$\\lambda_{{{objective + 1}}}$")
    ax.set_xlabel("step")
    if title is not None:
        ax.set_title(title)
    _legend(ax)
    return fig
