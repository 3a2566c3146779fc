"""The trained agents shipped with the package (src/bmsrl/data/agents, ``bmsrl.agents.load_shipped``):
each loads, acts through the rollout with actions of its env's space, was trained on today's cell
tables, and a change of the observation or action layout is refused with an error naming the record;
git and the package keep the zips."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from bmsrl import agents
from bmsrl.agents import MODEL_FILE, RECORD_FILE, SHIPPED_AGENTS, load_shipped, shipped_agents
from bmsrl.env import BalancingTask
from bmsrl.errors import UserError
from bmsrl.rollout import reads_action_masks, rollout

ROOT = Path(__file__).resolve().parents[1]
PACKS = 3


def test_the_verdict_runs_agents_are_shipped():
    """The two agents of the verdict run (config/verdict.yaml's algorithms), seed 1 each, with their
    records and a provenance note."""
    assert {algo: folder.name for algo, folder in shipped_agents().items()} == {"dqn": "dqn_seed1", "a2c": "a2c_seed1"}
    for folder in shipped_agents().values():
        assert (folder / MODEL_FILE).stat().st_size > 10_000 and (folder / RECORD_FILE).is_file()
    provenance = (SHIPPED_AGENTS / "README.md").read_text(encoding="utf-8")
    for fact in ("9cab433", "config/verdict.yaml", "snakemake --cores 2 --configfile config/verdict.yaml", "seed 1"):
        assert fact in provenance, fact


@pytest.mark.parametrize("algo", ["dqn", "a2c"])
def test_a_shipped_agent_acts_through_the_rollout(algo):
    agent = load_shipped(algo)
    assert agent.settings["algo"] == algo and agent.settings["seed"] == 1
    task = BalancingTask(n_packs=PACKS, **agent.task_kwargs("charge-rest-discharge"))
    task.reset_drawn([np.random.default_rng(seed) for seed in range(PACKS)])
    episode = rollout(task, agent.model, records=True)
    assert (episode.steps > 10).all() and (episode.end["discharged_ah"] > 0).all()
    n_actions = 2**task.params.n_cells
    actions = [record["switches"] for pack in episode.records for record in pack[1:]]
    assert all(0 <= int(np.dot(bits, 2 ** np.arange(len(bits)))) < n_actions for bits in actions)
    assert episode.switch_changes.sum() > 0, "the agent never closed a shunt"
    if reads_action_masks(agent.model):  # DQN's greedy action is a valid one
        assert not any(record["invalid_action"] for pack in episode.records for record in pack[1:])


def test_the_shipped_agents_were_trained_on_todays_cell_tables(tmp_path):
    from bmsrl.ocv import process_ocv_table  # a stage: the tables the workflow's ocv rule makes

    ecm = hashlib.sha256((ROOT / "data" / "ecm_params.csv").read_bytes()).hexdigest()
    process_ocv_table(ROOT / "data" / "ocv_table.csv", tmp_path / "ocv.csv")
    ocv = hashlib.sha256((tmp_path / "ocv.csv").read_bytes()).hexdigest()
    for folder in shipped_agents().values():
        settings = json.loads((folder / RECORD_FILE).read_text())["settings"]
        assert (settings["ecm_table_sha256"], settings["ocv_table_sha256"]) == (ecm, ocv), folder


@pytest.fixture()
def copied(tmp_path, monkeypatch) -> Path:
    """The shipped agents copied to a folder the test may edit, which ``load_shipped`` then reads."""
    folder = tmp_path / "agents"
    shutil.copytree(SHIPPED_AGENTS, folder)
    monkeypatch.setattr(agents, "SHIPPED_AGENTS", folder)
    return folder


def test_a_changed_observation_layout_is_refused_naming_the_record(copied, monkeypatch):
    monkeypatch.setattr(BalancingTask, "obs_size", property(lambda self: 26))
    with pytest.raises(UserError, match=r"observation space \(\d+,\).*a2c_seed1/run_config\.json has \(26,\)"):
        load_shipped("a2c")


def set_recorded_env(copied: Path, agent: str, key: str, value) -> None:
    """Rewrite one env setting of a copied agent's run record."""
    record = copied / agent / RECORD_FILE
    data = json.loads(record.read_text())
    data["settings"]["env"][key] = value
    record.write_text(json.dumps(data))


def test_a_changed_action_layout_is_refused_naming_the_record(copied):
    set_recorded_env(copied, "dqn_seed1", "action_space", "multi_binary")
    with pytest.raises(UserError, match=r"action space Discrete\(32\).*dqn_seed1/run_config\.json has MultiBinary"):
        load_shipped("dqn")


def test_a_record_with_a_setting_today_lacks_is_refused(copied):
    set_recorded_env(copied, "dqn_seed1", "thermal_model", "lumped")
    with pytest.raises(UserError, match=r"dqn_seed1/run_config\.json: env settings \['thermal_model'\]"):
        load_shipped("dqn")


def test_an_unknown_agent_is_one_error():
    with pytest.raises(UserError, match=r"no shipped agent of 'ppo'; the package ships \['a2c', 'dqn'\]"):
        load_shipped("ppo")


def test_git_and_the_package_keep_the_shipped_files():
    files = sorted(p.relative_to(ROOT / "src" / "bmsrl") for p in SHIPPED_AGENTS.rglob("*") if p.is_file())
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["bmsrl"]
    unpackaged = [str(f) for f in files if not any(fnmatch.fnmatch(str(f), p) for p in patterns)]
    assert not unpackaged, f"pyproject.toml's package-data leaves out {unpackaged}"
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [str(SHIPPED_AGENTS / f.relative_to("data/agents")) for f in files]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True, check=False)
    assert ignored.stdout == "", f".gitignore drops shipped agent files:\n{ignored.stdout}"
