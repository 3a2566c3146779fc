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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmsrl.errors import UserError
from bmsrl.tables import check_plausible, check_strictly_increasing, read_numeric_csv

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


@dataclass(frozen=True)
class LoadProfile:
    """A named sequence of phases, stored as arrays so a batch of packs can index them."""

    name: str
    phases: tuple[Phase, ...]

    def __post_init__(self) -> None:
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


def discharge_rest_charge(current_a: float = I_MAX_A, capacity_ah: float = CAPACITY_AH) -> LoadProfile:
    """Training profile: discharge at ``current_a`` [A] to the lower limit, rest 100 s, charge to the
    upper limit (CC, or CC-CV to the taper); caps from :func:`safety_caps_s`."""
    discharge_cap_s, charge_cap_s = safety_caps_s(current_a, capacity_ah)
    return LoadProfile(
        "discharge-rest-charge",
        (
            Phase("discharge", current_a, discharge_cap_s, "lower"),
            Phase("rest", 0.0, REST_S, None),
            Phase("charge", -current_a, charge_cap_s, "upper"),
        ),
    )


def charge_rest_discharge(current_a: float = I_MAX_A, capacity_ah: float = CAPACITY_AH) -> LoadProfile:
    """Test profile: charge at ``current_a`` [A] to the upper limit (CC, or CC-CV to the taper), rest
    100 s, discharge to the lower limit; caps from :func:`safety_caps_s`."""
    discharge_cap_s, charge_cap_s = safety_caps_s(current_a, capacity_ah)
    return LoadProfile(
        "charge-rest-discharge",
        (
            Phase("charge", -current_a, charge_cap_s, "upper"),
            Phase("rest", 0.0, REST_S, None),
            Phase("discharge", current_a, discharge_cap_s, "lower"),
        ),
    )


PROFILES = {
    "discharge-rest-charge": discharge_rest_charge,
    "charge-rest-discharge": charge_rest_discharge,
}


def get_profile(name: str | LoadProfile, current_a: float = I_MAX_A, capacity_ah: float = CAPACITY_AH) -> LoadProfile:
    """The profile called ``name`` at ``current_a`` [A] for cells of ``capacity_ah`` [Ah] (or ``name``
    itself if it already is a :class:`LoadProfile`)."""
    if isinstance(name, LoadProfile):
        return name
    try:
        factory = PROFILES[name]
    except KeyError:
        raise UserError(f"unknown load profile {name!r}; choose one of {sorted(PROFILES)}") from None
    return factory(current_a, capacity_ah)


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
