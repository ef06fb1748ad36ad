"""How long each notebook takes to run top to bottom (a benchmark: the test suite sets no limit).

Each notebook runs exactly as tests/test_notebooks.py runs it: a copy in an empty temporary
folder, this interpreter as the kernel. Prints one line per notebook and the load average of the
machine before and after (a loaded machine runs them slower), and writes
benchmarks/results/notebook_times.json with the package version and core source hash.

    python benchmarks/bench_notebooks.py [--only 03]
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import test_notebooks  # noqa: E402  (the runner the tests use)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run only notebooks whose name contains this")
    ap.add_argument("--out", default=str(HERE / "results" / "notebook_times.json"))
    args = ap.parse_args()

    import madam

    rows = {}
    load_before = os.getloadavg()
    for path in test_notebooks.NOTEBOOKS:
        if args.only not in path.name:
            continue
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            headline, seconds, _ = test_notebooks.execute_copy(path, folder)
            wall = time.perf_counter() - start
        rows[path.name] = {"seconds": seconds, "with_kernel_start": wall}
        print(f"{path.name:<28} {seconds:7.1f} s  ({wall:.1f} s with the kernel's start)",
              flush=True)
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}; "
          f"{os.cpu_count()} CPUs")
    result = {"notebooks": rows, "load_before": load_before, "load_after": load_after,
              "cpus": os.cpu_count(), "provenance": madam.study.provenance()}
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
