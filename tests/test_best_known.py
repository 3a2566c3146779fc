"""best_known's look-ahead (bmsrl.best_known) computes what trying every action with a full rollout
computes: the same actions and the same episodes, pack for pack, on both load profiles; and the facts
its shortcut rests on (PackSimulator.discharge_over, the batched bound) hold."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from bmsrl import bound
from bmsrl.baselines import make_baseline
from bmsrl.best_known import BestKnown
from bmsrl.config import defaults
from bmsrl.env import BalancingTask, rng_for_seed
from bmsrl.pack import PackState
from bmsrl.rollout import rollout

N = 5
SEEDS = [1_001_000, 1_001_001]  # evaluation packs of training seed 1


class FullRolloutBestKnown(BestKnown):
    """The obviously-correct slow reference: every valid action of every pack with a choice tried on
    a copy of the whole task and followed by the base controller through :func:`bmsrl.rollout.rollout`
    (rewards, counts and all) to the episode's end."""

    def candidate_values_ah(self, task: BalancingTask) -> np.ndarray:
        invalid = task.invalid_mask()
        values = np.where(invalid, -np.inf, 0.0)
        choice = ~invalid & ((~invalid).sum(axis=1) > 1)[:, None]
        packs, actions = np.nonzero(choice)
        if packs.size == 0:
            return values
        shadow = self._shadow_of(task, packs.size)
        for f in fields(PackState):
            setattr(shadow.sim.state, f.name, getattr(task.sim.state, f.name)[packs].copy())
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


def test_lookahead_reads_the_observation_where_it_is_not_the_truth():
    """With the BMS's estimate in the observation (or a binding chip limit) the look-ahead takes the
    observation path: actions_from_state is never called."""
    base = _room_balancing()
    calls = []
    base.actions_from_state = lambda *a: calls.append(a)  # would fail the rollout if it were used
    task = BalancingTask(n_packs=1, profile="charge-rest-discharge", i_max_a=3.4, estimate_soc_sigma=0.01)
    task.reset_drawn([rng_for_seed(SEEDS[0])])
    assert task.estimator.active
    BestKnown(base).continuation_ah(task)
    assert calls == []
    limited = make_baseline(
        "room_balancing",
        N,
        defaults()["baselines"]["room_balancing"],
        env={**defaults()["env"], "max_closed_shunts": 1},
    )
    assert not limited.acts_on_state
    with pytest.raises(ValueError, match="binding chip limit"):
        limited.actions_from_state(*_random_states(np.random.default_rng(0), 3, limited, limited.capacity_ah), 3.4)
