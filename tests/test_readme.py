"""README states figures a new user will see: every result it quotes is the mean ± standard
deviation of the committed study it names, recomputed here from those files."""

from __future__ import annotations

from pathlib import Path

import pytest

from allnc_edu.study import read_studies

ROOT = Path(__file__).resolve().parents[1]
README = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
STUDIES = ROOT / "docs" / "studies"


def _summary(pattern: str) -> dict:
    found = read_studies(sorted(STUDIES.glob(pattern)))
    assert found is not None, pattern
    return found[0]


def _pm(row: dict, key: str) -> str:
    return f"{100 * row[f'{key}_mean']:.1f} ± {100 * row[f'{key}_std']:.1f}%"


@pytest.mark.parametrize("method", ["allnc", "la", "la-2x", "ce"])
def test_the_demo_recipe_numbers_are_the_committed_studys(method) -> None:
    row = _summary("mnist1d-step-ir100-test-aug-60ep-seed*.json")[method]
    assert row["seeds"] == [0, 1, 2]
    assert _pm(row, "accuracy") in README and _pm(row, "minority_accuracy") in README, method


def test_the_geometry_numbers_are_the_committed_studys() -> None:
    summary = _summary("mnist1d-step-ir100-test-aug-60ep-seed*.json")
    allnc, la = summary["allnc"], summary["la"]
    for text in (f"MC_W {allnc['mc_weights_mean']:+.3f}", f"MC_H {allnc['mc_means_mean']:+.3f}",
                 f"MC_W {la['mc_weights_mean']:+.3f}"):  # fmt: skip
        assert text.replace("-", "−") in README, text


def test_the_numbers_without_shifts_are_the_committed_studys() -> None:
    summary = _summary("mnist1d-step-ir100-test-60ep-seed*.json")
    la, allnc = summary["la"]["accuracy_mean"], summary["allnc"]["accuracy_mean"]
    assert f"{100 * la:.1f}% against AllNC's {100 * allnc:.1f}%" in README


def test_the_cifar_numbers_are_the_committed_studys() -> None:
    summary = _summary("cifar10-jpeg-exp-ir100-test-30ep.json")
    allnc, la, la2 = (summary[m] for m in ("allnc", "la", "la-2x"))
    assert allnc["seeds"] == la["seeds"] == la2["seeds"] == [0, 1]
    assert "means of seeds 0 and 1;" in README  # and the numbers below are those means
    pct = {m: [f"{100 * r[k]:.1f}%" for k in ("accuracy_mean", "minority_accuracy_mean")]
           for m, r in (("allnc", allnc), ("la", la), ("la-2x", la2))}  # fmt: skip
    assert f"{pct['allnc'][0]} test accuracy and {pct['allnc'][1]} on" in README
    assert f"logit adjustment's {pct['la'][0]} and {pct['la'][1]}" in README
    assert f"samples, {pct['la-2x'][0]} and {pct['la-2x'][1]};" in README


def test_the_main_jobs_time_is_stated_once_with_its_machine() -> None:
    assert "DEMO_TIME" not in README and "under a minute" not in README
    assert README.count("measured on") >= 1


def test_the_website_states_the_same_time_for_the_main_job() -> None:
    index = " ".join((ROOT / "docs" / "index.md").read_text(encoding="utf-8").split())
    assert "DEMO_TIME" not in index and "under a minute" not in index
    assert "65 s" in index and "65 s wall" in README
