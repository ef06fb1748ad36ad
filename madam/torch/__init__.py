"""madam.torch: madam's fused C optimisers as ``torch.optim`` optimisers.

``SGD``, ``Adam``, ``AdamW``, ``AMSGrad``, ``AVGrad``, ``Yogi``, ``Adan``, ``Lion`` and ``MADA``
are ``torch.optim.Optimizer`` subclasses that run the C kernels of the NumPy classes of the same
name directly on the memory of CPU float32/float64 tensors (no copy); ``MAdam`` is the
multi-objective optimiser (docs/torch-madam.md). ``import madam`` never imports torch: only
``import madam.torch`` does. See docs/torch.md.

    model = torch.nn.Linear(10, 1)
    opt = madam.torch.Adam(model.parameters(), lr=1e-3)
    loss = model(x).square().mean(); loss.backward(); opt.step(); opt.zero_grad()
"""
try:
    import torch  # the real PyTorch (imports are absolute), here only to check it is installed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('madam.torch needs PyTorch, an optional extra: pip install "madam[torch]" '
                      "(on Linux, the CPU build first: pip install torch --index-url "
                      "https://download.pytorch.org/whl/cpu)") from exc
del torch

from .mada import MADA
from .optim import SGD, AMSGrad, AVGrad, Adam, Adan, AdamW, Lion, Yogi

__all__ = ["SGD", "Adam", "AdamW", "AMSGrad", "AVGrad", "Yogi", "Adan", "Lion", "MADA", "MAdam"]


def __getattr__(name):
    # MAdam lives in madam/torch/madam.py (written separately); imported on first use so that
    # the first-order optimisers never depend on it
    if name == "MAdam":
        from .madam import MAdam
        return MAdam
    raise AttributeError(f"module 'madam.torch' has no attribute {name!r}")
