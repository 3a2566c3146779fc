"""The env's observation layout, read back: one decoding helper for every controller.

:class:`bmsrl.env.BalancingTask` writes each frame (``_write_frame``) and re-exports
:func:`decode_observation`; it lives in its own module (numpy only) so that the controllers and the
config schema, which the env's defaults come from, can import it without an import cycle.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: the SoH observation is clip((SoH - 1) * SOH_OBS_SCALE, -1, 1): SoH 0.9..1.1 spans [-1, 1]
SOH_OBS_SCALE = 10.0


class ObservedFrame(NamedTuple):
    """The newest frame of an observation (batch), decoded (:func:`decode_observation`).

    Every field has the observation's batch shape, ``(..., cells)`` or ``(...)``.
    """

    soc: np.ndarray  #: state of charge of each cell [-] (clipped to [0, 1] by the observation)
    closed: np.ndarray  #: bool, the cell's shunt is closed now
    soh: np.ndarray  #: state of health of each cell [-] (saturates outside [0.9, 1.1])
    current_ratio: np.ndarray  #: pack current / i_max_a [-] (> 0 discharging, < 0 charging, 0 at rest)


def decode_observation(observation, n_cells: int) -> ObservedFrame:
    """The newest frame (SoC, shunt states, SoH, pack current) of an observation or a batch of them.

    ``observation`` has shape ``(..., k * (3 n_cells + 1))`` for any number ``k`` of frames (the
    newest first, as :class:`PassiveBalancingEnv` returns them); the layout is the env's
    (:meth:`BalancingTask._write_frame`), so a controller never slices the observation by position.
    """
    obs = np.asarray(observation)
    n = n_cells
    if obs.shape[-1] % (3 * n + 1):
        raise ValueError(
            f"an observation of {obs.shape[-1]} values is not a whole number of {n}-cell frames "
            f"({3 * n + 1} values each)"
        )
    obs = obs[..., : 3 * n + 1].astype(np.float64)  # the newest frame only
    return ObservedFrame(
        soc=(obs[..., :n] + 1.0) / 2.0,
        closed=obs[..., n : 2 * n] > 0.0,
        soh=1.0 + obs[..., 2 * n : 3 * n] / SOH_OBS_SCALE,
        current_ratio=obs[..., 3 * n],
    )


INVALID_RULES = ("lowest_soc_while_discharging", "below_soc_min")
