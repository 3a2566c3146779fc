"""Every policy the workflow evaluates: the trained algorithms (:mod:`bmsrl.algos`), the
baselines (:mod:`bmsrl.baselines`) and the model-based reference ``best_known``
(:mod:`bmsrl.best_known`), with one order, one name and one colour each. (Loading them
behind Stable-Baselines3's ``predict`` is :mod:`bmsrl.agents`, which needs torch.)"""

from __future__ import annotations

from collections.abc import Iterable

from bmsrl import algos
from bmsrl.baselines import BASELINES

#: the model-based reference (it reads the simulator, so no BMS could run it; evaluated on the first
#: ``evaluation.best_known_episodes`` packs of each seed) and the controller it improves on
BEST_KNOWN, BEST_KNOWN_BASE = "best_known", "room_balancing"


def settings_policy(policy: str) -> str:
    """The baseline whose settings ``policy`` runs with (``--baseline-settings``, the tuned file): itself,
    or for ``best_known`` the controller it improves on."""
    return BEST_KNOWN_BASE if policy == BEST_KNOWN else policy


#: the references' labels and colours (after the baselines in every table and figure)
REFERENCES: dict[str, tuple[str, str]] = {BEST_KNOWN: ("Best known", "#000000")}

#: every policy name: the algorithms, then the baselines, then the references
POLICIES: tuple[str, ...] = (*algos.ALGOS, *BASELINES, *REFERENCES)

#: spare colours for a policy this registry does not know (e.g. a renamed folder)
_SPARE_COLORS = ("#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#c5b0d5")


def policy_order(policies: Iterable[str]) -> list[str]:
    """Known algorithms first (registry order), then unknown policies (sorted), then baselines, then
    the references."""
    names = set(policies)
    known = [p for p in algos.ALGOS if p in names]
    other = sorted(names - set(POLICIES))
    return known + other + [p for p in (*BASELINES, *REFERENCES) if p in names]


def policy_label(policy: str) -> str:
    if policy in algos.ALGOS:
        return algos.ALGOS[policy].label
    if policy in REFERENCES:
        return REFERENCES[policy][0]
    return BASELINES[policy].label if policy in BASELINES else policy


def policy_color(policy: str) -> str:
    """The policy's colour in every figure; an unknown policy gets a spare colour, stable across runs."""
    if policy in algos.ALGOS:
        return algos.ALGOS[policy].color
    if policy in BASELINES:
        return BASELINES[policy].color
    if policy in REFERENCES:
        return REFERENCES[policy][1]
    return _SPARE_COLORS[sum(map(ord, policy)) % len(_SPARE_COLORS)]
