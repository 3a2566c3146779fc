"""``best_known``: one step of policy improvement with the true simulator (issue 18), a model-based
reference beside the recoverable-capacity bound, **not** an observation-only controller.

At every decision, for every pack, each valid action is tried on a copy of the pack's full simulator
state (SoC, SoH, RC voltages, phase, charger, shunts: :class:`bmsrl.pack.PackState`) and of what the
BMS believes (the estimator's SoC, SoH, sensor offset and rest time, :mod:`bmsrl.estimator`, so
that the invalid-action rules and the base controller see in the look-ahead what they would see in
the episode), followed by a
base controller (``room_balancing`` at its configured settings, the best rule found) until the
episode ends; the action whose continuation lets the pack deliver the most charge over the episode
(``discharged_ah`` at its end) is taken, ties going to the base controller's own action. The base
controller's action is always a candidate, so one step of improvement never does worse than the
base controller followed to the end from the same state, up to what the following decisions change.

It reads the simulator (``predict(..., task=...)``, passed by :func:`bmsrl.rollout.rollout`), so no
BMS could run it: it says what is achievable, not what a deployable controller achieves. It costs
2^n rollouts to the episode's end per decision, batched over the packs and actions, so the workflow
runs it on the first ``evaluation.best_known_episodes`` packs of every seed, profile and scenario
(the same packs every other policy starts its episodes from, so the comparisons stay paired):
``bmsrl evaluate --policy best_known`` writes its traces and metrics like any policy's.

``evaluation.best_known_stride`` k (default 1) makes it cheaper where episodes are long (the
realistic family): the look-ahead runs at the decisions whose index in the episode is a multiple of
k, and the base controller decides in between. Each look-ahead decision is still one step of
policy improvement at its state, and the base controller's own choice at the others, so no pack
does worse than under the base controller (up to what the following decisions change, as above;
tests/test_best_known.py), at about 1/k of the cost; k = 1 gives the outputs of every decision
looked ahead, unchanged.

Where every running pack of a look-ahead discharges, the base controller keeps every shunt open
(``RoomBalancing.opens_all_above_a``) and no estimator carries on beside the simulator, the look-ahead
advances the stretch in one compiled loop of the same per-interval kernel, without deciding
(:meth:`bmsrl.pack.PackSimulator.advance_open_while_discharging`): every value stays as it was, bit
for bit (tests/test_best_known.py).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from bmsrl.actions import as_indices
from bmsrl.env import BalancingTask
from bmsrl.pack import PackState
from bmsrl.rollout import MAX_DECISIONS


class BestKnown:
    """One step of policy improvement over ``base`` (an observation-only controller with ``predict``)
    by lookahead with the task's own simulator (module docstring)."""

    name = "best_known"

    def __init__(self, base, stride: int = 1) -> None:
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"best_known's stride must be an integer >= 1, got {stride!r}")
        self.base = base
        #: the look-ahead at every ``stride``-th decision of an episode, the base controller in between
        #: (``evaluation.best_known_stride``; 1: at every decision)
        self.stride = int(stride)
        self._task: BalancingTask | None = None  # the task the shadows copy
        self._shadows: dict[int, BalancingTask] = {}  # by size: the candidates of one decision

    def _shadow_of(self, task: BalancingTask, n: int) -> BalancingTask:
        """A task of ``n`` packs with the same physics, profile and rules as ``task``. The shadows are
        built anew for every task: one policy object evaluates several profiles and scenarios in turn
        (``bmsrl evaluate``), and a shadow of another task would look ahead on the wrong load."""
        if task is not self._task:
            self._task, self._shadows = task, {}
        if n not in self._shadows:
            if len(self._shadows) >= 8:  # sizes vary with the decision: keep the memory bounded
                self._shadows.pop(next(iter(self._shadows)))
            self._shadows[n] = BalancingTask(
                n_packs=n,
                profile=task.profile,
                pack=task.params,
                reward=task.reward_weights,
                decision_interval_s=task.sim.decision_interval_s,
                substeps=task.sim.substeps,
                invalid_rules=task.invalid_rules,
                init_soc=task.init_soc,
                init_soh=task.init_soh,
                i_max_a=task.i_max_a,
                action_space=task.action_space,
                max_closed_shunts=task.max_closed_shunts,
                max_shunt_power_w=task.max_shunt_power_w,
                tables=task.tables,
            )
        return self._shadows[n]

    def predict(self, observation, state=None, episode_start=None, deterministic=True, task=None):
        if task is None:
            raise ValueError(
                "best_known reads the simulator: run it through bmsrl.rollout.rollout (predict(..., task=))"
            )
        base_actions = np.asarray(self.base.predict(observation)[0], dtype=np.int64).reshape(task.n_packs)
        look = self.looks_ahead(task)
        if not look.any():
            return base_actions, state
        values = self.candidate_values_ah(task, look)  # (packs, actions)
        best = values.argmax(axis=1)
        keep_base = values[np.arange(task.n_packs), base_actions] >= values[np.arange(task.n_packs), best]
        return np.where(keep_base | ~look, base_actions, best), state

    def looks_ahead(self, task: BalancingTask) -> np.ndarray:
        """(packs,) bool: whether the present decision of each pack is one the look-ahead takes, its
        index in the episode (elapsed time [s] / decision interval [s], from 0 at the reset) a multiple
        of :attr:`stride`."""
        if self.stride == 1:
            return np.ones(task.n_packs, dtype=bool)
        decision = np.rint(task.sim.state.time_s / task.sim.decision_interval_s).astype(np.int64)
        return decision % self.stride == 0

    def candidate_values_ah(self, task: BalancingTask, look: np.ndarray | None = None) -> np.ndarray:
        """(packs, actions): charge [Ah] each pack delivers over its episode if it takes that action now
        and the base controller afterwards; -inf for an invalid action. ``look`` (packs,) bool: the packs
        to look ahead for (None: all); the others get 0 for every valid action.

        Only a pack with a choice (more than one valid action) is looked ahead, and only over its valid
        actions: a pack with one valid action gets 0 for it, which wins as its own rollout's value
        would. A pack whose delivered charge is final (:meth:`bmsrl.pack.PackSimulator.discharge_over`:
        no discharge ahead) gets its present ``discharged_ah`` for every valid action, the value each
        rollout would end with, so the base controller's action stands. The decisions are those of
        trying every action.
        """
        invalid = task.invalid_mask()  # (packs, actions)
        values = np.where(invalid, -np.inf, 0.0)
        choice = ~invalid & ((~invalid).sum(axis=1) > 1)[:, None]
        if look is not None:
            choice &= look[:, None]
        final = choice & task.sim.discharge_over()[:, None]
        values = np.where(final, task.sim.state.discharged_ah[:, None], values)
        packs, actions = np.nonzero(choice & ~final)
        if packs.size == 0:
            return values
        shadow = self._shadow_of(task, packs.size)
        source, copy = task.sim.state, shadow.sim.state
        for f in fields(PackState):
            setattr(copy, f.name, getattr(source, f.name)[packs].copy())
        shadow.estimator = task.estimator.take(packs)  # what the BMS believes goes on as it would
        shadow.frames[:] = task.frames[packs]
        shadow.last_invalid[:] = False
        shadow.last_toggles[:] = 0
        shadow.transition(actions)
        values[packs, actions] = self.continuation_ah(shadow)
        return values

    def continuation_ah(self, task: BalancingTask) -> np.ndarray:
        """(packs,): ``discharged_ah`` [Ah] at the end of every pack's episode if the base controller
        acts from the task's present state on: :func:`bmsrl.rollout.rollout`'s ``end["discharged_ah"]``
        with only what that value needs (no rewards, records or counts), and a pack left as soon as its
        value is final (its episode has ended, or ``discharge_over``). The base controller reads the
        observation only, so the look-ahead runs it on the whole batch at once.

        A base controller that can act on the state arrays (``room_balancing``: ``actions_from_state``)
        decides from them in one compiled call, fed what the observation would show (the BMS's
        estimate with an estimator: :meth:`BalancingTask.observed_soc`, ``observed_soh``) and deciding
        by the same compiled rule as its ``predict``, the chip's limit included; the task then writes
        no observation frames (nothing reads them). Any other base reads the frames."""
        sim, state = task.sim, task.sim.state
        value = state.discharged_ah.copy()
        running = ~sim.discharge_over()  # a final value needs no step
        on_state = hasattr(self.base, "actions_from_state")
        obs = task.frames.reshape(task.n_packs, -1)
        # where the base's action is known without deciding (all shunts open while discharging) and
        # nothing but the simulator's state carries on (no estimator), the stretch runs compiled
        open_above_a = (
            self.base.opens_all_above_a(task.i_max_a)
            if hasattr(self.base, "opens_all_above_a") and not task.estimator.active
            else None
        )
        decisions = 0
        while decisions < MAX_DECISIONS:
            if not running.any():
                return value
            if open_above_a is not None:
                decisions += sim.advance_open_while_discharging(running, value, open_above_a, MAX_DECISIONS - decisions)
                if not running.any():
                    return value
                if decisions >= MAX_DECISIONS:
                    break
            decisions += 1
            if on_state:
                actions = self.base.actions_from_state(
                    task.observed_soc(), state.switches, task.observed_soh(), sim.pack_current_now_a(), task.i_max_a
                )
            else:
                actions = as_indices(self.base.predict(obs, deterministic=True)[0], task.n_packs, task.params.n_cells)
            task.transition(np.where(running, actions, 0), observe=not on_state)
            ended = running & (sim.safety_violation() | sim.discharge_over())  # the episode's end included
            value[ended] = state.discharged_ah[ended]
            running &= ~ended
        raise RuntimeError(f"best_known's look-ahead did not end within {MAX_DECISIONS} decisions")
