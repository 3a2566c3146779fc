"""Load profiles: sequences of phases that end at a cell limit, or at a safety cap on their duration.

Sign convention: pack current > 0 discharges the pack, < 0 charges it.

A phase ends as a real battery-management system ends it: when the first cell reaches the limit the
phase drives towards (``until="lower"`` for discharging, ``"upper"`` for charging; which limits count
is :attr:`bmsrl.pack.PackParameters.cutoff`), when a constant-current constant-voltage charge has
tapered (:attr:`bmsrl.pack.PackParameters.charging`), or at the latest when the phase has lasted
``max_duration_s``. A rest phase (``until=None``) lasts exactly ``max_duration_s``. The episode ends
(truncated) when the last phase has ended. See docs/physics.md.

The maximum durations of the charge and discharge phases are safety caps, derived from the capacity
and the current so that a cut-off or the taper ends every phase first (tests/test_physics.py checks
this at 0.3, 0.5, 0.7 and 1 C for both profiles and baselines)::

    discharge:  DISCHARGE_CAP_FACTOR * 3600 * Q_nom / |I|                    [s]
    charge:     (CHARGE_CAP_FACTOR + CV_CAP_FACTOR) * 3600 * Q_nom / |I|      [s]

The time to move the whole nominal capacity at the phase current is ``3600 Q_nom / |I|``; 1.5 times
that covers a discharge across any SoC window at a state of health up to 1.5. A charge gets one more
``3600 Q_nom / |I|`` for the constant-voltage stage, which does not shorten as 1/|I| (measured from
SoC 0: 2300-2500 s at 0.3 C, 4400-4800 s at 1 C, where it starts at a lower SoC): a full CC-CV charge
of identical cells from SoC 0 to the C/20 taper takes 1.04-1.15 of ``3600 Q_nom / |I|`` at 0.3 C and
1.73-1.91 at 1 C (SoH 0.95-1.05, measured with the shipped tables), inside the 2.5 of the cap; from
about 1.5 C on, the cap would end such a charge before the taper (docs/physics.md).

Time-varying discharge (``env.discharge``, :data:`DISCHARGES`): instead of the constant current, the
discharge phase follows a load trace, a current [A] per time step [s] held over each step (the
simulator never lets a sub-step cross a step, so its exact zero-order-hold integration holds each
value) and repeated from its start until the phase ends at its limit, as a constant-current
discharge does. ``drive_cycle`` is a standard cycle from a table (:func:`bmsrl.tables.load_drive_cycle`,
shipped: US06), ``stochastic`` a seeded synthetic load (:func:`stochastic_load_a`). Either is
scaled to the pack by one factor so that its peak discharge current is ``peak_c_rate x capacity_ah``
[A]; negative values are regenerative braking, which charges the pack inside the discharge phase
(the CC-CV charger's voltage hold limits it like any charge). The phase's safety cap uses the trace's
mean current. (The charge stays at constant current: a charger, not a drive.)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmsrl.errors import UserError
from bmsrl.tables import check_plausible, check_strictly_increasing, load_drive_cycle, read_numeric_csv

#: maximum pack current [A], about 0.7 C for a 3.4 Ah cell; the observation divides by it
#: (the default of :class:`bmsrl.env.TaskParameters` ``i_max_a``, hence of the config's env.i_max_a)
I_MAX_A = 2.35
#: nominal cell capacity [Ah] the safety caps assume unless given one (the default of
#: :class:`bmsrl.pack.PackParameters` ``capacity_ah``, hence of the config's env.capacity_ah)
CAPACITY_AH = 3.4
#: safety caps, in units of the time to move the nominal capacity at the phase current (above)
DISCHARGE_CAP_FACTOR = 1.5
CHARGE_CAP_FACTOR = 1.5
CV_CAP_FACTOR = 1.0
#: duration of the rest between the two current phases [s]
REST_S = 100.0


@dataclass(frozen=True)
class Phase:
    """One constant-current phase of a load profile."""

    name: str
    current_a: float  #: pack current [A], > 0 discharging (a charge's constant-current stage)
    max_duration_s: float  #: the phase ends after this long at the latest (safety cap) [s]
    until: str | None  #: "lower", "upper" or None: the cell limit that ends the phase early
    #: the phase's current follows the profile's load trace (``LoadProfile.load_a``); ``current_a``
    #: is then the trace's mean [A]
    follows_load: bool = False


@dataclass(frozen=True)
class DischargeLoad:
    """A time-varying discharge current: ``current_a`` [A] (> 0 discharging) per step of ``step_s``
    [s], each held over its step, repeated from the start; ``source`` says where it came from."""

    source: str
    current_a: np.ndarray
    step_s: float

    @property
    def mean_a(self) -> float:
        """Mean current [A] over one repetition."""
        return float(np.mean(self.current_a))


@dataclass(frozen=True)
class LoadProfile:
    """A named sequence of phases, stored as arrays so a batch of packs can index them.

    ``load``: the trace the phases marked ``follows_load`` follow (None: every phase is constant).
    ``cycles``: how often the episode runs the phases (``env.cycles``); each further cycle starts at
    the first decision after the previous one ended, from the state it left (:class:`bmsrl.pack.PackSimulator`)."""

    name: str
    phases: tuple[Phase, ...]
    load: DischargeLoad | None = None
    cycles: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.cycles, bool) or not isinstance(self.cycles, (int, np.integer)) or self.cycles < 1:
            raise ValueError(f"profile {self.name!r}: cycles must be an integer >= 1, got {self.cycles!r}")
        if any(p.follows_load for p in self.phases) and self.load is None:
            raise ValueError(f"profile {self.name!r}: a phase follows the load trace, but there is none")
        for phase in self.phases:
            if phase.until not in (None, "lower", "upper"):
                raise ValueError(f"phase {phase.name!r}: until must be 'lower', 'upper' or None")
            if phase.max_duration_s <= 0:
                raise ValueError(f"phase {phase.name!r}: max_duration_s must be positive")
            if (phase.until == "lower" and phase.current_a <= 0) or (phase.until == "upper" and phase.current_a >= 0):
                raise ValueError(
                    f"phase {phase.name!r}: until={phase.until!r} needs a "
                    f"{'discharge (current > 0)' if phase.until == 'lower' else 'charge (current < 0)'}"
                )
        # Arrays with one extra entry: index len(phases) is the idle state after the last phase.
        object.__setattr__(self, "current_a", np.array([p.current_a for p in self.phases] + [0.0]))
        object.__setattr__(self, "max_duration_s", np.array([p.max_duration_s for p in self.phases] + [np.inf]))
        object.__setattr__(self, "ends_at_lower", np.array([p.until == "lower" for p in self.phases] + [False]))
        object.__setattr__(self, "ends_at_upper", np.array([p.until == "upper" for p in self.phases] + [False]))
        object.__setattr__(self, "follows_load", np.array([p.follows_load for p in self.phases] + [False]))
        # can the phase's pack current be a discharge (> 0)? A constant current > 0, or a load trace with
        # a value > 0; a rest or a charge cannot (the CC-CV charger never discharges: bmsrl.pack)
        load_discharges = self.load is not None and bool(np.any(np.asarray(self.load.current_a) > 0.0))
        object.__setattr__(self, "discharges", (self.current_a > 0.0) | (self.follows_load & load_discharges))

    @property
    def load_a(self) -> np.ndarray:
        """The load trace [A] the simulator indexes (one zero when there is none)."""
        return np.zeros(1) if self.load is None else np.ascontiguousarray(self.load.current_a, dtype=np.float64)

    @property
    def load_step_s(self) -> float:
        """The load trace's time step [s] (1 when there is none)."""
        return 1.0 if self.load is None else float(self.load.step_s)

    @property
    def n_phases(self) -> int:
        return len(self.phases)

    def phase_name(self, index: int) -> str:
        return self.phases[index].name if index < self.n_phases else "done"


def safety_caps_s(current_a: float, capacity_ah: float = CAPACITY_AH) -> tuple[float, float]:
    """(discharge cap, charge cap) [s] at pack current magnitude ``current_a`` [A] for cells of
    nominal capacity ``capacity_ah`` [Ah] (module docstring)."""
    if not current_a > 0 or not capacity_ah > 0:
        raise ValueError(f"current_a and capacity_ah must be positive, got {current_a}, {capacity_ah}")
    full_s = 3600.0 * capacity_ah / current_a  # time to move the nominal capacity [s]
    return DISCHARGE_CAP_FACTOR * full_s, (CHARGE_CAP_FACTOR + CV_CAP_FACTOR) * full_s


def _discharge_phase(current_a: float, capacity_ah: float, load: DischargeLoad | None) -> Phase:
    """The discharge phase: at constant ``current_a`` [A], or following ``load`` (cap from its mean)."""
    if load is None:
        return Phase("discharge", current_a, safety_caps_s(current_a, capacity_ah)[0], "lower")
    return Phase("discharge", load.mean_a, safety_caps_s(load.mean_a, capacity_ah)[0], "lower", follows_load=True)


def discharge_rest_charge(
    current_a: float = I_MAX_A, capacity_ah: float = CAPACITY_AH, load: DischargeLoad | None = None
) -> LoadProfile:
    """Training profile: discharge at ``current_a`` [A] (or following ``load``) to the lower limit,
    rest 100 s, charge at ``current_a`` to the upper limit (CC, or CC-CV to the taper); caps from
    :func:`safety_caps_s`."""
    charge_cap_s = safety_caps_s(current_a, capacity_ah)[1]
    return LoadProfile(
        "discharge-rest-charge",
        (
            _discharge_phase(current_a, capacity_ah, load),
            Phase("rest", 0.0, REST_S, None),
            Phase("charge", -current_a, charge_cap_s, "upper"),
        ),
        load,
    )


def charge_rest_discharge(
    current_a: float = I_MAX_A, capacity_ah: float = CAPACITY_AH, load: DischargeLoad | None = None
) -> LoadProfile:
    """Test profile: charge at ``current_a`` [A] to the upper limit (CC, or CC-CV to the taper), rest
    100 s, discharge at ``current_a`` (or following ``load``) to the lower limit; caps from
    :func:`safety_caps_s`."""
    charge_cap_s = safety_caps_s(current_a, capacity_ah)[1]
    return LoadProfile(
        "charge-rest-discharge",
        (
            Phase("charge", -current_a, charge_cap_s, "upper"),
            Phase("rest", 0.0, REST_S, None),
            _discharge_phase(current_a, capacity_ah, load),
        ),
        load,
    )


PROFILES = {
    "discharge-rest-charge": discharge_rest_charge,
    "charge-rest-discharge": charge_rest_discharge,
}


def get_profile(
    name: str | LoadProfile,
    current_a: float = I_MAX_A,
    capacity_ah: float = CAPACITY_AH,
    load: DischargeLoad | None = None,
    cycles: int = 1,
) -> LoadProfile:
    """The profile called ``name`` at ``current_a`` [A] for cells of ``capacity_ah`` [Ah], its
    discharge following ``load`` if given, run ``cycles`` times (or ``name`` itself if it already is
    a :class:`LoadProfile`)."""
    if isinstance(name, LoadProfile):
        return name
    try:
        factory = PROFILES[name]
    except KeyError:
        raise UserError(f"unknown load profile {name!r}; choose one of {sorted(PROFILES)}") from None
    profile = factory(current_a, capacity_ah, load)
    return profile if cycles == 1 else dataclasses.replace(profile, cycles=cycles)


# ------------------------------------------------------------------ time-varying discharge loads
#: the stochastic load: an AR(1) process on a 1 s step whose relative standard deviation (std /
#: mean) and correlation time [s] are those of the shipped US06 trace (2.2 and about 3 s: its
#: lag-1 s autocorrelation is 0.71; numpy's std / mean and corrcoef of data/drive_cycle_us06.csv's
#: current_a), one hour long, then repeated
STOCHASTIC_STEP_S = 1.0
STOCHASTIC_RELATIVE_STD = 2.2
STOCHASTIC_CORRELATION_S = 3.0
STOCHASTIC_DURATION_S = 3600.0


def scaled_to_peak(current_a: np.ndarray, peak_c_rate: float, capacity_ah: float) -> np.ndarray:
    """``current_a`` [A] times the one factor that makes its peak discharge current ``peak_c_rate``
    [1/h] x ``capacity_ah`` [Ah] (the documented scaling of every time-varying load)."""
    if not peak_c_rate > 0 or not capacity_ah > 0:
        raise ValueError(f"peak_c_rate and capacity_ah must be positive, got {peak_c_rate}, {capacity_ah}")
    peak_a = float(np.max(current_a))
    if not peak_a > 0:
        raise ValueError("a load trace needs a positive (discharging) peak")
    return np.asarray(current_a, dtype=np.float64) * (peak_c_rate * capacity_ah / peak_a)


def stochastic_load_a(seed: int) -> np.ndarray:
    """The unscaled stochastic load [A, arbitrary scale], seeded: an AR(1) process of mean 1 on a
    :data:`STOCHASTIC_STEP_S` step, ``x[t+1] = 1 + phi (x[t] - 1) + sd sqrt(1 - phi^2) e[t]``,
    ``phi = exp(-step / STOCHASTIC_CORRELATION_S)``, ``sd = STOCHASTIC_RELATIVE_STD``, ``x[0] = 1``;
    negative values are regenerative braking, as in a drive cycle. Its sample mean is then shifted
    to exactly 1, so that every seed discharges at the same mean rate."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n = int(round(STOCHASTIC_DURATION_S / STOCHASTIC_STEP_S))
    phi = float(np.exp(-STOCHASTIC_STEP_S / STOCHASTIC_CORRELATION_S))
    shocks = STOCHASTIC_RELATIVE_STD * np.sqrt(1.0 - phi * phi) * rng.standard_normal(n)
    x = np.empty(n)
    x[0] = 1.0
    for t in range(1, n):
        x[t] = 1.0 + phi * (x[t - 1] - 1.0) + shocks[t]
    return x - x.mean() + 1.0


def _constant(**_) -> None:
    return None


def _drive_cycle(*, drive_cycle: str, peak_c_rate: float, capacity_ah: float, seed: int) -> DischargeLoad:
    current_a, step_s = load_drive_cycle(drive_cycle)
    return DischargeLoad(f"drive cycle {drive_cycle}", scaled_to_peak(current_a, peak_c_rate, capacity_ah), step_s)


def _stochastic(*, drive_cycle: str, peak_c_rate: float, capacity_ah: float, seed: int) -> DischargeLoad:
    raw = stochastic_load_a(seed)
    return DischargeLoad(
        f"stochastic load, seed {seed}", scaled_to_peak(raw, peak_c_rate, capacity_ah), STOCHASTIC_STEP_S
    )


#: ``env.discharge``: how the discharge phase draws its current (module docstring)
DISCHARGES = {"constant": _constant, "drive_cycle": _drive_cycle, "stochastic": _stochastic}


def make_discharge_load(
    discharge: str, *, drive_cycle: str, peak_c_rate: float, capacity_ah: float, seed: int
) -> DischargeLoad | None:
    """The discharge load of ``env.discharge`` (None: constant current): ``drive_cycle`` names a
    shipped cycle or a CSV, scaled to a peak of ``peak_c_rate x capacity_ah`` [A]; ``seed`` seeds
    the stochastic load."""
    try:
        factory = DISCHARGES[discharge]
    except KeyError:
        raise UserError(f"unknown discharge {discharge!r}; choose one of {sorted(DISCHARGES)}") from None
    return factory(drive_cycle=drive_cycle, peak_c_rate=peak_c_rate, capacity_ah=capacity_ah, seed=seed)


# --------------------------------------------------------------------------------------------
# A user's own load profile

#: columns of a load-profile CSV: time [s] from 0, and the pack current [A] from that row's time to the next
#: row's (> 0 discharges); the last row's time ends the profile (its current is not applied)
LOAD_PROFILE_COLUMNS: tuple[str, ...] = ("time_s", "current_a")
#: a plausible pack current of a series string: at most this many C of the cells' nominal capacity [1/h];
#: beyond it the table is most likely in mA (or not a current at all)
PLAUSIBLE_C_RATE = 5.0
_LOAD_PROFILE = "load profile"


def read_load_profile(
    path: str | os.PathLike, capacity_ah: float = CAPACITY_AH, *, allow_implausible: bool = False
) -> LoadProfile:
    """A load profile from a CSV of pack current against time, validated as the OCV table is.

    Columns :data:`LOAD_PROFILE_COLUMNS`: ``time_s`` [s], starting at 0 and strictly increasing, and
    ``current_a`` [A] (> 0 discharges, < 0 charges, 0 rests), held from its row's time to the next
    row's; the last row's time ends the profile. Each row becomes a phase of that duration, named
    ``discharge``/``charge``/``rest`` by its sign; a discharge phase also ends early when the first cell
    reaches the lower limit and a charge when one reaches the upper limit (the cut-offs of
    :attr:`bmsrl.pack.PackParameters.cutoff`, as in the built-in profiles), the next phase then starts.
    The profile's name is the file's stem.

    Raises :class:`UserError` with one line naming the file and the line or column: the defects of
    :func:`bmsrl.tables.read_table`, fewer than two rows, a first time other than 0, times not strictly
    increasing, and (unless ``allow_implausible``) a current beyond :data:`PLAUSIBLE_C_RATE` C of
    ``capacity_ah`` [Ah] (a table in mA).
    """
    path = Path(path)
    frame = read_numeric_csv(path, LOAD_PROFILE_COLUMNS, kind=_LOAD_PROFILE)
    if len(frame) < 2:
        raise UserError(
            f"{_LOAD_PROFILE} {path}: needs at least 2 rows (the last row's time_s ends the profile), found {len(frame)}"
        )
    if frame["time_s"].iloc[0] != 0.0:
        raise UserError(
            f"{_LOAD_PROFILE} {path}, line {frame.index[0]}, column 'time_s': the profile starts at time_s 0, "
            f"not {frame['time_s'].iloc[0]:g}"
        )
    check_strictly_increasing(frame, "time_s", along="time_s", kind=_LOAD_PROFILE, path=path)
    if not allow_implausible:
        limit_a = PLAUSIBLE_C_RATE * capacity_ah
        check_plausible(frame.iloc[:-1], "current_a", (-limit_a, limit_a, "A"), kind=_LOAD_PROFILE, path=path)
    times, currents = frame["time_s"].to_numpy(), frame["current_a"].to_numpy()
    phases = []
    for start_s, end_s, current_a in zip(times[:-1], times[1:], currents[:-1]):
        kind = "discharge" if current_a > 0 else "charge" if current_a < 0 else "rest"
        until = "lower" if current_a > 0 else "upper" if current_a < 0 else None
        phases.append(Phase(kind, float(current_a), float(end_s - start_s), until))
    return LoadProfile(path.stem, tuple(phases))
