r"""First-order optimisers with fused C kernels: SGD, Adam, AdamW, AMSGrad, AVGrad, Yogi, Adan, Lion.

Each class updates NumPy arrays in place, one fused pass over memory per step, in float32 or
float64. The exact per-element arithmetic of each kernel is written in ``cmadam/include/cmadam.h``
and in each class docstring; ``docs/optimizers.md`` lists where conventions differ from peers.

Usage (the same for every class)::

    opt = madam.Adam(params, lr=1e-3)       # params: an array or a list of arrays
    opt.step(grads)                         # grads: the same structure
    opt.lr = 5e-4                           # hyperparameters are validated attributes
    sd = opt.state_dict()                   # flat dict: np.savez("ckpt.npz", **sd) works
    opt2.load_state_dict(sd)                # resuming reproduces the run bit for bit
"""
import functools
import threading

import numpy as np

from . import _core
from . import _state
from . import functional as F
from ._core import ffi
from ._validate import (Hyper, NonFiniteError, grad_list, memory_spans, nonfinite_policy,
                        nonnegative, param_list, scale_limit)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "AMSGrad", "AVGrad", "Yogi", "Adan", "Lion",
           "NonFiniteError", "scale_limit", "OPTIMIZERS", "first_order"]

#: Every public optimiser class by lower-case name (``"adam"``, ``"mada"``, ``"madam"``), filled
#: as each class is defined (:meth:`Optimizer.__init_subclass__`), in definition order. The
#: runner's names, the gallery and the table-driven tests read it: a new optimiser class is
#: registered by being defined.
OPTIMIZERS = {}


def first_order():
    """The registered optimisers that step on one direction with a fused C kernel (``family``
    "first-order": SGD, Adam, ..., Lion), by name."""
    return {name: cls for name, cls in OPTIMIZERS.items() if cls.family == "first-order"}

_STATE_FORMAT = 1
#: The largest step_count / skipped_steps load_state_dict accepts (2**53: every count up to it
#: is exact in a double, and no run gets near it); the same bound as madam.functional's step.
MAX_STEP_COUNT = F.MAX_STEP


def _guarded_step(step):
    """Wrap a step method: one caller at a time, and the params' memory checked before any C.

    The lock is reentrant, so a subclass's step may call ``super().step``; a second thread
    gets RuntimeError at once instead of blocking (a blocked step would silently reorder
    updates) or racing (which loses updates)."""
    if getattr(step, "_guarded", False):
        return step

    @functools.wraps(step)
    def guarded(self, *args, **kwargs):
        lock = self._step_lock
        if not lock.acquire(blocking=False):
            raise RuntimeError(
                f"{type(self).__name__}.step() called from two threads at once; an optimiser is "
                "not thread-safe: use one per thread or a lock")
        try:
            self._check_params_unmoved()
            return step(self, *args, **kwargs)
        finally:
            lock.release()

    guarded._guarded = True
    return guarded


def _data_address(array):
    return array.__array_interface__["data"][0]


class Optimizer:
    """Base class: parameter bookkeeping, gradient checks, the non-finite policy, state I/O.

    A first-order subclass sets ``_kernel``, a kernel description from
    :mod:`madam.functional` (C function, config struct, hyperparameter rules, step or not; the
    same one the stateless function of that kernel uses, so both fill the config struct in one
    place), and ``_buffers`` (names of its per-parameter state arrays). The kernel's
    hyperparameters become :class:`Hyper` attributes of the class when it is defined; a
    subclass declares any others (Yogi's initial_accumulator) itself.

    nonfinite: what a step does when a gradient holds NaN or +-Inf. ``"raise"`` (default)
    raises :class:`NonFiniteError` and changes nothing; ``"skip"`` leaves everything unchanged
    and counts the step in ``skipped_steps``; ``"ignore"`` skips the scan (fastest; a NaN then
    reaches the state and, except in Lion, the parameters: Lion's sign(NaN) is 0, so the
    element silently stops moving, as in torch).

    Threads: an optimiser is not thread-safe. ``step`` (every subclass's too: it is wrapped
    when the subclass is defined) holds a per-optimiser lock taken without waiting, so a call
    that overlaps another thread's step raises RuntimeError and changes nothing, instead of
    losing updates. Use one optimiser per thread, or serialise the calls with your own lock.

    Parameters must keep their memory: the data address, shape and strides of every param are
    recorded at construction, and a step raises ValueError (before any C code runs) if one
    was resized (``ndarray.resize``) or otherwise reallocated since.

    Hyperparameters are validated on every assignment, before they are stored. The scale ones
    (lr, eps, weight_decay, momentum, initial_accumulator) must be finite, >= 0 and at most
    :func:`madam.optim.scale_limit` of the params' dtype (``finfo.max ** 0.25``: about 4.29e9
    for float32, 1.16e77 for float64), so that nothing a kernel derives from them overflows;
    a larger value is a ValueError naming it (never a ``CoreError`` from the C core).

    State: ``load_state_dict`` checks everything before changing anything: unknown keys,
    dtypes and shapes, non-finite state arrays, negative values in the buffers a subclass lists
    in ``_nonnegative_buffers`` (second moments), hyperparameters, and counters outside
    [0, MAX_STEP_COUNT]. A subclass that writes keys of its own lists them in
    ``_extra_state_keys`` (exact keys, or prefixes ending in ".").
    """

    nonfinite = Hyper(nonfinite_policy)
    _kernel = None             # a madam.functional kernel description (first-order classes)
    _buffers = ()
    _nonnegative_buffers = ()  # buffers that are >= 0 in every reachable state (checked on load)
    _extra_state_keys = ()     # see the class docstring
    #: "first-order" (steps on one direction), "meta" (MADA: learns its own coefficients) or
    #: "multi-objective" (MAdam: steps on a Jacobian, see madam.multi)
    family = "first-order"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:  # every step goes through the lock and the memory check
            cls.step = _guarded_step(cls.__dict__["step"])
        kernel = cls.__dict__.get("_kernel")
        if kernel is not None:  # the kernel's rule table is the one source of these attributes
            for name, check, scale in kernel.hypers:
                if name not in cls.__dict__:
                    hyper = Hyper(check, scale=scale)
                    hyper.__set_name__(cls, name)
                    setattr(cls, name, hyper)
        if not cls.__name__.startswith("_") and cls.__module__.startswith("madam."):
            OPTIMIZERS[cls.__name__.lower()] = cls  # the registry (user subclasses stay out)

    def __init__(self, params, nonfinite="raise", **hyperparameters):
        self._step_lock = threading.RLock()
        self._params, self._single = param_list(params)
        self._param_spans = memory_spans(self._params)
        self._param_layout = [(_data_address(p), p.shape, p.strides) for p in self._params]
        self._hyper_names = tuple(hyperparameters) + ("nonfinite",)
        for name, value in hyperparameters.items():
            setattr(self, name, value)
        self.nonfinite = nonfinite
        self._check_combination()
        self.step_count = 0
        self.skipped_steps = 0
        self._state = [{name: np.full_like(p, self._initial_value(name)) for name in self._buffers}
                       for p in self._params]
        # The arrays never move, so their C pointers are made once.
        self._pointers = [(p.size, _core.pointer(p, writable=True),
                           [_core.pointer(s[name], writable=True) for name in self._buffers])
                          for p, s in zip(self._params, self._state)]

    # ------------------------------------------------------------------ subclass hooks
    def _initial_value(self, buffer_name):
        return 0.0

    def _check_combination(self):
        """Checks that involve several hyperparameters (run at construction and every step)."""

    def _config_values(self):
        """The kernel's config fields from the (already validated) hyperparameters; a subclass
        adds fields that are not hyperparameters (Adam's variant)."""
        return {name: getattr(self, name) for name in self._kernel.hyper_names}

    def _extra_args(self):
        """Arguments after the state buffers (e.g. NULL for an unused buffer)."""
        return ()

    def _check_params_unmoved(self):
        """ValueError if a param no longer has the memory the C pointers were made from."""
        for i, (p, (address, shape, strides)) in enumerate(zip(self._params,
                                                                 self._param_layout)):
            if _data_address(p) != address or p.shape != shape or p.strides != strides:
                name = "params" if self._single else f"params[{i}]"
                raise ValueError(
                    f"{name} was resized or reallocated since the optimiser was built "
                    f"(shape {shape} -> {p.shape}); nothing was updated. Build a new optimiser "
                    "over the new array")

    def _check_state_array(self, key, name, array):
        """ValueError naming ``key`` if a state array (buffer ``name``) is not a reachable
        state: NaN/Inf anywhere, or a negative entry in a non-negative buffer."""
        if not _core.all_finite(np.ascontiguousarray(array)):
            raise ValueError(f"state_dict[{key!r}] contains NaN or Inf")
        if name in self._nonnegative_buffers and np.any(array < 0):
            raise ValueError(f"state_dict[{key!r}] has negative entries; {name} is a second "
                             "moment and must be >= 0")

    def _check_known_keys(self, sd, known):
        """ValueError naming the first key of ``sd`` that is neither in ``known`` nor declared
        in ``_extra_state_keys``."""
        for key in sorted(sd, key=str):
            if key in known or any(key == e or (e.endswith(".") and str(key).startswith(e))
                                   for e in self._extra_state_keys):
                continue
            raise ValueError(f"state_dict has an unknown key {key!r} (not written by "
                             f"{type(self).__name__}.state_dict)")

    # ------------------------------------------------------------------ public API
    @property
    def params(self):
        """The parameter arrays (updated in place by step)."""
        return list(self._params)

    def _inputs_finite(self, named_arrays):
        """The nonfinite policy, applied before anything is written: True if the step may go
        on; False (the step is skipped and counted) under "skip" when an array holds NaN/Inf;
        NonFiniteError under "raise". "ignore" scans nothing."""
        if self.nonfinite == "ignore":
            return True
        for name, a in named_arrays:
            if not _core.all_finite(a):
                return self._found_nonfinite(name)
        return True

    def _found_nonfinite(self, name):
        """The policy for an input ``name`` found to hold NaN/Inf (by a scan of the caller's):
        False (skipped and counted) under "skip", else NonFiniteError."""
        if self.nonfinite == "skip":
            self.skipped_steps += 1
            return False
        raise NonFiniteError(
            f"{name} contains NaN or Inf; nothing was updated "
            "(nonfinite='raise'; use nonfinite='skip' to skip such steps)")

    @_guarded_step
    def step(self, grads):
        """Apply one update in place. ``grads`` has the structure, shapes and dtypes of params.

        Returns True if the step was applied, False if it was skipped (nonfinite="skip").
        """
        grads, names = grad_list(grads, self._params, self._single, self._param_spans)
        self._check_combination()
        if not self._inputs_finite(zip(names, grads)):
            return False
        # the same config filling and kernel call as madam.functional, minus its per-call
        # checks: the params, buffers and pointers were checked once at construction, the
        # grads by grad_list above and the hyperparameters on assignment
        kernel = self._kernel
        cfg = kernel.config(self._config_values())
        exec_cfg = _core.exec_config()
        t = self.step_count + 1
        extra = self._extra_args()
        what = f"{type(self).__name__}.step"
        for (n, p_ptr, buffer_ptrs), p, g in zip(self._pointers, self._params, grads):
            kernel.launch(cfg, exec_cfg, t, p.dtype, n, p_ptr, _core.pointer(g),
                          (*buffer_ptrs, *extra), what)
        self.step_count = t
        return True

    def state_dict(self):
        """A flat dict of copies: counters, hyperparameters (``hyper.<name>``) and state arrays
        (``state.<i>.<buffer>``). Picklable, and ``np.savez(path, **sd)`` stores it."""
        sd = {"optimizer": type(self).__name__, "format": _STATE_FORMAT,
              "step_count": self.step_count, "skipped_steps": self.skipped_steps}
        for name in self._hyper_names:
            sd[f"hyper.{name}"] = getattr(self, name)
        for i, state in enumerate(self._state):
            for name, array in state.items():
                sd[f"state.{i}.{name}"] = array.copy()
        return sd

    def load_state_dict(self, state_dict):
        """Restore a state_dict (a dict, or the mapping ``np.load`` returns for a .npz).

        Everything is checked before anything is copied in.
        """
        sd = dict(state_dict)
        _state.check_header(sd, "optimizer", type(self).__name__, "optimiser", _STATE_FORMAT)
        arrays = {}
        for i, (p, state) in enumerate(zip(self._params, self._state)):
            for name in state:
                key = f"state.{i}.{name}"
                if key not in sd:
                    raise ValueError(f"state_dict lacks {key!r}")
                a = np.asarray(sd[key])
                if a.dtype != p.dtype:
                    raise TypeError(f"state_dict[{key!r}] has dtype {a.dtype}, expected {p.dtype}")
                if a.shape != p.shape:
                    raise ValueError(f"state_dict[{key!r}] has shape {a.shape}, expected {p.shape}")
                self._check_state_array(key, name, a)
                arrays[key] = a
        extra = sorted(k for k in sd if str(k).startswith("state.") and k not in arrays)
        if extra:
            raise ValueError(f"state_dict has state for parameters this optimiser lacks: {extra}")
        self._check_known_keys(sd, set(arrays) | {f"hyper.{n}" for n in self._hyper_names} |
                               {"optimizer", "format", "step_count", "skipped_steps"})
        # Validate hyperparameters on a scratch copy, so a bad one changes nothing.
        scratch = object.__new__(type(self))
        scratch.__dict__.update(self.__dict__)
        for name in self._hyper_names:
            key = f"hyper.{name}"
            if key not in sd:
                raise ValueError(f"state_dict lacks {key!r}")
            setattr(scratch, name, _plain(sd[key]))
        scratch._check_combination()
        step_count = _scalar(sd, "step_count", int)
        skipped = _scalar(sd, "skipped_steps", int)
        _check_counts(step_count, skipped)
        for name in self._hyper_names:
            setattr(self, name, getattr(scratch, name))
        for i, state in enumerate(self._state):
            for name, array in state.items():
                np.copyto(array, arrays[f"state.{i}.{name}"])
        self.step_count, self.skipped_steps = step_count, skipped

    def __repr__(self):
        hyper = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._hyper_names)
        return f"{type(self).__name__}({len(self._params)} arrays, step {self.step_count}, {hyper})"


def _check_counts(step_count, skipped_steps):
    _state.check_counts(MAX_STEP_COUNT, step_count=step_count, skipped_steps=skipped_steps)


_plain, _scalar = _state.plain, _state.scalar


# ========================================================================================= SGD
class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum (torch.optim.SGD's convention).

    Per element, step :math:`t \ge 1`:

    .. math::
        g &\leftarrow g + \lambda p \quad (\text{weight\_decay } \lambda) \\
        b_t &= g \ (t = 1), \qquad b_t = \mu b_{t-1} + (1 - \tau) g \ (t > 1) \\
        g &\leftarrow g + \mu b_t \ (\text{nesterov}), \qquad g \leftarrow b_t \ (\text{else}) \\
        p &\leftarrow p - \eta g

    (the momentum lines only when momentum :math:`\mu \ne 0`; :math:`\tau` is dampening).
    Defaults: lr 1e-3, no momentum. Nesterov needs momentum > 0 and dampening 0.
    """

    # lr, momentum, dampening, weight_decay, nesterov: Hyper attributes from the kernel's rules
    _kernel, _buffers = F._SGD, ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def _check_combination(self):
        F._check_nesterov(self.momentum, self.dampening, self.nesterov)


# ================================================================================ Adam family
class _AdamFamily(Optimizer):
    _kernel = F._ADAM  # lr, betas, eps, weight_decay: Hyper attributes from its rules
    _buffers = ("exp_avg", "exp_avg_sq")
    _nonnegative_buffers = ("exp_avg_sq",)
    _variant = "adam"  # a key of madam.functional.ADAM_VARIANTS

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _config_values(self):
        values = super()._config_values()
        values["variant"], values["decoupled_weight_decay"], _ = F._adam_mode(self._variant)
        return values

    def _extra_args(self):
        return (ffi.NULL,) if len(self._buffers) == 2 else ()


class Adam(_AdamFamily):
    r"""Adam (Kingma & Ba 2015) with L2 weight decay, as torch.optim.Adam.

    Per element, step :math:`t`, :math:`b_k = 1 - \beta_k^t`:

    .. math::
        g &\leftarrow g + \lambda p \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        p &\leftarrow p - \frac{\eta}{b_1}\, \frac{m}{\sqrt{v}/\sqrt{b_2} + \epsilon}

    Defaults (paper): lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.
    """


class AdamW(_AdamFamily):
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.

    As :class:`Adam` but the decay acts on the parameter, not the gradient:
    :math:`p \leftarrow p (1 - \eta \lambda)` before the Adam update.
    Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2 (torch's).
    """

    _variant = "adamw"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 nonfinite="raise"):
        super().__init__(params, lr, betas, eps, weight_decay, nonfinite)


class AMSGrad(_AdamFamily):
    r"""AMSGrad (Reddi, Kale & Kumar 2018), torch's convention.

    As :class:`Adam` with :math:`\hat v \leftarrow \max(\hat v, v)` on the *uncorrected* second
    moment, and :math:`p \leftarrow p - \frac{\eta}{b_1} m / (\sqrt{\hat v}/\sqrt{b_2} + \epsilon)`.
    (optax takes the max of the bias-corrected v instead.) Defaults as Adam.
    """

    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _nonnegative_buffers = ("exp_avg_sq", "max_exp_avg_sq")
    _variant = "amsgrad"


class AVGrad(_AdamFamily):
    r"""AVGrad (Ozkara et al., MADA, ICML 2024): AMSGrad with the max replaced by a time average.

    As :class:`Adam` with :math:`\bar v_t = (v_t + (t - 1)\bar v_{t-1}) / t` and
    :math:`p \leftarrow p - \frac{\eta}{b_1} m / (\sqrt{\bar v_t}/\sqrt{b_2} + \epsilon)`.
    Defaults as Adam.
    """

    _buffers = ("exp_avg", "exp_avg_sq", "avg_exp_avg_sq")
    _nonnegative_buffers = ("exp_avg_sq", "avg_exp_avg_sq")
    _variant = "avgrad"


# ======================================================================================= Yogi
class Yogi(Optimizer):
    r"""Yogi (Zaheer et al., NeurIPS 2018): additive second-moment update.

    Per element, :math:`b_k = 1 - \beta_k^t`:

    .. math::
        g &\leftarrow g + \lambda p, \qquad m \leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow v - (1 - \beta_2)\,\mathrm{sign}(v - g^2)\, g^2 \\
        p &\leftarrow p - \frac{\eta}{b_1}\, \frac{m}{\sqrt{v}/\sqrt{b_2} + \epsilon}

    m and v start at ``initial_accumulator`` (used at construction only). Like every scale
    hyperparameter it is bounded by :func:`scale_limit` of the params' dtype (so float32 Yogi
    refuses 1e39, which float32 cannot hold): the first update is at most about
    ``lr / (1 - beta1) * sqrt(initial_accumulator)``, which then stays finite.
    Defaults (paper): lr 1e-2, betas (0.9, 0.999), eps 1e-3, initial_accumulator 1e-6.
    """

    # the buffers' starting value, not a kernel hyperparameter (the C config has no field)
    initial_accumulator = Hyper(nonnegative, scale=True)
    _kernel = F._YOGI  # lr, betas, eps, weight_decay: Hyper attributes from its rules
    _buffers = ("exp_avg", "exp_avg_sq")
    # v - (1 - beta2) sign(v - g^2) g^2 stays >= 0 from v >= 0 (initial_accumulator >= 0)
    _nonnegative_buffers = ("exp_avg_sq",)

    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.0,
                 initial_accumulator=1e-6, nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay, initial_accumulator=initial_accumulator)

    def _initial_value(self, buffer_name):
        return self.initial_accumulator


# ======================================================================================= Adan
class Adan(Optimizer):
    r"""Adan (Xie et al. 2022), betas in the official code's convention (paper's 1 - beta).

    Per element, :math:`b_k = 1 - \beta_k^t`, :math:`D = g - g_{prev}` (0 at t = 1):

    .. math::
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        d \leftarrow \beta_2 d + (1 - \beta_2) D \\
        n &\leftarrow \beta_3 n + (1 - \beta_3) (g + \beta_2 D)^2 \\
        r &= \frac{m / b_1 + (\beta_2 / b_2)\, d}{\sqrt{n}/\sqrt{b_3} + \epsilon} \\
        p &\leftarrow (p - \eta r) / (1 + \eta\lambda) \ \text{(proximal)}, \quad
        p \leftarrow p (1 - \eta\lambda) - \eta r \ \text{(else)}

    Defaults (official): lr 1e-3, betas (0.98, 0.92, 0.99), eps 1e-8, proximal decay.
    """

    _kernel = F._ADAN  # lr, betas (3), eps, weight_decay, proximal: Hyper attributes
    _buffers = ("exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad")
    _nonnegative_buffers = ("exp_avg_sq",)

    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0,
                 proximal=True, nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay, proximal=proximal)


# ======================================================================================= Lion
class Lion(Optimizer):
    r"""Lion (Chen et al. 2023): the sign of an interpolated momentum.

    Per element (:math:`\mathrm{sign}(0) = 0`):

    .. math::
        p &\leftarrow p (1 - \eta\lambda), \qquad
        p \leftarrow p - \eta\, \mathrm{sign}(\beta_1 m + (1 - \beta_1) g) \\
        m &\leftarrow \beta_2 m + (1 - \beta_2) g

    Defaults (paper): lr 1e-4, betas (0.9, 0.99), weight_decay 0.
    """

    _kernel = F._LION  # lr, betas, weight_decay: Hyper attributes from its rules (no step)
    _buffers = ("exp_avg",)

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, weight_decay=weight_decay)
