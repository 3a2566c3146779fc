"""Tests of the aggregate stage: two-level summary with t intervals over seeds, shares and gap, paired
comparisons vs baselines, performance profiles, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bmsrl import cli
from bmsrl.aggregate import paired_statistics, per_seed_means, performance_profiles, summarise
from bmsrl.claims import CLAIMS
from bmsrl.errors import UserError
from bmsrl.results import (
    HEADLINE,
    METRICS,
    METRICS_COLUMNS,
    PAIRED_COLUMNS,
    PROFILE_COLUMNS,
    PROFILE_TAUS,
    SUMMARY_COLUMNS,
    read_metrics,
)
from bmsrl.stats import t_interval


def episodes(policy: str, profile: str, seed: int, n: int = 2, **values) -> pd.DataFrame:
    """``n`` metrics rows of one policy x profile x seed; ``values`` override the defaults."""
    base = dict(
        eval_seed=1000,
        usable_capacity_mah=2000.0,
        charge_accepted_mah=2100.0,
        final_soc_var=1e-4,
        mean_soc_var=2e-4,
        final_soc_std_pct=1.0,
        final_soc_spread_pct=2.5,
        switch_changes=10.0,
        shunt_energy_wh=0.1,
        time_to_balance_s=600.0,
        time_to_spread_1pct_s=900.0,
        invalid_actions=0,
        episode_steps=200,
        terminated=False,
        total_reward=-50.0,
        recovered_share=0.5,
        capacity_bound_mah=2200.0,
        no_balancing_capacity_mah=1800.0,
    )
    base.update(values)
    rows = [dict(policy=policy, profile=profile, scenario="default", seed=seed, episode=e, **base) for e in range(n)]
    for e, row in enumerate(rows):
        row["eval_seed"] = base["eval_seed"] + e
    return pd.DataFrame(rows, columns=list(METRICS_COLUMNS))


def write_metrics(root: Path, frame: pd.DataFrame) -> list[Path]:
    """Write ``frame`` as one metrics.csv per policy/profile/seed in the evaluate layout."""
    paths = []
    for (policy, profile, seed), group in frame.groupby(["policy", "profile", "seed"]):
        path = root / "eval" / policy / profile / f"seed{seed}" / "metrics.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        group.to_csv(path, index=False)
        paths.append(path)
    return paths


def row(summary: pd.DataFrame, policy: str, profile: str, metric: str) -> pd.Series:
    hit = summary[(summary.policy == policy) & (summary.profile == profile) & (summary.metric == metric)]
    assert len(hit) == 1
    return hit.iloc[0]


# ------------------------------------------------------------------------------------------ summary


def test_two_level_mean_over_episodes_then_seeds():
    profile = "charge-rest-discharge"
    frame = pd.concat(
        [
            episodes("ppo", profile, 0, n=1, usable_capacity_mah=1.0),
            episodes("ppo", profile, 1, n=3, usable_capacity_mah=2.0),
            episodes("ppo", profile, 2, n=2, usable_capacity_mah=3.0),
        ]
    )
    summary = summarise(frame)
    r = row(summary, "ppo", profile, "usable_capacity_mah")
    assert r["mean"] == pytest.approx(2.0)  # seeds weigh equally, whatever their episode count
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(t_interval([1.0, 2.0, 3.0])[1:])  # t over the 3 seed means
    assert r["interval_over"] == "seeds"
    assert (r["n_seeds"], r["n_episodes"]) == (3, 6)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert list(summary["metric"]) == [m.name for m in METRICS]


def test_single_seed_summary_has_no_interval():
    summary = summarise(episodes("dqn", "charge-rest-discharge", 0, n=4, usable_capacity_mah=2100.0))
    r = row(summary, "dqn", "charge-rest-discharge", "usable_capacity_mah")
    assert r["mean"] == 2100.0 and math.isnan(r["ci_low"]) and math.isnan(r["ci_high"])
    assert r["n_seeds"] == 1 and r["interval_over"] == "one seed"


def test_deterministic_baselines_say_their_seeds_are_pack_sets():
    frame = pd.concat(
        [
            episodes(p, "p", seed, usable_capacity_mah=2000.0 + seed)
            for p in ("ppo", "top_balancing", "no_balancing")
            for seed in (0, 1, 2)
        ]
    )
    summary = summarise(frame)
    assert set(summary.loc[summary.policy == "ppo", "interval_over"]) == {"seeds"}
    assert set(summary.loc[summary.policy == "top_balancing", "interval_over"]) == {"pack sets"}
    paired = paired_statistics(frame)
    assert set(paired.loc[paired.policy == "ppo", "interval_over"]) == {"seeds"}  # ppo vs a baseline: training
    assert set(paired.loc[paired.policy == "top_balancing", "interval_over"]) == {"pack sets"}  # two baselines


def test_ratio_of_sums_share_and_gap_to_the_bound():
    """Per seed: sum(C - C_nb) / sum(C_bound - C_nb) over the packs with a share; gap = C_bound - C."""
    frame = episodes("ppo", "p", 0, n=3, no_balancing_capacity_mah=2000.0)
    frame["capacity_bound_mah"] = [2100.0, 2400.0, 2000.5]  # the last pack: < 1 mAh recoverable, no share
    frame["usable_capacity_mah"] = [2100.0, 2100.0, 2000.5]
    frame["recovered_share"] = [1.0, 0.25, np.nan]
    seeds = per_seed_means(frame)
    assert seeds["recovered_share"].iloc[0] == pytest.approx(0.625)  # mean of the per-pack shares
    assert seeds["recovered_share_of_sums"].iloc[0] == pytest.approx(200.0 / 500.0)  # sums over packs 1, 2
    assert seeds["optimality_gap_mah"].iloc[0] == pytest.approx(150.0)  # (0 + 300) / 2
    none = episodes("ppo", "p", 1, n=2, recovered_share=np.nan)  # the bound does not hold: nothing
    r = per_seed_means(none).iloc[0]
    assert math.isnan(r["recovered_share_of_sums"]) and math.isnan(r["optimality_gap_mah"])


def paired_row(paired: pd.DataFrame, policy: str, baseline: str, metric: str) -> pd.Series:
    hit = paired[(paired.policy == policy) & (paired.baseline == baseline) & (paired.metric == metric)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_paired_statistics_known_differences():
    """Policy = baseline + a known per-episode difference on the same packs."""
    profile = "charge-rest-discharge"
    diffs = np.array([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 10.0, 30.0], [-10.0, 20.0, 20.0, 30.0]])
    parts = []
    for seed in range(3):
        base = episodes("rule_based", profile, seed, n=4, switch_changes=20.0)
        base["usable_capacity_mah"] = 2000.0 + 100.0 * np.arange(4)  # the packs differ; the pairs do not
        mine = base.copy()
        mine["policy"] = "ppo"
        mine["usable_capacity_mah"] += diffs[seed]
        mine["switch_changes"] = 10.0
        parts += [base, mine, episodes("no_balancing", profile, seed, n=4, switch_changes=0.0)]
    paired = paired_statistics(pd.concat(parts, ignore_index=True))
    assert list(paired.columns) == list(PAIRED_COLUMNS)
    cap = paired_row(paired, "ppo", "rule_based", "usable_capacity_mah")
    assert cap["mean_diff"] == pytest.approx(diffs.mean())
    # t interval over the 3 per-seed mean differences (25, 10, 15)
    assert (cap["ci_low"], cap["ci_high"]) == pytest.approx(t_interval(diffs.mean(axis=1))[1:])
    assert cap["baseline_mean"] == pytest.approx(2150.0)
    assert cap["pct_diff"] == pytest.approx(100 * diffs.mean() / 2150.0)
    assert cap["pct_ci_low"] == pytest.approx(100 * cap["ci_low"] / 2150.0)
    # per seed: 4/4, (2 + 2 ties/2)/4, 3/4 better (9 better, 2 ties, 1 worse)
    assert cap["prob_improvement"] == pytest.approx((9 + 0.5 * 2) / 12)
    assert (cap["prob_ci_low"], cap["prob_ci_high"]) == pytest.approx(t_interval([1.0, 0.75, 0.75])[1:])
    assert cap["n_seeds"] == 3 and cap["n_episodes"] == 12 and cap["better"] == "higher"
    assert cap["interval_over"] == "seeds"
    ratio = paired_row(paired, "ppo", "rule_based", "recovered_share_of_sums")
    # room C_bound - C_nb = 400 mAh on each of a seed's 4 packs: per seed, sum of the differences / 1600 mAh
    assert ratio["mean_diff"] == pytest.approx(diffs.sum(axis=1).mean() / 1600.0)
    assert math.isnan(ratio["prob_improvement"])  # a statistic of a seed's packs together: no per-pack pairing
    sw = paired_row(paired, "ppo", "rule_based", "switch_changes")
    assert sw["mean_diff"] == -10.0 and sw["ci_low"] == sw["ci_high"] == -10.0 and sw["prob_improvement"] == 1.0
    assert sw["pct_diff"] == pytest.approx(-50.0)
    nb = paired_row(paired, "ppo", "no_balancing", "switch_changes")
    assert nb["mean_diff"] == 10.0 and nb["prob_improvement"] == 0.0 and math.isnan(nb["pct_diff"])  # baseline 0
    # every policy against every baseline, both ways, every headline metric; no self-comparison
    assert set(zip(paired.policy, paired.baseline)) == {
        ("ppo", "rule_based"),
        ("no_balancing", "rule_based"),
        ("ppo", "no_balancing"),
        ("rule_based", "no_balancing"),
    }
    assert set(paired.metric) == {m.name for m in HEADLINE}


def test_paired_statistics_refuse_different_packs():
    profile = "charge-rest-discharge"
    base = episodes("rule_based", profile, 0, n=3)
    mine = episodes("ppo", profile, 0, n=3)
    mine.loc[2, "eval_seed"] = 999
    base["source"] = mine["source"] = "x.csv"
    with pytest.raises(UserError, match="same packs"):
        paired_statistics(pd.concat([base, mine], ignore_index=True))


def test_time_to_balance_nan_handling():
    profile = "discharge-rest-charge"
    seed0 = episodes("ppo", profile, 0, n=2)
    seed0["time_to_balance_s"] = [300.0, np.nan]
    seed1 = episodes("ppo", profile, 1, n=2, time_to_balance_s=900.0)
    never = episodes("no_balancing", profile, 0, n=3, time_to_balance_s=np.nan)
    frame = pd.concat([seed0, seed1, never])
    seeds = per_seed_means(frame)
    s0 = seeds[(seeds.policy == "ppo") & (seeds.seed == 0)].iloc[0]
    assert s0["time_to_balance_s"] == 300.0 and s0["balanced_fraction"] == 0.5
    summary = summarise(frame)
    ttb = row(summary, "ppo", profile, "time_to_balance_s")
    assert ttb["mean"] == pytest.approx(600.0) and ttb["n_seeds"] == 2
    assert row(summary, "ppo", profile, "balanced_fraction")["mean"] == pytest.approx(0.75)
    nb = row(summary, "no_balancing", profile, "time_to_balance_s")
    assert math.isnan(nb["mean"]) and math.isnan(nb["ci_low"]) and nb["n_seeds"] == 0
    assert row(summary, "no_balancing", profile, "balanced_fraction")["mean"] == 0.0
    # everything except a never-balanced time to balance and undefined changes is finite
    stats = summary[["mean", "ci_low", "ci_high"]]
    nan_rows = summary[stats.isna().any(axis=1)]
    one_seed = {m.name for m in METRICS} - {"time_to_balance_s"}  # no_balancing ran one seed: no intervals
    assert set(zip(nan_rows.policy, nan_rows.metric)) == {("no_balancing", m) for m in one_seed} | {
        ("no_balancing", "time_to_balance_s")
    }
    assert summary.loc[summary.policy == "ppo", "ci_low"].notna().sum() == len(METRICS)  # 2 seeds: intervals


def test_performance_profiles():
    frame = pd.concat(
        [
            episodes("ppo", "p", 0, n=4),
            episodes("ppo", "p", 1, n=4),
            episodes("no_balancing", "p", 0, n=2, recovered_share=np.nan),
        ]
    )
    frame["recovered_share"] = [0.5, 0.9, 1.0, np.nan, 0.2, 0.95, 0.99, 1.0, np.nan, np.nan]
    profiles = performance_profiles(frame)
    assert list(profiles.columns) == list(PROFILE_COLUMNS)
    assert set(profiles.policy) == {"ppo"}  # no share at all: no profile
    assert len(profiles) == len(PROFILE_TAUS) and profiles.tau.iloc[0] == 0.0 and profiles.tau.iloc[-1] == 1.0
    at = profiles.set_index("tau")
    assert at.loc[0.9, "fraction"] == pytest.approx((2 / 3 + 3 / 4) / 2)  # seed 0: 2 of 3 shares; seed 1: 3 of 4
    assert at.loc[1.0, "fraction"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert (profiles.ci_low >= 0).all() and (profiles.ci_high <= 1).all()
    assert (at["n_seeds"] == 2).all() and (at["interval_over"] == "seeds").all()


# ------------------------------------------------------------------------------------------ files / CLI


def full_study() -> pd.DataFrame:
    parts = []
    for profile in ("discharge-rest-charge", "charge-rest-discharge"):
        for seed in (0, 1, 2):
            parts.append(episodes("dqn", profile, seed, usable_capacity_mah=2250.0 + 10 * seed, switch_changes=20.0))
            parts.append(episodes("ppo", profile, seed, usable_capacity_mah=2300.0 - 5 * seed, switch_changes=25.0))
        parts.append(
            episodes(
                "no_balancing", profile, 0, usable_capacity_mah=2000.0, switch_changes=0.0, time_to_balance_s=np.nan
            )
        )
        parts.append(episodes("rule_based", profile, 0, usable_capacity_mah=2200.0, switch_changes=40.0))
    return pd.concat(parts, ignore_index=True)


def test_cli_writes_both_files(tmp_path, capsys):
    paths = write_metrics(tmp_path, full_study())
    out_csv, out_md = tmp_path / "tables" / "summary.csv", tmp_path / "tables" / "summary.md"
    out_profiles = tmp_path / "tables" / "profiles.csv"
    argv = [
        "aggregate",
        *map(str, paths),
        "--out-csv",
        str(out_csv),
        "--out-md",
        str(out_md),
        "--out-profiles",
        str(out_profiles),
    ]
    assert cli.main(argv) == 0
    assert "aggregate:" in capsys.readouterr().out
    summary = pd.read_csv(out_csv)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert row(summary, "dqn", "charge-rest-discharge", "usable_capacity_mah")["mean"] == pytest.approx(2260.0)
    report = out_md.read_text()
    assert "## Profile `charge-rest-discharge`" in report and "## Profile `discharge-rest-charge`" in report
    # the paper's figures are written once, in bmsrl.claims.CLAIMS; the summary points to the claims table
    assert "claims.md" in report and not any(f"{c.paper_pct:.1f}" in report for c in CLAIMS if c.paper_pct)
    assert "Student-t" in report and "a single seed" in report  # baselines have one seed
    assert "| no_balancing | one seed | 2000 |" in report  # one seed: no interval printed
    assert "| dqn | 3 | 2260 [" in report
    assert list(pd.read_csv(out_profiles).columns) == list(PROFILE_COLUMNS)
    assert "### Against `no_balancing`" in report and "### Against `rule_based`" in report
    assert max(len(line.split(" | ")) for line in report.splitlines() if line.startswith("|")) <= 10  # narrow
    # the verdict opens the report, from the numbers: dqn and the baselines share seed 0 only, so no test
    assert report.index("## Verdict") < report.index("## Profile")
    assert (
        "  - DQN (3 seeds) recovers 0.50 of the recoverable capacity; usable capacity: higher than No balancing "
        in report
    )
    assert "No balancing (+250 mAh, one seed), Rule-based (+50 mAh, one seed)." in report
    paired_part = report[report.index("## Trained agents against the baselines") :]
    assert not any(line.startswith(("| no_balancing", "| rule_based")) for line in paired_part.splitlines())
    assert "[+250" not in report and "P = " not in report  # one seed: no interval, probabilities stay in the CSV
    assert "(+12.5 %)" in report and "(+2.3 %)" in report  # dqn seed 0 (the seed both have): 2250 vs 2000 and 2200
    assert " % / " not in report  # no bare percent change
    first = out_csv.read_bytes()
    assert cli.main(argv) == 0
    assert out_csv.read_bytes() == first  # reproducible


def test_read_metrics_accepts_empty_time_and_bool_text(tmp_path):
    path = write_metrics(tmp_path, episodes("ppo", "p", 0, time_to_balance_s=np.nan, terminated=True))[0]
    frame = read_metrics(path)
    assert frame["time_to_balance_s"].isna().all() and (frame["terminated"] == 1.0).all()


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda f: f.drop(columns="shunt_energy_wh"), ["missing column 'shunt_energy_wh'"]),
        (lambda f: f.assign(usable_capacity_mah=["abc", "2000"]), ["line 2", "'usable_capacity_mah'", "'abc'"]),
        (lambda f: f.assign(switch_changes=[np.nan, 1.0]), ["line 2", "'switch_changes'", "empty cell"]),
        (lambda f: f.assign(seed=[0.5, 0.5]), ["'seed'", "not an integer"]),
        (lambda f: f.iloc[:0], ["no data rows"]),
    ],
)
def test_bad_metrics_file_is_refused(tmp_path, capsys, edit, fragments):
    good = write_metrics(tmp_path, episodes("dqn", "charge-rest-discharge", 1))[0]
    bad = tmp_path / "bad" / "metrics.csv"
    bad.parent.mkdir()
    edit(episodes("ppo", "charge-rest-discharge", 0)).to_csv(bad, index=False)
    out = tmp_path / "tables"
    code = cli.main(
        ["aggregate", str(good), str(bad), "--out-csv", str(out / "summary.csv"), "--out-md", str(out / "summary.md")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and str(bad) in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_file_and_duplicate_episode(tmp_path):
    with pytest.raises(UserError, match="nope.csv: file not found"):
        summarise(read_metrics(tmp_path / "nope.csv"))
    path = write_metrics(tmp_path, episodes("dqn", "p", 0))[0]
    from bmsrl.aggregate import aggregate

    with pytest.raises(UserError, match="appears twice"):
        aggregate([path, path], tmp_path / "s.csv", tmp_path / "s.md")
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.md").exists()


def test_best_known_pairs_on_its_own_packs():
    """The model-based reference runs on the first packs of each seed; every policy is compared with
    it on those packs only, and nowhere else is a subset accepted."""
    profile = "charge-rest-discharge"
    parts = []
    for seed in range(3):
        base = episodes("room_balancing", profile, seed, n=4)
        base["usable_capacity_mah"] = 2000.0 + 100.0 * np.arange(4)
        mine = base.copy()
        mine["policy"] = "ppo"
        mine["usable_capacity_mah"] -= np.array([5.0, 7.0, 1000.0, 1000.0])  # far off on packs 2, 3 only
        reference = base.iloc[:2].copy()
        reference["policy"] = "best_known"
        reference["usable_capacity_mah"] += 3.0
        parts += [base, mine, reference]
    paired = paired_statistics(pd.concat(parts, ignore_index=True))
    cap = paired_row(paired, "ppo", "best_known", "usable_capacity_mah")
    assert cap["mean_diff"] == pytest.approx(-(5.0 + 7.0) / 2 - 3.0) and cap["n_episodes"] == 6
    assert paired_row(paired, "ppo", "room_balancing", "usable_capacity_mah")["n_episodes"] == 12
    assert paired_row(paired, "best_known", "room_balancing", "usable_capacity_mah")["mean_diff"] == pytest.approx(3.0)
    assert paired_row(paired, "best_known", "room_balancing", "usable_capacity_mah")["interval_over"] == "pack sets"
    # a subset of an ordinary policy's episodes is still refused
    short = [p if p["policy"].iloc[0] != "ppo" else p.iloc[:2] for p in parts]
    with pytest.raises(UserError, match="episodes differ"):
        paired_statistics(pd.concat(short, ignore_index=True))


def test_verdict_words_follow_the_paired_intervals_and_the_html_has_tables(tmp_path):
    """better / worse where the paired interval over seeds excludes 0, not told apart where it contains 0;
    the run kind opens both the Markdown and the HTML report, and the HTML holds tables, not CSV text."""
    profile = "charge-rest-discharge"
    parts = []
    for seed, rule in zip((0, 1, 2), (2255.0, 2255.0, 2275.0)):
        parts.append(episodes("dqn", profile, seed, usable_capacity_mah=2250.0 + 10 * seed))
        parts.append(episodes("no_balancing", profile, seed, usable_capacity_mah=2000.0 + seed))
        parts.append(episodes("rule_based", profile, seed, usable_capacity_mah=rule))  # dqn -5, +5, -5: overlaps 0
        parts.append(episodes("top_balancing", profile, seed, usable_capacity_mah=2300.0 + seed))
    paths = write_metrics(tmp_path, pd.concat(parts, ignore_index=True))
    out = tmp_path / "tables"
    argv = ["aggregate", *map(str, paths), "--out-csv", str(out / "s.csv"), "--out-md", str(out / "s.md")]
    assert cli.main([*argv, "--out-html", str(out / "s.html"), "--run-kind", "smoke"]) == 0
    report = (out / "s.md").read_text()
    line = next(x for x in report.splitlines() if x.startswith("  - DQN"))
    assert "DQN (3 seeds)" in line and "better than No balancing (+259 mAh)" in line
    assert "worse than Top balancing (-41 mAh)" in line and "not told apart from Rule-based (-2 mAh)" in line
    assert "most usable capacity: Top balancing, 2301 mAh" in report
    assert report.splitlines()[2].startswith("**Smoke run") and "not results" in report.splitlines()[2]
    html = (out / "s.html").read_text()
    tables = sum(line.startswith("|---") for line in report.splitlines())
    assert html.count("<table>") == tables == 4 and "<th>Δ Usable capacity [mAh]</th>" in html
    assert "<strong>Smoke run" in html and "usable_capacity_mah," not in html
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--run-kind", "quick"])  # only the kinds of the registry
    assert exit_.value.code == 2


def test_the_best_controller_is_the_baseline_with_the_highest_capacity_never_the_reference():
    """Per profile and scenario: the baseline with the highest mean usable capacity over seeds, on all its
    packs; best_known (the model-based reference, higher still on its own packs) is never it; paired.csv
    marks it on every metric's rows of that baseline, and nowhere else."""
    from bmsrl.aggregate import best_controllers

    profile = "charge-rest-discharge"
    capacity = {  # scenario -> policy -> usable capacity [mAh] on every pack
        "default": {"room_balancing": 2610.0, "top_balancing": 2605.0, "no_balancing": 2200.0, "ppo": 2600.0},
        "bleed": {"room_balancing": 2480.0, "top_balancing": 2490.0, "no_balancing": 2100.0, "ppo": 2500.0},
    }
    parts = []
    for scenario, values in capacity.items():
        for seed in range(3):
            for policy, value in values.items():
                frame = episodes(policy, profile, seed, n=4).assign(scenario=scenario)
                frame["usable_capacity_mah"] = value + 10.0 * seed
                parts.append(frame)
            known = parts[-4].iloc[:1].assign(policy="best_known")  # room_balancing's first pack, far better
            known["usable_capacity_mah"] += 500.0
            parts.append(known)
    frame = pd.concat(parts, ignore_index=True)
    assert best_controllers(frame) == {(profile, "default"): "room_balancing", (profile, "bleed"): "top_balancing"}
    paired = paired_statistics(frame)
    marked = paired[paired["best_controller"]]
    assert set(zip(marked.scenario, marked.baseline)) == {("default", "room_balancing"), ("bleed", "top_balancing")}
    assert set(marked.metric) == {m.name for m in HEADLINE}
    row = marked[(marked.policy == "ppo") & (marked.scenario == "bleed") & (marked.metric == "usable_capacity_mah")]
    assert row["mean_diff"].item() == pytest.approx(10.0)  # the agent beats the best controller there
