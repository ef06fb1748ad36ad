"""madam.torch's first-order optimisers and MADA (torch.optim.Optimizer subclasses).

* against torch.optim (SGD with momentum, dampening, Nesterov and weight decay; Adam; AdamW;
  Adam(amsgrad=True) for AMSGrad): a 2-layer MLP on fixed data, 200 steps with a LambdaLR
  schedule, normwise relative deviation of the parameters below 1e-12 (float64) / 2e-5 (float32)
  over the whole trajectory (torch rounds differently: lerp, fused multiply-adds; see peers.py);
* against madam's NumPy classes (every optimiser): the same kernels on views of a twin model,
  bit for bit;
* checkpoints: state_dict -> torch.save -> torch.load -> a fresh optimiser resumes bit for bit;
* refusals (each names the parameter or the group's hyperparameter, and changes nothing):
  non-CPU, fp16/bf16, non-contiguous or overlapping parameters, bad gradients, bad
  hyperparameters, NaN gradients under each policy, bad state dicts;
* ``import madam`` does not import torch.
"""
import copy
import io
import subprocess
import sys

import numpy as np
import pytest

from peer_import import require  # noqa: E402

torch = require("torch")

import madam  # noqa: E402
import madam.torch as mt  # noqa: E402
from madam import NonFiniteError  # noqa: E402

STEPS = 200         # the trajectories compared with torch.optim
RESUME_STEPS = 100  # the bit-for-bit runs (checkpointed at half)
TOL = {torch.float64: 1e-12, torch.float32: 2e-5}
DTYPES = [torch.float64, torch.float32]


def schedule(k):
    """LambdaLR's factor at epoch k (not a power of two, so lr's rounding is exercised)."""
    return 1.0 / (1.0 + 0.01 * k)


# name -> (madam.torch class, madam NumPy class, hyperparameters)
CASES = {
    "SGD": (mt.SGD, madam.SGD, dict(lr=0.05)),
    "SGD-momentum": (mt.SGD, madam.SGD,
                     dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    "SGD-nesterov": (mt.SGD, madam.SGD,
                     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    "Adam": (mt.Adam, madam.Adam, dict(lr=1e-2, weight_decay=1e-3)),
    "AdamW": (mt.AdamW, madam.AdamW, dict(lr=1e-2, weight_decay=0.05)),
    "AMSGrad": (mt.AMSGrad, madam.AMSGrad, dict(lr=1e-2, betas=(0.8, 0.99))),
    "AVGrad": (mt.AVGrad, madam.AVGrad, dict(lr=1e-2, weight_decay=1e-3)),
    "Yogi": (mt.Yogi, madam.Yogi, dict(lr=1e-2, weight_decay=1e-3, initial_accumulator=1e-3)),
    "Adan": (mt.Adan, madam.Adan, dict(lr=1e-2, weight_decay=1e-2)),
    "Adan-decoupled": (mt.Adan, madam.Adan, dict(lr=1e-2, weight_decay=1e-2, proximal=False)),
    "Lion": (mt.Lion, madam.Lion, dict(lr=1e-3, weight_decay=1e-2)),
    "MADA": (mt.MADA, madam.MADA, dict(lr=1e-2, hyper_start=5)),
    "MADA-delay": (mt.MADA, madam.MADA, dict(lr=1e-2, hyper_start=5, hyper_delay=True,
                                            init="yogi", v_init=0.0)),
}
# name -> (torch.optim class, its hyperparameters) where torch has the optimiser
TORCH_PEERS = {
    "SGD": (torch.optim.SGD, dict(lr=0.05)),
    "SGD-momentum": (torch.optim.SGD,
                     dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    "SGD-nesterov": (torch.optim.SGD,
                     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    "Adam": (torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-3)),
    "AdamW": (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.05)),
    "AMSGrad": (torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), amsgrad=True)),
}
ONE_PER_CLASS = ["SGD-momentum", "Adam", "AdamW", "AMSGrad", "AVGrad", "Yogi", "Adan", "Lion",
                 "MADA"]


# ------------------------------------------------------------------------------ helpers
@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The problems are tiny: torch's intra-op threads only add synchronisation (and, on a
    loaded machine, waiting for a core)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def make_problem(dtype, seed=0):
    """A 2-layer MLP and a fixed regression batch (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(),
                                    torch.nn.Linear(16, 2)).to(dtype)
        x = torch.randn(32, 6, dtype=dtype)
        y = torch.randn(32, 2, dtype=dtype)
    return model, x, y


def backward(model, x, y):
    model.zero_grad(set_to_none=True)
    loss = (model(x) - y).square().mean()
    loss.backward()
    return loss


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def build(name, params, **override):
    cls, _, kw = CASES[name]
    return cls(params, **{**kw, **override})


def snapshot(model, opt):
    """Copies of the parameters, and the optimiser's state_dict flattened to (key, leaf)."""
    return [p.detach().clone() for p in model.parameters()], _tensors(opt.state_dict())


def _tensors(obj, path=""):
    """Every leaf (tensor or plain value) of a nested state_dict as (path, leaf), in order."""
    if isinstance(obj, dict):
        return [leaf for key in obj for leaf in _tensors(obj[key], f"{path}{key}.")]
    if isinstance(obj, (list, tuple)):
        return [leaf for i, item in enumerate(obj) for leaf in _tensors(item, f"{path}{i}.")]
    return [(path[:-1], obj)]


def same(a, b):
    """Bitwise equality of two snapshots (NaN equal to NaN)."""
    (pa, sa), (pb, sb) = a, b
    if len(pa) != len(pb) or any(not torch.equal(x, y) for x, y in zip(pa, pb)):
        return False
    if [k for k, _ in sa] != [k for k, _ in sb]:
        return False
    for (_, x), (_, y) in zip(sa, sb):
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and x.shape == y.shape
                    and torch.equal(torch.nan_to_num(x, nan=7.0), torch.nan_to_num(y, nan=7.0))
                    and torch.equal(x.isnan(), y.isnan())):
                return False
        elif x != y and not (x != x and y != y):
            return False
    return True


# ------------------------------------------------------------------------------ trajectories
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(TORCH_PEERS))
def test_matches_torch_optim(name, dtype):
    model, x, y = make_problem(dtype)
    peer_model = copy.deepcopy(model)
    opt = build(name, model.parameters())
    peer_cls, peer_kw = TORCH_PEERS[name]
    peer = peer_cls(peer_model.parameters(), **peer_kw)
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, schedule) for o in (opt, peer)]
    worst = 0.0
    for _ in range(STEPS):
        for m, o, s in ((model, opt, scheds[0]), (peer_model, peer, scheds[1])):
            backward(m, x, y)
            o.step()
            s.step()
        a, b = flat(model), flat(peer_model)
        worst = max(worst, float((a - b).norm() / b.norm()))
    assert worst < TOL[dtype], f"{name}: relative deviation {worst:.3g}"
    assert float((flat(model) - flat(make_problem(dtype)[0])).norm()) > 1e-3  # it did train
    assert opt.param_groups[0]["lr"] == peer.param_groups[0]["lr"]
    # same state names and values (up to rounding) as torch.optim
    for p, q in zip(model.parameters(), peer_model.parameters()):
        names = set(peer.state[q]) - ({"step"} if name.startswith("SGD") else set())
        assert set(opt.state[p]) == names
        for key in names - {"step"}:
            torch.testing.assert_close(opt.state[p][key], peer.state[q][key],
                                       rtol=1e-3, atol=1e-5)
        if "step" in names:
            assert float(opt.state[p]["step"]) == float(peer.state[q]["step"]) == STEPS


def _resume(cls, kw, dtype, model, opt, sched):
    """Checkpoint model, optimiser and scheduler through torch.save/torch.load (weights_only),
    then load them into fresh ones (other weights, another lr, which the checkpoint replaces)."""
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    model, _, _ = make_problem(dtype, seed=1)
    model.load_state_dict(ckpt["model"])
    opt = cls(model.parameters(), **{**kw, "lr": 0.123})
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    opt.load_state_dict(ckpt["opt"])  # after building the scheduler, as torch documents
    sched.load_state_dict(ckpt["sched"])
    return model, opt, sched


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_numpy_class_and_checkpoint_bit_for_bit(name, dtype):
    """Three runs in lockstep under a LambdaLR schedule, equal bit for bit at every step:
    madam.torch uninterrupted; madam.torch checkpointed halfway and resumed in a fresh model,
    optimiser and scheduler; and madam's NumPy class (the same kernels) on views of a twin
    model's parameters."""
    cls, np_cls, kw = CASES[name]
    model, x, y = make_problem(dtype)
    opt = cls(model.parameters(), **kw)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model_b = copy.deepcopy(model)
    opt_b = cls(model_b.parameters(), **kw)
    sched_b = torch.optim.lr_scheduler.LambdaLR(opt_b, schedule)
    twin = copy.deepcopy(model)
    ref = np_cls([p.detach().numpy() for p in twin.parameters()], **kw)
    for k in range(RESUME_STEPS):
        if k == RESUME_STEPS // 2:
            model_b, opt_b, sched_b = _resume(cls, kw, dtype, model_b, opt_b, sched_b)
        for m, o, s in ((model, opt, sched), (model_b, opt_b, sched_b)):
            backward(m, x, y)
            o.step()
            s.step()
        backward(twin, x, y)
        ref.lr = kw["lr"] * schedule(k)
        ref.step([p.grad.numpy() for p in twin.parameters()])
        assert torch.equal(flat(model), flat(twin)), f"{name}: differs at step {k + 1}"
        assert torch.equal(flat(model), flat(model_b)), f"{name}: resumed differs at {k + 1}"
    assert same(snapshot(model, opt), snapshot(model_b, opt_b))
    if cls is mt.MADA:
        assert opt.coefficients == ref.coefficients
        assert opt.coefficients != madam.mada.VERTICES[kw.get("init", "adam")]  # it learned
    else:
        for i, p in enumerate(model.parameters()):
            for key in ref._buffers:
                if key in opt.state[p]:
                    assert np.array_equal(opt.state[p][key].numpy(), ref._state[i][key]), key


def test_torch_optim_checkpoint_loads():
    """A torch.optim.Adam state_dict (same state names) resumes in madam.torch.Adam."""
    model, x, y = make_problem(torch.float64)
    peer_model = copy.deepcopy(model)
    peer = torch.optim.Adam(peer_model.parameters(), lr=1e-2)
    for _ in range(20):
        backward(peer_model, x, y)
        peer.step()
    model.load_state_dict(peer_model.state_dict())
    opt = mt.Adam(model.parameters())
    opt.load_state_dict(peer.state_dict())
    assert opt.param_groups[0]["lr"] == 1e-2 and opt.nonfinite == "raise"
    for _ in range(20):
        for m, o in ((model, opt), (peer_model, peer)):
            backward(m, x, y)
            o.step()
    a, b = flat(model), flat(peer_model)
    assert float((a - b).norm() / b.norm()) < 1e-13


# ------------------------------------------------------------------------------ torch semantics
@pytest.mark.parametrize("name", ONE_PER_CLASS[:-1])
def test_param_without_grad_is_skipped(name):
    model, x, y = make_problem(torch.float64)
    frozen = model[2].bias
    before = frozen.detach().clone()
    opt = build(name, model.parameters())
    for _ in range(3):
        backward(model, x, y)
        frozen.grad = None
        opt.step()
    assert torch.equal(frozen, before) and not opt.state.get(frozen)
    assert not torch.equal(model[0].weight, make_problem(torch.float64)[0][0].weight)


def test_closure_and_version_counter():
    model, x, y = make_problem(torch.float64)
    opt = mt.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():  # the closure still runs with gradients enabled, as in torch.optim
        loss = opt.step(lambda: backward(model, x, y))
    assert loss.ndim == 0 and opt.state[model[0].weight]["step"] == 1
    # the kernels write behind autograd's back; the version bump makes autograd notice
    out = (model(x) - y).square().mean()
    backward(model, x, y)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_group_hyperparameters_and_scheduler():
    model, x, y = make_problem(torch.float32)
    opt = mt.Adam([{"params": model[0].parameters(), "lr": 1e-2},
                   {"params": model[2].parameters()}], lr=1e-3, betas=(0.8, 0.9))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    backward(model, x, y)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [5e-3, 5e-4]
    assert opt.param_groups[1]["betas"] == (0.8, 0.9)


def test_import_madam_does_not_import_torch():
    code = "import madam, sys; assert 'torch' not in sys.modules, 'madam imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_attributes():
    assert {"SGD", "Adam", "AdamW", "AMSGrad", "AVGrad", "Yogi", "Adan", "Lion", "MADA",
            "MAdam"} <= set(mt.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nadam'"):
        mt.Nadam  # noqa: B018


def test_missing_torch_message():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import madam.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert 'pip install "madam[torch]"' in out


# ------------------------------------------------------------------------------ refusals
BAD_PARAMS = {
    "meta": (lambda: torch.empty(3, device="meta"), ValueError, "is on meta"),
    "float16": (lambda: torch.zeros(3, dtype=torch.float16), TypeError, "torch.float16"),
    "bfloat16": (lambda: torch.zeros(3, dtype=torch.bfloat16), TypeError, "torch.bfloat16"),
    "int": (lambda: torch.zeros(3, dtype=torch.int64), TypeError, "torch.int64"),
    "transposed": (lambda: torch.zeros(3, 4).t(), ValueError, "not contiguous"),
}


@pytest.mark.parametrize("bad", list(BAD_PARAMS))
@pytest.mark.parametrize("name", ONE_PER_CLASS)
def test_bad_param_refused_at_construction(name, bad):
    make, exc, text = BAD_PARAMS[bad]
    good = torch.nn.Parameter(torch.zeros(2))
    param = torch.nn.Parameter(make(), requires_grad=make().is_floating_point())
    with pytest.raises(exc, match=text) as info:
        build(name, [good, param])
    assert "param_groups[0]['params'][1]" in str(info.value)


def test_named_parameters_name_the_module():
    model = torch.nn.Linear(2, 2).half()
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[0\] \('weight'\)"):
        mt.Adam(model.named_parameters())


def test_shared_memory_refused():
    base = torch.zeros(10)
    a, b = torch.nn.Parameter(base[:6]), torch.nn.Parameter(base[4:])
    with pytest.raises(ValueError, match="share memory"):
        mt.Adam([a, b])
    opt = mt.SGD([torch.nn.Parameter(base[:4])])
    with pytest.raises(ValueError, match="share memory"):
        opt.add_param_group({"params": [torch.nn.Parameter(base[2:])]})
    assert len(opt.param_groups) == 1  # the refused group was not added


def _bad_grad(kind, p):
    if kind == "transposed":
        p.grad = torch.ones(p.shape[1], p.shape[0], dtype=p.dtype).t()
        return ValueError, "not contiguous"
    if kind == "sparse":
        p.grad = torch.ones(p.shape, dtype=p.dtype).to_sparse()
        return TypeError, "layout"
    if kind == "dtype":  # the param changed dtype after backward, its grad did not
        p.grad = torch.ones_like(p)
        p.data = p.data.double()
        return TypeError, "has dtype torch.float32 but its parameter has torch.float64"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["transposed", "sparse", "dtype"])
@pytest.mark.parametrize("name", ONE_PER_CLASS)
def test_bad_grad_refused_and_nothing_changes(name, kind):
    model, x, y = make_problem(torch.float32)
    opt = build(name, model.parameters())
    backward(model, x, y)
    opt.step()
    backward(model, x, y)
    before = snapshot(model, opt)
    exc, text = _bad_grad(kind, model[2].weight)
    with pytest.raises(exc, match=text) as info:
        opt.step()
    assert "param_groups[0]['params'][2].grad" in str(info.value)
    if kind == "dtype":
        model[2].weight.data = model[2].weight.data.float()
    assert same(before, snapshot(model, opt))


@pytest.mark.parametrize("policy", ["raise", "skip", "ignore"])
@pytest.mark.parametrize("name", ONE_PER_CLASS)
def test_nan_gradient_policy(name, policy):
    model, x, y = make_problem(torch.float64)
    opt = build(name, model.parameters(), nonfinite=policy)
    twin_model = copy.deepcopy(model)
    twin = build(name, twin_model.parameters())
    for m, o in ((model, opt), (twin_model, twin)):
        for _ in range(3):
            backward(m, x, y)
            o.step()
    backward(model, x, y)
    model[2].bias.grad[1] = float("nan")  # the last parameter: the others must not move either
    before = snapshot(model, opt)
    if policy == "raise":
        with pytest.raises(NonFiniteError, match=r"param_groups\[0\]\['params'\]\[3\]\.grad"):
            opt.step()
    else:
        opt.step()
    if policy == "ignore":
        _, state = snapshot(model, opt)
        assert not all(torch.isfinite(v).all() for _, v in state if isinstance(v, torch.Tensor))
        return
    after = snapshot(model, opt)
    if policy == "skip":
        assert opt.skipped_steps == 1 and opt.state_dict()["madam"]["skipped_steps"] == 1
        after[1][:] = [(k, 0 if k == "madam.skipped_steps" else v) for k, v in after[1]]
    assert same(before, after)
    if policy == "skip":  # the run goes on as if the bad step never happened
        for m, o in ((model, opt), (twin_model, twin)):
            backward(m, x, y)
            o.step()
        assert torch.equal(flat(model), flat(twin_model))


def _two_group_opt(name):
    model, x, y = make_problem(torch.float32)
    cls, _, kw = CASES[name]
    if cls is mt.MADA:
        return model, x, y, cls(model.parameters(), **kw), 0
    return model, x, y, cls([{"params": model[0].parameters()},
                             {"params": model[2].parameters()}], **kw), 1


@pytest.mark.parametrize("value, exc, text", [
    (-1e-3, ValueError, "must be >= 0"), (float("nan"), ValueError, "must be finite"),
    ("0.1", TypeError, "must be a real number"), (1e10, ValueError, "must be <= 4.295e"),
])
@pytest.mark.parametrize("name", ONE_PER_CLASS)
def test_bad_lr_in_a_group_names_it(name, value, exc, text):
    model, x, y, opt, g = _two_group_opt(name)
    label = rf"param_groups\[{g}\]\['lr'\]"
    backward(model, x, y)
    opt.step()
    backward(model, x, y)
    before, lr = snapshot(model, opt), opt.param_groups[g]["lr"]
    opt.param_groups[g]["lr"] = value
    with pytest.raises(exc, match=label + ".*" + text):
        opt.step()
    opt.param_groups[g]["lr"] = lr
    assert same(before, snapshot(model, opt))  # group 0 was not updated either
    cls, _, kw = CASES[name]
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]},
              {"params": [torch.nn.Parameter(torch.zeros(2))], "lr": value}]
    with pytest.raises((ValueError, TypeError), match=r"param_groups\[1\]|single param group"):
        cls(groups, **kw)


@pytest.mark.parametrize("name", ["Adam", "SGD-nesterov", "Adan"])
def test_other_bad_hyperparameters(name):
    p = torch.nn.Parameter(torch.zeros(3))
    if name == "Adam":
        with pytest.raises(ValueError, match=r"param_groups\[0\]\['betas'\]\[1\] must be in"):
            mt.Adam([p], betas=(0.9, 1.0))
        with pytest.raises(ValueError, match=r"param_groups\[0\]\['amsgrad'\].*AMSGrad"):
            mt.Adam([{"params": [p], "amsgrad": True}])
    elif name == "SGD-nesterov":
        with pytest.raises(ValueError, match=r"param_groups\[0\]: nesterov=True needs"):
            mt.SGD([p], momentum=0.0, nesterov=True)
    else:
        with pytest.raises(ValueError, match=r"param_groups\[0\]\['betas'\] must have 3"):
            mt.Adan([p], betas=(0.9, 0.9))
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        build(name, [p], nonfinite="warn")


def test_mada_specifics():
    model, x, y = make_problem(torch.float64)
    opt = mt.MADA(model.parameters(), hyper_start=0, learn=("beta1", "lr"),
                  hyper_lr={"lr": 1e-6})
    with pytest.raises(ValueError, match="single param group"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))]})
    for _ in range(5):
        backward(model, x, y)
        opt.step()
    assert opt.param_groups[0]["lr"] == opt.mada.lr != 1e-3  # the learned lr is written back
    assert len(opt.history()["step"]) == 5 and opt.state_dict()["state"] == {}
    backward(model, x, y)
    model[0].bias.grad = None
    with pytest.raises(ValueError, match=r"\['params'\]\[1\]\.grad is None while other"):
        opt.step()
    backward(model, x, y)
    model[0].bias.data = model[0].bias.data.clone()
    with pytest.raises(ValueError, match=r"\['params'\]\[1\] no longer has the memory"):
        opt.step()


@pytest.mark.parametrize("corrupt, exc, text", [
    (lambda sd: sd["state"][0]["exp_avg_sq"].fill_(-1.0), ValueError, "negative entries"),
    (lambda sd: sd["state"][1]["exp_avg"].fill_(float("inf")), ValueError, "NaN or Inf"),
    (lambda sd: sd["state"][1].__setitem__("exp_avg", torch.zeros(3)), ValueError, "shape"),
    (lambda sd: sd["state"][1].__setitem__("extra", torch.zeros(3)), ValueError, "unknown"),
    (lambda sd: sd["state"][1].__setitem__("step", torch.tensor(1.5)), ValueError, "whole"),
    (lambda sd: sd["state"].__setitem__(9, {}), ValueError, "no param group lists"),
    (lambda sd: sd["param_groups"][0].__setitem__("eps", -1.0), ValueError,
     r"state_dict\['param_groups'\]\[0\]\['eps'\] must be >= 0"),
    (lambda sd: sd["madam"].__setitem__("optimizer", "AdamW"), ValueError, "AdamW"),
    (lambda sd: sd["madam"].__setitem__("nonfinite", "warn"), ValueError, "nonfinite"),
])
def test_bad_state_dict_refused_and_nothing_changes(corrupt, exc, text):
    model, x, y = make_problem(torch.float64)
    opt = mt.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        backward(model, x, y)
        opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf)
    before = snapshot(model, opt)
    corrupt(sd)
    with pytest.raises(exc, match=text):
        opt.load_state_dict(sd)
    assert same(before, snapshot(model, opt))


def test_bad_mada_state_dict_refused():
    model, x, y = make_problem(torch.float64)
    opt = mt.MADA(model.parameters(), hyper_start=0)
    backward(model, x, y)
    opt.step()
    sd = opt.state_dict()
    before = snapshot(model, opt)
    sd["mada"]["coef.beta1"] = 2.0
    with pytest.raises(ValueError, match="coef.beta1"):
        opt.load_state_dict(sd)
    assert same(before, snapshot(model, opt))
