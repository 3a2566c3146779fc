"""CellSetExtractor: one MLP shared by every cell, pooled pack context, the room features."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

from bmsrl.masked_dqn import MaskedDQN
from bmsrl.networks import CellSetExtractor, features_policy_kwargs
from bmsrl.vec_env import BatchedBalancingVecEnv

N = 5


def observations(packs=64, steps=60, seed=0):
    env = BatchedBalancingVecEnv(packs, profile="charge-rest-discharge")
    env.seed(seed)
    obs, rng, out = env.reset(), np.random.default_rng(seed), []
    for _ in range(steps):
        out.append(obs.copy())
        obs, *_ = env.step(rng.integers(0, 32, packs))
    return env, th.as_tensor(np.concatenate(out))


def permute_cells(obs: th.Tensor, perm: np.ndarray) -> th.Tensor:
    """The observations with the cells reordered (every per-cell field of every frame)."""
    x = obs.reshape(len(obs), -1, 3 * N + 1).clone()
    for field in range(3):
        block = x[:, :, field * N : (field + 1) * N]
        x[:, :, field * N : (field + 1) * N] = block[:, :, perm]
    return x.reshape(len(obs), -1)


@pytest.mark.parametrize("physics", [False, True])
def test_permuting_the_cells_permutes_the_embeddings_and_keeps_the_pooled_features(physics):
    env, obs = observations()
    th.manual_seed(0)
    net = CellSetExtractor(env.observation_space, N, (0.1, 0.9), physics=physics, cell_net_arch=(16, 8))
    perm = np.array([3, 0, 4, 1, 2])
    with th.no_grad():
        a, b = net(obs), net(permute_cells(obs, perm))
    cells_a, cells_b = a[:, : N * 8].reshape(-1, N, 8), b[:, : N * 8].reshape(-1, N, 8)
    th.testing.assert_close(cells_b, cells_a[:, perm], rtol=0, atol=1e-6)
    th.testing.assert_close(b[:, N * 8 :], a[:, N * 8 :], rtol=0, atol=1e-6)
    assert net.features_dim == (N + 2) * 8 and a.shape == (len(obs), net.features_dim)


def test_the_room_feature_is_what_the_capacity_aware_rule_thresholds():
    """h_e - h_i of the newest frame, with e the cell with the least charge above the lower limit."""
    env, obs = observations(packs=8, steps=20)
    net = CellSetExtractor(env.observation_space, N, (0.1, 0.9), physics=True)
    inputs = net.cell_inputs(obs)
    k = net.frames
    deficit = inputs[:, :, -3 * k + 2]  # physics block: per frame (newest first) q, h, h_e - h
    x = obs.numpy().astype(np.float64)
    soc, soh = (x[:, :N] + 1) / 2, 1 + x[:, 2 * N : 3 * N] / 10
    q, h = (soc - 0.1) * soh, (0.9 - soc) * soh
    expected = h[np.arange(len(x)), q.argmin(axis=1)][:, None] - h
    np.testing.assert_allclose(deficit.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_agents_learn_with_it(algo):
    env = BatchedBalancingVecEnv(8, profile="discharge-rest-charge")
    kwargs = features_policy_kwargs("cell_set_physics", N, (0.1, 0.9))
    if algo == "ppo":
        model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu", policy_kwargs=kwargs)
    else:
        model = MaskedDQN(
            "MlpPolicy", env, learning_starts=64, batch_size=32, seed=0, device="cpu", policy_kwargs=kwargs
        )
    model.learn(512)
    extractor = model.policy.features_extractor if algo == "ppo" else model.q_net.features_extractor
    assert isinstance(extractor, CellSetExtractor) and extractor.physics


def test_raw_features_add_nothing_and_unknown_ones_are_refused():
    assert features_policy_kwargs("raw", N, (0.1, 0.9)) == {}
    with pytest.raises(ValueError, match="unknown features 'cells'"):
        features_policy_kwargs("cells", N, (0.1, 0.9))


def test_training_features_reach_the_trained_model(tmp_path):
    """training.features: cell_set_physics trains a PPO whose saved policy has the extractor, and
    the run's settings record names the features (a checkpoint of other features is not resumed)."""
    import json

    import yaml

    from bmsrl.agents import algorithm_class
    from bmsrl.cli import main

    cfg = {
        "training": {
            "n_envs": 8,
            "total_steps": {"ppo": 1024},
            "eval_interval": 512,
            "eval_episodes": 2,
            "checkpoint_interval": 512,
            "features": "cell_set_physics",
            "hyperparams": {"ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 1}},
        }
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--algo", "ppo", "--seed", "1", "--out", str(out)]) == 0
    model = algorithm_class("ppo").load(out / "final_model.zip", device="cpu")
    assert isinstance(model.policy.features_extractor, CellSetExtractor) and model.policy.features_extractor.physics
    assert json.loads((out / "run_config.json").read_text())["settings"]["features"] == "cell_set_physics"
