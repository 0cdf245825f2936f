"""The command line as a user runs it: train writes its run; every bad input, unusable folder,
mismatched resume or unsafe checkpoint ends in one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest
import torch
from _cli import fails

from allnc_edu.__main__ import build_parser, main
from allnc_edu.checkpoint import CHECKPOINT_NAME
from allnc_edu.demo import DemoExistsError, demo

TINY = ["--dataset", "gaussian", "--n-max", "40", "--imbalance-ratio", "10", "--epochs", "2",
        "--batch-size", "16", "--device", "cpu", "--no-progress"]  # fmt: skip


def test_train_writes_its_run_and_prints_a_summary(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY, "--method", "allnc", "--no-hycon", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for words in ("allnc", "test accuracy", "many", "few", "minority", "NC1", "MC_W", "MC_H"):
        assert words.lower() in printed.lower(), words
    assert len(printed.splitlines()) <= 24
    wrote = next(line for line in printed.splitlines() if line.startswith("wrote "))
    for name in (CHECKPOINT_NAME, "run.json", "history.json"):
        assert str(out / name) in wrote and (out / name).is_file()
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME, "history.json", "run.json"]
    history = json.loads((out / "history.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert len(history) == 2 and run["epochs_done"] == 2 and run["complete"]
    assert run["config"]["profile"] == "step" and run["config"]["n_max"] == 40
    assert run["config"]["method_options"]["hycon"] is False and run["config"]["lr"] > 0
    assert {"package", "torch", "cuda", "device_name", "git_commit", "started", "finished"} <= (
        run["provenance"].keys()
    )
    assert "hycon" not in history[0]["loss_parts"] and "p2p" in history[0]["loss_parts"]


def test_stop_after_then_resume_finishes_the_run(tmp_path, capsys) -> None:
    out = str(tmp_path / "run")
    assert main(["train", *TINY, "--method", "ce", "--out", out, "--stop-after", "1"]) == 0
    printed = capsys.readouterr().out
    assert "1/2 epochs" in printed and "--resume" in printed
    assert main(["train", *TINY, "--method", "ce", "--out", out, "--resume"]) == 0
    assert "2/2 epochs" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--dataset", "imagenet"], "invalid choice: 'imagenet'"),
        (["--method", "focal"], "invalid choice: 'focal'"),
        (["--imbalance-ratio", "0.5"], "--imbalance-ratio: must be a finite float >= 1"),
        (["--epochs", "0"], "--epochs: must be an integer >= 1"),
        (["--epochs", "two"], "'two' is not a valid int"),
        (["--momentum", "1.5"], "--momentum: must be a finite float in [0, 1)"),
        (["--lr", "inf"], "--lr: must be a finite float > 0, got inf"),
        (["--lr", "nan"], "--lr: must be a finite float > 0, got nan"),
        (["--weight-decay", "inf"], "--weight-decay: must be a finite float >= 0, got inf"),
        (["--gamma", "inf"], "--gamma: must be a finite float > 0, got inf"),
        (["--dataset", "cifar10-lt"], "needs --data-root"),
        (["--method", "ce", "--no-p2p"], "--no-p2p: AllNC options, only for --method allnc"),
        (["--method", "ce", "--tau", "0.5"], "--tau: AllNC options, only for --method allnc"),
        (["--resume"], "--resume needs --out"),
        (["--device", "meta"], "--device meta: device 'meta': training runs on cpu, cuda or mps"),
        (["--device", "gpu"], "--device gpu: device 'gpu' is not a device name"),
        pytest.param(
            ["--device", "cuda"],
            "--device cuda: device 'cuda' requested but CUDA is not available here",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present"),
        ),
        ([*TINY, "--warmup-epochs", "5"], "--warmup-epochs must be a finite float in [0, 2]"),
        ([*TINY, "--tau", "0"], "--tau: must be a finite float > 0"),
        ([*TINY, "--augment"], "augment needs images (C, H, W) or signals (C, L)"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, says, capsys) -> None:
    assert says in fails(["train", *args], capsys)


@pytest.mark.parametrize("command", ["train", "demo"])
def test_unusable_out_is_refused_before_any_work(command, tmp_path, capsys) -> None:
    a_file = tmp_path / "some_file.txt"
    a_file.write_text("x")
    extra = TINY if command == "train" else ["--smoke"]
    assert "is a file, not a folder" in fails([command, *extra, "--out", str(a_file)], capsys)
    assert "cannot write to the folder /proc/x" in fails(
        [command, *extra, "--out", "/proc/x"], capsys
    )


def test_an_existing_demo_is_refused_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.json").write_text("old")
    err = fails(["demo", "--smoke", "--out", str(out)], capsys)
    assert "already holds a demo (demo.json)" in err and "--overwrite" in err
    assert capsys.readouterr().out == ""  # refused before the demo began
    assert (out / "demo.json").read_text() == "old"
    with pytest.raises(DemoExistsError, match="overwrite=True"):
        demo(out, smoke=True)


@pytest.mark.slow  # one smoke demo, ~35 CPU s
def test_demo_overwrite_replaces_an_existing_demo(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.html").write_text("old")
    (out / "demo.json").write_text("old")
    assert main(["demo", "--smoke", "--out", str(out), "--no-progress", "--overwrite"]) == 0
    assert "findings" in json.loads((out / "demo.json").read_text())
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_bench_json_in_an_unusable_place_is_refused_first(tmp_path, capsys) -> None:
    argv = ["bench", "--quick", "--device", "cpu", "--json", "/proc/x/bench.json"]
    assert "cannot write to the folder /proc/x" in fails(argv, capsys)


def test_an_existing_run_needs_resume_or_overwrite(tmp_path, capsys) -> None:
    out = str(tmp_path / "run")
    assert main(["train", *TINY, "--method", "ce", "--out", out]) == 0
    before = (tmp_path / "run" / "run.json").read_text()
    err = fails(["train", *TINY, "--method", "la", "--out", out], capsys)
    assert "already holds a run" in err and "--overwrite" in err and "--resume" in err
    assert (tmp_path / "run" / "run.json").read_text() == before
    assert main(["train", *TINY, "--method", "la", "--out", out, "--overwrite"]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["method"] == "la"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (["--imbalance-ratio", "5", "--no-p2p"], ["imbalance_ratio: saved 10.0, now 5.0",
                                                   "method_options.p2p: saved True, now False"]),
        (["--no-gbbn"], ["method_options.gbbn: saved True, now False"]),
        (["--no-hycon"], ["method_options.hycon: saved True, now False"]),
        (["--tau", "0.5"], ["method_options.tau: saved", ", now 0.5"]),
        (["--batch-size", "8"], ["batch_size: saved 16, now 8"]),
        (["--seed", "1"], ["data_seed: saved 0, now 1", "seed: saved 0, now 1"]),
        (["--n-max", "30"], ["n_max: saved 40, now 30"]),
        (["--profile", "exp"], ["profile: saved 'step', now 'exp'"]),
        (["--epochs", "3"], ["epochs: saved 2, now 3 (the cosine learning-rate schedule"]),
        (["--lr", "0.05"], ["lr: saved 0.1, now 0.05"]),
    ],
)  # fmt: skip
def test_resume_with_a_changed_setting_is_refused_naming_it(change, says, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", *TINY, "--out", out, "--stop-after", "1"]) == 0
    capsys.readouterr()
    err = fails(["train", *TINY, *change, "--out", out, "--resume"], capsys)  # last flag wins
    for words in says:
        assert words in err
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 1


class _Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys) -> None:
    out, marker = tmp_path / "run", tmp_path / "pwned"
    out.mkdir()
    torch.save({"format": 1, "model": _Payload(marker)}, out / CHECKPOINT_NAME)
    err = fails(["train", *TINY, "--out", str(out), "--resume"], capsys)
    assert "refusing to load" in err and str(out / CHECKPOINT_NAME) in err
    assert not marker.exists()
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME]  # nothing trained


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_broken_checkpoint_is_one_line_naming_it(damage, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "--stop-after", "1"]) == 0
    path = out / CHECKPOINT_NAME
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3] if damage == "truncate" else b"not a checkpoint" * 9)
    err = fails(["train", *TINY, "--out", str(out), "--resume"], capsys)
    assert str(path) in err and "not a readable checkpoint" in err


def test_stale_temporary_files_are_cleaned(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "--stop-after", "1"]) == 0
    stale = out / ".checkpoint.pt.k2j3h4.tmp"
    stale.write_bytes(b"half a checkpoint from a killed write")
    assert main(["train", *TINY, "--out", str(out), "--resume"]) == 0
    assert not stale.exists()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _train_parser() -> argparse.ArgumentParser:
    return _subparsers()["train"]


def test_help_describes_every_option_with_its_default() -> None:
    for name, sub in _subparsers().items():
        helps = [a.help for a in sub._actions if a.option_strings and a.dest != "help"]
        assert all(helps), name
        assert len(helps) == len(set(helps)), f"{name}: two options share one help text"
    text = " ".join(_train_parser().format_help().split())
    assert "--profile {exp,step}" in text and "(default: step)" in text
    assert "(default: mnist1d)" in text and "(default: 0.9)" in text
    assert "logit-adjusted cross-entropy" in text and "dot regression" in text
    assert "--stop-after" in text and "--overwrite" in text
    assert "[reconstructed] are our reading of a choice the AllNC paper does not spell out" in text
    assert "(R)" not in text and text.count("(default:") == len(re.findall(r"\(default: ", text))
    assert not re.search(r"\(default: [^)]*\)[^-]*\(default: ", text.split("--momentum")[1][:200])


def test_every_setting_is_an_option_with_its_bounds_and_choices() -> None:
    from dataclasses import fields

    from allnc_edu.allnc import AllNCConfig
    from allnc_edu.config import TrainConfig

    by_dest = {a.dest: a for a in _train_parser()._actions}
    for cls in (TrainConfig, AllNCConfig):
        for field in fields(cls):
            if not field.metadata["cli"]:
                assert field.name not in by_dest, field.name
                continue
            action = by_dest[field.name]
            flag = "--" + field.name.replace("_", "-")
            want = f"--no-{flag[2:]}" if field.default is True else flag
            assert want in action.option_strings, field.name
            assert field.metadata["help"].replace("%", "%%") in action.help, field.name
            if field.metadata["choices"]:
                assert tuple(action.choices) == tuple(field.metadata["choices"])
    assert by_dest["epochs"].default is None  # unset: the data set's recipe decides


def test_missing_cifar_without_download_is_one_line_from_the_shell(tmp_path) -> None:
    cmd = [sys.executable, "-m", "allnc_edu", "train", "--dataset", "cifar10-lt",
           "--data-root", str(tmp_path), "--epochs", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "not found" in done.stderr and "--download" in done.stderr
    assert not any(tmp_path.iterdir()), "nothing may be downloaded without --download"
