"""One rollout loop: a policy runs on N packs of a :class:`~bmsrl.env.BalancingTask`, one simulator
call per decision, until every pack's episode has ended.

Evaluation, baseline tuning, the training reference lines and the episode animations all run their
episodes through :func:`rollout`, so the policy call (with the env's action masks for a policy that
reads them: MaskablePPO, DQN with ``greedy_valid_only``), the end-of-episode bookkeeping and the
per-step records exist once. A pack whose episode has ended idles with every shunt open (action 0)
while the others finish; nothing it does afterwards is counted or recorded.

A policy is anything with Stable-Baselines3's ``predict(observation, deterministic=True)`` taking a
batch of observations ``(packs, obs_size)`` and returning ``(actions, state)``: action indices
``(packs,)`` (``Discrete``: the baselines, a ``discrete`` agent) or shunt bits ``(packs, cells)`` (a
``multi_binary`` agent), on a task of either ``env.action_space`` (:func:`bmsrl.actions.as_indices`,
the one conversion; the task applies its own space's invalid-action rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bmsrl.actions import as_indices
from bmsrl.env import BalancingTask

#: the most decisions an episode may take before a rollout gives up (a profile that never ends)
MAX_DECISIONS = 100_000


def reads_action_masks(policy) -> bool:
    """Whether ``policy.predict`` takes the env's ``action_masks`` (MaskablePPO; DQN, which uses
    them when ``greedy_valid_only``)."""
    return "action_masks" in _predict_keywords(policy)


def _predict_keywords(policy) -> set[str]:
    import inspect

    return set(inspect.signature(policy.predict).parameters)


def predict_actions(policy, obs: np.ndarray, task: BalancingTask, keywords: set[str] | None = None) -> np.ndarray:
    """``policy.predict(obs, deterministic=True)`` as an action-index array over the task's packs
    (either space: :func:`bmsrl.actions.as_indices`), with the task's valid actions (``action_masks``,
    in the task's space) if the policy reads them, and the task itself (``task``)
    if it reads the simulator (:class:`bmsrl.best_known.BestKnown`). ``keywords``: the keyword
    arguments ``predict`` takes (None: ask)."""
    if keywords is None:
        keywords = _predict_keywords(policy)
    extra = {}
    if "action_masks" in keywords:
        extra["action_masks"] = task.action_masks()
    if "task" in keywords:
        extra["task"] = task
    actions, _ = policy.predict(obs, deterministic=True, **extra)
    return as_indices(actions, task.n_packs, task.params.n_cells)


@dataclass
class Rollout:
    """What a rollout leaves, per pack (arrays of shape ``(packs,)`` unless said otherwise)."""

    returns: np.ndarray  #: sum of the rewards until the pack's episode ended [reward units]
    steps: np.ndarray  #: decisions the episode took [-]
    #: bool, ended by a safety violation (a cell outside the SoC window by more than the margin), not at
    #: the profile's end; the ``terminated`` column of metrics.csv
    terminated: np.ndarray
    switch_changes: np.ndarray  #: shunt state changes over the episode [-]
    #: the state at each pack's end: ``soc``, ``soh`` (packs, cells) [-], ``shunt_energy_wh`` (packs,
    #: cells) [Wh], ``discharged_ah``, ``charged_ah`` [Ah]
    end: dict[str, np.ndarray] = field(default_factory=dict)
    #: with ``records=True``: per pack, one dict per state (0: the reset state, then one per decision),
    #: the env's info (:meth:`BalancingTask.pack_info`) with ``reward``
    records: list[list[dict[str, Any]]] | None = None


def _reset_record(task: BalancingTask, k: int, current_a: float) -> dict[str, Any]:
    info = task.pack_info(k)
    return dict(
        info,
        pack_current_a=current_a,
        cell_current_a=np.full_like(info["soc"], current_a),
        reward=0.0,
        switch_changes=0,
        invalid_action=False,
    )


def rollout(
    task: BalancingTask,
    policy,
    *,
    records: bool = False,
    max_decisions: int | None = None,
    on_step: Callable[[BalancingTask], None] | None = None,
) -> Rollout:
    """Run ``policy`` deterministically from the task's present state (reset it first:
    :meth:`BalancingTask.reset_packs`) until every pack's episode has ended.

    ``records``: keep every pack's per-step records (for traces and metrics). ``max_decisions``: stop
    after that many decisions even if episodes are still running (an animation's limit); without it a
    profile that has not ended after :data:`MAX_DECISIONS` decisions is an error. ``on_step(task)`` is
    called after the reset state and after every decision (e.g. to draw a frame).
    """
    n = task.n_packs
    keywords = _predict_keywords(policy)
    obs = task.frames.reshape(n, -1).copy()
    s = task.sim.state
    done = np.zeros(n, dtype=bool)
    result = Rollout(
        returns=np.zeros(n),
        steps=np.zeros(n, dtype=np.int64),
        terminated=np.zeros(n, dtype=bool),
        switch_changes=np.zeros(n, dtype=np.int64),
        end={
            "soc": s.soc.copy(),
            "soh": s.soh.copy(),
            "shunt_energy_wh": s.shunt_energy_wh.copy(),
            "discharged_ah": s.discharged_ah.copy(),
            "charged_ah": s.charged_ah.copy(),
        },
    )
    if records:
        current_a = task.sim.pack_current_now_a()  # the first phase's, shunts open
        result.records = [[_reset_record(task, k, float(current_a[k]))] for k in range(n)]
    if on_step is not None:
        on_step(task)
    limit = MAX_DECISIONS if max_decisions is None else max_decisions
    for _ in range(limit):
        if done.all():
            return result
        actions = np.where(done, 0, predict_actions(policy, obs, task, keywords))
        obs, reward, terminated, truncated, interval = task.step_checked(actions)
        running = ~done
        result.returns += np.where(running, reward, 0.0)
        result.steps += running
        result.switch_changes += np.where(running, task.last_toggles, 0)
        if records:
            packs = np.flatnonzero(running)
            for k, info, r in zip(packs, task.pack_infos(packs, interval), reward[packs].tolist()):
                info["reward"] = r
                result.records[k].append(info)
        ended = (terminated | truncated) & running
        if ended.any():
            for key in result.end:
                result.end[key][ended] = getattr(s, key)[ended]
            result.terminated |= task.sim.safety_violation() & ended
            done |= ended
        if on_step is not None:
            on_step(task)
    if max_decisions is None and not done.all():
        raise RuntimeError(f"episodes did not end within {MAX_DECISIONS} decisions")
    return result
