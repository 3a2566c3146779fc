"""training.profiles: packs on several load profiles side by side (bmsrl.vec_env.MixedProfileVecEnv)."""

from __future__ import annotations

import numpy as np
import pytest

from bmsrl.config import validate
from bmsrl.errors import UserError
from bmsrl.settings import check_profile_option, training_profiles
from bmsrl.vec_env import BatchedBalancingVecEnv, MixedProfileVecEnv, make_vec_env

TRAIN, TEST = "discharge-rest-charge", "charge-rest-discharge"


def test_each_pack_of_the_mix_is_the_pack_of_its_profiles_batch():
    """Pack k of a mix seeded s follows profiles[k % 2] exactly as pack k of a one-profile batch
    seeded s does, through episode ends and resets (about 3 episodes of the shorter profile)."""
    packs, seed, rng = 6, 21, np.random.default_rng(0)
    mix = MixedProfileVecEnv(packs, [TRAIN, TEST])
    alone = {p: BatchedBalancingVecEnv(packs, profile=p) for p in (TRAIN, TEST)}
    for env in (mix, *alone.values()):
        env.seed(seed)
    obs = {"mix": mix.reset(), **{p: env.reset() for p, env in alone.items()}}
    follows = np.array([TRAIN, TEST] * (packs // 2))
    for p in (TRAIN, TEST):
        np.testing.assert_array_equal(obs["mix"][follows == p], obs[p][follows == p])
    ends = 0
    for _ in range(700):
        actions = rng.integers(0, 32, packs)
        out = {"mix": mix.step(actions), **{p: env.step(actions) for p, env in alone.items()}}
        for p in (TRAIN, TEST):
            mine = follows == p
            for x, y in zip(out["mix"][:3], out[p][:3], strict=True):
                np.testing.assert_array_equal(x[mine], y[mine])
        np.testing.assert_array_equal(mix.action_masks()[follows == TEST], alone[TEST].action_masks()[follows == TEST])
        ends += int(out["mix"][2].sum())
    assert ends >= packs  # every pack has ended an episode and been reset at least once


def test_the_test_order_starts_training_packs_where_the_test_packs_start():
    """Packs on the test order begin charging at SoC ~ U(init_soc), the evaluation packs' distribution;
    packs on the training order begin discharging."""
    env = make_vec_env(8, [TRAIN, TEST], full_info=True)
    env.seed(3)
    env.reset()
    for k, info in enumerate(env.reset_infos):
        assert info["phase"] == ("charge" if k % 2 else "discharge")
        assert np.all((info["soc"] >= 0.4) & (info["soc"] <= 0.6))
    assert isinstance(make_vec_env(4, [TEST]), BatchedBalancingVecEnv)


def test_bad_mixes_are_refused():
    with pytest.raises(ValueError, match="at least one pack each"):
        MixedProfileVecEnv(1, [TRAIN, TEST])
    with pytest.raises(ValueError, match="distinct"):
        MixedProfileVecEnv(4, [TRAIN, TRAIN])
    with pytest.raises(UserError, match="training.n_envs: 1 packs cannot follow"):
        validate({"training": {"n_envs": 1, "profiles": [TRAIN, TEST]}}, "cfg.yaml")


def test_the_default_trains_on_profiles_train_and_a_mix_is_recorded():
    from bmsrl.learning import learning_settings, make_envs

    cfg = validate({"training": {"n_envs": 4, "eval_episodes": 2}}, "cfg.yaml")
    assert training_profiles(cfg, TRAIN) == (TRAIN,)
    assert "profiles" not in learning_settings(cfg, "ppo", TRAIN, None)  # earlier records keep their identity
    check_profile_option(cfg, TEST)  # --profile alone is fine
    mixed = validate({"training": {"n_envs": 4, "eval_episodes": 2, "profiles": [TRAIN, TEST]}}, "cfg.yaml")
    assert learning_settings(mixed, "ppo", TRAIN, None)["profiles"] == [TRAIN, TEST]
    env, eval_env = make_envs(mixed, "ppo", TRAIN, None, 2, normalize_reward=False)
    assert env.venv.profiles == [TRAIN, TEST] and eval_env.venv.profiles == [TRAIN, TEST]
    with pytest.raises(UserError, match="--profile charge-rest-discharge and training.profiles"):
        check_profile_option(mixed, TEST)


def test_training_runs_on_a_mix(tmp_path):
    import json

    import yaml

    from bmsrl.cli import main

    cfg = {
        "training": {
            "n_envs": 4,
            "total_steps": {"a2c": 512},
            "eval_interval": 256,
            "eval_episodes": 2,
            "checkpoint_interval": 512,
            "profiles": [TEST, TRAIN],
        }
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--algo", "a2c", "--seed", "1", "--out", str(out)]) == 0
    assert json.loads((out / "run_config.json").read_text())["settings"]["profiles"] == [TEST, TRAIN]


def test_the_training_curves_reference_lines_run_on_the_mix_the_agents_are_evaluated_on():
    """bmsrl.reference's baseline returns and capacities equal a baseline's first episode on each pack
    of the evaluation env training builds (the same mix, the same pack generators)."""
    from bmsrl.baselines import make_baseline
    from bmsrl.reference import baseline_results
    from bmsrl.seeds import training_eval_seed
    from bmsrl.task_config import task_kwargs

    cfg = validate({"training": {"eval_episodes": 4, "profiles": [TEST, TRAIN]}}, "cfg.yaml")
    settings = cfg["baselines"]["top_balancing"]
    result = baseline_results(cfg, 2, {"top_balancing": settings})["top_balancing"]
    expected = result["return"]
    env = make_vec_env(4, [TEST, TRAIN], **task_kwargs(cfg, TRAIN, None))
    env.seed(training_eval_seed(cfg, 2))
    obs, policy = env.reset(), make_baseline("top_balancing", 5, settings, env=cfg["env"])
    returns, running, capacity_mah = np.zeros(4), np.ones(4, dtype=bool), np.full(4, np.nan)
    while running.any():
        obs, reward, done, infos = env.step(policy.predict(obs)[0])
        returns += np.where(running, reward, 0.0)
        for k in np.flatnonzero(running & done):
            capacity_mah[k] = 1000.0 * infos[k]["usable_capacity_ah"]
        running &= ~done
    np.testing.assert_allclose(returns, expected, rtol=1e-5)
    np.testing.assert_allclose(capacity_mah, result["capacity_mah"], rtol=1e-6)
    assert expected[0] != expected[1]  # the two orders differ
