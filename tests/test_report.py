"""The HTML report and ``python -m allnc_edu demo``: self-contained page, one 3D scene per method,
the results table, the JSON of numbers, and findings that follow the numbers."""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import re

import plotly.offline
import pytest

from allnc_edu.__main__ import main
from allnc_edu.demo import DEMO_METHODS
from allnc_edu.records import EpochRecord, RunConfig, RunResult
from allnc_edu.report import (
    TABLE_COLUMNS,
    build_report,
    findings,
    label,
    reference_table,
    report_numbers,
    results_table,
    table_rows,
)

LABELS = [label(m) for m in DEMO_METHODS]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One smoke demo through the command line: (output folder, printed text)."""
    out = tmp_path_factory.mktemp("demo") / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["demo", "--smoke", "--out", str(out), "--no-progress"])
    assert status == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def page(demo_run) -> str:
    return (demo_run[0] / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def numbers(demo_run) -> dict:
    return json.loads((demo_run[0] / "demo.json").read_text(encoding="utf-8"))


@pytest.mark.slow  # the shared smoke demo takes ~35 CPU s
def test_cli_writes_both_files_and_says_where(demo_run):
    out, printed = demo_run
    assert sorted(p.name for p in out.iterdir()) == ["demo.json", "report.html"]
    for name in ("report.html", "demo.json"):
        assert str(out / name) in printed
    for row_label in LABELS:
        assert row_label in printed


@pytest.mark.slow  # the shared smoke demo takes ~35 CPU s
def test_html_embeds_plotlyjs_once_and_loads_nothing(page):
    bundle = plotly.offline.get_plotlyjs()
    for start in (0, len(bundle) // 2, len(bundle) - 300):
        assert page.count(bundle[start : start + 300]) == 1
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, flags=re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*['\"]https?:", page, flags=re.IGNORECASE)


@pytest.mark.slow  # the shared smoke demo takes ~35 CPU s
def test_html_has_one_3d_scene_per_method(page):
    scenes = set(re.findall(r'"(scene\d*)":\{', page))
    assert scenes == {"scene"} | {f"scene{i}" for i in range(2, len(DEMO_METHODS) + 1)}
    assert page.count('"type":"scatter3d"') >= len(DEMO_METHODS) * 2


@pytest.mark.slow  # the shared smoke demo takes ~35 CPU s
def test_html_results_table_lists_every_method(page, numbers):
    table = page[page.index("<table><caption>Test accuracy") :]
    table = table[: table.index("</table>")]
    for name in DEMO_METHODS:
        row = re.search(rf"<tr><td style='text-align:left'>{re.escape(label(name))}</td>(.*?)</tr>",
                        table)  # fmt: skip
        assert row, name
        accuracy = f"{numbers['methods'][name]['accuracy']:.1%}"
        assert row.group(1).startswith(f"<td style='text-align:right'>{accuracy}</td>")


@pytest.mark.slow  # the shared smoke demo takes ~35 CPU s
def test_json_holds_the_numbers(numbers):
    assert list(numbers["methods"]) == list(DEMO_METHODS)
    for name, m in numbers["methods"].items():
        for key in ("accuracy", "minority_accuracy"):
            assert 0.0 <= m[key] <= 1.0, (name, key)
        for key in ("nc1", "self_duality", "mc_weights", "mc_means"):
            assert math.isfinite(m[key]), (name, key)
        assert m["epochs"] == numbers["config"]["epochs"] == len(m["history"])
        assert len(m["minority"]) == len(m["counts"]) - len(m["counts"]) // 2
    assert numbers["config"]["smoke run"] is True
    etf = -1 / (len(numbers["methods"]["etf-dr"]["counts"]) - 1)
    assert numbers["methods"]["etf-dr"]["mc_weights"] == pytest.approx(etf, abs=1e-4)
    for records in numbers["ufm_sweeps"].values():
        assert records[0]["ratio"] < records[-1]["ratio"]
        assert all(-1.0 <= r["mc_means"] <= 1.0 for r in records)


@pytest.mark.slow  # the shared smoke demo takes ~35 CPU s
def test_findings_printed_and_in_the_page(demo_run, page, numbers):
    assert numbers["findings"]
    for sentence in numbers["findings"]:
        assert sentence in demo_run[1]
        assert html.escape(sentence) in page


def fake(
    accuracy: float,
    minority: float,
    mc_means: float,
    *,
    k: int = 4,
    mc_weights: float = 0.1,
    geometry: bool = True,
) -> RunResult:
    """A finished one-epoch run with the numbers the report reads (2 majority, 2 minority)."""
    eye = [[float(i == c) for i in range(k)] for c in range(k)]
    nc = {"nc1": 0.5, "self_duality": 0.3, "mc_weights": mc_weights, "mc_means": mc_means,
          "num_classes": k}  # fmt: skip
    record = EpochRecord(
        epoch=1, lr=0.1, loss=1.0, train_s=1.0, samples=202, samples_per_s=202.0, train_acc=1.0,
        accuracy=accuracy, minority_accuracy=minority, majority_accuracy=1.0, nc=nc,
        geometry={"class_means": eye, "classifier": eye} if geometry else None,
    )  # fmt: skip
    config = RunConfig.from_dict(
        {"dataset": "mnist1d", "method": "x", "epochs": 1, "batch_size": 16, "lr": 0.1}
    )
    counts = [100] * (k // 2) + [1] * (k - k // 2)
    return RunResult(config=config, history=[record], counts=counts, num_classes=k,
                     minority=list(range(k // 2, k)), shot_groups={})  # fmt: skip


def test_findings_follow_the_numbers():
    runs = {"ce": fake(0.5, 0.1, 0.9), "etf-dr": fake(0.6, 0.2, 0.8), "allnc": fake(0.7, 0.4, -0.3)}
    text = " ".join(findings(runs))
    assert (
        "Test accuracy (column 'test acc'), best first: AllNC 70.0%, ETF + DR 60.0%, CE 50.0%."
        in text
    )
    assert (
        "MC_H, the same for the centred minority class means (ETF value −0.333), lowest "
        "first: AllNC −0.300, ETF + DR +0.800, CE +0.900." in text
    )
    assert "Minority accuracy under AllNC is 40.0%, higher than 10.0% under CE" in text
    runs["allnc"], runs["ce"] = fake(0.4, 0.05, 0.95), fake(0.7, 0.4, -0.3)
    text = " ".join(findings(runs))
    assert "best first: CE 70.0%, ETF + DR 60.0%, AllNC 40.0%." in text
    assert "Minority accuracy under AllNC is 5.0%, lower than 40.0% under CE" in text
    assert "MC_H under AllNC is +0.950, higher than −0.300 under CE" in text


def test_logit_adjustment_is_compared_with_allnc():
    runs = {"la": fake(0.8, 0.6, 0.1), "allnc": fake(0.7, 0.4, -0.3)}
    text = " ".join(findings(runs))
    assert (
        "Minority accuracy under logit adjustment is 60.0%, higher than 40.0% under AllNC" in text
    )
    assert "-" not in text.replace("−", "")  # unicode minus signs only


def test_sweep_findings_say_which_way_mc_moves_and_where_it_collapses():
    runs = {"ce": fake(0.5, 0.1, 0.9)}
    rec = {"counts": [10, 10, 1, 1], "mc_weights": -1 / 3, "mc_means": -1 / 3}
    sweep = [{**rec, "ratio": 1.0}, {**rec, "ratio": 100.0, "mc_means": 0.5}]
    sentence = findings(runs, {"fixed ETF": sweep})[-2]
    assert sentence == (
        "UFM, fixed ETF (4 classes): from imbalance ratio 1 to 100, MC_W stays at −0.333 (the "
        "ETF value) and MC_H rises from −0.333 (the ETF value) to +0.500."
    )
    sweep += [{**rec, "ratio": 1000.0, "mc_weights": 1.0, "mc_means": 1.0}]
    sentence = findings(runs, {"CE": sweep})[-2]
    assert sentence.endswith(
        "MC_W rises from −0.333 (the ETF value) to +1.000 and MC_H rises from −0.333 (the ETF "
        "value) to +1.000; MC_W reaches 1 (complete minority collapse) between ratio 100 and 1000."
    )


def test_report_rejects_what_it_cannot_draw():
    with pytest.raises(ValueError, match="empty"):
        build_report({})
    with pytest.raises(ValueError, match="record_geometry"):
        build_report({"ce": fake(0.5, 0.1, 0.9, geometry=False)})
    with pytest.raises(ValueError, match="number of classes"):
        report_numbers({"ce": fake(0.5, 0.1, 0.9), "allnc": fake(0.5, 0.1, 0.9, k=3)})


def test_classifier_fix_sentence_says_what_it_holds_and_what_it_does_not():
    runs = {"etf-dr": fake(0.6, 0.2, 0.8, mc_weights=-1 / 3), "allnc": fake(0.7, 0.4, -0.3)}
    assert (
        "ETF + DR holds its minority classifier rows at the ETF value (MC_W −0.333), but its "
        "centred minority class means are squeezed: MC_H +0.800, 1.133 above the ETF value."
    ) in findings(runs)
    runs["etf-dr"] = fake(0.6, 0.2, 0.8)
    assert "ETF + DR's minority classifier rows are off the ETF value (MC_W +0.100)" in " ".join(
        findings(runs)
    )


def test_page_teaches_before_it_reports():
    runs = {"ce": fake(0.5, 0.1, 0.9), "la": fake(0.6, 0.3, 0.5), "allnc": fake(0.7, 0.4, -0.3)}
    page = build_report(runs, {"CE": [{"ratio": 1.0, "counts": [10, 10, 1, 1],
                                       "mc_weights": -1 / 3, "mc_means": -1 / 3,
                                       "weight_norm_ratio": 1.0}]})  # fmt: skip
    intro = page[page.index("In one minute") : page.index("What this run shows")]
    for term in ("simplex ETF", "minority collapse", "class-mean squeezing", "UFM", "HyCon",
                 "logit adjustment", "MC_W", "MC_H", "NC1", "self-duality"):  # fmt: skip
        assert term in intro, term
    assert page.count("What you should see:") == 3  # 3D views, curves, UFM sweeps
    assert "notebook 01" in page[page.index("<h2>Next</h2>") :]
    assert "05 (the long-tailed benchmark" in page[page.index("<h2>Next</h2>") :]
    footer = page[page.rindex("Generated by") :]
    assert "classes 2 and 3" in footer and "//" not in footer and "K -" not in footer


def test_page_says_what_is_measured_not_more():
    """Cosines ignore lengths; NC1 need not fall in short runs; a fixed ETF's centred squeeze is
    length through centring (notebook 02 measures the raw means), not means that turn."""
    runs = {"ce": fake(0.5, 0.1, 0.9), "etf-dr": fake(0.6, 0.2, 0.8, mc_weights=-1 / 3)}
    rec = {"counts": [10, 10, 1, 1], "mc_weights": -1 / 3, "weight_norm_ratio": 1.0}
    sweep = [{**rec, "ratio": 1.0, "mc_means": -1 / 3}, {**rec, "ratio": 100.0, "mc_means": 0.2}]
    page = html.unescape(build_report(runs, {"fixed ETF": sweep}))
    views = page[page.index("Class means and classifiers in 3D") : page.index("Metrics over")]
    assert "directions and ignore lengths" in views and "the shorter" not in views
    curves = page[page.index("Metrics over training") :]
    assert "NC1 falling" not in page and "need not fall steadily" in curves
    assert "does not stop the class means from squeezing" not in page
    intro = page[page.index("In one minute") : page.index("What this run shows")]
    ufm = page[page.index("The unconstrained-features model:") :]
    for text in (intro, ufm):
        assert "raw minority means keep their directions" in text
        assert "notebook 02" in text
    assert "only shorten" in ufm and "squeeze of the centred means" in ufm


def test_reference_table_separates_ours_from_quoted():
    runs = {"ce": fake(0.5, 0.1, 0.9), "allnc": fake(0.625, 0.4, -0.3)}
    same = reference_table(runs, "cifar100-lt", 100)
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", same)
    assert rows[:2] == [
        ("measured in this run", "CE", "cifar100-lt", "50.00"),
        ("measured in this run", "AllNC", "cifar100-lt", "62.50"),
    ]
    quoted = {r[1]: r[3] for r in rows if r[0] == "quoted from the papers"}
    assert quoted == {"CE": "38.32", "GLMC": "55.88"}
    assert "NOT comparable" not in same
    for dataset, ratio in (("mnist1d", 100), ("cifar10-lt", 50)):
        assert "NOT comparable" in reference_table(runs, dataset, ratio)


def test_results_table_escapes_names_and_marks_missing_values() -> None:
    run = fake(0.25, 0.25, 0.25)
    rows = table_rows({"<b>run</b>": run})
    assert len(rows) == 2 and len(rows[0]) == len(rows[1]) == len(TABLE_COLUMNS) + 1
    assert rows[1][rows[0].index("few")] == "n/a"  # the fake has no shot-group accuracy
    assert rows[1][rows[0].index("test acc")] == "25.0%"
    assert rows[1][rows[0].index("MC_H")] == "+0.250"
    table = results_table({"<b>run</b>": run}, caption="IR 100")
    assert "&lt;b&gt;run&lt;/b&gt;" in table and "<b>" not in table
    assert table.count("<tr>") == 2 and "<caption>IR 100</caption>" in table


def test_table_cells_use_a_unicode_minus_and_never_a_signed_zero() -> None:
    rows = table_rows({"ce": fake(0.5, 0.1, -0.25, mc_weights=-0.0001)})
    assert rows[1][rows[0].index("MC_H")] == "−0.250"
    assert rows[1][rows[0].index("MC_W")] == "0.000"
