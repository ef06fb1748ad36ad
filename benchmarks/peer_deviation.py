"""Print how far madam's trajectories are from their peers' (torch.optim, pytorch_optimizer).

Each row: madam setting, peer, dtype, problem, and the largest normwise relative deviation
max_k ||x_k - y_k||_inf / ||y_k||_inf over a 200-step trajectory, once per peer implementation
(per-param: foreach=False; default: foreach=None, which is torch's per-parameter loop on CPU and
pytorch_optimizer's foreach path).  The peer-running code and the conventions matched live in tests/peers.py.

    python benchmarks/peer_deviation.py [--steps N]
"""

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))

import problems  # noqa: E402
import peers  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # torch's UserWarnings about foreach etc.

    impls = list(peers.FOREACH)
    head = (f"{'optimiser (setting)':28s} {'peer':27s} {'dtype':7s} {'problem':10s} "
            + " ".join(f"{'max rel dev (' + i + ')':>24s}" for i in impls))
    print(head)
    print("-" * len(head))
    for case in peers.PEER_CASES:
        for dtype in problems.DTYPES:
            for problem in problems.PROBLEMS:
                devs = [peers.deviation(case, problem, dtype, args.steps, peers.FOREACH[i])
                        for i in impls]
                print(f"{case.case_id:28s} {case.peer:27s} {dtype.__name__:7s} {problem.name:10s} "
                      + " ".join(f"{d:24.2e}" for d in devs))

if __name__ == "__main__":
    main()
