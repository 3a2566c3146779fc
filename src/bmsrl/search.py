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
records, refusing records of another study (or of an earlier creation of it); it writes the best
trial's hyperparameters, which ``bmsrl train --tuned-hyperparams`` merges over
``training.hyperparams[algo]``.

Nothing loses the study: a last journal line cut by a kill or a full disk is dropped before the next
append (:func:`drop_cut_line`); one process at a time runs a trial (:func:`running_alone`); a trial's
record is written before the study is told its outcome.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path

from bmsrl import algos
from bmsrl.config import add_config_arguments, config_from_args, schema
from bmsrl.errors import UserError
from bmsrl.io import atomic_output, check_output, check_outputs
from bmsrl.seeds import held_out_seeds, search_eval_seed, search_train_seed
from bmsrl.settings import SearchSettings, check_profile_option
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
#: the first bytes of an SQLite database (a file given as ``--storage`` that Optuna's RDB storage wrote)
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: how a journal line begins (``json.dumps`` of a dict): a cut last line must begin so too
_JOURNAL_LINE_START = b"{"


def _damaged(path: Path, where: str, why: str) -> UserError:
    return UserError(
        f"study file {path}{where}: {why}; the file is damaged or not a study: delete it "
        f"(and {path.parent}/trial*.json) to start the search afresh"
    )


def check_journal(path: Path) -> None:
    """Refuse a study file that is not an Optuna journal: every complete line must be a JSON object
    with a known ``op_code``; a last line without its newline is a write in progress (or one cut by
    a kill or a full disk: :func:`drop_cut_line` removes it before the next write), but must begin
    as a journal line does."""
    try:  # the operation codes Optuna replays (a private enum: without it, Optuna's replay judges them)
        from optuna.storages.journal._storage import JournalOperation

        known = {op.value for op in JournalOperation}
    except ImportError:
        known = None

    if not path.exists():
        return
    if path.is_dir():
        raise UserError(f"study file {path}: is a directory, not an Optuna journal")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UserError(f"study file {path}: cannot read it ({exc.strerror or exc})") from None
    if content.startswith(_SQLITE_MAGIC):
        raise UserError(
            f"study file {path}: an SQLite database, not an Optuna journal (the search keeps its study "
            "in a journal file): give --storage a journal's path, e.g. results/tuning/ALGO/study.journal"
        )
    *lines, cut = content.split(b"\n")
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or "op_code" not in entry:
            raise _damaged(path, f", line {number}", "not an Optuna journal entry")
        op = entry["op_code"]
        if not isinstance(op, int) or isinstance(op, bool) or (known is not None and op not in known):
            raise _damaged(path, f", line {number}", f"unknown Optuna journal operation {op!r}")
    if cut and not cut.startswith(_JOURNAL_LINE_START):
        raise _damaged(path, f", line {len(lines) + 1}", "not an Optuna journal entry")


def drop_cut_line(path: Path) -> int:
    """Truncate the journal ``path`` after its last complete line; returns the bytes dropped.

    Called with the journal's lock held, where no other process is writing: a last line without its
    newline is then the remains of a write cut by a kill or a full disk. Appending onto it would make
    a complete line that is not JSON, and Optuna refuses the whole file from then on."""
    try:
        with open(path, "r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            end = size
            while end > 0:  # find the last newline, reading backwards in blocks
                start = max(end - 65536, 0)
                handle.seek(start)
                block = handle.read(end - start)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
            if end == size:
                return 0
            handle.seek(end)
            if not handle.read(1).startswith(_JOURNAL_LINE_START):
                raise _damaged(path, "", "its last line is not an Optuna journal entry")
            handle.truncate(end)
            handle.flush()
            os.fsync(handle.fileno())
    except FileNotFoundError:
        return 0
    log.warning(
        "study file %s: dropped a cut last line (%d bytes; a write interrupted by a kill or a full disk)",
        path,
        size - end,
    )
    return size - end


def _journal_backend(path: Path):
    """Optuna's journal file backend (``JournalFileOpenLock``) that drops a cut last line before each
    append (:func:`drop_cut_line`) and names the file when a write fails (a full disk)."""
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    lock = JournalFileOpenLock(str(path))

    class RepairingJournal(JournalFileBackend):
        def append_logs(self, logs: list[dict]) -> None:
            text = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs)
            try:
                lock.acquire()
                try:
                    drop_cut_line(path)
                    with open(path, "ab") as handle:
                        handle.write(text.encode("utf-8"))
                        handle.flush()
                        os.fsync(handle.fileno())
                finally:
                    lock.release()
            except OSError as exc:
                raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc

    try:
        return RepairingJournal(str(path), lock_obj=lock)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc


def open_study(path: Path, name: str, cfg: dict, trial: int):
    """The study ``name`` in the journal ``path`` (created if need be), with trial ``trial``'s sampler."""
    import optuna
    from optuna.storages import JournalStorage

    check_output(path, "--storage")
    check_journal(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    search = SearchSettings.of(cfg)
    sampler = optuna.samplers.TPESampler(
        seed=search.sampler.seed + trial, constant_liar=True, n_startup_trials=search.sampler.n_startup_trials
    )
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=search.pruner.n_startup_trials, n_warmup_steps=search.pruner.n_warmup_steps
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = _journal_backend(path)
    try:
        storage = JournalStorage(backend)
        return optuna.create_study(
            storage=storage, study_name=name, direction=DIRECTION, sampler=sampler, pruner=pruner, load_if_exists=True
        )
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever Optuna raises on a journal it cannot replay
        raise _damaged(path, "", f"Optuna cannot read it ({type(exc).__name__}: {exc or 'no message'})") from None


def study_instance(path: Path, name: str) -> str | None:
    """Which creation of study ``name`` the journal ``path`` holds: the Optuna worker id written with
    its first ``CREATE_STUDY`` entry (a new one after the journal was deleted or emptied)."""
    try:
        lines = path.read_bytes().split(b"\n")[:-1]
    except OSError:
        return None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("op_code") == 0 and entry.get("study_name") == name:
            return entry.get("worker_id")
    return None


@contextmanager
def running_alone(storage: Path, job: int) -> Iterator[None]:
    """Hold trial ``job``'s lock (``.STORAGE.trialK.lock`` beside the journal) while it runs; refuse
    to start if another process holds it (the same trial started twice: by hand and by a retry).

    A POSIX lock (``lockf``, honoured on NFS) dies with its process, so a trial whose job was killed
    is taken over by the rerun; the journal then still says RUNNING, and the rerun marks it failed."""
    import fcntl

    lock = storage.with_name(f".{storage.name}.trial{job}.lock")
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot write {lock}: {exc.strerror or exc}") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(
                f"--trial {job}: this trial of the study {storage} is running in another process "
                f"({holder}); wait for it to finish or stop it first"
            ) from None
        try:  # the lock file may have been removed by its previous holder between open and lock
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        with suppress(OSError):  # who holds it, for the message above (not written on a full disk)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        with suppress(OSError):
            lock.unlink()
        os.close(fd)


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
def run_trial(
    cfg: dict, algo: str, job: int, storage: Path, out: Path, ocv_table: str | None = None, profile: str | None = None
) -> dict:
    """Run search trial ``job`` of ``algo`` and write its record to ``out`` (see :func:`write_trial`);
    returns the record. The record is written before the trial is told to the study: a trial the
    study counts as complete always has its record (a full disk fails the trial instead)."""
    space = cfg["search"]["space"][algo]
    if not space:
        raise UserError(f"search.space.{algo} is empty: nothing to search")
    seed, eval_seed = search_train_seed(cfg, job), search_eval_seed(cfg)
    held_out = held_out_seeds(cfg)  # the validator checks trials 0..search.trials - 1; a job checks its own
    for used in (seed, eval_seed):
        if used in held_out:
            raise UserError(
                f"--trial {job}: search seed {used} is the {held_out[used]}; the search must never "
                "see an evaluation pack (search.seed_offset)"
            )
    profile = profile or cfg["profiles"]["train"]
    with running_alone(storage, job):
        return _run_trial(cfg, algo, job, storage, out, ocv_table, profile, seed, eval_seed)


def _tell_failed(study, trial) -> None:
    """Mark ``trial`` failed, if the journal can still be written (on a full disk it cannot: the trial
    stays RUNNING and the job's rerun marks it failed)."""
    from optuna.trial import TrialState

    with suppress(UserError, OSError):
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)


def _run_trial(
    cfg: dict,
    algo: str,
    job: int,
    storage: Path,
    out: Path,
    ocv_table: str | None,
    profile: str,
    seed: int,
    eval_seed: int,
) -> dict:
    from optuna.trial import TrialState

    from bmsrl.learning import build_learner

    spec = algos.get(algo)
    search, training = cfg["search"], cfg["training"]
    space = search["space"][algo]
    name = study_name(search_settings(cfg, algo, profile, ocv_table))
    study = open_study(storage, name, cfg, job)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if stale.user_attrs.get("job") == job:  # no process runs this job (its lock): an earlier run was killed
            log.info("trial %d of %s was left running by a killed job: marked failed", stale.number, name)
            study.tell(stale.number, state=TrialState.FAIL, skip_if_finished=True)
    trial = study.ask()
    trial.set_user_attr("job", job)
    trial.set_user_attr("seed", seed)
    params = sample(trial, space)
    hyperparams = {**training["hyperparams"][algo], **params}
    log.info("%s trial %d (job %d, seed %d): %s", name, trial.number, job, seed, json.dumps(params))

    steps = int(search["total_steps"][algo])
    run_cfg = copy.deepcopy(cfg)
    run_cfg["training"]["hyperparams"][algo] = hyperparams
    start = time.perf_counter()
    try:
        report = report_to_trial(trial, steps)
        with tempfile.TemporaryDirectory(prefix="bmsrl-search-") as scratch:  # the trial keeps no model
            model, _, evaluation = build_learner(
                run_cfg,
                algo,
                seed,
                profile,
                ocv_table,
                normalize_reward=training["normalize_reward"] and spec.normalize_reward,
                eval_episodes=search["eval_episodes"],
                eval_seed=eval_seed,
                eval_interval=search["eval_interval"],
                total_steps=steps,
                work=Path(scratch),
                callback_after_eval=report,
            )
            model.learn(total_timesteps=steps, callback=evaluation)
    except OSError as exc:  # a library writing in place (SB3's own evaluations file) on a full disk
        _tell_failed(study, trial)
        where = exc.filename or f"the trial's scratch folder in {tempfile.gettempdir()}"
        raise UserError(f"cannot write {where}: {exc.strerror or exc}") from exc
    except BaseException:
        _tell_failed(study, trial)
        raise
    curve = [
        {"steps": int(t), "mean_return": float(sum(r) / len(r))}
        for t, r in zip(evaluation.evaluations_timesteps, evaluation.evaluations_results)
    ]
    value = curve[-1]["mean_return"] if curve else float("nan")
    if report.pruned:
        state = TrialState.PRUNED
    elif math.isfinite(value):
        state = TrialState.COMPLETE
    else:  # a diverged run: a result of the search, not a failure of the job
        state = TrialState.FAIL
    record = {
        "algo": algo,
        "study": name,
        "study_instance": study_instance(storage, name),
        "job": job,
        "trial": trial.number,
        "state": state.name,
        "value": value if state == TrialState.COMPLETE else None,
        "params": params,
        "seed": seed,
        "eval_seed": eval_seed,
        "eval_episodes": search["eval_episodes"],
        "profile": profile,
        "steps": int(model.num_timesteps),
        "budget_steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
        "evaluations": curve,
    }
    try:
        write_trial(record, out)
    except BaseException:
        _tell_failed(study, trial)
        raise
    try:
        if state == TrialState.COMPLETE:
            study.tell(trial, value)
        else:
            study.tell(trial, state=state)
    except BaseException:  # the study does not know the outcome: no record either, so the job reruns
        with suppress(OSError):
            out.unlink()
        raise
    return record


def write_trial(record: dict, out: Path) -> None:
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------ summary
def read_trials(paths: list[Path], algo: str, name: str) -> list[dict]:
    """The trial records of study ``name``, by job; a record of another algorithm or study is an error.

    A file listed twice (or a copy of it) is read once. A complete record must carry a finite value,
    and all records must come from one creation of the study (``study_instance``: the journal deleted
    or emptied in between starts a new study of the same name, whose trials must not mix with the
    old ones)."""
    records, seen, trials = [], set(), {}
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"trial record {path}: file not found") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"trial record {path}: not readable JSON ({exc})") from None
        if not isinstance(record, dict) or {"algo", "study", "job", "state", "params"} - set(record):
            raise UserError(f"trial record {path}: not a record of `bmsrl search trial`")
        if record["algo"] != algo or record["study"] != name:
            raise UserError(
                f"trial record {path}: belongs to study {record['study']!r}, not {name!r} (the config's "
                f"search of {algo}); rerun that trial or delete the file"
            )
        value = record.get("value")
        if record["state"] == "COMPLETE" and not (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ):
            raise UserError(
                f"trial record {path}: a complete trial with value {value!r}, not a finite number; "
                "rerun that trial or delete the file"
            )
        trial = (record.get("study_instance"), record.get("trial"))
        if trial in trials:  # the same trial of the same study twice: a copy counts once, a conflict is an error
            if json.dumps(record, sort_keys=True) != json.dumps(trials[trial][1], sort_keys=True):  # NaN == NaN
                raise UserError(
                    f"trial records {trials[trial][0]} and {path} both hold trial {record.get('trial')} of "
                    f"study {name!r}, with different contents; delete the wrong one"
                )
            continue
        trials[trial] = (path, record)
        records.append((path, record))
    instances: dict[str, Path] = {}
    for path, record in records:
        instance = record.get("study_instance")
        if instance is not None:
            instances.setdefault(instance, path)
    if len(instances) > 1:
        first, second = list(instances.values())[:2]
        raise UserError(
            f"trial records {first} and {second} come from two different runs of study {name!r} (its "
            "study file was deleted or emptied in between); delete the older records and rerun "
            "those trials"
        )
    return sorted((record for _, record in records), key=lambda r: (r["job"], r.get("trial", 0)))


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
        "objective": (
            f"mean return (reward as configured) of the deterministic policy on {search.eval_episodes} "
            f"search-evaluation packs (SeedSequence({search_eval_seed(cfg)})) of profile "
            f"{best['profile']}, after {search.total_steps[algo]} env steps"
        ),
        "best": {"job": best["job"], "trial": best["trial"], "value": best["value"], "seed": best["seed"]},
        "hyperparams": best["params"],
        "budget": {
            "trials": len(records),
            "steps_per_trial": search.total_steps[algo],
            "eval_interval": search.eval_interval,
            "eval_episodes": search.eval_episodes,
            "env_steps": sum(r["steps"] for r in records),
        },
        "states": {state: sum(r["state"] == state for r in records) for state in ("COMPLETE", "PRUNED", "FAIL")},
        "trials": [
            {
                "job": r["job"],
                "trial": r["trial"],
                "state": r["state"],
                "value": r["value"],
                "steps": r["steps"],
                "seconds": r["seconds"],
                **r["params"],
            }
            for r in records
        ],
    }


def write_summary(summary: dict, out: Path) -> None:
    import yaml

    header = (
        "# Hyperparameter search (bmsrl search summary; docs/search.md). `hyperparams` is what\n"
        "# training.tuned_hyperparams merges over training.hyperparams of this algorithm.\n"
    )
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
    trial.add_argument(
        "--trial", required=True, type=int, help="trial index k (0 .. search.trials - 1): its seed and sampler seed"
    )
    trial.add_argument(
        "--storage", required=True, type=Path, help="the study's Optuna journal file, shared by the trials"
    )
    summary.add_argument("records", nargs="+", type=Path, metavar="TRIAL.json", help="records of `bmsrl search trial`")


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    inputs = {"--config": args.config, "--ocv-table": args.ocv_table}
    if args.action == "trial":
        check_outputs({"--out": args.out, "--storage": args.storage}, inputs)
        check_journal(args.storage)
    else:
        check_outputs({"--out": args.out}, {**inputs, "TRIAL.json": args.records})
    ocv_table = resolve_ocv_table(args.ocv_table, cfg)
    check_profile_option(cfg, args.profile)
    profile = args.profile or cfg["profiles"]["train"]
    if args.action == "trial":
        most = schema()["properties"]["search"]["properties"]["trials"]["maximum"]  # its seed is bounded so
        if not 0 <= args.trial < most:
            raise UserError(f"--trial must lie in 0..{most - 1} (search.trials is at most {most}), got {args.trial}")
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg["training"]["torch_threads"]))
        record = run_trial(cfg, args.algo, args.trial, args.storage, args.out, ocv_table, profile)
        shown = "" if record["value"] is None else f" mean return {record['value']:.2f}"
        print(
            f"search trial: {record['study']} trial {record['trial']} (job {args.trial}) {record['state']}"
            f"{shown} after {record['steps']} env steps -> {args.out}"
        )
        return 0
    name = study_name(search_settings(cfg, args.algo, profile, ocv_table))
    summary = summarize(cfg, args.algo, read_trials(args.records, args.algo, name), name)
    write_summary(summary, args.out)
    print(
        f"search summary: {name}: best trial {summary['best']['trial']} (job {summary['best']['job']}) mean return "
        f"{summary['best']['value']:.2f}, {summary['states']} -> {args.out}"
    )
    return 0
