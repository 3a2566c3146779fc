"""The balancing reward, vectorized over packs: two kinds (docs/model.md, "Reward"), a registry
(:data:`KINDS`) whose kinds own their per-pack state, so the env asks the registry and knows no kind.

``capacity`` (the default) pays for what the evaluation measures. Its potential is the pack's
*usable capacity* U [Ah], the charge the pack could deliver between its SoC limits after a full
charge (:func:`usable_capacity_ah`)::

    q_i = (SoC_i - SoC_lo) * C_i        charge above the lower limit [Ah]
    h_i = (SoC_hi - SoC_i) * C_i        room below the upper limit [Ah]
    U   = min_i q_i + min_i h_i         (C_i = capacity_ah * SoH_i)

The series current adds the same charge to every q_i and takes it from every h_i, so U does not
move under load; only the shunts change it (bleeding the fullest cell raises min h; bleeding the
emptiest lowers min q). Its largest value is the weakest cell's window, min_i C_i (SoC_hi - SoC_lo),
which every cell reaches only when the pack is aligned. Per interval, in *capacity points*
(1 point = 1 % of the nominal cell capacity ``capacity_ah``)::

    r = 100 * credit / capacity_ah - c_toggle * n_toggles - c_energy * E_shunt - w_inv * 1[invalid]
    credit = dU                      while the pack rests or charges
             min(d(min_i q_i) + L, 0)  while it discharges

A discharge ends when its emptiest cell does, whatever the others hold: bleeding then can never
add to that discharge's capacity, only take from it, by lowering min_i q_i. So while discharging
only that loss counts (``L`` [Ah], the charge the load took from every cell, removes the load's
share of d(min q)), and a gain of min h, which only a later charge could use, earns nothing.
E_shunt [Wh] is the energy the shunts dissipated during the interval. Over an episode the credit
sums to at most U_end - U_start: the return is the capacity the policy's balancing recovered, less
what its switching and shunt heat cost.

``study`` is the study's reward, kept as the study defines it::

    r = b(Var(SoC)) - beta * n_toggles + w_ok * 1[all cells inside limits] - w_inv * 1[invalid]
    b(v) = -log10(v + epsilon) - offset
    beta = switch_penalty, or 0.1 * |b| + 1 when switch_penalty is "auto"

``b`` rises as the SoC variance falls (Var 1e-2 -> -2, 1e-4 -> 0, 1e-6 -> +1.7 with the defaults),
flattening below ``epsilon``. Its known limits (tests/test_reward.py shows each): it rewards bleeding
during a discharge as much as during a charge, the shunt energy costs nothing, and with the
automatic beta ``dr/db = 1 - 0.1 * n_toggles * sign(b)`` turns negative beyond 10 toggles, so
on a pack of 11 or more cells the reward can prefer the *higher* variance.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numba
import numpy as np

from bmsrl.fields import check, own_values, param, section


# ---------------------------------------------------------------------------------- registry
class CapacityKind:
    """The ``capacity`` kind with its state: the potentials ``min_i q_i`` and ``min_i h_i`` of every
    pack after its last reset or step [Ah] (:func:`charge_margins_ah`; U is their sum)."""

    def __init__(self, n_packs: int, weights: RewardWeights) -> None:
        self.weights = weights
        self.floor_ah = np.zeros(n_packs)
        self.room_ah = np.zeros(n_packs)

    def reset(self, task, packs: np.ndarray) -> None:
        """Take the potentials of the reset ``packs`` (only those: a vec env resets a few at a time)."""
        s = task.sim.state
        self.floor_ah[packs], self.room_ah[packs] = charge_margins_ah(
            s.soc[packs], s.soh[packs] * task.params.capacity_ah, task.params.soc_limits
        )

    def step(self, task, interval, toggles: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        """The reward of every pack for the interval that ``task.sim`` has just integrated."""
        s, p = task.sim.state, task.params
        floor_ah, room_ah = charge_margins_ah(s.soc, s.soh * p.capacity_ah, p.soc_limits)
        # the charge the load took from every cell [Ah]: an unshunted cell's, efficiency included
        pack_ah = interval.pack_current_a * (task.sim.decision_interval_s / 3600.0)
        load_ah = pack_ah * np.where(pack_ah > 0.0, p.discharge_efficiency, p.charge_efficiency)
        reward = capacity_reward(
            (floor_ah + room_ah) - (self.floor_ah + self.room_ah),
            floor_ah - self.floor_ah + load_ah,
            pack_ah > 0.0,
            toggles,
            interval.shunt_energy_wh.sum(axis=1),
            invalid,
            p.capacity_ah,
            self.weights,
        )
        self.floor_ah, self.room_ah = floor_ah, room_ah
        return reward


class StudyKind:
    """The ``study`` kind: no state; the SoC variance after the interval."""

    def __init__(self, n_packs: int, weights: RewardWeights) -> None:
        self.weights = weights

    def reset(self, task, packs: np.ndarray) -> None:
        pass

    def step(self, task, interval, toggles: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        s, n = task.sim.state, task.params.n_cells
        deviation = s.soc - s.soc.sum(axis=1, keepdims=True) * (1.0 / n)
        soc_variance = (deviation * deviation).sum(axis=1) * (1.0 / n)  # population variance
        return study_reward(soc_variance, toggles, task.sim.within_limits(), invalid, self.weights)


#: reward kind -> its class. A kind is built per task (``cls(n_packs, weights)``) and owns its state;
#: ``reset(task, packs)`` after packs are reset, ``step(task, interval, toggles, invalid)`` -> reward per pack
#: after every interval (``task``: a :class:`bmsrl.env.BalancingTask`). Adding a kind is one class here
#: (and its weights as a section of :class:`RewardWeights`, which the config schema takes).
KINDS: dict[str, type] = {"capacity": CapacityKind, "study": StudyKind}


@dataclass(frozen=True)
class StudyWeights:
    """Weights of the ``study`` kind."""

    #: variance floor [-^2] inside the log
    epsilon: float = param(
        1.0e-6, "variance floor in b = -log10(Var(SoC) + epsilon) - offset [-]", type="number", exclusiveMinimum=0
    )
    offset: float = param(4.0, "offset of b [-]", type="number")  #: subtracted from -log10(Var + epsilon) [-]
    #: beta per toggled switch [-], or "auto": 0.1 * |b| + 1 (the study's)
    switch_penalty: float | str = param(
        "auto",
        'a number >= 0 (beta per toggled switch) or "auto" (beta = 0.1 * |b| + 1, the study\'s)',
        anyOf=[{"type": "string", "const": "auto"}, {"type": "number", "minimum": 0}],
    )
    #: w_ok, bonus when every cell is inside its limits [-]
    within_limits: float = param(0.1, "w_ok, bonus when every cell is inside its limits [-]", type="number")

    def __post_init__(self) -> None:
        check(own_values(self), [StudyWeights], "reward.study.")


@dataclass(frozen=True)
class CapacityWeights:
    """Weights of the ``capacity`` kind, in capacity points (1 point = 1 % of ``capacity_ah``)."""

    #: per shunt whose state changed [point]
    toggle_cost: float = param(
        0.05, "cost per shunt whose state changes [point] (20 toggles cost 1 % of capacity)", type="number", minimum=0
    )
    #: per Wh of shunt heat [point/Wh]
    shunt_energy_cost_per_wh: float = param(
        0.2,
        "cost per Wh the shunts dissipate [point/Wh]. Raising U by 1 % of capacity_ah means bleeding up to n - 1 cells by "
        "that charge, (n - 1) * 0.034 Ah * 4.2 V = 0.57 Wh at the defaults (1.75 points/Wh), so useful bleeding pays several "
        "times its heat and needless bleeding always costs",
        type="number",
        minimum=0,
    )

    def __post_init__(self) -> None:
        check(own_values(self), [CapacityWeights], "reward.capacity.")


@dataclass(frozen=True)
class RewardWeights:
    """Which reward (``kind``) and its weights; the fields are the config's ``reward`` section (their
    defaults, rules and descriptions are the schema's: :func:`bmsrl.config.schema`)."""

    kind: str = param(
        "capacity",
        "capacity: pays the usable capacity the shunts recover (not while discharging), less a cost per toggle and per Wh of shunt heat, in capacity points (1 = 1 % of capacity_ah); study: the study's reward, b(Var(SoC)) - beta * toggles + w_ok (reward.study)",
        type="string",
        enum=list(KINDS),
    )
    #: w_inv, penalty for an invalid action [reward units]
    invalid_action: float = param(
        1.0, "w_inv, penalty for an invalid action, in the kind's units [-]", type="number", minimum=0
    )
    study: StudyWeights = section(StudyWeights, "weights of the study kind (used when kind is study)")
    capacity: CapacityWeights = section(
        CapacityWeights,
        "weights of the capacity kind (used when kind is capacity), in capacity points: 1 point = 1 % of env.capacity_ah",
    )

    def __post_init__(self) -> None:
        # nested dicts (a config section) become their dataclasses
        for name, cls in (("study", StudyWeights), ("capacity", CapacityWeights)):
            value = getattr(self, name)
            if isinstance(value, dict):
                known = {f.name for f in fields(cls)}
                unknown = sorted(set(value) - known)
                if unknown:
                    raise ValueError(f"reward.{name}.{unknown[0]}: unknown key; known: {sorted(known)}")
                object.__setattr__(self, name, cls(**value))
        check(own_values(self), [RewardWeights], "reward.")


def charge_margins_ah(
    soc: np.ndarray, cell_capacity_ah: np.ndarray, soc_limits: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``(min_i q_i, min_i h_i)`` [Ah] per pack: the charge the emptiest cell holds above the lower
    SoC limit, and the room the fullest cell has below the upper one.

    ``soc`` [-] has shape ``(packs, cells)``, ``cell_capacity_ah`` [Ah] that shape or one that
    broadcasts to it; ``soc_limits`` is the SoC window [-]. One compiled loop
    (:func:`_charge_margins_ah`): as numpy calls, each with a fixed cost whatever the size, the margins
    cost a single env's step, which reads them twice (the reward and the info), a large part of it.
    """
    soc = _kernel_array(soc)
    if soc.ndim != 2:
        raise ValueError(f"soc must have shape (packs, cells), got {soc.shape}")
    cell_capacity_ah = _kernel_array(cell_capacity_ah)
    if cell_capacity_ah.shape != soc.shape:
        cell_capacity_ah = _kernel_array(np.broadcast_to(cell_capacity_ah, soc.shape))
    floor_ah, room_ah = np.empty(soc.shape[0]), np.empty(soc.shape[0])
    lo, hi = soc_limits
    _charge_margins_ah(soc, cell_capacity_ah, float(lo), float(hi), floor_ah, room_ah)
    return floor_ah, room_ah


def _kernel_array(x) -> np.ndarray:
    """``x`` as the compiled kernel takes it: a writable C-contiguous float64 array (a copy only if
    it is not one), so that it is compiled for one signature."""
    x = np.asarray(x, dtype=np.float64)
    return x if x.flags.c_contiguous and x.flags.writeable else np.array(x, order="C")


@numba.njit(cache=True)
def _charge_margins_ah(soc, cell_capacity_ah, lo, hi, floor_ah, room_ah):
    """:func:`charge_margins_ah` into ``floor_ah``, ``room_ah`` (packs,) [Ah]: per pack the least
    ``(SoC_i - lo) C_i`` and the least ``(hi - SoC_i) C_i`` (a NaN, as numpy's ``min``, wins)."""
    for k in range(soc.shape[0]):
        floor = np.inf
        room = np.inf
        for i in range(soc.shape[1]):
            q = (soc[k, i] - lo) * cell_capacity_ah[k, i]
            h = (hi - soc[k, i]) * cell_capacity_ah[k, i]
            if q < floor or q != q:
                floor = q
            if h < room or h != h:
                room = h
        floor_ah[k] = floor
        room_ah[k] = room


def usable_capacity_ah(soc: np.ndarray, cell_capacity_ah: np.ndarray, soc_limits: tuple[float, float]) -> np.ndarray:
    """U = min_i q_i + min_i h_i [Ah] per pack (:func:`charge_margins_ah`): the charge the pack
    could deliver between its SoC limits after a full charge."""
    floor_ah, room_ah = charge_margins_ah(soc, cell_capacity_ah, soc_limits)
    return floor_ah + room_ah


def balance_term(soc_variance: np.ndarray, weights: StudyWeights) -> np.ndarray:
    """b(Var) of the study kind: larger for a better-balanced pack."""
    return -np.log10(soc_variance + weights.epsilon) - weights.offset


def study_reward(
    soc_variance: np.ndarray,
    n_toggles: np.ndarray,
    within_limits: np.ndarray,
    invalid: np.ndarray,
    weights: RewardWeights,
) -> np.ndarray:
    """The study kind per pack; every argument has shape ``(packs,)`` (``soc_variance`` [-^2])."""
    w = weights.study
    b = balance_term(soc_variance, w)
    beta = 0.1 * np.abs(b) + 1.0 if w.switch_penalty == "auto" else w.switch_penalty
    return b - beta * n_toggles + w.within_limits * within_limits - weights.invalid_action * invalid


def capacity_reward(
    usable_gain_ah: np.ndarray,
    floor_gain_ah: np.ndarray,
    discharging: np.ndarray,
    n_toggles: np.ndarray,
    shunt_energy_wh: np.ndarray,
    invalid: np.ndarray,
    capacity_ah: float,
    weights: RewardWeights,
) -> np.ndarray:
    """The capacity kind per pack; every argument has shape ``(packs,)``.

    ``usable_gain_ah``: change of U over the interval [Ah]; ``floor_gain_ah``: change of
    min_i q_i over the interval less the load's share, i.e. plus the charge ``L`` the load took from
    every cell [Ah]; ``discharging``: the pack discharged during the interval; ``shunt_energy_wh``:
    energy the shunts dissipated during it [Wh]; ``capacity_ah``: nominal cell capacity [Ah] (100 points).
    """
    w = weights.capacity
    credit_ah = np.where(discharging, np.minimum(floor_gain_ah, 0.0), usable_gain_ah)
    return (
        (100.0 / capacity_ah) * credit_ah
        - w.toggle_cost * n_toggles
        - w.shunt_energy_cost_per_wh * shunt_energy_wh
        - weights.invalid_action * invalid
    )


def make_kind(n_packs: int, weights: RewardWeights):
    """The reward kind ``weights.kind`` for ``n_packs`` packs, with its state."""
    if weights.kind not in KINDS:
        raise ValueError(f"reward.kind: unknown kind {weights.kind!r}; choose one of {list(KINDS)}")
    return KINDS[weights.kind](n_packs, weights)
