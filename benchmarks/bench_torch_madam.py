"""Time one multi-objective step in torch: madam.torch.MAdam against torchjd + torch's fused Adam.

For C in {2, 8} objectives and n = 1e6 float32 parameters (one flat tensor), every contender
gets the same rows J (C, n) as the parameter's ``.jac`` (what ``torchjd.autojac.backward``
leaves), so only the step after the backward pass is timed:

  MAdam MGDA          madam.torch.MAdam(solver=MGDA()).step(): the solver on J's Gramian, then
                      MAdam's fused kernel (reads the C rows, updates the C (C + 1) / 2 packed F
                      EMAs, whitens, Adam), with the default NaN/Inf scan of the rows
  MAdam MGDA ignore   the same with nonfinite="ignore" (no scan)
  torchjd MGDA+Adam   torchjd.autojac.jac_to_grad(params, torchjd.aggregation.MGDA()) then
                      torch.optim.Adam(fused=True).step()
  torchjd UPGrad+Adam the same with torchjd's UPGrad (needs quadprog and qpsolvers; "n/a" without)
  bridge MGDA+Adam    jac_to_grad with madam.torch.bridges.as_torchjd_aggregator(MGDA()), then
                      the fused Adam: madam's solver inside torchjd
  fused Adam          torch.optim.Adam(fused=True).step() alone on a ready .grad (the yardstick)

MAdam does more than the others: it keeps and reads the per-element curvature F of every pair
of objectives (C (C + 1) / 2 values per parameter), which is what it whitens the direction with;
its step moves (C + C (C + 1) + 6) x 4 bytes per parameter against about (2 C + 8) x 4 for
aggregation + Adam, so it is expected to be slower for large C.

Times: the median (and best) over --repeats rounds, contenders interleaved round by round, each
round the mean of the steps that fit --min-time seconds.

    python benchmarks/bench_torch_madam.py [--objectives 2,8] [--size 1e6] [--repeats 7]
"""
import argparse
import statistics
import time

import torch

from madam import solvers
from madam.torch.bridges import as_torchjd_aggregator
from madam.torch.madam import MAdam

LR = 1e-3


def make_rows(n_obj, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, generator=g)
    rows = torch.stack([0.5 * base + torch.randn(n, generator=g) for _ in range(n_obj)])
    return rows.contiguous()


def madam_step(rows, n, nonfinite):
    p = torch.zeros(n, requires_grad=True)
    opt = MAdam([p], solver=solvers.MGDA(), lr=LR, nonfinite=nonfinite)

    def step():
        p.jac = rows
        opt.step()
    return step


def torchjd_step(rows, n, aggregator):
    from torchjd.autojac import jac_to_grad

    p = torch.zeros(n, dtype=rows.dtype, requires_grad=True)
    opt = torch.optim.Adam([p], lr=LR, fused=True)

    def step():
        p.jac = rows
        p.grad = None
        jac_to_grad([p], aggregator)
        opt.step()
    return step


def adam_only(rows, n):
    p = torch.zeros(n, requires_grad=True)
    p.grad = rows[0].clone()
    opt = torch.optim.Adam([p], lr=LR, fused=True)
    return opt.step


def contenders(rows, n):
    out = {"MAdam MGDA": madam_step(rows, n, "raise"),
           "MAdam MGDA ignore": madam_step(rows, n, "ignore")}
    try:
        from torchjd.aggregation import MGDA, UPGrad
    except ImportError:
        out["torchjd MGDA+Adam"] = None
        out["torchjd UPGrad+Adam"] = None
    else:
        out["torchjd MGDA+Adam"] = torchjd_step(rows, n, MGDA())
        try:
            upgrad = UPGrad()
        except ImportError:       # its QP needs quadprog and qpsolvers
            out["torchjd UPGrad+Adam"] = None
        else:
            out["torchjd UPGrad+Adam"] = torchjd_step(rows, n, upgrad)
        out["bridge MGDA+Adam"] = torchjd_step(rows, n, as_torchjd_aggregator(solvers.MGDA()))
    out["fused Adam"] = adam_only(rows, n)
    return out


def timed(step, min_time):
    step()                                    # warm: first-touch, allocations, caches
    count, start = 0, time.perf_counter()
    while True:
        step()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default="2,8")
    parser.add_argument("--size", default="1e6")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args(argv)
    n = int(float(args.size))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, n = {n:.0e} float32, "
          f"median (best) of {args.repeats} interleaved rounds, ms per step")
    header = f"{'C':>3}  {'contender':<22}{'median ms':>11}{'best ms':>10}{'x MAdam':>9}"
    print(header)
    print("-" * len(header))
    for n_obj in (int(c) for c in args.objectives.split(",")):
        rows = make_rows(n_obj, n)
        steps = contenders(rows, n)
        times = {name: [] for name, step in steps.items() if step is not None}
        for _ in range(args.repeats):
            for name in times:
                times[name].append(timed(steps[name], args.min_time))
        ref = statistics.median(times["MAdam MGDA"])
        for name, step in steps.items():
            if step is None:
                print(f"{n_obj:>3}  {name:<22}{'n/a':>11}")
                continue
            med, best = statistics.median(times[name]), min(times[name])
            print(f"{n_obj:>3}  {name:<22}{1e3 * med:>11.2f}{1e3 * best:>10.2f}"
                  f"{med / ref:>9.2f}")


if __name__ == "__main__":
    main()
