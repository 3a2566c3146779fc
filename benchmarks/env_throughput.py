"""Environment throughput: env-steps/s of the single Gymnasium env and of the batched VecEnv.

    python benchmarks/env_throughput.py [--steps 20000] [--n-envs 64]

Random actions over whole episodes (auto-reset included), after a warm-up that compiles the
integrator. One "env-step" is one 30 s decision interval of one pack. Prints one line per case.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bmsrl.env import PassiveBalancingEnv
from bmsrl.vec_env import BatchedBalancingVecEnv


def single_env_steps_per_s(steps: int) -> float:
    env = PassiveBalancingEnv()
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 32, steps)
    env.step(0)  # warm-up (JIT)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def batched_env_steps_per_s(steps: int, n_envs: int) -> float:
    env = BatchedBalancingVecEnv(n_envs)
    env.seed(0)
    env.reset()
    n_calls = max(1, steps // n_envs)
    actions = np.random.default_rng(0).integers(0, 32, (n_calls, n_envs))
    env.step(actions[0])  # warm-up
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return n_calls * n_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="env-steps per case")
    parser.add_argument("--n-envs", type=int, default=64, help="packs in the batched env")
    args = parser.parse_args()
    single = single_env_steps_per_s(args.steps)
    batched = batched_env_steps_per_s(args.steps * 10, args.n_envs)
    print(f"single env (PassiveBalancingEnv):        {single:12,.0f} env-steps/s")
    print(
        f"batched env (N={args.n_envs}, BatchedBalancingVecEnv): {batched:12,.0f} env-steps/s "
        f"({batched / single:.1f}x the single env)"
    )


if __name__ == "__main__":
    main()
