"""Notebook 05 (long-tailed benchmark and the closing synthesis), SMOKE mode on the CPU: every
method trained, finite numbers, accuracies in [0, 1], the stand-in data set named as such, the
exercises "not attempted" in the student run, and every claim of the synthesis's prose checked
on the correlations and contrasts the notebook wrote (over whatever study records exist in
docs/studies: the claims must hold as records are added)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest
from _notebooks import run_notebook

from allnc_edu import synthesis

pytestmark = pytest.mark.notebook
NAME = "05_long_tailed_benchmark"
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks/py" / f"{NAME}.py"
METHODS = ["ce", "la", "ldam-drw", "etf-dr", "allnc"]
FIELDS = ("accuracy", "minority_accuracy", "nc1", "self_duality", "mc_weights", "mc_means")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return run_notebook(NAME, tmp_path_factory)


@pytest.fixture(scope="module")
def committed(results) -> dict:
    """The synthesis over the study records in docs/studies (what the prose's claims are on)."""
    return results["_synthesis"]["records"]


def _prose() -> str:
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    return re.sub(r"\s+", " ", " ".join(line[2:] for line in lines if line.startswith("# ")))


def _by_pair(table: list[dict]) -> dict[tuple[str, str], dict]:
    return {(c["metric"], c["outcome"]): c for c in table}


def test_every_method_has_finite_numbers(results):
    assert set(results) == {*METHODS, "_meta", "_synthesis", "_cifar", "verdicts"}
    for name in METHODS:
        for field in FIELDS:
            value = results[name][field]
            assert value is not None and math.isfinite(value), (name, field)
        for field in ("accuracy", "minority_accuracy"):
            assert 0.0 <= results[name][field] <= 1.0, (name, field)
        assert results[name]["epochs"] == results["_meta"]["epochs"]


def test_cpu_runs_the_mnist1d_stand_in(results):
    meta = results["_meta"]
    assert meta["smoke"] is True and meta["device"]
    assert meta["dataset"] == "mnist1d" and meta["real_benchmark"] is False  # no CIFAR here


def test_minority_is_the_smaller_half(results):
    counts, minority = results["_meta"]["counts"], results["_meta"]["minority"]
    k = len(counts)
    assert len(minority) == k - k // 2
    assert max(counts[c] for c in minority) <= min(counts[c] for c in range(k) if c not in minority)


def test_shot_groups_follow_the_stated_edges(results):
    """ "many-shot classes more than 100, medium-shot 20 to 100 (both ends included), few-shot
    fewer than 20"."""
    counts, groups = results["_meta"]["counts"], results["_meta"]["shot_groups"]
    assert groups["many"] == [k for k, n in enumerate(counts) if n > 100]
    assert groups["medium"] == [k for k, n in enumerate(counts) if 20 <= n <= 100]
    assert groups["few"] == [k for k, n in enumerate(counts) if n < 20]


def test_etf_classifier_stays_an_etf(results):
    k = len(results["_meta"]["counts"])
    assert results["etf-dr"]["mc_weights"] == pytest.approx(-1 / (k - 1), abs=1e-4)


def test_student_run_reports_every_exercise_not_attempted(results):
    verdicts = {v["id"]: v["verdict"] for v in results["verdicts"]}
    assert verdicts == dict.fromkeys(["05-cifar-lt-size", "05-shot-groups", "05-predict-groups"])


def test_synthesis_reads_every_study_record_there_is(results, committed):
    records = sorted((ROOT / "docs/studies").glob("*.json"))
    assert committed["points"] == synthesis.read_points(records)
    settings = {p["setting"] for p in committed["points"]}
    assert any(s.startswith("MNIST-1D, step") for s in settings)
    assert any(s.startswith("MNIST-1D, exp") for s in settings)
    assert any(s.startswith("CIFAR-10-LT") for s in settings)
    # SMOKE leaves this notebook's tiny runs out, and notebook 04's results are not there
    pooled = results["_synthesis"]["pooled"]
    assert pooled["points"] == committed["points"]
    assert pooled["correlations"] == committed["correlations"]


@pytest.mark.parametrize("outcome", synthesis.OUTCOMES)
def test_class_mean_geometry_goes_with_accuracy_across_methods(committed, outcome):
    """ "the runs whose centred minority means are less squeezed than their setting's average
    (lower MC_H) and whose classes are tighter (lower NC1) tended to be more accurate, overall
    and on the minority classes, with the same sign in every seed. The classifier's squeeze,
    MC_W, predicts less than MC_H does." """
    table = _by_pair(committed["correlations"])
    for metric in ("mc_means", "nc1"):
        c = table[metric, outcome]
        assert c["r"] < -0.3 and len(c["per_seed"]) >= 3
        assert all(row["r"] < 0 for row in c["per_seed"]), (metric, outcome)
    assert abs(table["mc_weights", outcome]["r"]) < abs(table["mc_means", outcome]["r"])


@pytest.mark.parametrize("outcome", synthesis.OUTCOMES)
def test_self_duality_goes_the_wrong_way(committed, outcome):
    """ "The self-duality gap goes the wrong way: the runs further from self-duality than the
    other methods of their setting were more accurate"."""
    c = _by_pair(committed["correlations"])["self_duality", outcome]
    assert c["r"] > 0.3 and all(row["r"] > 0 for row in c["per_seed"])


@pytest.mark.parametrize("outcome", synthesis.OUTCOMES)
def test_across_seeds_the_correlations_are_weaker(committed, outcome):
    """ "Across seeds of one method every correlation is weaker than across methods, and MC_W's
    interval includes 0"."""
    table = _by_pair(committed["correlations"])
    for metric in synthesis.GEOMETRY:
        c = table[metric, outcome]
        assert abs(c["seed_r"]) < abs(c["r"]), metric
    low, high = table["mc_weights", outcome]["seed_interval"]
    assert low < 0 < high


def test_logit_adjustment_contrast(committed):
    """ "logit adjustment keeps minority classifiers as squeezed as CE's or more in some
    settings, in some the most squeezed of all methods, and recognises the minority classes far
    better than CE in every setting"; takeaway: "in several its minority classifiers stay as
    squeezed as CE's or more"."""
    lc = committed["contrasts"]["la_vs_ce"]
    assert len(lc["rows"]) >= 5 and lc["la_more_accurate"] == len(lc["rows"])
    assert lc["gain_min"] > 0.15  # "far better", in every setting
    assert lc["la_as_squeezed"] >= 3 and lc["la_most_squeezed"] >= 2


def test_ce_near_the_etf_on_the_exponential_profile(committed):
    """ "on MNIST-1D's exponential profile CE's MC_W and MC_H sit within 0.1 of the ETF value
    while its minority accuracy stays more than 20 points below logit adjustment's"."""
    near = committed["contrasts"]["ce_near_etf"]
    rows = {r["setting"]: r for r in committed["contrasts"]["la_vs_ce"]["rows"]}
    exp_settings = [s for s in rows if s.startswith("MNIST-1D, exp,")]
    assert set(exp_settings) <= set(near["settings"]) and len(exp_settings) >= 4
    for setting in exp_settings:
        ce, la = rows[setting]["methods"]["ce"], rows[setting]["methods"]["la"]
        assert la["minority_accuracy"] - ce["minority_accuracy"] > 0.2, setting


def test_quoted_validation_numbers_match_method_md():
    """ "GBBN alone ... was 3.1 points ahead of full AllNC on the step profile and 5.4 behind on
    the exponential one, while AllNC without GBBN lost the step profile's minority digits"."""
    text = (ROOT / "docs/method.md").read_text(encoding="utf-8")

    def row(label: str) -> tuple[float, float]:
        found = re.search(
            rf"^\| {re.escape(label)} \| ([\d.]+) ± [\d.]+% \| ([\d.]+) ±", text, re.M
        )
        assert found, label
        return float(found[1]), float(found[2])

    gbbn = "AllNC without HyCon and P2P (GBBN alone)"
    assert round(row(f"step: {gbbn}")[0] - row("step: AllNC")[0], 1) == 3.1
    assert round(row("exp: AllNC")[0] - row(f"exp: {gbbn}")[0], 1) == 5.4
    assert row("step: AllNC without GBBN")[1] == 0.0
    prose = _prose()
    assert "3.1 points ahead of full AllNC on the step profile and 5.4 behind" in prose


def test_the_cifar_tables_show_what_the_committed_records_hold(results):
    """Each schedule's table is the summary of its record files, every seed pooled."""
    from allnc_edu.study import read_studies

    shown = results["_cifar"]
    for name, pattern in (("5 epochs", "5ep*"), ("30 epochs", "30ep*")):
        paths = sorted((ROOT / "docs/studies").glob(f"cifar10-jpeg-exp-ir100-test-{pattern}.json"))
        if not paths:
            assert name not in shown
            continue
        summary = read_studies(paths)[0]
        assert set(shown[name]) == set(summary) & {"ce", "la", "la-2x", "allnc"}
        for method, row in shown[name].items():
            assert row["accuracy_mean"] == pytest.approx(summary[method]["accuracy_mean"])
            assert row["seeds"] == summary[method]["seeds"]
    assert shown["5 epochs"]["allnc"]["seeds"] == [0, 1]  # both seeds of every 5-epoch file


def test_the_lesson_around_the_notebook():
    prose = _prose()
    lower = prose.lower()
    for word in ("issue", "the old recipe", "for the tests", "lab log", "committed stud"):
        assert word not in lower, word
    source = SOURCE.read_text(encoding="utf-8")
    first_use = source.index("experiments.compare_methods(")
    for term in ("[LDAM-DRW](", "[Shot groups](", "[logit adjustment](", "*deferred"):
        assert source.index(term) < first_use, term  # defined before it is used
    assert source.index("## How to read a long-tail results table") < source.index(
        "report.results_table("
    )
    assert source.index("## Does geometry predict accuracy?") > source.index("reference_table(")
    for folder in ("notebooks", "notebooks/solutions"):
        nb = nbformat.read(ROOT / folder / f"{NAME}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "for-tests" in code[0].metadata.get("tags", [])
        assert "RESULTS_PATH" in code[-1].source and "for-tests" in code[-1].metadata["tags"]
        markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        titles = ("**Learning objectives.**", "**Prerequisites.**", "**Time.**",
                  "## Key takeaways", "## Questionnaire", "## References",
                  "**What the numbers support.**", "**What they do not support.**")  # fmt: skip
        for title in titles:
            assert title in markdown, title
