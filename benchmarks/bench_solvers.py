"""Time every madam solver's solve(J, losses) against torchjd's aggregator, with the KKT accuracy.

For C objectives (default 2, 8, 32, 128) and n parameters (default 1e5) it builds one Jacobian
from a fixed seed, in float64 and rounded to float32, and times per solver and dtype

  madam     solver.solve(J, losses): the float64 Gramian (one pass over J with the NaN scan),
            the method's weights, the direction d = lam @ J
  torchjd   aggregator(J) on a torch tensor holding the same values (torch.from_numpy: no copy):
            torchjd's Gramian J @ J.T in J's dtype, its weighting, the combination w @ J

Both sides start cold on every timed call: madam's solver is reset() before it (Nash-MTL's warm
start, PAMOO's warm start, DWA's loss history, the random streams), torchjd's Nash-MTL gets its
start alpha = 1 back (its cvxpy problem, built on the first call, is kept). The reset is not
timed. Times are medians over --repeats calls after one untimed call (fewer when one call is
slow: a cell stops at --max-cell-time seconds, at least one call; the column "reps" says how many).

The Jacobian's rows are correlated like real per-task gradients: with z_0 a shared direction,
z_1..z_4 four latent directions and e_i independent noise (all N(0, 1/n) entries),
    g_i = s_i (0.7 z_0 + sum_k L_ik z_k / 2 + 0.6 e_i),  L_ik ~ N(0, 1),
    log s_i ~ U(log 0.3, log 3)
so pairwise cosines spread over -0.5 .. 0.9 (C >= 8: 14-25 % of the pairs conflict), row norms
differ by up to 15x and the Gramian has full rank with a dominant rank-5 part: the QPs have
active constraints (seed 0: MGDA's support is 1 of 2, 4 of 8, 8 of 32, 16 of 128 rows; UPGrad's
row QPs take 19, 91, 481 active-set iterations in all at C = 8, 32, 128). Losses are
U(0.5, 2) (read by Tchebycheff, DWA, EPO, PAMOO).

Solvers and arguments (madam.solvers.SOLVERS in registry order; torchjd 0.18's counterpart):

  linear       LinearScalarization(uniform preference)        torchjd Mean()
  tchebycheff  Tchebycheff(uniform preference)                -
  rlw          RLW(distribution="softmax-normal")             torchjd Random() (softmax of
                                                              normals, as this RLW)
  dwa          DWA()                                          -
  mgda         MGDA() (Frank-Wolfe + active-set polish)       torchjd MGDA() (defaults: Frank-
  mgda/as      MGDA(method="active-set")                      Wolfe stopped at a step below
                                                              1e-3, at most 100 iterations)
  pcgrad       PCGrad(seed=0)                                 torchjd PCGrad()
  cagrad       CAGrad(c=0.5)                                  torchjd CAGrad(c=0.5) (cvxpy +
                                                              Clarabel)
  imtlg        IMTLG()                                        torchjd IMTLG()
  nashmtl      NashMTL()                                      torchjd NashMTL(n_tasks=C)
                                                              (cvxpy + ECOS, 20 CCP iterations)
  upgrad       UPGrad()                                       torchjd UPGrad() (quadprog on the
                                                              trace-normalised Gramian + 1e-4 I)
  epo          EPO(uniform preference)                        -
  camoo        skipped: its weights come from Hessian-vector products (an hvp callable and a point),
               which a Jacobian does not supply
  pamoo        PAMOO() (1000 projected-ascent steps)          -

torchjd is run with its defaults (its regularisation included), not tuned to madam's accuracy.
torchjd's DualProj, AlignedMTL, ConFIG, ... have no madam counterpart and are not timed.

KKT residuals (column "kkt madam" / "kkt torchjd"; G the float64 Gramian of the J given, divided
by max_i G_ii; 0 = optimal):

  mgda     the min-norm QP over the simplex, q = lam^T G lam:
           max(max_i max(0, q - (G lam)_i), max_i lam_i |(G lam)_i - q|)
           (dual feasibility and complementary slackness; stationarity on the support)
  upgrad   every row's QP min v^T G v s.t. v >= e_i: the natural residual
           max_j |min(v_j - e_ij, (G v)_j)| / max_j |v_j|, the largest over the rows i. madam's v_i
           are the weights of UPGrad(preference=e_i) on the Gramian solve() forms (their mean is
           checked to equal the uniform run's natural weights); torchjd's come from its projector
           called with U = I
  cagrad   CAGrad's inner problem min_{w in simplex} F(w) = w^T G u + c |g_0| |J^T w| (u = 1/C):
           the simplex KKT residual of grad F at w* (as for mgda); madam's w* is
           info["inner_weights"], torchjd's is recovered from its weights w = u + (r/|g_w*|) w*
  nashmtl  G alpha = 1/alpha up to alpha's scale (both clip the norm): p_i = alpha_i (G alpha)_i,
           max_i |p_i / mean(p) - 1|
  imtlg    equal projections d^T g_i / |g_i| (not a QP; the method's defining property):
           (max - min) / max |.| over i
  pamoo    the box QP max 2 w^T f - w^T A w, w >= w_min, A = G + damping I (true units):
           max_j |min(w_j - w_min, (A w - f)_j / max A_jj)| / max_j w_j
  others   no optimisation problem ("-"; EPO solves LPs, reported by its mode)

ratio = torchjd ms / madam ms (> 1: madam faster). Threads: the libraries' defaults, or one
count for madam, torch and NumPy's BLAS with --threads N (--threads 1 keeps the comparison stable
on a machine another job is using).
On a 2-core machine the thread pools in one process (madam's OpenMP, NumPy's OpenBLAS, torch's
OpenMP) can wait on each other: a solve that alternates madam's OpenMP passes with NumPy BLAS
calls then loses whole scheduler ticks (times stuck at multiples of ~8 ms). Running with
OMP_WAIT_POLICY=passive in the environment shows how much of a cell that is.

    python benchmarks/bench_solvers.py [--objectives 2,8,32,128] [--n 1e5] [--repeats 5]
                                       [--dtypes float32,float64] [--solvers mgda,upgrad]
                                       [--max-cell-time 3] [--threads N] [--json PATH]
"""
import argparse
import importlib.metadata
import json
import math
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_optim import (CpuMeter, cpu_model, fmt_n, interference_note, loadavg,  # noqa: E402
                         nproc)

import madam  # noqa: E402
from madam import solvers  # noqa: E402
from madam.solvers import _gramian  # noqa: E402  (the Gramian solve() forms, for weights())

try:
    import torch
    import torchjd
    from torchjd import aggregation as tja
except ImportError:  # pragma: no cover - depends on the environment
    torch = tja = torchjd = None


# ------------------------------------------------------------------------------ data
def make_jacobian(n_obj, n, seed=0):
    """(C, n) float64 rows: shared + latent + noise directions, row scales 0.3 .. 3."""
    rng = np.random.default_rng([seed, n_obj, n])
    scale = 1.0 / math.sqrt(n)
    shared = rng.standard_normal(n) * scale
    latent = rng.standard_normal((4, n)) * scale
    load = rng.standard_normal((n_obj, 4))
    jac = rng.standard_normal((n_obj, n)) * (0.6 * scale)
    jac += 0.7 * shared
    jac += 0.5 * (load @ latent)
    jac *= np.exp(rng.uniform(math.log(0.3), math.log(3.0), n_obj))[:, None]
    losses = rng.uniform(0.5, 2.0, n_obj)
    return jac, losses


def exact_gramian(jac):
    """J J^T in float64 from the values of J (a float32 J's products are exact in float64)."""
    j64 = jac.astype(np.float64, copy=False)
    return j64 @ j64.T


# ------------------------------------------------------------------------------ residuals
def simplex_kkt(grad, w):
    """KKT residual of min f over the simplex at w, given grad f(w): dual feasibility
    max(0, q - grad_i) and complementary slackness w_i |grad_i - q|, q = w . grad."""
    q = float(w @ grad)
    return max(float(np.max(np.maximum(0.0, q - grad))), float(np.max(w * np.abs(grad - q))))


def kkt_mgda(gn, lam):
    return simplex_kkt(gn @ lam, lam)


def kkt_upgrad(gn, rows):
    """rows[i] = v_i solving min v^T G v, v >= e_i: max over i of the natural residual."""
    worst = 0.0
    for i, v in enumerate(rows):
        lower = np.zeros_like(v)
        lower[i] = 1.0
        res = np.minimum(v - lower, gn @ v)
        worst = max(worst, float(np.max(np.abs(res))) / max(float(np.max(np.abs(v))), 1e-300))
    return worst


def kkt_cagrad(gn, wstar, c):
    k = gn.shape[0]
    u = np.full(k, 1.0 / k)
    r = c * math.sqrt(max(float(u @ gn @ u), 0.0))
    gw = math.sqrt(max(float(wstar @ gn @ wstar), 0.0))
    if gw <= 0.0:
        return float("nan")
    grad = gn @ u + (r / gw) * (gn @ wstar)
    return simplex_kkt(grad, wstar)


def kkt_nash(g, alpha):
    p = alpha * (g @ alpha)
    return float(np.max(np.abs(p / np.mean(p) - 1.0)))


def kkt_imtlg(g, lam):
    proj = (g @ lam) / np.sqrt(np.diag(g))
    return float((proj.max() - proj.min()) / np.max(np.abs(proj)))


def kkt_pamoo(g, f, w, damping, w_min):
    a = g + damping * np.eye(g.shape[0])
    res = np.minimum(w - w_min, (a @ w - f) / float(np.max(np.diag(a))))
    return float(np.max(np.abs(res))) / max(float(np.max(w)), 1e-300)


# ------------------------------------------------------------------------------ contenders
class Case:
    """One solver: how to build madam's and torchjd's, and how to measure their accuracy."""

    def __init__(self, label, make, peer=None, kkt=None, peer_kkt=None, note=""):
        self.label, self.make, self.peer = label, make, peer
        self.kkt, self.peer_kkt, self.note = kkt, peer_kkt, note


def uniform(k):
    return np.full(k, 1.0 / k)


def madam_upgrad_rows(jac, k):
    """v_i of every row QP, as madam solves them: UPGrad(preference=e_i) on solve()'s Gramian."""
    gram = _gramian(jac)
    rows = []
    for i in range(k):
        pref = np.zeros(k)
        pref[i] = 1.0
        s = solvers.UPGrad(preference=pref)
        s.weights(gram, dtype=jac.dtype)
        rows.append(np.asarray(s.info["weights"], dtype=np.float64))
    return np.array(rows)


def acc_mgda(solver, jac, losses, gn, g):
    lam, _ = solver.solve(jac, losses)
    return kkt_mgda(gn, lam)


def acc_upgrad(solver, jac, losses, gn, g):
    solver.solve(jac, losses)
    w = np.asarray(solver.info["weights"])
    rows = madam_upgrad_rows(jac, jac.shape[0])
    mismatch = float(np.max(np.abs(rows.mean(axis=0) - w)) / np.max(np.abs(w)))
    if mismatch > 1e-10:
        warnings.warn(f"UPGrad rows do not average to the uniform run's weights ({mismatch:.1e})")
    return kkt_upgrad(gn, rows)


def acc_cagrad(solver, jac, losses, gn, g):
    solver.solve(jac, losses)
    inner = solver.info.get("inner_weights")
    return float("nan") if inner is None else kkt_cagrad(gn, np.asarray(inner), solver.c)


def acc_nash(solver, jac, losses, gn, g):
    solver.solve(jac, losses)
    alpha = solver.info.get("alpha")
    return float("nan") if alpha is None else kkt_nash(g, np.asarray(alpha))


def acc_imtlg(solver, jac, losses, gn, g):
    lam, _ = solver.solve(jac, losses)
    return kkt_imtlg(g, lam)


def acc_pamoo(solver, jac, losses, gn, g):
    solver.solve(jac, losses)
    return kkt_pamoo(g, losses, np.asarray(solver.info["w"]), solver.damping, solver.w_min)


def torch_weights(agg, tj):
    with torch.no_grad():
        return agg.weighting(tj).double().numpy()


def peer_mgda(agg, tj, gn, g):
    return kkt_mgda(gn, torch_weights(agg, tj))


def peer_upgrad(agg, tj, gn, g):
    with torch.no_grad():
        gram = (tj @ tj.T).double()
        rows = agg.gramian_weighting.projector(torch.eye(gram.shape[0], dtype=gram.dtype), gram)
    return kkt_upgrad(gn, rows.numpy())


def peer_cagrad(agg, tj, gn, g):
    w = torch_weights(agg, tj)
    extra = w - 1.0 / w.size
    if not extra.sum() > 0.0:
        return float("nan")
    return kkt_cagrad(gn, extra / extra.sum(), agg.gramian_weighting.c)


def peer_nash(agg, tj, gn, g):
    cold_nash(agg)
    return kkt_nash(g, torch_weights(agg, tj))


def peer_imtlg(agg, tj, gn, g):
    return kkt_imtlg(g, torch_weights(agg, tj))


def cold_nash(agg):
    """torchjd's Nash-MTL from its initial alpha = 1, keeping its built cvxpy problem."""
    wt = agg.weighting
    wt.prvs_alpha = np.ones(wt.n_tasks, dtype=np.float32)


def cases(k):
    pref = uniform(k)
    have = tja is not None
    return {
        "linear": Case("linear", lambda: solvers.LinearScalarization(pref),
                       (lambda: tja.Mean()) if have else None, note="torchjd Mean"),
        "tchebycheff": Case("tchebycheff", lambda: solvers.Tchebycheff(pref)),
        "rlw": Case("rlw", lambda: solvers.RLW(distribution="softmax-normal"),
                    (lambda: tja.Random()) if have else None, note="torchjd Random"),
        "dwa": Case("dwa", lambda: solvers.DWA()),
        "mgda": Case("mgda", lambda: solvers.MGDA(), (lambda: tja.MGDA()) if have else None,
                     acc_mgda, peer_mgda, "Frank-Wolfe + polish"),
        "mgda/as": Case("mgda/as", lambda: solvers.MGDA(method="active-set"),
                        (lambda: tja.MGDA()) if have else None, acc_mgda, peer_mgda,
                        "active-set"),
        "pcgrad": Case("pcgrad", lambda: solvers.PCGrad(seed=0),
                       (lambda: tja.PCGrad()) if have else None),
        "cagrad": Case("cagrad", lambda: solvers.CAGrad(c=0.5),
                       (lambda: tja.CAGrad(c=0.5)) if have else None, acc_cagrad, peer_cagrad),
        "imtlg": Case("imtlg", lambda: solvers.IMTLG(), (lambda: tja.IMTLG()) if have else None,
                      acc_imtlg, peer_imtlg, "equal-projection residual"),
        "nashmtl": Case("nashmtl", lambda: solvers.NashMTL(),
                        (lambda: tja.NashMTL(n_tasks=k)) if have else None, acc_nash, peer_nash),
        "upgrad": Case("upgrad", lambda: solvers.UPGrad(),
                       (lambda: tja.UPGrad()) if have else None, acc_upgrad, peer_upgrad),
        "epo": Case("epo", lambda: solvers.EPO(pref), note="LP"),
        "pamoo": Case("pamoo", lambda: solvers.PAMOO(), kkt=acc_pamoo),
    }


def ordered_labels():
    """Registry order, with MGDA's active-set variant after MGDA; CAMOO is reported as skipped."""
    out = []
    for name in solvers.SOLVERS:
        out.append(name)
        if name == "mgda":
            out.append("mgda/as")
    return out


# ------------------------------------------------------------------------------ timing
def time_calls(call, before, repeats, max_cell_time):
    """Median of up to `repeats` timed calls (before() untimed before each), after one untimed
    warm-up; stops early once max_cell_time seconds of calls have run (at least one)."""
    before()
    call()
    times = []
    spent = 0.0
    for _ in range(repeats):
        before()
        t0 = time.perf_counter()
        call()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
        if spent >= max_cell_time:
            break
    return statistics.median(times), len(times)


def run_case(case, k, jac, losses, gn, g, args):
    row = {"solver": case.label, "C": k, "dtype": jac.dtype.name, "note": case.note}
    solver = case.make()
    row["madam_s"], row["madam_reps"] = time_calls(lambda: solver.solve(jac, losses),
                                                   solver.reset, args.repeats, args.max_cell_time)
    if case.kkt is not None:
        solver.reset()
        row["kkt_madam"] = case.kkt(solver, jac, losses, gn, g)
    if case.label == "epo":
        solver.reset()
        solver.solve(jac, losses)
        row["note"] = f"LP, mode {solver.info.get('mode')}"
    if case.peer is not None and torch is not None:
        tj = torch.from_numpy(jac)
        try:
            agg = case.peer()
        except ImportError as exc:          # a missing optional solver of torchjd
            row["torchjd_error"] = str(exc).splitlines()[0]
            return row
        before = (lambda: cold_nash(agg)) if case.label == "nashmtl" else (lambda: None)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row["torchjd_s"], row["torchjd_reps"] = time_calls(lambda: agg(tj), before,
                                                               args.repeats, args.max_cell_time)
            if case.peer_kkt is not None:
                try:
                    row["kkt_torchjd"] = case.peer_kkt(agg, tj, gn, g)
                except Exception as exc:  # noqa: BLE001 - e.g. quadprog refusing a QP
                    row["kkt_torchjd_error"] = f"{type(exc).__name__}: {exc}"
    return row


def set_threads(count):
    """One thread count for madam's loops (and its OpenBLAS), torch, and NumPy's BLAS."""
    madam.set_num_threads(count)
    if torch is not None:
        torch.set_num_threads(count)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        return
    threadpool_limits(limits=count, user_api="blas")   # kept for the rest of the process


# ------------------------------------------------------------------------------ output
def fmt_ms(seconds):
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def fmt_res(value):
    if value is None:
        return "-"
    return "nan" if not math.isfinite(value) else f"{value:.1e}"


HEAD = (f"{'solver':<12}{'C':>4} {'dtype':<8}{'madam ms':>10}{'torchjd ms':>12}{'ratio':>8}"
        f"{'kkt madam':>11}{'kkt torchjd':>13}{'reps':>7}  note")


def print_row(row):
    ratio = (f"{row['torchjd_s'] / row['madam_s']:.2f}" if row.get("torchjd_s") else "-")
    reps = f"{row['madam_reps']}/{row.get('torchjd_reps', '-')}"
    note = row.get("note", "")
    if row.get("torchjd_error"):
        note = (note + "; " if note else "") + "torchjd: " + row["torchjd_error"]
    if row.get("kkt_torchjd_error"):
        note = (note + "; " if note else "") + "torchjd kkt: " + row["kkt_torchjd_error"][:60]
    print(f"{row['solver']:<12}{row['C']:>4} {row['dtype']:<8}{fmt_ms(row['madam_s']):>10}"
          f"{fmt_ms(row.get('torchjd_s')):>12}{ratio:>8}{fmt_res(row.get('kkt_madam')):>11}"
          f"{fmt_res(row.get('kkt_torchjd')):>13}{reps:>7}  {note}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objectives", default="2,8,32,128", help="C values (default 2,8,32,128)")
    ap.add_argument("--n", type=lambda s: int(float(s)), default=10**5,
                    help="parameters (columns of J; default 1e5)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per cell (median)")
    ap.add_argument("--max-cell-time", type=float, default=3.0,
                    help="stop a cell's timed calls after this many seconds (default 3)")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--solvers", default="", help="comma-separated labels (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads of madam, torch and NumPy's BLAS (0: their defaults)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    objectives = [int(v) for v in args.objectives.split(",")]
    dtypes = [np.dtype(v) for v in args.dtypes.split(",")]
    labels = ordered_labels()
    if args.solvers:
        wanted = args.solvers.split(",")
        unknown = sorted(set(wanted) - set(labels))
        if unknown:
            ap.error(f"unknown solvers {unknown}; known: {labels}")
        labels = [lab for lab in labels if lab in wanted]

    if args.threads:
        set_threads(args.threads)
    load0 = loadavg()
    print(f"madam solvers vs torchjd aggregators: solve(J, losses) / aggregator(J), "
          f"n = {fmt_n(args.n)}, seed {args.seed}")
    print(f"machine: {cpu_model()}, {nproc()} cores; load average at start "
          f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"versions: madam {madam.__version__}, numpy {np.__version__}, "
          + (f"torch {torch.__version__}, torchjd {importlib.metadata.version('torchjd')}; "
             f"threads: madam {madam.get_num_threads()}, torch {torch.get_num_threads()}"
             if torch is not None else "torchjd not installed"))
    print(f"median of up to {args.repeats} cold calls per cell (<= {args.max_cell_time} s); "
          f"ratio = torchjd / madam (> 1: madam faster); kkt: see the module docstring\n")
    print(HEAD)
    print("-" * len(HEAD))
    meter = CpuMeter()
    rows = []
    for k in objectives:
        jac64, losses = make_jacobian(k, args.n, args.seed)
        table = cases(k)
        for dtype in dtypes:
            jac = np.ascontiguousarray(jac64.astype(dtype))
            g = exact_gramian(jac)
            gn = g / float(np.max(np.diag(g)))
            for label in labels:
                if label == "camoo":
                    if dtype == dtypes[0]:
                        print(f"{'camoo':<12}{k:>4} {'-':<8}{'-':>10}{'-':>12}{'-':>8}"
                              f"{'-':>11}{'-':>13}{'-':>7}  skipped: needs Hessian-vector "
                              "products (an hvp callable and a point), not a Jacobian")
                    continue
                row = run_case(table[label], k, jac, losses, gn, g, args)
                rows.append(row)
                print_row(row)
        print("-" * len(HEAD))
    load1 = loadavg()
    print(f"load average at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(interference_note(meter)[0])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"provenance": madam.study.provenance(), "args": vars(args),
                       "load_start": load0, "load_end": load1,
                       "cpu": cpu_model(), "rows": rows}, f, indent=1)
        print(f"rows written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
