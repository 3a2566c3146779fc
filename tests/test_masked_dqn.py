"""MaskedDQN: DQN's greedy action over valid actions only; exploration and the TD target unchanged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch as th
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecMonitor

from bmsrl.agents import load_policy
from bmsrl.cli import main
from bmsrl.config import defaults
from bmsrl.masked_dqn import MaskedDQN, td_target
from bmsrl.vec_env import BatchedBalancingVecEnv

PROFILE = "discharge-rest-charge"  # a long discharge: the lowest cell's shunt is forbidden there


def random_states(n_cells: int, packs: int = 16, steps: int = 150, seed: int = 3):
    """Observations and valid-action masks of packs driven by uniformly random actions."""
    env = BatchedBalancingVecEnv(packs, profile=PROFILE, pack={"n_cells": n_cells})
    env.seed(seed)
    obs, rng = env.reset(), np.random.default_rng(seed)
    observations, masks = [], []
    for _ in range(steps):
        observations.append(obs.copy())
        masks.append(env.action_masks())
        obs, *_ = env.step(rng.integers(0, env.action_space.n, packs))
    observations, masks = np.concatenate(observations), np.concatenate(masks)
    assert (~masks).any(axis=1).mean() > 0.2  # many states have invalid actions: the test can fail
    return env, observations, masks


def invalid_choices(actions: np.ndarray, masks: np.ndarray) -> int:
    return int((~masks[np.arange(len(masks)), actions]).sum())


@pytest.mark.parametrize("n_cells", [5, 8])
def test_the_greedy_action_is_never_invalid_also_after_save_and_load(tmp_path, n_cells):
    env, obs, masks = random_states(n_cells)
    model = MaskedDQN("MlpPolicy", env, seed=1, device="cpu")  # untrained: its argmax ignores validity
    assert model.greedy_valid_only
    masked, _ = model.predict(obs, deterministic=True, action_masks=masks)
    assert invalid_choices(masked, masks) == 0
    q = model.q_net(model.policy.obs_to_tensor(obs)[0]).detach().numpy()
    np.testing.assert_array_equal(masked, np.where(masks, q, -np.inf).argmax(axis=1))  # the best valid one
    for k in range(0, len(obs), 97):  # one observation at a time: SB3's shapes
        action, _ = model.predict(obs[k], deterministic=True, action_masks=masks[k])
        assert action.shape == () and action == masked[k]

    model.save(tmp_path / "on.zip")
    loaded = MaskedDQN.load(tmp_path / "on.zip", device="cpu")
    assert loaded.greedy_valid_only
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True, action_masks=masks)[0], masked)

    # The same network without the option: plain DQN's argmax, which does pick invalid actions.
    model.greedy_valid_only = False
    plain, _ = model.predict(obs, deterministic=True, action_masks=masks)
    np.testing.assert_array_equal(plain, model.predict(obs, deterministic=True)[0])
    assert invalid_choices(plain, masks) > 0.05 * len(obs)
    model.save(tmp_path / "off.zip")
    assert not MaskedDQN.load(tmp_path / "off.zip", device="cpu").greedy_valid_only  # the option is saved


def test_exploration_stays_uniform_over_all_actions():
    env, obs, masks = random_states(5, steps=40)
    model = MaskedDQN("MlpPolicy", env, seed=1, device="cpu")
    model.exploration_rate = 1.0
    actions = np.concatenate([model.predict(obs, action_masks=masks)[0] for _ in range(5)])
    assert invalid_choices(actions, np.tile(masks, (5, 1))) > 0
    assert len(np.unique(actions)) == env.action_space.n


def test_by_default_the_learning_is_plain_dqns():
    """With double_q, masked_target and target_update_gradient_steps off, only acting changes: the
    same data and seeds give the same network after training as SB3's DQN."""
    env, obs, masks = random_states(5, packs=4, steps=40)
    models = [cls("MlpPolicy", env, seed=7, device="cpu", learning_starts=0, batch_size=16) for cls in (DQN, MaskedDQN)]
    for model in models:
        model.set_logger(Logger(folder=None, output_formats=[]))
        rng = np.random.default_rng(0)
        for k in range(0, len(obs) - 4, 4):
            model.replay_buffer.add(
                obs[k : k + 4],
                obs[k + 4 : k + 8],
                rng.integers(0, 32, 4),
                rng.normal(size=4),
                np.zeros(4),
                [{} for _ in range(4)],
            )
        np.random.seed(3)
        model.train(gradient_steps=5, batch_size=16)
    for a, b in zip(models[0].q_net.parameters(), models[1].q_net.parameters()):
        assert th.equal(a, b)


def test_td_targets_of_dqn_double_dqn_and_the_masked_next_action():
    """A two-state batch where the four targets differ: the target network's max (DQN), the online
    network's argmax valued by the target network (Double DQN), each over the valid actions only."""
    rewards, dones = th.tensor([[1.0], [1.0]]), th.tensor([[0.0], [1.0]])
    q_target = th.tensor([[5.0, 2.0, 3.0], [9.0, 9.0, 9.0]])
    q_online = th.tensor([[1.0, 4.0, 2.0], [0.0, 0.0, 0.0]])
    valid = th.tensor([[False, True, True], [True, True, True]])
    g = 0.5
    assert td_target(rewards, dones, g, q_target).flatten().tolist() == [1 + g * 5.0, 1.0]
    assert td_target(rewards, dones, g, q_target, q_online).flatten().tolist() == [1 + g * 2.0, 1.0]
    assert td_target(rewards, dones, g, q_target, None, valid).flatten().tolist() == [1 + g * 3.0, 1.0]
    only_first = th.tensor([[True, False, False], [True, True, True]])
    assert td_target(rewards, dones, g, q_target, q_online, only_first).flatten().tolist() == [1 + g * 5.0, 1.0]
    none_valid = th.zeros((2, 3), dtype=th.bool)  # no valid action: over all, as unmasked
    assert th.equal(
        td_target(rewards, dones, g, q_target, q_online, none_valid), td_target(rewards, dones, g, q_target, q_online)
    )


def _decoded_masks(next_obs: np.ndarray, n_cells: int):
    """Valid actions by the default invalid-action rule (the lowest cell's shunt while discharging),
    from the newest frame of observations; rows whose lowest cell is ambiguous at float32 precision
    are marked undecidable."""
    assert defaults()["env"]["invalid_rules"] == ["lowest_soc_while_discharging"]
    soc = (next_obs[:, :n_cells].astype(np.float64) + 1.0) / 2.0
    discharging = next_obs[:, 3 * n_cells] > 0.0
    order = np.sort(soc, axis=1)
    clear = order[:, 1] - order[:, 0] > 1e-5
    forbidden = np.zeros(soc.shape, dtype=bool)
    forbidden[np.arange(len(soc)), soc.argmin(axis=1)] = discharging
    bits = (np.arange(2**n_cells)[:, None] >> np.arange(n_cells)) & 1
    return ~(bits[None, :, :].astype(bool) & forbidden[:, None, :]).any(axis=2), clear


def test_the_masked_target_stores_each_next_states_valid_actions():
    env = VecMonitor(BatchedBalancingVecEnv(8, profile=PROFILE))
    model = MaskedDQN(
        "MlpPolicy",
        env,
        seed=2,
        device="cpu",
        learning_starts=200,
        buffer_size=4000,
        train_freq=4,
        gradient_steps=1,
        batch_size=32,
        double_q=True,
        masked_target=True,
        target_update_gradient_steps=50,
    )
    model.learn(2400)
    buffer = model.replay_buffer
    n = buffer.pos
    live = buffer.dones[:n] == 0
    expected, clear = _decoded_masks(buffer.next_observations[:n][live], 5)
    stored = buffer.next_masks[:n][live]
    assert (~stored).any(axis=1).mean() > 0.2  # many next states have invalid actions: the test can fail
    np.testing.assert_array_equal(stored[clear], expected[clear])
    assert clear.mean() > 0.95
    assert buffer.next_masks[:n][~live].all()  # an ended episode's next masks are all valid (unused when terminated)


def test_target_updates_counted_in_gradient_steps():
    env, obs, masks = random_states(5, packs=4, steps=40)
    model = MaskedDQN(
        "MlpPolicy",
        env,
        seed=7,
        device="cpu",
        learning_starts=0,
        batch_size=16,
        target_update_gradient_steps=3,
        target_update_interval=10**9,
    )
    model.set_logger(Logger(folder=None, output_formats=[]))
    rng = np.random.default_rng(0)
    for k in range(0, len(obs) - 4, 4):
        model.replay_buffer.add(
            obs[k : k + 4],
            obs[k + 4 : k + 8],
            rng.integers(0, 32, 4),
            rng.normal(size=4),
            np.zeros(4),
            [{} for _ in range(4)],
        )
    same = lambda: all(th.equal(a, b) for a, b in zip(model.q_net.parameters(), model.q_net_target.parameters()))  # noqa: E731
    model.train(gradient_steps=2, batch_size=16)
    assert model._n_updates == 2 and not same()
    model.train(gradient_steps=1, batch_size=16)  # the third gradient step updates the target (tau = 1)
    assert model._n_updates == 3 and same()


class InvalidCount(BaseCallback):
    """Invalid actions taken by the training rollouts after ``learning_starts``."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.invalid, self.decisions = after, 0, 0

    def _on_step(self) -> bool:
        if self.num_timesteps > self.after:
            self.invalid += sum(info["invalid_action"] for info in self.locals["infos"])
            self.decisions += len(self.locals["infos"])
        return True


@pytest.mark.parametrize("on", [True, False])
def test_training_rollouts_act_on_valid_actions(on):
    """Greedy rollout actions (epsilon 0) read the training env's masks; without the option the
    same seed's rollouts take invalid actions."""
    env = VecMonitor(BatchedBalancingVecEnv(8, full_info=True, profile=PROFILE))
    model = MaskedDQN(
        "MlpPolicy",
        env,
        seed=1,
        device="cpu",
        learning_starts=64,
        batch_size=32,
        exploration_initial_eps=0.0,
        exploration_final_eps=0.0,
        greedy_valid_only=on,
    )
    count = InvalidCount(after=64)
    model.learn(1600, callback=count)
    assert count.decisions > 1000
    assert (count.invalid == 0) if on else (count.invalid > 0)


def test_a_plain_dqn_model_loads_acting_as_it_was_trained(tmp_path):
    """Models saved by stable_baselines3.DQN (before MaskedDQN) load with the option off."""
    env, obs, masks = random_states(5, steps=40)
    old = DQN("MlpPolicy", env, seed=1, device="cpu")
    old.save(tmp_path / "best_model.zip")
    cfg = defaults()
    (tmp_path / "run_config.json").write_text(json.dumps({"settings": {"algo": "dqn", "env": cfg["env"]}}))
    policy = load_policy("dqn", tmp_path / "best_model.zip", cfg)
    assert isinstance(policy, MaskedDQN) and not policy.greedy_valid_only
    np.testing.assert_array_equal(
        policy.predict(obs, deterministic=True, action_masks=masks)[0], old.predict(obs, deterministic=True)[0]
    )


SMALL = {
    "training": {
        "n_envs": 8,
        "total_steps": {"dqn": 3000},
        "eval_interval": 1000,
        "eval_episodes": 2,
        "checkpoint_interval": 1000,
        "hyperparams": {"dqn": {"learning_starts": 500, "buffer_size": 5000, "gradient_steps": 2, "batch_size": 64}},
    },
    "evaluation": {"episodes": 2},
    # the study's reward: after 3000 steps under it the unmasked greedy policy requests invalid
    # actions on the evaluation packs, so the masked and unmasked returns differ and the check below
    # can fail (under the capacity reward this tiny run leaves every shunt open, masked or not)
    "reward": {"kind": "study"},
}


def test_a_trained_masked_dqn_takes_no_invalid_action_in_evaluation(tmp_path):
    """`bmsrl train` records the option, its evaluation callback passes the masks (the best model is
    chosen by the policy evaluation uses), and `bmsrl evaluate --policy dqn` takes no invalid action."""
    from sb3_contrib.common.maskable.evaluation import evaluate_policy

    from bmsrl.config import load_config
    from bmsrl.seeds import training_eval_seed
    from bmsrl.task_config import task_kwargs

    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "dqn"
    assert main(["train", "--config", str(config), "--algo", "dqn", "--seed", "2", "--out", str(out)]) == 0
    record = json.loads((out / "run_config.json").read_text())
    assert record["settings"]["hyperparams"]["greedy_valid_only"] is True

    # best_model.zip is the model of the best training evaluation, on the evaluation packs, with masks.
    cfg = load_config(config)
    model = MaskedDQN.load(out / "best_model.zip", device="cpu")
    returns = {}
    for use_masking in (True, False):
        eval_env = VecMonitor(BatchedBalancingVecEnv(2, **task_kwargs(cfg, cfg["profiles"]["train"])))
        eval_env.seed(training_eval_seed(cfg, 2))
        returns[use_masking], _ = evaluate_policy(
            model, eval_env, n_eval_episodes=2, deterministic=True, return_episode_rewards=True, use_masking=use_masking
        )
    with np.load(out / "evaluations.npz") as ev:
        np.testing.assert_allclose(ev["results"][np.argmax(ev["results"].mean(axis=1))], returns[True], rtol=1e-6)
    assert not np.allclose(returns[True], returns[False])  # unmasked it acts otherwise: the check can fail

    for profile in ("discharge-rest-charge", "charge-rest-discharge"):
        ev = tmp_path / profile
        assert (
            main(
                [
                    "evaluate",
                    "--config",
                    str(config),
                    "--policy",
                    "dqn",
                    "--profile",
                    profile,
                    "--seed",
                    "2",
                    "--model",
                    str(out / "best_model.zip"),
                    "--out",
                    str(ev),
                ]
            )
            == 0
        )
        metrics = pd.read_csv(ev / "metrics.csv")
        assert len(metrics) == 2 and (metrics["invalid_actions"] == 0).all()
        assert pd.read_csv(ev / "traces.csv").filter(like="switch_").to_numpy().any()  # it does close shunts


def test_checkpoints_of_a_plain_dqn_run_are_not_resumed(tmp_path):
    """A checkpoint folder written before the option existed records hyperparams without it: the
    settings differ, so `bmsrl train` starts afresh instead of resuming a plain DQN as MaskedDQN."""
    from bmsrl.train import RUN_RECORD, prepare_workdir, run_settings

    settings = run_settings(defaults(), "dqn", 1, PROFILE, None)
    assert settings["hyperparams"]["greedy_valid_only"] is True
    old = json.loads(json.dumps(settings, default=str))
    del old["hyperparams"]["greedy_valid_only"]
    work = tmp_path / "checkpoints"
    work.mkdir()
    (work / RUN_RECORD).write_text(json.dumps({"settings": old}))
    (work / "model_1000_steps.zip").write_bytes(b"plain DQN")
    prepare_workdir(work, settings, 10_000)
    assert not (work / "model_1000_steps.zip").exists()
    assert json.loads((work / RUN_RECORD).read_text())["settings"]["hyperparams"]["greedy_valid_only"] is True
