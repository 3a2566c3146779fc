"""Train one agent (algorithm x seed) on the batched balancing environment.

    bmsrl train --config config/config.yaml --algo ppo --seed 1 \\
        --out results/checkpoints/ppo_seed1 --tensorboard results/runs/ppo_seed1

The run reads top to bottom: config -> seeds and threads -> environments -> model (new, or resumed
from the newest checkpoint in ``OUT/checkpoints``) -> callbacks -> learn -> ``final_model.zip``.

Outputs in ``OUT``: ``best_model.zip`` (best mean evaluation return), ``final_model.zip``,
``evaluations.npz`` (Stable-Baselines3 EvalCallback format), ``run_config.json``; TensorBoard events
in ``--tensorboard``. The three model/evaluation files appear only when training has finished;
until then their working copies live in ``OUT/checkpoints/`` beside the periodic
``model_<steps>_steps.zip`` (and the DQN replay buffer, the reward normalizer). A job killed
half-way and started again continues from its newest checkpoint: the step count, the evaluation
history and (for DQN) the replay buffer carry on. Checkpoints of a run with different settings
(``checkpoints/settings.json`` differs) are discarded rather than resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from bmsrl.config import add_config_arguments, config_from_args, task_kwargs
from bmsrl.errors import UserError
from bmsrl.tables import atomic_output

#: algorithm name -> (module, class). ``maskable_ppo`` is PPO that never samples an invalid action:
#: it reads the env's ``action_masks()`` (the invalid-action rules) at every step.
_CLASSES = {
    "dqn": ("stable_baselines3", "DQN"),
    "ppo": ("stable_baselines3", "PPO"),
    "maskable_ppo": ("sb3_contrib", "MaskablePPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "trpo": ("sb3_contrib", "TRPO"),
    "ars": ("sb3_contrib", "ARS"),
}
ALGOS = tuple(_CLASSES)
#: algorithms whose optimizer is torch's Adam, which takes ``fused=True`` on the CPU
_ADAM_ALGOS = ("dqn", "ppo", "maskable_ppo", "trpo")
_ON_POLICY = ("ppo", "maskable_ppo", "a2c", "trpo")
_MASKED = ("maskable_ppo",)
_CHECKPOINT = re.compile(r"model_(\d+)_steps\.zip$")


def algorithm_class(algo: str):
    """The Stable-Baselines3 / sb3-contrib class for ``algo``."""
    if algo not in ALGOS:
        raise UserError(f"unknown algorithm {algo!r}; choose one of {list(ALGOS)}")
    import importlib

    module, name = _CLASSES[algo]
    return getattr(importlib.import_module(module), name)


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


def newest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The checkpoint with the most steps in ``folder`` and its step count, or None."""
    found = [(int(m.group(1)), p) for p in folder.glob("model_*_steps.zip") if (m := _CHECKPOINT.search(p.name))]
    if not found:
        return None
    steps, path = max(found)
    return path, steps


def make_callbacks(cfg, out: Path, eval_env, n_envs: int, eval_seed: int, resume_steps: int, masked: bool = False):
    """Evaluation (best model + evaluations.npz), atomic checkpoints, episode statistics.

    ``masked``: evaluate with the env's action masks (MaskablePPO), as the agent acts in training.
    """
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EvalCallback

    if masked:
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as EvalCallback

    training = cfg["training"]

    class SeededEvalCallback(EvalCallback):
        """EvalCallback on the same evaluation packs every time, and once more at the end of training."""

        def _on_step(self) -> bool:
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                self.eval_env.seed(eval_seed)
            return super()._on_step()

        def _on_training_end(self) -> None:
            if not self.evaluations_timesteps or self.evaluations_timesteps[-1] != self.num_timesteps:
                every, self.eval_freq = self.eval_freq, 1
                self._on_step()
                self.eval_freq = every

    class AtomicCheckpoint(BaseCallback):
        """Checkpoint every ``every`` env steps, written through a temporary file (never half-written)."""

        def __init__(self, folder: Path, every: int) -> None:
            super().__init__()
            self.folder, self.every = folder, max(every, 1)
            self.next_at = (resume_steps // self.every + 1) * self.every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                self.next_at += self.every
                self.save()
            return True

        def save(self) -> None:
            path = self.folder / f"model_{self.num_timesteps}_steps.zip"
            with atomic_output(path) as tmp, open(tmp, "wb") as handle:
                self.model.save(handle)
            if hasattr(self.model, "replay_buffer") and self.model.replay_buffer is not None:
                with atomic_output(self.folder / "replay_buffer.pkl") as tmp, open(tmp, "wb") as handle:
                    self.model.save_replay_buffer(handle)
            normalizer = self.model.get_vec_normalize_env()
            if normalizer is not None:
                with atomic_output(self.folder / "vecnormalize.pkl") as tmp:
                    normalizer.save(str(tmp))

    class EpisodeStats(BaseCallback):
        """Log the final SoC spread of finished training episodes to TensorBoard."""

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                if "terminal_observation" in info and "soc" in info:
                    self.logger.record_mean("rollout/final_soc_std_pct", 100.0 * float(np.std(info["soc"])))
            return True

    work = out / "checkpoints"
    evaluation = SeededEvalCallback(
        eval_env,
        n_eval_episodes=training["eval_episodes"],
        eval_freq=max(training["eval_interval"] // n_envs, 1),
        best_model_save_path=str(work),
        log_path=str(work),
        deterministic=True,
        verbose=1,
    )
    previous = work / "evaluations.npz"
    if resume_steps and previous.exists():  # carry the evaluation history over a restart
        with np.load(previous) as old:
            keep = old["timesteps"] <= resume_steps
            evaluation.evaluations_timesteps = list(old["timesteps"][keep])
            evaluation.evaluations_results = [list(r) for r in old["results"][keep]]
            evaluation.evaluations_length = [list(r) for r in old["ep_lengths"][keep]]
            if keep.any():
                evaluation.best_mean_reward = float(np.max(old["results"][keep].mean(axis=1)))
    checkpoint = AtomicCheckpoint(work, training["checkpoint_interval"])
    return CallbackList([evaluation, checkpoint, EpisodeStats()])


def train(
    cfg: dict,
    algo: str,
    seed: int,
    out: Path,
    tensorboard: Path | None,
    ocv_table: str | None = None,
    profile: str | None = None,
) -> Path:
    """Train ``algo`` with ``seed``; returns the path of ``final_model.zip``."""
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from bmsrl.vec_env import BatchedBalancingVecEnv

    training = cfg["training"]
    algo_class = algorithm_class(algo)
    total_steps = int(training["total_steps"][algo])
    n_envs = int(training["n_envs"])
    hyperparams = dict(training["hyperparams"].get(algo, {}))
    profile = profile or cfg["profiles"]["train"]
    seed_everything(seed, training["torch_threads"])
    work = out / "checkpoints"
    _discard_stale_checkpoints(work, {"algo": algo, "seed": seed, "profile": profile, "n_envs": n_envs,
                                      "hyperparams": hyperparams, "env": cfg["env"], "reward": cfg["reward"],
                                      "ocv_table": ocv_table})  # fmt: skip

    # Environments: training packs seeded from the run seed; evaluation packs from a disjoint range.
    # VecMonitor sits inside VecNormalize, so logged episode returns are the raw ones. Returns of
    # ~-200 would otherwise make the value loss dominate PPO's clipped gradient (max_grad_norm).
    kwargs = task_kwargs(cfg, profile, ocv_table)
    env = VecMonitor(BatchedBalancingVecEnv(n_envs, **kwargs))
    eval_env = VecMonitor(BatchedBalancingVecEnv(training["eval_episodes"], **kwargs))
    normalize = training["normalize_reward"] and algo in _ON_POLICY
    if normalize:
        gamma = hyperparams.get("gamma", 0.99)
        env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=gamma)
        eval_env = VecNormalize(eval_env, training=False, norm_obs=False, norm_reward=False)
        stats = work / "vecnormalize.pkl"
        if stats.exists() and newest_checkpoint(work) is not None:
            env.ret_rms = VecNormalize.load(str(stats), env.venv).ret_rms
    env.seed(seed)
    eval_seed = cfg["evaluation"]["seed_offset"] + 1000 * seed + 500

    # Model: resumed from the newest checkpoint, or new.
    resume = newest_checkpoint(work)
    if resume is not None:
        path, steps = resume
        print(f"resuming from {path} ({steps} env steps done)", flush=True)
        model = algo_class.load(path, env=env, tensorboard_log=str(tensorboard) if tensorboard else None)
        buffer = work / "replay_buffer.pkl"
        if hasattr(model, "load_replay_buffer") and buffer.exists():
            model.load_replay_buffer(buffer)
    else:
        if algo in _ADAM_ALGOS:
            policy_kwargs = dict(hyperparams.pop("policy_kwargs", {}))
            policy_kwargs.setdefault("optimizer_kwargs", {}).setdefault("fused", True)
            hyperparams["policy_kwargs"] = policy_kwargs
        model = algo_class(
            "MlpPolicy", env, seed=seed, verbose=1, device="cpu",
            tensorboard_log=str(tensorboard) if tensorboard else None, **hyperparams,
        )  # fmt: skip
    done_steps = int(model.num_timesteps)
    _write_run_config(out / "run_config.json", cfg, algo, seed, profile, hyperparams, n_envs, total_steps)

    callbacks = make_callbacks(cfg, out, eval_env, n_envs, eval_seed, done_steps, masked=algo in _MASKED)
    start = time.perf_counter()
    if done_steps < total_steps:
        model.learn(
            total_timesteps=total_steps - done_steps,
            callback=callbacks,
            log_interval=_sb3_log_interval(algo, training["log_interval"], n_envs, hyperparams),
            tb_log_name="run",
            reset_num_timesteps=resume is None,
        )
    elapsed = time.perf_counter() - start
    final = out / "final_model.zip"
    with atomic_output(final) as tmp, open(tmp, "wb") as handle:
        model.save(handle)
    for name in ("best_model.zip", "evaluations.npz"):  # publish the working copies
        with atomic_output(out / name) as tmp:
            shutil.copyfile(work / name, tmp)
    steps = int(model.num_timesteps) - done_steps
    print(f"trained {algo} seed {seed}: {steps} env steps in {elapsed:.1f} s "
          f"({steps / max(elapsed, 1e-9):,.0f} env-steps/s); total {model.num_timesteps}", flush=True)
    return final


def _discard_stale_checkpoints(work: Path, settings: dict) -> None:
    """Keep ``work`` only if its checkpoints were made with ``settings``; record them."""
    record = work / "settings.json"
    text = json.dumps(settings, sort_keys=True, default=str)
    if work.exists() and (not record.exists() or record.read_text() != text):
        print(f"settings changed since the checkpoints in {work} were written: starting afresh", flush=True)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not record.exists():
        with atomic_output(record) as tmp:
            tmp.write_text(text)


def resolve_ocv_table(cli_value: str | None, cfg: dict) -> str | None:
    """The OCV table a stage uses: ``--ocv-table``, else the config's ``ocv_table``; ``None`` (the
    package's shipped table) when the config names the default file and it is not here."""
    from bmsrl.config import schema

    path = cli_value or cfg["ocv_table"]
    if Path(path).exists():
        return path
    if cli_value is None and path == schema()["properties"]["ocv_table"]["default"]:
        return None
    raise UserError(f"OCV table {path} does not exist (run `bmsrl ocv`, or set --ocv-table / ocv_table)")


def _sb3_log_interval(algo: str, log_interval_steps: int, n_envs: int, hyperparams: dict) -> int:
    """SB3 counts ``log_interval`` in rollouts (on-policy) or episodes (off-policy); convert from env steps."""
    if algo in ("ppo", "a2c", "trpo"):
        default_n_steps = {"ppo": 2048, "a2c": 5, "trpo": 2048}[algo]
        per_rollout = hyperparams.get("n_steps", default_n_steps) * n_envs
        return max(1, log_interval_steps // per_rollout)
    return max(1, log_interval_steps // 200)  # episodes last ~200 decision steps


def _write_run_config(path, cfg, algo, seed, profile, hyperparams, n_envs, total_steps) -> None:
    import stable_baselines3
    import torch

    record = {
        "algo": algo, "seed": seed, "profile": profile, "total_steps": total_steps, "n_envs": n_envs,
        "hyperparams": hyperparams, "env": cfg["env"], "reward": cfg["reward"],
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "stable_baselines3": stable_baselines3.__version__, "numpy": np.__version__},
    }  # fmt: skip
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))


# ----------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--algo", required=True, choices=ALGOS)
    parser.add_argument("--seed", required=True, type=int, help="seeds python, numpy, torch and the env")
    parser.add_argument("--out", required=True, type=Path, help="output folder (checkpoints, best/final model)")
    parser.add_argument("--tensorboard", type=Path, help="TensorBoard log folder")
    parser.add_argument("--ocv-table", help="processed OCV table (default: the config's ocv_table)")
    parser.add_argument("--profile", help="training load profile (default: the config's profiles.train)")
    parser.add_argument("--total-steps", type=int, help="override training.total_steps for this algorithm")
    parser.add_argument("--eval-interval", type=int, help="override training.eval_interval [env steps]")
    parser.add_argument("--log-interval", type=int, help="override training.log_interval [env steps]")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    training = cfg["training"]
    for key, value in (("eval_interval", args.eval_interval), ("log_interval", args.log_interval)):
        if value is not None:
            if value < 1:
                raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
            training[key] = value
    if args.total_steps is not None:
        if args.total_steps < 1:
            raise UserError(f"--total-steps must be >= 1, got {args.total_steps}")
        training["total_steps"][args.algo] = args.total_steps
    ocv_table = resolve_ocv_table(args.ocv_table, cfg)
    os.environ.setdefault("OMP_NUM_THREADS", str(training["torch_threads"]))
    train(cfg, args.algo, args.seed, args.out, args.tensorboard, ocv_table, args.profile)
    sys.stdout.flush()
    return 0
