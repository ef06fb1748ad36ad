"""madam.torch.distributed.DistributedMAdam: two gloo processes on 127.0.0.1, each on its half of
the batch, must end with identical parameters (bit for bit across ranks) that equal one process
stepping madam.torch.MAdam on the whole batch (1e-12 in float64).

The workers are this file run as a script (``python test_torch_distributed.py RANK WORLD PORT
OUT``); the test waits for them at most TIMEOUT seconds and fails with their output if they
hang."""
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

if os.environ.get("CI") or __name__ == "__main__":
    import torch
else:
    torch = pytest.importorskip(
        "torch", reason="torch is a test-peers dependency: pip install -e '.[test-peers]'")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 120
STEPS = 5
N, SHARD = 16, 8         # union batch, per-rank shard (2 ranks)

# name -> (dtype, MAdam keyword arguments, rows from .jac, fixed preferences)
MODES = {
    "mgda": (torch.float64, dict(solver="mgda", lr=2e-2, weight_decay=1e-3), False, False),
    "upgrad-jac": (torch.float64, dict(solver="upgrad", lr=2e-2), True, False),
    "dwa": (torch.float64, dict(solver="dwa", lr=2e-2), False, False),
    "sampling": (torch.float64, dict(solver=None, n_obj=4, pair_sampling=2, seed=5, lr=2e-2),
                 False, True),
    "float32": (torch.float32, dict(solver="mgda", lr=2e-2), False, False),
}


def problem(dtype):
    """4 objectives on a tanh layer; the union batch (x, targets) and starting parameters."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 5, generator=g, dtype=torch.float64)
    t = 2.0 * torch.randn(4, N, generator=g, dtype=torch.float64) + 1.0
    w = 0.5 * torch.randn(5, 3, generator=g, dtype=torch.float64)
    b = 0.1 * torch.randn(3, generator=g, dtype=torch.float64)
    return x.to(dtype), t.to(dtype), [w.to(dtype), b.to(dtype)]


def losses_of(params, x, t):
    w, b = params
    out = torch.tanh(x @ w + b).sum(1)
    return [((out - ti) ** 2).mean() for ti in t]


def preferences():
    rng = np.random.default_rng(11)
    return [rng.dirichlet(np.ones(4)) for _ in range(STEPS)]


def train(opt_cls, mode, params, x, t, **extra):
    """STEPS steps of ``opt_cls`` on (x, t); returns the params and the last preference."""
    dtype, kwargs, from_jac, fixed = MODES[mode]
    opt = opt_cls(params, **kwargs, **extra)
    prefs = preferences()
    for step in range(STEPS):
        losses = losses_of(params, x, t)
        if from_jac:
            per_obj = [torch.autograd.grad(loss, params, retain_graph=True) for loss in losses]
            for k, p in enumerate(params):
                p.jac = torch.stack([g[k] for g in per_obj])
        opt.step(losses, preference=prefs[step] if fixed else None)
    return [p.detach().clone() for p in params], opt.last_preference


def worker(rank, world, port, out):
    import torch.distributed as dist

    from madam.torch.distributed import DistributedMAdam

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=__import__("datetime").timedelta(
                                seconds=TIMEOUT))
    results = {}
    for mode, (dtype, _, _, _) in MODES.items():
        x, t, start = problem(dtype)
        params = [(p + 0.25 * rank).requires_grad_() for p in start]   # rank 0's win
        shard = slice(rank * SHARD, (rank + 1) * SHARD)
        results[mode] = train(DistributedMAdam, mode, params, x[shard], t[:, shard])
    torch.save(results, out)
    dist.barrier()
    dist.destroy_process_group()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run the two workers once; their results (a dict per rank)."""
    folder = tmp_path_factory.mktemp("dist")
    port = free_port()
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    procs, outs = [], []
    for rank in range(2):
        out = folder / f"rank{rank}.pt"
        log = open(folder / f"rank{rank}.log", "w+")
        procs.append((subprocess.Popen([sys.executable, os.path.abspath(__file__), str(rank),
                                        "2", str(port), str(out)], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=ROOT), log))
        outs.append(out)
    deadline = time.monotonic() + TIMEOUT
    failed = []
    for proc, log in procs:
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other, _ in procs:
                other.kill()
            failed.append(f"timed out after {TIMEOUT} s")
        if proc.returncode not in (0, None):
            failed.append(f"exit status {proc.returncode}")
    logs = []
    for proc, log in procs:
        proc.wait()
        log.seek(0)
        logs.append(log.read())
        log.close()
    if failed:
        pytest.fail("distributed workers failed: " + "; ".join(failed) + "\n" +
                    "\n".join(f"--- rank {r} ---\n{text[-3000:]}" for r, text in enumerate(logs)))
    return [torch.load(out, weights_only=True) for out in outs]


@pytest.mark.parametrize("mode", MODES)
def test_ranks_identical(ranks, mode):
    (p0, lam0), (p1, lam1) = ranks[0][mode], ranks[1][mode]
    for a, b in zip(p0, p1):
        assert torch.equal(a, b)
    assert torch.equal(lam0, lam1)


@pytest.mark.parametrize("mode", MODES)
def test_equals_one_process_on_the_union(ranks, mode):
    from madam.torch.madam import MAdam

    dtype = MODES[mode][0]
    x, t, start = problem(dtype)
    params = [p.clone().requires_grad_() for p in start]
    expected, lam = train(MAdam, mode, params, x, t)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for got, want in zip(ranks[0][mode][0], expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(ranks[0][mode][1].numpy(), lam.numpy(), rtol=0, atol=tol)
    moved = max(float((a - b).abs().max()) for a, b in zip(expected, start))
    assert moved > 1e-3                # the runs did move


def test_needs_a_process_group():
    import torch.distributed as dist

    from madam.torch.distributed import DistributedMAdam

    if dist.is_initialized():
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedMAdam([torch.zeros(2, dtype=torch.float64, requires_grad=True)])


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    worker(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
