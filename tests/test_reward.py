"""The reward kinds (bmsrl.reward, docs/model.md "Reward"), property-tested.

Every kind: the reward never prefers the higher SoC variance at equal switching, for 2-16 cells and
0-n toggles (the study kind only up to 10 toggles: beyond, its automatic beta turns that around, and
a test shows it). The capacity kind, against a search over switch schedules on the test profile: its
capacity term orders every pair of schedules as their delivered capacity does, its costs order
schedules of equal capacity by switching and heat, and doing nothing earns exactly 0. The study kind
fails the capacity ordering, and a test shows where.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmsrl.config import defaults
from bmsrl.env import BalancingTask
from bmsrl.reward import RewardWeights, capacity_reward, charge_margins_ah, study_reward, usable_capacity_ah
from bmsrl.task_config import task_kwargs

SOC_LIMITS = (0.1, 0.9)


# ------------------------------------------------------------------------- usable capacity U
@settings(deadline=None)  # the first example compiles the margins' kernel (numba), as in test_env's properties
@given(n=st.integers(2, 16), data=st.data())
def test_usable_capacity_is_the_weakest_window_when_aligned_and_less_otherwise(n, data):
    cap = np.array(data.draw(st.lists(st.floats(2.0, 4.0), min_size=n, max_size=n)))[None]
    soc = np.array(data.draw(st.lists(st.floats(0.1, 0.9), min_size=n, max_size=n)))[None]
    window = (SOC_LIMITS[1] - SOC_LIMITS[0]) * cap.min()
    assert usable_capacity_ah(soc, cap, SOC_LIMITS)[0] <= window + 1e-12
    # aligned: every cell holds the weakest cell's charge above the floor
    aligned = SOC_LIMITS[0] + (SOC_LIMITS[1] - SOC_LIMITS[0]) * cap.min() / cap * 0.5
    assert usable_capacity_ah(aligned, cap, SOC_LIMITS)[0] == pytest.approx(window)


@settings(deadline=None)
@given(n=st.integers(2, 16), shift_ah=st.floats(-0.5, 0.5), data=st.data())
def test_usable_capacity_does_not_move_under_the_series_current(n, shift_ah, data):
    """The load adds the same charge [Ah] to every cell: U is unchanged."""
    cap = np.array(data.draw(st.lists(st.floats(2.0, 4.0), min_size=n, max_size=n)))[None]
    soc = np.array(data.draw(st.lists(st.floats(0.2, 0.8), min_size=n, max_size=n)))[None]
    before = usable_capacity_ah(soc, cap, SOC_LIMITS)
    after = usable_capacity_ah(soc + shift_ah / cap, cap, SOC_LIMITS)
    assert after == pytest.approx(before, abs=1e-9)


def test_charge_margins_are_numpys_formula_bit_for_bit():
    """The compiled margins equal numpy's elementwise formula and ``min`` exactly, for a batch and for
    a capacity that broadcasts (one row for every pack); a NaN SoC gives NaN, as numpy's ``min``."""
    rng = np.random.default_rng(0)
    soc, cap = rng.uniform(0.0, 1.0, (64, 5)), rng.uniform(2.0, 4.0, (64, 5))
    lo, hi = SOC_LIMITS
    for capacity in (cap, cap[:1]):
        floor, room = charge_margins_ah(soc, capacity, SOC_LIMITS)
        assert floor.tobytes() == ((soc - lo) * capacity).min(axis=1).tobytes()
        assert room.tobytes() == ((hi - soc) * capacity).min(axis=1).tobytes()
    soc[3, 2] = np.nan
    floor, room = charge_margins_ah(soc, cap, SOC_LIMITS)
    assert np.isnan(floor[3]) and np.isnan(room[3]) and not np.isnan(np.delete(floor, 3)).any()


# --------------------------------------------------------------- monotone in the SoC variance
def _spread(n, data):
    """A pack's mean SoC and a non-zero deviation pattern (equal cell capacities)."""
    mean = data.draw(st.floats(0.35, 0.65))
    dev = np.array(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n)))
    dev -= dev.mean()
    if np.ptp(dev) < 1e-3:
        dev = np.linspace(-1.0, 1.0, n)
    return mean, dev / np.ptp(dev)


@settings(max_examples=200, deadline=None)  # the margins' kernel may compile in its first example
@given(
    n=st.integers(2, 16),
    low=st.floats(0.005, 0.1),
    factor=st.floats(1.05, 3.0),
    discharging=st.booleans(),
    energy_wh=st.floats(0.0, 0.2),
    invalid=st.booleans(),
    data=st.data(),
)
def test_capacity_reward_never_prefers_the_higher_variance(n, low, factor, discharging, energy_wh, invalid, data):
    """From one state, two outcomes of one interval that differ only by a wider spread (variance
    x factor^2): at equal toggles and heat the wider one never earns more, strictly less unless a
    discharge withholds the credit of both."""
    toggles = data.draw(st.integers(0, n))
    mean, dev = _spread(n, data)
    cap = np.full((1, n), 3.4)
    floor0, room0 = charge_margins_ah((mean + 0.1 * dev)[None], cap, SOC_LIMITS)
    narrow, wide = (mean + low * dev)[None], (mean + low * factor * dev)[None]
    assert np.var(wide) > np.var(narrow)
    w = RewardWeights(kind="capacity")
    r = []
    for s in (narrow, wide):
        floor, room = charge_margins_ah(s, cap, SOC_LIMITS)
        r.append(
            capacity_reward(
                floor + room - floor0 - room0,
                floor - floor0,
                np.array([discharging]),
                np.array([toggles]),
                np.array([energy_wh]),
                np.array([invalid]),
                3.4,
                w,
            )[0]
        )
    assert r[0] >= r[1]
    if not discharging or charge_margins_ah(narrow, cap, SOC_LIMITS)[0][0] < floor0[0]:
        assert r[0] > r[1]


@settings(max_examples=200)
@given(
    n=st.integers(2, 16),
    var_low=st.floats(1e-9, 1e-1),
    factor=st.floats(1.001, 1e3),
    ok=st.booleans(),
    invalid=st.booleans(),
    data=st.data(),
)
def test_study_reward_prefers_the_lower_variance_up_to_10_toggles(n, var_low, factor, ok, invalid, data):
    """dr/db = 1 - 0.1 * n_toggles * sign(b) > 0 for n_toggles <= 9, = 0 at 10 with b > 0."""
    toggles = data.draw(st.integers(0, min(n, 9)))
    r = study_reward(
        np.array([var_low, var_low * factor]),
        np.array([toggles] * 2),
        np.array([ok] * 2),
        np.array([invalid] * 2),
        RewardWeights(kind="study"),
    )
    assert r[0] > r[1]


@pytest.mark.parametrize("n_cells", [11, 16])
def test_study_reward_prefers_the_higher_variance_beyond_10_toggles(n_cells):
    """The study's automatic beta (0.1 |b| + 1) breaks monotonicity on packs of 11 or more cells:
    with 11 toggles, a better-balanced pack (b > 0) earns less. This is the study's reward as it is
    defined; the capacity kind has no such region (the test above draws up to 16 toggles)."""
    toggles = np.array([11, 11])
    r = study_reward(np.array([1e-7, 1e-5]), toggles, np.ones(2, bool), np.zeros(2, bool), RewardWeights(kind="study"))
    assert r[0] < r[1]
    r = study_reward(
        np.array([1e-7, 1e-5]), np.array([10, 10]), np.ones(2, bool), np.zeros(2, bool), RewardWeights(kind="study")
    )
    assert r[0] >= r[1] - 1e-12


# ------------------------------------------------------------- a search over switch schedules
def _schedules(n_cells: int, rng: np.random.Generator) -> list:
    """Policies as functions of the task: every constant shunt set, threshold controllers that bleed
    always or only off discharge, bleeding the highest cell(s), and random schedules."""
    policies = []
    for bits in range(2**n_cells):
        policies.append(lambda task, k, bits=bits: np.full(task.n_packs, bits))
    weights = 1 << np.arange(n_cells)
    for threshold in (0.002, 0.005, 0.01, 0.02, 0.04):
        for top_only in (False, True):

            def threshold_policy(task, k, threshold=threshold, top_only=top_only):
                soc = task.sim.state.soc
                closed = soc > soc.min(axis=1, keepdims=True) + threshold
                if top_only:
                    closed &= (task.sim.pack_current_now_a() <= 0.0)[:, None]
                return closed.astype(np.int64) @ weights

            policies.append(threshold_policy)
    for p in (0.05, 0.2, 0.5):
        pattern = rng.random((400, n_cells)) < p
        policies.append(lambda task, k, pattern=pattern: np.full(task.n_packs, pattern[k].astype(np.int64) @ weights))
    policies.append(lambda task, k: np.full(task.n_packs, 1 << int(np.argmax(task.sim.state.soc[0]))))
    return policies


def _run(policies, soc, soh, reward: dict, profile="charge-rest-discharge"):
    """Each policy on its own copy of one pack: (return, delivered capacity [Ah], toggles, shunt heat [Wh])."""
    cfg = defaults()
    cfg["reward"] = reward
    n = len(policies)
    tasks = [BalancingTask(n_packs=1, **task_kwargs(cfg, profile)) for _ in range(n)]
    out = np.zeros((n, 4))
    for i, (task, policy) in enumerate(zip(tasks, policies)):
        task.reset_packs(np.arange(1), soc[None], soh[None])
        k, done = 0, False
        while not done:
            _, r, term, trunc, _ = task.step(policy(task, k).astype(np.int64))
            out[i, 0] += r[0]
            out[i, 2] += task.last_toggles[0]
            k, done = k + 1, bool(term[0] or trunc[0])
        s = task.sim.state
        out[i, 1], out[i, 3] = s.discharged_ah[0], s.shunt_energy_wh[0].sum()
    return out


@pytest.fixture(scope="module")
def searched():
    """Every schedule on three packs, under three rewards: the capacity kind without costs, with its
    default toggle and heat costs, and the study kind without its switch penalty. None charges the
    invalid actions the constant sets keep requesting (a penalty on a request, not on an outcome)."""
    rng = np.random.default_rng(11)
    runs = []
    for _ in range(3):
        soc, soh = rng.uniform(0.4, 0.6, 5), rng.uniform(0.95, 1.05, 5)
        policies = _schedules(5, rng)
        free = {
            "kind": "capacity",
            "invalid_action": 0.0,
            "capacity": {"toggle_cost": 0.0, "shunt_energy_cost_per_wh": 0.0},
        }
        study = {"kind": "study", "invalid_action": 0.0, "study": {"switch_penalty": 0.0, "within_limits": 0.0}}
        runs.append(
            {
                name: _run(policies, soc, soh, reward)
                for name, reward in (
                    ("free", free),
                    ("default", {"kind": "capacity", "invalid_action": 0.0}),
                    ("study", study),
                )
            }
        )
    return runs


#: delivered capacities closer than this count as equal [Ah] (voltage cut-offs and the CV taper move
#: a discharge's end by a few mAh independently of U)
CAPACITY_TOL_AH = 0.01


def _reversals(ret: np.ndarray, cap: np.ndarray, tol_ret: float) -> list[tuple[int, int]]:
    """Pairs (a, b) where a earns more than b but delivers less capacity (beyond the tolerances)."""
    more = ret[:, None] > ret[None, :] + tol_ret
    less = cap[:, None] < cap[None, :] - CAPACITY_TOL_AH
    return list(zip(*np.nonzero(more & less)))


def test_capacity_term_orders_schedules_as_their_capacity(searched):
    """Without costs, no schedule earns more reward while delivering less capacity than another."""
    for run in searched:
        ret, cap = run["free"][:, 0], run["free"][:, 1]
        assert np.ptp(cap) > 0.2, "the search must spread the capacities for the test to mean something"
        assert _reversals(ret, cap, tol_ret=0.3) == []


def test_capacity_reward_costs_order_schedules_of_equal_capacity(searched):
    """With the default costs: among schedules that deliver the same capacity, fewer toggles and less
    heat earn more; and no schedule that switches and heats more earns more while delivering less."""
    for run in searched:
        ret, cap, toggles, heat = run["default"].T
        dominated = (
            (cap[:, None] < cap[None, :] - CAPACITY_TOL_AH)
            & (toggles[:, None] >= toggles[None, :])
            & (heat[:, None] >= heat[None, :])
        )
        assert not (dominated & (ret[:, None] > ret[None, :])).any()
        same = np.abs(cap[:, None] - cap[None, :]) < 1e-6
        cheaper = (toggles[:, None] < toggles[None, :]) & (heat[:, None] < heat[None, :])
        assert (ret[:, None] > ret[None, :])[same & cheaper].all()


def test_doing_nothing_earns_nothing_under_the_capacity_kind(searched):
    for run in searched:
        assert run["default"][0, 0] == pytest.approx(0.0, abs=1e-9)  # constant set 0: all shunts open


def test_study_reward_gains_while_losing_capacity(searched):
    """The study's reward (even without its switch penalty) ranks some schedule above another that
    delivers more capacity: what motivated the capacity kind."""
    assert any(_reversals(run["study"][:, 0], run["study"][:, 1], tol_ret=1.0) for run in searched)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(2, 16), seed=st.integers(0, 2**32 - 1))
def test_no_balancing_return_is_zero_for_any_pack(n, seed):
    """All shunts open: the load moves U by nothing, so the capacity kind pays exactly nothing, on
    both profiles and for 2-16 cells (the test also runs the env's bookkeeping of U)."""
    cfg = defaults()
    cfg["env"]["n_cells"] = n
    rng = np.random.default_rng(seed)
    for profile in ("charge-rest-discharge", "discharge-rest-charge"):
        task = BalancingTask(n_packs=2, **task_kwargs(cfg, profile))
        task.reset_packs(np.arange(2), rng.uniform(0.4, 0.6, (2, n)), rng.uniform(0.95, 1.05, (2, n)))
        total, done = np.zeros(2), np.zeros(2, bool)
        while not done.all():
            _, r, term, trunc, _ = task.step(np.zeros(2, dtype=np.int64))
            total += np.where(done, 0.0, r)
            done |= term | trunc
        np.testing.assert_allclose(total, 0.0, atol=1e-9)
