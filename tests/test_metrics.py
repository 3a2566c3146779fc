"""The per-episode metrics (docs/model.md, "Metrics") on hand-made episodes whose values are computed
by hand in the comments: `episode_metrics` and `settle_time_s` of bmsrl.evaluate are the numbers every
table and figure reports, so each definition is pinned here without running the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bmsrl.evaluate import BALANCED_STD, SETTLED_SPREAD_PCT, episode_metrics, settle_time_s
from bmsrl.results import METRICS_COLUMNS


def record(
    time_s,
    soc,
    *,
    discharged_ah=0.0,
    charged_ah=0.0,
    shunt_energy_wh=(0.0, 0.0, 0.0),
    switch_changes=0,
    invalid_action=False,
    reward=0.0,
) -> dict:
    """One step's record as `run_episode` makes it (only the keys the metrics read)."""
    return {
        "time_s": time_s,
        "soc": np.array(soc),
        "discharged_ah": discharged_ah,
        "charged_ah": charged_ah,
        "shunt_energy_wh": np.array(shunt_energy_wh),
        "switch_changes": switch_changes,
        "invalid_action": invalid_action,
        "reward": reward,
    }


def converging_episode() -> list[dict]:
    """Three cells, reset state and two 30 s decisions; the spread narrows from 4 % to 0.6 %."""
    return [
        record(0.0, [0.50, 0.52, 0.54]),  # var (0.02² + 0 + 0.02²)/3 = 2.6667e-4; std 1.633 %; spread 4 %
        record(
            30.0,
            [0.50, 0.51, 0.52],
            discharged_ah=1.0,
            charged_ah=0.05,
            shunt_energy_wh=(0.05, 0.1, 0.0),
            switch_changes=2,
            invalid_action=True,
            reward=0.5,
        ),  # var 6.6667e-5; std 0.8165 %; spread 2 %
        record(
            60.0,
            [0.50, 0.503, 0.506],
            discharged_ah=2.5,
            charged_ah=0.1,
            shunt_energy_wh=(0.1, 0.2, 0.0),
            switch_changes=1,
            reward=-0.25,
        ),  # var 6e-6; std 0.24495 % (< 0.5 %: balanced); spread 0.6 %
    ]


def test_the_constants_are_the_documented_ones():
    assert BALANCED_STD == 0.005  # 0.5 % SoC standard deviation
    assert SETTLED_SPREAD_PCT == 1.0  # 1 % SoC spread


def test_episode_metrics_of_a_hand_computed_episode():
    m = episode_metrics(converging_episode(), terminated=False)
    assert m["usable_capacity_mah"] == pytest.approx(2500.0)  # the final record's cumulative 2.5 Ah
    assert m["charge_accepted_mah"] == pytest.approx(100.0)
    assert m["final_soc_var"] == pytest.approx(6e-6)
    assert m["mean_soc_var"] == pytest.approx((6.6667e-5 + 6e-6) / 2, rel=1e-4)  # the reset state is not averaged
    assert m["final_soc_std_pct"] == pytest.approx(0.24495, rel=1e-4)
    assert m["final_soc_spread_pct"] == pytest.approx(0.6)
    assert m["switch_changes"] == 3
    assert m["shunt_energy_wh"] == pytest.approx(0.3)  # summed over the cells
    assert m["time_to_balance_s"] == 60.0  # first std < 0.5 %
    assert m["time_to_spread_1pct_s"] == 60.0  # spread below 1 % from t = 60 s to the end
    assert m["invalid_actions"] == 1
    assert m["episode_steps"] == 2  # decisions, not records
    assert m["terminated"] is False
    assert m["total_reward"] == pytest.approx(0.25)


def test_episode_metrics_columns_are_the_results_contract():
    """Every metric the evaluate stage computes here is a declared column of metrics.csv."""
    m = episode_metrics(converging_episode(), terminated=True)
    assert m["terminated"] is True
    assert set(m) <= set(METRICS_COLUMNS), set(m) - set(METRICS_COLUMNS)


def test_an_episode_that_never_balances_has_no_balance_or_settle_time():
    records = converging_episode()[:2]  # ends at std 0.8165 %, spread 2 %
    m = episode_metrics(records, terminated=True)
    assert math.isnan(m["time_to_balance_s"]) and math.isnan(m["time_to_spread_1pct_s"])
    assert m["final_soc_spread_pct"] == pytest.approx(2.0) and m["episode_steps"] == 1
    assert m["mean_soc_var"] == pytest.approx(6.6667e-5, rel=1e-4)


def test_a_pack_balanced_at_reset_balanced_at_time_zero():
    records = [record(0.0, [0.5, 0.5, 0.5]), record(30.0, [0.5, 0.501, 0.5])]
    m = episode_metrics(records, terminated=False)
    assert m["time_to_balance_s"] == 0.0 and m["time_to_spread_1pct_s"] == 0.0
    assert m["final_soc_var"] == pytest.approx((2 * (1 / 3000) ** 2 + (2 / 3000) ** 2) / 3)  # mean 0.500333


def test_balance_counts_the_first_time_settling_the_last():
    """A pack that balances, drifts apart and settles again: time_to_balance_s is the first time the std
    fell below 0.5 %, time_to_spread_1pct_s the time from which the spread stayed below 1 %."""
    socs = [[0.50, 0.54, 0.52], [0.50, 0.502, 0.504], [0.50, 0.52, 0.51], [0.50, 0.504, 0.502]]
    records = [record(30.0 * k, soc) for k, soc in enumerate(socs)]  # spreads 4, 0.4, 2, 0.4 %
    m = episode_metrics(records, terminated=False)
    assert m["time_to_balance_s"] == 30.0
    assert m["time_to_spread_1pct_s"] == 90.0


def test_only_the_final_record_counts_for_cumulative_quantities():
    """discharged_ah, charged_ah and shunt_energy_wh are running totals: the final record's, not a sum."""
    records = converging_episode()
    records[1].update(discharged_ah=99.0, charged_ah=99.0, shunt_energy_wh=np.array([9.0, 9.0, 9.0]))
    m = episode_metrics(records, terminated=False)
    assert m["usable_capacity_mah"] == pytest.approx(2500.0) and m["charge_accepted_mah"] == pytest.approx(100.0)
    assert m["shunt_energy_wh"] == pytest.approx(0.3)


TIME_S = np.array([0.0, 30.0, 60.0, 90.0, 120.0])


@pytest.mark.parametrize(
    "spread_pct, expected",
    [
        ([0.9, 0.5, 0.2, 0.1, 0.0], 0.0),  # always below: from the reset state
        ([2.0, 0.5, 1.5, 0.8, 0.2], 90.0),  # dips below, rises again (t = 60 s), settles after
        ([2.0, 1.5, 1.2, 1.1, 0.99], 120.0),  # only the last state is below
        ([2.0, 0.5, 0.5, 0.5, 1.5], math.nan),  # ends above
        ([0.5, 0.5, 0.5, 0.5, 1.0], math.nan),  # ends exactly at the limit: not below it
        ([1.0, 0.5, 0.5, 0.5, 0.5], 30.0),  # exactly at the limit counts as above
    ],
)
def test_settle_time(spread_pct, expected):
    got = settle_time_s(TIME_S, np.array(spread_pct))
    assert (math.isnan(got) and math.isnan(expected)) or got == expected, got


def test_settle_time_takes_another_limit_and_the_first_time_stamp():
    spread = np.array([3.0, 1.5, 0.5, 0.2, 0.1])
    assert settle_time_s(TIME_S, spread) == 60.0
    assert settle_time_s(TIME_S, spread, limit_pct=2.0) == 30.0
    assert settle_time_s(TIME_S, spread, limit_pct=0.15) == 120.0
    assert settle_time_s(TIME_S + 10.0, spread, limit_pct=5.0) == 10.0  # always below: the first record's time


def test_traces_cover_the_first_trace_episodes_and_metrics_every_episode(tmp_path):
    """evaluation.trace_episodes: traces.csv holds the first episodes only; metrics.csv every one,
    with the same numbers as when every episode is traced."""
    import pandas as pd
    import yaml

    from bmsrl.cli import main

    frames = {}
    for traced in (1, 4):
        cfg = tmp_path / f"cfg{traced}.yaml"
        cfg.write_text(yaml.safe_dump({"evaluation": {"episodes": 4, "trace_episodes": traced}}))
        out = tmp_path / f"out{traced}"
        assert (
            main(
                [
                    "evaluate",
                    "--config",
                    str(cfg),
                    "--policy",
                    "no_balancing",
                    "--profile",
                    "charge-rest-discharge",
                    "--seed",
                    "1",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        frames[traced] = (pd.read_csv(out / "traces.csv"), pd.read_csv(out / "metrics.csv"))
    assert set(frames[1][0]["episode"]) == {0} and set(frames[4][0]["episode"]) == {0, 1, 2, 3}
    pd.testing.assert_frame_equal(frames[1][0], frames[4][0][frames[4][0]["episode"] == 0])
    pd.testing.assert_frame_equal(frames[1][1], frames[4][1])


def _evaluate(tmp_path, cfg_name: str, *args: str) -> int:
    import yaml

    from bmsrl.cli import main

    cfg = tmp_path / cfg_name
    cfg.write_text(
        yaml.safe_dump(
            {
                "evaluation": {
                    "episodes": 2,
                    "best_known_episodes": 1,
                    "scenarios": {"default": {}, "soh_wide": {"init_soh": [0.9, 1.1]}, "current_1c": {"i_max_a": 3.4}},
                },
                "baselines": {"tuned": False},  # the configured settings, no tuning files
            }
        )
    )
    return main(["evaluate", "--config", str(cfg), "--seed", "1", *args])


def test_one_job_over_profiles_and_scenarios_equals_one_job_each(tmp_path):
    """A grouped evaluate job (the workflow's: one per policy and seed) writes, for every profile x
    scenario, exactly the files that job alone writes (default and soh_wide, which differ only in the
    initial states, run as one batch: bmsrl.evaluate.evaluate_scenarios)."""
    import pandas as pd

    profiles, scenarios = ("charge-rest-discharge", "discharge-rest-charge"), ("default", "soh_wide", "current_1c")
    template = str(tmp_path / "all" / "{profile}" / "{scenario}")
    assert (
        _evaluate(
            tmp_path,
            "c.yaml",
            "--policy",
            "room_balancing",
            "--profile",
            *profiles,
            "--scenario",
            *scenarios,
            "--out",
            template,
        )
        == 0
    )
    for profile in profiles:
        for scenario in scenarios:
            alone = tmp_path / "alone" / profile / scenario
            assert (
                _evaluate(
                    tmp_path,
                    "c.yaml",
                    "--policy",
                    "room_balancing",
                    "--profile",
                    profile,
                    "--scenario",
                    scenario,
                    "--out",
                    str(alone),
                )
                == 0
            )
            for name in ("traces.csv", "metrics.csv"):
                grouped = pd.read_csv(tmp_path / "all" / profile / scenario / name)
                assert set(grouped["scenario"]) == {scenario} and set(grouped["profile"]) == {profile}
                pd.testing.assert_frame_equal(grouped, pd.read_csv(alone / name))


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ("--profile", "charge-rest-discharge", "discharge-rest-charge"),
            "with several profiles it must contain {profile}",
        ),
        (("--profile", "charge-rest-discharge", "--scenario", "default", "current_1c"), "must contain {scenario}"),
        (("--profile", "charge-rest-discharge", "charge-rest-discharge"), "names a profile twice"),
    ],
)
def test_grouped_outputs_must_not_collide(tmp_path, capsys, args, message):
    code = _evaluate(tmp_path, "c.yaml", "--policy", "no_balancing", *args, "--out", str(tmp_path / "out"))
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any episode ran


def test_best_known_runs_on_the_first_packs(tmp_path):
    """best_known's episodes are the first evaluation.best_known_episodes packs of the seed: the same
    packs (evaluation seeds) every other policy starts its episodes from."""
    import pandas as pd

    for policy in ("best_known", "room_balancing"):
        out = tmp_path / policy
        assert (
            _evaluate(tmp_path, "c.yaml", "--policy", policy, "--profile", "charge-rest-discharge", "--out", str(out))
            == 0
        )
    reference, rule = (pd.read_csv(tmp_path / p / "metrics.csv") for p in ("best_known", "room_balancing"))
    assert len(reference) == 1 and len(rule) == 2
    assert reference["eval_seed"].iloc[0] == rule["eval_seed"].iloc[0]
    # one step of improvement over room_balancing never delivers less on the same pack (bmsrl.best_known)
    assert reference["usable_capacity_mah"].iloc[0] >= rule["usable_capacity_mah"].iloc[0] - 1e-6


@pytest.mark.parametrize("cycles", [1, 2])
def test_traces_give_each_cycles_delivered_charge(tmp_path, cycles):
    """env.cycles: traces.csv's cycle and cycle_discharged_mah give each cycle's delivered charge
    (bmsrl.results.cycle_capacities_mah): the first cycle's is what the env reported when it ended,
    the last cycle's is metrics.csv's usable capacity."""
    import pandas as pd
    import yaml

    from bmsrl.baselines import make_baseline
    from bmsrl.cli import main
    from bmsrl.config import load_config
    from bmsrl.env import PassiveBalancingEnv
    from bmsrl.results import cycle_capacities_mah
    from bmsrl.task_config import task_kwargs

    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({"env": {"cycles": cycles}, "evaluation": {"episodes": 2}, "baselines": {"tuned": False}})
    )
    out = tmp_path / "out"
    argv = ["evaluate", "--config", str(path), "--policy", "rule_based", "--profile", "charge-rest-discharge"]
    assert main([*argv, "--seed", "1", "--out", str(out)]) == 0
    traces, metrics = pd.read_csv(out / "traces.csv"), pd.read_csv(out / "metrics.csv")
    capacities = cycle_capacities_mah(traces)
    assert capacities.groupby("episode")["cycle"].apply(list).tolist() == [list(range(cycles))] * 2
    last = capacities.groupby("episode")["capacity_mah"].last().to_numpy()
    assert np.allclose(last, metrics["usable_capacity_mah"].to_numpy(), rtol=1e-5)

    # the same first episode step by step: the charge each cycle delivered, from the env's info
    cfg = load_config(path)
    env = PassiveBalancingEnv(**task_kwargs(cfg, "charge-rest-discharge"))
    policy = make_baseline("rule_based", 5, cfg["baselines"]["rule_based"], env=cfg["env"])
    obs, info = env.reset(seed=int(metrics["eval_seed"].iloc[0]))
    delivered, done = [], False
    while not done:
        obs, _, terminated, truncated, new = env.step(int(policy.predict(obs[None])[0][0]))
        if new.get("cycle", 0) > info.get("cycle", 0):
            delivered.append(new["ended_cycle_discharged_ah"])
        info, done = new, terminated or truncated
    delivered.append(info["discharged_ah"])
    assert len(delivered) == cycles
    episode0 = capacities[capacities["episode"] == 0]["capacity_mah"].to_numpy()
    assert np.allclose(episode0, 1000.0 * np.array(delivered), rtol=1e-5)
