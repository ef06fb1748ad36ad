r"""Stateless first-order kernels: one update as a function of caller-owned buffers.

Each function applies one step of one fused C kernel, in place, to memory the caller owns: the
parameters, the gradient, the optimiser-state buffers, the hyperparameters and the step number
are all arguments, and nothing is kept between calls. The optimiser classes of
:mod:`madam.optim` (``madam.Adam``, ...) step through the same kernel descriptions defined here
(one piece of code fills every C config struct, for the classes and for these functions), so a
sequence of calls here reproduces a class's run bit for bit when it is given the class's
buffers and ``step = 1, 2, ...``.

Two entry points:

* ``sgd``, ``adam``, ``yogi``, ``adan``, ``lion`` take NumPy arrays. Any C-contiguous float32 or
  float64 array works, including a zero-copy view of other memory: ``torch_tensor.numpy()`` of a
  CPU tensor shares the tensor's storage, so the update lands in the tensor.
* :func:`apply_at` takes raw addresses (ints), an element count and a dtype, for callers that
  hold memory without NumPy (a torch adapter passing ``tensor.data_ptr()``). It checks what an
  address can tell (non-zero, aligned, no overlap) and trusts the caller for the rest.

Checks, all before any memory is written (a refused call changes nothing, and each message names
the argument): every array is a NumPy array of float32 or float64, all of the same dtype,
C-contiguous, of ``param``'s size (shapes may differ: the kernels are element-wise), the arrays
the kernel writes (param and the state buffers) are writable, no two arrays share memory, every
hyperparameter passes the rule its optimiser class applies (same validators, same messages, and
the scale bound :func:`madam.optim.scale_limit` of the dtype), and ``step`` is an int in
[1, 2**53].

What the functions do **not** do: scan for NaN or Inf. The non-finite policy
(``nonfinite="raise" | "skip" | "ignore"``) belongs to an optimiser object, which can skip a step
and count it; a function call always runs the kernel, so a NaN gradient reaches the state (see
:class:`madam.optim.Optimizer`). Call ``madam._core.all_finite`` first if you need the check.
Nor do they check that the state is reachable (e.g. second moments >= 0): the buffers are yours.

Example (the same as ``madam.Adam(p, lr=1e-3).step(g)`` twice)::

    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in (1, 2):
        madam.functional.adam(p, g, m, v, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                              weight_decay=0.0, step=t)
"""
import numbers

import numpy as np

from . import _core
from ._core import ffi
from ._validate import (FLOAT_TYPES, betas, choice, closed_unit, flag, float_dtype, integer,
                        nonnegative, within_scale_limit)

__all__ = ["sgd", "adam", "yogi", "adan", "lion", "apply_at", "ADAM_VARIANTS", "MAX_STEP"]

#: The largest step number a kernel accepts (2**53: every count up to it is exact in a double,
#: which is where the kernels compute beta**t; ``load_state_dict`` bounds step_count the same).
MAX_STEP = 2 ** 53

#: adam's ``variant`` -> (C variant constant, decoupled weight decay, the auxiliary buffer's name
#: or None). The aux names are the state_dict buffer names of AMSGrad and AVGrad.
ADAM_VARIANTS = {
    "adam": ("CM_ADAM", 0, None),
    "adamw": ("CM_ADAM", 1, None),
    "amsgrad": ("CM_AMSGRAD", 0, "max_exp_avg_sq"),
    "avgrad": ("CM_AVGRAD", 0, "avg_exp_avg_sq"),
}


class _Kernel:
    """One fused C kernel: its C name, config struct, state buffers and hyperparameter rules.

    This is the one place a config struct is filled (:meth:`config`) and a kernel is called
    (:meth:`launch`): the optimiser classes use it with pointers they made at construction,
    the public functions with pointers made per call.

    ``hypers``: (name, check, scale) per config hyperparameter, in signature order; ``check`` is
    a :mod:`madam._validate` rule and ``scale`` marks the ones bounded by ``scale_limit``. The
    optimiser classes install their :class:`~madam._validate.Hyper` attributes from this table,
    so a class and its function can never disagree on a rule.
    ``buffers``: the state buffers in the C signature's order (state_dict names; adam's third,
    ``exp_avg_sq_aux``, is AMSGrad's max_exp_avg_sq or AVGrad's avg_exp_avg_sq, NULL for Adam).
    """

    def __init__(self, name, c_name, config_type, hypers, buffers, takes_step=True):
        self.name, self.c_name, self.config_type = name, c_name, config_type
        self.hypers, self.buffers = hypers, buffers
        self.hyper_names = tuple(h[0] for h in hypers)
        self.takes_step = takes_step
        # the C function per dtype, looked up once (getattr on the CFFI lib is not free)
        self._fns = {dt: _core.kernel(c_name, dt) for dt in FLOAT_TYPES}

    def check_hypers(self, values, dtype):
        """The validated hyperparameters (a new dict); TypeError/ValueError naming the first bad
        one. ``values`` must hold exactly this kernel's hyperparameters."""
        checked = {}
        for name, check, scale in self.hypers:
            value = check(name, values[name])
            if scale:
                within_scale_limit(name, value, [dtype])
            checked[name] = value
        return checked

    def config(self, values):
        """A new C config struct filled from ``values`` (already validated): every key is a
        field, except ``betas``, which fills beta1, beta2, ..."""
        cfg = ffi.new(f"{self.config_type} *")
        for name, value in values.items():
            if name == "betas":
                for i, b in enumerate(value):
                    setattr(cfg, f"beta{i + 1}", b)
            else:
                setattr(cfg, name, value)
        return cfg

    def launch(self, cfg, exec_cfg, step, dtype, n, param, grad, buffers, what):
        """Call the C kernel once on pointers; CoreError (via check_status) on a bad status,
        which validation makes unreachable. ``step`` is ignored by kernels that take none."""
        fn = self._fns[dtype]
        if self.takes_step:
            status = fn(cfg, exec_cfg, step, n, param, grad, *buffers)
        else:
            status = fn(cfg, exec_cfg, n, param, grad, *buffers)
        _core.check_status(status, what)


_SCALE = (nonnegative, True)

_SGD = _Kernel(
    "sgd", "cm_sgd_step", "cm_sgd_config",
    (("lr", *_SCALE), ("momentum", *_SCALE), ("dampening", closed_unit, False),
     ("weight_decay", *_SCALE), ("nesterov", flag, False)),
    ("momentum_buffer",))
_ADAM = _Kernel(
    "adam", "cm_adam_step", "cm_adam_config",
    (("lr", *_SCALE), ("betas", betas(2), False), ("eps", *_SCALE), ("weight_decay", *_SCALE)),
    ("exp_avg", "exp_avg_sq", "exp_avg_sq_aux"))
_YOGI = _Kernel(
    "yogi", "cm_yogi_step", "cm_yogi_config",
    (("lr", *_SCALE), ("betas", betas(2), False), ("eps", *_SCALE), ("weight_decay", *_SCALE)),
    ("exp_avg", "exp_avg_sq"))
_ADAN = _Kernel(
    "adan", "cm_adan_step", "cm_adan_config",
    (("lr", *_SCALE), ("betas", betas(3), False), ("eps", *_SCALE), ("weight_decay", *_SCALE),
     ("proximal", flag, False)),
    ("exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad"))
_LION = _Kernel(
    "lion", "cm_lion_step", "cm_lion_config",
    (("lr", *_SCALE), ("betas", betas(2), False), ("weight_decay", *_SCALE)),
    ("exp_avg",), takes_step=False)

_KERNELS = {k.name: k for k in (_SGD, _ADAM, _YOGI, _ADAN, _LION)}


def _check_nesterov(momentum, dampening, nesterov):
    """ValueError unless Nesterov momentum is well defined (momentum > 0, dampening 0); the rule
    SGD applies at construction and at every step."""
    if nesterov and (momentum <= 0.0 or dampening != 0.0):
        raise ValueError("nesterov=True needs momentum > 0 and dampening = 0 "
                         f"(momentum={momentum}, dampening={dampening})")


def _adam_mode(variant):
    """(C variant constant, decoupled flag, aux buffer name or None) of an adam variant name."""
    c_name, decoupled, aux = ADAM_VARIANTS[choice("variant", variant, ADAM_VARIANTS)]
    return getattr(_core.lib, c_name), decoupled, aux


# ------------------------------------------------------------------------------- the common path
def _check_step(kernel, step):
    if not kernel.takes_step:
        if step is not None:  # silently ignoring a step would hide a caller's mistake
            raise TypeError(f"kernel {kernel.name!r} keeps no step counter; do not pass step")
        return 0  # Lion's kernel has no counter; the C signature has no slot for it
    step = integer("step", step, 1)
    if step > MAX_STEP:
        raise ValueError(f"step must be <= 2**53, got {step}")
    return step


def _check_spans(spans):
    """ValueError naming two of ``spans`` ((start, end, name) byte ranges) that overlap: a kernel
    reads and writes element by element, so shared memory would make the result depend on the
    order of the element operations (and update a parameter twice)."""
    spans = sorted(s for s in spans if s[1] > s[0])  # an empty array touches no memory
    for (_, end0, a), (start1, _, b) in zip(spans, spans[1:]):
        if start1 < end0:
            raise ValueError(f"{a} and {b} share memory; every array must have its own")


def _run(kernel, dtype, size, named, step, hypers, extra, what):
    """Validate what every entry point shares (step, hyperparameters, memory overlap), then run.

    ``named``: (name, address or None, writable) in C-signature order, param and grad first;
    ``extra``: config fields beyond the hyperparameters (adam's variant flags)."""
    step = _check_step(kernel, step)
    values = kernel.check_hypers(hypers, dtype)
    if kernel is _SGD:
        _check_nesterov(values["momentum"], values["dampening"], values["nesterov"])
        if named[2][1] is None and values["momentum"] != 0.0:
            # the C kernel would return CM_ERR_NULL; say which argument is missing instead
            raise ValueError("momentum_buffer is None but momentum != 0: give a buffer "
                             "(np.zeros_like(param))")
    nbytes = size * dtype.itemsize
    _check_spans([(addr, addr + nbytes, name) for name, addr, _ in named if addr is not None])
    values.update(extra)
    ctype = "float *" if dtype == np.float32 else "double *"
    ptrs = [ffi.NULL if addr is None else ffi.cast(ctype, addr) for _, addr, _ in named]
    kernel.launch(kernel.config(values), _core.exec_config(), step, dtype, size, ptrs[0], ptrs[1],
                  ptrs[2:], what)


def _arrays(kernel, what, named, step, hypers, extra=()):
    """The NumPy entry point: check each array against ``param``, then :func:`_run`.

    ``named``: (name, array or None, writable); None is allowed only for buffers that the caller
    (sgd, adam) has already decided may be absent."""
    param = named[0][1]
    for name, a, writable in named:
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype not in FLOAT_TYPES:
            raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
        if a.dtype != param.dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but param has {param.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
        if a.size != param.size:
            raise ValueError(f"{name} has {a.size} elements but param has {param.size}")
        if writable and not a.flags.writeable:
            raise ValueError(f"{name} is read-only; the kernel updates it in place")
    addressed = [(name, None if a is None else a.__array_interface__["data"][0], w)
                 for name, a, w in named]
    # the arrays stay referenced by the caller's frame for the whole call, so the raw addresses
    # made here stay valid while the kernel runs
    _run(kernel, param.dtype, param.size, addressed, step, hypers, dict(extra), what)


# ------------------------------------------------------------------------------- public functions
def sgd(param, grad, momentum_buffer=None, *, lr, momentum, dampening, weight_decay, nesterov,
        step):
    r"""One SGD step in place: the update of :class:`madam.SGD` (torch.optim.SGD's convention;
    its docstring has the formula).

    ``momentum_buffer`` (b) may be None only when momentum == 0; it is not read at step 1.
    Updates ``param`` and ``momentum_buffer``; ``grad`` is only read. Returns None.
    """
    _arrays(_SGD, "functional.sgd",
            [("param", param, True), ("grad", grad, False),
             ("momentum_buffer", momentum_buffer, True)], step,
            dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                 nesterov=nesterov))


def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, avg_exp_avg_sq=None, *, lr,
         betas, eps, weight_decay, step, variant="adam"):
    r"""One step of Adam, AdamW, AMSGrad or AVGrad in place (one C kernel runs all four).

    Per element, step :math:`t`, :math:`b_k = 1 - \beta_k^t`:

    .. math::
        p &\leftarrow p (1 - \eta\lambda) \ (\text{adamw}), \qquad
        g \leftarrow g + \lambda p \ (\text{else}) \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        s &= v \ (\text{adam, adamw}), \quad s = \hat v \leftarrow \max(\hat v, v)
            \ (\text{amsgrad}), \quad s = \bar v \leftarrow (v + (t - 1)\bar v) / t
            \ (\text{avgrad}) \\
        p &\leftarrow p - \frac{\eta}{b_1}\, \frac{m}{\sqrt{s}/\sqrt{b_2} + \epsilon}

    ``variant`` picks the class it reproduces: "adam" (:class:`madam.Adam`), "adamw"
    (:class:`madam.AdamW`; note there is no default weight decay here, pass the class's 1e-2
    yourself), "amsgrad" (:class:`madam.AMSGrad`, needs ``max_exp_avg_sq``) or "avgrad"
    (:class:`madam.AVGrad`, needs ``avg_exp_avg_sq``). The auxiliary buffer of the other
    variant must be None (a buffer the kernel would not touch is a mistake worth reporting).
    Buffers start at zero. Updates param and the state buffers; ``grad`` is only read.
    Returns None.
    """
    c_variant, decoupled, aux_name = _adam_mode(variant)
    given = {"max_exp_avg_sq": max_exp_avg_sq, "avg_exp_avg_sq": avg_exp_avg_sq}
    for name, buf in given.items():
        if name == aux_name and buf is None:
            raise ValueError(f"variant={variant!r} needs {name} (np.zeros_like(param))")
        if name != aux_name and buf is not None:
            raise ValueError(f"{name} is given but variant={variant!r} does not use it")
    aux = (aux_name, given[aux_name], True) if aux_name else ("exp_avg_sq_aux", None, True)
    _arrays(_ADAM, "functional.adam",
            [("param", param, True), ("grad", grad, False), ("exp_avg", exp_avg, True),
             ("exp_avg_sq", exp_avg_sq, True), aux], step,
            dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
            dict(variant=c_variant, decoupled_weight_decay=decoupled))


def yogi(param, grad, exp_avg, exp_avg_sq, *, lr, betas, eps, weight_decay, step):
    r"""One Yogi step in place (:class:`madam.Yogi` runs the same).

    Per element, :math:`b_k = 1 - \beta_k^t`:

    .. math::
        g &\leftarrow g + \lambda p, \qquad m \leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow v - (1 - \beta_2)\,\mathrm{sign}(v - g^2)\, g^2 \\
        p &\leftarrow p - \frac{\eta}{b_1}\, \frac{m}{\sqrt{v}/\sqrt{b_2} + \epsilon}

    The caller initialises ``exp_avg`` and ``exp_avg_sq`` (the class fills both with its
    ``initial_accumulator``, 1e-6 by default). Returns None.
    """
    _arrays(_YOGI, "functional.yogi",
            [("param", param, True), ("grad", grad, False), ("exp_avg", exp_avg, True),
             ("exp_avg_sq", exp_avg_sq, True)], step,
            dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))


def adan(param, grad, exp_avg, exp_avg_diff, exp_avg_sq, prev_grad, *, lr, betas, eps,
         weight_decay, proximal, step):
    r"""One Adan step in place: the update of :class:`madam.Adan` (its docstring has the
    formula; betas in the official code's convention, the paper's 1 - beta).

    ``prev_grad`` receives g. Buffers start at zero; prev_grad is not read at step 1.
    Returns None.
    """
    _arrays(_ADAN, "functional.adan",
            [("param", param, True), ("grad", grad, False), ("exp_avg", exp_avg, True),
             ("exp_avg_diff", exp_avg_diff, True), ("exp_avg_sq", exp_avg_sq, True),
             ("prev_grad", prev_grad, True)], step,
            dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, proximal=proximal))


def lion(param, grad, exp_avg, *, lr, betas, weight_decay):
    r"""One Lion step in place (:class:`madam.Lion` runs the same). Lion keeps no step counter,
    so there is no ``step`` argument.

    Per element (:math:`\mathrm{sign}(0) = 0`):

    .. math::
        p &\leftarrow p (1 - \eta\lambda), \qquad
        p \leftarrow p - \eta\, \mathrm{sign}(\beta_1 m + (1 - \beta_1) g) \\
        m &\leftarrow \beta_2 m + (1 - \beta_2) g

    ``exp_avg`` starts at zero. Returns None.
    """
    _arrays(_LION, "functional.lion",
            [("param", param, True), ("grad", grad, False), ("exp_avg", exp_avg, True)], None,
            dict(lr=lr, betas=betas, weight_decay=weight_decay))


# ------------------------------------------------------------------------------- raw addresses
def apply_at(kernel, dtype, size, param, grad, *buffers, step=None, variant="adam",
             **hyperparameters):
    """One step of ``kernel`` ("sgd", "adam", "yogi", "adan" or "lion") on raw memory.

    ``param``, ``grad`` and ``buffers`` are addresses (ints, e.g. ``tensor.data_ptr()`` of a
    contiguous CPU tensor) of ``size`` elements of ``dtype`` each; the buffers come in the
    order of the matching array function's arguments: sgd (momentum_buffer), adam (exp_avg,
    exp_avg_sq[, the variant's aux buffer]), yogi (exp_avg, exp_avg_sq), adan (exp_avg,
    exp_avg_diff, exp_avg_sq, prev_grad), lion (exp_avg). sgd's buffer may be None when
    momentum == 0. ``step`` (not for lion), ``variant`` (adam only) and the hyperparameters are
    keywords, as in the array functions, and checked the same way.

    Checked: dtype, size (an int >= 0), the number of buffers, every address a non-zero int
    aligned to the element size, no two ranges overlapping, the hyperparameters and step. Not
    checkable from an address, so the caller's responsibility: that each range is valid,
    writable (all but grad), contiguous and stays alive for the call. No NaN scan. Returns None.
    """
    spec = _KERNELS[choice("kernel", kernel, _KERNELS)]
    dtype = float_dtype(dtype)
    size = integer("size", size, 0)
    if size * dtype.itemsize >= 2 ** 63:  # no real buffer is this large; C takes a size_t
        raise ValueError(f"size must be below 2**63 bytes, got {size} elements")
    extra = {}
    names = list(spec.buffers)
    if spec is _ADAM:
        c_variant, decoupled, aux_name = _adam_mode(variant)
        extra = dict(variant=c_variant, decoupled_weight_decay=decoupled)
        names = names[:2] + ([aux_name] if aux_name else [])
    elif variant != "adam":
        raise TypeError(f"variant applies to kernel 'adam' only, not {kernel!r}")
    if len(buffers) != len(names):
        raise TypeError(f"kernel {kernel!r} takes {len(names)} buffer address(es) "
                        f"{tuple(names)}, got {len(buffers)}")
    wanted = set(spec.hyper_names)
    if set(hyperparameters) != wanted:
        missing, unknown = wanted - set(hyperparameters), set(hyperparameters) - wanted
        raise TypeError(f"kernel {kernel!r} needs the hyperparameters {spec.hyper_names}"
                        + (f"; missing {sorted(missing)}" if missing else "")
                        + (f"; unknown {sorted(unknown)}" if unknown else ""))
    named = [("param", param), ("grad", grad)] + list(zip(names, buffers))
    for name, addr in named:
        if addr is None and name == "momentum_buffer":
            continue  # _run refuses a missing momentum buffer when momentum != 0
        if isinstance(addr, (bool, np.bool_)) or not isinstance(addr, numbers.Integral):
            raise TypeError(f"{name} must be an address (int), got {type(addr).__name__}")
        if not 0 < addr < 2 ** 64:
            raise ValueError(f"{name} must be a non-zero 64-bit address, got {addr}")
        if addr % dtype.itemsize:
            raise ValueError(f"{name} address {addr:#x} is not aligned to {dtype.itemsize} bytes")
    if spec is _ADAM and len(names) == 2:
        named.append(("exp_avg_sq_aux", None))  # plain Adam/AdamW: the kernel takes NULL
    _run(spec, dtype, size, [(n, None if a is None else int(a), n != "grad") for n, a in named],
         step, hyperparameters, extra, f"functional.apply_at({kernel!r})")
