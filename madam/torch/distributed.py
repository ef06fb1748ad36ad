r"""MAdam under ``torch.distributed``: data-parallel training with averaged per-objective rows.

Each process computes the C per-objective gradient rows of its own shard of the batch (from its
losses by autograd, or from the ``.jac`` torchjd left); :class:`DistributedMAdam` copies them
into one flat buffer per dtype (the losses ride at the end of the float64 one), all-reduces it
(sum, then divided by the world size: the mean over processes) and only then runs the solver and
the MAdam kernel, on every process, on identical input. Parameters therefore stay identical on
every process (bit for bit: the all-reduce hands every rank the same sums), and equal, up to the
rounding of the averages, to one process stepping on the union of the shards when every shard
has the same size and each loss is a mean over its shard.

::

    dist.init_process_group("gloo", ...)
    opt = DistributedMAdam(model.parameters(), solver="mgda", lr=1e-3)   # broadcasts rank 0's
    for batch in shard_of_this_rank:                                     # parameters first
        losses = [f(model, batch) for f in objectives]
        opt.step(losses)

Communication per step: one all-reduce of R rows (R = C, or k + 1 under pair sampling with a
preference) times the number of parameter elements, plus C loss values; in float32 for float32
parameters.

Memory per parameter element (every process holds the full state; no sharding):
C(C + 1)/2 curvature EMAs F (the packed pairs) + Adam's m and v = C(C + 1)/2 + 2 values of the
parameter's dtype, plus the transient row buffer of R values during a step (and torchjd's
``.jac``, C values, when the rows come from there). C = 2: 5 + 2 transient; C = 8: 38 + 8.

Every process must call ``step`` the same number of times with the same kind of input (rows
from losses or from ``.jac``, the same C, losses given or not, the same preference): the
collective's size follows from it. An error raised on one process before the all-reduce (a bad
argument on that rank only) leaves the others waiting in the all-reduce until the process
group's timeout, as with ``DistributedDataParallel``; input checks that depend only on
replicated values fail on every rank alike, and the NaN/Inf policy runs after the reduction,
so every rank raises or skips together.
"""
import torch
import torch.distributed as dist

from .madam import MAdam

__all__ = ["DistributedMAdam"]


class DistributedMAdam(MAdam):
    """:class:`madam.torch.MAdam` whose per-objective rows and losses are averaged over a
    ``torch.distributed`` process group before the solver and the update.

    process_group: the group to average over (None: the default group, which must be
        initialised).
    broadcast_parameters: at construction, overwrite every process's parameters with those of
        the group's first rank (as ``DistributedDataParallel`` does), so that all start equal.

    Every other argument is :class:`madam.torch.MAdam`'s; the pair-sampling stream is seeded by
    ``seed`` on every process alike, so all draw the same objectives.
    """

    _copy_rows = True
    _reduce_losses = True

    def __init__(self, params, *args, process_group=None, broadcast_parameters=True, **kwargs):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("DistributedMAdam needs an initialised torch.distributed process "
                               "group (torch.distributed.init_process_group)")
        super().__init__(params, *args, **kwargs)
        self.process_group = process_group
        self.world_size = dist.get_world_size(process_group)
        if broadcast_parameters:
            self._broadcast_parameters()

    def _broadcast_parameters(self):
        params = self.param_groups[0]["params"]
        source = 0 if self.process_group is None else dist.get_global_rank(self.process_group, 0)
        views, flats, _ = self._row_buffers(params, 1)
        with torch.no_grad():
            for view, p in zip(views, params):
                view[0].copy_(p)
            for flat in flats:
                dist.broadcast(flat, source, group=self.process_group)
            for view, p in zip(views, params):
                p.copy_(view[0])      # in place: the optimiser's NumPy views see it

    def _reduce(self, flats):
        for flat in flats:
            dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.process_group)
            flat.div_(self.world_size)
