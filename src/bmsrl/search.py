"""Hyperparameter search of one algorithm (Optuna), one trial per call, on the training profile.

    bmsrl search trial --config CFG --algo ppo --trial 0 --storage results/tuning/ppo/study.journal \\
        --ocv-table results/ocv/ocv_processed.csv --out results/tuning/ppo/trial0.json
    bmsrl search summary --config CFG --algo ppo --out results/tuning/ppo.yaml results/tuning/ppo/trial*.json

The search (docs/search.md): ``search.trials`` trials per algorithm, each its own process (a Snakemake
job, so trials run side by side on a workstation or as Slurm jobs) that joins one Optuna study kept in
a journal file (``JournalFileBackend`` with ``JournalFileOpenLock``: an ``O_EXCL`` lock file, which
works from several hosts on NFS v3+). Trial ``k`` samples the hyperparameters of ``search.space[algo]``
(TPE sampler seeded with ``search.sampler.seed + k``), merges them over ``training.hyperparams[algo]``,
trains ``search.total_steps[algo]`` env steps from seed ``search.seed_offset + 1 + k`` exactly as the
train stage would (:mod:`bmsrl.learning`) and reports the mean return over ``search.eval_episodes``
search-evaluation packs (children of ``SeedSequence(search.seed_offset)``, the same for every trial)
every ``search.eval_interval`` env steps to the median pruner. The objective is the mean return of
the last evaluation, at the end of the budget (what the trial's final policy earns, not the best
of several noisy evaluations). The validator refuses a config whose search seeds meet an evaluation
or training-evaluation seed.

The study's name is ``ALGO-<digest of the settings that define the search>``: a changed config starts
a new study in the same journal (more trials join the old one). A summary reads only the trial
records, refusing records of another study; it writes the best trial's hyperparameters, which
``bmsrl train --tuned-hyperparams`` merges over ``training.hyperparams[algo]``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bmsrl import algos
from bmsrl.config import add_config_arguments, config_from_args
from bmsrl.errors import UserError
from bmsrl.io import atomic_output, check_output
from bmsrl.seeds import held_out_seeds, search_eval_seed, search_train_seed
from bmsrl.settings import SearchSettings, TrainingSettings
from bmsrl.task_config import resolve_ocv_table

log = logging.getLogger("bmsrl.search")

#: the search maximises the mean evaluation return
DIRECTION = "maximize"


# ------------------------------------------------------------------------------------ settings
def search_settings(cfg: dict, algo: str, profile: str, ocv_table: str | None) -> dict:
    """Everything that changes what a trial measures (its study's identity); not the trial count."""
    from bmsrl.learning import learning_settings

    search = SearchSettings.of(cfg)
    return {
        **learning_settings(cfg, algo, profile, ocv_table),
        "total_steps": search.total_steps[algo],
        "eval_interval": search.eval_interval,
        "eval_episodes": search.eval_episodes,
        "seed_offset": search.seed_offset,
        "sampler": asdict(search.sampler),
        "pruner": asdict(search.pruner),
        "space": search.space[algo],
    }


def study_name(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return f"{settings['algo']}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def sample(trial, space: dict) -> dict:
    """The hyperparameters of ``trial`` drawn from ``space`` (``search.space[algo]``), in its order."""
    params = {}
    for name, dim in space.items():
        if dim["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, dim["choices"])
        elif dim["type"] == "int":
            params[name] = trial.suggest_int(name, dim["low"], dim["high"], log=dim.get("log", False))
        else:
            params[name] = trial.suggest_float(name, dim["low"], dim["high"], log=dim.get("log", False))
    return params


# ---------------------------------------------------------------------------------- the study
def check_journal(path: Path) -> None:
    """Refuse a study file that is not an Optuna journal: every complete line must be a JSON object
    with an ``op_code`` (a last line without its newline is a write in progress: Optuna skips it)."""
    if not path.exists():
        return
    if path.is_dir():
        raise UserError(f"study file {path}: is a directory, not an Optuna journal")
    try:
        lines = path.read_bytes().split(b"\n")[:-1]
    except OSError as exc:
        raise UserError(f"study file {path}: cannot read it ({exc.strerror or exc})") from None
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or "op_code" not in entry:
            raise UserError(f"study file {path}, line {number}: not an Optuna journal entry; the file is damaged "
                            f"or not a study: delete it (and {path.parent}/trial*.json) to start the search afresh")


def open_study(path: Path, name: str, cfg: dict, trial: int):
    """The study ``name`` in the journal ``path`` (created if need be), with trial ``trial``'s sampler."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    check_journal(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    search = SearchSettings.of(cfg)
    sampler = optuna.samplers.TPESampler(seed=search.sampler.seed + trial, constant_liar=True,
                                         n_startup_trials=search.sampler.n_startup_trials)  # fmt: skip
    pruner = optuna.pruners.MedianPruner(n_startup_trials=search.pruner.n_startup_trials,
                                         n_warmup_steps=search.pruner.n_warmup_steps)  # fmt: skip
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
        return optuna.create_study(storage=storage, study_name=name, direction=DIRECTION, sampler=sampler,
                                   pruner=pruner, load_if_exists=True)  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:  # a journal Optuna cannot replay
        raise UserError(f"study file {path}: Optuna cannot read it ({type(exc).__name__}: {exc}); delete it "
                        f"(and {path.parent}/trial*.json) to start the search afresh") from None


def report_to_trial(trial, budget: int):
    """An SB3 callback run after every evaluation: reports the mean return at the current env step to
    the Optuna trial and stops training when the pruner says so (not at the end of the ``budget``:
    a trial that has trained it all is complete)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class ReportToTrial(BaseCallback):
        pruned = False

        def _on_step(self) -> bool:
            value = float(self.parent.last_mean_reward)
            trial.report(value if math.isfinite(value) else float("-inf"), step=self.num_timesteps)
            self.pruned = self.num_timesteps < budget and trial.should_prune()
            return not self.pruned

    return ReportToTrial()


# ---------------------------------------------------------------------------------- one trial
def run_trial(cfg: dict, algo: str, job: int, storage: Path, ocv_table: str | None = None,
              profile: str | None = None) -> dict:  # fmt: skip
    """Run search trial ``job`` of ``algo``; returns its record (see :func:`write_trial`)."""
    from optuna.trial import TrialState

    from bmsrl.learning import evaluation_class, make_envs, new_model, seed_everything

    spec = algos.get(algo)
    search, training = SearchSettings.of(cfg), TrainingSettings.of(cfg)
    space = search.space[algo]
    if not space:
        raise UserError(f"search.space.{algo} is empty: nothing to search")
    seed, eval_seed = search_train_seed(cfg, job), search_eval_seed(cfg)
    held_out = held_out_seeds(cfg)  # the validator checks trials 0..search.trials - 1; a job checks its own
    for used in (seed, eval_seed):
        if used in held_out:
            raise UserError(f"--trial {job}: search seed {used} is the {held_out[used]}; the search must never "
                            "see an evaluation pack (search.seed_offset)")
    profile = profile or cfg["profiles"]["train"]
    name = study_name(search_settings(cfg, algo, profile, ocv_table))
    study = open_study(storage, name, cfg, job)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if stale.user_attrs.get("job") == job:  # an earlier run of this job was killed
            log.info("trial %d of %s was left running by a killed job: marked failed", stale.number, name)
            study.tell(stale.number, state=TrialState.FAIL, skip_if_finished=True)
    trial = study.ask()
    trial.set_user_attr("job", job)
    trial.set_user_attr("seed", seed)
    params = sample(trial, space)
    hyperparams = {**training.hyperparams[algo], **params}
    log.info("%s trial %d (job %d, seed %d): %s", name, trial.number, job, seed, json.dumps(params))

    steps = int(search.total_steps[algo])
    n_envs = int(training.n_envs)
    run_cfg = copy.deepcopy(cfg)
    run_cfg["training"]["hyperparams"][algo] = hyperparams
    start = time.perf_counter()
    try:
        seed_everything(seed, training.torch_threads)
        env, eval_env = make_envs(run_cfg, algo, profile, ocv_table, search.eval_episodes,
                                  training.normalize_reward and spec.normalize_reward)  # fmt: skip
        env.seed(seed)
        model = new_model(algo, env, seed, hyperparams)
        report = report_to_trial(trial, steps)
        with tempfile.TemporaryDirectory(prefix="bmsrl-search-") as scratch:  # the trial keeps no model
            evaluation = evaluation_class(model)(
                eval_env, seed=eval_seed, work=Path(scratch), total_steps=steps,
                n_eval_episodes=search.eval_episodes, eval_freq=max(search.eval_interval // n_envs, 1),
                deterministic=True, verbose=0, callback_after_eval=report,
            )  # fmt: skip
            model.learn(total_timesteps=steps, callback=evaluation)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    curve = [{"steps": int(t), "mean_return": float(sum(r) / len(r))}
             for t, r in zip(evaluation.evaluations_timesteps, evaluation.evaluations_results)]  # fmt: skip
    value = curve[-1]["mean_return"] if curve else float("nan")
    if report.pruned:
        state = TrialState.PRUNED
        study.tell(trial, state=state)
    elif math.isfinite(value):
        state = TrialState.COMPLETE
        study.tell(trial, value)
    else:  # a diverged run: a result of the search, not a failure of the job
        state = TrialState.FAIL
        study.tell(trial, state=state)
    return {
        "algo": algo,
        "study": name,
        "job": job,
        "trial": trial.number,
        "state": state.name,
        "value": value if state == TrialState.COMPLETE else None,
        "params": params,
        "seed": seed,
        "eval_seed": eval_seed,
        "eval_episodes": search.eval_episodes,
        "profile": profile,
        "steps": int(model.num_timesteps),
        "budget_steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
        "evaluations": curve,
    }


def write_trial(record: dict, out: Path) -> None:
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------ summary
def read_trials(paths: list[Path], algo: str, name: str) -> list[dict]:
    """The trial records of study ``name``, by job; a record of another algorithm or study is an error."""
    records = []
    for path in paths:
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"trial record {path}: file not found") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"trial record {path}: not readable JSON ({exc})") from None
        if not isinstance(record, dict) or {"algo", "study", "job", "state", "params"} - set(record):
            raise UserError(f"trial record {path}: not a record of `bmsrl search trial`")
        if record["algo"] != algo or record["study"] != name:
            raise UserError(f"trial record {path}: belongs to study {record['study']!r}, not {name!r} (the config's "
                            f"search of {algo}); rerun that trial or delete the file")
        records.append(record)
    return sorted(records, key=lambda r: r["job"])


def summarize(cfg: dict, algo: str, records: list[dict], name: str) -> dict:
    """The search's result: the best completed trial's hyperparameters, the budget, the seeds, every trial."""
    complete = [r for r in records if r["state"] == "COMPLETE"]
    if not complete:
        states = ", ".join(f"job {r['job']}: {r['state']}" for r in records) or "no trials"
        raise UserError(f"search of {algo}: no trial completed ({states}); nothing to choose from")
    best = max(complete, key=lambda r: (r["value"], -r["job"]))
    search = SearchSettings.of(cfg)
    return {
        "algo": algo,
        "study": name,
        "objective": (f"mean return (reward as configured) of the deterministic policy on {search.eval_episodes} "
                      f"search-evaluation packs (SeedSequence({search_eval_seed(cfg)})) of profile "
                      f"{best['profile']}, after {search.total_steps[algo]} env steps"),
        "best": {"job": best["job"], "trial": best["trial"], "value": best["value"], "seed": best["seed"]},
        "hyperparams": best["params"],
        "budget": {"trials": len(records), "steps_per_trial": search.total_steps[algo],
                   "eval_interval": search.eval_interval, "eval_episodes": search.eval_episodes,
                   "env_steps": sum(r["steps"] for r in records)},  # fmt: skip
        "states": {state: sum(r["state"] == state for r in records) for state in ("COMPLETE", "PRUNED", "FAIL")},
        "trials": [{"job": r["job"], "trial": r["trial"], "state": r["state"], "value": r["value"],
                    "steps": r["steps"], "seconds": r["seconds"], **r["params"]} for r in records],  # fmt: skip
    }


def write_summary(summary: dict, out: Path) -> None:
    import yaml

    header = ("# Hyperparameter search (bmsrl search summary; docs/search.md). `hyperparams` is what\n"
              "# training.tuned_hyperparams merges over training.hyperparams of this algorithm.\n")  # fmt: skip
    with atomic_output(out) as tmp:
        tmp.write_text(header + yaml.safe_dump(summary, sort_keys=False), encoding="utf-8")


# ----------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    trial = sub.add_parser("trial", help="run one trial of the search (one Snakemake job)")
    summary = sub.add_parser("summary", help="collect the trials: the best hyperparameters (results/tuning/ALGO.yaml)")
    for p in (trial, summary):
        add_config_arguments(p)
        p.add_argument("--algo", required=True, choices=list(algos.ALGOS))
        p.add_argument("--ocv-table", help="processed OCV table (default: the config's ocv_table)")
        p.add_argument("--profile", help="training load profile (default: the config's profiles.train)")
        p.add_argument("--out", required=True, type=Path, help="the trial record (.json) / the summary (.yaml)")
    trial.add_argument("--trial", required=True, type=int, help="trial index k (0 .. search.trials - 1): its seed and sampler seed")
    trial.add_argument("--storage", required=True, type=Path, help="the study's Optuna journal file, shared by the trials")
    summary.add_argument("records", nargs="+", type=Path, metavar="TRIAL.json", help="records of `bmsrl search trial`")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    check_output(args.out, "--out")
    ocv_table = resolve_ocv_table(args.ocv_table, cfg)
    profile = args.profile or cfg["profiles"]["train"]
    if args.action == "trial":
        if args.trial < 0:
            raise UserError(f"--trial must be >= 0, got {args.trial}")
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg["training"]["torch_threads"]))
        record = run_trial(cfg, args.algo, args.trial, args.storage, ocv_table, profile)
        write_trial(record, args.out)
        shown = "" if record["value"] is None else f" mean return {record['value']:.2f}"
        print(f"search trial: {record['study']} trial {record['trial']} (job {args.trial}) {record['state']}"
              f"{shown} after {record['steps']} env steps -> {args.out}")
        return 0
    name = study_name(search_settings(cfg, args.algo, profile, ocv_table))
    summary = summarize(cfg, args.algo, read_trials(args.records, args.algo, name), name)
    write_summary(summary, args.out)
    print(f"search summary: {name}: best trial {summary['best']['trial']} (job {summary['best']['job']}) mean return "
          f"{summary['best']['value']:.2f}, {summary['states']} -> {args.out}")
    return 0
