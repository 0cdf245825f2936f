"""Time per ``ufm.simulate`` call (default settings), as a slider would trigger it.

Run: ``python benchmarks/bench_ufm.py [--repeats 3]``. Prints the median wall time of each
setting, the steps it took (with P2P: solver iterations), its MC_W, and its ratio to a reference
measured in the same run (balanced K = 4, CE): on a shared CPU compare ratios, not seconds. The
slider target is under 0.5 s per call for every method, K <= 10 and a few thousand per class.
"""

from __future__ import annotations

import argparse
import statistics
import time

from allnc_edu import ufm
from allnc_edu.data import long_tail_counts

SETTINGS = [  # (label, K, n_max, imbalance ratio, method)
    ("reference", 4, 500, 1.0, "ce"),
    ("K=4 IR=100", 4, 500, 100.0, "ce"),
    ("K=4 IR=1000", 4, 1000, 1000.0, "ce"),
    ("K=10 IR=100", 10, 1000, 100.0, "ce"),
    ("K=10 IR=1000", 10, 5000, 1000.0, "ce"),
    ("K=10 IR=1000 ETF", 10, 5000, 1000.0, "etf"),
    ("K=4 IR=100 P2P", 4, 500, 100.0, "p2p"),
    ("K=10 IR=100 P2P", 10, 1000, 100.0, "p2p"),
    ("K=4 IR=1000 P2P", 4, 1000, 1000.0, "p2p"),
    ("K=10 IR=1000 P2P", 10, 5000, 1000.0, "p2p"),
]


def run(k: int, n_max: int, ratio: float, method: str) -> ufm.UFMResult:
    counts = long_tail_counts(n_max, k, ratio, profile="step")
    return ufm.simulate(
        counts,
        classifier="etf" if method == "etf" else "learned",
        allnc=1.0 if method == "p2p" else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    reference = None
    print(f"{'setting':<20} {'seconds':>8} {'x ref':>6} {'steps':>6} {'MC_W':>7}")
    for label, k, n_max, ratio, method in SETTINGS:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = run(k, n_max, ratio, method)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        reference = reference or seconds
        mc_w = result.final["mc_weights"]
        print(
            f"{label:<20} {seconds:8.3f} {seconds / reference:6.1f} {result.steps_run:6d} "
            f"{mc_w:7.3f}"
        )


if __name__ == "__main__":
    main()
