"""Series Li-ion pack with switched shunt resistors: a second-order equivalent-circuit model.

One implementation for any number of packs: a single environment is a batch of one. The equations,
the charger and the cut-offs are written out with their units in ``docs/physics.md``.

Per cell ``i`` (current > 0 discharges; ``s_i = 1`` when shunt ``i`` is closed)::

    V_t,i = (OCV(SoC_i) - V1_i - V2_i - R0_i * I_pack) / (1 + s_i * R0_i / R_sh)     terminal voltage [V]
    I_i   = I_pack + s_i * V_t,i / R_sh                                             cell current [A]
    dVk_i/dt  = -Vk_i / (Rk_i Ck_i) + I_i / Ck_i          k = 1, 2                  RC branches [V/s]
    dSoC_i/dt = -eta * I_i / (3600 * Q_nom * SoH_i)       eta = 1 discharging, 0.99 charging

The shunt sits across the cell terminals, so its current is part of the cell current everywhere:
through R0, both RC branches and the state of charge. OCV, R0, R1, C1, R2, C2 are linear
interpolations in SoC of their tables (held constant outside the tables' SoC range).

Each decision interval is integrated with exact updates over sub-steps, the parameters and the
shunt current held over a sub-step and refreshed at the next; the pack current is held too (zero-order
hold), except in the constant-voltage stage, where it is linear in time, I_0 + a t::

    Vk <- Vk * exp(-h / tau_k) + Rk * (I_i,0 * (1 - exp(-h / tau_k)) + a * (h - tau_k * (1 - exp(-h / tau_k))))

Charging (``charging="cc_cv"``, the default) works as a charger with a per-cell voltage limit does:
constant current until the highest cell's terminal voltage reaches ``v_max``, then the pack current is
the largest charge current that keeps every cell at or below ``v_max``, solved from V_t,i above::

    I_pack = min(0, max(-I_cc, max_i I_lim,i)),   I_lim,i = (OCV_i - V1_i - V2_i - v_max (1 + s_i R0_i / R_sh)) / R0_i

In the constant-voltage stage a sub-step is a predictor-corrector step (the charger's current at the
sub-step's end predicted with the current held, then the current linear between the two): a
second-order update of the continuous charger. (``charging="cc"``, the study's: constant current
throughout.)

A discharge that follows a time-varying load (a drive cycle, :mod:`bmsrl.profiles`) holds each of
its currents over the trace's step: no sub-step crosses a step, and the pack decides again at each.

The load profile's phase logic runs inside the sub-step loop: a sub-step never crosses a phase's
maximum duration (a safety cap); a phase that ends at a cell limit (SoC, voltage) or, in a CC-CV
charge, when the charger's current has tapered to ``cv_taper_c_rate * Q_nom`` ends at the exact time
it reaches it, found inside the sub-step by a root search, as a BMS that samples continuously would
end it; the constant-voltage stage likewise begins inside the sub-step in which a cell reaches
``v_max``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from bmsrl.fields import check, own_values, param
from bmsrl.profiles import CAPACITY_AH, LoadProfile
from bmsrl.tables import DEFAULT_SOC_WINDOW

#: how close [s] a sub-step must come to a phase's end to count as reaching it (float rounding)
_TIME_TOL_S = 1e-9
#: the width [s] to which an event's crossing time inside a sub-step is found (at 1 C, 1e-10 s is
#: 1e-13 Ah of charge), and the most iterations of that search
_CROSSING_TOL_S = 1e-10
_CROSSING_MAX_ITER = 100
#: the same for the start of the constant-voltage stage [s]: the charger's current is continuous
#: there, so an error in this time changes the charge only to second order
_CV_START_TOL_S = 1e-3


#: ``cutoff`` values: the study's SoC window only, or the SoC and terminal-voltage windows (a BMS)
CUTOFFS = ("soc", "soc_and_voltage")
#: ``charging`` values: the study's constant current, or constant current then constant voltage
CHARGING_MODES = ("cc", "cc_cv")


@dataclass(frozen=True)
class PackParameters:
    """Electrical parameters, operating limits and charger of the pack (docs/physics.md).

    Each field's default, rules and description are the workflow's too (``env`` section of the
    config schema, :func:`bmsrl.config.schema`); a value that breaks them is a :class:`ValueError`.
    """

    n_cells: int = param(
        5,
        "cells in series [-]; at most 16: the agent picks one of 2^n_cells shunt patterns, and the action table, masks and policy output grow with it",
        type="integer",
        minimum=2,
        maximum=16,
    )
    capacity_ah: float = param(
        CAPACITY_AH, "nominal cell capacity Q_nom [Ah] (Panasonic NCR18650B class)", type="number", exclusiveMinimum=0
    )
    shunt_resistance_ohm: float = param(6.0, "bleed resistor per cell R_sh [Ohm]", type="number", exclusiveMinimum=0)
    charge_efficiency: float = param(
        0.99, "coulombic efficiency while charging [-]", type="number", exclusiveMinimum=0, maximum=1
    )
    discharge_efficiency: float = param(
        1.0, "coulombic efficiency while discharging [-]", type="number", exclusiveMinimum=0, maximum=1
    )
    soc_limits: tuple[float, float] = param(
        DEFAULT_SOC_WINDOW,
        "SoC window [lo, hi] [-]; phases end when the first cell reaches it",
        interval="strict",
        items={"type": "number", "minimum": 0, "maximum": 1},
    )
    voltage_limits_v: tuple[float, float] = param(
        (2.5, 4.2),
        "terminal-voltage window [lo, hi] [V]",
        interval="strict",
        items={"type": "number", "exclusiveMinimum": 0},
    )
    #: which limits end a phase: "soc_and_voltage" (a BMS: the first cell at its SoC or voltage
    #: limit) or "soc" (the study's choice: the SoC window only)
    cutoff: str = param(
        "soc_and_voltage",
        "limits that end a phase: soc_and_voltage (a BMS: the first cell at its SoC or terminal-voltage limit) or soc (the study's choice: the SoC window only); docs/physics.md",
        type="string",
        enum=list(CUTOFFS),
    )
    #: "cc_cv" (a charger: constant current, then the highest cell held at the upper voltage limit
    #: until the current tapers) or "cc" (the study's choice: constant current throughout)
    charging: str = param(
        "cc_cv",
        "charger: cc_cv (constant current, then the highest cell held at voltage_limits_v[1] until the current tapers to cv_taper_c_rate) or cc (the study's choice: constant current throughout)",
        type="string",
        enum=list(CHARGING_MODES),
    )
    #: a CC-CV charge ends when the charger's current has fallen to this C-rate [1/h] x capacity_ah
    cv_taper_c_rate: float = param(
        0.05,
        "a CC-CV charge ends when its current has fallen to this C-rate [1/h] x capacity_ah",
        type="number",
        exclusiveMinimum=0,
    )
    #: the episode terminates when a cell leaves the SoC window by more than this [-]
    safety_margin_soc: float = param(
        0.02, "the episode terminates if a cell leaves the SoC window by more [-]", type="number", minimum=0
    )

    def __post_init__(self) -> None:
        check(own_values(self), [PackParameters])  # types, ranges, intervals in order

    @property
    def taper_current_a(self) -> float:
        """Charge current [A] at which a CC-CV charge ends."""
        return self.cv_taper_c_rate * self.capacity_ah


class CellTables:
    """OCV and ECM parameters as one piecewise-linear lookup in SoC on a uniform grid.

    The tables are resampled onto a common uniform grid fine enough (``resolution`` [-]) that every
    knot of a table on a 0.005 SoC grid (the processed OCV table, the 0.1-spaced ECM table) is a
    grid point, so the lookup equals linear interpolation of the original tables. A uniform grid
    makes one lookup of all six quantities a single gather, whatever the number of packs.

    Columns, in this order: ``ocv_v`` [V], ``r0_ohm``, ``r1_ohm``, ``r2_ohm`` [Ohm], ``c1_f``,
    ``c2_f`` [F] (the two RC branches side by side, so both update in one array operation).
    """

    COLUMNS = ("ocv_v", "r0_ohm", "r1_ohm", "r2_ohm", "c1_f", "c2_f")

    def __init__(
        self,
        ocv_soc: np.ndarray,
        ocv_v: np.ndarray,
        ecm: dict[str, np.ndarray],
        resolution: float = 5e-4,
    ) -> None:
        lo = min(float(ocv_soc[0]), float(ecm["soc"][0]))
        hi = max(float(ocv_soc[-1]), float(ecm["soc"][-1]))
        n = int(round((hi - lo) / resolution)) + 1
        self.soc_grid = np.linspace(lo, hi, n)
        columns = [np.interp(self.soc_grid, ocv_soc, ocv_v)]
        columns += [np.interp(self.soc_grid, ecm["soc"], ecm[c]) for c in self.COLUMNS[1:]]
        values = np.stack(columns, axis=-1)  # (n, 6)
        slopes = np.diff(values, axis=0, append=values[-1:])  # (n, 6); last row 0
        self._table = np.concatenate([values, slopes], axis=-1)  # (n, 12): one gather per lookup
        self._lo = lo
        self._inv_step = (n - 1) / (hi - lo)
        self._last = float(n - 1)

    @classmethod
    def from_files(
        cls, ocv_table=None, ecm_table=None, *, soc_window=(0.1, 0.9), allow_implausible: bool = False
    ) -> CellTables:
        """Tables from CSV files (``None``: the package's shipped tables), validated on the way in:
        the OCV and the ECM table must cover ``soc_window`` (the pack's ``soc_limits``); values outside
        the plausible ranges of :mod:`bmsrl.tables` are refused unless ``allow_implausible``."""
        from bmsrl.tables import load_ecm_table, load_processed_ocv

        ocv_soc, ocv_v = load_processed_ocv(ocv_table, soc_window=soc_window, allow_implausible=allow_implausible)
        ecm = load_ecm_table(ecm_table, soc_window=soc_window, allow_implausible=allow_implausible)
        return cls(ocv_soc, ocv_v, ecm)

    def __call__(self, soc: np.ndarray) -> np.ndarray:
        """All six quantities at ``soc`` [-] (any shape): array of shape ``soc.shape + (6,)``.

        The same compiled lookup (:func:`_lookup`) the integrator uses."""
        soc = np.asarray(soc, dtype=np.float64)
        out = np.empty(soc.shape + (6,))
        _lookup_many(self._table, self._lo, self._inv_step, self._last, soc.reshape(-1), out.reshape(-1, 6))
        return out

    def ocv(self, soc: np.ndarray) -> np.ndarray:
        """Open-circuit voltage [V] at ``soc`` [-]."""
        return self(soc)[..., 0]


@dataclass
class PackState:
    """State of a batch of packs; per-cell arrays have shape ``(packs, cells)``."""

    soc: np.ndarray  #: state of charge [-]
    soh: np.ndarray  #: state of health (capacity / nominal capacity) [-]
    rc_v: np.ndarray  #: voltages over the RC branches [V], (packs, cells, 2): [..., 0] R1C1, [..., 1] R2C2
    switches: np.ndarray  #: shunt closed (bool)
    shunt_energy_wh: np.ndarray  #: energy dissipated in each shunt since reset [Wh]
    #: terminal voltage [V] now, under the current the pack draws from now on (``current_a``): after
    #: the charger and the cut-offs have acted (IntervalResult has the extremes before they did)
    terminal_v: np.ndarray
    #: pack current [A] the pack draws from now on (> 0 discharging): the phase's current, or the
    #: CC-CV charger's current for the present state and switches, (packs,)
    current_a: np.ndarray
    #: every cell inside the SoC window and (``cutoff="soc_and_voltage"``) the voltage window, (packs,)
    inside_limits: np.ndarray
    phase: np.ndarray  #: index of the current load-profile phase, (packs,)
    phase_time_s: np.ndarray  #: time spent in the current phase [s], (packs,)
    time_s: np.ndarray  #: time since reset [s], (packs,)
    #: charge delivered by the pack since reset (with several cycles: since its cycle began) [Ah], (packs,)
    discharged_ah: np.ndarray
    #: charge accepted by the pack since reset (with several cycles: since its cycle began) [Ah], (packs,)
    charged_ah: np.ndarray
    #: a phase that ends at a cell limit (or the taper) ended at its maximum duration instead, a
    #: safety cap (profiles.py sizes the caps so that this never happens), since reset, (packs,) bool
    capped: np.ndarray
    #: the cycle of the profile the pack is in, 0 first (``LoadProfile.cycles``), (packs,)
    cycle: np.ndarray
    #: ``discharged_ah`` at the end of the pack's last completed cycle [Ah] (0 before one), (packs,)
    ended_cycle_discharged_ah: np.ndarray

    @classmethod
    def zeros(cls, n_packs: int, n_cells: int) -> PackState:
        cells = lambda: np.zeros((n_packs, n_cells))  # noqa: E731
        packs = lambda: np.zeros(n_packs)  # noqa: E731
        return cls(
            soc=cells(),
            soh=np.ones((n_packs, n_cells)),
            rc_v=np.zeros((n_packs, n_cells, 2)),
            switches=np.zeros((n_packs, n_cells), dtype=bool),
            shunt_energy_wh=cells(),
            terminal_v=cells(),
            current_a=packs(),
            inside_limits=np.ones(n_packs, dtype=bool),
            phase=np.zeros(n_packs, dtype=np.intp),
            phase_time_s=packs(),
            time_s=packs(),
            discharged_ah=packs(),
            charged_ah=packs(),
            capped=np.zeros(n_packs, dtype=bool),
            cycle=np.zeros(n_packs, dtype=np.intp),
            ended_cycle_discharged_ah=packs(),
        )


@dataclass
class IntervalResult:
    """What one decision interval did, per pack (shapes ``(packs, cells)`` or ``(packs,)``)."""

    cell_current_a: np.ndarray  #: mean cell current over the interval [A]
    pack_current_a: np.ndarray  #: mean pack current over the interval [A] (the CV stage varies it)
    shunt_energy_wh: np.ndarray  #: energy dissipated in each shunt during the interval [Wh]
    #: highest and lowest cell terminal voltage [V] at any sub-step end of the interval, under the
    #: current flowing at that moment: before the charger or a cut-off reacted (what remains of their
    #: overshoot with phase ends and the constant-voltage stage's start found inside the sub-step)
    max_terminal_v: np.ndarray
    min_terminal_v: np.ndarray
    n_substeps: int  #: sub-steps the batch took (phase ends add sub-steps)


class PackSimulator:
    """Integrates a batch of packs through a load profile, one decision interval at a time."""

    def __init__(
        self,
        params: PackParameters,
        tables: CellTables,
        profile: LoadProfile,
        n_packs: int = 1,
        decision_interval_s: float = 30.0,
        substeps: int = 1,
    ) -> None:
        if substeps < 1:
            raise ValueError("substeps must be >= 1")
        self.params = params
        self.tables = tables
        self.profile = profile
        self.n_packs = n_packs
        self.decision_interval_s = float(decision_interval_s)
        self.substeps = int(substeps)
        self.state = PackState.zeros(n_packs, params.n_cells)
        # per phase (plus the idle state): may this phase or a later one of the cycle discharge the pack?
        self._discharge_ahead = np.logical_or.accumulate(profile.discharges[::-1])[::-1]
        # per phase (plus the idle state after the last one): which limit ends it, as a bit code
        end_code = (profile.ends_at_lower * 1 + profile.ends_at_upper * 2).astype(np.int64)
        p = params
        cc_cv = p.charging == "cc_cv"
        by_voltage = p.cutoff == "soc_and_voltage"
        # Limits as the kernels use them: +-inf leaves a test out. With CC-CV the charger holds the
        # upper voltage limit, so it is not a cut-off; the taper current ends the charge instead.
        self._kernel_args = (
            tables._table,
            tables._lo,
            tables._inv_step,
            tables._last,
            profile.current_a,
            end_code,
            1.0 / p.shunt_resistance_ohm,
            p.soc_limits[0],
            p.soc_limits[1],
            p.voltage_limits_v[0] if by_voltage else -np.inf,  # v_lo_cut [V]
            p.voltage_limits_v[1] if by_voltage and not cc_cv else np.inf,  # v_hi_cut [V]
            p.voltage_limits_v[1] if cc_cv else np.inf,  # v_hold [V]: the CV stage's cell voltage
            p.taper_current_a if cc_cv else -1.0,  # i_taper [A]; -1: never
            p.voltage_limits_v[0] if by_voltage else -np.inf,  # v_lo_win [V]: the window of within_limits
            p.voltage_limits_v[1] if by_voltage else np.inf,  # v_hi_win [V]
            profile.follows_load,  # per phase: its current follows the load trace
            profile.load_a,  # the load trace [A], repeated
            profile.load_step_s,  # its time step [s]
        )

    # ------------------------------------------------------------------ state
    def reset_packs(self, packs: np.ndarray, soc: np.ndarray, soh: np.ndarray) -> None:
        """Start ``packs`` (index array) afresh: given SoC and SoH, RC branches relaxed, shunts open.

        A phase the pack starts at the end of (e.g. charging a full pack) is skipped."""
        s = self.state
        s.soc[packs] = soc
        s.soh[packs] = soh
        s.capped[packs] = False
        s.cycle[packs] = 0
        for arr in (
            s.ended_cycle_discharged_ah,
            s.rc_v,
            s.shunt_energy_wh,
            s.phase_time_s,
            s.time_s,
            s.discharged_ah,
            s.charged_ah,
        ):
            arr[packs] = 0.0
        s.switches[packs] = False
        s.phase[packs] = 0
        _reset_packs(
            np.asarray(packs, dtype=np.intp).reshape(-1),
            s.soc,
            s.rc_v,
            s.switches,
            s.terminal_v,
            s.current_a,
            s.inside_limits,
            s.phase,
            s.phase_time_s,
            *self._kernel_args,
        )

    # ---------------------------------------------------------------- physics
    def _state_arrays(self) -> tuple[np.ndarray, ...]:
        """The state arrays :func:`_advance_packs` integrates in place, in its argument order."""
        s = self.state
        return (s.soc, s.soh, s.rc_v, s.switches, s.terminal_v, s.current_a, s.inside_limits, s.shunt_energy_wh,
                s.phase, s.phase_time_s, s.time_s, s.discharged_ah, s.charged_ah, s.capped)  # fmt: skip

    def _interval_settings(self) -> tuple:
        """:func:`_advance_packs`' arguments after the tables: a phase's safety cap [s], the decision
        interval [s], the sub-steps per interval, the nominal capacity [Ah] and the coulombic
        efficiencies [-]."""
        par = self.params
        return (self.profile.max_duration_s, self.decision_interval_s, self.substeps, par.capacity_ah,
                par.discharge_efficiency, par.charge_efficiency)  # fmt: skip

    def advance(self, switches: np.ndarray) -> IntervalResult:
        """Integrate every pack over one decision interval with shunts ``switches`` (packs, cells)."""
        s = self.state
        switches = np.asarray(switches, dtype=np.bool_)
        cell_current_a = np.empty_like(s.soc)
        pack_current_a = np.empty(self.n_packs)
        energy_wh = np.empty_like(s.soc)
        max_v = np.empty(self.n_packs)
        min_v = np.empty(self.n_packs)
        n_sub = _advance_packs(
            switches,
            *self._state_arrays(),
            *self._kernel_args,
            *self._interval_settings(),
            cell_current_a,
            pack_current_a,
            energy_wh,
            max_v,
            min_v,
        )
        if self.profile.cycles > 1:
            self._next_cycle()
        return IntervalResult(cell_current_a, pack_current_a, energy_wh, max_v, min_v, n_sub)

    def _next_cycle(self) -> None:
        """Packs whose profile has ended with cycles to go start the next cycle from the state they are
        in: its first phase, the charge counters from 0 (so a cycle's capacity is its own), shunt
        heat, time and the safety-cap flag accumulated over the episode."""
        s = self.state
        restart = np.flatnonzero((s.phase >= self.profile.n_phases) & (s.cycle < self.profile.cycles - 1))
        if restart.size == 0:
            return
        s.cycle[restart] += 1
        s.ended_cycle_discharged_ah[restart] = s.discharged_ah[restart]
        s.phase[restart] = 0
        for arr in (s.phase_time_s, s.discharged_ah, s.charged_ah):
            arr[restart] = 0.0
        _reset_packs(
            restart,
            s.soc,
            s.rc_v,
            s.switches,
            s.terminal_v,
            s.current_a,
            s.inside_limits,
            s.phase,
            s.phase_time_s,
            *self._kernel_args,
        )

    # ------------------------------------------------------------- read-outs
    @property
    def episode_over(self) -> np.ndarray:
        """Per pack: has the last phase of the profile's last cycle ended?"""
        over = self.state.phase >= self.profile.n_phases
        if self.profile.cycles > 1:
            over &= self.state.cycle >= self.profile.cycles - 1
        return over

    def discharge_over(self) -> np.ndarray:
        """Per pack: is ``discharged_ah`` final, whatever the shunts do from now on? True in the
        profile's last cycle once no phase from the present one on can discharge the pack
        (``LoadProfile.discharges``): ``discharged_ah`` only grows by an interval's charge > 0, and a
        rest or a charge delivers none, so its value at the episode's end is its value now."""
        s = self.state
        return _discharge_final_packs(s.phase, s.cycle, self._discharge_ahead, self.profile.cycles - 1)

    def safety_violation(self) -> np.ndarray:
        """Per pack: a cell outside the SoC window by more than ``safety_margin_soc``."""
        return _unsafe_packs(self.state.soc, *self._safe_soc)

    @property
    def _safe_soc(self) -> tuple[float, float]:
        """The SoC [-] a cell may reach before a safety violation: the window widened by the margin."""
        lo, hi = self.params.soc_limits
        m = self.params.safety_margin_soc
        return lo - m, hi + m

    def within_limits(self) -> np.ndarray:
        """Per pack: all cells inside the SoC window and (with the voltage cut-off) the voltage window,
        limits included, at their present SoC and terminal voltage (``state.terminal_v``)."""
        return self.state.inside_limits

    def pack_current_now_a(self) -> np.ndarray:
        """The pack current [A] the pack draws now (> 0 discharging), (packs,): the phase's current,
        or in a CC-CV charge the charger's current for the present state and shunts (the shunts the
        agent sets next change it: the charger re-solves at every sub-step)."""
        return self.state.current_a

    def advance_open_while_discharging(
        self, running: np.ndarray, value_ah: np.ndarray, min_current_a: float, max_intervals: int
    ) -> int:
        """Advance every pack, one decision interval after another, with every shunt open, while every
        ``running`` pack (packs,) bool is in its profile's last cycle and draws a pack current above
        ``min_current_a`` [A] (discharging) at the interval's start; a running pack stops running once a
        safety violation (:meth:`safety_violation`) or :meth:`discharge_over` ends its value, which is
        written to ``value_ah`` [Ah] (packs,) as its ``discharged_ah``. Both arrays are updated in place.

        Each interval is exactly :meth:`advance` with all shunts open (the same compiled kernel, the
        same sub-steps in the same order, so the same floating-point results), only without a return
        to Python per interval: ``best_known``'s look-ahead, where the base controller keeps every
        shunt open while the pack discharges. Packs not running are advanced too (as the look-ahead
        advances them with shunts open) but nothing of theirs is read. Stops after ``max_intervals``
        intervals, or before an interval in which a running pack leaves the stretch, or when none runs;
        returns the number of intervals taken."""
        if not running.any() or max_intervals <= 0:
            return 0
        return int(
            _advance_open_while_discharging(
                running,
                value_ah,
                float(min_current_a),
                int(max_intervals),
                self._safe_soc,
                self._discharge_ahead,
                self.profile.cycles - 1,  # the last cycle's index
                self.state.cycle,
                self._state_arrays(),
                self._kernel_args,
                self._interval_settings(),
            )
        )


# --------------------------------------------------------------------------- the integrator
# One compiled loop over packs, sub-steps and cells: the same code steps one pack or a thousand.
# (Per-element numpy calls cost ~1-3 us each whatever the array size, which would make a single
# environment 10x slower than its physics; compiled, one 30 s interval of one pack takes ~1 us.)
# Each formula exists once, as a small inlined function: the table lookup, the terminal voltage,
# the current limit of the constant-voltage stage, the charger, the limit tests and the phase end.


@numba.njit(cache=True, inline="always")
def _lookup(table, lo, inv_step, last, soc):
    """Row of the uniform SoC table at ``soc`` [-]: (ocv_v [V], r0_ohm, r1_ohm, r2_ohm [Ohm], c1_f, c2_f [F])."""
    pos = min(max((soc - lo) * inv_step, 0.0), last)
    i = int(pos)  # at the last grid point the slope columns are 0
    f = pos - i
    row = table[i]
    return (
        row[0] + f * row[6],
        row[1] + f * row[7],
        row[2] + f * row[8],
        row[3] + f * row[9],
        row[4] + f * row[10],
        row[5] + f * row[11],
    )


@numba.njit(cache=True)
def _lookup_many(table, lo, inv_step, last, soc, out):
    """:func:`_lookup` for every element of the 1-d ``soc`` [-], into ``out`` (len(soc), 6)."""
    for j in range(soc.shape[0]):
        out[j, 0], out[j, 1], out[j, 2], out[j, 3], out[j, 4], out[j, 5] = _lookup(table, lo, inv_step, last, soc[j])


@numba.njit(cache=True, inline="always")
def _terminal_voltage_v(ocv_v, v1_v, v2_v, r0_ohm, pack_current_a, shunt_g_s):
    """Terminal voltage [V] of a cell: OCV [V], RC voltages [V], R0 [Ohm], pack current [A] (> 0
    discharging) and shunt conductance [S] (0 when open): the cell current I_pack + g V_t flows through R0."""
    return (ocv_v - v1_v - v2_v - r0_ohm * pack_current_a) / (1.0 + shunt_g_s * r0_ohm)


@numba.njit(cache=True, inline="always")
def _cv_current_limit_a(ocv_v, v1_v, v2_v, r0_ohm, shunt_g_s, v_hold_v):
    """Pack current [A] at which the cell's terminal voltage is ``v_hold_v`` [V]: :func:`_terminal_voltage_v`
    solved for the pack current. Any current above it (less charge) keeps the cell below ``v_hold_v``;
    ``v_hold_v = inf`` gives -inf (no limit)."""
    return (ocv_v - v1_v - v2_v - v_hold_v * (1.0 + shunt_g_s * r0_ohm)) / r0_ohm


@numba.njit(cache=True, inline="always")
def _charger_current_a(phase_current_a, limit_a):
    """Pack current [A] of a phase: a load's (>= 0) as given; a charge (< 0) at most ``-phase_current_a``
    in magnitude, no more than the binding cell's limit ``limit_a`` allows, and never a discharge."""
    if phase_current_a >= 0.0:
        return phase_current_a
    return min(0.0, max(phase_current_a, limit_a))


@numba.njit(cache=True, inline="always")
def _limits(soc, terminal_v, soc_lo, soc_hi, v_lo, v_hi):
    """(lower, upper): has a cell at ``soc`` [-], ``terminal_v`` [V] reached the lower, the upper limit?
    (Voltage limits of +-inf leave the voltage out.)"""
    return soc <= soc_lo or terminal_v <= v_lo, soc >= soc_hi or terminal_v >= v_hi


@numba.njit(cache=True, inline="always")
def _all_inside(k, soc, terminal_v, soc_lo, soc_hi, v_lo, v_hi):
    """Are all cells of pack ``k`` inside the SoC [-] and voltage [V] windows, limits included?"""
    for i in range(soc.shape[1]):  # noqa: SIM110  (a loop: numba compiles no generator in all())
        if not (soc_lo <= soc[k, i] <= soc_hi and v_lo <= terminal_v[k, i] <= v_hi):
            return False
    return True


@numba.njit(cache=True, inline="always")
def _phase_ends(code, lower, upper, current_a, i_taper_a):
    """Does a phase with end code ``code`` (1: ends at the lower limit, 2: at the upper) end, given
    the cells' limit flags and the current [A] the pack would draw next? A charge also ends when the
    charger's current has tapered to ``i_taper_a`` [A] (-1: never)."""
    return (code & 1 != 0 and lower) or (code & 2 != 0 and (upper or -current_a <= i_taper_a))


@numba.njit(cache=True, inline="always")
def _load_index(phase_time_s, load_step_s):
    """The step of the load trace a phase is in after ``phase_time_s`` [s] (steps of ``load_step_s`` [s])."""
    return int((phase_time_s + _TIME_TOL_S) / load_step_s)


@numba.njit(cache=True, inline="always")
def _to_next_load_step_s(phase_time_s, load_step_s):
    """Time [s] from ``phase_time_s`` [s] to the start of the load trace's next step."""
    return (_load_index(phase_time_s, load_step_s) + 1) * load_step_s - phase_time_s


@numba.njit(cache=True, inline="always")
def _phase_current_a(ph, phase_time_s, phase_current_a, follows_load, load_a, load_step_s):
    """The current [A] phase ``ph`` asks for ``phase_time_s`` [s] into it (> 0 discharging): its
    constant current, or the load trace's value for that step (the trace repeats)."""
    if follows_load[ph]:
        return load_a[_load_index(phase_time_s, load_step_s) % load_a.shape[0]]
    return phase_current_a[ph]


@numba.njit(cache=True)
def _enter_phase(
    k,
    rows,
    soc,
    rc_v,
    switches,
    terminal_v,
    current_a,
    phase,
    phase_time_s,
    phase_current_a,
    phase_end_code,
    g_sh,
    soc_lo,
    soc_hi,
    v_lo_cut,
    v_hi_cut,
    v_hold,
    i_taper,
    follows_load,
    load_a,
    load_step_s,
):
    """Pack ``k`` (table rows ``rows`` at its SoC) starts its phase, or decides again after its shunts
    changed: set the current the pack draws and the terminal voltages under it; a phase already at
    its end (a limit, or a charge already tapered) ends at once, and the next one starts."""
    n_phases = phase_current_a.shape[0] - 1
    n_cells = soc.shape[1]
    while True:
        ph = phase[k]
        i_ph = _phase_current_a(ph, phase_time_s[k], phase_current_a, follows_load, load_a, load_step_s)
        limit_a = -np.inf
        if i_ph < 0.0:
            for i in range(n_cells):
                g = g_sh if switches[k, i] else 0.0
                limit_a = max(
                    limit_a, _cv_current_limit_a(rows[i, 0], rc_v[k, i, 0], rc_v[k, i, 1], rows[i, 1], g, v_hold)
                )
        i_pack = _charger_current_a(i_ph, limit_a)
        current_a[k] = i_pack
        lower = False
        upper = False
        for i in range(n_cells):
            g = g_sh if switches[k, i] else 0.0
            v = _terminal_voltage_v(rows[i, 0], rc_v[k, i, 0], rc_v[k, i, 1], rows[i, 1], i_pack, g)
            terminal_v[k, i] = v
            lo_i, hi_i = _limits(soc[k, i], v, soc_lo, soc_hi, v_lo_cut, v_hi_cut)
            lower = lower or lo_i
            upper = upper or hi_i
        if ph < n_phases and _phase_ends(phase_end_code[ph], lower, upper, i_pack, i_taper):
            phase[k] = ph + 1
            phase_time_s[k] = 0.0
        else:
            return


@numba.njit(cache=True, inline="always")
def _fill_rows(k, soc, rows, table, lo, inv_step, last):
    """Table rows of pack ``k``'s cells at their SoC into ``rows`` (cells, 6)."""
    for i in range(soc.shape[1]):
        rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3], rows[i, 4], rows[i, 5] = _lookup(
            table, lo, inv_step, last, soc[k, i]
        )


@numba.njit(cache=True)
def _reset_packs(
    packs,
    soc,
    rc_v,
    switches,
    terminal_v,
    current_a,
    inside_limits,
    phase,
    phase_time_s,
    table,
    lo,
    inv_step,
    last,
    phase_current_a,
    phase_end_code,
    g_sh,
    soc_lo,
    soc_hi,
    v_lo_cut,
    v_hi_cut,
    v_hold,
    i_taper,
    v_lo_win,
    v_hi_win,
    follows_load,
    load_a,
    load_step_s,
):
    """Freshly reset ``packs`` start their first phase (:func:`_enter_phase`)."""
    rows = np.empty((soc.shape[1], 6))
    for k in packs:
        _fill_rows(k, soc, rows, table, lo, inv_step, last)
        _enter_phase(
            k,
            rows,
            soc,
            rc_v,
            switches,
            terminal_v,
            current_a,
            phase,
            phase_time_s,
            phase_current_a,
            phase_end_code,
            g_sh,
            soc_lo,
            soc_hi,
            v_lo_cut,
            v_hi_cut,
            v_hold,
            i_taper,
            follows_load,
            load_a,
            load_step_s,
        )
        inside_limits[k] = _all_inside(k, soc, terminal_v, soc_lo, soc_hi, v_lo_win, v_hi_win)


@numba.njit(cache=True, inline="always")
def _cells_at(
    k,
    t_s,
    i0_a,
    slope_a_s,
    soh,
    s_soc,
    s_v,
    s_rows,
    s_shunt_a,
    table,
    lo,
    inv_step,
    last,
    capacity_ah,
    eta_discharge,
    eta_charge,
    o_soc,
    o_v,
    o_rows,
    o_q_ah,
):
    """Pack ``k``'s cells ``t_s`` [s] into a sub-step that started at ``s_soc`` [-], ``s_v`` (cells, 2) [V],
    table rows ``s_rows``: exact solution with the ECM parameters and the shunt currents ``s_shunt_a``
    [A] held at their start values and the pack current linear in time, ``i0_a + slope_a_s * t`` [A]
    (``slope_a_s = 0``: the zero-order hold). Writes SoC, RC voltages, table rows at the new SoC and the
    charge through each cell [Ah] (> 0 discharging) into ``o_*``."""
    for i in range(s_soc.shape[0]):
        i_cell0 = i0_a + s_shunt_a[i]  # cell current [A] at the sub-step's start
        for j in range(2):
            r = s_rows[i, 2 + j]
            tau = r * s_rows[i, 4 + j]  # [s]
            d = np.exp(-t_s / tau)
            # dV/dt = -V / tau + (i_cell0 + slope t) / C, solved exactly
            o_v[i, j] = s_v[i, j] * d + r * (i_cell0 * (1.0 - d) + slope_a_s * (t_s - tau * (1.0 - d)))
        q_ah = (i_cell0 + 0.5 * slope_a_s * t_s) * t_s / 3600.0
        eta = eta_discharge if q_ah > 0.0 else eta_charge
        x = s_soc[i] - eta * q_ah / (capacity_ah * soh[k, i])
        o_soc[i] = x
        o_q_ah[i] = q_ah
        o_rows[i, 0], o_rows[i, 1], o_rows[i, 2], o_rows[i, 3], o_rows[i, 4], o_rows[i, 5] = _lookup(
            table, lo, inv_step, last, x
        )


@numba.njit(cache=True, inline="always")
def _current_limit_a(k, switches, g_sh, soc_rows, v, v_hold):
    """The charger's binding limit [A]: the largest of the cells' :func:`_cv_current_limit_a` at table
    rows ``soc_rows`` and RC voltages ``v`` (cells, 2)."""
    limit_a = -np.inf
    for i in range(v.shape[0]):
        g = g_sh if switches[k, i] else 0.0
        limit_a = max(limit_a, _cv_current_limit_a(soc_rows[i, 0], v[i, 0], v[i, 1], soc_rows[i, 1], g, v_hold))
    return limit_a


@numba.njit(cache=True, inline="always")
def _cv_limit_after_a(
    i,
    t_s,
    i0_a,
    k,
    soh,
    s_soc,
    s_v,
    s_rows,
    s_shunt_a,
    switches,
    g_sh,
    v_hold,
    table,
    lo,
    inv_step,
    last,
    capacity_ah,
    eta_discharge,
    eta_charge,
):
    """Cell ``i``'s voltage-hold limit [A] (:func:`_cv_current_limit_a`) ``t_s`` [s] into a sub-step
    that holds the pack current ``i0_a`` [A]: the predictor of the constant-voltage stage."""
    i_cell0 = i0_a + s_shunt_a[i]
    # the RC voltages as in _cells_at with slope 0, written identically (the same rounding)
    r, tau = s_rows[i, 2], s_rows[i, 2] * s_rows[i, 4]
    d = np.exp(-t_s / tau)
    v1 = s_v[i, 0] * d + r * (i_cell0 * (1.0 - d) + 0.0 * (t_s - tau * (1.0 - d)))
    r, tau = s_rows[i, 3], s_rows[i, 3] * s_rows[i, 5]
    d = np.exp(-t_s / tau)
    v2 = s_v[i, 1] * d + r * (i_cell0 * (1.0 - d) + 0.0 * (t_s - tau * (1.0 - d)))
    q_ah = (i_cell0 + 0.5 * 0.0 * t_s) * t_s / 3600.0
    eta = eta_discharge if q_ah > 0.0 else eta_charge
    ocv, r0, _, _, _, _ = _lookup(table, lo, inv_step, last, s_soc[i] - eta * q_ah / (capacity_ah * soh[k, i]))
    g = g_sh if switches[k, i] else 0.0
    return _cv_current_limit_a(ocv, v1, v2, r0, g, v_hold)


@numba.njit(cache=True, inline="always")
def _event_margin(
    k,
    code,
    switches,
    g_sh,
    o_soc,
    o_v,
    o_rows,
    i_pack_a,
    phase_current_a,
    cc_stage,
    soc_lo,
    soc_hi,
    v_lo_cut,
    v_hi_cut,
    v_hold,
    i_taper,
):
    """How far past its nearest event pack ``k`` is, for cells at ``o_*`` carrying pack current
    ``i_pack_a`` [A]: >= 0 once the phase's end (end code ``code``: SoC and voltage limits, the
    charger's current tapered to ``i_taper``) or, in a charger's constant-current stage
    (``cc_stage``), the top cell's voltage hold has been reached. Mixed units (SoC, V, A): only the
    sign and continuity in time matter (the root search of :func:`_crossing_time_s`)."""
    m = -np.inf
    for i in range(o_soc.shape[0]):
        g = g_sh if switches[k, i] else 0.0
        v_t = _terminal_voltage_v(o_rows[i, 0], o_v[i, 0], o_v[i, 1], o_rows[i, 1], i_pack_a, g)
        if code & 1 != 0:
            m = max(m, soc_lo - o_soc[i], v_lo_cut - v_t)
        if code & 2 != 0:
            m = max(m, o_soc[i] - soc_hi, v_t - v_hi_cut)
    if phase_current_a < 0.0 and (cc_stage or (code & 2 != 0 and i_taper >= 0.0)):
        limit_a = _current_limit_a(k, switches, g_sh, o_rows, o_v, v_hold)
        if code & 2 != 0 and i_taper >= 0.0:  # the charger's next current at or below the taper
            m = max(m, min(0.0, max(phase_current_a, limit_a)) + i_taper)
        if cc_stage:
            m = max(m, limit_a - phase_current_a)
    return m


@numba.njit(cache=True)
def _crossing_time_s(
    k,
    h_s,
    i0_a,
    slope_a_s,
    code,
    phase_current_a,
    cc_stage,
    soh,
    switches,
    g_sh,
    s_soc,
    s_v,
    s_rows,
    s_shunt_a,
    table,
    lo,
    inv_step,
    last,
    capacity_ah,
    eta_discharge,
    eta_charge,
    o_soc,
    o_v,
    o_rows,
    o_q_ah,
    soc_lo,
    soc_hi,
    v_lo_cut,
    v_hi_cut,
    v_hold,
    i_taper,
):
    """The first time [s] in (0, ``h_s``] at which :func:`_event_margin` reaches 0, given that it has at
    ``h_s``: a bracketing root search (Illinois) to a bracket of ``_CROSSING_TOL_S``, returning the bracket's end
    at which the event has happened (0 if it had already at the sub-step's start)."""
    t_lo, t_hi = 0.0, h_s
    _cells_at(
        k,
        0.0,
        i0_a,
        slope_a_s,
        soh,
        s_soc,
        s_v,
        s_rows,
        s_shunt_a,
        table,
        lo,
        inv_step,
        last,
        capacity_ah,
        eta_discharge,
        eta_charge,
        o_soc,
        o_v,
        o_rows,
        o_q_ah,
    )
    m_lo = _event_margin(
        k,
        code,
        switches,
        g_sh,
        o_soc,
        o_v,
        o_rows,
        i0_a,
        phase_current_a,
        cc_stage,
        soc_lo,
        soc_hi,
        v_lo_cut,
        v_hi_cut,
        v_hold,
        i_taper,
    )
    if m_lo >= 0.0:
        return 0.0
    _cells_at(
        k,
        h_s,
        i0_a,
        slope_a_s,
        soh,
        s_soc,
        s_v,
        s_rows,
        s_shunt_a,
        table,
        lo,
        inv_step,
        last,
        capacity_ah,
        eta_discharge,
        eta_charge,
        o_soc,
        o_v,
        o_rows,
        o_q_ah,
    )
    m_hi = _event_margin(
        k,
        code,
        switches,
        g_sh,
        o_soc,
        o_v,
        o_rows,
        i0_a + slope_a_s * h_s,
        phase_current_a,
        cc_stage,
        soc_lo,
        soc_hi,
        v_lo_cut,
        v_hi_cut,
        v_hold,
        i_taper,
    )
    side = 0
    for _ in range(_CROSSING_MAX_ITER):
        if t_hi - t_lo <= _CROSSING_TOL_S:
            break
        t = t_hi - m_hi * (t_hi - t_lo) / (m_hi - m_lo)  # regula falsi
        if not np.isfinite(t):
            t = 0.5 * (t_lo + t_hi)
        # at least half the tolerance inside the bracket: a root found exactly then closes it at once
        t = min(max(t, t_lo + 0.5 * _CROSSING_TOL_S), t_hi - 0.5 * _CROSSING_TOL_S)
        _cells_at(
            k,
            t,
            i0_a,
            slope_a_s,
            soh,
            s_soc,
            s_v,
            s_rows,
            s_shunt_a,
            table,
            lo,
            inv_step,
            last,
            capacity_ah,
            eta_discharge,
            eta_charge,
            o_soc,
            o_v,
            o_rows,
            o_q_ah,
        )
        m = _event_margin(
            k,
            code,
            switches,
            g_sh,
            o_soc,
            o_v,
            o_rows,
            i0_a + slope_a_s * t,
            phase_current_a,
            cc_stage,
            soc_lo,
            soc_hi,
            v_lo_cut,
            v_hi_cut,
            v_hold,
            i_taper,
        )
        if m >= 0.0:
            t_hi, m_hi = t, m
            if side == 1:
                m_lo *= 0.5  # Illinois: keep the retained end from stalling the search
            side = 1
        else:
            t_lo, m_lo = t, m
            if side == -1:
                m_hi *= 0.5
            side = -1
    return t_hi


@numba.njit(cache=True)
def _cv_start_time_s(
    i,
    h_s,
    i0_a,
    phase_current_a,
    k,
    soh,
    s_soc,
    s_v,
    s_rows,
    s_shunt_a,
    switches,
    g_sh,
    v_hold,
    table,
    lo,
    inv_step,
    last,
    capacity_ah,
    eta_discharge,
    eta_charge,
):
    """The time [s] in (0, ``h_s``] at which cell ``i``, charged at the constant current ``i0_a`` [A],
    reaches the charger's voltage hold (its limit :func:`_cv_limit_after_a` reaches the phase's current),
    to ``_CV_START_TOL_S``; the end of the bracket at which it has."""
    t_lo, t_hi = 0.0, h_s
    m_lo = (
        _cv_limit_after_a(
            i,
            0.0,
            i0_a,
            k,
            soh,
            s_soc,
            s_v,
            s_rows,
            s_shunt_a,
            switches,
            g_sh,
            v_hold,
            table,
            lo,
            inv_step,
            last,
            capacity_ah,
            eta_discharge,
            eta_charge,
        )
        - phase_current_a
    )
    if m_lo >= 0.0:
        return 0.0
    m_hi = (
        _cv_limit_after_a(
            i,
            h_s,
            i0_a,
            k,
            soh,
            s_soc,
            s_v,
            s_rows,
            s_shunt_a,
            switches,
            g_sh,
            v_hold,
            table,
            lo,
            inv_step,
            last,
            capacity_ah,
            eta_discharge,
            eta_charge,
        )
        - phase_current_a
    )
    side = 0
    for _ in range(_CROSSING_MAX_ITER):
        if t_hi - t_lo <= _CV_START_TOL_S:
            break
        t = t_hi - m_hi * (t_hi - t_lo) / (m_hi - m_lo)  # regula falsi
        if not np.isfinite(t):
            t = 0.5 * (t_lo + t_hi)
        # at least half the tolerance inside the bracket: a root found exactly then closes it at once
        t = min(max(t, t_lo + 0.5 * _CV_START_TOL_S), t_hi - 0.5 * _CV_START_TOL_S)
        m = (
            _cv_limit_after_a(
                i,
                t,
                i0_a,
                k,
                soh,
                s_soc,
                s_v,
                s_rows,
                s_shunt_a,
                switches,
                g_sh,
                v_hold,
                table,
                lo,
                inv_step,
                last,
                capacity_ah,
                eta_discharge,
                eta_charge,
            )
            - phase_current_a
        )
        if m >= 0.0:
            t_hi, m_hi = t, m
            if side == 1:
                m_lo *= 0.5  # Illinois
            side = 1
        else:
            t_lo, m_lo = t, m
            if side == -1:
                m_hi *= 0.5
            side = -1
    return t_hi


@numba.njit(cache=True)
def _cut_at_event(
    ends,
    binding,
    k,
    h_s,
    i0_a,
    slope_a_s,
    code,
    phase_current_a,
    cc_stage,
    soh,
    switches,
    g_sh,
    s_soc,
    s_v,
    s_rows,
    s_shunt_a,
    table,
    lo,
    inv_step,
    last,
    capacity_ah,
    eta_discharge,
    eta_charge,
    o_soc,
    o_v,
    o_rows,
    o_q_ah,
    soc_lo,
    soc_hi,
    v_lo_cut,
    v_hi_cut,
    v_hold,
    i_taper,
):
    """A sub-step of ``h_s`` [s] reached an event: the phase's end (``ends``), or else the start of the
    constant-voltage stage (cell ``binding`` reaching the hold). Cut it at the crossing time, the
    cells' state then into ``o_*``; returns that time [s]. (Not inlined: the rare path.)"""
    if ends:
        h_s = _crossing_time_s(
            k,
            h_s,
            i0_a,
            slope_a_s,
            code,
            phase_current_a,
            cc_stage,
            soh,
            switches,
            g_sh,
            s_soc,
            s_v,
            s_rows,
            s_shunt_a,
            table,
            lo,
            inv_step,
            last,
            capacity_ah,
            eta_discharge,
            eta_charge,
            o_soc,
            o_v,
            o_rows,
            o_q_ah,
            soc_lo,
            soc_hi,
            v_lo_cut,
            v_hi_cut,
            v_hold,
            i_taper,
        )
    else:
        h_s = _cv_start_time_s(
            binding,
            h_s,
            i0_a,
            phase_current_a,
            k,
            soh,
            s_soc,
            s_v,
            s_rows,
            s_shunt_a,
            switches,
            g_sh,
            v_hold,
            table,
            lo,
            inv_step,
            last,
            capacity_ah,
            eta_discharge,
            eta_charge,
        )
    _cells_at(
        k,
        h_s,
        i0_a,
        slope_a_s,
        soh,
        s_soc,
        s_v,
        s_rows,
        s_shunt_a,
        table,
        lo,
        inv_step,
        last,
        capacity_ah,
        eta_discharge,
        eta_charge,
        o_soc,
        o_v,
        o_rows,
        o_q_ah,
    )
    return h_s


@numba.njit(cache=True)
def _advance_packs(
    new_switches,
    soc,
    soh,
    rc_v,
    switches,
    terminal_v,
    current_a,
    inside_limits,
    shunt_energy_wh,
    phase,
    phase_time_s,
    time_s,
    discharged_ah,
    charged_ah,
    capped,
    table,
    lo,
    inv_step,
    last,
    phase_current_a,
    phase_end_code,
    g_sh,
    soc_lo,
    soc_hi,
    v_lo_cut,
    v_hi_cut,
    v_hold,
    i_taper,
    v_lo_win,
    v_hi_win,
    follows_load,
    load_a,
    load_step_s,
    phase_max_s,
    dt_s,
    substeps,
    capacity_ah,
    eta_discharge,
    eta_charge,
    out_cell_current_a,
    out_pack_current_a,
    out_energy_wh,
    out_max_v,
    out_min_v,
):
    """Set the shunts to ``new_switches``, advance every pack by ``dt_s`` [s] in place; write interval
    means and energies to ``out_*``.

    A charge whose shunts changed decides again under the new shunts (:func:`_enter_phase`: the
    charger's current depends on them); otherwise the current from the last sub-step end stands.
    A sub-step holds the shunt currents and the ECM parameters. The pack current is held too, except
    in the charger's constant-voltage stage, where it is linear in time from the charger's current at
    the sub-step's start to its current at the end (predicted by a zero-order-hold step of the cell
    that binds at the start, then the sub-step is solved with the linear current: a second-order
    update of the continuous charger). When a sub-step reaches an event (a cell limit ending the phase, the charger's current
    tapered, or the top cell reaching the voltage hold in the constant-current stage), it is cut at
    the exact crossing time (:func:`_crossing_time_s`) and the phase ends there, or the
    constant-voltage stage begins there. The phase's maximum duration also ends it. The terminal
    voltages left in ``terminal_v`` are those under the current the pack draws next. A phase that
    follows the load trace (``follows_load``) takes no sub-step across a step of the trace and
    decides again at each new step (:func:`_enter_phase`), so each of the trace's currents is held
    over its step. Returns the largest number of sub-steps any pack took (events split sub-steps).
    """
    n_packs, n_cells = soc.shape
    n_phases = phase_current_a.shape[0] - 1
    h_nominal = dt_s / substeps
    most_substeps = 0
    i_pack = 0.0
    rows = np.empty((n_cells, 6))  # table rows at each cell's present SoC: one lookup per sub-step
    s_shunt_a = np.empty(n_cells)  # shunt current [A] at the sub-step's start
    s_vt = np.empty(n_cells)  # terminal voltage at the start [V]
    o_soc = np.empty(n_cells)  # the state the sub-step reaches
    o_v = np.empty((n_cells, 2))
    o_rows = np.empty((n_cells, 6))
    o_q_ah = np.empty(n_cells)
    o_vt = np.empty(n_cells)  # terminal voltage at the end [V]
    cc_cv = v_hold < np.inf
    for k in range(n_packs):
        remaining = dt_s
        pack_ah = 0.0
        n_sub = 0
        max_v = -np.inf
        min_v = np.inf
        for i in range(n_cells):
            out_cell_current_a[k, i] = 0.0
            out_energy_wh[k, i] = 0.0
        changed = False
        for i in range(n_cells):
            if switches[k, i] != new_switches[k, i]:
                switches[k, i] = new_switches[k, i]
                changed = True
        _fill_rows(k, soc, rows, table, lo, inv_step, last)
        if (
            changed
            and _phase_current_a(phase[k], phase_time_s[k], phase_current_a, follows_load, load_a, load_step_s) < 0.0
        ):
            _enter_phase(
                k,
                rows,
                soc,
                rc_v,
                switches,
                terminal_v,
                current_a,
                phase,
                phase_time_s,
                phase_current_a,
                phase_end_code,
                g_sh,
                soc_lo,
                soc_hi,
                v_lo_cut,
                v_hi_cut,
                v_hold,
                i_taper,
                follows_load,
                load_a,
                load_step_s,
            )
        cv_began = False
        while remaining > _TIME_TOL_S:
            ph = phase[k]
            code = phase_end_code[ph] if ph < n_phases else 0
            i_ph = _phase_current_a(ph, phase_time_s[k], phase_current_a, follows_load, load_a, load_step_s)
            # never step past the interval's end or the phase's maximum duration
            h = min(h_nominal, remaining, phase_max_s[ph] - phase_time_s[k])
            if follows_load[ph]:  # never across a step of the load trace: each value is held
                h = min(h, _to_next_load_step_s(phase_time_s[k], load_step_s))
            i_pack = current_a[k]  # the pack current at the sub-step's start
            charging = i_ph < 0.0
            s_soc = soc[k]  # the sub-step's start state, left in place until the sub-step is done
            s_v = rc_v[k]
            limit0_a = -np.inf
            binding = 0
            for i in range(n_cells):
                g = g_sh if switches[k, i] else 0.0  # shunt conductance [S]
                v_t = _terminal_voltage_v(rows[i, 0], s_v[i, 0], s_v[i, 1], rows[i, 1], i_pack, g)
                s_vt[i] = v_t
                s_shunt_a[i] = g * v_t  # the shunt current flows through R0 and both RC branches
                if charging and cc_cv:
                    limit_i = _cv_current_limit_a(rows[i, 0], s_v[i, 0], s_v[i, 1], rows[i, 1], g, v_hold)
                    if limit_i > limit0_a:
                        limit0_a = limit_i
                        binding = i  # the cell whose voltage hold sets the charger's current
            # constant-voltage stage: the charger's voltage hold binds (or just does) at the start
            cv_stage = charging and cc_cv and (limit0_a >= i_ph or cv_began)
            cv_began = False
            cc_stage = charging and cc_cv and not cv_stage
            slope = 0.0  # [A/s]
            if cv_stage:  # predictor (held current, binding cell) -> the charger's current at the end -> corrector
                i_end = _charger_current_a(
                    i_ph,
                    _cv_limit_after_a(
                        binding,
                        h,
                        i_pack,
                        k,
                        soh,
                        s_soc,
                        s_v,
                        rows,
                        s_shunt_a,
                        switches,
                        g_sh,
                        v_hold,
                        table,
                        lo,
                        inv_step,
                        last,
                        capacity_ah,
                        eta_discharge,
                        eta_charge,
                    ),
                )
                slope = (i_end - i_pack) / h
            _cells_at(
                k,
                h,
                i_pack,
                slope,
                soh,
                s_soc,
                s_v,
                rows,
                s_shunt_a,
                table,
                lo,
                inv_step,
                last,
                capacity_ah,
                eta_discharge,
                eta_charge,
                o_soc,
                o_v,
                o_rows,
                o_q_ah,
            )
            for attempt in range(2):  # the sub-step as it is, or cut at its event
                i_end = i_pack + slope * h  # the pack current at the sub-step's end
                binding_end = 0
                lower = False
                upper = False
                limit_a = -np.inf
                for i in range(n_cells):
                    g = g_sh if switches[k, i] else 0.0
                    v_end = _terminal_voltage_v(o_rows[i, 0], o_v[i, 0], o_v[i, 1], o_rows[i, 1], i_end, g)
                    o_vt[i] = v_end
                    lo_i, hi_i = _limits(o_soc[i], v_end, soc_lo, soc_hi, v_lo_cut, v_hi_cut)
                    lower = lower or lo_i
                    upper = upper or hi_i
                    if charging:
                        limit_i = _cv_current_limit_a(o_rows[i, 0], o_v[i, 0], o_v[i, 1], o_rows[i, 1], g, v_hold)
                        if limit_i > limit_a:
                            limit_a = limit_i
                            binding_end = i
                i_next = _charger_current_a(i_ph, limit_a)
                ends = ph < n_phases and _phase_ends(code, lower, upper, i_next, i_taper)
                if attempt == 1 or not (ends or (cc_stage and limit_a > i_ph)):
                    break
                # an event inside the sub-step: cut it at the crossing time
                cv_began = not ends  # only the CV stage begins: the next sub-step is in it (whatever rounding says)
                h = _cut_at_event(
                    ends,
                    binding_end,
                    k,
                    h,
                    i_pack,
                    slope,
                    code,
                    i_ph,
                    cc_stage,
                    soh,
                    switches,
                    g_sh,
                    s_soc,
                    s_v,
                    rows,
                    s_shunt_a,
                    table,
                    lo,
                    inv_step,
                    last,
                    capacity_ah,
                    eta_discharge,
                    eta_charge,
                    o_soc,
                    o_v,
                    o_rows,
                    o_q_ah,
                    soc_lo,
                    soc_hi,
                    v_lo_cut,
                    v_hi_cut,
                    v_hold,
                    i_taper,
                )
            for i in range(n_cells):  # commit the sub-step
                g = g_sh if switches[k, i] else 0.0
                soc[k, i] = o_soc[i]
                rc_v[k, i, 0] = o_v[i, 0]
                rc_v[k, i, 1] = o_v[i, 1]
                v_end = o_vt[i]
                terminal_v[k, i] = v_end
                max_v = max(max_v, v_end)
                min_v = min(min_v, v_end)
                out_cell_current_a[k, i] += o_q_ah[i]
                out_energy_wh[k, i] += g * 0.5 * (s_vt[i] * s_vt[i] + v_end * v_end) * h / 3600.0  # trapezoid
            rows, o_rows = o_rows, rows  # the table rows at the new SoC
            current_a[k] = i_next
            n_sub += 1
            pack_ah += (i_pack + 0.5 * slope * h) * h / 3600.0
            remaining -= h
            time_s[k] += h
            phase_time_s[k] += h
            if ends or phase_time_s[k] >= phase_max_s[ph] - _TIME_TOL_S:
                if not ends and phase_end_code[ph] != 0:  # a limit-ended phase stopped by its safety cap
                    capped[k] = True
                phase[k] = ph + 1
                phase_time_s[k] = 0.0
                _enter_phase(
                    k,
                    rows,
                    soc,
                    rc_v,
                    switches,
                    terminal_v,
                    current_a,
                    phase,
                    phase_time_s,
                    phase_current_a,
                    phase_end_code,
                    g_sh,
                    soc_lo,
                    soc_hi,
                    v_lo_cut,
                    v_hi_cut,
                    v_hold,
                    i_taper,
                    follows_load,
                    load_a,
                    load_step_s,
                )
            elif follows_load[ph] and _to_next_load_step_s(phase_time_s[k], load_step_s) >= load_step_s - _TIME_TOL_S:
                # a new step of the load trace: its current from now on (a regenerative value
                # limited by the charger's voltage hold), the voltages under it, a limit it reaches
                _enter_phase(
                    k,
                    rows,
                    soc,
                    rc_v,
                    switches,
                    terminal_v,
                    current_a,
                    phase,
                    phase_time_s,
                    phase_current_a,
                    phase_end_code,
                    g_sh,
                    soc_lo,
                    soc_hi,
                    v_lo_cut,
                    v_hi_cut,
                    v_hold,
                    i_taper,
                    follows_load,
                    load_a,
                    load_step_s,
                )
            i_pack = i_end
        if current_a[k] != i_pack:  # the charger changed the current: voltages under the new one
            for i in range(n_cells):
                g = g_sh if switches[k, i] else 0.0
                terminal_v[k, i] = _terminal_voltage_v(
                    rows[i, 0], rc_v[k, i, 0], rc_v[k, i, 1], rows[i, 1], current_a[k], g
                )
        for i in range(n_cells):
            shunt_energy_wh[k, i] += out_energy_wh[k, i]
            out_cell_current_a[k, i] *= 3600.0 / dt_s
        if pack_ah > 0.0:
            discharged_ah[k] += pack_ah
        else:
            charged_ah[k] -= pack_ah
        out_pack_current_a[k] = pack_ah * 3600.0 / dt_s
        inside_limits[k] = _all_inside(k, soc, terminal_v, soc_lo, soc_hi, v_lo_win, v_hi_win)
        out_max_v[k] = max_v
        out_min_v[k] = min_v
        most_substeps = max(most_substeps, n_sub)
    return most_substeps


@numba.njit(cache=True, inline="always")
def _unsafe(k, soc, soc_min_safe, soc_max_safe):
    """Pack ``k``: a cell's SoC [-] outside [soc_min_safe, soc_max_safe] (a safety violation)."""
    for i in range(soc.shape[1]):  # noqa: SIM110 - a loop numba compiles, not any() over a generator
        if soc[k, i] < soc_min_safe or soc[k, i] > soc_max_safe:
            return True
    return False


@numba.njit(cache=True, inline="always")
def _discharge_final(k, phase, cycle, discharge_ahead, last_cycle):
    """Pack ``k``: in the profile's last cycle (index ``last_cycle``), with no phase from its present one
    on that can discharge it (``discharge_ahead`` per phase, plus the idle state after the last)."""
    return cycle[k] >= last_cycle and not discharge_ahead[phase[k]]


@numba.njit(cache=True)
def _unsafe_packs(soc, soc_min_safe, soc_max_safe):
    """:func:`_unsafe` of every pack: (packs,) bool. (Not one loop taking the test as an argument: numba
    cannot cache a function that takes another, and would compile it anew in every process.)"""
    return np.array([_unsafe(k, soc, soc_min_safe, soc_max_safe) for k in range(soc.shape[0])])


@numba.njit(cache=True)
def _discharge_final_packs(phase, cycle, discharge_ahead, last_cycle):
    """:func:`_discharge_final` of every pack: (packs,) bool."""
    return np.array([_discharge_final(k, phase, cycle, discharge_ahead, last_cycle) for k in range(phase.shape[0])])


@numba.njit(cache=True)
def _advance_open_while_discharging(
    running,
    value_ah,
    min_current_a,
    max_intervals,
    safe_soc,
    discharge_ahead,
    last_cycle,
    cycle,
    state,
    kernel_args,
    interval_settings,
):  # pragma: no cover  (compiled)
    """:meth:`PackSimulator.advance_open_while_discharging`: :func:`_advance_packs` with every shunt
    open, interval by interval, and the running packs' ends judged after each interval by the tests the
    Python read-outs use (:func:`_unsafe`, a cell outside ``safe_soc`` [-]; :func:`_discharge_final`).
    ``state``, ``kernel_args`` and ``interval_settings``: :func:`_advance_packs`' arguments in its order
    (:meth:`PackSimulator._state_arrays`, ...). Returns the intervals taken."""
    soc, phase, discharged_ah, current_a = state[0], state[8], state[11], state[5]
    n_packs, n_cells = soc.shape
    open_switches = np.zeros((n_packs, n_cells), dtype=np.bool_)
    out_cell_current_a = np.empty((n_packs, n_cells))
    out_pack_current_a = np.empty(n_packs)
    out_energy_wh = np.empty((n_packs, n_cells))
    out_max_v = np.empty(n_packs)
    out_min_v = np.empty(n_packs)
    for n in range(max_intervals):
        any_running = False
        for k in range(n_packs):
            if running[k]:
                any_running = True
                if not (current_a[k] > min_current_a and cycle[k] >= last_cycle):
                    return n  # the base controller decides this interval
        if not any_running:
            return n
        _advance_packs(
            open_switches,
            *state,
            *kernel_args,
            *interval_settings,
            out_cell_current_a,
            out_pack_current_a,
            out_energy_wh,
            out_max_v,
            out_min_v,
        )
        for k in range(n_packs):
            if running[k] and (
                _discharge_final(k, phase, cycle, discharge_ahead, last_cycle)
                or _unsafe(k, soc, safe_soc[0], safe_soc[1])
            ):
                value_ah[k] = discharged_ah[k]
                running[k] = False
    return max_intervals
