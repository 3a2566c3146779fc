"""The early-stopping rule of training (training.early_stopping): stop once the evaluation return
has stopped rising; the evaluated model is best_model.zip either way."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from bmsrl.cli import main
from bmsrl.learning import plateaued


@pytest.mark.parametrize(
    "means, patience, min_delta, min_evals, expected",
    [
        ([1, 2, 3, 4, 5, 6], 3, 0.1, 1, False),  # still rising
        ([1, 5, 4, 4.5, 3], 3, 0.1, 1, True),  # best (5) three evaluations ago, nothing above it since
        ([1, 5, 4, 4.5, 5.05], 3, 0.1, 1, True),  # a rise within min_delta is no improvement
        ([1, 5, 4, 4.5, 5.2], 3, 0.1, 1, False),  # a rise above min_delta is
        ([1, 5, 4, 4.5, 3], 3, 0.1, 6, False),  # too few evaluations yet
        ([5, 4, 3], 3, 0.1, 1, False),  # patience needs an evaluation before the window
        ([1, 5, 4, 4.5, 3], 0, 0.1, 1, False),  # patience 0: never
        ([-3.0, -1.0, -1.2, -1.1], 2, 0.0, 1, True),  # negative returns: the rule is about rises only
    ],
)
def test_plateau_rule(means, patience, min_delta, min_evals, expected):
    assert plateaued(means, patience, min_delta, min_evals) is expected


def test_a_run_stops_early_and_keeps_its_best_model(tmp_path):
    """A learning rate of 1e-12 cannot improve: the run stops after min_evaluations evaluations, writes
    every output, and its evaluation history ends there, far below the budget."""
    cfg = {
        "training": {
            "n_envs": 8,
            "total_steps": {"ppo": 40000},
            "eval_interval": 1000,
            "eval_episodes": 2,
            "checkpoint_interval": 1000,
            "early_stopping": {"patience": 2, "min_delta": 0.0, "min_evaluations": 3},
            "hyperparams": {"ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 1, "learning_rate": 1e-12}},
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--algo", "ppo", "--seed", "1", "--out", str(out)]) == 0
    for name in ("best_model.zip", "final_model.zip", "evaluations.npz", "run_config.json"):
        assert (out / name).is_file(), name
    with np.load(out / "evaluations.npz") as ev:
        steps, means = ev["timesteps"], ev["results"].mean(axis=1)
    assert steps[-1] < 10000, steps  # stopped long before the 40 k budget
    assert plateaued(means, 2, 0.0, 3)
    assert not plateaued(means[:-1], 2, 0.0, 3)  # and not one evaluation earlier
