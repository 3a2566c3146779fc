"""No NaN result, no late failure (issue 23, items 3, 4, 6 and 9): the config's validator refuses NaN
and infinities wherever a number is bounded, checks every scenario as ``env`` merged with its
overrides, builds the policy network of a changed ``policy_kwargs`` once, refuses an empty search
space, and every verb bounds its seeds as the schema does. Each before any work.
"""

from __future__ import annotations

import json
import math

import gymnasium as gym
import pytest
import yaml

import bmsrl  # noqa: F401  (registers PassiveBalancing-v0)
from bmsrl.cli import main
from bmsrl.config import load_workflow_config, validate
from bmsrl.errors import UserError
from cli_support import one_line_error

NAN, INF = math.nan, math.inf


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a verb gets as far as its work (a training, an evaluation, the references)."""
    import bmsrl.evaluate
    import bmsrl.reference
    import bmsrl.train

    def worked(*args, **kwargs):
        raise AssertionError("the verb started its work before the bad input was refused")

    monkeypatch.setattr(bmsrl.train, "train", worked)
    monkeypatch.setattr(bmsrl.evaluate, "evaluate", worked)
    monkeypatch.setattr(bmsrl.reference, "reference_table", worked)


def refused(cfg: dict) -> str:
    with pytest.raises(UserError) as info:
        validate(cfg, "cfg.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def scenario(**overrides) -> dict:
    return {"evaluation": {"scenarios": {"default": {}, "odd": overrides}}}


# ------------------------------------------------------------------ item 3: NaN and infinities
@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"reward": {"capacity": {"toggle_cost": NAN}}}, "reward.capacity.toggle_cost"),
        ({"reward": {"study": {"offset": -INF}}}, "reward.study.offset"),  # a number without any bound
        ({"env": {"i_max_a": INF}}, "env.i_max_a"),
        ({"env": {"init_soc": [0.4, NAN]}}, "env.init_soc[1]"),
        (scenario(init_soh=[NAN, 1.0]), "evaluation.scenarios.odd.init_soh[0]"),
        (scenario(i_max_a=NAN), "evaluation.scenarios.odd.i_max_a"),
        ({"baselines": {"tuning": {"thresholds": [0.01, NAN]}}}, "baselines.tuning.thresholds[1]"),
        ({"baselines": {"tuning": {"room_margins_mah": [INF]}}}, "baselines.tuning.room_margins_mah[0]"),
        ({"baselines": {"rule_based": {"threshold": NAN}}}, "baselines.rule_based.threshold"),
        ({"training": {"hyperparams": {"ppo": {"learning_rate": NAN}}}}, "training.hyperparams.ppo.learning_rate"),
        ({"training": {"early_stopping": {"min_delta": INF}}}, "training.early_stopping.min_delta"),
        (
            {"search": {"space": {"ppo": {"learning_rate": {"type": "float", "low": NAN, "high": 1e-3}}}}},
            "search.space.ppo.learning_rate.low",
        ),
    ],
)
def test_nan_and_infinities_are_refused_naming_the_key(cfg, key):
    message = refused(cfg)
    assert message.startswith(f"cfg.yaml: {key}: "), message
    assert "is not a finite number" in message


def test_nan_from_a_config_file_and_from_snakemakes_config_option(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("reward:\n  capacity:\n    toggle_cost: .nan\n")
    with pytest.raises(UserError, match=r"reward\.capacity\.toggle_cost: nan is not a finite number"):
        load_workflow_config([path])
    # Snakemake hands `--config` values over as text: "nan" parses as a float, and is refused
    path.write_text("{}\n")
    with pytest.raises(UserError, match=r"\(--config\): baselines\.tuning\.thresholds\[0\]: nan is not a finite"):
        load_workflow_config([path], {"baselines": {"tuning": {"thresholds": ["nan"]}}})


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"i_max_a": NAN}, "i_max_a"),
        ({"init_soc": (0.4, INF)}, "init_soc[1]"),
        ({"pack": {"capacity_ah": NAN}}, "capacity_ah"),
        ({"reward": {"capacity": {"toggle_cost": NAN}}}, "reward.capacity.toggle_cost"),
    ],
)
def test_the_env_refuses_nan_with_the_configs_words(kwargs, key):
    with pytest.raises(ValueError) as info:
        gym.make("PassiveBalancing-v0", **kwargs)
    assert str(info.value).startswith(f"{key}: ") and "is not a finite number" in str(info.value)


def test_a_nan_toggle_cost_never_reaches_a_training(tmp_path, capsys, no_work):
    code = main(
        [
            "train",
            "--config-json",
            json.dumps({"reward": {"capacity": {"toggle_cost": NAN}}}),  # JSON's NaN, as Python writes it
            "--algo",
            "ppo",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    one_line_error(code, capsys.readouterr().err, "train", "reward.capacity.toggle_cost", "not a finite number")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------- item 4: scenarios checked as env is
@pytest.mark.parametrize(
    "overrides, fragments",
    [
        ({"init_soc": [0.05, 0.5]}, ["evaluation.scenarios.odd.init_soc", "is not inside"]),
        # narrows soc_limits below the default init_soc [0.4, 0.6]: the key at fault is env's
        ({"soc_limits": [0.45, 0.9]}, ["evaluation.scenarios.odd.init_soc", "is not inside", "init_soc is env's"]),
        ({"voltage_limits_v": [4.2, 4.2]}, ["evaluation.scenarios.odd.voltage_limits_v", "empty"]),
    ],
)
def test_a_scenario_is_checked_as_env_merged_with_its_overrides(overrides, fragments):
    message = refused(scenario(**overrides))
    for fragment in fragments:
        assert fragment in message, message


def test_the_same_values_are_refused_under_env_and_in_a_scenario():
    assert "is not inside env.soc_limits" in refused({"env": {"init_soc": [0.05, 0.5]}})
    assert "is not inside evaluation.scenarios.odd.soc_limits" in refused(scenario(init_soc=[0.05, 0.5]))


def test_the_workflow_refuses_a_bad_scenario_at_start_up(tmp_path):
    """load_workflow_config is what the Snakefile runs before planning (so `snakemake -n` refuses it)."""
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(scenario(soc_limits=[0.45, 0.9])))
    with pytest.raises(UserError, match=r"evaluation\.scenarios\.odd\.init_soc: \[0\.4, 0\.6\] is not inside"):
        load_workflow_config([path])


def test_a_scenario_inside_the_rules_passes():
    cfg = validate(scenario(soc_limits=[0.3, 0.9], init_soc=[0.35, 0.5]), "cfg.yaml")
    assert cfg["evaluation"]["scenarios"]["odd"]["soc_limits"] == [0.3, 0.9]


# --------------------------------------------------------- item 9: an implausible state of health
@pytest.mark.parametrize("cfg", [{"env": {"init_soh": [0.5, 2.5]}}, scenario(init_soh=[0.5, 2.5])])
def test_a_state_of_health_far_above_one_is_refused(cfg):
    message = refused(cfg)
    assert "init_soh[1]: 2.5 is greater than the maximum of 1.5" in message, message
    with pytest.raises(ValueError, match=r"init_soh\[1\]: 2\.5 is greater than the maximum of 1\.5"):
        gym.make("PassiveBalancing-v0", init_soh=(0.5, 2.5))


# ------------------------------------------------------------------- item 6: policy_kwargs
def test_a_policy_kwargs_that_builds_no_network_is_refused_at_validation():
    message = refused({"training": {"hyperparams": {"ppo": {"policy_kwargs": {"net_arch": "big"}}}}})
    assert message.startswith("cfg.yaml: training.hyperparams.ppo.policy_kwargs: {'net_arch': 'big'} does not build")
    message = refused({"training": {"hyperparams": {"dqn": {"policy_kwargs": {"activation_fn": "relu"}}}}})
    assert "training.hyperparams.dqn.policy_kwargs" in message and "DQNPolicy" in message
    message = refused({"training": {"hyperparams": {"ars": {"policy_kwargs": {"net_arch": [8, "x"]}}}}})
    assert "training.hyperparams.ars.policy_kwargs" in message


def test_a_policy_kwargs_that_builds_is_accepted():
    for algo in ("ppo", "dqn", "ars"):
        cfg = validate({"training": {"hyperparams": {algo: {"policy_kwargs": {"net_arch": [16, 16]}}}}}, "cfg.yaml")
        assert cfg["training"]["hyperparams"][algo]["policy_kwargs"] == {"net_arch": [16, 16]}
    # with the per-cell features: built with them where the algorithm takes them (ppo), without for ars
    hyperparams = {"ppo": {"policy_kwargs": {"net_arch": [32]}}, "ars": {"policy_kwargs": {"net_arch": [8]}}}
    validate({"training": {"features": "cell_set", "hyperparams": hyperparams}}, "cfg.yaml")


def test_the_workflow_refuses_a_bad_policy_kwargs_at_start_up(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("training:\n  hyperparams:\n    ppo:\n      policy_kwargs: {net_arch: big}\n")
    with pytest.raises(UserError, match=r"training\.hyperparams\.ppo\.policy_kwargs: .* does not build"):
        load_workflow_config([path])


# ------------------------------------------------------------------ item 6: empty search space
def test_an_empty_search_space_is_refused_at_validation(tmp_path):
    message = refused({"search": {"space": {"ppo": {}}}})
    assert message.startswith("cfg.yaml: search.space.ppo: empty, nothing to search"), message
    path = tmp_path / "cfg.yaml"
    path.write_text("search:\n  space:\n    dqn: {}\n")
    with pytest.raises(UserError, match=r"search\.space\.dqn: empty"):
        load_workflow_config([path])


# --------------------------------------------------------------- item 6 and 9: seeds on every verb
@pytest.mark.parametrize("seed", ["99999999999", "-5", "1000000"])
@pytest.mark.parametrize("verb", ["train", "evaluate", "reference"])
def test_seeds_are_bounded_as_the_schema_says_on_every_verb(tmp_path, capsys, no_work, verb, seed):
    out = tmp_path / "out"
    argv = {
        "train": ["train", "--algo", "ppo", "--seed", seed, "--out", str(out)],
        "evaluate": ["evaluate", "--policy", "no_balancing", "--profile", "charge-rest-discharge", "--seed", seed],
        "reference": ["reference", "--seeds", "1", seed, "--out", str(out / "refs.csv")],
    }[verb]
    if verb == "evaluate":
        argv += ["--out", str(out)]
    with pytest.raises(SystemExit) as info:  # argparse: usage and one error line, exit 2
        main(argv)
    one_line_error(info.value.code, capsys.readouterr().err, verb, f"{seed} is outside 0..999999")
    assert not out.exists()


def test_a_seed_inside_the_bounds_is_taken(tmp_path):
    from bmsrl.config import seed_argument

    parse = seed_argument()
    assert parse("0") == 0 and parse("999999") == 999999


def test_seed_bounds_are_the_schemas():
    from bmsrl.config import schema

    seed = schema()["$defs"]["seed"]
    assert (seed["minimum"], seed["maximum"]) == (0, 999999)  # the numbers the messages above quote


def test_the_config_keeps_every_default_finite():
    from bmsrl.config import defaults

    json.dumps(defaults(), allow_nan=False)  # raises on a NaN or an infinity anywhere


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["ocv", "IN", "OUT", "--soc-window", "nan", "0.9"], "SoC window [nan, 0.9] must satisfy"),
        (["ocv", "IN", "OUT", "--soc-window", "0.1", "inf"], "SoC window [0.1, inf] must satisfy"),
        (["aggregate", "IN", "--out-csv", "OUT", "--out-md", "OUT.md", "--confidence", "nan"], "--confidence"),
    ],
)
def test_nan_on_a_float_command_line_option_is_one_line(tmp_path, capsys, argv, fragment):
    """The float options (their bounds are chained comparisons, which NaN fails) refuse NaN and inf."""
    from bmsrl.io import package_data_file

    table = str(package_data_file("ocv_table.csv"))
    out = tmp_path / "out.csv"
    argv = [table if a == "IN" else str(out) if a == "OUT" else str(tmp_path / a) if a == "OUT.md" else a for a in argv]
    code = main(argv)
    one_line_error(code, capsys.readouterr().err, argv[0], fragment)
    assert not out.exists()


@pytest.mark.parametrize("trial", ["99999999999", "10000", "-1"])
def test_a_search_trial_index_is_bounded_as_search_trials_is(tmp_path, capsys, monkeypatch, trial):
    import bmsrl.search

    def worked(*args, **kwargs):
        raise AssertionError("the trial ran")

    monkeypatch.setattr(bmsrl.search, "run_trial", worked)
    out = tmp_path / "trial.json"
    argv = ["search", "trial", "--algo", "ppo", "--trial", trial, "--storage", str(tmp_path / "study.journal")]
    code = main([*argv, "--out", str(out)])
    one_line_error(code, capsys.readouterr().err, "search", "--trial must lie in 0..9999", f"got {trial}")
    assert not out.exists()
