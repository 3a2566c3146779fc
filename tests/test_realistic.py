"""The realistic scenario family (issue 20, docs/model.md): the shunt limit, the BMS's estimated state,
the drive-cycle and stochastic discharge, and what the bound says about them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bmsrl.bound import PackSetup, validity
from bmsrl.config import load_config
from bmsrl.env import BalancingTask, PassiveBalancingEnv, rng_for_seed
from bmsrl.errors import UserError
from bmsrl.estimator import StateEstimator
from bmsrl.profiles import STOCHASTIC_STEP_S, make_discharge_load, stochastic_load_a
from bmsrl.tables import load_drive_cycle
from bmsrl.task_config import task_kwargs

ROOT = Path(__file__).resolve().parents[1]
ERRORS = dict(estimate_soc_sigma=0.03, estimate_current_bias_sigma_a=0.02, estimate_soh_rel_sigma=0.02)


def episode(env, seed, action_seed=0):
    """Observations, infos of one episode with random actions."""
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    out = [(obs, info)]
    while True:
        obs, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        out.append((obs, info))
        if terminated or truncated:
            return out


# ----------------------------------------------------------------------------- estimated state
@pytest.mark.parametrize("profile", ["charge-rest-discharge", "discharge-rest-charge"])
def test_zero_estimation_error_observes_exactly_todays_state(profile):
    """Every estimate_ error 0 (OCV correction on or off): the observation is today's, bit for bit."""
    today = episode(PassiveBalancingEnv(profile=profile), seed=4)
    zero = episode(
        PassiveBalancingEnv(profile=profile, estimate_ocv_rest_s=60.0, estimate_seed=9, **dict.fromkeys(ERRORS, 0.0)),
        seed=4,
    )
    assert len(today) == len(zero)
    for (obs_a, info_a), (obs_b, info_b) in zip(today, zero, strict=True):
        assert obs_a.tobytes() == obs_b.tobytes()
        assert "soc_estimate" not in info_b and info_a.keys() == info_b.keys()


def test_coulomb_counting_without_errors_follows_the_physics():
    """The estimator run with zero errors (forced on, no OCV correction) integrates the same charge as
    the simulator: its SoC stays within 1e-6 of the truth over a whole episode of random switching."""
    task = BalancingTask(profile="charge-rest-discharge")
    est = StateEstimator(
        1, 5, capacity_ah=3.4, charge_efficiency=task.params.charge_efficiency, discharge_efficiency=1.0
    )
    est.active = True
    soc, soh = task.draw_initial_state(rng_for_seed(2))
    task.reset_packs(np.arange(1), soc[None], soh[None])
    est.reset(np.arange(1), soc[None], soh[None])
    rng = np.random.default_rng(0)
    worst = 0.0
    while not task.sim.episode_over[0]:
        _, _, _, _, interval = task.step(rng.integers(32, size=1))
        est.step(
            interval.cell_current_a, interval.pack_current_a, ~task.sim.state.switches, task.sim.state.terminal_v, 30.0
        )
        worst = max(worst, float(np.abs(est.soc - task.sim.state.soc).max()))
    assert worst < 1e-6


def test_estimation_errors_are_in_the_observation_not_in_info():
    env = PassiveBalancingEnv(profile="charge-rest-discharge", **ERRORS)
    obs, info = env.reset(seed=3)
    observed = (obs[:5] + 1) / 2
    assert np.allclose(observed, info["soc_estimate"], atol=1e-6)
    assert not np.allclose(info["soc_estimate"], info["soc"], atol=1e-3)  # 3 % errors on five cells
    truth = PassiveBalancingEnv(profile="charge-rest-discharge").reset(seed=3)[1]
    assert np.array_equal(info["soc"], truth["soc"]) and np.array_equal(info["soh"], truth["soh"])


def test_estimation_errors_are_seeded_per_pack_whatever_the_batch():
    """A pack's errors depend on its initial state and estimate_seed only: pack 1 of a batch of two
    gets the errors it gets alone; another estimate_seed gives other errors."""
    soc = np.array([[0.45, 0.5, 0.55, 0.5, 0.4], [0.5, 0.42, 0.58, 0.47, 0.51]])
    soh = np.ones((2, 5))
    pair = BalancingTask(n_packs=2, **ERRORS)
    pair.reset_packs(np.arange(2), soc, soh)
    alone = BalancingTask(n_packs=1, **ERRORS)
    alone.reset_packs(np.arange(1), soc[1:], soh[1:])
    assert np.array_equal(pair.estimator.soc[1], alone.estimator.soc[0])
    assert np.array_equal(pair.estimator.bias_a[1], alone.estimator.bias_a[0])
    other = BalancingTask(n_packs=1, estimate_seed=1, **ERRORS)
    other.reset_packs(np.arange(1), soc[1:], soh[1:])
    assert not np.array_equal(other.estimator.soc[0], alone.estimator.soc[0])


def test_the_ocv_correction_at_rest_removes_most_of_the_initial_error():
    """A 5 % initial SoC error: after the rest (100 s, corrected from 60 s on) the estimate is back
    within 1 % of the truth (the residual is the RC branches' polarisation); without it, it is not."""

    def error_after_rest(ocv_rest_s):
        env = PassiveBalancingEnv(
            profile="charge-rest-discharge", estimate_soc_sigma=0.05, estimate_ocv_rest_s=ocv_rest_s
        )
        env.reset(seed=5)
        while True:
            _, _, _, _, info = env.step(0)
            if info["phase"] == "discharge":
                return float(np.abs(info["soc_estimate"] - info["soc"]).max())

    assert error_after_rest(60.0) < 0.01
    assert error_after_rest(0.0) > 0.02


def test_the_invalid_rules_judge_the_estimate():
    """The lowest-SoC interlock forbids the shunt of the cell the BMS believes lowest."""
    task = BalancingTask(profile="discharge-rest-charge", **ERRORS)
    soc = np.array([[0.5, 0.52, 0.54, 0.56, 0.58]])
    task.reset_packs(np.arange(1), soc, np.ones((1, 5)))
    believed_lowest = int(np.argmin(task.estimator.soc[0]))
    assert task.forbidden_closures()[0].tolist() == [i == believed_lowest for i in range(5)]


# ----------------------------------------------------------------------------- shunt limit
def test_closures_beyond_the_limit_stay_open_and_count_as_invalid():
    task = BalancingTask(profile="charge-rest-discharge", max_closed_shunts=2)
    soc = np.array([[0.50, 0.58, 0.52, 0.58, 0.55]])
    task.reset_packs(np.arange(1), soc, np.ones((1, 5)))
    task.step(np.array([0b11111]))
    # the two highest-SoC cells win, the tie at 0.58 both in; nothing else closes
    assert task.sim.state.switches[0].tolist() == [False, True, False, True, False]
    assert task.last_invalid[0]
    task.step(np.array([0b00101]))  # two closures: within the limit, applied as asked
    assert task.sim.state.switches[0].tolist() == [True, False, True, False, False]
    assert not task.last_invalid[0]
    mask = task.invalid_mask()[0]
    counts = task.action_bits.sum(axis=1)
    assert mask[counts > 2].all() and not mask[counts <= 2].any()


def test_ties_at_the_limit_go_to_the_lower_cell_index():
    task = BalancingTask(profile="charge-rest-discharge", max_closed_shunts=1)
    task.reset_packs(np.arange(1), np.full((1, 5), 0.5), np.ones((1, 5)))
    task.step(np.array([0b10110]))
    assert task.sim.state.switches[0].tolist() == [False, True, False, False, False]


def test_a_shunt_heat_limit_keeps_the_fullest_cells_within_it():
    """6 Ohm at about 4 V (charging) is about 2.6 W per shunt: a 5.5 W limit keeps two shunts, those of the
    highest-SoC cells, refuses the rest (invalid) and masks exactly the actions above 5.5 W."""
    task = BalancingTask(profile="charge-rest-discharge", max_shunt_power_w=5.5)
    soc = np.array([[0.50, 0.58, 0.52, 0.56, 0.55]])
    task.reset_packs(np.arange(1), soc, np.ones((1, 5)))
    power_w = task.shunt_power_w()[0]
    assert np.all((power_w > 2.0) & (power_w < 3.0))  # charging: V_t near 4 V
    mask = task.invalid_mask()[0]
    assert np.array_equal(mask, task.action_bits @ power_w > 5.5)
    task.step(np.array([0b11111]))
    assert task.sim.state.switches[0].tolist() == [False, True, False, True, False]
    assert task.last_invalid[0]


# ----------------------------------------------------------------------------- drive cycle
def test_the_drive_cycle_is_the_shipped_us06_scaled_to_its_peak():
    raw_a, step_s = load_drive_cycle("us06")
    assert step_s == 1.0 and raw_a.size == 601
    load = make_discharge_load("drive_cycle", drive_cycle="us06", peak_c_rate=2.0, capacity_ah=3.4, seed=0)
    assert load.current_a.max() == pytest.approx(6.8)
    assert np.allclose(load.current_a / raw_a, 6.8 / raw_a.max())
    assert make_discharge_load("constant", drive_cycle="us06", peak_c_rate=2.0, capacity_ah=3.4, seed=0) is None


def test_the_discharge_holds_each_value_of_the_trace():
    """Over a discharge interval the pack's mean current is the mean of the scaled trace's 30 values
    (regenerative values included, far from the charger's voltage hold), and the episode ends at the
    lower limit, terminated."""
    task = BalancingTask(profile="discharge-rest-charge", discharge="drive_cycle")
    trace = task.profile.load.current_a
    task.reset_packs(np.arange(1), np.full((1, 5), 0.5), np.ones((1, 5)))
    for j in range(20):
        _, _, terminated, _, interval = task.step(np.array([0]))
        window = trace[np.arange(30 * j, 30 * (j + 1)) % trace.size]
        assert interval.pack_current_a[0] == pytest.approx(window.mean(), abs=1e-9)
    while not task.sim.episode_over[0]:
        _, _, terminated, truncated, _ = task.step(np.array([0]))
    assert terminated[0] and not truncated[0] and not task.sim.state.capped[0]


def test_the_stochastic_load_is_seeded_and_has_the_documented_mean():
    a, b, c = stochastic_load_a(1), stochastic_load_a(1), stochastic_load_a(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.mean() == pytest.approx(1.0) and (a < 0).any()
    load = make_discharge_load("stochastic", drive_cycle="us06", peak_c_rate=1.5, capacity_ah=3.4, seed=1)
    assert load.step_s == STOCHASTIC_STEP_S and load.current_a.max() == pytest.approx(5.1)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("time_s,current_a\n0,1\n1,2\n3,1\n", "line 4, column 'time_s': time_s must rise by one uniform step"),
        ("time_s,current_a\n0,1\n1000,2\n2000,1\n", "a time step of 1000 s is outside [0.1, 60] s"),
        ("time_s,current_a\n0,-1\n1,2\n2,-3\n", "the mean current is -0.666667 A"),
        ("time_s,current_a\n5,1\n6,2\n", "line 2, column 'time_s': the cycle must start at time_s 0"),
        ("time_s,amps\n0,1\n", "missing column 'current_a'"),
        ("time_s,current_a\n0,1\n1,abc\n", "line 3"),
    ],
)
def test_a_bad_drive_cycle_table_is_one_error_naming_the_file(tmp_path, text, fragment):
    path = tmp_path / "cycle.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=str(path)) as caught:
        load_drive_cycle(path)
    assert fragment in str(caught.value)


def test_the_config_names_a_missing_drive_cycle_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("env:\n  discharge: drive_cycle\n  drive_cycle: no/such.csv\n")
    with pytest.raises(UserError, match=r"env\.drive_cycle: drive-cycle table no/such.csv: file not found"):
        load_config(path)


# ----------------------------------------------------------------------------- the family and the bound
def test_the_realistic_config_builds_its_task_and_the_bound_says_it_does_not_hold():
    cfg = load_config(ROOT / "config" / "realistic.yaml")
    task = BalancingTask(**task_kwargs(cfg, "charge-rest-discharge"))
    assert task.params.shunt_resistance_ohm == 33.0 and task.max_closed_shunts == 3
    assert task.estimator.active and task.profile.load is not None
    reason = validity(PackSetup.of(task))
    assert reason is not None and "regenerative" in reason


def test_estimated_state_and_the_shunt_limit_leave_the_bound_as_it_is():
    task = BalancingTask(profile="charge-rest-discharge", max_closed_shunts=2, **ERRORS)
    assert validity(PackSetup.of(task)) is None


# ----------------------------------------------------------------------------- several cycles
def run_to_end(env, seed, policy=lambda obs: 0):
    obs, info = env.reset(seed=seed)
    ended = []
    while True:
        obs, _, terminated, truncated, info = env.step(int(policy(obs)))
        if info.get("ended_cycle_discharged_ah") and info["cycle"] > len(ended):
            ended.append(info["ended_cycle_discharged_ah"])
        if terminated or truncated:
            return info, ended, terminated


def test_several_cycles_start_from_the_state_the_last_left_and_count_the_last_discharge():
    one, _, _ = run_to_end(PassiveBalancingEnv(profile="charge-rest-discharge"), seed=1)
    three, ended, terminated = run_to_end(PassiveBalancingEnv(profile="charge-rest-discharge", cycles=3), seed=1)
    assert terminated and three["cycle"] == 2 and len(ended) == 2
    assert ended[0] == one["discharged_ah"]  # the first cycle is the one-cycle episode
    assert three["discharged_ah"] != three["charged_ah"] > 0  # counters of the last cycle only
    assert "cycle" not in one


def test_several_cycles_keep_the_bound_for_balancing_policies():
    """With 2 cycles the bound (computed over the same cycles) still equals no_balancing for
    identical cells and no baseline exceeds it."""
    from bmsrl.baselines import RuleBased

    env = PassiveBalancingEnv(profile="charge-rest-discharge", cycles=2)
    setup = PackSetup.of(env.task)
    from bmsrl.bound import capacity_bound_ah, no_balancing_capacity_ah

    same = np.full(5, 0.5), np.full(5, 1.02)
    assert capacity_bound_ah(setup, *same) == pytest.approx(no_balancing_capacity_ah(setup, *same), abs=1e-9)
    policy = RuleBased(0.002, 0.001)
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        bound_ah = capacity_bound_ah(setup, info["soc"], info["soh"])
        final, _, _ = run_to_end(env, seed, lambda o: policy.predict(o)[0])
        assert final["discharged_ah"] <= bound_ah + 1e-6
