r"""A small multi-task study in torch: two tasks on the UCI wine data sharing one trunk.

The code behind ``notebooks/05_torch.ipynb``, kept in the package so that the notebook only
calls it and ``tests/test_torch_mtl.py`` checks it.

**Data** (:func:`wine_tasks`). The 178 wines of the UCI wine data that madam ships
(``madam/data/real_datasets.npz``, read by the loader of ``madam.problems``' ``wine_mtl``): 13
chemical measurements and the cultivar (3 classes). One measurement, ``target`` (default
``"flavanoids"``), is held out of the inputs and becomes the target of the second task, so the
inputs are the other 12. The split is stratified by cultivar and seeded (default 60 / 20 / 20 %
train / validation / test: 107 / 36 / 35 wines). Inputs and target are standardised with the
training split's mean and standard deviation.

**Tasks** (:func:`task_losses`). With :math:`z_n = \mathrm{trunk}(x_n)` the shared
representation of wine n, :math:`c_n` its cultivar and :math:`y_n` its held-out measurement,

.. math::
    f_A(\theta) = \frac{1}{N} \sum_n -\log \operatorname{softmax}(W_A z_n + b_A)_{c_n}
    \quad \text{(cross-entropy)}, \qquad
    f_B(\theta) = \frac{1}{N} \sum_n (w_B^\top z_n + b_B - y_n)^2 \quad \text{(squared error)}.

A constant predictor scores :math:`f_A = \log 3 \approx 1.099` (uniform class probabilities) and
:math:`f_B \approx 1` (the training mean of a standardised target): :data:`REFERENCE` =
(log 3, 1) is the reference point of the hypervolumes.

**Network** (:class:`SharedTrunk`): a tanh trunk ``12 -> hidden[0] -> hidden[1] -> ...`` and
two linear heads on its output (3 logits; 1 regression output); PyTorch's default
initialisation under ``torch.manual_seed(seed)``. The default ``hidden=(16, 2)`` ends in a
2-unit representation, so that the two tasks compete for the trunk: with a wide trunk (e.g.
``(32, 32)``) both training losses go to about 0 at every preference and there is no front.

**Training** (:func:`train`): full batch (every step sees the whole training split), float64
by default, a fixed number of steps, no early stopping, no weight decay. Adam's betas
(0.9, 0.999) and eps 1e-8 throughout. With a preference :math:`\lambda = (\lambda_A,
\lambda_B)` on the simplex and :math:`g_A, g_B` the gradients of :math:`f_A, f_B`:

* ``"adam"``: linear scalarisation, Adam on :math:`f_\lambda = \lambda_A f_A + \lambda_B f_B`
  (:class:`madam.torch.Adam`; ``torch.optim.Adam`` with ``adam="torch"``).
* ``"madam"``: :class:`madam.torch.MAdam`, from both loss rows. With a preference the solver is
  not called: :math:`d = \lambda_A g_A + \lambda_B g_B` is divided per element by
  :math:`\sqrt{\lambda^\top \hat F \lambda} + \epsilon` (:math:`\hat F` the bias-corrected EMA
  of :math:`g g^\top`) and the result fed to Adam (docs/madam.md). With ``solver=`` and no
  preference the solver picks :math:`\lambda` at every step.
* ``"torchjd"``: Jacobian descent with torchjd: ``mtl_backward`` gives the trunk the (2, ...)
  Jacobian rows :math:`(g_A, g_B)` and each head the gradient of its own loss;
  ``jac_to_grad`` with torchjd's ``UPGrad(pref_vector=lambda)`` turns the trunk's rows into
  one gradient (each row projected onto the dual cone of both, the projections weighted by
  :math:`\lambda`), or with ``solver=`` a madam solver through :mod:`madam.torch.bridges`;
  then Adam on every parameter.

Same arguments, same bits: everything is seeded (with the same torch build and thread count).
A step takes about 1 ms (Adam, MAdam) to 2 ms (torchjd) on one core; run
``torch.set_num_threads(1)``: a second thread only adds overhead at this size, and on a busy
machine it slows the steps down many times.
"""
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

__all__ = ["FEATURES", "REFERENCE", "METHODS", "WineTasks", "wine_tasks", "SharedTrunk",
           "task_losses", "simplex", "TrainResult", "train", "LRTuning", "tune_lr", "Front",
           "front", "front_hypervolumes"]

#: The 13 columns of the wine data, in the order of scikit-learn's ``load_wine()``.
FEATURES = ("alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
            "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
            "od280/od315_of_diluted_wines", "proline")

#: The hypervolume reference point (f_A, f_B): the losses of the constant predictors.
REFERENCE = (math.log(3.0), 1.0)

#: The training methods of :func:`train`.
METHODS = ("adam", "madam", "torchjd")

_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class WineTasks:
    """The two-task data (:func:`wine_tasks`): ``splits[name]`` for name in ``"train"``,
    ``"val"``, ``"test"`` is a tuple ``(inputs (N, 12), cultivar labels (N,) int64,
    target (N,))``; ``rows[name]`` are those wines' indices (sorted) in the 178 of the data;
    ``inputs`` names the 12 input columns."""
    target: str
    inputs: tuple
    splits: dict = field(repr=False)
    rows: dict = field(repr=False)

    def sizes(self):
        """The number of wines in each split, a dict."""
        return {name: int(self.splits[name][1].shape[0]) for name in _SPLITS}


@lru_cache(maxsize=8)
def _wine_tasks(target, seed, fractions, dtype):
    from ..problems.learning import _load_real

    # standardised over all 178 wines; standardised again below with the training split's
    # statistics (an affine map of an affine map: the same as from the raw values)
    data, onehot, _ = _load_real("wine")
    labels = onehot.argmax(axis=1)
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in _SPLITS}
    for c in range(onehot.shape[1]):            # stratified: each cultivar split alike
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(fractions[0] * rows.size))
        n_val = int(round(fractions[1] * rows.size))
        parts["train"].append(rows[:n_train])
        parts["val"].append(rows[n_train:n_train + n_val])
        parts["test"].append(rows[n_train + n_val:])
    index = {name: np.sort(np.concatenate(rows)) for name, rows in parts.items()}
    column = FEATURES.index(target)
    keep = [k for k in range(len(FEATURES)) if k != column]
    x, y = data[:, keep], data[:, column]
    rows = index["train"]
    mean, std = x[rows].mean(axis=0), x[rows].std(axis=0)
    y_mean, y_std = y[rows].mean(), y[rows].std()
    splits = {name: (torch.tensor((x[r] - mean) / std, dtype=dtype),
                     torch.tensor(labels[r], dtype=torch.int64),
                     torch.tensor((y[r] - y_mean) / y_std, dtype=dtype))
              for name, r in index.items()}
    return WineTasks(target, tuple(FEATURES[k] for k in keep), splits, index)


def wine_tasks(target="flavanoids", seed=0, fractions=(0.6, 0.2, 0.2), dtype=torch.float64):
    """The wine data as two tasks: the cultivar (3 classes) and the measurement ``target`` (one
    of :data:`FEATURES`, held out of the inputs). Split by ``seed``, stratified by cultivar,
    into train / validation / test with the given ``fractions`` of each cultivar (rounded; the
    test split takes the rest); inputs and target standardised with the training split's mean
    and standard deviation. A :class:`WineTasks`, cached: do not modify its tensors."""
    if target not in FEATURES:
        raise ValueError(f"target must be one of {FEATURES}, got {target!r}")
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be 3 positive numbers summing to 1, got {fractions}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return _wine_tasks(target, int(seed), fractions, dtype)


class SharedTrunk(torch.nn.Module):
    """A tanh trunk ``d_in -> hidden[0] -> ... -> hidden[-1]`` (tanh after every layer) and two
    linear heads on its output: ``n_classes`` cultivar logits and one regression output.
    ``forward(x)`` returns ``(logits (N, n_classes), output (N,))``; ``forward(None, z)``
    applies the heads to a trunk output ``z`` already computed."""

    def __init__(self, d_in=12, hidden=(16, 2), n_classes=3):
        super().__init__()
        layers, width = [], int(d_in)
        for h in hidden:
            layers += [torch.nn.Linear(width, int(h)), torch.nn.Tanh()]
            width = int(h)
        self.trunk = torch.nn.Sequential(*layers)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(width, n_classes),
                                          torch.nn.Linear(width, 1)])

    def forward(self, x, features=None):
        z = self.trunk(x) if features is None else features
        return self.heads[0](z), self.heads[1](z)[:, 0]


def task_losses(model, split, features=None):
    r"""The two losses :math:`(f_A, f_B)` of ``model`` on ``split`` = (inputs, labels, target):
    the mean cross-entropy of the cultivar and the mean squared error of the target, a list of
    two scalar tensors (with graphs when grad is enabled). ``features``: the trunk's output on
    the split's inputs, when already computed (torchjd's ``mtl_backward`` needs it)."""
    x, labels, y = split
    logits, out = model(x, features)
    return [torch.nn.functional.cross_entropy(logits, labels), ((out - y) ** 2).mean()]


def simplex(n, margin=0.05):
    """``n`` preferences (lambda_A, lambda_B) evenly spaced on the 2-simplex, lambda_A from
    ``margin`` up to ``1 - margin`` ((1/2, 1/2) when n = 1): an array (n, 2). The margin keeps
    both tasks in every run (at lambda_B = 0 Adam would never train the regression head)."""
    n, margin = int(n), float(margin)
    if n < 1 or not 0 <= margin < 0.5:
        raise ValueError(f"simplex needs n >= 1 and 0 <= margin < 0.5, got {n}, {margin}")
    a = np.array([0.5]) if n == 1 else np.linspace(margin, 1.0 - margin, n)
    return np.stack([a, 1.0 - a], axis=1)


@dataclass
class TrainResult:
    """What :func:`train` returns. Losses are float64 arrays (f_A, f_B)."""
    method: str
    lr: float
    seed: int
    preference: np.ndarray      # the fixed lambda (2,); None when a solver picked it
    train: np.ndarray           # final losses on the training split (2,)
    val: np.ndarray             # on the validation split (2,)
    test: np.ndarray            # on the test split (2,)
    steps: np.ndarray           # the recorded steps (R,): 0 (the start), ..., the last
    train_curve: np.ndarray     # training losses at those steps (R, 2)
    test_curve: np.ndarray      # test losses at those steps (R, 2)
    lambdas: np.ndarray = None  # method "madam": MAdam's lambda at every step (steps, 2)
    model: torch.nn.Module = field(default=None, repr=False)   # the trained network


def _evaluate(model, split):
    with torch.no_grad():
        return np.array([float(f) for f in task_losses(model, split)])


def _check_preference(preference):
    lam = np.asarray(preference, dtype=np.float64).reshape(-1)
    if lam.shape != (2,) or not np.all(np.isfinite(lam)) or lam.min() < 0 or \
            abs(lam.sum() - 1) > 1e-9:
        raise ValueError(f"a preference must be 2 non-negative numbers summing to 1, "
                         f"got {preference!r}")
    return lam


def train(method, lr, seed, steps=300, preference=None, *, solver=None, adam="madam",
          data=None, hidden=(16, 2), record_every=None):
    r"""Train one :class:`SharedTrunk` on the two wine tasks; return a :class:`TrainResult`.

    method: ``"adam"`` (Adam on :math:`\lambda_A f_A + \lambda_B f_B`), ``"madam"``
        (:class:`madam.torch.MAdam`) or ``"torchjd"`` (torchjd's ``mtl_backward`` and
        ``UPGrad``, then Adam); the module doc has the details.
    lr: the learning rate. seed: ``torch.manual_seed(seed)`` right before the network is built
        (its initialisation; training is full batch, so nothing else is random).
    steps: the number of optimiser steps.
    preference: :math:`\lambda` on the simplex, (2,). Default (1/2, 1/2), or, with a
        ``solver``, none: a solver and a preference are exclusive.
    solver: ``"madam"``: MAdam's solver, which picks :math:`\lambda` at every step;
        ``"torchjd"``: a madam solver (an instance or a registry name) that aggregates the
        trunk's Jacobian through :func:`madam.torch.bridges.as_torchjd_aggregator`, in place of
        torchjd's ``UPGrad(pref_vector=preference)``; ``"adam"``: not allowed.
    adam: ``"madam"`` (:class:`madam.torch.Adam`) or ``"torch"`` (``torch.optim.Adam``,
        per-parameter implementation): the Adam of methods ``"adam"`` and ``"torchjd"``.
    data: a :class:`WineTasks` (default ``wine_tasks()``); its dtype is the network's.
    hidden: the trunk's widths.
    record_every: record the training and test losses every this many steps (default
        ``max(1, steps // 50)``; step 0 and the last step are always recorded).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if adam not in ("madam", "torch"):
        raise ValueError(f"adam must be 'madam' or 'torch', got {adam!r}")
    if solver is not None and method == "adam":
        raise ValueError("method 'adam' is a fixed scalarisation: it takes no solver")
    if solver is not None and preference is not None:
        raise ValueError("give a solver or a preference, not both (a solver with a preference "
                         "of its own takes it at construction, e.g. UPGrad(preference=...))")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    lam = None
    if solver is None:
        lam = _check_preference((0.5, 0.5) if preference is None else preference)
    data = wine_tasks() if data is None else data
    tr, te = data.splits["train"], data.splits["test"]
    dtype = tr[0].dtype
    torch.manual_seed(int(seed))
    model = SharedTrunk(tr[0].shape[1], tuple(hidden)).to(dtype)
    params = list(model.parameters())

    def make_adam():
        if adam == "torch":
            return torch.optim.Adam(params, lr=lr, foreach=False)
        from .optim import Adam
        return Adam(params, lr=lr)

    lambdas = None
    if method == "adam":
        weights = torch.tensor(lam, dtype=dtype)
        opt = make_adam()
    elif method == "madam":
        from .madam import MAdam
        opt = MAdam(params, solver=solver, n_obj=2, lr=lr)
        lambdas = np.empty((steps, 2))
    else:
        from torchjd.aggregation import UPGrad
        from torchjd.autojac import jac_to_grad, mtl_backward
        if solver is None:
            aggregator = UPGrad(pref_vector=torch.tensor(lam, dtype=dtype))
        else:
            from .bridges import as_torchjd_aggregator
            aggregator = as_torchjd_aggregator(solver)
        trunk = list(model.trunk.parameters())
        opt = make_adam()

    every = max(1, steps // 50) if record_every is None else max(1, int(record_every))
    recorded = [0]
    curves = [(_evaluate(model, tr), _evaluate(model, te))]
    for t in range(1, steps + 1):
        if method == "adam":
            opt.zero_grad()
            f_a, f_b = task_losses(model, tr)
            (weights[0] * f_a + weights[1] * f_b).backward()
            opt.step()
        elif method == "madam":
            opt.step(task_losses(model, tr), preference=lam)
            lambdas[t - 1] = opt.last_preference.numpy()
        else:
            opt.zero_grad()
            z = model.trunk(tr[0])
            losses = task_losses(model, tr, features=z)
            if solver is not None:
                aggregator.set_losses(losses)       # for the solvers that read loss values
            mtl_backward(losses, features=z)        # trunk: .jac (2, ...); heads: .grad
            jac_to_grad(trunk, aggregator)          # trunk: .grad = the aggregated rows
            opt.step()
        if t % every == 0 or t == steps:
            recorded.append(t)
            curves.append((_evaluate(model, tr), _evaluate(model, te)))
    return TrainResult(method=method, lr=float(lr), seed=int(seed), preference=lam,
                       train=curves[-1][0], val=_evaluate(model, data.splits["val"]),
                       test=curves[-1][1], steps=np.array(recorded),
                       train_curve=np.array([c[0] for c in curves]),
                       test_curve=np.array([c[1] for c in curves]), lambdas=lambdas,
                       model=model)


@dataclass
class LRTuning:
    """What :func:`tune_lr` returns: the chosen ``lr``, the grid ``lrs``, the criterion's
    ``scores`` (one per lr, lower is better), the validation losses behind them
    (``val``, shape (lrs, seeds, preferences, 2)), the ``seeds`` and ``preferences`` used."""
    method: str
    lr: float
    lrs: tuple
    scores: np.ndarray
    val: np.ndarray
    seeds: tuple
    preferences: np.ndarray
    criterion: str = ("mean over the tuning seeds and preferences of the final validation loss "
                      "lambda_A f_A + lambda_B f_B")


def _scalarised(losses, preferences):
    """lambda^T f for losses (..., P, 2) and preferences (P, 2): shape (..., P)."""
    return np.sum(np.asarray(losses) * np.asarray(preferences), axis=-1)


def tune_lr(method, lrs, seeds, preferences, steps=300, **train_kwargs):
    r"""Pick ``method``'s learning rate from the grid ``lrs``.

    Every lr is trained from every seed in ``seeds`` at every preference in ``preferences``
    (P, 2) for ``steps`` steps (:func:`train`, with ``train_kwargs``). The criterion, lower is
    better, is the mean over seeds and preferences of the final *validation* loss

    .. math:: s(\eta) = \frac{1}{S P} \sum_{s, p} \lambda_p^\top f_{\mathrm{val}}(\theta_{s, p}(\eta)),

    and the chosen lr is the first argmin (a non-finite score counts as +inf). The test split
    is never looked at. Returns an :class:`LRTuning`.
    """
    lrs = tuple(float(lr) for lr in lrs)
    seeds = tuple(int(s) for s in seeds)
    prefs = np.array([_check_preference(p) for p in preferences])
    if not lrs or not seeds or not len(prefs):
        raise ValueError("tune_lr needs at least one lr, one seed and one preference")
    val = np.array([[[train(method, lr, s, steps, preference=p, **train_kwargs).val
                      for p in prefs] for s in seeds] for lr in lrs])
    scores = _scalarised(val, prefs).mean(axis=(1, 2))
    ranked = np.where(np.isfinite(scores), scores, np.inf)
    return LRTuning(method=method, lr=lrs[int(np.argmin(ranked))], lrs=lrs, scores=scores,
                    val=val, seeds=seeds, preferences=prefs)


@dataclass
class Front:
    """What :func:`front` returns: final losses per seed and preference, arrays of shape
    (seeds, preferences, 2) for the ``train``, ``val`` and ``test`` splits, and the
    :class:`TrainResult` of every run in ``runs[seed_index][preference_index]``."""
    method: str
    lr: float
    seeds: tuple
    preferences: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    runs: list = field(repr=False)

    def mean(self, split="test"):
        """The front averaged over seeds (preferences, 2)."""
        return getattr(self, split).mean(axis=0)


def front(method, lr, seeds, preferences, steps=300, **train_kwargs):
    """Sweep the preferences (P, 2): train ``method`` at ``lr`` from every seed in ``seeds`` at
    every preference for ``steps`` steps (:func:`train`, with ``train_kwargs``). Returns a
    :class:`Front` with the final losses of every run."""
    seeds = tuple(int(s) for s in seeds)
    prefs = np.array([_check_preference(p) for p in preferences])
    runs = [[train(method, lr, s, steps, preference=p, **train_kwargs) for p in prefs]
            for s in seeds]

    def stack(split):
        return np.array([[getattr(r, split) for r in row] for row in runs])

    return Front(method=method, lr=float(lr), seeds=seeds, preferences=prefs,
                 train=stack("train"), val=stack("val"), test=stack("test"), runs=runs)


def front_hypervolumes(losses, ref=REFERENCE):
    """Hypervolumes (minimisation, :func:`madam.pareto.hypervolume`) of fronts with respect to
    ``ref`` (default :data:`REFERENCE`, the constant predictors' losses): ``losses`` of shape
    (seeds, P, 2) gives one per seed (an array (seeds,)); (P, 2) gives one number. Points that
    do not dominate ``ref`` add nothing."""
    from ..pareto import hypervolume

    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim == 2:
        return hypervolume(losses, np.asarray(ref, dtype=np.float64))
    return np.array([hypervolume(f, np.asarray(ref, dtype=np.float64)) for f in losses])
