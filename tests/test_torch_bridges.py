"""madam.torch.bridges: madam's solvers as torchjd weightings and aggregators.

The bridged weighting must return madam's own weights for the same matrix (1e-12 in float64),
the aggregators must plug into torchjd's autojac (backward / mtl_backward + jac_to_grad) and
autogram (Engine) and train a tiny model, and the LibMTL recipe of docs/torch-madam.md runs
where LibMTL imports."""
import pathlib
import re

import numpy as np
import pytest

from madam import solvers

from peer_import import require  # noqa: E402

torch, _ = require("torch", "torchjd")

from torchjd.aggregation import GramianWeightedAggregator, WeightedAggregator  # noqa: E402
from torchjd.autojac import backward, jac_to_grad, mtl_backward  # noqa: E402

from madam.torch import bridges  # noqa: E402

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "torch-madam.md"

# name -> (factory, whether it reads loss values)
SOLVERS = {
    "mgda": (solvers.MGDA, False),
    "upgrad": (solvers.UPGrad, False),
    "nashmtl": (solvers.NashMTL, False),
    "cagrad": (solvers.CAGrad, False),
    "imtlg": (solvers.IMTLG, False),
    "pcgrad": (lambda: solvers.PCGrad(seed=3), False),
    "rlw": (lambda: solvers.RLW(seed=3), False),
    "dwa": (solvers.DWA, True),
    "epo": (lambda: solvers.EPO(preference=[0.2, 0.3, 0.5]), True),
    "linear": (lambda: solvers.LinearScalarization(preference=[0.2, 0.3, 0.5]), False),
}


def jacobian(seed, m=3, n=40):
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([1.0, 3.0, 0.2], dtype=torch.float64)[:m, None]
    return scale * torch.randn(m, n, generator=g, dtype=torch.float64)


def losses_of(seed, m=3):
    return np.random.default_rng(seed).uniform(0.5, 2.0, m)


# ============================================================================ the weights
@pytest.mark.parametrize("name", SOLVERS)
@pytest.mark.parametrize("natural", [False, True])
def test_weighting_equals_solver_weights(name, natural):
    """Several calls in a row (stateful solvers: DWA's history, Nash-MTL's warm start, RLW's
    stream): the bridged weighting and a twin solver fed the same Gramians agree to 1e-12."""
    factory, reads_losses = SOLVERS[name]
    weighting = bridges.as_torchjd_weighting(factory(), natural=natural)
    twin = factory()
    for step in range(4):
        j = jacobian(step)
        gram = j @ j.T
        losses = losses_of(step)
        if reads_losses:
            weighting.set_losses(torch.tensor(losses))
        w = weighting(gram)
        assert w.dtype == torch.float64 and w.shape == (3,)
        lam = twin.weights(gram.numpy(), losses if reads_losses else None)
        expected = lam * twin.scale if natural else lam
        np.testing.assert_allclose(w.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["mgda", "upgrad", "nashmtl", "dwa"])
def test_aggregator_equals_solve(name):
    """The aggregator on J: torchjd's Gramian (J @ J.T) then the weights, then w @ J; equal to
    madam's solve(J) (its syrk Gramian) within 1e-12 of the direction's size."""
    factory, reads_losses = SOLVERS[name]
    aggregator = bridges.as_torchjd_aggregator(factory())
    assert isinstance(aggregator, GramianWeightedAggregator)
    twin = factory()
    for step in range(3):
        j = jacobian(10 + step)
        losses = losses_of(step)
        if reads_losses:
            aggregator.set_losses(losses.tolist())
        d = aggregator(j)
        lam, d_ref = twin.solve(j.numpy(), losses if reads_losses else None)
        natural = twin.scale * d_ref
        assert np.max(np.abs(d.numpy() - natural)) <= 1e-12 * np.max(np.abs(natural))


def test_float32_gramian():
    j = jacobian(4).float()
    w = bridges.as_torchjd_weighting(solvers.MGDA(), natural=False)(j @ j.T)
    lam = solvers.MGDA().weights((j @ j.T).numpy())
    assert w.dtype == torch.float32
    np.testing.assert_allclose(w.numpy(), lam.astype(np.float32), rtol=0, atol=0)


def test_matrix_weighting_and_camoo():
    """A solver's solve() on the matrix (stat='matrix', WeightedAggregator); CAMOO, which needs
    J (Hessian-vector products), gets that aggregator and no Gramian weighting."""
    weighting = bridges.MadamWeighting(solvers.MGDA(), stat="matrix")
    j = jacobian(5)
    lam, d = solvers.MGDA().solve(j.numpy())
    np.testing.assert_allclose(weighting(j).numpy(), lam, rtol=0, atol=1e-15)
    camoo = solvers.CAMOO(hvp=lambda x, v, batch: np.zeros((3, np.size(v))))
    assert not bridges.uses_gramian(camoo)
    assert isinstance(bridges.as_torchjd_aggregator(camoo), WeightedAggregator)
    with pytest.raises(TypeError, match="needs the Jacobian"):
        bridges.as_torchjd_weighting(camoo)


def test_losses_are_required_and_consumed():
    weighting = bridges.as_torchjd_weighting(solvers.DWA())
    j = jacobian(6)
    with pytest.raises(TypeError, match="losses is required"):
        weighting(j @ j.T)
    weighting.set_losses([1.0, 2.0, 3.0])
    weighting(j @ j.T)
    with pytest.raises(TypeError, match="losses is required"):   # not silently reused
        weighting(j @ j.T)


def test_reset_and_bad_input():
    aggregator = bridges.as_torchjd_aggregator(solvers.DWA())
    j = jacobian(7)
    for losses in ([1.0, 2.0, 3.0], [0.5, 2.5, 1.0], [0.4, 2.2, 0.9]):
        aggregator.set_losses(losses)
        aggregator(j)
    assert aggregator.solver.state_dict()["history"].size > 0
    aggregator.reset()
    assert aggregator.solver.state_dict()["history"].size == 0
    with pytest.raises(TypeError, match="needs a solver"):
        bridges.MadamWeighting(None)
    with pytest.raises(TypeError, match="instance"):
        bridges.as_torchjd_aggregator(solvers.MGDA)
    with pytest.raises(ValueError, match="gramian must be symmetric"):
        bridges.as_torchjd_weighting("mgda")(torch.tensor([[1.0, 0.9], [-0.9, 1.0]],
                                                          dtype=torch.float64))


def test_matches_torchjd_upgrad():
    """madam's UPGrad, natural weights, against torchjd's own UPGradWeighting with its QP
    unregularised (QuadprogProjector(reg_eps=0); the default 1e-4 I shifts its weights by
    O(1e-4) relative, see madam.solvers.UPGrad). Needs quadprog and qpsolvers (torchjd's
    optional dependencies): skipped without them."""
    pytest.importorskip("quadprog", reason="torchjd's UPGrad needs quadprog")
    pytest.importorskip("qpsolvers", reason="torchjd's UPGrad needs qpsolvers")
    from torchjd.aggregation import UPGradWeighting
    from torchjd.linalg import QuadprogProjector

    theirs = UPGradWeighting(projector=QuadprogProjector(reg_eps=0.0))
    for seed in range(3):
        j = jacobian(20 + seed)
        gram = j @ j.T
        ours = bridges.as_torchjd_weighting(solvers.UPGrad())(gram)
        np.testing.assert_allclose(ours.numpy(), theirs(gram).numpy(), rtol=1e-6, atol=1e-9)


# ============================================================================ training
def trained(start, end):
    """Every loss fell, and their sum by 30% at least (MGDA moves along the min-norm
    direction, which may favour one objective)."""
    return all(e < s for e, s in zip(end, start)) and sum(end) < 0.7 * sum(start)


def values(losses):
    return [float(v.detach()) for v in losses]


def _data(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    ya = x @ torch.randn(5, generator=g)
    yb = torch.sin(x[:, 0]) + 0.5 * x[:, 1]
    return x, ya, yb


def _two_task_model(seed):
    """A seeded 5-16-2 tanh network and its two regression losses (a closure)."""
    torch.manual_seed(seed)
    x, ya, yb = _data(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))

    def losses():
        out = model(x)
        return [((out[:, 0] - ya) ** 2).mean(), ((out[:, 1] - yb) ** 2).mean()]

    return model, losses


@pytest.mark.parametrize("name", ["mgda", "upgrad", "nashmtl", "dwa"])
def test_autojac_backward_trains(name):
    """backward(losses) -> jac_to_grad(params, bridged aggregator) -> SGD: the losses fall."""
    model, losses = _two_task_model(0)
    aggregator = bridges.as_torchjd_aggregator(SOLVERS[name][0]())
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    start = values(losses())
    for _ in range(60):
        ls = losses()
        aggregator.set_losses(values(ls))
        opt.zero_grad()
        backward(ls)
        weights = jac_to_grad(model.parameters(), aggregator)
        assert weights.shape == (2,)
        opt.step()
    end = values(losses())
    assert trained(start, end)


def test_mtl_backward_and_gramian_optimisation_train():
    """mtl_backward (shared .jac, heads' .grad) with optimize_gramian_computation=True."""
    torch.manual_seed(1)
    x, ya, yb = _data(1)
    shared = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh())
    heads = torch.nn.ModuleList([torch.nn.Linear(16, 1), torch.nn.Linear(16, 1)])
    aggregator = bridges.as_torchjd_aggregator(solvers.UPGrad())
    opt = torch.optim.SGD([*shared.parameters(), *heads.parameters()], lr=0.05)

    def losses():
        feats = shared(x)
        return feats, [((heads[0](feats)[:, 0] - ya) ** 2).mean(),
                       ((heads[1](feats)[:, 0] - yb) ** 2).mean()]

    start = values(losses()[1])
    for _ in range(60):
        feats, ls = losses()
        opt.zero_grad()
        mtl_backward(ls, features=feats)
        jac_to_grad(shared.parameters(), aggregator, optimize_gramian_computation=True)
        opt.step()
    end = values(losses()[1])
    assert trained(start, end)


def test_autogram_engine_trains():
    """The bridged weighting on the autogram engine's Gramian (per-example losses)."""
    from torchjd.autogram import Engine

    torch.manual_seed(2)
    x, ya, _ = _data(2, n=32)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    engine = Engine(model, batch_dim=0)
    weighting = bridges.as_torchjd_weighting(solvers.UPGrad())
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    with torch.no_grad():      # a forward pass outside the engine's backward
        start = float(((model(x)[:, 0] - ya) ** 2).mean())
    for _ in range(40):
        per_example = (model(x)[:, 0] - ya) ** 2
        gramian = engine.compute_gramian(per_example)
        opt.zero_grad()
        per_example.backward(weighting(gramian))
        opt.step()
    with torch.no_grad():
        assert float(((model(x)[:, 0] - ya) ** 2).mean()) < 0.7 * start


def test_madam_torch_madam_after_torchjd_backward():
    """torchjd fills .jac, madam.torch.MAdam steps on it (the solver inside MAdam)."""
    from madam.torch.madam import MAdam

    model, losses = _two_task_model(3)
    opt = MAdam(model.parameters(), solver="upgrad", lr=1e-2)
    start = values(losses())
    for _ in range(60):
        ls = losses()
        backward(ls)
        opt.step(ls)
    end = values(losses())
    assert trained(start, end)


# ============================================================================ LibMTL recipe
def test_libmtl_recipe():
    """The LibMTL weighting of docs/torch-madam.md, run on a two-task model through LibMTL's
    own AbsWeighting machinery (_get_grads, _backward_new_grads). LibMTL 1.1.5 (the PyPI
    release) imports torchvision.models.utils, which torchvision removed in 0.13, so it does
    not import next to torch 2.x: skipped wherever ``import LibMTL`` fails."""
    pytest.importorskip("LibMTL", reason="LibMTL does not import here (see the docstring)",
                        exc_type=ImportError)
    text = DOC.read_text()
    block = re.search(r"<!-- libmtl-recipe -->\s*(?:<!-- no-exec -->\s*)?```python\n(.*?)```",
                      text, re.S)
    assert block, "docs/torch-madam.md lost its LibMTL recipe block"
    namespace = {}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(5, 8)
            self.heads = torch.nn.ModuleList([torch.nn.Linear(8, 1), torch.nn.Linear(8, 1)])

    weighting_cls = namespace["madam_weighting"](solvers.MGDA)

    class MTL(Model, weighting_cls):
        def __init__(self):
            super().__init__()
            self.task_num, self.device, self.rep_grad = 2, torch.device("cpu"), False
            self.init_param()

        def get_share_params(self):
            return self.encoder.parameters()

        def zero_grad_share_params(self):
            self.encoder.zero_grad(set_to_none=False)

    torch.manual_seed(0)
    net = MTL()
    x, ya, yb = _data(4)
    feats = torch.tanh(net.encoder(x))
    losses = [((net.heads[0](feats)[:, 0] - ya) ** 2).mean(),
              ((net.heads[1](feats)[:, 0] - yb) ** 2).mean()]
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        loss, list(net.encoder.parameters()), retain_graph=True)]) for loss in losses]
    lam_ref, d_ref = solvers.MGDA().solve(torch.stack(rows).numpy())
    for p in net.encoder.parameters():
        p.grad = torch.zeros_like(p)
    lam = net.backward(losses)
    np.testing.assert_allclose(lam, lam_ref, rtol=0, atol=1e-6)
    grad = torch.cat([p.grad.reshape(-1) for p in net.encoder.parameters()])
    np.testing.assert_allclose(grad.numpy(), d_ref, rtol=1e-5, atol=1e-6)
