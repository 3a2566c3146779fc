"""constraints.txt pins what a reproduction installs, and the Makefile and CI install with it.

The set to pin is the transitive closure of pyproject.toml's dependencies and its rl, workflow,
test and slurm extras over the installed distributions (``scripts/pin_constraints.py``'s ``resolve``).
A distribution that some installed distribution requires with an exact ``==`` version (the CUDA
build of torch pins its nvidia-* packages so) is pinned already and may be left out.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"

_spec = importlib.util.spec_from_file_location("pin_constraints", ROOT / "scripts" / "pin_constraints.py")
pin_constraints = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin_constraints)


def read_pins(path: Path) -> dict[str, Version]:
    """Canonical name -> version of every ``name==version`` line; ValueError for any other line."""
    pins: dict[str, Version] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        clauses = list(req.specifier)
        if len(clauses) != 1 or clauses[0].operator != "==" or "*" in clauses[0].version or req.marker:
            raise ValueError(f"{path.name}:{number}: {line!r} is not an exact pin name==version")
        name = canonicalize_name(req.name)
        if name in pins:
            raise ValueError(f"{path.name}:{number}: {req.name} is pinned twice")
        pins[name] = Version(clauses[0].version)
    return pins


def constraint_problems(pins: dict[str, Version], closure, edges) -> list[str]:
    """What constraints.txt (as ``pins``) gets wrong about ``pin_constraints.resolve()``'s answer:
    missing pins, pins of what nothing requires, pins outside a range some requirement asks for."""
    problems = []
    exact = {
        canonicalize_name(req.name)
        for _, req in edges
        if len(req.specifier) == 1
        and next(iter(req.specifier)).operator == "=="
        and "*" not in next(iter(req.specifier)).version
    }
    for name, dist in sorted(closure.items()):
        if name not in pins and name not in exact:
            problems.append(f"{name} ({dist.version} installed) is not pinned")
    for name in sorted(pins.keys() - closure.keys()):
        problems.append(f"{name}=={pins[name]} is pinned, but nothing the project installs requires it")
    for who, req in edges:
        name = canonicalize_name(req.name)
        if name in pins and not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{name}=={pins[name]} does not satisfy {who}'s {req}")
    return problems


def test_constraints_pin_everything_the_project_installs():
    """Every distribution pyproject.toml's requirements pull in is pinned, the pins satisfy every
    range on the way, and nothing else is pinned (so the file cannot go stale silently)."""
    closure, edges = pin_constraints.resolve()
    assert {"torch", "stable-baselines3", "snakemake", "pytest", "numpy"} <= closure.keys()  # not vacuous
    problems = constraint_problems(read_pins(CONSTRAINTS), closure, edges)
    assert not problems, "\n".join(["constraints.txt:", *problems, "rewrite it: python scripts/pin_constraints.py"])


@pytest.mark.skipif(os.environ.get("BMSRL_PINNED") != "1", reason="set by `make test` (after installing the pins)")
def test_installed_versions_are_the_pinned_ones():
    """The environment `make test` runs the tests in is the pinned one."""
    pins = read_pins(CONSTRAINTS)
    closure = pin_constraints.requirement_closure()
    differ = {
        n: (d.version, str(pins[n]))
        for n, d in closure.items()
        if n in pins and Version(Version(d.version).public) != pins[n]
    }
    assert not differ, f"installed vs pinned: {differ}"


@pytest.mark.parametrize(
    "edit, expected",
    [
        pytest.param(lambda pins: pins.pop("scipy"), "scipy (", id="missing-pin"),
        pytest.param(
            lambda pins: pins.update(requests=Version("2.0")), "requests==2.0 does not satisfy", id="conflict"
        ),
        pytest.param(
            lambda pins: pins.update(numpy=Version("1.20")),
            "numpy==1.20 does not satisfy pyproject.toml's numpy>=1.26",
            id="below-pyproject-floor",
        ),
        pytest.param(lambda pins: pins.update(awscli=Version("1.0")), "awscli==1.0 is pinned, but nothing", id="stale"),
    ],
)
def test_the_check_fails_on_a_bad_pin(edit, expected):
    closure, edges = pin_constraints.resolve()
    pins = {name: Version(Version(dist.version).public) for name, dist in closure.items()}
    assert not constraint_problems(pins, closure, edges)
    edit(pins)
    problems = constraint_problems(pins, closure, edges)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize("line", ["numpy>=2.4", "numpy==2.*", "numpy", "torch==2.13.0; sys_platform == 'linux'"])
def test_a_line_that_is_not_an_exact_pin_is_one_error(tmp_path, line):
    (tmp_path / "c.txt").write_text(f"# header\nscipy==1.17.1\n{line}\n")
    with pytest.raises(ValueError, match=r"c\.txt:3: .* is not an exact pin name==version"):
        read_pins(tmp_path / "c.txt")


def test_a_twice_pinned_distribution_is_one_error(tmp_path):
    (tmp_path / "c.txt").write_text("PyYAML==6.0.3\npyyaml==6.0.3\n")
    with pytest.raises(ValueError, match=r"c\.txt:2: pyyaml is pinned twice"):
        read_pins(tmp_path / "c.txt")


# -------------------------------------------------------------- the set-up uses the constraints
def _make_n(*args: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    own = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON", "VENV", "TORCH_INDEX_URL", "PYTEST_ARGS", "SNAKEMAKE_ARGS")
    env = {k: v for k, v in os.environ.items() if k not in own}  # as if not run by `make test PYTEST_ARGS=...`
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_make_setup_installs_pinned_torch_first_then_the_package(tmp_path):
    venv = tmp_path / "venv"  # a path that has no set-up stamp, so make plans the whole set-up
    lines = [line for line in _make_n("setup", f"VENV={venv}") if " -m pip install " in line]
    torch = f"torch=={read_pins(CONSTRAINTS)['torch']}"
    assert len(lines) == 2, lines
    # default (auto): the index scripts/torch_index.py picks (the CPU-only one where reachable, else PyPI)
    assert lines[0].startswith(f"{venv}/bin/python -m pip install -c constraints.txt --no-deps ") and torch in lines[0]
    assert '${index:+--index-url "$index"}' in lines[0]
    assert any(f"{venv}/bin/python scripts/torch_index.py" in line for line in _make_n("setup", f"VENV={venv}"))
    assert lines[1] == f'{venv}/bin/python -m pip install -c constraints.txt -e ".[rl,workflow]"'  # no test extras
    cpu = "https://download.pytorch.org/whl/cpu"
    lines = [line for line in _make_n("setup", f"VENV={venv}", f"TORCH_INDEX_URL={cpu}") if " -m pip install " in line]
    assert f"--index-url {cpu}" in lines[0] and "index-url" not in lines[1]
    lines = [line for line in _make_n("setup", f"VENV={venv}", "TORCH_INDEX_URL=") if " -m pip install " in line]
    assert "index" not in lines[0]  # empty: PyPI


def test_only_make_test_installs_the_test_extras(tmp_path):
    venv = tmp_path / "venv"
    quick = [line for line in _make_n("quick", f"VENV={venv}") if " -m pip install " in line]
    assert quick[-1] == f'{venv}/bin/python -m pip install -c constraints.txt -e ".[rl,workflow]"'
    assert not any(".[" in line and ("test" in line.split(".[")[1]) for line in quick)
    test = [line for line in _make_n("test", f"VENV={venv}") if " -m pip install " in line]
    assert test[-1] == f'{venv}/bin/python -m pip install -c constraints.txt -e ".[rl,workflow,test,slurm]"'


def test_torch_index_prefers_the_cpu_build_on_linux_and_says_which():
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_index", ROOT / "scripts" / "torch_index.py")
    torch_index = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(torch_index)
    index, said = torch_index.choose("Linux", lambda: None)
    assert index == torch_index.CPU_INDEX and "CPU-only build" in said
    index, said = torch_index.choose("Linux", lambda: "timed out")
    assert index == "" and "PyPI's build, the CUDA one" in said and "timed out" in said
    index, said = torch_index.choose("Darwin", lambda: pytest.fail("macOS needs no probe"))
    assert index == "" and "CPU build" in said


def test_make_test_runs_both_lanes(tmp_path):
    """`make test` (the README's test command, what CI runs) selects everything but Slurm, overriding the
    fast default lane of pyproject.toml's addopts, which skips the Snakemake tests."""
    lines = _make_n("test", f"VENV={tmp_path / 'venv'}")
    assert lines[-1].strip() == f'{tmp_path / "venv"}/bin/python -m pytest -m "not slurm"'
    assert _make_n("test", "VENV=", "PYTHON=python3.11")[-1].strip() == 'python3.11 -m pytest -m "not slurm"'
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert '-m "not snakemake and not workflow and not slurm"' in addopts


def test_ci_runs_make_test():
    """CI runs the README's test command as written (and the Slurm test after it)."""
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in commands, commands
    assert re.search(r"^make test-slurm\b", "\n".join(commands), re.MULTILINE), commands
