"""The passive-balancing decision problem: a batched task core and the Gymnasium environment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numba
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from bmsrl.actions import ACTION_SPACES, MULTI_BINARY, cell_masks, check_bits, check_indices
from bmsrl.estimator import StateEstimator
from bmsrl.fields import check, param
from bmsrl.observation import INVALID_RULES, SOH_OBS_SCALE, decode_observation  # noqa: F401  (re-exported: the env's layout, read back)
from bmsrl.pack import CellTables, PackParameters, PackSimulator
from bmsrl.profiles import DISCHARGES, I_MAX_A, LoadProfile, get_profile, make_discharge_load
from bmsrl.render import RENDER_FPS, RENDER_MODES, PackRenderer
from bmsrl.reward import RewardWeights, make_kind, usable_capacity_ah

N_FRAMES = 3  #: retraced frames in the observation: t, t-1, t-2


@dataclass(frozen=True)
class TaskParameters:
    """The arguments of :class:`BalancingTask` besides the pack, the reward and the tables: timing,
    initial state, current and rules. Their defaults, rules and descriptions are the workflow's too
    (``env`` section of the config schema, with :class:`bmsrl.pack.PackParameters`'s)."""

    decision_interval_s: float = param(30, "time between two agent decisions [s]", type="number", exclusiveMinimum=0)
    #: the smallest count that keeps the terminal voltage within 1 mV of a tight solve_ivp reference
    #: over both profiles with random switching (tests/test_physics.py proves both: 3 sub-steps stay
    #: below 0.75 mV, 2 exceed 1 mV)
    substeps: int = param(
        3, "zero-order-hold integration sub-steps per decision interval [-]", type="integer", minimum=1
    )
    i_max_a: float = param(
        I_MAX_A,
        "profile (CC) current magnitude, about 0.7 C; observation scale; phase safety caps scale with capacity_ah / i_max_a [A]",
        type="number",
        exclusiveMinimum=0,
    )
    init_soc: tuple[float, float] = param(
        (0.4, 0.6),
        "initial SoC of each cell ~ U(lo, hi) [-]",
        interval="closed",
        inside="soc_limits",
        items={"type": "number", "minimum": 0, "maximum": 1},
    )
    init_soh: tuple[float, float] = param(
        (0.95, 1.05),
        "initial state of health (capacity / Q_nom) of each cell ~ U(lo, hi) [-]; at most 1.5 (a cell half again "
        "its nominal capacity is not a cell of this type: a percentage or a typo)",
        interval="closed",
        items={"type": "number", "exclusiveMinimum": 0, "maximum": 1.5},
    )
    invalid_rules: tuple[str, ...] = param(
        ("lowest_soc_while_discharging",),
        "actions treated as invalid: closing the lowest-SoC cell's shunt while discharging; closing a shunt at SoC <= the window's lower limit",
        type="array",
        items={"type": "string", "enum": list(INVALID_RULES)},
        uniqueItems=True,
    )
    action_space: str = param(
        next(iter(ACTION_SPACES)),
        "the agent's action space: discrete (Discrete(2^n_cells), one index whose bit i closes cell i's shunt, "
        "the study's) or multi_binary (MultiBinary(n_cells), one bit per shunt, a forbidden shunt stays open; "
        "for the algorithms whose bmsrl.algos entry lists it in action_spaces) (bmsrl.actions)",
        type="string",
        enum=list(ACTION_SPACES),
    )
    # --- the realistic family (docs/model.md): each default is the study's setting
    max_closed_shunts: int = param(
        0,
        "most shunts closed at once (a BMS chip's balancing limit); a closure beyond it stays open and the action counts as invalid; the cells with the highest observed SoC win, ties to the lower index; 0: no limit [-]",
        type="integer",
        minimum=0,
    )
    max_shunt_power_w: float = param(
        0.0,
        "most heat the closed shunts of a pack may dissipate together, judged at the decision from the terminal voltages (V^2 / R_sh per shunt); closures beyond it stay open as beyond max_closed_shunts, the same cells win; 0: no limit [W]",
        type="number",
        minimum=0,
    )
    discharge: str = param(
        "constant",
        "the discharge phase's current: constant (i_max_a), drive_cycle (the cycle env.drive_cycle, repeated) or stochastic (a seeded synthetic load, env.load_seed), the last two scaled to a peak of load_peak_c_rate x capacity_ah",
        type="string",
        enum=list(DISCHARGES),
    )
    drive_cycle: str = param(
        "us06",
        "the drive cycle of discharge: drive_cycle: a shipped one (us06) or a CSV with columns time_s [s], current_a [A]",
        type="string",
    )
    load_peak_c_rate: float = param(
        2.0,
        "peak discharge current of a drive-cycle or stochastic discharge, as a C-rate of capacity_ah [1/h]",
        type="number",
        exclusiveMinimum=0,
    )
    load_seed: int = param(0, "seed of the stochastic discharge load [-]", type="integer", minimum=0)
    cycles: int = param(
        1,
        "times an episode runs the profile, each cycle from the state the last left; discharged_ah, charged_ah and so the usable capacity count the last cycle only [-]",
        type="integer",
        minimum=1,
    )
    estimate_soc_sigma: float = param(
        0.0,
        "standard deviation of the BMS's initial SoC error per cell (the observation shows the estimate; 0 with the other estimate_ errors: the truth) [-]",
        type="number",
        minimum=0,
        maximum=1,
    )
    estimate_current_bias_sigma_a: float = param(
        0.0,
        "standard deviation of the BMS current sensor's offset, one per pack, integrated by coulomb counting [A]",
        type="number",
        minimum=0,
    )
    estimate_soh_rel_sigma: float = param(
        0.0, "relative standard deviation of the BMS's SoH estimate per cell [-]", type="number", minimum=0, maximum=1
    )
    estimate_ocv_rest_s: float = param(
        0.0,
        "the BMS resets a cell's SoC estimate to the OCV curve at its terminal voltage after the pack has rested this long (shunt open); 0: never [s]",
        type="number",
        minimum=0,
    )
    estimate_seed: int = param(
        0, "seed of the estimation errors (with each pack's initial state) [-]", type="integer", minimum=0
    )


#: sub-steps per 30 s decision interval (env.substeps, :class:`TaskParameters`)
DEFAULT_SUBSTEPS = TaskParameters.substeps


class BalancingTask:
    """Everything between an action and a reward, vectorized over ``n_packs`` packs.

    Both :class:`PassiveBalancingEnv` (one pack) and :class:`bmsrl.vec_env.BatchedBalancingVecEnv`
    (N packs) run this class, so the single and the batched environment share one implementation of
    the physics, the invalid-action rules, the observation and the reward.
    """

    def __init__(
        self,
        n_packs: int = 1,
        profile: str | LoadProfile = "discharge-rest-charge",
        ocv_table: str | None = None,
        ecm_table: str | None = None,
        pack: PackParameters | dict | None = None,
        reward: RewardWeights | dict | None = None,
        decision_interval_s: float = TaskParameters.decision_interval_s,
        substeps: int = TaskParameters.substeps,
        invalid_rules: Sequence[str] = TaskParameters.invalid_rules,
        init_soc: tuple[float, float] = TaskParameters.init_soc,
        init_soh: tuple[float, float] = TaskParameters.init_soh,
        i_max_a: float = TaskParameters.i_max_a,
        action_space: str = TaskParameters.action_space,
        max_closed_shunts: int = TaskParameters.max_closed_shunts,
        max_shunt_power_w: float = TaskParameters.max_shunt_power_w,
        discharge: str = TaskParameters.discharge,
        drive_cycle: str = TaskParameters.drive_cycle,
        load_peak_c_rate: float = TaskParameters.load_peak_c_rate,
        load_seed: int = TaskParameters.load_seed,
        cycles: int = TaskParameters.cycles,
        estimate_soc_sigma: float = TaskParameters.estimate_soc_sigma,
        estimate_current_bias_sigma_a: float = TaskParameters.estimate_current_bias_sigma_a,
        estimate_soh_rel_sigma: float = TaskParameters.estimate_soh_rel_sigma,
        estimate_ocv_rest_s: float = TaskParameters.estimate_ocv_rest_s,
        estimate_seed: int = TaskParameters.estimate_seed,
        tables: CellTables | None = None,
        allow_implausible_tables: bool = False,
    ) -> None:
        self.params = pack if isinstance(pack, PackParameters) else PackParameters(**(pack or {}))
        self.reward_weights = reward if isinstance(reward, RewardWeights) else RewardWeights(**(reward or {}))
        if isinstance(n_packs, bool) or not isinstance(n_packs, (int, np.integer)) or n_packs < 1:
            raise ValueError(f"n_packs must be an integer >= 1, got {n_packs!r}")
        # The fields' rules (also the config's: env section, orderings, init_soc inside soc_limits).
        check(
            {
                **asdict(self.params),
                "decision_interval_s": decision_interval_s,
                "substeps": substeps,
                "invalid_rules": list(invalid_rules) if not isinstance(invalid_rules, str) else invalid_rules,
                "init_soc": init_soc,
                "init_soh": init_soh,
                "i_max_a": i_max_a,
                "action_space": action_space,
                "max_closed_shunts": max_closed_shunts,
                "max_shunt_power_w": max_shunt_power_w,
                "discharge": discharge,
                "drive_cycle": drive_cycle,
                "load_peak_c_rate": load_peak_c_rate,
                "load_seed": load_seed,
                "cycles": cycles,
                "estimate_soc_sigma": estimate_soc_sigma,
                "estimate_current_bias_sigma_a": estimate_current_bias_sigma_a,
                "estimate_soh_rel_sigma": estimate_soh_rel_sigma,
                "estimate_ocv_rest_s": estimate_ocv_rest_s,
                "estimate_seed": estimate_seed,
            },
            [PackParameters, TaskParameters],
        )
        self.invalid_rules = tuple(invalid_rules)
        self.init_soc = tuple(float(x) for x in init_soc)
        self.init_soh = tuple(float(x) for x in init_soh)
        self.i_max_a = float(i_max_a)
        #: ``env.action_space`` (:mod:`bmsrl.actions`); inside, actions are indices either way
        self.action_space = action_space
        self.per_cell = action_space == MULTI_BINARY
        self.max_closed_shunts = int(max_closed_shunts)
        self.max_shunt_power_w = float(max_shunt_power_w)
        load = None
        if not isinstance(profile, LoadProfile):
            load = make_discharge_load(
                discharge,
                drive_cycle=drive_cycle,
                peak_c_rate=load_peak_c_rate,
                capacity_ah=self.params.capacity_ah,
                seed=load_seed,
            )
        self.profile = get_profile(profile, self.i_max_a, self.params.capacity_ah, load, cycles)
        self.tables = (
            tables
            if tables is not None
            else CellTables.from_files(
                ocv_table, ecm_table, soc_window=self.params.soc_limits, allow_implausible=allow_implausible_tables
            )
        )
        self.sim = PackSimulator(self.params, self.tables, self.profile, n_packs, decision_interval_s, substeps)
        #: what the BMS believes (bmsrl.estimator); inactive (the truth) with every error 0
        self.estimator = StateEstimator(
            n_packs,
            self.params.n_cells,
            capacity_ah=self.params.capacity_ah,
            charge_efficiency=self.params.charge_efficiency,
            discharge_efficiency=self.params.discharge_efficiency,
            soc_sigma=estimate_soc_sigma,
            current_bias_sigma_a=estimate_current_bias_sigma_a,
            soh_rel_sigma=estimate_soh_rel_sigma,
            ocv_rest_s=estimate_ocv_rest_s,
            seed=estimate_seed,
            ocv_soc=self.tables.soc_grid,
            ocv_v=self.tables.ocv(self.tables.soc_grid),
        )
        self.n_packs = n_packs
        n = self.params.n_cells
        self.n_actions = 2**n
        self.action_bits = ((np.arange(self.n_actions)[:, None] >> np.arange(n)) & 1).astype(bool)
        self.frames = np.zeros((n_packs, N_FRAMES, 3 * n + 1), dtype=np.float32)
        self.last_invalid = np.zeros(n_packs, dtype=bool)
        self.last_toggles = np.zeros(n_packs, dtype=np.int64)
        #: the reward kind (bmsrl.reward.KINDS) with its per-pack state
        self.reward_kind = make_kind(n_packs, self.reward_weights)
        self._packs = np.arange(n_packs)

    @property
    def obs_size(self) -> int:
        return self.frames.shape[1] * self.frames.shape[2]

    def usable_capacity_ah(self, soc: np.ndarray | None = None, soh: np.ndarray | None = None) -> np.ndarray:
        """The usable capacity U [Ah] per pack (:func:`bmsrl.reward.usable_capacity_ah`, the capacity
        reward's potential): the charge the pack would deliver between its SoC limits in a discharge
        after a full charge, i.e. the capacity of its *next* discharge. Of the packs' present state,
        or of ``soc``, ``soh`` [-] (packs, cells), e.g. a rollout's end state."""
        s = self.sim.state
        soc = s.soc if soc is None else soc
        soh = s.soh if soh is None else soh
        return usable_capacity_ah(
            np.atleast_2d(soc), np.atleast_2d(soh) * self.params.capacity_ah, self.params.soc_limits
        )

    # ------------------------------------------------------------------ reset
    def draw_initial_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """SoC_i ~ U(init_soc), SoH_i ~ U(init_soh) for one pack from ``rng``."""
        return draw_initial_state(rng, self.params.n_cells, self.init_soc, self.init_soh)

    def reset_drawn(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """Reset every pack, pack k to the state drawn from ``rngs[k]`` (:meth:`draw_initial_state`,
        as ``PassiveBalancingEnv.reset`` draws from its generator); returns their observations."""
        if len(rngs) != self.n_packs:
            raise ValueError(f"{len(rngs)} generators for {self.n_packs} packs")
        drawn = [self.draw_initial_state(rng) for rng in rngs]
        return self.reset_packs(self._packs, np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn]))

    def reset_packs(self, packs: np.ndarray, soc: np.ndarray, soh: np.ndarray) -> np.ndarray:
        """Reset ``packs`` (index array) to the given state; returns their observations."""
        self.sim.reset_packs(packs, soc, soh)
        self.estimator.reset(packs, soc, soh)
        self.last_invalid[packs] = False
        self.last_toggles[packs] = 0
        self.reward_kind.reset(self, packs)
        frame = np.empty(self.frames.shape[::2], dtype=np.float32)
        self._write_frame(frame)
        self.frames[packs] = frame[packs, None, :]  # the history starts as copies of the first frame
        return self.frames[packs].reshape(len(packs), -1)

    # ------------------------------------------------------------------- step
    def observed_soc(self) -> np.ndarray:
        """(packs, cells): the SoC [-] the BMS sees: its estimate, or the truth without estimation errors."""
        return self.estimator.soc if self.estimator.active else self.sim.state.soc

    def observed_soh(self) -> np.ndarray:
        """(packs, cells): the SoH [-] the BMS sees: its estimate, or the truth without estimation errors."""
        return self.estimator.soh if self.estimator.active else self.sim.state.soh

    def forbidden_closures(self) -> np.ndarray:
        """(packs, cells) bool: shunts the invalid-action rules forbid closed now.

        ``lowest_soc_while_discharging``: the lowest-SoC cell's shunt while the pack discharges;
        ``below_soc_min``: the shunt of every cell at or below the SoC window's lower limit. Both
        judge the SoC the BMS sees (:meth:`observed_soc`).
        """
        soc = self.observed_soc()
        forbidden = np.zeros(soc.shape, dtype=bool)
        if "lowest_soc_while_discharging" in self.invalid_rules:
            discharging = self.sim.pack_current_now_a() > 0.0
            forbidden[self._packs, np.argmin(soc, axis=1)] = discharging
        if "below_soc_min" in self.invalid_rules:
            forbidden |= soc <= self.params.soc_limits[0]
        return forbidden

    def invalid_mask(self) -> np.ndarray:
        """(packs, n_actions) bool: which actions the invalid-action rules forbid now (and, with
        ``max_closed_shunts``, those closing more shunts than the limit)."""
        forbidden = self.forbidden_closures()  # (P, C)
        mask = (self.action_bits[None, :, :] & forbidden[:, None, :]).any(axis=-1)
        if self.max_closed_shunts:
            mask |= (self.action_bits.sum(axis=1) > self.max_closed_shunts)[None, :]
        if self.max_shunt_power_w:
            mask |= self.shunt_power_w() @ self.action_bits.T > self.max_shunt_power_w
        return mask

    def shunt_power_w(self) -> np.ndarray:
        """(packs, cells): the heat [W] each shunt would dissipate if closed now, V_t^2 / R_sh at the
        present terminal voltage (what ``max_shunt_power_w`` judges)."""
        return self.sim.state.terminal_v**2 / self.params.shunt_resistance_ohm

    def limit_closures(self, requested: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(switches, over)``: the requested shunts (packs, cells) less the closures beyond
        ``max_closed_shunts`` or ``max_shunt_power_w``, and per pack whether any was refused. The
        closed shunts kept are those of the cells with the highest observed SoC (:meth:`observed_soc`),
        ties to the lower cell index, taken in that order while both limits hold."""
        over = np.zeros(self.n_packs, dtype=bool)
        if self.max_closed_shunts:
            over |= requested.sum(axis=1) > self.max_closed_shunts
        if self.max_shunt_power_w:
            power_w = self.shunt_power_w()
            over |= (requested * power_w).sum(axis=1) > self.max_shunt_power_w
        if not over.any():
            return requested, over
        switches = requested.copy()
        most = self.max_closed_shunts or self.params.n_cells
        for k in np.flatnonzero(over):
            cells = np.flatnonzero(requested[k])
            order = cells[np.argsort(-self.observed_soc()[k, cells], kind="stable")]
            kept = order[:most]
            if self.max_shunt_power_w:
                kept = kept[np.cumsum(power_w[k, kept]) <= self.max_shunt_power_w]
            switches[k] = False
            switches[k, kept] = True
        return switches, over

    def gym_action_space(self) -> spaces.Space:
        """The Gymnasium space of one pack's action: ``Discrete(2^n)`` or ``MultiBinary(n)``."""
        return spaces.MultiBinary(self.params.n_cells) if self.per_cell else spaces.Discrete(self.n_actions)

    def action_masks(self) -> np.ndarray:
        """The valid actions now, in the task's space as sb3-contrib's maskable policies read them:
        (packs, n_actions) for ``discrete``, (packs, 2 n_cells) [open allowed, close allowed] per cell
        for ``multi_binary``."""
        return cell_masks(self.forbidden_closures()) if self.per_cell else ~self.invalid_mask()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]:
        """Apply one action per pack and integrate one decision interval.

        Returns ``(obs, reward, terminated, truncated, interval)`` with arrays over packs and the
        simulator's :class:`~bmsrl.pack.IntervalResult`.
        """
        return self.step_checked(self.check_actions(actions))

    def step_checked(self, actions: np.ndarray):
        """:meth:`step` for ``actions`` already checked (:meth:`check_actions`): an index array over packs."""
        interval = self.transition(actions)
        reward = self.reward_kind.step(self, interval, self.last_toggles, self.last_invalid)
        # the profile's end is the episode's natural end (terminated, nothing to bootstrap); only a
        # phase stopped by its safety cap is a time limit (truncated); a safety violation terminates
        safety = self.sim.safety_violation()
        over = self.sim.episode_over
        truncated = over & self.sim.state.capped & ~safety
        terminated = safety | (over & ~truncated)
        obs = self.frames.reshape(self.n_packs, -1)
        return obs, reward, terminated, truncated, interval

    def transition(self, actions: np.ndarray, observe: bool = True):
        """The state change of :meth:`step_checked` (checked ``actions``, an index array over packs)
        without its reward and episode-end flags: the shunts the rules and limits let through, one
        decision interval of the simulator, the estimator, the observation's frames, ``last_invalid``
        and ``last_toggles``. Returns the simulator's :class:`~bmsrl.pack.IntervalResult`. (For a
        look-ahead that reads the state only: :mod:`bmsrl.best_known`.) ``observe=False`` leaves the
        frames as they were (stale: for a caller that reads no observation until it rewrites them)."""
        s = self.sim.state
        previous = s.switches.copy()
        forbidden = self.forbidden_closures()
        requested = self.action_bits[actions]
        invalid = (requested & forbidden).any(axis=1)
        if self.per_cell:  # multi_binary: the rules per cell, a forbidden shunt stays open
            switches = requested & ~forbidden
        else:
            # An invalid action keeps the previous switch state, less any shunt the rules forbid now
            # (an interlock: the lowest cell may have changed, or discharge begun, since it was closed).
            switches = np.where(invalid[:, None], previous & ~forbidden, requested)
        if self.max_closed_shunts or self.max_shunt_power_w:  # beyond the chip's limits: stays open, invalid
            switches, over = self.limit_closures(switches)
            invalid = invalid | over
        toggles = (switches != previous).sum(axis=1)
        interval = self.sim.advance(switches)
        if self.estimator.active:
            self.estimator.step(
                interval.cell_current_a,
                interval.pack_current_a,
                ~switches,
                self.sim.state.terminal_v,
                self.sim.decision_interval_s,
            )
        self.last_invalid = invalid
        self.last_toggles = toggles
        if observe:
            self.frames[:, 1:] = self.frames[:, :-1]
            self._write_frame(self.frames[:, 0])
        return interval

    def check_actions(self, actions) -> np.ndarray:
        """``actions`` in the task's space as an index array over packs, or a :class:`ValueError`
        naming the bad action: ``discrete``, integers in [0, n_actions) as Gymnasium's
        ``Discrete.contains`` (:func:`bmsrl.actions.check_indices`); ``multi_binary``, (packs, cells)
        bits 0 or 1 (:func:`bmsrl.actions.check_bits`)."""
        if self.per_cell:
            return check_bits(actions, self.n_packs, self.params.n_cells)
        return check_indices(actions, self.n_packs, self.params.n_cells)

    def _write_frame(self, out: np.ndarray) -> None:
        """Write [2 SoC - 1, 2 s - 1, clip((SoH - 1) / 0.1), I_pack / I_max] into ``out`` (packs, 3n + 1);
        :func:`decode_observation` reads it back."""
        _encode_frames(
            self.observed_soc(),  # the BMS's estimate, or the truth
            self.sim.state.switches,
            self.observed_soh(),
            self.sim.pack_current_now_a(),
            1.0 / self.i_max_a,
            out,
        )

    # ------------------------------------------------------------------- info
    def pack_info(self, k: int, interval=None) -> dict[str, Any]:
        """The info dict of pack ``k`` after a step (``interval``) or a reset (``None``)."""
        return self.pack_infos(np.array([k]), interval)[0]

    def pack_infos(self, packs: np.ndarray, interval=None) -> list[dict[str, Any]]:
        """The info dicts of ``packs`` (index array), as :meth:`pack_info` of each, read out together."""
        s = self.sim.state
        packs = np.asarray(packs, dtype=np.intp)
        # rows by ndarray.take: the copy indexing with the array makes, at a fraction of its cost for a few packs
        soc, soh = s.soc.take(packs, axis=0), s.soh.take(packs, axis=0)
        columns = {
            "time_s": s.time_s[packs].tolist(),
            "phase": [self.profile.phase_name(p) for p in s.phase[packs].tolist()],
            "soc": soc,
            "soh": soh,
            "cell_voltage_v": s.terminal_v.take(packs, axis=0),
            "switches": s.switches.take(packs, axis=0).astype(np.int64),
            "shunt_energy_wh": s.shunt_energy_wh.take(packs, axis=0),
            "discharged_ah": s.discharged_ah[packs].tolist(),
            "charged_ah": s.charged_ah[packs].tolist(),
            "usable_capacity_ah": self.usable_capacity_ah(soc, soh).tolist(),
        }
        if self.profile.cycles > 1:  # the cycle the pack is in (0 first); discharged_ah counts it alone
            columns.update(
                cycle=s.cycle[packs].tolist(), ended_cycle_discharged_ah=s.ended_cycle_discharged_ah[packs].tolist()
            )
        if self.estimator.active:  # what the observation showed; soc and soh stay the truth
            columns.update(
                soc_estimate=self.estimator.soc.take(packs, axis=0), soh_estimate=self.estimator.soh.take(packs, axis=0)
            )
        if interval is not None:
            columns.update(
                pack_current_a=interval.pack_current_a[packs].tolist(),
                cell_current_a=interval.cell_current_a.take(packs, axis=0),
                switch_changes=self.last_toggles[packs].tolist(),
                invalid_action=self.last_invalid[packs].tolist(),
            )
        return [{key: column[row] for key, column in columns.items()} for row in range(len(packs))]


#: why :meth:`PassiveBalancingEnv.step` refuses to run (the words of gymnasium's ``ResetNeeded``)
_BEFORE_RESET = "before calling env.reset()"
_AFTER_END = "after the episode ended (terminated or truncated): call env.reset() first"


class _RenderModes(list):
    """The render modes of :attr:`PassiveBalancingEnv.metadata`: ``render_mode in`` them refuses a
    value that is not a string with a clear error (``gym.make(..., render_mode=1)`` would otherwise
    fail with an ``AttributeError`` inside Gymnasium's ``make``, which asks ``render_mode.endswith``)."""

    def __contains__(self, mode: object) -> bool:
        if mode is not None and not isinstance(mode, str):
            raise ValueError(f"render_mode must be one of {list(self)} or None, not {mode!r}")
        return super().__contains__(mode)


class PassiveBalancingEnv(gym.Env):
    """Passive balancing of a series Li-ion pack with switched shunt resistors.

    ## Description

    A pack of 5 Li-ion cells (3.4 Ah NCA, second-order equivalent circuit) in series follows a load
    profile of constant-current phases. Each cell has a 6 Ohm bleed resistor that can be switched
    across its terminals. Every 30 s the agent decides which shunts are closed, to equalize the
    cells' state of charge (SoC) while switching as little as possible. The physics are documented
    in :mod:`bmsrl.pack`, the profiles in :mod:`bmsrl.profiles`.

    ## Action Space

    ``Discrete(32)`` (the default, ``action_space="discrete"``): bit ``i`` of the action closes the
    shunt of cell ``i`` (action 0: all open, action 31: all closed). ``action_space="multi_binary"``:
    ``MultiBinary(5)``, one bit per shunt (1: closed), with the rules below applied per cell (a
    forbidden shunt stays open, the other bits apply, the step counts as invalid; :mod:`bmsrl.actions`).
    An *invalid* action (by default: closing the shunt of the lowest-SoC cell while the pack
    discharges; ``invalid_rules`` selects the rule set) is not applied: the previous switch state is
    kept and the reward is penalised. A forbidden shunt is never applied,
    though: if the previous state itself closes a shunt the rules forbid now (the lowest cell has
    changed, or the discharge has begun, since it was closed), that shunt opens, an interlock that
    counts as a toggle. :meth:`action_masks` gives the valid actions for maskable algorithms (with
    ``multi_binary``, per cell: [open allowed, close allowed]).

    ## Observation Space

    ``Box(-1, 1, (48,), float32)``: three frames, for t, t-1 and t-2 (newest first), each

    | index in frame | observation                                 | range   |
    |----------------|---------------------------------------------|---------|
    | 0-4            | 2 * SoC_i - 1                               | [-1, 1] |
    | 5-9            | 2 * s_i - 1 (shunt closed: +1, open: -1)     | {-1, 1} |
    | 10-14          | clip((SoH_i - 1) / 0.1, -1, 1)              | [-1, 1] |
    | 15             | I_pack / I_max (I_max = 2.35 A; > 0 discharging) | [-1, 1] |

    After a reset all three frames equal the first one. I_pack is the current the pack draws at the
    decision time: the phase's current, or in the constant-voltage stage of a charge the charger's
    current for the present state and shunts (the charger re-solves it at every sub-step, so the
    shunts the agent sets change it; docs/physics.md).

    ## Rewards

    ``reward={"kind": ...}`` selects one of two (:mod:`bmsrl.reward`; ``n_toggles`` counts the
    shunts whose state changed, an invalid action costs ``w_inv`` = 1 in both):

    * ``"capacity"`` (default), in capacity points (1 = 1 % of ``capacity_ah``): the change of the
      pack's usable capacity ``U = min_i (SoC_i - SoC_lo) C_i + min_i (SoC_hi - SoC_i) C_i`` [Ah]
      over the interval, credited while the pack rests or charges (while it discharges only a loss
      of the emptiest cell's charge counts), less ``0.05`` per toggle and ``0.2`` per Wh of shunt
      heat::

          r = 100 dU / capacity_ah - 0.05 n_toggles - 0.2 E_shunt_wh - w_inv 1[invalid]

      The load moves every cell's charge alike and leaves U unchanged, so the return is the
      capacity the shunts recovered, net of switching and heat.
    * ``"study"``, the study's: ``r = b(Var(SoC)) - beta * n_toggles + w_ok * 1[all cells inside
      limits] - w_inv * 1[invalid]`` with ``b = -log10(Var + eps) - 4`` and ``beta = 0.1 |b| + 1``;
      Var is the population variance of the SoCs after the interval.

    ## Starting State

    SoC_i ~ U(0.4, 0.6), SoH_i ~ U(0.95, 1.05) (capacity = 3.4 Ah * SoH_i), RC voltages 0, all shunts
    open, the profile's first phase; all drawn from the environment's seeded generator.

    ## Episode End

    * Termination: the profile's last phase has ended, its natural end (the return is the sum over
      the episode, so nothing is bootstrapped past it). The ``discharge-rest-charge`` profile
      (training) discharges, rests 100 s and charges; ``charge-rest-discharge`` (test) charges, rests
      100 s and discharges, both at ``i_max_a`` (2.35 A). With the defaults (``cutoff:
      soc_and_voltage``, ``charging: cc_cv``, as a battery-management system):

      - a discharge ends when the first cell reaches SoC 0.1 or a terminal voltage of 2.5 V;
      - a charge runs at constant current until the highest cell reaches 4.2 V, then the charger
        holds the highest cell at 4.2 V (the current falls); it ends when the first cell reaches
        SoC 0.9 or the current has tapered to ``cv_taper_c_rate`` x capacity (C/20, 0.17 A).

      With the study's setting (``cutoff: soc``, ``charging: cc``) both run at constant current and
      end when the first cell reaches the SoC window's limit, whatever its voltage. A phase ends at
      the exact time a limit is crossed inside a sub-step (docs/physics.md). Termination is also a
      safety violation the phase logic could not prevent: a cell's SoC leaves the window [0.1, 0.9]
      by more than ``safety_margin_soc`` (0.02).
    * Truncation: a time limit, the only one being a phase's safety cap: a charge or discharge that
      has not reached its limit or taper after 1.5 x 3600 x capacity / i_max_a [s] (discharge) or
      2.5 x that (charge, including the constant-voltage stage). A limit or the taper came first in
      every scenario tests/test_physics.py runs (0.3 C to 1 C), so an episode is truncated only in
      settings outside them.
    * After either, :meth:`step` raises ``gymnasium.error.ResetNeeded`` until :meth:`reset` (as
      Gymnasium's ``OrderEnforcing`` wrapper does before the first reset); so do :meth:`step` and
      :meth:`render` of the unwrapped env before the first :meth:`reset`. ``reset(options=...)``
      takes no options: ``None`` or ``{}``; any other is a ``ValueError``.

    ## Arguments

    ``gymnasium.make("PassiveBalancing-v0", profile="discharge-rest-charge", ...)``

    * ``profile``: ``"discharge-rest-charge"`` or ``"charge-rest-discharge"``.
    * ``ocv_table``, ``ecm_table``: CSV paths (``soc,ocv_v`` and ``soc,r0_ohm,r1_ohm,c1_f,r2_ohm,c2_f``);
      ``None`` uses the shipped tables (Keil et al. 2016 NCA OCV; the study's ECM table).
    * ``pack``: :class:`~bmsrl.pack.PackParameters` or a dict of its fields (capacity, shunt
      resistance, efficiencies, SoC and voltage windows, ``cutoff`` rule, ``charging`` mode,
      ``cv_taper_c_rate``, safety margin).
    * ``reward``: :class:`~bmsrl.reward.RewardWeights` or a dict of its fields.
    * ``decision_interval_s`` (30), ``substeps`` (sub-steps per interval), ``invalid_rules``,
      ``init_soc``, ``init_soh``, ``i_max_a``, ``action_space`` (``"discrete"`` or ``"multi_binary"``).
    * The realistic family (docs/model.md), each off by default: ``max_closed_shunts`` (a limit on
      closed shunts: closures beyond it stay open, the cells with the highest observed SoC keep
      theirs, ties to the lower index, and the action counts as invalid), ``max_shunt_power_w`` (the
      same for the shunts' total heat, V_t^2 / R_sh at the decision); ``discharge``
      (``"constant"``, ``"drive_cycle"``, ``"stochastic"``), ``drive_cycle``, ``load_peak_c_rate``,
      ``load_seed`` (:mod:`bmsrl.profiles`); ``estimate_soc_sigma``, ``estimate_current_bias_sigma_a``,
      ``estimate_soh_rel_sigma``, ``estimate_ocv_rest_s``, ``estimate_seed``: the observation's SoC
      and SoH, and the invalid-action rules, are then the BMS's estimate (:mod:`bmsrl.estimator`);
      ``info`` keeps the truth and adds ``soc_estimate``, ``soh_estimate``; ``cycles`` (the profile
      run that many times per episode, each cycle from the state the last left, at the first
      decision after it ended; ``discharged_ah`` and ``charged_ah`` count the present cycle, so the
      usable capacity is the last discharge's; ``info`` adds ``cycle`` and
      ``ended_cycle_discharged_ah``, the charge the last completed cycle delivered).

    ## Info

    ``reset``: ``soc``, ``soh`` (and the fields below that exist before a step). Every ``step``:
    ``time_s``, ``phase``, ``pack_current_a`` (mean over the interval), ``soc``, ``soh``,
    ``cell_voltage_v`` (terminal, at the end of the interval, under the current the pack draws from
    then on, i.e. after the charger or a cut-off acted), ``cell_current_a`` (mean over the
    interval, shunt current included), ``switches`` (0/1 per cell), ``shunt_energy_wh``
    (cumulative per cell), ``discharged_ah``, ``charged_ah`` (cumulative pack charge),
    ``usable_capacity_ah`` (the capacity of the next discharge after a full charge,
    :meth:`BalancingTask.usable_capacity_ah`), ``switch_changes``, ``invalid_action``.

    ## Rendering

    ``render_mode="rgb_array"``: :meth:`render` returns a 640 x 400 RGB ``uint8`` image of the pack
    now: SoC bars per cell [%] with the SoC window, each shunt (filled: closed, hollow: open), the
    terminal voltages [V] with the voltage window, and the time, phase and pack current [A] (of the
    coming interval). ``"ansi"``: the same as text, one line per cell. A video (e.g.
    ``gymnasium.wrappers.RecordVideo``) shows one decision per frame at ``metadata["render_fps"]``
    (10). ``render_mode="human"`` is Gymnasium's ``HumanRendering`` window around ``"rgb_array"``
    (needs pygame). :func:`bmsrl.render.write_episode_animation` writes an episode of a policy as a
    GIF (``bmsrl evaluate ... --animation FILE.gif``).
    """

    metadata = {"render_modes": _RenderModes(RENDER_MODES), "render_fps": RENDER_FPS}

    def __init__(self, render_mode: str | None = None, **task_kwargs: Any) -> None:
        # Gymnasium's contract, also for the unwrapped env: reset() first, and again after the episode's end
        self._not_ready: str | None = _BEFORE_RESET  # why step() cannot run now (None: it can)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"unknown render_mode {render_mode!r}; choose one of {self.metadata['render_modes']} or None"
            )
        self.render_mode = render_mode
        self._renderer = None  # bmsrl.render.PackRenderer, built by the first render()
        self.task = BalancingTask(n_packs=1, **task_kwargs)
        self.action_space = self.task.gym_action_space()
        self.observation_space = spaces.Box(-1.0, 1.0, (self.task.obs_size,), dtype=np.float32)
        self._all = np.arange(1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if options is not None and not (isinstance(options, dict) and not options):
            raise ValueError(
                f"reset(options={options!r}): PassiveBalancing-v0 takes no reset options (None or {{}}); "
                "the initial state is drawn from init_soc and init_soh, the env's arguments"
            )
        super().reset(seed=seed)
        soc, soh = self.task.draw_initial_state(self.np_random)
        obs = self.task.reset_packs(self._all, soc[None], soh[None])
        self._not_ready = None
        return obs[0].copy(), self.task.pack_info(0)

    def step(self, action):
        if self._not_ready is not None:  # as gymnasium's OrderEnforcing raises
            raise gym.error.ResetNeeded(f"Cannot call env.step() {self._not_ready}")
        if self.task.per_cell:  # multi_binary: n_cells bits (bmsrl.actions.check_bits)
            array = np.asarray(action)
            if array.shape != (self.task.params.n_cells,):
                raise ValueError(
                    f"invalid action {action!r}: expected {self.task.params.n_cells} shunt bits "
                    f"(MultiBinary({self.task.params.n_cells})), got shape {array.shape}"
                )
            return self._step_indices(self.task.check_actions(array[None]))
        # Gymnasium's Discrete.contains (a Python or NumPy integer, or a 0-d integer array), less booleans
        if type(action) is int or isinstance(action, np.integer):  # the fast path: a plain integer
            valid = 0 <= action < self.task.n_actions
        else:
            try:
                valid = not isinstance(action, (bool, np.bool_)) and self.action_space.contains(action)
            except OverflowError:  # a Python int beyond int64
                valid = False
        if not valid:
            raise ValueError(
                f"invalid action {action!r}: actions are integers in [0, {self.action_space.n - 1}] "
                f"(Discrete({self.action_space.n}))"
            )
        return self._step_indices(np.array([action], dtype=np.intp))

    def _step_indices(self, indices: np.ndarray):
        obs, reward, terminated, truncated, interval = self.task.step_checked(indices)
        if terminated[0] or truncated[0]:
            self._not_ready = _AFTER_END
        return (
            obs[0].copy(),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            self.task.pack_info(0, interval),
        )

    def action_masks(self) -> np.ndarray:
        """Valid actions now (True = allowed), for sb3-contrib's MaskablePPO (:meth:`BalancingTask.action_masks`)."""
        return self.task.action_masks()[0]

    def render(self):
        """The pack now: an (H, W, 3) uint8 image (``"rgb_array"``), a text view (``"ansi"``), or None."""
        if self.render_mode is None:
            gym.logger.warn("render() without a render_mode: pass render_mode='rgb_array' or 'ansi'")
            return None
        if self._not_ready == _BEFORE_RESET:  # the pack's state is not drawn yet
            raise gym.error.ResetNeeded("Cannot call env.render() before calling env.reset()")
        if self._renderer is None:  # matplotlib is imported here, at the first frame
            self._renderer = PackRenderer(self.task.params, self.render_mode)
        return self._renderer(self.task)


@numba.njit(cache=True, inline="always")
def _clip_unit(x):
    """``x`` clipped to [-1, 1]; a NaN stays NaN."""
    if x < -1.0:
        return -1.0
    if x > 1.0:
        return 1.0
    return x


@numba.njit(cache=True)
def _encode_frames(soc, switches, soh, current_a, inv_i_max_a, out):
    """One frame per pack into ``out`` (packs, 3 n + 1) float32, each value computed in float64 and
    rounded once: ``clip(2 SoC - 1)``, ``2 s - 1``, ``clip((SoH - 1) SOH_OBS_SCALE)``,
    ``clip(I_pack inv_i_max_a)`` (clip to [-1, 1], a NaN kept, as numpy's minimum and maximum);
    ``soc``, ``soh`` [-] and ``switches`` (packs, n), ``current_a`` [A] (packs,), ``inv_i_max_a`` [1/A].
    One compiled loop: as a dozen numpy calls, each with its fixed cost, a single env's frame cost
    more than the simulator's step (docs/performance.md, "Measured speed")."""
    n = soc.shape[1]
    for k in range(soc.shape[0]):
        for i in range(n):
            out[k, i] = _clip_unit(2.0 * soc[k, i] - 1.0)
            out[k, n + i] = 1.0 if switches[k, i] else -1.0
            out[k, 2 * n + i] = _clip_unit((soh[k, i] - 1.0) * SOH_OBS_SCALE)
        out[k, 3 * n] = _clip_unit(current_a[k] * inv_i_max_a)


def draw_initial_state(
    rng: np.random.Generator, n_cells: int, init_soc: tuple[float, float], init_soh: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """SoC_i ~ U(init_soc), SoH_i ~ U(init_soh) [-] for the ``n_cells`` cells of one pack from ``rng``
    (:meth:`BalancingTask.draw_initial_state` with the task's ranges)."""
    soc = rng.uniform(*init_soc, size=n_cells)
    soh = rng.uniform(*init_soh, size=n_cells)
    return soc, soh


def rng_for_seed(seed: int | None) -> np.random.Generator:
    """The generator a :class:`PassiveBalancingEnv` reset with ``seed`` would draw from."""
    return seeding.np_random(seed)[0]


def pack_rng(seed: int, k: int) -> np.random.Generator:
    """The generator of pack ``k`` of a batch seeded ``seed``: child ``k`` of ``SeedSequence(seed)``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(k,))))
