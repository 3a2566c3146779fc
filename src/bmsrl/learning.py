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
from bmsrl.rollout import reads_action_masks
from bmsrl.settings import TrainingSettings, training_profiles
from bmsrl.task_config import task_kwargs

log = logging.getLogger("bmsrl.learning")


def learning_settings(cfg: dict, algo: str, profile: str, ocv_table: str | None) -> dict:
    """What decides what an agent learns, for training's settings record and the search's study
    identity alike: the algorithm and its hyperparameters, the batch, the task (env, reward,
    profile) and the digests of its tables."""
    training = TrainingSettings.of(cfg)
    kwargs = task_kwargs(cfg, profile, ocv_table)
    profiles = training_profiles(cfg, profile)
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
        # the raw observation (the default) adds nothing, so earlier records and studies keep their identity
        **({"features": training.features} if training.features != "raw" else {}),
        # one profile (the default) is ``profile`` above; a mix is recorded as well
        **({"profiles": list(profiles)} if len(profiles) > 1 or profiles[0] != profile else {}),
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
    """``(env, eval_env)``: ``training.n_envs`` training packs and ``n_eval`` evaluation packs on the
    training profiles (:func:`training_profiles`: ``profile`` unless ``training.profiles`` mixes
    several, pack k on the k-th modulo their number), unseeded (the caller seeds them: training packs from the run seed, evaluation packs
    from a disjoint range).

    VecMonitor sits inside VecNormalize, so logged episode returns are the raw ones. Returns of
    ~-200 would otherwise make the value loss dominate PPO's clipped gradient (max_grad_norm).
    """
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from bmsrl.vec_env import make_vec_env

    training = TrainingSettings.of(cfg)
    hyperparams = training.hyperparams[algo]
    kwargs = task_kwargs(cfg, profile, ocv_table)
    profiles = training_profiles(cfg, profile)
    env = VecMonitor(make_vec_env(int(training.n_envs), profiles, **kwargs))
    eval_env = VecMonitor(make_vec_env(n_eval, profiles, **kwargs))
    if normalize_reward:
        env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=hyperparams.get("gamma", 0.99))
        eval_env = VecNormalize(eval_env, training=False, norm_obs=False, norm_reward=False)
    return env, eval_env


def new_model(
    algo: str, env, seed: int, hyperparams: dict, tensorboard: Path | None = None, features: dict | None = None
):
    """A new ``algo`` model on ``env`` with ``hyperparams`` (its constructor's keyword arguments);
    ``features``: policy_kwargs that select the network's features (:func:`bmsrl.networks.features_policy_kwargs`)."""
    hyperparams = dict(hyperparams)
    policy_kwargs = policy_kwargs_of(algo, hyperparams.pop("policy_kwargs", {}), features)
    if policy_kwargs:
        hyperparams["policy_kwargs"] = policy_kwargs
    return algorithm_class(algo)(
        "MlpPolicy",
        env,
        seed=seed,
        verbose=0,
        device="cpu",
        tensorboard_log=str(tensorboard) if tensorboard else None,
        **hyperparams,
    )


def policy_kwargs_of(algo: str, policy_kwargs: dict | None, features: dict | None = None) -> dict:
    """The ``policy_kwargs`` an ``algo`` model is built with: the configured ones (``None``: none, as
    for SB3), the features' (:func:`features_of`), and the fused Adam of the algorithms that use Adam."""
    policy_kwargs = {**(policy_kwargs or {}), **(features or {})}
    if algos.get(algo).adam:
        policy_kwargs.setdefault("optimizer_kwargs", {}).setdefault("fused", True)
    return policy_kwargs


def policy_problem(cfg: dict, algo: str) -> str | None:
    """Why ``training.hyperparams[algo].policy_kwargs`` cannot build the policy network, or ``None``:
    the policy (SB3's ``MlpPolicy`` of the algorithm, no model, no replay buffer) is built once on
    the env's spaces for the config's pack, in milliseconds, so that ``net_arch: big`` is refused at
    start-up instead of by the training job, after the dry run planned it."""
    import inspect

    from bmsrl.env import PassiveBalancingEnv

    env = PassiveBalancingEnv(pack={"n_cells": cfg["env"]["n_cells"]})
    configured = cfg["training"]["hyperparams"][algo].get("policy_kwargs")
    if configured is not None and not isinstance(configured, dict):
        return f"training.hyperparams.{algo}.policy_kwargs: {configured!r} is not a mapping of keyword arguments"
    policy_class = algorithm_class(algo).policy_aliases["MlpPolicy"]
    features = features_of(cfg) if algos.get(algo).features_extractor else None  # as the config's rule says
    kwargs = policy_kwargs_of(algo, configured, features)
    if "lr_schedule" in inspect.signature(policy_class).parameters:
        kwargs["lr_schedule"] = lambda _progress: 1.0e-3
    try:
        policy_class(env.observation_space, env.action_space, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever SB3 or torch says of a bad keyword or value
        return (
            f"training.hyperparams.{algo}.policy_kwargs: {configured!r} does not build "
            f"{policy_class.__name__}'s network ({type(exc).__name__}: {exc})"
        )
    return None


def features_of(cfg: dict) -> dict:
    """The policy_kwargs of ``training.features`` for the config's pack (empty for ``raw``)."""
    from bmsrl.networks import features_policy_kwargs

    return features_policy_kwargs(cfg["training"]["features"], cfg["env"]["n_cells"], cfg["env"]["soc_limits"])


def build_learner(
    cfg: dict,
    algo: str,
    seed: int,
    profile: str,
    ocv_table: str | None,
    *,
    normalize_reward: bool,
    eval_episodes: int,
    eval_seed: int,
    eval_interval: int,
    total_steps: int,
    work: Path,
    tensorboard: Path | None = None,
    load=None,
    callback_after_eval: BaseCallback | None = None,
):
    """``(model, env, evaluation)`` of one run, as training and a search trial build it: every RNG
    seeded with ``seed``; ``training.n_envs`` training packs seeded from ``seed`` and
    ``eval_episodes`` evaluation packs (:func:`make_envs`); the model from ``load(env)`` (a resumed
    run; None: none) or new with ``training.hyperparams[algo]``; the seeded evaluation callback
    (:func:`evaluation_class`) on packs from ``eval_seed`` every ``eval_interval`` env steps, writing
    into ``work``."""
    seed_everything(seed, cfg["training"]["torch_threads"])
    env, eval_env = make_envs(cfg, algo, profile, ocv_table, eval_episodes, normalize_reward)
    env.seed(seed)
    model = load(env) if load is not None else None
    if model is None:
        model = new_model(algo, env, seed, cfg["training"]["hyperparams"][algo], tensorboard, features_of(cfg))
    evaluation = evaluation_class(model)(
        eval_env,
        seed=eval_seed,
        work=work,
        total_steps=total_steps,
        n_eval_episodes=eval_episodes,
        eval_freq=max(eval_interval // int(cfg["training"]["n_envs"]), 1),
        deterministic=True,
        verbose=0,
        callback_after_eval=callback_after_eval,
    )
    return model, env, evaluation


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
    per evaluation. Beside each episode's return it records the pack's capacity at the episode's
    end (``capacity_mah``: :meth:`bmsrl.env.BalancingTask.usable_capacity_ah`, from the ended
    episode's info), since a return is not a capacity (:data:`bmsrl.results.EVALUATIONS_ARRAYS`)."""

    class SeededEvaluation(base):
        def __init__(self, eval_env, *, seed: int, work: Path, total_steps: int, **kwargs) -> None:
            # SB3 writes its own evaluations file in place; it goes to a scratch folder and the
            # published working copy is written atomically from the same arrays below.
            super().__init__(
                eval_env,
                log_path=str(work / "sb3"),
                best_model_save_path=None,
                callback_on_new_best=SaveBest(work / "best_model.zip"),
                **kwargs,
            )
            self.seed, self.work, self.total_steps = seed, work, total_steps
            self._clock = (time.perf_counter(), 0)
            #: per evaluation, each episode's next-discharge capacity [mAh] (``capacity_mah`` of
            #: evaluations.npz), in the order of ``evaluations_results``' episodes
            self.evaluations_capacity: list[list[float]] = []
            self._capacity_buffer: list[float] = []

        def _log_success_callback(self, locals_: dict, globals_: dict) -> None:
            # called by SB3's evaluate_policy for each running pack before it records an ended
            # episode's return, so the capacities line up with the returns
            super()._log_success_callback(locals_, globals_)
            if locals_["done"]:
                self._capacity_buffer.append(1000.0 * float(locals_["info"]["usable_capacity_ah"]))

        def _on_step(self) -> bool:
            due = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
            if due:
                self.eval_env.seed(self.seed)
                self._capacity_buffer = []
            keep_going = super()._on_step()
            if due:
                self.evaluations_capacity.append(self._capacity_buffer)
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
                    history = (
                        list(old["timesteps"][keep]),
                        [list(r) for r in old["results"][keep]],
                        [list(r) for r in old["ep_lengths"][keep]],
                    )
                    # a file from before capacity_mah was recorded: those evaluations have none (NaN)
                    capacity = (
                        old["capacity_mah"][keep]
                        if "capacity_mah" in old.files
                        else np.full(np.shape(old["results"][keep]), np.nan)
                    )
            except Exception as exc:  # unreadable: the curve restarts, the model does not
                log.warning("evaluation history %s is unreadable (%s): starting it afresh", path, exc)
                return
            self.evaluations_timesteps, self.evaluations_results, self.evaluations_length = history
            self.evaluations_capacity = [list(c) for c in capacity]
            if history[0]:
                self.best_mean_reward = float(np.max(np.mean(history[1], axis=1)))

        def _publish(self) -> None:
            with atomic_output(self.work / "evaluations.npz") as tmp, open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    timesteps=self.evaluations_timesteps,
                    results=self.evaluations_results,
                    ep_lengths=self.evaluations_length,
                    capacity_mah=np.array(self.evaluations_capacity, dtype=np.float64),
                )
            start, start_steps = self._clock
            now = time.perf_counter()
            rate = (self.num_timesteps - start_steps) / max(now - start, 1e-9)
            self._clock = (now, self.num_timesteps)
            left = max(self.total_steps - self.num_timesteps, 0) / max(rate, 1e-9)
            log.info(
                "eval at %d env steps: mean return %.2f +/- %.2f over %d episodes (best %.2f), "
                "mean next-discharge capacity %.0f mAh; %.0f env-steps/s, about %.0f min left",
                self.num_timesteps,
                self.last_mean_reward,
                float(np.std(self.evaluations_results[-1])),
                len(self.evaluations_results[-1]),
                self.best_mean_reward,
                float(np.mean(self.evaluations_capacity[-1])),
                rate,
                left / 60,
            )

    return SeededEvaluation


def plateaued(mean_returns, patience: int, min_delta: float, min_evaluations: int) -> bool:
    """The early-stopping rule (``training.early_stopping``): has the evaluation return stopped rising?

    ``mean_returns`` are the mean returns of the evaluations so far, in order. True when at least
    ``min_evaluations`` evaluations were made, ``patience`` >= 1, and none of the last ``patience``
    evaluations beat the best return before them by more than ``min_delta``. A run whose return
    still rises, however slowly, by more than ``min_delta`` per ``patience`` evaluations goes on.
    """
    means = [float(m) for m in mean_returns]
    if patience < 1 or len(means) < max(min_evaluations, patience + 1):
        return False
    return max(means[-patience:]) <= max(means[:-patience]) + min_delta


class StopOnPlateau(BaseCallback):
    """Called by the evaluation callback after each evaluation (``callback_after_eval``): stops the
    run when :func:`plateaued` says so. It reads the evaluation history itself (restored on resume),
    so a resumed run decides as an uninterrupted one would."""

    def __init__(self, patience: int, min_delta: float, min_evaluations: int) -> None:
        super().__init__()
        self.patience, self.min_delta, self.min_evaluations = patience, min_delta, min_evaluations
        self.stopped_at: int | None = None

    def _on_step(self) -> bool:
        means = [float(np.mean(r)) for r in self.parent.evaluations_results]
        if not plateaued(means, self.patience, self.min_delta, self.min_evaluations):
            return True
        self.stopped_at = int(self.parent.num_timesteps)
        best = int(np.argmax(means))
        log.info(
            "stopping early at %d env steps: none of the last %d evaluations rose more than %g above "
            "the best before them (best mean return %.2f at %d env steps)",
            self.stopped_at,
            self.patience,
            self.min_delta,
            means[best],
            int(self.parent.evaluations_timesteps[best]),
        )
        return False


def early_stopping(settings) -> StopOnPlateau | None:
    """The early-stopping callback of ``training.early_stopping`` (:class:`bmsrl.settings.EarlyStoppingSettings`;
    ``None``: patience 0, never stop)."""
    if settings.patience < 1:
        return None
    return StopOnPlateau(int(settings.patience), float(settings.min_delta), int(settings.min_evaluations))
