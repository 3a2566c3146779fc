"""The passive-balancing decision problem: a batched task core and the Gymnasium environment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from bmsrl.fields import check, param
from bmsrl.observation import INVALID_RULES, SOH_OBS_SCALE, decode_observation  # noqa: F401  (re-exported: the env's layout, read back)
from bmsrl.pack import CellTables, PackParameters, PackSimulator
from bmsrl.profiles import I_MAX_A, LoadProfile, get_profile
from bmsrl.render import RENDER_FPS, RENDER_MODES, PackRenderer
from bmsrl.reward import RewardWeights, make_kind

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
            },
            [PackParameters, TaskParameters],
        )
        self.invalid_rules = tuple(invalid_rules)
        self.init_soc = tuple(float(x) for x in init_soc)
        self.init_soh = tuple(float(x) for x in init_soh)
        self.i_max_a = float(i_max_a)
        self.profile = get_profile(profile, self.i_max_a, self.params.capacity_ah)
        self.tables = (
            tables
            if tables is not None
            else CellTables.from_files(
                ocv_table, ecm_table, soc_window=self.params.soc_limits, allow_implausible=allow_implausible_tables
            )
        )
        self.sim = PackSimulator(self.params, self.tables, self.profile, n_packs, decision_interval_s, substeps)
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

    # ------------------------------------------------------------------ reset
    def draw_initial_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """SoC_i ~ U(init_soc), SoH_i ~ U(init_soh) for one pack from ``rng``."""
        n = self.params.n_cells
        soc = rng.uniform(*self.init_soc, size=n)
        soh = rng.uniform(*self.init_soh, size=n)
        return soc, soh

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
        self.last_invalid[packs] = False
        self.last_toggles[packs] = 0
        self.reward_kind.reset(self, packs)
        frame = np.empty(self.frames.shape[::2], dtype=np.float32)
        self._write_frame(frame)
        self.frames[packs] = frame[packs, None, :]  # the history starts as copies of the first frame
        return self.frames[packs].reshape(len(packs), -1)

    # ------------------------------------------------------------------- step
    def forbidden_closures(self) -> np.ndarray:
        """(packs, cells) bool: shunts the invalid-action rules forbid closed now.

        ``lowest_soc_while_discharging``: the lowest-SoC cell's shunt while the pack discharges;
        ``below_soc_min``: the shunt of every cell at or below the SoC window's lower limit.
        """
        s = self.sim.state
        forbidden = np.zeros(s.soc.shape, dtype=bool)
        if "lowest_soc_while_discharging" in self.invalid_rules:
            discharging = self.sim.pack_current_now_a() > 0.0
            forbidden[self._packs, np.argmin(s.soc, axis=1)] = discharging
        if "below_soc_min" in self.invalid_rules:
            forbidden |= s.soc <= self.params.soc_limits[0]
        return forbidden

    def invalid_mask(self) -> np.ndarray:
        """(packs, n_actions) bool: which actions the invalid-action rules forbid now."""
        forbidden = self.forbidden_closures()  # (P, C)
        return (self.action_bits[None, :, :] & forbidden[:, None, :]).any(axis=-1)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]:
        """Apply one action per pack and integrate one decision interval.

        Returns ``(obs, reward, terminated, truncated, interval)`` with arrays over packs and the
        simulator's :class:`~bmsrl.pack.IntervalResult`.
        """
        return self.step_checked(self.check_actions(actions))

    def step_checked(self, actions: np.ndarray):
        """:meth:`step` for ``actions`` already checked (:meth:`check_actions`): an index array over packs."""
        s = self.sim.state
        previous = s.switches.copy()
        forbidden = self.forbidden_closures()
        requested = self.action_bits[actions]
        invalid = (requested & forbidden).any(axis=1)
        # An invalid action keeps the previous switch state, less any shunt the rules forbid now
        # (an interlock: the lowest cell may have changed, or discharge begun, since it was closed).
        switches = np.where(invalid[:, None], previous & ~forbidden, requested)
        toggles = (switches != previous).sum(axis=1)
        interval = self.sim.advance(switches)
        reward = self.reward_kind.step(self, interval, toggles, invalid)
        # the profile's end is the episode's natural end (terminated, nothing to bootstrap); only a
        # phase stopped by its safety cap is a time limit (truncated); a safety violation terminates
        safety = self.sim.safety_violation()
        truncated = self.sim.episode_over & self.sim.state.capped & ~safety
        terminated = safety | (self.sim.episode_over & ~truncated)
        self.last_invalid = invalid
        self.last_toggles = toggles
        self.frames[:, 1:] = self.frames[:, :-1]
        self._write_frame(self.frames[:, 0])
        obs = self.frames.reshape(self.n_packs, -1)
        return obs, reward, terminated, truncated, interval

    def check_actions(self, actions) -> np.ndarray:
        """``actions`` as an index array over packs, or a :class:`ValueError` naming the bad action.

        Accepted: integers in [0, n_actions) (NumPy integer arrays of ``n_packs`` elements, as SB3
        passes them), as Gymnasium's ``Discrete.contains``; refused: floats (3.5 is not 3), strings,
        booleans, NaN, negative (-1 is not the last action) or too-large values. One vectorized check.
        """
        array = np.asarray(actions)
        if array.dtype.kind not in "iu" or array.size != self.n_packs:
            raise ValueError(
                f"invalid action {actions!r}: expected {self.n_packs} integer action(s) in [0, {self.n_actions - 1}]"
                f" (Discrete({self.n_actions})), got {array.size} value(s) of type {array.dtype}"
            )
        array = array.reshape(self.n_packs)
        # one comparison: a negative action, seen as unsigned, is huge
        unsigned = array.view(np.uint64) if array.dtype == np.int64 else array.astype(np.uint64)
        if np.count_nonzero(unsigned >= self.n_actions):
            bad = array[(array < 0) | (array >= self.n_actions)]
            raise ValueError(
                f"invalid action {bad[0]}: actions are integers in [0, {self.n_actions - 1}] "
                f"(Discrete({self.n_actions}))"
            )
        return array

    def _write_frame(self, out: np.ndarray) -> None:
        """Write [2 SoC - 1, 2 s - 1, clip((SoH - 1) / 0.1), I_pack / I_max] into ``out`` (packs, 3n + 1);
        :func:`decode_observation` reads it back."""
        s, n = self.sim.state, self.params.n_cells
        out[:, :n] = np.minimum(np.maximum(2.0 * s.soc - 1.0, -1.0), 1.0)
        out[:, n : 2 * n] = 2.0 * s.switches - 1.0
        out[:, 2 * n : 3 * n] = np.minimum(np.maximum((s.soh - 1.0) * SOH_OBS_SCALE, -1.0), 1.0)
        out[:, 3 * n] = np.minimum(np.maximum(self.sim.pack_current_now_a() * (1.0 / self.i_max_a), -1.0), 1.0)

    # ------------------------------------------------------------------- info
    def pack_info(self, k: int, interval=None) -> dict[str, Any]:
        """The info dict of pack ``k`` after a step (``interval``) or a reset (``None``)."""
        s = self.sim.state
        info = {
            "time_s": float(s.time_s[k]),
            "phase": self.profile.phase_name(int(s.phase[k])),
            "soc": s.soc[k].copy(),
            "soh": s.soh[k].copy(),
            "cell_voltage_v": s.terminal_v[k].copy(),
            "switches": s.switches[k].astype(np.int64),
            "shunt_energy_wh": s.shunt_energy_wh[k].copy(),
            "discharged_ah": float(s.discharged_ah[k]),
            "charged_ah": float(s.charged_ah[k]),
        }
        if interval is not None:
            info.update(
                pack_current_a=float(interval.pack_current_a[k]),
                cell_current_a=interval.cell_current_a[k].copy(),
                switch_changes=int(self.last_toggles[k]),
                invalid_action=bool(self.last_invalid[k]),
            )
        return info


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

    ``Discrete(32)``: bit ``i`` of the action closes the shunt of cell ``i`` (action 0: all open,
    action 31: all closed). An *invalid* action (by default: closing the shunt of the lowest-SoC
    cell while the pack discharges; ``invalid_rules`` selects the rule set) is not applied: the
    previous switch state is kept and the reward is penalised. A forbidden shunt is never applied,
    though: if the previous state itself closes a shunt the rules forbid now (the lowest cell has
    changed, or the discharge has begun, since it was closed), that shunt opens, an interlock that
    counts as a toggle. :meth:`action_masks` gives the valid actions for maskable algorithms.

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
      ``init_soc``, ``init_soh``, ``i_max_a``.

    ## Info

    ``reset``: ``soc``, ``soh`` (and the fields below that exist before a step). Every ``step``:
    ``time_s``, ``phase``, ``pack_current_a`` (mean over the interval), ``soc``, ``soh``,
    ``cell_voltage_v`` (terminal, at the end of the interval, under the current the pack draws from
    then on, i.e. after the charger or a cut-off acted), ``cell_current_a`` (mean over the
    interval, shunt current included), ``switches`` (0/1 per cell), ``shunt_energy_wh``
    (cumulative per cell), ``discharged_ah``, ``charged_ah`` (cumulative pack charge),
    ``switch_changes``, ``invalid_action``.

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
        self.action_space = spaces.Discrete(self.task.n_actions)
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
        obs, reward, terminated, truncated, interval = self.task.step_checked(np.array([action], dtype=np.intp))
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
        """Valid actions now (True = allowed), for sb3-contrib's MaskablePPO."""
        return ~self.task.invalid_mask()[0]

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


def rng_for_seed(seed: int | None) -> np.random.Generator:
    """The generator a :class:`PassiveBalancingEnv` reset with ``seed`` would draw from."""
    return seeding.np_random(seed)[0]


def pack_rng(seed: int, k: int) -> np.random.Generator:
    """The generator of pack ``k`` of a batch seeded ``seed``: child ``k`` of ``SeedSequence(seed)``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(k,))))
