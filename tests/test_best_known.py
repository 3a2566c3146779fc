"""best_known's look-ahead (bmsrl.best_known) computes what trying every action with a full rollout
computes: the same actions and the same episodes, pack for pack, on both load profiles; and the facts
its shortcut rests on (PackSimulator.discharge_over, the batched bound) hold."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from bmsrl import bound
from bmsrl.baselines import make_baseline
from bmsrl.best_known import BestKnown
from bmsrl.config import defaults, load_config, scenario_config
from bmsrl.env import BalancingTask, rng_for_seed
from bmsrl.pack import PackSimulator, PackState
from bmsrl.rollout import rollout
from bmsrl.task_config import task_kwargs

N = 5
ROOT = Path(__file__).resolve().parents[1]
SEEDS = [1_001_000, 1_001_001]  # evaluation packs of training seed 1


class FullRolloutBestKnown(BestKnown):
    """The obviously-correct slow reference: every valid action of every pack with a choice tried on
    a copy of the whole task and followed by the base controller through :func:`bmsrl.rollout.rollout`
    (rewards, counts and all) to the episode's end."""

    def candidate_values_ah(self, task: BalancingTask, look: np.ndarray | None = None) -> np.ndarray:
        invalid = task.invalid_mask()
        values = np.where(invalid, -np.inf, 0.0)
        choice = ~invalid & ((~invalid).sum(axis=1) > 1)[:, None]
        if look is not None:
            choice &= look[:, None]
        packs, actions = np.nonzero(choice)
        if packs.size == 0:
            return values
        shadow = self._shadow_of(task, packs.size)
        for f in fields(PackState):
            setattr(shadow.sim.state, f.name, getattr(task.sim.state, f.name)[packs].copy())
        shadow.estimator = task.estimator.take(packs)
        shadow.frames[:] = task.frames[packs]
        shadow.reward_kind.reset(shadow, np.arange(shadow.n_packs))
        shadow.step_checked(actions)
        values[packs, actions] = rollout(shadow, self.base).end["discharged_ah"]
        return values


def _room_balancing():
    cfg = defaults()
    return make_baseline("room_balancing", N, cfg["baselines"]["room_balancing"], env=cfg["env"])


@pytest.mark.parametrize("profile", ["discharge-rest-charge", "charge-rest-discharge"])
def test_lookahead_takes_the_actions_full_rollouts_take(profile):
    """The lean look-ahead that stops once a pack's delivered charge is final gives the episodes of
    the full-rollout reference: the same shunts at every decision, the same metrics' inputs."""
    base = _room_balancing()
    episodes = {}
    for name, policy in (("fast", BestKnown(base)), ("reference", FullRolloutBestKnown(base))):
        task = BalancingTask(n_packs=len(SEEDS), profile=profile, i_max_a=3.4)  # 1 C: shorter episodes
        task.reset_drawn([rng_for_seed(s) for s in SEEDS])
        episodes[name] = rollout(task, policy, records=True)
    fast, reference = episodes["fast"], episodes["reference"]
    np.testing.assert_array_equal(fast.steps, reference.steps)
    np.testing.assert_array_equal(fast.switch_changes, reference.switch_changes)
    for k in range(len(SEEDS)):
        for got, want in zip(fast.records[k], reference.records[k], strict=True):
            np.testing.assert_array_equal(got["switches"], want["switches"])
            np.testing.assert_allclose(got["soc"], want["soc"], rtol=0, atol=1e-12)
    for key in reference.end:
        np.testing.assert_allclose(fast.end[key], reference.end[key], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.returns, reference.returns, rtol=0, atol=1e-9)
    assert fast.switch_changes.sum() > 0  # the look-ahead did act


def test_candidate_values_equal_the_reference_mid_charge():
    """Mid-charge, shunts closed and RC branches charged: every candidate's value equals the full
    rollout's (the lean step leaves out only rewards and counts the value does not read)."""
    base = _room_balancing()
    task = BalancingTask(n_packs=2, profile="charge-rest-discharge")
    task.reset_drawn([rng_for_seed(s) for s in SEEDS])
    for _ in range(60):
        task.step(base.predict(task.frames.reshape(2, -1))[0])
    assert task.sim.state.switches.any()
    fast = BestKnown(base).candidate_values_ah(task)
    reference = FullRolloutBestKnown(base).candidate_values_ah(task)
    np.testing.assert_array_equal(np.isfinite(fast), np.isfinite(reference))
    np.testing.assert_allclose(fast[np.isfinite(fast)], reference[np.isfinite(reference)], rtol=0, atol=1e-12)
    assert np.ptp(reference[np.isfinite(reference)]) > 1e-6  # the actions do differ in value


@pytest.mark.parametrize("profile", ["discharge-rest-charge", "charge-rest-discharge"])
def test_discharged_charge_is_final_once_discharge_over(profile):
    """discharge_over: False while a discharge lies ahead; once True, no shunt schedule changes
    discharged_ah any more (random switching to the episode's end)."""
    rng = np.random.default_rng(0)
    task = BalancingTask(n_packs=3, profile=profile)
    task.reset_drawn([rng_for_seed(s) for s in (*SEEDS, 1_001_002)])
    assert not task.sim.discharge_over().any()  # both profiles discharge at some point
    final = np.full(3, np.nan)
    seen_over = np.zeros(3, dtype=bool)
    while True:
        over = task.sim.discharge_over()
        assert not (seen_over & ~over).any()  # once final, final for good
        newly = over & ~seen_over
        final[newly] = task.sim.state.discharged_ah[newly]
        seen_over |= over
        np.testing.assert_array_equal(task.sim.state.discharged_ah[seen_over], final[seen_over])
        if task.sim.episode_over.all():
            break
        task.step(rng.integers(0, 2**N, size=3))
    assert seen_over.all()  # at the episode's end at the latest
    if profile == "discharge-rest-charge":  # final long before the end: after the first phase
        assert task.sim.state.charged_ah.min() > 0.5


def test_batched_bound_equals_one_pack_calls():
    """bound.capacities_ah (every pack in one simulator call) gives each pack's one-pack numbers."""
    task = BalancingTask(n_packs=3, profile="charge-rest-discharge")
    task.reset_drawn([rng_for_seed(s) for s in (*SEEDS, 1_001_002)])
    setup = bound.PackSetup.of(task)
    soc, soh = task.sim.state.soc.copy(), task.sim.state.soh.copy()
    best, none = bound.capacities_ah(setup, soc, soh)
    for k in range(3):
        assert best[k] == bound.capacity_bound_ah(setup, soc[k], soh[k])
        assert none[k] == bound.no_balancing_capacity_ah(setup, soc[k], soh[k])
    assert (best > none).all()


def _random_states(rng: np.random.Generator, n_packs: int, base, capacity_ah: float):
    """(soc, switches, soh, current_a) of ``n_packs`` random packs, many at the rule's edges: SoCs
    and SoHs beyond the observation's clipping, rooms within a hair of the margin and of the reopening
    level (where the observation's float32 rounding decides), ties for the emptiest cell, currents of
    either sign, zero and too small for float32."""
    soc = rng.uniform(-0.05, 1.05, (n_packs, N))
    soh = rng.uniform(0.85, 1.15, (n_packs, N))
    lo, hi = base.soc_limits
    # a third of the packs: cell 1 has a room deficit within a hair of the margin or the reopening level
    # versus cell 0, the emptiest (the others fuller of charge: less room)
    edge = np.arange(n_packs) % 3 == 0
    level = np.where(rng.random(n_packs) < 0.5, base.margin_ah, base.margin_ah - base.hysteresis_ah)
    deficit = level * (1.0 + rng.uniform(-1e-6, 1e-6, n_packs))
    soh[edge, :2] = 1.0
    soc[edge, 0] = rng.uniform(lo + 0.05, hi - 0.2, edge.sum())
    soc[edge, 1] = soc[edge, 0] + deficit[edge] / capacity_ah
    soc[edge, 2:] = soc[edge, 0][:, None] + rng.uniform(0.0, 0.01, (edge.sum(), N - 2))
    tie = np.arange(n_packs) % 7 == 1
    emptiest = np.argmin((soc - lo) * soh, axis=1)
    soc[tie, 4], soh[tie, 4] = soc[tie, emptiest[tie]], soh[tie, emptiest[tie]]  # a second emptiest cell
    switches = rng.random((n_packs, N)) < 0.5
    current_a = rng.choice([-3.4, -1e-3, -1e-50, 0.0, 1e-50, 1e-3, 3.4, 10.0], n_packs) * rng.uniform(0.5, 1.5, n_packs)
    return soc, switches, soh, current_a


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_room_balancing_on_the_state_takes_the_observation_actions(fraction):
    """RoomBalancing.actions_from_state (best_known's fast path) takes, on random states (the shunts
    closed or open: the hysteresis state), the actions RoomBalancing.predict takes on the observation
    the env writes of them (BalancingTask._write_frame)."""
    cfg = defaults()
    margin_mah = 5.0
    base = make_baseline(
        "room_balancing", N, {"margin_mah": margin_mah, "hysteresis_mah": fraction * margin_mah}, env=cfg["env"]
    )
    task = BalancingTask(n_packs=4000, profile="charge-rest-discharge")
    soc, switches, soh, current_a = _random_states(
        np.random.default_rng(int(fraction * 10)), 4000, base, base.capacity_ah
    )
    state = task.sim.state
    state.soc[:], state.soh[:], state.switches[:], state.current_a[:] = soc, soh, switches, current_a
    task._write_frame(task.frames[:, 0])
    want = base.predict(task.frames.reshape(task.n_packs, -1))[0]
    got = base.actions_from_state(soc, switches, soh, current_a, task.i_max_a)
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) > 8 and (want == 0).any()  # the states do exercise the rule
    held = (want & ~base.predict(_opened(task))[0]) != 0  # closures held only by the closed shunt
    assert fraction == 0.0 or held.any()


def _opened(task: BalancingTask) -> np.ndarray:
    """The task's observations with every shunt shown open."""
    n = task.params.n_cells
    frames = task.frames.copy()
    frames[:, :, n : 2 * n] = -1.0
    return frames.reshape(task.n_packs, -1)


class ObservationOnly:
    """``base`` behind ``predict`` alone: best_known's look-ahead then writes and reads the observation
    frames (its slow path), the reference for the compiled path on the state arrays."""

    def __init__(self, base) -> None:
        self.base = base

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.base.predict(observation, state, episode_start, deterministic)


def _realistic(profile: str = "charge-rest-discharge", **changes):
    """config/realistic.yaml's task kwargs (33 Ohm, at most 3 shunts, the BMS's estimate, US06, three
    cycles) with ``changes``, and room_balancing at its configured settings under its chip limit."""
    cfg = load_config(ROOT / "config" / "realistic.yaml")
    kwargs = {**task_kwargs(cfg, profile), **changes}
    base = make_baseline("room_balancing", N, cfg["baselines"]["room_balancing"], env=cfg["env"])
    return kwargs, base


@pytest.mark.parametrize("profile", ["discharge-rest-charge", "charge-rest-discharge"])
def test_the_state_path_takes_predicts_actions_along_realistic_episodes(profile):
    """On the realistic family (the estimate in the observation, a binding limit of 3 shunts, the US06
    discharge, three cycles) RoomBalancing.actions_from_state, fed what the observation shows
    (observed_soc, observed_soh), takes predict's action on the observation at every decision of
    whole episodes, the chip limit's choice of cells included."""
    kwargs, base = _realistic(profile)
    seeds = [1_001_000 + k for k in range(4)]
    task = BalancingTask(n_packs=len(seeds), **kwargs)
    task.reset_drawn([rng_for_seed(s) for s in seeds])
    assert task.estimator.active and base.limits.most_closed(N) == 3
    limited = []

    def compare(task: BalancingTask) -> None:
        want = base.predict(task.frames.reshape(task.n_packs, -1))[0]
        got = base.actions_from_state(
            task.observed_soc(),
            task.sim.state.switches,
            task.observed_soh(),
            task.sim.pack_current_now_a(),
            task.i_max_a,
        )
        np.testing.assert_array_equal(got, want)
        limited.append(unlimited.predict(task.frames.reshape(task.n_packs, -1))[0] != want)

    unlimited = make_baseline(
        "room_balancing", N, {"margin_mah": base.margin_ah * 1000, "hysteresis_mah": base.hysteresis_ah * 1000}, env={
            "soc_limits": base.soc_limits, "capacity_ah": base.capacity_ah})  # fmt: skip
    episode = rollout(task, base, on_step=compare)
    assert episode.steps.min() > 500 and episode.switch_changes.min() > 0
    assert np.any(limited)  # the limit did choose cells along the way


def test_the_lookahead_carries_the_estimate_and_its_fast_path_values_equal_the_observation_path():
    """Mid-charge on realistic packs: the shadow packs start from the BMS's estimate the task holds
    (not the truth), and every candidate's value through the compiled state path equals the value
    through the observation frames and predict, bit for bit."""
    kwargs, base = _realistic()
    task = BalancingTask(n_packs=2, **kwargs)
    task.reset_drawn([rng_for_seed(s) for s in SEEDS])
    for _ in range(60):
        task.step(base.predict(task.frames.reshape(2, -1))[0])
    assert task.sim.state.switches.any() and not np.array_equal(task.observed_soc(), task.sim.state.soc)
    fast = BestKnown(base)
    values = fast.candidate_values_ah(task)
    reference = BestKnown(ObservationOnly(base)).candidate_values_ah(task)
    np.testing.assert_array_equal(values, reference)
    assert np.ptp(values[np.isfinite(values)]) > 1e-6  # the actions do differ in value
    shadow = fast._shadow_of(task, int(np.isfinite(values).sum()))
    assert shadow.estimator.active and shadow.estimator is not task.estimator


def test_best_known_episodes_are_the_same_through_either_path():
    """A whole best_known episode on a short realistic pack (the estimate, the limit of 3 shunts, 33
    Ohm; one cycle at 1 C of constant discharge with 60 s decisions, to keep the test short) is the
    same, decision for decision, through the compiled state path and through the observation frames."""
    kwargs, base = _realistic(cycles=1, i_max_a=3.4, discharge="constant", decision_interval_s=60.0)
    episodes = []
    for policy in (BestKnown(base), BestKnown(ObservationOnly(base))):
        task = BalancingTask(n_packs=1, **kwargs)
        task.reset_drawn([rng_for_seed(SEEDS[0])])
        episodes.append(rollout(task, policy, records=True))
    fast, reference = episodes
    for got, want in zip(fast.records[0], reference.records[0], strict=True):
        np.testing.assert_array_equal(got["switches"], want["switches"])
    for key in reference.end:
        np.testing.assert_array_equal(fast.end[key], reference.end[key])
    assert fast.switch_changes.sum() > 0


def test_lookahead_reads_the_observation_for_a_base_without_a_state_path():
    """A base controller with ``predict`` alone is looked ahead through the observation frames."""
    base = _room_balancing()
    calls = []
    observation_only = ObservationOnly(base)
    observation_only.predict = lambda obs, **kw: calls.append(obs.copy()) or base.predict(obs)
    task = BalancingTask(n_packs=1, profile="charge-rest-discharge", i_max_a=3.4, estimate_soc_sigma=0.01)
    task.reset_drawn([rng_for_seed(SEEDS[0])])
    BestKnown(observation_only).continuation_ah(task)
    assert len(calls) > 10 and not np.array_equal(calls[0], calls[-1])  # fresh frames at every step


@pytest.mark.parametrize(
    ("scenario", "profile"), [("current_1c", "charge-rest-discharge"), ("realistic", "discharge-rest-charge")]
)
def test_a_stride_never_delivers_less_than_room_balancing(scenario, profile):
    """best_known with evaluation.best_known_stride k > 1 (the look-ahead at every k-th decision, the base
    controller in between) is still one step of policy improvement at those states: on packs of the
    test config (a 1 C scenario and its small realistic family) no pack delivers less than under
    room_balancing, and the stride does skip look-aheads."""
    cfg = scenario_config(load_config(ROOT / "config" / "test.yaml"), scenario)
    base = make_baseline("room_balancing", N, cfg["baselines"]["room_balancing"], env=cfg["env"])
    seeds = [1_001_000, 1_002_000]
    strided = BestKnown(base, stride=3)
    looked = []
    delivered = {}
    for name, policy, on_step in (
        ("room_balancing", base, None),
        ("stride 3", strided, lambda task: looked.append(strided.looks_ahead(task)[0])),
    ):
        task = BalancingTask(n_packs=len(seeds), **task_kwargs(cfg, profile))
        task.reset_drawn([rng_for_seed(s) for s in seeds])
        delivered[name] = rollout(task, policy, on_step=on_step).end["discharged_ah"]
    assert (delivered["stride 3"] >= delivered["room_balancing"]).all(), delivered
    assert 0.2 < np.mean(looked) < 0.5  # about every third decision


def test_a_stride_below_one_is_refused():
    with pytest.raises(ValueError, match="stride"):
        BestKnown(_room_balancing(), stride=0)


class DecidingEveryInterval:
    """``base`` without :meth:`RoomBalancing.opens_all_above_a`: best_known's look-ahead then decides
    at every interval (the per-decision loop), the reference for its compiled all-open stretches."""

    def __init__(self, base) -> None:
        self.base = base
        self.predict = base.predict
        self.actions_from_state = base.actions_from_state


def _no_estimate(kwargs: dict) -> dict:
    """Task kwargs with the BMS's estimate off (the look-ahead's compiled stretches need none)."""
    return {**kwargs, "estimate_soc_sigma": 0.0, "estimate_current_bias_sigma_a": 0.0, "estimate_soh_rel_sigma": 0.0}


def _values_along(task: BalancingTask, base, decisions: int, every: int, monkeypatch) -> tuple[list, int]:
    """(values with the compiled stretches, values deciding every interval) at every ``every``-th
    decision of ``decisions`` taken by ``base`` on ``task``, and the intervals the stretches took."""
    pairs, taken = [], [0]
    stretch = PackSimulator.advance_open_while_discharging

    def counted(sim, *args):
        n = stretch(sim, *args)
        taken[0] += n
        return n

    monkeypatch.setattr(PackSimulator, "advance_open_while_discharging", counted)
    fast, reference = BestKnown(base), BestKnown(DecidingEveryInterval(base))
    for t in range(decisions):
        if t % every == 0:
            pairs.append((fast.candidate_values_ah(task), reference.candidate_values_ah(task)))
        if task.sim.episode_over.all():
            break
        task.step(base.predict(task.frames.reshape(task.n_packs, -1))[0])
    return pairs, taken[0]


@pytest.mark.parametrize("profile", ["discharge-rest-charge", "charge-rest-discharge"])
def test_the_compiled_stretches_give_the_per_decision_values_bit_for_bit(profile, monkeypatch):
    """On the test config's packs (0.3 C: long discharges), every candidate's value with the all-open
    discharge stretches advanced in one compiled loop equals the value deciding at every interval,
    bit for bit, at states along a whole room_balancing episode (charging, resting, discharging)."""
    base = _room_balancing()
    task = BalancingTask(n_packs=len(SEEDS), profile=profile, i_max_a=1.02)
    task.reset_drawn([rng_for_seed(s) for s in SEEDS])
    pairs, taken = _values_along(task, base, decisions=10_000, every=40, monkeypatch=monkeypatch)
    assert len(pairs) > 5 and taken > 100  # the stretches did run (discharge-rest-charge: only its first phase)
    for got, want in pairs:
        np.testing.assert_array_equal(got, want)
    assert any(np.ptp(w[np.isfinite(w)]) > 1e-6 for _, w in pairs)  # the actions do differ in value


def test_the_compiled_stretches_give_the_per_decision_values_on_a_realistic_pack(monkeypatch):
    """On a realistic pack (US06 discharge with regenerative steps, where room_balancing may bleed and
    a stretch must stop; the limit of 3 shunts, 33 Ohm, three cycles; the estimate off, which the
    stretches need) the values are the per-decision loop's, bit for bit, mid-charge and mid-discharge."""
    kwargs, base = _realistic("discharge-rest-charge")
    task = BalancingTask(n_packs=1, **_no_estimate(kwargs))
    task.reset_drawn([rng_for_seed(SEEDS[0])])
    assert not task.estimator.active and task.profile.cycles > 1
    pairs, taken = _values_along(task, base, decisions=600, every=100, monkeypatch=monkeypatch)
    assert len(pairs) == 6 and taken > 100  # the stretches did run
    for got, want in pairs:
        np.testing.assert_array_equal(got, want)


def test_advancing_open_while_discharging_is_advance_with_open_shunts():
    """PackSimulator.advance_open_while_discharging: the state after its intervals is that of as many
    advance() calls with every shunt open, every array bit for bit; it stops before an interval in
    which a running pack does not discharge, and records a pack's discharged_ah when its value ends."""
    task = BalancingTask(n_packs=3, profile="charge-rest-discharge", i_max_a=3.4)
    task.reset_drawn([rng_for_seed(s) for s in (*SEEDS, 1_001_002)])
    base = _room_balancing()
    while not (task.sim.state.current_a > 0).all():  # to the discharge
        task.step(base.predict(task.frames.reshape(3, -1))[0])
    reference = BalancingTask(n_packs=3, profile="charge-rest-discharge", i_max_a=3.4)
    for f in fields(PackState):
        setattr(reference.sim.state, f.name, getattr(task.sim.state, f.name).copy())
    running, value = np.ones(3, dtype=bool), np.zeros(3)
    taken = task.sim.advance_open_while_discharging(running, value, 0.0, 50)
    assert taken == 50 and running.all()
    for _ in range(taken):
        reference.sim.advance(np.zeros((3, N), dtype=bool))
    for f in fields(PackState):
        np.testing.assert_array_equal(getattr(task.sim.state, f.name), getattr(reference.sim.state, f.name))
    taken = task.sim.advance_open_while_discharging(running, value, 0.0, 10**6)  # to the episode's end
    assert not running.any() and 0 < taken < 10**6
    np.testing.assert_array_equal(value, task.sim.state.discharged_ah)
    running[:] = True
    task.sim.state.current_a[1] = 0.0  # a running pack resting: no interval taken
    assert task.sim.advance_open_while_discharging(running, value, 0.0, 10) == 0


def test_room_balancing_opens_every_shunt_above_its_open_current():
    """RoomBalancing.opens_all_above_a: at any current just above it, whatever the SoCs and shunts, the
    rule's action is 0 (every shunt open), the fact the look-ahead's stretches rely on."""
    base = _room_balancing()
    rng = np.random.default_rng(3)
    i_max_a = 1.02
    soc, switches, soh, _ = _random_states(rng, 500, base, base.capacity_ah)
    current_a = np.full(500, base.opens_all_above_a(i_max_a)) * (1.0 + rng.uniform(1e-9, 10.0, 500))
    assert (base.actions_from_state(soc, switches, soh, current_a, i_max_a) == 0).all()
    assert (base.actions_from_state(soc, switches, soh, -current_a, i_max_a) != 0).any()  # charging: it bleeds
