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
        assert json.loads((out / "run_config.json").read_text())["seed"] == 3
    np.testing.assert_array_equal(*finals)  # same seed, same evaluation returns


def test_maskable_ppo_never_takes_an_invalid_action(tmp_path):
    """MaskablePPO reads the env's action masks in training and in evaluation: a barely trained
    (near-uniform) policy would pick an invalid action in about half the discharging steps."""
    cfg = write_config(tmp_path, SMALL)
    out = tmp_path / "m"
    assert main(["train", "--config", str(cfg), "--algo", "maskable_ppo", "--seed", "2", "--out", str(out)]) == 0
    for profile in ("discharge-rest-charge", "charge-rest-discharge"):
        ev = tmp_path / profile
        assert main(["evaluate", "--config", str(cfg), "--policy", "maskable_ppo", "--profile", profile,
                     "--seed", "2", "--model", str(out / "final_model.zip"), "--out", str(ev)]) == 0  # fmt: skip
        metrics = pd.read_csv(ev / "metrics.csv")
        assert (metrics["invalid_actions"] == 0).all()
        traces = pd.read_csv(ev / "traces.csv")
        assert traces.filter(like="switch_").to_numpy().any()  # it does close shunts


def test_missing_ocv_table_is_one_clear_error(tmp_path, capsys):
    cfg = write_config(tmp_path, SMALL)
    code = main(["train", "--config", str(cfg), "--algo", "ppo", "--seed", "1", "--out", str(tmp_path / "o"),
                 "--ocv-table", str(tmp_path / "missing.csv")])  # fmt: skip
    assert code == 2
    assert "missing.csv" in capsys.readouterr().err
    assert not (tmp_path / "o" / "final_model.zip").exists()


def test_killed_training_resumes_from_its_newest_checkpoint(tmp_path):
    cfg = dict(SMALL)
    cfg["training"] = dict(SMALL["training"], total_steps={"dqn": 12000}, checkpoint_interval=2000)
    config = write_config(tmp_path, cfg)
    out = tmp_path / "dqn_seed1"
    cmd = [sys.executable, "-m", "bmsrl.cli", "train", "--config", str(config), "--algo", "dqn",
           "--seed", "1", "--out", str(out)]  # fmt: skip
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
    assert "resuming from" in second.stdout and f"({done} env steps done)" in second.stdout
    from stable_baselines3 import DQN

    model = DQN.load(out / "final_model.zip")
    assert model.num_timesteps == 12000  # the step count continued instead of starting over
    with np.load(out / "evaluations.npz") as ev:
        steps = ev["timesteps"]
    assert np.all(np.diff(steps) > 0) and steps[0] <= done  # history from before the kill kept
