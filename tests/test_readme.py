"""Every `snakemake` command of the README, run as written but as a dry run (`-n`), in a temporary
copy of the workflow: a command the README tells users to type must at least plan its jobs."""

from __future__ import annotations

import re
import shlex

import pytest
from workflow_support import ROOT, SNAKEMAKE, run

pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")


def readme_commands() -> list[str]:
    """The README's `snakemake ...` lines inside fenced code blocks (comments stripped, continuation
    lines joined)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands, in_block, pending = [], False, ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        if pending or stripped.startswith("snakemake"):
            pending += " " + stripped.removesuffix("\\").strip()
            if not stripped.endswith("\\"):
                commands.append(re.sub(r"\s+#.*$", "", pending).strip())
                pending = ""
    return commands


def dry_runnable(command: str) -> bool:
    """Commands that need something a dry run here cannot give: a finished run (--report), a conda
    installation (--conda-create-envs-only, the Slurm profile's conda deployment), a running Slurm
    (--executor slurm), or the user's own OCV file."""
    return not any(word in command for word in ("--report", "--conda-create-envs-only", "--executor slurm",
                                                "my_cell_ocv.csv", "profiles/slurm"))


def test_the_readme_has_commands_to_check():
    commands = readme_commands()
    assert len(commands) >= 10 and sum(map(dry_runnable, commands)) >= 8, commands


@pytest.mark.parametrize("command", [c for c in readme_commands() if dry_runnable(c)])
def test_readme_snakemake_command_plans(workdir, command):
    args = shlex.split(command)[1:]
    result = run(workdir, "-n", *args)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    assert "Job stats" in result.stdout + result.stderr or "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize("command", [c for c in readme_commands() if "profiles/slurm" in c
                                     and "--conda-create-envs-only" not in c])
def test_readme_slurm_profile_commands_plan_without_conda(workdir, command):
    """The Slurm profile's commands, dry-run without conda as the README's cluster section says."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    result = run(workdir, "-n", *shlex.split(command)[1:], "--sdm", "env-modules")
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
