"""Training throughput: SB3's defaults against this project's training settings, in one run.

    python benchmarks/train_throughput.py [--ppo-steps 40960] [--dqn-steps 20480] [--other-steps 204800]
                                          [--features cell_set_physics]

For PPO and DQN, two runs of a fixed number of env steps each:
  * "SB3 defaults": one PassiveBalancingEnv in a DummyVecEnv, SB3's default hyperparameters for
    the update shape (PPO n_steps 2048, batch 64, 10 epochs; DQN train_freq 4, 1 gradient step,
    batch 32), torch's default thread count, argument validation on, plain Adam;
  * "project": `bmsrl.train.train` with config/config.yaml's settings (N = 64 batched packs; PPO
    32 x 64 = 2048 transitions per rollout, minibatch 256, 10 epochs; DQN one gradient step of
    256 per 4 transitions), one torch thread, fused Adam, argument validation off.
Prints env-steps/s for each and the ratio. Then, project settings only, A2C (5 x 64 = 320
transitions per update), TRPO (32 x 64 = 2048 per update) and ARS (64 +/- pairs on the 64 packs,
~25,600 transitions per update), ``--other-steps`` each. The defaults run first, since the project
settings change process-wide torch state (threads, validation).

``--features NAME`` (a ``training.features`` option, docs/model.md) then runs PPO, DQN and A2C again
with that network and prints each rate as a ratio to the same algorithm's run with the config's own
network, in this process: what the per-cell network costs per env step.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bmsrl.config import load_config


def sb3_defaults(algo: str, steps: int) -> float:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from bmsrl.env import PassiveBalancingEnv

    env = DummyVecEnv([lambda: PassiveBalancingEnv()])
    model = {"ppo": PPO, "dqn": DQN}[algo]("MlpPolicy", env, seed=0, device="cpu")
    start = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - start)


def project(algo: str, steps: int, config: Path, features: str | None = None) -> float:
    from bmsrl.train import train

    cfg = load_config(config)
    if features is not None:
        cfg["training"]["features"] = features
    cfg["training"]["total_steps"][algo] = steps
    cfg["training"]["eval_interval"] = 10**9  # one evaluation, at the end
    cfg["training"]["eval_episodes"] = 1
    cfg["training"]["checkpoint_interval"] = 10**9
    cfg["training"]["hyperparams"]["dqn"]["learning_starts"] = 0
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(cfg, algo, seed=0, out=Path(tmp), tensorboard=None)
        elapsed = time.perf_counter() - start
        with np.load(Path(tmp) / "evaluations.npz") as ev:  # the steps done (ARS ends on a whole iteration)
            return int(ev["timesteps"][-1]) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppo-steps", type=int, default=40960)
    parser.add_argument("--dqn-steps", type=int, default=20480)
    parser.add_argument("--other-steps", type=int, default=204800, help="env steps of A2C, TRPO and ARS each")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--features", default=None, help="also run PPO, DQN and A2C with this training.features")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    base = {a: sb3_defaults(a, s) for a, s in (("ppo", args.ppo_steps), ("dqn", args.dqn_steps))}
    fast = {a: project(a, s, args.config) for a, s in (("ppo", args.ppo_steps), ("dqn", args.dqn_steps))}
    others = {a: project(a, args.other_steps, args.config) for a in ("a2c", "trpo", "ars")}
    print(f"SB3 defaults ran with {threads} torch threads; project settings with {torch.get_num_threads()}")
    for algo in ("ppo", "dqn"):
        print(
            f"{algo.upper()}: SB3 defaults {base[algo]:8,.0f} env-steps/s | project {fast[algo]:8,.0f} "
            f"env-steps/s | ratio {fast[algo] / base[algo]:.1f}x"
        )
    for algo, rate in others.items():
        print(f"{algo.upper()}: project {rate:8,.0f} env-steps/s")
    if args.features is not None:
        steps = {"ppo": args.ppo_steps, "dqn": args.dqn_steps, "a2c": args.other_steps}
        configured = load_config(args.config)["training"]["features"]
        for algo, n in steps.items():
            rate = project(algo, n, args.config, args.features)
            own = fast.get(algo, others.get(algo))
            print(
                f"{algo.upper()} with features {args.features}: {rate:8,.0f} env-steps/s | "
                f"{rate / own:.2f}x the run with features {configured}"
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
