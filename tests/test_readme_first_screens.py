"""README.md's first screens as a new user runs them: every command of the "Quick start" section's
shell blocks, parsed from README.md (a README edit that breaks a command fails here), in order, in a
temporary clone of this working tree, each in a new shell with a clean environment (PATH without
any venv; once the README says to activate `.venv`, every later shell does so first, as the README
tells the user). Each command must exit 0 and produce what the README says; no command may delete
or rewrite the quick run's outputs, and nothing may land in the study's `results/`.

What stands in for a step (printed by the test, with the reason):

- `make setup` (the first half of `make quick`) would download and install ~2 GB of packages: the
  clone's `.venv` is a venv layered on the one running these tests (its site-packages and console
  scripts, the clone's `src/` first), marked as set up, so `make quick` goes straight to the run.
- `make test` is the suite this test belongs to: not run again from inside it.
- `tensorboard --logdir DIR` serves a web page until stopped: `tensorboard --help` runs instead and
  DIR must hold the training's event files.
- a command whose comment says it takes hours runs as a dry run (`-n`): it must plan its jobs.

Measured with `time python -m pytest tests/test_readme_first_screens.py -m workflow` (module
docstring of tests/test_workflow.py says why this lane is separate).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

from workflow_support import ROOT

README = ROOT / "README.md"
SECTION = "## Quick start"
#: commands that are not run as written, and why (the module docstring says what runs instead)
RECURSIVE = {"make test": "the test suite this test is part of: not run again from inside it"}
SERVER = "tensorboard"  # serves a web page until stopped
HOURS = re.compile(r"\(hours\)")  # a comment that says the command runs for hours
ACTIVATE = re.compile(r"^(\.|source)\s+\S*activate$")
#: what each fenced line's comment may say the command puts on PATH
ON_PATH = re.compile(r"puts (.+?) on PATH")


# ---------------------------------------------------------------------------------- the README
def first_screen_commands(text: str | None = None) -> list[tuple[str, str]]:
    """(command, comment) for every line of the shell blocks in the README's "Quick start" section."""
    text = README.read_text(encoding="utf-8") if text is None else text
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else None]
    commands = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = re.match(r"(.*?)\s+#\s+(.*)$", line.strip())
            command, comment = (match[1], match[2]) if match else (line.strip(), "")
            commands.append((command, comment))
    return commands


def results_table_files(text: str, root: str) -> list[str]:
    """The files of the README's "Where the results land" table (its first column), under ``root``
    instead of ``results`` (the README: the quick run's files are the same under its results root).
    A bare name after a path is a sibling of that path; a ``*`` is a glob."""
    section = text[text.index("## Where the results land") :]
    files = []
    for row in re.findall(r"^\| (`results/.*?) \|", section, re.MULTILINE):
        folder = ""
        for name in re.findall(r"`([^`]+)`", row):
            if "/" in name:
                folder = name.rsplit("/", 1)[0]
                files.append(name)
            else:
                files.append(f"{folder}/{name}")
    return [root + f.removeprefix("results") for f in files]


def snakemake_targets(command: str) -> list[str]:
    """The files a ``snakemake`` command asks for: the words before its first option, and --report's."""
    words = shlex.split(command)[1:]
    targets = []
    for i, word in enumerate(words):
        if word == "--report":
            targets.append(words[i + 1])
        elif word.startswith("-"):
            break
        else:
            targets.append(word)
    return [t for t in targets if "/" in t or "." in t]


def test_the_first_screens_parse():
    """The parser finds the set-up, the activation and the follow-ups, a target in each follow-up;
    the comment-splitting keeps a `#` inside a command."""
    commands = [c for c, _ in first_screen_commands()]
    assert commands[:2] == ["make quick", ". .venv/bin/activate"], commands
    follow_ups = [c for c in commands if c.startswith("snakemake")]
    assert len(follow_ups) >= 3 and all("--configfile" in c for c in follow_ups), follow_ups
    assert any(SERVER in c for c in commands)
    text = "## Quick start\n```bash\nmake quick   # set up\necho a#b  # says a#b\n```\n## Next\n```bash\nls\n```\n"
    assert first_screen_commands(text) == [("make quick", "set up"), ("echo a#b", "says a#b")]
    assert results_table_files(README.read_text(encoding="utf-8"), "rq")[:2] == [
        "rq/tables/summary.md",
        "rq/tables/summary.html",
    ]


# ------------------------------------------------------------------------- the clone and its venv
def clone_working_tree(to: Path) -> Path:
    """``git clone`` of this repository, then the working tree's uncommitted and untracked (not ignored)
    files on top: the repository as it is now, without its results, venv or caches."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(to)], check=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, to / name
        if not source.exists() and not source.is_symlink():  # deleted in the working tree
            target.unlink(missing_ok=True)
            continue
        if source.is_dir() and not source.is_symlink():  # a submodule or nested repository: not ours
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        shutil.copy2(source, target, follow_symlinks=False)
    return to


def layered_venv(clone: Path) -> None:
    """A ``.venv`` in ``clone`` that stands in for ``make setup``: the packages of the environment
    running this test (a ``.pth`` line), the clone's ``src/`` before them, its console scripts
    (snakemake, bmsrl, tensorboard, ...) re-pointed at the new interpreter, and the stamp that tells
    make it is set up (newer than pyproject.toml and constraints.txt)."""
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    paths = sysconfig.get_paths()
    (site / "00_bmsrl_clone_src.pth").write_text(f"{clone / 'src'}\n")
    (site / "zz_layered_on.pth").write_text(
        "".join(f"{p}\n" for p in dict.fromkeys((paths["purelib"], paths["platlib"])))
    )
    for script in Path(paths["scripts"]).iterdir():
        target = venv / "bin" / script.name
        if target.exists() or script.is_symlink() or not script.is_file():
            continue
        try:
            first, rest = script.read_text(encoding="utf-8").split("\n", 1)
        except (UnicodeDecodeError, ValueError):
            continue
        if first.startswith("#!") and "python" in first:
            target.write_text(f"#!{python}\n{rest}", encoding="utf-8")
            target.chmod(0o755)
    hour_ago = time.time() - 3600
    for name in ("pyproject.toml", "constraints.txt"):
        os.utime(clone / name, (hour_ago, hour_ago))
    (venv / ".setup-done").touch()


def clean_environment(home: Path) -> dict[str, str]:
    """A new login's environment: the system PATH (no venv on it), no PYTHONPATH or VIRTUAL_ENV."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb"}
    for name in ("TMPDIR", "OMP_NUM_THREADS"):  # the machine's scratch folder and thread limit
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def files_of(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------- the test
@pytest.mark.workflow
def test_the_readmes_first_screens_work_in_order_in_a_new_shell(tmp_path):
    readme = README.read_text(encoding="utf-8")
    commands = first_screen_commands(readme)
    clone = clone_working_tree(tmp_path / "clone")
    layered_venv(clone)
    quick_root = yaml.safe_load((clone / "config" / "quick.yaml").read_text())["results_root"]
    quick = clone / quick_root
    home = tmp_path / "home"
    home.mkdir()
    # matplotlib and numba caches: keep the user's (a new user's would be empty: slower, same result)
    env = clean_environment(Path(os.environ.get("HOME", home)))
    activation = None
    timings = []

    def shell(command: str, timeout: float) -> subprocess.CompletedProcess:
        script = f"{activation}\n{command}" if activation else command
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-eu", "-o", "pipefail", "-c", script],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        timings.append((command, time.monotonic() - started))
        output = (result.stdout + result.stderr)[-4000:]
        assert result.returncode == 0, f"README command `{command}` exited {result.returncode}:\n{output}"
        return result

    for command, comment in commands:
        before = files_of(quick) if quick.is_dir() else {}
        targets: list[str] = []
        if command in RECURSIVE:
            print(f"not run: `{command}`: {RECURSIVE[command]}")
            continue
        if ACTIVATE.match(command):
            activation = command
            named = ON_PATH.search(comment)
            assert named, f"README: the activation's comment no longer says what it puts on PATH: {comment!r}"
            tools = re.split(r",\s*|\s+and\s+", named[1])
            found = shell(" && ".join(f"command -v {t}" for t in tools), 30).stdout.split()
            assert found == [str(clone / ".venv" / "bin" / t) for t in tools], (tools, found)
            continue
        if command.startswith(SERVER):
            logdir = Path(clone, shlex.split(command)[shlex.split(command).index("--logdir") + 1])
            print(f"instead of `{command}` (serves a web page until stopped): `{SERVER} --help`")
            assert "--logdir" in shell(f"{SERVER} --help", 120).stdout
            events = sorted(logdir.rglob("events.out.tfevents.*"))
            assert events, f"`{command}`: {logdir} holds no TensorBoard event files"
        elif HOURS.search(comment):
            print(f"dry run of `{command}` (its comment: {comment!r})")
            plan = shell(f"{command} -n", 600).stdout
            assert re.search(r"^total\s+\d+", plan, re.MULTILINE), f"`{command} -n` planned nothing:\n{plan[-2000:]}"
        else:
            shell(command, 1800)
            if command.startswith("snakemake"):
                targets = snakemake_targets(command)
                assert targets, f"`{command}`: no target to check"
        for target in targets:
            path = clone / target
            assert path.is_file() and path.stat().st_size > 0, f"`{command}` did not make {target}"
            magic = {".pdf": b"%PDF", ".gif": b"GIF8", ".html": b"<"}.get(path.suffix)
            assert magic is None or path.read_bytes().lstrip()[: len(magic)] == magic, f"{target} is no {path.suffix}"
        after = files_of(quick) if quick.is_dir() else {}
        touched = [f for f, mtime in before.items() if after.get(f) != mtime and f"{quick_root}/{f}" not in targets]
        assert not touched, f"`{command}` deleted or rewrote outputs of the quick run: {touched[:10]}"
        if command == "make quick":
            assert quick.is_dir(), f"make quick wrote nothing to {quick_root}/ (config/quick.yaml's results_root)"
        if results_root(clone, command) == quick_root:  # the study's folder is not the quick run's business
            assert not (clone / "results").exists(), f"`{command}` (a quick-run command) wrote into results/"
    print("\n".join(f"{seconds:7.1f} s  {command}" for command, seconds in timings))

    missing = [f for f in results_table_files(readme, quick_root) if not list(clone.glob(f))]
    assert not missing, f"the README's results table names files the quick run did not make: {missing}"


def results_root(clone: Path, command: str) -> str | None:
    """The results folder of the run ``command`` belongs to (its config file's ``results_root``, default
    ``results``; ``make quick``: config/quick.yaml's); None for a command of no run."""
    words = shlex.split(command)
    if words[:2] == ["make", "quick"]:
        configfile = "config/quick.yaml"
    elif words[:1] == ["snakemake"]:
        configfile = words[words.index("--configfile") + 1] if "--configfile" in words else "config/config.yaml"
    else:
        return None
    return (yaml.safe_load((clone / configfile).read_text()) or {}).get("results_root", "results")
