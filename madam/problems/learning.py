"""Problems that fit a model to data: the AMOO teacher-student MLP, the synthetic multi-task
regression and the bundled real data sets (minibatches through Problem.new_batch)."""
import math

import numpy as np

from .._validate import choice
from .._validate import flag as _flag
from .._validate import positive as _positive
from .._validate import integer as _int_arg
from .._validate import real as _real_arg
from .base import Batch, Problem, _real_array, _rng_arg, _torch_linear_init


class _Batched(Problem):
    """Shared batch checking: a :class:`Batch` of (B, d_in) inputs and (B, d_out) targets."""

    _d_in = _d_out = 0

    def _check_batch(self, batch):
        if batch is None:
            return self._default_batch()
        if not isinstance(batch, Batch):
            raise TypeError(f"batch must be a madam.problems.Batch (from new_batch) or None, "
                            f"got {type(batch).__name__}")
        inputs = _real_array("batch.inputs", batch.inputs, dtype=self.dtype)
        targets = _real_array("batch.targets", batch.targets, dtype=self.dtype)
        if inputs.ndim != 2 or inputs.shape[1] != self._d_in or inputs.shape[0] < 1:
            raise ValueError(f"batch.inputs must have shape (B, {self._d_in}) with B >= 1, "
                             f"got {inputs.shape}")
        if targets.shape != (inputs.shape[0], self._d_out):
            raise ValueError(f"batch.targets must have shape ({inputs.shape[0]}, {self._d_out}), "
                             f"got {targets.shape}")
        return Batch(inputs, targets)


class _Dataset(_Batched):
    """Problems on a fixed data set (inputs (N, d_in), targets (N, T)); batch None = all rows."""

    def _set_data(self, inputs, targets, batch_size):
        inputs = np.asarray(inputs, dtype=self.dtype)
        targets = np.asarray(targets, dtype=self.dtype)
        inputs.flags.writeable = False
        targets.flags.writeable = False
        self.data = Batch(inputs, targets)
        self._d_in, self._d_out = inputs.shape[1], targets.shape[1]
        self.batch_size = (None if batch_size is None
                           else _int_arg("batch_size", batch_size, 1, inputs.shape[0]))

    def _default_batch(self):
        return self.data

    def new_batch(self, rng):
        """Rows drawn without replacement (``batch_size`` of them); None when batch_size is None
        (full-batch training: losses(x) uses every row)."""
        rng = _rng_arg(rng)
        if self.batch_size is None:
            return None
        rows = np.sort(rng.choice(self.data.inputs.shape[0], self.batch_size, replace=False))
        return Batch(self.data.inputs[rows], self.data.targets[rows])


# ============================================================================ teacher-student
class TeacherStudent(_Batched):
    r"""AMOO's teacher-student problem (Efroni et al., OPT 2024, section 4 and appendix C).

    Student and teacher are 2-layer ReLU MLPs h(u) = W2 relu(W1 u + b1) + b2 from R^d_in to
    R^d_out with ``hidden`` units. The flat parameter vector x is laid out as
    ``[W1 (hidden, d_in) row-major, b1 (hidden), W2 (d_out, hidden) row-major, b2 (d_out)]``
    (PyTorch's nn.Linear layout), n = hidden (d_in + 1) + d_out (hidden + 1); :meth:`unflatten`
    returns the four views. On a batch of inputs u_b ~ N(0, I) with targets
    y_b = h_teacher(u_b) + sigma eps_b, eps_b ~ N(0, I), the C losses are::

        f_i(x) = (1/B) sum_b (o_b - y_b)^T H_i (o_b - y_b),    o_b = h_x(u_b)

    with diagonal H_1 = I and H_i = a I + (1 - a) e1 e1^T (a = ``alpha``) for i >= 2, unless
    ``output_hessian_diags`` (C, d_out, non-negative) gives the diagonals. All losses are minimised
    in expectation by the teacher (aligned objectives). Defaults follow the paper: d_in = d_out =
    10, hidden = 256, C = 10, a = 1e-4, batch 1024; sigma = 0.1 (the paper runs 1, 0.1, 0.001).

    Gradients (G_i = (2/B) (O - Y) H_i, rows per sample; m = 1[Z > 0], Z = U W1^T + b1, A = m Z):
    dW2 = G^T A, db2 = sum_b G, D = (G W2) * m, dW1 = D^T U, db1 = sum_b D.

    Hessian-vector product along v = (V1, c1, V2, c2), Pearlmutter's R-operator written by hand
    (forward R-pass, then the R-backward); relu'' = 0 and the masks are constant a.e., so::

        R(Z) = U V1^T + c1,   R(A) = m * R(Z),   R(O) = R(A) W2^T + A V2^T + c2
        R(G) = (2/B) R(O) H_i
        R(dW2) = R(G)^T A + G^T R(A),        R(db2) = sum_b R(G)
        R(D) = (R(G) W2 + G V2) * m,         R(dW1) = R(D)^T U,   R(db1) = sum_b R(D)

    i.e. the Gauss-Newton term J_o^T (2 H_i / B) J_o plus the output-residual curvature through the
    bilinear W2 * relu(.) coupling (the terms G^T R(A) and G V2). This is the exact Hessian
    wherever no pre-activation is exactly 0 (``smooth`` is False); there relu'(0) = 0 is used,
    as in PyTorch.

    Batches: ``new_batch(rng)`` draws a fresh :class:`Batch` of ``batch_size`` samples;
    ``batch=None`` uses a fixed batch drawn at construction (``self.batch``), so the problem is
    deterministic unless batches are passed. The teacher and that batch come from ``seed``.
    :meth:`initial_points` draws students from PyTorch's default nn.Linear initialisation (as the
    teacher). The Pareto set of the batch losses is not known in closed form (None); the teacher
    is ``self.teacher``.
    """

    name = "teacher_student"
    smooth = False

    def __init__(self, n_obj=None, alpha=1e-4, d_in=10, hidden=256, d_out=10, batch_size=1024,
                 sigma=0.1, seed=0, dtype=np.float64, output_hessian_diags=None):
        d_in = _int_arg("d_in", d_in, 1)
        hidden = _int_arg("hidden", hidden, 1)
        d_out = _int_arg("d_out", d_out, 1)
        self.alpha = _real_arg("alpha", alpha, 0.0, 1.0)
        if output_hessian_diags is None:
            n_obj = 10 if n_obj is None else _int_arg("n_obj", n_obj, 1)
            hd = np.full((n_obj, d_out), self.alpha)
            hd[:, 0] = 1.0
            hd[0] = 1.0
        else:
            hd = _real_array("output_hessian_diags", output_hessian_diags, dtype=np.float64)
            if hd.ndim != 2 or hd.shape[1] != d_out or hd.shape[0] < 1:
                raise ValueError(f"output_hessian_diags must have shape (C, d_out={d_out}), "
                                 f"got {hd.shape}")
            if np.any(hd < 0):
                raise ValueError("output_hessian_diags must be >= 0 (positive semi-definite H_i)")
            if n_obj is not None and _int_arg("n_obj", n_obj, 1) != hd.shape[0]:
                raise ValueError(f"n_obj={n_obj} disagrees with output_hessian_diags "
                                 f"({hd.shape[0]} rows)")
            n_obj = hd.shape[0]
        super().__init__(n_obj, hidden * (d_in + 1) + d_out * (hidden + 1), dtype)
        self.d_in, self.hidden, self.d_out = d_in, hidden, d_out
        self._d_in, self._d_out = d_in, d_out
        self.batch_size = _int_arg("batch_size", batch_size, 1)
        self.sigma = _real_arg("sigma", sigma, 0.0)
        self.seed = _int_arg("seed", seed, 0)
        self.output_hessian_diags = hd.astype(self.dtype)
        self.output_hessian_diags.flags.writeable = False
        rng = np.random.default_rng(self.seed)
        self._teacher64 = self._draw_params(rng)
        self.teacher = self._out(self._teacher64)
        self.teacher.flags.writeable = False
        self.batch = self._draw_batch(rng)
        self._validation_inputs = None

    # ------------------------------------------------------------------ layout and data
    def unflatten(self, x):
        """Views (W1 (hidden, d_in), b1 (hidden,), W2 (d_out, hidden), b2 (d_out,)) into x."""
        h, di, do = self.hidden, self.d_in, self.d_out
        s1, s2, s3 = h * di, h * di + h, h * di + h + do * h
        return x[:s1].reshape(h, di), x[s1:s2], x[s2:s3].reshape(do, h), x[s3:]

    def _draw_params(self, rng):
        h, di, do = self.hidden, self.d_in, self.d_out
        return np.concatenate([_torch_linear_init(rng, di, h * di), _torch_linear_init(rng, di, h),
                               _torch_linear_init(rng, h, do * h), _torch_linear_init(rng, h, do)])

    def _teacher_outputs(self, inputs):
        """Teacher outputs computed in float64, rounded to the problem's dtype."""
        return self._out(self._forward(self._teacher64, inputs.astype(np.float64))[2])

    def _draw_batch(self, rng):
        inputs64 = rng.standard_normal((self.batch_size, self.d_in))
        noise = rng.standard_normal((self.batch_size, self.d_out))
        targets = self._out(self._forward(self._teacher64, inputs64)[2] + self.sigma * noise)
        inputs = self._out(inputs64)
        inputs.flags.writeable = False
        targets.flags.writeable = False
        return Batch(inputs, targets)

    def _default_batch(self):
        return self.batch

    def new_batch(self, rng):
        """A fresh Batch: batch_size inputs ~ N(0, I), targets = teacher + sigma N(0, I)."""
        return self._draw_batch(_rng_arg(rng))

    def _initial_points(self, k, rng):
        return np.stack([self._draw_params(rng) for _ in range(k)])

    def output_error(self, x, inputs=None):
        """E ||h_x(u) - h_teacher(u)||^2 / d_out over ``inputs`` (m, d_in) (default: 8192 fixed
        N(0, I) validation inputs drawn from seed + 1): the paper's per-dimension distance."""
        x = self._point(x)
        if inputs is None:
            if self._validation_inputs is None:
                rng = np.random.default_rng(self.seed + 1)
                self._validation_inputs = self._out(rng.standard_normal((8192, self.d_in)))
            inputs = self._validation_inputs
        else:
            inputs = _real_array("inputs", inputs, dtype=self.dtype)
            if inputs.ndim != 2 or inputs.shape[1] != self.d_in or inputs.shape[0] < 1:
                raise ValueError(f"inputs must have shape (m, {self.d_in}), got {inputs.shape}")
        diff = self._forward(x, inputs)[2] - self._teacher_outputs(inputs)
        return float(np.mean(diff * diff))

    # ------------------------------------------------------------------ network
    def _forward(self, x, inputs):
        w1, b1, w2, b2 = self.unflatten(x)
        z = inputs @ w1.T + b1
        mask = z > 0
        act = z * mask                                          # relu, in z's dtype
        return mask, act, act @ w2.T + b2

    def _backward(self, x, g, act, mask, inputs):
        """Parameter gradients for stacked output gradients g (S, B, d_out): (S, n)."""
        _, _, w2, _ = self.unflatten(x)
        g_w2 = np.swapaxes(g, 1, 2) @ act
        g_b2 = g.sum(axis=1)
        d = (g @ w2) * mask
        g_w1 = np.swapaxes(d, 1, 2) @ inputs
        g_b1 = d.sum(axis=1)
        s = g.shape[0]
        return np.concatenate([g_w1.reshape(s, -1), g_b1, g_w2.reshape(s, -1), g_b2], axis=1)

    def _residual(self, x, batch):
        mask, act, out = self._forward(x, batch.inputs)
        return mask, act, out - batch.targets

    def _losses(self, x, batch):
        r = self._residual(x, batch)[2]
        return self.output_hessian_diags @ np.mean(r * r, axis=0)

    def _grad_outputs(self, r, hd):
        """G_i = (2/B) r H_i for the diagonal rows hd (S, d_out): (S, B, d_out)."""
        return (2 / r.shape[0]) * r[None, :, :] * hd[:, None, :]

    def _jacobian(self, x, batch):
        return self._losses_and_jacobian(x, batch)[1]

    def _losses_and_jacobian(self, x, batch):
        mask, act, r = self._residual(x, batch)
        f = self.output_hessian_diags @ np.mean(r * r, axis=0)
        g = self._grad_outputs(r, self.output_hessian_diags)
        jac = self._backward(x, g, act, mask, batch.inputs)
        return f, jac

    def _r_op(self, x, v, hd, batch):
        """Hessian-vector products for the objectives with diagonals hd (S, d_out): (S, n)."""
        mask, act, r = self._residual(x, batch)
        _, _, w2, _ = self.unflatten(x)
        v1, c1, v2, c2 = self.unflatten(v)
        u = batch.inputs
        r_act = (u @ v1.T + c1) * mask                        # R(A)
        r_out = r_act @ w2.T + act @ v2.T + c2                # R(O)
        g = self._grad_outputs(r, hd)                         # (S, B, d_out)
        rg = self._grad_outputs(r_out, hd)                    # R(G)
        r_w2 = np.swapaxes(rg, 1, 2) @ act + np.swapaxes(g, 1, 2) @ r_act
        r_b2 = rg.sum(axis=1)
        r_d = (rg @ w2 + g @ v2) * mask
        r_w1 = np.swapaxes(r_d, 1, 2) @ u
        r_b1 = r_d.sum(axis=1)
        s = hd.shape[0]
        return np.concatenate([r_w1.reshape(s, -1), r_b1, r_w2.reshape(s, -1), r_b2], axis=1)

    def _hvp(self, x, v, i, batch):
        return self._r_op(x, v, self.output_hessian_diags[i:i + 1], batch)[0]

    def _hvps(self, x, v, batch):
        return self._r_op(x, v, self.output_hessian_diags, batch)


# ============================================================================ synthetic MTL
class MultiTaskRegression(_Dataset):
    r"""Multi-task linear regression through a shared low-rank representation; tasks conflict.

    Data (from ``seed``): inputs u_b ~ N(0, I_p), b = 1..N; task directions
    beta_t = normalise(sqrt(rho) z_0 + sqrt(1 - rho) z_t), z ~ N(0, I_p), rho =
    ``task_correlation``; targets y_bt = u_b^T beta_t + noise eps_bt.
    Parameters: shared U (p, r) and task heads h_t (r), flat layout
    ``[U (p, r) row-major, heads (T, r) row-major]``, n = r (p + T). Losses::

        f_t(x) = (1/B) sum_b (u_b^T U h_t - y_bt)^2

    With rank r < T and rho < 1 no single representation fits every task: the objectives
    conflict and the Pareto front is a genuine trade-off (not known in closed form: None).
    rho = 1 makes every task the same (aligned). Gradients, with e_t = U_B U h_t - y_t:
    dU = (2/B) U_B^T e_t h_t^T, dh_t = (2/B) (U_B U)^T e_t, dh_s = 0 (s != t).
    Hessian-vector product along (dU, dh): R(p) = U_B dU h_t + U_B U dh_t and
    R(dU) = (2/B) U_B^T (R(p) h_t^T + e_t dh_t^T),
    R(dh_t) = (2/B) ((U_B dU)^T e_t + (U_B U)^T R(p)).
    Full batch by default; ``batch_size`` makes ``new_batch`` draw rows without replacement.
    Initial points: U ~ N(0, 1/p), heads ~ N(0, 1/r).
    """

    name = "mtl_regression"

    def __init__(self, n_tasks=3, n_features=8, rank=1, n_samples=128, noise=0.1,
                 task_correlation=0.0, batch_size=None, seed=0, dtype=np.float64):
        n_tasks = _int_arg("n_tasks", n_tasks, 2)
        p = _int_arg("n_features", n_features, 1)
        rank = _int_arg("rank", rank, 1, p)
        n_samples = _int_arg("n_samples", n_samples, 1)
        self.noise = _real_arg("noise", noise, 0.0)
        self.task_correlation = _real_arg("task_correlation", task_correlation, 0.0, 1.0)
        self.seed = _int_arg("seed", seed, 0)
        super().__init__(n_tasks, rank * (p + n_tasks), dtype)
        self.n_features, self.rank = p, rank
        rng = np.random.default_rng(self.seed)
        inputs = rng.standard_normal((n_samples, p))
        z = rng.standard_normal((n_tasks + 1, p))
        rho = self.task_correlation
        beta = math.sqrt(rho) * z[:1] + math.sqrt(1 - rho) * z[1:]
        beta /= np.linalg.norm(beta, axis=1, keepdims=True)
        targets = inputs @ beta.T + self.noise * rng.standard_normal((n_samples, n_tasks))
        self.task_directions = beta
        self._set_data(inputs, targets, batch_size)

    def unflatten(self, x):
        """Views (U (p, r), heads (T, r)) into x."""
        k = self.n_features * self.rank
        return x[:k].reshape(self.n_features, self.rank), x[k:].reshape(self.n_obj, self.rank)

    def _residuals(self, x, batch):
        u_mat, heads = self.unflatten(x)
        feats = batch.inputs @ u_mat                            # (B, r)
        return feats, feats @ heads.T - batch.targets          # (B, T)

    def _losses(self, x, batch):
        e = self._residuals(x, batch)[1]
        return np.mean(e * e, axis=0)

    def _jacobian(self, x, batch):
        return self._losses_and_jacobian(x, batch)[1]

    def _losses_and_jacobian(self, x, batch):
        heads = self.unflatten(x)[1]
        feats, e = self._residuals(x, batch)
        scale = self.dtype.type(2 / e.shape[0])
        t, r, p = self.n_obj, self.rank, self.n_features
        jac = np.zeros((t, self.dim), dtype=self.dtype)
        xe = batch.inputs.T @ e                                 # (p, T)
        jac[:, :p * r] = (scale * xe.T[:, :, None] * heads[:, None, :]).reshape(t, p * r)
        g_heads = scale * (e.T @ feats)                         # (T, r)
        for k in range(t):
            jac[k, p * r + k * r:p * r + (k + 1) * r] = g_heads[k]
        return np.mean(e * e, axis=0), jac

    def _hvp(self, x, v, i, batch):
        heads = self.unflatten(x)[1]
        du, dheads = self.unflatten(v)
        feats, e = self._residuals(x, batch)
        e = e[:, i]
        h, dh = heads[i], dheads[i]
        dfeats = batch.inputs @ du                              # (B, r)
        rp = dfeats @ h + feats @ dh                            # R(prediction), (B,)
        scale = self.dtype.type(2 / e.shape[0])
        out = np.zeros(self.dim, dtype=self.dtype)
        p, r = self.n_features, self.rank
        out[:p * r] = (scale * (np.outer(batch.inputs.T @ rp, h)
                                + np.outer(batch.inputs.T @ e, dh))).ravel()
        out[p * r + i * r:p * r + (i + 1) * r] = scale * (dfeats.T @ e + feats.T @ rp)
        return out

    def _initial_points(self, k, rng):
        p, r, t = self.n_features, self.rank, self.n_obj
        return np.concatenate([rng.standard_normal((k, p * r)) / math.sqrt(p),
                               rng.standard_normal((k, t * r)) / math.sqrt(r)], axis=1)


# ============================================================================ real data
_REAL_DATASETS = ("linnerud", "wine")


def _load_real(dataset):
    """Inputs (standardised), targets and loss kinds of a bundled data set.

    The data ship with madam (``madam/data/real_datasets.npz``, 7 KB): the values of
    scikit-learn's ``load_wine()`` (the UCI Wine data: Forina et al., 178 wines, 13 chemical
    measurements, 3 cultivars) and ``load_linnerud()`` (Tenenhaus: 20 athletes, 3 exercises,
    3 physiological measurements), checked equal to scikit-learn's in the tests."""
    from importlib import resources

    with resources.files("madam").joinpath("data", "real_datasets.npz").open("rb") as fh:
        stored = np.load(fh)
        data, target = stored[f"{dataset}_data"], stored[f"{dataset}_target"]
    if dataset == "linnerud":
        inputs, targets, kinds = data, target, ("mse",) * 3
        targets = (targets - targets.mean(0)) / targets.std(0)
    else:
        inputs = data
        targets = (target[:, None] == np.arange(3)[None, :]).astype(np.float64)
        kinds = ("logistic",) * 3
    inputs = np.asarray(inputs, dtype=np.float64)
    inputs = (inputs - inputs.mean(0)) / inputs.std(0)
    return inputs, np.asarray(targets, dtype=np.float64), kinds


class RealDataMTL(_Dataset):
    r"""Multi-task learning on a small real data set that madam ships (no download).

    ``dataset="linnerud"``: 20 athletes, 3 standardised exercise inputs (chins, sit-ups, jumps),
    3 regression tasks (standardised weight, waist, pulse; squared loss). ``dataset="wine"``:
    178 wines, 13 standardised chemical inputs, 3 one-vs-rest classification tasks (logistic
    loss with labels in {0, 1}). The data are scikit-learn's, bundled with madam (see
    ``_load_real``).

    Model: a shared-bottom network, hidden layer a = tanh(W1 u + b1) (``hidden`` units) and one
    linear head per task, s_t = w_t^T a + c_t. Flat layout
    ``[W1 (hidden, d_in) row-major, b1 (hidden), heads W (T, hidden) row-major, c (T)]``.
    Losses f_t = (1/B) sum_b l_t(s_bt, y_bt) with l = (s - y)^2 or softplus(s) - y s; l', l''
    are 2 (s - y), 2 or sigma(s) - y, sigma(s)(1 - sigma(s)).

    Gradient of f_t: g = l'(s_t)/B (B,), dw_t = A^T g, dc_t = sum g, D = (g w_t^T) * (1 - A^2),
    dW1 = D^T U, db1 = sum_b D. Hessian-vector product (R-operator, tanh'' = -2 tanh (1 - tanh^2))
    along (V1, e1, dW, dc): R(Z) = U V1^T + e1, R(A) = (1 - A^2) R(Z), R(s) = R(A) w_t + A dw_t
    + dc_t, R(g) = l''(s) R(s)/B, R(dw_t) = R(A)^T g + A^T R(g), R(dc_t) = sum R(g),
    R(D) = (R(g) w_t^T + g dw_t^T)(1 - A^2) - 2 (g w_t^T) A R(A), R(dW1) = R(D)^T U,
    R(db1) = sum_b R(D). Smooth everywhere. Pareto front unknown (None).
    Full batch by default; ``batch_size`` makes ``new_batch`` draw rows without replacement.
    Initial points: PyTorch's default nn.Linear initialisation.
    """

    def __init__(self, dataset="linnerud", hidden=16, batch_size=None, dtype=np.float64):
        if not isinstance(dataset, str):
            raise TypeError(f"dataset must be one of {_REAL_DATASETS}, "
                            f"got {type(dataset).__name__}")
        if dataset not in _REAL_DATASETS:
            raise ValueError(f"dataset must be one of {_REAL_DATASETS}, got {dataset!r}")
        hidden = _int_arg("hidden", hidden, 1)
        inputs, targets, kinds = _load_real(dataset)
        n_tasks, d_in = targets.shape[1], inputs.shape[1]
        super().__init__(n_tasks, hidden * (d_in + 1) + n_tasks * (hidden + 1), dtype)
        self.dataset, self.hidden, self.d_in = dataset, hidden, d_in
        self.name = f"{dataset}_mtl"
        self.loss_kinds = kinds
        self._logistic = np.array([k == "logistic" for k in kinds])
        self._set_data(inputs, targets, batch_size)

    def unflatten(self, x):
        """Views (W1 (hidden, d_in), b1 (hidden,), W (T, hidden), c (T,)) into x."""
        h, di, t = self.hidden, self.d_in, self.n_obj
        s1, s2, s3 = h * di, h * di + h, h * di + h + t * h
        return x[:s1].reshape(h, di), x[s1:s2], x[s2:s3].reshape(t, h), x[s3:]

    def _forward(self, x, batch):
        w1, b1, w, c = self.unflatten(x)
        act = np.tanh(batch.inputs @ w1.T + b1)                 # (B, h)
        return act, act @ w.T + c                               # scores (B, T)

    def _loss_terms(self, s, y):
        """Per-sample losses, l' and l'' (B, T) for scores s and targets y."""
        one = self.dtype.type(1)
        half = self.dtype.type(0.5)
        sig = half * (one + np.tanh(half * s))                  # stable sigmoid
        log = self._logistic[None, :]
        loss = np.where(log, np.logaddexp(self.dtype.type(0), s) - y * s, (s - y) ** 2)
        d1 = np.where(log, sig - y, 2 * (s - y))
        d2 = np.where(log, sig * (one - sig), self.dtype.type(2))
        return loss, d1, d2

    def _losses(self, x, batch):
        _, s = self._forward(x, batch)
        return np.mean(self._loss_terms(s, batch.targets)[0], axis=0)

    def _jacobian(self, x, batch):
        return self._losses_and_jacobian(x, batch)[1]

    def _losses_and_jacobian(self, x, batch):
        w = self.unflatten(x)[2]
        act, s = self._forward(x, batch)
        loss, d1, _ = self._loss_terms(s, batch.targets)
        g = d1.T / self.dtype.type(s.shape[0])                 # (T, B)
        h, di, t = self.hidden, self.d_in, self.n_obj
        d = g[:, :, None] * w[:, None, :] * (1 - act * act)[None]   # (T, B, h)
        jac = np.zeros((t, self.dim), dtype=self.dtype)
        jac[:, :h * di] = (np.swapaxes(d, 1, 2) @ batch.inputs).reshape(t, h * di)
        jac[:, h * di:h * di + h] = d.sum(axis=1)
        head = h * di + h
        g_heads = g @ act                                       # (T, h)
        for k in range(t):
            jac[k, head + k * h:head + (k + 1) * h] = g_heads[k]
            jac[k, head + t * h + k] = g[k].sum()
        return np.mean(loss, axis=0), jac

    def _hvp(self, x, v, i, batch):
        w = self.unflatten(x)[2]
        v1, e1, dw, dc = self.unflatten(v)
        u = batch.inputs
        act, s = self._forward(x, batch)
        _, d1, d2 = self._loss_terms(s, batch.targets)
        nb = self.dtype.type(s.shape[0])
        slope = 1 - act * act                                   # tanh'
        r_act = slope * (u @ v1.T + e1)                         # R(A)
        r_s = r_act @ w[i] + act @ dw[i] + dc[i]                # R(s_i)
        g = d1[:, i] / nb
        r_g = d2[:, i] * r_s / nb
        r_d = (np.outer(r_g, w[i]) + np.outer(g, dw[i])) * slope \
            - 2 * np.outer(g, w[i]) * act * r_act
        h, di, t = self.hidden, self.d_in, self.n_obj
        out = np.zeros(self.dim, dtype=self.dtype)
        out[:h * di] = (r_d.T @ u).ravel()
        out[h * di:h * di + h] = r_d.sum(axis=0)
        head = h * di + h
        out[head + i * h:head + (i + 1) * h] = r_act.T @ g + act.T @ r_g
        out[head + t * h + i] = r_g.sum()
        return out

    def _initial_points(self, k, rng):
        h, di, t = self.hidden, self.d_in, self.n_obj
        return np.stack([np.concatenate([_torch_linear_init(rng, di, h * di),
                                         _torch_linear_init(rng, di, h),
                                         _torch_linear_init(rng, h, t * h),
                                         _torch_linear_init(rng, h, t)]) for _ in range(k)])
_ICML_SETUPS = ("switching", "selection", "approximate_optimum")


class PowerLossMLP(TeacherStudent):
    r"""The ICML code's setups: a 2-layer ReLU MLP (d_in -> hidden -> d_out, default 20 -> 512 ->
    7) fitting a random teacher, with C power losses on the residual r_b = o_b - y_b::

        f_i(x) = (1/B) sum_b ((r_b + e_i)^T H_i (r_b + e_i))^(p_i)

    ``setup``:
      * ``"switching"``: H_i = I, p = (1, 1.5, 2), e = 0 (the curvature ranking of the losses
        flips as the residual shrinks);
      * ``"selection"``: p = 1, H_1 = I, H_2 = diag(1, 0.01, ...), H_3 = diag(1, 1e-4, ...);
      * ``"approximate_optimum"``: as switching with offsets e_i = (0, 1e-3, -1e-3) (1-vectors).
    Inputs u ~ U(-1, 1)^d_in, targets = teacher(u) * ``target_scale`` (the ICML code: 20 / d_out),
    no noise. ``full_batch=True`` (the ICML default): one fixed batch of ``batch_size`` (100)
    samples, ``new_batch`` returns None (deterministic problem); else fresh batches of
    ``batch_size`` each step. Gradients by hand (backprop through TeacherStudent's network);
    :meth:`output_hvps` gives the exact output-space Hessian-vector products
    (1/B) [p (p-1) s^(p-2) (2 H r')(2 H r')^T + 2 p s^(p-1) H] z_b per sample (r' = r + e,
    s = r'^T H r'). Parameter-space HVPs are not implemented (NotImplementedError).
    """

    name = "power_loss_mlp"

    def __init__(self, setup="switching", d_in=20, hidden=512, d_out=7, batch_size=100,
                 full_batch=True, target_scale=None, seed=0, dtype=np.float64):
        choice("setup", setup, _ICML_SETUPS)
        d_out_i = _int_arg("d_out", d_out, 1)
        self.setup = setup
        self.full_batch = _flag("full_batch", full_batch)
        self.target_scale = (20.0 / d_out_i if target_scale is None
                             else _positive("target_scale", target_scale))
        if setup == "selection":
            hd = np.ones((3, d_out_i))
            hd[1, 1:] = 0.01
            hd[2, 1:] = 1e-4
            powers, offsets = (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)
        else:
            hd = np.ones((3, d_out_i))
            powers = (1.0, 1.5, 2.0)
            offsets = (0.0, 1e-3, -1e-3) if setup == "approximate_optimum" else (0.0, 0.0, 0.0)
        self.powers = np.array(powers)
        self.offsets = np.array(offsets)
        super().__init__(n_obj=3, alpha=0.0, d_in=d_in, hidden=hidden, d_out=d_out_i,
                         batch_size=batch_size, sigma=0.0, seed=seed, dtype=dtype,
                         output_hessian_diags=hd)
        rng = np.random.default_rng(self.seed + 1)
        self._validation_inputs = self._out(rng.uniform(-1.0, 1.0, (8192, self.d_in)))
        self._hvp_cache = None

    def _teacher_outputs(self, inputs):
        out = self._forward(self._teacher64, inputs.astype(np.float64))[2] * self.target_scale
        return self._out(out)

    def _draw_batch(self, rng):
        inputs64 = rng.uniform(-1.0, 1.0, (self.batch_size, self.d_in))
        targets = self._out(self._forward(self._teacher64, inputs64)[2] * self.target_scale)
        inputs = self._out(inputs64)
        inputs.flags.writeable = False
        targets.flags.writeable = False
        return Batch(inputs, targets)

    def new_batch(self, rng):
        """None for full-batch training (the fixed ``self.batch``), else a fresh Batch."""
        rng = _rng_arg(rng)
        return None if self.full_batch else self._draw_batch(rng)

    def _terms(self, r):
        """s (C, B) = r'^T H r' and r' (C, B, d_out) for every loss."""
        hd = self.output_hessian_diags
        rp = r[None, :, :] + self._out(self.offsets)[:, None, None]
        s = np.einsum("cbk,ck->cb", rp * rp, hd)
        return s, rp

    def _losses(self, x, batch):
        r = self._residual(x, batch)[2]
        s, _ = self._terms(r)
        return np.mean(s ** self._out(self.powers)[:, None], axis=1)

    def _losses_and_jacobian(self, x, batch):
        mask, act, r = self._residual(x, batch)
        s, rp = self._terms(r)
        p = self._out(self.powers)[:, None]
        f = np.mean(s ** p, axis=1)
        coef = (p / r.shape[0]) * s ** (p - 1)                     # (C, B)
        g = coef[:, :, None] * 2 * rp * self.output_hessian_diags[:, None, :]
        return f, self._backward(x, g, act, mask, batch.inputs)

    def _jacobian(self, x, batch):
        return self._losses_and_jacobian(x, batch)[1]

    def _hvp(self, x, v, i, batch):
        raise NotImplementedError("PowerLossMLP has output-space HVPs only (output_hvps)")

    def _hvps(self, x, v, batch):
        raise NotImplementedError("PowerLossMLP has output-space HVPs only (output_hvps)")

    def output_hvps(self, x, v, batch=None):
        """Output-space Hessian-vector products of every loss: v (B * d_out,) -> (C, B * d_out)."""
        x = self._point(x)
        batch = self._check_batch(batch)
        b = len(batch)
        v = np.asarray(v, dtype=self.dtype)
        if v.shape != (b * self.d_out,):
            raise ValueError(f"v must have shape ({b * self.d_out},), got {v.shape}")
        z = v.reshape(1, b, self.d_out)
        # the residual terms depend on (x, batch) only: Hutchinson asks for many probes at the
        # same point, so the last point's terms are kept (the key compared by value)
        key = (x, batch.inputs, batch.targets)
        cached = self._hvp_cache
        if cached is not None and all(a.shape == b.shape and np.array_equal(a, b)
                                      for a, b in zip(cached[0], key)):
            s, rp = cached[1]
        else:
            s, rp = self._terms(self._residual(x, batch)[2])
            self._hvp_cache = (tuple(np.array(a) for a in key), (s, rp))
        hd = self.output_hessian_diags[:, None, :]
        p = self._out(self.powers)[:, None]
        grad_dir = 2 * hd * rp                                     # 2 H r'   (C, B, d_out)
        with np.errstate(divide="ignore", invalid="ignore"):
            second = np.where(p != 1, p * (p - 1) * s ** (p - 2), 0.0)     # (C, B)
        first = 2 * p * s ** (p - 1)                                # (C, B)
        proj = np.einsum("cbk,xbk->cb", grad_dir, z)                # (2 H r') . z_b
        out = (second * proj)[:, :, None] * grad_dir + first[:, :, None] * hd * z
        return self._out(out / b).reshape(self.n_obj, -1)
