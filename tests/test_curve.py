"""benchmarks/curve.py: the peak and the late evaluations of a long run, and its tables."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from workflow_support import ROOT, benchmark


def curve():
    return benchmark("curve")


def test_the_peak_the_late_evaluations_and_the_share_of_the_gain_kept():
    # a return that rises to 10 at 400 k steps, then falls to 6 and stays; no_balancing earns 2
    steps = [100_000 * k for k in range(1, 11)]
    returns = [4.0, 7.0, 9.0, 10.0, 8.0, 7.0, 6.0, 6.0, 6.0, 5.0]
    capacity = [2400.0 + 10 * r for r in returns]
    frame = pd.DataFrame({"steps": steps, "return": returns, "capacity_mah": capacity})
    stats = curve().peak_stats(frame.sample(frac=1.0, random_state=0), 1_000_000, none_return=2.0)
    assert stats["peak_steps"] == 400_000 and isinstance(stats["peak_steps"], int) and stats["peak_return"] == 10.0
    late = [6.0, 6.0, 5.0]  # past 750 k steps
    assert stats["late_return"] == pytest.approx(sum(late) / 3)
    assert stats["final_return"] == 5.0  # the last evaluation, whatever the rows' order
    assert stats["d_return"] == pytest.approx(sum(late) / 3 - 10.0)
    assert stats["d_capacity_mah"] == pytest.approx(10 * (sum(late) / 3 - 10.0))
    assert stats["kept"] == pytest.approx((sum(late) / 3 - 2.0) / (10.0 - 2.0))


def test_a_run_without_late_evaluations_is_refused():
    from bmsrl.errors import UserError

    frame = pd.DataFrame({"steps": [100_000, 200_000], "return": [1.0, 2.0], "capacity_mah": [2500.0, 2510.0]})
    with pytest.raises(UserError, match="past 75% of the budget"):
        curve().peak_stats(frame, 1_000_000, none_return=0.0)


def test_train_then_table_on_two_tiny_runs(tmp_path):
    """Two short DQN runs through the train verb, then the table verb: the curve, the per-seed peak
    rows with both baselines on the same packs, the summary and the figure; runs of two budgets are
    refused by name."""
    import subprocess

    script, config = ROOT / "benchmarks" / "curve.py", ROOT / "config" / "test.yaml"
    common = ["--algo", "dqn", "--config", str(config)]
    for seed in (1, 2):
        subprocess.run(
            [sys.executable, str(script), "train", *common, "--seed", str(seed), "--steps", "2048",
             "--eval-interval", "512", "--eval-episodes", "2", "--out", str(tmp_path / f"seed{seed}")],
            check=True, capture_output=True,
        )  # fmt: skip
    table = [sys.executable, str(script), "table", *common, "--out", str(tmp_path / "out"), "--runs"]
    subprocess.run([*table, str(tmp_path / "seed1"), str(tmp_path / "seed2")], check=True, capture_output=True)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "dqn_curve.csv",
        "dqn_curve.png",
        "dqn_peak.csv",
        "dqn_peak_seeds.csv",
    ]
    rows = pd.read_csv(out / "dqn_curve.csv")
    assert set(rows["seed"]) == {1, 2} and rows["steps"].max() <= 2048 and len(rows) >= 4
    seeds = pd.read_csv(out / "dqn_peak_seeds.csv")
    assert list(seeds["seed"]) == [1, 2] and (seeds["budget"] == 2048).all()
    assert (seeds["room_balancing_capacity_mah"] > seeds["no_balancing_capacity_mah"]).all()
    summary = pd.read_csv(out / "dqn_peak.csv")
    assert {"kept", "d_return", "peak_steps", "room_balancing_return"} <= set(summary["metric"])
    assert (summary["n_seeds"] == 2).all()
    record = tmp_path / "seed2" / "run_config.json"  # seed 2 as if trained for another budget
    record.write_text(record.read_text().replace('"total_steps": 2048', '"total_steps": 1024'))
    mixed = subprocess.run([*table, str(tmp_path / "seed1"), str(tmp_path / "seed2")], capture_output=True, text=True)
    assert mixed.returncode == 1 and "seed2: a budget of 1024 env steps, the others 2048" in mixed.stderr
