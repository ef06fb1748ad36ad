"""The optimiser settings every optimiser test runs over, gathered from tests/reference.py.

Each reference class carries its optimiser's settings (``defaults``, ``cases``, ``full_cases``,
``nonnegative``; reference.py's module doc says what each holds and why the learning rates are
what they are); this module only gathers them, in ``reference.ALL``'s order, so a new optimiser
joins every table-driven test through its reference class alone.

Each case is (id, optimiser name, keyword arguments).
"""

import madam.optim
import reference

# every first-order optimiser madam registers (a new one joins every table-driven test)
OPTIMISERS = tuple(cls.__name__ for cls in madam.optim.first_order().values())

# (id, name, kwargs): "defaults" cases set only lr, the others switch on the non-default paths.
CASES = tuple((cid, name, kwargs) for name, ref in reference.ALL.items()
              for cid, kwargs in ref.cases)

# The representatives of each optimiser (the cases with the most paths switched on, named by its
# reference's ``full_cases``), for the tests that check plumbing rather than arithmetic (state
# round trips, threads).
FULL_CASES = tuple(c for c in CASES if c[0] in reference.ALL[c[1]].full_cases)


def params(cases):
    """pytest.param list with readable ids."""
    import pytest  # here, so that benchmarks can import this table without pytest

    return [pytest.param(name, kw, id=cid) for cid, name, kw in cases]


# The constructor signatures of the API contract (docs: notes/python_api.md), defaults included.
CONTRACT_DEFAULTS = {name: ref.defaults for name, ref in reference.ALL.items()}

# Which state arrays are second moments (>= 0 in every reachable state), per optimiser: the
# references' independent lists (test_state.py adds MADA's).
NONNEGATIVE = {name: ref.nonnegative for name, ref in reference.ALL.items()}
