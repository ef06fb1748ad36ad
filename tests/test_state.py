"""state_dict / load_state_dict: bitwise resumption, copies, and rejection of bad state."""

import io
import pickle
import re

import numpy as np
import pytest

import problems
from cases import FULL_CASES, OPTIMISERS, params
from cases import NONNEGATIVE as FIRST_ORDER_NONNEGATIVE
from snapshot import assert_unchanged, freeze_state, snapshot

import madam  # noqa: E402  (a broken build must fail the suite, not skip it)

PROBLEM = problems.ROSENBROCK  # list params of two shapes: state for more than one array
STEPS = 200
HALF = STEPS // 2


def _pickle(sd):
    return pickle.loads(pickle.dumps(sd))


def _npz(sd):
    buf = io.BytesIO()
    np.savez(buf, **sd)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:  # a plain .npz, no pickled objects
        return {k: npz[k] for k in npz.files}


ROUND_TRIPS = {"dict": lambda sd: sd, "pickle": _pickle, "npz": _npz}


def _run(name, kwargs, dtype, steps, x0=None):
    x = PROBLEM.start(dtype) if x0 is None else x0
    ps = PROBLEM.split(x)
    opt = getattr(madam, name)(ps, **kwargs)
    return opt, ps, problems.trajectory(PROBLEM, opt, ps, steps)


@pytest.mark.parametrize("round_trip", list(ROUND_TRIPS))
@pytest.mark.parametrize("dtype", problems.DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name, kwargs", params(FULL_CASES))
def test_resume_is_bitwise(name, kwargs, dtype, round_trip):
    _, _, full = _run(name, kwargs, dtype, STEPS)

    opt, ps, first = _run(name, kwargs, dtype, HALF)
    sd = ROUND_TRIPS[round_trip](opt.state_dict())
    # A fresh optimiser with default hyperparameters: load_state_dict restores them too.
    ps2 = PROBLEM.split(problems.flatten(ps))
    opt2 = getattr(madam, name)(ps2)
    opt2.load_state_dict(sd)
    for key, value in kwargs.items():
        assert getattr(opt2, key) == value, key
    assert opt2.step_count == HALF
    second = problems.trajectory(PROBLEM, opt2, ps2, STEPS - HALF)

    assert np.array_equal(np.concatenate([first, second]), full)
    assert opt2.step_count == STEPS


@pytest.mark.parametrize("name", OPTIMISERS)
def test_state_dict_is_plain_and_a_copy(name):
    dtype = np.float64
    opt, ps, _ = _run(name, {}, dtype, 5)
    sd = opt.state_dict()
    for key, value in sd.items():
        assert isinstance(value, (bool, int, float, str, tuple, np.ndarray)), key
    frozen = freeze_state(sd)
    arrays = [v for v in sd.values() if isinstance(v, np.ndarray)]
    assert arrays, "state_dict holds no arrays"
    for a in arrays:  # mutating the returned dict must not reach the optimiser
        a.fill(np.nan)
    sd["step_count"] = 10**6
    assert freeze_state(opt.state_dict()) == frozen

    # load_state_dict copies in: mutating the dict afterwards does not reach the optimiser
    sd = opt.state_dict()
    opt2 = getattr(madam, name)(PROBLEM.split(problems.flatten(ps)))
    opt2.load_state_dict(sd)
    for a in sd.values():
        if isinstance(a, np.ndarray):
            a.fill(np.nan)
    assert freeze_state(opt2.state_dict()) == frozen


def _corruptions(sd):
    """(description, corrupted copy of sd, exception type, key the message must name)."""
    out = []
    for key, value in sd.items():
        missing = dict(sd)
        del missing[key]
        out.append((f"{key} missing", missing, ValueError, key))
        if isinstance(value, np.ndarray):
            other = np.float32 if value.dtype == np.float64 else np.float64
            out.append((f"{key} dtype", {**sd, key: value.astype(other)}, TypeError, key))
            longer = np.append(value.ravel(), 1.0).astype(value.dtype)
            out.append((f"{key} shape", {**sd, key: longer}, ValueError, key))
            out.append((f"{key} 2-d", {**sd, key: value.reshape(1, -1)}, ValueError, key))
    out.append(("hyper.lr negative", {**sd, "hyper.lr": -1.0}, ValueError, "lr"))
    out.append(("hyper.lr NaN", {**sd, "hyper.lr": float("nan")}, ValueError, "lr"))
    out.append(("step_count str", {**sd, "step_count": "7"}, TypeError, "step_count"))
    out.append(("step_count negative", {**sd, "step_count": -1}, ValueError, "step_count"))
    out.append(("extra array", {**sd, "state.2.exp_avg": np.zeros(3)}, ValueError, "state.2"))
    return out


def refusal_failures(target, tps, before, cases):
    """Load each (what, bad state_dict, expected exception, key) into ``target``; return what went
    wrong: accepted, another exception type, a message not naming the key, or any change to the
    optimiser (compared with ``before``, a snapshot of target and its params ``tps``)."""
    failures = []
    for what, bad, exc, key in cases:
        try:
            target.load_state_dict(bad)
        except exc as e:
            if key not in str(e):
                failures.append(f"{what}: message {str(e)!r} does not name {key!r}")
        except Exception as e:  # noqa: BLE001 - report the wrong type with the case
            failures.append(f"{what}: {type(e).__name__} ({e}) instead of {exc.__name__}")
        else:
            failures.append(f"{what}: accepted")
        if snapshot(target, tps) != before:
            failures.append(f"{what}: the optimiser changed")
    return failures


@pytest.mark.parametrize("dtype", problems.DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", OPTIMISERS)
def test_load_rejects_bad_state(name, dtype):
    opt, ps, _ = _run(name, {}, dtype, 3)
    good = opt.state_dict()
    target, tps, _ = _run(name, {}, dtype, 1)
    before = snapshot(target, tps)
    failures = refusal_failures(target, tps, before, _corruptions(good))
    assert not failures, "\n".join(failures)
    target.load_state_dict(good)  # and the good one still loads
    assert freeze_state(target.state_dict()) == freeze_state(good)


@pytest.mark.parametrize("name", OPTIMISERS)
def test_load_rejects_other_optimiser(name):
    other = "Adam" if name != "Adam" else "SGD"
    x = PROBLEM.start(np.float64)
    src = getattr(madam, other)(PROBLEM.split(x))
    ps = PROBLEM.split(x)
    opt = getattr(madam, name)(ps)
    before = snapshot(opt, ps)
    with pytest.raises((ValueError, TypeError), match="optimizer"):
        opt.load_state_dict(src.state_dict())
    assert_unchanged(before, opt, ps)


def test_load_rejects_other_structure():
    """A state for two arrays does not load into an optimiser over one array, and vice versa."""
    x = PROBLEM.start(np.float64)
    two = madam.Adam(PROBLEM.split(x))
    one = madam.Adam(x[:2].copy())
    with pytest.raises(ValueError, match=re.escape("state.1.")):
        one.load_state_dict(two.state_dict())
    with pytest.raises(ValueError, match=re.escape("state.1.")):  # lacks state.1.*
        two.load_state_dict(one.state_dict())


# ---------------------------------------------------------------- poison (issue 12, item 1)
# Which state arrays are second moments (>= 0 in every reachable state), per optimiser: the
# first-order ones from their references (cases.NONNEGATIVE, an independent list: not read from
# the classes under test), and MADA's (HyperAdam and AdamHD are MADAs) here.
NONNEGATIVE = {**FIRST_ORDER_NONNEGATIVE,
               "MADA": ("exp_avg_sq", "exp_avg_sq_prev", "avg_exp_avg_sq")}
POISON_CASES = [(name, {}) for name in OPTIMISERS] + [
    ("MADA", {}), ("MADA", {"derivatives": "store"}), ("HyperAdam", {}), ("AdamHD", {})]


def _poisons(sd, nonnegative):
    """(description, poisoned copy of sd, key the message must name)."""
    out = []
    for key, value in sd.items():
        if not (key.startswith("state.") and isinstance(value, np.ndarray)):
            continue
        for bad in (np.nan, np.inf, -np.inf):
            a = value.copy()
            a.flat[a.size // 2] = bad
            out.append((f"{key} holds {bad}", {**sd, key: a}, key))
        if key.split(".", 2)[2] in nonnegative:
            a = value.copy()
            a.flat[-1] = -1e-30
            out.append((f"{key} negative", {**sd, key: a}, key))
    for key in ("step_count", "skipped_steps"):
        for bad in (2 ** 63 - 1, 2 ** 53 + 1):
            out.append((f"{key} = {bad}", {**sd, key: bad}, key))
    for key in ("bogus", "hyper.bogus", "hyper_lr"):
        out.append((f"unknown key {key}", {**sd, key: 1.0}, key))
    return out


@pytest.mark.parametrize("dtype", problems.DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name, kwargs", POISON_CASES,
                         ids=[f"{n}-{'-'.join(map(str, k.values())) or 'defaults'}"
                              for n, k in POISON_CASES])
def test_load_rejects_poison(name, kwargs, dtype):
    """NaN/Inf buffers, negative second moments, absurd step counts and unknown keys are
    refused with a ValueError naming the key, and the optimiser is left bit for bit as it was
    (buffers, hyperparameters, counters)."""
    opt, ps, _ = _run(name, kwargs, dtype, 3)
    good = opt.state_dict()
    target, tps, _ = _run(name, dict(kwargs, lr=3e-4), dtype, 1)
    before = snapshot(target, tps)
    nonnegative = NONNEGATIVE.get(name, NONNEGATIVE["MADA"])
    cases = _poisons(good, nonnegative)
    assert any("negative" in what for what, _, _ in cases) == bool(nonnegative)
    failures = []
    for round_trip in ("dict", "npz"):
        failures += refusal_failures(
            target, tps, before, [(f"{what} ({round_trip})", ROUND_TRIPS[round_trip](bad),
                                   ValueError, key) for what, bad, key in cases])
    assert not failures, "\n".join(failures)
    target.load_state_dict(good)  # the good one still loads, and at the bound too
    target.load_state_dict({**good, "step_count": 2 ** 53})
    assert target.step_count == 2 ** 53


@pytest.mark.parametrize("name", ("Adam", "Adan", "SGD"))
def test_load_accepts_negative_first_moments(name):
    """Only second moments must be >= 0: a negative momentum is a valid state."""
    opt, ps, _ = _run(name, {}, np.float64, 3)
    sd = opt.state_dict()
    key = next(k for k in sd if k.startswith("state.0.") and k.split(".")[2] not in
               NONNEGATIVE[name])
    sd[key] = -np.abs(sd[key]) - 1.0
    opt.load_state_dict(sd)
    assert np.array_equal(opt.state_dict()[key], sd[key])


def test_madam_checkpoint_with_negative_fisher_loads():
    """MAdam's packed F holds off-diagonal entries F_ij (i != j), which may be negative:
    a checkpoint holding them must load (only second moments are checked)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(6)
    opt = madam.MAdam(x, solver=None, n_obj=2)
    pref = np.array([0.5, 0.5])
    for _ in range(3):
        jac = rng.standard_normal((2, 6))
        jac[1] = -jac[0]  # opposite gradients: the off-diagonal F_01 = g0 g1 < 0
        opt.step(jac, preference=pref)
    sd = opt.state_dict()
    assert np.any(sd["state.0.fisher"][1] < 0)
    opt2 = madam.MAdam(x.copy(), solver=None, n_obj=2)
    opt2.load_state_dict(sd)
    assert freeze_state(opt2.state_dict()) == freeze_state(sd)


@pytest.mark.parametrize("poison", ["fisher_nan", "v_negative", "unknown_key"])
def test_madam_load_rejects_poison_and_changes_nothing(poison):
    """MAdam's own keys: a non-finite F, a negative Adam v of u, an unknown key are refused,
    naming the key, and nothing changes."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(6)
    opt = madam.MAdam(x, lr=1e-2)
    for _ in range(3):
        opt.step(rng.standard_normal((3, 6)), np.ones(3))
    before = {k: np.array(v, copy=True) for k, v in opt.state_dict().items()}
    bad = dict(opt.state_dict())
    if poison == "fisher_nan":
        key = "state.0.fisher"
        bad[key] = bad[key].copy()
        bad[key][1, 2] = np.nan
    elif poison == "v_negative":
        key = "state.0.exp_avg_sq"
        bad[key] = bad[key].copy()
        bad[key][0] = -1.0
    else:
        key = "bogus"
        bad[key] = 1
    with pytest.raises(ValueError, match=key):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert sorted(after) == sorted(before)
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(after[k]), v)
