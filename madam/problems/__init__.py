r"""Multi-objective test problems with analytic Jacobians and exact Hessian-vector products.

Every problem maps a flat parameter vector ``x`` of shape ``(n,)`` to ``C`` losses and implements
the :class:`Problem` interface::

    p = madam.problems.get("zdt1", n=30, dtype=np.float32)
    x = p.initial_points(1, np.random.default_rng(0))[0]
    f = p.losses(x)                      # (C,)
    J = p.jacobian(x)                    # (C, n), analytic
    Hv = p.hvp(x, v, i)                  # exact Hessian of f_i at x times v, (n,)
    p.project(x)                         # clip into the box (in place) for box-constrained problems
    batch = p.new_batch(rng)             # stochastic problems: a minibatch for losses(x, batch)
    p.pareto_front(100), p.pareto_set(100)   # where known, else None

Problems: :func:`names` lists the registered names and :func:`get` builds one by name;
:func:`entries` gives each one's class, default arguments and a one-line description (the
registry, ``_REGISTRY`` below, is their one source: the docs' table of problems is generated from
it, with C and n of the default-sized problem).

Conventions common to all problems:

- ``dtype`` is float32 or float64 (default); every returned array has the problem's dtype and the
  arithmetic runs in it. Random data (teachers, data sets, minibatches) are drawn in float64 and
  rounded, so the float32 and float64 variants of a problem see the same data.
- Inputs are validated: ``x`` and ``v`` must hold real numbers, have shape ``(n,)`` and be finite
  (they are cast to the problem's dtype); points of a box-constrained problem must lie in the box
  (call :meth:`Problem.project` after an optimiser step). Errors are TypeError/ValueError naming
  the argument.
- ``hvp`` is the exact Hessian-vector product, computed by hand (no finite differences). Where an
  objective is not twice differentiable everywhere (``smooth`` is False) the class docstring says
  which almost-everywhere Hessian ``hvp`` returns at the kinks.
"""
from .analytic import (VLMOP2, ZDT1, ZDT2, AMOOSelection, AMOOSpecification, CAGradToy,
                       DiagonalQuadratics)
from .base import Batch, Problem
from .learning import MultiTaskRegression, PowerLossMLP, RealDataMTL, TeacherStudent

__all__ = ["Problem", "Batch", "CAGradToy", "ZDT1", "ZDT2", "VLMOP2", "DiagonalQuadratics",
           "AMOOSpecification", "AMOOSelection", "TeacherStudent", "MultiTaskRegression",
           "RealDataMTL", "PowerLossMLP", "get", "names", "entries"]

# name -> (class, default arguments, what it is): the one list of problems (names(), get(),
# entries() and the docs' table read it)
_REGISTRY = {
    "cagrad_toy": (CAGradToy, {}, "CAGrad's toy (Liu et al. 2021), with CAGrad's starts; kinks "
                   "follow PyTorch's autograd of the reference code"),
    "nashmtl_toy": (CAGradToy, {"f1_scale": 0.1, "starts": "nashmtl"},
                    "the same with f1 scaled by 0.1, with Nash-MTL's and FAMO's starts"),
    "zdt1": (ZDT1, {}, "box [0, 1]^n, convex front"),
    "zdt2": (ZDT2, {}, "box [0, 1]^n, concave front"),
    "vlmop2": (VLMOP2, {}, "box [-2, 2]^n, concave front"),
    "fonseca_fleming": (VLMOP2, {"n": 3, "bound": 4.0}, "box [-4, 4]^n, concave front"),
    "amoo_specification": (AMOOSpecification, {}, "the AMOO paper's \"specification\" example "
                           "(aligned objectives)"),
    "amoo_selection": (AMOOSelection, {}, "the AMOO paper's \"selection\" example (aligned "
                       "objectives)"),
    "teacher_student": (TeacherStudent, {}, "AMOO's 2-layer ReLU teacher-student MLP, quadratic "
                        "losses, hand-written R-op HVP"),
    "mtl_regression": (MultiTaskRegression, {}, "shared low-rank linear model, conflicting tasks"),
    "linnerud_mtl": (RealDataMTL, {"dataset": "linnerud"}, "the Linnerud data (bundled, as "
                     "scikit-learn ships it), shared-bottom MLP"),
    "wine_mtl": (RealDataMTL, {"dataset": "wine"}, "the UCI wine data (bundled, as scikit-learn "
                 "ships it), shared-bottom MLP, 3 one-vs-rest tasks"),
    "power_loss_mlp": (PowerLossMLP, {}, "the AMOO ICML code's power losses on a teacher MLP"),
}


def names():
    """The registered problem names, sorted."""
    return sorted(_REGISTRY)


def entries():
    """The registry in registration order: (name, class, default arguments, description) per
    problem (a copy of the defaults)."""
    return [(name, cls, dict(defaults), what) for name, (cls, defaults, what) in _REGISTRY.items()]


def get(name, **kwargs):
    """Build the problem registered as ``name``; keyword arguments override its defaults
    (e.g. ``get("teacher_student", hidden=16, batch_size=64, dtype=np.float32)``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown problem name {name!r}; known: {', '.join(names())}")
    cls, defaults, _ = _REGISTRY[name]
    problem = cls(**{**defaults, **kwargs})
    problem.name = name
    return problem
