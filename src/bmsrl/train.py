"""Train one agent (algorithm x seed) on the batched balancing environment.

    bmsrl train --config config/config.yaml --algo ppo --seed 1 \\
        --out results/checkpoints/ppo_seed1 --tensorboard results/runs/ppo_seed1

The run reads top to bottom (:func:`train`): config -> the run's settings record -> seeds and
threads -> environments -> model (new, or resumed from the newest readable checkpoint) ->
callbacks -> learn -> publish.

Outputs in ``OUT``: ``best_model.zip`` (best mean evaluation return), ``final_model.zip``,
``evaluations.npz`` (Stable-Baselines3 EvalCallback arrays plus the run's labels ``algo`` and
``seed``) and ``run_config.json`` (what made the models: algorithm, pack shape, every setting that
changes training, package versions); TensorBoard events in ``--tensorboard``. They appear only when
training has finished; until then their working copies live in ``OUT/checkpoints/`` beside the
periodic ``model_<steps>_steps.zip`` (and the DQN replay buffer, the reward normalizer), every file
written atomically. A job killed half-way and started again continues from its newest readable
checkpoint: the step count, the evaluation history and (for DQN) the replay buffer carry on.
Checkpoints made with other settings (``checkpoints/run_config.json`` differs) or for a larger
budget (``training.total_steps``) are discarded, with a log line naming the settings that changed.
A best model that does not load is never published.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from bmsrl import algos
from bmsrl.agents import algorithm_class
from bmsrl.config import add_config_arguments, config_from_args, seed_argument, validate
from bmsrl.errors import UserError
from bmsrl.io import atomic_output, check_output
from bmsrl.learning import build_learner, early_stopping, learning_settings
from bmsrl.results import read_tuned_hyperparams, write_evaluations
from bmsrl.seeds import training_eval_seed
from bmsrl.settings import TrainingSettings, check_profile_option
from bmsrl.task_config import resolve_ocv_table
from bmsrl.versions import package_versions

log = logging.getLogger("bmsrl.train")

_CHECKPOINT = re.compile(r"model_(\d+)_steps\.zip$")
RUN_RECORD = "run_config.json"


# ------------------------------------------------------------------------------------ settings
def run_settings(
    cfg: dict, algo: str, seed: int, profile: str, ocv_table: str | None, tuned: dict | None = None
) -> dict:
    """Everything that changes what a training run learns: a checkpoint made with other settings
    cannot be resumed, and a model is evaluated only under the env settings it was trained with.
    (``total_steps`` is left out: a longer budget continues a run; :func:`prepare_workdir` starts a
    shorter one afresh.) ``tuned``: the search result the hyperparameters come from
    (:func:`bmsrl.results.read_tuned_hyperparams`), recorded when given."""
    settings = {
        **learning_settings(cfg, algo, profile, ocv_table),
        "seed": seed,
        "eval_episodes": TrainingSettings.of(cfg).eval_episodes,
        "eval_seed": training_eval_seed(cfg, seed),
    }
    if tuned is not None:
        settings["tuned_hyperparams"] = tuned
    return settings


def _write_json(path: Path, record: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def prepare_workdir(work: Path, settings: dict, total_steps: int) -> None:
    """Keep the checkpoints in ``work`` only if they were made with ``settings`` and for a budget of
    at most ``total_steps`` env steps; record both (``run_config.json``).

    A longer budget continues a run. A shorter one starts afresh: the checkpoints, the best model
    and the evaluation history of a longer run may lie past the new budget."""
    record = work / RUN_RECORD
    old_record: dict = {}
    if work.exists():
        try:
            old_record = json.loads(record.read_text())
            old = old_record["settings"]
        except (OSError, ValueError, KeyError, TypeError):
            old, old_record = None, {}
        newest = checkpoints(work)[:1]
        budget = old_record.get("total_steps", newest[0][0] if newest else 0)
        if old != json.loads(json.dumps(settings, default=str)):
            changed = (
                sorted(k for k in settings if old is None or old.get(k) != settings[k]) if old else ["(no record)"]
            )
            log.info(
                "settings changed since the checkpoints in %s were written (%s): starting afresh",
                work,
                ", ".join(changed),
            )
        elif not isinstance(budget, int) or budget > total_steps:
            log.info(
                "the checkpoints in %s were made for a budget of %s env steps, more than %d: starting afresh",
                work,
                budget,
                total_steps,
            )
        else:
            work.mkdir(parents=True, exist_ok=True)
            if budget != total_steps:  # a longer budget continues the run: the record says the new one
                _write_json(record, {**old_record, "total_steps": total_steps})
            return
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    _write_json(record, {"settings": settings, "total_steps": total_steps, "versions": package_versions()})


# ---------------------------------------------------------------------------------- checkpoints
def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The periodic checkpoints in ``folder`` as ``(steps, path)``, newest first."""
    found = [(int(m.group(1)), p) for p in folder.glob("model_*_steps.zip") if (m := _CHECKPOINT.search(p.name))]
    return sorted(found, reverse=True)


def load_newest(algo_class, work: Path, env, tensorboard: Path | None):
    """The model of the newest checkpoint that loads, or ``None``; unreadable ones are logged and skipped."""
    for steps, path in checkpoints(work):
        try:
            model = algo_class.load(
                path, env=env, device="cpu", tensorboard_log=str(tensorboard) if tensorboard else None
            )
        except Exception as exc:  # a cut or corrupt zip: fall back to the previous checkpoint
            log.warning("checkpoint %s is unreadable (%s: %s): trying the previous one", path, type(exc).__name__, exc)
            continue
        log.info("resuming from %s (%d env steps done)", path, steps)
        buffer = work / f"replay_buffer_{steps}.pkl"
        if hasattr(model, "load_replay_buffer"):
            if buffer.exists():
                model.load_replay_buffer(buffer)
            else:
                log.warning("no replay buffer saved with %s: resuming with an empty buffer", path.name)
        return model
    return None


class AtomicCheckpoint(BaseCallback):
    """Every ``every`` env steps: the model, and (DQN) its replay buffer and (on-policy) the reward
    normalizer, each written through a temporary file, so no checkpoint is ever half-written."""

    def __init__(self, folder: Path, every: int, resume_steps: int) -> None:
        super().__init__()
        self.folder, self.every = folder, max(every, 1)
        self.next_at = (resume_steps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_at:
            self.next_at += self.every
            self.save()
        return True

    def save(self) -> None:
        steps = self.num_timesteps
        if getattr(self.model, "replay_buffer", None) is not None:
            with atomic_output(self.folder / f"replay_buffer_{steps}.pkl") as tmp, open(tmp, "wb") as handle:
                self.model.save_replay_buffer(handle)
            for old in self.folder.glob("replay_buffer_*.pkl"):  # one buffer is ~100 MB: keep the newest
                if old.name != f"replay_buffer_{steps}.pkl":
                    old.unlink()
        normalizer = self.model.get_vec_normalize_env()
        if normalizer is not None:
            with atomic_output(self.folder / f"vecnormalize_{steps}.pkl") as tmp:
                normalizer.save(str(tmp))
        with atomic_output(self.folder / f"model_{steps}_steps.zip") as tmp, open(tmp, "wb") as handle:
            self.model.save(handle)


class ProgressLine(BaseCallback):
    """In a terminal: one line, redrawn about once a second, with the env steps done, env-steps/s,
    the last evaluation's mean return and the time left (no dependency beyond the terminal)."""

    def __init__(self, total_steps: int, evaluation: EvalCallback, stream=sys.stderr, width: int = 24) -> None:
        super().__init__()
        self.total, self.evaluation, self.stream, self.width = total_steps, evaluation, stream, width
        self._last = (0.0, 0)

    def _on_training_start(self) -> None:
        self._last = (time.perf_counter(), self.num_timesteps)

    def _on_step(self) -> bool:
        if time.perf_counter() - self._last[0] >= 1.0:
            self._draw()
        return True

    def _on_training_end(self) -> None:
        self._draw()
        self.stream.write("\n")

    def _draw(self) -> None:
        now = time.perf_counter()
        rate = (self.num_timesteps - self._last[1]) / max(now - self._last[0], 1e-9)
        self._last = (now, self.num_timesteps)
        self.stream.write(
            "\r" + progress_text(self.num_timesteps, self.total, rate, self.evaluation.evaluations_results, self.width)
        )
        self.stream.flush()


def progress_text(done: int, total: int, rate: float, results: list, width: int = 24) -> str:
    """``[#####.....]  1.20 M / 15.00 M env steps  11,800 /s  last eval -12.3  about 21 min left``."""
    filled = int(width * min(done / max(total, 1), 1.0))
    last = f"last eval {np.mean(results[-1]):.1f}" if results else "no eval yet"
    left = f"about {max(total - done, 0) / rate / 60:.0f} min left" if rate > 0 else "time left unknown"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done / 1e6:.2f} M / {total / 1e6:.2f} M env steps  "
        f"{rate:,.0f} /s  {last}  {left}"
    )


class EpisodeStats(BaseCallback):
    """Log the final SoC spread of finished training episodes to TensorBoard."""

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            if "terminal_observation" in info and "soc" in info:
                self.logger.record_mean("rollout/final_soc_std_pct", 100.0 * float(np.std(info["soc"])))
        return True


# ---------------------------------------------------------------------------------------- train
def train(
    cfg: dict,
    algo: str,
    seed: int,
    out: Path,
    tensorboard: Path | None = None,
    ocv_table: str | None = None,
    profile: str | None = None,
    tuned: dict | None = None,
) -> Path:
    """Train ``algo`` with ``seed``; returns the path of ``final_model.zip``. ``tuned``: the search
    result whose hyperparameters ``cfg`` carries (recorded in ``run_config.json``)."""
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.vec_env import VecNormalize

    training = TrainingSettings.of(cfg)
    total_steps = int(training.total_steps[algo])
    n_envs = int(training.n_envs)
    hyperparams = dict(training.hyperparams[algo])
    profile = profile or cfg["profiles"]["train"]

    # The settings record: checkpoints of other settings are not resumed.
    work = out / "checkpoints"
    settings = run_settings(cfg, algo, seed, profile, ocv_table, tuned)
    prepare_workdir(work, settings, total_steps)

    def resume(env):
        """The newest readable checkpoint (and its reward statistics), or None."""
        model = load_newest(algorithm_class(algo), work, env, tensorboard)
        if model is not None and settings["normalize_reward"]:
            stats = work / f"vecnormalize_{model.num_timesteps}.pkl"
            if stats.exists():
                env.ret_rms = VecNormalize.load(str(stats), env.venv).ret_rms
        return model

    # Environments (training packs seeded from the run seed; evaluation packs from a disjoint range),
    # the model (resumed from the newest readable checkpoint, or new) and the periodic evaluation on
    # fixed packs (best model, history), built as a search trial builds them.
    model, env, evaluation = build_learner(
        cfg,
        algo,
        seed,
        profile,
        ocv_table,
        normalize_reward=settings["normalize_reward"],
        eval_episodes=training.eval_episodes,
        eval_seed=training_eval_seed(cfg, seed),
        eval_interval=training.eval_interval,
        total_steps=total_steps,
        work=work,
        tensorboard=tensorboard,
        load=resume,
        callback_after_eval=early_stopping(training.early_stopping),
    )
    done_steps = int(model.num_timesteps)

    # Callbacks: the evaluation, checkpoints, statistics.
    if done_steps:
        evaluation.restore(work / "evaluations.npz", done_steps)
    callbacks = [evaluation, AtomicCheckpoint(work, training.checkpoint_interval, done_steps), EpisodeStats()]
    if sys.stderr.isatty():  # in a terminal: a progress line; in a log file, one line per evaluation
        callbacks.append(ProgressLine(total_steps, evaluation))

    # Learn.
    start = time.perf_counter()
    if done_steps < total_steps:
        log.info(
            "training %s seed %d: %d of %d env steps to go, %d packs",
            algo,
            seed,
            total_steps - done_steps,
            total_steps,
            n_envs,
        )
        model.learn(
            total_timesteps=total_steps - done_steps,
            callback=CallbackList(callbacks),
            log_interval=algos.sb3_log_interval(algo, training.log_interval, n_envs, hyperparams),
            tb_log_name="run",
            reset_num_timesteps=done_steps == 0,
        )
    elapsed = time.perf_counter() - start

    # Publish: the final model, the best model, the evaluation history and the settings record.
    final = out / "final_model.zip"
    with atomic_output(final) as tmp, open(tmp, "wb") as handle:
        model.save(handle)
    with atomic_output(out / "best_model.zip") as tmp:
        shutil.copyfile(work / "best_model.zip", tmp)
        check_model_loads(algorithm_class(algo), tmp, work / "best_model.zip")
    with atomic_output(out / "evaluations.npz") as tmp:
        write_evaluations(tmp, work / "evaluations.npz", algo, seed)
    with atomic_output(out / RUN_RECORD) as tmp:
        shutil.copyfile(work / RUN_RECORD, tmp)
    steps = int(model.num_timesteps) - done_steps
    log.info(
        "trained %s seed %d: %d env steps in %.1f s (%s env-steps/s); total %d",
        algo,
        seed,
        steps,
        elapsed,
        f"{steps / max(elapsed, 1e-9):,.0f}",
        model.num_timesteps,
    )
    return final


def check_model_loads(algo_class, path: Path, source: Path) -> None:
    """Refuse to publish a model (``path``, a copy of ``source``) that does not load: a zip cut by a
    kill or a full disk would otherwise be published and fail only at evaluation ("No data found")."""
    try:
        algo_class.load(path, device="cpu")
    except Exception as exc:  # noqa: BLE001 - a cut zip raises whatever the zip or torch reader raises
        raise UserError(
            f"{source}: the model does not load ({type(exc).__name__}: {exc}); it was cut by a kill or "
            f"a full disk: delete {source.parent} and rerun to train afresh"
        ) from None


# ----------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--algo", required=True, choices=list(algos.ALGOS))
    parser.add_argument(
        "--seed", required=True, type=seed_argument(), help="seeds python, numpy, torch and the env (0..999999)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (checkpoints, best/final model)")
    parser.add_argument("--tensorboard", type=Path, help="TensorBoard log folder")
    parser.add_argument("--ocv-table", help="processed OCV table (default: the config's ocv_table)")
    parser.add_argument("--profile", help="training load profile (default: the config's profiles.train)")
    parser.add_argument("--total-steps", type=int, help="override training.total_steps for this algorithm")
    parser.add_argument("--eval-interval", type=int, help="override training.eval_interval [env steps]")
    parser.add_argument("--log-interval", type=int, help="override training.log_interval [env steps]")
    parser.add_argument(
        "--tuned-hyperparams",
        type=Path,
        metavar="YAML",
        help="with training.tuned_hyperparams: the search result (results/tuning/ALGO.yaml) whose "
        "hyperparameters override training.hyperparams",
    )


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    training = cfg["training"]
    for key, value in (
        ("eval_interval", args.eval_interval),
        ("log_interval", args.log_interval),
        ("total_steps", args.total_steps),
    ):
        if value is not None and value < 1:
            raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
    check_output(args.out, "--out", folder=True)
    check_output(args.tensorboard, "--tensorboard", folder=True)
    training["eval_interval"] = args.eval_interval or training["eval_interval"]
    training["log_interval"] = args.log_interval or training["log_interval"]
    if args.total_steps is not None:
        training["total_steps"][args.algo] = args.total_steps
    tuned = tuned_hyperparams(cfg, args.algo, args.tuned_hyperparams)
    ocv_table = resolve_ocv_table(args.ocv_table, cfg)
    check_profile_option(cfg, args.profile)
    os.environ.setdefault("OMP_NUM_THREADS", str(training["torch_threads"]))
    train(cfg, args.algo, args.seed, args.out, args.tensorboard, ocv_table, args.profile, tuned)
    return 0


def tuned_hyperparams(cfg: dict, algo: str, path: Path | None) -> dict | None:
    """With ``training.tuned_hyperparams``: merge the search's best hyperparameters (``path``) over
    ``training.hyperparams[algo]`` in ``cfg`` and return what the run records of them; else ``None``."""
    wanted = TrainingSettings.of(cfg).tuned_hyperparams
    if not wanted:
        if path is not None:
            raise UserError(f"--tuned-hyperparams {path}: given, but training.tuned_hyperparams is false")
        return None
    if path is None:
        raise UserError(
            f"training.tuned_hyperparams is true: give --tuned-hyperparams results/tuning/{algo}.yaml "
            f"(the search's result: snakemake search)"
        )
    tuned = read_tuned_hyperparams(path, algo)
    cfg["training"]["hyperparams"][algo].update(tuned["hyperparams"])
    validate(cfg, str(path))  # the merged hyperparameters obey the config's rules
    log.info(
        "hyperparameters of %s (%s, trial %s): %s",
        path,
        tuned["study"],
        tuned["trial"],
        json.dumps(tuned["hyperparams"]),
    )
    return tuned
