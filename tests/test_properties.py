"""Property-based contract of the optimisers (issue 12, deliver 3): the eight first-order
optimisers, MADA / HyperAdam / AdamHD, every MAdam mode, and their state dicts.

For any drawn input (arrays of float32/float64 with normal, extreme, denormal and non-finite
values; wrong dtypes, layouts and shapes; hyperparameters from their valid range or perturbed
to invalid values; mid-run changes of hyperparameters; corrupted state dicts), a call either

* succeeds, and then equals the NumPy reference (tests/reference.py, test_mada_reference.MadaRef
  and the MAdam reference below) within the tolerances of tests/test_optim_reference.py, with
  finite results whenever every input lies in a sane range, or
* raises TypeError / ValueError / madam.NonFiniteError (never CoreError, LinAlgError or anything
  else) whose message names one of the perturbed arguments, and the parameters, the optimiser's
  state_dict and its solver's state are unchanged bit for bit.

Budgets follow the hypothesis profile (tests/conftest.py): "ci" by default,
``--hypothesis-profile=long`` for a long hunt.
"""
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import reference  # noqa: E402
from cases import CONTRACT_DEFAULTS, OPTIMISERS  # noqa: E402
from test_mada_reference import MadaRef  # noqa: E402

import madam  # noqa: E402
from property_contract import (DTYPES, INF, NAN, NONFINITE, SANE, attempt, budget,  # noqa: E402
                               check_error, freeze)
from madam import solvers  # noqa: E402
from madam.mada import COEFFICIENTS, LEARNABLE  # noqa: E402

RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}   # test_optim_reference.py
MADA_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 5e-5}  # test_mada.py


def image(opt, params):
    """Everything a failed call must leave alone: params, state_dict, counters, the solver."""
    sd = opt.state_dict()
    out = {"params": freeze([np.array(p, copy=True) for p in params]),
           "state": freeze(sd),
           "arrays": freeze({k: v for k, v in sd.items() if k.startswith("state.")}),
           "step_count": opt.step_count,
           "skipped_steps": getattr(opt, "skipped_steps", None)}
    solver = getattr(opt, "solver", None)
    if solver is not None and hasattr(solver, "state_dict"):
        out["solver"] = freeze(solver.state_dict())
        out["solver.attrs"] = freeze({k: v for k, v in vars(solver).items()
                                      if isinstance(v, (int, float, str, np.ndarray))})
    return out


def assert_same(before, after):
    for key in before:
        assert after[key] == before[key], f"{key} changed by a call that raised"


def close(got, want, rtol, atol=0.0):
    """Normwise relative agreement of two arrays (plus ``atol``); non-finite entries must agree
    exactly."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN pattern differs"
    inf = np.isinf(want) | np.isinf(got)
    assert np.array_equal(got[inf], want[inf]), "Inf pattern differs"
    fin = ~(np.isnan(want) | inf)
    if fin.any():
        scale = max(float(np.abs(want[fin]).max()), np.finfo(np.float64).tiny)
        err = float(np.abs(got[fin] - want[fin]).max())
        dev = err / scale
        assert dev <= rtol or err <= atol, f"relative deviation {dev:.3g} > {rtol:g}"


# ============================================================================ value strategies
EXTREME = st.sampled_from([1e30, -1e30, 1e-30, -1e-30, 5e-324, -5e-324, 1e-310, 0.0, -0.0,
                           3e38, -3e38, 1e300, -1e300, 1.7e308, 1e15, -2.5e19, 3e19])
SHAPES = st.sampled_from([(1,), (3,), (5,), (2, 2), (2, 3), (3, 1)])


def draw_values(data, size, sane, nonfinite=False):
    elements = SANE if sane else st.one_of(SANE, SANE, EXTREME)
    if nonfinite:
        elements = st.one_of(elements, NONFINITE)
    return data.draw(st.lists(elements, min_size=size, max_size=size))


def as_array(values, shape, dtype):
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype).reshape(shape)


def cast(a, dtype):
    with np.errstate(over="ignore"):
        return a.astype(dtype)


def draw_array(data, shape, dtype, sane, nonfinite=False):
    return as_array(draw_values(data, int(np.prod(shape)), sane, nonfinite), shape, dtype)


def draw_params(data, shape, dtype, sane):
    """Finite parameters (values beyond float32's range saturate at its largest)."""
    a = draw_array(data, shape, dtype, sane)
    big = np.finfo(dtype).max
    return np.ascontiguousarray(np.nan_to_num(a, posinf=big, neginf=-big))


def is_sane(*arrays, bound=1e3):
    return all(np.all(np.isfinite(a)) and np.all(np.abs(a) <= bound) for a in arrays)


# bad values for each kind of hyperparameter (perturbations that must be refused)
BAD_REAL = [-1.0, -1e-300, NAN, INF, -INF, "0.1", None, True, 1j, [0.1]]
BAD_UNIT = BAD_REAL + [1.5]
BAD_FLAG = [1, 0, "yes", None, 1.0]


def bad_betas(k, ok):
    out = [0.9, "ab", (0.5,) * (k + 1), (0.5,) * (k - 1), None]
    for i in range(k):
        for value in (1.0, 1.5, -0.1, NAN, INF, "x"):
            b = list(ok)
            b[i] = value
            out.append(tuple(b))
    return out


def hyper_space(name):
    """key -> (sane strategy, wild values (valid but extreme), invalid values)."""
    unit = st.floats(0.0, 1.0)
    beta = st.floats(0.0, 0.999)
    small = st.floats(0.0, 1.0)
    space = {
        "lr": (small, [0.0, 5e-324, 1e10, 1e300, 1.7e308], BAD_REAL),
        "weight_decay": (small, [1e10, 1e300, 1.7e308], BAD_REAL),
        "eps": (st.floats(1e-12, 1.0), [0.0, 5e-324, 1e300], BAD_REAL),
        "momentum": (st.floats(0.0, 0.99), [5.0, 1e300], BAD_REAL),
        "dampening": (unit, [0.0, 1.0], BAD_UNIT),
        "nesterov": (st.booleans(), [True, np.bool_(True)], BAD_FLAG),
        "proximal": (st.booleans(), [False, np.bool_(True)], BAD_FLAG),
        "initial_accumulator": (st.floats(0.0, 10.0), [1e39, 1e300, 1.7e308], BAD_REAL),
    }
    k = len(CONTRACT_DEFAULTS[name].get("betas", ()))
    if k:
        ok = CONTRACT_DEFAULTS[name]["betas"]
        space["betas"] = (st.tuples(*[beta] * k), [(0.0,) * k, (0.9999999999,) * k],
                          bad_betas(k, ok))
    return {key: space[key] for key in CONTRACT_DEFAULTS[name]}


def draw_kwargs(data, space, sane):
    """(kwargs, invalid keys, wild keys): every key default, valid or (not sane) valid but
    extreme; then, in a third of the examples, one or two keys perturbed to invalid values."""
    kw, bad, wild = {}, set(), set()
    for key, (good, extreme, invalid) in space.items():
        options = ["default", "good", "good"] + (["wild"] if extreme and not sane else [])
        choice = data.draw(st.sampled_from(options), label=f"{key} kind")
        if choice == "good":
            kw[key] = data.draw(good, label=key)
        elif choice == "wild":
            kw[key] = data.draw(st.sampled_from(extreme), label=key)
            wild.add(key)
    if data.draw(st.integers(0, 2), label="perturb hypers?") == 0:
        keys = data.draw(st.lists(st.sampled_from(sorted(space)), min_size=1, max_size=2,
                                  unique=True), label="perturbed")
        for key in keys:
            kw[key] = data.draw(st.sampled_from(space[key][2]), label=f"bad {key}")
            bad.add(key)
            wild.discard(key)
    return kw, bad, wild


def draw_hypers(data, name, sane):
    return draw_kwargs(data, hyper_space(name), sane)


def sgd_combination_bad(kw):
    full = dict(CONTRACT_DEFAULTS["SGD"], **kw)
    try:
        return bool(full["nesterov"]) and (float(full["momentum"]) <= 0.0
                                           or float(full["dampening"]) != 0.0)
    except (TypeError, ValueError):
        return False


# ============================================================================ bad gradients
GRAD_KINDS = ["ok"] * 12 + ["readonly", "nonfinite", "dtype", "int", "float16", "complex",
                           "noncontig", "fortran", "shape", "count", "not_array", "none",
                           "alias"]


def make_grads(data, kind, params, single, dtype, sane):
    """(grads as passed to step, the names a refusal must use, the grads as the reference
    sees them or None)."""
    grads = [draw_array(data, p.shape, dtype, sane) for p in params]
    i = data.draw(st.integers(0, len(params) - 1), label="bad index")
    name = "grads" if single else f"grads[{i}]"
    names = {name}
    overflow = [j for j, g in enumerate(grads) if not np.all(np.isfinite(g))]
    names |= {"grads" if single else f"grads[{j}]" for j in overflow}
    if overflow and kind in ("ok", "readonly"):  # a float64 value beyond float32's range
        kind = "overflowed"
    if kind == "noncontig" and grads[i].size == 1:  # a one-element array is always contiguous
        kind = "shape"
    if kind == "readonly":
        for g in grads:
            g.setflags(write=False)
    elif kind == "nonfinite":
        grads[i] = grads[i].copy()
        grads[i].flat[data.draw(st.integers(0, grads[i].size - 1))] = data.draw(NONFINITE)
    elif kind == "dtype":
        grads[i] = cast(grads[i], np.float32 if dtype == np.float64 else np.float64)
    elif kind == "int":
        grads[i] = np.zeros(grads[i].shape, dtype=np.int64)
    elif kind == "float16":
        grads[i] = cast(grads[i], np.float16)
    elif kind == "complex":
        grads[i] = grads[i].astype(np.complex128)
    elif kind == "noncontig":
        grads[i] = np.repeat(grads[i][..., None], 2, axis=-1)[..., 0]
    elif kind == "fortran":
        if grads[i].ndim < 2 or min(grads[i].shape) < 2:
            kind = "shape"
        else:
            grads[i] = np.asfortranarray(grads[i])
    if kind == "shape":
        grads[i] = np.zeros(grads[i].size + 1, dtype=dtype)
    elif kind == "count":
        names = {"grads"}
        grads = grads + [grads[0]] if data.draw(st.booleans()) or single else grads[:-1]
        if single:
            grads = grads[:1] * 2  # a list for an array
    elif kind == "not_array":
        grads[i] = grads[i].tolist()
    elif kind == "none":
        grads, names = None, {"grads"}
    elif kind == "alias":
        if single:
            grads = [params[0]]
        else:
            grads[i] = params[data.draw(st.integers(0, len(params) - 1))]
            if grads[i].shape != params[i].shape:
                grads[i] = params[i]
    if kind in ("ok", "readonly"):
        return (grads[0] if single else grads), names, grads, kind
    if grads is None or kind == "count":
        return grads, names, None, kind
    return (grads[0] if single else grads), names, None, kind


# ============================================================================ reference glue
REF_BUFFERS = {  # optimiser buffer name -> attribute of the reference class
    "SGD": {"momentum_buffer": "buf"},
    "Adam": {"exp_avg": "m", "exp_avg_sq": "v"},
    "AdamW": {"exp_avg": "m", "exp_avg_sq": "v"},
    "AMSGrad": {"exp_avg": "m", "exp_avg_sq": "v", "max_exp_avg_sq": "aux"},
    "AVGrad": {"exp_avg": "m", "exp_avg_sq": "v", "avg_exp_avg_sq": "aux"},
    "Yogi": {"exp_avg": "m", "exp_avg_sq": "v"},
    "Adan": {"exp_avg": "m", "exp_avg_diff": "md", "exp_avg_sq": "nn", "prev_grad": "prev"},
    "Lion": {"exp_avg": "m"},
}


def flat(arrays):
    return np.concatenate([np.asarray(a).ravel() for a in arrays])


def reference_from(opt, name, params):
    """A reference optimiser in the exact state of ``opt`` (hyperparameters, buffers, t)."""
    hyper = {k: getattr(opt, k) for k in CONTRACT_DEFAULTS[name]}
    with np.errstate(all="ignore"):
        ref = reference.ALL[name](flat(params), **hyper)
    sd = opt.state_dict()
    n = len(params)
    for buf, attr in REF_BUFFERS[name].items():
        setattr(ref, attr, flat([sd[f"state.{i}.{buf}"] for i in range(n)]))
    ref.t = opt.step_count
    return ref


def sync_hypers(ref, opt, name):
    for key in CONTRACT_DEFAULTS[name]:
        if key != "initial_accumulator":
            setattr(ref, key, getattr(opt, key))


def state_finite(opt):
    return all(np.all(np.isfinite(v)) for k, v in opt.state_dict().items()
               if k.startswith("state.") and isinstance(v, np.ndarray)
               and v.dtype.kind == "f")


# ============================================================================ 1. first-order
@pytest.mark.parametrize("name", OPTIMISERS)
@settings(max_examples=budget(0.75))
@given(data=st.data())
def test_first_order_optimisers(name, data):
    """Construction, hyperparameter changes and steps of SGD ... Lion against reference.py."""
    dtype = data.draw(DTYPES, label="dtype")
    shapes = data.draw(st.lists(SHAPES, min_size=1, max_size=2), label="shapes")
    single = len(shapes) == 1 and data.draw(st.booleans(), label="single")
    sane = data.draw(st.booleans(), label="sane")
    policy = data.draw(st.sampled_from(["raise", "raise", "skip"]), label="nonfinite")
    params = [draw_params(data, s, dtype, sane) for s in shapes]
    kw, bad, wild = draw_hypers(data, name, sane)
    if name == "SGD" and not bad and sgd_combination_bad(kw):
        bad.add("nesterov")
    before = freeze([p.copy() for p in params])
    opt, exc = attempt(getattr(madam, name), params[0] if single else params,
                       nonfinite=policy, **kw)
    if exc is not None:
        note(f"constructor raised {exc!r}")
        check_error(exc, bad | wild)
        assert freeze(params) == before, "a refused constructor changed params"
        return
    assert not bad, f"{name}({kw}) accepted the invalid {sorted(bad)}"
    assert state_finite(opt), f"{name}({kw}) built a non-finite state"
    ref = reference_from(opt, name, params)

    for k in range(data.draw(st.integers(1, 4), label="steps")):
        # sometimes change a hyperparameter between steps (validated attribute)
        if data.draw(st.integers(0, 4), label="set hyper?") == 0:
            key = data.draw(st.sampled_from(sorted(hyper_space(name))), label="set key")
            good, extreme, invalid = hyper_space(name)[key]
            value = data.draw(st.one_of(good, st.sampled_from(invalid)) if sane else
                              st.one_of(good, st.sampled_from(extreme + invalid)), label="value")
            snap, old = image(opt, params), repr(getattr(opt, key))
            _, exc = attempt(setattr, opt, key, value)
            if exc is not None:
                check_error(exc, {key})
                assert repr(getattr(opt, key)) == old, f"{key} changed by a refused set"
                assert_same(snap, image(opt, params))
            else:
                sync_hypers(ref, opt, name)
        kind = data.draw(st.sampled_from(GRAD_KINDS), label=f"grads {k}")
        grads, names, ref_grads, kind = make_grads(data, kind, params, single, dtype, sane)
        if name == "SGD" and opt.nesterov and (opt.momentum <= 0 or opt.dampening != 0):
            names, ref_grads = names | {"nesterov"}, None
        snap = image(opt, params)
        ok, exc = attempt(opt.step, grads)
        if exc is not None:
            note(f"step {k} ({kind}) raised {exc!r}")
            check_error(exc, names | ({"grads"} if not sane else set()))
            assert_same(snap, image(opt, params))
            continue
        if ok is False:  # skipped: only skipped_steps moved
            assert policy == "skip" and kind in ("nonfinite", "overflowed")
            after = image(opt, params)
            assert after["skipped_steps"] == snap["skipped_steps"] + 1
            assert after["params"] == snap["params"] and after["arrays"] == snap["arrays"] \
                and after["step_count"] == snap["step_count"], "a skipped step changed state"
            continue
        assert ref_grads is not None, f"step accepted bad grads ({kind})"
        with np.errstate(all="ignore"):
            ref.step(flat(ref_grads))
        close(flat(params), ref.p, RTOL[dtype])
        event(f"{name}: step compared with the reference")
        if sane and is_sane(flat(ref_grads)) and not wild:
            assert np.all(np.isfinite(flat(params))), "non-finite params from sane inputs"
            assert state_finite(opt), "non-finite state from sane inputs"
            twin = getattr(madam, name)([p.copy() for p in params])
            twin.load_state_dict(opt.state_dict())  # a reachable state loads


# ============================================================================ 2. MADA family
MADA_KINDS = ("MADA", "HyperAdam", "AdamHD")


def mada_space(kind):
    """key -> (good strategy, wild values, invalid values) for the MADA family constructors."""
    small = st.floats(0.0, 1.0)
    space = {
        "lr": (st.floats(0.0, 0.1), [0.0, 1e10, 1e300, 1.7e308], BAD_REAL),
        "eps": (st.floats(1e-10, 1e-2), [0.0, 1e300], BAD_REAL),
        "hyper_start": (st.integers(0, 3), [10 ** 6], [-1, 1.5, "2", None, True]),
        "hyper_clip": (st.floats(1e-3, 100.0), [INF, 1e300, 5e-324],
                       [0.0, -1.0, NAN, "1", None]),
        "v_init": (st.sampled_from([0.0, 1e-15, 1e-8]), [1e300, 5e-324], BAD_REAL),
        "derivatives": (st.sampled_from(["recompute", "store"]), [], ["both", None, 1]),
        "hyper_delay": (st.booleans(), [], BAD_FLAG),
    }
    if kind == "MADA":
        space.update({
            "init": (st.one_of(st.sampled_from(["adam", "avgrad", "yogi", "lion"]),
                               st.fixed_dictionaries({}, optional={
                                   "beta1": st.floats(0.05, 0.95), "beta2": st.floats(0.6, 0.99),
                                   "beta3": st.floats(0.0, 0.9), "rho": small, "c": small,
                                   "gamma": small})),
                     [], ["sgd", {"beta1": 1.0}, {"rho": 1.5}, {"c": NAN}, {"zeta": 0.1}, 3,
                          {"gamma": "1"}]),
            "hyper_lr": (st.one_of(st.none(), st.floats(0.0, 0.1)),
                         [1e300, 1e10, {"lr": 1e300}, {"beta1": 1e10}],
                         [-1.0, NAN, INF, "a", {"zeta": 0.1}, {"lr": -1.0}, [0.1]]),
            "learn": (st.lists(st.sampled_from(LEARNABLE), unique=True).map(tuple), [],
                      ["lr", ("zeta",), ("lr", "lr"), None]),
            "first_diff": (st.sampled_from(["zero", "grad"]), [], ["one", None]),
            "n_init": (st.sampled_from(["zero", "grad_sq"]), [], ["ones", None]),
            "detach_vbar": (st.booleans(), [], BAD_FLAG),
        })
    else:
        beta = st.floats(0.0, 0.999)
        space["betas"] = (st.tuples(beta, beta), [(0.0, 0.0)], bad_betas(2, (0.9, 0.999)))
        space["hyper_lr"] = (st.floats(0.0, 1e-3) if kind == "AdamHD" else
                             st.one_of(st.none(), st.floats(0.0, 0.1)),
                             [1e300, 1e10, 1.7e308], [-1.0, NAN, INF, "a", [0.1]])
    return space


def mada_reference(opt, params):
    """MadaRef in the configuration ``opt`` parsed (flat vector, before any step)."""
    rates = opt.hyper_lr
    return MadaRef(flat(params), lr=opt.lr, coef=opt.coefficients,
                   hyper_lr={k: rates[k] for k in opt.learn}, learn=opt.learn,
                   hyper_start=opt.hyper_start, hyper_clip=opt.hyper_clip, eps=opt.eps,
                   v_init=opt.v_init, first_diff=opt.first_diff, n_init=opt.n_init,
                   detach_vbar=opt.detach_vbar, lion_betas=opt.lion_betas,
                   hyper_delay=opt.hyper_delay)


def mada_comparable(g, dtype, eps):
    """Gradients whose MADA step (hyper step included) is well conditioned: finite, at most
    1e3, squares that neither underflow nor vanish into eps = 0."""
    tiny = math.sqrt(float(np.finfo(dtype).tiny)) * 1e3
    return bool(eps > 0 and np.all(np.isfinite(g)) and np.all(np.abs(g) <= 1e3)
                and np.all((g == 0) | (np.abs(g) >= tiny)))


@pytest.mark.parametrize("kind", MADA_KINDS)
@settings(max_examples=budget(0.75))
@given(data=st.data())
def test_mada_family(kind, data):
    """MADA, HyperAdam and AdamHD (hyper steps included) against MadaRef."""
    dtype = data.draw(DTYPES, label="dtype")
    shapes = data.draw(st.lists(SHAPES, min_size=1, max_size=2), label="shapes")
    single = len(shapes) == 1 and data.draw(st.booleans(), label="single")
    sane = data.draw(st.booleans(), label="sane")
    params = [draw_array(data, s, dtype, True) for s in shapes]
    kw, bad, wild = draw_kwargs(data, mada_space(kind), sane)
    if kind != "AdamHD" and "hyper_start" not in kw:
        kw["hyper_start"] = data.draw(st.integers(0, 2), label="hyper_start")
    # the documented combinations
    if kw.get("hyper_delay") is True and kw.get("derivatives") == "store":
        bad |= {"hyper_delay", "derivatives"}
    if not bad and kind == "MADA":
        learn = kw.get("learn", COEFFICIENTS)
        init = kw.get("init", "adam")
        beta1 = init.get("beta1", 0.9) if isinstance(init, dict) else 0.9
        if "beta1" in learn and not beta1 > 0:
            bad.add("beta1")
    if not bad and kind == "HyperAdam" and "betas" in kw and not kw["betas"][0] > 0:
        bad.add("beta1")
    before = freeze([p.copy() for p in params])
    opt, exc = attempt(getattr(madam, kind), params[0] if single else params, **kw)
    if exc is not None:
        note(f"constructor raised {exc!r}")
        check_error(exc, bad | wild)
        assert freeze(params) == before
        return
    assert not bad, f"{kind}({kw}) accepted the invalid {sorted(bad)}"
    assert state_finite(opt), f"{kind}({kw}) built a non-finite state"
    ref = mada_reference(opt, params)
    comparing = True

    for k in range(data.draw(st.integers(1, 5), label="steps")):
        gkind = data.draw(st.sampled_from(GRAD_KINDS), label=f"grads {k}")
        grads, names, ref_grads, gkind = make_grads(data, gkind, params, single, dtype, sane)
        snap = image(opt, params)
        coef_before = (opt.coefficients, opt.lr, opt.hyper_lr)
        ok, exc = attempt(opt.step, grads)
        if exc is not None:
            note(f"step {k} ({gkind}) raised {exc!r}")
            check_error(exc, names | ({"grads"} if not sane else set()) | wild)
            assert_same(snap, image(opt, params))
            assert freeze(coef_before) == freeze((opt.coefficients, opt.lr, opt.hyper_lr))
            continue
        assert ref_grads is not None, f"step accepted bad grads ({gkind})"
        with np.errstate(all="ignore"):
            ref.step(flat(ref_grads))
        if not mada_comparable(flat(ref_grads), dtype, opt.eps):
            # Hypergradients of huge (or squared-to-zero) gradients are rounding noise of
            # cancelling terms, which the clip turns into full-size hyper steps: no reference
            # can be matched there, nor after it (the trajectories part).
            comparing = False
        if not comparing:
            event(f"{kind}: extreme gradients, not compared")
            continue
        close(flat(params), ref.x, MADA_RTOL[dtype])
        event(f"{kind}: step compared with MadaRef")
        for key in COEFFICIENTS:
            got, want = opt.coefficients[key], ref.coef[key]
            assert abs(got - want) <= 1e3 * MADA_RTOL[dtype] or got == want, key
        assert opt.lr == ref.lr or abs(opt.lr - ref.lr) <= 1e3 * MADA_RTOL[dtype] * abs(ref.lr)
        if sane and not wild:
            assert np.all(np.isfinite(flat(params))), "non-finite params from sane inputs"
            assert all(math.isfinite(v) for v in opt.coefficients.values())
            assert math.isfinite(opt.lr)


# ============================================================================ 3. MAdam
class MAdamRef:
    """MAdam with full pairs, in float64 (the formulas of madam/madam_opt.py's docstring)."""

    def __init__(self, x, n_obj, lr, betas, eps, wd, rampup_steps, schedule):
        self.x = np.array(x, dtype=np.float64)
        self.F = np.zeros((n_obj, n_obj) + self.x.shape)
        self.m = np.zeros_like(self.x)
        self.v = np.zeros_like(self.x)
        self.lr, self.betas, self.eps, self.wd = lr, betas, eps, wd
        self.T, self.schedule, self.t = rampup_steps, schedule, 0

    def step(self, g, lam):
        """g (C, n) float64; returns |lam|^T |F| |lam| / C_lam per element (the condition of
        C_lam: large means that rounding decides its value) and |lam|.|g| / |d|."""
        self.t += 1
        t, (b1, b2) = self.t, self.betas
        d = np.zeros_like(self.x)
        for i in range(g.shape[0]):
            d = d + lam[i] * g[i]
        self.F = b2 * self.F + (1 - b2) * g[:, None] * g[None, :]
        fh = self.F / (1 - b2 ** t)
        c_raw = np.einsum("i,ij...,j->...", lam, fh, lam)
        c_abs = np.einsum("i,ij...,j->...", np.abs(lam), np.abs(fh), np.abs(lam))
        c = np.maximum(c_raw, 0.0)
        if self.T == 0:
            r = 1.0
        else:
            s = min(1.0, t / self.T)
            r = s if self.schedule == "linear" else 0.5 * (1 - math.cos(math.pi * s))
        u = d / ((1 - r) + r * (np.sqrt(c) + self.eps))
        self.x = self.x * (1 - self.lr * self.wd)
        self.m = b1 * self.m + (1 - b1) * u
        self.v = b2 * self.v + (1 - b2) * u * u
        self.x = self.x - (self.lr / (1 - b1 ** t)) * (
            self.m / (np.sqrt(self.v) / math.sqrt(1 - b2 ** t) + self.eps))
        with np.errstate(all="ignore"):
            cond_c = c_abs / np.abs(c_raw)
            cond_d = np.einsum("i,i...->...", np.abs(lam), np.abs(g)) / np.abs(d)
        return np.nan_to_num(cond_c, nan=0.0, posinf=np.inf), \
            np.nan_to_num(cond_d, nan=0.0, posinf=np.inf)


def madam_solver(key, n_obj):
    """A fresh solver of the kind ``key`` (None: a preference at every step)."""
    pref = np.full(n_obj, 1.0 / n_obj)
    options = {
        "none": lambda: None,
        "linear": lambda: solvers.LinearScalarization(pref),
        "tchebycheff": lambda: solvers.Tchebycheff(pref),
        "rlw": lambda: solvers.RLW(seed=3),
        "dwa": lambda: solvers.DWA(),
        "mgda": lambda: solvers.MGDA(),
        "pcgrad": lambda: solvers.PCGrad(seed=1),
        "cagrad": lambda: solvers.CAGrad(),
        "imtlg": lambda: solvers.IMTLG(),
        "nashmtl": lambda: solvers.NashMTL(),
        "upgrad": lambda: solvers.UPGrad(),
        "epo": lambda: solvers.EPO(pref),
        "pamoo": lambda: madam.amoo.PAMOO(iters=20),
    }
    return options[key]()


MADAM_SOLVERS = ["none", "linear", "tchebycheff", "rlw", "dwa", "mgda", "pcgrad", "cagrad",
                 "imtlg", "nashmtl", "upgrad", "epo", "pamoo"]


def draw_preference(data, n_obj):
    raw = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n_obj, max_size=n_obj))
    raw = np.array(raw) + 1e-3
    return raw / raw.sum()


BAD_PREFERENCES = ["off", "negative", "nan", "length", "string"]


@pytest.mark.parametrize("solver_key", MADAM_SOLVERS)
@settings(max_examples=budget(0.3))
@given(data=st.data())
def test_madam_modes(solver_key, data):
    """MAdam: full pairs (any solver or a given preference), pair sampling (every estimator),
    rampups; bad Jacobians / preferences / directions / losses change nothing."""
    dtype = data.draw(DTYPES, label="dtype")
    n_obj = data.draw(st.integers(1, 4), label="C")
    shapes = data.draw(st.lists(SHAPES, min_size=1, max_size=2), label="shapes")
    single = len(shapes) == 1 and data.draw(st.booleans(), label="single")
    sane = data.draw(st.booleans(), label="sane")
    params = [draw_array(data, s, dtype, True) for s in shapes]
    solver = madam_solver(solver_key, n_obj)
    kw = dict(lr=data.draw(st.floats(0.0, 0.1), label="lr"),
              betas=data.draw(st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.999)),
                              label="betas"),
              eps=data.draw(st.sampled_from([1e-8, 1e-6, 1.0] + ([] if sane else [0.0])),
                            label="eps"),
              weight_decay=data.draw(st.sampled_from([0.0, 0.01]), label="wd"),
              rampup_steps=data.draw(st.sampled_from([0, 0, 2, 5]), label="rampup_steps"),
              rampup=data.draw(st.sampled_from(["linear", "cosine"]), label="rampup"))
    sampling = n_obj > 1 and data.draw(st.booleans(), label="pair sampling")
    if sampling:
        kw.update(n_obj=n_obj, pair_sampling=data.draw(st.integers(2, n_obj), label="k"),
                  estimator=data.draw(st.sampled_from(["elapsed", "count", "ipw"])))
    elif data.draw(st.booleans(), label="give n_obj"):
        kw["n_obj"] = n_obj
    wild = set()
    if not sane and data.draw(st.booleans(), label="wild hyper"):
        key = data.draw(st.sampled_from(["lr", "eps", "weight_decay"]))
        kw[key] = data.draw(st.sampled_from([1e10, 1e300, 1.7e308]))
        wild.add(key)
    opt, exc = attempt(madam.MAdam, params[0] if single else params, solver=solver, **kw)
    if exc is not None:
        check_error(exc, wild)
        return
    full_pairs = not sampling or kw["pair_sampling"] == n_obj
    ref = MAdamRef(flat(params), n_obj, opt.lr, opt.betas, opt.eps, opt.weight_decay,
                   opt.rampup_steps, opt.rampup)
    trusted = np.ones(flat(params).size, dtype=bool)   # elements whose C_lam, d are well posed
    for k in range(data.draw(st.integers(1, 4), label="steps")):
        use_pref = solver is None or data.draw(st.booleans(), label="own preference")
        lam = draw_preference(data, n_obj) if use_pref else None
        jac = [draw_array(data, (n_obj,) + p.shape, dtype, sane) for p in params]
        losses = np.array(data.draw(st.lists(st.floats(0.1, 10.0), min_size=n_obj,
                                             max_size=n_obj)))
        requested = opt.requested_objectives() if opt.n_obj is not None else None
        rows_only = sampling and data.draw(st.booleans(), label="rows only")
        direction = None
        if rows_only:
            lam = draw_preference(data, n_obj) if lam is None else lam
            dfull = [np.tensordot(lam.astype(dtype), j, axes=1).astype(dtype) for j in jac]
            direction = dfull[0] if single else dfull
            jac_pass = [np.ascontiguousarray(j[list(requested)]) for j in jac]
        else:
            jac_pass = jac
        # a perturbation (or none)
        bad = data.draw(st.sampled_from(["none"] * 5 + ["jac_dtype", "jac_shape", "jac_nan",
                                                         "jac_strided", "jac_list", "pref",
                                                         "dir_nan", "losses"]), label="bad")
        names, kwargs = set(), {}
        jname = "jacobian" if single else "jacobian[0]"
        if bad == "jac_dtype":
            jac_pass = [j.astype(np.float32 if dtype == np.float64 else np.float64)
                        for j in jac_pass]
            names = {jname}
        elif bad == "jac_shape":
            jac_pass = [np.zeros((j.shape[0], j[0].size + 1), dtype) for j in jac_pass]
            names = {jname}
        elif bad == "jac_nan":
            jac_pass = [j.copy() for j in jac_pass]
            jac_pass[0].flat[0] = data.draw(NONFINITE)
            names = {jname}
        elif bad == "jac_strided":
            jac_pass = [np.repeat(j[..., None], 2, axis=-1)[..., 0] for j in jac_pass]
            names = {jname}
            if jac_pass[0].flags.c_contiguous:  # one element: contiguous whatever the strides
                bad, names, jac_pass = "none", set(), [np.ascontiguousarray(j) for j in jac_pass]
        elif bad == "jac_list":
            jac_pass = [j.tolist() for j in jac_pass]
            names = {"jacobian"}
        elif bad == "pref":
            how = data.draw(st.sampled_from(BAD_PREFERENCES))
            base = np.full(n_obj, 1.0 / n_obj)
            lam = {"off": base * 1.5, "negative": np.r_[base[:-1], -0.5] if n_obj > 1 else
                   np.array([-1.0]), "nan": np.r_[base[:-1], NAN], "length": np.r_[base, 0.0],
                   "string": "ab"}[how]
            names = {"preference"}
        elif bad == "dir_nan":
            if direction is None:
                bad = "none"
            else:
                dd = [np.array(x, copy=True) for x in (dfull)]
                dd[0].flat[0] = NAN
                direction = dd[0] if single else dd
                names = {"direction"}
        elif bad == "losses":  # read only when the solver picks lambda
            if lam is not None or solver_key not in ("dwa", "epo", "tchebycheff", "pamoo"):
                bad = "none"
            else:
                losses = np.r_[losses[:-1], data.draw(st.sampled_from([-1.0, 0.0, NAN, INF]))]
                if solver_key in ("tchebycheff", "pamoo") and losses[-1] in (-1.0, 0.0):
                    bad = "none"
                else:
                    names = {"losses"}
        if lam is not None:
            kwargs["preference"] = lam
        if direction is not None:
            kwargs["direction"] = direction
        call_jac = jac_pass[0] if single else jac_pass
        snap = image(opt, params)
        ok, exc = attempt(opt.step, call_jac, losses, **kwargs)
        if exc is not None:
            note(f"step {k} ({bad}) raised {exc!r}")
            check_error(exc, names | wild | ({"jacobian", "solver", "lambda"} if not sane
                                              else set()))
            assert_same(snap, image(opt, params))
            if requested is not None and sampling:
                assert opt.requested_objectives() == requested, "the draw moved on a refusal"
            continue
        assert bad == "none", f"step accepted a bad input ({bad})"
        used = opt.last_preference
        assert used.shape == (n_obj,) and np.all(np.isfinite(used))
        if lam is not None:
            assert np.array_equal(used, np.asarray(lam, dtype=np.float64))
        if not full_pairs or wild:
            if sane and not wild:
                assert np.all(np.isfinite(flat(params)))
            continue
        g = np.stack([flat([j[i] for j in jac]) for i in range(n_obj)]).astype(np.float64)
        with np.errstate(all="ignore"):
            cond_c, cond_d = ref.step(g, used)
        limit = 1e4 if dtype == np.float32 else 1e8
        trusted &= (cond_c < limit) & (cond_d < limit)
        # g_i g_j under- or overflows in the parameters' dtype (the reference runs in float64)
        tiny, huge = np.sqrt(np.finfo(dtype).tiny), np.sqrt(np.finfo(dtype).max) / n_obj
        trusted &= np.all((np.abs(g) >= tiny) | (g == 0), axis=0) & np.all(np.abs(g) <= huge,
                                                                           axis=0)
        got = flat(params).astype(np.float64)
        if trusted.any():
            # (the reference runs in float64: below the dtype's smallest normal it keeps digits
            # that the kernel cannot represent)
            close(got[trusted], ref.x[trusted], 1e-4 if dtype == np.float32 else 1e-9,
                  atol=float(np.finfo(dtype).tiny))
            event("MAdam: step compared with the reference")
        if sane:
            assert np.all(np.isfinite(got)), "non-finite params from sane inputs"
        ref.x = got.copy()  # the untrusted elements restart from madam's values


# ============================================================================ 4. state dicts
CORRUPTIONS = ["none", "delete", "add", "dtype", "shape", "nan", "inf", "negative", "huge",
               "value", "count", "count_type", "hyper", "kind", "format"]


def corrupt(data, sd, name):
    """(corrupted copy, the key(s) a refusal must name, whether the result is a valid state)."""
    sd = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sd.items()}
    arrays = sorted(k for k, v in sd.items() if k.startswith("state.") and
                    isinstance(v, np.ndarray))
    how = data.draw(st.sampled_from(CORRUPTIONS), label="corruption")
    key = data.draw(st.sampled_from(arrays), label="array key") if arrays else None
    if how == "delete":
        key = data.draw(st.sampled_from(sorted(sd)), label="deleted key")
        del sd[key]
        return sd, {key}, False
    if how == "add":
        key = data.draw(st.sampled_from(["bogus", "state.9.exp_avg", "hyper.zeta",
                                         "state.0.zeta"]), label="added key")
        sd[key] = np.zeros(1)
        return sd, {key}, False
    if how == "dtype":
        sd[key] = sd[key].astype(np.float32 if sd[key].dtype == np.float64 else np.float64)
        return sd, {key}, False
    if how == "shape":
        sd[key] = np.zeros(sd[key].size + 1, dtype=sd[key].dtype)
        return sd, {key}, False
    if how in ("nan", "inf"):
        sd[key].flat[0] = NAN if how == "nan" else -INF
        return sd, {key}, False
    if how == "negative":
        sd[key].flat[0] = -1.0
        nonneg = key.rsplit(".", 1)[1] in ("exp_avg_sq", "max_exp_avg_sq", "avg_exp_avg_sq")
        return sd, {key}, not nonneg
    if how == "huge":
        sd[key].flat[0] = np.finfo(sd[key].dtype).max / 2
        return sd, {key}, True
    if how == "value":
        sd[key] = as_array(draw_values(data, sd[key].size, True), sd[key].shape,
                           sd[key].dtype)
        if key.rsplit(".", 1)[1] in ("exp_avg_sq", "max_exp_avg_sq", "avg_exp_avg_sq"):
            sd[key] = np.abs(sd[key])
        return sd, {key}, True
    if how == "count":
        value = data.draw(st.sampled_from([-1, 2 ** 53 + 1, 10 ** 30, 2 ** 53, 7, 0]))
        sd["step_count"] = value
        return sd, {"step_count"}, 0 <= value <= 2 ** 53
    if how == "count_type":
        sd["step_count"] = data.draw(st.sampled_from([1.0, "3", None, True, NAN]))
        return sd, {"step_count"}, False
    if how == "hyper":
        hkey = data.draw(st.sampled_from(sorted(k for k in sd if k.startswith("hyper."))))
        short = hkey.split(".", 1)[1]
        if short == "nonfinite":
            sd[hkey] = "sometimes"
        else:
            sd[hkey] = data.draw(st.sampled_from([-1.0, NAN, "x", None, (2.0, 2.0, 2.0)]))
        return sd, {hkey, short}, False
    if how == "kind":
        sd["optimizer"] = data.draw(st.sampled_from(["Adam2", 3, None]))
        return sd, {"optimizer"}, False
    if how == "format":
        sd["format"] = data.draw(st.sampled_from([2, "1", None]))
        return sd, {"format"}, False
    return sd, set(), True


@pytest.mark.parametrize("name", OPTIMISERS)
@settings(max_examples=budget(0.5))
@given(data=st.data())
def test_state_dict_corruption(name, data):
    """A corrupted state_dict either loads (and the next step equals the reference from that
    state) or is refused naming the key, with the target optimiser unchanged."""
    dtype = data.draw(DTYPES, label="dtype")
    shapes = data.draw(st.lists(SHAPES, min_size=1, max_size=2), label="shapes")
    params = [draw_array(data, s, dtype, True) for s in shapes]
    kw, _, _ = draw_hypers(data, name, True)
    kw = {k: v for k, v in kw.items() if not isinstance(v, str)}
    src, exc = attempt(getattr(madam, name), params, **kw)
    if exc is not None:
        return  # an invalid draw: the first property covers constructors
    for _ in range(data.draw(st.integers(0, 3), label="source steps")):
        attempt(src.step, [draw_array(data, p.shape, dtype, True) for p in params])
    sd, names, valid = corrupt(data, src.state_dict(), name)
    target_params = [draw_array(data, s, dtype, True) for s in shapes]
    target = getattr(madam, name)(target_params)
    target.step([np.ones(p.shape, dtype) for p in target_params])
    snap = image(target, target_params)
    _, exc = attempt(target.load_state_dict, sd)
    if exc is not None:
        note(f"load refused: {exc!r}")
        check_error(exc, names)
        assert_same(snap, image(target, target_params))
        return
    assert valid, f"load_state_dict accepted a corrupted state ({names})"
    loaded = target.state_dict()
    for key, value in sd.items():
        assert freeze(loaded[key]) == freeze(value), f"{key} not restored"
    ref = reference_from(target, name, target_params)
    grads = [draw_array(data, p.shape, dtype, True) for p in target_params]
    ok, exc = attempt(target.step, grads)
    if exc is not None:
        check_error(exc, {"grads"})
        return
    with np.errstate(all="ignore"):
        ref.step(flat(grads))
    close(flat(target_params), ref.p, RTOL[dtype])


@pytest.mark.parametrize("which", ["MAdam", "MADA", "HyperAdam", "AdamHD"])
@settings(max_examples=budget(0.5))
@given(data=st.data())
def test_madam_and_mada_state_dict_corruption(which, data):
    """The same contract for MAdam (its solver's state included) and the MADA family: a refused
    load names the key and changes nothing; an accepted one round-trips."""
    dtype = data.draw(DTYPES, label="dtype")
    x = draw_array(data, (4,), dtype, True)
    if which == "MAdam":
        def build(p):
            return madam.MAdam(p, solver=solvers.RLW(seed=5), lr=1e-2)

        def step(o, p):
            return o.step(draw_array(data, (2,) + p.shape, dtype, True))
    else:
        def build(p):
            return getattr(madam, which)(p, hyper_start=0)

        def step(o, p):
            return o.step(draw_array(data, p.shape, dtype, True))
    src = build(x)
    for _ in range(data.draw(st.integers(0, 3), label="source steps")):
        step(src, x)
    sd = src.state_dict()
    sd2, names, _ = corrupt(data, sd, which)
    if data.draw(st.booleans(), label="corrupt solver key") and which == "MAdam":
        skey = data.draw(st.sampled_from(sorted(k for k in sd if k.startswith("solver."))))
        sd2 = dict(sd)
        if data.draw(st.booleans(), label="delete it"):
            del sd2[skey]
            names = {skey}  # 'format' alone would be the top-level key
        else:
            sd2[skey] = data.draw(st.sampled_from([None, "x", -1, 1.5, np.zeros(3)]))
            names = {skey, skey.split(".", 1)[1]}
    y = draw_array(data, (4,), dtype, True)
    target = build(y)
    step(target, y)
    snap = image(target, [y])
    _, exc = attempt(target.load_state_dict, sd2)
    if exc is not None:
        note(f"load refused: {exc!r}")
        check_error(exc, names)
        assert_same(snap, image(target, [y]))
        return
    again = target.state_dict()
    for key, value in sd2.items():
        if key == "n_obj" and value == 0:
            continue  # a state from before the first step keeps the target's known C
        if key in again:
            assert freeze(again[key]) == freeze(value), f"{key} not restored"
    _, exc = attempt(step, target, y)
    if exc is not None:
        check_error(exc, {"grads", "jacobian"})
