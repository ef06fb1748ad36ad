r"""madam's first-order optimisers as ``torch.optim.Optimizer`` subclasses: SGD, Adam, AdamW,
AMSGrad, AVGrad, Yogi, Adan, Lion.

Each step runs the fused C kernel of the NumPy class of the same name (:class:`madam.Adam`, ...)
directly on the memory of the parameters, gradients and state tensors: no copy, one pass per
parameter. The update, the defaults and the validation rules are those of the NumPy classes (which
follow torch.optim where torch has the optimiser; their docstrings give the formulas), and the
hyperparameters live in ``param_groups``, read and checked at every step, so
``torch.optim.lr_scheduler`` drives them.

Accepted tensors: CPU, float32 or float64, dense and contiguous (parameters, gradients and state);
anything else is refused with an error naming the parameter, never copied (see
:mod:`madam.torch._tensors`).

State, per parameter, in ``self.state[p]`` under torch.optim's names where torch has the
optimiser: ``step`` (a float64 scalar tensor: exact up to 2**53), ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq`` (AMSGrad), ``momentum_buffer`` (SGD, which keeps no step, as torch); madam's
names elsewhere: ``avg_exp_avg_sq`` (AVGrad), ``exp_avg_diff`` and ``prev_grad`` (Adan). State
is created at a parameter's first step, as in torch.optim.
"""
import numbers

import torch

from .. import _core
from .. import functional as F
from .._core import ffi
from .._validate import nonnegative
from ._base import TorchOptimizer, bump_versions
from ._tensors import NUMPY_DTYPES, check_tensor

__all__ = ["SGD", "Adam", "AdamW", "AMSGrad", "AVGrad", "Yogi", "Adan", "Lion"]

_CTYPES = {torch.float32: "float *", torch.float64: "double *"}


def _pointer(tensor):
    return ffi.cast(_CTYPES[tensor.dtype], tensor.data_ptr())


def _step_value(value, name):
    """A saved step counter (a scalar tensor or a number) as an int in [0, 2**53]."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or a scalar tensor, got {type(value).__name__}")
    if not (0 <= value <= F.MAX_STEP and float(value).is_integer()):
        raise ValueError(f"{name} must be a whole number in [0, 2**53], got {value!r}")
    return int(value)


class _FirstOrder(TorchOptimizer):
    """One madam.functional kernel per parameter and step.

    A subclass sets ``_kernel`` (the kernel description of :mod:`madam.functional`: its C
    function, config struct and hyperparameter rules, shared with the NumPy classes),
    ``_buffers`` (state tensors in the kernel's argument order) and, where needed,
    ``_variant`` (Adam's kernel variant),
    ``_nonnegative`` (buffers that stay >= 0) and ``_extra_rules``.
    """

    _kernel = None
    _buffers = ()
    _nonnegative = ()
    _extra_rules = ()
    _variant = None
    _has_step = True   # SGD keeps no step counter (torch.optim.SGD's state)

    def __init__(self, params, nonfinite="raise", **defaults):
        super().__init__(params, defaults, nonfinite)

    def _rules(self):
        return self._kernel.hypers + self._extra_rules

    def _buffers_used(self, values):
        return self._buffers

    # ----------------------------------------------------------------- checks
    def _check_state(self, name, p, values):
        """The step number the kernel gets for ``p`` (1 for a parameter without state), after
        checking the state tensors that exist."""
        state = self.state.get(p)
        if not state:
            return 1
        for key in state:
            if key not in self._buffers and not (key == "step" and self._has_step):
                raise ValueError(f"the state of {name} has an unknown entry {key!r}")
        for key in self._buffers_used(values):
            if key not in state:
                raise ValueError(f"the state of {name} lacks {key!r}")
        for key in (k for k in self._buffers if k in state):
            buf = check_tensor(state[key], f"the state {key!r} of {name}")
            if buf.dtype != p.dtype or buf.shape != p.shape:
                raise ValueError(f"the state {key!r} of {name} is {buf.dtype} {tuple(buf.shape)}, "
                                 f"its parameter {p.dtype} {tuple(p.shape)}")
        if not self._has_step:
            return 2
        t = _step_value(state.get("step"), f"the state 'step' of {name}") + 1
        if t > F.MAX_STEP:
            raise ValueError(f"the state 'step' of {name} is at 2**53, the last step")
        return t

    def _check_saved_state(self, label, p, state):
        names = set(self._buffers) | ({"step"} if self._has_step else set())
        for key in state:
            if key not in names:
                raise ValueError(f"{label} has an unknown entry {key!r} (not written by "
                                 f"{type(self).__name__})")
        required = () if not self._has_step else ("step",) + tuple(self._buffers)
        for key in required:
            if key not in state:
                raise ValueError(f"{label} lacks {key!r}")
        if self._has_step:
            _step_value(state["step"], f"{label}['step']")
        for key in self._buffers:
            buf = state.get(key)
            if buf is None and not self._has_step:
                continue  # SGD without momentum keeps no buffer
            where = f"{label}[{key!r}]"
            if not isinstance(buf, torch.Tensor):
                raise TypeError(f"{where} must be a tensor, got {type(buf).__name__}")
            if not buf.is_floating_point():
                raise TypeError(f"{where} has dtype {buf.dtype}, expected a float tensor")
            if buf.shape != p.shape:
                raise ValueError(f"{where} has shape {tuple(buf.shape)}, expected "
                                 f"{tuple(p.shape)}")
            cast = buf.to(dtype=p.dtype)  # what torch's load_state_dict will store
            if not bool(torch.isfinite(cast).all()):
                raise ValueError(f"{where} contains NaN or Inf")
            if key in self._nonnegative and bool((cast < 0).any()):
                raise ValueError(f"{where} has negative entries; {key} is a second moment and "
                                 "must be >= 0")

    def _normalise_state(self):
        for p, state in self.state.items():
            for key, value in list(state.items()):
                if value is None:  # torch.optim.SGD without momentum may store None
                    del state[key]
                elif key == "step":
                    state[key] = torch.tensor(float(_step_value(value, "step")),
                                              dtype=torch.float64)
                elif isinstance(value, torch.Tensor):
                    state[key] = value.detach().clone(memory_format=torch.contiguous_format)

    # ----------------------------------------------------------------- the update
    def _config(self, values):
        fields = {name: values[name] for name in self._kernel.hyper_names}
        if self._variant is not None:
            fields["variant"], fields["decoupled_weight_decay"], _ = F._adam_mode(self._variant)
        return self._kernel.config(fields)

    def _initial_value(self, values):
        return 0.0

    def _new_state(self, p, values):
        fill = self._initial_value(values)
        state = {"step": torch.tensor(0.0, dtype=torch.float64)} if self._has_step else {}
        for key in self._buffers_used(values):
            state[key] = torch.full_like(p, fill, memory_format=torch.contiguous_format)
        return state

    def _extra_pointers(self, state, values):
        return ()

    def _update(self, work):
        exec_cfg = _core.exec_config()
        what = f"madam.torch.{type(self).__name__}.step"
        updated = []
        for _, _, values, items in work:
            cfg = self._config(values)
            for _, p, g, t in items:
                state = self.state[p]
                if not state:  # first step of p (SGD: or first step with momentum, t = 1)
                    state.update(self._new_state(p, values))
                if p.numel():
                    buffers = [_pointer(state[k]) if k in state else ffi.NULL
                               for k in self._buffers]
                    self._kernel.launch(cfg, exec_cfg, t, NUMPY_DTYPES[p.dtype], p.numel(),
                                        _pointer(p), _pointer(g),
                                        buffers + list(self._extra_pointers(state, values)), what)
                if self._has_step:
                    counter = state["step"]
                    if isinstance(counter, torch.Tensor) and counter.dtype == torch.float64:
                        counter.fill_(t)
                    else:  # a plain number, or a float32 tensor put there by hand
                        state["step"] = torch.tensor(float(t), dtype=torch.float64)
                updated.append(p)
        bump_versions(updated)


# ===================================================================================== SGD
class SGD(_FirstOrder):
    r"""SGD with momentum, dampening, Nesterov and L2 weight decay: :class:`madam.SGD`'s update
    (torch.optim.SGD's convention) on torch tensors.

    Defaults as :class:`madam.SGD` (lr 1e-3, no momentum). Nesterov needs momentum > 0 and
    dampening 0. State: ``momentum_buffer``, created at the first step with momentum != 0 and
    equal to the gradient then, as in torch.optim.SGD (no ``step`` entry, as torch).
    """

    _kernel = F._SGD
    _buffers = ("momentum_buffer",)
    _has_step = False

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def _check_combination(self, label, values):
        try:
            F._check_nesterov(values["momentum"], values["dampening"], values["nesterov"])
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None

    def _buffers_used(self, values):
        return self._buffers if values["momentum"] != 0.0 else ()


# ============================================================================== Adam family
class _AdamFamily(_FirstOrder):
    _kernel = F._ADAM
    _buffers = ("exp_avg", "exp_avg_sq")
    _nonnegative = ("exp_avg_sq",)
    _variant = "adam"
    _refused = dict(TorchOptimizer._refused,
                    amsgrad="use madam.torch.AMSGrad for AMSGrad",
                    decoupled_weight_decay="use madam.torch.AdamW for decoupled weight decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *,
                 nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay)

    def _extra_pointers(self, state, values):
        return (ffi.NULL,) if len(self._buffers) == 2 else ()  # the kernel's unused aux buffer


class Adam(_AdamFamily):
    r""":class:`madam.Adam` (torch.optim.Adam's update, L2 weight decay) on torch tensors.

    Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0. State: ``step``,
    ``exp_avg``, ``exp_avg_sq`` (torch.optim.Adam's names and meaning).
    """



class AdamW(_AdamFamily):
    r""":class:`madam.AdamW` (decoupled weight decay, torch.optim.AdamW's update) on torch
    tensors. Defaults as Adam but weight_decay 1e-2 (torch's). State as Adam."""

    _variant = "adamw"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 nonfinite="raise"):
        super().__init__(params, lr, betas, eps, weight_decay, nonfinite=nonfinite)


class AMSGrad(_AdamFamily):
    r""":class:`madam.AMSGrad` (torch.optim.Adam(amsgrad=True)'s update: the max of the
    uncorrected second moment) on torch tensors. Defaults as Adam. State: Adam's and
    ``max_exp_avg_sq``."""

    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _nonnegative = ("exp_avg_sq", "max_exp_avg_sq")
    _variant = "amsgrad"


class AVGrad(_AdamFamily):
    r""":class:`madam.AVGrad` (AMSGrad with the max replaced by a time average; MADA's paper)
    on torch tensors. Defaults as Adam. State: Adam's and ``avg_exp_avg_sq``."""

    _buffers = ("exp_avg", "exp_avg_sq", "avg_exp_avg_sq")
    _nonnegative = ("exp_avg_sq", "avg_exp_avg_sq")
    _variant = "avgrad"


# ===================================================================================== Yogi
class Yogi(_FirstOrder):
    r""":class:`madam.Yogi` on torch tensors.

    Defaults (paper): lr 1e-2, betas (0.9, 0.999), eps 1e-3, weight_decay 0 (L2),
    initial_accumulator 1e-6 (the value ``exp_avg`` and ``exp_avg_sq`` start at; read from the
    param group when a parameter's state is created). State: ``step``, ``exp_avg``,
    ``exp_avg_sq``.
    """

    _kernel = F._YOGI
    _buffers = ("exp_avg", "exp_avg_sq")
    _nonnegative = ("exp_avg_sq",)
    _extra_rules = (("initial_accumulator", nonnegative, True),)

    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.0,
                 initial_accumulator=1e-6, *, nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay, initial_accumulator=initial_accumulator)

    def _initial_value(self, values):
        return values["initial_accumulator"]


# ===================================================================================== Adan
class Adan(_FirstOrder):
    r""":class:`madam.Adan` on torch tensors (betas in the official code's convention).

    Defaults: lr 1e-3, betas (0.98, 0.92, 0.99), eps 1e-8, weight_decay 0, proximal True.
    State: ``step``, ``exp_avg``, ``exp_avg_diff``, ``exp_avg_sq``, ``prev_grad``.
    """

    _kernel = F._ADAN
    _buffers = ("exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad")
    _nonnegative = ("exp_avg_sq",)

    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0,
                 proximal=True, *, nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay, proximal=proximal)


# ===================================================================================== Lion
class Lion(_FirstOrder):
    r""":class:`madam.Lion` on torch tensors.

    Defaults (paper): lr 1e-4, betas (0.9, 0.99), weight_decay 0 (decoupled). State: ``step``
    (a counter only: Lion's update does not depend on it) and ``exp_avg``.
    """

    _kernel = F._LION
    _buffers = ("exp_avg",)

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *,
                 nonfinite="raise"):
        super().__init__(params, nonfinite, lr=lr, betas=betas, weight_decay=weight_decay)
