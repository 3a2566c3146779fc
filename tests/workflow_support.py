"""Helpers shared by the workflow tests (test_workflow.py, test_slurm.py); the ``workdir`` fixture
that goes with them is in conftest.py.

Every snakemake run happens in a subprocess inside a temporary copy of the repository's
``workflow/``, ``config/`` and ``data/`` (the ``workdir`` fixture), with a ``bmsrl`` shim first on PATH
that runs this checkout's ``src/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake")
TRACE_PLOTS = ["soc", "switching", "voltage", "current"]


def snakemake_env(workdir: Path) -> dict[str, str]:
    """The environment of a snakemake run in ``workdir``: the shim first on PATH, this checkout's src/."""
    env = dict(os.environ)
    env["PATH"] = f"{workdir / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.pop("BMSRL_SOURCE", None)
    return env


def run(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``snakemake ARGS`` in ``workdir``."""
    return subprocess.run(
        [SNAKEMAKE, *args],
        check=False,
        cwd=workdir,
        env=snakemake_env(workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"%PDF"), path
    assert b"%%EOF" in data[-1024:], path


def benchmark(name: str):
    """The module of ``benchmarks/<name>.py``, imported as when it runs: its folder on ``sys.path``
    (a benchmark may import its sibling) and registered under its name (a dataclass looks its module up)."""
    import importlib.util
    import sys

    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
