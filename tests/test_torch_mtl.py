"""madam.torch.mtl: the two-task wine study behind notebooks/05_torch.ipynb.

The data split and standardisation, the network and its losses, that ``train`` is deterministic,
that its "adam" method with madam's Adam follows torch.optim.Adam (1e-12 in float64), that its
"madam" and "torchjd" methods are MAdam and torchjd's UPGrad + Adam stepped by hand (bit for
bit), that ``tune_lr`` picks the argmin of its criterion, and ``front`` / ``front_hypervolumes``.
Short runs only (a few steps each)."""
import math

import numpy as np
import pytest

from peer_import import require  # noqa: E402

torch, _ = require("torch", "torchjd")

from madam.pareto import hypervolume  # noqa: E402
from madam.torch import mtl  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the notebook: on a busy 2-core machine torch's second thread makes
    these tiny steps 10-50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return mtl.wine_tasks()


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


def test_wine_tasks_split_and_standardisation(data):
    sizes = data.sizes()
    assert sizes == {"train": 107, "val": 36, "test": 35}
    assert data.target == "flavanoids" and len(data.inputs) == 12
    assert data.target not in data.inputs and set(data.inputs) < set(mtl.FEATURES)
    x, labels, y = data.splits["train"]
    assert x.dtype == torch.float64 and y.dtype == torch.float64 and labels.dtype == torch.int64
    # standardised with the training split's statistics (population std)
    assert torch.allclose(x.mean(0), torch.zeros(12, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(x.std(0, correction=0), torch.ones(12, dtype=torch.float64), atol=1e-12)
    assert abs(float(y.mean())) < 1e-12 and abs(float(y.std(correction=0)) - 1) < 1e-12
    # every wine in exactly one split: 178 distinct rows, the cultivars' sizes, stratified
    rows = torch.cat([torch.cat([s[0], s[2][:, None]], 1) for s in data.splits.values()])
    assert torch.unique(rows, dim=0).shape[0] == 178
    all_labels = torch.cat([s[1] for s in data.splits.values()])
    assert torch.bincount(all_labels).tolist() == [59, 71, 48]
    for name, (_, lab, _) in data.splits.items():
        assert torch.bincount(lab, minlength=3).min() >= 9, name
    assert mtl.wine_tasks() is data                              # cached
    other = mtl.wine_tasks("alcohol", seed=1, dtype=torch.float32)
    assert other.splits["test"][0].dtype == torch.float32 and "alcohol" not in other.inputs
    with pytest.raises(ValueError, match="target"):
        mtl.wine_tasks("colour")
    with pytest.raises(ValueError, match="fractions"):
        mtl.wine_tasks(fractions=(0.5, 0.5, 0.5))


def test_the_data_are_the_bundled_wines():
    """Inputs and target are the bundled columns of the split's rows, standardised with the
    training rows' statistics; the splits partition the 178 wines."""
    from madam.problems.learning import _load_real

    raw, onehot, _ = _load_real("wine")
    data = mtl.wine_tasks("proline", seed=3)
    rows = data.rows
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(178))
    col = mtl.FEATURES.index("proline")
    keep = [k for k in range(13) if k != col]
    train = rows["train"]
    mean, std = raw[train][:, keep].mean(0), raw[train][:, keep].std(0)
    y_mean, y_std = raw[train, col].mean(), raw[train, col].std()
    for name, (x, labels, y) in data.splits.items():
        r = rows[name]
        # (the same formula; summation order aside)
        assert np.allclose(x.numpy(), (raw[r][:, keep] - mean) / std, rtol=0, atol=1e-13)
        assert np.allclose(y.numpy(), (raw[r, col] - y_mean) / y_std, rtol=0, atol=1e-13)
        assert np.array_equal(labels.numpy(), onehot[r].argmax(1))
    assert data.inputs == tuple(mtl.FEATURES[k] for k in keep)


def test_network_and_losses(data):
    torch.manual_seed(0)
    model = mtl.SharedTrunk().double()
    widths = [m.out_features for m in model.trunk if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 2] and model.heads[0].out_features == 3
    x, labels, y = data.splits["train"]
    f_a, f_b = mtl.task_losses(model, data.splits["train"])
    assert f_a.requires_grad and f_b.requires_grad
    with torch.no_grad():
        logits, out = model(x)
        assert logits.shape == (107, 3) and out.shape == (107,)
        ce = -torch.log_softmax(logits, 1)[torch.arange(107), labels].mean()
        assert abs(f_a.item() - ce.item()) < 1e-14
        assert f_b.item() == ((out - y) ** 2).mean().item()
        z = model.trunk(x)
        assert [f.item() for f in mtl.task_losses(model, data.splits["train"], features=z)] == \
            [f_a.item(), f_b.item()]
    # zero heads: the constant predictors, whose losses are the reference point
    with torch.no_grad():
        for head in model.heads:
            head.weight.zero_()
            head.bias.zero_()
    f_a, f_b = mtl.task_losses(model, data.splits["train"])
    assert abs(f_a.item() - mtl.REFERENCE[0]) < 1e-14 and abs(f_b.item() - 1.0) < 1e-12
    wide = mtl.SharedTrunk(hidden=(32, 32))
    assert wide.heads[1].in_features == 32


def test_simplex():
    p = mtl.simplex(7)
    assert p.shape == (7, 2) and np.allclose(p.sum(1), 1)
    assert np.allclose(p[:, 0], [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
    assert np.allclose(mtl.simplex(3, margin=0.2)[:, 0], [0.2, 0.5, 0.8])
    assert np.array_equal(mtl.simplex(1), [[0.5, 0.5]])
    assert np.allclose(mtl.simplex(2, margin=0)[:, 0], [0, 1])
    with pytest.raises(ValueError):
        mtl.simplex(0)
    with pytest.raises(ValueError):
        mtl.simplex(3, margin=0.5)


@pytest.mark.parametrize("method", mtl.METHODS)
def test_train_is_deterministic(data, method):
    a = mtl.train(method, 1e-2, 3, steps=12, preference=(0.3, 0.7), data=data, record_every=4)
    b = mtl.train(method, 1e-2, 3, steps=12, preference=(0.3, 0.7), data=data, record_every=4)
    assert all(torch.equal(p, q) for p, q in zip(params_of(a.model), params_of(b.model)))
    for name in ("train", "val", "test", "train_curve", "test_curve", "steps"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.steps.tolist() == [0, 4, 8, 12] and a.train_curve.shape == (4, 2)
    assert np.array_equal(a.train, a.train_curve[-1]) and np.array_equal(a.test, a.test_curve[-1])
    assert a.train_curve[-1] @ [0.3, 0.7] < a.train_curve[0] @ [0.3, 0.7]   # it trains
    c = mtl.train(method, 1e-2, 4, steps=12, preference=(0.3, 0.7), data=data)
    assert not np.array_equal(a.train, c.train)                         # the seed matters


@pytest.mark.parametrize("method", ["adam", "torchjd"])
def test_madam_adam_follows_torch_adam(data, method):
    ours = mtl.train(method, 3e-2, 0, steps=20, preference=(0.6, 0.4), data=data)
    ref = mtl.train(method, 3e-2, 0, steps=20, preference=(0.6, 0.4), data=data, adam="torch")
    for p, q in zip(params_of(ours.model), params_of(ref.model)):
        assert float((p - q).norm() / q.norm()) <= 1e-12
    assert np.allclose(ours.train_curve, ref.train_curve, rtol=1e-12, atol=0)


def test_madam_method_is_madam_stepped_by_hand(data):
    from madam.torch import MAdam

    lam = np.array([0.25, 0.75])
    result = mtl.train("madam", 5e-3, 2, steps=15, preference=lam, data=data)
    torch.manual_seed(2)
    model = mtl.SharedTrunk().double()
    opt = MAdam(model.parameters(), solver=None, n_obj=2, lr=5e-3)
    for _ in range(15):
        opt.step(mtl.task_losses(model, data.splits["train"]), preference=lam)
    assert all(torch.equal(p, q) for p, q in zip(params_of(model), params_of(result.model)))
    assert np.array_equal(result.lambdas, np.tile(lam, (15, 1)))
    assert np.array_equal(result.preference, lam)


def test_torchjd_method_is_upgrad_and_adam_by_hand(data):
    from torchjd.aggregation import UPGrad
    from torchjd.autojac import jac_to_grad, mtl_backward

    from madam.torch import Adam

    result = mtl.train("torchjd", 1e-2, 1, steps=10, preference=(0.7, 0.3), data=data)
    torch.manual_seed(1)
    model = mtl.SharedTrunk().double()
    opt = Adam(model.parameters(), lr=1e-2)
    upgrad = UPGrad(pref_vector=torch.tensor([0.7, 0.3], dtype=torch.float64))
    x = data.splits["train"][0]
    for _ in range(10):
        opt.zero_grad()
        z = model.trunk(x)
        losses = mtl.task_losses(model, data.splits["train"], features=z)
        mtl_backward(losses, features=z)
        jac_to_grad(model.trunk.parameters(), upgrad)
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(params_of(model), params_of(result.model)))


def test_solvers(data):
    from madam import solvers

    run = mtl.train("madam", 1e-2, 0, steps=8, solver="mgda", data=data)
    assert run.preference is None and run.lambdas.shape == (8, 2)
    assert np.all(run.lambdas >= 0) and np.allclose(run.lambdas.sum(1), 1)
    bridged = mtl.train("torchjd", 1e-2, 0, steps=8, solver=solvers.UPGrad(), data=data)
    assert np.all(np.isfinite(bridged.train)) and bridged.preference is None
    dwa = mtl.train("torchjd", 1e-2, 0, steps=4, solver="dwa", data=data)   # reads loss values
    assert np.all(np.isfinite(dwa.train))


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="method"):
        mtl.train("sgd", 1e-2, 0, steps=1, data=data)
    with pytest.raises(ValueError, match="preference"):
        mtl.train("adam", 1e-2, 0, steps=1, preference=(0.5, 0.6), data=data)
    with pytest.raises(ValueError, match="preference"):
        mtl.train("adam", 1e-2, 0, steps=1, preference=(1.0,), data=data)
    with pytest.raises(ValueError, match="solver"):
        mtl.train("adam", 1e-2, 0, steps=1, solver="mgda", data=data)
    with pytest.raises(ValueError, match="not both"):
        mtl.train("madam", 1e-2, 0, steps=1, solver="mgda", preference=(0.5, 0.5), data=data)
    with pytest.raises(ValueError, match="adam"):
        mtl.train("adam", 1e-2, 0, steps=1, adam="sgd", data=data)


class _Fake:
    def __init__(self, val):
        self.val = np.asarray(val, dtype=np.float64)


def test_tune_lr_picks_the_argmin_of_its_criterion(monkeypatch):
    # validation losses by lr: 1e-3 bad, 1e-2 best on the mean of lambda^T f, 1e-1 NaN
    table = {1e-3: (0.9, 0.9), 3e-3: (0.2, 0.6), 1e-2: (0.5, 0.1), 1e-1: (float("nan"), 0.0)}
    seen = []

    def fake_train(method, lr, seed, steps, preference=None, **kwargs):
        seen.append((method, lr, seed, steps, tuple(preference), kwargs))
        return _Fake(table[lr])

    monkeypatch.setattr(mtl, "train", fake_train)
    prefs = mtl.simplex(3, margin=0.2)
    tuned = mtl.tune_lr("madam", list(table), [7, 8], prefs, steps=11, hidden=(4, 2))
    expect = [np.mean([p @ np.array(table[lr]) for p in prefs]) for lr in table]
    assert np.allclose(tuned.scores[:3], expect[:3]) and np.isnan(tuned.scores[3])
    assert tuned.lr == 1e-2 == list(table)[int(np.argmin(expect[:3]))]
    assert tuned.val.shape == (4, 2, 3, 2) and tuned.seeds == (7, 8)
    assert len(seen) == 4 * 2 * 3 and {s[2] for s in seen} == {7, 8}
    assert all(s[3] == 11 and s[5] == {"hidden": (4, 2)} for s in seen)
    # ties: the first
    table[3e-3] = (0.5, 0.1)
    assert mtl.tune_lr("adam", list(table), [0], prefs).lr == 3e-3


def test_tune_lr_real_runs(data):
    tuned = mtl.tune_lr("adam", [1e-3, 3e-2], [0], mtl.simplex(2, margin=0.25), steps=6, data=data)
    again = [[mtl.train("adam", lr, 0, 6, preference=p, data=data).val
              for p in mtl.simplex(2, margin=0.25)] for lr in (1e-3, 3e-2)]
    scores = [np.mean([p @ v for p, v in zip(mtl.simplex(2, margin=0.25), row)]) for row in again]
    assert np.array_equal(tuned.scores, scores)
    assert tuned.lr == (1e-3, 3e-2)[int(np.argmin(scores))]


def test_front_and_hypervolumes(data):
    prefs = mtl.simplex(3)
    fr = mtl.front("adam", 1e-2, [0, 1], prefs, steps=5, data=data)
    assert fr.train.shape == fr.val.shape == fr.test.shape == (2, 3, 2)
    one = mtl.train("adam", 1e-2, 1, 5, preference=prefs[2], data=data)
    assert np.array_equal(fr.test[1, 2], one.test) and np.array_equal(fr.train[1, 2], one.train)
    assert np.array_equal(fr.mean("test"), fr.test.mean(0))
    hv = mtl.front_hypervolumes(fr.test)
    ref = np.array(mtl.REFERENCE)
    assert hv.shape == (2,) and np.array_equal(hv, [hypervolume(f, ref) for f in fr.test])
    assert mtl.front_hypervolumes(fr.test[0]) == hv[0]
    square = mtl.front_hypervolumes([[0.5, 0.5]])
    assert abs(square - (math.log(3) - 0.5) * 0.5) < 1e-15
    assert mtl.front_hypervolumes([[2.0, 0.1]]) == 0.0          # does not dominate the reference
