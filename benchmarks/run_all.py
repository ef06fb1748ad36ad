"""The key speed ratios of issue 16 in one process and one table.

Sections (--only picks some, by letter or name; all by default):

  a adam      madam.Adam step at n = 1e7 float32 (nonfinite="ignore": the kernel alone, and the
              default "raise": finite scan + kernel) vs torch.optim.Adam(fused=True), with the
              STREAM triad a = b + s*c (madam._core.triad) at the same n beside it. Bytes: Adam
              28 B/param, triad 12 B/element (STREAM's convention).
  b madam     madam.MAdam(solver=MGDA()).step(J) (the Gramian + NaN-scan pass over J, MGDA on the
              C x C Gramian, the fused kernel) vs torchjd: jac_to_grad(params, MGDA()) then
              torch.optim.Adam(fused=True).step(), at n = 1e6, 1e7 (--quick: 1e6) and C = 2, 4,
              8, float32 and float64 (--quick: float32), the same rows J (0.5 * shared + noise, as
              bench_torch_madam.py) on both sides. Its byte floor: torchjd moves at least
              (2C + 1 + 7) elements per parameter (J read for the Gramian, J read and g written
              for g = lambda^T J, fused Adam's 7), MAdam (2C + 2P + 6).
              The two-pass bound: bytes = C n e (one read of J for the Gramian and scan) +
              (C + 2P + 6) n e (the fused kernel: J, p m v read and written, the P = C(C+1)/2 F
              arrays read and written; docs/madam.md; e: the element size), moved at the
              bandwidth of a triad over as many bytes (capped at 1e8 elements, 1.2 GB: beyond
              that every stream is out of cache), so that the bound and the step are in the same
              cache regime; the triad is timed in the same interleaved rounds as the steps, as in
              sections c and d.
  c sampling  MAdam(solver=None, n_obj=8, pair_sampling=2).step(J, preference=lam, direction=d)
              vs madam.Adam's step, both nonfinite="ignore", at n = 1e6 and 1e7 (--quick: 1e7).
              Its byte floor: C_lam = sum_p w_p F_p with lambda new each step reads all P = 36
              F arrays, so a step moves (k + 1 + P + k(k+1)/2 + 6) = 48 elements per parameter
              against Adam's 7 (6.9x); the row below it compares with those bytes at a triad's
              bandwidth.
  d mada      madam.mada.MADA (all six coefficients learned, past hyper_start, derivatives=
              "recompute" and hyper_delay=True) vs madam.Adam, n = 1e7 float32, "ignore".
              Byte floors (bench_mada.py counts them): the exact rule needs the hypergradient, a
              sum over all elements, before the update pass can start, so two passes: 24
              elements per parameter (3.4x Adam's 7; the update alone moves 14); the delayed
              rule fuses both into one pass of 17 (2.4x). The delayed step's arithmetic alone:
              the same step on 2e5 elements (in L3) less the step on 1e3 (a call's fixed
              cost), scaled to 1e7, timed in the same rounds. Beside them, benchmarks/
              mada_delayed_model.c, compiled with the C compiler that built madam and run at
              the same n and threads: passes that move the delayed step's 17 elements (10
              arrays) with no arithmetic (its measured floor), with its square roots and
              divisions, packed into 5 arrays, 16 elements (v_{t-2} not read), and in blocks
              with and without software prefetch, each against an Adam kernel in the same
              process.
  e hv        madam.pareto.hypervolume vs moocore.hypervolume, 4-D and 5-D: unions of moocore's
              testsuite fronts (../shared/peerdata/moocore-testsuite, with the testsuite's
              reference points; the value is checked against the testsuite's expected one) and
              random linear (sum x = 1) and spherical (|x| = 1) fronts of 1000 and 10000 points
              (--quick: 1000), reference 1.1. madam with 1 thread (moocore is serial).
  f pu        madam.pu_solve on A (10 x 1e6, uniform 0..1) float32 and float64 vs the same PU
              iterations in NumPy (benchmarks/bench_amoo.py's numpy_pu), 10 iterations a call.

Every row: madam's time, the peer's time, ratio = madam / peer (< 1: madam faster), the target
of the issue as a bound on that ratio and PASS/MISS. Times are medians over --repeats interleaved
rounds (a round runs each contender enough times to fill --min-time / --repeats s; the HV and PU
rows one call per round). The machine (CPU, cores, load average before and after, the CPU time
other processes took) is printed with the table. Nothing is asserted.

    python benchmarks/run_all.py [--quick] [--only a,b,e] [--repeats 5] [--min-time 0.3]
                                 [--threads N] [--json PATH]
"""
import argparse
import gc
import json
import lzma
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_optim as bo  # noqa: E402  (timing loop, triad, machine helpers)
from bench_pareto import median_times as median_pair  # noqa: E402  (two callables, interleaved)
from bench_solvers import fmt_ms  # noqa: E402

import madam  # noqa: E402
from madam import solvers  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

SECTIONS = {"a": "adam", "b": "madam", "c": "sampling", "d": "mada", "e": "hv", "f": "pu"}
LR = 1e-3
TESTSUITE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                          "shared", "peerdata", "moocore-testsuite"))
TRIAD_CAP = 10**8


class Row:
    """One ratio. ``floor``: madam's bytes over the peer's bytes (each the least its algorithm
    must move), the smallest ratio possible when both move their bytes at the same bandwidth; a
    target below it is out of reach by the byte count (verdict FLOOR, not MISS).
    ``measured_floor``: the ratio of two passes that move the same arrays as madam's step and
    the peer's with no arithmetic beyond one add per array, timed in one process (section d's
    C model): a target below it is out of reach at the bandwidth this machine gives those
    streams (verdict FLOOR too)."""

    def __init__(self, section, what, madam_s, peer, peer_s, bound=None, gbps=None, x_triad=None,
                 note="", floor=None, measured_floor=None):
        self.section, self.what, self.madam_s, self.peer, self.peer_s = (section, what, madam_s,
                                                                        peer, peer_s)
        self.bound, self.gbps, self.x_triad, self.note = bound, gbps, x_triad, note
        self.floor, self.measured_floor = floor, measured_floor

    @property
    def ratio(self):
        return self.madam_s / self.peer_s if self.peer_s else None

    @property
    def verdict(self):
        if self.bound is None or self.ratio is None:
            return ""
        if self.ratio <= self.bound:
            return "PASS"
        floors = [f for f in (self.floor, self.measured_floor) if f is not None]
        return "FLOOR" if floors and max(floors) > self.bound else "MISS"

    def as_dict(self):
        return {"section": self.section, "what": self.what, "madam_s": self.madam_s,
                "peer": self.peer, "peer_s": self.peer_s, "ratio": self.ratio,
                "target_ratio_at_most": self.bound, "verdict": self.verdict, "gbps": self.gbps,
                "x_triad": self.x_triad, "byte_floor": self.floor,
                "measured_floor": self.measured_floor, "note": self.note}


def progress(text):
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def interleaved(steps, args):
    """{name: median seconds per call} over args.repeats interleaved rounds (bench_optim)."""
    contenders = [bo.Contender(name, step, None) for name, step in steps.items()]
    for c in contenders:
        c.step()
    bo.calibrate(contenders, args.repeats, args.min_time)
    res = bo.run_rounds(contenders, args.repeats)
    return {name: r["median_s"] for name, r in res.items()}


def timed_with_triad(steps, nbytes, args):
    """interleaved() of ``steps`` and of a triad over as many bytes (``nbytes`` / 12 float32
    elements, at least 1e5, at most TRIAD_CAP): the times, and the triad's GB/s. Timed in the
    same rounds as the steps, the bound reads the bandwidth of the same minutes: a triad timed
    once per size and reused for every row read from 29 to 48 GB/s between runs on this shared
    host, and every bound row's verdict followed it."""
    n_elem = int(min(max(nbytes / bo.BYTES_TRIAD, 10**5), TRIAD_CAP))
    triad, _arrays = bo.make_triad(n_elem, np.random.default_rng(n_elem))
    t = interleaved(dict(steps, triad=triad.step), args)
    return t, bo.gbps(bo.BYTES_TRIAD, n_elem, t["triad"])


# ------------------------------------------------------------------------------ (a) Adam
def section_adam(args):
    if torch is None:
        return [Row("a", "Adam step: torch not installed", None, "-", None)]
    n = 10**7
    progress("a: Adam vs torch fused Adam, n = 1e7")
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    triad, _arrays = bo.make_triad(n, rng)
    steps = {"triad": triad.step}
    for policy in ("ignore", "raise"):
        p = p0.copy()
        opt = madam.Adam(p, lr=bo.LR, betas=bo.BETAS, eps=bo.EPS, nonfinite=policy)
        steps[policy] = (lambda o=opt: o.step(g))
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    tp.grad = torch.from_numpy(g)
    fused = torch.optim.Adam([tp], lr=bo.LR, betas=bo.BETAS, eps=bo.EPS, fused=True)
    steps["fused"] = fused.step
    t = interleaved(steps, args)
    tri = bo.gbps(bo.BYTES_TRIAD, n, t["triad"])
    rows = [Row("a", "STREAM triad, n = 1e7 float32 (12 B/elem)", t["triad"], "-", None,
                gbps=tri, x_triad=1.0)]
    for policy, label in (("ignore", "kernel only"), ("raise", "scan + kernel")):
        bw = bo.gbps(bo.BYTES_ADAM, n, t[policy])
        # "raise" must scan g before the first write (no half-applied update): g is read
        # twice, 8 elements against torch fused's 7
        floor = (bo.BYTES_ADAM + 4) / bo.BYTES_ADAM if policy == "raise" else None
        rows.append(Row("a", f"Adam step n = 1e7 f32, {policy} ({label})", t[policy],
                        "torch fused Adam", t["fused"], bound=1.0, gbps=bw, x_triad=bw / tri,
                        floor=floor, note="target: faster than torch fused (bench_optim)"
                        + ("; the scan reads g once more" if floor else "")))
    return rows


# ------------------------------------------------------------------------------ (b) MAdam + MGDA
def madam_bytes(n_obj, n, size=4):
    pairs = n_obj * (n_obj + 1) // 2
    return (n_obj + (n_obj + 2 * pairs + 6)) * size * n


def torchjd_bytes(n_obj, n, size=4):
    """torchjd's jac_to_grad + fused Adam, at the least: J read for the Gramian, J read and g
    written for g = lambda^T J, then Adam (g, p m v read, p m v written: 7 arrays)."""
    return (2 * n_obj + 1 + 7) * size * n


def section_madam(args):
    if torch is None:
        return [Row("b", "MAdam vs torchjd: torch not installed", None, "-", None)]
    from bench_torch_madam import make_rows, torchjd_step
    from torchjd.aggregation import MGDA as TorchjdMGDA

    rows = []
    sizes = [10**6] if args.quick else [10**6, 10**7]
    dtypes = [np.float32] if args.quick else [np.float32, np.float64]
    for dtype, n, n_obj in ((d, n, c) for d in dtypes for n in sizes for c in (2, 4, 8)):
        name, size = ("f32", 4) if dtype == np.float32 else ("f64", 8)
        progress(f"b: MAdam+MGDA vs torchjd MGDA + fused Adam, C = {n_obj}, n = {bo.fmt_n(n)}"
                 f" {name}")
        jac_t = make_rows(n_obj, n)
        if dtype == np.float64:
            jac_t = jac_t.double()
        jac = jac_t.numpy()
        p = np.zeros(n, dtype=dtype)
        opt = madam.MAdam(p, solver=solvers.MGDA(), lr=LR)
        steps = {"madam": (lambda o=opt: o.step(jac)),
                 "torchjd": torchjd_step(jac_t, n, TorchjdMGDA())}
        nbytes, peer_bytes = madam_bytes(n_obj, n, size), torchjd_bytes(n_obj, n, size)
        t, tri = timed_with_triad(steps, nbytes, args)
        bw = nbytes / t["madam"] / 1e9
        what = f"MAdam+MGDA step C = {n_obj}, n = {bo.fmt_n(n)} {name}"
        rows.append(Row("b", what, t["madam"], "torchjd MGDA + fused Adam", t["torchjd"],
                        bound=1.0, gbps=bw, x_triad=bw / tri, floor=nbytes / peer_bytes,
                        note=f"bytes {nbytes / n:.0f} vs torchjd's {peer_bytes / n:.0f} "
                             f"B/param (the F EMAs)"))
        bound_s = nbytes / (tri * 1e9)
        rows.append(Row("b", f"  same, vs its two-pass bound ({nbytes / n:.0f} B/param)",
                        t["madam"], f"bytes at triad {tri:.0f} GB/s", bound_s, bound=1.5,
                        gbps=bw, x_triad=bw / tri))
        opt = steps = jac = jac_t = p = None   # freed before the next size
        gc.collect()
    return rows


# ------------------------------------------------------------------------------ (c) pair sampling
def section_sampling(args):
    rows = []
    n_obj, k = 8, 2
    for n in ([10**7] if args.quick else [10**6, 10**7]):
        progress(f"c: MAdam pair sampling (C = 8, k = 2) vs Adam, n = {bo.fmt_n(n)}")
        rng = np.random.default_rng(n_obj)
        jac = rng.standard_normal((n_obj, n), dtype=np.float32)
        lam = rng.dirichlet(np.ones(n_obj))
        d = (lam @ jac.astype(np.float64)).astype(np.float32)
        p1, p2 = (rng.standard_normal(n, dtype=np.float32) for _ in range(2))
        sampled = madam.MAdam(p1, solver=None, n_obj=n_obj, pair_sampling=k, lr=LR,
                              nonfinite="ignore")
        adam = madam.Adam(p2, lr=LR, nonfinite="ignore")
        steps = {"sampled": lambda: sampled.step(jac, preference=lam, direction=d),
                 "adam": lambda: adam.step(d)}
        pairs = n_obj * (n_obj + 1) // 2
        # every F_p written before the timing: the state starts as zeros that the OS maps
        # lazily, so a pair not sampled yet was read from the shared zero page (cheap) and its
        # first update faulted its pages in; at n = 1e7 the step timed 48-63 ms without this
        # warm-up and 89 ms with it
        for _ in range(4 * pairs):
            steps["sampled"]()
        nbytes = (k + 1 + pairs + k * (k + 1) // 2 + 6) * 4 * n
        t, tri = timed_with_triad(steps, nbytes, args)
        bw = nbytes / t["sampled"] / 1e9
        rows.append(Row("c", f"MAdam pair_sampling=2 C = 8, n = {bo.fmt_n(n)} f32", t["sampled"],
                        "madam Adam step", t["adam"], bound=1.5, gbps=bw, x_triad=bw / tri,
                        floor=nbytes / (bo.BYTES_ADAM * n),
                        note=f"bytes {nbytes / n:.0f} vs Adam's {bo.BYTES_ADAM} B/param "
                             f"(C_lam reads all {pairs} F)"))
        rows.append(Row("c", f"  same, vs its byte bound ({nbytes / n:.0f} B/param)",
                        t["sampled"], f"bytes at triad {tri:.0f} GB/s", nbytes / (tri * 1e9),
                        bound=1.5, gbps=bw, x_triad=bw / tri))
        sampled = adam = steps = jac = d = p1 = p2 = None
        gc.collect()
    return rows


# ------------------------------------------------------------------------------ (d) MADA
N_CACHE, N_TINY = 200_000, 1_000   # section d: the delayed step in cache, and its fixed cost
MODEL_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mada_delayed_model.c")
MODEL_FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-fno-math-errno",
               "-std=c11"]


def delayed_model(n, threads):
    """Compiles and runs mada_delayed_model.c (the C compiler that built madam is there):
    ({kernel: (ms, x its Adam)}, None), or ({}, the reason it could not run)."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")[:1] or ["cc"]
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "mada_delayed_model")
        try:
            subprocess.run(cc + MODEL_FLAGS + [MODEL_SRC, "-o", exe, "-lm"], check=True,
                           capture_output=True, text=True)
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            out = subprocess.run([exe, str(n)], check=True, capture_output=True, text=True,
                                 env=env).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            return {}, f"model not run ({type(exc).__name__})"
    found = re.findall(r"^(\S+)\s+([\d.]+) ms\s+x adam\s+([\d.]+)", out, re.M)
    return {name: (float(ms), float(x)) for name, ms, x in found}, None


def section_mada(args):
    from madam.mada import MADA

    n = 10**7
    progress("d: MADA vs Adam, n = 1e7")
    rng = np.random.default_rng(0)
    g = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    adam = madam.Adam(rng.standard_normal(n).astype(np.float32), lr=LR, nonfinite="ignore")
    default = MADA(rng.standard_normal(n).astype(np.float32), lr=LR, hyper_start=0,
                   nonfinite="ignore")
    delayed = MADA(rng.standard_normal(n).astype(np.float32), lr=LR, hyper_start=0,
                   hyper_delay=True, nonfinite="ignore")
    # the delayed step's arithmetic with DRAM out of the way: the same step on N_CACHE
    # elements (its 17 arrays, 13.6 MB, stay in the 32 MB L3) less the same step on N_TINY (the
    # Python cost of a call), scaled to n. The N_TINY step runs on one thread, so the fork and
    # join of the N_CACHE call stay in the difference, scaled with it: if anything, the row
    # overstates the arithmetic by that much.
    small = {m: MADA(rng.standard_normal(m).astype(np.float32), lr=LR, hyper_start=0,
                     hyper_delay=True, nonfinite="ignore") for m in (N_CACHE, N_TINY)}
    steps = {"adam": lambda: adam.step(g), "mada": lambda: default.step(g),
             "delayed": lambda: delayed.step(g),
             "cache": lambda: small[N_CACHE].step(g[:N_CACHE]),
             "tiny": lambda: small[N_TINY].step(g[:N_TINY])}
    for step in steps.values():   # past MADA's first (hypergradient-free) step
        step()
    t, tri = timed_with_triad(steps, bo.BYTES_TRIAD * n, args)
    adam = default = delayed = small = steps = g = None   # freed before the model runs
    gc.collect()
    progress("d: the delayed step's streams without arithmetic (mada_delayed_model.c)")
    model, model_error = delayed_model(n, madam.get_num_threads())
    streams = model.get("streams")
    rows = []
    for key, label, nbytes in (("mada", "MADA step (default: recompute)", 24),
                               ("delayed", "MADA step, hyper_delay=True", 17)):
        bw = nbytes * 4 * n / t[key] / 1e9
        measured = streams[1] if key == "delayed" and streams else None
        rows.append(Row("d", f"{label}, n = 1e7 f32", t[key], "madam Adam step", t["adam"],
                        bound=2.5, gbps=bw, x_triad=bw / tri, floor=nbytes * 4 / bo.BYTES_ADAM,
                        measured_floor=measured,
                        note=f"{nbytes} elements/param (bench_mada)"
                             + ("; measured floor: the model below" if measured else "")))
    arith = (t["cache"] - t["tiny"]) * n / (N_CACHE - N_TINY)
    rows.append(Row("d", "  its arithmetic: the step from cache, scaled to 1e7", arith,
                    "madam Adam step", t["adam"],
                    note=f"(t(n = {N_CACHE:.0e}) - t(n = {N_TINY:.0e})) x n / "
                         f"{N_CACHE - N_TINY:.0e}: no DRAM traffic"))
    if model_error:
        rows.append(Row("d", "  the delayed step's arrays, no arithmetic", None, model_error,
                        None))
        return rows
    labels = {"streams": "  model: its 17 elements, no arithmetic",
              "ops": "  model: same + its 2 sqrt, 5 divisions",
              "packed": "  model: 17 elements packed in 5 arrays",
              "streams16": "  model: 16 elements (v_{t-2} not read)",
              "blocked": "  model: 17 elements, blocks of 64",
              "prefetched": "  model: same, prefetched 512 ahead"}
    notes = {"streams": "mada_delayed_model.c, its own Adam kernel",
             "ops": "the mandated IEEE operations hide under the memory traffic",
             "packed": "(m vbar n mL), (v g) x 2 interleaved: a layout madam does not use",
             "streams16": "needs v_{t-2} from v_{t-1}: ambiguous for c < 1 (docs/mada.md)",
             "blocked": "an inner simd loop per block (the base of the next row)",
             "prefetched": "software prefetch of all 10 arrays, 2 KiB ahead"}
    for key, label in labels.items():
        if key in model:
            ms, x = model[key]
            rows.append(Row("d", f"{label}, n = 1e7 f32", ms / 1e3, "model Adam",
                            model["adam"][0] / 1e3, note=notes[key]))
    return rows


# ------------------------------------------------------------------------------ (e) hypervolume
def read_points(path):
    """Every point of a testsuite data file (all its sets: the union, as `-u`)."""
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt") as f:
        pts = [[float(v) for v in line.split()] for line in f
               if line.strip() and not line.lstrip().startswith("#")]
    return np.array(pts)


def testsuite_cases():
    """(label, points, ref, expected) for the 4-D and 5-D unions of moocore's testsuite."""
    data = os.path.join(TESTSUITE, "data")
    cases = [("DTLZLinear.4d union", "data/DTLZLinearShape.4d.front.1000pts.10.xz",
              "hv/DTLZLinearShape.4d.front.1000pts.10.exp", 10.0),
             ("DTLZSphere.4d union", "data/DTLZSphereShape.4d.front.1000pts.10.xz",
              "hv/DTLZSphereShape.4d.front.1000pts.10.exp", 2.0),
             ("ran.1000pts.4d union", "data/ran.1000pts.4d.10.xz",
              "hv/ran.1000pts.4d.10.exp", 10.0),
             ("DTLZLinear.5d union", "data/DTLZLinearShape.5d.front.500pts.10.xz",
              "hv5d/DTLZLinearShape.5d.front.500pts.10.exp", 10.0),
             ("DTLZSphere.5d union", "data/DTLZSphereShape.5d.front.500pts.10.xz",
              "hv5d/DTLZSphereShape.5d.front.500pts.10.exp", 2.0),
             ("ran.1000pts.5d union", "data/ran.1000pts.5d.10.xz",
              "hv/ran.1000pts.5d.10.exp", 10.0),
             ("00-slow5d", "hv/00-slow5d.inp.xz", "hv/00-slow5d.exp", 0.0)]
    if not os.path.isdir(data):
        return []
    out = []
    for label, inp, exp, ref in cases:
        pts = read_points(os.path.join(TESTSUITE, inp))
        with open(os.path.join(TESTSUITE, exp)) as f:
            values = [line.strip().rstrip(".") for line in f if line.strip()]
        # a union test's expected value is the last line (the per-set values come first)
        expected = float(values[-1])
        out.append((label, pts, np.full(pts.shape[1], ref), expected))
    return out


def random_front(kind, n, m, seed):
    """n points uniform on the linear front (sum x = 1, x >= 0) or on the spherical one
    (|x| = 1, x >= 0), in m objectives: mutually nondominated, the hard case."""
    rng = np.random.default_rng([seed, n, m])
    if kind == "linear":
        x = rng.exponential(size=(n, m)) + 1e-12
        return x / x.sum(axis=1, keepdims=True)
    x = np.abs(rng.standard_normal((n, m))) + 1e-12
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def section_hv(args):
    import moocore
    from madam import pareto

    threads = madam.get_num_threads()
    madam.set_num_threads(1)
    cases = []
    for label, pts, ref, expected in testsuite_cases():
        cases.append((f"{pts.shape[1]}-D {label}", pts, ref, expected))
    for m in (4, 5):
        for n in ([1000] if args.quick else [1000, 10000]):
            for kind in ("linear", "spherical"):
                cases.append((f"{m}-D random {kind} front", random_front(kind, n, m, 0),
                              np.full(m, 1.1), None))
    if not cases:
        return [Row("e", f"HV: no testsuite at {TESTSUITE}", None, "-", None)]
    rows = []
    try:
        for label, pts, ref, expected in cases:
            progress(f"e: hypervolume {label}, n = {len(pts)}")
            mine = pareto.hypervolume(pts, ref)
            theirs = moocore.hypervolume(pts, ref=ref)
            dev = abs(mine - theirs) / abs(theirs)
            note = f"rel. dev. vs moocore {dev:.0e}"
            if expected is not None:
                note += f", vs testsuite {abs(mine - expected) / abs(expected):.0e}"
            reps = args.hv_repeats
            tm, tp = median_pair(lambda: pareto.hypervolume(pts, ref),
                                 lambda: moocore.hypervolume(pts, ref=ref), reps)
            rows.append(Row("e", f"HV {label}, n = {len(pts)}", tm, "moocore " +
                            moocore.__version__, tp, bound=1.0, note=note))
    finally:
        madam.set_num_threads(threads)
    return rows


# ------------------------------------------------------------------------------ (f) PU
def section_pu(args):
    from bench_amoo import numpy_pu

    rows = []
    iters = 10
    base = np.random.default_rng(0).uniform(0.0, 1.0, (10, 10**6))
    for dtype, bound in ((np.float32, 1.0), (np.float64, None)):
        progress(f"f: PU game solver, A 10 x 1e6 {np.dtype(dtype).name}")
        a = base.astype(dtype)
        # a pause before each call: right after NumPy's BLAS calls its idle threads spin for a
        # while and took a core from madam's (interleaved back to back, madam's 56 ms became 82)
        tm, tn = median_pair(lambda: madam.pu_solve(a, iters=iters), lambda: numpy_pu(a, iters),
                             args.pu_repeats, pause=0.3)
        w_c = madam.pu_solve(a, iters=iters).w
        w_np, _ = numpy_pu(a, iters)
        dev = float(np.max(np.abs(np.asarray(w_c, np.float64) - w_np)))
        bw = 2 * a.nbytes * iters / tm / 1e9
        rows.append(Row("f", f"pu_solve A 10 x 1e6 {np.dtype(dtype).name}, {iters} iterations",
                        tm, "NumPy PU (bench_amoo)", tn, bound=bound, gbps=bw,
                        note=f"max|w - w_numpy| {dev:.0e}"
                        + ("" if bound else "; no target for float64")))
    return rows


# ------------------------------------------------------------------------------ output
def print_table(rows):
    head = (f"{'':2}{'what':<52}{'madam ms':>10}  {'peer':<27}{'peer ms':>9}{'ratio':>7}"
            f"{'target':>8}{'':>6}{'floor':>7}{'GB/s':>7}{'x triad':>8}  note")
    print(head)
    print("-" * len(head))
    section = None
    for r in rows:
        if section is not None and r.section != section:
            print()
        section = r.section
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        target = f"<= {r.bound:g}" if r.bound is not None else "-"
        gb = f"{r.gbps:.1f}" if r.gbps is not None else ""
        xt = f"{r.x_triad:.2f}" if r.x_triad is not None else ""
        floor = f"{r.floor:.2f}" if r.floor is not None else ""
        if r.measured_floor is not None and (r.floor is None or r.measured_floor > r.floor):
            floor = f"{r.measured_floor:.2f}m"
        print(f"{r.section:<2}{r.what:<52}{fmt_ms(r.madam_s):>10}  {r.peer:<27}"
              f"{fmt_ms(r.peer_s):>9}{ratio:>7}{target:>8}{r.verdict:>6}{floor:>7}{gb:>7}{xt:>8}"
              f"  {r.note}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="sections by letter or name, e.g. a,b or hv,pu")
    ap.add_argument("--quick", action="store_true",
                    help="fewer sizes and rounds (about a minute)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds (default 5; quick 3)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="timed seconds per contender over all rounds (default 0.5; quick 0.15)")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads of madam, torch and NumPy's BLAS (0: their defaults)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.min_time = args.min_time or (0.15 if args.quick else 0.5)
    args.hv_repeats = 3 if args.quick else 5
    args.pu_repeats = 3 if args.quick else 5
    names = {v: k for k, v in SECTIONS.items()}
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    letters = []
    for s in wanted:
        letter = s if s in SECTIONS else names.get(s)
        if letter is None:
            known = ", ".join(f"{k} ({v})" for k, v in SECTIONS.items())
            ap.error(f"unknown section {s!r}; known: {known}")
        letters.append(letter)
    if args.threads:
        from bench_solvers import set_threads
        set_threads(args.threads)

    load0 = bo.loadavg()
    start = time.perf_counter()
    meter = bo.CpuMeter()
    runners = {"a": section_adam, "b": section_madam, "c": section_sampling, "d": section_mada,
               "e": section_hv, "f": section_pu}
    rows = []
    for letter in sorted(letters):
        rows.extend(runners[letter](args))
        gc.collect()
    wall = time.perf_counter() - start
    load1 = bo.loadavg()
    note, interference = bo.interference_note(meter)

    print(f"issue 16: the key speed ratios in one run ({time.strftime('%Y-%m-%d %H:%M')}, "
          f"{wall:.0f} s{', --quick' if args.quick else ''})")
    print(f"machine: {bo.cpu_model()}, {bo.nproc()} cores, {bo.mem_total_gib():.0f} GiB; load "
          f"average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(f"         {note}")
    torch_text = (f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
                  if torch is not None else "no torch")
    print(f"versions: madam {madam.__version__} ({madam.get_num_threads()} threads, "
          f"{madam.config()['build']}), numpy {np.__version__}, {torch_text}")
    print(f"ratio = madam time / peer time (< 1: madam faster); target = the issue's bound on "
          f"the ratio; median of {args.repeats} interleaved rounds, >= {args.min_time} s per "
          f"contender (HV {args.hv_repeats}, PU {args.pu_repeats} calls); GB/s = bytes counted "
          f"/ madam's time; x triad = that over a triad moving as many bytes (a: the same n); "
          f"floor = madam's bytes / the peer's bytes, the least ratio at equal bandwidth "
          f"(FLOOR: a target below it, out of reach by the byte count; m: measured, the "
          f"same arrays moved with no arithmetic, section d)\n")
    print_table(rows)
    verdicts = [r.verdict for r in rows if r.verdict]
    print(f"\n{verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS, "
          f"{verdicts.count('FLOOR')} FLOOR")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"provenance": madam.study.provenance(), "args": vars(args),
                       "load_before": load0, "load_after": load1,
                       "interference": interference, "cpu": bo.cpu_model(), "wall_s": wall,
                       "rows": [r.as_dict() for r in rows]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
