"""Time of one evaluation job, process start included: `bmsrl evaluate` of N packs as a subprocess.

    OMP_NUM_THREADS=1 python benchmarks/eval_throughput.py [--packs 100] [--repeats 3]

Times, per policy, the whole command (Python start, imports, numba's cached kernels, the policy's
loading, the batched rollout of every pack, the metrics and traces written) for 1 pack and for
``--packs`` packs, in the same sitting, and prints both with their ratio: the first is what a job
costs before its episodes, the second what a job of the verdict run costs. The agent is a DQN
trained for a few thousand env steps here (its size, not its skill, sets the inference cost).
Medians over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", type=int, default=100, help="packs (episodes) of the large job")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median)")
    args = parser.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    bmsrl = [sys.executable, "-m", "bmsrl.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = {"training": {"n_envs": 8, "total_steps": {"dqn": 4096}, "eval_interval": 2048, "eval_episodes": 1}}
        (tmp / "train.yaml").write_text(yaml.safe_dump(small))
        subprocess.run([*bmsrl, "train", "--config", str(tmp / "train.yaml"), "--algo", "dqn", "--seed", "1",
                        "--out", str(tmp / "dqn")], check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        cases = {"no_balancing": [], "room_balancing": [], "dqn": ["--model", str(tmp / "dqn" / "best_model.zip")]}
        print(f"bmsrl evaluate, charge-rest-discharge, default scenario, median of {args.repeats} runs [s]")
        print(f"{'policy':<16} {'1 pack':>8} {f'{args.packs} packs':>10} {'ratio':>7}")
        for policy, extra in cases.items():
            times = {}
            for packs in (1, args.packs):
                cfg = tmp / f"eval{packs}.yaml"
                # the baselines' configured settings (no tuning files): baselines.tuned off
                cfg.write_text(
                    yaml.safe_dump(
                        {"evaluation": {"episodes": packs, "trace_episodes": 1}, "baselines": {"tuned": False}}
                    )
                )
                cmd = [
                    *bmsrl,
                    "evaluate",
                    "--config",
                    str(cfg),
                    "--policy",
                    policy,
                    "--profile",
                    "charge-rest-discharge",
                    "--seed",
                    "1",
                    "--out",
                    str(tmp / f"out_{policy}_{packs}"),
                    *extra,
                ]
                timed(cmd, env)  # warm: numba's cache, the file system
                times[packs] = statistics.median(timed(cmd, env) for _ in range(args.repeats))
            print(f"{policy:<16} {times[1]:8.2f} {times[args.packs]:10.2f} {times[args.packs] / times[1]:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
