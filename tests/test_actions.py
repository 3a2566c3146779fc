"""The two action spaces (``env.action_space``, bmsrl.actions): the same pack under the same shunt
schedule, the per-cell invalid-action rule, baselines and agents of either space, DQN refused."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import A2C, PPO

from bmsrl.actions import as_indices, bits_to_index, check_bits, index_to_bits
from bmsrl.baselines import BASELINES, make_baseline
from bmsrl.best_known import BestKnown
from bmsrl.config import validate
from bmsrl.env import BalancingTask, PassiveBalancingEnv, pack_rng
from bmsrl.errors import UserError
from bmsrl.networks import CellSetExtractor, features_policy_kwargs
from bmsrl.pack import PackParameters
from bmsrl.rollout import rollout
from bmsrl.vec_env import BatchedBalancingVecEnv

N = 5


def test_bits_and_indices_are_one_encoding():
    indices = np.arange(2**N)
    bits = index_to_bits(indices, N)
    assert bits.shape == (2**N, N) and bits[0b00101].tolist() == [True, False, True, False, False]
    np.testing.assert_array_equal(bits_to_index(bits), indices)
    np.testing.assert_array_equal(as_indices(bits.astype(np.float32), 2**N, N), indices)  # SB3's Bernoulli floats
    np.testing.assert_array_equal(as_indices(indices, 2**N, N), indices)


@pytest.mark.parametrize("bad", [np.full((2, N), 0.5), np.ones((2, N + 1)), np.array([[1, 0, 2, 0, 0]] * 2)])
def test_bad_bits_are_refused(bad):
    with pytest.raises(ValueError, match="invalid action"):
        check_bits(bad, 2, N)


@pytest.mark.parametrize("profile", ["discharge-rest-charge", "charge-rest-discharge"])
def test_both_spaces_give_the_same_trajectory_for_the_same_shunt_schedule(profile):
    """Random shunt schedules (no invalid-action rule, so every request applies in both spaces): the
    discrete task stepped with indices and the multi_binary task with the same bits give the same
    pack, reward and episode end at every step."""
    packs, rng = 6, np.random.default_rng(3)
    tasks = {
        space: BalancingTask(n_packs=packs, profile=profile, invalid_rules=(), action_space=space)
        for space in ("discrete", "multi_binary")
    }
    for task in tasks.values():
        task.reset_drawn([pack_rng(7, k) for k in range(packs)])
    for _ in range(150):
        bits = rng.random((packs, N)) < 0.3
        a = tasks["discrete"].step(bits_to_index(bits))
        b = tasks["multi_binary"].step(bits.astype(np.int8))
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        for key in ("soc", "switches", "terminal_v", "shunt_energy_wh", "discharged_ah"):
            np.testing.assert_array_equal(
                getattr(tasks["discrete"].sim.state, key), getattr(tasks["multi_binary"].sim.state, key)
            )


def test_the_rules_apply_per_cell_a_forbidden_shunt_stays_open_and_is_counted():
    """While the pack discharges the lowest cell's shunt is forbidden: multi_binary applies the other
    bits (discrete keeps the previous switches), both count the step invalid and charge w_inv."""
    results = {}
    for space in ("discrete", "multi_binary"):
        env = PassiveBalancingEnv(profile="discharge-rest-charge", action_space=space)
        obs, info = env.reset(seed=4)
        lowest = int(np.argmin(info["soc"]))
        request = np.ones(N, dtype=np.int64)  # every shunt, the lowest cell's included
        action = request if space == "multi_binary" else int(bits_to_index(request))
        obs, reward, *_, info = env.step(action)
        assert info["invalid_action"]
        results[space] = (info["switches"], reward)
        if space == "multi_binary":  # [open allowed, close allowed] per cell: the lowest may not close
            assert env.action_masks().reshape(N, 2)[:, 1].tolist() == [k != lowest for k in range(N)]
    expected = np.ones(N, dtype=np.int64)
    expected[lowest] = 0
    np.testing.assert_array_equal(results["multi_binary"][0], expected)
    np.testing.assert_array_equal(results["discrete"][0], np.zeros(N, dtype=np.int64))
    assert results["multi_binary"][1] < 0 and results["discrete"][1] < 0  # w_inv charged in both


def test_gymnasium_checks_the_multi_binary_env():
    gym_check_env(PassiveBalancingEnv(action_space="multi_binary"), skip_render_check=True)
    env = PassiveBalancingEnv(action_space="multi_binary")
    env.reset(seed=1)
    with pytest.raises(ValueError, match="MultiBinary"):
        env.step(3)
    with pytest.raises(ValueError, match="action_space"):
        BalancingTask(action_space="per_cell")


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_run_alike_in_either_space(name):
    """A baseline answers with indices; on a multi_binary task the rollout converts them (one place),
    and the episodes equal the discrete task's (the baselines never request a forbidden shunt)."""
    spec = BASELINES[name]
    settings = {k: v["default"] for k, v in BASELINES[spec.settings_key].settings.items()}
    policy = make_baseline(name, N, settings, env=PackParameters())
    ends = {}
    for space in ("discrete", "multi_binary"):
        task = BalancingTask(n_packs=4, profile="charge-rest-discharge", action_space=space)
        task.reset_drawn([pack_rng(11, k) for k in range(4)])
        result = rollout(task, policy)
        ends[space] = (result.returns, result.switch_changes, result.end["soc"])
    for x, y in zip(ends["discrete"], ends["multi_binary"], strict=True):
        np.testing.assert_array_equal(x, y)


def test_best_known_runs_in_the_multi_binary_space():
    base = make_baseline("room_balancing", N, {"margin_mah": 5.0, "hysteresis_mah": 2.5}, env=PackParameters())
    task = BalancingTask(n_packs=1, profile="charge-rest-discharge", action_space="multi_binary")
    task.reset_drawn([pack_rng(2, 0)])
    result = rollout(task, BestKnown(base), max_decisions=3)
    assert result.steps[0] == 3


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_ppo_and_a2c_learn_per_cell_actions_with_the_cell_set_network(algo):
    env = BatchedBalancingVecEnv(8, profile="discharge-rest-charge", action_space="multi_binary")
    kwargs = features_policy_kwargs("cell_set_physics", N, (0.1, 0.9))
    extra = {"batch_size": 64, "n_epochs": 1} if algo is PPO else {}
    model = algo("MlpPolicy", env, n_steps=16, seed=0, device="cpu", policy_kwargs=kwargs, **extra)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(384)
    assert isinstance(model.policy.features_extractor, CellSetExtractor)
    assert any(not np.array_equal(a.numpy(), b.detach().numpy()) for a, b in zip(before, model.policy.parameters()))
    obs = env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (8, N) and set(np.unique(actions)) <= {0, 1}
    # the trained agent runs through the one rollout loop
    task = BalancingTask(n_packs=2, profile="charge-rest-discharge", action_space="multi_binary")
    task.reset_drawn([pack_rng(5, k) for k in range(2)])
    assert rollout(task, model).steps.min() > 0


def test_maskable_ppo_samples_only_valid_shunts_per_cell():
    from sb3_contrib import MaskablePPO

    env = BatchedBalancingVecEnv(8, profile="discharge-rest-charge", action_space="multi_binary")
    model = MaskablePPO("MlpPolicy", env, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    env.seed(0)
    obs = env.reset()
    for _ in range(20):
        masks = env.action_masks()
        actions, _ = model.predict(obs, action_masks=masks, deterministic=False)
        forbidden = ~masks.reshape(8, N, 2)[:, :, 1]
        assert not (actions.astype(bool) & forbidden).any()
        obs, *_ = env.step(actions)


@pytest.mark.parametrize("algo", ["dqn", "ars"])
def test_algorithms_without_per_cell_actions_are_refused(algo):
    with pytest.raises(UserError, match=f"env.action_space: multi_binary is not available for {algo}"):
        validate({"algos": [algo, "ppo"], "env": {"action_space": "multi_binary"}}, "cfg.yaml")
    assert validate({"algos": ["ppo", "a2c", "trpo", "maskable_ppo"], "env": {"action_space": "multi_binary"}}, "c")


def test_a_scenario_cannot_change_the_action_space():
    cfg = {"evaluation": {"scenarios": {"default": {}, "bits": {"action_space": "multi_binary"}}}}
    with pytest.raises(UserError, match="evaluation.scenarios.bits.action_space"):
        validate(cfg, "cfg.yaml")


@pytest.mark.parametrize("algo", ["maskable_ppo", "trpo"])
def test_train_and_evaluate_a_per_cell_agent_through_the_cli(tmp_path, algo):
    """``env.action_space: multi_binary`` through the stages: train (its evaluation callback reads the
    per-cell masks for Maskable PPO), then evaluate the best model on test packs."""
    import pandas as pd
    import yaml

    from bmsrl.cli import main

    cfg = {
        "algos": [algo],
        "env": {"action_space": "multi_binary"},
        "evaluation": {"episodes": 2},
        "training": {
            "n_envs": 4,
            "total_steps": {algo: 256},
            "eval_interval": 128,
            "eval_episodes": 2,
            "checkpoint_interval": 256,
            "hyperparams": {algo: {"n_steps": 32, "batch_size": 64}},
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run, out = tmp_path / "run", tmp_path / "eval"
    assert main(["train", "--config", str(path), "--algo", algo, "--seed", "1", "--out", str(run)]) == 0
    args = ["--profile", "charge-rest-discharge", "--seed", "1", "--model", str(run / "best_model.zip")]
    assert main(["evaluate", "--config", str(path), "--policy", algo, *args, "--out", str(out)]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 2 and (metrics["episode_steps"] > 0).all()
    if algo == "maskable_ppo":  # samples only valid shunts, so no step is invalid
        assert (metrics["invalid_actions"] == 0).all()
