"""docs/workflow.md's Python snippet ("A trained agent in Python, on your own load profile", linked from the README) runs as written:
in a folder laid out as after `make quick`, with a PPO trained for a few thousand steps."""

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


def snippet() -> str:
    """The python block after the marker comment of docs/workflow.md."""
    text = (ROOT / "docs" / "workflow.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- tests/test_readme_snippet\.py .*?-->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/workflow.md lost its trained-agent snippet"
    return match[1]


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
