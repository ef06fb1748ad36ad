"""madam.torch.MAdam: the NumPy madam.MAdam on torch parameters.

Every trajectory is compared bit for bit with madam.MAdam run on NumPy copies fed the same rows:
rows from ``.jac`` (what torchjd leaves) and from losses by autograd, with a solver and with a
fixed preference, pair sampling (and its backward-pass count), a checkpoint through
torch.save / BytesIO, an LR scheduler; then bad input that must leave everything unchanged."""
import io
import subprocess
import sys

import numpy as np
import pytest

import madam
from madam import solvers

from peer_import import require  # noqa: E402

torch = require("torch")

from madam.torch.madam import MAdam  # noqa: E402

DTYPES = {"float64": (torch.float64, np.float64), "float32": (torch.float32, np.float32)}


# ============================================================================ helpers
class Problem:
    """C regression objectives on a tiny tanh layer: W (6, 4), b (4,); f_i = mean((sum_k
    tanh(x W + b)_k - t_i)^2), conflicting targets t_i."""

    def __init__(self, n_obj=3, dtype=torch.float64, seed=0, n=16):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 6, generator=g, dtype=torch.float64).to(dtype)
        self.t = (3.0 * torch.randn(n_obj, n, generator=g, dtype=torch.float64)).to(dtype)
        self.w0 = (0.5 * torch.randn(6, 4, generator=g, dtype=torch.float64)).to(dtype)
        self.b0 = (0.1 * torch.randn(4, generator=g, dtype=torch.float64)).to(dtype)
        self.n_obj = n_obj

    def params(self):
        return [self.w0.clone().requires_grad_(), self.b0.clone().requires_grad_()]

    def losses(self, params, x=None, t=None):
        w, b = params
        x = self.x if x is None else x
        t = self.t if t is None else t
        out = torch.tanh(x @ w + b).sum(1)
        return [((out - ti) ** 2).mean() for ti in t]


def rows_of(losses, params):
    """Per-objective rows by autograd, as the optimiser computes them: list per param of
    (C, *shape) tensors."""
    per_obj = [torch.autograd.grad(loss, params, retain_graph=i + 1 < len(losses))
               for i, loss in enumerate(losses)]
    return [torch.stack([g[k] for g in per_obj]) for k in range(len(params))]


def loss_values(losses):
    return np.array([float(loss.detach()) for loss in losses], dtype=np.float64)


class Mirror:
    """madam.MAdam on NumPy copies of the parameters, with torch leaves sharing their memory
    (so the reference computes its rows on its own, equally updated, parameters)."""

    def __init__(self, params, **kwargs):
        self.arrays = [p.detach().numpy().copy() for p in params]
        self.tensors = [torch.from_numpy(a).requires_grad_() for a in self.arrays]
        self.opt = madam.MAdam(self.arrays, **kwargs)


def snapshot(opt, params):
    return [p.detach().clone() for p in params], opt.state_dict()


def same_state(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k])
                                                                      for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_state, a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def assert_unchanged(opt, params, before):
    values, sd = before
    for p, v in zip(params, values):
        assert torch.equal(p.detach(), v)
    assert same_state(opt.state_dict(), sd)


def assert_same_params(params, mirror):
    for p, a in zip(params, mirror.arrays):
        np.testing.assert_array_equal(p.detach().numpy(), a)


# ============================================================================ trajectories
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["solver", "preference"])
def test_jac_rows_match_numpy(dtype, mode):
    """Rows handed in as .jac (torchjd's layout) give madam.MAdam's parameters bit for bit."""
    tdt, _ = DTYPES[dtype]
    prob = Problem(3, tdt)
    params = prob.params()
    kw = dict(lr=3e-2, weight_decay=1e-3, rampup_steps=2)
    opt = MAdam(params, solver=solvers.MGDA(), **kw)
    ref = Mirror(params, solver=solvers.MGDA(), **kw)
    rng = np.random.default_rng(1)
    for _ in range(6):
        losses = prob.losses(params)
        rows = rows_of(losses, params)
        for p, r in zip(params, rows):
            p.jac = r
        pref = rng.dirichlet(np.ones(3)) if mode == "preference" else None
        assert opt.step(loss_values(losses), preference=pref)
        assert not hasattr(params[0], "jac")    # consumed, as torchjd's jac_to_grad does
        ref.opt.step([r.numpy() for r in rows], loss_values(losses), preference=pref)
        assert_same_params(params, ref)
        np.testing.assert_array_equal(opt.last_preference.numpy(), ref.opt.last_preference)
    assert opt.step_count == 6


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["mgda", "upgrad", "dwa", None])
def test_losses_match_numpy(dtype, solver):
    """Rows computed from the losses by autograd: the same bits as the reference computing its
    rows the same way on its own parameters (None: a fresh fixed preference every step)."""
    tdt, _ = DTYPES[dtype]
    prob = Problem(3, tdt, seed=2)
    params = prob.params()
    opt = MAdam(params, solver=solver, lr=1e-2)
    ref = Mirror(params, solver=solver, lr=1e-2)
    rng = np.random.default_rng(5)
    for _ in range(5):
        pref = None if solver else rng.dirichlet(np.ones(3))
        pref_t = None if pref is None else torch.tensor(pref)
        losses = prob.losses(params)
        assert opt.step(losses, preference=pref_t)
        ref_losses = prob.losses(ref.tensors)
        ref.opt.step([r.numpy() for r in rows_of(ref_losses, ref.tensors)],
                     loss_values(ref_losses), preference=pref)
        assert_same_params(params, ref)
        assert params[0].grad is None           # autograd.grad: .grad is left alone


def test_losses_as_one_tensor_and_closure():
    prob = Problem(2, seed=3)
    a, b = prob.params(), prob.params()
    opt_a, opt_b = MAdam(a, lr=1e-2), MAdam(b, lr=1e-2)
    for _ in range(3):
        opt_a.step(torch.stack(prob.losses(a)))
        opt_b.step(lambda: prob.losses(b))
    for p, q in zip(a, b):
        assert torch.equal(p, q)


class CountBackward(torch.autograd.Function):
    """Identity that counts how often its backward runs (per objective)."""
    counts = None

    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        CountBackward.counts[ctx.index] += 1
        return grad, None


@pytest.mark.parametrize("dtype", DTYPES)
def test_pair_sampling_from_losses(dtype):
    """pair_sampling=2 of C=5 with a preference: each step runs the 2 requested objectives'
    backward passes plus one for d = grad sum_i lam_i f_i, and equals madam.MAdam fed those
    rows and that d."""
    tdt, _ = DTYPES[dtype]
    c = 5
    prob = Problem(c, tdt, seed=4)
    params = prob.params()
    kw = dict(solver=None, n_obj=c, pair_sampling=2, lr=2e-2, seed=7)
    opt = MAdam(params, **kw)
    ref = Mirror(params, **kw)
    rng = np.random.default_rng(9)
    for _ in range(6):
        lam = rng.dirichlet(np.ones(c))
        CountBackward.counts = [0] * c
        losses = [CountBackward.apply(loss, i) for i, loss in enumerate(prob.losses(params))]
        wanted = opt.requested_objectives()
        assert opt.step(losses, preference=lam)
        expected = [1 + (i in wanted) for i in range(c)]   # all in d, the requested in a row
        assert CountBackward.counts == expected

        objs = ref.opt.requested_objectives()
        assert objs == wanted
        ref_losses = prob.losses(ref.tensors)
        weighted = None
        for j, weight in enumerate(lam):
            term = float(weight) * ref_losses[j]
            weighted = term if weighted is None else weighted + term
        d = torch.autograd.grad(weighted, ref.tensors, retain_graph=True)
        rows = rows_of([ref_losses[i] for i in objs], ref.tensors)
        ref.opt.step([r.numpy() for r in rows], preference=lam,
                     direction=[g.numpy() for g in d])
        assert_same_params(params, ref)


def test_pair_sampling_with_a_solver_reads_every_row():
    prob = Problem(4, seed=5)
    params = prob.params()
    opt = MAdam(params, solver="mgda", n_obj=4, pair_sampling=2, lr=1e-2)
    ref = Mirror(params, solver="mgda", n_obj=4, pair_sampling=2, lr=1e-2)
    for _ in range(3):
        CountBackward.counts = [0] * 4
        opt.step([CountBackward.apply(loss, i) for i, loss in enumerate(prob.losses(params))])
        assert CountBackward.counts == [1] * 4
        ref_losses = prob.losses(ref.tensors)
        ref.opt.step([r.numpy() for r in rows_of(ref_losses, ref.tensors)])
        assert_same_params(params, ref)


def test_torchjd_backward_fills_jac():
    """torchjd.autojac.backward / mtl_backward leave .jac (C, *shape): MAdam reads it."""
    autojac = pytest.importorskip("torchjd.autojac", reason="torchjd is a test-peers dependency")
    prob = Problem(3, seed=6)
    params = prob.params()
    opt = MAdam(params, lr=1e-2)
    ref = Mirror(params, lr=1e-2)
    for _ in range(3):
        autojac.backward(prob.losses(params))
        assert params[0].jac.shape == (3, 6, 4)
        opt.step()
        ref_losses = prob.losses(ref.tensors)
        ref.opt.step([r.numpy() for r in rows_of(ref_losses, ref.tensors)])
        for p, a in zip(params, ref.arrays):     # torchjd's vmapped rows: rounding only
            np.testing.assert_allclose(p.detach().numpy(), a, rtol=0, atol=1e-12)

    # mtl_backward: the shared layer gets .jac, the heads .grad (their own optimiser)
    torch.manual_seed(0)
    shared = torch.nn.Linear(5, 4).double()
    heads = [torch.nn.Linear(4, 1).double() for _ in range(2)]
    opt = MAdam(shared.parameters(), lr=1e-2)
    head_opt = torch.optim.SGD([p for h in heads for p in h.parameters()], lr=1e-2)
    x = torch.randn(8, 5, dtype=torch.float64)
    before = [p.detach().clone() for p in shared.parameters()]
    feats = torch.relu(shared(x))
    losses = [(h(feats) ** 2).mean() for h in heads]
    autojac.mtl_backward(losses, features=feats)
    opt.step(losses)
    head_opt.step()
    assert all(not torch.equal(p, q) for p, q in zip(shared.parameters(), before))


@pytest.mark.parametrize("variant", ["dwa", "sampling"])
def test_checkpoint_resume_bit_for_bit(variant):
    """torch.save / torch.load(weights_only=True) through BytesIO mid-run, then the same steps
    on both: equal bits (solver history, sampling stream and F included)."""
    prob = Problem(4, seed=8)
    if variant == "dwa":
        kw = dict(solver=solvers.DWA(), lr=1e-2)
    else:
        kw = dict(solver=None, n_obj=4, pair_sampling=2, lr=1e-2, seed=3,
                  estimator="ipw")
    rng = np.random.default_rng(0)
    prefs = [None if variant == "dwa" else rng.dirichlet(np.ones(4)) for _ in range(8)]
    params = prob.params()
    opt = MAdam(params, **kw)
    for t in range(4):
        opt.step(prob.losses(params), preference=prefs[t])
    buffer = io.BytesIO()
    torch.save({"model": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buffer)
    for t in range(4, 8):
        opt.step(prob.losses(params), preference=prefs[t])

    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=True)
    resumed = [p.clone().requires_grad_() for p in ckpt["model"]]
    kw2 = dict(kw, solver=solvers.DWA()) if variant == "dwa" else kw
    opt2 = MAdam(resumed, **kw2)
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.step_count == 4
    for t in range(4, 8):
        opt2.step(prob.losses(resumed), preference=prefs[t])
    for p, q in zip(params, resumed):
        assert torch.equal(p, q)
    assert same_state(opt.state_dict(), opt2.state_dict())


def test_state_dict_layout():
    prob = Problem(2, seed=1)
    params = prob.params()
    opt = MAdam(params, lr=1e-2)
    opt.step(prob.losses(params))
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups", "madam"}
    assert set(sd["state"][0]) == {"exp_avg", "exp_avg_sq", "fisher"}
    assert sd["state"][0]["fisher"].shape == (3, 6, 4)     # C (C + 1) / 2 pairs
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert sd["param_groups"][0]["lr"] == 1e-2
    assert sd["madam"]["step_count"] == 1


def test_lr_scheduler():
    """StepLR halves param_groups[0]['lr']; every step reads it (the reference gets the same
    lr by hand)."""
    prob = Problem(3, seed=9)
    params = prob.params()
    opt = MAdam(params, lr=4e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ref = Mirror(params, lr=4e-2)
    for t in range(6):
        opt.step(prob.losses(params))
        sched.step()
        ref_losses = prob.losses(ref.tensors)
        ref.opt.step([r.numpy() for r in rows_of(ref_losses, ref.tensors)])
        ref.opt.lr = 4e-2 * 0.5 ** ((t + 1) // 2)
        assert opt.param_groups[0]["lr"] == ref.opt.lr
        assert_same_params(params, ref)


def test_named_parameters_and_one_group():
    model = torch.nn.Linear(3, 2).double()
    opt = MAdam(model.named_parameters(), lr=1e-2)
    model.bias.jac = torch.zeros(2, 3, dtype=torch.float64)   # wrong shape: (C, 2) expected
    model.weight.jac = torch.zeros(2, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"params\[1\] \('bias'\)\.jac must have shape"):
        opt.step()
    with pytest.raises(ValueError, match="one param group"):
        MAdam([{"params": [model.weight]}, {"params": [model.bias]}])
    with pytest.raises(ValueError, match="one param group"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True, dtype=torch.float64)]})


def test_zero_grad_and_retain_jac():
    prob = Problem(2, seed=1)
    params = prob.params()
    opt = MAdam(params, lr=1e-2, retain_jac=True)
    rows = rows_of(prob.losses(params), params)
    for p, r in zip(params, rows):
        p.jac = r
    opt.step()
    assert params[0].jac is rows[0]
    opt.zero_grad()
    assert not hasattr(params[0], "jac") and not hasattr(params[1], "jac")


def test_stale_graph_is_refused():
    """The kernel writes through NumPy, and the step bumps the parameters' version counters:
    a graph that saved a parameter before the step refuses a later backward."""
    prob = Problem(2, seed=1)
    params = prob.params()
    opt = MAdam(params, lr=1e-2)
    stale = (params[0] * params[0]).sum()
    opt.step(prob.losses(params))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        stale.backward()


def test_import_madam_does_not_import_torch():
    code = "import sys, madam; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ============================================================================ bad input
def test_bad_params_at_construction():
    with pytest.raises(TypeError, match=r"params\[0\] has dtype torch.bfloat16"):
        MAdam([torch.zeros(3, dtype=torch.bfloat16, requires_grad=True)])
    leaf = torch.zeros(4, 3, dtype=torch.float64).t().requires_grad_()
    with pytest.raises(ValueError, match=r"params\[1\] is not contiguous"):
        MAdam([torch.zeros(2, dtype=torch.float64, requires_grad=True), leaf])
    with pytest.raises(ValueError, match="lr"):
        MAdam([torch.zeros(2, dtype=torch.float64, requires_grad=True)], lr=-1.0)


def _prepared(n_obj=3, **kw):
    prob = Problem(n_obj, seed=11)
    params = prob.params()
    opt = MAdam(params, lr=1e-2, **kw)
    opt.step(prob.losses(params))            # a state worth protecting
    return prob, params, opt


def test_param_changed_after_construction():
    prob, params, opt = _prepared()
    before = snapshot(opt, params)
    params[1].data = params[1].data.to(torch.bfloat16)
    with pytest.raises(TypeError, match=r"params\[1\] has dtype torch.bfloat16"):
        opt.step(prob.losses(params))
    params[1].data = torch.zeros(4, dtype=torch.float64)       # reallocated
    with pytest.raises(ValueError, match=r"params\[1\] was reallocated"):
        opt.step(prob.losses(params))
    params[1].data = before[0][1].clone()
    assert opt.step_count == 1
    assert same_state(opt.state_dict(), before[1])


def test_nan_row_changes_nothing():
    prob, params, opt = _prepared()
    before = snapshot(opt, params)
    rows = rows_of(prob.losses(params), params)
    rows[1][2, 0] = float("nan")
    for p, r in zip(params, rows):
        p.jac = r
    with pytest.raises(madam.NonFiniteError, match=r"the rows of params\[1\] contains NaN"):
        opt.step()
    assert_unchanged(opt, params, before)
    assert hasattr(params[0], "jac")         # a refused step leaves the rows too
    opt.zero_grad()
    # from losses: a NaN target makes one objective's gradient NaN
    t = prob.t.clone()
    t[0, 3] = float("nan")
    with pytest.raises(madam.NonFiniteError):
        opt.step(prob.losses(params, t=t))
    assert_unchanged(opt, params, before)
    # "skip" counts it and changes nothing else
    opt.param_groups[0]["nonfinite"] = "skip"
    assert opt.step(prob.losses(params, t=t)) is False
    assert opt.skipped_steps == 1 and opt.step_count == 1
    for p, v in zip(params, before[0]):
        assert torch.equal(p.detach(), v)


@pytest.mark.parametrize("pref, match", [
    ([0.5, 0.6, 0.1], "sum to 1"),
    ([0.5, 0.5], "2 entries but there are 3"),
    ([1.5, -0.5, 0.0], ">= 0"),
    ([float("nan"), 0.5, 0.5], "finite"),
])
def test_wrong_preference_changes_nothing(pref, match):
    prob, params, opt = _prepared()
    before = snapshot(opt, params)
    CountBackward.counts = [0] * 3
    losses = [CountBackward.apply(loss, i) for i, loss in enumerate(prob.losses(params))]
    with pytest.raises(ValueError, match=match):
        opt.step(losses, preference=torch.tensor(pref, dtype=torch.float64))
    assert CountBackward.counts == [0, 0, 0]      # refused before any backward pass
    assert_unchanged(opt, params, before)


def test_bad_rows_and_losses_change_nothing():
    prob, params, opt = _prepared()
    before = snapshot(opt, params)
    rows = rows_of(prob.losses(params), params)
    params[0].jac = rows[0]
    with pytest.raises(ValueError, match=r"params\[1\] has no \.jac"):
        opt.step()
    params[1].jac = rows[1].float()
    with pytest.raises(TypeError, match=r"params\[1\]\.jac has dtype torch.float32"):
        opt.step()
    params[1].jac = rows[1][:2]
    with pytest.raises(ValueError, match=r"params\[1\]\.jac has 2 rows"):
        opt.step()
    opt.zero_grad()
    with pytest.raises(TypeError, match="needs losses"):
        opt.step()
    with pytest.raises(ValueError, match=r"losses\[1\] does not require grad"):
        opt.step([prob.losses(params)[0], torch.tensor(1.0)])
    with pytest.raises(ValueError, match="2 entries but this MAdam has 3"):
        opt.step(prob.losses(params)[:2])
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\]"):
        opt.step(prob.losses(params))
    opt.param_groups[0]["lr"] = 1e-2
    assert_unchanged(opt, params, before)


def test_bad_state_dict_changes_nothing():
    prob, params, opt = _prepared()
    before = snapshot(opt, params)
    sd = opt.state_dict()
    broken = {**sd, "state": {**sd["state"], 0: {**sd["state"][0],
                                                 "exp_avg_sq": -sd["state"][0]["exp_avg_sq"]}}}
    with pytest.raises(ValueError, match="negative"):
        opt.load_state_dict(broken)
    groups = [dict(sd["param_groups"][0], lr=-3.0)]
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict({**sd, "param_groups": groups})
    with pytest.raises(ValueError, match="one group"):
        opt.load_state_dict({**sd, "param_groups": sd["param_groups"] * 2})
    assert_unchanged(opt, params, before)


def test_frozen_parameter_and_public_name():
    """A parameter that does not require grad gets zero rows (and does not move); the class is
    madam.torch.MAdam."""
    import madam.torch

    assert madam.torch.MAdam is MAdam
    prob = Problem(2, seed=12)
    params = prob.params()
    params[1].requires_grad_(False)
    before = params[1].clone()
    opt = MAdam(params, lr=1e-2)
    for _ in range(3):
        opt.step(prob.losses(params))
    assert torch.equal(params[1], before)
    assert not torch.equal(params[0], prob.w0)
