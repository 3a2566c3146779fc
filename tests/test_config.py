"""Tests of the workflow configuration: schema, defaults, one-line errors, the CLI options."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bmsrl import config as bconfig
from bmsrl.config import add_config_arguments, config_from_args, defaults, load_config
from bmsrl.errors import UserError
from bmsrl.task_config import task_kwargs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["config.yaml", "quick.yaml", "test.yaml", "verdict.yaml", "realistic.yaml", "tuned.yaml", "tuned_dqn.yaml"]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_study_config():
    """Neither a file nor JSON: every key takes its default, and the defaults are config/config.yaml."""
    defaults = load_config()
    assert defaults == load_config(ROOT / "config" / "config.yaml")
    assert defaults["algos"] == ["dqn", "ppo"]
    assert defaults["seeds"] == [1, 2, 3]
    assert defaults["env"]["n_cells"] == 5
    assert defaults["reward"]["kind"] == "capacity"
    assert defaults["reward"]["study"]["switch_penalty"] == "auto"
    assert defaults["training"]["total_steps"] == {
        "dqn": 8_000_000,
        "ppo": 15_000_000,
        "maskable_ppo": 15_000_000,
        "a2c": 15_000_000,
        "trpo": 15_000_000,
        "ars": 15_000_000,
    }
    assert defaults["training"]["hyperparams"]["dqn"]["learning_rate"] == pytest.approx(1e-4)
    assert defaults["training"]["hyperparams"]["dqn"]["greedy_valid_only"] is True  # issue 10: masked greedy DQN
    assert defaults["training"]["hyperparams"]["ppo"]["gamma"] == pytest.approx(0.995)
    assert defaults["training"]["hyperparams"]["a2c"]["n_steps"] == 5  # A3C's t_max, per pack
    assert {k: v for k, v in defaults["evaluation"].items() if k != "scenarios"} == {
        "episodes": 10,
        "seed_offset": 1_000_000,
        "trace_episodes": 10,  # every episode of the default run is traced
        "best_known_episodes": 5,  # the model-based reference on the first 5 packs
        "best_known_stride": 1,  # its look-ahead at every decision
    }
    scenarios = defaults["evaluation"]["scenarios"]
    assert scenarios["default"] == {} and scenarios["init_soc_wide"] == {"init_soc": [0.3, 0.7]}
    assert scenarios["soh_wide"] == {"init_soh": [0.9, 1.1]}
    capacity = defaults["env"]["capacity_ah"]
    assert scenarios["current_0p3c"]["i_max_a"] == pytest.approx(0.3 * capacity)
    assert scenarios["current_1c"]["i_max_a"] == pytest.approx(capacity)
    assert defaults["baselines"]["tuned"] is True
    assert defaults["baselines"]["rule_based"] == {"threshold": 0.01, "hysteresis": 0.005}  # the study's hand values


def test_schema_algorithms_come_from_the_registry(monkeypatch):
    """The algorithm list, budgets and hyperparameter defaults are the registry's: one entry adds one."""
    import dataclasses

    from bmsrl import algos

    full = bconfig.schema()
    assert full["$defs"]["algo"]["enum"] == list(algos.ALGOS)
    defaults = load_config()
    for name, spec in algos.ALGOS.items():
        assert defaults["training"]["total_steps"][name] == spec.total_steps
        assert defaults["training"]["hyperparams"][name] == spec.hyperparams
    extra = dataclasses.replace(algos.ALGOS["a2c"], name="a2c_wide", total_steps=123, hyperparams={"n_steps": 7})
    monkeypatch.setitem(algos.ALGOS, "a2c_wide", extra)
    cfg = bconfig.validate({"algos": ["a2c_wide"]}, "x")
    assert cfg["training"]["total_steps"]["a2c_wide"] == 123
    assert cfg["training"]["hyperparams"]["a2c_wide"] == {"n_steps": 7}
    with pytest.raises(UserError, match="n_steps"):
        bconfig.validate({"training": {"hyperparams": {"a2c_wide": {"n_steps": 0}}}}, "x")


def _leaves(d, prefix=""):
    for k, v in d.items():
        if prefix + k == "evaluation.scenarios" or prefix == "search.space.":
            yield prefix + k, v  # a mapping that replaces the default (scenarios, an algorithm's space) as a whole
        elif isinstance(v, dict) and v:
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield prefix + k, v


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_hold_only_what_they_change(name):
    """config.yaml sets nothing (the study is the defaults); quick and test set only values that
    differ from the defaults, so no default is written twice."""
    raw = bconfig.load_yaml((ROOT / "config" / name).read_text()) or {}
    defaults = dict(_leaves(load_config()))
    if name == "config.yaml":
        assert raw == {}
    for key, value in _leaves(raw):
        assert key in defaults and value != defaults[key], f"{name}: {key} repeats its default {value!r}"
    cfg = load_config(ROOT / "config" / name)
    assert cfg["profiles"]["train"] in cfg["profiles"]["evaluate"]


def test_every_shipped_config_is_valid_and_the_studys_pins_its_setting():
    """Every config/*.yaml validates; config/study.yaml writes the paper's setting out in full (its
    values are the study's even where they equal today's defaults, so a change of default cannot move it)."""
    for path in sorted((ROOT / "config").glob("*.yaml")):
        load_config(path)
    study = bconfig.load_yaml((ROOT / "config" / "study.yaml").read_text())
    assert study["env"]["cutoff"] == "soc" and study["env"]["charging"] == "cc" and study["reward"]["kind"] == "study"
    assert set(study["algos"]) == {"dqn", "ppo", "a2c", "trpo", "ars"}


def test_configuration_reference_is_current():
    """docs/configuration.md is generated from the schema (python scripts/config_reference.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "scripts" / "config_reference.py")
    config_reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config_reference)
    assert (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") == config_reference.reference_markdown()


def test_test_config_is_small():
    cfg = load_config(ROOT / "config" / "test.yaml")
    assert cfg["seeds"] == [1, 2]
    assert max(cfg["training"]["total_steps"].values()) <= 5000
    assert cfg["training"]["n_envs"] == 8
    assert cfg["evaluation"]["episodes"] == 2


def test_partial_config_gets_nested_defaults(tmp_path):
    path = write(tmp_path, "training:\n  hyperparams:\n    ppo:\n      n_epochs: 3\nenv:\n  n_cells: 4\n")
    cfg = load_config(path)
    assert cfg["training"]["hyperparams"]["ppo"]["n_epochs"] == 3
    assert cfg["training"]["hyperparams"]["ppo"]["n_steps"] == 32  # default filled next to the user's key
    assert cfg["training"]["hyperparams"]["dqn"]["buffer_size"] == 200_000
    assert cfg["training"]["n_envs"] == 64
    assert cfg["env"]["n_cells"] == 4 and cfg["env"]["capacity_ah"] == 3.4
    assert cfg["baselines"]["rule_based"]["threshold"] == 0.01


def test_defaults_are_not_shared_between_loads():
    a = load_config()
    a["env"]["soc_limits"].append(1.0)
    a["training"]["hyperparams"]["a2c"]["x"] = 1
    b = load_config()
    assert b["env"]["soc_limits"] == [0.1, 0.9]
    assert "x" not in b["training"]["hyperparams"]["a2c"]


def test_empty_file_is_all_defaults(tmp_path):
    assert load_config(write(tmp_path, "# nothing\n")) == load_config()


def test_free_form_hyperparams_allowed(tmp_path):
    cfg = load_config(
        write(tmp_path, "training:\n  hyperparams:\n    a2c:\n      n_steps: 5\n      use_rms_prop: false\n")
    )
    assert cfg["training"]["hyperparams"]["a2c"] == {
        **defaults()["training"]["hyperparams"]["a2c"],
        "n_steps": 5,
        "use_rms_prop": False,
    }  # merged over the defaults


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        (
            "training:\n  hyperparams:\n    ppo:\n      n_steps: abc\n",
            "training.hyperparams.ppo.n_steps",
            "'abc' is not of type 'integer'",
        ),
        ("algos: [dqn, foo]\n", "algos[1]", "'foo' is not one of"),
        ("trainig:\n  n_envs: 8\n", "trainig", "unknown key"),
        ("training:\n  n_env: 8\n", "training.n_env", "unknown key"),
        ("env:\n  cutoff: voltage\n", "env.cutoff", "'voltage' is not one of"),
        ("env:\n  charging: cv\n", "env.charging", "'cv' is not one of"),
        ("env:\n  cv_taper_c_rate: 0\n", "env.cv_taper_c_rate", "less than or equal to the minimum of 0"),
        ("env:\n  soc_limits: [0.1]\n", "env.soc_limits", "too short"),
        ("env:\n  invalid_rules: [nope]\n", "env.invalid_rules[0]", "'nope' is not one of"),
        ("reward:\n  study:\n    switch_penalty: lots\n", "reward.study.switch_penalty", '"auto"'),
        ("reward:\n  study:\n    switch_penalty: -1.0\n", "reward.study.switch_penalty", "not valid"),
        ("reward:\n  kind: variance\n", "reward.kind", "'variance' is not one of"),
        ("reward:\n  switch_penalty: 1.0\n", "reward.switch_penalty", "unknown key"),
        ("reward:\n  capacity:\n    toggle_cost: -0.1\n", "reward.capacity.toggle_cost", "less than the minimum"),
        ("seeds: []\n", "seeds", "should be non-empty"),
        ("profiles:\n  train: uphill\n", "profiles.train", "'uphill' is not one of"),
        (
            "training:\n  hyperparams:\n    dqn:\n      learning_rate: '1e-4'\n",
            "training.hyperparams.dqn.learning_rate",
            "a quoted number is text: remove the quotes",
        ),
        ("training:\n  hyperparams:\n    sac: {}\n", "training.hyperparams.sac", "unknown key"),
        # evaluation scenarios: override keys are checked against the env schema
        (
            "evaluation:\n  scenarios:\n    default: {}\n    hot: {temperature_c: 40}\n",
            "evaluation.scenarios.hot.temperature_c",
            "unknown key; allowed keys: action_space, capacity_ah",
        ),
        (
            "evaluation:\n  scenarios:\n    default: {}\n    big: {n_cells: 6}\n",
            "evaluation.scenarios.big.n_cells",
            "unknown key",
        ),
        (
            "evaluation:\n  scenarios:\n    default: {}\n    fast: {i_max_a: 0}\n",
            "evaluation.scenarios.fast.i_max_a",
            "less than or equal to the minimum of 0",
        ),
        (
            "evaluation:\n  scenarios:\n    default: {}\n    wide: {init_soc: [0.7, 0.3]}\n",
            "evaluation.scenarios.wide.init_soc",
            "lo <= hi",
        ),
        (
            "evaluation:\n  scenarios:\n    default: {}\n    Wide-SoC: {}\n",
            "evaluation.scenarios.Wide-SoC",
            "not a valid name",
        ),
        ("evaluation:\n  scenarios:\n    default: {i_max_a: 3.4}\n", "evaluation.scenarios.default", "no overrides"),
        ("evaluation:\n  scenarios:\n    hot: {}\n", "evaluation.scenarios", "no 'default' scenario"),
        (
            "baselines:\n  top_balancing: {threshold: 0.01, hysteresis: 0.02}\n",
            "baselines.top_balancing.hysteresis",
            "exceeds the threshold",
        ),
        ("baselines:\n  tuned: maybe\n", "baselines.tuned", "is not of type 'boolean'"),
        ("baselines:\n  tuning:\n    thresholds: [0.0]\n", "baselines.tuning.thresholds[0]", "less than or equal"),
        (
            "baselines:\n  tuning:\n    hysteresis_fractions: [1.5]\n",
            "baselines.tuning.hysteresis_fractions[0]",
            "greater than the maximum",
        ),
        ("baselines:\n  tuning:\n    seed_offset: 1001000\n", "baselines.tuning.seed_offset", "evaluation seed"),
    ],
)
def test_bad_value_is_one_line_naming_file_and_key(tmp_path, text, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: "), message
    assert fragment in message


def test_top_level_not_a_mapping(tmp_path):
    with pytest.raises(UserError, match=r"config\.yaml: the config must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "seeds: [1, 2\nalgos: [dqn]\n")
    with pytest.raises(UserError, match=rf"^{path}, line \d+: not valid YAML"):
        load_config(path)


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, "training:\n  n_envs: 8\nseeds: [1]\ntraining:\n  n_envs: 16\n")
    with pytest.raises(UserError, match=rf"^{path}, line 4: not valid YAML: duplicate key 'training'$"):
        load_config(path)


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_files_have_no_duplicate_keys(name):
    bconfig.schema()  # parsed with the duplicate-rejecting loader
    bconfig.load_yaml((ROOT / "config" / name).read_text())


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml")


def test_json_text():
    cfg = load_config(json_text=json.dumps({"env": {"n_cells": 3}, "training": {"n_envs": 4}}))
    assert cfg["env"]["n_cells"] == 3 and cfg["training"]["n_envs"] == 4
    assert cfg["reward"]["study"]["offset"] == 4.0
    with pytest.raises(UserError, match=r"^--config-json: training\.n_envs: 'x' is not of type 'integer'$"):
        load_config(json_text='{"training": {"n_envs": "x"}}')
    with pytest.raises(UserError, match=r"^--config-json: not valid JSON"):
        load_config(json_text="{algos: }")
    with pytest.raises(UserError, match="not both"):
        load_config("config/config.yaml", json_text="{}")


def _parser():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return parser


def test_cli_options(tmp_path):
    path = write(tmp_path, "seeds: [7]\n")
    assert config_from_args(_parser().parse_args(["--config", str(path)]))["seeds"] == [7]
    args = _parser().parse_args(["--config-json", '{"algos": ["ppo"]}'])
    assert config_from_args(args)["algos"] == ["ppo"]
    assert config_from_args(_parser().parse_args([])) == load_config()
    with pytest.raises(SystemExit):
        _parser().parse_args(["--config", str(path), "--config-json", "{}"])


def test_task_kwargs_build_a_task():
    from bmsrl.env import BalancingTask

    cfg = load_config(
        json_text='{"env": {"invalid_rules": ["below_soc_min"], "init_soc": [0.3, 0.7]}, '
        '"reward": {"kind": "study", "study": {"switch_penalty": 0.5}}}'
    )
    kwargs = task_kwargs(cfg, "charge-rest-discharge", ocv_table=None)
    assert kwargs["reward"]["study"]["switch_penalty"] == 0.5
    assert kwargs["invalid_rules"] == ("below_soc_min",)
    assert kwargs["init_soc"] == (0.3, 0.7)
    assert kwargs["pack"]["soc_limits"] == (0.1, 0.9)
    task = BalancingTask(n_packs=2, **kwargs)
    assert task.profile.name == "charge-rest-discharge"
    assert task.invalid_rules == ("below_soc_min",)
    assert task.reward_weights.kind == "study" and task.reward_weights.study.switch_penalty == 0.5
    assert task.obs_size == 48


def test_task_kwargs_auto_switch_penalty_and_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ecm_params.csv here: the shipped table is used
    kwargs = task_kwargs(load_config(), "discharge-rest-charge", ocv_table=tmp_path / "ocv.csv")
    assert kwargs["reward"]["study"]["switch_penalty"] == "auto"
    assert kwargs["ecm_table"] is None
    assert kwargs["ocv_table"] == str(tmp_path / "ocv.csv")
    monkeypatch.chdir(ROOT)
    assert task_kwargs(load_config(), "discharge-rest-charge")["ecm_table"] == "data/ecm_params.csv"


def test_every_env_key_reaches_the_task():
    """Each key of the env section is either a pack parameter or an argument of the task's
    constructor, whose default is the config's."""
    import inspect

    from bmsrl import task_config
    from bmsrl.env import BalancingTask

    env = bconfig.defaults()["env"]
    assert set(env) == set(task_config.PACK_KEYS) | set(task_config.TASK_KEYS)
    signature = inspect.signature(BalancingTask).parameters
    for key in task_config.TASK_KEYS:
        default = signature[key].default
        assert (list(default) if isinstance(default, tuple) else default) == env[key], key


def test_scenario_config_applies_only_its_overrides():
    from bmsrl.config import defaults, scenario_config

    cfg = defaults()
    shifted = scenario_config(cfg, "current_1c")
    assert shifted["env"]["i_max_a"] == 3.4 and cfg["env"]["i_max_a"] == 2.35  # a copy
    assert {k: v for k, v in shifted["env"].items() if k != "i_max_a"} == {
        k: v for k, v in cfg["env"].items() if k != "i_max_a"
    }
    assert scenario_config(cfg, "default")["env"] == cfg["env"]
    assert scenario_config(cfg, "init_soc_wide")["env"]["init_soc"] == [0.3, 0.7]
    assert scenario_config(cfg, "current_0p3c")["env"]["i_max_a"] == pytest.approx(0.3 * cfg["env"]["capacity_ah"])
    with pytest.raises(UserError, match="unknown scenario 'nope'"):
        scenario_config(cfg, "nope")


def test_gym_make_and_the_workflow_share_their_defaults():
    """`gym.make("PassiveBalancing-v0")` builds the same task as the workflow's default config: the
    env's dataclasses take their defaults from the schema (no second copy to drift)."""
    import gymnasium as gym

    import bmsrl  # noqa: F401  (registers the env)
    from bmsrl.env import BalancingTask
    from bmsrl.pack import PackParameters
    from bmsrl.reward import RewardWeights

    made = gym.make("PassiveBalancing-v0").unwrapped.task
    workflow = BalancingTask(n_packs=1, **task_kwargs(load_config(ROOT / "config" / "config.yaml"), made.profile.name))
    assert made.params == workflow.params == PackParameters(**workflow.params.__dict__)
    assert made.reward_weights == workflow.reward_weights == RewardWeights()
    for name in ("invalid_rules", "init_soc", "init_soh", "i_max_a"):
        assert getattr(made, name) == getattr(workflow, name), name
    assert made.sim.decision_interval_s == workflow.sim.decision_interval_s
    assert made.sim.substeps == workflow.sim.substeps
    assert made.profile.current_a.tolist() == workflow.profile.current_a.tolist()
    assert made.profile.max_duration_s.tolist() == workflow.profile.max_duration_s.tolist()


def test_typed_settings_have_exactly_the_schema_keys():
    """bmsrl.settings' dataclasses hold each key of their config section, no more, no less; a
    misspelt key fails where it is read."""
    from dataclasses import fields

    from bmsrl.settings import PrunerSettings, SamplerSettings, SearchSettings, TrainingSettings

    props = bconfig.schema()["properties"]
    for cls, section in (
        (TrainingSettings, props["training"]),
        (SearchSettings, props["search"]),
        (SamplerSettings, props["search"]["properties"]["sampler"]),
        (PrunerSettings, props["search"]["properties"]["pruner"]),
    ):
        assert [f.name for f in fields(cls)] == list(section["properties"]), cls.__name__
    cfg = load_config(ROOT / "config" / "test.yaml")
    training, search = TrainingSettings.of(cfg), SearchSettings.of(cfg)
    assert training.n_envs == cfg["training"]["n_envs"] and training.total_steps == cfg["training"]["total_steps"]
    assert search.sampler.n_startup_trials == cfg["search"]["sampler"]["n_startup_trials"]
    with pytest.raises(AttributeError):
        training.n_env  # noqa: B018  (a typo)
    cfg["training"]["n_env"] = 8  # an unvalidated config with a misspelt key
    with pytest.raises(TypeError, match=r"training: the config has keys \['n_env'\]"):
        TrainingSettings.of(cfg)


BAD_AND_GOOD_VALUES = [
    -1,
    0,
    0.5,
    1,
    2,
    2.0,
    40,
    1e-9,
    "x",
    "1",
    True,
    None,
    [],
    [0.5],
    [0.9, 0.1],
    [0.2, 0.8],
    [0.5, 0.5],
    [-1, 0.5],
    [0.1, 0.2, 0.3],
    "auto",
    "soc",
    "cc",
    "capacity",
    "variance",
    ["nope"],
    ["lowest_soc_while_discharging"] * 2,
    ["below_soc_min"],
    {},
]


def test_the_dataclasses_and_the_config_refuse_the_same_values_in_the_same_words():
    """The env's and the reward's own checks (bmsrl.fields, no jsonschema) and the config's validator
    (jsonschema on the schema built from the same fields) accept and refuse the same values; where a
    value breaks one rule, with the same message."""
    from dataclasses import fields

    from bmsrl.env import TaskParameters
    from bmsrl.fields import field_errors
    from bmsrl.pack import PackParameters
    from bmsrl.reward import CapacityWeights, RewardWeights, StudyWeights

    sections = [
        (("env",), [PackParameters, TaskParameters]),
        (("reward",), [RewardWeights]),
        (("reward", "study"), [StudyWeights]),
        (("reward", "capacity"), [CapacityWeights]),
    ]
    compared = 0
    for path, classes in sections:
        prefix = ".".join(path) + "."
        for cls in classes:
            for field in fields(cls):
                if "rules" not in field.metadata:
                    continue
                for value in BAD_AND_GOOD_VALUES:
                    cfg = (
                        {path[0]: {field.name: value}} if len(path) == 1 else {path[0]: {path[1]: {field.name: value}}}
                    )
                    try:
                        bconfig.validate(cfg, "cfg")
                        from_config = None
                    except UserError as exc:
                        from_config = str(exc).removeprefix("cfg: ").split(" (and ")[0]
                    errors = field_errors({field.name: value}, classes, prefix)
                    where = f"{prefix}{field.name} = {value!r}"
                    assert (from_config is None) == (not errors), f"{where}: config {from_config!r}, fields {errors}"
                    if len(errors) == 1:
                        assert errors[0] == from_config, where
                        compared += 1
    assert compared > 300  # not vacuous


@pytest.mark.parametrize("root", ["../elsewhere", "a/../../b", "/tmp/x", ".hidden", "results quick"])
def test_a_results_root_outside_the_checkout_is_one_clear_error(root):
    with pytest.raises(UserError) as error:
        bconfig.validate({"results_root": root}, "cfg.yaml")
    message = str(error.value)
    assert (
        message.startswith(f"cfg.yaml: results_root: {root!r} is not valid: folder every output")
        and "\n" not in message
    )


def test_run_kinds_come_from_the_registry():
    from bmsrl.results import RUN_KINDS

    assert bconfig.schema()["properties"]["run_kind"]["enum"] == list(RUN_KINDS)
    cfg = bconfig.validate({"results_root": "results-quick", "run_kind": "smoke"}, "cfg.yaml")
    assert cfg["results_root"] == "results-quick" and cfg["run_kind"] == "smoke"


def test_read_raw_config_reads_json_and_yaml_numbers_alike_and_sets_dotted_keys(tmp_path):
    """The benchmark scripts' ``--config FILE --set KEY=VALUE``: the workflow's JSON stage config
    (json.dumps writes 1e-06, text to yaml.safe_load) and a YAML file give the same numbers."""
    from bmsrl.config import read_raw_config

    (tmp_path / "stage.json").write_text(json.dumps({"reward": {"study": {"epsilon": 1e-6}}}), encoding="utf-8")
    (tmp_path / "c.yaml").write_text("reward:\n  study:\n    epsilon: 1e-6\n", encoding="utf-8")
    for name in ("stage.json", "c.yaml"):
        raw = read_raw_config(tmp_path / name, ["training.hyperparams.dqn.double_q=true", "seeds=[1, 2]"])
        assert raw["reward"]["study"]["epsilon"] == 1e-6
        assert raw["training"]["hyperparams"]["dqn"]["double_q"] is True and raw["seeds"] == [1, 2]
    with pytest.raises(UserError, match="--set 'seeds': expected KEY=VALUE"):
        read_raw_config(tmp_path / "c.yaml", ["seeds"])
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(UserError, match="bad.json: not valid JSON"):
        read_raw_config(tmp_path / "bad.json")
