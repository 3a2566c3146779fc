"""The battery-management system's estimate of each cell's state: what the observation shows when the
BMS does not see the truth (``env.estimate_*``, docs/model.md "The realistic family").

A real BMS estimates state of charge (SoC) and state of health (SoH); it does not measure them.
:class:`StateEstimator` models the usual scheme:

* **Coulomb counting.** The estimate starts at the true SoC plus an initial error
  ``e_i ~ N(0, soc_sigma)`` [-] per cell and integrates the *measured* cell current over each
  decision interval of ``dt`` [s]::

      SoC^_i <- SoC^_i - eta * (I_i + b) * dt / (3600 * Q_nom * SoH^_i)

  ``I_i`` [A] is the cell's mean current over the interval (the shunt's included: the BMS knows
  its own shunts), ``b ~ N(0, current_bias_sigma_a)`` [A] the pack current sensor's offset, one per
  pack (one sensor for the series string, so the same offset in every cell) and constant over the
  episode, ``eta`` the coulombic efficiency of the interval's direction (as the physics).
* **OCV correction at rest.** Once the pack has carried no current for ``ocv_rest_s`` [s] (0: never),
  the estimate of every cell whose shunt was open over the last interval is reset to the OCV
  curve's inverse at its *terminal* voltage: ``SoC^_i = OCV^-1(V_t,i)``. The RC branches have not
  fully relaxed by then, so the correction carries their residual polarisation as an error, as a
  BMS's does.
* **SoH.** ``SoH^_i = SoH_i (1 + f_i)``, ``f_i ~ N(0, soh_rel_sigma)`` [-], fixed over the episode
  (capacity estimates change over many cycles, not within one).

The errors of a pack are drawn from a generator seeded by ``seed`` and the pack's initial state
(its SoC and SoH bytes): the same pack gets the same errors whichever policy runs it, whatever the
batch it is in, so paired comparisons stay paired, and a run is reproducible. With every error 0
the estimator is inactive and the observation is the true state, bit for bit (tests/test_estimator.py).
"""

from __future__ import annotations

import copy

import numpy as np


class StateEstimator:
    """SoC and SoH estimates of ``n_packs`` packs of ``n_cells`` cells (module docstring).

    ``ocv_soc`` [-] and ``ocv_v`` [V]: the OCV curve the BMS inverts (non-decreasing in SoC).
    """

    def __init__(
        self,
        n_packs: int,
        n_cells: int,
        *,
        capacity_ah: float,
        charge_efficiency: float,
        discharge_efficiency: float,
        soc_sigma: float = 0.0,
        current_bias_sigma_a: float = 0.0,
        soh_rel_sigma: float = 0.0,
        ocv_rest_s: float = 0.0,
        seed: int = 0,
        ocv_soc: np.ndarray | None = None,
        ocv_v: np.ndarray | None = None,
    ) -> None:
        for name, value in (
            ("soc_sigma", soc_sigma),
            ("current_bias_sigma_a", current_bias_sigma_a),
            ("soh_rel_sigma", soh_rel_sigma),
            ("ocv_rest_s", ocv_rest_s),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.capacity_ah = float(capacity_ah)
        self.eta_charge = float(charge_efficiency)
        self.eta_discharge = float(discharge_efficiency)
        self.soc_sigma = float(soc_sigma)
        self.current_bias_sigma_a = float(current_bias_sigma_a)
        self.soh_rel_sigma = float(soh_rel_sigma)
        self.ocv_rest_s = float(ocv_rest_s)
        self.seed = int(seed)
        #: any error at all: otherwise the observation is the truth and nothing here runs
        self.active = soc_sigma > 0 or current_bias_sigma_a > 0 or soh_rel_sigma > 0
        if self.active and self.ocv_rest_s > 0 and (ocv_soc is None or ocv_v is None):
            raise ValueError("the OCV correction needs the OCV curve (ocv_soc, ocv_v)")
        self._ocv_soc = None if ocv_soc is None else np.asarray(ocv_soc, dtype=np.float64)
        self._ocv_v = None if ocv_v is None else np.asarray(ocv_v, dtype=np.float64)
        self.soc = np.zeros((n_packs, n_cells))  #: SoC estimate [-]
        self.soh = np.ones((n_packs, n_cells))  #: SoH estimate [-]
        self.bias_a = np.zeros(n_packs)  #: current-sensor offset [A]
        self.rest_s = np.zeros(n_packs)  #: time since the pack last carried current [s]

    def take(self, packs: np.ndarray) -> StateEstimator:
        """A copy of this estimator holding ``packs`` (index array) only, in that order: the same
        errors and settings, its own arrays (a look-ahead's shadow packs: :mod:`bmsrl.best_known`)."""
        other = copy.copy(self)
        for name in ("soc", "soh", "bias_a", "rest_s"):
            setattr(other, name, getattr(self, name)[packs].copy())
        return other

    def pack_rng(self, soc: np.ndarray, soh: np.ndarray) -> np.random.Generator:
        """The generator of the errors of a pack starting at ``soc``, ``soh`` [-] (cells,)."""
        state = np.ascontiguousarray(np.concatenate([soc, soh]), dtype=np.float64)
        entropy = [self.seed, *np.frombuffer(state.tobytes(), dtype=np.uint32).tolist()]
        return np.random.default_rng(np.random.SeedSequence(entropy))

    def reset(self, packs: np.ndarray, soc: np.ndarray, soh: np.ndarray) -> None:
        """Start ``packs`` (index array) from the true state ``soc``, ``soh`` [-] (len(packs), cells)."""
        if not self.active:
            return
        soc = np.asarray(soc, dtype=np.float64).reshape(len(packs), -1)
        soh = np.asarray(soh, dtype=np.float64).reshape(len(packs), -1)
        for j, k in enumerate(np.asarray(packs).reshape(-1)):
            rng = self.pack_rng(soc[j], soh[j])
            n = soc.shape[1]
            self.soc[k] = soc[j] + self.soc_sigma * rng.standard_normal(n)
            self.soh[k] = soh[j] * (1.0 + self.soh_rel_sigma * rng.standard_normal(n))
            self.bias_a[k] = self.current_bias_sigma_a * rng.standard_normal()
        self.rest_s[packs] = 0.0

    def step(
        self,
        cell_current_a: np.ndarray,
        pack_current_a: np.ndarray,
        open_shunts: np.ndarray,
        terminal_v: np.ndarray,
        dt_s: float,
    ) -> None:
        """Update every pack after a decision interval of ``dt_s`` [s]: mean cell currents
        ``cell_current_a`` [A] (packs, cells) and pack currents ``pack_current_a`` [A] (packs,) over it,
        ``open_shunts`` (packs, cells) bool over it, terminal voltages ``terminal_v`` [V] at its end."""
        if not self.active:
            return
        q_ah = (cell_current_a + self.bias_a[:, None]) * (dt_s / 3600.0)  # measured charge out [Ah]
        eta = np.where(q_ah > 0.0, self.eta_discharge, self.eta_charge)
        self.soc -= eta * q_ah / (self.capacity_ah * self.soh)
        resting = pack_current_a == 0.0
        self.rest_s = np.where(resting, self.rest_s + dt_s, 0.0)
        if self.ocv_rest_s > 0:
            correct = (self.rest_s >= self.ocv_rest_s)[:, None] & open_shunts
            if correct.any():
                self.soc[correct] = np.interp(terminal_v[correct], self._ocv_v, self._ocv_soc)
