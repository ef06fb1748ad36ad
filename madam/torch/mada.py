r"""MADA as a ``torch.optim.Optimizer``: :class:`madam.MADA` running on NumPy views of the
parameters (which share the tensors' memory, so its C kernels update the model in place).

One param group only. MADA's coefficients (beta1, beta2, beta3, rho, c, gamma) and its learned
learning rate are shared by every parameter: one hypergradient, summed over all of them, moves
them. Per-group values would need one MADA per group, each learning from part of the model, which
is a different optimiser. For the same reason a step updates all parameters or none: a step where
some parameters have a gradient and others do not is refused (build the optimiser over the
parameters that are trained, e.g. ``[p for p in model.parameters() if p.requires_grad]``).
"""
from .. import mada as _np_mada
from ._base import TorchOptimizer, bump_versions
from ._common import from_torch_state, to_torch_state
from ._tensors import numpy_view, param_label

__all__ = ["MADA"]

#: The hyperparameters kept in the param group (read at every step, so a scheduler can drive
#: them); each is checked by the rule of madam.MADA's attribute of the same name.
GROUP_HYPERS = ("lr", "eps", "hyper_start", "hyper_clip", "first_diff", "n_init",
                "detach_vbar", "lion_betas")


class MADA(TorchOptimizer):
    r"""MADA (Ozkara et al., ICML 2024) on torch tensors: :class:`madam.MADA`, same arguments and
    defaults, same update bit for bit.

    ``param_groups[0]`` holds ``lr``, ``eps``, ``hyper_start``, ``hyper_clip``, ``first_diff``,
    ``n_init``, ``detach_vbar`` and ``lion_betas``, read at every step (a scheduler may drive
    lr). When ``"lr"`` is in ``learn``, the learned lr is written back to the group after each
    step (a scheduler that also sets lr then overrides the learned value). The arguments fixed at
    construction (``init``, ``hyper_lr``, ``learn``, ``v_init``, ``derivatives``,
    ``hyper_delay``, ``history_limit``) go to the wrapped optimiser, :attr:`mada`, which also
    gives :attr:`coefficients`, ``mada.hyper_lr``, ``mada.last_hypergrad`` and :meth:`history`.

    State: ``self.state`` stays empty; madam.MADA's state (moments, coefficients, hyper rates,
    history, counters) is the ``"mada"`` entry of :meth:`state_dict`, as tensors and plain
    values, so ``torch.save``/``torch.load`` store it and resuming is bit for bit.
    """

    def __init__(self, params, lr=1e-3, init="adam", hyper_lr=None,
                 learn=_np_mada.COEFFICIENTS, hyper_start=50, hyper_clip=10.0, eps=1e-6,
                 v_init=1e-15, first_diff="zero", n_init="zero", detach_vbar=False,
                 lion_betas=(0.95, 0.98), derivatives="recompute", hyper_delay=False, *,
                 nonfinite="raise", history_limit=_np_mada.DEFAULT_HISTORY_LIMIT):
        self.mada = None
        defaults = dict(lr=lr, eps=eps, hyper_start=hyper_start, hyper_clip=hyper_clip,
                        first_diff=first_diff, n_init=n_init, detach_vbar=detach_vbar,
                        lion_betas=lion_betas)
        super().__init__(params, defaults, nonfinite)
        group = self.param_groups[0]
        self._views = []
        for j, p in enumerate(group["params"]):
            name = param_label(0, j, group)
            if p.numel() == 0:
                raise ValueError(f"{name} has no elements: MADA needs every parameter to hold "
                                 "at least one")
            self._views.append(numpy_view(p, name))
        self._layout = [(p.data_ptr(), tuple(p.shape), p.dtype) for p in group["params"]]
        values = self._check_group(0, group)
        # The NaN scan is this class's (it names the parameter); the wrapped optimiser never
        # sees a non-finite gradient under "raise" or "skip", so it runs with "ignore".
        self.mada = _np_mada.MADA(self._views, init=init, hyper_lr=hyper_lr, learn=learn,
                                  v_init=v_init, derivatives=derivatives,
                                  hyper_delay=hyper_delay, nonfinite="ignore",
                                  history_limit=history_limit, **values)

    def _rules(self):
        return tuple((name, getattr(_np_mada.MADA, name).check,
                      getattr(_np_mada.MADA, name).scale) for name in GROUP_HYPERS)

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("MADA takes a single param group: its coefficients and learned lr "
                             "are shared by all parameters (one hypergradient over all of "
                             "them), so per-group hyperparameters are not defined")
        super().add_param_group(param_group)

    def __getstate__(self):
        # the wrapped madam.MADA holds NumPy views of the parameters' memory: a pickled or
        # deep-copied one would update copies, not the model
        raise TypeError("madam.torch.MADA cannot be pickled or copied (it works on views of the "
                        "parameters' memory); save optimizer.state_dict() instead")

    # ----------------------------------------------------------------- attributes
    @property
    def coefficients(self):
        """The coefficients the next step will use (a dict copy; see :class:`madam.MADA`)."""
        return self.mada.coefficients

    def history(self):
        """The trajectory of coefficients, lr and hypergradients (:meth:`madam.MADA.history`)."""
        return self.mada.history()

    # ----------------------------------------------------------------- the step
    def _collect(self):
        work = super()._collect()
        group = self.param_groups[0]
        items = work[0][3]
        if 0 < len(items) < len(group["params"]):
            j = next(j for j, p in enumerate(group["params"]) if p.grad is None)
            raise ValueError(
                f"{param_label(0, j, group)}.grad is None while other parameters have "
                "gradients: MADA updates all its parameters together (one hypergradient over "
                "all of them); build it over the parameters that are trained")
        for j, (p, layout) in enumerate(zip(group["params"], self._layout)):
            if (p.data_ptr(), tuple(p.shape), p.dtype) != layout:
                raise ValueError(
                    f"{param_label(0, j, group)} no longer has the memory MADA was built on "
                    "(its .data was replaced, or it was moved or converted); nothing was "
                    "updated. Build a new optimiser over the new tensors")
        return work

    def _update(self, work):
        _, group, values, items = work[0]
        if not items:
            return
        for name in GROUP_HYPERS:
            setattr(self.mada, name, values[name])
        self.mada.step([g.detach().numpy() for _, _, g, _ in items])
        if "lr" in self.mada.learn:
            group["lr"] = self.mada.lr
        bump_versions([p for _, p, _, _ in items])

    # ----------------------------------------------------------------- state_dict
    def state_dict(self):
        """torch.optim's entries (``state`` is empty), ``"madam"`` (see the base class) and
        ``"mada"``: madam.MADA's state_dict with its arrays as CPU tensors."""
        sd = super().state_dict()
        sd["mada"] = {key: to_torch_state(value) for key, value in self.mada.state_dict().items()}
        return sd

    def _check_saved(self, sd):
        super()._check_saved(sd)
        if sd["state"]:
            raise ValueError("state_dict['state'] must be empty for MADA (its state is in "
                             "state_dict['mada'])")
        if not isinstance(sd.get("mada"), dict):
            raise ValueError("state_dict lacks 'mada' (madam.MADA's state), or it is not a dict")

    def _load_own(self, sd):
        # madam.MADA.load_state_dict checks everything before it changes anything; the checks of
        # the param group ran before, and torch's part that follows cannot fail
        inner = sd.pop("mada")
        self.mada.load_state_dict({key: from_torch_state(value) for key, value in inner.items()})
