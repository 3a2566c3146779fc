"""DQN whose greedy action is the best *valid* action: invalid-action masks at decision time only.

:class:`MaskedDQN` is Stable-Baselines3's :class:`~stable_baselines3.DQN` with one constructor
option, ``greedy_valid_only`` (default ``True``, saved with the model):

* **Acting.** The greedy action is ``argmax_a Q(s, a)`` over the actions the env's
  ``action_masks()`` allows (invalid actions' Q set to -inf), in training rollouts (the masks come
  from the training VecEnv) and in ``predict(obs, deterministic=True, action_masks=...)``, which
  evaluation passes (:mod:`bmsrl.evaluate`, the training evaluation callback). Without masks
  ``predict`` is plain DQN's.
* **Exploration is unchanged**: with probability epsilon the whole batch acts uniformly over *all*
  actions (SB3's epsilon-greedy), and so does the warm-up before ``learning_starts``. Invalid
  actions keep being tried, penalised, and learnt about.
* **The learning target is unchanged**: ``train`` is DQN's own, ``r + gamma * max_a Q_target(s', a)``
  over all actions. Masking only the behaviour is the smallest change that makes invalid actions
  rare; the Q-values of invalid actions still learn their penalty, so an agent whose masks are
  switched off afterwards is no worse than plain DQN trained on the same data.

With ``greedy_valid_only=False`` the class is plain DQN. A model saved by plain DQN (no
``greedy_valid_only`` in its zip) loads with the option off, so it acts as it was trained.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch as th
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3 import DQN
from stable_baselines3.common.noise import ActionNoise


class MaskedDQN(DQN):
    """:class:`~stable_baselines3.DQN` taking its greedy action over valid actions only (module docstring).

    :param greedy_valid_only: take the greedy action over the actions the env's ``action_masks()``
        allows, when acting in training and when ``predict`` is given ``action_masks``.
    """

    def __init__(self, *args: Any, greedy_valid_only: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SB3's load() builds the object with _init_setup_model=False, then restores the saved
        # attributes over it: a zip of plain DQN has no greedy_valid_only and keeps acting unmasked.
        loading = not kwargs.get("_init_setup_model", True)
        self.greedy_valid_only = bool(greedy_valid_only) and not loading

    # DQN's keywords and this one, for inspect.signature (bmsrl.agents.constructor_keywords)
    __init__.__signature__ = inspect.signature(DQN.__init__).replace(parameters=[
        *inspect.signature(DQN.__init__).parameters.values(),
        inspect.Parameter("greedy_valid_only", inspect.Parameter.KEYWORD_ONLY, default=True, annotation=bool),
    ])  # fmt: skip

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """DQN's epsilon-greedy ``predict``; with ``action_masks`` ((n_actions,) or (batch,
        n_actions) bool, True = valid) and ``greedy_valid_only``, the greedy action is the best valid one."""
        if action_masks is None or not self.greedy_valid_only:
            return super().predict(observation, state, episode_start, deterministic)
        if not deterministic and np.random.rand() < self.exploration_rate:  # SB3's exploration, all actions
            if self.policy.is_vectorized_observation(observation):
                return np.array([self.action_space.sample() for _ in range(len(observation))]), state
            return np.array(self.action_space.sample()), state
        return self.greedy_valid_action(observation, action_masks), state

    def greedy_valid_action(self, observation: np.ndarray, action_masks: np.ndarray) -> np.ndarray:
        """``argmax`` of the online network's Q over the valid actions (a row with no valid action,
        which the balancing env never produces since "all shunts open" is always allowed, falls
        back to all actions). Shaped like SB3's ``predict``: (batch,), or () for one observation."""
        self.policy.set_training_mode(False)
        obs_tensor, vectorized = self.policy.obs_to_tensor(observation)
        with th.no_grad():
            q = self.q_net(obs_tensor).cpu().numpy()
        valid = np.asarray(action_masks, dtype=bool).reshape(q.shape)
        valid = valid | ~valid.any(axis=1, keepdims=True)
        action = np.where(valid, q, -np.inf).argmax(axis=1)
        return action if vectorized else action.squeeze(axis=0)

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rollout's action: SB3's, with the training env's masks after the warm-up."""
        if not self.greedy_valid_only or self.num_timesteps < learning_starts:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        try:
            masks = get_action_masks(self.env)
        except AttributeError as exc:
            raise ValueError("MaskedDQN(greedy_valid_only=True) needs an env with action_masks(); "
                             "pass greedy_valid_only=False for an env without") from exc  # fmt: skip
        action, _ = self.predict(self._last_obs, deterministic=False, action_masks=masks)
        return action, action  # a discrete action is stored in the replay buffer as taken
