"""The README and the docs as a user reads them: every `snakemake` command of README.md and docs/*.md,
run as written but as a dry run (`-n`) in a temporary copy of the workflow (a command the docs tell
users to type must at least plan its jobs); targets before `--configfile`/`--config`; every link
between the documents resolves, anchors included; the quick run's job count is the one the README
states."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from workflow_support import ROOT, SNAKEMAKE, run

needs_snakemake = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")

#: the documents a user reads: the README and every page of docs/
DOCUMENTS: tuple[Path, ...] = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


def snakemake_commands(path: Path) -> list[str]:
    """The `snakemake ...` lines inside fenced code blocks of one document (comments stripped,
    continuation lines joined)."""
    commands, in_block, pending = [], False, ""
    for line in path.read_text(encoding="utf-8").splitlines():
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


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for every distinct command, named after the first document that gives it."""
    seen: dict[str, str] = {}
    for path in DOCUMENTS:
        for command in snakemake_commands(path):
            seen.setdefault(command, str(path.relative_to(ROOT)))
    return [(doc, command) for command, doc in seen.items()]


def readme_commands() -> list[str]:
    return snakemake_commands(ROOT / "README.md")


def dry_runnable(command: str) -> bool:
    """Commands that need something a dry run here cannot give: a finished run (--report), a conda
    installation (--conda-create-envs-only, the Slurm profile's conda deployment), a running Slurm
    (--executor slurm), or the user's own OCV file."""
    return not any(
        word in command
        for word in ("--report", "--conda-create-envs-only", "--executor slurm", "my_cell_ocv.csv", "profiles/slurm")
    )


COMMANDS = documented_commands()


def test_the_docs_have_commands_to_check():
    assert len(readme_commands()) >= 4, readme_commands()
    assert len(COMMANDS) >= 20 and sum(dry_runnable(c) for _, c in COMMANDS) >= 15, COMMANDS
    assert {doc for doc, _ in COMMANDS} >= {"README.md", "docs/workflow.md", "docs/results.md", "docs/cluster.md"}


@pytest.mark.parametrize("doc, command", COMMANDS, ids=[f"{d}: {c}" for d, c in COMMANDS])
def test_targets_go_before_configfile_and_config(doc, command):
    """`--configfile` and `--config` take every following word: a target after them is read as a config
    file (a traceback) or a key=value (an error). Every word they take must be one of theirs."""
    words = shlex.split(command)[1:]
    option = None
    for word in words:
        if word.startswith("-"):
            option = word
        elif option == "--configfile":
            assert word.endswith((".yaml", ".yml", ".json")), f"{doc}: {word!r} after --configfile in: {command}"
        elif option == "--config":
            assert "=" in word, f"{doc}: {word!r} after --config in: {command}"


@needs_snakemake
@pytest.mark.parametrize(
    "doc, command",
    [(d, c) for d, c in COMMANDS if dry_runnable(c)],
    ids=[f"{d}: {c}" for d, c in COMMANDS if dry_runnable(c)],
)
def test_documented_snakemake_command_plans(workdir, doc, command):
    args = shlex.split(command)[1:]
    result = run(workdir, "-n", *args)
    assert result.returncode == 0, f"{doc}: {command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    assert "Job stats" in result.stdout + result.stderr or "Nothing to be done" in result.stdout + result.stderr


SLURM_COMMANDS = [(d, c) for d, c in COMMANDS if "profiles/slurm" in c and "--conda-create-envs-only" not in c]


@needs_snakemake
@pytest.mark.parametrize("doc, command", SLURM_COMMANDS, ids=[f"{d}: {c}" for d, c in SLURM_COMMANDS])
def test_documented_slurm_profile_commands_plan_without_conda(workdir, doc, command):
    """The Slurm profile's commands, dry-run without conda as docs/cluster.md says."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    result = run(workdir, "-n", *shlex.split(command)[1:], "--sdm", "env-modules")
    assert result.returncode == 0, f"{doc}: {command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


@needs_snakemake
def test_the_readme_states_the_quick_runs_job_count(workdir):
    stated = re.search(r"its (\d+) jobs", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert stated, "the README no longer states the quick run's job count"
    result = run(workdir, "-n", "--configfile", "config/quick.yaml")
    total = re.search(r"^total\s+(\d+)\s*$", result.stdout + result.stderr, re.MULTILINE)
    assert result.returncode == 0 and total, result.stdout[-2000:] + result.stderr[-2000:]
    assert int(stated[1]) == int(total[1])


# ------------------------------------------------------------------------------------ links
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"^#{1,6} (.+)$", line)):
            found.add(github_anchor(m[1]))
    return found


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)  # not in code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # nor in inline code
    return [a or b for a, b in LINK.findall(text)]


def test_github_anchor():
    assert github_anchor("The study's reward (`reward.kind: study`)") == "the-studys-reward-rewardkind-study"
    assert github_anchor("Set-up and pinned versions") == "set-up-and-pinned-versions"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_documents_resolve(path):
    """Every relative link of README.md and docs/*.md names a file that exists, and its #anchor a
    heading of that file (links to web pages are not followed)."""
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_is_a_signpost():
    """The README stays short: the details live in docs/, each linked from it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 170
    linked = {Path(t.partition("#")[0]).name for t in links(ROOT / "README.md") if t.startswith("docs/")}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def test_the_slurm_profiles_differ_only_in_conda():
    """workflow/profiles/slurm (conda) and slurm-noconda (docs/cluster.md): the same settings but the
    software deployment."""
    profiles = ROOT / "workflow" / "profiles"
    with_conda = yaml.safe_load((profiles / "slurm" / "config.yaml").read_text())
    without = yaml.safe_load((profiles / "slurm-noconda" / "config.yaml").read_text())
    assert with_conda.pop("software-deployment-method") == "conda"
    assert "software-deployment-method" not in without and without == with_conda
