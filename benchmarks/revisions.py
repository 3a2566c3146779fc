"""The revisions a benchmark times side by side: this checkout's ``src`` and, with ``--compare-src DIR``,
another revision's (``git archive REV src | tar -x -C /tmp/before``: DIR is /tmp/before/src).

Shared by ``benchmarks/eval_throughput.py`` and ``benchmarks/env_throughput.py``: each case runs as a
subprocess whose environment puts one revision's ``src`` on ``PYTHONPATH`` (one torch and numba
thread, ``OMP_NUM_THREADS=1``), so the same inputs meet each revision's code in the same sitting.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the name of this checkout's revision, and of the one given by ``--compare-src``
THIS, OTHER = "this", "other"


def add_compare_src(parser: argparse.ArgumentParser) -> None:
    """The ``--compare-src DIR`` option."""
    parser.add_argument(
        "--compare-src",
        type=Path,
        metavar="DIR",
        help="src folder of another revision to time beside this one (git archive REV src | tar -x -C /tmp/before: "
        "DIR is /tmp/before/src)",
    )


def revision_envs(compare_src: Path | None) -> dict[str, dict[str, str]]:
    """The environment of a subprocess per revision, :data:`THIS` first, then :data:`OTHER` when
    ``compare_src`` is given; a ``compare_src`` without the ``bmsrl`` package is a ``SystemExit``
    naming it."""
    sources = {THIS: ROOT / "src"}
    if compare_src is not None:
        if not (compare_src / "bmsrl" / "__init__.py").is_file():
            raise SystemExit(
                f"--compare-src {compare_src}: no bmsrl package there (expected {compare_src}/bmsrl/__init__.py; "
                "DIR is the src folder of `git archive REV src | tar -x -C DIR/..`)"
            )
        sources[OTHER] = compare_src.resolve()
    return {name: dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(src)) for name, src in sources.items()}
