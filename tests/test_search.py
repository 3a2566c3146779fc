"""The hyperparameter search (bmsrl.search): the space, the seeds, a two-trial search end to end, the
shared study file, and what training does with the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from bmsrl.cli import main
from bmsrl.config import defaults, validate
from bmsrl.errors import UserError
from bmsrl.search import check_journal, open_study, sample
from bmsrl.seeds import evaluation_seeds, held_out_seeds, search_seeds, training_eval_seed

ROOT = Path(__file__).resolve().parents[1]

#: a search of two trials that each train 256 env steps on 4 packs (seconds)
TINY = {
    "training": {
        "n_envs": 4,
        "total_steps": {"ppo": 256},
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
        "space": {
            "ppo": {
                "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True},
                "gamma": {"type": "categorical", "choices": [0.99, 0.995]},
                "n_epochs": {"type": "int", "low": 1, "high": 2},
            }
        },
    },
}


def test_the_space_is_sampled_within_its_bounds_and_choices():
    cfg = defaults()
    for algo, space in cfg["search"]["space"].items():
        assert space, f"{algo} has no search space"
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(20):
            trial = study.ask()
            params = sample(trial, space)
            assert list(params) == list(space)
            for name, value in params.items():
                dim = space[name]
                if dim["type"] == "categorical":
                    assert value in dim["choices"]
                else:
                    assert dim["low"] <= value <= dim["high"], (algo, name, value)
                    assert isinstance(value, int if dim["type"] == "int" else float)
                    assert trial.distributions[name].log == dim.get("log", False)
            study.tell(trial, 0.0)


def test_a_bad_space_is_refused_naming_the_key():
    space = {"gamma": {"type": "float", "low": 0.9, "high": 1.5}}
    with pytest.raises(UserError, match=r"search.space.ppo.gamma: 1.5 is not a valid gamma"):
        validate({"search": {"space": {"ppo": space}}}, "cfg")
    with pytest.raises(UserError, match="search.space.ppo.seed: not a keyword argument"):
        validate({"search": {"space": {"ppo": {"seed": {"type": "int", "low": 1, "high": 2}}}}}, "cfg")
    with pytest.raises(UserError, match="search.space.dqn.learning_rate: a log-uniform range needs low > 0"):
        validate(
            {"search": {"space": {"dqn": {"learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}}}}},
            "cfg",
        )
    with pytest.raises(UserError, match="search.space.ppo.n_epochs: low 5 must be below high 3"):
        validate({"search": {"space": {"ppo": {"n_epochs": {"type": "int", "low": 5, "high": 3}}}}}, "cfg")


def test_search_seeds_never_meet_evaluation_seeds():
    cfg = defaults()
    searched = set(search_seeds(cfg))
    assert len(searched) == cfg["search"]["trials"] + 1  # the evaluation packs' seed and one per trial
    assert not searched & evaluation_seeds(cfg)
    assert not searched & {training_eval_seed(cfg, s) for s in cfg["seeds"]}
    assert set(held_out_seeds(cfg)) == evaluation_seeds(cfg) | {training_eval_seed(cfg, s) for s in cfg["seeds"]}
    # the validator refuses a search that would see an evaluation pack (episode 0 of training seed 2) ...
    with pytest.raises(
        UserError, match=r"search.seed_offset: search seeds 1001990..1002014 include evaluation seed 1002000"
    ):
        validate({"search": {"seed_offset": 1_001_990}}, "cfg")
    # ... or a training-evaluation pack (model selection, seed 1: 1001500), or after moving the evaluation seeds
    with pytest.raises(UserError, match="training-evaluation seed \\(training seed 1\\) 1001500"):
        validate({"search": {"seed_offset": 1_001_480}}, "cfg")
    with pytest.raises(UserError, match="search.seed_offset.*evaluation seed 600000"):
        validate({"seeds": [1], "evaluation": {"seed_offset": 599_000}}, "cfg")


def _cfg_file(tmp_path: Path, cfg: dict, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_trials_end_to_end_and_training_takes_the_result(tmp_path, capsys):
    config = _cfg_file(tmp_path, TINY)
    storage = tmp_path / "ppo" / "study.journal"
    base = ["--config", str(config), "--algo", "ppo"]
    # a job killed half-way left its trial running in the study: the job's rerun marks it failed
    study = open_study(storage, _study_name(TINY), validate(json.loads(json.dumps(TINY)), "cfg"), 0)
    study.ask().set_user_attr("job", 0)
    for k in (0, 1):
        assert (
            main(
                [
                    "search",
                    "trial",
                    *base,
                    "--trial",
                    str(k),
                    "--storage",
                    str(storage),
                    "--out",
                    str(tmp_path / "ppo" / f"trial{k}.json"),
                ]
            )
            == 0
        )
    records = [json.loads((tmp_path / "ppo" / f"trial{k}.json").read_text()) for k in (0, 1)]
    assert [r["seed"] for r in records] == [600001, 600002] and {r["eval_seed"] for r in records} == {600000}
    assert {r["state"] for r in records} <= {"COMPLETE", "PRUNED"} and records[0]["state"] == "COMPLETE"
    for r in records:  # a complete trial trained its budget; a pruned one stopped at the report that pruned it
        assert r["evaluations"][-1]["steps"] == r["steps"] and (r["steps"] == 256) == (r["state"] == "COMPLETE")
        assert (r["value"] == r["evaluations"][-1]["mean_return"]) if r["state"] == "COMPLETE" else r["value"] is None
    states = [t.state.name for t in open_study(storage, records[0]["study"], validate({}, "d"), 5).trials]
    assert states == ["FAIL", "COMPLETE", records[1]["state"]]

    out = tmp_path / "ppo.yaml"
    assert (
        main(
            ["search", "summary", *base, "--out", str(out), *(str(tmp_path / "ppo" / f"trial{k}.json") for k in (0, 1))]
        )
        == 0
    )
    summary = yaml.safe_load(out.read_text())
    complete = [r for r in records if r["state"] == "COMPLETE"]
    best = max(complete, key=lambda r: r["value"])
    assert summary["hyperparams"] == best["params"] and summary["best"]["value"] == best["value"]
    assert set(summary["hyperparams"]) == set(TINY["search"]["space"]["ppo"])
    assert len(summary["trials"]) == 2 and summary["budget"]["steps_per_trial"] == 256

    # training with training.tuned_hyperparams merges the result and records it
    tuned = dict(TINY, training=dict(TINY["training"], tuned_hyperparams=True))
    run = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(_cfg_file(tmp_path, tuned, "tuned.yaml")),
        "--algo",
        "ppo",
        "--seed",
        "1",
        "--out",
        str(run),
    ]
    assert main(args) == 2 and "give --tuned-hyperparams" in capsys.readouterr().err
    assert main([*args, "--tuned-hyperparams", str(out)]) == 0
    settings = json.loads((run / "run_config.json").read_text())["settings"]
    merged = {**TINY["training"]["hyperparams"]["ppo"], **summary["hyperparams"]}  # over the config's
    assert {key: settings["hyperparams"][key] for key in merged} == merged
    assert settings["tuned_hyperparams"]["study"] == summary["study"]
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                "--algo",
                "ppo",
                "--seed",
                "1",
                "--out",
                str(tmp_path / "untuned"),
                "--tuned-hyperparams",
                str(out),
            ]
        )
        == 2
    )
    assert "given, but training.tuned_hyperparams is false" in capsys.readouterr().err
    args[args.index("ppo")] = "dqn"
    assert main([*args, "--tuned-hyperparams", str(out)]) == 2
    assert "holds the hyperparameters of 'ppo', not 'dqn'" in capsys.readouterr().err


def _study_name(cfg: dict) -> str:
    from bmsrl.search import search_settings, study_name
    from bmsrl.task_config import resolve_ocv_table

    full = validate(json.loads(json.dumps(cfg)), "cfg")
    return study_name(search_settings(full, "ppo", "discharge-rest-charge", resolve_ocv_table(None, full)))


_WORKER = """
import sys
from pathlib import Path
from bmsrl.config import defaults
from bmsrl.search import open_study
path, worker = Path(sys.argv[1]), int(sys.argv[2])
study = open_study(path, "shared", defaults(), worker)
for _ in range(15):
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.report(x, step=1)
    study.tell(trial, x)
"""


def test_two_processes_share_one_study_file(tmp_path):
    path = tmp_path / "study.journal"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(path), str(k)], env=env, stderr=subprocess.PIPE, text=True)
        for k in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read()
    check_journal(path)
    trials = open_study(path, "shared", defaults(), 9).trials
    assert len(trials) == 30 and sorted(t.number for t in trials) == list(range(30))
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert not Path(f"{path}.lock").exists()  # the lock file is released


@pytest.mark.parametrize("content", [b"not a journal\n", b'{"op_code": 0}\n[1, 2]\n', b"\x89PNG\r\n\x1a\n"])
def test_a_bad_study_file_is_one_clear_error(tmp_path, content, capsys):
    storage = tmp_path / "ppo" / "study.journal"
    storage.parent.mkdir()
    storage.write_bytes(content)
    out = tmp_path / "ppo" / "trial0.json"
    code = main(
        [
            "search",
            "trial",
            "--config",
            str(_cfg_file(tmp_path, TINY)),
            "--algo",
            "ppo",
            "--trial",
            "0",
            "--storage",
            str(storage),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"study file {storage}, line" in err and "delete it" in err, err
    assert not out.exists()


def test_a_trial_record_of_another_search_is_refused(tmp_path, capsys):
    record = {"algo": "ppo", "study": "ppo-000000000000", "job": 0, "trial": 0, "state": "COMPLETE", "params": {}}
    (tmp_path / "trial0.json").write_text(json.dumps(record))
    code = main(
        [
            "search",
            "summary",
            "--config",
            str(_cfg_file(tmp_path, TINY)),
            "--algo",
            "ppo",
            "--out",
            str(tmp_path / "ppo.yaml"),
            str(tmp_path / "trial0.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "belongs to study 'ppo-000000000000'" in err and "rerun that trial" in err, err
