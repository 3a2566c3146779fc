"""The baseline registry, the observation decoder, room_balancing and the one rollout loop."""

from __future__ import annotations

import numpy as np
import pytest

from bmsrl import baselines
from bmsrl.baselines import BASELINES, RoomBalancing, RuleBased, make_baseline
from bmsrl.config import defaults, schema, validate
from bmsrl.env import BalancingTask, PassiveBalancingEnv, decode_observation, rng_for_seed
from bmsrl.errors import UserError
from bmsrl.pack import PackParameters as PackParams
from bmsrl.rollout import rollout

N = 5
LIMITS = (0.1, 0.9)
CAPACITY_AH = 3.4


def frame(soc, soh=None, closed=None, current_ratio=0.0) -> np.ndarray:
    """One observation frame as the env writes it (2 SoC - 1, 2 s - 1, (SoH - 1) * 10, I / I_max)."""
    soc = np.asarray(soc, dtype=float)
    soh = np.ones(N) if soh is None else np.asarray(soh, dtype=float)
    shunts = np.zeros(N) if closed is None else np.asarray(closed, dtype=float)
    return np.concatenate([2 * soc - 1, 2 * shunts - 1, (soh - 1) * 10, [current_ratio]])


# ------------------------------------------------------------------------------- the decoder
def test_decoder_reads_back_what_the_env_writes():
    env = PassiveBalancingEnv(profile="charge-rest-discharge")
    obs, info = env.reset(seed=3)
    for action in (0b00101, 0b10000, 0b10000):
        obs, _, _, _, info = env.step(action)
    got = decode_observation(obs, N)
    np.testing.assert_allclose(got.soc, info["soc"], atol=1e-6)  # float32 observation
    np.testing.assert_allclose(got.soh, info["soh"], atol=1e-6)
    np.testing.assert_array_equal(got.closed, info["switches"].astype(bool))
    assert got.current_ratio < 0  # charging first
    # a batch decodes row by row; a partial frame is refused
    batch = decode_observation(np.stack([obs, -obs]), N)
    assert batch.soc.shape == (2, N) and batch.current_ratio.shape == (2,)
    with pytest.raises(ValueError, match="not a whole number"):
        decode_observation(obs[:-1], N)


# ------------------------------------------------------------------------------ the registry
def test_every_baseline_has_its_config_section_and_tuning_grid():
    cfg = defaults()
    for name, spec in BASELINES.items():
        assert spec.label and spec.color.startswith("#") and spec.description
        if spec.settings:
            assert set(cfg["baselines"][name]) == set(spec.settings)
        else:
            assert name not in cfg["baselines"]
        assert set(spec.grid_keys) <= set(cfg["baselines"]["tuning"])
        settings = cfg["baselines"].get(spec.settings_key)
        make_baseline(name, N, settings, env=cfg["env"])  # every default builds
    assert baselines.TUNABLE == ("rule_based", "top_balancing", "room_balancing")
    assert baselines.settings_key("rule_based_untuned") == "rule_based"
    assert baselines.evaluated_baselines(tuned=False) == [
        "no_balancing",
        "rule_based",
        "top_balancing",
        "room_balancing",
    ]
    assert "room_balancing" in schema()["properties"]["baselines"]["properties"]["tuned"]["description"]
    assert all(name in baselines.caption_list() for name in BASELINES)


def test_a_bad_setting_of_any_baseline_is_one_error_naming_its_key():
    with pytest.raises(UserError, match="baselines.room_balancing.hysteresis_mah: 6 exceeds the margin_mah 5"):
        validate({"baselines": {"room_balancing": {"margin_mah": 5.0, "hysteresis_mah": 6.0}}}, "cfg")
    with pytest.raises(UserError, match="baselines.room_balancing.margin"):
        validate({"baselines": {"room_balancing": {"margin": 5.0}}}, "cfg")  # unknown key
    with pytest.raises(ValueError, match="needs the env's soc_limits"):
        make_baseline("room_balancing", N, {"margin_mah": 5.0, "hysteresis_mah": 0.0})


# ------------------------------------------------------------------------------ room_balancing
def room(margin_mah=5.0, hysteresis_mah=0.0) -> RoomBalancing:
    return RoomBalancing(margin_mah, hysteresis_mah, LIMITS, CAPACITY_AH, N)


def test_room_balancing_bleeds_cells_with_less_room_than_the_emptiest():
    # equal capacities: rooms (0.9 - SoC) * 3.4 Ah; the emptiest is cell 0 (first of the lowest SoC)
    # cell 2: 0.003 * 3.4 Ah = 10.2 mAh less room; cell 4: 68 mAh less; cells 1 and 3: none less
    soc = [0.50, 0.50, 0.503, 0.50, 0.52]
    assert room(5.0).predict(frame(soc))[0] == (1 << 2) | (1 << 4)
    assert room(12.0).predict(frame(soc))[0] == 1 << 4  # 10.2 mAh is within a 12 mAh margin
    # hysteresis: a closed cell 2 stays closed while its 10.2 mAh exceed 12 - 4 mAh, an open one stays open
    closed = [0, 0, 1, 0, 0]
    assert room(12.0, 4.0).predict(frame(soc, closed=closed))[0] == (1 << 2) | (1 << 4)
    assert room(12.0, 1.0).predict(frame(soc, closed=closed))[0] == 1 << 4  # 10.2 < 12 - 1: reopens
    # only while the pack charges or rests: every shunt open while it discharges
    assert room(5.0).predict(frame(soc, current_ratio=-0.5))[0] == (1 << 2) | (1 << 4)
    assert room(5.0).predict(frame(soc, current_ratio=0.5))[0] == 0
    # a batch gives a batch
    batch = room(5.0).predict(np.stack([frame(soc), frame(soc, current_ratio=1.0)]))[0]
    np.testing.assert_array_equal(batch, [(1 << 2) | (1 << 4), 0])


def test_room_balancing_equalises_room_not_soc():
    """A weak cell (SoH 0.9) fills first however high the others' SoC: bleeding them cannot let the
    pack take in more, so room_balancing leaves them alone, where an SoC threshold bleeds cell 4."""
    soc = [0.50, 0.50, 0.501, 0.50, 0.52]
    soh = [1.0, 0.9, 1.0, 1.0, 1.0]
    # C = [3.4, 3.06, 3.4, 3.4, 3.4] Ah; q = (SoC - 0.1) C: cell 1 (1.224 Ah) is the emptiest;
    # h = (0.9 - SoC) C = [1.36, 1.224, 1.3566, 1.36, 1.292] Ah: nobody has less room than cell 1
    assert room(1.0).predict(frame(soc, soh))[0] == 0
    assert RuleBased(0.01, 0.0, N).predict(frame(soc, soh))[0] == 1 << 4
    # the same SoCs with equal capacities: cell 4 has 68 mAh less room than the emptiest (cell 0)
    assert room(1.0).predict(frame(soc))[0] == (1 << 2) | (1 << 4)


def test_room_balancing_never_bleeds_the_emptiest_cell():
    rng = np.random.default_rng(0)
    soc = rng.uniform(0.3, 0.8, size=(500, N))
    soh = rng.uniform(0.9, 1.1, size=(500, N))
    obs = np.stack([frame(s, h, closed=rng.integers(0, 2, N)) for s, h in zip(soc, soh)])
    actions = room(0.0).predict(obs)[0]  # no margin: bleeds whatever has less room
    emptiest = np.argmin((soc - LIMITS[0]) * soh, axis=1)
    assert not ((actions >> emptiest) & 1).any()
    assert (actions > 0).mean() > 0.5  # and it does bleed the others


def test_room_balancing_recovers_the_recoverable_capacity():
    """On the test profile, from packs of unequal SoC and SoH, the pack delivers close to the bound
    (docs/bound.md), far more of it than an SoC-threshold rule at its hand-set values."""
    from bmsrl import bound

    cfg = defaults()
    task = BalancingTask(n_packs=6, profile="charge-rest-discharge")
    drawn = [task.draw_initial_state(rng_for_seed(1_001_000 + k)) for k in range(6)]
    soc0, soh0 = np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn])
    setup = bound.PackSetup.of(task)
    shares = {}
    for name in ("room_balancing", "rule_based"):
        task.reset_packs(np.arange(6), soc0, soh0)
        policy = make_baseline(name, N, cfg["baselines"][name], env=cfg["env"])
        done = rollout(task, policy)
        assert not done.terminated.any()
        shares[name] = np.array(
            [
                bound.recovered_share(
                    done.end["discharged_ah"][k],
                    bound.no_balancing_capacity_ah(setup, soc0[k], soh0[k]),
                    bound.capacity_bound_ah(setup, soc0[k], soh0[k]),
                )
                for k in range(6)
            ]
        )
    assert shares["room_balancing"].mean() > 0.97
    assert shares["room_balancing"].mean() > shares["rule_based"].mean()


# ------------------------------------------------------------------------------- the rollout
def test_rollout_of_a_batch_equals_single_env_episodes():
    """N packs in one batch: the same returns, steps and records as N single-env episodes."""
    seeds = [11, 12, 13]
    policy = RuleBased(0.01, 0.005, N)
    task = BalancingTask(n_packs=len(seeds), profile="charge-rest-discharge")
    drawn = [task.draw_initial_state(rng_for_seed(s)) for s in seeds]
    task.reset_packs(np.arange(3), np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn]))
    batch = rollout(task, policy, records=True)
    for k, seed in enumerate(seeds):
        env = PassiveBalancingEnv(profile="charge-rest-discharge")
        obs, _ = env.reset(seed=seed)
        total, steps, toggles, done = 0.0, 0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(int(policy.predict(obs)[0]))
            total, steps, toggles, done = (
                total + reward,
                steps + 1,
                toggles + info["switch_changes"],
                terminated or truncated,
            )
        assert batch.steps[k] == steps == len(batch.records[k]) - 1
        assert batch.returns[k] == pytest.approx(total, abs=1e-9)
        assert batch.switch_changes[k] == toggles > 0
        np.testing.assert_array_equal(batch.records[k][-1]["soc"], info["soc"])
        np.testing.assert_array_equal(batch.end["soc"][k], info["soc"])
        assert batch.end["discharged_ah"][k] == info["discharged_ah"]
    assert len({len(r) for r in batch.records}) > 1  # the packs' episodes ended at different steps


def test_rollout_gives_masks_to_a_policy_that_reads_them():
    class Masked:
        def __init__(self):
            self.shapes = []

        def predict(self, observation, state=None, episode_start=None, deterministic=False, action_masks=None):
            self.shapes.append(action_masks.shape)
            return np.array([np.flatnonzero(m)[-1] for m in action_masks]), state

    task = BalancingTask(n_packs=2, profile="charge-rest-discharge")
    task.reset_packs(np.arange(2), np.full((2, N), 0.5) + np.arange(N) * 0.01, np.ones((2, N)))
    policy = Masked()
    done = rollout(task, policy, max_decisions=5)
    assert policy.shapes == [(2, 32)] * 5 and (done.steps == 5).all()


# ------------------------------------------------------------------------------- best_known
def test_best_known_lookahead_copies_the_whole_simulator_state():
    """The value of the base controller's own action is the capacity the base controller reaches from
    that state: the copy of the simulator state (phase, RC voltages, charger, shunts) is exact."""
    from bmsrl.best_known import BestKnown

    cfg = defaults()
    task = BalancingTask(n_packs=2, profile="charge-rest-discharge")
    base = make_baseline("top_balancing", N, cfg["baselines"]["top_balancing"], env=cfg["env"])
    seeds = [rng_for_seed(1_001_000), rng_for_seed(1_001_001)]
    task.reset_drawn(seeds)
    for _ in range(40):  # into the charge, shunts closed, RC branches charged
        task.step(base.predict(task.frames.reshape(2, -1))[0])
    assert task.sim.state.switches.any() and np.abs(task.sim.state.rc_v).max() > 0
    values = BestKnown(base).candidate_values_ah(task)
    actions = base.predict(task.frames.reshape(2, -1))[0]
    reached = rollout(task, base).end["discharged_ah"]  # the base controller from here
    np.testing.assert_allclose(values[np.arange(2), actions], reached, rtol=0, atol=1e-12)
    assert np.isfinite(values).sum(axis=1).min() >= 16  # the valid actions (at most the lowest cell's shunt barred)


def test_best_known_looks_ahead_on_the_task_it_acts_in():
    """One BestKnown evaluates several profiles and scenarios in turn (a grouped evaluate job): each
    task's lookahead simulates that task, so the result on a task does not depend on what ran before."""
    from bmsrl.best_known import BestKnown

    cfg = defaults()
    base = make_baseline("room_balancing", N, cfg["baselines"]["room_balancing"], env=cfg["env"])
    seeds = [1_001_000, 1_001_001]

    def capacity(policy, profile, **kwargs):
        task = BalancingTask(n_packs=2, profile=profile, **kwargs)
        task.reset_drawn([rng_for_seed(s) for s in seeds])
        return rollout(task, policy).end["discharged_ah"]

    fresh = capacity(BestKnown(base), "charge-rest-discharge")
    reused = BestKnown(base)
    capacity(reused, "discharge-rest-charge")  # same pack count: a cached shadow would be reused
    capacity(reused, "charge-rest-discharge", i_max_a=3.4)
    np.testing.assert_array_equal(capacity(reused, "charge-rest-discharge"), fresh)


def test_best_known_improves_on_its_base_and_reads_the_simulator():
    from bmsrl.best_known import BestKnown

    cfg = defaults()
    task = BalancingTask(n_packs=1, profile="charge-rest-discharge")
    base = make_baseline("top_balancing", N, cfg["baselines"]["top_balancing"], env=cfg["env"])
    capacity = {}
    for name, policy in (("base", base), ("best_known", BestKnown(base))):
        task.reset_drawn([rng_for_seed(1_001_003)])  # top_balancing: 2585 mAh, bound 2611 mAh
        capacity[name] = rollout(task, policy).end["discharged_ah"][0]
    assert capacity["best_known"] > capacity["base"] + 1e-3  # strictly better (by more than 1 mAh) on this pack
    with pytest.raises(ValueError, match="reads the simulator"):
        BestKnown(base).predict(task.frames.reshape(1, -1))


# --------------------------------------------------------------------- a balancing chip's limits
def _limit_rollout(task_kwargs_: dict, name: str, settings: dict, env_for_baseline) -> tuple[int, int]:
    """(decisions asking for closures beyond the task's limits, decisions) of one baseline on 4 packs."""
    task = BalancingTask(n_packs=4, **task_kwargs_)
    task.reset_drawn([rng_for_seed(2_000 + k) for k in range(4)])
    base = make_baseline(name, N, settings, env=env_for_baseline)
    beyond = [0, 0]

    class Counting:
        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            actions, state = base.predict(observation, state, episode_start, deterministic)
            beyond[0] += int(task.limit_closures(task.action_bits[actions])[1].sum())
            beyond[1] += len(actions)
            return actions, state

    rollout(task, Counting())
    return beyond[0], beyond[1]


@pytest.mark.parametrize("name", ["rule_based", "top_balancing", "room_balancing"])
def test_baselines_obey_the_realistic_familys_shunt_limit(name):
    """On config/realistic.yaml (3 shunts at most), a baseline given the env asks for no closure
    beyond the limit; the same controller without it asks for many."""
    from pathlib import Path

    from bmsrl.config import load_config
    from bmsrl.task_config import task_kwargs

    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "realistic.yaml")
    # tighter settings than the defaults, so that more than 3 cells want bleeding at once
    settings = (
        {"threshold": 0.002, "hysteresis": 0.001}
        if name != "room_balancing"
        else {"margin_mah": 1.0, "hysteresis_mah": 0.5}
    )
    kwargs = task_kwargs(cfg, "charge-rest-discharge")
    assert cfg["env"]["max_closed_shunts"] == 3
    assert _limit_rollout(kwargs, name, settings, cfg["env"])[0] == 0
    unlimited, decisions = _limit_rollout(kwargs, name, settings, {**cfg["env"], "max_closed_shunts": 0})
    assert unlimited > 0.05 * decisions


def test_baselines_obey_a_shunt_heat_limit():
    """max_shunt_power_w: each shunt judged at the upper voltage limit, so the env refuses nothing."""
    # 4.2^2 / 6 = 2.94 W a shunt: 1.1 W allows none
    env = {"max_shunt_power_w": 1.1, "shunt_resistance_ohm": 6.0, "voltage_limits_v": [2.5, 4.2]}
    assert baselines.ShuntLimits.from_env(env).most_closed(N) == 0
    kwargs = dict(profile="charge-rest-discharge", max_shunt_power_w=6.0)  # two shunts
    env = {**defaults()["env"], "max_shunt_power_w": 6.0}
    assert baselines.ShuntLimits.from_env(env).most_closed(N) == 2
    settings = {"margin_mah": 1.0, "hysteresis_mah": 0.5}
    assert _limit_rollout(kwargs, "room_balancing", settings, env)[0] == 0
    assert _limit_rollout(kwargs, "room_balancing", settings, {**env, "max_shunt_power_w": 0.0})[0] > 0


def test_the_limit_keeps_the_largest_priority_ties_to_the_lower_index():
    limits = baselines.ShuntLimits(max_closed=2)
    close = np.array([[True, True, True, False, True], [True, True, True, True, False]])
    priority = np.array([[0.1, 0.3, 0.2, 0.9, 0.3], [0.5, 0.5, 0.5, 0.5, 0.0]])
    assert limits.select(close, priority).tolist() == [
        [False, True, False, False, True],
        [True, True, False, False, False],
    ]


def test_room_balancing_bleeds_the_largest_room_deficit_first():
    base = make_baseline(
        "room_balancing",
        N,
        {"margin_mah": 1.0, "hysteresis_mah": 0.0},
        env={**defaults()["env"], "max_closed_shunts": 1},
    )
    obs = frame([0.50, 0.60, 0.55, 0.70, 0.65])  # the emptiest is cell 0; cell 3 has the least room
    assert int(base.predict(obs)[0]) == 1 << 3


@pytest.mark.parametrize("name", ["no_balancing", "rule_based", "top_balancing", "room_balancing"])
def test_the_default_settings_actions_are_unchanged_by_the_limits(name):
    """The default env (no limit): the same actions, bit for bit, as a controller built without the env,
    over whole episodes of a few packs; and the realistic limit does change them (the test can fail)."""
    cfg = defaults()
    settings = cfg["baselines"].get(name) or None
    with_env = make_baseline(name, N, settings, env=cfg["env"])
    plain = make_baseline(name, N, settings, env=None if name != "room_balancing" else PackParams())
    task = BalancingTask(n_packs=4, profile="charge-rest-discharge")
    task.reset_drawn([rng_for_seed(3_000 + k) for k in range(4)])
    seen = []

    class Both:
        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            a, _ = with_env.predict(observation)
            b, _ = plain.predict(observation)
            assert a.tobytes() == b.tobytes()
            seen.append(observation.copy())
            return a, state

    rollout(task, Both())
    if name == "no_balancing":
        return
    limited = make_baseline(name, N, settings, env={**cfg["env"], "max_closed_shunts": 1})
    obs = np.concatenate(seen)
    assert (limited.predict(obs)[0] != with_env.predict(obs)[0]).any()
