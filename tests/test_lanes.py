"""The test lanes (docs/workflow.md, "Tests"): a plain `python -m pytest` runs the fast lane only, and
`make test`'s `-m "not slurm"` selects the Snakemake tests too; the selection is pyproject.toml's
addopts plus the `snakemake` marker that tests/conftest.py puts on every test taking `workdir`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collected(*args: str) -> set[str]:
    """Test ids a pytest run with ``args`` would run (collection only, in the repository root)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {line.strip() for line in result.stdout.splitlines() if "::" in line}


#: a module of each kind: Snakemake only (workflow, conda envs), Slurm, and mixed (bad inputs, readme)
MODULES = [
    "tests/test_workflow.py",
    "tests/test_conda_envs.py",
    "tests/test_slurm.py",
    "tests/test_bad_inputs.py",
    "tests/test_readme.py",
]


def test_the_default_lane_starts_no_snakemake_and_make_test_runs_the_rest():
    fast, everything = collected(*MODULES), collected("-m", "not slurm", *MODULES)
    assert fast < everything
    modules = {test.split("::")[0] for test in fast}
    assert not modules & {"tests/test_workflow.py", "tests/test_conda_envs.py", "tests/test_slurm.py"}, modules
    # a workdir test of a module that also has fast tests: deselected by the conftest marker alone
    assert any(
        t.startswith("tests/test_bad_inputs.py::test_snakemake_reads_config_files_like_bmsrl") for t in everything
    )
    assert not any(t.startswith("tests/test_bad_inputs.py::test_snakemake_reads_config_files_like_bmsrl") for t in fast)
    assert any(t.startswith("tests/test_bad_inputs.py::") for t in fast)
    assert any(t.startswith("tests/test_readme.py::test_links_between_documents_resolve") for t in fast)
    assert any(t.startswith("tests/test_workflow.py::test_full_dag_on_the_test_config") for t in everything)
    assert not any(t.startswith("tests/test_slurm.py") for t in everything)
