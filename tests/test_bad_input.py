"""Bad inputs per the API contract: the exception type, a message naming the argument, and nothing
(params, state, step_count) modified.  Plus the nonfinite policies "skip" and "ignore".

Multi-array cases put the bad array second, so that an update applied to params[0] before the
check of grads[1] would show up as a change.
"""

import math
import re

import numpy as np
import pytest

from cases import CONTRACT_DEFAULTS, OPTIMISERS
from snapshot import assert_unchanged, snapshot

import madam  # noqa: E402  (a broken build must fail the suite, not skip it)

NAN, INF = float("nan"), float("inf")
SHAPES = ((2,), (2, 2))


def _params(dtype=np.float64):
    return [np.linspace(0.5, 1.5, int(np.prod(s))).reshape(s).astype(dtype) for s in SHAPES]


def _grads(dtype=np.float64, k=0):
    return [np.full(s, 0.1 * (k + 1), dtype=dtype) - np.arange(np.prod(s), dtype=dtype).reshape(s)
            for s in SHAPES]


def _stepped(name, dtype=np.float64, steps=3, **kwargs):
    """An optimiser over two arrays that has taken a few steps (so its state is not all zero)."""
    ps = _params(dtype)
    opt = getattr(madam, name)(ps, **kwargs)
    for k in range(steps):
        opt.step(_grads(dtype, k))
    return opt, ps


def _arrays(snap):
    """The state arrays of a snapshot (its ``state.*`` entries)."""
    return {k: v for k, v in snap["state"].items() if k.startswith("state.")}


def _readonly(a):
    a.setflags(write=False)
    return a


def _with(a, index, value):
    a = a.copy()
    a.flat[index] = value
    return a


# ------------------------------------------------------------------------------ params
BAD_PARAMS = [  # (id, params, exception, the name the message must contain)
    ("int-dtype", lambda: [np.ones(2), np.ones((2, 2), dtype=np.int64)], TypeError, "params[1]"),
    ("float16", lambda: [np.ones(2), np.ones((2, 2), dtype=np.float16)], TypeError, "params[1]"),
    ("complex", lambda: [np.ones(2), np.ones((2, 2), dtype=complex)], TypeError, "params[1]"),
    ("not-an-array", lambda: [np.ones(2), [1.0, 2.0]], TypeError, "params[1]"),
    ("non-contiguous", lambda: [np.ones(2), np.ones(8)[::2]], ValueError, "params[1]"),
    ("fortran-order", lambda: [np.ones(2), np.ones((3, 2), order="F")], ValueError, "params[1]"),
    ("read-only", lambda: [np.ones(2), _readonly(np.ones((2, 2)))], ValueError, "params[1]"),
    ("empty-array", lambda: [np.ones(2), np.ones((0, 2))], ValueError, "params[1]"),
    ("empty-list", lambda: [], ValueError, "params"),
    ("python-float", lambda: 1.0, TypeError, "params"),
    ("single-int", lambda: np.arange(3), TypeError, "params"),
    ("single-non-contiguous", lambda: np.ones(8)[::2], ValueError, "params"),
    ("single-read-only", lambda: _readonly(np.ones(3)), ValueError, "params"),
    ("single-empty", lambda: np.ones(0), ValueError, "params"),
]


@pytest.mark.parametrize("make, exc, name", [pytest.param(*c[1:], id=c[0]) for c in BAD_PARAMS])
@pytest.mark.parametrize("opt_name", OPTIMISERS)
def test_bad_params(opt_name, make, exc, name):
    params = make()
    with pytest.raises(exc, match=re.escape(name)):
        getattr(madam, opt_name)(params)


def test_mixed_dtypes_across_params_are_allowed():
    """Each array keeps its own dtype; only grads must match their own parameter."""
    ps = [np.ones(2, np.float32), np.ones(3, np.float64)]
    opt = madam.Adam(ps, lr=0.1)
    opt.step([np.ones(2, np.float32), np.ones(3, np.float64)])
    assert ps[0].dtype == np.float32 and ps[1].dtype == np.float64
    assert (ps[0] < 1).all() and (ps[1] < 1).all()


# ------------------------------------------------------------------------------ hyperparameters
def bad_hypers(opt_name):
    """(id, kwargs, exception, name) for every hyperparameter the contract gives ``opt_name``."""
    have = CONTRACT_DEFAULTS[opt_name]
    out = [
        ("lr-negative", dict(lr=-1e-3), ValueError, "lr"),
        ("lr-nan", dict(lr=NAN), ValueError, "lr"),
        ("lr-str", dict(lr="0.1"), TypeError, "lr"),
        ("wd-negative", dict(weight_decay=-0.1), ValueError, "weight_decay"),
        ("wd-nan", dict(weight_decay=NAN), ValueError, "weight_decay"),
        ("nonfinite-unknown", dict(nonfinite="warn"), ValueError, "nonfinite"),
    ]
    if "betas" in have:
        k = len(have["betas"])
        ok = list(have["betas"])
        for i in range(k):
            for label, value in (("one", 1.0), ("above-one", 1.5), ("negative", -0.1), ("nan", NAN)):
                b = list(ok)
                b[i] = value
                out.append((f"beta{i + 1}-{label}", dict(betas=tuple(b)), ValueError, "betas"))
        out.append(("betas-too-long", dict(betas=tuple(ok) + (0.5,)), ValueError, "betas"))
        out.append(("betas-too-short", dict(betas=tuple(ok[:-1])), ValueError, "betas"))
    if "eps" in have:
        out.append(("eps-negative", dict(eps=-1e-8), ValueError, "eps"))
        out.append(("eps-nan", dict(eps=NAN), ValueError, "eps"))
    if opt_name == "SGD":
        out += [
            ("momentum-negative", dict(momentum=-0.5), ValueError, "momentum"),
            ("momentum-nan", dict(momentum=NAN), ValueError, "momentum"),
            ("dampening-nan", dict(dampening=NAN), ValueError, "dampening"),
            ("nesterov-no-momentum", dict(nesterov=True), ValueError, "nesterov"),
            ("nesterov-dampening", dict(nesterov=True, momentum=0.9, dampening=0.1),
             ValueError, "nesterov"),
        ]
    if opt_name == "Yogi":
        out.append(("initial-accumulator-negative", dict(initial_accumulator=-1.0), ValueError,
                    "initial_accumulator"))
    return out


HYPER_CASES = [pytest.param(o, *c[1:], id=f"{o}-{c[0]}") for o in OPTIMISERS for c in bad_hypers(o)]


@pytest.mark.parametrize("opt_name, kwargs, exc, name", HYPER_CASES)
def test_bad_hyperparameter_in_constructor(opt_name, kwargs, exc, name):
    ps = _params()
    before = [p.copy() for p in ps]
    with pytest.raises(exc, match=re.escape(name)):
        getattr(madam, opt_name)(ps, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(ps, before))


@pytest.mark.parametrize("opt_name, kwargs, exc, name", HYPER_CASES)
def test_bad_hyperparameter_set_later(opt_name, kwargs, exc, name):
    """opt.<name> = bad raises and keeps the old value; or, for a bad *combination*
    (nesterov), the next step raises and changes nothing."""
    opt, ps = _stepped(opt_name)
    old = {k: getattr(opt, k) for k in kwargs}
    before = snapshot(opt, ps)
    try:
        for key, value in kwargs.items():
            setattr(opt, key, value)
    except exc as e:
        assert name in str(e)
        for key, value in old.items():  # unchanged (NaN-safe comparison of floats and tuples)
            assert repr(getattr(opt, key)) == repr(value), key
        assert_unchanged(before, opt, ps)
        opt.step(_grads())  # still usable
        return
    assert name == "nesterov", f"setting {kwargs} was accepted"
    with pytest.raises(exc, match=re.escape(name)):
        opt.step(_grads())
    after = snapshot(opt, ps)  # the accepted attributes differ, the rest must not
    assert after["params"] == before["params"] and after["step_count"] == before["step_count"]
    assert _arrays(after) == _arrays(before)


def test_set_lr_negative_keeps_lr():
    opt, ps = _stepped("Adam", lr=1e-3)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1
    assert opt.lr == 1e-3
    opt.lr = 5e-4
    assert opt.lr == 5e-4


# ------------------------------------------------------------------------------ grads
def _other(dtype):
    return np.float32 if dtype == np.float64 else np.float64


BAD_GRADS = [  # (id, grads from good grads g and dtype, exception, name)
    ("shape", lambda g, dt: [g[0], g[1].ravel()], ValueError, "grads[1]"),
    ("shape-transposed-size", lambda g, dt: [g[0], np.ones((4, 1), dt)], ValueError, "grads[1]"),
    ("dtype-mismatch", lambda g, dt: [g[0], g[1].astype(_other(dt))], TypeError, "grads[1]"),
    ("int-dtype", lambda g, dt: [g[0], g[1].astype(np.int64)], TypeError, "grads[1]"),
    ("non-contiguous", lambda g, dt: [g[0], np.repeat(g[1], 2, axis=1)[:, ::2]], ValueError,
     "grads[1]"),
    ("fortran-order", lambda g, dt: [g[0], np.asfortranarray(g[1])], ValueError, "grads[1]"),
    ("not-an-array", lambda g, dt: [g[0], g[1].tolist()], TypeError, "grads[1]"),
    ("too-few", lambda g, dt: [g[0]], ValueError, "grads"),
    ("too-many", lambda g, dt: [g[0], g[1], g[1]], ValueError, "grads"),
    ("array-for-list", lambda g, dt: g[0], TypeError, "grads"),
    ("none", lambda g, dt: None, TypeError, "grads"),
    ("nan", lambda g, dt: [g[0], _with(g[1], 3, NAN)], madam.NonFiniteError, "grads[1]"),
    ("inf", lambda g, dt: [g[0], _with(g[1], 0, INF)], madam.NonFiniteError, "grads[1]"),
    ("minus-inf", lambda g, dt: [g[0], _with(g[1], 2, -INF)], madam.NonFiniteError, "grads[1]"),
]


@pytest.mark.parametrize("make, exc, name", [pytest.param(*c[1:], id=c[0]) for c in BAD_GRADS])
@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=lambda d: d.__name__)
@pytest.mark.parametrize("opt_name", OPTIMISERS)
def test_bad_grads_change_nothing(opt_name, dtype, make, exc, name):
    opt, ps = _stepped(opt_name, dtype)
    before = snapshot(opt, ps)
    with pytest.raises(exc, match=re.escape(name)):
        opt.step(make(_grads(dtype, 7), dtype))
    assert_unchanged(before, opt, ps)


BAD_SINGLE_GRADS = [
    ("list-for-array", lambda g: [g], TypeError),
    ("shape", lambda g: g[:-1].copy(), ValueError),
    ("dtype", lambda g: g.astype(np.float32), TypeError),
    ("nan", lambda g: _with(g, 1, NAN), madam.NonFiniteError),
]


@pytest.mark.parametrize("make, exc", [pytest.param(*c[1:], id=c[0]) for c in BAD_SINGLE_GRADS])
def test_bad_grads_single_array(make, exc):
    p = np.linspace(-1, 1, 5)
    opt = madam.AdamW(p, lr=0.1)
    opt.step(np.ones(5))
    before = snapshot(opt, p)
    with pytest.raises(exc, match="grads"):
        opt.step(make(np.full(5, 0.5)))
    assert_unchanged(before, opt, p)


def test_nonfinite_error_is_a_value_error():
    assert issubclass(madam.NonFiniteError, ValueError)


def test_read_only_grads_are_accepted():
    ps = _params()
    opt = madam.Adam(ps, lr=0.1)
    opt.step([_readonly(g) for g in _grads()])
    assert opt.step_count == 1


# ------------------------------------------------------------------------------ nonfinite policies
@pytest.mark.parametrize("bad", (NAN, INF, -INF), ids=("nan", "inf", "-inf"))
@pytest.mark.parametrize("opt_name", OPTIMISERS)
def test_nonfinite_skip(opt_name, bad):
    """A skipped step changes nothing but skipped_steps; the run goes on as if it never happened."""
    clean, clean_ps = _stepped(opt_name, steps=0)
    opt, ps = _stepped(opt_name, steps=0, nonfinite="skip")
    for k in range(10):
        if k == 5:
            before = snapshot(opt, ps)
            bad_grads = _grads(k=k)
            bad_grads[1] = _with(bad_grads[1], 1, bad)
            opt.step(bad_grads)
            after = snapshot(opt, ps)
            assert opt.skipped_steps == 1
            assert after["params"] == before["params"]
            assert after["step_count"] == before["step_count"]
            assert _arrays(after) == _arrays(before)
        opt.step(_grads(k=k))
        clean.step(_grads(k=k))
    assert opt.step_count == clean.step_count == 10
    assert all(np.array_equal(a, b) for a, b in zip(ps, clean_ps))


@pytest.mark.parametrize("opt_name", OPTIMISERS)
def test_nonfinite_skip_still_checks_structure(opt_name):
    opt, ps = _stepped(opt_name, nonfinite="skip")
    before = snapshot(opt, ps)
    with pytest.raises(ValueError, match=re.escape("grads[1]")):
        opt.step([_grads()[0], _with(_grads()[1], 0, NAN).ravel()])
    assert_unchanged(before, opt, ps)


@pytest.mark.parametrize("opt_name", OPTIMISERS)
def test_nonfinite_ignore(opt_name):
    """No scan: the step is taken, the good array is updated as in a clean step, and the NaN
    reaches the bad array's parameters or state."""
    clean, clean_ps = _stepped(opt_name)
    opt, ps = _stepped(opt_name, nonfinite="ignore")
    bad = _grads(k=9)
    bad[1] = _with(bad[1], 2, NAN)
    opt.step(bad)
    clean.step(_grads(k=9))
    assert opt.step_count == clean.step_count == 4
    assert np.array_equal(ps[0], clean_ps[0])
    poisoned = [ps[1]] + [v for k, v in opt.state_dict().items() if k.startswith("state.1.")]
    assert not all(np.isfinite(a).all() for a in poisoned)


def test_nonfinite_policy_is_settable():
    opt, ps = _stepped("Adam")
    opt.nonfinite = "skip"
    bad = _grads()
    bad[1] = _with(bad[1], 0, NAN)
    opt.step(bad)
    assert opt.skipped_steps == 1 and opt.step_count == 3
    with pytest.raises(ValueError, match="nonfinite"):
        opt.nonfinite = "sometimes"
    assert opt.nonfinite == "skip"
    assert math.isfinite(ps[1].sum())


# ------------------------------------------------------------------------------ aliasing, late changes
@pytest.mark.parametrize("opt_name", OPTIMISERS)
def test_grad_aliasing_another_param_is_rejected(opt_name):
    """grads[1] is params[0]: the kernel for params[1] would read its gradient after params[0]
    was already updated, i.e. not the gradient the caller passed; it must raise, naming grads[1]."""
    ps = [np.linspace(0.5, 1.5, 4), np.linspace(-1.0, 1.0, 4)]
    opt = getattr(madam, opt_name)(ps)
    opt.step([np.ones(4), np.ones(4)])
    before = snapshot(opt, ps)
    with pytest.raises(ValueError, match=re.escape("grads[1]")):
        opt.step([np.ones(4), ps[0]])
    assert_unchanged(before, opt, ps)


@pytest.mark.parametrize("opt_name", OPTIMISERS)
def test_param_made_read_only_later_is_rejected(opt_name):
    """A parameter set read-only after construction must not be written by step."""
    opt, ps = _stepped(opt_name)
    ps[1].setflags(write=False)
    before = snapshot(opt, ps)
    with pytest.raises(ValueError, match=re.escape("params[1]")):
        opt.step(_grads())
    assert_unchanged(before, opt, ps)


# ------------------------------------------------- a parameter resized in place (issue 12, item 3)
# The gradients are NaN: were the memory check missing, the step would stop at the non-finite
# scan (a NonFiniteError whose message does not match) before any C kernel touched the stale
# pointer, so these tests cannot corrupt memory whatever the implementation does.
def _resized_cases():
    def adam_single(new):
        return madam.Adam(new, lr=0.1), "params"

    def sgd_list(new):
        return madam.SGD([np.ones(3), new], lr=0.1), "params[1]"

    def mada(new):
        return madam.MADA([np.ones(3), new], lr=0.1), "params[1]"

    return {"Adam-single": adam_single, "SGD-list": sgd_list, "MADA": mada}


@pytest.mark.parametrize("new_size", (2, 1000), ids=("shrunk", "grown"))
@pytest.mark.parametrize("case", list(_resized_cases()))
def test_step_rejects_param_resized_in_place(case, new_size):
    x = np.array([0.5, 0.8, 1.2, 1.5])  # owns its memory (resize needs that)
    opt, name = _resized_cases()[case](x)
    ps = opt.params
    x.resize(new_size, refcheck=False)  # new shape, and (grown) a new data pointer
    grads = [np.full(p.shape, NAN) for p in ps]
    before = snapshot(opt, [p.copy() for p in ps])
    with pytest.raises(ValueError, match=re.escape(f"{name} was resized or reallocated")):
        opt.step(grads[0] if len(ps) == 1 else grads)
    after = snapshot(opt, [p.copy() for p in ps])
    assert after["state"] == before["state"] and after["step_count"] == before["step_count"]


def test_madam_step_rejects_param_resized_in_place():
    x = np.array([0.5, 0.8, 1.2, 1.5])  # owns its memory (resize needs that)
    opt = madam.MAdam(x, solver=None, n_obj=2)
    x.resize(1000, refcheck=False)
    with pytest.raises(ValueError, match=re.escape("params was resized or reallocated")):
        opt.step(np.full((2, 1000), NAN), preference=np.array([0.5, 0.5]))
    assert opt.step_count == 0


def test_step_accepts_param_modified_in_place():
    """Writing into a param (even replacing all its values) is fine: its memory is the same."""
    x = np.ones(4)
    opt = madam.Adam(x, lr=0.1)
    x[...] = 2.0
    x.shape = (2, 2)  # a reshape of the same memory is a different layout: refused
    with pytest.raises(ValueError, match="resized or reallocated"):
        opt.step(np.ones((2, 2)))
    x.shape = (4,)
    assert opt.step(np.ones(4)) and opt.step_count == 1
