"""The table of optimiser settings every optimiser test runs over.

Each case is (id, optimiser name, keyword arguments).  The learning rates make both test problems
(Rosenbrock with gradients ~2e2 at the start, the quadratic with Hessian eigenvalues up to 1e3) move
visibly in 200 steps yet stay finite: plain/heavy-ball SGD needs lr * L < 2 (1 + momentum), i.e.
lr < 2e-3 at L ~ 1.3e3, so SGD gets lr = 2e-4; the Adam family's steps are ~lr per element, so
lr = 1e-2 (0.01 per step, up to ~2 in 200 steps); Lion's steps are exactly lr per element.
"""

import madam.optim

# every first-order optimiser madam registers (a new one joins every table-driven test)
OPTIMISERS = tuple(cls.__name__ for cls in madam.optim.first_order().values())

# (id, name, kwargs): "defaults" cases set only lr, the others switch on the non-default paths.
CASES = (
    ("SGD-defaults", "SGD", dict(lr=2e-4)),
    ("SGD-momentum-dampening-wd", "SGD", dict(lr=2e-4, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("SGD-nesterov-wd", "SGD", dict(lr=2e-4, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("Adam-defaults", "Adam", dict(lr=1e-2)),
    ("Adam-wd-betas", "Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    ("AdamW-defaults", "AdamW", dict(lr=1e-2)),
    ("AdamW-wd", "AdamW", dict(lr=1e-2, betas=(0.85, 0.995), weight_decay=0.1)),
    ("AMSGrad-defaults", "AMSGrad", dict(lr=1e-2)),
    ("AMSGrad-wd", "AMSGrad", dict(lr=1e-2, weight_decay=1e-2)),
    ("AVGrad-defaults", "AVGrad", dict(lr=1e-2)),
    ("AVGrad-wd", "AVGrad", dict(lr=1e-2, weight_decay=1e-2)),
    ("Yogi-defaults", "Yogi", dict(lr=1e-2)),
    ("Yogi-wd-acc", "Yogi", dict(lr=1e-2, weight_decay=1e-2, initial_accumulator=1e-2, eps=1e-4)),
    ("Adan-defaults", "Adan", dict(lr=1e-2)),
    ("Adan-proximal-wd", "Adan", dict(lr=1e-2, weight_decay=2e-2, proximal=True)),
    ("Adan-decoupled-wd", "Adan", dict(lr=1e-2, weight_decay=2e-2, proximal=False)),
    ("Lion-defaults", "Lion", dict(lr=1e-3)),
    ("Lion-wd", "Lion", dict(lr=1e-3, betas=(0.95, 0.98), weight_decay=0.1)),
)

# One representative per optimiser (the case with the most paths switched on), for the tests that
# check plumbing rather than arithmetic (state round trips, threads).
FULL_CASES = tuple(c for c in CASES if c[0] in {
    "SGD-momentum-dampening-wd", "Adam-wd-betas", "AdamW-wd", "AMSGrad-wd", "AVGrad-wd",
    "Yogi-wd-acc", "Adan-decoupled-wd", "Lion-wd"} | {"SGD-nesterov-wd", "Adan-proximal-wd"})


def params(cases):
    """pytest.param list with readable ids."""
    import pytest  # here, so that benchmarks can import this table without pytest

    return [pytest.param(name, kw, id=cid) for cid, name, kw in cases]


# The constructor signatures of the API contract (docs: notes/python_api.md), defaults included.
CONTRACT_DEFAULTS = {
    "SGD": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
    "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
    "AMSGrad": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "AVGrad": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "Yogi": dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.0, initial_accumulator=1e-6),
    "Adan": dict(lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, proximal=True),
    "Lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0),
}
