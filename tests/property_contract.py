"""What the property suites (test_properties.py, test_properties_moo.py) share: the example
budget per target, a bit-exact image of state, and the check every refusal must pass."""
import struct

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import madam
from madam._core import CoreError

NAN, INF = float("nan"), float("inf")
SANE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
NONFINITE = st.sampled_from([NAN, INF, -INF])
DTYPES = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


def budget(fraction):
    """max_examples for a target: a fraction of the active profile's (at least 10)."""
    return max(10, int(settings.default.max_examples * fraction))


def freeze(value):
    """A comparable, bit-exact image of (nested) state: arrays by bytes, floats by bits, a
    Generator by its state."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (float, np.floating)):
        return ("float", struct.pack("<d", float(value)))
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(freeze(v) for v in value)
    if isinstance(value, np.random.Generator):
        return freeze(value.bit_generator.state)
    if isinstance(value, (int, str, bool, type(None), np.integer, np.bool_)):
        return value
    return ("object", type(value).__name__)


def check_error(exc, names):
    """The exception is of an allowed type and its message names one of ``names``."""
    assert not isinstance(exc, (CoreError, np.linalg.LinAlgError)), \
        f"{type(exc).__name__} escaped: {exc}"
    assert type(exc) in (TypeError, ValueError, madam.NonFiniteError), \
        f"unexpected exception type {type(exc).__name__}: {exc}"
    msg = str(exc)
    assert any(n in msg for n in names), f"message {msg!r} names none of {sorted(names)}"


def attempt(fn, *args, **kwargs):
    """(result, None) or (None, the exception): every exception is then checked by check_error."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - checked by check_error
        return None, exc
