"""Helpers shared by madam.torch's multi-objective modules (MAdam, the torchjd bridge, the
distributed optimiser): naming parameters in messages, turning tensors into the NumPy values
madam's solvers read, and state dicts that ``torch.save``/``torch.load(weights_only=True)``
store.
"""
import re

import numpy as np
import torch


def param_names(group):
    """The names errors use for the parameters of one param group: ``params[i]``, followed by
    the module's name in parentheses when the optimiser was given ``named_parameters()``."""
    names = group.get("param_names")
    count = len(group["params"])
    if names is None or len(names) != count:
        return [f"params[{i}]" for i in range(count)]
    return [f"params[{i}] ({name!r})" for i, name in enumerate(names)]


def numpy_values(value, name):
    """A preference or loss vector as NumPy: a tensor is detached and moved to the CPU (float32
    and float64 keep their dtype, which sets the simplex tolerance of a preference; other dtypes
    become float64); a sequence of scalar tensors or numbers becomes float64. The caller checks
    the values."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float64)
        return t.numpy().copy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value):
            if isinstance(v, torch.Tensor):
                if v.numel() != 1:
                    raise ValueError(f"{name}[{i}] must be a scalar, got a tensor of shape "
                                     f"{tuple(v.shape)}")
                out.append(float(v.detach().cpu().to(torch.float64).reshape(())))
            else:
                out.append(v)
        try:
            return np.array(out, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be real numbers or scalar tensors") from None
    raise TypeError(f"{name} must be a tensor, an array or a sequence of numbers, got "
                    f"{type(value).__name__}")


def to_torch_state(value):
    """A value of a NumPy state dict as something ``torch.load(weights_only=True)`` accepts:
    arrays become CPU tensors (copies, same dtype), NumPy scalars Python scalars; str, int,
    float, bool, None and tuples/lists of them stay."""
    if isinstance(value, np.ndarray):
        try:
            return torch.from_numpy(np.array(value, copy=True, order="C"))
        except TypeError:   # a dtype torch lacks: kept as (nested) Python lists
            return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(to_torch_state(v) for v in value)
    return value


def from_torch_state(value):
    """The inverse of :func:`to_torch_state`: tensors back to NumPy arrays (copies, same
    dtype)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, (list, tuple)):
        return type(value)(from_torch_state(v) for v in value)
    return value


def plain_number(value):
    """A 0-d tensor (torch accepts tensor learning rates) as a Python number; else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


_ROW_NAME = re.compile(r"\b(jacobian|direction)\[(\d+)\]")


def rename_rows(message, names):
    """A message of madam.MAdam about ``jacobian[k]`` / ``direction[k]`` retold with the
    parameter's name: ``the rows of params[k]`` / ``the direction of params[k]``."""
    def sub(match):
        k = int(match.group(2))
        who = names[k] if k < len(names) else f"params[{k}]"
        return f"the rows of {who}" if match.group(1) == "jacobian" else f"the direction of {who}"
    return _ROW_NAME.sub(sub, message)
