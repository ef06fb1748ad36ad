"""state_dict / load_state_dict: bitwise resumption, copies, and rejection of bad state."""

import io
import pickle
import re

import numpy as np
import pytest

import problems
from cases import FULL_CASES, OPTIMISERS, params
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


@pytest.mark.parametrize("dtype", problems.DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", OPTIMISERS)
def test_load_rejects_bad_state(name, dtype):
    opt, ps, _ = _run(name, {}, dtype, 3)
    good = opt.state_dict()
    target, tps, _ = _run(name, {}, dtype, 1)
    before = snapshot(target, tps)
    failures = []
    for what, bad, exc, key in _corruptions(good):
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
