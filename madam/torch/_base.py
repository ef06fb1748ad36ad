"""What every madam.torch optimiser shares: the checks of parameters, gradients and param groups,
the non-finite policy, and the state_dict entries that torch.optim does not have.

A step is all or nothing. :meth:`TorchOptimizer.step` first validates everything the update will
read (every group's hyperparameters, every parameter, gradient and state tensor, and that no two
of them share memory), then scans the gradients for NaN/Inf (unless ``nonfinite="ignore"``), and
only then runs a kernel: a refused step changes no parameter, no state and no counter.
"""
import torch

from .. import _core
from .. import _state
from .. import functional as F
from .._validate import NonFiniteError, nonfinite_policy, within_scale_limit
from ._common import plain_number
from ._tensors import NUMPY_DTYPES, check_grad, check_tensor, param_label, span

#: Version of the ``"madam"`` entry of a state_dict.
STATE_FORMAT = 1

#: torch.optim options that, when true, ask for something madam's kernels do not do. A param group
#: loaded from a torch.optim checkpoint may carry them; a true one is refused, never ignored.
REFUSED_FLAGS = {
    "maximize": "madam.torch minimises; negate the loss instead",
    "capturable": "madam.torch runs on CPU tensors, outside CUDA graphs",
    "differentiable": "madam.torch's kernels are not differentiable through the update",
}

_increment_version = getattr(torch.autograd.graph, "increment_version", None)


def bump_versions(tensors):
    """Tell autograd that ``tensors`` changed in place (the kernels write their memory behind its
    back): a graph that saved one of them then refuses to backpropagate, as after torch.optim."""
    if _increment_version is not None and tensors:
        _increment_version(tensors)


class TorchOptimizer(torch.optim.Optimizer):
    """Base class of madam.torch's optimisers (not used directly).

    A subclass defines :meth:`_rules` (its hyperparameters: (name, check, scale) triples whose
    checks come from :mod:`madam.functional`'s kernel tables or madam's optimiser classes, never
    new copies), :meth:`_update` (the kernels), and where it keeps per-parameter state,
    :meth:`_check_state` and :meth:`_check_saved_state`.
    """

    #: extra option names refused when true (a subclass adds its own, e.g. Adam's amsgrad)
    _refused = REFUSED_FLAGS

    def __init__(self, params, defaults, nonfinite):
        self.nonfinite = nonfinite
        self.skipped_steps = 0
        super().__init__(params, defaults)

    # ----------------------------------------------------------------- subclass hooks
    def _rules(self):
        """(name, check, scale) of every hyperparameter a group holds."""
        raise NotImplementedError

    def _check_combination(self, label, values):
        """Checks across hyperparameters (SGD's Nesterov rule); ``label`` names the group."""

    def _check_state(self, name, param, values):
        """Validate ``self.state[param]`` before a step; returns what :meth:`_update` needs."""
        return None

    def _check_saved_state(self, label, param, state):
        """Validate one parameter's state in a state_dict being loaded."""

    def _normalise_state(self):
        """After loading: make the state tensors the optimiser's own (private, contiguous)."""

    def _update(self, work):
        """Run the kernels. ``work``: [(group index, group, values, [(name, param, grad, info)])]."""
        raise NotImplementedError

    # ----------------------------------------------------------------- attributes
    @property
    def nonfinite(self):
        """What a step does with a NaN/Inf gradient: "raise" (default: NonFiniteError, nothing
        changes), "skip" (nothing changes; ``skipped_steps`` counts it) or "ignore" (no scan)."""
        return self._nonfinite

    @nonfinite.setter
    def nonfinite(self, value):
        self._nonfinite = nonfinite_policy("nonfinite", value)

    def __getstate__(self):
        state = super().__getstate__()
        state.update(_nonfinite=self._nonfinite, skipped_steps=self.skipped_steps)
        return state

    # ----------------------------------------------------------------- groups and parameters
    def add_param_group(self, param_group):
        """torch.optim's, then madam's checks of the new group (its tensors, its
        hyperparameters, no memory shared with another parameter); a refused group is not
        added."""
        i = len(self.param_groups)
        super().add_param_group(param_group)
        try:
            group = self.param_groups[i]
            for j, p in enumerate(group["params"]):
                check_tensor(p, param_label(i, j, group))
            self._check_group(i, group)
            F._check_spans([span(p, param_label(k, j, g))
                            for k, g in enumerate(self.param_groups)
                            for j, p in enumerate(g["params"])])
        except Exception:
            del self.param_groups[i]
            raise

    def _check_group(self, i, group, params=None, where="param_groups"):
        """The validated hyperparameters of one group (a dict); TypeError/ValueError naming
        ``where[i]['name']`` otherwise. Scale bounds use the dtypes of ``params`` (default: the
        group's)."""
        label = f"{where}[{i}]"
        for flag, why in self._refused.items():
            if group.get(flag):
                raise ValueError(f"{label}[{flag!r}] is {group[flag]!r}: not supported ({why})")
        params = group["params"] if params is None else params
        dtypes = [NUMPY_DTYPES[p.dtype] for p in params
                  if isinstance(p, torch.Tensor) and p.dtype in NUMPY_DTYPES]
        values = {}
        for name, check, scale in self._rules():
            key = f"{label}[{name!r}]"
            if name not in group:
                raise ValueError(f"{label} lacks the hyperparameter {name!r}")
            value = check(key, plain_number(group[name]))
            if scale:
                within_scale_limit(key, value, dtypes)
            values[name] = value
        self._check_combination(label, values)
        return values

    # ----------------------------------------------------------------- the step
    def _collect(self):
        """Check everything a step reads, write nothing; returns the work list of :meth:`_update`."""
        work, spans = [], []
        for i, group in enumerate(self.param_groups):
            values = self._check_group(i, group)
            items = []
            for j, p in enumerate(group["params"]):
                if p.grad is None:
                    continue  # as torch.optim: a parameter without a gradient is left alone
                name = param_label(i, j, group)
                check_tensor(p, name)
                g = check_grad(p.grad, p, f"{name}.grad")
                info = self._check_state(name, p, values)
                spans += [span(p, name), span(g, f"{name}.grad")]
                for key, value in self.state.get(p, {}).items():
                    if isinstance(value, torch.Tensor) and value.dim() > 0:
                        spans.append(span(value, f"the state {key!r} of {name}"))
                items.append((name, p, g, info))
            work.append((i, group, values, items))
        F._check_spans(spans)
        return work

    def _grads_finite(self, work):
        """The non-finite policy, before anything is written: True if the step goes on."""
        if self._nonfinite == "ignore":
            return True
        for _, _, _, items in work:
            for name, _, g, _ in items:
                if g.numel() and not _core.all_finite(g.detach().numpy()):
                    if self._nonfinite == "skip":
                        self.skipped_steps += 1
                        return False
                    raise NonFiniteError(
                        f"{name}.grad contains NaN or Inf; nothing was updated "
                        "(nonfinite='raise'; use nonfinite='skip' to skip such steps)")
        return True

    def step(self, closure=None):
        """One update of every parameter that has a gradient (parameters whose ``grad`` is None
        are skipped, as in torch.optim). ``closure``, if given, re-evaluates the model and
        returns the loss; it runs with gradients enabled. Returns the closure's loss (or None).

        Raises before changing anything when a hyperparameter, a tensor or (with
        nonfinite="raise") a gradient value is refused; with nonfinite="skip" a non-finite
        gradient skips the step and counts it in ``skipped_steps``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            work = self._collect()
            if self._grads_finite(work):
                self._update(work)
        return loss

    # ----------------------------------------------------------------- state_dict
    def state_dict(self):
        """torch.optim's state_dict (``state`` by parameter index, ``param_groups`` with the
        hyperparameters) plus ``"madam"``: the class, the format, ``nonfinite`` and
        ``skipped_steps``. Holds tensors and plain values only: ``torch.save`` stores it and
        ``torch.load`` (weights_only) reads it back."""
        sd = super().state_dict()
        sd["madam"] = {"optimizer": type(self).__name__, "format": STATE_FORMAT,
                       "nonfinite": self._nonfinite, "skipped_steps": self.skipped_steps}
        return sd

    def load_state_dict(self, state_dict):
        """Restore a state_dict of this class (or of the matching torch.optim optimiser, which
        lacks the ``"madam"`` entry: nonfinite and skipped_steps then stay as they are).
        Everything is checked before anything changes; resuming reproduces the run bit for bit.
        """
        sd = dict(state_dict)
        extras = self._check_extras(sd.pop("madam", None))
        self._check_saved(sd)
        self._load_own(sd)
        super().load_state_dict(sd)
        self._normalise_state()
        if extras is not None:
            self._nonfinite, self.skipped_steps = extras

    def _load_own(self, sd):
        """Restore (after every check) what the subclass keeps outside torch's state_dict."""

    def _check_extras(self, extras):
        if extras is None:
            return None
        if not isinstance(extras, dict):
            raise TypeError(f"state_dict['madam'] must be a dict, got {type(extras).__name__}")
        _state.check_header(extras, "optimizer", type(self).__name__, "optimiser", STATE_FORMAT)
        known = {"optimizer", "format", "nonfinite", "skipped_steps"}
        unknown = sorted(set(extras) - known, key=str)
        if unknown:
            raise ValueError(f"state_dict['madam'] has unknown keys {unknown}")
        policy = nonfinite_policy("state_dict['madam']['nonfinite']",
                                  _state.scalar(extras, "nonfinite", str))
        skipped = _state.scalar(extras, "skipped_steps", int)
        _state.check_counts(F.MAX_STEP, skipped_steps=skipped)
        return policy, skipped

    def _check_saved(self, sd):
        """The checks torch's load_state_dict makes, and madam's: every group's
        hyperparameters, and every parameter's state (keys, shapes, finite values)."""
        for key in ("state", "param_groups"):
            if key not in sd:
                raise ValueError(f"state_dict lacks {key!r}")
        saved_groups, state = sd["param_groups"], sd["state"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(saved_groups)} parameter groups, this "
                             f"optimiser has {len(self.param_groups)}")
        ids = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"state_dict['param_groups'][{i}] has {len(saved['params'])} "
                                 f"parameters, this optimiser's group has {len(group['params'])}")
            self._check_group(i, saved, group["params"], where="state_dict['param_groups']")
            for j, (k, p) in enumerate(zip(saved["params"], group["params"])):
                ids[k] = (param_label(i, j, group), p)
        for k, value in state.items():
            if k not in ids:
                raise ValueError(f"state_dict['state'] has state for a parameter index {k!r} "
                                 "that no param group lists")
            name, p = ids[k]
            if not isinstance(value, dict):
                raise TypeError(f"state_dict['state'][{k!r}] (of {name}) must be a dict")
            self._check_saved_state(f"state_dict['state'][{k!r}] (of {name})", p, value)
