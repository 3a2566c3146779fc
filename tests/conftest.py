"""Fixtures shared by several test modules."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from workflow_support import ROOT


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A temporary copy of the workflow with a ``bmsrl`` shim running this checkout."""
    for name in ("workflow", "config", "data"):
        shutil.copytree(
            (ROOT / name).resolve(), tmp_path / name, symlinks=False, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "envs").mkdir()  # conda: directives point here (checked by --lint, not used without --sdm conda)
    for env in (ROOT / "envs").iterdir():
        shutil.copy2(env, tmp_path / "envs" / env.name)
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "bmsrl"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bmsrl.cli "$@"\n')
    shim.chmod(0o755)
    return tmp_path


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection
def pytest_collection_modifyitems(config, items):
    """Every test that takes the ``workdir`` fixture starts Snakemake (a dry run, lint, the ocv stage,
    or the whole DAG): mark it ``snakemake``, so the default lane (pyproject.toml's ``addopts``) skips it
    and ``make test`` runs it. One rule here instead of a decorator on each of them."""
    for item in items:
        if "workdir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.snakemake)
