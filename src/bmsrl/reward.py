"""Multi-objective balancing reward (docs/model.md, "Reward"), vectorized over packs.

    r = b(Var(SoC)) - beta * n_toggles + w_ok * 1[all cells inside limits] - w_invalid * 1[invalid action]
    b(v) = -log10(v + epsilon) - offset
    beta = switch_penalty, or 0.1 * |b| + 1 when switch_penalty is None ("auto")

``b`` rises as the SoC variance falls (Var 1e-2 -> -2, 1e-4 -> 0, 1e-6 -> +1.7 with the defaults),
flattening below ``epsilon`` where further balancing buys nothing measurable. The original
scaffold's ``-(ln Var)^2 - 4`` fell as the variance fell and would have rewarded unbalancing.
With the automatic beta, ``dr/db = 1 - 0.1 * n_toggles * sign(b) >= 0.5`` for up to five toggles,
so at equal switching the reward always prefers the lower variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bmsrl.config import defaults as config_defaults


#: the schema's defaults of the ``reward`` section (one source for the workflow and the env)
_REWARD = config_defaults()["reward"]


@dataclass(frozen=True)
class RewardWeights:
    epsilon: float = _REWARD["epsilon"]  #: variance floor [-^2] inside the log
    offset: float = _REWARD["offset"]  #: subtracted from -log10(Var + epsilon)
    #: beta per toggled switch; None: 0.1 * |b| + 1 (the schema's "auto")
    switch_penalty: float | None = None if _REWARD["switch_penalty"] == "auto" else _REWARD["switch_penalty"]
    within_limits: float = _REWARD["within_limits"]  #: w_ok, bonus when every cell is inside its limits
    invalid_action: float = _REWARD["invalid_action"]  #: w_invalid, penalty for an invalid action

    def __post_init__(self) -> None:
        # The config's rules (schema section reward): one source for the config and the env.
        from dataclasses import asdict

        from bmsrl.config import check_task_arguments

        check_task_arguments(reward=asdict(self))


def balance_term(soc_variance: np.ndarray, weights: RewardWeights) -> np.ndarray:
    """b(Var): larger for a better-balanced pack."""
    return -np.log10(soc_variance + weights.epsilon) - weights.offset


def balancing_reward(
    soc_variance: np.ndarray,
    n_toggles: np.ndarray,
    within_limits: np.ndarray,
    invalid: np.ndarray,
    weights: RewardWeights,
) -> np.ndarray:
    """The reward per pack; every argument has shape ``(packs,)``."""
    b = balance_term(soc_variance, weights)
    beta = 0.1 * np.abs(b) + 1.0 if weights.switch_penalty is None else weights.switch_penalty
    return (
        b
        - beta * n_toggles
        + weights.within_limits * within_limits
        - weights.invalid_action * invalid
    )
