"""MADA, HyperAdam and AdamHD (madam.mada): vertices, the NumPy oracle, both derivative modes,
box and clipping, state round trips, threads, bad input.

Vertex tolerances: MADA's kernel is written so that each vertex performs exactly the operations of
the standalone kernel (docs/mada.md, "vertices"), so with v_init = 0 (and Yogi's accumulator for m,
v) the trajectories are compared bit for bit (np.array_equal), in float32 and float64. The Lion
vertex computes sign(0.95 mL_t + 0.05 g) where madam.Lion computes sign(0.931 m + 0.069 g): the
same number up to rounding, so a sign can differ only where |0.931 m + 0.069 g| is within a few
ulp of 0; on these problems no sign flips, and the test asserts bitwise equality too (a flip would
move an element by 2 lr and fail loudly rather than hide in a tolerance).
"""

import io
import math
import pickle
import re

import numpy as np
import pytest

import problems
from snapshot import assert_unchanged, snapshot
from test_mada_reference import MadaRef

import madam
from madam.mada import BOX, COEFFICIENTS, LEARNABLE, VERTICES, AdamHD, HyperAdam, MADA

DTYPES = problems.DTYPES
STEPS = 200
ADAM = VERTICES["adam"]


def snapshot_equal(a, b):
    """Bitwise equality of two state_dict values (arrays byte for byte, NaNs included)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return a == b or (a != a and b != b)


def _run(opt, problem, params, steps):
    return problems.trajectory(problem, opt, params, steps)


# ------------------------------------------------------------------------------ vertices
VERTEX_CASES = [  # id, MADA init, standalone factory, MADA extra kwargs, m/v start for MADA
    ("adam", "adam", lambda ps: madam.Adam(ps, lr=1e-2, eps=1e-8), {}, None),
    ("adam-betas", {"beta1": 0.8, "beta2": 0.95},
     lambda ps: madam.Adam(ps, lr=1e-2, betas=(0.8, 0.95), eps=1e-8), {}, None),
    ("avgrad", "avgrad", lambda ps: madam.AVGrad(ps, lr=1e-2, eps=1e-8), {}, None),
    ("yogi", "yogi", lambda ps: madam.Yogi(ps, lr=1e-2, eps=1e-3), {"eps": 1e-3}, 1e-6),
    ("lion", "lion", lambda ps: madam.Lion(ps, lr=1e-3, betas=(0.931, 0.98)), {"lr": 1e-3}, None),
]


@pytest.mark.parametrize("mode", ["recompute", "store"])
@pytest.mark.parametrize("problem", problems.PROBLEMS, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("init, make, extra, start",
                         [pytest.param(*c[1:], id=c[0]) for c in VERTEX_CASES])
def test_frozen_vertex_equals_standalone(init, make, extra, start, dtype, problem, mode):
    x0 = problem.start(dtype)
    ps_ref = problem.split(x0)
    want = _run(make(ps_ref), problem, ps_ref, STEPS)
    ps = problem.split(x0)
    kw = dict(lr=1e-2, eps=1e-8, v_init=0.0 if start is None else start, hyper_lr=0.0,
              hyper_start=0, derivatives=mode)
    kw.update(extra)
    opt = MADA(ps, init=init, **kw)  # learns all six at rate 0: the hyper pass runs, changes nothing
    if start is not None:  # madam.Yogi starts m at the accumulator too
        sd = opt.state_dict()
        for key in sd:
            if key.endswith(".exp_avg"):
                sd[key][...] = start
        opt.load_state_dict(sd)
    got = _run(opt, problem, ps, STEPS)
    assert np.abs(want[-1] - x0).max() > 0.005  # the run moved
    assert np.array_equal(got, want)
    assert opt.coefficients == _init(init)
    assert np.isfinite(opt.history()["hypergrad.beta1"][1:]).all()


def _init(init):
    return dict(VERTICES[init]) if isinstance(init, str) else dict(ADAM, **init)


def test_lion_vertex_algebra():
    """0.95 (0.98 m + 0.02 g) + 0.05 g = 0.931 m + 0.069 g: reference Lion's b1 = 0.931, b2 = 0.98."""
    rng = np.random.default_rng(0)
    m, g = rng.standard_normal(1000), rng.standard_normal(1000)
    mada = 0.95 * (0.98 * m + 0.02 * g) + 0.05 * g
    lion = 0.931 * m + 0.069 * g
    assert np.allclose(mada, lion, rtol=1e-14, atol=1e-15)


# ------------------------------------------------------------------------------ the NumPy oracle
REF_CASES = [  # id, MADA kwargs (the reference takes the same); every case learns from step 4
    ("adan-like-frozen", dict(init={"beta3": 0.9}, hyper_lr=0.0)),
    ("interior-frozen", dict(init={"beta1": 0.8, "beta2": 0.95, "beta3": 0.3, "rho": 0.5,
                                   "c": 0.4, "gamma": 0.7}, hyper_lr=0.0)),
    ("learn-all", dict(init={"beta2": 0.99}, hyper_lr={"beta1": 1e-3, "beta2": 1e-3})),
    ("learn-all-quirks", dict(init={"beta3": 0.2, "rho": 0.8}, first_diff="grad",
                              n_init="grad_sq", detach_vbar=True)),
    ("learn-lr", dict(learn=("beta3", "rho", "c", "gamma", "lr"),
                      hyper_lr={"lr": 1e-4}, hyper_clip=1.0)),
    ("learn-all-delayed", dict(init={"beta2": 0.99, "beta3": 0.2}, hyper_delay=True,
                               learn=LEARNABLE, hyper_lr={"lr": 1e-5})),
]
REF_RTOL = {np.float64: 1e-12, np.float32: 5e-5}


@pytest.mark.parametrize("problem", problems.PROBLEMS, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("kwargs", [pytest.param(c[1], id=c[0]) for c in REF_CASES])
def test_matches_numpy_reference(kwargs, dtype, problem):
    """Whole trajectories, hyper steps included, against MadaRef (its own derivative formulas).

    float64: 1e-12 (the oracle orders operations differently and uses m_{t-1}, n_{t-1} where
    madam recovers them: ~1e-16 per operation; measured <= 8.3e-15 over these 200 steps).
    float32: the same differences at float32's ~6e-8, fed back through the learned
    coefficients; measured <= 7.9e-6 over the cases, so 5e-5; a wrong formula shows up at
    1e-3 or more."""
    kw = dict(lr=1e-2, hyper_start=3)
    kw.update(kwargs)
    x0 = problem.start(dtype)
    ps = problem.split(x0)
    opt = MADA(ps, **kw)
    got = _run(opt, problem, ps, STEPS)
    ref_kw = {k: v for k, v in kw.items() if k != "init"}
    ref_kw["coef"] = _init(kw.get("init", "adam"))
    hl = dict(madam.mada.DEFAULT_HYPER_LR)
    if "hyper_lr" in kw:
        hl = ({k: kw["hyper_lr"] for k in LEARNABLE} if not isinstance(kw["hyper_lr"], dict)
              else dict(hl, **kw["hyper_lr"]))
    ref_kw["hyper_lr"] = hl
    ref = MadaRef(x0, **ref_kw)
    want = problems.reference_trajectory(problem, ref, STEPS)
    assert np.isfinite(want).all()
    assert problems.rel_dev(got, want) <= REF_RTOL[dtype]
    for k in COEFFICIENTS:
        assert abs(opt.coefficients[k] - ref.coef[k]) <= 1e3 * REF_RTOL[dtype], k
    if kw.get("hyper_lr") != 0.0:
        moved = [k for k in opt.learn if k != "lr" and opt.coefficients[k] != _init(
            kw.get("init", "adam"))[k]]
        assert moved, "no coefficient was learned"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_store_and_recompute_are_bitwise_equal(dtype):
    """The two derivative modes give the same bits (same derivative code, same reduction order)."""
    problem = problems.ROSENBROCK
    out = {}
    for mode in ("recompute", "store"):
        ps = problem.split(problem.start(dtype))
        opt = MADA(ps, lr=1e-2, hyper_start=2, init={"beta2": 0.99, "beta3": 0.1},
                   learn=LEARNABLE, hyper_lr={"lr": 1e-5}, derivatives=mode)
        traj = _run(opt, problem, ps, STEPS)
        out[mode] = (traj, opt.history())
    assert np.array_equal(out["recompute"][0], out["store"][0])
    for key, value in out["recompute"][1].items():
        assert np.array_equal(value, out["store"][1][key], equal_nan=True), key


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_delayed_frozen_equals_undelayed(dtype):
    """hyper_delay only moves the hyper step one step later: with nothing learned the fused pass
    gives the same parameters bit for bit, and the same hypergradients one step later."""
    problem = problems.ROSENBROCK
    out = {}
    for delay in (False, True):
        ps = problem.split(problem.start(dtype))
        opt = MADA(ps, lr=1e-2, hyper_start=2, init={"beta3": 0.2, "rho": 0.5}, learn=LEARNABLE,
                   hyper_lr=0.0, hyper_delay=delay)
        out[delay] = (_run(opt, problem, ps, STEPS), opt.history())
    assert np.array_equal(out[False][0], out[True][0])
    for k in LEARNABLE:
        now, late = out[False][1][f"hypergrad.{k}"], out[True][1][f"hypergrad.{k}"]
        assert np.isnan(late[:3]).all() and np.isfinite(late[3:]).all()
        assert np.array_equal(now[2:-1], late[3:]), k


@pytest.mark.parametrize("c, distinct", [(0.5, False), (1.0, True)])
def test_previous_v_not_recoverable_from_v_when_yogi_mixes(c, distinct):
    """Why the delayed pass reads v_{t-2} rather than recovering it from v_{t-1} (docs/mada.md,
    "5. Speed"): with c < 1, v_t = av v_{t-1} + (1 - beta2)(c + (1 - c) s) q jumps where
    s = sign(q - v_{t-1}) flips, so two different v_{t-1} give the same v_t. Here beta2 = 0.9,
    c = 0.5, q = g^2 = 1: v_{t-1} = 0.9 / 0.95 (s = +1) and 1 / 0.95 (s = -1) both give 1.
    With c = 1 (Adam's v) the map is increasing and the two stay apart."""
    after = []
    for v0 in (0.9 / 0.95, 1.0 / 0.95):
        opt = MADA(np.zeros(1), init={"beta2": 0.9, "c": c}, learn=(), v_init=v0)
        opt.step(np.ones(1))
        after.append(opt.state_dict()["state.0.exp_avg_sq"][0])
    oracle = [0.9 * v0 + 0.1 * (c + (1 - c) * (1 if v0 < 1 else -1)) + 0.1 * (1 - c) * v0
              for v0 in (0.9 / 0.95, 1.0 / 0.95)]
    np.testing.assert_allclose(after, oracle, rtol=1e-15)
    assert (abs(after[0] - after[1]) > 0.05) == distinct
    if not distinct:
        np.testing.assert_allclose(after, 1.0, rtol=1e-15)


# ------------------------------------------------------------------------------ hyper step
def _hyper_step(hyper_lr, dot, coef, lr=0.1, clip=10.0):
    lib, ffi = madam._core.lib, madam._core.ffi
    hc = ffi.new("cm_mada_hyper_config *")
    lib.cm_mada_hyper_config_default(hc)
    for j in range(7):
        hc.hyper_lr[j] = hyper_lr[j]
    hc.clip = clip
    c = ffi.new("double[7]", coef)
    hg = ffi.new("double[7]")
    assert lib.cm_mada_hyper_step(hc, lr, ffi.new("double[7]", dot), c, hg) == 0
    return list(c), list(hg)


def test_hyper_step_clips_and_projects():
    coef = [0.9, 0.95, 0.5, 0.5, 0.5, 0.5, 1e-3]
    dot = [-1e3, 1e3, 1.0, -1.0, 1e4, -50.0, 2.0]  # hypergrad = -0.1 * dot (lr: -dot)
    rates = [1e-3, 1e-2, 0.1, 0.1, 1.0, 0.0, 1e-4]
    new, hg = _hyper_step(rates, dot, coef)
    assert hg == pytest.approx([100.0, -100.0, -0.1, 0.1, -1000.0, 5.0, -2.0], rel=1e-15)
    # clipped to +-10, then the box
    want = [0.9 - 1e-3 * 10, min(0.95 + 1e-2 * 10, 0.99), 0.5 + 0.1 * 0.1, 0.5 - 0.1 * 0.1,
            1.0, 0.5, 1e-3 + 1e-4 * 2.0]
    assert new == pytest.approx(want, rel=1e-15)
    # frozen (rate 0) quantities are not even projected; the lower box edge
    new, _ = _hyper_step([1.0] * 6 + [0.0], [1e9] * 7, [0.5, 0.999, 0.5, 0.5, 0.5, 0.5, 5.0],
                         lr=1.0)
    assert new[:6] == [0.99, 0.99, 0.99, 1.0, 1.0, 1.0] and new[6] == 5.0
    new, _ = _hyper_step([1.0] * 7, [-1e9] * 7, [0.5] * 7, lr=1.0)
    assert new == [0.01, 0.501, 0.0, 0.0, 0.0, 0.0, 0.0]  # lr: 0.5 - 10 -> box [0, inf)
    # a non-finite hypergradient leaves its coefficient alone
    new, _ = _hyper_step([1.0] * 7, [math.nan, math.inf] + [0.0] * 5, [0.5] * 7)
    assert new == [0.5] * 7


@pytest.mark.parametrize("clip", [0.5, 10.0, math.inf])
def test_coefficients_stay_in_box_and_move_at_most_rate_times_clip(clip):
    problem = problems.QUADRATIC
    ps = problem.split(problem.start(np.float64))
    rates = {"beta1": 0.3, "beta2": 0.3, "beta3": 3.0, "rho": 3.0, "c": 3.0, "gamma": 3.0}
    opt = MADA(ps, lr=1e-2, hyper_lr=rates, hyper_start=0, hyper_clip=clip)
    _run(opt, problem, ps, 100)
    h = opt.history()
    for k in COEFFICIENTS:
        lo, hi = BOX[k]
        assert ((h[k][1:] >= lo) & (h[k][1:] <= hi)).all(), k
        assert (np.abs(np.diff(h[k])) <= rates[k] * clip * (1 + 1e-12)).all(), k
    clipped = np.clip(h["hypergrad.beta3"][1:], -clip, clip)
    assert np.allclose(np.diff(h["beta3"]), np.clip(h["beta3"][:-1] - 3.0 * clipped, *BOX["beta3"])
                       - h["beta3"][:-1], rtol=0, atol=1e-15)


def test_hyper_start_and_history():
    problem = problems.QUADRATIC
    ps = problem.split(problem.start(np.float64))
    opt = MADA(ps, lr=1e-2, hyper_start=5)
    _run(opt, problem, ps, 10)
    h = opt.history()
    assert h["step"].tolist() == list(range(1, 11))
    assert np.isnan(h["hypergrad.beta1"][:5]).all() and np.isfinite(h["hypergrad.beta1"][5:]).all()
    assert np.isnan(h["hypergrad.lr"][:5]).all()
    assert all(h[k][4] == ADAM[k] for k in COEFFICIENTS)  # frozen up to step 5
    assert h["beta2"][5] == BOX["beta2"][1]  # 0.999 projected into the box at the first hyper step
    assert opt.last_hypergrad["beta1"] == h["hypergrad.beta1"][-1]
    assert opt.coefficients == {k: h[k][-1] for k in COEFFICIENTS}


# ------------------------------------------------------------------------------ baselines
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("cls", [HyperAdam, AdamHD])
def test_baselines_frozen_equal_adam(cls, dtype):
    problem = problems.ROSENBROCK
    x0 = problem.start(dtype)
    ps_ref, ps = problem.split(x0), problem.split(x0)
    want = _run(madam.Adam(ps_ref, lr=1e-2, betas=(0.85, 0.99)), problem, ps_ref, STEPS)
    got = _run(cls(ps, lr=1e-2, betas=(0.85, 0.99), hyper_lr=0.0), problem, ps, STEPS)
    assert np.array_equal(got, want)


def test_adam_hd_is_baydins_rule():
    """lr_t = lr_{t-1} + beta g_t . u_{t-1}, u the previous Adam direction (no clip, no box hit)."""
    problem = problems.QUADRATIC
    ps = problem.split(problem.start(np.float64))
    opt = AdamHD(ps, lr=1e-2, hyper_lr=1e-5)
    u_prev = None
    for _ in range(50):
        g = problem.grad(problems.flatten(ps))
        x_before, lr_before = problems.flatten(ps), opt.lr
        opt.step(g)
        if u_prev is not None:
            assert opt.lr == pytest.approx(lr_before + 1e-5 * float(g @ u_prev), rel=1e-12)
        u_prev = (x_before - problems.flatten(ps)) / opt.lr
    assert opt.lr != 1e-2
    assert opt.history()["lr"][0] == 1e-2


# ------------------------------------------------------------------------------ state
def _npz(sd):
    buf = io.BytesIO()
    np.savez(buf, **sd)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


ROUND_TRIPS = {"dict": lambda sd: sd, "pickle": lambda sd: pickle.loads(pickle.dumps(sd)),
               "npz": _npz}
STATE_CASES = [
    ("MADA", lambda ps, **kw: MADA(ps, lr=1e-2, hyper_start=20, init={"beta3": 0.3}, **kw)),
    ("MADA-lr", lambda ps, **kw: MADA(ps, lr=1e-2, hyper_start=3, learn=LEARNABLE,
                                      hyper_lr={"lr": 1e-5}, first_diff="grad", **kw)),
    ("HyperAdam", lambda ps, **kw: HyperAdam(ps, lr=1e-2, hyper_start=10, **kw)),
    ("AdamHD", lambda ps, **kw: AdamHD(ps, lr=1e-2, hyper_lr=1e-6, **kw)),
    ("MADA-delayed", lambda ps, derivatives, **kw: MADA(ps, lr=1e-2, hyper_start=3,
                                                        hyper_delay=True, **kw)),
]


@pytest.mark.parametrize("round_trip", list(ROUND_TRIPS))
@pytest.mark.parametrize("mode", ["recompute", "store"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("make", [pytest.param(c[1], id=c[0]) for c in STATE_CASES])
@pytest.mark.parametrize("half", [1, 25])  # odd/even step: the ring slots swap
def test_resume_is_bitwise(make, dtype, mode, round_trip, half):
    problem = problems.ROSENBROCK
    steps = 60
    ps = problem.split(problem.start(dtype))
    full_opt = make(ps, derivatives=mode)
    full = _run(full_opt, problem, ps, steps)
    ps1 = problem.split(problem.start(dtype))
    opt1 = make(ps1, derivatives=mode)
    first = _run(opt1, problem, ps1, half)
    sd = ROUND_TRIPS[round_trip](opt1.state_dict())
    ps2 = problem.split(problems.flatten(ps1))
    # defaults, except the two construction-time choices: load_state_dict restores the rest
    opt2 = type(opt1)(ps2, derivatives=opt1.derivatives, hyper_delay=opt1.hyper_delay)
    opt2.load_state_dict(sd)
    assert opt2.coefficients == opt1.coefficients and opt2.learn == opt1.learn
    second = _run(opt2, problem, ps2, steps - half)
    assert np.array_equal(np.concatenate([first, second]), full)
    h = opt2.history()
    assert h["step"].tolist() == list(range(1, steps + 1))


def test_state_dict_is_a_copy_and_named():
    ps = [np.ones(3), np.ones((2, 2))]
    opt = MADA(ps)
    opt.step([np.full(3, 0.5), np.full((2, 2), -0.5)])
    sd = opt.state_dict()
    for name in ("exp_avg", "exp_avg_sq", "exp_avg_sq_prev", "avg_exp_avg_sq", "exp_avg_diff",
                 "lion_exp_avg", "prev_grad", "prev_grad2"):
        assert f"state.1.{name}" in sd
    assert np.array_equal(sd["state.0.prev_grad"], np.full(3, 0.5))
    sd["state.0.exp_avg"][:] = 7.0
    assert not np.array_equal(opt.state_dict()["state.0.exp_avg"], sd["state.0.exp_avg"])


# ------------------------------------------------------------------------------ threads
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_threads_do_not_change_results(dtype):
    """Above the parallel threshold, 1 and 2 threads give the same bits (update and hypergradient)."""
    rng = np.random.default_rng(3)
    n = 70_000
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(8)]
    out = []
    old = madam.get_num_threads()
    try:
        for threads in (1, 2):
            madam.set_num_threads(threads)
            x = np.linspace(-1, 1, n).astype(dtype)
            opt = MADA(x, lr=1e-3, hyper_start=1, learn=LEARNABLE, hyper_lr={"lr": 1e-9})
            for g in grads:
                opt.step(g)
            out.append((x.copy(), opt.history()))
    finally:
        madam.set_num_threads(old)
    assert np.array_equal(out[0][0], out[1][0])
    for key in out[0][1]:
        assert np.array_equal(out[0][1][key], out[1][1][key], equal_nan=True), key


# ------------------------------------------------------------------------------ bad input
BAD_KWARGS = [  # (id, kwargs, exception, text the message must contain)
    ("init-name", dict(init="sgd"), ValueError, "init"),
    ("init-type", dict(init=3), TypeError, "init"),
    ("init-key", dict(init={"delta": 0.1}), ValueError, "init"),
    ("beta1-1", dict(init={"beta1": 1.0}), ValueError, "beta1"),
    ("rho-neg", dict(init={"rho": -0.1}), ValueError, "rho"),
    ("gamma-big", dict(init={"gamma": 1.5}), ValueError, "gamma"),
    ("c-nan", dict(init={"c": math.nan}), ValueError, "'c'"),
    ("beta1-0-learned", dict(init={"beta1": 0.0}), ValueError, "beta1"),
    ("hyper-lr-neg", dict(hyper_lr={"rho": -1.0}), ValueError, "hyper_lr"),
    ("hyper-lr-key", dict(hyper_lr={"eps": 1.0}), ValueError, "hyper_lr"),
    ("hyper-lr-type", dict(hyper_lr="fast"), TypeError, "hyper_lr"),
    ("learn-name", dict(learn=("beta1", "eta")), ValueError, "learn"),
    ("learn-str", dict(learn="beta1"), TypeError, "learn"),
    ("learn-repeat", dict(learn=("rho", "rho")), ValueError, "learn"),
    ("hyper-start-neg", dict(hyper_start=-1), ValueError, "hyper_start"),
    ("hyper-start-float", dict(hyper_start=5.0), TypeError, "hyper_start"),
    ("clip-zero", dict(hyper_clip=0.0), ValueError, "hyper_clip"),
    ("clip-nan", dict(hyper_clip=math.nan), ValueError, "hyper_clip"),
    ("lr-neg", dict(lr=-1e-3), ValueError, "lr"),
    ("eps-neg", dict(eps=-1.0), ValueError, "eps"),
    ("v-init-neg", dict(v_init=-1.0), ValueError, "v_init"),
    ("first-diff", dict(first_diff="one"), ValueError, "first_diff"),
    ("n-init", dict(n_init="g1"), ValueError, "n_init"),
    ("detach", dict(detach_vbar=1), TypeError, "detach_vbar"),
    ("lion-betas", dict(lion_betas=(0.95, 1.0)), ValueError, "lion_betas"),
    ("derivatives", dict(derivatives="cache"), ValueError, "derivatives"),
    ("delay-store", dict(hyper_delay=True, derivatives="store"), ValueError, "hyper_delay"),
    ("delay-type", dict(hyper_delay="yes"), TypeError, "hyper_delay"),
    ("nonfinite", dict(nonfinite="warn"), ValueError, "nonfinite"),
]


@pytest.mark.parametrize("kwargs, exc, text", [pytest.param(*c[1:], id=c[0]) for c in BAD_KWARGS])
def test_bad_constructor_arguments(kwargs, exc, text):
    with pytest.raises(exc, match=re.escape(text)):
        MADA([np.ones(3)], **kwargs)


@pytest.mark.parametrize("cls", [MADA, HyperAdam, AdamHD])
def test_bad_params_and_grads(cls):
    with pytest.raises(TypeError, match=re.escape("params[1]")):
        cls([np.ones(2), np.ones(2, dtype=np.int64)])
    with pytest.raises(ValueError, match="params"):
        cls([])
    ps = [np.ones(2), np.ones((2, 2))]
    opt = cls(ps)
    opt.step([np.ones(2), np.ones((2, 2))])
    before = snapshot(opt, ps)
    for grads, exc, text in [
        ([np.ones(2), np.ones((2, 3))], ValueError, "grads[1]"),
        ([np.ones(2), np.ones((2, 2), dtype=np.float32)], TypeError, "grads[1]"),
        ([np.ones(2)], ValueError, "grads"),
        ([np.ones(2), np.full((2, 2), np.nan)], madam.NonFiniteError, "grads[1]"),
        (np.ones(2), TypeError, "grads"),
    ]:
        with pytest.raises(exc, match=re.escape(text)):
            opt.step(grads)
        assert_unchanged(before, opt, ps)


def test_nonfinite_skip_changes_nothing():
    ps = [np.ones(3)]
    opt = MADA(ps, hyper_start=0, nonfinite="skip")
    opt.step([np.ones(3)])
    before = opt.state_dict()
    x = ps[0].copy()
    coef = opt.coefficients
    assert opt.step([np.array([1.0, np.inf, 0.0])]) is False
    assert opt.skipped_steps == 1 and opt.coefficients == coef and opt.step_count == 1
    assert np.array_equal(ps[0], x)
    after = opt.state_dict()
    for key, value in before.items():
        if key != "skipped_steps":
            assert snapshot_equal(after[key], value), key


def test_bad_attributes_and_state():
    ps = [np.ones(3)]
    opt = MADA(ps)
    opt.step([np.ones(3)])
    with pytest.raises(ValueError, match="beta3"):
        opt.coefficients = {"beta3": 1.0}
    with pytest.raises(ValueError, match="beta1"):
        opt.coefficients = {"beta1": 0.0}  # learned beta1 must stay > 0
    assert opt.coefficients == ADAM
    opt.coefficients = {"rho": 0.25}
    assert opt.coefficients["rho"] == 0.25
    with pytest.raises(ValueError, match="hyper_lr"):
        opt.hyper_lr = {"c": -1.0}
    with pytest.raises(AttributeError):
        opt.learn = ("rho",)
    good = opt.state_dict()
    before = snapshot(opt, ps)
    bad_cases = [
        (dict(good, optimizer="Adam"), ValueError, "optimizer"),
        (dict(good, derivatives="store"), ValueError, "derivatives"),
        (dict(good, hyper_delay=True), ValueError, "hyper_delay"),
        (dict(good, pending_lr=1e-3), ValueError, "pending"),
        (dict(good, **{"coef.rho": 2.0}), ValueError, "coef.rho"),
        (dict(good, **{"hyper.hyper_clip": -1.0}), ValueError, "hyper_clip"),
        (dict(good, learn=("rho", "zeta")), ValueError, "learn"),
        (dict(good, **{"state.0.exp_avg": np.ones(4)}), ValueError, "state.0.exp_avg"),
        (dict(good, **{"state.0.exp_avg": np.ones(3, dtype=np.float32)}), TypeError, "state.0"),
        (dict(good, **{"state.1.exp_avg": np.ones(3)}), ValueError, "state.1"),
        ({k: v for k, v in good.items() if k != "state.0.prev_grad2"}, ValueError, "prev_grad2"),
        (dict(good, step_count=-1), ValueError, "step_count"),
        (dict(good, **{"coef.beta1": 0.0}), ValueError, "beta1"),
    ]
    for sd, exc, text in bad_cases:
        with pytest.raises(exc, match=re.escape(text)):
            opt.load_state_dict(sd)
        assert_unchanged(before, opt, ps)
    with pytest.raises(ValueError, match="derivatives"):
        MADA([np.ones(3)], derivatives="store").load_state_dict(good)


def test_baseline_arguments():
    with pytest.raises(ValueError, match="hyper_lr"):
        HyperAdam([np.ones(2)], hyper_lr={"rho": 0.1})
    with pytest.raises(TypeError, match="hyper_lr"):
        AdamHD([np.ones(2)], hyper_lr={"lr": 0.1})
    with pytest.raises(ValueError, match=re.escape("betas[1]")):
        HyperAdam([np.ones(2)], betas=(0.9, 1.0))
    opt = HyperAdam([np.ones(2)], betas=(0.8, 0.9), hyper_lr=1e-3)
    assert opt.learn == ("beta1", "beta2")
    assert opt.hyper_lr["beta1"] == opt.hyper_lr["beta2"] == 1e-3
    assert opt.coefficients == dict(ADAM, beta1=0.8, beta2=0.9)
    assert AdamHD([np.ones(2)]).learn == ("lr",)
