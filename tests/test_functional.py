"""madam.functional: the stateless kernels against the optimiser classes and the references.

* Every case of cases.CASES, in both dtypes: the function called on buffers that start as the
  class's initial state reproduces the class's parameters and state bit for bit, step by step.
* The same runs against the plain-NumPy formulas of reference.py (tolerances of
  test_optim_reference.py).
* Bad inputs (dtype, layout, size, read-only, shared memory, hyperparameters, step) raise
  TypeError/ValueError naming the argument, and leave every array unchanged bit for bit.
* apply_at (raw addresses) equals the array functions, and refuses what an address can show.
"""
import re

import numpy as np
import pytest

import problems
import reference
from cases import CASES, params

import madam
import madam.functional as F
from madam._validate import Hyper

STEPS = 6
SHAPE = (3, 7)  # 2-D on purpose: the kernels are element-wise, the shape must not matter
RTOL = {np.float64: 1e-12, np.float32: 1e-5}  # as test_optim_reference.py (see its docstring)
ADAM_VARIANT = {"Adam": "adam", "AdamW": "adamw", "AMSGrad": "amsgrad", "AVGrad": "avgrad"}


def _grads(dtype, steps=STEPS, seed=0):
    # mixed signs and magnitudes (and an exact zero) so that every sign() branch is taken
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal(SHAPE).astype(dtype) for _ in range(steps)]
    gs[1][0, 0] = 0.0
    return gs


def _functional_setup(name, kwargs, p):
    """A class optimiser over ``p`` and, for the function: copies of its initial buffers and
    its validated hyperparameters."""
    opt = getattr(madam, name)(p, **kwargs)
    sd = opt.state_dict()
    buffers = {b: sd[f"state.0.{b}"].copy() for b in opt._buffers}
    hypers = {h: getattr(opt, h) for h in opt._kernel.hyper_names}
    return opt, buffers, hypers


def _call(name, p, g, buffers, hypers, t):
    """One functional step; the buffers go by keyword, so this also checks that the functions'
    argument names are the classes' state_dict buffer names."""
    if name == "SGD":
        F.sgd(p, g, **buffers, **hypers, step=t)
    elif name in ADAM_VARIANT:
        F.adam(p, g, **buffers, **hypers, step=t, variant=ADAM_VARIANT[name])
    elif name == "Yogi":
        F.yogi(p, g, **buffers, **hypers, step=t)
    elif name == "Adan":
        F.adan(p, g, **buffers, **hypers, step=t)
    else:
        assert name == "Lion"
        F.lion(p, g, **buffers, **hypers)


def _bits(a):
    return np.asarray(a).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("name, kwargs", params(CASES))
def test_function_equals_class_bit_for_bit(name, kwargs, dtype):
    p_cls = np.random.default_rng(1).standard_normal(SHAPE).astype(dtype)
    p_fun = p_cls.copy()
    opt, buffers, hypers = _functional_setup(name, kwargs, p_cls)
    for t, g in enumerate(_grads(dtype), start=1):
        assert opt.step(g) is True
        assert _call(name, p_fun, g, buffers, hypers, t) is None
        assert _bits(p_fun) == _bits(p_cls), f"param differs at step {t}"
        sd = opt.state_dict()
        for b, array in buffers.items():
            assert _bits(array) == _bits(sd[f"state.0.{b}"]), f"{b} differs at step {t}"
    assert np.any(p_fun != np.random.default_rng(1).standard_normal(SHAPE).astype(dtype))


@pytest.mark.parametrize("problem", problems.PROBLEMS, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", problems.DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name, kwargs", params(CASES))
def test_function_matches_reference(name, kwargs, dtype, problem):
    x0 = problem.start(dtype)
    p = x0.copy()
    _, buffers, hypers = _functional_setup(name, kwargs, x0.copy())
    ref = reference.ALL[name](x0, **kwargs)
    for t in range(1, 51):
        g = problem.grad(p)
        _call(name, p, g, buffers, hypers, t)
        ref.step(problem.grad(ref.p))
    dev = problems.rel_dev(p[None], ref.p[None])
    assert np.abs(ref.p - x0).max() > 0  # the run moved
    assert dev <= RTOL[dtype], f"relative deviation {dev:.3g} > {RTOL[dtype]:g}"


# ------------------------------------------------------------------------------- bad inputs
# Every kernel once (adam as AMSGrad, so its auxiliary buffer is covered): the array arguments
# in signature order (the ones the kernel writes marked True) and valid hyperparameters.
KERNEL_CASES = {
    "sgd": (F.sgd, [("param", True), ("grad", False), ("momentum_buffer", True)],
            dict(lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=1e-2, nesterov=True,
                 step=2)),
    "adam": (F.adam, [("param", True), ("grad", False), ("exp_avg", True),
                      ("exp_avg_sq", True), ("max_exp_avg_sq", True)],
             dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, step=2,
                  variant="amsgrad")),
    "yogi": (F.yogi, [("param", True), ("grad", False), ("exp_avg", True), ("exp_avg_sq", True)],
             dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-3, weight_decay=1e-2, step=2)),
    "adan": (F.adan, [("param", True), ("grad", False), ("exp_avg", True), ("exp_avg_diff", True),
                      ("exp_avg_sq", True), ("prev_grad", True)],
             dict(lr=1e-2, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=1e-2,
                  proximal=True, step=2)),
    "lion": (F.lion, [("param", True), ("grad", False), ("exp_avg", True)],
             dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2)),
}


def test_every_kernel_has_its_bad_input_case():
    """KERNEL_CASES is written per kernel; a kernel added to madam.functional's table without
    its row here would go untested for bad input, so this fails instead."""
    assert set(KERNEL_CASES) == set(F._KERNELS)
    for name, (fn, arrays, _) in KERNEL_CASES.items():
        assert fn is getattr(F, name)
        assert [a for a, _ in arrays[:2]] == ["param", "grad"], name


def _fresh(kernel, dtype=np.float64):
    """Valid arrays (distinct values, second moments >= 0) for a kernel's arguments."""
    rng = np.random.default_rng(7)
    return {name: np.abs(rng.standard_normal(SHAPE)).astype(dtype)
            for name, _ in KERNEL_CASES[kernel][1]}


def _expect_refusal(kernel, arrays, hypers, exc, arg):
    """Call with ``arrays``/``hypers``; ``exc`` must name ``arg``; nothing may change."""
    fn = KERNEL_CASES[kernel][0]
    before = {k: _bits(a) for k, a in arrays.items() if isinstance(a, np.ndarray)}
    with pytest.raises(exc, match=rf"(?<!\w){re.escape(arg)}(?!\w)"):
        fn(*arrays.values(), **hypers)
    for k, a in arrays.items():
        if isinstance(a, np.ndarray):
            assert _bits(a) == before[k], f"{k} changed by a refused call"


def _array_cases():
    """(kernel, argument, how, exception) for every array argument of every kernel."""
    for kernel, (_, args, _) in KERNEL_CASES.items():
        for arg, writable in args:
            yield kernel, arg, "list", TypeError
            yield kernel, arg, "int", TypeError
            if arg != "param":  # param sets the dtype and size the others are held to
                yield kernel, arg, "dtype", TypeError
                yield kernel, arg, "size", ValueError
                yield kernel, arg, "param memory", ValueError
            yield kernel, arg, "strided", ValueError
            if writable:
                yield kernel, arg, "read-only", ValueError
            if arg not in ("param", "grad"):
                yield kernel, arg, "grad memory", ValueError


@pytest.mark.parametrize("kernel, arg, how, exc", list(_array_cases()),
                         ids=lambda x: x if isinstance(x, str) else None)
def test_bad_array_is_refused_and_changes_nothing(kernel, arg, how, exc):
    arrays = _fresh(kernel)
    hypers = KERNEL_CASES[kernel][2]
    a = arrays[arg]
    if how == "list":
        bad = a.tolist()
    elif how == "int":
        bad = a.astype(np.int64)
    elif how == "dtype":
        bad = a.astype(np.float32)
    elif how == "size":
        bad = a.ravel()[:-1].copy()
    elif how == "strided":
        bad = np.repeat(a, 2, axis=1)[:, ::2]  # the right values, but every other element
    elif how == "read-only":
        bad = a.copy()
        bad.flags.writeable = False
    elif how == "param memory":
        bad = arrays["param"]  # the very same memory as param
    else:
        bad = arrays["grad"].reshape(-1)  # a view of grad's memory
    arrays[arg] = bad
    _expect_refusal(kernel, arrays, hypers, exc, arg)


def test_read_only_grad_is_accepted():
    # grad is only read, so a read-only gradient (np.broadcast_to, a frozen buffer) is fine
    arrays = _fresh("adam")
    arrays["grad"].flags.writeable = False
    before = arrays["param"].copy()
    F.adam(*arrays.values(), **KERNEL_CASES["adam"][2])
    assert np.all(arrays["param"] != before)


def test_partial_overlap_is_refused():
    # two buffers inside one allocation, overlapping by one element
    arrays = _fresh("yogi")
    block = np.zeros(2 * arrays["param"].size - 1)
    arrays["exp_avg"] = block[:arrays["param"].size]
    arrays["exp_avg_sq"] = block[arrays["param"].size - 1:]
    _expect_refusal("yogi", arrays, KERNEL_CASES["yogi"][2], ValueError, "exp_avg_sq")


def test_adjacent_buffers_in_one_allocation_are_accepted():
    # touching but disjoint ranges (a torch adapter may carve buffers out of one block)
    arrays = _fresh("lion")
    n = arrays["param"].size
    block = np.zeros(2 * n)
    block[:n] = arrays["grad"].ravel()
    arrays["grad"], arrays["exp_avg"] = block[:n], block[n:]
    F.lion(*arrays.values(), **KERNEL_CASES["lion"][2])


BAD_HYPERS = [
    # (kernel, hyperparameter, bad value, exception); the message must name the key, or for a
    # tuple its bad entry (betas[0])
    ("sgd", "lr", -1.0, ValueError), ("sgd", "lr", float("nan"), ValueError),
    ("sgd", "lr", "0.1", TypeError), ("sgd", "lr", True, TypeError),
    ("sgd", "lr", 1e78, ValueError),  # over scale_limit(float64)
    ("sgd", "momentum", -0.5, ValueError), ("sgd", "momentum", 1e78, ValueError),
    ("sgd", "dampening", 1.5, ValueError), ("sgd", "weight_decay", float("inf"), ValueError),
    ("sgd", "nesterov", 1, TypeError),
    ("adam", "betas", (1.0, 0.999), ValueError), ("adam", "betas", (0.9,), ValueError),
    ("adam", "betas", 0.9, TypeError), ("adam", "eps", -1e-8, ValueError),
    ("adam", "weight_decay", None, TypeError), ("adam", "variant", "adamx", ValueError),
    ("yogi", "betas", (0.9, -0.1), ValueError), ("yogi", "eps", 1e78, ValueError),
    ("adan", "betas", (0.98, 0.92), ValueError), ("adan", "proximal", "yes", TypeError),
    ("lion", "lr", -1e-3, ValueError), ("lion", "weight_decay", 1e78, ValueError),
    ("lion", "betas", (0.9, 1.0), ValueError),
] + [(k, "step", bad, exc) for k in ("sgd", "adam", "yogi", "adan")
     for bad, exc in ((0, ValueError), (-3, ValueError), (1.0, TypeError), (True, TypeError),
                      (2 ** 53 + 1, ValueError), (None, TypeError))]


@pytest.mark.parametrize("kernel, key, value, exc", BAD_HYPERS,
                         ids=[f"{k}-{h}-{v!r}" for k, h, v, _ in BAD_HYPERS])
def test_bad_hyperparameter_is_refused_and_changes_nothing(kernel, key, value, exc):
    hypers = dict(KERNEL_CASES[kernel][2], **{key: value})
    _expect_refusal(kernel, _fresh(kernel), hypers, exc, key)


def test_scale_limit_follows_the_dtype():
    # 1e10 is fine for float64 parameters but over scale_limit(float32) (about 4.29e9)
    hypers = dict(KERNEL_CASES["lion"][2], weight_decay=1e10, lr=1e-20)
    F.lion(*_fresh("lion", np.float64).values(), **hypers)
    _expect_refusal("lion", _fresh("lion", np.float32), hypers, ValueError, "weight_decay")


def test_class_messages_equal_function_messages():
    # the same validators: the class's refusal and the function's read the same
    p = np.zeros(SHAPE)
    with pytest.raises(ValueError) as by_class:
        madam.Adam(p, lr=-1.0)
    with pytest.raises(ValueError) as by_function:
        F.adam(*_fresh("adam").values(), **dict(KERNEL_CASES["adam"][2], lr=-1.0))
    assert str(by_class.value) == str(by_function.value)
    with pytest.raises(ValueError) as by_class:
        madam.SGD(p, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError) as by_function:
        F.sgd(*_fresh("sgd").values(), **dict(KERNEL_CASES["sgd"][2], momentum=0.0))
    assert str(by_class.value) == str(by_function.value)


def test_classes_take_their_rules_from_the_kernel_table():
    for cls in madam.optim.first_order().values():
        for name, check, scale in cls._kernel.hypers:
            hyper = getattr(cls, name)
            assert isinstance(hyper, Hyper) and hyper.check is check and hyper.scale is scale


def test_optional_buffers():
    p, g = np.ones(5), np.full(5, 2.0)
    # SGD without momentum needs no buffer
    F.sgd(p, g, lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, step=1)
    assert np.all(p == 0.0)
    with pytest.raises(ValueError, match="momentum_buffer"):
        F.sgd(p, g, lr=0.5, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False,
              step=1)
    hyp = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, step=1)
    m, v, aux = np.zeros(5), np.zeros(5), np.zeros(5)
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        F.adam(p, g, m, v, variant="amsgrad", **hyp)
    with pytest.raises(ValueError, match="avg_exp_avg_sq"):
        F.adam(p, g, m, v, aux, avg_exp_avg_sq=aux.copy(), variant="amsgrad", **hyp)
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        F.adam(p, g, m, v, aux, variant="adamw", **hyp)
    assert np.all(p == 0.0) and not m.any() and not v.any() and not aux.any()


def test_empty_arrays_are_a_no_op():
    e = np.zeros(0)
    F.adan(e, e.copy(), e.copy(), e.copy(), e.copy(), e.copy(), lr=1e-3,
           betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, proximal=True, step=1)


def test_nan_is_not_scanned():
    # the nonfinite policy is the optimiser object's; a function call runs the kernel
    p, g, m = np.zeros(3), np.array([1.0, np.nan, -1.0]), np.zeros(3)
    F.lion(p, g, m, lr=0.1, betas=(0.9, 0.99), weight_decay=0.0)
    assert p[0] == -0.1 and p[2] == 0.1 and np.isnan(m[1])


# ------------------------------------------------------------------------------- apply_at
def _address(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("name, kwargs", params(CASES))
def test_apply_at_equals_the_array_function(name, kwargs, dtype):
    p_arr = np.random.default_rng(3).standard_normal(SHAPE).astype(dtype)
    p_raw = p_arr.copy()
    _, buf_arr, hypers = _functional_setup(name, kwargs, p_arr.copy())
    buf_raw = {b: a.copy() for b, a in buf_arr.items()}
    kernel = "adam" if name in ADAM_VARIANT else name.lower()
    extra = {"variant": ADAM_VARIANT[name]} if kernel == "adam" else {}
    for t, g in enumerate(_grads(dtype), start=1):
        _call(name, p_arr, g, buf_arr, hypers, t)
        step = {} if kernel == "lion" else {"step": t}
        assert F.apply_at(kernel, dtype, p_raw.size, _address(p_raw), _address(g),
                          *map(_address, buf_raw.values()), **step, **extra, **hypers) is None
        assert _bits(p_raw) == _bits(p_arr)
        for b in buf_arr:
            assert _bits(buf_raw[b]) == _bits(buf_arr[b])


def test_apply_at_sgd_without_buffer():
    p, g = np.ones(4), np.ones(4)
    F.apply_at("sgd", "float64", 4, _address(p), _address(g), None, lr=0.25, momentum=0.0,
               dampening=0.0, weight_decay=0.0, nesterov=False, step=1)
    assert np.all(p == 0.75)


def _adam_at(p, g, m, v, **over):
    args = dict(kernel="adam", dtype=np.float64, size=p.size, addresses=None)
    args.update(over)
    addresses = args.pop("addresses") or tuple(map(_address, (p, g, m, v)))
    hyp = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, step=1)
    hyp.update(args.pop("hypers", {}))
    F.apply_at(args.pop("kernel"), args.pop("dtype"), args.pop("size"), *addresses, **args, **hyp)


@pytest.mark.parametrize("over, exc, word", [
    (dict(kernel="adamax"), ValueError, "kernel"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(size=-1), ValueError, "size"),
    (dict(size=2 ** 62), ValueError, "size"),
    (dict(variant="avgrad"), TypeError, "buffer"),  # avgrad needs a third buffer
    (dict(hypers=dict(eps=None)), TypeError, "eps"),
    (dict(hypers=dict(momentum=0.9)), TypeError, "momentum"),
    (dict(hypers=dict(step=0)), ValueError, "step"),
    ("zero", ValueError, "exp_avg"),
    ("misaligned", ValueError, "exp_avg_sq"),
    ("float", TypeError, "grad"),
    ("overlap", ValueError, "exp_avg"),
])
def test_apply_at_refuses_and_changes_nothing(over, exc, word):
    p, g, m, v = (np.full(6, x) for x in (1.0, 0.5, 0.0, 0.0))
    before = [_bits(a) for a in (p, g, m, v)]
    addresses = [_address(a) for a in (p, g, m, v)]
    if over == "zero":
        addresses[2] = 0
    elif over == "misaligned":
        addresses[3] += 4
    elif over == "float":
        addresses[1] = float(addresses[1])
    elif over == "overlap":
        addresses[2] = addresses[0] + 8
    if isinstance(over, str):
        over = dict(addresses=tuple(addresses))
    with pytest.raises(exc, match=word):
        _adam_at(p, g, m, v, **over)
    assert [_bits(a) for a in (p, g, m, v)] == before


def test_apply_at_lion_takes_no_variant_and_no_step():
    p, g, m = np.zeros(2), np.ones(2), np.zeros(2)
    addresses = (_address(p), _address(g), _address(m))
    hyp = dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0)
    with pytest.raises(TypeError, match="variant"):
        F.apply_at("lion", np.float64, 2, *addresses, variant="adamw", **hyp)
    with pytest.raises(TypeError, match="step"):
        F.apply_at("lion", np.float64, 2, *addresses, step=1, **hyp)
    assert not p.any() and not m.any()


def test_apply_at_sgd_refuses_a_missing_param():
    # only the momentum buffer may be None (and only without momentum)
    g = np.ones(2)
    with pytest.raises(TypeError, match="param"):
        F.apply_at("sgd", np.float64, 2, None, _address(g), None, lr=0.1, momentum=0.0,
                   dampening=0.0, weight_decay=0.0, nesterov=False, step=1)
