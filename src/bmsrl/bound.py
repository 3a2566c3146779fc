"""The recoverable-capacity bound: the most charge any passive balancing policy could let the pack
deliver, from a given initial pack, on a given load profile (derivation: docs/bound.md).

Passive balancing only removes charge from a cell. A series pack carries one current, and a phase
ends when its first cell reaches a limit. So cell ``i`` can never deliver more than it would on its
own, with its shunt open: charged as far as its own limits and the charger let it, then discharged
until its own limit. The pack delivers no more than its weakest such cell::

    C_bound = min_i  C_alone,i

``C_alone,i`` is computed with the pack simulator itself (:class:`bmsrl.pack.PackSimulator`): cell
``i`` alone is a pack of ``n`` identical copies of cell ``i`` (same SoC, SoH, hence the same
current, voltage and limits in every cell), all shunts open, run through the same profile with the
same cut-offs, charger and integration. For a pack of identical cells the bound equals the
capacity of ``no_balancing``; ``tests/test_bound.py`` checks both that and that no policy (the
baselines, random and searched switch schedules) exceeds the bound.

The derivation needs every charge that precedes a discharge to end at a cell's SoC limit (or its
safety cap). Where a charge can end otherwise, :func:`validity` says why, and no share is reported
(docs/bound.md, "Domain of validity").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bmsrl.pack import CellTables, PackParameters, PackSimulator
from bmsrl.profiles import LoadProfile

#: the most decision intervals an episode may take before the bound calculation gives up
_MAX_INTERVALS = 100_000


class PackSetup(NamedTuple):
    """What a pack's trajectory depends on besides its initial state and the switches."""

    params: PackParameters
    tables: CellTables
    profile: LoadProfile
    decision_interval_s: float  #: [s]
    substeps: int

    @classmethod
    def of(cls, task) -> PackSetup:
        """The setup of a :class:`bmsrl.env.BalancingTask`."""
        return cls(task.params, task.tables, task.profile, task.sim.decision_interval_s, task.sim.substeps)


def _delivered_ah(setup: PackSetup, soc: np.ndarray, soh: np.ndarray) -> np.ndarray:
    """Charge [Ah] delivered over the profile by packs of initial state ``soc``, ``soh`` [-]
    (packs, cells), every shunt open."""
    sim = PackSimulator(
        setup.params,
        setup.tables,
        setup.profile,
        n_packs=soc.shape[0],
        decision_interval_s=setup.decision_interval_s,
        substeps=setup.substeps,
    )
    sim.reset_packs(np.arange(soc.shape[0]), soc, soh)
    open_shunts = np.zeros(soc.shape, dtype=bool)
    for _ in range(_MAX_INTERVALS):
        if sim.discharge_over().all():  # every pack's delivered charge final (the episode's end at the latest)
            return sim.state.discharged_ah.copy()
        sim.advance(open_shunts)
    raise RuntimeError(f"profile {setup.profile.name!r} did not end within {_MAX_INTERVALS} decision intervals")


def alone_capacities_ah(setup: PackSetup, soc, soh) -> np.ndarray:
    """Charge [Ah] each cell would deliver over the profile on its own, shunt open: shape ``(cells,)``.

    ``soc`` [-] and ``soh`` [-] are the initial state of the pack's cells, shape ``(cells,)``.
    """
    soc = np.asarray(soc, dtype=np.float64)
    soh = np.asarray(soh, dtype=np.float64)
    n = soc.shape[0]
    copies = lambda x: np.repeat(x[:, None], n, axis=1)  # noqa: E731  pack i: n copies of cell i
    return _delivered_ah(setup, copies(soc), copies(soh))


def no_balancing_capacity_ah(setup: PackSetup, soc, soh) -> float:
    """Charge [Ah] the pack itself delivers over the profile with every shunt open (``no_balancing``)."""
    return float(
        _delivered_ah(setup, np.asarray(soc, dtype=np.float64)[None], np.asarray(soh, dtype=np.float64)[None])[0]
    )


def capacity_bound_ah(setup: PackSetup, soc, soh) -> float:
    """The recoverable-capacity bound C_bound [Ah] of one initial pack (module docstring)."""
    return float(alone_capacities_ah(setup, soc, soh).min())


def capacities_ah(setup: PackSetup, soc, soh) -> tuple[np.ndarray, np.ndarray]:
    """``(bound, no_balancing)`` [Ah], shape ``(packs,)``: :func:`capacity_bound_ah` and
    :func:`no_balancing_capacity_ah` of every initial pack ``soc``, ``soh`` [-] (packs, cells), all
    of them in one simulator call (the packs are independent, so each number is the one-pack call's)."""
    soc = np.asarray(soc, dtype=np.float64)
    soh = np.asarray(soh, dtype=np.float64)
    packs, n = soc.shape
    # rows p * n + i: n copies of cell i of pack p (alone_capacities_ah); then every pack itself
    stack = lambda x: np.concatenate([np.repeat(x.reshape(-1, 1), n, axis=1), x])  # noqa: E731
    delivered = _delivered_ah(setup, stack(soc), stack(soh))
    return delivered[: packs * n].reshape(packs, n).min(axis=1), delivered[packs * n :]


def _charge_before_discharge(profile: LoadProfile) -> bool:
    """Does a charge that ends at a limit come before a discharge that ends at one (so that how the
    charge ends decides what the pack delivers)?"""
    phases = profile.phases
    return any(p.until == "upper" and any(q.until == "lower" for q in phases[i + 1 :]) for i, p in enumerate(phases))


def validity(setup: PackSetup) -> str | None:
    """Why the bound does not hold in ``setup`` (the reason, one sentence), or None where it does.

    The derivation (docs/bound.md) needs every charge that decides the delivered capacity to end
    when its first cell reaches the upper SoC limit. Two settings end it otherwise:

    * a constant-current charge with the voltage cut-off (``charging: cc``,
      ``cutoff: soc_and_voltage``) ends at the first cell at ``v_max``; a shunted cell carries less
      current, so its IR rise is smaller and it reaches ``v_max`` at a higher SoC than it would alone;
    * a CC-CV charge whose taper can come before the SoC limit ends on the *pack* current, which
      shunting the binding cell raises. The taper comes first when a cell at the upper SoC limit,
      held at ``v_max`` with its RC branches settled, would draw no more than the taper current:
      ``OCV(soc_hi) + I_taper (R0 + R1 + R2)(soc_hi) >= v_max`` (e.g. ``soc_limits: [0, 1]``);
    * a discharge that follows a load with regenerative (negative) currents (``env.discharge``:
      ``drive_cycle``, ``stochastic``): the charger's voltage hold limits a regenerative current on
      the pack current, which shunting changes (as the taper above). A load that only discharges
      keeps the bound: the pack current is the load's whatever the shunts.

    Settings that leave the bound as it is: the BMS's estimated state (``env.estimate_*``: the bound
    is over every policy, whatever it observes) and ``env.max_closed_shunts`` (a limit only removes
    policies; the bound may then be further from the best reachable capacity).
    """
    p, profile = setup.params, setup.profile
    if not _charge_before_discharge(profile):
        return None
    if profile.load is not None and float(np.min(profile.load.current_a)) < 0.0:
        return (
            f"the discharge follows a load with regenerative (charging) currents ({profile.load.source}): "
            "near the upper limit the charger's voltage hold limits them on the pack current, which "
            "shunting the binding cell changes, so a cell in the pack does not see the current it "
            "would alone; the bound does not hold"
        )
    v_max = p.voltage_limits_v[1]
    if p.charging == "cc" and p.cutoff == "soc_and_voltage":
        return (
            "a constant-current charge ends at the voltage cut-off (env.charging: cc, env.cutoff: "
            "soc_and_voltage): a shunted cell carries less current, so its IR rise is smaller and it "
            f"reaches {v_max} V at a higher SoC than on its own; the bound does not hold"
        )
    if p.charging == "cc_cv":
        soc_hi = p.soc_limits[1]
        ocv_v, r0, r1, r2, _, _ = setup.tables(np.array(soc_hi))
        settled_v = ocv_v + p.taper_current_a * (r0 + r1 + r2)  # [V] at soc_hi, drawing the taper current
        if settled_v >= v_max:
            return (
                f"a CC-CV charge can end at the taper before any cell reaches SoC {soc_hi} (a cell there "
                f"at the taper current, {p.taper_current_a:.3g} A, would be at {float(settled_v):.3f} V "
                f">= {v_max} V): the taper acts on the pack current, which shunting the cell that holds "
                "the voltage raises; the bound does not hold"
            )
    return None


def recovered_share(capacity_ah: float, no_balancing_ah: float, bound_ah: float, tolerance_ah: float = 1e-3) -> float:
    """Share of the recoverable capacity a policy recovered: (C - C_nb) / (C_bound - C_nb) [-].

    NaN when less than ``tolerance_ah`` [Ah] (1 mAh) was recoverable at all (e.g. a profile that
    discharges first, whose capacity no policy can change): no share of nothing is defined.
    """
    recoverable = bound_ah - no_balancing_ah
    if recoverable < tolerance_ah:
        return float("nan")
    return (capacity_ah - no_balancing_ah) / recoverable
