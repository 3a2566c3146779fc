"""Rule-based controllers behind the same ``predict`` interface as a trained SB3 model, and their
registry (:data:`BASELINES`, one :class:`BaselineSpec` each).

All take the environment's observation, so they need nothing but what an agent sees; they read it
through :func:`bmsrl.observation.decode_observation` (the env's layout) (SoC, shunt states, SoH and pack current of the newest
frame), never by position. A batch of observations gives a batch of actions.

``rule_based``, ``top_balancing`` and ``room_balancing`` have settings that the ``tune-baselines``
stage grid-searches (:mod:`bmsrl.tune_baselines`); ``rule_based_untuned`` is ``rule_based`` at the study's
hand-set values (``baselines.rule_based`` in the config), kept as its own row so the effect of
tuning stays visible.

**Adding a baseline** is one class and one :class:`BaselineSpec` in :data:`BASELINES` (label,
colour, caption, its settings with their schema and defaults, its tuning grid); the config schema,
the workflow's rules, tuning, evaluation, tables, figures and captions take it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from bmsrl.observation import SOH_OBS_SCALE, decode_observation


@dataclass(frozen=True)
class ShuntLimits:
    """A balancing chip's limits as a controller obeys them itself (the env's ``max_closed_shunts`` and
    ``max_shunt_power_w``, docs/model.md "The realistic family"), so that it never asks for a closure
    the env would refuse and count as invalid.

    ``max_closed`` [-] is the most shunts closed at once (0: no limit). ``max_power_w`` [W] is the most
    heat the closed shunts may dissipate together (0: no limit); a controller sees no terminal
    voltage, so it judges each shunt at the upper terminal-voltage limit ``v_max_v`` [V], ``v_max_v^2 /
    shunt_resistance_ohm`` [W] (no more than the env charges it while the voltages stay in the window):
    a conservative count. Without limits :meth:`select` returns its input unchanged.
    """

    max_closed: int = 0
    max_power_w: float = 0.0
    shunt_resistance_ohm: float = 1.0  #: [Ohm]
    v_max_v: float = 0.0  #: [V]

    @classmethod
    def from_env(cls, env: Mapping | Any) -> ShuntLimits:
        """The limits of an env config section (a mapping) or of any object with those attributes;
        a key it lacks (e.g. a :class:`bmsrl.pack.PackParameters`, which holds no limits) is the env's
        default, no limit."""
        from bmsrl.env import TaskParameters
        from bmsrl.pack import PackParameters

        def get(key: str, default: Any) -> Any:
            if isinstance(env, Mapping):
                return env.get(key, default)
            return getattr(env, key, default)

        return cls(
            max_closed=int(get("max_closed_shunts", TaskParameters.max_closed_shunts)),
            max_power_w=float(get("max_shunt_power_w", TaskParameters.max_shunt_power_w)),
            shunt_resistance_ohm=float(get("shunt_resistance_ohm", PackParameters.shunt_resistance_ohm)),
            v_max_v=float(get("voltage_limits_v", PackParameters.voltage_limits_v)[1]),
        )

    def most_closed(self, n_cells: int) -> int:
        """The most shunts [-] of ``n_cells`` a controller closes at once under both limits."""
        most = self.max_closed or n_cells
        if self.max_power_w:
            most = min(most, int(self.max_power_w // (self.v_max_v**2 / self.shunt_resistance_ohm)))
        return min(most, n_cells)

    def select(self, close: np.ndarray, priority: np.ndarray) -> np.ndarray:
        """``close`` (..., cells) bool less the closures beyond the limits: the closed shunts kept are
        those of the highest ``priority`` (..., cells), ties to the lower cell index."""
        most = self.most_closed(close.shape[-1])
        if most >= close.shape[-1]:
            return close
        key = np.where(close, -np.asarray(priority, dtype=np.float64), np.inf)
        rank = np.argsort(np.argsort(key, axis=-1, kind="stable"), axis=-1, kind="stable")
        return close & (rank < most)


NO_LIMITS = ShuntLimits()


class NoBalancing:
    """All shunts open, always (action 0)."""

    name = "no_balancing"

    def __init__(self, n_cells: int = 5, limits: ShuntLimits = NO_LIMITS) -> None:
        self.n_cells = n_cells

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation)
        batch = obs.shape[:-1]
        return np.zeros(batch, dtype=np.int64), state


def _hysteresis_problem(
    settings: Mapping[str, float], threshold_key: str, hysteresis_key: str
) -> tuple[str, str] | None:
    """``(key, message)`` when the hysteresis exceeds the threshold (a shunt would never open), else None."""
    if settings[hysteresis_key] > settings[threshold_key]:
        return hysteresis_key, (
            f"{settings[hysteresis_key]:g} exceeds the {threshold_key} "
            f"{settings[threshold_key]:g} (a shunt would never open)"
        )
    return None


class RuleBased:
    """Close the shunt of every cell whose SoC exceeds the pack minimum by more than a threshold.

    Hysteresis: a closed shunt stays closed until the cell is within ``threshold - hysteresis`` of
    the pack minimum, so a cell hovering at the threshold does not chatter. The lowest cell's
    shunt is never closed (its excess is 0), so the controller never triggers the invalid-action
    rule. ``threshold`` and ``hysteresis`` are SoC fractions [-] (0.01 = 1 % SoC). Under a chip's
    ``limits`` it closes at most as many shunts as they allow, those of the largest excess first.
    """

    name = "rule_based"

    def __init__(self, threshold: float, hysteresis: float, n_cells: int = 5, limits: ShuntLimits = NO_LIMITS) -> None:
        if not 0.0 <= hysteresis <= threshold:
            raise ValueError("rule_based needs 0 <= hysteresis <= threshold")
        self.threshold = threshold
        self.hysteresis = hysteresis
        self.n_cells = n_cells
        self.limits = limits
        self._weights = 1 << np.arange(n_cells)

    @staticmethod
    def settings_problem(settings: Mapping[str, float]) -> tuple[str, str] | None:
        return _hysteresis_problem(settings, "threshold", "hysteresis")

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        frame = decode_observation(observation, self.n_cells)
        excess = frame.soc - frame.soc.min(axis=-1, keepdims=True)
        close = (excess > self.threshold) | (frame.closed & (excess > self.threshold - self.hysteresis))
        close = self.limits.select(close, excess)
        return (close * self._weights).sum(axis=-1).astype(np.int64), state


class TopBalancing(RuleBased):
    """:class:`RuleBased` that bleeds only while the pack charges or rests, as BMS chips do.

    While the pack discharges (observed pack current > 0) every shunt is open; while it charges or
    rests, a cell more than ``threshold`` above the pack minimum is bled, with the same hysteresis.
    """

    name = "top_balancing"

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        action, state = super().predict(observation, state, episode_start, deterministic)
        discharging = decode_observation(observation, self.n_cells).current_ratio > 0.0
        return np.where(discharging, 0, action).astype(np.int64), state


class RoomBalancing:
    """Capacity-aware top balancing: equalise each cell's *room* below the upper SoC limit in Ah
    with the room of the emptiest cell (issue 18).

    With ``C_j = SoH_j * capacity_ah`` [Ah], the room of cell j is ``h_j = (soc_hi - SoC_j) C_j``
    and its charge above the lower limit ``q_j = (SoC_j - soc_lo) C_j``; the emptiest cell ``e``
    has the least ``q``. While the pack charges or rests (observed current <= 0), cell j is bled
    while ``h_e - h_j > margin`` and, once closed, until ``h_e - h_j`` falls below
    ``margin - hysteresis``; cell ``e`` is never bled, and while the pack discharges every shunt is
    open. A charge ends when the fullest cell has no room left, so a pack whose rooms equal the
    emptiest cell's takes in as much as the emptiest cell can hold: equal SoC is not equal room when
    the capacities differ.

    It reads the observation only (SoC, SoH, shunt states, the sign of the current; the SoH
    observation saturates outside [0.9, 1.1]) plus two facts of the env, given at construction:
    ``soc_limits`` [-] and the nominal cell ``capacity_ah`` [Ah]. ``margin_mah`` and
    ``hysteresis_mah`` are in mAh. Under a chip's ``limits`` it bleeds at most as many cells as they
    allow, those of the largest room deficit ``h_e - h_j`` first.
    """

    name = "room_balancing"

    def __init__(
        self,
        margin_mah: float,
        hysteresis_mah: float,
        soc_limits: tuple[float, float],
        capacity_ah: float,
        n_cells: int = 5,
        limits: ShuntLimits = NO_LIMITS,
    ) -> None:
        if not 0.0 <= hysteresis_mah <= margin_mah:
            raise ValueError("room_balancing needs 0 <= hysteresis_mah <= margin_mah")
        lo, hi = (float(x) for x in soc_limits)
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"room_balancing needs soc_limits [lo, hi] with 0 <= lo < hi <= 1, got {soc_limits}")
        if not capacity_ah > 0.0:
            raise ValueError(f"room_balancing needs capacity_ah > 0, got {capacity_ah}")
        self.margin_ah = margin_mah / 1000.0
        self.hysteresis_ah = hysteresis_mah / 1000.0
        self.soc_limits = (lo, hi)
        self.capacity_ah = float(capacity_ah)
        self.n_cells = n_cells
        self.limits = limits

    @staticmethod
    def settings_problem(settings: Mapping[str, float]) -> tuple[str, str] | None:
        return _hysteresis_problem(settings, "margin_mah", "hysteresis_mah")

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        """The actions of the observation (batch): decoded (:func:`decode_observation`), then the one
        compiled rule (:func:`_room_rule`, the chip's limit included)."""
        frame = decode_observation(observation, self.n_cells)
        batch = frame.current_ratio.shape
        soc = np.ascontiguousarray(frame.soc.reshape(-1, self.n_cells))
        out = np.empty(soc.shape[0], dtype=np.int64)
        _room_actions_from_frames(
            soc,
            np.ascontiguousarray(frame.closed.reshape(-1, self.n_cells)),
            np.ascontiguousarray(frame.soh.reshape(-1, self.n_cells)),
            np.ascontiguousarray(frame.current_ratio.reshape(-1)),
            *self._rule_settings(),
            out,
        )
        return (out.reshape(batch) if batch else out[0]), state  # one observation: one action

    def _rule_settings(self) -> tuple[float, float, float, float, float, int]:
        """The rule's arguments after the state (:func:`_room_rule`): margin and reopening level
        (margin - hysteresis) [Ah], the SoC limits [-], the nominal capacity [Ah] and the most shunts
        closed at once [-] under the chip's limits (:meth:`ShuntLimits.most_closed`)."""
        lo, hi = self.soc_limits
        most = self.limits.most_closed(self.n_cells)
        return self.margin_ah, self.margin_ah - self.hysteresis_ah, lo, hi, self.capacity_ah, most

    def opens_all_above_a(self, i_max_a: float) -> float:
        """A pack current [A] above which the rule keeps every shunt open (action 0) whatever else the
        observation shows (:func:`_room_rule`: the observed current ratio, float32 of current / i_max,
        is > 0): any current above ``i_max_a`` * 1e-30, whose ratio is far above float32's smallest
        positive value (1.4e-45), so it cannot round to 0. ``best_known``'s look-ahead advances such
        stretches without deciding (:meth:`bmsrl.pack.PackSimulator.advance_open_while_discharging`)."""
        return float(i_max_a) * 1e-30

    def actions_from_state(
        self, soc: np.ndarray, switches: np.ndarray, soh: np.ndarray, pack_current_a: np.ndarray, i_max_a: float
    ) -> np.ndarray:
        """(packs,) int64: the actions :meth:`predict` takes on the observation a task would show of
        this state, without building or decoding it (``best_known``'s look-ahead, thousands of calls
        per decision): ``soc``, ``soh`` [-] (packs, cells) the values the observation shows (the BMS's
        estimate with an estimator: :meth:`bmsrl.env.BalancingTask.observed_soc`, ``observed_soh``),
        ``switches`` (packs, cells) bool, ``pack_current_a`` [A] (packs,) and the observation's
        current scale ``i_max_a`` [A]. The observation's rounding to float32 and its clipping are
        reproduced (:func:`_room_actions_from_state`), then the same compiled rule as :meth:`predict`
        decides (the chip's limit included), so the actions are equal, not merely close
        (tests/test_best_known.py compares both on random states and along whole episodes)."""
        out = np.empty(soc.shape[0], dtype=np.int64)
        _room_actions_from_state(  # the arrays as they are: the compiled call takes any layout
            soc, switches, soh, pack_current_a, 1.0 / float(i_max_a), *self._rule_settings(), out
        )
        return out


@numba.njit(cache=True)
def _room_rule(soc, closed, soh, current_ratio, margin_ah, reopen_ah, lo, hi, capacity_ah, most):  # pragma: no cover
    """room_balancing's decision for one pack, the only implementation of its rule (``predict`` and
    ``actions_from_state`` both call it): ``soc``, ``soh`` [-] (cells,) and ``closed`` (cells,) as
    the observation shows them (decoded), ``current_ratio`` [-] the observed pack current / i_max;
    ``reopen_ah`` = margin - hysteresis [Ah]; the emptiest cell is argmin's first minimum. Of more
    than ``most`` closures it keeps those of the largest room deficit, ties to the lower cell index
    (:meth:`ShuntLimits.select`'s order). Returns the action index."""
    if not current_ratio <= 0.0:  # discharging: every shunt open
        return 0
    n = soc.shape[0]
    room_ah = np.empty(n)
    emptiest, least_ah = 0, np.inf
    for j in range(n):
        cell_ah = soh[j] * capacity_ah
        charge_ah = (soc[j] - lo) * cell_ah  # q_j
        room_ah[j] = (hi - soc[j]) * cell_ah  # h_j
        if j == 0 or charge_ah < least_ah:
            emptiest, least_ah = j, charge_ah
    excess_ah = room_ah[emptiest] - room_ah  # h_e - h_j
    close = np.zeros(n, dtype=np.bool_)
    count = 0
    for j in range(n):
        if j != emptiest and (excess_ah[j] > margin_ah or (closed[j] and excess_ah[j] > reopen_ah)):
            close[j] = True
            count += 1
    while count > most:  # the chip's limit: drop the smallest deficit, the higher index of a tie
        drop = -1
        for j in range(n):
            if close[j] and (drop < 0 or excess_ah[j] <= excess_ah[drop]):
                drop = j
        close[drop] = False
        count -= 1
    action = 0
    for j in range(n):
        if close[j]:
            action += 1 << j
    return action


@numba.njit(cache=True)
def _room_actions_from_frames(
    soc, closed, soh, current_ratio, margin_ah, reopen_ah, lo, hi, capacity_ah, most, out
):  # pragma: no cover  (compiled)
    """:func:`_room_rule` of every pack of decoded observations (packs, cells) into ``out`` (packs,)."""
    for k in range(soc.shape[0]):
        out[k] = _room_rule(
            soc[k], closed[k], soh[k], current_ratio[k], margin_ah, reopen_ah, lo, hi, capacity_ah, most
        )


@numba.njit(cache=True)
def _room_actions_from_state(
    soc, switches, soh, pack_current_a, inv_i_max, margin_ah, reopen_ah, lo, hi, capacity_ah, most, out
):  # pragma: no cover  (compiled)
    """:func:`_room_rule` of the observation of the state, pack by pack: each value goes through the
    observation's encoding (``BalancingTask._write_frame``: clipped, stored as float32) and
    :func:`bmsrl.observation.decode_observation`'s decoding in the same float64 operations."""
    n_packs, n = soc.shape
    soc_obs = np.empty(n)
    soh_obs = np.empty(n)
    for k in range(n_packs):
        current_ratio = np.float64(np.float32(min(max(pack_current_a[k] * inv_i_max, -1.0), 1.0)))
        for j in range(n):
            soc_obs[j] = (np.float64(np.float32(min(max(2.0 * soc[k, j] - 1.0, -1.0), 1.0))) + 1.0) / 2.0
            soh_obs[j] = (
                1.0 + np.float64(np.float32(min(max((soh[k, j] - 1.0) * SOH_OBS_SCALE, -1.0), 1.0))) / SOH_OBS_SCALE
            )
        out[k] = _room_rule(
            soc_obs, switches[k], soh_obs, current_ratio, margin_ah, reopen_ah, lo, hi, capacity_ah, most
        )


# --------------------------------------------------------------------------------- registry
def _number(description: str, default: float, **bounds: float) -> dict[str, Any]:
    """The schema of one numeric setting (``minimum``/``maximum``/``exclusiveMinimum`` in ``bounds``)."""
    return {"type": "number", **bounds, "default": default, "description": description}


def _threshold_settings(what: str) -> dict[str, dict[str, Any]]:
    return {
        "threshold": _number(
            f"close the shunt of a cell whose SoC exceeds the pack minimum by more than this [-] (0.01 = 1 %){what}",
            0.01,
            minimum=0,
        ),
        "hysteresis": _number(
            "... and open it again below threshold - hysteresis [-] (at most the threshold)", 0.005, minimum=0
        ),
    }


def _fraction_grid(value_key: str, fraction_key: str, setting: str, hysteresis: str) -> Callable[[Mapping], list[dict]]:
    """Candidates ``{setting: v, hysteresis: fraction * v}`` of a grid of values x hysteresis
    fractions (``tuning[value_key]``, ``tuning[fraction_key]``), sorted, duplicates dropped."""

    def candidates(tuning: Mapping) -> list[dict[str, float]]:
        grid: list[dict[str, float]] = []
        for value in sorted(tuning[value_key]):
            for fraction in sorted(tuning[fraction_key]):
                pair = {setting: float(value), hysteresis: round(float(fraction) * float(value), 12)}
                if pair not in grid:
                    grid.append(pair)
        return grid

    return candidates


#: the grid keys of ``baselines.tuning`` (name -> schema with its default); a baseline names those it reads
TUNING_GRID_KEYS: dict[str, dict[str, Any]] = {
    "thresholds": {
        "description": "candidate thresholds [-] (SoC fraction above the pack minimum) of rule_based and top_balancing",
        "type": "array",
        "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "minItems": 1,
        "uniqueItems": True,
        "default": [0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05],
    },
    "hysteresis_fractions": {
        "description": "candidate hysteresis of rule_based and top_balancing as a fraction of the threshold [-] "
        "(0: none, 1: reopen only at the pack minimum)",
        "type": "array",
        "items": {"type": "number", "minimum": 0, "maximum": 1},
        "minItems": 1,
        "uniqueItems": True,
        "default": [0.0, 0.25, 0.5, 0.75, 1.0],
    },
    "room_margins_mah": {
        "description": "candidate margins [mAh] of room_balancing (room below the upper limit beyond the emptiest "
        "cell's); 1 mAh is about 0.03 % SoC of a 3.4 Ah cell",
        "type": "array",
        "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
        "minItems": 1,
        "uniqueItems": True,
        "default": [1.0, 2.5, 5.0, 10.0, 20.0, 40.0],
    },
    "room_hysteresis_fractions": {
        "description": "candidate hysteresis of room_balancing as a fraction of the margin [-]",
        "type": "array",
        "items": {"type": "number", "minimum": 0, "maximum": 1},
        "minItems": 1,
        "uniqueItems": True,
        "default": [0.0, 0.5, 1.0],
    },
}


@dataclass(frozen=True)
class BaselineSpec:
    """Everything the package knows about one baseline controller."""

    name: str
    cls: type  #: the controller; its constructor takes ``n_cells``, the settings, ``env_arguments`` and ``limits``
    label: str  #: in tables and legends
    color: str  #: in every figure
    description: str  #: one clause for captions and docs
    #: its settings: keyword -> JSON schema (with ``default``), the ``baselines.<name>`` config section
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: keys of ``baselines.tuning`` (:data:`TUNING_GRID_KEYS`) its grid reads; empty: not tunable
    grid_keys: tuple[str, ...] = ()
    #: ``baselines.tuning`` -> the candidate settings (a list of keyword dicts)
    candidates: Callable[[Mapping], list[dict[str, float]]] | None = None
    #: another baseline whose configured (hand-set) settings it runs: the ``*_untuned`` copy
    settings_of: str | None = None
    #: env facts its constructor takes (names of :class:`bmsrl.pack.PackParameters` fields / env keys)
    env_arguments: tuple[str, ...] = ()

    @property
    def tunable(self) -> bool:
        return self.candidates is not None

    @property
    def settings_key(self) -> str:
        """The key of ``cfg["baselines"]`` holding its settings."""
        return self.settings_of or self.name


#: name -> spec, in the order tables list them
BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec("no_balancing", NoBalancing, "No balancing", "#4d4d4d", "every shunt open"),
        BaselineSpec(
            "rule_based",
            RuleBased,
            "Rule-based",
            "#d62728",
            "bleeds every cell more than a threshold above the lowest SoC, at any time",
            settings=_threshold_settings(""),
            grid_keys=("thresholds", "hysteresis_fractions"),
            candidates=_fraction_grid("thresholds", "hysteresis_fractions", "threshold", "hysteresis"),
        ),
        BaselineSpec(
            "top_balancing",
            TopBalancing,
            "Top balancing",
            "#17becf",
            "the rule-based controller that bleeds only while the pack charges or rests",
            settings=_threshold_settings("; only while the pack charges or rests"),
            grid_keys=("thresholds", "hysteresis_fractions"),
            candidates=_fraction_grid("thresholds", "hysteresis_fractions", "threshold", "hysteresis"),
        ),
        BaselineSpec(
            "room_balancing",
            RoomBalancing,
            "Room balancing",
            "#b8860b",
            "bleeds, while the pack charges or rests, every cell with less room below the upper SoC limit [Ah] "
            "than the emptiest cell",
            settings={
                "margin_mah": _number(
                    "bleed a cell whose room below the upper SoC limit is smaller than the "
                    "emptiest cell's by more than this [mAh]",
                    5.0,
                    minimum=0,
                ),
                "hysteresis_mah": _number(
                    "... and stop below margin_mah - hysteresis_mah [mAh] (at most the margin)", 2.5, minimum=0
                ),
            },
            grid_keys=("room_margins_mah", "room_hysteresis_fractions"),
            candidates=_fraction_grid("room_margins_mah", "room_hysteresis_fractions", "margin_mah", "hysteresis_mah"),
            env_arguments=("soc_limits", "capacity_ah"),
        ),
        BaselineSpec(
            "rule_based_untuned",
            RuleBased,
            "Rule-based (untuned)",
            "#ff9896",
            "the rule-based controller at the study's hand-set threshold and hysteresis",
            settings_of="rule_based",
        ),
    )
}


def get(name: str) -> BaselineSpec:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}")
    return BASELINES[name]


#: baselines whose settings the tune-baselines stage grid-searches
TUNABLE: tuple[str, ...] = tuple(name for name, spec in BASELINES.items() if spec.tunable)


def settings_key(name: str) -> str:
    """The key of ``cfg["baselines"]`` holding the settings of baseline ``name``."""
    return get(name).settings_key


def setting_names(name: str) -> tuple[str, ...]:
    """The keyword settings baseline ``name`` takes (those of the section it reads)."""
    return tuple(get(settings_key(name)).settings)


def evaluated_baselines(tuned: bool) -> list[str]:
    """The baselines a study evaluates: all of them with ``baselines.tuned``, else without the
    ``*_untuned`` copies (which would then duplicate their tunable twin)."""
    return [b for b, spec in BASELINES.items() if tuned or spec.settings_of is None]


def make_baseline(name: str, n_cells: int, settings: dict | None = None, env: Mapping | Any = None):
    """The baseline controller called ``name`` for ``n_cells`` cells; ``settings`` are its keyword
    arguments (``cfg["baselines"][settings_key(name)]`` or a tuned settings file, e.g. threshold and
    hysteresis of ``rule_based``); ``env`` gives the env facts it needs (:attr:`BaselineSpec.env_arguments`):
    the config's ``env`` section, or any object with those attributes (a :class:`bmsrl.pack.PackParameters`).
    Every controller obeys the chip's limits of ``env`` itself (:class:`ShuntLimits`; none without ``env``)."""
    spec = get(name)
    facts = {}
    for key in spec.env_arguments:
        if env is None:
            raise ValueError(f"baseline {name!r} needs the env's {', '.join(spec.env_arguments)} (pass env=)")
        facts[key] = env[key] if isinstance(env, Mapping) else getattr(env, key)
    limits = NO_LIMITS if env is None else ShuntLimits.from_env(env)
    return spec.cls(n_cells=n_cells, **(settings or {}), **facts, limits=limits)


def settings_problem(name: str, settings: Mapping[str, float]) -> tuple[str, str] | None:
    """``(key, message)`` of the first rule the settings of baseline ``name`` break that a schema
    cannot express (e.g. a hysteresis above the threshold), else None."""
    check = getattr(get(name).cls, "settings_problem", None)
    return check(settings) if check is not None else None


def caption_list(names: Sequence[str] | None = None) -> str:
    """The baselines ``names`` (default: all) in one phrase for report captions: ``name`` (what it does); ..."""
    return "; ".join(f"{name} ({get(name).description})" for name in (BASELINES if names is None else names))
