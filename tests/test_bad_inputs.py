"""Bad inputs and wrong orders: every one ends in one clear message, a non-zero exit and no output.

Issue "Nothing a user does wrong, or in the wrong order, ends in a traceback, a silent wrong number
or a stuck rerun". Sections follow its items: implausible tables (2), a changed OCV table (3), env
actions and constructor arguments (4), semantic config checks (6), tracebacks (7), one YAML reading
(9), small things (10), interrupts at each write. The workflow test at the end (marked
``workflow``) runs a quick study and then the default one in the same folder, and the reverse (each keeps
its own results root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bmsrl import agents, algos
from bmsrl import config as bconfig
from bmsrl import io as bio
from bmsrl.cli import main
from bmsrl.config import load_config, validate
from bmsrl.env import BalancingTask, PassiveBalancingEnv
from bmsrl.errors import UserError
from bmsrl.pack import PackParameters
from bmsrl.reward import RewardWeights
from bmsrl.tables import (
    MAX_N_POINTS,
    PLAUSIBLE_CAPACITANCE_F,
    PLAUSIBLE_OCV_V,
    PLAUSIBLE_RESISTANCE_OHM,
    load_ecm_table,
    read_ocv_table,
)
from bmsrl.vec_env import BatchedBalancingVecEnv
from workflow_support import ROOT, SNAKEMAKE, run

DATA = ROOT / "src" / "bmsrl" / "data"
OCV = DATA / "ocv_table.csv"
ECM = DATA / "ecm_params.csv"
needs_snakemake = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """``bmsrl ARGV`` in-process: exit code and stderr (stdout is discarded)."""
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, verb: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bmsrl {verb}: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def no_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (hidden temporaries included)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def scaled_table(source: Path, dest: Path, column: str, factor: float, offset: float = 0.0) -> Path:
    frame = pd.read_csv(source)
    frame[column] = frame[column] * factor + offset
    frame.to_csv(dest, index=False)
    return dest


# ============================================================================ 2. unit mistakes
@pytest.mark.parametrize(
    "factor, offset, fragments",
    [
        (1000.0, 0.0, ("line 2", "'ocv_v'", "3245.2 V is outside the plausible range [1.5, 5] V", "looks like mV")),
        (1.0, -8.0, ("line 2", "'ocv_v'", "-4.7548 V is outside the plausible range [1.5, 5] V")),  # negative
        (1.0, -2.0, ("line 2", "'ocv_v'", "1.2452 V is outside the plausible range [1.5, 5] V", "(and 19 more rows)")),
    ],
)
def test_ocv_table_outside_the_plausible_range_is_refused(tmp_path, capsys, factor, offset, fragments):
    table = scaled_table(OCV, tmp_path / "ocv_bad.csv", "ocv_v", factor, offset)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "ocv", table, out / "ocv.csv", "--plot", out / "ocv.pdf")
    assert_one_line_error(
        code, err, "ocv", f"OCV table {table}", *fragments, "--allow-implausible", "allow_implausible_tables: true"
    )
    assert no_files(out) == []


def test_allow_implausible_accepts_an_ocv_table_in_millivolts(tmp_path, capsys):
    table = scaled_table(OCV, tmp_path / "ocv_mv.csv", "ocv_v", 1000.0)
    code, _ = run_cli(capsys, "ocv", table, tmp_path / "ocv.csv", "--allow-implausible")
    assert code == 0
    assert pd.read_csv(tmp_path / "ocv.csv")["ocv_v"].max() > 4000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(top=st.floats(-1e4, 1e4, allow_nan=False))
def test_ocv_plausibility_is_exactly_the_documented_range(tmp_path, top):
    """Property: a table with OCV values [top - 0.002, top - 0.001, top] is refused iff one of them
    lies outside [1.5, 5] V, and the override accepts it."""
    low, high, _ = PLAUSIBLE_OCV_V
    path = tmp_path / "ocv.csv"
    values = [top - 0.002, top - 0.001, top]
    pd.DataFrame({"soc": [0.0, 0.5, 1.0], "ocv_v": values}).to_csv(path, index=False)
    if low <= min(values) and max(values) <= high:
        read_ocv_table(path)
    else:
        with pytest.raises(UserError, match=r"plausible range \[1\.5, 5\] V"):
            read_ocv_table(path)
        read_ocv_table(path, allow_implausible=True)


@pytest.mark.parametrize(
    "column, factor, fragments",
    [
        ("r0_ohm", 1000.0, ("'r0_ohm'", "132.5 Ohm is outside the plausible range [0.0001, 1] Ohm", "looks like mOhm")),
        ("r1_ohm", 1000.0, ("'r1_ohm'", "looks like mOhm")),
        ("c1_f", 1e-3, ("'c1_f'", "0.74754 F is outside the plausible range [1, 1e+06] F", "looks like kF")),
        ("c2_f", 1e4, ("'c2_f'", "plausible range [1, 1e+06] F")),
    ],
)
def test_ecm_table_in_the_wrong_unit_is_refused(tmp_path, column, factor, fragments):
    table = scaled_table(ECM, tmp_path / "ecm.csv", column, factor)
    with pytest.raises(UserError) as info:
        load_ecm_table(table)
    message = str(info.value)
    assert message.startswith(f"ECM table {table}, line 2, column {column!r}: "), message
    for fragment in fragments:
        assert fragment in message
    assert "allow_implausible_tables: true" in message
    load_ecm_table(table, allow_implausible=True)


def test_r0_of_one_megaohm_is_refused_by_evaluate(tmp_path, capsys):
    frame = pd.read_csv(ECM)
    frame.loc[3, "r0_ohm"] = 1e6
    table = tmp_path / "ecm.csv"
    frame.to_csv(table, index=False)
    cfg = json.dumps({"ecm_table": str(table), "evaluation": {"episodes": 1}})
    code, err = run_cli(
        capsys,
        "evaluate",
        "--config-json",
        cfg,
        "--policy",
        "no_balancing",
        "--profile",
        "charge-rest-discharge",
        "--seed",
        "1",
        "--out",
        tmp_path / "eval",
    )
    assert_one_line_error(
        code,
        err,
        "evaluate",
        f"ECM table {table}, line 5, column 'r0_ohm'",
        "1e+06 Ohm",
        "plausible range [0.0001, 1] Ohm",
    )
    assert no_files(tmp_path / "eval") == []
    # the documented override: the config key reaches the env
    cfg = json.dumps({"ecm_table": str(table), "allow_implausible_tables": True, "evaluation": {"episodes": 1}})
    code, err = run_cli(
        capsys,
        "evaluate",
        "--config-json",
        cfg,
        "--policy",
        "no_balancing",
        "--profile",
        "charge-rest-discharge",
        "--seed",
        "1",
        "--out",
        tmp_path / "eval",
    )
    assert code == 0, err


def test_shipped_tables_lie_inside_the_plausible_ranges():
    ecm = load_ecm_table()
    for name in ("r0_ohm", "r1_ohm", "r2_ohm"):
        assert PLAUSIBLE_RESISTANCE_OHM[0] <= ecm[name].min() and ecm[name].max() <= PLAUSIBLE_RESISTANCE_OHM[1]
    for name in ("c1_f", "c2_f"):
        assert PLAUSIBLE_CAPACITANCE_F[0] <= ecm[name].min() and ecm[name].max() <= PLAUSIBLE_CAPACITANCE_F[1]
    ocv = read_ocv_table(OCV)["ocv_v"]
    assert PLAUSIBLE_OCV_V[0] <= ocv.min() and ocv.max() <= PLAUSIBLE_OCV_V[1]


# ======================================================================= 3. changed OCV table
@needs_snakemake
def test_a_changed_or_missing_ocv_table_reruns_ocv_or_fails(workdir):
    assert run(workdir, "--cores", "1", "results/plots/ocv.pdf").returncode == 0
    nothing = run(workdir, "-n", "results/plots/ocv.pdf")
    assert "Nothing to be done" in nothing.stdout + nothing.stderr
    # same content, another path, an older file: mtime alone would not rerun it
    other = workdir / "data" / "other_ocv.csv"
    shutil.copyfile(workdir / "data" / "ocv_table.csv", other)
    os.utime(other, (946684800, 946684800))
    planned = run(workdir, "-n", "results/plots/ocv.pdf", "--config", "ocv_table=data/other_ocv.csv")
    assert planned.returncode == 0 and "rule ocv:" in planned.stdout, planned.stdout + planned.stderr
    # same path, new content with an old mtime: the content digest is a param
    table = workdir / "data" / "ocv_table.csv"
    table.write_text(table.read_text().replace("3.2452", "3.2450"))
    os.utime(table, (946684800, 946684800))
    planned = run(workdir, "-n", "results/plots/ocv.pdf")
    assert "rule ocv:" in planned.stdout, planned.stdout + planned.stderr
    # a typo: fails at start-up naming the key and the path, before any job
    typo = run(workdir, "-n", "--config", "ocv_table=data/ocv_tabel.csv")
    assert typo.returncode != 0
    assert "ocv_table: data/ocv_tabel.csv does not exist" in typo.stdout + typo.stderr


# ============================================================================== 4. env actions
BAD_ACTIONS = [
    -1,
    32,
    3.5,
    "5",
    True,
    False,
    np.bool_(True),
    np.float64(3.0),
    float("nan"),
    None,
    [3],
    2**70,
    np.int64(-1),
    np.uint8(40),
]
GOOD_ACTIONS = [0, 31, np.int64(7), np.int32(7), np.uint8(7), np.array(7)]


@pytest.fixture(scope="module")
def env():
    env = PassiveBalancingEnv()
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("action", BAD_ACTIONS, ids=repr)
def test_single_env_refuses_an_action_outside_discrete_32(env, action):
    before = env.task.sim.state.soc.copy()
    with pytest.raises(ValueError, match=r"invalid action .*integers in \[0, 31\] \(Discrete\(32\)\)"):
        env.step(action)
    assert np.array_equal(env.task.sim.state.soc, before)  # nothing was simulated


@pytest.mark.parametrize("action", GOOD_ACTIONS, ids=repr)
def test_single_env_accepts_integer_actions(env, action):
    env.step(action)
    assert env.task.sim.state.switches[0].sum() == bin(int(action)).count("1") or env.task.last_invalid[0]


@settings(max_examples=80, deadline=None)
@given(action=st.one_of(st.integers(-100, 100), st.floats(allow_nan=True), st.text(max_size=3), st.booleans()))
def test_single_env_accepts_exactly_the_action_space(action):
    env = _shared_env()
    valid = isinstance(action, int) and not isinstance(action, bool) and 0 <= action < 32
    if valid:
        env.step(action)
    else:
        with pytest.raises(ValueError, match="invalid action"):
            env.step(action)


_ENV: list = []


def _shared_env() -> PassiveBalancingEnv:
    if not _ENV:
        _ENV.append(PassiveBalancingEnv())
        _ENV[0].reset(seed=1)
    env = _ENV[0]
    if env.task.sim.episode_over[0]:
        env.reset(seed=1)
    return env


@pytest.fixture(scope="module")
def vec():
    vec = BatchedBalancingVecEnv(4)
    vec.seed(0)
    vec.reset()
    return vec


@pytest.mark.parametrize(
    "actions, fragment",
    [
        (np.array([0, 1, -1, 3]), "invalid action -1"),
        (np.array([0, 1, 32, 3]), "invalid action 32"),
        (np.array([0.0, 1.0, 2.5, 3.0]), "type float64"),
        (np.array([0, 1, 2]), "expected 4 integer action(s)"),
        (np.array(["1", "2", "3", "4"]), "type <U1"),
        (np.array([True, False, True, False]), "type bool"),
        (np.array([0, 1, 2, np.nan]), "type float64"),
    ],
)
def test_vec_env_refuses_bad_action_arrays(vec, actions, fragment):
    with pytest.raises(ValueError, match=r"\[0, 31\]") as info:
        vec.step(actions)
    assert fragment in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    actions=st.lists(st.integers(-40, 70), min_size=4, max_size=4), dtype=st.sampled_from(["int64", "int32", "int16"])
)
def test_vec_env_accepts_exactly_integer_arrays_in_range(actions, dtype):
    vec = _shared_vec()
    array = np.array(actions, dtype=dtype)
    if all(0 <= a < 32 for a in actions):
        vec.step(array)
    else:
        with pytest.raises(ValueError, match="invalid action"):
            vec.step(array)


_VEC: list = []


def _shared_vec() -> BatchedBalancingVecEnv:
    if not _VEC:
        _VEC.append(BatchedBalancingVecEnv(4))
        _VEC[0].seed(0)
        _VEC[0].reset()
    return _VEC[0]


def test_the_task_core_checks_actions_too():
    task = BalancingTask(n_packs=3)
    task.reset_packs(np.arange(3), np.full((3, 5), 0.5), np.ones((3, 5)))
    for bad in (np.array([0, -1, 2]), np.array([0, 1, 32]), np.array([0.0, 1.0, 2.0]), np.array([1, 2])):
        with pytest.raises(ValueError, match=r"invalid action .*\[0, 31\]"):
            task.step(bad)
    task.step(np.array([0, 1, 31], dtype=np.int32))


def test_vec_env_takes_what_sb3_passes(vec):
    vec.step(np.array([1, 2, 3, 4], dtype=np.int64))
    vec.step(np.array([[1], [2], [3], [4]]))  # (n_envs, 1), as some SB3 paths pass Discrete actions
    vec.step([0, 1, 2, 3])


# ------------------------------------------------------------------ 4. constructor arguments
@pytest.mark.parametrize(
    "kwargs, config, fragment",
    [
        (
            {"decision_interval_s": -30.0},
            {"decision_interval_s": -30.0},
            "decision_interval_s: -30.0 is less than or equal to the minimum of 0",
        ),
        ({"init_soc": (0.4, 1.2)}, {"init_soc": [0.4, 1.2]}, "init_soc[1]: 1.2 is greater than the maximum of 1"),
        (
            {"init_soh": (-0.1, 1.0)},
            {"init_soh": [-0.1, 1.0]},
            "init_soh[0]: -0.1 is less than or equal to the minimum of 0",
        ),
        (
            {"init_soc": (0.05, 0.6)},
            {"init_soc": [0.05, 0.6]},
            "init_soc: [0.05, 0.6] is not inside soc_limits [0.1, 0.9]",
        ),
        ({"init_soc": (0.6, 0.4)}, {"init_soc": [0.6, 0.4]}, "init_soc: [0.6, 0.4] is reversed"),
        ({"pack": {"soc_limits": (0.9, 0.1)}}, {"soc_limits": [0.9, 0.1]}, "soc_limits: [0.9, 0.1] is reversed"),
        (
            {"pack": {"voltage_limits_v": (4.2, 2.5)}},
            {"voltage_limits_v": [4.2, 2.5]},
            "voltage_limits_v: [4.2, 2.5] is reversed",
        ),
        ({"pack": {"n_cells": 40}}, {"n_cells": 40}, "n_cells: 40 is greater than the maximum of 16"),
        ({"substeps": 0}, {"substeps": 0}, "substeps: 0 is less than the minimum of 1"),
        ({"substeps": 2.0}, {"substeps": 2.0}, "substeps: 2.0 is not of type 'integer'"),
        ({"invalid_rules": ("nope",)}, {"invalid_rules": ["nope"]}, "invalid_rules[0]: 'nope' is not one of"),
        ({"i_max_a": 0.0}, {"i_max_a": 0.0}, "i_max_a: 0.0 is less than or equal to the minimum of 0"),
    ],
)
def test_env_constructor_checks_its_arguments_by_the_config_rules(kwargs, config, fragment):
    """The constructor refuses what the config refuses, with the same message (one source of rules)."""
    with pytest.raises(ValueError) as from_env:
        PassiveBalancingEnv(**kwargs)
    with pytest.raises(ValueError):
        BatchedBalancingVecEnv(2, **kwargs)
    with pytest.raises(UserError) as from_config:
        validate({"env": config}, "cfg")
    assert fragment in str(from_env.value), str(from_env.value)
    assert str(from_config.value).startswith("cfg: env.")
    assert str(from_config.value).replace("env.", "").startswith(f"cfg: {str(from_env.value)[:40]}")


def test_pack_and_reward_dataclasses_check_their_fields():
    with pytest.raises(ValueError, match="capacity_ah: 0 is less than or equal to the minimum of 0"):
        PackParameters(capacity_ah=0)
    with pytest.raises(ValueError, match="n_cells: 40 is greater than the maximum of 16"):
        PackParameters(n_cells=40)
    with pytest.raises(ValueError, match="reward.study.epsilon: 0 is less than or equal to the minimum of 0"):
        RewardWeights(study={"epsilon": 0})
    with pytest.raises(ValueError, match="reward.study.switch_penalty"):
        RewardWeights(study={"switch_penalty": -1.0})
    with pytest.raises(ValueError, match="reward.kind: 'variance' is not one of"):
        RewardWeights(kind="variance")
    with pytest.raises(ValueError, match="reward.capacity.shunt_energy_cost_per_wh: -1"):
        RewardWeights(capacity={"shunt_energy_cost_per_wh": -1})
    with pytest.raises(ValueError, match="reward.study.beta: unknown key"):
        RewardWeights(study={"beta": 1.0})
    RewardWeights(study={"switch_penalty": "auto"})
    PackParameters(soc_limits=(np.float64(0.2), np.float32(0.8)))  # NumPy numbers are numbers


def test_forty_cells_fail_fast_instead_of_allocating_terabytes():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="2\\^n_cells"):
        BalancingTask(pack={"n_cells": 40})
    assert time.perf_counter() - start < 5.0


def test_a_table_window_is_the_configured_soc_limits(tmp_path):
    """Train and evaluate check the processed OCV table against env.soc_limits, not a fixed [0.1, 0.9]."""
    narrow = tmp_path / "narrow.csv"
    frame = pd.read_csv(OCV)
    frame[(frame["soc"] >= 0.2) & (frame["soc"] <= 0.8)].to_csv(narrow, index=False)
    window = {"soc_limits": (0.25, 0.75)}
    BalancingTask(ocv_table=str(narrow), pack=window, init_soc=(0.4, 0.6))  # covered: accepted
    with pytest.raises(UserError, match=r"SoC range \[0\.2, 0\.8\] does not cover the SoC window \[0\.1, 0\.9\]"):
        BalancingTask(ocv_table=str(narrow))
    processed = tmp_path / "processed.csv"
    frame[(frame["soc"] >= 0.1 - 1e-9) & (frame["soc"] <= 0.9 + 1e-9)].to_csv(processed, index=False)
    BalancingTask(ocv_table=str(processed))
    with pytest.raises(UserError, match=r"does not cover the SoC window \[0\.05, 0\.95\]"):
        BalancingTask(ocv_table=str(processed), pack={"soc_limits": (0.05, 0.95)})


# ============================================================================= 6. config values
@pytest.mark.parametrize(
    "text, fragment",
    [
        ("env:\n  soc_limits: [0.9, 0.1]\n", "env.soc_limits: [0.9, 0.1] is reversed; write [lo, hi] with lo < hi"),
        ("env:\n  soc_limits: [0.5, 0.5]\n", "env.soc_limits: [0.5, 0.5] is empty"),
        ("env:\n  voltage_limits_v: [4.2, 2.5]\n", "env.voltage_limits_v: [4.2, 2.5] is reversed"),
        ("env:\n  init_soc: [0.6, 0.4]\n", "env.init_soc: [0.6, 0.4] is reversed; write [lo, hi] with lo <= hi"),
        ("env:\n  init_soh: [1.05, 0.95]\n", "env.init_soh: [1.05, 0.95] is reversed"),
        ("env:\n  init_soc: [0.05, 0.5]\n", "env.init_soc: [0.05, 0.5] is not inside env.soc_limits [0.1, 0.9]"),
        ("env:\n  soc_limits: [0.2, 0.8]\n", None),  # valid: the default init_soc [0.4, 0.6] lies inside
        (
            "env:\n  n_cells: 40\n",
            "env.n_cells: 40 is greater than the maximum of 16 (cells in series [-]; at most 16: "
            "the agent picks one of 2^n_cells shunt patterns",
        ),
        (
            "training:\n  hyperparams:\n    ppo:\n      n_step: 64\n",
            "training.hyperparams.ppo.n_step: not a keyword argument of stable_baselines3.PPO; did you mean 'n_steps'?",
        ),
        (
            "training:\n  hyperparams:\n    dqn:\n      exploration_final: 0.1\n",
            "training.hyperparams.dqn.exploration_final: not a keyword argument of bmsrl.masked_dqn.MaskedDQN; did you mean",
        ),
        (
            "training:\n  hyperparams:\n    dqn:\n      greedy_valid_only: 'no'\n",
            "training.hyperparams.dqn.greedy_valid_only: 'no' is not of type 'boolean'",
        ),
        (
            "training:\n  hyperparams:\n    ppo:\n      n_steps: -5\n",
            "training.hyperparams.ppo.n_steps: -5 is less than the minimum of 1",
        ),
        (
            "training:\n  hyperparams:\n    a2c:\n      n_steps: -5\n",
            "training.hyperparams.a2c.n_steps: -5 is less than the minimum of 1",
        ),
        (
            "training:\n  hyperparams:\n    ppo:\n      seed: 3\n",
            "training.hyperparams.ppo.seed: set by `bmsrl train` itself",
        ),
        ("training:\n  n_envs: 8.0\n", "training.n_envs: 8.0 is not of type 'integer' (write 8)"),
        (
            "training:\n  total_steps: {ppo: 1e6}\n",
            "training.total_steps.ppo: 1000000.0 is not of type 'integer' (write 1000000)",
        ),
        ("seeds: [true]\n", "seeds[0]: True is not of type 'integer'"),
    ],
)
def test_semantic_config_errors_name_the_key(tmp_path, text, fragment):
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    if fragment is None:  # a valid neighbour of the cases above
        load_config(path)
        return
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert fragment in message, message


def test_cached_constructor_keywords_match_the_installed_libraries():
    """The registry's keyword lists (used without importing torch) are the real constructors' signatures."""
    for name, spec in algos.ALGOS.items():
        assert spec.keywords == agents.constructor_keywords(name), name
        for key in spec.hyperparams:
            assert key in spec.keywords, (name, key)


def test_every_keyword_of_the_registry_is_accepted_by_the_config():
    for name, spec in algos.ALGOS.items():
        cfg = {
            "training": {
                "hyperparams": {
                    name: {
                        k: None for k in spec.keywords if k not in bconfig.schema()["$defs"]["sb3_kwargs"]["properties"]
                    }
                }
            }
        }
        validate(cfg, "x")


# ============================================================================= 7. tracebacks
def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_bytes("env:\n  n_cells: 5  # Zellen für\n".encode("latin-1"))
    code, err = run_cli(capsys, "train", "--config", path, "--algo", "ppo", "--seed", "1", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "train", str(path), "not UTF-8", "save it as UTF-8")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", "half"], ids=["empty", "cut-header", "half"])
def test_plot_training_on_an_empty_or_truncated_evaluations_file(tmp_path, capsys, content):
    path = tmp_path / "evaluations.npz"
    if content == "half":
        np.savez(path, timesteps=[1, 2], results=[[1.0], [2.0]], algo="ppo", seed=1)
        data = path.read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    code, err = run_cli(capsys, "plot", "training", "--evaluations", path, "--out", tmp_path / "t.pdf")
    assert_one_line_error(code, err, "plot", f"evaluations file {path}", "not a readable .npz file")
    assert not (tmp_path / "t.pdf").exists()


def _fake_model(folder: Path, algo: str = "ppo", n_cells: int = 5) -> Path:
    """A real PPO model (untrained) with the run record ``bmsrl train`` publishes beside it."""
    from stable_baselines3 import PPO

    folder.mkdir(parents=True, exist_ok=True)
    model = PPO("MlpPolicy", BatchedBalancingVecEnv(2), n_steps=8, batch_size=16, device="cpu")
    model.save(folder / "best_model.zip")
    (folder / "run_config.json").write_text(json.dumps({"settings": {"algo": algo, "env": {"n_cells": n_cells}}}))
    return folder / "best_model.zip"


@pytest.fixture(scope="module")
def ppo_model(tmp_path_factory) -> Path:
    return _fake_model(tmp_path_factory.mktemp("ppo_seed1"))


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--policy", "a2c"], "was trained as 'ppo', not 'a2c'"),
        (["--policy", "trpo"], "was trained as 'ppo', not 'trpo'"),
        (["--policy", "ppo", "--config-json", '{"env": {"n_cells": 4}}'], "was trained on a 5-cell pack, not 4 cells"),
        (["--policy", "no_balancing"], "is a baseline and takes no --model"),
    ],
)
def test_evaluating_a_model_of_another_algorithm_or_pack_is_refused(tmp_path, capsys, ppo_model, args, fragment):
    out = tmp_path / "eval"
    code, err = run_cli(
        capsys,
        "evaluate",
        *args,
        "--profile",
        "charge-rest-discharge",
        "--seed",
        "1",
        "--model",
        ppo_model,
        "--out",
        out,
    )
    assert_one_line_error(code, err, "evaluate", fragment)
    assert not out.exists()


def test_a_directory_as_model_is_named_a_directory(tmp_path, capsys):
    code, err = run_cli(
        capsys,
        "evaluate",
        "--policy",
        "ppo",
        "--profile",
        "charge-rest-discharge",
        "--seed",
        "1",
        "--model",
        tmp_path,
        "--out",
        tmp_path / "eval",
    )
    assert_one_line_error(code, err, "evaluate", f"model checkpoint {tmp_path} is a directory, not a .zip file")


def _verb_args(tmp_path: Path, out: Path) -> dict[str, list]:
    return {
        "train": ["train", "--algo", "ppo", "--seed", "1", "--out", out],
        "train --tensorboard": ["train", "--algo", "ppo", "--seed", "1", "--out", tmp_path / "o", "--tensorboard", out],
        "evaluate": [
            "evaluate",
            "--policy",
            "no_balancing",
            "--profile",
            "charge-rest-discharge",
            "--seed",
            "1",
            "--out",
            out,
        ],
        "ocv": ["ocv", OCV, out],
        "ocv --plot": ["ocv", OCV, tmp_path / "p.csv", "--plot", out],
        "aggregate --out-csv": ["aggregate", _metrics_file(tmp_path), "--out-csv", out, "--out-md", tmp_path / "s.md"],
        "aggregate --out-md": ["aggregate", _metrics_file(tmp_path), "--out-csv", tmp_path / "s.csv", "--out-md", out],
        "plot": ["plot", "training", "--evaluations", _evaluations_file(tmp_path), "--out", out],
    }


FOLDER_OUTPUTS = ("train", "train --tensorboard", "evaluate")
OUT_CASES = [
    (verb, kind)
    for verb in (
        "train",
        "train --tensorboard",
        "evaluate",
        "ocv",
        "ocv --plot",
        "aggregate --out-csv",
        "aggregate --out-md",
        "plot",
    )
    for kind in (("file", "under-a-file") if verb in FOLDER_OUTPUTS else ("dir", "under-a-file"))
]


@pytest.mark.parametrize("verb, kind", OUT_CASES)
def test_out_pointing_at_the_wrong_kind_of_path(tmp_path, capsys, verb, kind):
    """Every verb: an output option at a file (where a folder is wanted), a folder (where a file is
    wanted), or below a file: one line naming the option and the path, before any work, nothing written."""
    target = tmp_path / "target"
    if kind == "dir":
        target.mkdir()
    else:
        target.write_text("keep me\n")
    out = target / "sub" if kind == "under-a-file" else target
    args = _verb_args(tmp_path, out)[verb]
    before = {p: p.stat().st_mtime_ns for p in no_files(tmp_path)}
    start = time.perf_counter()
    code, err = run_cli(capsys, *args)
    option = verb.split()[1] if " " in verb else ("output" if verb == "ocv" else "--out")
    expected = {
        "file": f"{option} {out} is a file, not a folder",
        "dir": f"{option} {out} is a directory, not a file",
        "under-a-file": f"{option} {out}: {target} is a file, not a folder",
    }[kind]
    assert_one_line_error(code, err, verb.split()[0], expected)
    assert {p: p.stat().st_mtime_ns for p in no_files(tmp_path)} == before
    assert time.perf_counter() - start < 20


# ========================================================================= 9. one YAML reading
def test_yaml_reading_refuses_duplicates_and_reads_1e_minus_4_as_a_number(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("training:\n  hyperparams:\n    dqn:\n      learning_rate: 1e-4\n      gamma: 9.9e-1\n")
    cfg = load_config(path)
    assert cfg["training"]["hyperparams"]["dqn"]["learning_rate"] == 1e-4
    assert cfg["training"]["hyperparams"]["dqn"]["gamma"] == 0.99
    path.write_text("seeds: [1]\nseeds: [2]\n")
    with pytest.raises(UserError, match=r"cfg\.yaml, line 2: not valid YAML: duplicate key 'seeds'"):
        load_config(path)
    path.write_text("training:\n  hyperparams:\n    dqn:\n      learning_rate: '1e-4'\n")
    with pytest.raises(UserError, match="a quoted number is text: remove the quotes"):
        load_config(path)
    assert bconfig.load_yaml("a: 1e4\nb: '1e4'\nc: 1_000\nd: 1.5\ne: .5e1\n") == {
        "a": 1e4,
        "b": "1e4",
        "c": 1000,
        "d": 1.5,
        "e": 5.0,
    }


@needs_snakemake
@pytest.mark.parametrize(
    "text, ok, fragment",
    [
        ("seeds: [1]\nseeds: [2]\n", False, "line 2: not valid YAML: duplicate key 'seeds'"),
        ("training:\n  hyperparams:\n    dqn:\n      learning_rate: 1e-4\n", True, None),
        ("training:\n  hyperparams:\n    dqn:\n      learning_rate: '1e-4'\n", False, "a quoted number is text"),
        ("env:\n  soc_limits: [0.9, 0.1]\n", False, "env.soc_limits: [0.9, 0.1] is reversed"),
        ("training:\n  hyperparams:\n    ppo:\n      n_step: 64\n", False, "did you mean 'n_steps'?"),
        ("env:\n  n_cells: 40\n", False, "env.n_cells: 40 is greater than the maximum of 16"),
    ],
)
def test_snakemake_reads_config_files_like_bmsrl(workdir, text, ok, fragment):
    """The Snakefile reads its config files with bmsrl's reading: the same verdict as ``bmsrl train --config``."""
    path = workdir / "extra.yaml"
    path.write_text(text)
    result = run(workdir, "-n", "--configfile", "extra.yaml")
    output = result.stdout + result.stderr
    try:
        load_config(path)
        bmsrl_ok = True
    except UserError as exc:
        bmsrl_ok = False
        assert fragment in str(exc)
    assert bmsrl_ok == ok
    assert (result.returncode == 0) == ok, output
    if not ok:
        assert fragment in output and str(path) in output or "invalid config" in output, output
        assert not (workdir / "results").exists()


# ============================================================================== 10. small ones
def test_ocv_plot_format_follows_the_suffix(tmp_path, capsys):
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")):
        code, err = run_cli(capsys, "ocv", OCV, tmp_path / f"o{suffix}.csv", "--plot", tmp_path / f"ocv{suffix}")
        assert code == 0, err
        assert (tmp_path / f"ocv{suffix}").read_bytes().startswith(magic)
    code, err = run_cli(capsys, "ocv", OCV, tmp_path / "x.csv", "--plot", tmp_path / "ocv.txt")
    assert_one_line_error(code, err, "ocv", "unsupported figure format '.txt'")
    assert not (tmp_path / "x.csv").exists()


def test_ocv_refuses_to_overwrite_its_input(tmp_path, capsys):
    table = tmp_path / "ocv.csv"
    shutil.copyfile(OCV, table)
    before = table.read_bytes()
    for args in (
        [table, table],
        [table, tmp_path / "." / "ocv.csv"],
        [table, tmp_path / "p.csv", "--plot", table],
        [table, tmp_path / "p.csv", "--plot", tmp_path / "p.csv"],
    ):
        code, err = run_cli(capsys, "ocv", *args)
        assert_one_line_error(code, err, "ocv", "give a different path")
    assert table.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ocv.csv"]


def test_aggregate_refuses_one_path_for_both_outputs(tmp_path, capsys):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("x\n1\n")
    code, err = run_cli(capsys, "aggregate", metrics, "--out-csv", tmp_path / "s", "--out-md", tmp_path / "s")
    assert_one_line_error(code, err, "aggregate", "--out-md", "is the same file as --out-csv")
    code, err = run_cli(capsys, "aggregate", metrics, "--out-csv", metrics, "--out-md", tmp_path / "s.md")
    assert_one_line_error(code, err, "aggregate", "--out-csv", "would overwrite the input")
    assert metrics.read_text() == "x\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_plot_refuses_to_overwrite_an_input(tmp_path, capsys):
    path = tmp_path / "evaluations.npz"
    np.savez(path, timesteps=[1, 2], results=[[1.0], [2.0]], algo="ppo", seed=1)
    code, err = run_cli(capsys, "plot", "training", "--evaluations", path, "--out", path)
    assert_one_line_error(code, err, "plot", "would overwrite the input")


@pytest.mark.parametrize("points", ["100000000", "1", "0", str(MAX_N_POINTS + 1)])
def test_ocv_points_are_capped(tmp_path, capsys, points):
    start = time.perf_counter()
    code, err = run_cli(capsys, "ocv", OCV, tmp_path / "o.csv", "--points", points)
    assert_one_line_error(code, err, "ocv", f"integer in [2, {MAX_N_POINTS}]", points)
    assert time.perf_counter() - start < 5 and no_files(tmp_path) == []
    assert run_cli(capsys, "ocv", OCV, tmp_path / "o.csv", "--points", str(MAX_N_POINTS))[0] == 0


def test_a_killed_writer_leaves_no_temporary_file_behind(tmp_path):
    """A temporary file of a process that no longer runs (kill -9) is removed by the next write."""
    out = tmp_path / "ocv.csv"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    stale = tmp_path / f".ocv.csv.{dead.stdout.strip()}-0123456789ab.tmp"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".ocv.csv.{os.getppid()}-0123456789ab.tmp"  # a running process's: kept
    alive.write_bytes(b"y")
    other = tmp_path / ".other.csv.1-0123456789ab.tmp"  # another file's: kept
    other.write_bytes(b"z")
    with bio.atomic_output(out) as tmp:
        tmp.write_text("new\n")
    assert out.read_text() == "new\n"
    assert not stale.exists() and alive.exists() and other.exists()


# ====================================================================== interrupts at each write
def _count_replaces(monkeypatch, fail_at: int | None, exc: type[BaseException] = KeyboardInterrupt) -> list[int]:
    calls = [0]
    real = os.replace

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == fail_at:
            raise exc()
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


STAGES = {
    "ocv": (lambda t: ["ocv", OCV, t / "out" / "ocv.csv", "--plot", t / "out" / "ocv.pdf"], 2),
    "evaluate": (
        lambda t: [
            "evaluate",
            "--config-json",
            '{"evaluation": {"episodes": 1}}',
            "--policy",
            "no_balancing",
            "--profile",
            "charge-rest-discharge",
            "--seed",
            "1",
            "--out",
            t / "out",
        ],
        2,
    ),
    "aggregate": (
        lambda t: ["aggregate", _metrics_file(t), "--out-csv", t / "out" / "s.csv", "--out-md", t / "out" / "s.md"],
        2,
    ),
    "plot": (lambda t: ["plot", "training", "--evaluations", _evaluations_file(t), "--out", t / "out" / "t.pdf"], 1),
}


def _metrics_file(tmp_path: Path) -> Path:
    from bmsrl.evaluate import evaluate

    path = tmp_path / "metrics.csv"
    if not path.exists():
        cfg = load_config()
        cfg["evaluation"]["episodes"] = 1
        _, metrics = evaluate(cfg, "no_balancing", "charge-rest-discharge", 1, None, None)
        metrics.to_csv(path, index=False)
    return path


def _evaluations_file(tmp_path: Path) -> Path:
    path = tmp_path / "e.npz"
    np.savez(path, timesteps=[1, 2], results=[[1.0], [2.0]], algo="ppo", seed=1)
    return path


@pytest.mark.parametrize("stage", list(STAGES))
def test_an_interrupt_at_each_write_leaves_no_output(tmp_path, capsys, monkeypatch, stage):
    """Ctrl-C (or SIGTERM, which the CLI turns into the same) at the k-th file move of a stage: exit 130,
    one line, no output of the set and no temporary file; without interrupt, every output appears."""
    make_args, n_outputs = STAGES[stage]
    args = make_args(tmp_path)
    for fail_at in range(1, n_outputs + 1):
        calls = _count_replaces(monkeypatch, fail_at)
        code = main([str(a) for a in args])
        err = capsys.readouterr().err
        assert code == 130 and err.strip() == f"bmsrl {stage}: interrupted; outputs not completed were not written", err
        assert calls[0] == fail_at
        assert no_files(tmp_path / "out") == [], fail_at
    calls = _count_replaces(monkeypatch, None)
    assert main([str(a) for a in args]) == 0
    assert len(no_files(tmp_path / "out")) == n_outputs and calls[0] == n_outputs


def test_sigterm_unwinds_a_running_verb(tmp_path):
    """Snakemake and Slurm stop a job with SIGTERM: the verb unwinds (exit 130, one line) and removes
    its temporary file; a SIGTERM'd write leaves nothing behind."""
    module = tmp_path / "slow_verb.py"
    module.write_text(
        textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from bmsrl.io import atomic_output

        def add_arguments(parser):
            pass

        def main(args):
            with atomic_output(Path({str(tmp_path / "out.bin")!r})) as tmp:
                tmp.write_bytes(b"x" * 1000)
                print("writing", flush=True)
                time.sleep(60)
            return 0
    """)
    )
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from bmsrl import cli; "
        "cli.VERBS['slow'] = ('slow_verb', 'test'); sys.exit(cli.main(['slow']))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "writing"
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip() == "bmsrl slow: interrupted; outputs not completed were not written"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["slow_verb.py"]


# ================================================================================ the workflow
SHORT = [
    "algos=[ppo]",
    "seeds=[1]",
    "evaluation={episodes: 1}",
    "training={n_envs: 4, total_steps: {ppo: 256}, eval_interval: 128, checkpoint_interval: 128, log_interval: 128,"
    " hyperparams: {ppo: {n_steps: 32, batch_size: 64, n_epochs: 1}}}",
]


@pytest.mark.workflow
@needs_snakemake
@pytest.mark.parametrize(
    "first, second",
    [("config/quick.yaml", None), (None, "config/quick.yaml")],
    ids=["quick-then-default", "default-then-quick"],
)
def test_quick_then_default_config_in_one_folder(workdir, first, second):
    """The quick config (eval_episodes 3, results_root results-quick) and then the default one (eval_episodes
    5, results/) in the same folder, and the reverse: both succeed, each in its own results root, and the
    second leaves the first one's outputs intact (nothing of it to redo)."""
    roots = {"config/quick.yaml": "results-quick", None: "results"}
    commands = {}
    for configfile in (first, second):
        args = ["--cores", "2", *(["--configfile", configfile] if configfile else []), "--config", *SHORT]
        commands[configfile] = args
        result = run(workdir, *args, timeout=600)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    for configfile, root in roots.items():
        with np.load(workdir / root / "checkpoints" / "ppo_seed1" / "evaluations.npz") as ev:
            assert ev["results"].shape[1] == (3 if configfile else 5)
        assert (workdir / root / "tables" / "summary.md").is_file()
        assert "Nothing to be done" in run(workdir, "-n", *commands[configfile]).stdout
