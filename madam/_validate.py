"""Argument checking shared by madam: parameter lists, gradients, hyperparameters, and the rules
every module's arguments use (numbers in a range, a choice among options, an optional value).

Every check raises before anything is modified, and every message names the argument. A rule is
a function ``check(name, value) -> value`` (the validated value, possibly converted); the
factories below (:func:`at_least`, :func:`one_of`, :func:`optional`) make rules from others, for
:class:`Hyper` attributes and argument checks alike. Nothing here needs the compiled core.
"""
import bisect
import math
import numbers

import numpy as np

#: The element types every kernel exists for (here, not in _core: validation needs no compiled core)
FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NonFiniteError(ValueError):
    """A gradient holds NaN or +-Inf and the optimiser's policy is nonfinite="raise"."""


NONFINITE_POLICIES = ("raise", "skip", "ignore")


def float_dtype(dtype, name="dtype"):
    """``dtype`` as np.dtype, float32 or float64 (TypeError naming ``name`` otherwise)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_TYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def param_list(params):
    """Normalise ``params`` to a list of arrays; returns (list, given_as_single_array)."""
    if isinstance(params, np.ndarray):
        arrays, single = [params], True
    elif isinstance(params, (list, tuple)):
        arrays, single = list(params), False
        if not arrays:
            raise ValueError("params is an empty list: give at least one array")
    else:
        raise TypeError("params must be a NumPy array or a list/tuple of arrays, "
                        f"got {type(params).__name__}")
    for i, p in enumerate(arrays):
        name = "params" if single else f"params[{i}]"
        if not isinstance(p, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(p).__name__}")
        if p.dtype not in FLOAT_TYPES:
            raise TypeError(f"{name} must be float32 or float64, got {p.dtype}")
        if p.size == 0:
            raise ValueError(f"{name} is empty (shape {p.shape})")
        if not p.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
        if not p.flags.writeable:
            raise ValueError(f"{name} is read-only; the optimiser updates it in place")
    _check_disjoint(arrays, single)
    return arrays, single


def memory_spans(arrays):
    """Sorted (start, end, index) byte spans of C-contiguous arrays."""
    return sorted((a.__array_interface__["data"][0], a.__array_interface__["data"][0] + a.nbytes, i)
                  for i, a in enumerate(arrays))


def _overlapping(spans, array):
    """Index of an array in ``spans`` whose memory overlaps ``array``'s, else None."""
    start = array.__array_interface__["data"][0]
    end = start + array.nbytes
    k = bisect.bisect_left(spans, (end,)) - 1  # the last span starting before ``end``
    if k >= 0 and spans[k][1] > start:
        return spans[k][2]
    return None


def _check_disjoint(arrays, single):
    """Two params sharing memory would be updated twice per step."""
    spans = memory_spans(arrays)
    for (_, end0, i), (start1, _, j) in zip(spans, spans[1:]):
        if start1 < end0:
            raise ValueError(f"params[{min(i, j)}] and params[{max(i, j)}] share memory")


def grad_list(grads, params, single, param_spans):
    """Check ``grads`` against the params (structure, dtype, shape, layout, no shared memory with
    any param, which would make the result depend on the update order); returns a list.
    ``param_spans`` is memory_spans(params)."""
    if single:
        if not isinstance(grads, np.ndarray):
            raise TypeError(f"grads must be a NumPy array like params, got {type(grads).__name__}")
        grads, names = [grads], ["grads"]
    else:
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list/tuple like params, got {type(grads).__name__}")
        if len(grads) != len(params):
            raise ValueError(f"grads has {len(grads)} arrays but params has {len(params)}")
        names = [f"grads[{i}]" for i in range(len(grads))]
    for i, (name, g, p) in enumerate(zip(names, grads, params)):
        if not isinstance(g, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(g).__name__}")
        if g.dtype != p.dtype:
            raise TypeError(f"{name} has dtype {g.dtype} but its parameter has {p.dtype}")
        if g.shape != p.shape:
            raise ValueError(f"{name} has shape {g.shape} but its parameter has {p.shape}")
        if not g.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
        if not p.flags.writeable:
            raise ValueError(f"{'params' if single else f'params[{i}]'} has become read-only; "
                             "the optimiser updates it in place")
        hit = _overlapping(param_spans, g)
        if hit is not None:
            raise ValueError(f"{name} shares memory with "
                             f"{'params' if single else f'params[{hit}]'}")
    return list(grads), names


# ----------------------------------------------------------------------------- numbers
def is_real(value):
    """Whether ``value`` is a real number, Python's or NumPy's (a bool is not a number here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value):
    """Whether ``value`` is an integer, Python's or NumPy's (a bool is not a number here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def real(name, value, low=None, high=None, low_open=False, finite=True):
    """A real number as a float (bools are refused: they are not numbers here), finite unless
    ``finite=False``, within [low, high] (``low_open``: > low) where given (NaN is within no
    bound)."""
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and not (value > low or (value == low and not low_open)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and not value <= high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


_real = real


def positive(name, value, finite=True):
    """A real number > 0, finite unless ``finite=False`` (then +Inf passes, NaN does not)."""
    return real(name, value, 0, low_open=True, finite=finite)


def nonnegative(name, value):
    """A finite real number >= 0."""
    return real(name, value, 0)


def integer(name, value, minimum=None, maximum=None):
    """An int within [minimum, maximum] where given (Python or NumPy integers; bools are
    refused)."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def real_vector(name, value):
    """A non-empty 1-D float64 copy of a real array-like (complex, object and bool-free checks
    by dtype; the values themselves are not checked)."""
    if isinstance(value, np.ndarray) and (not np.issubdtype(value.dtype, np.number)
                                          or np.issubdtype(value.dtype, np.complexfloating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of real numbers, got {value!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    return arr


def at_least(minimum):
    """The rule "an integer >= ``minimum``"."""
    return lambda name, value: integer(name, value, minimum)


def closed_unit(name, value):
    """A finite real number in [0, 1]."""
    value = _real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def decay_rate(name, value):
    """A finite real number in [0, 1): a decay rate (an EMA's beta)."""
    value = _real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def betas(count):
    """A checker for a tuple of ``count`` decay rates, each in [0, 1)."""
    def check(name, value):
        try:
            items = tuple(value)
        except TypeError:
            raise TypeError(f"{name} must be a tuple of {count} floats, got {value!r}") from None
        if len(items) != count:
            raise ValueError(f"{name} must have {count} entries, got {len(items)}")
        # every entry a real number first, then the ranges (a TypeError outranks a ValueError)
        items = tuple(_real(f"{name}[{i}]", b) for i, b in enumerate(items))
        return tuple(decay_rate(f"{name}[{i}]", b) for i, b in enumerate(items))
    return check


# ----------------------------------------------------------------------------- choices, None
def choice(name, value, options):
    """``value`` if it equals one of ``options`` (a bool never does: True is not 1 here), else
    ValueError listing them."""
    options = tuple(options)
    try:
        found = not isinstance(value, (bool, np.bool_)) and value in options
    except (TypeError, ValueError):  # a value whose == is not a truth value (an array)
        found = False
    if not found:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def one_of(*options):
    """The rule "one of ``options``" (see :func:`choice`)."""
    return lambda name, value: choice(name, value, options)


def optional(check, default=None):
    """The rule "None, which gives ``default``, or a value passing ``check``"."""
    return lambda name, value: default if value is None else check(name, value)


def nonfinite_policy(name, value):
    return choice(name, value, NONFINITE_POLICIES)


def scale_limit(dtype):
    """The largest value a *scale* hyperparameter (lr, eps, weight_decay, momentum,
    initial_accumulator, v_init) may take in an optimiser over arrays of ``dtype``:
    ``finfo(dtype).max ** 0.25``, about 4.29e9 for float32 and 1.16e77 for float64.

    Why a bound at all: the kernels round what they derive from the hyperparameters (lr / (1 -
    beta1^t), 1 - lr * weight_decay, ...) to the arrays' dtype, and the C core refuses values
    above 1e300. A hyperparameter within this bound keeps every such coefficient finite even in
    the worst case: lr / (1 - beta1) is at most 2**53 * lr (beta1 < 1 in double), a product of
    two bounded values is at most sqrt(max), and Yogi's first step multiplies that by
    sqrt(initial_accumulator); all stay below the dtype's maximum. (A run can still diverge to
    Inf over many steps, as with any too-large learning rate: the bound is on the
    hyperparameters, not on the trajectory.)"""
    return float(np.finfo(dtype).max) ** 0.25


def within_scale_limit(name, value, dtypes):
    """ValueError naming ``name`` if ``value`` exceeds :func:`scale_limit` of any of ``dtypes``
    (the strictest one decides)."""
    for dtype in sorted(set(np.dtype(d) for d in dtypes), key=lambda d: d.itemsize):
        limit = scale_limit(dtype)
        if abs(value) > limit:
            raise ValueError(f"{name} must be <= {limit:.4g} with {dtype} parameters "
                             f"(finfo({dtype}).max ** 0.25, madam's bound on scale "
                             f"hyperparameters: beyond it a kernel coefficient could overflow), "
                             f"got {value!r}")
    return value


class Hyper:
    """A hyperparameter attribute, validated whenever it is set (construction or later).

    ``scale=True`` marks a magnitude (lr, eps, weight_decay, ...): once the owner has its
    parameters (``_params``), the value must also be within :func:`scale_limit` of their
    dtypes. Optimisers set hyperparameters after the parameters, so the bound applies at
    construction and at every later assignment, before anything is stored."""

    def __init__(self, check, scale=False):
        self.check = check
        self.scale = scale

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__[self.name]

    def __set__(self, obj, value):
        value = self.check(self.name, value)
        params = obj.__dict__.get("_params")
        if self.scale and params:
            within_scale_limit(self.name, value, [p.dtype for p in params])
        obj.__dict__[self.name] = value
