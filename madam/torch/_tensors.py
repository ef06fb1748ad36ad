"""Checks shared by madam.torch: which tensors madam's C kernels may update in place.

The kernels read and write raw memory, so a tensor is accepted only when its storage *is* the
memory a NumPy view of it would see: a CPU tensor, float32 or float64, contiguous. Anything else
(CUDA, bf16/fp16, a non-contiguous view) would need a copy, and updating a copy in place breaks
the contract of ``torch.optim`` (the model's own tensor must change), so it is refused with an
error naming the parameter, never copied silently.
"""
import numpy as np
import torch

#: The torch dtypes the kernels run on.
FLOAT_TYPES = (torch.float32, torch.float64)


def check_tensor(tensor, name):
    """Raise TypeError/ValueError naming ``name`` unless ``tensor`` is a contiguous CPU float32 or
    float64 tensor; returns it."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.device.type != "cpu":
        raise ValueError(f"{name} is on {tensor.device}: madam.torch runs its C kernels on CPU "
                         "memory only (move the model with .cpu(), or use torch.optim on the "
                         "device)")
    if tensor.dtype not in FLOAT_TYPES:
        raise TypeError(f"{name} has dtype {tensor.dtype}: madam.torch supports float32 and "
                        "float64 (convert the model with .float() or .double())")
    if tensor.is_sparse or tensor.layout != torch.strided:
        raise TypeError(f"{name} has layout {tensor.layout}: only dense (strided) tensors")
    if not tensor.is_contiguous():
        raise ValueError(f"{name} is not contiguous: madam.torch updates parameters in place "
                         "and a contiguous copy would not be the model's tensor (make the "
                         "parameter contiguous before building the optimiser)")
    return tensor


def numpy_view(tensor, name):
    """A NumPy array sharing ``tensor``'s memory (no copy), after :func:`check_tensor`."""
    check_tensor(tensor, name)
    return tensor.detach().numpy()


#: The NumPy dtype of each accepted torch dtype (the kernels are looked up by NumPy dtype).
NUMPY_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}


def param_label(i, j, group=None):
    """How messages name parameter ``j`` of param group ``i``: ``param_groups[i]['params'][j]``,
    followed by its name in parentheses when the optimiser was given ``named_parameters()``."""
    label = f"param_groups[{i}]['params'][{j}]"
    names = None if group is None else group.get("param_names")
    if names is not None and j < len(names):
        label += f" ({names[j]!r})"
    return label


def check_grad(grad, param, name):
    """:func:`check_tensor` on a gradient (``name`` names it), plus: the dtype and shape of its
    parameter. torch's ``.grad`` setter already refuses most mismatches, but a parameter whose
    ``.data`` was replaced (``model.double()`` after backward) keeps the old gradient."""
    check_tensor(grad, name)
    if grad.dtype != param.dtype:
        raise TypeError(f"{name} has dtype {grad.dtype} but its parameter has {param.dtype}")
    if grad.shape != param.shape:
        raise ValueError(f"{name} has shape {tuple(grad.shape)} but its parameter has "
                         f"{tuple(param.shape)}")
    return grad


def span(tensor, name):
    """(first byte, end byte, name) of a contiguous tensor's memory, for overlap checks."""
    start = tensor.data_ptr()
    return (start, start + tensor.numel() * tensor.element_size(), name)
