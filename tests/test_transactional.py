"""Steps are all or nothing, and hyperparameters are bounded where the kernels need a bound.

A step that raises must leave the parameters, the optimiser's state (state_dict bit for bit:
coefficients, hypergradients, history, counters), the pair-sampling stream and the solver's
state as they were; a failed step followed by good ones must give what a twin that never saw
the failure gives. Hyperparameters beyond madam's scale bound (finfo(dtype).max ** 0.25) are a
ValueError naming them, at construction or assignment, never a CoreError from the C core and
never NaN parameters.
"""
import math
import struct

import numpy as np
import pytest

from snapshot import assert_unchanged, freeze_state, snapshot

import madam
from madam import solvers
from madam.mada import MADA, AdamHD, HyperAdam
from madam.madam_opt import MAdam

FMAX64 = float(np.finfo(np.float64).max)


def _limit(dtype):
    # the documented bound, written out here so the tests do not depend on the helper
    return float(np.finfo(dtype).max) ** 0.25


def _grad(n=6, k=0, dtype=np.float64, scale=1.0):
    return (scale * (np.linspace(-1.0, 1.0, n) + 0.1 * (k + 1))).astype(dtype)


def _jac(c=3, n=6, k=0, dtype=np.float64):
    rows = [np.linspace(-1.0, 1.0, n) * (i + 1) + 0.1 * (k + 1) - 0.3 * i for i in range(c)]
    return np.array(rows, dtype=dtype)


def _state(opt):
    """state_dict as a comparable dict, floats by their bits (a NaN equals itself)."""
    return {k: ("float", struct.pack("<d", v)) if isinstance(v, float) else v
            for k, v in freeze_state(opt.state_dict()).items()}


def _history_bytes(opt):
    return {k: v.tobytes() for k, v in opt.history().items()}


def _step_until_error(opt, x, grads):
    """Step through ``grads`` until one step raises; returns (exception, the step's index).
    Asserts that the raising step changed nothing (snapshot and history)."""
    for i, g in enumerate(grads):
        before, hist = snapshot(opt, x), _history_bytes(opt)
        coef, lr, last = opt.coefficients, opt.lr, opt.last_hypergrad
        try:
            opt.step(g)
        except ValueError as exc:
            assert_unchanged(before, opt, x)
            assert _history_bytes(opt) == hist
            assert opt.coefficients == coef and opt.lr == lr
            assert repr(opt.last_hypergrad) == repr(last)
            return exc, i
    raise AssertionError("no step raised")


# ============================================================ 1. AdamHD: the hyper step on lr
def test_adamhd_refuses_a_hyper_lr_beyond_the_bound():
    x = np.ones(6)
    for rate in (1e300, 1e308, FMAX64):
        with pytest.raises(ValueError, match="hyper_lr"):
            AdamHD(x, hyper_lr=rate)
    opt = AdamHD(x, hyper_lr=1e-7)
    before = snapshot(opt, x)
    with pytest.raises(ValueError, match="hyper_lr"):
        opt.hyper_lr = {"lr": 1e300}
    assert_unchanged(before, opt, x)


@pytest.mark.parametrize("derivatives, delay", [("recompute", False), ("store", False),
                                                ("recompute", True)])
def test_adamhd_hyper_step_that_overflows_lr_changes_nothing(derivatives, delay):
    # hyper_lr 1e70 is within its bound, but a gradient of 1e250 makes the hyper step
    # lr - hyper_lr * dL/dlr overflow to Inf: that step must raise, naming hyper_lr, and change
    # nothing (before the fix, lr's buffers, the gradient slot and the coefficients moved).
    x = np.linspace(0.5, 1.5, 6)
    opt = AdamHD(x, lr=1e-3, hyper_lr=1e70, derivatives=derivatives, hyper_delay=delay)
    twin_x = x.copy()
    twin = AdamHD(twin_x, lr=1e-3, hyper_lr=1e70, derivatives=derivatives, hyper_delay=delay)
    grads = [_grad(k=0), _grad(k=1, scale=1e250), _grad(k=2)]
    opt.step(grads[0])
    twin.step(grads[0])
    if delay:  # the hypergradient of step 2 is applied at step 3
        opt.step(grads[1])
        twin.step(grads[1])
        grads = grads[1:]
    exc, _ = _step_until_error(opt, x, grads[1:])
    assert "hyper_lr" in str(exc) and "nothing was updated" in str(exc)
    # the refused step left no trace: the optimiser goes on exactly as its twin
    safe = _grad(k=5, scale=1e-3)
    opt.hyper_lr = 0.0
    twin.hyper_lr = 0.0
    opt.step(safe)
    twin.step(safe)
    assert x.tobytes() == twin_x.tobytes()
    assert _state(opt) == _state(twin)


# =================================================== 2. MADA: betas moved before lr was refused
@pytest.mark.parametrize("derivatives", ["recompute", "store"])
def test_mada_coefficients_unchanged_when_the_new_lr_is_refused(derivatives):
    x = np.linspace(0.5, 1.5, 6)
    opt = MADA(x, learn=("beta1", "beta2", "lr"), hyper_lr={"lr": 1e70}, hyper_start=0,
               hyper_clip=math.inf, derivatives=derivatives)
    opt.step(_grad(k=0))
    exc, _ = _step_until_error(opt, x, [_grad(k=1, scale=1e250)])
    assert "hyper_lr['lr']" in str(exc)


def test_mada_step_after_a_refused_hyper_step_matches_a_twin():
    # the hypergradient pass used to copy g_t into the state before the hyper step was checked
    x, y = np.linspace(0.5, 1.5, 6), np.linspace(0.5, 1.5, 6)
    kw = dict(learn=("beta1", "beta2", "lr"), hyper_lr={"lr": 1e70}, hyper_start=0,
              hyper_clip=math.inf)
    a, b = MADA(x, **kw), MADA(y, **kw)
    a.step(_grad(k=0))
    b.step(_grad(k=0))
    with pytest.raises(ValueError, match="hyper_lr"):
        a.step(_grad(k=1, scale=1e250))
    for opt in (a, b):
        opt.hyper_lr = {"lr": 0.0}
        opt.step(_grad(k=2))
        opt.step(_grad(k=3))
    assert x.tobytes() == y.tobytes()
    assert _state(a) == _state(b)


# ========================================= 3. MAdam: the solver's state when a later part fails
class _HugeRLW(solvers.RLW):
    """RLW whose weights are scaled by 1e200: finite (so MAdam's finiteness check passes), but
    the curvature weights lambda_i lambda_j overflow, which the kernel refuses."""

    def _solve(self, jac, losses):
        lam, scale, info = super()._solve(jac, losses)
        return lam * 1e200, scale, info


def _solver_state(solver):
    return freeze_state(solver.state_dict())


def test_madam_rlw_stream_restored_when_lambda_overflows():
    x = np.linspace(0.5, 1.5, 6)
    solver = _HugeRLW(seed=3)
    opt = MAdam(x, solver=solver)
    before, sstate = snapshot(opt, x), _solver_state(solver)
    with pytest.raises(ValueError, match="lambda"):  # before the fix: CoreError
        opt.step(_jac(), np.ones(3))
    assert_unchanged(before, opt, x)
    assert _solver_state(solver) == sstate
    assert opt.n_obj is None  # the first step's layout was not attached either


def test_madam_dwa_history_restored_when_its_lambda_is_nan():
    # DWA divides the last two loss vectors; 1e300 / 1e-300 overflows, its softmax is NaN and
    # MAdam refuses the lambda - after DWA had already pushed the losses into its history.
    x = np.linspace(0.5, 1.5, 6)
    solver = solvers.DWA()
    opt = MAdam(x, solver=solver)
    opt.step(_jac(c=2), np.array([1e-300, 1.0]))
    opt.step(_jac(c=2, k=1), np.array([1e300, 1.0]))
    before, sstate = snapshot(opt, x), _solver_state(solver)
    scale, info = solver.scale, solver.info
    with pytest.raises(ValueError, match="lambda"), np.errstate(all="ignore"):
        opt.step(_jac(c=2, k=2), np.array([1.0, 1.0]))
    assert_unchanged(before, opt, x)
    assert _solver_state(solver) == sstate
    assert solver.scale == scale and solver.info is info


@pytest.fixture
def failing_kernel(monkeypatch):
    """Make MAdam's C kernel report an error (as it does for arguments it refuses)."""
    from madam import _core, madam_opt

    real = _core.kernel

    def kernel(name, dtype):
        if name == "cm_madam_step":
            return lambda *args: _core.lib.CM_ERR_HYPER
        return real(name, dtype)

    monkeypatch.setattr(madam_opt._core, "kernel", kernel)


@pytest.mark.parametrize("make", [lambda: solvers.RLW(seed=1), solvers.DWA],
                         ids=["rlw", "dwa"])
def test_madam_solver_state_restored_when_the_kernel_fails(make, failing_kernel):
    x = np.linspace(0.5, 1.5, 6)
    solver = make()
    opt = MAdam(x, solver=solver, n_obj=3)
    before, sstate = snapshot(opt, x), _solver_state(solver)
    with pytest.raises(madam._core.CoreError):
        opt.step(_jac(), np.array([1.0, 2.0, 3.0]))
    assert_unchanged(before, opt, x)
    assert _solver_state(solver) == sstate


def test_madam_after_a_failed_step_matches_a_twin(monkeypatch):
    from madam import _core, madam_opt

    real, calls = _core.kernel, []

    def kernel(name, dtype):  # the kernel of the first MAdam step fails, later ones run
        if name == "cm_madam_step":
            calls.append(name)
            if len(calls) == 1:
                return lambda *args: _core.lib.CM_ERR_HYPER
        return real(name, dtype)

    monkeypatch.setattr(madam_opt._core, "kernel", kernel)
    x, y = np.linspace(0.5, 1.5, 6), np.linspace(0.5, 1.5, 6)
    a, b = MAdam(x, solver=solvers.RLW(seed=7)), MAdam(y, solver=solvers.RLW(seed=7))
    with pytest.raises(madam._core.CoreError):
        a.step(_jac(), np.ones(3))
    for k in range(3):
        a.step(_jac(k=k), np.ones(3))
        b.step(_jac(k=k), np.ones(3))
    assert x.tobytes() == y.tobytes()
    assert _state(a) == _state(b)


# ==================================================== 4. MAdam pair sampling: no draw on failure
def _sampling(**kw):
    x = np.linspace(0.5, 1.5, 6)
    return x, MAdam(x, solver=kw.pop("solver", None), n_obj=4, pair_sampling=2, **kw)


def test_rejected_pair_sampling_step_does_not_draw():
    x, opt = _sampling()
    before = snapshot(opt, x)
    with pytest.raises(ValueError, match="requested rows"):
        opt.step(_jac(c=3), preference=np.full(4, 0.25))  # 3 rows: neither k nor C
    with pytest.raises(ValueError, match="preference"):
        opt.step(_jac(c=4), preference=np.array([0.5, 0.5, 0.5, -0.5]))
    assert_unchanged(before, opt, x)  # rng.* and pending included


def test_pair_sampling_step_failing_in_the_kernel_does_not_draw(failing_kernel):
    x, opt = _sampling()
    before = snapshot(opt, x)
    with pytest.raises(madam._core.CoreError):
        opt.step(_jac(c=4), preference=np.full(4, 0.25))  # all rows: the step draws itself
    assert_unchanged(before, opt, x)


def test_pair_sampling_step_failing_after_the_solver_does_not_draw():
    solver = _HugeRLW(seed=5)
    x, opt = _sampling(solver=solver)
    before, sstate = snapshot(opt, x), _solver_state(solver)
    with pytest.raises(ValueError, match="lambda"):
        opt.step(_jac(c=4), np.ones(4))
    assert_unchanged(before, opt, x)
    assert _solver_state(solver) == sstate


def test_requested_draw_is_kept_across_a_failed_step(failing_kernel):
    # an explicit request is a commitment: a failed step asks for the same objectives again
    x, opt = _sampling()
    wanted = opt.requested_objectives()
    with pytest.raises(madam._core.CoreError):
        opt.step(_jac(c=2), preference=np.full(4, 0.25), direction=_grad())
    assert opt.requested_objectives() == wanted


def test_pair_sampling_draws_match_the_uninterrupted_stream():
    # the step's own draw (all rows, no request) is the draw requested_objectives would make
    xa, a = _sampling()
    xb, b = _sampling()
    lam = np.full(4, 0.25)
    for k in range(5):
        b.requested_objectives()
        a.step(_jac(c=4, k=k), preference=lam)
        b.step(_jac(c=4, k=k), preference=lam)
    assert xa.tobytes() == xb.tobytes()
    assert _state(a) == _state(b)


# ================================================================ 5. bounds on hyperparameters
# Every optimiser, every scale hyperparameter: (class name, constructor kwargs, names).
SCALE_HYPERS = [
    ("SGD", {"momentum": 0.9}, ("lr", "momentum", "weight_decay")),
    ("Adam", {}, ("lr", "eps", "weight_decay")),
    ("AdamW", {}, ("lr", "eps", "weight_decay")),
    ("AMSGrad", {}, ("lr", "eps", "weight_decay")),
    ("AVGrad", {}, ("lr", "eps", "weight_decay")),
    ("Yogi", {}, ("lr", "eps", "weight_decay", "initial_accumulator")),
    ("Adan", {}, ("lr", "eps", "weight_decay")),
    ("Adan", {"proximal": False}, ("lr", "eps", "weight_decay")),
    ("Lion", {}, ("lr", "weight_decay")),
    ("MADA", {"hyper_start": 1}, ("lr", "eps", "v_init")),
    ("HyperAdam", {"hyper_start": 1}, ("lr", "eps", "v_init")),
    ("AdamHD", {}, ("lr", "eps", "v_init")),
    ("MAdam", {"solver": "mgda"}, ("lr", "eps", "weight_decay")),
]
CASES = [(cls, kw, name) for cls, kw, names in SCALE_HYPERS for name in names]
IDS = [f"{cls}{'-' + '-'.join(kw) if kw else ''}-{name}" for cls, kw, name in CASES]
DTYPES = [np.float32, np.float64]


def _build(cls, kw, x, **extra):
    return getattr(madam, cls)(x, **dict(kw, **extra))


def _step(opt, k, dtype):
    if isinstance(opt, MAdam):
        opt.step(_jac(k=k, dtype=dtype), np.array([1.0, 2.0, 3.0]))
    else:
        opt.step(_grad(k=k, dtype=dtype))


def _x(dtype):
    return np.linspace(0.5, 1.5, 6).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [1e300, 1e308, FMAX64], ids=["1e300", "1e308", "max"])
@pytest.mark.parametrize("cls, kw, name", CASES, ids=IDS)
def test_huge_hyperparameter_is_named_at_construction_and_assignment(cls, kw, name, value,
                                                                     dtype):
    with pytest.raises(ValueError, match=name):
        _build(cls, kw, _x(dtype), **{name: value})
    x = _x(dtype)
    opt = _build(cls, kw, x)
    _step(opt, 0, dtype)
    before = snapshot(opt, x)
    with pytest.raises(ValueError, match=name):
        setattr(opt, name, value)
    assert_unchanged(before, opt, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, kw, name", CASES, ids=IDS)
def test_large_hyperparameters_work_or_are_named(cls, kw, name, dtype):
    # The property the bound is for: any value either raises ValueError naming the argument,
    # or gives a finite result - never CoreError, never NaN. Including the bound itself.
    accepted, refused = [], []
    for value in (FMAX64, 1e308, 1e300, 1e100, _limit(np.float64), 1e39, 1e30, 1e20, 5e9,
                  _limit(dtype), 4e9, 1e9, 1e6):
        x = _x(dtype)
        try:
            opt = _build(cls, kw, x, **{name: value})
        except ValueError as exc:
            assert name in str(exc), (value, exc)
            refused.append(value)
            continue
        accepted.append(value)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                for k in range(2):
                    _step(opt, k, dtype)
        except ValueError as exc:
            # AdamHD learns lr: at the bound, the hyper step's increase would cross it, which
            # is refused naming the rate (and changes nothing, tested above)
            assert cls == "AdamHD" and name == "lr" and "hyper_lr" in str(exc), exc
        assert np.all(np.isfinite(x)), (value, x)
    # and the line between the two is the documented bound
    assert all(v <= _limit(dtype) for v in accepted), accepted
    assert all(v > _limit(dtype) for v in refused), refused


def test_scale_limit_is_documented_value():
    assert madam.optim.scale_limit(np.float32) == _limit(np.float32)
    assert madam.optim.scale_limit(np.float64) == _limit(np.float64)
    assert 4.2e9 < _limit(np.float32) < 4.3e9 and 1.1e77 < _limit(np.float64) < 1.2e77


def test_mixed_dtypes_use_the_stricter_bound():
    xs = [np.ones(3), np.ones(2, dtype=np.float32)]
    with pytest.raises(ValueError, match="lr.*float32"):
        madam.Adam(xs, lr=1e10)
    madam.Adam([np.ones(3)], lr=1e10)


def test_state_dict_with_a_huge_hyperparameter_is_refused():
    x = np.ones(4)
    opt = madam.Adam(x)
    opt.step(np.ones(4))
    sd = opt.state_dict()
    sd["hyper.lr"] = 1e300
    before = snapshot(opt, x)
    with pytest.raises(ValueError, match="lr"):
        opt.load_state_dict(sd)
    assert_unchanged(before, opt, x)


# ============================================================ 6. float32 Yogi's initial value
@pytest.mark.parametrize("value", [1e39, 1e30, 5e9])
def test_float32_yogi_refuses_an_initial_accumulator_beyond_float32(value):
    x = np.ones(4, dtype=np.float32)
    with pytest.raises(ValueError, match="initial_accumulator"):
        madam.Yogi(x, initial_accumulator=value)


def test_float32_yogi_at_the_bound_stays_finite():
    x = np.ones(4, dtype=np.float32)
    opt = madam.Yogi(x, initial_accumulator=_limit(np.float32))
    for k in range(3):
        opt.step(np.array([0.0, 1.0, -1.0, 1e-3], dtype=np.float32) * (k + 1))
    assert np.all(np.isfinite(x))
    assert all(np.all(np.isfinite(v)) for k, v in opt.state_dict().items()
               if k.startswith("state."))


# ==================================================================== 7. MADA's bounded history
def test_mada_history_is_bounded_and_keeps_the_latest_rows():
    x = np.linspace(0.5, 1.5, 6)
    opt = MADA(x, hyper_start=5, history_limit=50)
    for k in range(200):
        opt.step(_grad(k=k % 7, scale=1e-2))
    h = opt.history()
    assert len(h["step"]) == 50
    np.testing.assert_array_equal(h["step"], np.arange(151, 201))
    assert opt.state_dict()["history"].shape == (50, 15)
    assert opt.state_dict()["history_limit"] == 50


def test_mada_default_history_limit():
    x = np.linspace(0.5, 1.5, 4)
    for cls in (MADA, HyperAdam, AdamHD):
        assert cls(x).history_limit == madam.mada.DEFAULT_HISTORY_LIMIT == 10_000
    opt = MADA(x, hyper_start=1)
    g = _grad(n=4, scale=1e-3)
    for _ in range(10_000 + 25):
        opt.step(g)
    rows = opt.state_dict()["history"]
    assert rows.shape == (10_000, 15) and rows[0, 0] == 26 and rows[-1, 0] == 10_025


def test_mada_history_limit_none_is_unbounded_and_round_trips():
    x = np.linspace(0.5, 1.5, 4)
    opt = MADA(x, history_limit=None)
    for k in range(30):
        opt.step(_grad(n=4, k=k))
    sd = opt.state_dict()
    assert sd["history"].shape == (30, 15) and sd["history_limit"] == -1
    other = MADA(np.linspace(0.5, 1.5, 4), history_limit=5)
    other.load_state_dict(sd)
    assert other.history_limit is None and len(other.history()["step"]) == 30


@pytest.mark.parametrize("derivatives, delay", [("recompute", False), ("store", False),
                                                ("recompute", True)])
def test_mada_bounded_history_resumes_bit_for_bit(tmp_path, derivatives, delay):
    kw = dict(learn=("beta1", "beta2", "c", "lr"), hyper_lr={"lr": 1e-6}, hyper_start=5,
              history_limit=30, derivatives=derivatives, hyper_delay=delay)
    grads = [_grad(k=k % 5, scale=0.1) for k in range(120)]
    x = np.linspace(0.5, 1.5, 6)
    full = MADA(x, **kw)
    for g in grads:
        full.step(g)
    y = np.linspace(0.5, 1.5, 6)
    first = MADA(y, **kw)
    for g in grads[:70]:
        first.step(g)
    np.savez(tmp_path / "ckpt.npz", **first.state_dict())
    z = y.copy()
    resumed = MADA(z, **kw)
    with np.load(tmp_path / "ckpt.npz") as data:
        resumed.load_state_dict(data)
    for g in grads[70:]:
        resumed.step(g)
    assert z.tobytes() == x.tobytes()
    assert _state(resumed) == _state(full)
    assert _history_bytes(resumed) == _history_bytes(full)


def test_mada_load_trims_history_to_the_limit():
    x = np.linspace(0.5, 1.5, 4)
    opt = MADA(x, history_limit=None)
    for k in range(40):
        opt.step(_grad(n=4, k=k))
    sd = opt.state_dict()
    old = {k: v for k, v in sd.items() if k != "history_limit"}  # a checkpoint from before
    small = MADA(np.linspace(0.5, 1.5, 4), history_limit=10)
    small.load_state_dict(old)
    assert small.history_limit == 10
    np.testing.assert_array_equal(small.history()["step"], np.arange(31, 41))
    handmade = dict(sd, history_limit=15)  # more rows than its own limit
    small.load_state_dict(handmade)
    assert small.history_limit == 15
    np.testing.assert_array_equal(small.history()["step"], np.arange(26, 41))


@pytest.mark.parametrize("value, exc", [(-1, ValueError), (1.5, TypeError), ("x", TypeError),
                                        (True, TypeError)])
def test_mada_history_limit_is_validated(value, exc):
    with pytest.raises(exc, match="history_limit must be"):
        MADA(np.ones(3), history_limit=value)


def test_mada_load_refuses_a_bad_history_limit():
    x = np.linspace(0.5, 1.5, 4)
    opt = MADA(x)
    opt.step(_grad(n=4))
    sd = opt.state_dict()
    before = snapshot(opt, x)
    with pytest.raises(ValueError, match=r"history_limit'\] must be"):
        opt.load_state_dict(dict(sd, history_limit=-2))
    assert_unchanged(before, opt, x)


def test_history_rows_are_small():
    # about 15 float64 a row, not a list of Python floats per step
    x = np.linspace(0.5, 1.5, 4)
    opt = MADA(x, history_limit=100)
    for k in range(300):
        opt.step(_grad(n=4, k=k % 3))
    assert opt.state_dict()["history"].nbytes == 100 * 15 * 8
    assert math.isclose(len(opt._history), 100)


# ====================================================== other paths that failed after loading
@pytest.mark.parametrize("key, value", [("prev.lr", 1e301), ("pending_lr", -1.0),
                                        ("pending_lr", 1e301), ("hyper_lr.lr", 1e301)])
def test_mada_load_refuses_values_the_next_step_would_fail_on(key, value):
    # before: accepted by load_state_dict, then the next step raised CoreError in C
    x = np.linspace(0.5, 1.5, 4)
    opt = MADA(x, learn=("lr",), hyper_start=0, hyper_delay=True)
    for k in range(3):
        opt.step(_grad(n=4, k=k))
    sd = dict(opt.state_dict(), **{key: value})
    before = snapshot(opt, x)
    with pytest.raises(ValueError, match=key.split(".")[0]):
        opt.load_state_dict(sd)
    assert_unchanged(before, opt, x)
    opt.step(_grad(n=4, k=4))  # and the optimiser still works
