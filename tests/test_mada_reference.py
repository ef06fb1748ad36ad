"""A plain-NumPy MADA (written from reference.md section 3.1, independent of madam) and the checks
of madam's hypergradient against central finite differences of L(x_{t+1}).

The reference keeps what a straightforward implementation keeps (m_{t-1}, v_{t-1}, n_{t-1} of the
last update), computes the six derivatives with the formulas as derived in docs/mada.md (no
(m_t - g_t) / beta1 or 2 n_t - D_t shortcuts), and runs in the dtype of its parameters, so it also
serves test_mada.py as the oracle of whole trajectories with learned coefficients.
"""

import math

import numpy as np
import pytest

import madam  # noqa: F401  (a broken build must fail the suite, not skip it)
from madam.mada import BOX, COEFFICIENTS, LEARNABLE, MADA

LION = (0.95, 0.98)


def sign(x):
    return np.sign(x)


class MadaRef:
    """MADA in NumPy. ``step(g)``: hyper step (when due), then the update."""

    def __init__(self, x, lr=1e-3, coef=None, hyper_lr=None, learn=COEFFICIENTS, hyper_start=50,
                 hyper_clip=10.0, eps=1e-6, v_init=1e-15, first_diff="zero", n_init="zero",
                 detach_vbar=False, lion_betas=LION, hyper_delay=False):
        self.x = np.array(x, copy=True)
        dt = self.x.dtype
        self.lr = lr
        self.coef = dict(coef)
        self.hyper_lr = dict(hyper_lr or {})
        self.learn, self.hyper_start, self.hyper_clip = tuple(learn), hyper_start, hyper_clip
        self.eps, self.first_diff, self.n_init = eps, first_diff, n_init
        self.detach_vbar, self.lion = detach_vbar, lion_betas
        self.delay, self.pending = hyper_delay, None
        z = np.zeros_like(self.x)
        self.m, self.n, self.mL, self.gprev = z.copy(), z.copy(), z.copy(), z.copy()
        self.v = np.full_like(self.x, v_init)
        self.vbar = np.full_like(self.x, v_init)
        self.t = 0
        self.last = None  # (coef, lr, t, inputs of the last update) for its derivatives
        self.hypergrad = None
        self.dtype = dt

    @property
    def p(self):
        """The parameters (the name tests/problems.py's trajectory helpers use)."""
        return self.x

    def _apply(self, hg):
        """The clipped, projected SGD step on the learned quantities."""
        self.hypergrad = hg
        for j, name in enumerate(LEARNABLE):
            rate = self.hyper_lr.get(name, 0.0)
            if name not in self.learn or rate <= 0 or not math.isfinite(hg[j]):
                continue
            h = self.coef[name] if name != "lr" else self.lr
            h = h - rate * min(max(hg[j], -self.hyper_clip), self.hyper_clip)
            h = min(max(h, BOX[name][0]), BOX[name][1])
            if name == "lr":
                self.lr = h
            else:
                self.coef[name] = h

    # ------------------------------------------------------------------ the map
    @staticmethod
    def update(state, g, coef, lr, t, eps, first_diff, n_init, lion, vbar_fixed=None):
        """(x, m, v, vbar, n, mL, gprev) at t - 1 and g_t -> the same at t, plus u_t."""
        x, m0, v0, vbar0, n0, mL0, gp = state
        b1, b2, b3 = coef["beta1"], coef["beta2"], coef["beta3"]
        rho, c, gamma = coef["rho"], coef["c"], coef["gamma"]
        D = np.zeros_like(g) if (t == 1 and first_diff == "zero") else g - gp
        gh = g + b3 * D
        q = gh * gh
        s = sign(q - v0)
        gt2 = c * q + (1 - c) * (v0 + q * s)
        m = b1 * m0 + (1 - b1) * g
        v = b2 * v0 + (1 - b2) * gt2
        nprev = g * g if (t == 1 and n_init == "grad_sq") else n0
        n = b3 * nprev + (1 - b3) * D
        mL = lion[1] * mL0 + (1 - lion[1]) * g
        uL = lion[0] * mL + (1 - lion[0]) * g
        vbar = (v + (t - 1) * vbar0) / t if vbar_fixed is None else vbar_fixed
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        w = (rho * v + (1 - rho) * vbar) / bc2
        u = gamma * (m / bc1 + b3 * n) / (np.sqrt(w) + eps) + (1 - gamma) * sign(uL)
        return (x - lr * u, m, v, vbar, n, mL, g), u

    def derivatives(self):
        """du_t/dh for the last update: (7, n) with rows beta1 .. gamma and u itself (lr)."""
        coef, lr, t, (x0, m0, v0, vbar0, n0, mL0, gp), g = self.last
        b1, b2, b3 = coef["beta1"], coef["beta2"], coef["beta3"]
        rho, c, gamma = coef["rho"], coef["c"], coef["gamma"]
        (_, m, v, vbar, n, mL, _), u = self.update(
            (x0, m0, v0, vbar0, n0, mL0, gp), g, coef, lr, t, self.eps, self.first_diff,
            self.n_init, self.lion)
        D = np.zeros_like(g) if (t == 1 and self.first_diff == "zero") else g - gp
        nprev = g * g if (t == 1 and self.n_init == "grad_sq") else n0
        gh = g + b3 * D
        q = gh * gh
        s = sign(q - v0)
        gt2 = c * q + (1 - c) * (v0 + q * s)
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        W = rho * v + (1 - rho) * vbar
        sw = np.sqrt(W / bc2)
        Dn = sw + self.eps
        N = m / bc1 + b3 * n
        uL = self.lion[0] * mL + (1 - self.lion[0]) * g
        with np.errstate(divide="ignore", invalid="ignore"):
            dudw = np.where(sw > 0, -gamma * N / (Dn ** 2 * 2 * sw), 0.0)  # du/dw, w = W / bc2
        dWdv = rho if self.detach_vbar else rho + (1 - rho) / t
        dv = {  # dv_t/dh
            "beta2": v0 - gt2,
            "beta3": (1 - b2) * (c + (1 - c) * s) * 2 * gh * D,
            "c": (1 - b2) * (q - v0 - q * s),
        }
        out = np.empty((7,) + g.shape, dtype=g.dtype)
        dmhat = (m0 - g) / bc1 + m * t * b1 ** (t - 1) / bc1 ** 2
        out[0] = gamma / Dn * dmhat
        out[1] = dudw * (dWdv * dv["beta2"] / bc2 + W * t * b2 ** (t - 1) / bc2 ** 2)
        out[2] = gamma * (n + b3 * (nprev - D)) / Dn + dudw * dWdv * dv["beta3"] / bc2
        out[3] = dudw * (v - vbar) / bc2
        out[4] = dudw * dWdv * dv["c"] / bc2
        out[5] = N / Dn - sign(uL)
        out[6] = u
        return out

    def step(self, g):
        g = np.asarray(g)
        t = self.t + 1
        self.hypergrad = None
        if self.delay and self.pending is not None:  # computed by the last step, applied now
            self._apply(self.pending)
            self.pending = None
        if self.learn and t >= 2 and t > self.hyper_start:
            d = self.derivatives()
            dot = (g.astype(np.float64) * d.astype(np.float64)).reshape(7, -1).sum(axis=1)
            lr_prev = self.last[1]
            hg = np.concatenate([-lr_prev * dot[:6], -dot[6:]])
            if self.delay:
                self.pending = hg
            else:
                self._apply(hg)
        state = (self.x, self.m, self.v, self.vbar, self.n, self.mL, self.gprev)
        self.last = (dict(self.coef), self.lr, t, state, g)
        new, _ = self.update(state, g, self.coef, self.lr, t, self.eps, self.first_diff,
                             self.n_init, self.lion)
        self.x, self.m, self.v, self.vbar, self.n, self.mL, self.gprev = new
        self.t = t


# ----------------------------------------------------------------------------- finite differences
def _loss(x, a, b):
    """A smooth, non-quadratic test loss and its gradient."""
    r = x - b
    return float(np.sum(0.5 * a * r * r + 0.1 * r ** 4)), a * r + 0.4 * r ** 3


def _random_state(rng, n, t):
    """A random MADA state after t - 1 steps (v, vbar > 0) and the gradient g_t."""
    scale = 10.0 ** rng.uniform(-1, 1, n)
    return {
        "x": rng.standard_normal(n),
        "m": 0.3 * rng.standard_normal(n) * scale,
        "v": (rng.uniform(0.2, 2.0, n) * scale) ** 2,
        "vbar": (rng.uniform(0.2, 2.0, n) * scale) ** 2,
        "n": 0.1 * rng.standard_normal(n) * scale,
        "mL": 0.3 * rng.standard_normal(n) * scale,
        "gprev": rng.standard_normal(n) * scale,
        "g": rng.standard_normal(n) * scale,
    }


def _madam_hypergrad(st, coef, lr, t, opts, a, b):
    """madam's dL(x_{t+1})/dh for the update of step t from state st (via load_state_dict)."""
    x = st["x"].copy()
    opt = MADA(x, lr=lr, init=coef, learn=LEARNABLE, hyper_lr=0.0, hyper_start=t, **opts)
    sd = opt.state_dict()
    sd["step_count"] = t - 1
    for k in COEFFICIENTS:
        sd[f"coef.{k}"] = sd[f"prev.{k}"] = coef[k]
    for name, key in (("exp_avg", "m"), ("exp_avg_sq", "v"), ("avg_exp_avg_sq", "vbar"),
                      ("exp_avg_diff", "n"), ("lion_exp_avg", "mL"), ("prev_grad", "gprev")):
        sd[f"state.0.{name}"] = st[key].copy()
    opt.load_state_dict(sd)
    opt.step(st["g"].copy())            # the update of step t (no hyper step: t <= hyper_start)
    x1 = x.copy()
    _, grad_next = _loss(x1, a, b)
    opt.step(grad_next)                 # its start: the hypergradient of step t
    return np.array([opt.last_hypergrad[k] for k in LEARNABLE]), x1


def _fd_hypergrad(st, coef, lr, t, opts, a, b, delta=1e-5):
    """Central differences (Richardson-extrapolated) of L(x_{t+1}) in every learnable quantity."""
    state = (st["x"], st["m"], st["v"], st["vbar"], st["n"], st["mL"], st["gprev"])
    fixed = None
    if opts.get("detach_vbar"):
        (_, _, _, fixed, _, _, _), _ = MadaRef.update(
            state, st["g"], coef, lr, t, opts.get("eps", 1e-6), opts.get("first_diff", "zero"),
            opts.get("n_init", "zero"), LION)

    def u_of(c, step_lr):
        _, u = MadaRef.update(state, st["g"], c, step_lr, t, opts.get("eps", 1e-6),
                              opts.get("first_diff", "zero"), opts.get("n_init", "zero"),
                              LION, vbar_fixed=fixed)
        return u

    u0 = u_of(coef, lr)
    r0 = st["x"] - lr * u0 - b  # residual at x_{t+1}(h)

    def dphi(name, h):
        """L(x_{t+1}(h')) - L(x_{t+1}(h)) from the step difference, without cancellation in L."""
        c, step_lr = dict(coef), lr
        if name == "lr":
            step_lr = h
        else:
            c[name] = h
        dx = -(step_lr * u_of(c, step_lr) - lr * u0)
        return float(np.sum(dx * (a * r0 + 0.5 * a * dx
                                  + 0.1 * (4 * r0 ** 3 + 6 * r0 ** 2 * dx + 4 * r0 * dx ** 2
                                           + dx ** 3))))

    out = []
    for name in LEARNABLE:
        h0 = lr if name == "lr" else coef[name]
        d = delta * max(abs(h0), 1e-3)

        def central(k):
            return (dphi(name, h0 + k) - dphi(name, h0 - k)) / (2 * k)

        out.append((4 * central(d / 2) - central(d)) / 3)
    return np.array(out), state


FD_OPTIONS = [
    pytest.param({}, id="defaults"),
    pytest.param({"detach_vbar": True}, id="detach_vbar"),
    pytest.param({"first_diff": "grad", "n_init": "grad_sq"}, id="released-quirks"),
    pytest.param({"eps": 1e-3}, id="eps-1e-3"),
]
FD_TIMES = [1, 2, 7, 40]


@pytest.mark.parametrize("t", FD_TIMES)
@pytest.mark.parametrize("opts", FD_OPTIONS)
def test_hypergradient_matches_finite_differences(opts, t):
    rng = np.random.default_rng(100 * t + len(opts))
    n = 64
    st = _random_state(rng, n, t)
    coef = {"beta1": rng.uniform(0.5, 0.95), "beta2": rng.uniform(0.6, 0.99),
            "beta3": rng.uniform(0.1, 0.9), "rho": rng.uniform(0.2, 0.8),
            "c": rng.uniform(0.2, 0.8), "gamma": rng.uniform(0.3, 0.9)}
    lr = 0.05
    a = rng.uniform(0.5, 2.0, n)
    b = rng.standard_normal(n)
    got, x1 = _madam_hypergrad(st, coef, lr, t, opts, a, b)
    want, _ = _fd_hypergrad(st, coef, lr, t, opts, a, b)
    # the update itself agrees with the reference map
    (x_ref, *_), _ = MadaRef.update(
        (st["x"], st["m"], st["v"], st["vbar"], st["n"], st["mL"], st["gprev"]), st["g"], coef,
        lr, t, opts.get("eps", 1e-6), opts.get("first_diff", "zero"), opts.get("n_init", "zero"),
        LION)
    assert np.abs(x1 - x_ref).max() <= 1e-13 * np.abs(x_ref).max()
    # Every quantity is exercised, except rho at t = 1, where vbar_1 = v_1 makes du/drho = 0.
    live = np.abs(want) > 1e-6 * np.abs(want).max()
    assert live.sum() >= (6 if t == 1 else 7), dict(zip(LEARNABLE, want))
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-9 * np.abs(want).max())
    rel[~live] = 0.0
    assert np.abs(got[~live]).max(initial=0.0) <= 1e-12 * np.abs(want).max()
    assert rel.max() <= 1e-6, dict(zip(LEARNABLE, rel))


def test_reference_derivatives_match_finite_differences():
    """The oracle itself: its straightforward derivative formulas against finite differences."""
    rng = np.random.default_rng(7)
    n, t = 32, 5
    st = _random_state(rng, n, t)
    coef = {"beta1": 0.8, "beta2": 0.9, "beta3": 0.5, "rho": 0.4, "c": 0.6, "gamma": 0.7}
    lr = 0.05
    a, b = rng.uniform(0.5, 2.0, n), rng.standard_normal(n)
    ref = MadaRef(st["x"], lr=lr, coef=coef, learn=(), eps=1e-6)
    ref.t = t - 1
    ref.m, ref.v, ref.vbar, ref.n, ref.mL, ref.gprev = (st[k].copy() for k in
                                                        ("m", "v", "vbar", "n", "mL", "gprev"))
    ref.step(st["g"])
    d = ref.derivatives()
    _, grad_next = _loss(ref.x, a, b)
    hg = np.concatenate([-lr * (grad_next * d[:6]).sum(axis=1), [-(grad_next * d[6]).sum()]])
    want, _ = _fd_hypergrad(st, coef, lr, t, {}, a, b)
    assert (np.abs(hg - want) / np.abs(want)).max() <= 1e-6


def test_constant_vbar_formulas_miss_the_vbar_path():
    """reference.md's formulas (vbar_t a constant, detach_vbar=True) are the derivative of another
    map: against finite differences of the real one (dvbar_t/dv_t = 1/t) they are off whenever
    rho < 1, which is why madam's default includes the 1/t path."""
    rng = np.random.default_rng(11)
    n, t = 64, 2
    st = _random_state(rng, n, t)
    coef = {"beta1": 0.9, "beta2": 0.9, "beta3": 0.3, "rho": 0.5, "c": 0.5, "gamma": 0.8}
    a, b = rng.uniform(0.5, 2.0, n), rng.standard_normal(n)
    want, _ = _fd_hypergrad(st, coef, 0.05, t, {}, a, b)
    exact, _ = _madam_hypergrad(st, coef, 0.05, t, {}, a, b)
    detached, _ = _madam_hypergrad(st, coef, 0.05, t, {"detach_vbar": True}, a, b)
    rel = lambda got: np.abs(got - want) / np.abs(want)  # noqa: E731
    assert rel(exact).max() <= 1e-6
    for j in (1, 2, 4):  # beta2, beta3, c: the paths through v
        assert rel(detached)[j] > 1e-2, LEARNABLE[j]
