"""The study's algorithms on a batch of packs: update counts at the study's budget, ARS's sample
accounting and antithetic pairing, and a short training run of A2C, TRPO and ARS whose model evaluates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor

from bmsrl import algos
from bmsrl.agents import algorithm_class
from bmsrl.cli import main
from bmsrl.config import load_config
from bmsrl.vec_env import BatchedBalancingVecEnv

EPISODE_STEPS = 200  # decisions of one episode on the shipped training profile (about)


def test_every_algorithm_updates_thousands_of_times_at_the_study_budget():
    """With the defaults (64 packs, each algorithm's total_steps), an on-policy update uses at most
    4096 transitions and there are >= 5000 of them; ARS makes >= 500 updates (each ~25,600 transitions)."""
    cfg = load_config()
    training = cfg["training"]
    n_envs = training["n_envs"]
    assert n_envs == 64
    for name, spec in algos.ALGOS.items():
        hp, budget = training["hyperparams"][name], training["total_steps"][name]
        if spec.on_policy:
            per_update = hp.get("n_steps", spec.default_n_steps) * n_envs
            assert per_update <= 4096 and budget // per_update >= 5000, (name, per_update, budget)
        elif spec.log_unit == "iteration":
            per_update = algos.sb3_log_interval(name, 10**12, n_envs, hp, EPISODE_STEPS)
            per_update = 10**12 // per_update  # the env steps of one iteration, as the registry counts them
            assert budget // per_update >= 500, (name, per_update, budget)


class CountingVecEnv(VecEnvWrapper):
    """Counts the transitions simulated and keeps the observations of every reset."""

    def __init__(self, venv) -> None:
        super().__init__(venv)
        self.steps, self.resets = 0, []

    def reset(self):
        obs = self.venv.reset()
        self.resets.append(obs.copy())
        return obs

    def step_wait(self):
        self.steps += self.num_envs
        return self.venv.step_wait()


class CountCalls(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _on_step(self) -> bool:
        self.calls += 1
        return True


@pytest.mark.parametrize("n_delta", [4, 8, 16])  # 2 packs per direction, 1, and 2 passes per sign
def test_ars_counts_every_simulated_transition_and_pairs_candidates_on_identical_packs(n_delta):
    n_envs = 8
    env = CountingVecEnv(VecMonitor(BatchedBalancingVecEnv(n_envs)))
    env.seed(1)
    hyperparams = {**algos.get("ars").hyperparams, "n_delta": n_delta, "n_top": n_delta}
    model = algorithm_class("ars")("MlpPolicy", env, seed=1, device="cpu", **hyperparams)
    calls = CountCalls()
    model.learn(12000, callback=calls)  # at least 2 iterations (an episode is ~200-250 steps)
    assert model.num_timesteps == env.steps >= 12000 and model._n_updates >= 2
    assert calls.calls * n_envs == env.steps  # callbacks once per vec-env step: eval_freq counts as elsewhere
    passes = -(-n_delta // n_envs)
    resets = env.resets[1:]  # the first is SB3's learn() set-up
    assert len(resets) == 2 * passes * model._n_updates
    for it in range(model._n_updates):
        first = 2 * passes * it
        for p in range(passes):  # "+" and "-" candidates of a direction start from the same packs ...
            np.testing.assert_array_equal(resets[first + 2 * p], resets[first + 2 * p + 1])
    assert not np.array_equal(resets[0], resets[2 * passes])  # ... and each iteration from new packs
    episodes = [info["l"] for info in model.ep_info_buffer]
    assert len(episodes) == 2 * passes * n_envs  # every pack's episode is used


def test_ars_pairs_differ_only_by_the_perturbation():
    """Identical candidates on the same packs earn identical returns: a "+" and a "-" candidate of a
    direction differ only by their perturbation. (Different packs do differ.)"""
    import torch as th

    env = VecMonitor(BatchedBalancingVecEnv(4))
    env.seed(3)
    model = algorithm_class("ars")("MlpPolicy", env, seed=3, device="cpu", n_delta=4, policy_kwargs={"net_arch": []})
    _, callback = model._setup_learn(10, None)
    weights = th.randn(model.n_params, generator=th.Generator().manual_seed(0))
    returns = model.evaluate_candidates(th.stack([weights] * 8), callback, None).numpy()
    np.testing.assert_array_equal(returns[:4], returns[4:])
    assert len(set(returns[:4].tolist())) > 1


SMALL = {
    "training": {
        "n_envs": 8,
        "total_steps": {"a2c": 3000, "trpo": 3000, "ars": 3000},
        "eval_interval": 1000,
        "eval_episodes": 2,
        "checkpoint_interval": 1000,
        "hyperparams": {"trpo": {"n_steps": 64, "batch_size": 128}, "ars": {"n_delta": 8}},
    },
    "evaluation": {"episodes": 2},
}


@pytest.mark.parametrize("algo", ["a2c", "trpo", "ars"])
def test_a2c_trpo_ars_train_and_their_models_evaluate(tmp_path, algo):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "train"
    assert main(["train", "--config", str(cfg), "--algo", algo, "--seed", "2", "--out", str(out)]) == 0
    with np.load(out / "evaluations.npz") as ev:
        assert ev["timesteps"][-1] >= 3000 and len(ev["timesteps"]) >= 3
        assert np.isfinite(ev["results"]).all()
    ev_out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--config",
                str(cfg),
                "--policy",
                algo,
                "--profile",
                "discharge-rest-charge",
                "--seed",
                "2",
                "--model",
                str(out / "best_model.zip"),
                "--out",
                str(ev_out),
            ]
        )
        == 0
    )
    metrics = pd.read_csv(ev_out / "metrics.csv")
    assert len(metrics) == 2 and (metrics["policy"] == algo).all() and np.isfinite(metrics["total_reward"]).all()
