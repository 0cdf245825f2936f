"""CITATION.cff: valid Citation File Format fields for this package and the AllNC paper."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_citation_cites_the_package_and_the_paper() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= cff.keys()
    assert cff["type"] == "software"
    assert cff["version"] == project["version"]
    assert cff["license"] == project["license"]
    assert cff["repository-code"] == project["urls"]["Repository"]
    (paper,) = cff["references"]
    assert paper["title"] == "All-around Neural Collapse for Imbalanced Classification"
    assert [a["family-names"] for a in paper["authors"]] == ["Zhang", "Li", "Geng", "Chen"]
    assert (paper["journal"], paper["volume"], paper["issue"], paper["year"]) == (
        "IEEE Transactions on Knowledge and Data Engineering",
        37,
        8,
        2025,
    )
    assert any("2408.07253" in str(i["value"]) for i in paper["identifiers"])
