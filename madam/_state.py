"""Reading a state dict: the checks every ``load_state_dict`` shares (optimisers, solvers,
MAdam, MADA). Each raises naming the key, before the caller changes anything."""
import numbers

import numpy as np


def plain(value):
    """Undo np.savez's wrapping: 0-d arrays to Python scalars, 1-d arrays to tuples."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else tuple(value.tolist())
    return value.item() if isinstance(value, np.generic) else value


def scalar(sd, key, kind):
    """``sd[key]`` as an int or a str (``kind``); ValueError if missing, TypeError if another
    type (bools are not ints here)."""
    if key not in sd:
        raise ValueError(f"state_dict lacks {key!r}")
    value = plain(sd[key])
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind is str and isinstance(value, str):
        return value
    raise TypeError(f"state_dict[{key!r}] must be {kind.__name__}, got {value!r}")


def array(sd, key, shape_ok, what):
    """``sd[key]`` as a finite float64 array whose shape passes ``shape_ok`` (``what`` says
    which shapes, for the message)."""
    if key not in sd:
        raise ValueError(f"state_dict lacks {key!r}")
    arr = np.array(sd[key], dtype=np.float64)
    if not shape_ok(arr.shape):
        raise ValueError(f"state_dict[{key!r}] has shape {arr.shape}, expected {what}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"state_dict[{key!r}] must be finite")
    return arr


def check_header(sd, key, owner, what, fmt):
    """``sd[key]`` must name the class ``owner`` (a ``what``: optimiser, solver) and
    ``sd['format']`` must be ``fmt``."""
    kind = scalar(sd, key, str)
    if kind != owner:
        raise ValueError(f"state_dict[{key!r}] is {kind!r}, this {what} is {owner}")
    if scalar(sd, "format", int) != fmt:
        raise ValueError(f"state_dict['format'] must be {fmt}")


def check_counts(maximum, **counts):
    """Counters (step_count, skipped_steps, ...) must lie in [0, maximum]."""
    for key, value in counts.items():
        if not 0 <= value <= maximum:
            raise ValueError(f"state_dict[{key!r}] must be in [0, 2**53], got {value}")
