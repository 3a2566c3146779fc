"""benchmarks/ablation.py: its arms are the issue-19 changes that apply to the algorithm, each a valid config."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from workflow_support import ROOT, benchmark


def ablation():
    return benchmark("ablation")


@pytest.mark.parametrize(
    ("algo", "expected"),
    [
        ("ppo", ["none", "per_cell", "cell_set", "test_profiles", "all"]),
        ("dqn", ["none", "cell_set", "test_profiles", "double_q", "all"]),
        ("ars", ["none", "test_profiles"]),
    ],
)
def test_each_change_alone_and_all_together_as_valid_configs(algo, expected):
    module = ablation()
    arms = module.arms(algo, list(module.CHANGES))
    assert list(arms) == expected
    for overrides in arms.values():
        cfg = module.arm_config({}, algo, 4096, 3, overrides)
        assert cfg["algos"] == [algo] and cfg["training"]["total_steps"][algo] == 4096
        assert cfg["evaluation"]["episodes"] == 3
    if "all" in arms:  # every applicable change at once
        assert len(arms["all"]) == sum(len(arms[n]) for n in expected[1:-1])


def test_a_subset_of_the_changes_together_is_named_by_its_members_not_all():
    """A --csv row of "all" is reused by name: a subset's combination must not take that name."""
    module = ablation()
    assert list(module.arms("dqn", ["test_profiles", "double_q"])) == [
        "none",
        "test_profiles",
        "double_q",
        "test_profiles+double_q",
    ]
    assert list(module.arms("a2c", ["per_cell", "cell_set", "test_profiles"]))[-1] == "all"
    assert list(module.arms("a2c", ["cell_set", "double_q"])) == ["none", "cell_set"]  # double_q: DQN only


def test_csv_rows_are_reused_for_the_same_run_only(tmp_path):
    module = ablation()
    path = tmp_path / "ablation.csv"
    stats = {"share": 0.9, "d_mAh": -3.0, "changes": 12.0, "shunt_Wh": 3.5, "steps/s": 4000.0, "commit": "abc1234"}
    module.append_row(path, {"algo": "dqn", "steps": 4096, "packs": 3, "arm": "none", "seed": 1}, stats)
    module.append_row(path, {"algo": "dqn", "steps": 8192, "packs": 3, "arm": "none", "seed": 2}, stats)
    done = module.read_rows(path, "dqn", 4096, 3)
    assert list(done) == [("none", 1)]
    assert done["none", 1] == pytest.approx(stats)
    assert module.read_rows(path, "a2c", 4096, 3) == {}


def test_a_csv_of_something_else_is_refused_by_name(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="other.csv"):
        ablation().read_rows(path, "dqn", 4096, 3)


def test_the_tables_hold_the_printed_intervals_and_their_runs(tmp_path):
    from bmsrl.stats import t_interval

    module = ablation()
    key = {"algo": "dqn", "steps": 4096, "packs": 3}
    rows = {"none": {"share": [0.90, 0.93, 0.86], "d_mAh": [-39.0, -25.7, -57.6]}}
    reference = {"share": [0.99, 0.995, 0.991], "d_mAh": [0.0, 0.0, 0.0]}
    seeds = [
        {**key, "arm": "none", "seed": s, "share": v, "commit": "abc1234"}
        for s, v in zip((1, 2, 3), rows["none"]["share"])
    ]
    configs = {"none": module.arm_config({}, "dqn", 4096, 3, {})}
    module.write_tables(tmp_path / "out", "dqn", key, rows, reference, seeds, module.hyperparams_table("dqn", configs))
    table = pd.read_csv(tmp_path / "out" / "dqn.csv")
    row = table[(table["arm"] == "none") & (table["metric"] == "d_mAh")].iloc[0]
    assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(t_interval(np.array([-39.0, -25.7, -57.6])))
    assert row["n_seeds"] == 3 and row["steps"] == 4096
    assert set(table["arm"]) == {"none", "room_balancing"}
    d_share = table[(table["arm"] == "none") & (table["metric"] == "d_share")].iloc[0]
    paired = np.array(rows["none"]["share"]) - np.array(reference["share"])  # per seed, same packs
    assert (d_share["mean"], d_share["ci_low"], d_share["ci_high"]) == pytest.approx(
        t_interval(paired), rel=1e-5
    )  # %.6g in the file
    per_seed = pd.read_csv(tmp_path / "out" / "dqn_seeds.csv")
    assert len(per_seed) == 3 and set(per_seed["commit"]) == {"abc1234"}  # each run's own commit
    hyperparams = pd.read_csv(tmp_path / "out" / "dqn_hyperparams.csv")
    assert set(hyperparams["arm"]) == {"none"} and set(hyperparams["source"]) == {"config"}
    assert "learning_rate" in set(hyperparams["name"])


def test_the_workflow_stage_config_json_reads_as_numbers(tmp_path):
    """The rule passes its JSON stage config, where json.dumps writes 1e-06: text to a YAML 1.1 reader."""
    import json

    from bmsrl.config import defaults

    path = tmp_path / "stage.json"
    path.write_text(json.dumps(defaults()), encoding="utf-8")
    module = ablation()
    raw = module.read_raw_config(path, ["reward.study.epsilon=1e-7"])
    cfg = module.arm_config(raw, "dqn", 1000, 4, {})
    assert cfg["reward"]["study"]["epsilon"] == 1e-7
    raw = module.read_raw_config(path)
    assert isinstance(raw["reward"]["study"]["epsilon"], float)
    module.arm_config(raw, "a2c", 1000, 4, {})  # validates


def test_an_arm_that_the_changes_do_not_make_is_refused_by_name():
    import subprocess

    script = ROOT / "benchmarks" / "ablation.py"
    done = subprocess.run(
        [sys.executable, str(script), "--algo", "dqn", "--changes", "double_q", "--arms", "all"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--arms: ['all'] are not arms of --algo dqn" in done.stderr and "'double_q'" in done.stderr


def test_a_search_result_merges_over_the_hyperparameters_and_labels_its_rows(tmp_path):
    """--tuned-hyperparams: the search's values in every arm's config; rows of one search are reused
    for that search only, and never for a run with the registry's hyperparameters."""
    from bmsrl.errors import UserError

    module = ablation()
    tuned = tmp_path / "a2c.yaml"
    tuned.write_text("algo: a2c\nstudy: a2c-abc\nbest: {trial: 7}\nhyperparams: {learning_rate: 0.0021, n_steps: 16}\n")
    raw = {}
    merged = module.merge_tuned(raw, "a2c", tuned)
    assert merged["label"] == "a2c-abc trial 7"
    cfg = module.arm_config(raw, "a2c", 4096, 3, {"training.features": "cell_set_physics"})
    assert cfg["training"]["hyperparams"]["a2c"]["learning_rate"] == 0.0021
    assert cfg["training"]["hyperparams"]["a2c"]["n_steps"] == 16
    plain = module.arm_config({}, "a2c", 4096, 3, {"training.features": "cell_set_physics"})
    table = module.hyperparams_table("a2c", {"cell_set": cfg}, merged, {"cell_set": plain}).set_index("name")
    assert table.loc["learning_rate", "value"] == "0.0021" and table.loc["n_steps", "source"] == "a2c-abc trial 7"
    registry = plain["training"]["hyperparams"]["a2c"]
    assert table.loc["n_steps", "config_value"] == str(registry["n_steps"]) != "16"  # what the search replaced
    assert table.loc["ent_coef", "source"] == "config"  # not searched: the config's (the registry's default)
    with pytest.raises(UserError, match="a2c.yaml.*not 'dqn'"):
        module.merge_tuned({}, "dqn", tuned)

    stats = {"share": 0.9, "d_mAh": -3.0, "changes": 12.0, "shunt_Wh": 3.5, "steps/s": 4000.0, "commit": "abc1234"}
    key = {"algo": "a2c", "steps": 4096, "packs": 3}
    searched = tmp_path / "tuned.csv"
    module.append_row(searched, {**key, "hyperparams": "a2c-abc trial 7", "arm": "none", "seed": 4}, stats)
    assert list(module.read_rows(searched, "a2c", 4096, 3, "a2c-abc trial 7")) == [("none", 4)]
    assert module.read_rows(searched, "a2c", 4096, 3, "a2c-abc trial 8") == {}  # another search's best
    assert module.read_rows(searched, "a2c", 4096, 3) == {}  # not a run with the registry's values
    plain = tmp_path / "plain.csv"
    module.append_row(plain, {**key, "arm": "none", "seed": 4}, stats)
    assert module.read_rows(plain, "a2c", 4096, 3, "a2c-abc trial 7") == {}
    with pytest.raises(SystemExit, match="plain.csv: its columns"):  # one table per kind of run
        module.append_row(plain, {**key, "hyperparams": "a2c-abc trial 7", "arm": "none", "seed": 5}, stats)


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_run_is_recorded_as_it_ends_in_process_or_side_by_side(jobs):
    recorded = {}
    calls = {("none", seed): (pow, seed, 2) for seed in (1, 2, 3)}
    ablation().run_all(calls, jobs, recorded.__setitem__)
    assert recorded == {("none", 1): 1, ("none", 2): 4, ("none", 3): 9}


def test_a_failed_run_stops_the_rest_with_its_error():
    recorded = {}
    calls = {("none", 1): (pow, 2, 2), ("none", 2): (int, "not a number")}
    with pytest.raises(ValueError, match="not a number"):
        ablation().run_all(calls, 1, recorded.__setitem__)
    assert recorded == {("none", 1): 4}


def test_a_run_is_paired_with_another_on_the_same_seeds_and_packs_only(tmp_path):
    """--compare-with: per seed this run's arm less the other's; refused when the reference differs
    per seed (other test packs) or the seeds differ."""
    from bmsrl.errors import UserError

    module = ablation()
    key = {"algo": "a2c", "steps": 4096, "packs": 3}

    def rows(arm, d_mah, reference_share=(0.99, 0.98, 0.97)):
        out = []
        for seed, d, ref in zip((4, 5, 6), d_mah, reference_share):
            out.append(
                {
                    **key,
                    "arm": "room_balancing",
                    "seed": seed,
                    "share": ref,
                    "d_mAh": 0.0,
                    "changes": 7.0,
                    "shunt_Wh": 3.5,
                }
            )
            out.append(
                {**key, "arm": arm, "seed": seed, "share": ref - 0.01, "d_mAh": d, "changes": 8.0, "shunt_Wh": 3.6}
            )
        return out

    other = tmp_path / "a2c_seeds.csv"
    pd.DataFrame(rows("cell_set", (-30.0, -20.0, -25.0))).to_csv(other, index=False)
    table = module.compare_table(rows("none", (-10.0, -12.0, -5.0)), other, "cell_set")
    d_mah = table[table["metric"] == "d_mAh"].iloc[0]
    assert (d_mah["mean_diff"], d_mah["ci_low"], d_mah["ci_high"]) == pytest.approx(
        module.t_interval(np.array([20.0, 8.0, 20.0]))
    )
    assert d_mah["versus"] == "a2c_seeds.csv:cell_set" and d_mah["n_seeds"] == 3 and d_mah["arm"] == "none"
    with pytest.raises(UserError, match="room_balancing differs per seed, so the test packs differ"):
        module.compare_table(rows("none", (-10.0, -12.0, -5.0), (0.99, 0.98, 0.96)), other, "cell_set")
    with pytest.raises(UserError, match="arm per_cell has not exactly this run's seeds"):
        module.compare_table(rows("none", (-10.0, -12.0, -5.0)), other, "per_cell")
    with pytest.raises(UserError, match="steps \\[4096\\], this run's 8192"):
        module.comparable(other, "cell_set", {**key, "steps": 8192}, [4, 5, 6])
    with pytest.raises(UserError, match="missing.csv: cannot read it"):
        module.comparable(tmp_path / "missing.csv", "cell_set", key, [4, 5, 6])


def test_a_comparison_that_cannot_pair_is_refused_before_any_training(tmp_path):
    import subprocess

    other = tmp_path / "a2c_seeds.csv"
    other.write_text("algo,steps,packs,arm,seed,share,d_mAh,changes,shunt_Wh\na2c,4096,3,cell_set,1,0.9,-3,8,3.6\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), "--algo", "a2c", "--steps", "4096", "--packs", "3",
         "--seeds", "1", "2", "--arms", "none", "--compare-with", str(other), "--compare-arm", "cell_set",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and "a2c_seeds.csv: arm cell_set has not exactly this run's seeds [1, 2]" in done.stderr
    assert not (tmp_path / "out").exists()
