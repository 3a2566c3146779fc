"""Tests of the claims stage: the verdict rules, the per-pack figures and the table on synthetic metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from bmsrl import cli
from bmsrl.claims import (
    CLAIM,
    CLAIMS,
    CLAIMS_COLUMNS,
    CLAIMS_PROFILE,
    NOT_COMPARABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Figure,
    claims_table,
    describe_setting,
    hand_set_rule,
    paired_pct,
    percent_verdict,
    ranking_verdict,
    summarise_packs,
)
from bmsrl.config import validate
from bmsrl.errors import UserError
from bmsrl.results import METRICS_COLUMNS
from bmsrl.stats import t_interval

STUDY = {
    "env": {"cutoff": "soc", "charging": "cc"},
    "reward": {"kind": "study"},
    "baselines": {"tuned": False},
    "algos": ["dqn", "ppo", "a2c", "trpo", "ars"],
}


def config(**overrides) -> dict:
    return validate({**STUDY, **overrides}, "test config")


def packs(policy: str, values: dict[str, list[float]], seeds=(1, 2), profile: str = CLAIMS_PROFILE) -> pd.DataFrame:
    """Metrics rows of ``policy``: ``values[column]`` lists one value per pack, packs split evenly over ``seeds``."""
    n = len(next(iter(values.values())))
    per_seed = n // len(seeds)
    rows = []
    for i in range(n):
        seed, episode = seeds[i // per_seed], i % per_seed
        row = {c: 0.0 for c in METRICS_COLUMNS}
        row.update(
            policy=policy,
            profile=profile,
            scenario="default",
            seed=seed,
            episode=episode,
            eval_seed=1000 * seed + episode,
            terminated=False,
            usable_capacity_mah=2000.0,
            no_balancing_capacity_mah=2000.0,
            capacity_bound_mah=2400.0,
            mean_soc_var=1e-4,
            switch_changes=10.0,
            total_reward=0.0,
        )
        row.update({k: v[i] for k, v in values.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(METRICS_COLUMNS))


def study_frame(trpo_capacity, trpo_var, trpo_switch, returns=None) -> pd.DataFrame:
    """no_balancing, the hand-set rule (rule_based, untuned run) and trpo/dqn on 4 packs (2 seeds x 2)."""
    returns = returns or {"trpo": [5.0] * 4, "dqn": [1.0] * 4}
    return pd.concat(
        [
            packs(
                "no_balancing",
                {
                    "usable_capacity_mah": [2000.0] * 4,
                    "mean_soc_var": [1e-4] * 4,
                    "switch_changes": [0.0] * 4,
                    "total_reward": [-3.0] * 4,
                },
            ),
            packs(
                "rule_based",
                {
                    "usable_capacity_mah": [2100.0] * 4,
                    "mean_soc_var": [2e-5] * 4,
                    "switch_changes": [20.0] * 4,
                    "total_reward": [0.0] * 4,
                },
            ),
            packs(
                "trpo",
                {
                    "usable_capacity_mah": trpo_capacity,
                    "mean_soc_var": trpo_var,
                    "switch_changes": trpo_switch,
                    "total_reward": returns["trpo"],
                },
            ),
            packs(
                "dqn",
                {
                    "usable_capacity_mah": [2010.0] * 4,
                    "mean_soc_var": [9e-5] * 4,
                    "switch_changes": [30.0] * 4,
                    "total_reward": returns["dqn"],
                },
            ),
        ],
        ignore_index=True,
    )


# ---------------------------------------------------------------------------------- statistics


def test_pack_figures_are_the_student_t_interval_over_seed_means():
    # three seeds of two packs: seed means 1.5, 3.5, 7.0; the interval is bmsrl.stats.t_interval's
    frame = packs("a", {"switch_changes": [1.0, 2.0, 3.0, 4.0, 6.0, 8.0]}, seeds=(1, 2, 3))
    fig = summarise_packs(frame, "switch_changes", higher_is_better=False)
    x = np.array([1.5, 3.5, 7.0])
    expected = stats.t.interval(0.95, df=2, loc=x.mean(), scale=stats.sem(x))
    assert fig.mean == pytest.approx(x.mean()) and (fig.low, fig.high) == pytest.approx(expected)
    assert (fig.mean, fig.low, fig.high) == t_interval(x)
    assert fig.best == 1.0 and fig.n_seeds == 3 and fig.n_packs == 6


def test_pack_figures_with_one_seed_have_no_bounds():
    fig = summarise_packs(packs("a", {"switch_changes": [3.0, math.nan]}, seeds=(1,)), "switch_changes", True)
    assert fig.mean == 3.0 and math.isnan(fig.low) and math.isnan(fig.high) and fig.n_undefined == 1


def test_claims_has_no_interval_formula_of_its_own():
    src = (Path(__file__).parents[1] / "src" / "bmsrl" / "claims.py").read_text()
    assert "from bmsrl.stats import t_interval" in src and "scipy" not in src and ".ppf(" not in src


def test_paired_pct_is_the_change_against_the_reference_on_the_same_pack():
    frame = pd.concat(
        [
            packs("a", {"switch_changes": [5.0, 30.0]}, seeds=(1,)),
            packs("b", {"switch_changes": [10.0, 0.0]}, seeds=(1,)),
        ]
    )
    out = paired_pct(frame, "a", "b", "switch_changes")
    assert out["pct"].iloc[0] == pytest.approx(-50.0)
    assert math.isnan(out["pct"].iloc[1])  # reference 0: undefined, not infinite


def test_paired_pct_refuses_different_packs():
    a = packs("a", {"switch_changes": [5.0, 6.0]}, seeds=(1,))
    b = packs("b", {"switch_changes": [5.0, 6.0]}, seeds=(1,))
    b.loc[1, "eval_seed"] = 77
    with pytest.raises(UserError, match="same packs"):
        paired_pct(pd.concat([a, b]), "a", "b", "switch_changes")


# ---------------------------------------------------------------------------------- verdict rules


def fig(mean, best, low=math.nan, high=math.nan, n=10):
    return Figure(mean, low, high, best, 2, n)


@pytest.mark.parametrize(
    ("claim", "figure", "ceiling", "verdict", "words"),
    [
        ("capacity", fig(12.0, 17.0), 20.0, REPRODUCED, "falls short"),  # best pack reaches, mean does not
        ("capacity", fig(18.0, 25.0, 17.0, 19.0), 30.0, REPRODUCED, "interval included"),
        ("capacity", fig(18.0, 25.0, 15.0, 21.0), 30.0, REPRODUCED, "contains it"),
        ("capacity", fig(12.0, 16.7), 20.0, NOT_REPRODUCED, "does not reach"),
        ("capacity", fig(12.0, 16.0), 16.5, NOT_COMPARABLE, "no passive policy"),  # the bound cannot reach +16.8
        ("soc_variance", fig(-60.0, -69.4), None, REPRODUCED, "falls short"),  # a reduction: as deep is enough
        ("soc_variance", fig(-80.0, -90.0), None, REPRODUCED, "exceeds"),
        ("soc_variance", fig(-60.0, -69.3), None, NOT_REPRODUCED, "does not reach"),
        ("switching", fig(-10.0, -30.0), None, NOT_REPRODUCED, "-40.4"),
        ("switching", Figure(math.nan, math.nan, math.nan, math.nan, 0, 0), None, NOT_COMPARABLE, "no pack"),
    ],
)
def test_percent_verdict_rules(claim, figure, ceiling, verdict, words):
    got, reason = percent_verdict(CLAIM[claim], figure, ceiling)
    assert got == verdict
    assert words in reason


def test_percent_verdict_missing_data_is_not_comparable():
    assert percent_verdict(CLAIM["capacity"], None, missing="the reference x was not evaluated") == (
        NOT_COMPARABLE,
        "the reference x was not evaluated",
    )


def test_ranking_verdict_rules():
    sep = {"trpo": (10.0, 9.0, 11.0), "dqn": (5.0, 4.0, 6.0), "ppo": (1.0, 0.0, 2.0)}
    verdict, reason = ranking_verdict(sep)
    assert verdict == REPRODUCED and "separate it" in reason and "do not" not in reason
    verdict, reason = ranking_verdict({"trpo": (10.0, 2.0, 18.0), "dqn": (9.0, 1.0, 17.0)})
    assert verdict == REPRODUCED and "do not separate" in reason
    verdict, reason = ranking_verdict({"trpo": (1.0, 0.0, 2.0), "dqn": (5.0, 4.0, 6.0), "ppo": (3.0, 2.0, 4.0)})
    assert verdict == NOT_REPRODUCED and "ranks 3 of 3" in reason and reason.startswith("dqn")
    assert ranking_verdict({"dqn": (5.0, 4.0, 6.0)})[0] == NOT_COMPARABLE  # TRPO not evaluated
    assert ranking_verdict({"trpo": (5.0, 4.0, 6.0)})[0] == NOT_COMPARABLE  # nothing to rank against


def test_the_paper_figures_are_written_once_with_their_sign():
    assert {c.name: c.paper_pct for c in CLAIMS} == {
        "capacity": 16.8,
        "soc_variance": -69.4,
        "switching": -40.4,
        "trpo_best": None,
    }
    src = (Path(__file__).parents[1] / "src" / "bmsrl" / "claims.py").read_text()
    assert src.count("16.8") == 1 and src.count("69.4") == 1 and src.count("40.4") == 1


# ---------------------------------------------------------------------------------- the table


def test_claims_table_on_a_synthetic_study_run():
    # trpo: +5, +20, +5, +5 % capacity (best +20 % reaches +16.8); variance -50 % everywhere (short of
    # -69.4); switching 10 vs the rule's 20 = -50 % (beyond -40.4); the highest return
    frame = study_frame([2100.0, 2400.0, 2100.0, 2100.0], [5e-5] * 4, [10.0] * 4)
    frame = pd.concat(
        [frame, packs("trpo", {"usable_capacity_mah": [9999.0] * 2}, seeds=(1,), profile="discharge-rest-charge")]
    )  # another profile: ignored
    table = claims_table(frame, config()).set_index("claim")
    assert list(table.reset_index().columns) == list(CLAIMS_COLUMNS)
    cap = table.loc["capacity"]
    assert cap["verdict"] == REPRODUCED and cap["policy"] == "trpo" and cap["reference"] == "no_balancing"
    assert cap["project_mean"] == pytest.approx(np.mean([12.5, 5.0]))  # seed 1: (5 + 20) / 2, seed 2: 5
    assert cap["project_best"] == pytest.approx(20.0)
    assert cap["ceiling_mean"] == pytest.approx(20.0) and cap["ceiling_best"] == pytest.approx(20.0)
    assert "4 of 4 packs' bounds allow" in cap["reason"] and "1 of 4 packs of trpo reach +16.8 %" in cap["reason"]
    var = table.loc["soc_variance"]
    assert var["verdict"] == NOT_REPRODUCED and var["project_best"] == pytest.approx(-50.0)
    assert var["ceiling_mean"] == pytest.approx(-80.0) and "rule_based" in var["ceiling"]  # the best evaluated
    sw = table.loc["switching"]
    assert sw["reference"] == "rule_based" and sw["verdict"] == REPRODUCED
    assert sw["project_mean"] == pytest.approx(-50.0) and sw["n_seeds"] == 2 and sw["n_packs"] == 4
    best = table.loc["trpo_best"]
    assert best["verdict"] == REPRODUCED and best["project_mean"] == pytest.approx(5.0)


def test_claims_table_capacity_not_comparable_when_no_bound_allows_the_figure():
    frame = study_frame([2100.0] * 4, [5e-5] * 4, [10.0] * 4)
    frame["capacity_bound_mah"] = 2200.0  # +10 % at most
    row = claims_table(frame, config()).set_index("claim").loc["capacity"]
    assert row["verdict"] == NOT_COMPARABLE and row["ceiling_best"] == pytest.approx(10.0)


def test_claims_table_tuned_run_compares_switching_with_the_hand_set_copy():
    cfg = config(baselines={"tuned": True})
    assert hand_set_rule(cfg) == "rule_based_untuned"
    frame = study_frame([2100.0] * 4, [5e-5] * 4, [10.0] * 4)
    row = claims_table(frame, cfg).set_index("claim").loc["switching"]
    assert row["verdict"] == NOT_COMPARABLE and "rule_based_untuned was not evaluated" in row["reason"]
    frame = pd.concat([frame, packs("rule_based_untuned", {"switch_changes": [40.0] * 4})])
    row = claims_table(frame, cfg).set_index("claim").loc["switching"]
    assert row["reference"] == "rule_based_untuned" and row["project_mean"] == pytest.approx(-75.0)


def test_claims_table_without_trpo_uses_the_best_algorithm_and_says_so():
    frame = study_frame([2100.0] * 4, [5e-5] * 4, [10.0] * 4)
    frame = frame[frame["policy"] != "trpo"]
    table = claims_table(frame, config()).set_index("claim")
    cap = table.loc["capacity"]
    assert cap["policy"] == "dqn" and "trpo was not evaluated" in cap["reason"]
    assert table.loc["trpo_best", "verdict"] == NOT_COMPARABLE


def test_claims_table_ranking_not_reproduced_when_another_algorithm_earns_more():
    frame = study_frame([2100.0] * 4, [5e-5] * 4, [10.0] * 4, returns={"trpo": [1.0] * 4, "dqn": [2.0, 3.0, 2.5, 2.5]})
    row = claims_table(frame, config()).set_index("claim").loc["trpo_best"]
    assert row["verdict"] == NOT_REPRODUCED and "dqn has the highest" in row["reason"]


def test_claims_table_without_the_test_profile_is_not_comparable():
    frame = study_frame([2100.0] * 4, [5e-5] * 4, [10.0] * 4)
    frame["profile"] = "discharge-rest-charge"
    table = claims_table(frame, config())
    assert set(table["verdict"]) == {NOT_COMPARABLE}
    assert all(f"no metrics rows of profile '{CLAIMS_PROFILE}'" in r for r in table["reason"])


def test_describe_setting_names_the_study_and_the_default():
    assert "the study's setting" in describe_setting(config())
    assert "the BMS default setting" in describe_setting(validate({}, "defaults"))
    assert "a mixed setting" in describe_setting(config(reward={"kind": "capacity"}))


# ---------------------------------------------------------------------------------- the verb


def test_cli_writes_both_tables(tmp_path: Path):
    frame = study_frame([2100.0, 2400.0, 2100.0, 2100.0], [5e-5] * 4, [10.0] * 4)
    paths = []
    for policy, part in frame.groupby("policy"):
        path = tmp_path / f"{policy}.csv"
        part.to_csv(path, index=False)
        paths.append(str(path))
    run_config = tmp_path / "config.yaml"
    run_config.write_text(yaml.safe_dump(config()))
    out_csv, out_md = tmp_path / "t" / "claims.csv", tmp_path / "t" / "claims.md"
    assert (
        cli.main(["claims", *paths, "--config", str(run_config), "--out-csv", str(out_csv), "--out-md", str(out_md)])
        == 0
    )
    table = pd.read_csv(out_csv)
    assert list(table["claim"]) == [c.name for c in CLAIMS]
    text = out_md.read_text()
    assert "Setting: the study's setting" in text and "**reproduced**" in text and "+16.8 %" in text


def test_cli_refuses_an_episode_given_twice(tmp_path: Path, capsys):
    path = tmp_path / "m.csv"
    packs("trpo", {"total_reward": [1.0, 2.0]}, seeds=(1,)).to_csv(path, index=False)
    outputs = ["--out-csv", str(tmp_path / "c.csv"), "--out-md", str(tmp_path / "c.md")]
    code = cli.main(["claims", str(path), str(path), "--config-json", "{}", *outputs])
    assert code == 2 and "appears twice" in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()


def test_cli_needs_the_run_config(tmp_path: Path, capsys):
    path = tmp_path / "m.csv"
    packs("trpo", {"total_reward": [1.0, 2.0]}, seeds=(1,)).to_csv(path, index=False)
    code = cli.main(["claims", str(path), "--out-csv", str(tmp_path / "c.csv"), "--out-md", str(tmp_path / "c.md")])
    assert code == 2 and "--config results/run/config.yaml" in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()
