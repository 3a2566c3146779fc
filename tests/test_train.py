"""The train verb: outputs, seeding, and resuming a killed job from its newest checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bmsrl.cli import main

SMALL = {
    "training": {
        "n_envs": 8,
        "total_steps": {"ppo": 3000, "dqn": 3000, "maskable_ppo": 3000},
        "eval_interval": 1000,
        "eval_episodes": 2,
        "checkpoint_interval": 1000,
        "hyperparams": {
            "ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 2},
            "maskable_ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 2},
            "dqn": {"learning_starts": 500, "buffer_size": 5000, "gradient_steps": 2, "batch_size": 64},
        },
    },
}


def write_config(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_train_writes_models_evaluations_and_is_seeded(tmp_path, algo):
    cfg = write_config(tmp_path, SMALL)
    finals = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["train", "--config", str(cfg), "--algo", algo, "--seed", "3", "--out", str(out)]) == 0
        for name in ("best_model.zip", "final_model.zip", "evaluations.npz", "run_config.json"):
            assert (out / name).is_file(), name
        with np.load(out / "evaluations.npz") as ev:
            assert ev["timesteps"][-1] >= 3000 and ev["results"].shape[1] == 2
            finals.append(ev["results"].copy())
        record = json.loads((out / "run_config.json").read_text())
        assert record["settings"]["seed"] == 3 and record["settings"]["algo"] == algo
        assert record["settings"]["env"]["n_cells"] == 5 and "torch" in record["versions"]
        with np.load(out / "evaluations.npz") as ev:
            assert str(ev["algo"]) == algo and int(ev["seed"]) == 3  # labels: no path parsing downstream
    np.testing.assert_array_equal(*finals)  # same seed, same evaluation returns


def test_evaluations_record_each_episodes_next_discharge_capacity(tmp_path):
    """capacity_mah of evaluations.npz is, per evaluation episode, the pack's usable capacity at the
    episode's end (BalancingTask.usable_capacity_ah), in the order of the returns: the final
    evaluation equals a rollout of the final model on the same evaluation packs."""
    from stable_baselines3 import PPO

    from bmsrl.config import load_workflow_config
    from bmsrl.env import BalancingTask, pack_rng
    from bmsrl.rollout import rollout
    from bmsrl.seeds import training_eval_seed
    from bmsrl.task_config import task_kwargs

    path = write_config(tmp_path, SMALL)
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--algo", "ppo", "--seed", "3", "--out", str(out)]) == 0
    with np.load(out / "evaluations.npz") as ev:
        returns, capacity = ev["results"], ev["capacity_mah"]
    assert capacity.shape == returns.shape and np.isfinite(capacity).all()

    cfg = load_workflow_config([str(path)])
    n = cfg["training"]["eval_episodes"]
    task = BalancingTask(n_packs=n, **task_kwargs(cfg, cfg["profiles"]["train"], None))
    task.reset_drawn([pack_rng(training_eval_seed(cfg, 3), k) for k in range(n)])
    run = rollout(task, PPO.load(out / "final_model.zip", device="cpu"))
    expected = 1000.0 * task.usable_capacity_ah(run.end["soc"], run.end["soh"])
    # SB3 records episodes in the order they end; pair each return with its capacity
    got = sorted(zip(returns[-1].tolist(), capacity[-1].tolist()))
    want = sorted(zip(run.returns.tolist(), expected.tolist()))
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5)
    # the capacity is the reward's potential U, not the charge the episode's discharge delivered
    assert not np.allclose(capacity[-1], 1000.0 * np.sort(run.end["discharged_ah"]), rtol=1e-3)


def test_maskable_ppo_never_takes_an_invalid_action(tmp_path):
    """MaskablePPO reads the env's action masks in training and in evaluation: a barely trained
    (near-uniform) policy would pick an invalid action in about half the discharging steps."""
    cfg = write_config(tmp_path, SMALL)
    out = tmp_path / "m"
    assert main(["train", "--config", str(cfg), "--algo", "maskable_ppo", "--seed", "2", "--out", str(out)]) == 0
    for profile in ("discharge-rest-charge", "charge-rest-discharge"):
        ev = tmp_path / profile
        assert (
            main(
                [
                    "evaluate",
                    "--config",
                    str(cfg),
                    "--policy",
                    "maskable_ppo",
                    "--profile",
                    profile,
                    "--seed",
                    "2",
                    "--model",
                    str(out / "final_model.zip"),
                    "--out",
                    str(ev),
                ]
            )
            == 0
        )
        metrics = pd.read_csv(ev / "metrics.csv")
        assert (metrics["invalid_actions"] == 0).all()
        traces = pd.read_csv(ev / "traces.csv")
        assert traces.filter(like="switch_").to_numpy().any()  # it does close shunts


def test_missing_ocv_table_is_one_clear_error(tmp_path, capsys):
    cfg = write_config(tmp_path, SMALL)
    code = main(
        [
            "train",
            "--config",
            str(cfg),
            "--algo",
            "ppo",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "o"),
            "--ocv-table",
            str(tmp_path / "missing.csv"),
        ]
    )
    assert code == 2
    assert "missing.csv" in capsys.readouterr().err
    assert not (tmp_path / "o" / "final_model.zip").exists()


def test_killed_training_resumes_from_its_newest_checkpoint(tmp_path):
    cfg = dict(SMALL)
    cfg["training"] = dict(SMALL["training"], total_steps={"dqn": 12000}, checkpoint_interval=2000)
    config = write_config(tmp_path, cfg)
    out = tmp_path / "dqn_seed1"
    cmd = [
        sys.executable,
        "-m",
        "bmsrl.cli",
        "train",
        "--config",
        str(config),
        "--algo",
        "dqn",
        "--seed",
        "1",
        "--out",
        str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not list((out / "checkpoints").glob("model_*_steps.zip")):
        assert first.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (out / "final_model.zip").exists()
    done = max(int(p.name.split("_")[1]) for p in (out / "checkpoints").glob("model_*_steps.zip"))
    assert 0 < done < 12000

    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in second.stderr and f"({done} env steps done)" in second.stderr
    from stable_baselines3 import DQN

    model = DQN.load(out / "final_model.zip")
    assert model.num_timesteps == 12000  # the step count continued instead of starting over
    with np.load(out / "evaluations.npz") as ev:
        steps = ev["timesteps"]
    assert np.all(np.diff(steps) > 0) and steps[0] <= done  # history from before the kill kept


def _train(tmp_path, cfg: dict, algo: str, out: Path, seed: int = 1) -> int:
    return main(
        ["train", "--config", str(write_config(tmp_path, cfg)), "--algo", algo, "--seed", str(seed), "--out", str(out)]
    )


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path, caplog):
    """A quick run's checkpoints (other eval_episodes) are discarded with a log line, not resumed
    into a crash; the reverse order works the same way."""
    out = tmp_path / "ppo_seed1"
    quick = {"training": dict(SMALL["training"], total_steps={"ppo": 2000})}
    assert _train(tmp_path, quick, "ppo", out) == 0
    study = {"training": dict(SMALL["training"], total_steps={"ppo": 3000}, eval_episodes=3)}
    with caplog.at_level("INFO", logger="bmsrl.train"):
        assert _train(tmp_path, study, "ppo", out) == 0
    assert "starting afresh" in caplog.text and "eval_episodes" in caplog.text and "resuming" not in caplog.text
    with np.load(out / "evaluations.npz") as ev:
        assert ev["results"].shape[1] == 3
    caplog.clear()
    with caplog.at_level("INFO", logger="bmsrl.train"):
        assert _train(tmp_path, quick, "ppo", out) == 0
    assert "starting afresh" in caplog.text


def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    out = tmp_path / "ppo_seed1"
    cfg = {"training": dict(SMALL["training"], total_steps={"ppo": 2048})}
    assert _train(tmp_path, cfg, "ppo", out) == 0
    work = out / "checkpoints"
    (newest, older) = sorted(work.glob("model_*_steps.zip"), key=lambda p: int(p.name.split("_")[1]))[-1:-3:-1]
    newest.write_bytes(newest.read_bytes()[:100])  # cut, as a kill during a non-atomic write would
    (work / "evaluations.npz").write_bytes(b"PK\x03\x04 cut")
    longer = {"training": dict(SMALL["training"], total_steps={"ppo": 3000})}
    with caplog.at_level("INFO", logger="bmsrl.train"):
        assert _train(tmp_path, longer, "ppo", out) == 0
    assert f"checkpoint {newest} is unreadable" in caplog.text
    assert f"resuming from {older}" in caplog.text
    assert "evaluation history" in caplog.text and "unreadable" in caplog.text
    from stable_baselines3 import PPO

    assert PPO.load(out / "best_model.zip").num_timesteps > 0  # the published best model loads


def test_a_model_evaluated_as_another_algorithm_is_refused(tmp_path, capsys):
    out = tmp_path / "ppo_seed1"
    cfg = {"training": dict(SMALL["training"], total_steps={"ppo": 1024})}
    assert _train(tmp_path, cfg, "ppo", out) == 0
    for policy in ("a2c", "trpo"):
        code = main(
            [
                "evaluate",
                "--policy",
                policy,
                "--profile",
                "charge-rest-discharge",
                "--seed",
                "1",
                "--model",
                str(out / "best_model.zip"),
                "--out",
                str(tmp_path / policy),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and "was trained as 'ppo'" in err, err
        assert not (tmp_path / policy).exists()
    code = main(
        [
            "evaluate",
            "--config-json",
            '{"env": {"n_cells": 4}}',
            "--policy",
            "ppo",
            "--profile",
            "charge-rest-discharge",
            "--seed",
            "1",
            "--model",
            str(out / "best_model.zip"),
            "--out",
            str(tmp_path / "four"),
        ]
    )
    assert code == 2 and "5-cell pack" in capsys.readouterr().err


def test_progress_in_a_terminal_and_one_line_per_evaluation_in_a_log(tmp_path):
    """In a terminal (a pseudo-terminal here) training redraws a progress line; redirected to a file,
    its log has one line per evaluation with the return, the speed and the time left."""
    import pty

    from bmsrl.train import progress_text

    assert progress_text(1_200_000, 15_000_000, 11_800.0, [[-12.0, -12.6]]) == (
        "[#.......................] 1.20 M / 15.00 M env steps  11,800 /s  last eval -12.3  about 19 min left"
    )
    assert progress_text(0, 100, 0.0, []).endswith("no eval yet  time left unknown")
    config = write_config(tmp_path, {"training": dict(SMALL["training"], total_steps={"ppo": 2048})})
    cmd = [sys.executable, "-m", "bmsrl.cli", "train", "--config", str(config), "--algo", "ppo", "--seed", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    logged = subprocess.run([*cmd, "--out", str(tmp_path / "log")], capture_output=True, text=True, env=env)
    assert logged.returncode == 0, logged.stderr[-2000:]
    evals = [line for line in logged.stderr.splitlines() if "eval at " in line]
    assert len(evals) >= 2 and "mean return" in evals[0] and "env-steps/s" in evals[0] and "min left" in evals[0]
    assert "env steps  " not in logged.stderr  # no progress line in a log file

    output = bytearray()

    def read(fd):
        data = os.read(fd, 1024)
        output.extend(data)
        return data

    status = pty.spawn([*cmd, "--out", str(tmp_path / "tty")], read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"M env steps" in output and b" /s " in output


def test_resuming_from_an_evaluations_file_without_capacity_keeps_its_history_with_nan(tmp_path):
    """A run resumed over an evaluations.npz written before capacity_mah existed carries its returns
    over and gives those evaluations NaN capacities (the curve leaves them out), not a crash."""
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.vec_env import VecMonitor

    from bmsrl.learning import seeded_evaluation
    from bmsrl.vec_env import BatchedBalancingVecEnv

    old = tmp_path / "evaluations.npz"
    np.savez(old, timesteps=[100, 200, 300], results=np.ones((3, 2)), ep_lengths=np.full((3, 2), 200))
    evaluation = seeded_evaluation(EvalCallback)(
        VecMonitor(BatchedBalancingVecEnv(2)), seed=0, work=tmp_path, total_steps=1000, n_eval_episodes=2
    )
    evaluation.restore(old, 200)
    assert evaluation.evaluations_timesteps == [100, 200]
    assert np.shape(evaluation.evaluations_capacity) == (2, 2) and np.isnan(evaluation.evaluations_capacity).all()
