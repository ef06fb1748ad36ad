"""Bitwise snapshots of an optimiser and its parameters, to prove that a failed call changed nothing."""

import numpy as np


def _freeze(value):
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    return value


def freeze_state(state_dict):
    """A state_dict as a comparable dict (arrays compared bit for bit, NaNs included)."""
    return {k: _freeze(v) for k, v in state_dict.items()}


def snapshot(opt, params):
    """Parameters (bytes), state_dict (bytes), step_count and skipped_steps."""
    arrays = [params] if isinstance(params, np.ndarray) else list(params)
    return {
        "params": [_freeze(p) for p in arrays],
        "state": freeze_state(opt.state_dict()),
        "step_count": opt.step_count,
        "skipped_steps": getattr(opt, "skipped_steps", None),
    }


def assert_unchanged(before, opt, params):
    after = snapshot(opt, params)
    for key in before:
        assert after[key] == before[key], f"{key} changed"
