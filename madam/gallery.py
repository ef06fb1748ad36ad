"""``python -m madam gallery``: every optimiser of madam on two small classic problems, one figure.

Left: paths on the 2-D Rosenbrock function from (-1.2, 1) (minimum at (1, 1)). Right: the
loss of a 20-D ill-conditioned quadratic (condition number 1e3) over steps. Each optimiser uses
the learning rate given in LEARNING_RATES (picked once by hand from a small grid for each
problem; they are not claims about which optimiser is best).
"""
import numpy as np

import madam

STEPS = 3000
OPTIMIZERS = tuple(cls.__name__ for cls in madam.optim.first_order().values())
LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
EXTRA = {"SGD": {"momentum": 0.9}, "AdamW": {"weight_decay": 1e-2}}


def rosenbrock(x):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 and its gradient."""
    a, b = x
    value = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    grad = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
    return value, grad


def quadratic(dim=20, condition=1e3, seed=0):
    """f(x) = 1/2 x^T A x with eigenvalues log-spaced in [1, condition], rotated at random."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    a = (q * np.logspace(0, np.log10(condition), dim)) @ q.T

    def f(x):
        ax = a @ x
        return 0.5 * x @ ax, ax
    return f, rng.standard_normal(dim)


def run(fun, x0, name, lr, steps=STEPS):
    """Run one optimiser for ``steps`` steps; returns the iterates (steps+1, dim) and losses."""
    x = np.array(x0, dtype=np.float64)
    opt = getattr(madam, name)(x, lr=lr, **EXTRA.get(name, {}))
    path, losses = [x.copy()], []
    with np.errstate(all="ignore"):
        for _ in range(steps):
            value, grad = fun(x)
            losses.append(value)
            try:
                opt.step(grad)
            except madam.NonFiniteError:  # diverged: the rest of the run counts as infinite loss
                losses += [np.inf] * (steps + 1 - len(losses))
                return np.array(path), np.array(losses)
            path.append(x.copy())
        losses.append(fun(x)[0])
    return np.array(path), np.array(losses)


def tuned_run(fun, x0, name, steps=STEPS):
    """The run with the best learning rate of LR_GRID; returns (lr, path, losses)."""
    best = None
    for lr in LR_GRID:
        path, losses = run(fun, x0, name, lr, steps)
        with np.errstate(all="ignore"):
            tail = np.log10(np.maximum(losses[-max(1, steps // 10):], 1e-300)).mean()
        score = tail if np.isfinite(tail) else np.inf
        if best is None or score < best[0]:
            best = (score, lr, path, losses)
    return best[1:]


def figure(steps=STEPS):
    """Draw the demo figure and return it (a matplotlib Figure, no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), layout="constrained")
    ax_path, ax_loss = fig.subplots(1, 2)
    xs, ys = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    zs = (1 - xs) ** 2 + 100 * (ys - xs ** 2) ** 2
    ax_path.contour(xs, ys, np.log10(zs + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
    quad, q0 = quadratic()
    for name in OPTIMIZERS:
        lr_rosen, path, _ = tuned_run(rosenbrock, (-1.2, 1.0), name, steps)
        line, = ax_path.plot(path[:, 0], path[:, 1], lw=1.2, label=f"{name} (lr {lr_rosen:g})")
        lr_quad, _, losses = tuned_run(quad, q0, name, steps)
        ax_loss.semilogy(np.maximum(losses, 1e-16), color=line.get_color(), lw=1.2,
                         label=f"{name} (lr {lr_quad:g})")
    ax_path.plot([1], [1], "k*", ms=12)
    ax_path.set(title=f"Rosenbrock from (-1.2, 1), {steps} steps", xlabel="x", ylabel="y",
                xlim=(-2, 2), ylim=(-1, 3))
    ax_path.legend(fontsize=8, loc="lower right")
    ax_loss.set(title="Ill-conditioned quadratic (20-D, condition 1e3)", xlabel="step",
                ylabel="loss")
    ax_loss.legend(fontsize=8)
    fig.suptitle("madam's optimisers (C core, float64, in place on NumPy arrays)\n"
                 f"lr tuned per optimiser and problem on {{{', '.join(f'{lr:g}' for lr in LR_GRID)}}}")
    return fig


def main(out="madam-gallery.png", steps=STEPS):
    fig = figure(steps)
    fig.savefig(out, dpi=110)
    return out
