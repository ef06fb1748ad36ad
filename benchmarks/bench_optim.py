"""Time one Adam / AdamW step (float32) of madam's C kernel against NumPy, torch.optim and a STREAM triad.

For each size n and each optimiser (Adam with weight_decay 0, AdamW with weight_decay 1e-2; lr 1e-3,
betas (0.9, 0.999), eps 1e-8) it times, in the same run and on the same data:

  madam C (ignore)   madam.Adam/AdamW(nonfinite="ignore"): the fused C kernel alone
  madam C (raise)    the default nonfinite="raise": the finite pre-scan of g, then the kernel
  numpy in-place     the same step as whole-array in-place ufuncs (out=, preallocated temporaries)
  numpy blocked      the same ufuncs applied block by block (64 Ki elements) so they run from cache
  torch foreach      torch.optim.Adam/AdamW(foreach=True) on CPU
  torch fused        torch.optim.Adam/AdamW(fused=True) on CPU

and, at the same n and in the same interleaved rounds, the STREAM triad a = b + s*c of
madam._core.triad (the bandwidth yardstick).

Bytes counted: an Adam/AdamW step must read p, g, m, v and write p, m, v: 7 x 4 = 28 bytes/param
(float32). The triad is counted the STREAM way, 12 bytes/element (read b, c, write a; the
write-allocate read of a is not counted). GB/s is 1e9 bytes/s. Every time is the median over
--repeats rounds; in each round every contender runs `number` back-to-back steps (number chosen so a
cell totals >= --min-time s), contenders interleaved round by round so drift hits all alike.
Before timing, every array is filled (first-touched) and every contender takes one untimed step;
the parameters after that first step are compared with madam's (column "dev").

It also times madam's kernel, its finite scan and the triad with 1 and 2 threads at n = 1e7, and
prints the targets of the issue (>= 0.8 x triad bandwidth for n >= 1e7; faster than torch fused;
>= 4x the NumPy version) as PASS/MISS. Nothing is asserted.

    python benchmarks/bench_optim.py [--sizes 1e5,1e6,1e7,1e8] [--repeats 5] [--min-time 0.3]
                                     [--thread-n 1e7] [--json results.json]
"""

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import madam
from madam import _core

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

BYTES_ADAM = 28   # read p, g, m, v + write p, m, v; 4 bytes each (float32)
BYTES_TRIAD = 12  # STREAM convention: read b, c + write a
BYTES_SCAN = 4    # the finite pre-scan reads g once
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
KINDS = {"Adam": {"weight_decay": 0.0, "decoupled": False},
         "AdamW": {"weight_decay": 1e-2, "decoupled": True}}
BLOCK = 1 << 16   # elements per block of the blocked NumPy version (6 arrays x 256 KiB < L2)

C_IGNORE, C_RAISE = "madam C (ignore)", "madam C (raise)"
NP_PLAIN, NP_BLOCKED = "numpy in-place", "numpy blocked"
T_FOREACH, T_FUSED = "torch foreach", "torch fused"


# ------------------------------------------------------------------------------ machine
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nproc():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count()


def mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def loadavg():
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover
        return (float("nan"),) * 3


class CpuMeter:
    """CPU time used by other processes (and stolen by the hypervisor) while a block ran.

    busy jiffies of the whole machine (/proc/stat) minus this process's own and its finished
    children's (/proc/self/stat; run_all compiles and runs a C model): anything left is other
    processes competing for the 2 cores, i.e. timing interference.
    """

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start = self._read()

    def _read(self):
        try:
            with open("/proc/stat") as f:
                cpu = [int(x) for x in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own = sum(int(x) for x in fields[11:15])   # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            return None
        busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6]   # user nice system irq softirq
        steal = cpu[7] if len(cpu) > 7 else 0
        return busy, own, steal, time.perf_counter()

    def report(self):
        """(other CPU-s, steal s, wall s) since construction, or None off Linux."""
        end = self._read()
        if end is None or self.start is None:
            return None
        (b0, o0, s0, t0), (b1, o1, s1, t1) = self.start, end
        return (max(0, (b1 - b0) - (o1 - o0)) / self.tick, (s1 - s0) / self.tick, t1 - t0)


def interference_note(meter):
    r = meter.report()
    if r is None:
        return "other processes: unknown (no /proc)", None
    other, steal, wall = r
    flag = "  <-- INTERFERENCE: timings above are suspect" if other > 0.05 * wall or steal > 0.05 * wall else ""
    return (f"other processes used {other:.2f} CPU-s during these {wall:.1f} s "
            f"({100 * other / wall:.0f}% of one core), steal {steal:.2f} s{flag}",
            {"other_cpu_s": other, "steal_s": steal, "wall_s": wall})


def machine_info():
    cfg = madam.config()
    info = {
        "nproc": nproc(), "cpu": cpu_model(), "mem_total_gib": round(mem_total_gib(), 1),
        "python": platform.python_version(), "numpy": np.__version__,
        "madam": madam.__version__, "madam_build": cfg["build"],
        "madam_threads": madam.get_num_threads(),
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "loadavg_start": loadavg(),
    }
    return info


# ------------------------------------------------------------------------------ contenders
class NumpyAdam:
    """One Adam/AdamW step with in-place NumPy ufuncs, no allocation per step.

    p' = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps) is evaluated as
    p - c * m / (sqrt(v) + eps*sqrt(bc2)) with c = lr*sqrt(bc2)/bc1 (one pass fewer; equal up to
    rounding). 12 passes over memory per step (13 for AdamW, 14 for Adam with L2 decay).
    With block=None each ufunc runs over the whole array; with block=k over k elements at a
    time, so the passes of one block hit cache (same ufuncs, more calls).
    """

    def __init__(self, p, weight_decay, decoupled, block=None):
        self.p = p
        self.m = np.empty_like(p)
        self.v = np.empty_like(p)
        self.m.fill(0.0)
        self.v.fill(0.0)
        self.wd, self.decoupled, self.t = weight_decay, decoupled, 0
        n = p.size
        self.block = n if block is None else min(block, n)
        self.t1 = np.empty(self.block, dtype=p.dtype)
        self.t2 = np.empty(self.block, dtype=p.dtype)
        self.t1.fill(0.0)
        self.t2.fill(0.0)
        self.spans = [(s, min(s + self.block, n)) for s in range(0, n, self.block)]

    def step(self, g):
        self.t += 1
        b1, b2 = BETAS
        bc1, bc2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        sbc2 = math.sqrt(bc2)
        k = (1.0 - b1, 1.0 - b2, EPS * sbc2, LR * sbc2 / bc1, 1.0 - LR * self.wd)
        ps, ms, vs = self.p.reshape(-1), self.m.reshape(-1), self.v.reshape(-1)
        gs = g.reshape(-1)
        if len(self.spans) == 1:
            self._block(ps, gs, ms, vs, self.t1, self.t2, k)
        else:
            t1, t2 = self.t1, self.t2
            for s, e in self.spans:
                w = e - s
                self._block(ps[s:e], gs[s:e], ms[s:e], vs[s:e], t1[:w], t2[:w], k)

    def _block(self, p, g, m, v, t1, t2, k):
        omb1, omb2, eps_s, c, decay = k
        b1, b2 = BETAS
        mul, add = np.multiply, np.add
        if self.wd != 0.0:
            if self.decoupled:
                mul(p, decay, out=p)
            else:
                mul(p, self.wd, out=t2)
                add(g, t2, out=t2)
                g = t2
        mul(m, b1, out=m)                 # m = b1*m + (1-b1)*g
        mul(g, omb1, out=t1)
        add(m, t1, out=m)
        mul(g, g, out=t1)                 # v = b2*v + (1-b2)*g*g
        mul(t1, omb2, out=t1)
        mul(v, b2, out=v)
        add(v, t1, out=v)
        np.sqrt(v, out=t1)                # p = p - c*m/(sqrt(v) + eps*sqrt(bc2))
        add(t1, eps_s, out=t1)
        np.divide(m, t1, out=t1)
        mul(t1, c, out=t1)
        np.subtract(p, t1, out=p)


class Contender:
    def __init__(self, name, step, params_view):
        self.name = name
        self.step = step                # callable: one optimiser step
        self.params_view = params_view  # callable: the parameters as a NumPy array
        self.number = 1
        self.times = []


def make_contenders(kind, p0, g):
    """All contenders for one optimiser kind, each with its own copy of p0 (g is shared, read-only)."""
    hp = KINDS[kind]
    wd = hp["weight_decay"]
    cls = getattr(madam, kind)
    out, notes = [], []
    for name, policy in ((C_IGNORE, "ignore"), (C_RAISE, "raise")):
        p = p0.copy()
        opt = cls(p, lr=LR, betas=BETAS, eps=EPS, weight_decay=wd, nonfinite=policy)
        out.append(Contender(name, (lambda o=opt: o.step(g)), (lambda p=p: p)))
    for name, block in ((NP_PLAIN, None), (NP_BLOCKED, BLOCK)):
        p = p0.copy()
        opt = NumpyAdam(p, wd, hp["decoupled"], block=block)
        out.append(Contender(name, (lambda o=opt: o.step(g)), (lambda p=p: p)))
    if torch is not None:
        tcls = getattr(torch.optim, kind)
        tg = torch.from_numpy(g)
        for name, flag in ((T_FOREACH, "foreach"), (T_FUSED, "fused")):
            try:
                tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
                tp.grad = tg
                opt = tcls([tp], lr=LR, betas=BETAS, eps=EPS, weight_decay=wd, **{flag: True})
            except Exception as exc:  # noqa: BLE001 - e.g. fused unsupported on this build
                notes.append(f"{name} skipped: {type(exc).__name__}: {exc}")
                continue
            out.append(Contender(name, opt.step, (lambda tp=tp: tp.detach().numpy())))
    return out, notes


def make_triad(n, rng):
    a = np.empty(n, dtype=np.float32)
    a.fill(0.0)
    b = rng.standard_normal(n, dtype=np.float32)
    c = rng.standard_normal(n, dtype=np.float32)
    return Contender("triad", (lambda: _core.triad(a, b, c, 3.0)), (lambda: a)), (a, b, c)


# ------------------------------------------------------------------------------ timing
def calibrate(contenders, repeats, min_time):
    """One untimed call each (after the warm-up step), then steps per round so a cell >= min_time."""
    per_round = min_time / repeats
    for c in contenders:
        t0 = time.perf_counter()
        c.step()
        dt = time.perf_counter() - t0
        c.number = max(1, math.ceil(per_round / max(dt, 1e-9)))


def run_rounds(contenders, repeats):
    for c in contenders:
        c.times = []
    for _ in range(repeats):
        for c in contenders:
            step, number = c.step, c.number
            t0 = time.perf_counter()
            for _ in range(number):
                step()
            c.times.append((time.perf_counter() - t0) / number)
    return {c.name: summarise(c) for c in contenders}


def summarise(c):
    med = statistics.median(c.times)
    return {"median_s": med, "min_s": min(c.times), "max_s": max(c.times),
            "spread": (max(c.times) - min(c.times)) / med, "number": c.number,
            "repeats": len(c.times)}


def time_alone(contender, repeats, min_time, warm=True):
    if warm:
        contender.step()
    calibrate([contender], repeats, min_time)
    return run_rounds([contender], repeats)[contender.name]


# ------------------------------------------------------------------------------ formatting
def fmt_n(n):
    e = int(round(math.log10(n)))
    return f"1e{e}" if 10 ** e == n else str(n)


def gbps(nbytes_per, n, seconds):
    return nbytes_per * n / seconds / 1e9


def print_header(info, args):
    print("madam optimiser-step benchmark (float32)")
    print(f"  machine : {info['nproc']} cores, {info['cpu']}, {info['mem_total_gib']} GiB RAM; "
          f"load avg at start {info['loadavg_start'][0]:.2f}")
    print(f"  python {info['python']}, numpy {info['numpy']}, torch {info['torch'] or 'not installed'}, "
          f"madam {info['madam']} (C core built: {info['madam_build']})")
    print(f"  threads : madam.get_num_threads() = {info['madam_threads']}, "
          f"torch.get_num_threads() = {info['torch_threads']}")
    print(f"  bytes   : Adam/AdamW step = {BYTES_ADAM} B/param (read p,g,m,v + write p,m,v, float32); "
          f"triad = {BYTES_TRIAD} B/elem (STREAM way: read b,c + write a); GB = 1e9 B")
    print("            the triad's store also reads a (write-allocate), so it really moves 16 B/elem, "
          "while the step's 3 stores go to lines it has just read: x triad > 1 is possible")
    print(f"  timing  : median of {args.repeats} interleaved rounds (time.perf_counter), "
          f"each cell >= {args.min_time} s; first-touched + 1 untimed step per contender")
    print(f"  hyper   : lr {LR}, betas {BETAS}, eps {EPS}; Adam weight_decay 0 (L2), "
          f"AdamW weight_decay 1e-2 (decoupled)")
    print("  columns : x triad = step GB/s / triad GB/s at that n; vs C-ign / vs C-rai = this "
          "contender's time / madam C's time (the C kernel's speedup over it);")
    print("            dev = max|p - p_madam| / max|p_madam| after the first step; spread = "
          "(max - min) / median over rounds")
    if torch is None:
        print("  NOTE: torch is not installed: the torch.optim contenders are skipped")
    print()


ROW_HEAD = (f"{'opt':5s} {'n':>5s} {'contender':18s} {'ms/step':>10s} {'ns/param':>9s} "
            f"{'GB/s':>7s} {'x triad':>7s} {'vs C-ign':>8s} {'vs C-rai':>8s} {'dev':>8s} "
            f"{'spread':>6s} {'steps':>6s}")


def print_row(kind, n, name, r, triad_bw, t_ign, t_rai, nbytes=BYTES_ADAM, dev=None):
    med = r["median_s"]
    bw = gbps(nbytes, n, med)
    ratio = bw / triad_bw if triad_bw else float("nan")
    v_ign = f"{med / t_ign:8.2f}" if t_ign else f"{'':8s}"
    v_rai = f"{med / t_rai:8.2f}" if t_rai else f"{'':8s}"
    d = f"{dev:8.1e}" if dev is not None else f"{'':8s}"
    print(f"{kind:5s} {fmt_n(n):>5s} {name:18s} {med * 1e3:10.3f} {med / n * 1e9:9.3f} "
          f"{bw:7.2f} {ratio:7.3f} {v_ign} {v_rai} {d} {r['spread'] * 100:5.1f}% "
          f"{r['number'] * r['repeats']:6d}", flush=True)


# ------------------------------------------------------------------------------ main parts
def bench_size(n, args, rng, results):
    meter = CpuMeter()
    p0 = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    triad, triad_arrays = make_triad(n, rng)
    triad.step()   # warm
    for kind in KINDS:
        contenders, notes = make_contenders(kind, p0, g)
        for note in notes:
            print(f"  NOTE: {kind} n={fmt_n(n)}: {note}")
        for c in contenders:   # warm-up: step 1 (also creates torch's state)
            c.step()
        ref = contenders[0].params_view()
        scale = float(np.max(np.abs(ref)))
        devs = {c.name: float(np.max(np.abs(c.params_view() - ref))) / scale for c in contenders}
        # the triad runs in the same interleaved rounds, so drift in bandwidth hits it alike
        everyone = [triad] + contenders
        calibrate(everyone, args.repeats, args.min_time)
        res = run_rounds(everyone, args.repeats)
        tr = res[triad.name]
        triad_bw = gbps(BYTES_TRIAD, n, tr["median_s"])
        print_row(kind, n, "triad (12 B)", tr, triad_bw, None, None, nbytes=BYTES_TRIAD)
        results["triad"].append({"opt": kind, "n": n, **tr, "gbps": triad_bw})
        t_ign, t_rai = res[C_IGNORE]["median_s"], res[C_RAISE]["median_s"]
        for c in contenders:
            r = res[c.name]
            print_row(kind, n, c.name, r, triad_bw, t_ign, t_rai, dev=devs[c.name])
            results["steps"].append({
                "opt": kind, "n": n, "contender": c.name, **r,
                "ns_per_param": r["median_s"] / n * 1e9,
                "gbps": gbps(BYTES_ADAM, n, r["median_s"]),
                "ratio_to_triad": gbps(BYTES_ADAM, n, r["median_s"]) / triad_bw,
                "time_over_c_ignore": r["median_s"] / t_ign,
                "time_over_c_raise": r["median_s"] / t_rai,
                "first_step_rel_dev": devs[c.name]})
        del contenders, everyone, ref
        gc.collect()
    del p0, g, triad, triad_arrays
    gc.collect()
    note, data = interference_note(meter)
    print(f"  [{fmt_n(n)}: {note}]")
    results["interference"].append({"block": f"n={n}", **(data or {})})
    print(flush=True)


def bench_threads(n, args, rng, results):
    """madam's Adam kernel (ignore), its finite scan and the triad at 1 and 2 threads, with
    NumPy's single-threaded a = b + c (12 B/elem) as a reference for what one core can stream."""
    meter = CpuMeter()
    saved = madam.get_num_threads()
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    opt = madam.Adam(p, lr=LR, betas=BETAS, eps=EPS, nonfinite="ignore")
    triad, triad_arrays = make_triad(n, rng)
    items = [("Adam C (ignore)", BYTES_ADAM, Contender("adam", lambda: opt.step(g), None)),
             ("finite scan of g", BYTES_SCAN, Contender("scan", lambda: _core.all_finite(g), None)),
             ("triad", BYTES_TRIAD, triad),
             ("numpy add (1T ref)", BYTES_TRIAD,
              Contender("npadd", lambda: np.add(triad_arrays[1], triad_arrays[2], out=triad_arrays[0]),
                        None))]
    print(f"threads: madam.set_num_threads(1) vs (2) at n = {fmt_n(n)} "
          f"(scan: {BYTES_SCAN} B/elem, Adam {BYTES_ADAM} B/param, triad {BYTES_TRIAD} B/elem)")
    print(f"{'kernel':18s} {'threads':>7s} {'ms':>9s} {'ns/elem':>8s} {'GB/s':>7s} "
          f"{'x triad':>7s} {'2T/1T':>6s} {'spread':>6s}")
    rows = {}
    try:
        for nt in (1, 2):
            madam.set_num_threads(nt)
            for _, _, c in items:
                c.step()  # warm
            calibrate([c for _, _, c in items], args.repeats, args.min_time)
            rows[nt] = run_rounds([c for _, _, c in items], args.repeats)
    finally:
        madam.set_num_threads(saved)
    for label, nbytes, c in items:
        for nt in (1, 2):
            r = rows[nt][c.name]
            bw = gbps(nbytes, n, r["median_s"])
            tbw = gbps(BYTES_TRIAD, n, rows[nt]["triad"]["median_s"])
            speed = rows[1][c.name]["median_s"] / rows[2][c.name]["median_s"]
            print(f"{label:18s} {nt:7d} {r['median_s'] * 1e3:9.3f} {r['median_s'] / n * 1e9:8.3f} "
                  f"{bw:7.2f} {bw / tbw:7.3f} {speed if nt == 2 else float('nan'):6.2f} "
                  f"{r['spread'] * 100:5.1f}%")
            results["threads"].append({"kernel": label, "threads": nt, "n": n, **r, "gbps": bw,
                                       "ratio_to_triad": bw / tbw})
    del opt, p, g, triad, triad_arrays, items
    gc.collect()
    note, data = interference_note(meter)
    print(f"  [threads: {note}]")
    results["interference"].append({"block": "threads", **(data or {})})
    print()


def targets(results):
    """The issue's targets as (description, value, pass) rows."""
    rows = []
    triad = {(r["opt"], r["n"]): r["gbps"] for r in results["triad"]}
    by = {(r["opt"], r["n"], r["contender"]): r for r in results["steps"]}
    for (kind, n, name), r in sorted(by.items(), key=lambda x: (x[0][0], x[0][1])):
        if name not in (C_IGNORE, C_RAISE):
            continue
        if n >= 10**7:
            ratio = r["gbps"] / triad[(kind, n)]
            rows.append((f">= 0.8 x triad bandwidth   {kind:5s} n={fmt_n(n):4s} {name}",
                         f"{ratio:.3f} x", ratio >= 0.8))
        fused = by.get((kind, n, T_FUSED))
        if fused is not None:
            s = fused["median_s"] / r["median_s"]
            rows.append((f"faster than torch fused    {kind:5s} n={fmt_n(n):4s} {name}",
                         f"{s:.2f}x", s > 1.0))
        plain = by.get((kind, n, NP_PLAIN))
        if plain is not None:
            s = plain["median_s"] / r["median_s"]
            rows.append((f">= 4x numpy (in-place)     {kind:5s} n={fmt_n(n):4s} {name}",
                         f"{s:.2f}x", s >= 4.0))
    return rows


def parse_sizes(text):
    sizes = [int(float(x)) for x in text.split(",") if x.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"bad --sizes {text!r}")
    return sizes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=parse_sizes, default=[10**5, 10**6, 10**7, 10**8],
                    help="comma-separated element counts, e.g. 1e5,1e6 (default 1e5,1e6,1e7,1e8)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed rounds per cell; the median is reported (default 5)")
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="minimum total timed seconds per cell (default 0.3)")
    ap.add_argument("--thread-n", type=lambda s: int(float(s)), default=10**7,
                    help="n of the 1-vs-2-thread comparison (default 1e7; 0 skips it)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    if torch is not None:
        torch.set_num_threads(nproc())
    info = machine_info()
    print_header(info, args)
    rng = np.random.default_rng(0)
    results = {"machine": info, "args": {k: v for k, v in vars(args).items()},
               "bytes": {"adam": BYTES_ADAM, "triad": BYTES_TRIAD, "scan": BYTES_SCAN},
               "triad": [], "steps": [], "threads": [], "interference": []}
    t_start = time.perf_counter()
    whole = CpuMeter()
    print(ROW_HEAD)
    print("-" * len(ROW_HEAD))
    for n in args.sizes:
        bench_size(n, args, rng, results)
    if args.thread_n:
        bench_threads(args.thread_n, args, rng, results)

    print("targets (from the issue; not asserted)")
    rows = targets(results)
    for desc, value, ok in rows:
        print(f"  {'PASS' if ok else 'MISS'}  {desc:58s} {value}")
    results["targets"] = [{"target": d, "value": v, "pass": ok} for d, v, ok in rows]
    info["loadavg_end"] = loadavg()
    elapsed = time.perf_counter() - t_start
    try:
        import resource
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    except (ImportError, OSError):  # pragma: no cover - non-Unix
        peak_gib = float("nan")
    info["peak_rss_gib"] = peak_gib
    print(f"\nload avg at end {info['loadavg_end'][0]:.2f} (1 min), "
          f"{info['loadavg_end'][1]:.2f} (5 min); total {elapsed:.0f} s; peak RSS {peak_gib:.1f} GiB")
    results["elapsed_s"] = elapsed
    note, data = interference_note(whole)
    print(f"whole run: {note}")
    results["interference"].append({"block": "whole run", **(data or {})})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
