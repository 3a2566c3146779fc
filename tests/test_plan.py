"""Tests of the run plan the workflow prints before its jobs (bmsrl.plan)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmsrl.algos import ALGOS
from bmsrl.config import load_config, load_workflow_config
from bmsrl.plan import run_plan, training_seconds

ROOT = Path(__file__).resolve().parents[1]


def quick_config() -> dict:
    return load_workflow_config([ROOT / "config" / "config.yaml", ROOT / "config" / "quick.yaml"], {})


def test_the_plan_names_the_root_the_kind_the_runs_and_their_time():
    cfg = quick_config()
    text = run_plan(cfg, [("dqn", 1), ("ppo", 1)], cores=2)
    lines = text.splitlines()
    assert len(lines) <= 24  # one screen
    assert "outputs in results-quick/" in lines[0] and lines[1].strip().startswith("Smoke run")
    assert "2 of the 2 runs" in text
    dqn = next(line for line in lines if line.strip().startswith("DQN"))
    assert "200,000 env steps" in dqn and f"{ALGOS['dqn'].steps_per_s:,.0f} env-steps/s" in dqn
    each = {a: training_seconds(a, cfg["training"]["total_steps"][a]) for a in ("dqn", "ppo")}
    assert each["dqn"] == pytest.approx(200_000 / ALGOS["dqn"].steps_per_s)
    assert f"{each['dqn'] / 60:.0f} min each" in dqn
    # two jobs of one thread side by side on two cores: the longer one sets the wall time
    assert f"{sum(each.values()) / 60:.0f} min of jobs, about {max(each.values()) / 60:.0f} min with 2" in text


def test_the_plan_of_a_long_study_speaks_in_hours_and_skips_what_is_done():
    cfg = load_config()  # the defaults: dqn and ppo, 3 seeds, the study's budgets
    runs = [("dqn", 1), ("dqn", 2), ("dqn", 3), ("ppo", 2), ("ppo", 3)]  # ppo seed 1 is done
    text = run_plan(cfg, runs, cores=1)
    assert "Study run" in text and "5 of the 6 runs" in text and "seeds 2, 3" in text
    seconds = sum(cfg["training"]["total_steps"][a] / ALGOS[a].steps_per_s for a, _ in runs)
    assert seconds > 2 * 3600  # spoken in hours
    assert f"without its evaluations): {seconds / 3600:.1f} h of jobs" in text and "side by side" not in text
    assert "nothing to train" in run_plan(cfg, [], cores=2)


def test_an_unmeasured_algorithm_is_said_so_not_guessed():
    cfg = load_config(json_text='{"algos": ["maskable_ppo", "dqn"]}')
    assert ALGOS["maskable_ppo"].steps_per_s is None
    text = run_plan(cfg, [("maskable_ppo", 1), ("dqn", 1)], cores=2)
    assert "throughput not measured" in text and "(without Maskable PPO)" in text
