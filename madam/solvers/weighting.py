"""Weighting methods: fixed or random weights, no Gramian (linear scalarisation, Tchebycheff,
RLW, DWA). They read only C and the losses (``uses_gramian = False``): solve() forms no Gramian
for them, and weights() checks the given one but does not read it."""
import numpy as np

from .._validate import Hyper, one_of
from .._validate import positive as _positive
from .base import Solver, _RngMixin, _ideal, _preference, _sd_array, _seed


class LinearScalarization(Solver):
    """Fixed preference: lam = preference, d = sum_i pref_i g_i (gradient of pref . f).

    Losses are not read. scale = 1. C must equal len(preference).
    """

    name = "linear"
    uses_gramian = False
    preference = Hyper(_preference())

    def __init__(self, preference):
        super().__init__()
        self.preference = preference

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        self._check_rows(k, self.preference, against)
        return self.preference.copy(), 1.0, {}

    def __repr__(self):
        return f"LinearScalarization(preference={self.preference.tolist()})"


class Tchebycheff(Solver):
    """Weighted Tchebycheff scalarisation  max_i pref_i (f_i - z_i)  (z: ``ideal``, default 0).

    Its (sub)gradient is pref_k g_k for the maximising index k; exact ties (equal values) split
    the subgradient equally among the tied indices (the symmetric element of the subdifferential,
    which keeps the solver permutation invariant). With e the tie indicator normalised to sum 1,
    the effective weights are w = pref * e; lam = w / sum(w), scale = sum(w) (= pref_k without a
    tie). If every maximiser has pref_k = 0 the scalarised gradient is 0: lam = e, scale = 0.

    Losses are read and must be finite. ``ideal``: None (zeros) or C finite numbers.
    """

    name = "tchebycheff"
    uses_losses = True
    uses_gramian = False
    preference = Hyper(_preference())
    ideal = Hyper(_ideal)

    def __init__(self, preference, ideal=None):
        super().__init__()
        self.preference = preference
        self.ideal = ideal
        self._check_ideal(self.preference.size)

    def _check_ideal(self, k):
        if self.ideal is not None and self.ideal.size != k:
            raise ValueError(f"ideal has {self.ideal.size} entries but there are {k} objectives")

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        self._check_rows(k, self.preference, against)
        self._check_ideal(k)
        shifted = losses if self.ideal is None else losses - self.ideal
        values = self.preference * shifted
        ties = (values == values.max()).astype(np.float64)
        ties /= ties.sum()
        weights = self.preference * ties
        total = float(weights.sum())
        if total > 0.0:
            return weights / total, total, {"argmax": np.flatnonzero(ties).tolist()}
        return ties, 0.0, {"argmax": np.flatnonzero(ties).tolist()}

    def __repr__(self):
        ideal = None if self.ideal is None else self.ideal.tolist()
        return f"Tchebycheff(preference={self.preference.tolist()}, ideal={ideal})"


class RLW(_RngMixin, Solver):
    """Random loss weighting (Lin et al., 2022): fresh random weights on the simplex every call.

    ``distribution="dirichlet"`` (default): lam ~ Dirichlet(alpha, ..., alpha); alpha = 1 is the
    uniform distribution on the simplex. ``distribution="softmax-normal"``: lam = softmax(z),
    z ~ N(0, I) (the RLW paper's and torchjd's ``Random`` sampler). Losses are not read;
    scale = 1. The stream is NumPy's PCG64 seeded with ``seed`` (None: fresh entropy); reset()
    reseeds, state_dict() saves the stream.
    """

    name = "rlw"
    uses_gramian = False
    seed = Hyper(_seed)
    alpha = Hyper(_positive)
    distribution = Hyper(one_of("dirichlet", "softmax-normal"))

    def __init__(self, seed=0, alpha=1.0, distribution="dirichlet"):
        super().__init__()
        self.seed = seed
        self.alpha = alpha
        self.distribution = distribution
        self._new_rng()

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        if self.distribution == "dirichlet":
            lam = self._rng.dirichlet(np.full(k, self.alpha))
        else:
            z = self._rng.standard_normal(k)
            lam = np.exp(z - z.max())
            lam /= lam.sum()
        return lam, 1.0, {}

    def __repr__(self):
        return (f"RLW(seed={self.seed}, alpha={self.alpha}, "
                f"distribution={self.distribution!r})")


class DWA(Solver):
    """Dynamic weight average (Liu, Johns & Davison, CVPR 2019).

    As in the paper, with one call of solve() in the role of one epoch: the weights at call t use
    the descent rates r_i = L_i(t-1) / L_i(t-2) of the losses passed at the two previous calls,
    lam = softmax(r / temperature); the first two calls give uniform weights (the paper's
    w_i(1) = w_i(2) = 1). The paper's weights are C * lam (they sum to C), so scale = C.
    (Averaging the losses over an epoch, as the paper does, is the caller's choice.)

    Losses are read and must be finite and > 0. The history is the state: reset() forgets it,
    state_dict() saves it; a call with a different C than the history raises ValueError.
    """

    name = "dwa"
    uses_losses = True
    positive_losses = True
    uses_gramian = False
    temperature = Hyper(_positive)

    def __init__(self, temperature=2.0):
        super().__init__()
        self.temperature = temperature
        self._history = np.zeros((0, 0))  # up to the two previous loss vectors, oldest first

    def _weights(self, k, gram, exponent, precision, losses, against="jacobian"):
        if self._history.shape[0] and self._history.shape[1] != k:
            raise ValueError(f"losses has {k} entries but the loss history has "
                             f"{self._history.shape[1]}; call reset() to change C")
        if self._history.shape[0] == 2:
            rates = self._history[1] / self._history[0]
            z = rates / self.temperature
            lam = np.exp(z - z.max())
            lam /= lam.sum()
            info = {"rates": rates}
        else:
            lam = np.full(k, 1.0 / k)
            info = {"rates": None}
        history = self._history if self._history.shape[0] else np.zeros((0, k))
        self._history = np.vstack([history, losses[None, :]])[-2:]
        return lam, float(k), info

    def reset(self):
        super().reset()
        self._history = np.zeros((0, 0))

    def _get_state(self):
        return {"history": self._history.copy()}

    def _set_state(self, sd):
        hist = _sd_array(sd, "history", lambda s: len(s) == 2 and s[0] <= 2, "(0..2, C)")
        if hist.size and np.any(hist <= 0.0):
            raise ValueError("state_dict['history'] must hold positive losses")
        self._history = hist

    def __repr__(self):
        return f"DWA(temperature={self.temperature})"
