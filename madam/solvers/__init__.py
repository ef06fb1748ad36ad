"""Multi-objective gradient solvers: from the Jacobian to a preference and a direction.

A solver maps the Jacobian ``J`` (C, n) of C objectives, their losses (C,) and its own state to
weights ``lam`` (C,) and the direction ``d = lam @ J`` (n,)::

    solver = madam.solvers.MGDA()
    lam, d = solver.solve(jacobian, losses)
    lam = solver.weights(gramian, losses)      # the same lam from G = J J^T alone (C x C)

Conventions shared by every solver
----------------------------------
* ``lam`` is float64 and sums to 1; it lies on the simplex for every method except IMTL-G (affine
  weights, possibly negative) and the degenerate IMTL-G case (lam = 0). For methods that combine
  projected gradients (PCGrad, UPGrad, CAGrad) and for Nash-MTL, ``lam`` holds the *effective*
  weights w of the method's natural direction ``J^T w``, normalised to sum 1.
* ``d = lam @ J`` in the Jacobian's dtype (float32 in, float32 out): one BLAS gemv for float64;
  for float32 accumulated in float64 and rounded once, so that d's error is relative to |d| and
  not to the gradients it combines (which matters when they nearly cancel: non-conflict).
* ``solver.scale`` (a float, set by every ``solve``) restores the method's natural direction:
  ``natural = solver.scale * d``, i.e. w = scale * lam. It is 1 for methods whose weights
  already sum to 1 (linear scalarisation, RLW, MGDA, IMTL-G, EPO); C for DWA (its weights sum
  to C); sum(w) for PCGrad, UPGrad, CAGrad (times CAGrad's rescale factor) and Nash-MTL (after
  its norm clipping); pref_k for Tchebycheff (k the maximising objective). ``scale = 0`` flags
  a degenerate input where the method's natural direction is zero (documented per solver;
  ``lam`` then is the combination that vanishes, or 0 for IMTL-G).
* ``solver.info`` (a dict) holds diagnostics of the last solve (iterations, residuals, modes).
* Every Gramian is ``J @ J.T`` in float64 from one read of J (``madam._core.gram_scan``, C's
  ``cm_gram_scan``: the NaN scan in the same pass, a summation order fixed by the shape, so the
  same bits for any thread count): a float32 Jacobian's products are formed exactly in float64
  (a float32 Gramian overflows for rows of norm ~2e19
  and its rounding makes nearly-cancelling directions conflict), a float64 Jacobian with max|J|
  beyond 2^+-128 is first scaled by a power of two (exact; the Gramian would overflow or
  underflow). Eigenvalues that rounding left below 0 are clipped to 0 (on the correlation
  matrix, so that small rows keep their accuracy). All inner optimisation
  runs in float64 on that Gramian with the small dense solvers of ``madam._inner`` (no SciPy at
  run time); the scale-invariant methods give the same weights for J and s J at any finite s.
* ``solver.weights(gramian, losses=None, *, dtype=None) -> lam`` is ``solve`` without J: the
  weights from the C x C Gramian G = J J^T and the losses, with ``scale``, ``info`` and the
  state (warm starts, loss history, random streams) set and advanced exactly as ``solve`` would;
  the direction is then ``lam @ J`` wherever J lives. Its cost is O(C^3), independent of n (one
  C x C eigendecomposition checks G, then the method's own C x C work). Every solver but CAMOO
  has it: the Gramian methods (MGDA, PCGrad, CAGrad, IMTL-G, Nash-MTL, UPGrad, EPO, PAMOO -
  with ``columns``, the Gramian of those columns) read J only through G, and ``solve`` is
  ``weights`` on the Gramian it forms plus ``d = lam @ J``; linear, Tchebycheff, RLW and DWA
  read only C (and the losses). CAMOO raises TypeError (its weights come from Hessian-vector
  products, which G does not hold). G is given in the Jacobian's own units: where max_i G_ii
  lies outside 2^-300 .. 2^320 it is scaled by an exact power of two, as ``solve`` scales J (the
  methods that need absolute units, Nash-MTL, EPO, PAMOO, undo it), and eigenvalues below 0 beyond
  rounding are clipped as above. ``dtype`` names the Jacobian's dtype when G is wider (the
  float64 Gramian of a float32 J): it sets the rounding thresholds of CAGrad, IMTL-G and
  Nash-MTL. On the Gramian ``solve`` forms (``madam.solvers._gramian(J)``; where that scaled
  J by 2^-e, its result times 4^e) ``weights`` returns ``solve``'s lam bit for bit; on another
  J J^T they agree to that Gramian's rounding. (UPGrad's ``solve`` recomputes rows whose squared
  norm underflows, below 2^-900 of the largest, from J; ``weights`` has only what G holds.)
* Hyperparameters are validated attributes: they may be changed between calls (e.g. a new
  ``preference`` each step), and a bad value raises TypeError/ValueError naming it.

Input rules
-----------
* ``jacobian``: a NumPy float32/float64 array of shape (C, n), C >= 1, n >= 1, all finite
  (TypeError / ValueError naming ``jacobian``).
* ``losses``: C real numbers. Solvers that use their values (Tchebycheff, DWA, EPO) require them
  finite, and DWA and EPO require them > 0 (ratios and logarithms of losses): otherwise
  ValueError naming ``losses``. The other solvers do not read the values (a NaN loss is ignored;
  ``losses`` may be None); the length is still checked when given.
* ``preference``: C non-negative finite numbers summing to 1 within 1e-9 (EPO: all > 0).
* ``gramian`` (``weights``): a NumPy float32/float64 array of shape (C, C), C >= 1, all finite,
  diagonal >= 0 (zero rows and columns where it is 0), symmetric and positive semi-definite
  within sqrt(eps) of its dtype relative to |g_i| |g_j| = sqrt(G_ii G_jj) (TypeError /
  ValueError naming ``gramian``); ``losses`` as above, C from the gramian; a refused call leaves
  the solver as it was.

Degenerate inputs (identical gradients, zero gradients, C = 1) give defined outputs, documented
in each class and tested in ``tests/test_solvers.py``.
"""
from .base import (SOLVERS, Solver, _direction, _gramian, _ldexp, check_gramian,
                   check_jacobian, check_losses, check_preference, required_arguments,
                   simplex_tolerance)
# imported in registry order (SOLVERS fills as each class is defined)
from .weighting import DWA, RLW, LinearScalarization, Tchebycheff
from .gradient import (CAGrad, IMTLG, MGDA, NashMTL, PCGrad, UPGrad, cagrad_weights, nash_weights,
                       pcgrad_weights, upgrad_weights)
from .epo import EPO, epo_lp
from .amoo import CAMOO, PAMOO

__all__ = ["Solver", "LinearScalarization", "Tchebycheff", "RLW", "DWA", "MGDA", "PCGrad",
           "CAGrad", "IMTLG", "NashMTL", "UPGrad", "EPO", "CAMOO", "PAMOO", "SOLVERS"]
