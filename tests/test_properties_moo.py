"""Property-based contract of the multi-objective layer (issue 12, deliver 3): every solver of
madam.solvers.SOLVERS (CAMOO and PAMOO included), the AMOO functions (hutchinson_diag, pu_solve,
pamoo_weights) and every Pareto metric.

For any drawn input a call either succeeds with a valid result (finite; weights on the simplex
where promised; equal to a plain NumPy reference written here, or satisfying the optimality
condition that defines it), or raises TypeError / ValueError naming one of the perturbed
arguments (never CoreError, LinAlgError or another type) and leaves the solver's state (its
state_dict, scale, info and internal arrays) unchanged bit for bit.

The Pareto references are brute force: O(N^2) dominance, hypervolume by cells of the
coordinate grid, contributions by leave-one-out, ranks by peeling.
"""
import itertools
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from property_contract import (DTYPES, INF, NAN, NONFINITE, SANE, attempt, budget,  # noqa: E402
                               check_error, freeze)
from madam import amoo, pareto, solvers  # noqa: E402


def solver_image(solver):
    """Everything a refused solve must leave alone."""
    plain = {k: v for k, v in vars(solver).items() if not callable(v) or
             isinstance(v, np.random.Generator)}
    return {"state": freeze(solver.state_dict()), "vars": freeze(plain)}


EXTREME = st.sampled_from([1e30, -1e30, 1e-30, 5e-324, 0.0, 3e19, -3e19, 1e154, -1e154,
                           1e300, 1.7e308, -1.7e308, 1e-300])


def draw_matrix(data, shape, dtype, sane):
    elements = SANE if sane else st.one_of(SANE, SANE, EXTREME)
    values = data.draw(st.lists(elements, min_size=int(np.prod(shape)),
                                max_size=int(np.prod(shape))), label=f"matrix {shape}")
    big = np.finfo(dtype).max
    with np.errstate(over="ignore"):
        a = np.array(values, dtype=np.float64).astype(dtype).reshape(shape)
    return np.ascontiguousarray(np.nan_to_num(a, posinf=big, neginf=-big))


def symmetric(h):
    """The symmetric matrix (or stack) with h's upper triangle (no overflowing average)."""
    upper = np.triu(h)
    return upper + np.swapaxes(np.triu(h, 1), -1, -2)


def draw_simplex(data, size, positive=False):
    raw = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size),
                             label="simplex"))
    if positive or raw.sum() == 0:
        raw = raw + 1e-3
    return raw / raw.sum()


# ============================================================================ solvers
BAD_REAL = [-1.0, NAN, INF, "x", None, True, [1.0]]


def bad_preference(size):
    base = np.full(size, 1.0 / size)
    return [base * 1.5, np.r_[base[:-1], -0.5] if size > 1 else np.array([-1.0]),
            np.r_[base[:-1], NAN], "ab", np.array([[1.0]]), np.array([], dtype=float),
            base.astype(complex)]


def solver_space(key, n_obj, data):
    """key -> (constructor kwargs drawn valid, {attr: (good strategy, invalid values)})."""
    pref = draw_simplex(data, n_obj)
    ppos = draw_simplex(data, n_obj, positive=True)
    pos = st.floats(1e-6, 10.0)
    if key == "linear":
        return dict(preference=pref), {"preference": (st.just(pref), bad_preference(n_obj))}
    if key == "tchebycheff":
        return dict(preference=pref), {
            "preference": (st.just(pref), bad_preference(n_obj)),
            "ideal": (st.one_of(st.none(), st.lists(SANE, min_size=n_obj, max_size=n_obj)),
                      [[NAN] * n_obj, "ab", [[0.0]]])}
    if key == "rlw":
        return {}, {"seed": (st.integers(0, 2 ** 63), [-1, 1.5, "1", True]),
                    "alpha": (pos, [0.0] + BAD_REAL),
                    "distribution": (st.sampled_from(["dirichlet", "softmax-normal"]),
                                     ["uniform", None, 1])}
    if key == "dwa":
        return {}, {"temperature": (pos, [0.0] + BAD_REAL)}
    if key == "mgda":
        return {}, {"method": (st.sampled_from(["frank-wolfe", "active-set"]), ["fw", None]),
                    "tol": (st.floats(1e-15, 1e-3), [0.0] + BAD_REAL),
                    "max_iter": (st.integers(1, 1000), [0, -1, 1.5, "1", True])}
    if key == "pcgrad":
        return {}, {"seed": (st.integers(0, 2 ** 63), [-1, 1.5, "1", True])}
    if key == "cagrad":
        return {}, {"c": (st.floats(0.0, 2.0), BAD_REAL),
                    "rescale": (st.sampled_from([0, 1, 2]), [3, -1, "1", True, 1.5])}
    if key == "imtlg":
        return {}, {"rtol": (st.one_of(st.none(), st.floats(0.0, 1e-3)), BAD_REAL[:-2])}
    if key == "nashmtl":
        return {}, {"max_norm": (st.one_of(st.none(), st.floats(0.0, 10.0)), BAD_REAL[:3]),
                    "update_weights_every": (st.integers(1, 3), [0, -1, 1.5]),
                    "tol": (st.floats(1e-12, 1e-6), [0.0] + BAD_REAL),
                    "max_iter": (st.integers(1, 500), [0, 1.5, True])}
    if key == "upgrad":
        return {}, {"preference": (st.one_of(st.none(), st.just(pref)),
                                   bad_preference(n_obj))}
    if key == "epo":
        return dict(preference=ppos), {
            "preference": (st.just(ppos), bad_preference(n_obj) + [np.eye(n_obj)[0]]
                           if n_obj > 1 else bad_preference(n_obj)),
            "eps": (st.floats(0.0, 1e-2), BAD_REAL),
            "relax": (st.booleans(), [1, "yes", None])}
    if key == "pamoo":
        return dict(iters=data.draw(st.integers(0, 30), label="pamoo iters")), {
            "lr": (st.floats(1e-6, 1e-2), [0.0] + BAD_REAL),
            "iters": (st.integers(0, 30), [-1, 1.5, "1"]),
            "w_min": (st.floats(0.0, 1e-3), BAD_REAL),
            "damping": (st.floats(0.0, 1.0), BAD_REAL),
            "warm_start": (st.booleans(), [1, None]),
            "natural_scale": (st.booleans(), [1, None]),
            "w0": (st.floats(1e-3, 10.0), [0.0] + BAD_REAL)}
    raise AssertionError(key)


SOLVER_KEYS = ["linear", "tchebycheff", "rlw", "dwa", "mgda", "pcgrad", "cagrad", "imtlg",
               "nashmtl", "upgrad", "epo", "pamoo"]
READS_LOSSES = {"tchebycheff", "dwa", "epo", "pamoo"}
POSITIVE_LOSSES = {"dwa", "epo"}
SIMPLEX = set(SOLVER_KEYS) - {"imtlg"}
HAS_PREFERENCE = {"linear", "tchebycheff", "upgrad", "epo"}


def gram64(jac):
    j = np.asarray(jac, dtype=np.float64)
    return j @ j.T


def check_solver_result(key, solver, jac, losses, lam, d, twin):
    """Validity and the per-method references / optimality conditions."""
    c = jac.shape[0]
    dtype = jac.dtype
    eps = float(np.finfo(dtype).eps)
    assert lam.dtype == np.float64 and lam.shape == (c,), (lam.dtype, lam.shape)
    assert np.all(np.isfinite(lam)), f"non-finite lambda {lam}"
    assert math.isfinite(solver.scale), f"non-finite scale {solver.scale}"
    assert d.dtype == dtype and d.shape == (jac.shape[1],)
    assert np.all(np.isfinite(d)), f"non-finite direction {d} from a finite jacobian"
    degenerate = key == "imtlg" and solver.scale == 0.0 and not lam.any()
    if not degenerate:
        assert abs(lam.sum() - 1.0) <= 1e-9 * c, f"lambda sums to {lam.sum()!r}"
    if key in SIMPLEX:
        assert np.all(lam >= 0.0), f"lambda off the simplex: {lam}"
    # d = lam @ J in the Jacobian's dtype: a gemv (lam rounded to the dtype, error up to
    # ~C eps sum_i |lam_i| |g_i|) or the exact product rounded once; PAMOO's natural_scale
    # returns scale * (lam @ J)
    factor = solver.scale if key == "pamoo" and solver.natural_scale else 1.0
    with np.errstate(all="ignore"):
        j64 = jac.astype(np.float64)
        wants = [factor * (lam.astype(dtype).astype(np.float64) @ j64), factor * (lam @ j64)]
        bound = factor * 4 * c * eps * (np.abs(lam) @ np.abs(j64)) + \
            eps * np.abs(wants[1]) + np.finfo(dtype).tiny * 4
    if all(np.all(np.isfinite(w)) for w in wants) and np.all(np.isfinite(bound)):
        got = d.astype(np.float64)
        assert any(np.all(np.abs(got - w) <= bound) for w in wants), f"d = {got} != lam @ J"
    if key == "linear":
        assert np.array_equal(lam, solver.preference)
    elif key == "tchebycheff":
        shifted = losses if solver.ideal is None else losses - solver.ideal
        values = solver.preference * shifted
        ties = (values == values.max()).astype(float)
        ties /= ties.sum()
        w = solver.preference * ties
        want = w / w.sum() if w.sum() > 0 else ties
        assert np.allclose(lam, want, rtol=1e-12, atol=1e-15), (lam, want)
    elif key == "rlw":
        if solver.distribution == "dirichlet":
            want = twin.dirichlet(np.full(c, solver.alpha))
        else:
            z = twin.standard_normal(c)
            want = np.exp(z - z.max())
            want /= want.sum()
        assert np.allclose(lam, want, rtol=1e-12, atol=0), (lam, want)
    elif key == "dwa":
        hist = twin
        if len(hist) >= 2:
            z = (hist[-1] / hist[-2]) / solver.temperature
            want = np.exp(z - z.max())
            want /= want.sum()
        else:
            want = np.full(c, 1.0 / c)
        assert np.allclose(lam, want, rtol=1e-12, atol=1e-15), (lam, want)
        assert solver.scale == c
    elif key == "mgda":
        g = gram64(jac)
        if np.all(np.isfinite(g)):
            top = float(np.max(np.diag(g)))
            tol = (1e-7 if dtype == np.float64 else 1e-4) * top * c
            value = float(lam @ g @ lam)
            assert np.all(g @ lam >= value - tol), \
                f"not the min-norm point: lam^T G lam = {value}, G lam = {g @ lam}"
    elif key == "pcgrad":
        assert solver.scale >= c * (1 - 1e-12) and np.all(lam * solver.scale >= 1 - 1e-9)
        perms = [twin.permutation(c) for _ in range(c)]
        want, robust = pcgrad_reference(np.asarray(jac, dtype=np.float64), perms)
        if robust:
            natural = solver.scale * d.astype(np.float64)
            size = float(np.linalg.norm(jac.astype(np.float64), axis=1).sum())
            tol = 1e-9 if dtype == np.float64 else 1e-4
            assert np.all(np.abs(natural - want) <= tol * size), \
                f"PCGrad direction {natural}, reference {want}"
    elif key == "upgrad":
        g = np.asarray(jac, dtype=np.float64)
        dd = lam @ g
        # rounding makes d uncertain by ~eps sum_i |lam_i| |g_i|: g_j . d may be that negative
        noise = float(np.abs(lam) @ np.linalg.norm(g, axis=1))
        norms = np.linalg.norm(g, axis=1) * max(np.linalg.norm(dd), noise)
        if np.all(np.isfinite(norms)):
            tol = 1e-7 if dtype == np.float64 else 1e-3
            assert np.all(g @ dd >= -tol * norms - 1e-300), f"conflicting: {g @ dd}"
    elif key == "nashmtl":
        alpha = solver.info.get("alpha")
        if alpha is not None and not solver.info.get("reused"):
            g = gram64(jac)
            nonzero = np.abs(jac[jac != 0])
            moderate = nonzero.size == 0 or (nonzero.min() > 1e-100 and nonzero.max() < 1e100)
            if np.all(np.isfinite(g)) and dtype == np.float64 and moderate:
                assert np.allclose(alpha * (g @ alpha), 1.0, rtol=0, atol=1e-6), \
                    f"G alpha != 1/alpha: {alpha * (g @ alpha)}"
    elif key == "pamoo":
        sub = jac
        gram = (sub @ sub.T).astype(np.float64)
        gram = 0.5 * (gram + gram.T) + solver.damping * np.eye(c)
        w = twin.copy()
        f = np.asarray(losses, dtype=np.float64)
        lmax = float(np.max(np.linalg.eigvalsh(gram))) if np.all(np.isfinite(gram)) else INF
        if solver.lr * lmax < 0.5:
            for _ in range(solver.iters):
                w = np.maximum(w + solver.lr * (2 * f - 2 * gram @ w), solver.w_min)
            tol = 1e-8 if dtype == np.float64 else 1e-3
            assert np.allclose(lam, w / w.sum(), rtol=tol, atol=tol * 1e-3), (lam, w / w.sum())


def pcgrad_reference(g, perms):
    """Yu et al.'s Algorithm 1 on the gradient vectors (float64): sum_i g_i^PC, and whether
    every projection decision is robust to rounding (|g_i^PC . g_j| > 1e-6 |g_i^PC| |g_j|)."""
    total = np.zeros(g.shape[1])
    robust = bool(np.all(np.isfinite(g)) and np.all(np.abs(g) < 1e150))
    sq = (g * g).sum(axis=1) if robust else np.zeros(len(g))
    floor = 1e-30 * float(sq.max(initial=0.0))
    for i in range(len(g)):
        v = g[i].copy()
        for j in perms[i]:
            j = int(j)
            if j == i:
                continue
            inner = float(v @ g[j])
            scale = float(np.linalg.norm(v) * np.linalg.norm(g[j]))
            if abs(inner) <= 1e-6 * scale and scale > 0:
                robust = False
            if inner < 0.0 and sq[j] > floor:
                v = v - (inner / sq[j]) * g[j]
        total += v
    return total, robust


def jacobian_case(data, n_obj, n, dtype, sane):
    """(jacobian as passed, names a refusal must use, the valid array or None)."""
    jac = draw_matrix(data, (n_obj, n), dtype, sane)
    kind = data.draw(st.sampled_from(["ok"] * 6 + ["noncontig", "int", "float16", "complex",
                                                   "1d", "empty", "nan", "list", "3d"]),
                     label="jacobian kind")
    if kind == "noncontig":
        return np.repeat(jac, 2, axis=1)[:, ::2], set(), jac
    if kind == "int":
        return np.ones((n_obj, n), dtype=np.int64), {"jacobian"}, None
    if kind == "float16":
        return np.ones((n_obj, n), dtype=np.float16), {"jacobian"}, None
    if kind == "complex":
        return jac.astype(complex), {"jacobian"}, None
    if kind == "1d":
        return jac[0].copy(), {"jacobian"}, None
    if kind == "empty":
        return np.zeros((n_obj, 0), dtype), {"jacobian"}, None
    if kind == "nan":
        jac = jac.copy()
        jac.flat[data.draw(st.integers(0, jac.size - 1))] = data.draw(NONFINITE)
        return jac, {"jacobian"}, None
    if kind == "list":
        return jac.tolist(), {"jacobian"}, None
    if kind == "3d":
        return jac[None], {"jacobian"}, None
    return jac, set(), jac


def losses_case(data, key, n_obj):
    """(losses, names a refusal must use, whether they are valid for this solver)."""
    good = np.array(data.draw(st.lists(st.floats(0.01, 100.0), min_size=n_obj,
                                       max_size=n_obj), label="losses"))
    kind = data.draw(st.sampled_from(["ok"] * 5 + ["none", "negative", "zero", "nan", "length",
                                                   "string"]), label="losses kind")
    reads = key in READS_LOSSES
    if kind == "none":
        return None, {"losses"}, not reads
    if kind == "negative":
        return -good, {"losses"}, key not in POSITIVE_LOSSES
    if kind == "zero":
        return np.zeros(n_obj), {"losses"}, key not in POSITIVE_LOSSES
    if kind == "nan":
        bad = good.copy()
        bad[-1] = NAN
        return bad, {"losses"}, not reads
    if kind == "length":
        return np.r_[good, 1.0], {"losses"}, False
    if kind == "string":
        return "ab", {"losses"}, False
    return good, set(), True


@pytest.mark.parametrize("key", SOLVER_KEYS)
@settings(max_examples=budget(0.4))
@given(data=st.data())
def test_solvers(key, data):
    """Every solver: valid result (reference / optimality) or a named refusal, state kept."""
    n_obj = data.draw(st.integers(1, 4), label="C")
    n = data.draw(st.integers(1, 6), label="n")
    dtype = data.draw(DTYPES, label="dtype")
    sane = data.draw(st.booleans(), label="sane")
    kwargs, space = solver_space(key, n_obj, data)
    solver = solvers.SOLVERS[key](**kwargs)
    twin = None
    if key in ("rlw", "pcgrad"):
        twin = np.random.Generator(np.random.PCG64(solver.seed))
    elif key == "dwa":
        twin = []
    for call in range(data.draw(st.integers(1, 3), label="calls")):
        # a hyperparameter change (valid or not) between calls
        if data.draw(st.integers(0, 3), label="set?") == 0:
            attr = data.draw(st.sampled_from(sorted(space)), label="attr")
            good, invalid = space[attr]
            value = data.draw(st.one_of(good, st.sampled_from(invalid)), label="value")
            before = solver_image(solver)
            old = freeze(getattr(solver, attr))
            _, exc = attempt(setattr, solver, attr, value)
            if exc is not None:
                check_error(exc, {attr})
                assert freeze(getattr(solver, attr)) == old
                assert solver_image(solver) == before
            elif key == "rlw" and attr == "seed":
                pass  # the stream is reseeded only by reset()
        rows = n_obj
        if key in HAS_PREFERENCE and getattr(solver, "preference", None) is not None and \
                data.draw(st.integers(0, 9), label="rows mismatch?") == 0:
            rows = n_obj + 1 if n_obj < 4 else n_obj - 1
        jac, names, valid_jac = jacobian_case(data, rows, n, dtype, sane)
        losses, lnames, losses_ok = losses_case(data, key, rows)
        if rows != n_obj:
            names = names | {"preference", "jacobian"}
            valid_jac = None
        if key == "dwa" and twin and len(twin[-1]) != rows:
            names, valid_jac = names | {"losses"}, None
        before = solver_image(solver)
        out, exc = attempt(solver.solve, jac, losses)
        if exc is not None:
            note(f"call {call} raised {exc!r}")
            check_error(exc, names | lnames | ({"jacobian", "lr"} if not sane else set()))
            assert solver_image(solver) == before, "solver state changed by a refused solve"
            continue
        assert valid_jac is not None, f"solve accepted a bad jacobian {jac!r}"
        assert losses_ok, f"solve accepted bad losses {losses!r}"
        lam, d = out
        ref = list(twin) if key == "dwa" else twin  # DWA: the history before this call
        if key == "dwa":
            twin.append(np.asarray(losses, dtype=np.float64))
        if key == "pamoo":  # the start of the projected ascent: the last w (warm) or w0
            warm = solver.warm_start and twin is not None and twin.shape == (rows,)
            ref = twin.copy() if warm else np.full(rows, solver.w0)
            twin = np.asarray(solver.info["w"], dtype=np.float64).copy()
        check_solver_result(key, solver, valid_jac, losses, lam, d, ref)
        event(f"{key}: result checked")


# ============================================================================ AMOO
@settings(max_examples=budget(1.0))
@given(data=st.data())
def test_hutchinson_diag(data):
    """hutchinson_diag equals the mean of z_k * (H z_k) over madam's probes (transformed)."""
    dim = data.draw(st.integers(1, 5), label="dim")
    stacked = data.draw(st.booleans(), label="stacked")
    dtype = data.draw(DTYPES, label="dtype")
    sane = data.draw(st.booleans(), label="sane")
    shape = (data.draw(st.integers(1, 3)), dim, dim) if stacked else (dim, dim)
    h = draw_matrix(data, shape, np.dtype(np.float64), sane)
    h = symmetric(h)
    kw = dict(n_samples=data.draw(st.integers(1, 6), label="n_samples"),
              seed=data.draw(st.integers(0, 2 ** 64 - 1), label="seed"),
              step=data.draw(st.integers(0, 2 ** 64 - 1), label="step"),
              dtype=dtype,
              transform=data.draw(st.sampled_from(["signed", "abs", "clip"]), label="transform"),
              clip_min=data.draw(st.floats(-1.0, 1.0), label="clip_min"))
    bad = {}
    perturb = data.draw(st.sampled_from(["none"] * 4 + ["dim", "n_samples", "seed", "step",
                                                         "dtype", "transform", "clip_min",
                                                         "hvp", "hvp_shape", "hvp_nan",
                                                         "hvp_complex"]), label="perturb")
    hvp_dim = dim
    out_fn = None
    if perturb in ("dim", "n_samples", "seed", "step", "dtype", "transform", "clip_min"):
        bad = {perturb: data.draw(st.sampled_from({
            "dim": [0, -1, 1.5, "3", True], "n_samples": [0, -2, 2.5, None],
            "seed": [-1, 2 ** 64, 1.5, "1"], "step": [-1, 2 ** 64, 0.5],
            "dtype": [np.int32, np.float16, "complex128", "nope"],
            "transform": ["square", None, 1], "clip_min": [NAN, INF, "0", None]}[perturb]),
            label="bad value")}
    if perturb == "hvp_shape":
        out_fn = lambda v: np.zeros(dim + 1)  # noqa: E731
    elif perturb == "hvp_nan":
        out_fn = lambda v: np.full(h.shape[:-1], NAN)  # noqa: E731
    elif perturb == "hvp_complex":
        out_fn = lambda v: np.zeros(h.shape[:-1], dtype=complex)  # noqa: E731

    def hvp(v):
        if out_fn is not None:
            return out_fn(v)
        return h @ np.asarray(v, dtype=np.float64)

    call_kw = dict(kw, **bad)
    target = "not callable" if perturb == "hvp" else hvp
    dim_arg = bad.pop("dim", hvp_dim)
    call_kw.pop("dim", None)
    out, exc = attempt(amoo.hutchinson_diag, target, dim_arg, **call_kw)
    names = set(bad) | ({"dim"} if perturb == "dim" else set()) | \
        ({"hvp"} if perturb.startswith("hvp") else set())
    if exc is not None:
        note(f"raised {exc!r}")
        check_error(exc, names | ({"hvp"} if not sane else set()))
        return
    assert perturb == "none", f"accepted the bad {perturb}"
    assert out.dtype == dtype and out.shape == h.shape[:-1]
    assert np.all(np.isfinite(out)), f"non-finite estimate {out} from finite inputs"
    acc = np.zeros(h.shape[:-1])
    with np.errstate(all="ignore"):
        for k in range(kw["n_samples"]):
            z = amoo.rademacher(dim, kw["seed"], kw["step"], k, dtype)
            hz = (h @ z.astype(np.float64)).astype(dtype).astype(np.float64)
            acc = acc + z.astype(np.float64) * hz
        est = acc / kw["n_samples"]
        scale = np.abs(h).sum(axis=-1) + np.finfo(dtype).tiny
    if kw["transform"] == "abs":
        est = np.abs(est)
    elif kw["transform"] == "clip":
        est = np.maximum(est, kw["clip_min"])
    tol = 1e-12 if dtype == np.float64 else 1e-5
    if np.all(np.isfinite(est)) and np.all(np.isfinite(scale)):
        assert np.all(np.abs(out - est) <= tol * np.maximum(scale, abs(kw["clip_min"]))), \
            (out, est)


def pu_reference(a, tau, iters, eta, w0, q0):
    """PU on the entropy-regularised game (w_min = 0), log domain, float64."""
    m, d = a.shape
    if eta is None:
        eta = 1.0 / (tau + 2.0 * float(np.max(np.abs(a))))
    c = 1.0 - eta * tau
    lp = np.log(np.full(m, 1.0 / m) if w0 is None else w0 / w0.sum())
    lq = np.log(np.full(d, 1.0 / d) if q0 is None else q0 / q0.sum())

    def norm(x):
        x = x - x.max()
        return x - np.log(np.exp(x).sum())

    with np.errstate(divide="ignore"):
        for _ in range(iters):
            p, q = np.exp(lp), np.exp(lq)
            lpb = norm(c * lp + eta * (a @ q))
            lqb = norm(c * lq - eta * (a.T @ p))
            lp = norm(c * lp + eta * (a @ np.exp(lqb)))
            lq = norm(c * lq - eta * (a.T @ np.exp(lpb)))
    return np.exp(lp), np.exp(lq)


@settings(max_examples=budget(1.0))
@given(data=st.data())
def test_pu_solve(data):
    """pu_solve: (w, q) on the simplex, value/gap consistent, equal to the NumPy PU."""
    m = data.draw(st.integers(1, 4), label="m")
    d = data.draw(st.integers(1, 5), label="d")
    dtype = data.draw(DTYPES, label="dtype")
    sane = data.draw(st.booleans(), label="sane")
    a = draw_matrix(data, (m, d), dtype, sane)
    kw = dict(tau=data.draw(st.sampled_from([0.0, 0.01, 0.1, 1.0]), label="tau"),
              iters=data.draw(st.integers(0, 20), label="iters"),
              eta=data.draw(st.one_of(st.none(), st.floats(1e-3, 1.0)), label="eta"),
              w_min=data.draw(st.sampled_from([0.0, 0.0, 0.01, 1.0 / m]), label="w_min"),
              matvec=data.draw(st.sampled_from(["fused", "blas"]), label="matvec"))
    if data.draw(st.booleans(), label="warm w0"):  # a point of Delta_{m, w_min}
        floor = min(kw["w_min"], 1.0 / m)
        kw["w0"] = floor + (1.0 - m * floor) * draw_simplex(data, m, positive=True)
    if data.draw(st.booleans(), label="warm q0"):
        kw["q0"] = draw_simplex(data, d, positive=True)
    bad = data.draw(st.sampled_from(["none"] * 4 + ["A", "tau", "iters", "eta", "w_min",
                                                     "tol", "matvec", "w0", "q0"]),
                    label="perturb")
    call_kw = dict(kw)
    arr = a
    if bad == "A":
        arr = data.draw(st.sampled_from([a.ravel(), a.astype(complex), np.full((m, d), NAN),
                                         "x", np.zeros((0, d))]), label="bad A")
    elif bad != "none":
        call_kw[bad] = data.draw(st.sampled_from({
            "tau": [-1.0, NAN, "x"], "iters": [-1, 1.5, None], "eta": [0.0, -1.0, NAN],
            "w_min": [-0.1, 2.0, NAN], "tol": [-1.0, NAN], "matvec": ["gemv", None],
            "w0": [np.zeros(m), -np.ones(m), np.ones(m + 1), [NAN] * m],
            "q0": [np.zeros(d), -np.ones(d), np.ones(d + 1), "ab"]}[bad]), label="bad value")
    out, exc = attempt(amoo.pu_solve, arr, **call_kw)
    if exc is not None:
        note(f"raised {exc!r}")
        check_error(exc, {bad, "eta"} | ({"A"} if not sane else set()))
        return
    assert bad == "none", f"accepted the bad {bad}"
    w, q = out.w, out.q
    tol = 1e-9 if dtype == np.float64 else 1e-4
    for name, x in (("w", w), ("q", q)):
        assert np.all(np.isfinite(x)), f"non-finite {name} {x}"
        assert abs(float(x.sum()) - 1.0) <= tol * len(x), f"{name} sums to {x.sum()}"
    w_min = min(kw["w_min"], 1.0 / m)
    assert np.all(w >= w_min - tol), f"w below w_min: {w}"
    assert np.all(q >= -tol)
    assert math.isfinite(out.gap) and math.isfinite(out.value), out
    a64 = a.astype(np.float64)
    if is_moderate(a64):
        value = float(w.astype(np.float64) @ a64 @ q.astype(np.float64))
        scale = float(np.abs(a64).max()) + 1e-300
        assert abs(out.value - value) <= 1e2 * tol * scale, (out.value, value)
        if kw["w_min"] == 0.0 and dtype == np.float64 and kw["tau"] > 0:
            rw, rq = pu_reference(a64, kw["tau"], kw["iters"], kw["eta"], kw.get("w0"),
                                  kw.get("q0"))
            assert np.allclose(w, rw, rtol=1e-8, atol=1e-12), (w, rw)
            assert np.allclose(q, rq, rtol=1e-8, atol=1e-12), (q, rq)


def is_moderate(a):
    return bool(np.all(np.isfinite(a)) and np.all(np.abs(a) <= 1e6))


@settings(max_examples=budget(1.0))
@given(data=st.data())
def test_pamoo_weights(data):
    """pamoo_weights equals projected gradient ascent in NumPy; result finite and >= w_min."""
    m = data.draw(st.integers(1, 4), label="m")
    dtype = data.draw(DTYPES, label="dtype")
    sane = data.draw(st.booleans(), label="sane")
    j = draw_matrix(data, (m, data.draw(st.integers(1, 5))), dtype, sane)
    a = (j.astype(np.float64) @ j.T.astype(np.float64) + 1e-4 * np.eye(m)).astype(dtype)
    f = np.array(data.draw(st.lists(st.floats(0.0, 10.0), min_size=m, max_size=m)))
    kw = dict(lr=data.draw(st.one_of(st.floats(1e-6, 1e-2), st.sampled_from([1.0, 1e6]))
                           if not sane else st.floats(1e-6, 1e-2), label="lr"),
              iters=data.draw(st.integers(0, 50), label="iters"),
              w_min=data.draw(st.sampled_from([0.0, 1e-6, 0.1]), label="w_min"))
    if data.draw(st.booleans(), label="w0"):
        kw["w0"] = np.array(data.draw(st.lists(st.floats(0.0, 2.0), min_size=m, max_size=m)))
    bad = data.draw(st.sampled_from(["none"] * 4 + ["A", "f", "lr", "iters", "w_min", "w0"]),
                    label="perturb")
    args = [a, f]
    if bad == "A":
        args[0] = data.draw(st.sampled_from([a[:, :-1] if m > 1 else np.ones((1, 2)),
                                             np.full((m, m), NAN), a.astype(complex)]))
    elif bad == "f":
        args[1] = data.draw(st.sampled_from([np.r_[f, 1.0], np.full(m, NAN), "ab"]))
    elif bad != "none":
        kw[bad] = data.draw(st.sampled_from({
            "lr": [0.0, -1.0, NAN, "x"], "iters": [-1, 1.5], "w_min": [-1.0, NAN],
            "w0": [np.ones(m + 1), np.full(m, NAN)]}[bad]))
    out, exc = attempt(amoo.pamoo_weights, *args, **kw)
    if exc is not None:
        note(f"raised {exc!r}")
        # lr's valid range depends on A (the ascent diverges for lr >= 1 / lambda_max(A))
        check_error(exc, {bad, "lr"} | ({"A"} if not sane else set()))
        return
    assert bad == "none", f"accepted the bad {bad}"
    assert out.dtype == dtype and out.shape == (m,)
    assert np.all(np.isfinite(out)), f"non-finite weights {out} (lr={kw['lr']})"
    if kw["iters"] > 0:  # iters = 0 returns w0 as given
        assert np.all(out >= kw["w_min"]), out
    a64 = a.astype(np.float64)
    lmax = float(np.max(np.linalg.eigvalsh(a64)))
    if kw["lr"] * lmax < 0.5:
        w = np.ones(m) if "w0" not in kw else np.asarray(kw["w0"], dtype=np.float64)
        w = w.astype(dtype).astype(np.float64)
        for _ in range(kw["iters"]):
            w = np.maximum(w + kw["lr"] * (2 * f - 2 * a64 @ w), kw["w_min"])
        tol = 1e-9 if dtype == np.float64 else 1e-4
        assert np.allclose(out, w, rtol=tol, atol=tol * (1 + np.abs(w).max())), (out, w)


@pytest.mark.parametrize("which", ["camoo", "pamoo"])
@settings(max_examples=budget(0.5))
@given(data=st.data())
def test_camoo_and_pamoo_solvers(which, data):
    """CAMOO (Hutchinson + PU) and PAMOO as solvers: simplex weights >= w_min, named
    refusals of bad hvp output / losses / jacobian with the solver's state unchanged."""
    n_obj = data.draw(st.integers(1, 3), label="C")
    n = data.draw(st.integers(1, 4), label="n")
    dtype = data.draw(DTYPES, label="dtype")
    sane = data.draw(st.booleans(), label="sane")
    h = draw_matrix(data, (n_obj, n, n), np.dtype(np.float64), sane)
    h = symmetric(h)
    poison = {"on": False}

    def hvp(x, v):
        if poison["on"]:
            return np.full((n_obj, n), NAN)
        return h @ np.asarray(v, dtype=np.float64)

    if which == "camoo":
        solver = amoo.CAMOO(hvp, n_samples=data.draw(st.integers(1, 5)),
                            beta=data.draw(st.sampled_from([0.0, 0.5, 0.99])),
                            pu_iters=data.draw(st.integers(0, 5)),
                            w_min=data.draw(st.sampled_from([0.0, 0.01])),
                            warm_start=data.draw(st.booleans()))
        solver.observe(np.zeros(n, dtype))
    else:
        solver = amoo.PAMOO(lr=data.draw(st.sampled_from([1e-3, 1.0, 1e6]) if not sane
                                         else st.just(1e-3)),
                            iters=data.draw(st.integers(0, 20)),
                            w_min=data.draw(st.sampled_from([1e-6, 0.0])))
    for call in range(data.draw(st.integers(1, 3), label="calls")):
        jac = draw_matrix(data, (n_obj, n), dtype, sane)
        losses = np.array(data.draw(st.lists(st.floats(0.01, 10.0), min_size=n_obj,
                                             max_size=n_obj)))
        bad = data.draw(st.sampled_from(["none"] * 4 + ["hvp", "losses", "jacobian"]))
        names = {bad}
        if bad == "hvp" and which == "camoo":
            poison["on"] = True
        elif bad == "losses":
            losses = np.r_[losses[:-1], NAN] if which == "pamoo" else np.r_[losses, 1.0]
        elif bad == "jacobian":
            jac = jac.copy()
            jac.flat[0] = NAN
        else:
            bad, names = "none", set()
        before = solver_image(solver)
        out, exc = attempt(solver.solve, jac, losses)
        poison["on"] = False
        if exc is not None:
            note(f"call {call} raised {exc!r}")
            check_error(exc, names | ({"hvp", "Hessian", "lr", "jacobian"} if not sane
                                      else set()))
            assert solver_image(solver) == before, "solver state changed by a refused solve"
            continue
        assert bad == "none", f"accepted the bad {bad}"
        lam, d = out
        assert lam.shape == (n_obj,) and np.all(np.isfinite(lam)), lam
        assert abs(lam.sum() - 1.0) <= 1e-9 * n_obj and np.all(lam >= 0), lam
        if which == "camoo":
            floor = min(solver.w_min, 1.0 / n_obj)
            assert np.all(lam >= floor * (1 - 1e-5) - 1e-7), (lam, floor)


# ============================================================================ Pareto metrics
def dominates(p, q):
    return bool(np.all(p <= q) and np.any(p < q))


def nondominated_ref(pts, keep_weakly):
    n = len(pts)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if j != i and dominates(pts[j], pts[i]):
                keep[i] = False
            if not keep_weakly and j < i and np.array_equal(pts[j], pts[i]):
                keep[i] = False
    return keep


def rank_ref(pts):
    n = len(pts)
    rank = np.full(n, -1, dtype=np.int64)
    r = 0
    while (rank < 0).any():
        left = np.flatnonzero(rank < 0)
        sub = pts[left]
        front = nondominated_ref(sub, keep_weakly=True)
        rank[left[front]] = r
        r += 1
    return rank


def hv_ref(pts, ref):
    """Exact hypervolume by the cells of the coordinate grid (small N, M)."""
    pts = np.asarray(pts, dtype=np.float64)
    if len(pts) == 0:
        return 0.0
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    m = pts.shape[1]
    axes = [np.unique(np.r_[pts[:, k], ref[k]]) for k in range(m)]
    total = 0.0
    for idx in itertools.product(*[range(len(a) - 1) for a in axes]):
        lo = np.array([axes[k][i] for k, i in enumerate(idx)])
        hi = np.array([axes[k][i + 1] for k, i in enumerate(idx)])
        if np.any(np.all(pts <= lo, axis=1)):
            total += float(np.prod(hi - lo))
    return total


def contributions_ref(pts, ref, ignore_dominated):
    n = len(pts)
    out = np.zeros(n)
    if n == 0:
        return out
    active = np.ones(n, dtype=bool)
    if ignore_dominated:
        active = nondominated_ref(pts, keep_weakly=True)
    base = hv_ref(pts[active], ref)
    for i in range(n):
        if not active[i]:
            continue
        rest = active.copy()
        rest[i] = False
        out[i] = base - hv_ref(pts[rest], ref)
    return out


def igd_ref(pts, front, plus):
    if len(pts) == 0:
        return INF
    diff = pts[None, :, :] - front[:, None, :]
    if plus:
        diff = np.maximum(diff, 0.0)
    return float(np.sqrt((diff ** 2).sum(axis=2)).min(axis=1).mean())


def spacing_ref(pts):
    d = np.abs(pts[:, None, :] - pts[None, :, :]).sum(axis=2)
    np.fill_diagonal(d, INF)
    d = d.min(axis=1)
    return float(np.sqrt(((d - d.mean()) ** 2).sum() / (len(pts) - 1)))


def spread_ref(pts, front):
    a = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    gaps = np.hypot(*(a[1:] - a[:-1]).T)
    df = dl = 0.0
    if front is not None:
        first = front[np.lexsort((front[:, 1], front[:, 0]))[0]]
        last = front[np.lexsort((front[:, 0], front[:, 1]))[0]]
        df, dl = float(np.hypot(*(a[0] - first))), float(np.hypot(*(a[-1] - last)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float((df + dl + np.abs(gaps - gaps.mean()).sum()) /
                     (df + dl + len(gaps) * gaps.mean()))


def draw_points(data, n, m, label="points"):
    """Small grids (ties, duplicates) or floats; int, float32 or float64 storage."""
    style = data.draw(st.sampled_from(["grid", "grid", "float"]), label=f"{label} style")
    if style == "grid":
        values = st.integers(0, 4)
    else:
        values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
    rows = data.draw(st.lists(st.lists(values, min_size=m, max_size=m), min_size=n,
                              max_size=n), label=label)
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.int64]) if style == "grid"
                      else st.sampled_from([np.float64, np.float32]), label=f"{label} dtype")
    return np.array(rows, dtype=dtype).reshape(n, m)


BAD_POINTS = ["nan", "1d", "3d", "complex", "bool", "string", "nocols"]


def bad_points(data, pts):
    how = data.draw(st.sampled_from(BAD_POINTS), label="bad points")
    if how == "nan":
        p = pts.astype(np.float64)
        if p.size == 0:
            return np.array([[NAN] * max(p.shape[1], 1)])
        p.flat[0] = data.draw(NONFINITE)
        return p
    return {"1d": pts.ravel().astype(float) if pts.size else np.ones(3),
            "3d": pts[None].astype(float), "complex": pts.astype(complex),
            "bool": pts > 1, "string": "points", "nocols": np.zeros((3, 0))}[how]


METRICS = ["hypervolume", "hv_contributions", "is_nondominated", "filter_dominated",
           "pareto_rank", "igd", "igd_plus", "spacing", "spread"]


@pytest.mark.parametrize("metric", METRICS)
@settings(max_examples=budget(0.5))
@given(data=st.data())
def test_pareto_metrics(metric, data):
    """Every Pareto metric against its brute-force NumPy reference, or a named refusal."""
    m = 2 if metric == "spread" else data.draw(st.integers(1, 4), label="M")
    min_n = 2 if metric in ("spacing", "spread") else 0
    n = data.draw(st.integers(min_n, 7 if m <= 3 else 5), label="N")
    pts = draw_points(data, n, m)
    algorithm = data.draw(st.sampled_from(["auto", "generic"]), label="algorithm")
    perturb = data.draw(st.sampled_from(["none"] * 5 + ["points", "ref", "flag", "algorithm"]),
                        label="perturb")
    fn = getattr(pareto, metric)
    args, kw, names = [pts], {}, set()
    if metric in ("hypervolume", "hv_contributions"):
        ref = np.asarray(data.draw(st.lists(st.integers(0, 6), min_size=m, max_size=m),
                                   label="ref"), dtype=np.float64)
        args.append(ref)
        kw["algorithm"] = algorithm
        if metric == "hv_contributions":
            kw["ignore_dominated"] = data.draw(st.booleans(), label="ignore_dominated")
    elif metric in ("is_nondominated", "filter_dominated"):
        kw["keep_weakly"] = data.draw(st.booleans(), label="keep_weakly")
        if metric == "is_nondominated":
            kw["algorithm"] = algorithm
    elif metric == "pareto_rank":
        kw["algorithm"] = algorithm
    elif metric in ("igd", "igd_plus"):
        args.append(draw_points(data, data.draw(st.integers(1, 5)), m, label="front"))
    elif metric == "spread" and data.draw(st.booleans(), label="spread ref"):
        args.append(draw_points(data, data.draw(st.integers(1, 4)), 2, label="front"))
    if perturb == "points":
        args[0], names = bad_points(data, pts), {"points"}
    elif perturb == "ref" and len(args) > 1:
        args[1] = data.draw(st.sampled_from([np.r_[np.asarray(args[1], float).ravel()[:1],
                                                   NAN], np.zeros(m + 1), "ref",
                                             np.asarray(args[1]).astype(complex)]),
                            label="bad ref")
        if metric in ("igd", "igd_plus", "spread") and isinstance(args[1], np.ndarray) and \
                args[1].ndim == 1 and args[1].size == m + 1:
            args[1] = np.zeros((2, m + 1))
        names = {"ref"}
    elif perturb == "flag" and ("keep_weakly" in kw or "ignore_dominated" in kw):
        flag = "keep_weakly" if "keep_weakly" in kw else "ignore_dominated"
        kw[flag], names = data.draw(st.sampled_from([1, "yes", None]), label="bad flag"), {flag}
    elif perturb == "algorithm" and "algorithm" in kw:
        kw["algorithm"], names = data.draw(st.sampled_from(["fast", None, 1])), {"algorithm"}
    else:
        perturb = "none"
    out, exc = attempt(fn, *args, **kw)
    if exc is not None:
        note(f"raised {exc!r}")
        check_error(exc, names or {"<no error expected>"})
        return
    assert perturb == "none", f"{metric} accepted the bad {perturb}: {args!r} {kw!r}"
    p = pts.astype(np.float64)
    if metric == "hypervolume":
        want = hv_ref(p, args[1])
        assert out == pytest.approx(want, rel=1e-12, abs=1e-12), (out, want)
    elif metric == "hv_contributions":
        want = contributions_ref(p, args[1], kw["ignore_dominated"])
        total = max(hv_ref(p, args[1]), 1.0)  # contributions are differences of volumes
        assert np.allclose(out, want, rtol=1e-12, atol=1e-12 * total), (out, want)
    elif metric == "is_nondominated":
        assert np.array_equal(out, nondominated_ref(p, kw["keep_weakly"])), out
    elif metric == "filter_dominated":
        assert np.array_equal(out, p[nondominated_ref(p, kw["keep_weakly"])])
    elif metric == "pareto_rank":
        assert np.array_equal(out, rank_ref(p)), (out, rank_ref(p))
    elif metric in ("igd", "igd_plus"):
        want = igd_ref(p, np.asarray(args[1], dtype=np.float64), metric == "igd_plus")
        assert out == pytest.approx(want, rel=1e-12, abs=1e-12), (out, want)
    elif metric == "spacing":
        assert out == pytest.approx(spacing_ref(p), rel=1e-12, abs=1e-12)
    elif metric == "spread":
        front = None if len(args) == 1 else np.asarray(args[1], dtype=np.float64)
        want = spread_ref(p, front)
        if math.isnan(want):
            assert math.isnan(out)
        else:
            assert out == pytest.approx(want, rel=1e-12, abs=1e-12), (out, want)


# ============================================================================ solver symmetry
EQUIVARIANT = {  # solver -> (builder, whether the natural direction is scale * d)
    "mgda": (lambda: solvers.MGDA(), False),
    "cagrad": (lambda: solvers.CAGrad(), True),
    "nashmtl": (lambda: solvers.NashMTL(max_norm=None), True),
    "upgrad": (lambda: solvers.UPGrad(), True),
    "imtlg": (lambda: solvers.IMTLG(), False),
}


@pytest.mark.parametrize("key", sorted(EQUIVARIANT))
@settings(max_examples=budget(0.4))
@given(data=st.data())
def test_solver_directions_ignore_the_order_of_objectives(key, data):
    """The methods whose natural direction is unique (MGDA's min-norm point, CAGrad, Nash-MTL,
    UPGrad, IMTL-G) give the same direction for any order of the Jacobian's rows."""
    n_obj = data.draw(st.integers(2, 4), label="C")
    n = data.draw(st.integers(1, 5), label="n")
    dtype = data.draw(DTYPES, label="dtype")
    sane = data.draw(st.booleans(), label="sane")
    jac = draw_matrix(data, (n_obj, n), dtype, sane)
    if data.draw(st.booleans(), label="duplicate a row"):
        jac[-1] = jac[0]
    perm = np.array(data.draw(st.permutations(range(n_obj)), label="order"))
    build, natural = EQUIVARIANT[key]
    results = []
    for rows in (jac, np.ascontiguousarray(jac[perm])):
        solver = build()
        out, exc = attempt(solver.solve, rows)
        if exc is not None:
            check_error(exc, {"jacobian"})
            return
        lam, d = out
        results.append((lam, solver.scale * d.astype(np.float64) if natural
                        else d.astype(np.float64), solver.scale))
    (lam0, d0, scale0), (lam1, d1, scale1) = results
    size = float(np.abs(jac.astype(np.float64)).sum(axis=1).max())
    if not (math.isfinite(size) and size < 1e150):
        return
    tol = 1e-6 if dtype == np.float64 else 1e-2
    assert np.all(np.abs(d0 - d1) <= tol * size), \
        f"{key}: direction {d0} for the rows in order, {d1} permuted by {perm.tolist()}"
    if key == "nashmtl" and scale0 > 0 and scale1 > 0:  # a bargaining solution (unique)
        assert np.allclose(lam0[perm], lam1, rtol=1e-6, atol=1e-9), (lam0[perm], lam1)


# ============================================================================ small AMOO helpers
@settings(max_examples=budget(0.5))
@given(data=st.data())
def test_rademacher(data):
    """rademacher: entries exactly +-1 in the dtype asked, a prefix of a longer probe is the
    shorter one; bad arguments are named."""
    n = data.draw(st.integers(0, 70), label="n")
    seed = data.draw(st.integers(0, 2 ** 64 - 1), label="seed")
    step = data.draw(st.integers(0, 2 ** 64 - 1), label="step")
    probe = data.draw(st.integers(0, 2 ** 64 - 1), label="probe")
    dtype = data.draw(DTYPES, label="dtype")
    bad = data.draw(st.sampled_from(["none"] * 3 + ["n", "seed", "step", "probe", "dtype"]))
    kw = dict(n=n, seed=seed, step=step, probe=probe, dtype=dtype)
    if bad != "none":
        kw[bad] = data.draw(st.sampled_from({"n": [-1, 1.5, "3"], "seed": [-1, 2 ** 64, 0.5],
                                             "step": [-1, 2 ** 64], "probe": [-1, 2 ** 64],
                                             "dtype": [np.int8, "float16"]}[bad]))
    out, exc = attempt(amoo.rademacher, **kw)
    if exc is not None:
        check_error(exc, {bad})
        return
    assert bad == "none", f"accepted the bad {bad}"
    assert out.dtype == dtype and out.shape == (n,)
    assert np.all(np.abs(out) == 1.0)
    longer = amoo.rademacher(n + 5, seed, step, probe, dtype)
    assert np.array_equal(longer[:n], out)


@settings(max_examples=budget(0.5))
@given(data=st.data())
def test_hutchinson_ema(data):
    """HutchinsonEMA.update equals the bias-corrected EMA of the transformed estimates; its
    state_dict round-trips, and a corrupted one is refused naming the key, changing nothing."""
    beta = data.draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]), label="beta")
    transform = data.draw(st.sampled_from(["signed", "abs", "clip"]), label="transform")
    clip_min = data.draw(st.floats(-1.0, 1.0), label="clip_min")
    dtype = data.draw(DTYPES, label="dtype")
    shape = data.draw(st.sampled_from([(3,), (2, 3)]), label="shape")
    ema = amoo.HutchinsonEMA(beta=beta, transform=transform, clip_min=clip_min)
    avg = np.zeros(shape)
    for t in range(1, data.draw(st.integers(1, 4), label="updates") + 1):
        est = draw_matrix(data, shape, dtype, True)
        out = ema.update(est)
        e = est.astype(np.float64)
        e = np.abs(e) if transform == "abs" else np.maximum(e, clip_min) \
            if transform == "clip" else e
        avg = beta * avg + (1 - beta) * e
        want = avg / (1 - beta ** t)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        scale = float(np.abs(want).max()) + 1.0
        assert out.shape == shape and np.all(np.abs(out - want) <= tol * scale), (out, want)
    sd = ema.state_dict()
    how = data.draw(st.sampled_from(["none", "delete step", "delete ema", "step", "ema nan",
                                     "ema shape"]), label="corruption")
    bad = dict(sd)
    names = {"state_dict"}
    if how == "delete step":
        del bad["step"]
        names = {"step"}
    elif how == "delete ema":
        del bad["ema"]
        names = {"ema"}
    elif how == "step":
        bad["step"] = data.draw(st.sampled_from([-1, 1.5, "2", None]))
        names = {"step"}
    elif how == "ema nan":
        bad["ema"] = np.full(shape, NAN)
        names = {"ema"}
    elif how == "ema shape":
        bad["ema"] = "not an array"
        names = {"ema"}
    twin = amoo.HutchinsonEMA(beta=beta, transform=transform, clip_min=clip_min)
    twin.update(np.ones(shape, dtype))
    before = freeze(twin.state_dict())
    _, exc = attempt(twin.load_state_dict, bad)
    if exc is not None:
        check_error(exc, names)
        assert freeze(twin.state_dict()) == before
        return
    assert how == "none", f"HutchinsonEMA.load_state_dict accepted a corrupted state ({how})"
    assert freeze(twin.state_dict()) == freeze(sd)


@settings(max_examples=budget(0.5))
@given(data=st.data())
def test_hvp_from_grad(data):
    """hvp_from_grad of a quadratic's gradient is H v to the rounding of central differences."""
    n = data.draw(st.integers(1, 4), label="n")
    h = symmetric(draw_matrix(data, (n, n), np.dtype(np.float64), True))
    x = draw_matrix(data, (n,), np.dtype(np.float64), True)
    v = draw_matrix(data, (n,), np.dtype(np.float64), True)
    step = data.draw(st.one_of(st.none(), st.floats(1e-6, 1e-2)), label="h")
    bad = data.draw(st.sampled_from(["none"] * 4 + ["grad", "h", "v"]), label="perturb")
    grad = (lambda y: h @ y) if bad != "grad" else "not callable"
    kw = {} if step is None else {"h": step}
    if bad == "h":
        kw["h"] = data.draw(st.sampled_from([0.0, -1.0, NAN, "x"]))
    fn, exc = attempt(amoo.hvp_from_grad, grad, x, **kw)
    if exc is None:
        out, exc = attempt(fn, v if bad != "v" else np.ones(n + 1))
    if exc is not None:
        check_error(exc, {bad})
        return
    assert bad == "none", f"accepted the bad {bad}"
    want = h @ v
    scale = float(np.abs(h).sum(axis=1).max() * np.abs(v).max()) + 1e-300
    assert np.all(np.isfinite(out)) and np.all(np.abs(out - want) <= 1e-6 * scale + 1e-12), \
        (out, want)


# ============================================================================ solver state dicts
STATEFUL = {
    "rlw": lambda: solvers.RLW(seed=4),
    "pcgrad": lambda: solvers.PCGrad(seed=2),
    "dwa": lambda: solvers.DWA(),
    "nashmtl": lambda: solvers.NashMTL(),
    "pamoo": lambda: amoo.PAMOO(iters=10),
}


@pytest.mark.parametrize("key", sorted(STATEFUL))
@settings(max_examples=budget(0.25))
@given(data=st.data())
def test_solver_state_dict_corruption(key, data):
    """A corrupted solver state_dict is refused naming the key (the solver unchanged), or it
    loads, round-trips and the next solve is valid."""
    n_obj = data.draw(st.integers(1, 3), label="C")
    src = STATEFUL[key]()
    for _ in range(data.draw(st.integers(0, 3), label="source calls")):
        src.solve(draw_matrix(data, (n_obj, 3), np.dtype(np.float64), True),
                  np.array(data.draw(st.lists(st.floats(0.1, 10.0), min_size=n_obj,
                                              max_size=n_obj))))
    sd = src.state_dict()
    bad = dict(sd)
    keys = sorted(sd)
    how = data.draw(st.sampled_from(["none", "delete", "type", "nan", "negative", "kind",
                                     "format"]), label="corruption")
    names = set()
    if how == "delete":
        k = data.draw(st.sampled_from(keys))
        del bad[k]
        names = {k}
    elif how == "type":
        k = data.draw(st.sampled_from(keys))
        bad[k] = data.draw(st.sampled_from([None, 1.5, "x", [1, 2], np.zeros((2, 2, 2))]))
        names = {k}
    elif how in ("nan", "negative"):
        arrays = [k for k in keys if isinstance(sd[k], np.ndarray) and sd[k].size]
        if not arrays:
            how = "none"
        else:
            k = data.draw(st.sampled_from(arrays))
            bad[k] = np.array(sd[k], dtype=np.float64)
            bad[k].flat[0] = NAN if how == "nan" else -1.0
            names = {k}
    elif how == "kind":
        bad["solver"] = "Other"
        names = {"solver"}
    elif how == "format":
        bad["format"] = 7
        names = {"format"}
    target = STATEFUL[key]()
    target.solve(np.eye(n_obj, 3), np.ones(n_obj))
    before = solver_image(target)
    _, exc = attempt(target.load_state_dict, bad)
    if exc is not None:
        note(f"refused: {exc!r}")
        check_error(exc, names or {"<no error expected>"})
        assert solver_image(target) == before, "a refused load changed the solver"
        return
    again = target.state_dict()
    for k, value in bad.items():
        assert freeze(again.get(k)) == freeze(value), f"{k} not restored ({how})"
    out, exc = attempt(target.solve, np.eye(n_obj, 3) + 0.5, np.ones(n_obj))
    if exc is not None:
        check_error(exc, {"state", "losses", "jacobian"})
        return
    lam, _ = out
    assert np.all(np.isfinite(lam)) and abs(lam.sum() - 1) <= 1e-9 * n_obj, lam
