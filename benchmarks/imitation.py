"""Can the agents' networks represent the best controller? Each network option, trained by supervised
learning to imitate ``room_balancing``, then run as a policy on the test packs (issue 19).

    python benchmarks/imitation.py [--features raw cell_set cell_set_physics] [--seeds 1 2 3]
                                   [--packs 256] [--updates 4000 20000] [--test-packs 100]
                                   [--config config/config.yaml] [--ocv-table CSV] [--out DIR]

    snakemake imitation_snapshot --cores 1     # the same, as a workflow rule, into docs/results/imitation/

The agents fall short of ``room_balancing``, a rule that reads only what they observe. Two reasons
are possible: the network cannot represent the rule (a question of the features: products of SoC
and SoH and a minimum over cells, docs/model.md "Network"), or it can, and reinforcement learning
does not find it. This separates the two. For each seed and each ``training.features`` option:

1. **Data**: ``room_balancing`` (the config's settings) runs on ``--packs`` packs of each profile
   (the training profile and ``charge-rest-discharge``), drawn from the env's initial-state ranges
   with seeds disjoint from every evaluation and training-evaluation seed (checked:
   :func:`bmsrl.seeds.held_out_seeds`); every (observation, action) of the episodes, repeated
   observations of idle packs dropped.
2. **Network**: the Q-network DQN would build (the features extractor of the option, then the
   config's ``net_arch``, one output per joint action), trained by cross-entropy on the rule's
   actions with Adam (batch 256, learning rate 1e-3), a tenth of the packs held out, for each
   budget of ``--updates`` steps (a second, larger budget tells a network that cannot represent the
   rule from one that was not trained long enough).
3. **Policy**: the greedy valid action of its outputs (as DQN's ``greedy_valid_only``), evaluated by
   ``bmsrl.evaluate.evaluate`` on the seed's default test packs (``charge-rest-discharge``,
   ``--test-packs`` per seed), paired with ``room_balancing`` on the same packs.

Per budget and option (and ``room_balancing`` itself, at 0 updates), as mean [95 % t interval over seeds] (``bmsrl.stats``): ``agreement`` (the share of
held-out decisions on which the network picks the rule's action), ``share`` (of the recoverable
capacity), ``d_mAh`` (usable capacity minus ``room_balancing``'s on the same packs) and
``changes`` (switch changes per episode). An option that reaches ``d_mAh`` near 0 can represent the
rule; what an agent with it lacks is then learning, not representation. ``--out DIR`` writes the
table (``DIR/imitation.csv``: per budget, option and metric the mean, 95 % interval and seeds) and the
per-seed rows behind it (``DIR/imitation_seeds.csv``), once every run has finished. The workflow's
rule ``imitation`` runs this script with the run's config and processed OCV table, and
``imitation_snapshot`` copies its tables with their provenance to ``docs/results/imitation/``
(workflow/rules/benchmarks.smk), which docs/results.md quotes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch as th
from ablation import paired_stats  # a sibling script: benchmarks/ is on sys.path when this one runs
from stable_baselines3.common.torch_layers import FlattenExtractor, create_mlp

from bmsrl.agents import load_policy
from bmsrl.config import load_config
from bmsrl.env import BalancingTask, rng_for_seed
from bmsrl.evaluate import evaluate
from bmsrl.networks import FEATURES, features_policy_kwargs
from bmsrl.rollout import rollout
from bmsrl.seeds import held_out_seeds
from bmsrl.stats import t_interval
from bmsrl.task_config import task_kwargs

TEST_PROFILE = "charge-rest-discharge"
TEACHER = "room_balancing"
#: the imitation data of seed s is drawn from seeds DATA_SEED_OFFSET + 10_000 s + k (k < packs)
DATA_SEED_OFFSET = 900_000
#: the table's columns and their decimals
COLUMNS = {"agreement": 3, "share": 3, "d_mAh": 1, "changes": 1}


class Recorder:
    """``policy`` as SB3's ``predict``, keeping every (observation, action) it is asked for."""

    def __init__(self, policy) -> None:
        self.policy, self.obs, self.actions = policy, [], []

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        actions, state = self.policy.predict(observation, deterministic=deterministic)
        self.obs.append(np.array(observation, dtype=np.float32))
        self.actions.append(np.asarray(actions, dtype=np.int64))
        return actions, state


def data_seeds(cfg: dict, seed: int, packs: int) -> list[int]:
    """The integer seeds of seed ``seed``'s imitation packs; never a held-out seed."""
    seeds = [DATA_SEED_OFFSET + 10_000 * seed + k for k in range(packs)]
    clash = sorted(set(seeds) & set(held_out_seeds(cfg)))
    if clash:
        raise SystemExit(f"imitation seeds meet held-out seeds ({clash[:3]} ...); change DATA_SEED_OFFSET")
    return seeds


def teacher_data(
    cfg: dict, seed: int, packs: int, ocv_table: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observations, rule actions, pack index) of ``room_balancing``'s episodes on both profiles;
    the pack index (0 .. 2 packs - 1) lets a split hold whole episodes out."""
    obs, actions, pack = [], [], []
    for p, profile in enumerate(dict.fromkeys([cfg["profiles"]["train"], TEST_PROFILE])):
        task = BalancingTask(n_packs=packs, **task_kwargs(cfg, profile, ocv_table))
        drawn = [task.draw_initial_state(rng_for_seed(s)) for s in data_seeds(cfg, seed, packs)]
        task.reset_packs(np.arange(packs), np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn]))
        recorder = Recorder(load_policy(TEACHER, None, cfg))
        rollout(task, recorder)
        o = np.concatenate(recorder.obs)
        a = np.concatenate(recorder.actions)
        k = np.tile(np.arange(packs), len(recorder.obs)) + p * packs
        # a finished pack idles, asked again and again about the same state: keep each state once
        _, first = np.unique(np.column_stack([o, k]), axis=0, return_index=True)
        keep = np.sort(first)
        obs.append(o[keep])
        actions.append(a[keep])
        pack.append(k[keep])
    return np.concatenate(obs), np.concatenate(actions), np.concatenate(pack)


class QNetwork(th.nn.Module):
    """DQN's Q-network for ``features``: the features extractor, then ``net_arch`` (ReLU), one output per action."""

    def __init__(self, cfg: dict, features: str, obs_size: int, n_actions: int) -> None:
        super().__init__()
        import gymnasium as gym

        space = gym.spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        kwargs = features_policy_kwargs(features, cfg["env"]["n_cells"], cfg["env"]["soc_limits"])
        cls = kwargs.get("features_extractor_class", FlattenExtractor)
        self.features = cls(space, **kwargs.get("features_extractor_kwargs", {}))
        policy_kwargs = cfg["training"]["hyperparams"]["dqn"].get("policy_kwargs") or {}
        net_arch = list(policy_kwargs.get("net_arch", [64, 64]))  # SB3's DQN default
        self.head = th.nn.Sequential(*create_mlp(self.features.features_dim, n_actions, net_arch))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.head(self.features(obs))


class GreedyValid:
    """The network as a policy: the valid action with the highest output (DQN's ``greedy_valid_only``)."""

    def __init__(self, net: QNetwork) -> None:
        self.net = net

    def predict(self, observation, state=None, episode_start=None, deterministic=True, action_masks=None):
        with th.no_grad():
            scores = self.net(th.as_tensor(np.asarray(observation, dtype=np.float32))).numpy()
        if action_masks is not None:
            scores = np.where(action_masks, scores, -np.inf)
        return scores.argmax(axis=1), state


def fit(cfg: dict, features: str, seed: int, data, updates: int) -> tuple[QNetwork, float]:
    """The network trained on all but a tenth of the packs; its agreement on the held-out packs."""
    obs, actions, pack = data
    th.manual_seed(seed)
    rng = np.random.default_rng(seed)
    held = np.isin(pack, rng.permutation(np.unique(pack))[: max(1, len(np.unique(pack)) // 10)])
    x, y = th.as_tensor(obs[~held]), th.as_tensor(actions[~held])
    n_actions = 2 ** cfg["env"]["n_cells"]
    net = QNetwork(cfg, features, obs.shape[1], n_actions)
    optimizer = th.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(updates):
        batch = th.as_tensor(rng.integers(0, len(y), 256))
        loss = th.nn.functional.cross_entropy(net(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with th.no_grad():
        predicted = net(th.as_tensor(obs[held])).argmax(dim=1).numpy()
    return net, float(np.mean(predicted == actions[held]))


def stats(metrics: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """The table's statistics of :func:`ablation.paired_stats` (the ablation's, on the same packs)."""
    paired = paired_stats(metrics, reference)
    return {key: paired[key] for key in ("share", "d_mAh", "changes")}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=list(FEATURES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--packs", type=int, default=256, help="imitation packs per profile and seed")
    parser.add_argument(
        "--updates", type=int, nargs="+", default=[4000, 20000], help="budgets: Adam steps of 256 decisions"
    )
    parser.add_argument("--test-packs", type=int, default=100, help="test packs per seed (evaluation.episodes)")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--ocv-table", default=None, help="the processed OCV table (default: the package's)")
    parser.add_argument("--out", type=Path, default=None, help="write the table and its per-seed rows to DIR")
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error("--seeds: at least two seeds (an interval over one seed says nothing)")
    th.set_num_threads(1)
    cfg = load_config(args.config)
    cfg["evaluation"]["episodes"] = args.test_packs
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        data = teacher_data(cfg, seed, args.packs, args.ocv_table)
        print(
            f"seed {seed}: {len(data[1]):,} decisions of {TEACHER} ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
        )
        _, reference = evaluate(cfg, TEACHER, TEST_PROFILE, seed, None, args.ocv_table)
        # the rule itself, for reference (0 updates: it is not trained; it agrees with itself)
        rows.append({"updates": 0, "features": TEACHER, "seed": seed, "agreement": 1.0} | stats(reference, reference))
        for updates in args.updates:
            for features in args.features:
                net, agreement = fit(cfg, features, seed, data, updates)
                policy = GreedyValid(net)
                name = f"imitation_{features}"
                _, metrics = evaluate(cfg, name, TEST_PROFILE, seed, None, args.ocv_table, policy=policy)
                rows.append(
                    {"updates": updates, "features": features, "seed": seed, "agreement": agreement}
                    | stats(metrics, reference)
                )
                print(
                    f"  {updates} updates, {features}: agreement {agreement:.3f}, d_mAh {rows[-1]['d_mAh']:+.1f}",
                    file=sys.stderr,
                )
    seeds = pd.DataFrame(rows)
    table = []
    for (updates, features), group in seeds.groupby(["updates", "features"], sort=False):
        for metric in COLUMNS:
            mean, low, high = t_interval(group[metric].to_numpy(dtype=float))
            table.append(
                {"updates": updates, "features": features, "metric": metric, "mean": mean, "ci_low": low,
                 "ci_high": high, "n_seeds": len(group)}
            )  # fmt: skip
    table = pd.DataFrame(table)
    print(
        f"{TEACHER} imitated, {args.packs} packs per profile and seed; test packs "
        f"{args.test_packs} per seed ({TEST_PROFILE}); mean [95 % t interval over seeds {args.seeds}]"
    )
    print(f"{'updates':>8} {'features':<18}" + "".join(f"{k:>26}" for k in COLUMNS))
    for updates, features in dict.fromkeys(zip(seeds["updates"], seeds["features"])):
        cells = []
        for metric, decimals in COLUMNS.items():
            pick = (table["updates"] == updates) & (table["features"] == features) & (table["metric"] == metric)
            r = table[pick].iloc[0]
            cells.append(f"{r['mean']:.{decimals}f} [{r['ci_low']:.{decimals}f}, {r['ci_high']:.{decimals}f}]")
        print(f"{updates:>8} {features:<18}" + "".join(f"{c:>26}" for c in cells))
    print(f"d_mAh: usable capacity minus {TEACHER}'s on the same packs [mAh]")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "imitation.csv", index=False, float_format="%.6g")
        seeds.to_csv(args.out / "imitation_seeds.csv", index=False, float_format="%.6g")
        print(f"tables: {args.out}/imitation.csv, imitation_seeds.csv", file=sys.stderr)
    return table


if __name__ == "__main__":
    main()
