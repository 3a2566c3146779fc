"""Series Li-ion pack with switched shunt resistors: a second-order equivalent-circuit model.

One implementation for any number of packs: a single environment is a batch of one.

Per cell ``i`` (current > 0 discharges; ``s_i = 1`` when shunt ``i`` is closed)::

    V_t,i = (OCV(SoC_i) - V1_i - V2_i - R0_i * I_pack) / (1 + s_i * R0_i / R_sh)     terminal voltage [V]
    I_i   = I_pack + s_i * V_t,i / R_sh                                             cell current [A]
    dVk_i/dt  = -Vk_i / (Rk_i Ck_i) + I_i / Ck_i          k = 1, 2                  RC branches [V/s]
    dSoC_i/dt = -eta * I_i / (3600 * Q_nom * SoH_i)       eta = 1 discharging, 0.99 charging

The shunt sits across the cell terminals, so its current is part of the cell current everywhere:
through R0, both RC branches and the state of charge. OCV, R0, R1, C1, R2, C2 are linear
interpolations in SoC of their tables (held constant outside the tables' SoC range).

Each decision interval is integrated with exact zero-order-hold updates over sub-steps, the
parameters and the shunt current refreshed at every sub-step::

    Vk <- Vk * exp(-h / tau_k) + Rk * I_i * (1 - exp(-h / tau_k)),   tau_k = Rk * Ck

The load profile's phase logic runs inside the sub-step loop: a sub-step never crosses a phase's
maximum duration, and a phase that ends at a cell limit ends at the first sub-step that reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from bmsrl.profiles import LoadProfile

#: how close [s] a sub-step must come to a phase's end to count as reaching it (float rounding)
_TIME_TOL_S = 1e-9


@dataclass(frozen=True)
class PackParameters:
    """Electrical parameters and operating limits of the pack (docs/physics.md)."""

    n_cells: int = 5
    capacity_ah: float = 3.4  #: nominal cell capacity Q_nom [Ah] (Panasonic NCR18650B class)
    shunt_resistance_ohm: float = 6.0  #: bleed resistor R_sh [Ohm]
    charge_efficiency: float = 0.99  #: coulombic efficiency while charging [-]
    discharge_efficiency: float = 1.0  #: coulombic efficiency while discharging [-]
    soc_limits: tuple[float, float] = (0.1, 0.9)  #: SoC window [-]
    voltage_limits_v: tuple[float, float] = (2.5, 4.2)  #: terminal-voltage window [V]
    #: which limits end a phase: "soc" (the study's SoC window) or "soc_and_voltage"
    cutoff: str = "soc"
    #: the episode terminates when a cell leaves the SoC window by more than this [-]
    safety_margin_soc: float = 0.02

    def __post_init__(self) -> None:
        # The config's rules (schema section env, orderings): one source for the config and the env.
        from dataclasses import asdict

        from bmsrl.config import check_task_arguments

        check_task_arguments(env=asdict(self))


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
    def from_files(cls, ocv_table=None, ecm_table=None, *, soc_window=(0.1, 0.9),
                   allow_implausible: bool = False) -> "CellTables":
        """Tables from CSV files (``None``: the package's shipped tables), validated on the way in:
        the OCV table must cover ``soc_window`` (the pack's ``soc_limits``); values outside the
        plausible ranges of :mod:`bmsrl.tables` are refused unless ``allow_implausible``."""
        from bmsrl.tables import load_ecm_table, load_processed_ocv

        ocv_soc, ocv_v = load_processed_ocv(ocv_table, soc_window=soc_window, allow_implausible=allow_implausible)
        return cls(ocv_soc, ocv_v, load_ecm_table(ecm_table, allow_implausible=allow_implausible))

    def __call__(self, soc: np.ndarray) -> np.ndarray:
        """All six quantities at ``soc`` (any shape): array of shape ``soc.shape + (6,)``."""
        pos = np.minimum(np.maximum((soc - self._lo) * self._inv_step, 0.0), self._last)
        idx = pos.astype(np.intp)  # at the last grid point the slope row is 0
        row = self._table[idx]
        return row[..., :6] + (pos - idx)[..., None] * row[..., 6:]

    def ocv(self, soc: np.ndarray) -> np.ndarray:
        """Open-circuit voltage [V] at ``soc``."""
        return self(soc)[..., 0]


@dataclass
class PackState:
    """State of a batch of packs; per-cell arrays have shape ``(packs, cells)``."""

    soc: np.ndarray  #: state of charge [-]
    soh: np.ndarray  #: state of health (capacity / nominal capacity) [-]
    rc_v: np.ndarray  #: voltages over the RC branches [V], (packs, cells, 2): [..., 0] R1C1, [..., 1] R2C2
    switches: np.ndarray  #: shunt closed (bool)
    shunt_energy_wh: np.ndarray  #: energy dissipated in each shunt since reset [Wh]
    terminal_v: np.ndarray  #: terminal voltage at the end of the last update [V]
    phase: np.ndarray  #: index of the current load-profile phase, (packs,)
    phase_time_s: np.ndarray  #: time spent in the current phase [s], (packs,)
    time_s: np.ndarray  #: time since reset [s], (packs,)
    discharged_ah: np.ndarray  #: charge delivered by the pack since reset [Ah], (packs,)
    charged_ah: np.ndarray  #: charge accepted by the pack since reset [Ah], (packs,)

    @classmethod
    def zeros(cls, n_packs: int, n_cells: int) -> "PackState":
        cells = lambda: np.zeros((n_packs, n_cells))  # noqa: E731
        packs = lambda: np.zeros(n_packs)  # noqa: E731
        return cls(
            soc=cells(), soh=np.ones((n_packs, n_cells)), rc_v=np.zeros((n_packs, n_cells, 2)),
            switches=np.zeros((n_packs, n_cells), dtype=bool), shunt_energy_wh=cells(),
            terminal_v=cells(), phase=np.zeros(n_packs, dtype=np.intp), phase_time_s=packs(),
            time_s=packs(), discharged_ah=packs(), charged_ah=packs(),
        )


@dataclass
class IntervalResult:
    """What one decision interval did, per pack (shapes ``(packs, cells)`` or ``(packs,)``)."""

    cell_current_a: np.ndarray  #: mean cell current over the interval [A]
    pack_current_a: np.ndarray  #: mean pack current over the interval [A]
    shunt_energy_wh: np.ndarray  #: energy dissipated in each shunt during the interval [Wh]
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
        self._g_sh = 1.0 / params.shunt_resistance_ohm  # shunt conductance [S]
        # per phase (plus the idle state after the last one): which limit ends it, as a bit code
        self._end_code = (profile.ends_at_lower * 1 + profile.ends_at_upper * 2).astype(np.int64)

    # ------------------------------------------------------------------ state
    def reset_packs(self, packs: np.ndarray, soc: np.ndarray, soh: np.ndarray) -> None:
        """Start ``packs`` (index array) afresh: given SoC and SoH, RC branches relaxed, shunts open."""
        s = self.state
        s.soc[packs] = soc
        s.soh[packs] = soh
        for arr in (s.rc_v, s.shunt_energy_wh, s.phase_time_s, s.time_s, s.discharged_ah, s.charged_ah):
            arr[packs] = 0.0
        s.switches[packs] = False
        s.phase[packs] = 0
        s.terminal_v[packs] = self.terminal_voltage(
            self.tables(s.soc[packs]), s.rc_v[packs], self.profile.current_a[s.phase[packs]][:, None], 0.0
        )
        # a profile may start at a limit already (e.g. charging a full pack): skip such phases
        for _ in range(self.profile.n_phases):
            lower, upper = self.limits_reached(s.soc[packs], s.terminal_v[packs])
            ended = (self._end_code[s.phase[packs]] & (lower * 1 + upper * 2)) != 0
            if not ended.any():
                break
            s.phase[packs] += ended

    # ---------------------------------------------------------------- physics
    @staticmethod
    def terminal_voltage(p, rc_v, pack_current_a, shunt_g_s):
        """Terminal voltage [V] from table values ``p`` (..., 6), RC voltages (..., 2) [V],
        pack current [A] and shunt conductance [S] (0 when open)."""
        ocv_v, r0_ohm = p[..., 0], p[..., 1]
        return (ocv_v - rc_v[..., 0] - rc_v[..., 1] - r0_ohm * pack_current_a) / (1.0 + shunt_g_s * r0_ohm)

    def limits_reached(self, soc, terminal_v) -> tuple[np.ndarray, np.ndarray]:
        """Per pack: has any cell reached the lower limit, the upper limit (per ``params.cutoff``)?"""
        soc_lo, soc_hi = self.params.soc_limits
        lower = soc.min(axis=-1) <= soc_lo
        upper = soc.max(axis=-1) >= soc_hi
        if self.params.cutoff == "soc_and_voltage":
            v_lo, v_hi = self.params.voltage_limits_v
            lower |= terminal_v.min(axis=-1) <= v_lo
            upper |= terminal_v.max(axis=-1) >= v_hi
        return lower, upper

    def advance(self, switches: np.ndarray) -> IntervalResult:
        """Integrate every pack over one decision interval with shunts ``switches`` (packs, cells)."""
        s, prof, par = self.state, self.profile, self.params
        s.switches[...] = switches
        cell_current_a = np.empty_like(s.soc)
        pack_current_a = np.empty(self.n_packs)
        energy_wh = np.empty_like(s.soc)
        v_lo, v_hi = par.voltage_limits_v if par.cutoff == "soc_and_voltage" else (-np.inf, np.inf)
        n_sub = _advance_packs(
            s.soc, s.soh, s.rc_v, s.switches, s.terminal_v, s.shunt_energy_wh,
            s.phase, s.phase_time_s, s.time_s, s.discharged_ah, s.charged_ah,
            self.tables._table, self.tables._lo, self.tables._inv_step, self.tables._last,
            prof.current_a, prof.max_duration_s, self._end_code,
            self.decision_interval_s, self.substeps, self._g_sh, par.capacity_ah,
            par.discharge_efficiency, par.charge_efficiency,
            par.soc_limits[0], par.soc_limits[1], v_lo, v_hi,
            cell_current_a, pack_current_a, energy_wh,
        )  # fmt: skip
        return IntervalResult(cell_current_a, pack_current_a, energy_wh, n_sub)

    # ------------------------------------------------------------- read-outs
    @property
    def episode_over(self) -> np.ndarray:
        """Per pack: has the last phase of the profile ended?"""
        return self.state.phase >= self.profile.n_phases

    def safety_violation(self) -> np.ndarray:
        """Per pack: a cell outside the SoC window by more than ``safety_margin_soc``."""
        lo, hi = self.params.soc_limits
        m = self.params.safety_margin_soc
        soc = self.state.soc
        return ((soc < lo - m) | (soc > hi + m)).any(axis=-1)

    def within_limits(self) -> np.ndarray:
        """Per pack: all cells inside the limits that end phases (SoC window, and voltage if used)."""
        lo, hi = self.params.soc_limits
        ok = ((self.state.soc >= lo) & (self.state.soc <= hi)).all(axis=-1)
        if self.params.cutoff == "soc_and_voltage":
            v_lo, v_hi = self.params.voltage_limits_v
            v = self.state.terminal_v
            ok &= ((v >= v_lo) & (v <= v_hi)).all(axis=-1)
        return ok

    def pack_current_now_a(self) -> np.ndarray:
        """The pack current [A] the current phase draws (the current of the next interval), (packs,)."""
        return self.profile.current_a[self.state.phase]


# --------------------------------------------------------------------------- the integrator
# One compiled loop over packs, sub-steps and cells: the same code steps one pack or a thousand.
# (Per-element numpy calls cost ~1-3 us each whatever the array size, which would make a single
# environment 10x slower than its physics; compiled, one 30 s interval of one pack takes ~1 us.)


@numba.njit(cache=True, inline="always")
def _lookup(table, lo, inv_step, last, soc):
    """Row of the uniform SoC table at ``soc``: (ocv_v, r0_ohm, r1_ohm, r2_ohm, c1_f, c2_f)."""
    pos = min(max((soc - lo) * inv_step, 0.0), last)
    i = int(pos)
    f = pos - i
    row = table[i]
    return (
        row[0] + f * row[6], row[1] + f * row[7], row[2] + f * row[8],
        row[3] + f * row[9], row[4] + f * row[10], row[5] + f * row[11],
    )  # fmt: skip


@numba.njit(cache=True)
def _advance_packs(
    soc, soh, rc_v, switches, terminal_v, shunt_energy_wh,
    phase, phase_time_s, time_s, discharged_ah, charged_ah,
    table, lo, inv_step, last,
    phase_current_a, phase_max_s, phase_end_code,
    dt_s, substeps, g_sh, capacity_ah, eta_discharge, eta_charge,
    soc_lo, soc_hi, v_lo, v_hi,
    out_cell_current_a, out_pack_current_a, out_energy_wh,
):  # fmt: skip
    """Advance every pack by ``dt_s`` in place; write interval means and energies to ``out_*``.

    Returns the largest number of sub-steps any pack took (phase ends split sub-steps).
    """
    n_packs, n_cells = soc.shape
    h_nominal = dt_s / substeps
    most_substeps = 0
    for k in range(n_packs):
        remaining = dt_s
        pack_ah = 0.0
        n_sub = 0
        for i in range(n_cells):
            out_cell_current_a[k, i] = 0.0
            out_energy_wh[k, i] = 0.0
        while remaining > _TIME_TOL_S:
            ph = phase[k]
            # never step past the interval's end or the phase's maximum duration
            h = min(h_nominal, remaining, phase_max_s[ph] - phase_time_s[k])
            i_pack = phase_current_a[ph]
            lower = False
            upper = False
            for i in range(n_cells):
                g = g_sh if switches[k, i] else 0.0  # shunt conductance [S]
                ocv, r0, r1, r2, c1, c2 = _lookup(table, lo, inv_step, last, soc[k, i])
                v1 = rc_v[k, i, 0]
                v2 = rc_v[k, i, 1]
                v_t = (ocv - v1 - v2 - r0 * i_pack) / (1.0 + g * r0)
                i_cell = i_pack + g * v_t  # the shunt current flows through R0 and both RC branches
                d1 = np.exp(-h / (r1 * c1))
                d2 = np.exp(-h / (r2 * c2))
                v1 = v1 * d1 + r1 * i_cell * (1.0 - d1)  # exact zero-order hold
                v2 = v2 * d2 + r2 * i_cell * (1.0 - d2)
                rc_v[k, i, 0] = v1
                rc_v[k, i, 1] = v2
                dq_ah = i_cell * h / 3600.0
                eta = eta_discharge if i_cell > 0.0 else eta_charge
                x = soc[k, i] - eta * dq_ah / (capacity_ah * soh[k, i])
                soc[k, i] = x
                ocv, r0, r1, r2, c1, c2 = _lookup(table, lo, inv_step, last, x)
                v_end = (ocv - v1 - v2 - r0 * i_pack) / (1.0 + g * r0)
                terminal_v[k, i] = v_end
                out_cell_current_a[k, i] += dq_ah
                out_energy_wh[k, i] += g * 0.5 * (v_t * v_t + v_end * v_end) * h / 3600.0  # trapezoid
                lower = lower or x <= soc_lo or v_end <= v_lo
                upper = upper or x >= soc_hi or v_end >= v_hi
            n_sub += 1
            pack_ah += i_pack * h / 3600.0
            remaining -= h
            time_s[k] += h
            phase_time_s[k] += h
            code = phase_end_code[ph]
            if (
                (code & 1 and lower)
                or (code & 2 and upper)
                or phase_time_s[k] >= phase_max_s[ph] - _TIME_TOL_S
            ):
                phase[k] = ph + 1
                phase_time_s[k] = 0.0
                i_next = phase_current_a[ph + 1]
                for i in range(n_cells):  # terminal voltage under the next phase's current
                    g = g_sh if switches[k, i] else 0.0
                    ocv, r0, r1, r2, c1, c2 = _lookup(table, lo, inv_step, last, soc[k, i])
                    terminal_v[k, i] = (ocv - rc_v[k, i, 0] - rc_v[k, i, 1] - r0 * i_next) / (1.0 + g * r0)
        for i in range(n_cells):
            shunt_energy_wh[k, i] += out_energy_wh[k, i]
            out_cell_current_a[k, i] *= 3600.0 / dt_s
        if pack_ah > 0.0:
            discharged_ah[k] += pack_ah
        else:
            charged_ah[k] -= pack_ah
        out_pack_current_a[k] = pack_ah * 3600.0 / dt_s
        most_substeps = max(most_substeps, n_sub)
    return most_substeps
