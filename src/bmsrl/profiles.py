"""Load profiles: sequences of constant-current phases that end at a cell limit or a maximum duration.

Sign convention: pack current > 0 discharges the pack, < 0 charges it.

A phase ends as a real battery-management system ends it: when the first cell reaches the limit the
phase drives towards (``until="lower"`` for discharging, ``"upper"`` for charging), or when the phase
has lasted ``max_duration_s``. A rest phase (``until=None``) lasts exactly ``max_duration_s``. The
episode ends (truncated) when the last phase has ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bmsrl.errors import UserError

#: maximum pack current [A], about 0.7 C for a 3.4 Ah cell; the observation divides by it
I_MAX_A = 2.35


@dataclass(frozen=True)
class Phase:
    """One constant-current phase of a load profile."""

    name: str
    current_a: float  #: pack current [A], > 0 discharging
    max_duration_s: float  #: the phase ends after this long at the latest [s]
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
        # Arrays with one extra entry: index len(phases) is the idle state after the last phase.
        object.__setattr__(self, "current_a", np.array([p.current_a for p in self.phases] + [0.0]))
        object.__setattr__(
            self, "max_duration_s", np.array([p.max_duration_s for p in self.phases] + [np.inf])
        )
        object.__setattr__(self, "ends_at_lower", np.array([p.until == "lower" for p in self.phases] + [False]))
        object.__setattr__(self, "ends_at_upper", np.array([p.until == "upper" for p in self.phases] + [False]))

    @property
    def n_phases(self) -> int:
        return len(self.phases)

    def phase_name(self, index: int) -> str:
        return self.phases[index].name if index < self.n_phases else "done"


def discharge_rest_charge(current_a: float = I_MAX_A) -> LoadProfile:
    """Training profile: discharge to the lower limit (<= 1900 s), rest 100 s, charge to the upper limit (<= 4200 s)."""
    return LoadProfile(
        "discharge-rest-charge",
        (
            Phase("discharge", current_a, 1900.0, "lower"),
            Phase("rest", 0.0, 100.0, None),
            Phase("charge", -current_a, 4200.0, "upper"),
        ),
    )


def charge_rest_discharge(current_a: float = I_MAX_A) -> LoadProfile:
    """Test profile: charge to the upper limit (<= 2300 s), rest 100 s, discharge to the lower limit (<= 4200 s)."""
    return LoadProfile(
        "charge-rest-discharge",
        (
            Phase("charge", -current_a, 2300.0, "upper"),
            Phase("rest", 0.0, 100.0, None),
            Phase("discharge", current_a, 4200.0, "lower"),
        ),
    )


PROFILES = {
    "discharge-rest-charge": discharge_rest_charge,
    "charge-rest-discharge": charge_rest_discharge,
}


def get_profile(name: str | LoadProfile, current_a: float = I_MAX_A) -> LoadProfile:
    """The profile called ``name`` (or ``name`` itself if it already is a :class:`LoadProfile`)."""
    if isinstance(name, LoadProfile):
        return name
    try:
        return PROFILES[name](current_a)
    except KeyError:
        raise UserError(f"unknown load profile {name!r}; choose one of {sorted(PROFILES)}") from None
