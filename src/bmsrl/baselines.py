"""Rule-based controllers behind the same ``predict`` interface as a trained SB3 model.

All take the environment's observation, so they need nothing but what an agent sees: the newest
frame holds ``2 SoC - 1`` of every cell (indices 0..n-1), the current shunt states
(``2 s - 1``, indices n..2n-1) and the pack current ``I / I_max`` (index 3n; > 0 discharges).
A batch of observations gives a batch of actions.

``rule_based`` and ``top_balancing`` have a threshold and a hysteresis that the ``tune_baselines``
stage grid-searches (:mod:`bmsrl.tune`); ``rule_based_untuned`` is ``rule_based`` at the study's
hand-set values (``baselines.rule_based`` in the config), kept as its own row so the effect of
tuning stays visible.
"""

from __future__ import annotations

import numpy as np


class NoBalancing:
    """All shunts open, always (action 0)."""

    name = "no_balancing"

    def __init__(self, n_cells: int = 5) -> None:
        self.n_cells = n_cells

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation)
        batch = obs.shape[:-1]
        return np.zeros(batch, dtype=np.int64), state


class RuleBased:
    """Close the shunt of every cell whose SoC exceeds the pack minimum by more than a threshold.

    Hysteresis: a closed shunt stays closed until the cell is within ``threshold - hysteresis`` of
    the pack minimum, so a cell hovering at the threshold does not chatter. The lowest cell's
    shunt is never closed (its excess is 0), so the controller never triggers the invalid-action
    rule. ``threshold`` and ``hysteresis`` are SoC fractions [-] (0.01 = 1 % SoC).
    """

    name = "rule_based"

    def __init__(self, threshold: float, hysteresis: float, n_cells: int = 5) -> None:
        if not 0.0 <= hysteresis <= threshold:
            raise ValueError("rule_based needs 0 <= hysteresis <= threshold")
        self.threshold = threshold
        self.hysteresis = hysteresis
        self.n_cells = n_cells
        self._weights = 1 << np.arange(n_cells)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation, dtype=np.float64)
        n = self.n_cells
        soc = (obs[..., :n] + 1.0) / 2.0
        closed = obs[..., n : 2 * n] > 0.0
        excess = soc - soc.min(axis=-1, keepdims=True)
        close = (excess > self.threshold) | (closed & (excess > self.threshold - self.hysteresis))
        return (close * self._weights).sum(axis=-1).astype(np.int64), state


class TopBalancing(RuleBased):
    """:class:`RuleBased` that bleeds only while the pack charges or rests, as BMS chips do.

    While the pack discharges (observed pack current > 0) every shunt is open; while it charges or
    rests, a cell more than ``threshold`` above the pack minimum is bled, with the same hysteresis.
    """

    name = "top_balancing"

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        action, state = super().predict(observation, state, episode_start, deterministic)
        current = np.asarray(observation, dtype=np.float64)[..., 3 * self.n_cells]
        return np.where(current > 0.0, 0, action).astype(np.int64), state


#: name -> (controller class, label, colour in every figure), in the order tables list them
BASELINES: dict[str, tuple[type, str, str]] = {
    "no_balancing": (NoBalancing, "No balancing", "#4d4d4d"),
    "rule_based": (RuleBased, "Rule-based", "#d62728"),
    "top_balancing": (TopBalancing, "Top balancing", "#e377c2"),
    "rule_based_untuned": (RuleBased, "Rule-based (untuned)", "#ff9896"),
}
#: baselines whose threshold and hysteresis the tune_baselines stage grid-searches
TUNABLE: tuple[str, ...] = ("rule_based", "top_balancing")
#: a baseline that runs another's configured (hand-set) settings: name -> the config key it reads
UNTUNED: dict[str, str] = {"rule_based_untuned": "rule_based"}


def settings_key(name: str) -> str:
    """The key of ``cfg["baselines"]`` holding the settings of baseline ``name``."""
    return UNTUNED.get(name, name)


def evaluated_baselines(tuned: bool) -> list[str]:
    """The baselines a study evaluates: all of them with ``baselines.tuned``, else without the
    ``*_untuned`` copies (which would then duplicate their tunable twin)."""
    return [b for b in BASELINES if tuned or b not in UNTUNED]


def make_baseline(name: str, n_cells: int, settings: dict | None = None):
    """The baseline controller called ``name`` for ``n_cells`` cells; ``settings`` are its keyword
    arguments (``cfg["baselines"][settings_key(name)]`` or a tuned settings file, e.g. threshold and
    hysteresis of ``rule_based``)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}")
    return BASELINES[name][0](n_cells=n_cells, **(settings or {}))
