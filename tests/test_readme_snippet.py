"""docs/workflow.md's Python snippets (linked from the README) run as written: "A shipped agent in Python"
on the package's shipped DQN, and "A trained agent in Python, on your own load profile" in a folder laid
out as after `make quick`, with a PPO trained for a few thousand steps."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import yaml

from bmsrl.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "training": {
        "n_envs": 8,
        "total_steps": {"ppo": 2000},
        "eval_interval": 1000,
        "eval_episodes": 1,
        "checkpoint_interval": 1000,
        "hyperparams": {"ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 1}},
    },
}


def snippet(which: str = "a briefly trained PPO") -> str:
    """The python block after docs/workflow.md's marker comment that names ``which``."""
    text = (ROOT / "docs" / "workflow.md").read_text(encoding="utf-8")
    marker = r"<!-- tests/test_readme_snippet\.py runs this block as written \(" + re.escape(which) + r"\) -->"
    match = re.search(marker + r"\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"docs/workflow.md lost its snippet ({which})"
    return match[1]


def test_the_shipped_agent_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # needs nothing from the repository but the package
    script = tmp_path / "shipped.py"
    script.write_text(snippet("the shipped agent"))
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert re.fullmatch(r"\d+ mAh delivered, \d+ switch changes\n", printed), printed
    assert int(printed.split()[0]) > 500 and int(printed.split()[3]) > 0  # it discharged the pack, it balanced


def test_the_trained_agent_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    run = tmp_path / "results-quick"
    (run / "run").mkdir(parents=True)
    (run / "run" / "config.yaml").write_text(yaml.safe_dump(TINY))
    cfg = run / "run" / "config.yaml"
    out = run / "checkpoints" / "ppo_seed1"
    assert main(["train", "--config", str(cfg), "--algo", "ppo", "--seed", "1", "--out", str(out)]) == 0
    (tmp_path / "my_cycle.csv").write_text("time_s,current_a\n0,-2.0\n3000,0\n3100,2.0\n9000,0\n")
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "snippet.py"
    script.write_text(snippet())
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert re.fullmatch(r"\d+ mAh delivered, \d+\.\d\d Wh bled\n", printed), printed
    assert int(printed.split()[0]) > 500  # the user's profile discharged the pack
