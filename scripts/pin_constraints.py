"""Write constraints.txt: the installed version of every distribution ``pip install -e ".[rl,workflow,test,slurm]"`` needs.

    python scripts/pin_constraints.py            # rewrite constraints.txt from this Python's packages
    python scripts/pin_constraints.py --check    # exit 1 if constraints.txt differs from what it would write

The set is the transitive closure of pyproject.toml's dependencies and the ``rl``, ``workflow``,
``test`` and ``slurm`` extras over the *installed* distributions (importlib.metadata), markers evaluated for this Python
and platform, the bmsrl package itself left out. Versions are pinned without a local label
(torch 2.13.0+cpu -> torch==2.13.0), so the pin admits both the CPU wheel of PyTorch's index and
the PyPI wheel. tests/test_constraints.py uses ``resolve`` to check the file.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import platform
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("rl", "workflow", "test", "slurm")


def resolve(
    pyproject: Path = ROOT / "pyproject.toml", extras=EXTRAS
) -> tuple[dict[str, metadata.Distribution], list[tuple[str, Requirement]]]:
    """The project's requirements followed through the installed distributions (importlib.metadata).

    Returns canonical name -> installed distribution of everything they pull in (the project itself
    left out), and every requirement followed on the way as (who requires it, requirement): the
    ones whose markers hold for this Python, this platform and the extras asked for. Raises
    ``LookupError`` naming the first required distribution that is not installed.
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    own = canonicalize_name(project["name"])
    todo = [("pyproject.toml", Requirement(r), "") for r in project["dependencies"]]
    for extra in extras:
        todo += [(f"pyproject.toml [{extra}]", Requirement(r), extra) for r in project["optional-dependencies"][extra]]
    found: dict[str, metadata.Distribution] = {}
    edges: list[tuple[str, Requirement]] = []
    asked: set[tuple[str, str]] = set()  # (name, extra) already expanded
    while todo:
        who, req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name == own:
            continue
        edges.append((who, req))
        if name not in found:
            try:
                found[name] = metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                raise LookupError(f"{req.name} (required by {who} as {req}) is not installed") from None
        dist = found[name]
        for wanted in {""} | set(req.extras):
            if (name, wanted) not in asked:
                asked.add((name, wanted))
                todo += [(f"{dist.name} {dist.version}", Requirement(r), wanted) for r in dist.requires or []]
    return found, edges


def requirement_closure(pyproject: Path = ROOT / "pyproject.toml", extras=EXTRAS) -> dict[str, metadata.Distribution]:
    """Canonical name -> installed distribution, for everything the project's requirements pull in."""
    return resolve(pyproject, extras)[0]


def pinned_version(dist: metadata.Distribution) -> str:
    """The version without its local label: 2.13.0+cpu -> 2.13.0."""
    return Version(dist.version).public


def render(closure: dict[str, metadata.Distribution]) -> str:
    header = [
        '# Exact versions of everything `pip install -e ".[rl,workflow,test,slurm]"` installs: the versions the',
        "# README's results were produced with. Used by the Makefile and .ci/run as",
        "#     pip install -c constraints.txt ...",
        f"# Written by scripts/pin_constraints.py (Python {platform.python_version()}, {sys.platform}, "
        f"{platform.machine()}); checked by tests/test_constraints.py.",
    ]
    lines = [f"{name}=={pinned_version(dist)}" for name, dist in sorted(closure.items())]
    return "\n".join(header + lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    try:
        text = render(requirement_closure())
    except LookupError as exc:
        print(
            f'pin_constraints: {exc}; install the project first: pip install -e ".[rl,workflow,test,slurm]"',
            file=sys.stderr,
        )
        return 2
    if args.check:
        pins = lambda s: [line for line in s.splitlines() if not line.startswith("#")]  # noqa: E731
        same = args.out.is_file() and pins(args.out.read_text()) == pins(text)
        print(f"{args.out}: {'up to date' if same else 'differs from the installed packages'}")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"wrote {args.out} ({sum(not line.startswith('#') for line in text.splitlines())} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
