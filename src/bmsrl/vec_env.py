"""N packs stepped in one vectorized call: a Stable-Baselines3 ``VecEnv`` over :class:`BalancingTask`.

Seeding: ``seed(s)`` gives pack ``k`` its own generator, drawn from the child ``k`` of
``numpy.random.SeedSequence(s)`` (:func:`pack_rng`, i.e. ``SeedSequence(s, spawn_key=(k,))``), not
Stable-Baselines3's ``s + k``. Under SB3's convention the packs of training seeds 1 and 2 shared all
streams but one (pack k of seed 2 was pack k + 1 of seed 1); spawned children of different seeds
share nothing, and none of them equals the generator of an integer seed (the spawn key is mixed
into the entropy), so no training stream is ever an evaluation pack (``reset(seed=int)`` of
:class:`~bmsrl.env.PassiveBalancingEnv`, which stays Gymnasium's ``np_random(seed)``). Pack ``k``
behaves exactly as a :class:`~bmsrl.env.PassiveBalancingEnv` whose ``np_random`` is
``pack_rng(s, k)``, so the batched and the single environment give identical trajectories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from bmsrl.env import BalancingTask, pack_rng, rng_for_seed


class BatchedBalancingVecEnv(VecEnv):
    """``n_envs`` passive-balancing packs in one simulator call per step, with auto-reset.

    On an episode end the pack's info holds ``terminal_observation`` and ``TimeLimit.truncated`` (True
    only when a phase's safety cap ended it, a time limit SB3 bootstraps past; the profile's natural
    end is a termination, not bootstrapped) and the returned observation is the reset one, as SB3
    expects. Wrap in ``VecMonitor`` for episode statistics.

    ``full_info=False`` (the default, for training) leaves the per-step info dicts empty except at
    episode ends; ``True`` fills them like the single environment's (for evaluation and tests).
    """

    def __init__(self, n_envs: int, full_info: bool = False, **task_kwargs: Any) -> None:
        self.task = BalancingTask(n_packs=n_envs, **task_kwargs)
        self.full_info = full_info
        self.render_mode = None  # VecEnv.__init__ reads it through get_attr
        observation_space = spaces.Box(-1.0, 1.0, (self.task.obs_size,), dtype=np.float32)
        super().__init__(n_envs, observation_space, self.task.gym_action_space())
        self._rngs = [rng_for_seed(None) for _ in range(n_envs)]
        self._actions = np.zeros(n_envs, dtype=np.intp)
        self._all = np.arange(n_envs)

    # ------------------------------------------------------------- VecEnv API
    def seed(self, seed: int | None = None) -> list:
        """Seed pack ``k`` with child ``k`` of ``SeedSequence(seed)`` at the next reset (module docstring)."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        self._seeds = [(int(seed), k) for k in range(self.num_envs)]
        return self._seeds

    def reset(self) -> np.ndarray:
        for k, seed in enumerate(self._seeds):
            if seed is not None:
                self._rngs[k] = pack_rng(*seed) if isinstance(seed, tuple) else rng_for_seed(seed)
        self._reset_seeds()
        self._reset_options()
        obs = self._reset(self._all)
        self.reset_infos = [self.task.pack_info(k) for k in range(self.num_envs)]
        return obs.copy()

    def _reset(self, packs: np.ndarray) -> np.ndarray:
        drawn = [self.task.draw_initial_state(self._rngs[k]) for k in packs]
        soc = np.stack([d[0] for d in drawn])
        soh = np.stack([d[1] for d in drawn])
        return self.task.reset_packs(packs, soc, soh)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions  # checked by BalancingTask.step (in the task's space, one per pack)

    def step_wait(self):
        obs, reward, terminated, truncated, interval = self.task.step(self._actions)
        done = terminated | truncated
        if self.full_info:
            infos = [self.task.pack_info(k, interval) for k in range(self.num_envs)]
        else:
            infos = [{} for _ in range(self.num_envs)]
        obs = obs.copy()
        if done.any():
            ended = np.flatnonzero(done)
            for k in ended:
                if not self.full_info:
                    infos[k] = self.task.pack_info(k, interval)
                infos[k]["terminal_observation"] = obs[k].copy()
                infos[k]["TimeLimit.truncated"] = bool(truncated[k])
            obs[ended] = self._reset(ended)
        return obs, reward.astype(np.float32), done, infos

    def action_masks(self) -> np.ndarray:
        """The valid actions of every pack, for MaskablePPO (:meth:`BalancingTask.action_masks`)."""
        return self.task.action_masks()

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        if method_name == "action_masks":
            return list(self.action_masks()[self._indices(indices)])
        raise AttributeError(f"BatchedBalancingVecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices


class MixedProfileVecEnv(VecEnv):
    """``n_envs`` packs on several load profiles at once (``training.profiles``): pack ``k`` follows
    ``profiles[k % len(profiles)]``, every episode, so each batch holds both orders side by side.

    One :class:`BatchedBalancingVecEnv` per profile (one simulator call each per step); pack ``k``
    keeps the generator it would have in a single-profile batch (``pack_rng(seed, k)``, module
    docstring), so its initial states are the same draws whichever profile it follows. Observations,
    rewards, episode ends, infos and action masks come back in pack order.
    """

    def __init__(self, n_envs: int, profiles: Sequence[str], full_info: bool = False, **task_kwargs: Any) -> None:
        profiles = list(profiles)
        if not profiles or len(set(profiles)) != len(profiles):
            raise ValueError(f"profiles must be distinct profile names, at least one, got {profiles}")
        if n_envs < len(profiles):
            raise ValueError(f"{n_envs} packs cannot follow {len(profiles)} profiles: at least one pack each")
        task_kwargs.pop("profile", None)
        self.profiles = profiles
        #: the packs (global indices) of each profile's batch, and the batches
        self.groups = [np.arange(j, n_envs, len(profiles)) for j in range(len(profiles))]
        self.batches = [
            BatchedBalancingVecEnv(len(packs), full_info=full_info, profile=profile, **task_kwargs)
            for packs, profile in zip(self.groups, profiles, strict=True)
        ]
        self.render_mode = None
        first = self.batches[0]
        super().__init__(n_envs, first.observation_space, first.action_space)
        self._actions = None

    def seed(self, seed: int | None = None) -> list:
        """Pack ``k`` gets child ``k`` of ``SeedSequence(seed)``, as in one batch (class docstring)."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        for packs, batch in zip(self.groups, self.batches, strict=True):
            batch._seeds = [(int(seed), int(k)) for k in packs]
        return [(int(seed), k) for k in range(self.num_envs)]

    def reset(self) -> np.ndarray:
        self._reset_seeds()
        self._reset_options()
        obs = np.empty((self.num_envs, *self.observation_space.shape), dtype=np.float32)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        for packs, batch in zip(self.groups, self.batches, strict=True):
            obs[packs] = batch.reset()
            for k, info in zip(packs, batch.reset_infos, strict=True):
                self.reset_infos[k] = info
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        obs = np.empty((self.num_envs, *self.observation_space.shape), dtype=np.float32)
        reward = np.empty(self.num_envs, dtype=np.float32)
        done = np.empty(self.num_envs, dtype=bool)
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for packs, batch in zip(self.groups, self.batches, strict=True):
            batch.step_async(self._actions[packs])
            o, r, d, i = batch.step_wait()
            obs[packs], reward[packs], done[packs] = o, r, d
            for k, info in zip(packs, i, strict=True):
                infos[k] = info
        return obs, reward, done, infos

    def action_masks(self) -> np.ndarray:
        """The valid actions of every pack in pack order, for MaskablePPO."""
        masks = [batch.action_masks() for batch in self.batches]
        out = np.empty((self.num_envs, masks[0].shape[1]), dtype=bool)
        for packs, mask in zip(self.groups, masks, strict=True):
            out[packs] = mask
        return out

    def close(self) -> None:
        pass

    get_attr = BatchedBalancingVecEnv.get_attr
    set_attr = BatchedBalancingVecEnv.set_attr
    env_method = BatchedBalancingVecEnv.env_method
    env_is_wrapped = BatchedBalancingVecEnv.env_is_wrapped
    _indices = BatchedBalancingVecEnv._indices


def make_vec_env(n_envs: int, profiles: Sequence[str], full_info: bool = False, **task_kwargs: Any) -> VecEnv:
    """``n_envs`` packs on ``profiles`` (one: :class:`BatchedBalancingVecEnv`, several:
    :class:`MixedProfileVecEnv`); ``task_kwargs`` as :class:`~bmsrl.env.BalancingTask`'s, less the profile."""
    if len(profiles) == 1:
        return BatchedBalancingVecEnv(n_envs, full_info=full_info, **{**task_kwargs, "profile": profiles[0]})
    return MixedProfileVecEnv(n_envs, profiles, full_info=full_info, **task_kwargs)
