"""The HTML report and ``python -m allnc_edu demo``: self-contained page, one 3D scene per method,
the results table, the JSON of numbers, and findings that follow the numbers."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import plotly.offline
import pytest

from allnc_edu.__main__ import DEMO_METHODS, main
from allnc_edu.report import build_report, findings, label, reference_table, report_numbers

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
    return json.loads((demo_run[0] / "report.json").read_text(encoding="utf-8"))


def test_cli_writes_both_files_and_says_where(demo_run):
    out, printed = demo_run
    for name in ("report.html", "report.json"):
        assert (out / name).is_file()
        assert str(out / name) in printed
    for row_label in LABELS:
        assert row_label in printed


def test_html_embeds_plotlyjs_once_and_loads_nothing(page):
    bundle = plotly.offline.get_plotlyjs()
    for start in (0, len(bundle) // 2, len(bundle) - 300):
        assert page.count(bundle[start : start + 300]) == 1
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, flags=re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*['\"]https?:", page, flags=re.IGNORECASE)


def test_html_has_one_3d_scene_per_method(page):
    scenes = set(re.findall(r'"(scene\d*)":\{', page))
    assert scenes == {"scene"} | {f"scene{i}" for i in range(2, len(DEMO_METHODS) + 1)}
    assert page.count('"type":"scatter3d"') >= len(DEMO_METHODS) * 2


def test_html_results_table_lists_every_method(page, numbers):
    table = page[page.index("<table><caption>Test accuracy") :]
    table = table[: table.index("</table>")]
    for name in DEMO_METHODS:
        row = re.search(rf"<tr><td style='text-align:left'>{re.escape(label(name))}</td>(.*?)</tr>",
                        table)  # fmt: skip
        assert row, name
        accuracy = f"{numbers['methods'][name]['accuracy']:.1%}"
        assert row.group(1).startswith(f"<td style='text-align:right'>{accuracy}</td>")


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


def test_findings_printed_and_in_the_page(demo_run, page, numbers):
    assert numbers["findings"]
    for sentence in numbers["findings"]:
        assert sentence in demo_run[1]
        assert sentence.replace("&", "&amp;") in page


def fake(accuracy: float, minority: float, mc_means: float, *, k: int = 4) -> dict:
    """A run summary with the fields the report reads (2 majority, 2 minority classes)."""
    geometry = {"class_means": [[float(i == c) for i in range(k)] for c in range(k)],
                "classifier": [[float(i == c) for i in range(k)] for c in range(k)]}  # fmt: skip
    record = {"epoch": 1, "test_acc": accuracy, "minority_accuracy": minority, "nc1": 0.5,
              "self_duality": 0.3, "mc_weights": 0.1, "mc_means": mc_means}  # fmt: skip
    return {
        "method": "x", "accuracy": accuracy, "minority_accuracy": minority, "nc1": 0.5,
        "self_duality": 0.3, "mc_weights": 0.1, "mc_means": mc_means, "num_classes": k,
        "counts": [100, 100, 1, 1], "minority": [2, 3], "geometry": geometry,
        "history": [record],
    }  # fmt: skip


def test_findings_follow_the_numbers():
    runs = {"ce": fake(0.5, 0.1, 0.9), "etf-dr": fake(0.6, 0.2, 0.8), "allnc": fake(0.7, 0.4, -0.3)}
    text = " ".join(findings(runs))
    assert "Test accuracy, from best to worst: AllNC 70.0%, ETF + DR 60.0%, CE 50.0%." in text
    assert "MC_H under ETF + DR is +0.800, higher than -0.300 under AllNC" in text
    assert "Minority-class accuracy under AllNC is 40.0%, higher than 10.0% under CE" in text
    runs["allnc"], runs["ce"] = fake(0.4, 0.05, 0.95), fake(0.7, 0.4, -0.3)
    text = " ".join(findings(runs))
    assert "Test accuracy, from best to worst: CE 70.0%, ETF + DR 60.0%, AllNC 40.0%." in text
    assert "MC_H under ETF + DR is +0.800, lower than +0.950 under AllNC" in text
    assert "Minority-class accuracy under AllNC is 5.0%, lower than 40.0% under CE" in text


def test_sweep_findings_say_which_way_mc_moves():
    runs = {"ce": fake(0.5, 0.1, 0.9)}
    rec = {"counts": [10, 10, 1, 1], "mc_weights": -1 / 3, "mc_means": -1 / 3}
    sweep = [{**rec, "ratio": 1.0}, {**rec, "ratio": 100.0, "mc_means": 0.5}]
    sentence = findings(runs, {"fixed ETF": sweep})[-2]
    assert sentence == (
        "UFM, fixed ETF (4 classes): from imbalance ratio 1 to 100, MC_W stays at -0.333 and "
        "MC_H rises from -0.333 to +0.500."
    )


def test_report_rejects_what_it_cannot_draw():
    with pytest.raises(ValueError, match="empty"):
        build_report({})
    with pytest.raises(ValueError, match="record_geometry"):
        build_report({"ce": {**fake(0.5, 0.1, 0.9), "geometry": None}})
    with pytest.raises(ValueError, match="number of classes"):
        report_numbers({"ce": fake(0.5, 0.1, 0.9), "allnc": fake(0.5, 0.1, 0.9, k=3)})


def test_etf_sentence_says_whether_the_classifier_is_at_the_etf():
    runs = {"etf-dr": fake(0.6, 0.2, 0.8), "allnc": fake(0.7, 0.4, -0.3)}
    assert "is not at the ETF (-0.333)" in " ".join(findings(runs))
    runs["etf-dr"]["mc_weights"] = -1 / 3
    assert "stays at the ETF value (-0.333)" in " ".join(findings(runs))


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
