"""Environment throughput: env-steps/s of the single Gymnasium env and of the batched VecEnv.

    python benchmarks/env_throughput.py [--steps 20000] [--n-envs 64]

Random actions over whole episodes (auto-reset included), after a warm-up that compiles the
integrator. One "env-step" is one 30 s decision interval of one pack. Prints one line per case:
the default setting, then the realistic family (config/realistic.yaml: drive-cycle discharge,
estimated state, shunt limit; docs/model.md), whose drive cycle holds each 1 s value of its trace
and so takes more sub-steps per decision.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bmsrl.config import load_config
from bmsrl.env import PassiveBalancingEnv
from bmsrl.task_config import task_kwargs
from bmsrl.vec_env import BatchedBalancingVecEnv

REALISTIC = Path(__file__).resolve().parents[1] / "config" / "realistic.yaml"


def realistic_kwargs() -> dict:
    """The realistic family's env arguments on the training profile (the shipped tables)."""
    cfg = load_config(REALISTIC)
    return task_kwargs(cfg, cfg["profiles"]["train"])


def single_env_steps_per_s(steps: int, **kwargs) -> float:
    env = PassiveBalancingEnv(**kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 32, steps)
    env.step(0)  # warm-up (JIT)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def batched_env_steps_per_s(steps: int, n_envs: int, **kwargs) -> float:
    env = BatchedBalancingVecEnv(n_envs, **kwargs)
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
    family = realistic_kwargs()
    single_r = single_env_steps_per_s(args.steps, **family)
    batched_r = batched_env_steps_per_s(args.steps * 10, args.n_envs, **family)
    print(f"realistic family, single env:            {single_r:12,.0f} env-steps/s")
    print(f"realistic family, batched env (N={args.n_envs}):     {batched_r:12,.0f} env-steps/s")


if __name__ == "__main__":
    main()
