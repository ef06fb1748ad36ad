"""Running madam's optimisers side by side with their peers in torch and pytorch_optimizer.

Used by test_optim_peers.py and benchmarks/peer_deviation.py.  Importing this module needs only
NumPy; torch and pytorch_optimizer are imported when a peer is built.

Conventions, and how each peer is set up to match madam (every difference named):

* torch.optim.SGD: the same formula (buf = g at the first step, then
  buf = momentum * buf + (1 - dampening) * g; Nesterov g + momentum * buf; L2 decay).  torch
  evaluates ``x.add_(y, alpha=a)`` with a fused multiply-add in its vectorised CPU loop, madam (built
  with -ffp-contract=off) does not: ~1 ulp per operation.
* torch.optim.Adam / AdamW / Adam(amsgrad=True): the same formulas (AdamW decays
  p *= 1 - lr * wd first; AMSGrad keeps the max of the *uncorrected* v, as madam).  torch updates
  m with ``m.lerp_(g, 1 - beta1)``, i.e. m + (1 - beta1) * (g - m), instead of
  beta1 * m + (1 - beta1) * g, and uses addcmul/addcdiv: different rounding, not bitwise.
* pytorch_optimizer.Yogi: m and v both start at ``initial_accumulator`` and both moments are
  bias-corrected, as madam.  Its weight decay is decoupled by default (``weight_decouple=True``);
  madam's Yogi uses L2 (g + wd * p), so the peer gets ``weight_decouple=False``.  m via lerp.
* pytorch_optimizer.Adan: betas in the official convention (0.98, 0.92, 0.99) as madam; the first
  gradient difference is 0 (it stores -g as "previous" at step 1); ``weight_decouple=False`` is the
  proximal update p = (p - lr * r) / (1 + lr * wd) (madam ``proximal=True``), ``True`` is
  p * (1 - lr * wd) - lr * r (madam ``proximal=False``).  It applies the two terms of r as two
  separate addcdiv's (lr / bc1 * m / den, then lr * beta2 / bc2 * md / den) where madam forms
  r = (m / bc1 + beta2 / bc2 * md) / den once: mathematically equal, rounded differently.
  ``max_grad_norm=0`` (its default) means no gradient clipping, as madam.
* pytorch_optimizer.Lion: decoupled weight decay p *= 1 - lr * wd (its default
  ``weight_decouple=True``), sign(0) = 0, c and m via lerp, as madam up to rounding; a rounding
  difference that flips sign(c) of an element whose c is ~0 moves that element by lr.

Each peer runs on CPU in two implementations: ``foreach=False`` (per-parameter loop) and the default
(``foreach=None``: torch picks the per-parameter loop on CPU, pytorch_optimizer its foreach path).
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

import problems
from cases import CASES


def _torch_sgd(kw):
    import torch
    return torch.optim.SGD, dict(lr=kw["lr"], momentum=kw.get("momentum", 0.0),
                                 dampening=kw.get("dampening", 0.0),
                                 weight_decay=kw.get("weight_decay", 0.0),
                                 nesterov=kw.get("nesterov", False))


def _adam_kw(kw, wd_default=0.0):
    return dict(lr=kw["lr"], betas=kw.get("betas", (0.9, 0.999)), eps=kw.get("eps", 1e-8),
                weight_decay=kw.get("weight_decay", wd_default))


def _torch_adam(kw):
    import torch
    return torch.optim.Adam, _adam_kw(kw)


def _torch_adamw(kw):
    import torch
    return torch.optim.AdamW, _adam_kw(kw, wd_default=1e-2)


def _torch_amsgrad(kw):
    import torch
    return torch.optim.Adam, dict(_adam_kw(kw), amsgrad=True)


def _po_yogi(kw):
    import pytorch_optimizer
    return pytorch_optimizer.Yogi, dict(
        lr=kw["lr"], betas=kw.get("betas", (0.9, 0.999)), eps=kw.get("eps", 1e-3),
        weight_decay=kw.get("weight_decay", 0.0),
        initial_accumulator=kw.get("initial_accumulator", 1e-6),
        weight_decouple=False)  # madam's Yogi decay is L2


def _po_adan(kw):
    import pytorch_optimizer
    return pytorch_optimizer.Adan, dict(
        lr=kw["lr"], betas=kw.get("betas", (0.98, 0.92, 0.99)), eps=kw.get("eps", 1e-8),
        weight_decay=kw.get("weight_decay", 0.0),
        weight_decouple=not kw.get("proximal", True))  # False = proximal


def _po_lion(kw):
    import pytorch_optimizer
    return pytorch_optimizer.Lion, dict(lr=kw["lr"], betas=kw.get("betas", (0.9, 0.99)),
                                        weight_decay=kw.get("weight_decay", 0.0))


# madam optimiser -> (peer name, module the peer needs, builder: madam kwargs -> (class, kwargs))
PEER_OF = {
    "SGD": ("torch.optim.SGD", "torch", _torch_sgd),
    "Adam": ("torch.optim.Adam", "torch", _torch_adam),
    "AdamW": ("torch.optim.AdamW", "torch", _torch_adamw),
    "AMSGrad": ("torch.optim.Adam(amsgrad)", "torch", _torch_amsgrad),
    "Yogi": ("pytorch_optimizer.Yogi", "pytorch_optimizer", _po_yogi),
    "Adan": ("pytorch_optimizer.Adan", "pytorch_optimizer", _po_adan),
    "Lion": ("pytorch_optimizer.Lion", "pytorch_optimizer", _po_lion),
}  # AVGrad has no published peer implementation

FOREACH = {"per-param": False, "default": None}


@dataclass(frozen=True)
class PeerCase:
    case_id: str  # id in cases.CASES
    name: str  # madam optimiser
    kwargs: dict  # madam keyword arguments
    peer: str
    module: str
    build: Callable

    def make(self, tensors, foreach):
        cls, kw = self.build(self.kwargs)
        return cls(tensors, foreach=foreach, **kw)


PEER_CASES = tuple(PeerCase(cid, name, kw, *PEER_OF[name]) for cid, name, kw in CASES
                   if name in PEER_OF)


def peer_trajectory(case, problem, dtype, steps, foreach=None):
    """Flat parameters after each of ``steps`` steps of the peer on ``problem`` (CPU)."""
    import torch
    tensors = [torch.from_numpy(a) for a in problem.arrays(problem.start(dtype))]
    opt = case.make(tensors, foreach)
    out = np.empty((steps, problem.n), dtype=dtype)
    with torch.no_grad():
        for k in range(steps):
            flat = problems.flatten([t.numpy() for t in tensors])
            for t, g in zip(tensors, problem.arrays(problem.grad(flat))):
                t.grad = torch.from_numpy(g)
            opt.step()
            out[k] = problems.flatten([t.numpy() for t in tensors])
    return out


def madam_trajectory(case, problem, dtype, steps):
    import madam
    ps = problem.split(problem.start(dtype))
    opt = getattr(madam, case.name)(ps, **case.kwargs)
    return problems.trajectory(problem, opt, ps, steps)


def deviation(case, problem, dtype, steps=200, foreach=None):
    """Largest normwise relative deviation of madam from the peer over the trajectory."""
    return problems.rel_dev(madam_trajectory(case, problem, dtype, steps),
                            peer_trajectory(case, problem, dtype, steps, foreach))
