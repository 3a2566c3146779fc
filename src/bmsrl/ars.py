"""Augmented random search on a batch of packs: sb3-contrib's ARS with its candidates evaluated side
by side on the packs of one ``VecEnv``, antithetic pairs on identical packs, every step counted.

sb3-contrib's single-process ARS evaluates the ``2 * n_delta`` candidates one after another with
SB3's ``evaluate_policy``, which splits ``n_eval_episodes`` over the VecEnv's packs. With 64 packs
and the default ``n_eval_episodes`` 1, every candidate steps all 64 packs until pack 63 ends its
episode and uses that one episode: 63/64 of the simulation is thrown away. With
``n_eval_episodes`` = 64 the packs are used, but ``num_timesteps`` grows by ``n_envs`` per pack
per step (64 x the transitions simulated: "slight mismatch with multi envs", says its source),
which ends a 15 M-step budget after 0.23 M real transitions, and the callbacks fire 64 times per
vec-env step, so the evaluation interval is off by the same factor. (sb3-contrib's ``AsyncEval``
runs candidates in worker processes, one env each: no help for a batched simulator on 2 cores.)

:class:`BatchedARS` keeps ARS's update (``_do_one_update``: perturbations, top-``n_top``
selection, step size scaled by the return std) and replaces how candidates are evaluated:

* Direction ``j``'s two candidates ``w + delta_j`` and ``w - delta_j`` run on the same packs from the
  same initial states: the "+" candidates in one pass, the "-" candidates in a second pass after
  re-seeding the VecEnv with the same seed (common random numbers). The pack-to-pack spread of
  returns (std ~50 at a policy effect of ~300) then cancels in ``r+ - r-``, which is all the
  update uses.
* In a pass, pack ``k`` runs direction ``k mod n_delta`` (``n_envs / n_delta`` packs per
  direction; more directions than packs take several passes), each pack ``n_eval_episodes``
  episodes; a candidate's return is the mean over its packs and episodes.
* ``num_timesteps`` grows by ``n_envs`` per vec-env step: every transition simulated, including
  those of packs that have finished their episodes and wait for the slowest. The callbacks run
  once per vec-env step, as for SB3's on-policy algorithms, so ``eval_freq`` in calls is
  ``eval_interval / n_envs`` here as well.

The pass seeds are ``2**64`` plus a 63-bit draw from numpy's global generator (seeded by the
run's seed), so they are reproducible and never equal a configured seed (torch and the config take
seeds below ``2**64``): training never runs on an evaluation pack.

Discrete action spaces only (the balancing env's); a Box space or ``learn(async_eval=...)``
falls back to sb3-contrib's evaluation.
"""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import ARS
from torch.func import functional_call, vmap


class BatchedARS(ARS):
    """sb3-contrib's :class:`~sb3_contrib.ARS` (same constructor) evaluating candidates on the packs
    of its VecEnv in parallel (module docstring)."""

    def evaluate_candidates(self, candidate_weights: th.Tensor, callback, async_eval) -> th.Tensor:
        """Mean episode return of each of the ``2 * n_delta`` candidates (rows of ``candidate_weights``:
        the ``n_delta`` "+" candidates, then the "-" ones in the same order)."""
        if async_eval is not None or not isinstance(self.action_space, spaces.Discrete):
            return super().evaluate_candidates(candidate_weights, callback, async_eval)
        n_envs, n_delta = self.env.num_envs, self.n_delta
        passes = -(-n_delta // n_envs)  # passes per sign
        direction = np.arange(passes * n_envs) % n_delta  # direction of pack k in pass p: [p * n_envs + k]
        totals = np.zeros(2 * n_delta)
        counts = np.zeros(2 * n_delta)
        self.ep_info_buffer = []  # the logs show this iteration's episodes only, as in ARS
        callback.on_rollout_start()
        for p in range(passes):
            seed = 2**64 + int(np.random.randint(0, 2**63, dtype=np.int64))
            for sign in (0, 1):  # "+" then "-" on the same packs from the same initial states
                rows = sign * n_delta + direction[p * n_envs : (p + 1) * n_envs]
                self.env.seed(seed)
                returns = self._run_packs(candidate_weights[th.as_tensor(rows)], callback)
                np.add.at(totals, rows, returns.sum(axis=1))
                np.add.at(counts, rows, returns.shape[1])
        callback.on_rollout_end()
        return th.as_tensor(totals / counts, dtype=th.float32, device=self.device)

    def _run_packs(self, weights: th.Tensor, callback) -> np.ndarray:
        """Pack ``k`` acts with the policy of ``weights[k]`` until it has ended ``n_eval_episodes``
        episodes; returns their returns (plus ``alive_bonus_offset`` per step), ``(n_envs, n_eval_episodes)``."""
        env, n, episodes = self.env, self.env.num_envs, self.n_eval_episodes
        params = self._unflatten(weights)
        act = vmap(lambda p, o: functional_call(self.policy, p, (o.unsqueeze(0),)).squeeze(0))
        returns = np.zeros((n, episodes))
        lengths = np.zeros((n, episodes), dtype=int)
        ended = np.zeros(n, dtype=int)
        ret, length = np.zeros(n), np.zeros(n, dtype=int)
        obs = env.reset()
        while (ended < episodes).any():
            with th.no_grad():
                actions = act(params, th.as_tensor(obs, device=self.device)).cpu().numpy()
            obs, rewards, dones, infos = env.step(actions)
            self.num_timesteps += n  # every pack stepped, counted or not
            live = ended < episodes
            ret += np.where(live, rewards + self.alive_bonus_offset, 0.0)
            length += live
            for k in np.flatnonzero(dones & live):
                returns[k, ended[k]], lengths[k, ended[k]] = ret[k], length[k]
                ended[k] += 1
                ret[k], length[k] = 0.0, 0
            callback.update_locals(locals())
            callback.on_step()
        self._mimic_monitor_wrapper(returns.ravel(), lengths.ravel())
        return returns

    def _unflatten(self, weights: th.Tensor) -> dict[str, th.Tensor]:
        """Rows of flat parameter vectors (``parameters_to_vector`` order) -> ``{name: (rows, *shape)}``."""
        named = list(self.policy.named_parameters())
        chunks = th.split(weights, [p.numel() for _, p in named], dim=1)
        return {name: c.reshape(len(weights), *p.shape) for (name, p), c in zip(named, chunks)}
