"""The package versions a result depends on, recorded by ``bmsrl record`` and in every training
run's ``run_config.json`` (one list for both)."""

from __future__ import annotations

import platform
from importlib import metadata

#: distributions whose versions a result depends on (``record`` and every training run record them)
PACKAGES = (
    "bmsrl",
    "numpy",
    "scipy",
    "pandas",
    "numba",
    "gymnasium",
    "torch",
    "stable-baselines3",
    "sb3-contrib",
    "matplotlib",
    "snakemake",
    "pyyaml",
    "jsonschema",
)


def package_versions() -> dict[str, str]:
    """Installed version of each of :data:`PACKAGES` (``not installed`` where absent), and Python's."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
