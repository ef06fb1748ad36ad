"""Plain-NumPy reference implementations of madam's optimisers.

Written from the per-element formulas in ``cmadam/include/cmadam.h`` (the kernel comments), in the
operation order written there, and independent of madam (imports only NumPy).

Every class works on one flat parameter vector ``p`` (float32 or float64) that it owns and updates in
place; the kernels are element-wise, so a list of arrays is the same as its concatenation.  Scalar
coefficients (``1 - beta``, ``lr / bc1``, ``sqrt(bc2)``, ``1 - lr * wd``) are Python floats, i.e.
computed in double; NumPy 2 (NEP 50) rounds a Python float once to the array's dtype when it meets a
float32 array, which is exactly the C kernels' convention.  All element arithmetic therefore runs in
the element type, so float64 agrees with the C core to the last bit or so (the header promises the
same order and no fused multiply-adds).

Constructor defaults equal madam's, so ``Ref(p, **kw)`` and ``madam.X(params, **kw)`` take the same
keyword arguments (except ``nonfinite``).

Each class also carries the test settings of its optimiser, which ``tests/cases.py`` collects into
the tables every table-driven test runs over (a new optimiser adds them here and nowhere else):

* ``defaults``: the constructor signature of the API contract, defaults included (docs:
  notes/python_api.md); test_api.py checks both madam's class and this reference against it.
* ``cases``: ``(id, kwargs)`` pairs; the first, ``"<Name>-defaults"``, sets only lr, the others
  switch on the non-default paths. The learning rates make both test problems (Rosenbrock with
  gradients ~2e2 at the start, the quadratic with Hessian eigenvalues up to 1e3) move visibly in
  200 steps yet stay finite: plain/heavy-ball SGD needs lr * L < 2 (1 + momentum), i.e.
  lr < 2e-3 at L ~ 1.3e3, so SGD gets lr = 2e-4; the Adam family's steps are ~lr per element,
  so lr = 1e-2 (0.01 per step, up to ~2 in 200 steps); Lion's steps are exactly lr per element.
* ``full_cases``: the ids of the cases with the most paths switched on, for the tests that check
  plumbing rather than arithmetic (state round trips, threads).
* ``nonnegative``: the state buffers (state_dict names) that are second moments, >= 0 in every
  reachable state. An independent list, written from the formulas here, so that test_state.py
  catches a class that forgets to declare one in ``_nonnegative_buffers``.

The attributes are not inherited: each class states its own (test_runs.py checks that).
"""

import math

import numpy as np


class _Ref:
    def __init__(self, p):
        self.p = np.array(p, copy=True)
        self.t = 0

    def _zeros(self, fill=0.0):
        return np.full_like(self.p, fill)

    def step(self, g):
        g = np.asarray(g)
        assert g.shape == self.p.shape and g.dtype == self.p.dtype
        self.t += 1
        self._step(g)


class SGD(_Ref):
    """SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD's convention).

    Step t >= 1::

        if wd != 0:  g = g + wd * p
        if momentum != 0:
            buf = g                                        (t == 1)
            buf = momentum * buf + (1 - dampening) * g     (t > 1)
            g   = g + momentum * buf  if nesterov  else  g = buf
        p = p - lr * g
    """

    defaults = dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    cases = (
        ("SGD-defaults", dict(lr=2e-4)),
        ("SGD-momentum-dampening-wd",
         dict(lr=2e-4, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
        ("SGD-nesterov-wd", dict(lr=2e-4, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    )
    full_cases = ("SGD-momentum-dampening-wd", "SGD-nesterov-wd")
    nonnegative = ()

    def __init__(self, p, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(p)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buf = None

    def _step(self, g):
        p = self.p
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            if self.t == 1:
                self.buf = g.copy()
            else:
                self.buf = self.momentum * self.buf + (1 - self.dampening) * g
            g = g + self.momentum * self.buf if self.nesterov else self.buf
        p[...] = p - self.lr * g


class Adam(_Ref):
    """Adam (Kingma & Ba) with L2 weight decay; base of AdamW, AMSGrad and AVGrad.

    Step t >= 1, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t::

        AdamW:          p = p * (1 - lr * wd)
        Adam (L2):      g = g + wd * p                 (if wd != 0)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g * g)
        s = v                                          (Adam, AdamW)
        s = aux = max(aux, v)                          (AMSGrad, max of the uncorrected v)
        s = aux = (v + (t - 1) * aux) / t              (AVGrad, running time average of v)
        p = p - (lr / bc1) * (m / (sqrt(s) / sqrt(bc2) + eps))

    m, v, aux start at zero.
    """

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    cases = (
        ("Adam-defaults", dict(lr=1e-2)),
        ("Adam-wd-betas", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    )
    full_cases = ("Adam-wd-betas",)
    nonnegative = ("exp_avg_sq",)

    decoupled = False

    def __init__(self, p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(p)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.m, self.v, self.aux = self._zeros(), self._zeros(), self._zeros()

    def _second_moment(self):
        return self.v

    def _step(self, g):
        p, t, lr, wd = self.p, self.t, self.lr, self.weight_decay
        beta1, beta2 = self.betas
        bc1, bc2 = 1 - beta1**t, 1 - beta2**t
        if self.decoupled:
            p[...] = p * (1 - lr * wd)
        elif wd != 0:
            g = g + wd * p
        self.m = beta1 * self.m + (1 - beta1) * g
        self.v = beta2 * self.v + (1 - beta2) * (g * g)
        s = self._second_moment()
        p[...] = p - (lr / bc1) * (self.m / (np.sqrt(s) / math.sqrt(bc2) + self.eps))


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled decay ``p = p * (1 - lr * wd)`` first."""

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    cases = (
        ("AdamW-defaults", dict(lr=1e-2)),
        ("AdamW-wd", dict(lr=1e-2, betas=(0.85, 0.995), weight_decay=0.1)),
    )
    full_cases = ("AdamW-wd",)
    nonnegative = ("exp_avg_sq",)

    decoupled = True

    def __init__(self, p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(p, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class AMSGrad(Adam):
    """AMSGrad (Reddi et al.): Adam with ``s = aux = max(aux, v)`` (uncorrected v, as torch)."""

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    cases = (
        ("AMSGrad-defaults", dict(lr=1e-2)),
        ("AMSGrad-wd", dict(lr=1e-2, weight_decay=1e-2)),
    )
    full_cases = ("AMSGrad-wd",)
    nonnegative = ("exp_avg_sq", "max_exp_avg_sq")

    def _second_moment(self):
        self.aux = np.maximum(self.aux, self.v)
        return self.aux


class AVGrad(Adam):
    """AVGrad (MADA): Adam with ``s = aux = (v + (t - 1) * aux) / t``, the time average of v."""

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    cases = (
        ("AVGrad-defaults", dict(lr=1e-2)),
        ("AVGrad-wd", dict(lr=1e-2, weight_decay=1e-2)),
    )
    full_cases = ("AVGrad-wd",)
    nonnegative = ("exp_avg_sq", "avg_exp_avg_sq")

    def _second_moment(self):
        t = self.t
        self.aux = (self.v + float(t - 1) * self.aux) / float(t)
        return self.aux


class Yogi(_Ref):
    """Yogi (Zaheer et al. 2018), L2 weight decay, m and v start at ``initial_accumulator``.

    Step t >= 1, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, sign(0) = 0::

        if wd != 0:  g = g + wd * p
        m  = beta1 * m + (1 - beta1) * g
        g2 = g * g
        v  = v - ((1 - beta2) * sign(v - g2)) * g2
        p  = p - (lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps))
    """

    defaults = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.0,
                    initial_accumulator=1e-6)
    cases = (
        ("Yogi-defaults", dict(lr=1e-2)),
        ("Yogi-wd-acc", dict(lr=1e-2, weight_decay=1e-2, initial_accumulator=1e-2, eps=1e-4)),
    )
    full_cases = ("Yogi-wd-acc",)
    nonnegative = ("exp_avg_sq",)

    def __init__(self, p, lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.0,
                 initial_accumulator=1e-6):
        super().__init__(p)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.m = self._zeros(initial_accumulator)
        self.v = self._zeros(initial_accumulator)

    def _step(self, g):
        p, t, lr, wd = self.p, self.t, self.lr, self.weight_decay
        beta1, beta2 = self.betas
        bc1, bc2 = 1 - beta1**t, 1 - beta2**t
        if wd != 0:
            g = g + wd * p
        self.m = beta1 * self.m + (1 - beta1) * g
        g2 = g * g
        self.v = self.v - ((1 - beta2) * np.sign(self.v - g2)) * g2
        p[...] = p - (lr / bc1) * (self.m / (np.sqrt(self.v) / math.sqrt(bc2) + self.eps))


class Adan(_Ref):
    """Adan (Xie et al. 2022), betas in the official code's convention (0.98, 0.92, 0.99).

    Step t >= 1, bc_k = 1 - beta_k^t::

        D  = 0 (t == 1),  g - prev (t > 1)
        m  = beta1 * m + (1 - beta1) * g
        md = beta2 * md + (1 - beta2) * D
        u  = g + beta2 * D
        nn = beta3 * nn + (1 - beta3) * (u * u)
        r  = (m / bc1 + (beta2 / bc2) * md) / (sqrt(nn) / sqrt(bc3) + eps)
        proximal:  p = (p - lr * r) / (1 + lr * wd)
        else:      p = p * (1 - lr * wd) - lr * r
        prev = g
    """

    defaults = dict(lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, proximal=True)
    cases = (
        ("Adan-defaults", dict(lr=1e-2)),
        ("Adan-proximal-wd", dict(lr=1e-2, weight_decay=2e-2, proximal=True)),
        ("Adan-decoupled-wd", dict(lr=1e-2, weight_decay=2e-2, proximal=False)),
    )
    full_cases = ("Adan-proximal-wd", "Adan-decoupled-wd")
    nonnegative = ("exp_avg_sq",)

    def __init__(self, p, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0,
                 proximal=True):
        super().__init__(p)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.proximal = proximal
        self.m, self.md, self.nn = self._zeros(), self._zeros(), self._zeros()
        self.prev = self._zeros()

    def _step(self, g):
        p, t, lr, wd = self.p, self.t, self.lr, self.weight_decay
        beta1, beta2, beta3 = self.betas
        bc1, bc2, bc3 = 1 - beta1**t, 1 - beta2**t, 1 - beta3**t
        d = np.zeros_like(g) if t == 1 else g - self.prev
        self.m = beta1 * self.m + (1 - beta1) * g
        self.md = beta2 * self.md + (1 - beta2) * d
        u = g + beta2 * d
        self.nn = beta3 * self.nn + (1 - beta3) * (u * u)
        r = (self.m / bc1 + (beta2 / bc2) * self.md) / (np.sqrt(self.nn) / math.sqrt(bc3) + self.eps)
        if self.proximal:
            p[...] = (p - lr * r) / (1 + lr * wd)
        else:
            p[...] = p * (1 - lr * wd) - lr * r
        self.prev = g.copy()


class Lion(_Ref):
    """Lion (Chen et al. 2023), decoupled weight decay, sign(0) = 0, no step counter::

        p = p * (1 - lr * wd)
        c = beta1 * m + (1 - beta1) * g
        p = p - lr * sign(c)
        m = beta2 * m + (1 - beta2) * g
    """

    defaults = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0)
    cases = (
        ("Lion-defaults", dict(lr=1e-3)),
        ("Lion-wd", dict(lr=1e-3, betas=(0.95, 0.98), weight_decay=0.1)),
    )
    full_cases = ("Lion-wd",)
    nonnegative = ()

    def __init__(self, p, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(p)
        self.lr, self.betas, self.weight_decay = lr, tuple(betas), weight_decay
        self.m = self._zeros()

    def _step(self, g):
        p, lr = self.p, self.lr
        beta1, beta2 = self.betas
        p[...] = p * (1 - lr * self.weight_decay)
        c = beta1 * self.m + (1 - beta1) * g
        p[...] = p - lr * np.sign(c)
        self.m = beta2 * self.m + (1 - beta2) * g


ALL = {cls.__name__: cls for cls in (SGD, Adam, AdamW, AMSGrad, AVGrad, Yogi, Adan, Lion)}
