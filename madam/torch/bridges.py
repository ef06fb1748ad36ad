r"""madam's solvers inside torchjd: a :class:`torchjd.aggregation.Weighting` and an
:class:`~torchjd.aggregation.Aggregator` around any :mod:`madam.solvers` solver.

The extension point (torchjd 0.18): ``torchjd.aggregation.Weighting`` is an ``nn.Module`` whose
``forward(stat)`` returns the weights (m,); ``GramianWeightedAggregator(weighting)`` composes it
with torchjd's Gramian ``J @ J.T`` and returns ``weights @ J``, which is what ``jac_to_grad``
(autojac, after ``backward``/``mtl_backward``) stores in ``.grad``, and a Gramian weighting is
also what the autogram ``Engine`` feeds (``weights = weighting(engine.compute_gramian(losses))``).
For a solver that needs J itself (CAMOO), ``WeightedAggregator`` with a weighting of the matrix.

::

    from torchjd.autojac import backward, jac_to_grad
    aggregator = madam.torch.bridges.as_torchjd_aggregator(madam.solvers.NashMTL())
    backward(losses)
    jac_to_grad(model.parameters(), aggregator)   # .grad = w @ J, w from Nash-MTL
    optimizer.step()

Weights: ``solver.weights(G, losses)`` on the Gramian torchjd gives (``solver.solve(J, losses)``
on the matrix for J-only solvers), times ``solver.scale`` when ``natural=True`` (the default):
the method's own magnitude (UPGrad's, PCGrad's, CAGrad's sum of weights, DWA's C, Nash-MTL's
norm-clipped weights), which is torchjd's convention (its ``UPGradWeighting`` returns the natural
weights); ``natural=False`` returns madam's ``lam``, which sums to 1.

Loss values: torchjd hands a weighting only the Gramian. A solver that reads the losses (DWA,
EPO, Tchebycheff, PAMOO) gets them from :meth:`MadamWeighting.set_losses` (or the ``losses``
attribute), set before each aggregation and consumed by it (a second call without new losses
is a TypeError, not a silent reuse of stale values).
"""
import numpy as np
import torch
from torchjd import Stateful
from torchjd.aggregation import GramianWeightedAggregator, WeightedAggregator, Weighting

from ..madam_opt import _solver as _check_solver
from ._common import numpy_values

__all__ = ["MadamWeighting", "MadamGramianAggregator", "MadamMatrixAggregator",
           "as_torchjd_weighting", "as_torchjd_aggregator", "uses_gramian"]


def uses_gramian(solver):
    """Whether ``solver`` finds its weights from the Gramian alone (``weights(G, losses)``):
    every madam solver but CAMOO; a duck-typed solver when it has a callable ``weights``."""
    from ..solvers import Solver

    if isinstance(solver, Solver):
        cls = type(solver)
        return cls.weights is Solver.weights and cls._weights is not Solver._weights
    return callable(getattr(solver, "weights", None))


class MadamWeighting(Weighting, Stateful):
    """A torchjd ``Weighting`` whose weights come from a madam solver.

    solver: a :mod:`madam.solvers` instance or registry name (``"mgda"``, ``"upgrad"``, ...).
    stat: ``"gramian"`` (default where the solver has ``weights``): ``forward(G)`` on the
        (m, m) Gramian, for ``GramianWeightedAggregator`` and the autogram engine;
        ``"matrix"``: ``forward(J)`` on the (m, n) Jacobian via ``solver.solve``, for
        ``WeightedAggregator`` (the only way for CAMOO).
    natural: multiply madam's ``lam`` (sum 1) by ``solver.scale``, the method's own magnitude.

    The weights are a float tensor of the input's dtype and device, without a graph (madam's
    solvers run in NumPy: not differentiable). ``reset()`` resets the solver (torchjd's
    ``Stateful``); ``state_dict()`` (``nn.Module``'s) does not hold the solver's state: use
    ``weighting.solver.state_dict()``.
    """

    def __init__(self, solver, stat=None, natural=True):
        super().__init__()
        self.solver = _check_solver(solver)
        if self.solver is None:
            raise TypeError("MadamWeighting needs a solver, got None")
        gramian = uses_gramian(self.solver)
        if stat is None:
            stat = "gramian" if gramian else "matrix"
        if stat not in ("gramian", "matrix"):
            raise ValueError(f"stat must be 'gramian' or 'matrix', got {stat!r}")
        if stat == "gramian" and not gramian:
            raise TypeError(f"{type(self.solver).__name__} has no weights(gramian): it needs the "
                            "Jacobian itself (use stat='matrix', or as_torchjd_aggregator)")
        self.stat = stat
        self.natural = bool(natural)
        self.losses = None

    def set_losses(self, losses):
        """The loss values (m,) the next call hands the solver (tensors, arrays or numbers)."""
        self.losses = None if losses is None else numpy_values(losses, "losses")

    def forward(self, stat, /):
        if not isinstance(stat, torch.Tensor) or stat.ndim != 2:
            raise ValueError(f"{type(self).__name__} takes a 2-D tensor (the "
                             f"{'Gramian' if self.stat == 'gramian' else 'Jacobian'}), got "
                             f"{getattr(stat, 'shape', type(stat).__name__)}")
        array = stat.detach().cpu()
        if array.dtype not in (torch.float32, torch.float64):
            array = array.to(torch.float64)
        array = array.numpy()
        losses = None if self.losses is None else numpy_values(self.losses, "losses")
        if self.stat == "gramian":
            lam = self.solver.weights(array, losses)
        else:
            lam, _ = self.solver.solve(np.ascontiguousarray(array), losses)
        lam = np.asarray(lam, dtype=np.float64)
        if self.natural:
            lam = lam * float(getattr(self.solver, "scale", 1.0))
        self.losses = None          # consumed: the next aggregation needs its own
        return torch.as_tensor(lam, dtype=stat.dtype, device=stat.device)

    def reset(self):
        if callable(getattr(self.solver, "reset", None)):
            self.solver.reset()
        self.losses = None

    def extra_repr(self):
        return f"solver={self.solver!r}, stat={self.stat!r}, natural={self.natural}"


class _LossesMixin(Stateful):
    """What the two aggregators add to torchjd's: the madam weighting, ``set_losses`` and
    ``reset`` at the aggregator itself."""

    @property
    def madam_weighting(self):
        """The :class:`MadamWeighting` inside."""
        return self._madam_weighting[0]

    @property
    def solver(self):
        return self.madam_weighting.solver

    def set_losses(self, losses):
        """The loss values the next aggregation hands the solver (see :class:`MadamWeighting`)."""
        self.madam_weighting.set_losses(losses)

    def reset(self):
        self.madam_weighting.reset()

    def __repr__(self):
        return f"{type(self).__name__}({self.solver!r}, natural={self.madam_weighting.natural})"

    __str__ = __repr__


class MadamGramianAggregator(_LossesMixin, GramianWeightedAggregator):
    """``GramianWeightedAggregator`` over a :class:`MadamWeighting` (see
    :func:`as_torchjd_aggregator`)."""

    def __init__(self, weighting):
        super().__init__(weighting)
        self._madam_weighting = (weighting,)    # a tuple: not registered a second time


class MadamMatrixAggregator(_LossesMixin, WeightedAggregator):
    """``WeightedAggregator`` over a :class:`MadamWeighting` of the matrix (solvers that need J
    itself, such as CAMOO)."""

    def __init__(self, weighting):
        super().__init__(weighting)
        self._madam_weighting = (weighting,)


def as_torchjd_weighting(solver, natural=True):
    """A torchjd Gramian weighting (``Weighting[PSDMatrix]``) from a madam solver: use it with
    the autogram engine or ``GramianWeightedAggregator``. TypeError for a solver without
    ``weights`` (CAMOO): use :func:`as_torchjd_aggregator`."""
    return MadamWeighting(solver, stat="gramian", natural=natural)


def as_torchjd_aggregator(solver, natural=True):
    """A torchjd ``Aggregator`` from a madam solver, for ``jac_to_grad`` (which then returns
    the weights): a :class:`MadamGramianAggregator` (a ``GramianWeightedAggregator``) when the
    solver reads J only through its Gramian, so ``jac_to_grad(...,
    optimize_gramian_computation=True)`` works with it; else a :class:`MadamMatrixAggregator`
    (a ``WeightedAggregator``) whose weighting calls ``solver.solve`` on the matrix. Both have
    ``set_losses`` (for the solvers that read loss values), ``reset`` and ``solver``."""
    weighting = MadamWeighting(solver, natural=natural)
    if weighting.stat == "gramian":
        return MadamGramianAggregator(weighting)
    return MadamMatrixAggregator(weighting)
