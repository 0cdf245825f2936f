"""The ``study`` command and ``allnc_edu.study``: methods x seeds, a table, a JSON record."""

import json
import os
import shlex

import pytest
from _cli import fails

from allnc_edu import study as study_module
from allnc_edu.__main__ import main
from allnc_edu.methods import VARIANTS, make_method, variant
from allnc_edu.models import MLP
from allnc_edu.study import (
    detail_rows,
    gap_html,
    gap_rows,
    parse_sets,
    read_studies,
    run_study,
    study_table,
    summarize,
)

SUMMARY_KEYS = {
    "accuracy_mean", "accuracy_std", "minority_accuracy_mean", "minority_accuracy_std",
    "mc_means_mean", "mc_weights_mean", "nc1_mean", "self_duality_mean", "samples_seen",
}  # fmt: skip
TINY = ["--n-max", "30", "--imbalance-ratio", "10", "--epochs", "1", "--device", "cpu"]


def test_tiny_study_writes_the_table_and_the_json(tmp_path, capsys):
    out = tmp_path / "study.json"
    argv = ["study", "--methods", "ce,allnc-no-hycon", "--seeds", "0,1", *TINY, "--split",
            "validation", "--set", "lambda_p=2", "--no-progress", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "samples seen" in printed and "±" in printed
    study = json.loads(out.read_text())
    assert study["command"].startswith("python -m allnc_edu study --dataset mnist1d")
    assert "--set lambda_p=2" in study["command"] and "--split validation" in study["command"]
    runs = study["runs"]
    assert [(r["method"], r["seed"]) for r in runs] == [
        ("ce", 0), ("allnc-no-hycon", 0), ("ce", 1), ("allnc-no-hycon", 1)
    ]  # fmt: skip
    for r in runs:
        assert {"accuracy", "minority_accuracy", "mc_weights", "nc1", "samples_seen"} <= set(r)
        assert r["split"] == "validation"
    assert runs[1]["options"]["lambda_p"] == 2 and runs[1]["options"]["hycon"] is False
    assert set(study["summary"]) == {"ce", "allnc-no-hycon"}
    for row in study["summary"].values():
        assert SUMMARY_KEYS <= set(row)
    # GBBN draws two batches per step: twice the samples of CE in the same epochs.
    assert study["summary"]["allnc-no-hycon"]["samples_seen"] == 2 * runs[0]["samples_seen"]


def test_augment_is_recorded_and_changes_the_runs(tmp_path):
    runs = {}
    for flag in ("--augment", "--no-augment"):
        out = tmp_path / f"{flag}.json"
        argv = ["study", "--methods", "ce", "--seeds", "0", *TINY, "--no-progress", flag,
                "--json", str(out)]  # fmt: skip
        assert main(argv) == 0
        study = json.loads(out.read_text())
        assert f" {flag} " in study["command"]
        assert study["settings"]["augment"] is (flag == "--augment")
        runs[flag] = study["runs"][0]
    assert runs["--augment"]["train_acc"] != runs["--no-augment"]["train_acc"]


def test_ce_2x_sees_as_many_samples_as_gbbn():
    study = run_study(methods=["ce-2x", "gbbn"], seeds=[0], epochs=1, n_max=30,
                      imbalance_ratio=10, device="cpu", progress=False)  # fmt: skip
    seen = {m: row["samples_seen"] for m, row in study["summary"].items()}
    assert seen["ce-2x"] == seen["gbbn"] > 0
    assert study["runs"][0]["epochs"] == 2


def test_summary_is_mean_and_sample_std_over_seeds():
    runs = [
        {"method": "a", "seed": s, "accuracy": acc, "minority_accuracy": 0.5, "mc_means": 0.0,
         "mc_weights": 0.0, "nc1": 1.0, "self_duality": 0.2, "samples_seen": 10}
        for s, acc in enumerate([0.6, 0.8])
    ]  # fmt: skip
    row = summarize(runs)["a"]
    assert row["accuracy_mean"] == pytest.approx(0.7)
    assert row["accuracy_std"] == pytest.approx(0.1414213562)
    assert row["minority_accuracy_std"] == 0.0 and row["samples_seen"] == 10
    assert "70.0 ± 14.1%" in study_table({"a": row})


def test_detail_rows_give_every_number_with_its_spread():
    runs = [
        {"method": "a", "seed": s, "accuracy": acc, "many": 0.9, "medium": 0.5, "few": None,
         "minority_accuracy": 0.25, "mc_means": mc, "mc_weights": -0.1, "nc1": 2.0,
         "self_duality": 0.4, "samples_seen": 10, "train_s": t}
        for s, acc, mc, t in [(0, 0.6, -0.2, 3600.0), (1, 0.8, 0.0, 10800.0)]
    ]  # fmt: skip
    head, row = detail_rows(summarize(runs))
    cells = dict(zip(head, row, strict=True))
    assert cells["accuracy"] == "70.0 ± 14.1%" and cells["many-shot"] == "90.0 ± 0.0%"
    assert cells["few-shot"] == "-"  # no few-shot class in either run
    assert cells["MC_H"] == "-0.100 ± 0.141" and cells["NC1"] == "2.000 ± 0.000"
    assert cells["hours per run"] == "2.0" and cells["seeds"] == "0, 1"
    head, row = detail_rows(summarize(runs[:1]))  # one seed: no spread, not a spread of zero
    cells = dict(zip(head, row, strict=True))
    assert cells["accuracy"] == "60.0%" and cells["MC_H"] == "-0.200" and cells["seeds"] == "0"


def test_set_values_are_typed_and_checked():
    assert parse_sets(["lambda_p=3", "rebalance_loss=la", "hycon=False"]) == {
        "lambda_p": 3, "rebalance_loss": "la", "hycon": False
    }  # fmt: skip
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_sets(["lambda_p"])
    with pytest.raises(ValueError, match="no method of this study takes it"):
        run_study(methods=["ce"], seeds=[0], epochs=1, sets={"lambda_p": 1.0})


def test_every_variant_builds():
    for name, v in VARIANTS.items():
        assert variant(name) is v and v.description
        make_method(v.method, MLP(4, hidden=(8,)), 3, [9, 3, 1], **v.options)
    assert variant("ldam-drw").method == "ldam-drw"
    with pytest.raises(ValueError, match="unknown method or variant"):
        variant("allnc-best")


def test_cli_refuses_bad_seeds(capsys):
    with pytest.raises(SystemExit) as err:
        main(["study", "--seeds", "0,x", *TINY])
    assert err.value.code == 2 and "--seeds" in capsys.readouterr().err


def test_gap_rows_are_method_minus_rival_in_points():
    summaries = {
        "a": {"allnc": {"accuracy_mean": 0.80, "minority_accuracy_mean": 0.60},
              "la": {"accuracy_mean": 0.75, "minority_accuracy_mean": 0.625}},
        "b": {"allnc": {"accuracy_mean": 0.5, "minority_accuracy_mean": 0.2}},
    }  # fmt: skip
    rows = gap_rows(summaries, "allnc", ["la"])
    assert rows[0] == ["study", "allnc − la, accuracy", "allnc − la, minority acc"]
    assert rows[1:] == [["a", "+5.0", "-2.5"], ["b", "-", "-"]]  # "b" has no LA run
    html = gap_html(summaries, "allnc", ["la"], caption="gaps")
    assert html.count("<tr>") == 3 and "<caption>gaps</caption>" in html


def test_read_studies_pools_the_files_that_exist(tmp_path):
    def record(seed, accuracy):
        run = {"method": "la", "seed": seed, "accuracy": accuracy, "samples_seen": 10}
        return {"command": f"study --seeds {seed}", "runs": [run]}

    paths = [tmp_path / "s0.json", tmp_path / "s1.json", tmp_path / "missing.json"]
    for seed, path in enumerate(paths[:2]):
        path.write_text(json.dumps(record(seed, 0.5 + 0.25 * seed)))
    summary, commands = read_studies(paths)
    assert commands == ["study --seeds 0", "study --seeds 1"]
    assert summary["la"]["accuracy_mean"] == 0.625 and summary["la"]["seeds"] == [0, 1]
    assert read_studies([tmp_path / "missing.json"]) is None


def test_progress_names_the_variant_and_seed(capsys, monkeypatch):
    monkeypatch.setenv("ALLNC_EDU_PROGRESS", "plain")
    argv = ["study", "--methods", "allnc-no-hycon", "--seeds", "1", *TINY]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "allnc-no-hycon on mnist1d, seed 1" in captured.out + captured.err


# --- A study never loses finished work and never counts a run twice (issue 27, item 3) ---


def test_a_duplicate_seed_or_method_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "s.json"
    err = fails(["study", "--methods", "ce", "--seeds", "0,0", *TINY, "--json", str(out)], capsys)
    assert "seed 0 is listed twice" in err
    err = fails(["study", "--methods", "ce,ce", "--seeds", "0", *TINY, "--json", str(out)], capsys)
    assert "method 'ce' is listed twice" in err
    assert not out.exists()


def test_a_bad_seed_anywhere_trains_nothing(tmp_path, capsys, monkeypatch):
    trained = []
    monkeypatch.setattr(study_module, "run_method", lambda *a, **k: trained.append(a))
    for seeds in ("0,-1", "0,4294967296"):
        err = fails(["study", "--methods", "ce", "--seeds", seeds, *TINY], capsys)
        assert "seed must be an integer in [0, 4294967295]" in err
    assert trained == []


@pytest.mark.parametrize("where", ["folder", "under a file", "read-only folder", "/proc"])
def test_an_unusable_json_path_fails_before_training(tmp_path, capsys, monkeypatch, where):
    trained = []
    monkeypatch.setattr(study_module, "run_method", lambda *a, **k: trained.append(a))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    path = {"folder": tmp_path, "under a file": blocker / "s.json",
            "read-only folder": locked / "s.json", "/proc": "/proc/s.json"}[where]  # fmt: skip
    if where == "read-only folder" and os.access(locked, os.W_OK):
        pytest.skip("running as a user who may write anywhere (root)")
    err = fails(["study", "--methods", "ce", "--seeds", "0", *TINY, "--json", str(path)], capsys)
    assert str(path) in err and trained == []


def _interrupt_after(calls: int, monkeypatch, **extra):
    """Make the study's ``calls``-th run raise KeyboardInterrupt (after ``extra`` fit options:
    e.g. stop_after=1 trains one epoch of it first)."""
    real = study_module.run_method
    seen = []

    def run(*args, **kwargs):
        seen.append(kwargs["label"])
        if len(seen) == calls:
            if extra:
                real(*args, **{**kwargs, **extra})
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(study_module, "run_method", run)
    return seen


def test_an_interrupted_study_keeps_its_finished_runs_and_continues(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    kw = dict(methods=["ce", "la"], seeds=[0, 1], epochs=1, n_max=30, imbalance_ratio=10,
              device="cpu", progress=False, json_path=path)  # fmt: skip
    _interrupt_after(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_study(**kw)
    saved = json.loads(path.read_text())
    assert [(r["method"], r["seed"]) for r in saved["runs"]] == [("ce", 0), ("la", 0)]
    assert saved["complete"] is False and saved["summary"]["ce"]["seeds"] == [0]
    monkeypatch.undo()
    seen = _interrupt_after(0, monkeypatch)  # counts the runs, interrupts none
    study = run_study(**kw)
    assert seen == ["ce on mnist1d, seed 1", "la on mnist1d, seed 1"]
    assert study["complete"] and study["runs"][:2] == saved["runs"]
    assert json.loads(path.read_text()) == study
    seen.clear()
    assert run_study(**kw) == study and seen == []  # finished: nothing trains again


def test_a_run_interrupted_mid_way_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    kw = dict(methods=["ce"], seeds=[0], epochs=2, n_max=30, imbalance_ratio=10, device="cpu",
              progress=False, metrics_every=1)  # fmt: skip
    whole = run_study(**kw)
    _interrupt_after(1, monkeypatch, stop_after=1)
    path, runs = tmp_path / "s.json", tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        run_study(**kw, json_path=path, runs_dir=runs)
    assert json.loads((runs / "ce-seed0" / "run.json").read_text())["epochs_done"] == 1
    monkeypatch.undo()
    resumed = run_study(**kw, json_path=path, runs_dir=runs)
    for key in ("accuracy", "nc1", "mc_means", "samples_seen", "epochs"):
        assert resumed["runs"][0][key] == whole["runs"][0][key], key


def test_a_record_with_other_settings_is_refused_or_overwritten(tmp_path, capsys):
    out = tmp_path / "s.json"
    argv = ["study", "--methods", "ce", "--seeds", "0", *TINY, "--no-progress"]
    assert main([*argv, "--json", str(out)]) == 0
    capsys.readouterr()
    err = fails([*argv, "--weight-decay", "0.01", "--json", str(out)], capsys)
    assert "other settings (weight_decay: saved 0.005, now 0.01)" in err and "--overwrite" in err
    assert main([*argv, "--weight-decay", "0.01", "--json", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["settings"]["weight_decay"] == 0.01


def test_a_study_grows_by_a_seed_and_keeps_the_runs_it_has(tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.json"
    argv = ["study", "--methods", "ce", *TINY, "--no-progress", "--json", str(out)]
    assert main([*argv, "--seeds", "0"]) == 0
    first = json.loads(out.read_text())["runs"][0]
    seen = _interrupt_after(0, monkeypatch)
    assert main([*argv, "--seeds", "0,1"]) == 0
    study = json.loads(out.read_text())
    assert seen == ["ce on mnist1d, seed 1"] and study["runs"][0] == first
    assert study["summary"]["ce"]["seeds"] == [0, 1] and "--seeds 0,1" in study["command"]
    capsys.readouterr()
    err = fails([*argv, "--seeds", "1"], capsys)  # would drop seed 0's run
    assert "it holds ce seed 0, which this study does not run" in err


def test_the_seed_count_counts_distinct_seeds():
    runs = [{"method": "a", "seed": 0, "accuracy": 0.5, "samples_seen": 1}] * 2
    assert summarize(runs)["a"]["seeds"] == [0]


def test_every_committed_study_command_still_parses() -> None:
    """The command line of each JSON in docs/studies/ is one the current parser accepts."""
    from pathlib import Path

    from allnc_edu.cli import build_parser

    studies = sorted((Path(__file__).resolve().parents[1] / "docs" / "studies").glob("*.json"))
    assert studies
    for path in studies:
        command = json.loads(path.read_text())["command"]
        args = build_parser().parse_args(shlex.split(command)[3:])
        assert args.command == "study", path.name
