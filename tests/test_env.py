"""The Gymnasium environment, the batched VecEnv, the reward and the baselines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

import bmsrl  # noqa: F401  (registers PassiveBalancing-v0)
from bmsrl.baselines import NoBalancing, RuleBased
from bmsrl.env import BalancingTask, PassiveBalancingEnv
from bmsrl.profiles import PROFILES, LoadProfile, Phase
from bmsrl.reward import RewardWeights
from bmsrl.vec_env import BatchedBalancingVecEnv, pack_rng

STEP_INFO_KEYS = {
    "time_s",
    "phase",
    "pack_current_a",
    "soc",
    "cell_voltage_v",
    "cell_current_a",
    "switches",
    "shunt_energy_wh",
    "switch_changes",
    "invalid_action",
}


def run_episode(env, policy, seed):
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info)]
    done = False
    while not done:
        action, _ = policy(obs)
        obs, reward, terminated, truncated, info = env.step(int(action))
        out.append((obs, reward, info))
        done = terminated or truncated
    return out, terminated, truncated


# ----------------------------------------------------------------------------- API conformance
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_gymnasium_and_sb3_check_env(profile):
    env = gym.make("PassiveBalancing-v0", profile=profile)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(PassiveBalancingEnv(profile=profile), warn=True)


def test_spaces_reset_and_step_info():
    env = gym.make("PassiveBalancing-v0")
    assert env.action_space == gym.spaces.Discrete(32)
    assert env.observation_space.shape == (48,)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (48,)
    assert info["soc"].shape == (5,) and info["soh"].shape == (5,)
    assert np.all((info["soc"] >= 0.4) & (info["soc"] <= 0.6))
    assert np.all((info["soh"] >= 0.95) & (info["soh"] <= 1.05))
    np.testing.assert_array_equal(obs[:16], obs[16:32])  # history starts as copies
    obs, reward, terminated, truncated, info = env.step(0b00011)
    assert set(info) >= STEP_INFO_KEYS
    assert info["time_s"] == 30.0 and info["phase"] == "discharge"
    for key in ("soc", "cell_voltage_v", "cell_current_a", "switches", "shunt_energy_wh"):
        assert np.shape(info[key]) == (5,), key
    assert info["switch_changes"] == 2
    # frame layout: switches of the newest frame are at 5..9 as 2 s - 1
    np.testing.assert_array_equal(obs[5:10], 2 * info["switches"] - 1)
    assert obs[15] == pytest.approx(1.0)  # discharging at I_max


def test_episode_runs_the_whole_profile_and_terminates():
    """The profile's end is the episode's natural end: terminated, not a time limit."""
    env = PassiveBalancingEnv(profile="charge-rest-discharge")
    steps, terminated, truncated = run_episode(env, NoBalancing().predict, seed=5)
    assert terminated and not truncated
    phases = [info["phase"] for _, _, info in steps[1:]]
    assert phases[0] == "charge" and "rest" in phases and phases[-1] == "done"
    final = steps[-1][2]
    # unbalanced: the charge phase stops at the first full cell, the discharge at the first empty one
    assert final["soc"].min() <= 0.1 + 1e-9
    assert 0.5 * 3.4 < final["discharged_ah"] < 0.8 * 3.4 * 1.05


def test_same_seed_same_trajectory_different_seed_differs():
    rng_actions = np.random.default_rng(0).integers(0, 32, 300)
    it = iter(rng_actions)
    a, _, _ = run_episode(PassiveBalancingEnv(), lambda obs: (next(it), None), seed=42)
    it = iter(rng_actions)
    b, _, _ = run_episode(PassiveBalancingEnv(), lambda obs: (next(it), None), seed=42)
    assert len(a) == len(b)
    for (oa, ra, ia), (ob, rb, ib) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
        np.testing.assert_array_equal(ia["soc"], ib["soc"])
    c = PassiveBalancingEnv().reset(seed=43)[1]["soc"]
    assert not np.array_equal(a[0][2]["soc"], c)


def test_batched_env_equals_single_envs_step_for_step():
    """Pack k of the batch == a PassiveBalancingEnv drawing from pack_rng(seed, k), across auto-resets."""
    n, seed, steps = 4, 7, 450  # > 2 episodes each, so auto-reset is covered
    kwargs = dict(profile="charge-rest-discharge")
    batched = BatchedBalancingVecEnv(n, full_info=True, **kwargs)
    dummy = DummyVecEnv([lambda: PassiveBalancingEnv(**kwargs) for _ in range(n)])
    batched.seed(seed)
    for k, env in enumerate(dummy.envs):
        env.unwrapped.np_random = pack_rng(seed, k)
    np.testing.assert_array_equal(batched.reset(), dummy.reset())
    rng = np.random.default_rng(1)
    n_done = 0
    for _ in range(steps):
        actions = rng.integers(0, 32, n)
        ob, rb, db, ib = batched.step(actions)
        od, rd, dd, idd = dummy.step(actions)
        np.testing.assert_array_equal(ob, od)
        np.testing.assert_allclose(rb, rd.astype(np.float32), rtol=0, atol=0)
        np.testing.assert_array_equal(db, dd)
        for k in range(n):
            np.testing.assert_array_equal(ib[k]["soc"], idd[k]["soc"])
            if db[k]:
                np.testing.assert_array_equal(ib[k]["terminal_observation"], idd[k]["terminal_observation"])
                assert ib[k]["TimeLimit.truncated"] == idd[k]["TimeLimit.truncated"]
        n_done += int(db.sum())
    assert n_done >= 2 * n


def _first_packs(seed: int, n: int, resets: int = 3) -> list[bytes]:
    """The initial SoC/SoH of ``resets`` successive episodes of every pack of a batch seeded ``seed``."""
    env = BatchedBalancingVecEnv(n)
    env.seed(seed)
    env.reset()
    draws = [env.task.sim.state.soc[k].tobytes() for k in range(n)]
    for _ in range(resets - 1):
        draws += [env.task.draw_initial_state(env._rngs[k])[0].tobytes() for k in range(n)]
    return draws


def test_training_seeds_share_no_pack_stream():
    """Under SB3's seed + k, seeds 1..3 of a 64-pack batch shared 63 of 64 streams; now they share none,
    and no training pack starts like an evaluation pack (reset(seed=int), evaluation.seed_offset + 1000 s + k)."""
    from bmsrl.config import defaults

    n = 64
    packs = {s: set(_first_packs(s, n)) for s in (1, 2, 3)}
    assert all(len(p) == 3 * n for p in packs.values())
    assert not (packs[1] & packs[2]) and not (packs[1] & packs[3]) and not (packs[2] & packs[3])
    cfg = defaults()
    evaluation = set()
    for s in (1, 2, 3, 0):  # seed 0 and small integers: what reset(seed=k) draws
        for k in range(cfg["evaluation"]["episodes"]):
            for value in (cfg["evaluation"]["seed_offset"] + 1000 * s + k, s * 64 + k):
                env = PassiveBalancingEnv()
                evaluation.add(env.reset(seed=value)[1]["soc"].tobytes())
    assert len(evaluation) == 2 * 4 * cfg["evaluation"]["episodes"]
    assert not (evaluation & (packs[1] | packs[2] | packs[3]))


def test_batched_env_training_infos_mark_no_time_limit_at_the_profiles_end():
    env = BatchedBalancingVecEnv(3)
    env.seed(0)
    env.reset()
    ends = []
    for _ in range(300):
        _, _, done, infos = env.step(np.zeros(3, dtype=int))
        ends += [infos[k] for k in np.flatnonzero(done)]
    assert ends and not any(info["TimeLimit.truncated"] for info in ends)
    assert all(info["terminal_observation"].shape == (48,) for info in ends)


def capped_profile(cap_s: float) -> LoadProfile:
    """A discharge to the lower limit whose safety cap is ``cap_s`` [s], then a short rest."""
    return LoadProfile("capped", (Phase("discharge", 2.35, cap_s, "lower"), Phase("rest", 0.0, 60.0, None)))


def test_only_a_safety_cap_truncates():
    """A discharge stopped by its cap (300 s, far before the lower limit) is a time limit: truncated,
    TimeLimit.truncated in the VecEnv's info; the same profile with a cap it never reaches terminates."""
    for cap_s, expect_truncated in ((300.0, True), (1e6, False)):
        task = BalancingTask(n_packs=2, profile=capped_profile(cap_s))
        task.reset_packs(np.arange(2), np.full((2, 5), 0.5), np.ones((2, 5)))
        for _ in range(10_000):
            _, _, terminated, truncated, _ = task.step(np.zeros(2, dtype=np.intp))
            if (terminated | truncated).all():
                break
        assert truncated.all() == expect_truncated and terminated.all() != expect_truncated, cap_s
        assert task.sim.state.capped.all() == expect_truncated


def test_the_last_transition_is_not_bootstrapped_by_sb3():
    """Through SB3's DQN: the transition that ends an episode at the profile's end is stored with
    done = 1 and no time-out, so its TD target is the reward alone (no gamma * max Q of the terminal
    observation)."""
    from stable_baselines3 import DQN

    env = BatchedBalancingVecEnv(2, profile="charge-rest-discharge")
    model = DQN("MlpPolicy", env, learning_starts=10**6, buffer_size=5000, seed=0, device="cpu")
    model.learn(1200)
    buffer = model.replay_buffer
    n = buffer.pos
    ends = buffer.dones[:n] == 1
    assert ends.any(), "no episode ended: the test cannot fail"
    assert not buffer.timeouts[:n][ends].any()
    # the done the TD target sees (SB3's ReplayBuffer: done * (1 - timeout)) is 1 at every end
    assert ((buffer.dones[:n] * (1 - buffer.timeouts[:n]))[ends] == 1).all()


def test_observation_frame_is_the_documented_encoding_bit_for_bit():
    """Each frame is [2 SoC - 1, 2 s - 1, (SoH - 1) / 0.1, I / I_max], each clipped to [-1, 1] in
    float64 and rounded to float32 once, also where the clip binds (SoH 0.8 and 1.2, a charge
    current beyond i_max_a)."""
    fast_charge = LoadProfile("fast charge", (Phase("charge", -4.0, 3600.0, "upper"),))
    task = BalancingTask(n_packs=3, profile=fast_charge)
    soc = np.array([[0.15, 0.3, 0.45, 0.6, 0.85], [0.5] * 5, [0.2, 0.4, 0.6, 0.8, 0.12345678901]])
    soh = np.array([[0.8, 0.95, 1.0, 1.05, 1.2], [1.0] * 5, [0.93, 0.99, 1.01, 1.07, 1.0999999]])
    obs = task.reset_packs(np.arange(3), soc, soh)
    s = task.sim.state
    assert (s.current_a < -task.i_max_a).any()  # a charge beyond i_max_a: its frame value clips at -1
    expected = np.concatenate(
        [
            np.minimum(np.maximum(2.0 * soc - 1.0, -1.0), 1.0),
            2.0 * s.switches - 1.0,
            np.minimum(np.maximum((soh - 1.0) * 10.0, -1.0), 1.0),
            np.minimum(np.maximum(s.current_a * (1.0 / task.i_max_a), -1.0), 1.0)[:, None],
        ],
        axis=1,
    ).astype(np.float32)
    assert obs.dtype == np.float32
    assert obs[:, : expected.shape[1]].tobytes() == expected.tobytes()


# ------------------------------------------------------------------- invalid actions
def test_invalid_action_keeps_switches_and_is_penalised():
    """Closing the lowest cell's shunt while discharging: switches kept, reward lower by w_invalid."""
    envs = [PassiveBalancingEnv(profile="discharge-rest-charge") for _ in range(2)]
    infos = [env.reset(seed=3)[1] for env in envs]
    lowest = int(np.argmin(infos[0]["soc"]))
    other = (lowest + 1) % 5
    for env in envs:
        assert not env.step(1 << other)[-1]["invalid_action"]
    mask = envs[1].action_masks()
    assert not mask[(1 << lowest) | (1 << other)] and mask[1 << other]
    _, r_keep, *_, info_keep = envs[0].step(1 << other)  # valid: keeps the same switches
    _, r_invalid, *_, info_invalid = envs[1].step((1 << lowest) | (1 << other))
    assert info_invalid["invalid_action"] and not info_keep["invalid_action"]
    np.testing.assert_array_equal(info_invalid["switches"], info_keep["switches"])
    np.testing.assert_array_equal(info_invalid["soc"], info_keep["soc"])
    assert info_invalid["switch_changes"] == 0
    assert r_keep - r_invalid == pytest.approx(RewardWeights().invalid_action)


def test_invalid_action_opens_a_shunt_that_has_become_forbidden():
    """The previous state closes the shunt of the cell that is now the lowest while discharging: an
    invalid action keeps the other shunts but opens that one (counted as a toggle)."""
    env = PassiveBalancingEnv(profile="discharge-rest-charge")
    _, info = env.reset(seed=5)
    order = np.argsort(info["soc"])
    low, second = int(order[0]), int(order[1])
    # bleed the second-lowest cell until it is the lowest (valid: it is not the lowest yet)
    while int(np.argmin(info["soc"])) != second:
        _, _, _, _, info = env.step(1 << second)
        assert not info["invalid_action"]
    assert info["switches"][second] == 1  # the forbidden shunt is still closed from the last step
    _, reward, *_, info = env.step((1 << second) | (1 << low) | (1 << order[4]))  # invalid
    assert info["invalid_action"]
    assert info["switches"].sum() == 0  # kept (nothing else was closed) less the forbidden shunt
    assert info["switch_changes"] == 1


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    action_seed=st.integers(0, 2**31 - 1),
    profile=st.sampled_from(sorted(PROFILES)),
    rules=st.sampled_from([("lowest_soc_while_discharging",), ("lowest_soc_while_discharging", "below_soc_min")]),
)
def test_a_forbidden_shunt_is_never_applied(seed, action_seed, profile, rules):
    """Whatever the agent does, no interval runs with a shunt closed that the rules forbid at its start."""
    env = PassiveBalancingEnv(profile=profile, invalid_rules=rules)
    env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    done, invalid = False, 0
    while not done:
        forbidden = env.task.forbidden_closures()[0]
        _, _, terminated, truncated, info = env.step(int(rng.integers(0, 32)))
        assert not (info["switches"].astype(bool) & forbidden).any()
        invalid += info["invalid_action"]
        done = terminated or truncated
    assert invalid > 0  # the rules were exercised


# ----------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), action_seed=st.integers(0, 2**31 - 1), profile=st.sampled_from(sorted(PROFILES)))
def test_random_actions_keep_the_state_finite_and_bounded(seed, action_seed, profile):
    env = PassiveBalancingEnv(profile=profile)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(0, 32)))
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward)
        for key in ("soc", "cell_voltage_v", "cell_current_a", "shunt_energy_wh"):
            assert np.all(np.isfinite(info[key])), key
        assert np.all((info["soc"] > 0.0) & (info["soc"] < 1.0))
        assert np.all((info["cell_voltage_v"] > 2.0) & (info["cell_voltage_v"] < 5.0))
        done = terminated or truncated


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    cell=st.integers(0, 4),
    steps=st.integers(1, 60),
    profile=st.sampled_from(sorted(PROFILES)),
)
def test_a_closed_shunt_always_lowers_that_cells_soc(seed, cell, steps, profile):
    """Same start, same load: the cell whose shunt is closed ends with less charge than when open.

    "Same load" holds while both packs are in the same phase: a limit-ended phase can end earlier
    in the bleeding pack (its cell reaches SoC 0.1 first), after which the loads differ. Pack 0
    keeps every shunt open, pack 1 closes ``cell``'s; the comparison is at the last decision
    both packs reached in the same phase.
    """
    task = BalancingTask(n_packs=2, profile=profile, invalid_rules=())
    soc0, soh = task.draw_initial_state(np.random.default_rng(seed))
    task.reset_packs(np.arange(2), np.stack([soc0, soc0]), np.stack([soh, soh]))
    compared = None
    for _ in range(steps):
        task.step(np.array([0, 1 << cell]))
        if task.sim.state.phase[0] != task.sim.state.phase[1]:
            break
        compared = task.sim.state.soc.copy()
    assert compared is not None  # the first 30 s never end a phase from these starting SoCs
    open_, closed = compared
    assert closed[cell] < open_[cell]


# ----------------------------------------------------------------------------- baselines
def test_rule_based_balances_better_than_no_balancing():
    def final_std(policy):
        steps, _, _ = run_episode(PassiveBalancingEnv(profile="charge-rest-discharge"), policy, seed=11)
        return np.std(steps[-1][2]["soc"]), sum(info.get("switch_changes", 0) for _, _, info in steps)

    std_none, switches_none = final_std(NoBalancing().predict)
    std_rule, switches_rule = final_std(RuleBased(0.01, 0.005).predict)
    assert switches_none == 0 and switches_rule > 0
    assert std_rule < 0.5 * std_none


def test_rule_based_hysteresis_and_batch_predict():
    rule = RuleBased(threshold=0.02, hysteresis=0.01)
    soc = np.array([0.50, 0.515, 0.53, 0.50, 0.60])
    obs_open = np.concatenate([2 * soc - 1, -np.ones(5), np.zeros(6)])
    obs_closed = obs_open.copy()
    obs_closed[5:10] = 1.0  # all shunts closed before
    a_open, _ = rule.predict(obs_open)
    a_closed, _ = rule.predict(obs_closed)
    assert a_open == (1 << 2) | (1 << 4)  # above the 0.02 threshold
    assert a_closed == (1 << 1) | (1 << 2) | (1 << 4)  # 0.015 > 0.02 - 0.01 keeps cell 1 closed
    batch, _ = rule.predict(np.stack([obs_open, obs_closed]))
    np.testing.assert_array_equal(batch, [a_open, a_closed])
