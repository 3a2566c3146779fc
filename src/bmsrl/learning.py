"""What training and the hyperparameter search share: seeding, the environments and the model built
from a config, and the seeded periodic evaluation.

The train stage (:mod:`bmsrl.train`) and the search stage (:mod:`bmsrl.search`) both build their
runs from these, so a search trial learns and is scored exactly as a training run of the same
settings would be (no stage imports another stage).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from bmsrl import algos
from bmsrl.agents import algorithm_class
from bmsrl.io import atomic_output, file_digest
from bmsrl.policies import reads_action_masks
from bmsrl.settings import TrainingSettings
from bmsrl.task_config import task_kwargs

log = logging.getLogger("bmsrl.learning")


def learning_settings(cfg: dict, algo: str, profile: str, ocv_table: str | None) -> dict:
    """What decides what an agent learns, for training's settings record and the search's study
    identity alike: the algorithm and its hyperparameters, the batch, the task (env, reward,
    profile) and the digests of its tables."""
    training = TrainingSettings.of(cfg)
    kwargs = task_kwargs(cfg, profile, ocv_table)
    return {
        "algo": algo,
        "profile": profile,
        "n_envs": training.n_envs,
        "hyperparams": training.hyperparams[algo],
        "normalize_reward": training.normalize_reward and algos.get(algo).normalize_reward,
        "env": cfg["env"],
        "reward": cfg["reward"],
        "ocv_table_sha256": file_digest(kwargs["ocv_table"]),
        "ecm_table_sha256": file_digest(kwargs["ecm_table"]),
    }


def seed_everything(seed: int, torch_threads: int) -> None:
    """Fix python, numpy and torch RNGs; pin torch to ``torch_threads`` threads."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(torch_threads)
    # Argument checks of torch.distributions cost ~10 % of a PPO update and check nothing the
    # policy can get wrong here (logits from a linear layer).
    torch.distributions.Distribution.set_default_validate_args(False)


def make_envs(cfg: dict, algo: str, profile: str, ocv_table: str | None, n_eval: int, normalize_reward: bool):
    """``(env, eval_env)``: ``training.n_envs`` training packs and ``n_eval`` evaluation packs of
    ``profile``, unseeded (the caller seeds them: training packs from the run seed, evaluation packs
    from a disjoint range).

    VecMonitor sits inside VecNormalize, so logged episode returns are the raw ones. Returns of
    ~-200 would otherwise make the value loss dominate PPO's clipped gradient (max_grad_norm).
    """
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from bmsrl.vec_env import BatchedBalancingVecEnv

    training = TrainingSettings.of(cfg)
    hyperparams = training.hyperparams[algo]
    kwargs = task_kwargs(cfg, profile, ocv_table)
    env = VecMonitor(BatchedBalancingVecEnv(int(training.n_envs), **kwargs))
    eval_env = VecMonitor(BatchedBalancingVecEnv(n_eval, **kwargs))
    if normalize_reward:
        env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=hyperparams.get("gamma", 0.99))
        eval_env = VecNormalize(eval_env, training=False, norm_obs=False, norm_reward=False)
    return env, eval_env


def new_model(algo: str, env, seed: int, hyperparams: dict, tensorboard: Path | None = None):
    """A new ``algo`` model on ``env`` with ``hyperparams`` (its constructor's keyword arguments)."""
    spec = algos.get(algo)
    hyperparams = dict(hyperparams)
    if spec.adam:
        policy_kwargs = dict(hyperparams.pop("policy_kwargs", {}))
        policy_kwargs.setdefault("optimizer_kwargs", {}).setdefault("fused", True)
        hyperparams["policy_kwargs"] = policy_kwargs
    return algorithm_class(algo)("MlpPolicy", env, seed=seed, verbose=0, device="cpu",
                                 tensorboard_log=str(tensorboard) if tensorboard else None, **hyperparams)  # fmt: skip


def evaluation_class(model):
    """The seeded evaluation callback (:func:`seeded_evaluation`) for ``model``: on sb3-contrib's
    masked EvalCallback when its ``predict`` reads the action masks (MaskablePPO, DQN greedy over
    the valid actions), so that the best model is chosen by the policy evaluation runs."""
    if reads_action_masks(model):
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as base
    else:
        base = EvalCallback
    return seeded_evaluation(base)


class SaveBest(BaseCallback):
    """Called by the evaluation callback on a new best mean return: ``best_model.zip``, atomically."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _on_step(self) -> bool:
        with atomic_output(self.path) as tmp, open(tmp, "wb") as handle:
            self.model.save(handle)
        return True


def seeded_evaluation(base: type[EvalCallback]):
    """``base`` (SB3's or sb3-contrib's masked EvalCallback) evaluating on the same packs every
    time, once more at the end of training, writing ``evaluations.npz`` atomically and logging a line
    per evaluation."""

    class SeededEvaluation(base):
        def __init__(self, eval_env, *, seed: int, work: Path, total_steps: int, **kwargs) -> None:
            # SB3 writes its own evaluations file in place; it goes to a scratch folder and the
            # published working copy is written atomically from the same arrays below.
            super().__init__(eval_env, log_path=str(work / "sb3"), best_model_save_path=None,
                             callback_on_new_best=SaveBest(work / "best_model.zip"), **kwargs)
            self.seed, self.work, self.total_steps = seed, work, total_steps
            self._clock = (time.perf_counter(), 0)

        def _on_step(self) -> bool:
            due = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
            if due:
                self.eval_env.seed(self.seed)
            keep_going = super()._on_step()
            if due:
                self._publish()
            return keep_going

        def _on_training_end(self) -> None:
            if not self.evaluations_timesteps or self.evaluations_timesteps[-1] != self.num_timesteps:
                every, self.eval_freq = self.eval_freq, 1
                self._on_step()
                self.eval_freq = every

        def restore(self, path: Path, resume_steps: int) -> None:
            """Carry the evaluation history of ``path`` up to ``resume_steps`` over a restart."""
            try:
                with np.load(path) as old:
                    keep = old["timesteps"] <= resume_steps
                    history = (list(old["timesteps"][keep]), [list(r) for r in old["results"][keep]],
                               [list(r) for r in old["ep_lengths"][keep]])
            except Exception as exc:  # unreadable: the curve restarts, the model does not
                log.warning("evaluation history %s is unreadable (%s): starting it afresh", path, exc)
                return
            self.evaluations_timesteps, self.evaluations_results, self.evaluations_length = history
            if history[0]:
                self.best_mean_reward = float(np.max(np.mean(history[1], axis=1)))

        def _publish(self) -> None:
            with atomic_output(self.work / "evaluations.npz") as tmp, open(tmp, "wb") as handle:
                np.savez(handle, timesteps=self.evaluations_timesteps, results=self.evaluations_results,
                         ep_lengths=self.evaluations_length)
            start, start_steps = self._clock
            now = time.perf_counter()
            rate = (self.num_timesteps - start_steps) / max(now - start, 1e-9)
            self._clock = (now, self.num_timesteps)
            left = max(self.total_steps - self.num_timesteps, 0) / max(rate, 1e-9)
            log.info("eval at %d env steps: mean return %.2f +/- %.2f over %d episodes (best %.2f); "
                     "%.0f env-steps/s, about %.0f min left", self.num_timesteps, self.last_mean_reward,
                     float(np.std(self.evaluations_results[-1])), len(self.evaluations_results[-1]),
                     self.best_mean_reward, rate, left / 60)  # fmt: skip

    return SeededEvaluation
