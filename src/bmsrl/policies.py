"""Every policy the workflow evaluates: the trained algorithms (:mod:`bmsrl.algos`) and the
baselines (:mod:`bmsrl.baselines`), with one order, one name and one colour each. (Loading them
behind Stable-Baselines3's ``predict`` is :mod:`bmsrl.agents`, which needs torch.)"""

from __future__ import annotations

from collections.abc import Iterable

from bmsrl import algos
from bmsrl.baselines import BASELINES

#: every policy name: the algorithms, then the baselines
POLICIES: tuple[str, ...] = (*algos.ALGOS, *BASELINES)

#: spare colours for a policy this registry does not know (e.g. a renamed folder)
_SPARE_COLORS = ("#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#c5b0d5")


def policy_order(policies: Iterable[str]) -> list[str]:
    """Known algorithms first (registry order), then unknown policies (sorted), then baselines."""
    names = set(policies)
    known = [p for p in algos.ALGOS if p in names]
    other = sorted(names - set(POLICIES))
    return known + other + [p for p in BASELINES if p in names]


def policy_label(policy: str) -> str:
    if policy in algos.ALGOS:
        return algos.ALGOS[policy].label
    return BASELINES[policy].label if policy in BASELINES else policy


def policy_color(policy: str) -> str:
    """The policy's colour in every figure; an unknown policy gets a spare colour, stable across runs."""
    if policy in algos.ALGOS:
        return algos.ALGOS[policy].color
    if policy in BASELINES:
        return BASELINES[policy].color
    return _SPARE_COLORS[sum(map(ord, policy)) % len(_SPARE_COLORS)]
