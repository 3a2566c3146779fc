"""Tests of the tune_baselines stage: the grid, the objective, the seeds, the file evaluation reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from bmsrl import cli
from bmsrl.baselines import RuleBased, TopBalancing
from bmsrl.config import defaults, validate
from bmsrl.errors import UserError
from bmsrl.results import read_baseline_settings
from bmsrl.seeds import evaluation_seeds, tuning_seeds
from bmsrl.tune_baselines import candidates, select, tune


def small_config(**tuning) -> dict:
    cfg = {
        "baselines": {
            "tuning": {"thresholds": [0.01, 0.03], "hysteresis_fractions": [0.0, 0.5], "episodes": 3, **tuning}
        }
    }
    return validate(cfg, "test")


def test_grid_is_threshold_times_hysteresis_fraction():
    grid = [
        (c["threshold"], c["hysteresis"])
        for c in candidates("rule_based", {"thresholds": [0.02, 0.01], "hysteresis_fractions": [0.5, 0.0, 1.0]})
    ]
    assert grid == [(0.01, 0.0), (0.01, 0.005), (0.01, 0.01), (0.02, 0.0), (0.02, 0.01), (0.02, 0.02)]
    assert all(0.0 <= h <= t for t, h in grid)  # every candidate is a valid controller


def grid_table(rows) -> pd.DataFrame:
    columns = [
        "threshold",
        "hysteresis",
        "next_capacity_mah",
        "switch_changes",
        "shunt_energy_wh",
        "terminated_fraction",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(baseline="rule_based", final_soc_spread_pct=1.0, usable_capacity_mah=1.0, episodes=4)


def test_objective_capacity_within_tolerance_then_switching_then_energy():
    grid = grid_table(
        [
            (0.01, 0.0, 2600.0, 100.0, 5.0, 0.0),  # best capacity, much switching
            (0.02, 0.0, 2590.0, 20.0, 4.0, 0.0),  # within 0.5 % (13 mAh): fewer switches wins
            (0.02, 0.01, 2591.0, 20.0, 3.0, 0.0),  # same switching, less energy: the choice
            (0.05, 0.0, 2500.0, 5.0, 1.0, 0.0),  # cheapest, but loses capacity beyond the tolerance
            (0.03, 0.0, 2700.0, 1.0, 0.1, 0.25),  # best of all, but an episode violated safety
        ]
    )
    chosen = select(grid, tolerance_pct=0.5)
    assert list(chosen["eligible"]) == [True, True, True, False, False]
    assert chosen["selected"].sum() == 1 and chosen.loc[chosen["selected"], "hysteresis"].item() == 0.01
    strict = select(grid, tolerance_pct=0.0)  # no tolerance: capacity alone decides
    assert strict.loc[strict["selected"], "next_capacity_mah"].item() == 2600.0


def test_tuning_seeds_never_meet_evaluation_seeds():
    cfg = defaults()
    assert not set(tuning_seeds(cfg)) & evaluation_seeds(cfg)
    # and the validator refuses a config where they would (episode 0 of training seed 1)
    with pytest.raises(UserError, match="baselines.tuning.seed_offset.*evaluation seed 1001000"):
        validate({"baselines": {"tuning": {"seed_offset": 1_000_990, "episodes": 20}}}, "cfg")
    with pytest.raises(UserError, match="evaluation seed"):
        validate({"seeds": [2], "evaluation": {"seed_offset": 498_000}}, "cfg")  # 498000 + 2000 = 500000


def test_tune_runs_every_candidate_on_the_tuning_packs_only(monkeypatch):
    """All candidates see the same packs, drawn from the tuning seeds and from nothing else."""
    import bmsrl.tune_baselines as tune_module

    drawn = []
    real = tune_module.rng_for_seed
    monkeypatch.setattr(tune_module, "rng_for_seed", lambda seed: drawn.append(seed) or real(seed))
    cfg = small_config()
    record, grid = tune(cfg, "rule_based")
    assert drawn == list(tuning_seeds(cfg)) == [500000, 500001, 500002]
    assert not set(drawn) & evaluation_seeds(cfg)
    assert len(grid) == 4 and grid["selected"].sum() == 1 and (grid["episodes"] == 3).all()
    assert record["settings"] == {k: grid.loc[grid["selected"], k].item() for k in ("threshold", "hysteresis")}
    assert record["tuning_seeds"] == {"first": 500000, "last": 500002} and record["profile"] == "discharge-rest-charge"
    # balancing leaves the pack better balanced for the next discharge than its initial spread allows:
    assert (grid["next_capacity_mah"] > 0).all() and (grid["switch_changes"] > 0).all()
    # a tighter threshold leaves a smaller final spread (same packs, same hysteresis fraction)
    no_h = grid[grid["hysteresis"] == 0.0].set_index("threshold")
    assert no_h.loc[0.01, "final_soc_spread_pct"] < no_h.loc[0.03, "final_soc_spread_pct"]
    with pytest.raises(UserError, match="nothing to tune"):
        tune(cfg, "no_balancing")


def test_cli_writes_the_settings_evaluation_reads(tmp_path, capsys):
    import json

    out, grid = tmp_path / "rule_based.yaml", tmp_path / "grid.csv"
    cfg = json.dumps({"baselines": {"tuning": {"thresholds": [0.02], "hysteresis_fractions": [0.5], "episodes": 2}}})
    assert (
        cli.main(
            [
                "tune-baselines",
                "--config-json",
                cfg,
                "--baseline",
                "top_balancing",
                "--out",
                str(out),
                "--grid-out",
                str(grid),
            ]
        )
        == 0
    )
    assert "top_balancing: threshold 0.02, hysteresis 0.01" in capsys.readouterr().out
    keys = ("threshold", "hysteresis")
    assert read_baseline_settings(out, "top_balancing", keys) == {"threshold": 0.02, "hysteresis": 0.01}
    assert yaml.safe_load(out.read_text())["selected"]["switch_changes"] >= 0
    with pytest.raises(UserError, match="not 'rule_based'"):
        read_baseline_settings(out, "rule_based", keys)
    with pytest.raises(UserError, match="expected"):  # another baseline's settings keys
        read_baseline_settings(out, "top_balancing", ("margin_mah", "hysteresis_mah"))
    assert len(pd.read_csv(grid)) == 1


def test_top_balancing_bleeds_only_while_charging_or_resting():
    n = 5
    soc = np.array([0.50, 0.55, 0.60, 0.50, 0.52])
    frame = np.concatenate([2 * soc - 1, -np.ones(n), np.zeros(n), [0.0]])
    obs = np.tile(frame, 3)
    rule = RuleBased(0.01, 0.005, n)
    top = TopBalancing(0.01, 0.005, n)
    expected = 0b10110  # cells 2, 3 and 5 (bits 1, 2, 4) are more than 1 % above the minimum
    for current, want in ((1.0, 0), (0.0, expected), (-1.0, expected)):
        obs[3 * n] = current  # newest frame's pack current I / I_max
        assert rule.predict(obs)[0] == expected
        assert top.predict(obs)[0] == want
