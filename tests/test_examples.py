"""The examples a researcher runs first (examples/*.py) run as their docstrings say, in a fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """``python examples/<name> args`` in a fresh process that imports this checkout's package."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_first_look_compares_the_shipped_agent_with_room_balancing(tmp_path):
    figure = tmp_path / "first_look.png"
    result = run_example("first_look.py", "--out", str(figure), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("10 packs, profile charge-rest-discharge"), out
    rows = dict(re.findall(r"^(dqn|room_balancing) +(\d+) +\d+\.\d\d +\d+\.\d$", out, re.MULTILINE))
    assert set(rows) == {"dqn", "room_balancing"} and all(int(mah) > 500 for mah in rows.values()), out
    assert re.search(
        r"^dqn - room_balancing: [+-]\d+\.\d mAh a pack on average \(better on \d+ of 10 packs\)$", out, re.M
    )
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_first_look_refuses_no_packs(tmp_path):
    result = run_example("first_look.py", "--packs", "0", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "--packs must be at least 1, got 0" in result.stderr
