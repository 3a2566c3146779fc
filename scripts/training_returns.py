"""Print the training curves' numbers: mean evaluation return over seeds at chosen env steps.

    python scripts/training_returns.py results/checkpoints/*/evaluations.npz --at 1e6 2e6 3e6 4e6 5e6

The same curves `bmsrl plot training` draws (bmsrl.stats.training_curve: each seed's mean over its
evaluation episodes, averaged over seeds), as a table: one row per algorithm, plus one row per seed.
"""

from __future__ import annotations

import argparse

import numpy as np

from bmsrl.policies import policy_order
from bmsrl.results import load_evaluations
from bmsrl.stats import training_curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="+", help="evaluations.npz files of the train stage")
    parser.add_argument("--at", nargs="+", type=float, required=True, help="env steps to read the curves at")
    args = parser.parse_args()
    runs = load_evaluations(args.evaluations)
    at = np.array(args.at)

    def read(curve_runs) -> str:
        grid, mean, _, _ = training_curve(curve_runs)
        if at.min() < grid[0] or at.max() > grid[-1]:
            raise SystemExit(f"--at must lie within the evaluated steps [{grid[0]}, {grid[-1]}]")
        return "".join(f"{v:10.1f}" for v in np.interp(at, grid, mean))

    print("run".ljust(18) + "".join(f"{x:>10.3g}" for x in at))
    for algo in policy_order({a for a, _ in runs}):
        seeds = sorted(s for a, s in runs if a == algo)
        for seed in seeds:
            print(f"{algo} seed {seed}".ljust(18) + read([runs[algo, seed]]))
        print(f"{algo} mean".ljust(18) + read([runs[algo, s] for s in seeds]))


if __name__ == "__main__":
    main()
