"""Notebook 04 (AllNC restoration): every claim of its prose, on its JSON and the committed studies.

CI runs the SMOKE parameters (runs CE, LA and AllNC; seeds 0 and 1; 20 epochs; shifted signals).
Every claim is checked on the mean over the seeds, with a margin, never on one seed's ordering.
The claims about the committed studies (step and exp profiles, 20 epochs, seeds 0, 1 and 2,
test set, with shifted signals and without augmentation; CE and LA also at AllNC's samples
seen) are checked on their JSON files in docs/studies, which also fix the defaults the prose
states.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _notebooks import run_notebook

from allnc_edu.allnc import AllNCConfig
from allnc_edu.study import read_studies

pytestmark = pytest.mark.notebook
NAME = "04_allnc_restoration"
ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)
PROFILES = ("step", "exp")


def _paths(pattern: str) -> dict[str, list[Path]]:
    """{profile: the committed study files of ``pattern`` (with {p} and {s}), seeds 0-2}."""
    return {p: [ROOT / "docs/studies" / pattern.format(p=p, s=s) for s in SEEDS] for p in PROFILES}


SHIFTED = _paths("mnist1d-{p}-ir100-test-aug-seed{s}.json")  # notebook 04's recipe
STUDIES = _paths("mnist1d-{p}-ir100-test-seed{s}.json")  # no augmentation
#: AllNCConfig fields added after the committed studies without augmentation were run.
ADDED_LATER = {"conventional_loss"}
SAME_BUDGET = _paths("mnist1d-{p}-ir100-test-2x-seed{s}.json")  # no augmentation, CE/LA-2x
ETF = -1 / 9


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return run_notebook(NAME, tmp_path_factory)


@pytest.fixture(scope="module")
def summary(results) -> dict:
    assert len(results["settings"]["seeds"]) >= 2, "claims are checked over at least 2 seeds"
    return results["summary"]


def test_json_holds_every_run_and_samples_seen(results, summary) -> None:
    assert set(summary) == set(results["settings"]["runs"])
    for row in summary.values():
        assert row["samples_seen"] > 0 and len(row["seeds"]) == len(results["settings"]["seeds"])
    assert summary["allnc"]["samples_seen"] == 2 * summary["ce"]["samples_seen"]


def test_allnc_recovers_minority_accuracy_over_ce(summary) -> None:
    allnc, ce = summary["allnc"], summary["ce"]
    assert ce["minority_accuracy_mean"] < 0.1  # "which CE almost never predicts"
    assert allnc["minority_accuracy_mean"] > ce["minority_accuracy_mean"] + 0.1


def test_allnc_is_ahead_of_logit_adjustment_with_shifted_signals(results, summary) -> None:
    assert results["settings"]["augment"] is True
    allnc, la = summary["allnc"], summary["la"]
    assert allnc["accuracy_mean"] > la["accuracy_mean"] + 0.03
    assert allnc["minority_accuracy_mean"] > la["minority_accuracy_mean"] + 0.05


def test_p2p_holds_the_minority_classifiers_apart(summary) -> None:
    assert summary["allnc"]["mc_weights_mean"] == pytest.approx(ETF, abs=0.1)
    assert summary["la"]["mc_weights_mean"] > ETF + 0.2


def _committed(profile: str, studies: dict = STUDIES) -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in studies[profile]]


def _summary(profile: str, *studies: dict) -> dict:
    """The committed studies' runs pooled as the notebook pools them (``study.read_studies``);
    every listed file must exist."""
    paths = [path for st in studies for path in st[profile]]
    assert all(path.is_file() for path in paths), [p for p in paths if not p.is_file()]
    return read_studies(paths)[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_committed_study_without_augmentation_allnc_is_below_la_and_la_2x(profile) -> None:
    """Notebook 04: "Without augmentation AllNC is below both, on both profiles"."""
    s = _summary(profile, STUDIES, SAME_BUDGET)
    assert sorted(s["allnc"]["seeds"]) == sorted(s["la-2x"]["seeds"]) == list(SEEDS)
    assert s["la-2x"]["samples_seen"] == s["allnc"]["samples_seen"]
    for key in ("accuracy_mean", "minority_accuracy_mean"):
        assert s["allnc"][key] < s["la"][key] < s["la-2x"][key]


@pytest.mark.parametrize("profile", PROFILES)
def test_committed_study_with_shifted_signals_allnc_is_ahead_of_la(profile) -> None:
    """Notebook 04: "With shifted signals AllNC is ahead of logit adjustment ... far ahead on
    the step profile, also when LA sees as many samples; on the exponential profile LA-2X comes
    within the seed spread of it"."""
    s = _summary(profile, SHIFTED)
    assert sorted(s["allnc"]["seeds"]) == sorted(s["la-2x"]["seeds"]) == list(SEEDS)
    assert s["la-2x"]["samples_seen"] == s["allnc"]["samples_seen"]
    for key in ("accuracy", "minority_accuracy"):
        allnc, la, la2 = (s[m][f"{key}_mean"] for m in ("allnc", "la", "la-2x"))
        assert allnc > la + 0.05
        if profile == "step":
            assert allnc > la2 + 0.05
        else:
            assert 0 < allnc - la2 < max(s[m][f"{key}_std"] for m in ("allnc", "la-2x"))


@pytest.mark.parametrize("profile", PROFILES)
def test_committed_study_the_shifts_give_allnc_more_than_la(profile) -> None:
    """Notebook 04: "the shifts give AllNC far more than they give logit adjustment"."""
    shifted, plain = _summary(profile, SHIFTED), _summary(profile, STUDIES, SAME_BUDGET)
    gain = {
        m: shifted[m]["accuracy_mean"] - plain[m]["accuracy_mean"] for m in ("la", "la-2x", "allnc")
    }
    assert gain["allnc"] > 0.1 and gain["allnc"] > max(gain["la"], gain["la-2x"]) + 0.1


@pytest.mark.parametrize("profile", PROFILES)
def test_committed_study_uses_the_stated_defaults(profile) -> None:
    defaults = AllNCConfig().as_dict()
    for studies, flag in ((STUDIES, ""), (SHIFTED, " --augment")):
        for seed, record in enumerate(_committed(profile, studies)):
            command = record["command"]
            assert command.startswith(
                f"python -m allnc_edu study --dataset mnist1d --profile {profile}"
            )
            assert f"--seeds {seed} --epochs 20 --split test --weight-decay 0.01" in command
            assert command.endswith(
                f"--no-amp{flag} --json docs/studies/{studies[profile][seed].name}"
            )
            allnc = [run for run in record["runs"] if run["method"] == "allnc"]
            assert allnc and all({**defaults, **run["options"]} == defaults for run in allnc)
            # Fields added after a study ran are absent from it; their defaults are what ran.
            assert all(set(defaults) - set(run["options"]) <= ADDED_LATER for run in allnc)
    # The prose of the notebook states these defaults.
    cfg = AllNCConfig()
    assert (cfg.rebalance_loss, cfg.q, cfg.gamma) == ("la", 0.5, 0.5)
    assert (cfg.lambda_h, cfg.lambda_p, cfg.bn_passes) == (0.1, 0.1, "separate")
    prose = (ROOT / "notebooks/py/04_allnc_restoration.py").read_text(encoding="utf-8")
    assert "q = 0.5, the GBBN exponent\n# is gamma = 0.5, the weights are lambda_h = 0.1" in prose


def test_committed_60_epoch_study_la_catches_up() -> None:
    """Notebook 04: at 60 epochs LA "gains from the shifts too, and AllNC stays ahead of it on
    the step profile but is only level with it on the exponential one (gaps within the seed
    spread), where LA-2X is ahead of both"."""
    long = {
        p: _summary(p, _paths("mnist1d-{p}-ir100-test-aug-60ep-seed{s}.json")) for p in PROFILES
    }
    plain = {p: _summary(p, _paths("mnist1d-{p}-ir100-test-60ep-seed{s}.json")) for p in PROFILES}
    for p in PROFILES:
        assert sorted(long[p]["allnc"]["seeds"]) == list(SEEDS)
        assert long[p]["la"]["accuracy_mean"] > plain[p]["la"]["accuracy_mean"]
    for key in ("accuracy", "minority_accuracy"):
        step, exp = long["step"], long["exp"]
        assert step["allnc"][f"{key}_mean"] > step["la"][f"{key}_mean"]
        gap = abs(exp["allnc"][f"{key}_mean"] - exp["la"][f"{key}_mean"])
        assert gap < min(exp[m][f"{key}_std"] for m in ("allnc", "la"))
        assert exp["la-2x"][f"{key}_mean"] > max(exp[m][f"{key}_mean"] for m in ("allnc", "la"))


def test_committed_study_issue_9_target_as_stated() -> None:
    """Notebook 04: "Issue 9's target, read off the tables with shifted signals"."""
    tables = {(p, 20): _summary(p, SHIFTED) for p in PROFILES} | {
        (p, 60): _summary(p, _paths("mnist1d-{p}-ir100-test-aug-60ep-seed{s}.json"))
        for p in PROFILES
    }
    for (profile, epochs), s in tables.items():
        allnc, la, ce = s["allnc"], s["la"], s["ce"]
        accurate = all(
            allnc[f"{k}_mean"] >= la[f"{k}_mean"] for k in ("accuracy", "minority_accuracy")
        )
        assert accurate is ((profile, epochs) != ("exp", 60))
        assert abs(allnc["mc_weights_mean"] - ETF) < 0.1 and abs(allnc["mc_means_mean"] - ETF) < 0.1
        below_ce = allnc["self_duality_mean"] < ce["self_duality_mean"]
        assert below_ce is ((profile, epochs) == ("exp", 60))
    exp60 = tables["exp", 60]
    assert (
        0 < exp60["la"]["minority_accuracy_mean"] - exp60["allnc"]["minority_accuracy_mean"] < 0.01
    )
