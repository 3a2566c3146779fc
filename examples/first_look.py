"""A battery researcher's first look: the shipped trained agent against ``room_balancing`` on the same packs.

    python examples/first_look.py                      # the shipped DQN, 10 packs, first_look.png
    python examples/first_look.py --agent a2c --packs 20 --out a2c.png

Loads the trained agent the package ships (``bmsrl.agents.load_shipped``: the verdict run's agent of
training seed 1, no training needed), draws ``--packs`` packs from the spread of SoC and SoH it was
trained on, runs it and the capacity-aware rule ``room_balancing`` (its untuned default settings) on
the same packs over the test profile ``charge-rest-discharge``, prints per policy the charge the pack
delivered [mAh], the energy its shunts bled [Wh] and the switch changes, and the agent's per-pack
difference from the rule, and draws the SoC of each cell of the first pack under both policies.

A smoke-sized comparison to see the pieces work, not a result: docs/results.md reads the verdict
run (10 training seeds x 100 packs, tuned baselines, paired intervals). tests/test_examples.py runs
this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bmsrl.agents import load_policy, load_shipped, shipped_agents
from bmsrl.config import defaults
from bmsrl.env import BalancingTask
from bmsrl.rollout import rollout

RULE = "room_balancing"
PROFILE = "charge-rest-discharge"  # the test profile: charge, rest, then discharge to a cut-off


def run(policy, task_kwargs: dict, packs: int, seed: int):
    """One episode per pack, pack k drawn from seed ``seed + k`` (the same packs for every policy)."""
    task = BalancingTask(n_packs=packs, **task_kwargs)
    task.reset_drawn([np.random.default_rng(seed + k) for k in range(packs)])
    return rollout(task, policy, records=True)


def soc_trace(episode, pack: int) -> tuple[np.ndarray, np.ndarray]:
    """Time [h] and SoC [%] of every cell (steps x cells) of one pack."""
    records = episode.records[pack]
    time_h = np.array([r["time_s"] for r in records]) / 3600.0
    return time_h, 100.0 * np.array([r["soc"] for r in records])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="dqn", choices=sorted(shipped_agents()), help="shipped agent (default dqn)")
    parser.add_argument("--packs", type=int, default=10, help="packs to compare on (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the first pack (default 7)")
    parser.add_argument(
        "--out", type=Path, default=Path("first_look.png"), help="the SoC figure (default first_look.png)"
    )
    args = parser.parse_args(argv)
    if args.packs < 1:
        parser.error(f"--packs must be at least 1, got {args.packs}")

    agent = load_shipped(args.agent)
    task_kwargs = agent.task_kwargs(PROFILE)
    # the rule sees the same pack facts as the agent (a setting the record lacks: today's default)
    env = {**defaults()["env"], **agent.settings["env"]}
    rule = load_policy(RULE, None, {"env": env, "baselines": defaults()["baselines"]})
    episodes = {
        args.agent: run(agent.model, task_kwargs, args.packs, args.seed),
        RULE: run(rule, task_kwargs, args.packs, args.seed),
    }

    print(f"{args.packs} packs, profile {PROFILE}, seeds {args.seed}..{args.seed + args.packs - 1}")
    print(f"{'policy':16} {'delivered [mAh]':>16} {'bled [Wh]':>10} {'switch changes':>15}")
    delivered = {}
    for name, episode in episodes.items():
        delivered[name] = 1000.0 * episode.end["discharged_ah"]
        bled_wh = episode.end["shunt_energy_wh"].sum(axis=1)
        print(f"{name:16} {delivered[name].mean():16.0f} {bled_wh.mean():10.2f} {episode.switch_changes.mean():15.1f}")
    difference = delivered[args.agent] - delivered[RULE]
    print(
        f"{args.agent} - {RULE}: {difference.mean():+.1f} mAh a pack on average "
        f"(better on {int((difference > 0).sum())} of {args.packs} packs)"
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True, layout="constrained")
    for ax, (name, episode) in zip(axes, episodes.items(), strict=True):
        time_h, soc_pct = soc_trace(episode, 0)
        for cell in range(soc_pct.shape[1]):
            ax.plot(time_h, soc_pct[:, cell], lw=1, label=f"cell {cell + 1}")
        ax.set_title(f"{name}, pack 0")
        ax.set_xlabel("time [h]")
    axes[0].set_ylabel("SoC [%]")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.savefig(args.out, dpi=120)
    print(f"SoC of pack 0: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
