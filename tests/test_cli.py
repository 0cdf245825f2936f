"""The command line as a user runs it: train writes its JSON; bad arguments fail in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from allnc_edu.__main__ import main

TINY = ["--dataset", "gaussian", "--n-max", "40", "--imbalance-ratio", "10", "--epochs", "1",
        "--batch-size", "16", "--device", "cpu", "--no-progress"]  # fmt: skip


def test_train_writes_history_and_report_and_prints_a_summary(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY, "--method", "allnc", "--no-hycon", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for words in ("allnc", "test accuracy", "many", "few", "NC1", "MC_W", "MC_H", "report.json"):
        assert words.lower() in printed.lower(), words
    assert len(printed.splitlines()) <= 24
    history = json.loads((out / "history.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert len(history) == 1 and report["epochs_done"] == 1
    assert {"overall", "many", "medium", "few", "per_class"} <= report["test"].keys()
    assert report["nc"]["mc_weights"] is not None and report["nc"]["mc_means"] is not None
    assert report["config"]["lr"] > 0 and report["dataset"] == "gaussian"
    assert "hycon" not in history[0]["loss_parts"] and "p2p" in history[0]["loss_parts"]


def test_train_resume_finishes_a_run(tmp_path, capsys) -> None:
    out = str(tmp_path / "run")
    assert main(["train", *TINY, "--method", "ce", "--out", out]) == 0
    assert main(["train", *TINY, "--method", "ce", "--out", out, "--resume"]) == 0
    assert "1/1 epochs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--dataset", "imagenet"], "invalid choice: 'imagenet'"),
        (["--method", "focal"], "invalid choice: 'focal'"),
        (["--imbalance-ratio", "0.5"], "--imbalance-ratio: must be >= 1"),
        (["--epochs", "0"], "--epochs: must be >= 1"),
        (["--epochs", "two"], "'two' is not a valid int"),
        (["--dataset", "cifar10-lt"], "needs --data-root"),
        (["--method", "ce", "--no-p2p"], "--no-p2p: AllNC switches, only for --method allnc"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, says, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_cifar_without_download_is_one_line_from_the_shell(tmp_path) -> None:
    cmd = [sys.executable, "-m", "allnc_edu", "train", "--dataset", "cifar10-lt",
           "--data-root", str(tmp_path), "--epochs", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "not found" in done.stderr and "--download" in done.stderr
    assert not any(tmp_path.iterdir()), "nothing may be downloaded without --download"
