"""No lost study, no lost model (issue 23): the search journal after a cut write or on a foreign file,
one process per search trial, outputs that would overwrite each other, the search summary's records,
publishing a model that loads, the training budget and a full disk.

A full disk is a real one: a 64 KiB tmpfs filled up (the tests that need it are skipped where
``mount`` is not allowed, i.e. not as root).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bmsrl.cli import main
from bmsrl.config import validate
from bmsrl.search import open_study, search_settings, study_name
from bmsrl.task_config import resolve_ocv_table
from cli_support import one_line_error

ROOT = Path(__file__).resolve().parents[1]
OCV = ROOT / "src" / "bmsrl" / "data" / "ocv_table.csv"

#: a search trial of 256 env steps on 4 packs (seconds)
TINY = {
    "training": {
        "n_envs": 4,
        "eval_interval": 128,
        "eval_episodes": 1,
        "hyperparams": {"ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1}},
    },
    "search": {
        "trials": 2,
        "total_steps": {"ppo": 256},
        "eval_interval": 128,
        "eval_episodes": 1,
        "sampler": {"n_startup_trials": 1},
        "pruner": {"n_startup_trials": 1, "n_warmup_steps": 0},
        "space": {"ppo": {"learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True}}},
    },
}

#: a training run of 2048 env steps on 8 packs, a checkpoint every 1024 (seconds)
SMALL_TRAINING = {
    "n_envs": 8,
    "total_steps": {"ppo": 2048},
    "eval_interval": 512,
    "eval_episodes": 2,
    "checkpoint_interval": 1024,
    "hyperparams": {"ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 1}},
}


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def trial_args(tmp_path: Path, storage: Path, out: Path, k: int = 0, cfg: dict = TINY) -> list[str]:
    return [
        "search",
        "trial",
        "--config",
        str(write_yaml(tmp_path / "cfg.yaml", cfg)),
        "--algo",
        "ppo",
        "--trial",
        str(k),
        "--storage",
        str(storage),
        "--out",
        str(out),
    ]


def tiny_study_name() -> str:
    full = validate(json.loads(json.dumps(TINY)), "cfg")
    return study_name(search_settings(full, "ppo", full["profiles"]["train"], resolve_ocv_table(None, full)))


@pytest.fixture(autouse=True)
def fresh_log_handler():
    """``bmsrl``'s log handler writes to the stderr of the ``main`` call that added it: let each
    test's first call add one on the stderr pytest captures for that test."""
    import logging

    logger = logging.getLogger("bmsrl")
    saved = logger.handlers[:]
    logger.handlers.clear()
    yield
    logger.handlers[:] = saved


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 64 KiB tmpfs filled up to the last byte."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        handle = os.open(folder / "filler", os.O_CREAT | os.O_WRONLY)
        try:
            while os.write(handle, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(handle)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# ============================================================== 1. the search journal
def _cut(path: Path, keep: int = 25) -> bytes:
    """Append the first ``keep`` bytes of a journal line, as a write cut by SIGKILL or a full disk does."""
    line = json.dumps(
        {
            "op_code": 6,
            "worker_id": "a-killed-worker",
            "trial_id": 0,
            "state": 1,
            "values": [1.0],
            "datetime_complete": "2026-12-06T10:00:00",
        }
    ).encode()
    with open(path, "ab") as handle:
        handle.write(line[:keep])
    return line[:keep]


def test_a_cut_last_journal_line_is_dropped_and_the_study_survives(tmp_path, caplog):
    cfg = validate({}, "defaults")
    path = tmp_path / "study.journal"
    study = open_study(path, "s", cfg, 0)
    first = study.ask()
    first.suggest_float("x", 0.0, 1.0)
    study.tell(first, 0.5)
    cut = _cut(path)
    assert not path.read_bytes().endswith(b"\n")
    with caplog.at_level("WARNING", logger="bmsrl.search"):
        study = open_study(path, "s", cfg, 1)  # the next job: appends after the cut
        second = study.ask()
        second.suggest_float("x", 0.0, 1.0)
        study.tell(second, 0.25)
    assert f"study file {path}: dropped a cut last line ({len(cut)} bytes" in caplog.text
    assert cut not in path.read_bytes() and path.read_bytes().endswith(b"\n")
    trials = open_study(path, "s", cfg, 2).trials  # the whole study is still there
    assert [(t.number, t.state.name, t.value) for t in trials] == [(0, "COMPLETE", 0.5), (1, "COMPLETE", 0.25)]


def test_a_search_trial_after_a_cut_write_runs_and_keeps_the_earlier_trials(tmp_path, capsys):
    storage = tmp_path / "ppo" / "study.journal"
    assert main(trial_args(tmp_path, storage, tmp_path / "ppo" / "trial0.json", 0)) == 0
    _cut(storage, keep=40)
    assert main(trial_args(tmp_path, storage, tmp_path / "ppo" / "trial1.json", 1)) == 0, capsys.readouterr().err
    trials = open_study(storage, tiny_study_name(), validate({}, "d"), 9).trials
    assert [t.user_attrs["job"] for t in trials] == [0, 1]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)


def _sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("create table studies (study_id integer primary key, study_name text)")
        db.execute("insert into studies values (1, 'ppo')")


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda p: p.write_text('{"op_code": 99, "worker_id": "w"}\n'), "line 1: unknown Optuna journal operation 99"),
        (lambda p: p.write_text('{"op_code": 5, "worker_id": "w"}\n'), "Optuna cannot read it (KeyError"),
        (
            lambda p: p.write_text('{"op_code": [0], "worker_id": "w"}\n'),
            "line 1: unknown Optuna journal operation [0]",
        ),
        (
            lambda p: p.write_text('{"op_code": 0, "worker_id": "w", "study_name": "x", "directions": "up"}\n'),
            "Optuna cannot read it",
        ),
        (_sqlite, "an SQLite database, not an Optuna journal"),
        (lambda p: p.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 4), "an SQLite database"),
        (lambda p: p.write_bytes(b"\x00\x01binary without a newline"), "line 1: not an Optuna journal entry"),
    ],
)
def test_a_foreign_study_file_is_one_clear_error(tmp_path, capsys, damage, fragment):
    storage = tmp_path / "study.journal"
    damage(storage)
    before = storage.read_bytes()
    out = tmp_path / "trial0.json"
    code = main(trial_args(tmp_path, storage, out))
    advice = "give --storage a journal's path" if "SQLite" in fragment else "delete it"
    one_line_error(code, capsys.readouterr().err, "search", f"study file {storage}", fragment, advice)
    assert not out.exists() and storage.read_bytes() == before  # nothing written, the file left alone


def test_storage_below_a_file_or_under_proc_is_one_line(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    for storage, fragment in (
        (tmp_path / "plain" / "study.journal", "is a file, not a folder"),
        (Path("/proc/bmsrl-test/study.journal"), "cannot write in /proc"),
    ):
        code = main(trial_args(tmp_path, storage, tmp_path / "trial0.json"))
        one_line_error(code, capsys.readouterr().err, "search", f"--storage {storage}", fragment)
    code = main(trial_args(tmp_path, tmp_path / "study.journal", Path("/proc/bmsrl-test/trial0.json")))
    one_line_error(code, capsys.readouterr().err, "search", "--out /proc/bmsrl-test/trial0.json", "cannot write in")
    assert not (tmp_path / "study.journal").exists()


# ============================================================== 2. one trial run twice at once
def test_the_same_trial_started_twice_refuses_and_the_first_keeps_its_record(tmp_path, capsys):
    longer = json.loads(json.dumps(TINY))
    longer["search"]["total_steps"]["ppo"] = 8192
    storage, out = tmp_path / "ppo" / "study.journal", tmp_path / "ppo" / "trial0.json"
    args = trial_args(tmp_path, storage, out, 0, longer)
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "bmsrl.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while b'"job":0' not in (storage.read_bytes() if storage.exists() else b""):  # its trial is running
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first trial did not start within 120 s"
            time.sleep(0.05)
        code = main(args)  # a retry of the same job while the first still runs
        one_line_error(
            code, capsys.readouterr().err, "search", "--trial 0", "running in another process", f"pid {first.pid}"
        )
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["state"] in ("COMPLETE", "PRUNED")
    trials = open_study(storage, record["study"], validate({}, "d"), 9).trials
    assert [(t.number, t.state.name) for t in trials] == [(record["trial"], record["state"])]


# ============================================================== 5. and 8. publishing and resuming a model
def _train(tmp_path: Path, out: Path, total_steps: int) -> tuple[int, str]:
    cfg = {"training": dict(SMALL_TRAINING, total_steps={"ppo": total_steps})}
    return main(
        [
            "train",
            "--config",
            str(write_yaml(tmp_path / f"train{total_steps}.yaml", cfg)),
            "--algo",
            "ppo",
            "--seed",
            "1",
            "--out",
            str(out),
        ]
    )


def test_a_cut_best_model_is_never_published(tmp_path, capsys):
    from stable_baselines3 import PPO

    out = tmp_path / "ppo_seed1"
    assert _train(tmp_path, out, 2048) == 0
    published = (out / "best_model.zip").read_bytes()
    work_best = out / "checkpoints" / "best_model.zip"
    work_best.write_bytes(work_best.read_bytes()[:1000])  # cut, as a kill during an in-place write leaves it
    capsys.readouterr()
    code = _train(tmp_path, out, 2048)  # resumes from the 2048-step checkpoint: straight to publishing
    one_line_error(code, capsys.readouterr().err, "train", f"{work_best}: the model does not load", "delete")
    assert (out / "best_model.zip").read_bytes() == published  # the earlier, whole model stays
    PPO.load(out / "best_model.zip")


def test_a_checkpoint_past_the_budget_is_not_resumed(tmp_path, caplog):
    from stable_baselines3 import PPO

    out = tmp_path / "ppo_seed1"
    assert _train(tmp_path, out, 2048) == 0
    assert json.loads((out / "run_config.json").read_text())["total_steps"] == 2048
    with caplog.at_level("INFO", logger="bmsrl.train"):
        assert _train(tmp_path, out, 1024) == 0
    assert "made for a budget of 2048 env steps, more than 1024: starting afresh" in caplog.text
    assert "resuming" not in caplog.text
    for name in ("final_model.zip", "best_model.zip"):
        assert PPO.load(out / name).num_timesteps <= 1024, name
    assert json.loads((out / "run_config.json").read_text())["total_steps"] == 1024
    caplog.clear()
    with caplog.at_level("INFO", logger="bmsrl.train"):  # a longer budget still continues the run
        assert _train(tmp_path, out, 2048) == 0
    assert "resuming from" in caplog.text and "starting afresh" not in caplog.text
    assert PPO.load(out / "final_model.zip").num_timesteps == 2048
    assert json.loads((out / "run_config.json").read_text())["total_steps"] == 2048


# ============================================================== 7. outputs that overwrite each other
def test_tune_baselines_refuses_one_path_for_both_outputs_before_any_work(tmp_path, capsys, monkeypatch):
    from bmsrl import tune_baselines as tune

    monkeypatch.setattr(tune, "tune", lambda *a, **k: pytest.fail("the grid was evaluated before the check"))
    same = tmp_path / "x"
    code = main(["tune-baselines", "--baseline", "rule_based", "--out", str(same), "--grid-out", str(same)])
    one_line_error(code, capsys.readouterr().err, "tune-baselines", f"--grid-out {same} is the same file as --out")
    config = write_yaml(tmp_path / "cfg.yaml", {})
    code = main(["tune-baselines", "--config", str(config), "--baseline", "rule_based", "--out", str(config)])
    one_line_error(code, capsys.readouterr().err, "tune-baselines", "would overwrite the input --config")
    assert not same.exists() and config.read_text() == "{}\n"


def _record(tmp_path: Path, name: str, **fields) -> Path:
    record = {
        "algo": "ppo",
        "study": tiny_study_name(),
        "study_instance": "w0",
        "job": 0,
        "trial": 0,
        "state": "COMPLETE",
        "value": -10.0,
        "params": {"learning_rate": 3e-4},
        "seed": 600001,
        "eval_seed": 600000,
        "eval_episodes": 1,
        "profile": "discharge-rest-charge",
        "steps": 256,
        "budget_steps": 256,
        "seconds": 1.0,
        "evaluations": [],
        **fields,
    }
    path = tmp_path / name
    path.write_text(json.dumps(record))
    return path


def _summary(tmp_path: Path, out: Path, *records: Path) -> list[str]:
    return [
        "search",
        "summary",
        "--config",
        str(write_yaml(tmp_path / "cfg.yaml", TINY)),
        "--algo",
        "ppo",
        "--out",
        str(out),
        *map(str, records),
    ]


def test_search_summary_refuses_to_overwrite_a_trial_record(tmp_path, capsys):
    record = _record(tmp_path, "trial0.json")
    before = record.read_text()
    code = main(_summary(tmp_path, record, record))
    one_line_error(code, capsys.readouterr().err, "search", f"--out {record} would overwrite the input TRIAL.json")
    assert record.read_text() == before


# ============================================================== 9. the summary's records
def test_a_record_listed_twice_counts_once(tmp_path):
    record = _record(tmp_path, "trial0.json")
    other = _record(tmp_path, "trial1.json", job=1, trial=1, value=-20.0)
    out = tmp_path / "ppo.yaml"
    assert main(_summary(tmp_path, out, record, other, tmp_path / "." / "trial0.json")) == 0
    summary = yaml.safe_load(out.read_text())
    assert summary["budget"]["trials"] == 2 and len(summary["trials"]) == 2 and summary["states"]["COMPLETE"] == 2
    assert summary["budget"]["env_steps"] == 512
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "trial0.json").write_text(record.read_text())  # a copy of a record is the same trial
    assert main(_summary(tmp_path, out, record, other, copy / "trial0.json")) == 0
    assert yaml.safe_load(out.read_text())["budget"]["trials"] == 2


def test_two_different_records_of_one_trial_are_refused(tmp_path, capsys):
    record = _record(tmp_path, "trial0.json")
    forged = _record(tmp_path, "trial0b.json", value=5.0)
    code = main(_summary(tmp_path, tmp_path / "ppo.yaml", record, forged))
    one_line_error(code, capsys.readouterr().err, "search", f"trial records {record} and {forged} both hold trial 0")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None, "1.0"])
def test_a_complete_record_without_a_finite_value_is_never_the_best(tmp_path, capsys, value):
    good = _record(tmp_path, "trial0.json")
    bad = _record(tmp_path, "trial1.json", job=1, trial=1, value=value)
    out = tmp_path / "ppo.yaml"
    code = main(_summary(tmp_path, out, good, bad))
    one_line_error(code, capsys.readouterr().err, "search", f"trial record {bad}", "not a finite number")
    assert not out.exists()


def test_records_of_an_earlier_run_of_the_study_are_not_mixed_in(tmp_path, capsys):
    """After the journal is emptied the trials start the study again under the same name: the old
    records are refused instead of being mixed into the summary."""
    storage = tmp_path / "ppo" / "study.journal"
    first = tmp_path / "ppo" / "trial0.json"
    assert main(trial_args(tmp_path, storage, first, 0)) == 0
    storage.write_bytes(b"")  # emptied
    second = tmp_path / "ppo" / "trial1.json"
    assert main(trial_args(tmp_path, storage, second, 1)) == 0
    records = [json.loads(p.read_text()) for p in (first, second)]
    assert records[0]["study"] == records[1]["study"] and records[0]["trial"] == records[1]["trial"] == 0
    assert records[0]["study_instance"] != records[1]["study_instance"]
    capsys.readouterr()
    code = main(_summary(tmp_path, tmp_path / "ppo.yaml", first, second))
    one_line_error(
        code, capsys.readouterr().err, "search", f"trial records {first} and {second}", "two different runs of study"
    )


# ============================================================== 11. a full disk
def test_a_full_disk_fails_the_trial_instead_of_losing_its_record(tmp_path, capsys, full_disk):
    storage, out = tmp_path / "ppo" / "study.journal", full_disk / "trial0.json"
    code = main(trial_args(tmp_path, storage, out))
    one_line_error(code, capsys.readouterr().err, "search", f"cannot write {out}: No space left on device")
    assert not out.exists()
    trials = open_study(storage, tiny_study_name(), validate({}, "d"), 9).trials
    assert [t.state.name for t in trials] == ["FAIL"]  # not COMPLETE without its record: the rerun makes a new one


def test_a_full_disk_under_the_trials_scratch_folder_is_one_line(tmp_path, capsys, full_disk, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(full_disk))  # where the trial evaluates (SB3 writes in place)
    storage, out = tmp_path / "ppo" / "study.journal", tmp_path / "ppo" / "trial0.json"
    code = main(trial_args(tmp_path, storage, out))
    one_line_error(code, capsys.readouterr().err, "search", "cannot write", str(full_disk), "No space left on device")
    assert not out.exists()
    assert [t.state.name for t in open_study(storage, tiny_study_name(), validate({}, "d"), 9).trials] == ["FAIL"]


def test_a_full_disk_under_the_journal_is_one_line(tmp_path, capsys, full_disk):
    storage = full_disk / "study.journal"
    code = main(trial_args(tmp_path, storage, tmp_path / "trial0.json"))
    one_line_error(code, capsys.readouterr().err, "search", f"cannot write {storage}: No space left on device")
    assert not (tmp_path / "trial0.json").exists()


def test_a_full_disk_while_writing_the_ocv_plot_is_one_line(tmp_path, capsys, full_disk):
    plot = full_disk / "ocv.pdf"
    code = main(["ocv", str(OCV), str(tmp_path / "ocv.csv"), "--plot", str(plot)])
    one_line_error(code, capsys.readouterr().err, "ocv", f"cannot write {plot}: No space left on device")
    assert not plot.exists() and not (tmp_path / "ocv.csv").exists()
