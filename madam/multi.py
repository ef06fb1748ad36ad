"""The multi-objective step: one protocol for everything that steps on a Jacobian.

A multi-objective optimiser is anything with

    step(jacobian, losses=None, *, preference=None, direction=None) -> bool

that updates its parameters in place from the per-objective gradients ``jacobian`` (C rows, one
per objective, each shaped like the parameters) and the loss values ``losses`` (C,), and that
reports the weights it used in ``last_preference``. Two implement it:

* :class:`madam.MAdam`: the solver's weights lambda set the metric; Adam sees the whitened
  direction (``docs/madam.md``).
* :class:`Scalarized`: the solver's direction :math:`d = \\sum_i \\lambda_i g_i` handed to any
  first-order optimiser (Adam, SGD, ...), the usual way of combining an MOO solver with Adam.

The runner (:func:`madam.runs.run`) and the studies call only this protocol. ``isinstance(opt,
MultiObjectiveOptimizer)`` tells the two kinds of optimiser apart.
"""
import abc

import numpy as np

from .madam_opt import (MAdam, _preference, _solver, _solver_checkpoint, _solver_restore,
                        solver_keys_named)
from .solvers import _direction

__all__ = ["MultiObjectiveOptimizer", "Scalarized", "as_multi_objective"]


class MultiObjectiveOptimizer(abc.ABC):
    """The protocol (see the module doc). Registered, not inherited, by :class:`madam.MAdam`."""

    @abc.abstractmethod
    def step(self, jacobian, losses=None, *, preference=None, direction=None):
        """One step in place from the Jacobian; True if applied, False if skipped."""

    @property
    @abc.abstractmethod
    def last_preference(self):
        """The lambda (C,) of the last applied step, or None before the first."""


MultiObjectiveOptimizer.register(MAdam)


def _single_param(optimizer):
    """Scalarized steps one array: the solver works on (C, n) rows."""
    params = getattr(optimizer, "params", None)
    if isinstance(params, list) and len(params) == 1 and isinstance(params[0], np.ndarray):
        return params[0]
    raise ValueError("Scalarized needs an optimizer over one parameter array; for several, "
                     "concatenate them or use MAdam")


class Scalarized(MultiObjectiveOptimizer):
    """A solver's direction, stepped by a first-order optimiser.

    Each step: :math:`(\\lambda, d) = \\text{solver.solve}(J, f)` with
    :math:`d = \\sum_i \\lambda_i g_i`, then ``optimizer.step(d)``. With ``preference=`` the solver
    is not called and :math:`d = \\sum_i \\text{preference}_i g_i`; with ``direction=`` that d is
    used as given (the caller solved already).

    The step is transactional: if the optimiser refuses d (a non-finite direction under
    ``nonfinite="raise"``, a shape error), the solver's state (its random stream, loss history,
    warm start, ``scale`` and ``info``) is put back as it was, and the exception propagates. (A
    duck-typed solver without ``state_dict`` gets back only ``scale`` and ``info``.)

    optimizer: a madam first-order optimiser over one parameter array (Adam, SGD, Lion, ...).
    solver: a :class:`madam.solvers.Solver` instance or a registered name; None means every step
        needs ``preference=`` or ``direction=``.
    """

    def __init__(self, optimizer, solver):
        if isinstance(optimizer, MultiObjectiveOptimizer):
            raise TypeError("optimizer must be a first-order optimiser (it takes one direction); "
                            f"{type(optimizer).__name__} already steps on a Jacobian")
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"optimizer must have a step(direction) method, got "
                            f"{type(optimizer).__name__}")
        self._param = _single_param(optimizer)
        self.optimizer = optimizer
        self.solver = solver
        self._last_preference = None

    @property
    def solver(self):
        return self._solver

    @solver.setter
    def solver(self, value):
        self._solver = _solver(value)  # MAdam's rules: an instance, a registered name or None

    @property
    def last_preference(self):
        return None if self._last_preference is None else self._last_preference.copy()

    @property
    def params(self):
        return self.optimizer.params

    def _rows(self, jacobian):
        jac = np.asarray(jacobian) if not isinstance(jacobian, np.ndarray) else jacobian
        shape = self._param.shape
        if jac.ndim != len(shape) + 1 or jac.shape[1:] != shape:
            raise ValueError(f"jacobian must have shape (C,) + {shape}, got {jac.shape}")
        return jac.reshape(jac.shape[0], -1)

    def step(self, jacobian, losses=None, *, preference=None, direction=None):
        """One step: lambda and d from the solver (or ``preference=``/``direction=``), then the
        optimiser's step on d. Returns what the optimiser's step returns."""
        rows = self._rows(jacobian)
        lam = None
        if preference is not None:
            lam = _preference(preference, rows.shape[0])
        if direction is not None:
            d = direction
        elif lam is not None:
            d = _direction(rows, lam).reshape(self._param.shape)  # as Solver.solve forms d
        elif self._solver is None:
            raise TypeError("this Scalarized has no solver: pass preference= or direction=")
        else:
            return self._solve_and_step(rows, losses)
        applied = self.optimizer.step(d)
        if lam is not None:
            self._last_preference = lam
        return applied

    def _solve_and_step(self, rows, losses):
        solver = self._solver
        saved = _solver_checkpoint(solver)  # solve commits; put it back if the step then fails
        lam, d = solver.solve(rows, losses)
        try:
            applied = self.optimizer.step(d.reshape(self._param.shape))
        except BaseException:
            _solver_restore(solver, saved)
            raise
        self._last_preference = lam
        return applied

    def state_dict(self):
        """The optimiser's state under ``optimizer.``, the solver's under ``solver.``, and the
        last preference."""
        sd = {f"optimizer.{k}": v for k, v in self.optimizer.state_dict().items()}
        if self._solver is not None:
            sd.update({f"solver.{k}": v for k, v in self._solver.state_dict().items()})
        if self._last_preference is not None:
            sd["last_preference"] = self._last_preference.copy()
        return sd

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict`. The parts are checked by their owners; if the solver's
        part is refused, the optimiser's is put back, so a refused dict changes nothing."""
        sd = dict(state_dict)
        unknown = [k for k in sd if not (k.startswith(("optimizer.", "solver."))
                                         or k == "last_preference")]
        if unknown:
            raise ValueError(f"state_dict has unknown keys {sorted(unknown)}")
        lam = sd.get("last_preference")
        if lam is not None:
            lam = np.array(lam, dtype=np.float64).ravel()
            if not np.all(np.isfinite(lam)):
                raise ValueError("state_dict['last_preference'] must be finite")
        solver_part = {k[len("solver."):]: v for k, v in sd.items() if k.startswith("solver.")}
        if solver_part and self._solver is None:
            raise ValueError("state_dict holds a solver's state but this Scalarized has none")
        before = self.optimizer.state_dict()
        self.optimizer.load_state_dict(
            {k[len("optimizer."):]: v for k, v in sd.items() if k.startswith("optimizer.")})
        if solver_part:
            try:
                with solver_keys_named():
                    self._solver.load_state_dict(solver_part)
            except BaseException:
                self.optimizer.load_state_dict(before)
                raise
        self._last_preference = lam

    def __repr__(self):
        return f"Scalarized({self.optimizer!r}, {self._solver!r})"


def as_multi_objective(optimizer, solver):
    """The optimiser as a :class:`MultiObjectiveOptimizer` stepping with ``solver``: a
    multi-objective optimiser gets the solver (``opt.solver = solver``), a first-order one is
    wrapped in :class:`Scalarized`."""
    if isinstance(optimizer, MultiObjectiveOptimizer):
        optimizer.solver = solver
        return optimizer
    return Scalarized(optimizer, solver)
