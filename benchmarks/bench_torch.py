"""Time one madam.torch.Adam step (float32, CPU) against torch.optim.Adam and a STREAM triad.

At n parameters (default 1e7, one tensor) it times, in the same run, on the same data and in
interleaved rounds (the helpers of bench_optim.py):

  madam.torch (ignore)  madam.torch.Adam(nonfinite="ignore"): the fused C kernel on the tensors
  madam.torch (raise)   the default nonfinite="raise": the finite scan of the gradient, then it
  madam NumPy (ignore)  madam.Adam on a NumPy array: the same kernel without the torch layer
  torch fused           torch.optim.Adam(fused=True)
  torch foreach         torch.optim.Adam(foreach=True)
  triad                 STREAM's a = b + s*c (madam._core.triad), the bandwidth yardstick

Bytes: an Adam step reads p, g, m, v and writes p, m, v: 28 B/param in float32; the triad is
counted the STREAM way, 12 B/element. Times are medians over --repeats rounds (each contender
runs enough back-to-back steps per round to fill --min-time / --repeats s). Hyperparameters: lr
1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0. Nothing is asserted.

    python benchmarks/bench_torch.py [--n 1e7] [--repeats 7] [--min-time 1.0] [--json PATH]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_optim as bo  # noqa: E402  (bench_optim's timing and machine helpers)

import madam  # noqa: E402

try:
    import torch
    import madam.torch as mt
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

M_IGNORE, M_RAISE, M_NUMPY = "madam.torch (ignore)", "madam.torch (raise)", "madam NumPy (ignore)"
T_FUSED, T_FOREACH = "torch fused", "torch foreach"


def make_contenders(p0, g):
    """Every contender with its own copy of p0; the gradient g is shared and only read."""
    tg = torch.from_numpy(g)
    out = []
    for name, policy in ((M_IGNORE, "ignore"), (M_RAISE, "raise")):
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        tp.grad = tg
        opt = mt.Adam([tp], lr=bo.LR, betas=bo.BETAS, eps=bo.EPS, nonfinite=policy)
        out.append(bo.Contender(name, opt.step, (lambda tp=tp: tp.detach().numpy())))
    p = p0.copy()
    opt = madam.Adam(p, lr=bo.LR, betas=bo.BETAS, eps=bo.EPS, nonfinite="ignore")
    out.append(bo.Contender(M_NUMPY, (lambda o=opt: o.step(g)), (lambda p=p: p)))
    for name, flag in ((T_FUSED, "fused"), (T_FOREACH, "foreach")):
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        tp.grad = tg
        opt = torch.optim.Adam([tp], lr=bo.LR, betas=bo.BETAS, eps=bo.EPS, **{flag: True})
        out.append(bo.Contender(name, opt.step, (lambda tp=tp: tp.detach().numpy())))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=lambda s: int(float(s)), default=10**7,
                    help="parameters (one float32 tensor; default 1e7)")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds (median; default 7)")
    ap.add_argument("--min-time", type=float, default=1.0,
                    help="minimum timed seconds per contender over all rounds (default 1.0)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = ap.parse_args(argv)
    if torch is None:
        print("torch is not installed: pip install \"madam[torch]\"")
        return 1
    torch.set_num_threads(bo.nproc())
    info = bo.machine_info()
    n = args.n
    print(f"madam.torch.Adam step vs torch.optim.Adam (float32, CPU, n = {bo.fmt_n(n)})")
    print(f"  machine : {info['nproc']} cores, {info['cpu']}; load avg at start "
          f"{info['loadavg_start'][0]:.2f}")
    print(f"  versions: torch {info['torch']}, numpy {info['numpy']}, madam {info['madam']}; "
          f"threads: madam {info['madam_threads']}, torch {info['torch_threads']}")
    print(f"  bytes   : Adam {bo.BYTES_ADAM} B/param, triad {bo.BYTES_TRIAD} B/elem; median of "
          f"{args.repeats} interleaved rounds, >= {args.min_time} s per contender\n")

    meter = bo.CpuMeter()
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    triad, _arrays = bo.make_triad(n, rng)
    contenders = make_contenders(p0, g)
    for c in [triad] + contenders:  # warm-up: first touch, state creation, step 1
        c.step()
    ref = contenders[0].params_view()
    scale = float(np.max(np.abs(ref)))
    devs = {c.name: float(np.max(np.abs(c.params_view() - ref))) / scale for c in contenders}
    everyone = [triad] + contenders
    bo.calibrate(everyone, args.repeats, args.min_time)
    res = bo.run_rounds(everyone, args.repeats)
    triad_bw = bo.gbps(bo.BYTES_TRIAD, n, res[triad.name]["median_s"])
    t_ign, t_fused = res[M_IGNORE]["median_s"], res[T_FUSED]["median_s"]

    head = (f"{'contender':22s} {'ms/step':>9s} {'min ms':>8s} {'GB/s':>7s} {'x triad':>7s} "
            f"{'/ madam':>8s} {'fused /':>8s} {'dev':>8s} {'spread':>7s}")
    print(head)
    print("-" * len(head))
    tr = res[triad.name]
    print(f"{'triad (12 B/elem)':22s} {tr['median_s'] * 1e3:9.3f} {tr['min_s'] * 1e3:8.3f} "
          f"{triad_bw:7.2f} {1.0:7.3f} "
          f"{'':8s} {'':8s} {'':8s} {tr['spread'] * 100:6.1f}%")
    rows = []
    for c in contenders:
        r = res[c.name]
        bw = bo.gbps(bo.BYTES_ADAM, n, r["median_s"])
        row = {"contender": c.name, **r, "gbps": bw, "ratio_to_triad": bw / triad_bw,
               "time_over_madam_ignore": r["median_s"] / t_ign,
               "torch_fused_over_time": t_fused / r["median_s"], "first_step_rel_dev": devs[c.name]}
        rows.append(row)
        print(f"{c.name:22s} {r['median_s'] * 1e3:9.3f} {r['min_s'] * 1e3:8.3f} {bw:7.2f} "
              f"{bw / triad_bw:7.3f} "
              f"{row['time_over_madam_ignore']:8.2f} {row['torch_fused_over_time']:8.2f} "
              f"{devs[c.name]:8.1e} {r['spread'] * 100:6.1f}%")
    print("\n  / madam  = this time / madam.torch (ignore)'s;  fused / = torch fused's time / this "
          "time (> 1: faster than torch fused)")
    print("  ms/step, GB/s and the ratios use the median over the rounds; min ms is the fastest "
          "round (less sensitive to other processes)")
    print("  dev     = max|p - p_madam| / max|p_madam| after the first step")
    note, data = bo.interference_note(meter)
    print(f"  [{note}]")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "n": n, "args": vars(args), "triad": {**tr, "gbps": triad_bw},
                       "steps": rows, "interference": data}, f, indent=1)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
