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

Two more options change the learning target (both off by default, so a model trained before them
learns as it did):

* ``double_q`` (Double DQN, van Hasselt et al. 2016): the online network picks the next action,
  the target network values it, ``r + gamma * Q_target(s', argmax_a Q(s', a))``, which removes the
  max operator's upward bias.
* ``masked_target``: the next action (the max of vanilla DQN, the argmax of Double DQN) is taken over
  the actions valid in ``s'``, as the greedy policy takes them. The valid actions of ``s'`` are
  stored with each transition (:class:`MaskedReplayBuffer`). A transition that ends its episode
  does not bootstrap when the episode *terminated*; a time-out (``TimeLimit.truncated``) bootstraps
  over all actions, since the env has already reset and the terminal state's masks are gone.

``target_update_gradient_steps`` counts the target network's update interval in gradient steps
(SB3's ``target_update_interval`` counts env steps, so its meaning changes with ``n_envs``,
``train_freq`` and ``gradient_steps``); set, it replaces SB3's. The replay ratio is
``gradient_steps * batch_size / (train_freq * n_envs)`` transitions replayed per transition collected.

With ``greedy_valid_only=False`` (and the two target options off) the class is plain DQN. A model saved by plain DQN (no
``greedy_valid_only`` in its zip) loads with the option off, so it acts as it was trained.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import polyak_update


def td_target(
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts,
    next_q_target: th.Tensor,
    next_q_online: th.Tensor | None = None,
    next_valid: th.Tensor | None = None,
) -> th.Tensor:
    """The one-step TD target ``r + (1 - done) * discount * Q_next`` of a batch, shape (batch, 1).

    ``Q_next`` is ``max_a Q_target(s', a)`` (DQN), or with ``next_q_online``
    ``Q_target(s', argmax_a Q_online(s', a))`` (Double DQN); with ``next_valid`` ((batch, actions)
    bool) the max or argmax runs over the valid actions only (a row without any valid action over all).
    """
    chooser = next_q_target if next_q_online is None else next_q_online
    if next_valid is not None:
        next_valid = next_valid | ~next_valid.any(dim=1, keepdim=True)
        chooser = chooser.masked_fill(~next_valid, -th.inf)
    best = chooser.argmax(dim=1, keepdim=True)
    next_q = th.gather(next_q_target, dim=1, index=best)
    return rewards + (1 - dones) * discounts * next_q


class MaskedReplayBuffer(ReplayBuffer):
    """SB3's replay buffer that also keeps, per transition, which actions are valid in the next state.

    :class:`MaskedDQN` sets :attr:`pending_next_masks` ((n_envs, n_actions) bool) before each ``add``;
    :meth:`sample` returns SB3's samples and leaves the sampled rows' masks in :attr:`sampled_next_masks`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError("MaskedReplayBuffer does not support optimize_memory_usage")
        self.next_masks = np.ones((self.buffer_size, self.n_envs, int(self.action_space.n)), dtype=bool)
        self.pending_next_masks: np.ndarray | None = None
        self.sampled_next_masks: th.Tensor | None = None

    def add(self, obs, next_obs, action, reward, done, infos) -> None:
        if self.pending_next_masks is None:
            raise RuntimeError("MaskedReplayBuffer.add needs pending_next_masks (set by MaskedDQN)")
        self.next_masks[self.pos] = self.pending_next_masks
        self.pending_next_masks = None
        super().add(obs, next_obs, action, reward, done, infos)

    def _get_samples(self, batch_inds: np.ndarray, env=None) -> ReplayBufferSamples:
        # SB3 2.x ReplayBuffer._get_samples (optimize_memory_usage off), keeping env_indices for the masks
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(self.next_observations[batch_inds, env_indices, :], env),
            (self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        self.sampled_next_masks = th.as_tensor(self.next_masks[batch_inds, env_indices], device=self.device)
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))


class MaskedDQN(DQN):
    """:class:`~stable_baselines3.DQN` taking its greedy action over valid actions only (module docstring).

    :param greedy_valid_only: take the greedy action over the actions the env's ``action_masks()``
        allows, when acting in training and when ``predict`` is given ``action_masks``.
    """

    def __init__(
        self,
        *args: Any,
        greedy_valid_only: bool = True,
        double_q: bool = False,
        masked_target: bool = False,
        target_update_gradient_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        if masked_target:
            if kwargs.get("replay_buffer_class") not in (None, MaskedReplayBuffer):
                raise ValueError("masked_target needs MaskedDQN's own replay buffer (no replay_buffer_class)")
            kwargs["replay_buffer_class"] = MaskedReplayBuffer
        if target_update_gradient_steps is not None and target_update_gradient_steps < 1:
            raise ValueError(f"target_update_gradient_steps: {target_update_gradient_steps} is not >= 1")
        super().__init__(*args, **kwargs)
        # SB3's load() builds the object with _init_setup_model=False, then restores the saved
        # attributes over it: a zip of plain DQN has no greedy_valid_only and keeps acting unmasked,
        # nor double_q / masked_target, and keeps learning as it did.
        loading = not kwargs.get("_init_setup_model", True)
        self.greedy_valid_only = bool(greedy_valid_only) and not loading
        self.double_q = bool(double_q) and not loading
        self.masked_target = bool(masked_target) and not loading
        self.target_update_gradient_steps = None if loading else target_update_gradient_steps

    # DQN's keywords and these, for inspect.signature (bmsrl.agents.constructor_keywords)
    __init__.__signature__ = inspect.signature(DQN.__init__).replace(
        parameters=[
            *inspect.signature(DQN.__init__).parameters.values(),
            inspect.Parameter("greedy_valid_only", inspect.Parameter.KEYWORD_ONLY, default=True, annotation=bool),
            inspect.Parameter("double_q", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
            inspect.Parameter("masked_target", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
            inspect.Parameter(
                "target_update_gradient_steps", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=int | None
            ),
        ]
    )

    def _on_step(self) -> None:
        """SB3's target update every ``target_update_interval`` env steps, unless
        ``target_update_gradient_steps`` counts it in gradient steps (then :meth:`train` does it)."""
        if self.target_update_gradient_steps is None:
            return super()._on_step()
        self._n_calls += 1
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's ``DQN.train`` with the target of :func:`td_target` (Double DQN, masked next action)."""
        if not (self.double_q or self.masked_target or self.target_update_gradient_steps):
            return super().train(gradient_steps, batch_size)
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                target_q_values = td_target(
                    replay_data.rewards,
                    replay_data.dones,
                    discounts,
                    self.q_net_target(replay_data.next_observations),
                    self.q_net(replay_data.next_observations) if self.double_q else None,
                    self.replay_buffer.sampled_next_masks if self.masked_target else None,
                )
            current_q_values = th.gather(self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long())
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            self._n_updates += 1
            every = self.target_update_gradient_steps
            if every is not None and self._n_updates % every == 0:  # as SB3's _on_step updates it
                polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:
        """SB3's, with the valid actions of each next state for a masked target: the env's masks
        now (it has stepped; an ended episode's pack has already reset, its row is all valid)."""
        if isinstance(replay_buffer, MaskedReplayBuffer):
            masks = np.asarray(get_action_masks(self.env), dtype=bool).reshape(len(dones), -1).copy()
            masks[np.asarray(dones, dtype=bool)] = True
            replay_buffer.pending_next_masks = masks
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

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
            raise ValueError(
                "MaskedDQN(greedy_valid_only=True) needs an env with action_masks(); "
                "pass greedy_valid_only=False for an env without"
            ) from exc
        action, _ = self.predict(self._last_obs, deterministic=False, action_masks=masks)
        return action, action  # a discrete action is stored in the replay buffer as taken
