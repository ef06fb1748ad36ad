r"""MADA, the meta-adaptive optimiser (Ozkara et al., ICML 2024), and two baselines on its machinery.

MADA interpolates Adam, AVGrad, Yogi, Adan and Lion through six coefficients
:math:`h = (\beta_1, \beta_2, \beta_3, \rho, c, \gamma)` and learns them during training by
hypergradient descent, Baydin et al.'s "one step back" rule: at step :math:`t+1` the gradient
:math:`g_{t+1} = \nabla L(x_{t+1})` gives, with no extra pass,

.. math::
    \frac{\partial L(x_{t+1})}{\partial h} = -\eta_t\, g_{t+1} \cdot \frac{\partial u_t}{\partial h}

(everything before step :math:`t` held fixed); each learned coefficient then takes a clipped SGD
step and is projected on its box before the update of step :math:`t+1` uses it.

Per element, step :math:`t`, :math:`b_k = 1 - \beta_k^t`, :math:`\mathrm{sign}(0) = 0`:

.. math::
    D &= g - g_{t-1}, \quad \hat g = g + \beta_3 D, \quad s = \mathrm{sign}(\hat g^2 - v) \\
    \tilde g^2 &= c\, \hat g^2 + (1 - c)(v + \hat g^2 s) \\
    m &\leftarrow \beta_1 m + (1 - \beta_1) g, \quad
    v \leftarrow \beta_2 v + (1 - \beta_2) \tilde g^2, \quad
    n \leftarrow \beta_3 n + (1 - \beta_3) D \\
    m_L &\leftarrow 0.98\, m_L + 0.02\, g, \quad u_L = 0.95\, m_L + 0.05\, g, \quad
    \bar v \leftarrow (v + (t - 1)\bar v) / t \\
    u &= \gamma \frac{m / b_1 + \beta_3 n}{\sqrt{(\rho v + (1 - \rho)\bar v) / b_2} + \epsilon}
        + (1 - \gamma)\, \mathrm{sign}(u_L), \qquad x \leftarrow x - \eta u

The vertices are the standalone optimisers, bit for bit: :math:`(\beta_3, \rho, c, \gamma) =
(0, 1, 1, 1)` is :class:`madam.Adam`, :math:`\rho = 0` :class:`madam.AVGrad`, :math:`c = 0`
:class:`madam.Yogi`, :math:`\gamma = 0` :class:`madam.Lion` with betas (0.931, 0.98) (up to the
rounding of the momentum's sign). The exact arithmetic, the derivatives and every choice the
paper left open are in ``cmadam/include/cmadam_mada.h`` and ``docs/mada.md``.

Classes: :class:`MADA`; :class:`HyperAdam` (Adam learning beta1 and beta2); :class:`AdamHD`
(Adam learning its learning rate, Baydin et al. 2018). All three run the same C kernels.
"""
import collections
import math

import numpy as np

from . import _core
from . import _state
from ._core import ffi
from ._validate import (Hyper, at_least, choice, closed_unit, decay_rate, flag, grad_list,
                        is_integer, is_real, nonnegative, one_of, scale_limit, within_scale_limit)
from ._validate import betas as _betas
from ._validate import real as _validate_real
from .optim import Optimizer, _check_counts, _plain, _scalar

__all__ = ["MADA", "HyperAdam", "AdamHD", "COEFFICIENTS", "VERTICES", "BOX",
           "DEFAULT_HYPER_LR", "DEFAULT_HISTORY_LIMIT"]

#: The six learnable coefficients, in the C core's order.
COEFFICIENTS = ("beta1", "beta2", "beta3", "rho", "c", "gamma")
#: Everything the hyper-optimiser can learn: the coefficients and the learning rate.
LEARNABLE = COEFFICIENTS + ("lr",)

#: Named starting points (``init=``): the base optimisers at the polytope's vertices.
VERTICES = {
    "adam": {"beta1": 0.9, "beta2": 0.999, "beta3": 0.0, "rho": 1.0, "c": 1.0, "gamma": 1.0},
    "avgrad": {"beta1": 0.9, "beta2": 0.999, "beta3": 0.0, "rho": 0.0, "c": 1.0, "gamma": 1.0},
    "yogi": {"beta1": 0.9, "beta2": 0.999, "beta3": 0.0, "rho": 1.0, "c": 0.0, "gamma": 1.0},
    "lion": {"beta1": 0.9, "beta2": 0.999, "beta3": 0.0, "rho": 1.0, "c": 1.0, "gamma": 0.0},
}

#: The box each learned quantity is projected on after every hyper step (released code's).
BOX = {"beta1": (0.01, 0.99), "beta2": (0.501, 0.99), "beta3": (0.0, 0.99), "rho": (0.0, 1.0),
       "c": (0.0, 1.0), "gamma": (0.0, 1.0), "lr": (0.0, math.inf)}

#: Hyper learning rates: the released GPT-2 settings, and Baydin et al.'s Adam-HD rate for lr.
DEFAULT_HYPER_LR = {"beta1": 5e-4, "beta2": 5e-4, "beta3": 0.1, "rho": 0.1, "c": 0.1,
                    "gamma": 0.1, "lr": 1e-7}

_FIRST_DIFF = {"zero": "CM_MADA_DIFF_ZERO", "grad": "CM_MADA_DIFF_GRAD"}
_N_INIT = {"zero": "CM_MADA_N_ZERO", "grad_sq": "CM_MADA_N_GRAD_SQ"}
_MODES = ("recompute", "store")
_STATE_FORMAT = 1
# One history row: step, the six coefficients and lr used by the step, the seven hypergradients
# computed at its start (NaN when no hyper step ran).
_HISTORY_COLUMNS = ("step",) + LEARNABLE + tuple(f"hypergrad.{k}" for k in LEARNABLE)
#: Rows of history kept by default (the most recent ones): about 1.2 MB as a float64 array.
DEFAULT_HISTORY_LIMIT = 10_000
# The hyper step runs in double on the Python side's coefficients; a rate beyond the float64
# scale bound could only push lr past the bound that lr itself must satisfy (and the C core
# refuses rates above 1e300 outright).
_HYPER_LR_MAX = scale_limit(np.float64)


# The non-array keys of a state_dict (besides hyper.<name>); load_state_dict refuses others.
_SCALAR_KEYS = frozenset(
    ("optimizer", "format", "step_count", "skipped_steps", "derivatives", "derivs_stored",
     "hyper_delay", "learn", "pending_lr", "history", "history_limit")
    + tuple(f"{group}.{k}" for group in ("pending_dot", "prev", "hyper_lr", "last_hypergrad")
            for k in LEARNABLE)
    + tuple(f"coef.{k}" for k in COEFFICIENTS))


# ----------------------------------------------------------------------------- validators
def _real(name, value):  # a real number, Inf and NaN allowed (checked where they matter)
    return _validate_real(name, value, finite=False)


def _check_coefficient(name, value, coefficient=None):
    """``coefficient``: which one (default: ``name``); ``name`` is what messages call it. The
    betas are decay rates in [0, 1), the others weights in [0, 1]."""
    if (coefficient or name) in ("beta1", "beta2", "beta3"):
        return decay_rate(name, value)
    return closed_unit(name, value)


def _clip(name, value):
    value = _real(name, value)
    if not value > 0.0:  # also rejects NaN
        raise ValueError(f"{name} must be > 0 (math.inf: no clipping), got {value}")
    return value


def _merged(name, value, base, known, what, check):
    """``base`` updated from the dict ``value``: its keys must be in ``known`` (else ValueError
    calling them unknown ``what``), each value passes ``check(label, value, key)``."""
    unknown = sorted(set(value) - set(known), key=str)
    if unknown:
        raise ValueError(f"{name} has unknown {what} {unknown}; known: {known}")
    out = dict(base)
    for key, v in value.items():
        out[key] = check(f"{name}[{key!r}]", v, key)
    return out


def _coefficient_dict(name, value, base):
    """A dict of coefficients merged onto ``base`` (unknown names rejected)."""
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of coefficients, got {type(value).__name__}")
    return _merged(name, value, base, COEFFICIENTS, "coefficients", _check_coefficient)


def _init_coefficients(init):
    if isinstance(init, str):
        if init not in VERTICES:
            raise ValueError(f"init must be one of {tuple(VERTICES)} or a dict, got {init!r}")
        return dict(VERTICES[init])
    return _coefficient_dict("init", init, VERTICES["adam"])


def _hyper_rate(name, value):
    """One hyper learning rate: finite, >= 0 and <= _HYPER_LR_MAX (named in the error)."""
    rate = nonnegative(name, value)
    if rate > _HYPER_LR_MAX:
        raise ValueError(f"{name} must be <= {_HYPER_LR_MAX:.4g} (finfo(float64).max ** 0.25, "
                         f"the bound on scale hyperparameters), got {rate}")
    return rate


def _hyper_lr_dict(value, base):
    if is_real(value):
        rate = _hyper_rate("hyper_lr", value)
        return {k: rate for k in LEARNABLE}
    if not isinstance(value, dict):
        raise TypeError(f"hyper_lr must be a float or a dict, got {type(value).__name__}")
    return _merged("hyper_lr", value, base, LEARNABLE, "names",
                   lambda label, v, key: _hyper_rate(label, v))


def _history_limit(value):
    """None (unbounded, by explicit choice) or an int >= 0 (rows kept)."""
    if value is None:
        return None
    if not is_integer(value):
        raise TypeError(f"history_limit must be an int >= 0 or None, got {value!r}")
    if value < 0:
        raise ValueError(f"history_limit must be >= 0 (None: unbounded), got {value}")
    return int(value)


def _learn_tuple(value):
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise TypeError(f"learn must be a tuple of names from {LEARNABLE}, got {value!r}")
    for item in value:
        if item not in LEARNABLE:
            raise ValueError(f"learn has unknown name {item!r}; known: {LEARNABLE}")
    if len(set(value)) != len(value):
        raise ValueError(f"learn has repeated names: {tuple(value)}")
    return tuple(k for k in LEARNABLE if k in value)  # canonical order


# ===================================================================================== MADA
class MADA(Optimizer):
    r"""MADA: a parameterised optimiser whose coefficients are learned by hypergradient descent.

    Parameters
    ----------
    params : ndarray or list of ndarrays (float32/float64, C-contiguous), updated in place.
    lr : learning rate :math:`\eta` (learnable too: put ``"lr"`` in ``learn``).
    init : ``"adam"`` (default), ``"avgrad"``, ``"yogi"``, ``"lion"`` or a dict of coefficients
        (missing ones are taken from the Adam vertex (0.9, 0.999, 0, 1, 1, 1)).
    hyper_lr : float or dict: the hyper-optimiser's rate per learnable name; missing names keep
        :data:`DEFAULT_HYPER_LR` (released: 5e-4 for the betas 1, 2; 0.1 for beta3, rho, c,
        gamma). A rate of 0 freezes that name (no step, no projection).
    learn : names that are learned (default: the six coefficients).
    hyper_start : hyper steps run at the start of each step t with t > hyper_start (and t >= 2).
    hyper_clip : each hypergradient is clipped to [-hyper_clip, hyper_clip] (math.inf: none).
    eps : :math:`\epsilon`, outside the square root (1e-6, released).
    v_init : start of v and vbar (1e-15 released; 0 makes the vertices equal the standalone
        optimisers bit for bit).
    first_diff : ``"zero"``: :math:`D_1 = 0` (Adan's convention, default); ``"grad"``:
        :math:`D_1 = g_1` (the released code's :math:`g_0 = 0`).
    n_init : ``"zero"``: :math:`n_0 = 0` (default); ``"grad_sq"``: :math:`n_0 = g_1^2` (a quirk
        of the released code).
    detach_vbar : treat :math:`\bar v_t` as a constant in the hypergradient (the formulas of the
        reference notes); default False: the exact derivative, :math:`\partial\bar v_t/\partial
        v_t = 1/t` included.
    lion_betas : (0.95, 0.98): :math:`u_L = 0.95 m_L + 0.05 g`, :math:`m_L = 0.98 m_L + 0.02 g`.
    hyper_delay : False (default): the hypergradient of step t updates the coefficients before
        step t's update (Baydin's rule; two passes over memory). True: it is computed inside
        step t's update pass (one fused pass) and applied at the start of step t + 1, i.e. the
        coefficients lag one step behind. Needs derivatives="recompute".
    derivatives : ``"recompute"`` (default: the hypergradient pass recomputes
        :math:`\partial u_t/\partial h` from the state, which keeps :math:`v_{t-1}` and
        :math:`g_{t-1}`) or ``"store"`` (the update pass stores them, 6 or 7 more arrays per
        parameter). Both give bit-identical results; "recompute" moves less memory.
    nonfinite : ``"raise"``, ``"skip"`` or ``"ignore"``, as every madam optimiser.
    history_limit : rows of :meth:`history` kept, the most recent ones (default
        :data:`DEFAULT_HISTORY_LIMIT` = 10 000, about 1.2 MB); ``None`` keeps every step
        (memory and checkpoints then grow by about 120 bytes a step), 0 keeps none. Saved in
        the state_dict; loading a state_dict with more rows than the limit keeps its most
        recent ``history_limit`` rows.

    Scale hyperparameters (lr, eps, v_init) are bounded by :func:`madam.optim.scale_limit` of
    the params' dtype, hyper rates by ``scale_limit(float64)``. A step is all or nothing: the
    hyper step's new coefficients and lr are computed and checked before any array is written,
    and if the new lr would leave its bound (a hyper rate far too large), the step raises
    ValueError naming ``hyper_lr`` and changes nothing.

    Attributes: :attr:`coefficients` (dict, settable), :attr:`hyper_lr` (dict, settable),
    :attr:`learn`, :attr:`last_hypergrad`, :meth:`history`, and the hyperparameters above.
    """

    lr = Hyper(nonnegative, scale=True)
    eps = Hyper(nonnegative, scale=True)
    hyper_start = Hyper(at_least(0))
    hyper_clip = Hyper(_clip)
    v_init = Hyper(nonnegative, scale=True)
    first_diff = Hyper(one_of(*_FIRST_DIFF))
    n_init = Hyper(one_of(*_N_INIT))
    detach_vbar = Hyper(flag)
    lion_betas = Hyper(_betas(2))
    # Logical state names (as in state_dict) that stay >= 0: v's blend c g^2 + (1 - c)(v +
    # g^2 sign(g^2 - v)) is >= 0 whenever v is, and v_bar averages such v's.
    _nonnegative_buffers = ("exp_avg_sq", "exp_avg_sq_prev", "avg_exp_avg_sq")

    family = "meta"

    def __init__(self, params, lr=1e-3, init="adam", hyper_lr=None, learn=COEFFICIENTS,
                 hyper_start=50, hyper_clip=10.0, eps=1e-6, v_init=1e-15, first_diff="zero",
                 n_init="zero", detach_vbar=False, lion_betas=(0.95, 0.98),
                 derivatives="recompute", hyper_delay=False, nonfinite="raise",
                 history_limit=DEFAULT_HISTORY_LIMIT):
        choice("derivatives", derivatives, _MODES)
        self._delay = flag("hyper_delay", hyper_delay)
        if self._delay and derivatives != "recompute":
            raise ValueError("hyper_delay=True needs derivatives='recompute' (the fused pass "
                             "recomputes the derivatives)")
        self._mode = derivatives
        self._pending = None  # hyper_delay: (dot, lr) computed by the last step, not yet applied
        self._coef = _init_coefficients(init)
        self._learn = _learn_tuple(learn)
        self._hyper_lr = _hyper_lr_dict(DEFAULT_HYPER_LR if hyper_lr is None else hyper_lr,
                                        DEFAULT_HYPER_LR)
        if derivatives == "recompute":
            self._buffers = ("exp_avg", "exp_avg_sq.0", "exp_avg_sq.1", "avg_exp_avg_sq",
                             "exp_avg_diff", "lion_exp_avg", "grad.0", "grad.1")
        else:
            self._buffers = ("exp_avg", "exp_avg_sq", "avg_exp_avg_sq", "exp_avg_diff",
                             "lion_exp_avg", "prev_grad")
        self.v_init = v_init  # needed by _initial_value before the base class sets it again
        super().__init__(params, nonfinite, lr=lr, eps=eps, hyper_start=hyper_start,
                         hyper_clip=hyper_clip, v_init=v_init, first_diff=first_diff,
                         n_init=n_init, detach_vbar=detach_vbar, lion_betas=lion_betas)
        self._derivs = ([np.zeros((7,) + p.shape, dtype=p.dtype) for p in self._params]
                        if derivatives == "store" else None)
        self._derivs_stored = 0  # "store": how many derivative arrays the last step stored
        self._ptr = []
        for i, (p, state) in enumerate(zip(self._params, self._state)):
            ptrs = {name: _core.pointer(a, writable=True) for name, a in state.items()}
            ptrs["param"] = _core.pointer(p, writable=True)
            if self._derivs is not None:
                ptrs["derivs"] = _core.pointer(self._derivs[i], writable=True)
            self._ptr.append(ptrs)
        self._prev = dict(self._coef, lr=self.lr)  # what the last step used
        self._last_hypergrad = dict.fromkeys(LEARNABLE, math.nan)
        # A deque drops the oldest row itself once maxlen rows are held (maxlen None: never).
        self._history = collections.deque(maxlen=_history_limit(history_limit))

    def _initial_value(self, buffer_name):
        return self.v_init if buffer_name.startswith(("exp_avg_sq", "avg_exp_avg_sq")) else 0.0

    def _check_combination(self):
        if "beta1" in self._learn and not self._coef["beta1"] > 0.0:
            raise ValueError("beta1 must be > 0 when it is learned: the hypergradient recovers "
                             "m_{t-1} - g_t as (m_t - g_t) / beta1")

    # ------------------------------------------------------------------ public attributes
    @property
    def coefficients(self):
        """The coefficients the next step will use (a dict copy); assign a dict to change some."""
        return dict(self._coef)

    @coefficients.setter
    def coefficients(self, value):
        new = _coefficient_dict("coefficients", value, self._coef)
        old, self._coef = self._coef, new
        try:
            self._check_combination()
        except ValueError:
            self._coef = old
            raise

    @property
    def hyper_lr(self):
        """The hyper-optimiser's rates (a dict copy); assign a float or a dict to change them."""
        return dict(self._hyper_lr)

    @hyper_lr.setter
    def hyper_lr(self, value):
        self._hyper_lr = _hyper_lr_dict(value, self._hyper_lr)

    @property
    def learn(self):
        """The learned names (a tuple, fixed at construction)."""
        return self._learn

    @property
    def hyper_delay(self):
        """Whether hyper steps are applied one step late (fixed at construction)."""
        return self._delay

    @property
    def derivatives(self):
        """``"recompute"`` or ``"store"`` (fixed at construction)."""
        return self._mode

    @property
    def history_limit(self):
        """Rows of :meth:`history` kept (None: unbounded); fixed at construction, restored by
        load_state_dict."""
        return self._history.maxlen

    def _history_array(self):
        return np.array(list(self._history), dtype=np.float64).reshape(-1, len(_HISTORY_COLUMNS))

    @property
    def last_hypergrad(self):
        """dL(x_t)/dh of the last hyper step, per learnable name (NaN before the first)."""
        return dict(self._last_hypergrad)

    def history(self):
        """The trajectory of the most recent :attr:`history_limit` steps (every step when it is
        None): a dict of arrays ``step``, the six coefficients and ``lr`` as used by each step,
        and ``hypergrad.<name>``, the hypergradients computed at the start of each step (NaN
        where no hyper step ran)."""
        rows = self._history_array()
        out = {name: rows[:, j].copy() for j, name in enumerate(_HISTORY_COLUMNS)}
        out["step"] = out["step"].astype(np.int64)
        return out

    # ------------------------------------------------------------------ the step
    def _config(self, coef, lr):
        cfg = ffi.new("cm_mada_config *")
        lib = _core.lib
        lib.cm_mada_config_default(cfg)
        cfg.lr = lr
        for name in COEFFICIENTS:
            setattr(cfg, name, coef[name])
        cfg.eps = self.eps
        cfg.lion_beta1, cfg.lion_beta2 = self.lion_betas
        cfg.first_diff = getattr(lib, _FIRST_DIFF[self.first_diff])
        cfg.n_init = getattr(lib, _N_INIT[self.n_init])
        cfg.detach_vbar = int(self.detach_vbar)
        return cfg

    def _hyper_config(self):
        hc = ffi.new("cm_mada_hyper_config *")
        for j, name in enumerate(LEARNABLE):
            hc.hyper_lr[j] = self._hyper_lr[name] if name in self._learn else 0.0
            hc.lower[j], hc.upper[j] = BOX[name]
        hc.clip = self.hyper_clip
        return hc

    def _learns_at(self, t):
        """Whether step t starts with a hyper step."""
        return bool(self._learn) and t >= 2 and t > self.hyper_start

    def _slots(self, t):
        """R mode: (v_in, v_out, g_in, g_out) buffer names for the update of step t."""
        a, b = str((t - 1) % 2), str(t % 2)
        return f"exp_avg_sq.{a}", f"exp_avg_sq.{b}", f"grad.{a}", f"grad.{b}"

    def _hypergradient(self, grads, t, exec_cfg):
        """dot[j] = sum over every array of g_t . du_{t-1}/dh_j (in array order). Reads the
        state only: the pass could also copy g_t into the slot of g_{t-1} to spare the update
        pass that write, but the state must stay untouched until the step is known to succeed
        (a hyper step that fails its checks leaves everything as it was)."""
        dot = [0.0] * 7
        out = ffi.new("double[7]")
        if self._mode == "recompute":
            cfg = self._config(self._prev, self._prev["lr"])
            v_prev, v_cur, g_prev, g_cur = self._slots(t - 1)  # state after step t - 1
            for ptrs, p, g in zip(self._ptr, self._params, grads):
                status = _core.kernel("cm_mada_hypergrad", p.dtype)(
                    cfg, exec_cfg, t - 1, p.size, _core.pointer(g), ptrs["exp_avg"],
                    ptrs[v_cur], ptrs[v_prev], ptrs["avg_exp_avg_sq"], ptrs["exp_avg_diff"],
                    ptrs["lion_exp_avg"], ptrs[g_cur], ptrs[g_prev], ffi.NULL, out)
                _core.check_status(status, "MADA.step (hypergradient)")
                dot = [d + out[j] for j, d in enumerate(dot)]
        else:
            for ptrs, p, g in zip(self._ptr, self._params, grads):
                status = _core.kernel("cm_mada_hypergrad_stored", p.dtype)(
                    exec_cfg, p.size, _core.pointer(g), ptrs["derivs"], self._derivs_stored, out)
                _core.check_status(status, "MADA.step (hypergradient)")
                dot = [d + out[j] for j, d in enumerate(dot)]
        return dot

    def step(self, grads):
        """One MADA step in place: the hyper step (when due), then the update.

        All or nothing: the new coefficients are computed and checked first, then the arrays are
        updated, and only then are the coefficients, counters and history committed.
        Returns True if the step was applied, False if it was skipped (nonfinite="skip")."""
        grads, names = grad_list(grads, self._params, self._single, self._param_spans)
        self._check_combination()
        if not self._inputs_finite(zip(names, grads)):
            return False
        exec_cfg = _core.exec_config()
        t = self.step_count + 1
        if self._delay:
            return self._step_delayed(grads, t, exec_cfg)
        coef, lr, hypergrad = self._coef, self.lr, None
        if self._learns_at(t) and (self._mode == "recompute" or self._derivs_stored):
            coef, lr, hypergrad = self._hyper_step(self._hypergradient(grads, t, exec_cfg),
                                                   self._prev["lr"])

        cfg = self._config(coef, lr)
        n_derivs = 0
        if self._mode == "store" and self._learns_at(t + 1):
            n_derivs = 7 if "lr" in self._learn else 6
        for ptrs, p, g in zip(self._ptr, self._params, grads):
            if self._mode == "recompute":
                v_in, v_out, g_in, g_out = self._slots(t)
                args = (ptrs[v_in], ptrs[v_out], ptrs["avg_exp_avg_sq"], ptrs["exp_avg_diff"],
                        ptrs["lion_exp_avg"], ptrs[g_in], ptrs[g_out], ffi.NULL, 0)
            else:
                args = (ptrs["exp_avg_sq"], ptrs["exp_avg_sq"], ptrs["avg_exp_avg_sq"],
                        ptrs["exp_avg_diff"], ptrs["lion_exp_avg"], ptrs["prev_grad"],
                        ptrs["prev_grad"], ptrs["derivs"] if n_derivs else ffi.NULL, n_derivs)
            status = _core.kernel("cm_mada_step", p.dtype)(
                cfg, exec_cfg, t, p.size, ptrs["param"], _core.pointer(g), ptrs["exp_avg"], *args)
            _core.check_status(status, f"{type(self).__name__}.step")
        self._derivs_stored = n_derivs
        self._finish(t, coef, lr, hypergrad)
        return True

    def _finish(self, t, coef, lr, hypergrad):
        """Commit a step whose arrays are written: ``coef`` and ``lr`` (checked before any
        kernel ran, so these assignments cannot fail), the hypergradient (None: no hyper step
        ran), the history row and the counter."""
        self._coef = coef
        self.lr = lr
        if hypergrad is None:
            hypergrad = [math.nan] * 7
        else:
            self._last_hypergrad = dict(zip(LEARNABLE, hypergrad))
        self._prev = dict(coef, lr=lr)
        self._history.append(tuple([float(t)] + [coef[k] for k in COEFFICIENTS] + [lr]
                                   + hypergrad))
        self.step_count = t

    def _hyper_step(self, dot, lr_prev):
        """The clipped, projected SGD step on the learned quantities. Computes and checks,
        commits nothing: returns (coefficients, lr, dL/dh (7)) for the caller to commit once
        the update has run.

        The box keeps every coefficient in range, but lr's box is [0, inf): a hyper rate far
        too large for the hypergradient can send lr to Inf or past its scale bound, which would
        make the update overflow (or the C core refuse it). That is a ValueError naming the
        rate, raised before anything is written."""
        coef = ffi.new("double[7]", [self._coef[k] for k in COEFFICIENTS] + [self.lr])
        hg = ffi.new("double[7]")
        status = _core.lib.cm_mada_hyper_step(self._hyper_config(), lr_prev, dot, coef, hg)
        _core.check_status(status, "MADA.step (hyper step)")
        new_coef = {k: float(coef[j]) for j, k in enumerate(COEFFICIENTS)}
        new_lr = float(coef[6])
        hypergrad = [float(hg[j]) for j in range(7)]
        rate = "hyper_lr" if isinstance(self, AdamHD) else "hyper_lr['lr']"
        try:
            if not math.isfinite(new_lr):
                raise ValueError(f"must be finite, got {new_lr}")
            within_scale_limit("the new lr", new_lr, [p.dtype for p in self._params])
        except ValueError as exc:
            raise ValueError(
                f"{rate} = {self._hyper_lr['lr']!r} is too large for this hypergradient "
                f"(dL/dlr = {hypergrad[6]!r}): the hyper step would set lr to {new_lr!r} "
                f"({exc}). Lower {rate} or bound the step with hyper_clip; nothing was "
                "updated") from None
        return new_coef, new_lr, hypergrad

    def _step_delayed(self, grads, t, exec_cfg):
        """hyper_delay: apply the hypergradient the last step computed, then one fused pass that
        computes this step's (for the previous update) and makes the update. The pending
        hypergradient is consumed only when the step commits."""
        coef, lr, hypergrad = self._coef, self.lr, None
        if self._pending is not None:
            coef, lr, hypergrad = self._hyper_step(*self._pending)
        cfg = self._config(coef, lr)
        v_in, v_out, g_in, g_out = self._slots(t)
        pending = None
        if self._learns_at(t):
            prev = self._config(self._prev, self._prev["lr"])
            dot = [0.0] * 7
            out = ffi.new("double[7]")
            for ptrs, p, g in zip(self._ptr, self._params, grads):
                status = _core.kernel("cm_mada_step_fused", p.dtype)(
                    cfg, prev, exec_cfg, t, p.size, ptrs["param"], _core.pointer(g),
                    ptrs["exp_avg"], ptrs[v_in], ptrs[v_out], ptrs["avg_exp_avg_sq"],
                    ptrs["exp_avg_diff"], ptrs["lion_exp_avg"], ptrs[g_in], ptrs[g_out], out)
                _core.check_status(status, f"{type(self).__name__}.step")
                dot = [d + out[j] for j, d in enumerate(dot)]
            pending = (dot, self._prev["lr"])
        else:
            for ptrs, p, g in zip(self._ptr, self._params, grads):
                status = _core.kernel("cm_mada_step", p.dtype)(
                    cfg, exec_cfg, t, p.size, ptrs["param"], _core.pointer(g), ptrs["exp_avg"],
                    ptrs[v_in], ptrs[v_out], ptrs["avg_exp_avg_sq"], ptrs["exp_avg_diff"],
                    ptrs["lion_exp_avg"], ptrs[g_in], ptrs[g_out], ffi.NULL, 0)
                _core.check_status(status, f"{type(self).__name__}.step")
        self._pending = pending
        self._finish(t, coef, lr, hypergrad)
        return True

    # ------------------------------------------------------------------ state
    def _logical_state(self, i, t):
        """Logical name -> physical array of parameter i, after step t."""
        s = self._state[i]
        if self._mode == "recompute":
            cur, prev = str(t % 2), str((t + 1) % 2)
            out = {"exp_avg": s["exp_avg"], "exp_avg_sq": s[f"exp_avg_sq.{cur}"],
                   "exp_avg_sq_prev": s[f"exp_avg_sq.{prev}"],
                   "avg_exp_avg_sq": s["avg_exp_avg_sq"], "exp_avg_diff": s["exp_avg_diff"],
                   "lion_exp_avg": s["lion_exp_avg"], "prev_grad": s[f"grad.{cur}"],
                   "prev_grad2": s[f"grad.{prev}"]}
        else:
            out = dict(s)
            out["derivs"] = self._derivs[i]
        return out

    def state_dict(self):
        """A flat dict of copies (``np.savez(path, **sd)`` stores it): counters, the
        hyperparameters (``hyper.<name>``), the coefficients (``coef.<name>``), those the last
        step used (``prev.<name>``), the hyper rates (``hyper_lr.<name>``), ``learn``, the
        history (at most ``history_limit`` rows) and ``history_limit`` (-1: unbounded), and the
        state arrays ``state.<i>.<name>``."""
        sd = {"optimizer": type(self).__name__, "format": _STATE_FORMAT,
              "step_count": self.step_count, "skipped_steps": self.skipped_steps,
              "derivatives": self._mode, "derivs_stored": self._derivs_stored,
              "hyper_delay": self._delay, "learn": tuple(self._learn)}
        pending_dot, pending_lr = self._pending or ([math.nan] * 7, math.nan)
        for j, name in enumerate(LEARNABLE):
            sd[f"pending_dot.{name}"] = pending_dot[j]
        sd["pending_lr"] = pending_lr
        for name in self._hyper_names:
            sd[f"hyper.{name}"] = getattr(self, name)
        for name in COEFFICIENTS:
            sd[f"coef.{name}"] = self._coef[name]
        for name in LEARNABLE:
            sd[f"prev.{name}"] = self._prev[name]
            sd[f"hyper_lr.{name}"] = self._hyper_lr[name]
            sd[f"last_hypergrad.{name}"] = self._last_hypergrad[name]
        sd["history"] = self._history_array()
        # -1 stands for None (unbounded): np.savez stores ints, not None
        sd["history_limit"] = -1 if self.history_limit is None else self.history_limit
        for i in range(len(self._params)):
            for name, array in self._logical_state(i, self.step_count).items():
                sd[f"state.{i}.{name}"] = array.copy()
        return sd

    def load_state_dict(self, state_dict):
        """Restore a state_dict (a dict, or the mapping ``np.load`` returns). Everything is
        checked before anything is copied in; resuming reproduces the run bit for bit."""
        sd = dict(state_dict)
        _state.check_header(sd, "optimizer", type(self).__name__, "optimiser", _STATE_FORMAT)
        mode = _scalar(sd, "derivatives", str)
        if mode != self._mode:
            raise ValueError(f"state_dict['derivatives'] is {mode!r}, this optimiser uses "
                             f"{self._mode!r} (fixed at construction)")
        if "hyper_delay" not in sd:
            raise ValueError("state_dict lacks 'hyper_delay'")
        if _plain(sd["hyper_delay"]) != self._delay:
            raise ValueError(f"state_dict['hyper_delay'] is {_plain(sd['hyper_delay'])!r}, this "
                             f"optimiser has {self._delay!r} (fixed at construction)")
        step_count = _scalar(sd, "step_count", int)
        skipped = _scalar(sd, "skipped_steps", int)
        stored = _scalar(sd, "derivs_stored", int)
        _check_counts(step_count, skipped)
        if stored not in (0, 6, 7) or (stored and self._mode != "store"):
            raise ValueError(f"state_dict['derivs_stored'] is invalid: {stored}")
        if "learn" not in sd:
            raise ValueError("state_dict lacks 'learn'")
        learn_raw = _plain(sd["learn"])
        learn = _learn_tuple(tuple(learn_raw) if isinstance(learn_raw, (tuple, list))
                             else learn_raw)

        def need(key):
            if key not in sd:
                raise ValueError(f"state_dict lacks {key!r}")
            return _plain(sd[key])

        coef = {k: _check_coefficient(f"state_dict['coef.{k}']", need(f"coef.{k}"), k)
                for k in COEFFICIENTS}
        prev = {k: _check_coefficient(f"state_dict['prev.{k}']", need(f"prev.{k}"), k)
                for k in COEFFICIENTS}
        dtypes = [p.dtype for p in self._params]
        # prev.lr and pending_lr configure the next hypergradient pass and hyper step: bounded
        # as lr itself, or that step would fail in C (a CoreError after loading succeeded)
        prev["lr"] = within_scale_limit("state_dict['prev.lr']",
                                        nonnegative("state_dict['prev.lr']", need("prev.lr")),
                                        dtypes)
        hyper_lr = _hyper_lr_dict({k: need(f"hyper_lr.{k}") for k in LEARNABLE}, self._hyper_lr)
        last_hg = {k: _real(f"state_dict['last_hypergrad.{k}']", need(f"last_hypergrad.{k}"))
                   for k in LEARNABLE}
        pending_dot = [_real(f"state_dict['pending_dot.{k}']", need(f"pending_dot.{k}"))
                       for k in LEARNABLE]
        pending_lr = _real("state_dict['pending_lr']", need("pending_lr"))
        if not math.isnan(pending_lr):  # NaN: nothing pending
            within_scale_limit("state_dict['pending_lr']",
                               nonnegative("state_dict['pending_lr']", pending_lr), dtypes)
        pending = None if math.isnan(pending_lr) else (pending_dot, pending_lr)
        if pending is not None and not self._delay:
            raise ValueError("state_dict has a pending hypergradient but hyper_delay is False")
        if "history" not in sd:
            raise ValueError("state_dict lacks 'history'")
        history = np.asarray(sd["history"], dtype=np.float64)
        if history.size == 0:
            history = history.reshape(0, len(_HISTORY_COLUMNS))
        if history.ndim != 2 or history.shape[1] != len(_HISTORY_COLUMNS):
            raise ValueError(f"state_dict['history'] must have shape (k, {len(_HISTORY_COLUMNS)}),"
                             f" got {history.shape}")
        # A state_dict written before history_limit existed has no such key: keep this
        # optimiser's limit. More rows than the limit: keep the most recent ones (what the
        # bounded history would hold had the run used that limit throughout).
        limit = self.history_limit
        if "history_limit" in sd:
            raw = _scalar(sd, "history_limit", int)
            if raw < -1:
                raise ValueError(f"state_dict['history_limit'] must be -1 (unbounded) or >= 0, "
                                 f"got {raw}")
            limit = None if raw == -1 else raw
        if limit is not None:
            history = history[history.shape[0] - min(limit, history.shape[0]):]

        arrays = {}
        for i, p in enumerate(self._params):
            for name, target in self._logical_state(i, step_count).items():
                key = f"state.{i}.{name}"
                if key not in sd:
                    raise ValueError(f"state_dict lacks {key!r}")
                a = np.asarray(sd[key])
                if a.dtype != p.dtype:
                    raise TypeError(f"state_dict[{key!r}] has dtype {a.dtype}, expected {p.dtype}")
                if a.shape != target.shape:
                    raise ValueError(f"state_dict[{key!r}] has shape {a.shape}, "
                                     f"expected {target.shape}")
                self._check_state_array(key, name, a)
                arrays[key] = a
        extra = sorted(k for k in sd if str(k).startswith("state.") and k not in arrays)
        if extra:
            raise ValueError(f"state_dict has state for parameters this optimiser lacks: {extra}")
        self._check_known_keys(sd, set(arrays) | _SCALAR_KEYS |
                               {f"hyper.{name}" for name in self._hyper_names})

        # Hyperparameters and combinations on a scratch copy, so a bad one changes nothing.
        scratch = object.__new__(type(self))
        scratch.__dict__.update(self.__dict__)
        for name in self._hyper_names:
            setattr(scratch, name, need(f"hyper.{name}"))
        scratch._coef, scratch._learn = coef, learn
        scratch._check_combination()

        for name in self._hyper_names:
            setattr(self, name, getattr(scratch, name))
        self._coef, self._learn, self._prev = coef, learn, prev
        self._hyper_lr, self._last_hypergrad, self._pending = hyper_lr, last_hg, pending
        self._history = collections.deque(map(tuple, history.tolist()), maxlen=limit)
        self.step_count, self.skipped_steps, self._derivs_stored = step_count, skipped, stored
        for i in range(len(self._params)):
            for name, target in self._logical_state(i, step_count).items():
                np.copyto(target, arrays[f"state.{i}.{name}"])

    def __repr__(self):
        coef = ", ".join(f"{k}={v:.4g}" for k, v in self._coef.items())
        return (f"{type(self).__name__}({len(self._params)} arrays, step {self.step_count}, "
                f"lr={self.lr!r}, {coef}, learn={self._learn})")


# ================================================================================ baselines
class HyperAdam(MADA):
    r"""Adam whose betas are learned by hypergradient descent (the MADA paper's HyperAdam).

    MADA held at the Adam vertex (:math:`\beta_3 = 0, \rho = c = \gamma = 1`), learning
    ``beta1`` and ``beta2`` with the same hypergradient, clipping and box (beta1 in
    [0.01, 0.99], beta2 in [0.501, 0.99]). With ``hyper_lr=0`` (and ``v_init=0``, the default
    here) it is :class:`madam.Adam` bit for bit. ``history_limit`` as :class:`MADA`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, hyper_lr=None,
                 hyper_start=50, hyper_clip=10.0, v_init=0.0, derivatives="recompute",
                 hyper_delay=False, nonfinite="raise", history_limit=DEFAULT_HISTORY_LIMIT):
        b = _betas(2)("betas", betas)
        rates = {k: DEFAULT_HYPER_LR[k] for k in ("beta1", "beta2")}
        if hyper_lr is not None:
            if isinstance(hyper_lr, dict) and set(hyper_lr) - set(rates):
                raise ValueError("hyper_lr of HyperAdam takes only 'beta1' and 'beta2', got "
                                 f"{sorted(hyper_lr, key=str)}")
            merged = _hyper_lr_dict(hyper_lr, DEFAULT_HYPER_LR)
            rates = {k: merged[k] for k in rates}
        super().__init__(params, lr=lr, init={"beta1": b[0], "beta2": b[1]}, hyper_lr=rates,
                         learn=("beta1", "beta2"), hyper_start=hyper_start,
                         hyper_clip=hyper_clip, eps=eps, v_init=v_init, derivatives=derivatives,
                         hyper_delay=hyper_delay, nonfinite=nonfinite,
                         history_limit=history_limit)


class AdamHD(MADA):
    r"""Adam-HD (Baydin et al., ICLR 2018): Adam learning its learning rate online.

    At the start of step t: :math:`\eta_t = \eta_{t-1} - \beta\, \partial L(x_t)/\partial\eta`
    with :math:`\partial L(x_t)/\partial\eta = -g_t \cdot u_{t-1}` (the previous Adam direction),
    clipped to ``hyper_clip`` (none by default) and kept >= 0. MADA at the Adam vertex
    learning only ``lr``; with ``hyper_lr=0`` it is :class:`madam.Adam` bit for bit.

    ``hyper_lr`` is at most ``scale_limit(float64)``; a step whose hyper step would send lr to
    Inf or past :func:`madam.optim.scale_limit` raises ValueError naming ``hyper_lr`` and
    changes nothing. ``history_limit`` as :class:`MADA`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, hyper_lr=1e-7,
                 hyper_start=0, hyper_clip=math.inf, v_init=0.0, derivatives="recompute",
                 hyper_delay=False, nonfinite="raise", history_limit=DEFAULT_HISTORY_LIMIT):
        b = _betas(2)("betas", betas)
        if isinstance(hyper_lr, dict):
            raise TypeError("hyper_lr of AdamHD is a float (the learning rate's hyper rate)")
        rate = _hyper_lr_dict(hyper_lr, {})["lr"]
        super().__init__(params, lr=lr, init={"beta1": b[0], "beta2": b[1]},
                         hyper_lr={"lr": rate}, learn=("lr",), hyper_start=hyper_start,
                         hyper_clip=hyper_clip, eps=eps, v_init=v_init, derivatives=derivatives,
                         hyper_delay=hyper_delay, nonfinite=nonfinite,
                         history_limit=history_limit)
