"""The licence and the citation file agree with pyproject.toml, and the citation invents no DOI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def test_citation_and_licence_agree_with_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["authors"]
    assert cff["version"] == project["version"] and cff["license"] == project["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    (study,) = cff["references"]
    assert study["journal"] == "Results in Engineering" and study["year"] == 2024
    assert "doi" not in study and "DOI unknown" in study["notes"]  # not guessed
    assert study["url"].startswith("https://doaj.org/article/")  # the open-access article one click away
