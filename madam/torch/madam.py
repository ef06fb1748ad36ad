r"""``madam.torch.MAdam``: madam's multi-objective Adam as a ``torch.optim.Optimizer``.

The optimiser holds a :class:`madam.MAdam` over NumPy views of the parameters (no copy: the C
kernel updates the model's tensors in place) and hands it NumPy views of the per-objective
gradient rows. The rows come from one of two places:

* torchjd: ``torchjd.autojac.backward(losses)`` (or ``mtl_backward``) leaves on every parameter a
  ``.jac`` of shape ``(C, *p.shape)``; ``step()`` reads those (zero-copy when contiguous) and
  deletes them afterwards, as ``torchjd.autojac.jac_to_grad`` does (``retain_jac=True`` keeps them).
* autograd: ``step(losses)`` with C scalar loss tensors computes one row per objective with
  ``torch.autograd.grad`` (the graph is retained for all but the last pass). Under
  ``pair_sampling=k`` with a ``preference=``, only the k requested objectives' rows plus the
  direction :math:`d = \nabla \sum_i \lambda_i f_i` are computed: k + 1 backward passes for any C.

Usage::

    opt = madam.torch.MAdam(model.parameters(), solver=madam.solvers.MGDA(), lr=1e-3)
    losses = [loss_a, loss_b]
    opt.zero_grad()
    opt.step(losses)                      # C backward passes, the solver picks lambda
    opt.last_preference                   # tensor (C,) float64

``docs/torch-madam.md`` has the whole story (torchjd, pair sampling, checkpoints, schedulers).
"""
import re

import numpy as np
import torch

from .. import madam_opt
from ..solvers import check_preference
from ._common import (from_torch_state, numpy_values, param_names, plain_number, rename_rows,
                      to_torch_state)
from ._tensors import check_tensor, numpy_view

__all__ = ["MAdam"]

#: The hyperparameters kept in ``param_groups[0]`` (read again at every step, so LR schedulers
#: and manual edits take effect); the others are fixed at construction.
HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "rampup_steps", "rampup", "nonfinite")

_STATE_KEY = re.compile(r"state\.(\d+)\.(.+)")


class MAdam(torch.optim.Optimizer):
    r"""MAdam (:class:`madam.MAdam`) on torch parameters.

    Parameters
    ----------
    params : an iterable of tensors, of ``(name, tensor)`` pairs (``model.named_parameters()``:
        errors then show the names), or of *one* param-group dict. Every parameter must be a
        contiguous CPU float32/float64 tensor (the kernel updates its memory in place); anything
        else is refused with an error naming it (``madam.torch._tensors.check_tensor``).
        **One param group only**: lambda, the curvature F and the Adam step are shared by all
        parameters, so there is one set of hyperparameters (a second group is a ValueError).
    solver, lr, betas, eps, weight_decay, rampup_steps, pair_sampling, rampup, n_obj, estimator,
    seed, nonfinite : as :class:`madam.MAdam` (``docs/madam.md``). ``lr``, ``betas``, ``eps``,
        ``weight_decay``, ``rampup_steps``, ``rampup`` and ``nonfinite`` live in
        ``param_groups[0]`` and are read (and validated) at every step, so
        ``torch.optim.lr_scheduler`` works; the others are fixed at construction.
    retain_jac : keep the parameters' ``.jac`` after a step (default False: they are deleted,
        as ``torchjd.autojac.jac_to_grad`` does, since torchjd *accumulates* into ``.jac``).

    Attributes: :attr:`last_preference`, :attr:`solver`, :attr:`n_obj`, :attr:`pair_sampling`,
    :attr:`step_count`, :attr:`skipped_steps`, :meth:`requested_objectives`, :meth:`fisher`,
    :meth:`curvature`. ``self.state`` stays empty: the state lives in the NumPy optimiser and is
    read and written through :meth:`state_dict` / :meth:`load_state_dict`.
    """

    #: Whether the rows are always copied into flat per-dtype buffers (the distributed subclass
    #: reduces those); False: a contiguous ``.jac`` is read in place.
    _copy_rows = False
    #: Whether the losses travel in the float64 flat buffer (the distributed subclass averages them).
    _reduce_losses = False

    def __init__(self, params, solver="mgda", lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, rampup_steps=0, pair_sampling=None, *, rampup="linear",
                 n_obj=None, estimator="elapsed", seed=0, nonfinite="raise", retain_jac=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        rampup_steps=rampup_steps, rampup=rampup, nonfinite=nonfinite)
        super().__init__(params, defaults)
        group = self.param_groups[0]
        self._names = param_names(group)
        tensors = list(group["params"])
        arrays = [numpy_view(p, name) for p, name in zip(tensors, self._names)]
        hypers = {name: plain_number(group[name]) for name in HYPERPARAMETERS}
        self._inner = madam_opt.MAdam(arrays, solver=solver, pair_sampling=pair_sampling,
                                      n_obj=n_obj, estimator=estimator, seed=seed, **hypers)
        self._tensors = tensors
        self._layout = [(p.data_ptr(), tuple(p.shape), p.stride(), p.dtype) for p in tensors]
        self.retain_jac = bool(retain_jac)

    def add_param_group(self, param_group):
        """Only the first group (made by the constructor) is accepted: MAdam's lambda and
        curvature are shared by all its parameters (see the class doc)."""
        if self.param_groups:
            raise ValueError("madam.torch.MAdam takes one param group: lambda, F and Adam's step "
                             "are shared by all parameters (build a second MAdam, or scale "
                             "parameters yourself, for other hyperparameters)")
        super().add_param_group(param_group)

    # ------------------------------------------------------------------ public attributes
    @property
    def solver(self):
        """The solver that picks lambda when step() gets no preference (settable)."""
        return self._inner.solver

    @solver.setter
    def solver(self, value):
        self._inner.solver = value

    @property
    def n_obj(self):
        """The number of objectives C (None until the first step, unless given)."""
        return self._inner.n_obj

    @property
    def pair_sampling(self):
        return self._inner.pair_sampling

    @property
    def step_count(self):
        """Applied steps."""
        return self._inner.step_count

    @property
    def skipped_steps(self):
        """Steps skipped under ``nonfinite="skip"``."""
        return self._inner.skipped_steps

    @property
    def last_preference(self):
        """The lambda of the last applied step as a float64 tensor (C,), None before the first."""
        lam = self._inner.last_preference
        return None if lam is None else torch.from_numpy(lam)

    def requested_objectives(self):
        """The objectives the next step reads (a sorted tuple); see
        :meth:`madam.MAdam.requested_objectives`."""
        return self._inner.requested_objectives()

    def fisher(self, index=0):
        r"""The bias-corrected :math:`\hat F` of parameter ``index``, a float64 tensor
        (C, C, *shape)."""
        return torch.from_numpy(self._inner.fisher(index))

    def curvature(self, preference=None):
        r""":math:`C_\lambda` per element, one float64 tensor per parameter (a list)."""
        pref = None if preference is None else numpy_values(preference, "preference")
        return [torch.from_numpy(c) for c in self._inner.curvature(pref)]

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        """Every parameter still the tensor, memory, shape and dtype the NumPy views were made
        from (``model.double()`` or ``p.data = ...`` would leave the kernel updating the old
        memory): else an error naming it, before anything is computed."""
        params = self.param_groups[0]["params"]
        if len(params) != len(self._tensors) or any(p is not t for p, t in
                                                     zip(params, self._tensors)):
            raise ValueError("param_groups[0]['params'] was changed since the optimiser was "
                             "built; build a new optimiser over the new parameters")
        for p, name, (ptr, shape, stride, dtype) in zip(params, self._names, self._layout):
            check_tensor(p, name)
            if p.dtype != dtype:
                raise TypeError(f"{name} changed dtype from {dtype} to {p.dtype} since the "
                                "optimiser was built; nothing was updated")
            if p.data_ptr() != ptr or tuple(p.shape) != shape or p.stride() != stride:
                raise ValueError(f"{name} was reallocated or reshaped since the optimiser was "
                                 f"built (shape {shape} -> {tuple(p.shape)}); nothing was "
                                 "updated. Build a new optimiser over the new tensors")
        return params

    def _sync_hyperparameters(self):
        """param_groups[0] -> the NumPy optimiser, each value validated; a bad one puts back
        the ones already set and raises naming it."""
        group = self.param_groups[0]
        inner = self._inner
        old = {name: getattr(inner, name) for name in HYPERPARAMETERS}
        for name in HYPERPARAMETERS:
            value = plain_number(group[name])
            if isinstance(value, list):
                value = tuple(value)
            if value == old[name]:
                continue
            try:
                setattr(inner, name, value)
            except (TypeError, ValueError) as exc:
                for key, before in old.items():
                    setattr(inner, key, before)
                raise type(exc)(f"param_groups[0][{name!r}]: {exc}") from None

    def _jac_rows(self, params):
        """The ``.jac`` of every parameter, checked (detached tensors), or None when no
        parameter has one; an error naming the parameter when only some have one."""
        have = [hasattr(p, "jac") for p in params]
        if not any(have):
            return None
        if not all(have):
            name = self._names[have.index(False)]
            raise ValueError(f"{name} has no .jac but other parameters do: every parameter of "
                             "this MAdam needs its rows (torchjd's mtl_backward fills .jac only "
                             "for the shared parameters: give the task heads an optimiser of "
                             "their own) or none (then pass losses=)")
        rows, n_rows = [], None
        for p, name in zip(params, self._names):
            j = p.jac
            if not isinstance(j, torch.Tensor):
                raise TypeError(f"{name}.jac must be a tensor, got {type(j).__name__}")
            if j.device.type != "cpu":
                raise ValueError(f"{name}.jac is on {j.device}: madam.torch reads CPU memory")
            if j.layout != torch.strided:
                raise TypeError(f"{name}.jac has layout {j.layout}: only dense tensors")
            if j.dtype != p.dtype:
                raise TypeError(f"{name}.jac has dtype {j.dtype} but the parameter has {p.dtype}")
            if j.ndim != p.ndim + 1 or tuple(j.shape[1:]) != tuple(p.shape) or j.shape[0] < 1:
                raise ValueError(f"{name}.jac must have shape (C, *{tuple(p.shape)}), got "
                                 f"{tuple(j.shape)}")
            if n_rows is None:
                n_rows = j.shape[0]
            elif j.shape[0] != n_rows:
                raise ValueError(f"{name}.jac has {j.shape[0]} rows but {self._names[0]}.jac "
                                 f"has {n_rows}")
            rows.append(j.detach())
        return rows

    @staticmethod
    def _loss_list(losses):
        """C scalar tensors that require grad, from a sequence or a 1-D tensor."""
        if isinstance(losses, torch.Tensor):
            if losses.ndim != 1 or losses.shape[0] < 1:
                raise ValueError(f"losses as one tensor must be 1-D (C,), got shape "
                                 f"{tuple(losses.shape)}")
            items = [losses[i] for i in range(losses.shape[0])]
        elif isinstance(losses, (list, tuple)):
            items = list(losses)
        else:
            raise TypeError(f"losses must be a sequence of scalar tensors, got "
                            f"{type(losses).__name__}")
        if not items:
            raise ValueError("losses is empty: give one scalar tensor per objective")
        for i, loss in enumerate(items):
            if not isinstance(loss, torch.Tensor):
                raise TypeError(f"losses[{i}] must be a tensor with a graph (its gradient row is "
                                f"computed by autograd), got {type(loss).__name__}")
            if loss.numel() != 1:
                raise ValueError(f"losses[{i}] must be a scalar, got shape {tuple(loss.shape)}")
            if not loss.requires_grad:
                raise ValueError(f"losses[{i}] does not require grad (computed under no_grad, or "
                                 "from detached tensors): its gradient cannot be computed")
        return [loss.reshape(()) for loss in items]

    def _preference(self, preference, n_obj):
        """The user's lambda, checked before any backward pass: (the value as given to
        madam.MAdam, its float64 copy)."""
        value = numpy_values(preference, "preference")
        lam = check_preference(value)
        if lam.size != n_obj:
            raise ValueError(f"preference has {lam.size} entries but there are {n_obj} "
                             "objectives")
        return value, np.array(lam, dtype=np.float64)

    # ------------------------------------------------------------------ buffers
    @staticmethod
    def _row_buffers(params, n_rows, loss_slots=0):
        """Per parameter a contiguous (n_rows, *shape) block of one flat buffer per dtype, and
        a (loss_slots,) float64 slot at the end of the float64 buffer (None if 0)."""
        sizes = {}
        for p in params:
            sizes[p.dtype] = sizes.get(p.dtype, 0) + n_rows * p.numel()
        if loss_slots:
            sizes[torch.float64] = sizes.get(torch.float64, 0) + loss_slots
        flats = {dtype: torch.empty(size, dtype=dtype) for dtype, size in sizes.items()}
        offsets = dict.fromkeys(flats, 0)
        views = []
        for p in params:
            size = n_rows * p.numel()
            start = offsets[p.dtype]
            views.append(flats[p.dtype][start:start + size].view((n_rows,) + tuple(p.shape)))
            offsets[p.dtype] = start + size
        slot = None
        if loss_slots:
            start = offsets[torch.float64]
            slot = flats[torch.float64][start:start + loss_slots]
        return views, list(flats.values()), slot

    def _reduce(self, flats):
        """Combine the row buffers across processes (the distributed subclass); here nothing."""

    # ------------------------------------------------------------------ the step
    def step(self, losses=None, *, preference=None):
        """One MAdam step in place; returns True if applied, False if skipped
        (``nonfinite="skip"``).

        losses: the C objectives, as scalar tensors with graphs (a sequence, or a 1-D tensor),
            or a closure returning them (called under ``torch.enable_grad()``). When every
            parameter has a ``.jac`` (torchjd), the rows are read from there and ``losses`` is
            optional: its values (tensors or numbers) only go to the solver. Otherwise the rows
            are computed from ``losses`` by autograd (``torch.autograd.grad``, graph retained for
            all but the last pass, ``.grad`` untouched); a parameter no loss depends on gets
            zero rows.
        preference: a lambda on the simplex (tensor, array or sequence); the solver is then not
            called. Required under ``pair_sampling`` to save backward passes: the requested
            objectives' rows and :math:`d = \\nabla \\sum_i \\lambda_i f_i` are then computed
            (k + 1 passes); without it the solver needs all C rows.

        All or nothing: parameters, ``param_groups``, the MAdam state, the sampling stream and
        the solver's state are unchanged by a step that raises, and the checks that need no
        backward pass (parameters, hyperparameters, ``.jac`` shapes and dtypes, the losses'
        types, the preference) run before any backward pass. Errors name the parameter.
        """
        if callable(losses) and not isinstance(losses, torch.Tensor):
            with torch.enable_grad():
                losses = losses()
        params = self._check_params()
        self._sync_hyperparameters()
        inner = self._inner
        rows = self._jac_rows(params)
        loss_list = None
        if rows is not None:
            n_obj = inner.n_obj if inner.n_obj is not None else rows[0].shape[0]
        else:
            if losses is None:
                raise TypeError("step() needs losses (C scalar tensors with graphs) or a .jac "
                                "on every parameter (torchjd.autojac.backward)")
            loss_list = self._loss_list(losses)
            n_obj = len(loss_list)
            if inner.n_obj is not None and n_obj != inner.n_obj:
                raise ValueError(f"losses has {n_obj} entries but this MAdam has "
                                 f"{inner.n_obj} objectives")
        loss_values = None
        if losses is not None:
            loss_values = numpy_values(losses, "losses").astype(np.float64).ravel()
            if loss_values.size != n_obj:
                raise ValueError(f"losses has {loss_values.size} entries but there are "
                                 f"{n_obj} objectives")
        pref, lam = (None, None) if preference is None else self._preference(preference, n_obj)

        k = inner.pair_sampling
        if rows is not None:
            if k is not None and rows[0].shape[0] != n_obj:
                raise ValueError(f"{self._names[0]}.jac has {rows[0].shape[0]} rows: with "
                                 f"pair sampling from .jac give all {n_obj} rows (or pass "
                                 "losses= without .jac, and only the requested rows are "
                                 "computed)")
            objectives = None
            need_direction = False
            n_rows = rows[0].shape[0]
        else:
            sampled = k is not None and k < n_obj and lam is not None
            objectives = inner.requested_objectives() if sampled else tuple(range(n_obj))
            need_direction = sampled
            n_rows = len(objectives)

        slots = n_obj if (self._reduce_losses and loss_values is not None) else 0
        flats, slot = [], None
        if rows is not None and not self._copy_rows:
            blocks = [r if r.is_contiguous() else r.contiguous() for r in rows]
        else:
            blocks, flats, slot = self._row_buffers(params, n_rows + need_direction, slots)
            if rows is not None:
                for block, r in zip(blocks, rows):
                    block.copy_(r)
            else:
                self._backward_rows(params, loss_list, objectives, lam if need_direction
                                    else None, blocks)
            if slot is not None:
                slot.copy_(torch.from_numpy(loss_values))
        self._reduce(flats)
        if slot is not None:
            loss_values = slot.numpy().copy()

        jacs = [b[:n_rows].numpy() for b in blocks]
        dirs = [b[n_rows].numpy() for b in blocks] if need_direction else None
        try:
            applied = inner.step(jacs, loss_values, preference=pref, direction=dirs)
        except (TypeError, ValueError) as exc:
            message = rename_rows(str(exc), self._names)
            if message == str(exc):
                raise
            try:
                renamed = type(exc)(message)
            except Exception:   # an exception type that wants other arguments
                raise exc from None
            raise renamed from None
        if applied:
            # the kernel wrote through NumPy: tell autograd the parameters changed, as torch's
            # in-place updates do (a graph that saved them then refuses a stale backward)
            torch.autograd.graph.increment_version(params)
        if rows is not None and not self.retain_jac:
            for p in params:
                del p.jac
        return applied

    def _backward_rows(self, params, loss_list, objectives, lam, blocks):
        """Fill blocks[i][r] with the gradient of loss ``objectives[r]`` w.r.t. params[i] (and
        blocks[i][-1] with that of sum_j lam_j f_j when lam is given), one autograd pass each,
        the graph freed by the last one."""
        wanted = [i for i, p in enumerate(params) if p.requires_grad]
        inputs = [params[i] for i in wanted]
        passes = []
        if lam is not None:
            weighted = None
            for j, weight in enumerate(lam):
                if weight != 0.0:
                    term = float(weight) * loss_list[j]
                    weighted = term if weighted is None else weighted + term
            passes.append((len(objectives), weighted))
        passes += [(r, loss_list[i]) for r, i in enumerate(objectives)]
        for i, p in enumerate(params):
            if not p.requires_grad:     # a frozen parameter: zero rows
                blocks[i].zero_()
        for n, (row, loss) in enumerate(passes):
            if not inputs or loss is None:
                continue
            grads = torch.autograd.grad(loss, inputs, retain_graph=n + 1 < len(passes),
                                        allow_unused=True, materialize_grads=True)
            for i, g in zip(wanted, grads):
                blocks[i][row].copy_(g)

    # ------------------------------------------------------------------ autograd-free helpers
    def zero_grad(self, set_to_none=True):
        """``torch.optim.Optimizer.zero_grad``, and the parameters' ``.jac`` deleted."""
        super().zero_grad(set_to_none)
        for p in self.param_groups[0]["params"]:
            if hasattr(p, "jac"):
                del p.jac

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """A dict that ``torch.save`` stores and ``torch.load(weights_only=True)`` reads back:
        ``state`` (per parameter index: ``exp_avg``, ``exp_avg_sq``, ``fisher`` tensors),
        ``param_groups`` (torch's layout: the hyperparameters and parameter indices) and
        ``madam`` (the rest of :meth:`madam.MAdam.state_dict`: counters, the sampling stream,
        ``last_preference``, the solver's state; arrays as tensors). Copies throughout."""
        sd = self._inner.state_dict()
        group = self.param_groups[0]
        state, rest = {}, {}
        for key, value in sd.items():
            match = _STATE_KEY.fullmatch(key)
            if match:
                state.setdefault(int(match.group(1)), {})[match.group(2)] = to_torch_state(value)
            elif not key.startswith("hyper."):    # the hyperparameters are the group's
                rest[key] = to_torch_state(value)
        saved = {key: value for key, value in group.items() if key != "params"}
        saved["params"] = list(range(len(group["params"])))
        return {"state": state, "param_groups": [saved], "madam": rest}

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` (after ``torch.load`` too); everything is checked before
        anything changes, and the run resumes bit for bit."""
        if not isinstance(state_dict, dict) or not {"state", "param_groups", "madam"} <= \
                set(state_dict):
            raise ValueError("state_dict must be a dict with 'state', 'param_groups' and 'madam' "
                             "(what madam.torch.MAdam.state_dict returns)")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != 1 or \
                not isinstance(groups[0], dict):
            raise ValueError("state_dict['param_groups'] must hold one group (MAdam has one)")
        saved = dict(groups[0])
        count = len(self.param_groups[0]["params"])
        if len(saved.get("params", ())) != count:
            raise ValueError(f"state_dict['param_groups'][0] has {len(saved.get('params', ()))} "
                             f"parameters, this optimiser has {count}")
        sd = {key: from_torch_state(value) for key, value in dict(state_dict["madam"]).items()}
        state = state_dict["state"]
        if not isinstance(state, dict):
            raise ValueError("state_dict['state'] must be a dict by parameter index")
        for index, buffers in state.items():
            if not isinstance(buffers, dict):
                raise ValueError(f"state_dict['state'][{index!r}] must be a dict of tensors")
            for name, value in buffers.items():
                sd[f"state.{index}.{name}"] = from_torch_state(value)
        for name in HYPERPARAMETERS:
            if name not in saved:
                raise ValueError(f"state_dict['param_groups'][0] lacks {name!r}")
            value = plain_number(saved[name])
            sd[f"hyper.{name}"] = tuple(value) if isinstance(value, list) else value
        self._inner.load_state_dict(sd)     # checks everything, then copies
        group = self.param_groups[0]
        keep = {key: group[key] for key in ("params", "param_names") if key in group}
        saved.pop("param_names", None)
        group.clear()
        group.update(saved)
        group.update(keep)
