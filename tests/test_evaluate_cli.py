"""``evaluate --run``: a saved run scored again on one process gives what its last epoch
reported, under the history's field names; every unusable run is one line and exit status 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _cli import fails
from _filelist_tree import write_imagenet_lt

from allnc_edu.__main__ import main, scores_text
from allnc_edu.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from allnc_edu.records import NC_FIELDS, EpochRecord, RunResult

TINY = ["--dataset", "mnist1d", "--n-max", "60", "--imbalance-ratio", "10", "--epochs", "2",
        "--batch-size", "32", "--device", "cpu", "--no-progress"]  # fmt: skip
#: What ``evaluate --json`` adds to the fields of an evaluated ``EpochRecord``.
ABOUT = {"run", "method", "dataset", "split", "device"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    """Two tiny AllNC runs trained through the command line: on the test split (with an MNIST-1D
    cache folder) and on the validation split."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for split, cache in (("test", ["--data-root", str(root / "cache")]), ("validation", [])):
        out[split] = str(root / split)
        argv = ["train", *TINY, *cache, "--method", "allnc", "--split", split, "--out", out[split]]
        assert main(argv) == 0
    return out


@pytest.mark.parametrize("split", ["test", "validation"])
def test_evaluate_reproduces_the_last_epoch(split, runs, tmp_path, capsys) -> None:
    capsys.readouterr()
    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--run", runs[split], "--device", "cpu", "--json", str(scores)]) == 0
    printed = capsys.readouterr().out
    for words in (f"{split} accuracy", "overall", "many", "few", "minority", "per class", "NC1"):
        assert words in printed, words
    final = RunResult.load(runs[split]).final
    assert RunResult.load(runs[split]).config.split == split
    got = json.loads(scores.read_text())
    assert got["split"] == split and got["epoch"] == final.epoch == 2
    assert got["accuracy"] == pytest.approx(final.accuracy, abs=1e-6)
    assert got["nc"]["nc1"] == pytest.approx(final.nc1, abs=1e-6)
    assert got["per_class"] == pytest.approx(final.per_class, abs=1e-6)
    history = final.as_dict()
    assert set(got) - ABOUT <= set(history)  # the history's names, nothing renamed
    for name in ("train_acc", "minority_accuracy", "majority_accuracy", "many", "medium", "few"):
        assert got[name] == pytest.approx(history[name], abs=1e-6), name
    for name in NC_FIELDS:
        assert got["nc"][name] == pytest.approx(history["nc"][name], abs=1e-6), name


def test_a_moved_mnist1d_cache_is_skipped(runs, tmp_path, capsys) -> None:
    copy = shutil.copytree(runs["test"], tmp_path / "run")
    run = json.loads((copy / "run.json").read_text())
    assert run["config"]["data_root"] == str(Path(runs["test"]).parent / "cache")
    run["config"]["data_root"] = str(tmp_path / "moved")
    (copy / "run.json").write_text(json.dumps(run))
    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--run", str(copy), "--device", "cpu", "--json", str(scores)]) == 0
    final = RunResult.load(runs["test"]).final
    got = json.loads(scores.read_text())
    assert got["accuracy"] == pytest.approx(final.accuracy, abs=1e-6)
    assert got["nc"]["nc1"] == pytest.approx(final.nc1, abs=1e-6)
    assert not (tmp_path / "moved").exists()


def _edit_both(copy: Path, **changes) -> None:
    """Change the run's settings in run.json and in its checkpoint alike (a consistent run
    whose recorded settings no longer fit its weights or data)."""
    run = json.loads((copy / "run.json").read_text())
    run["config"].update(changes)
    (copy / "run.json").write_text(json.dumps(run))
    state = load_checkpoint(copy / CHECKPOINT_NAME)
    state["run"] = json.dumps(run)
    save_checkpoint(copy / CHECKPOINT_NAME, state)


def test_a_folder_without_a_run_is_one_line(tmp_path, capsys) -> None:
    err = fails(["evaluate", "--run", str(tmp_path)], capsys)
    assert f"no {CHECKPOINT_NAME} in {tmp_path} (no run)" in err


def test_a_run_without_a_checkpoint_is_one_line(runs, tmp_path, capsys) -> None:
    copy = shutil.copytree(runs["test"], tmp_path / "run")
    (copy / CHECKPOINT_NAME).unlink()
    err = fails(["evaluate", "--run", str(copy)], capsys)
    assert f"no {CHECKPOINT_NAME} in {copy} (a run without its weights)" in err


def test_a_validation_run_cannot_be_scored_on_the_test_set(runs, capsys) -> None:
    err = fails(["evaluate", "--run", runs["validation"], "--split", "test"], capsys)
    assert "split='validation'" in err and "training pool" in err


def test_a_moved_data_folder_asks_for_data_root(runs, tmp_path, capsys) -> None:
    copy = shutil.copytree(runs["test"], tmp_path / "run")
    _edit_both(copy, dataset="cifar10-lt", data_root=str(tmp_path / "moved"))
    err = fails(["evaluate", "--run", str(copy)], capsys)
    assert f"{tmp_path / 'moved'} is gone" in err and "--data-root" in err


def test_a_checkpoint_of_another_model_is_one_line(runs, tmp_path, capsys) -> None:
    copy = shutil.copytree(runs["test"], tmp_path / "run")
    _edit_both(copy, method="ce", method_options={})
    err = fails(["evaluate", "--run", str(copy)], capsys)
    assert "does not fit the run's ce model" in err


def test_a_run_json_that_disagrees_with_the_checkpoint_is_refused(runs, tmp_path, capsys):
    copy = shutil.copytree(runs["test"], tmp_path / "run")
    run = json.loads((copy / "run.json").read_text())
    run["config"]["imbalance_ratio"] = 5.0
    (copy / "run.json").write_text(json.dumps(run))
    err = fails(["evaluate", "--run", str(copy)], capsys)
    assert "run.json disagrees with checkpoint.pt (imbalance_ratio: run.json 5.0, " in err
    assert "checkpoint 10.0)" in err and "--trust-checkpoint" in err and "--resume" in err
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--run", str(copy), "--trust-checkpoint", "--json", str(scores)]
    assert main(argv) == 0  # the checkpoint's settings: the run's own numbers
    got, final = json.loads(scores.read_text()), RunResult.load(runs["test"]).final
    assert got["accuracy"] == pytest.approx(final.accuracy, abs=1e-6)
    assert got["nc"]["nc1"] == pytest.approx(final.nc1, abs=1e-6)


@pytest.mark.parametrize("damage", ["missing", "truncated", "a list"])
def test_an_unreadable_run_json_needs_trust_checkpoint(runs, tmp_path, capsys, damage):
    copy = shutil.copytree(runs["test"], tmp_path / "run")
    path = copy / "run.json"
    {"missing": path.unlink, "truncated": lambda: path.write_text(path.read_text()[:40]),
     "a list": lambda: path.write_text("[]")}[damage]()  # fmt: skip
    assert "is missing or unreadable" in fails(["evaluate", "--run", str(copy)], capsys)
    assert main(["evaluate", "--run", str(copy), "--trust-checkpoint"]) == 0


def test_evaluate_refuses_several_processes(runs, monkeypatch, capsys) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    err = fails(["evaluate", "--run", runs["test"]], capsys)
    assert "evaluate runs in one process" in err


@pytest.mark.slow
def test_a_split_list_run_is_scored_where_its_data_moved(tmp_path, capsys) -> None:
    write_imagenet_lt(tmp_path / "data")
    out = str(tmp_path / "run")
    argv = ["train", "--dataset", "imagenet-lt", "--data-root", str(tmp_path / "data"),
            "--image-size", "32", "--backbone", "resnet50", "--method", "ce", "--epochs", "1",
            "--batch-size", "32", "--workers", "0", "--device", "cpu", "--no-progress",
            "--out", out]  # fmt: skip
    assert main(argv) == 0
    (tmp_path / "data").rename(tmp_path / "moved")  # the lists lay in the data folder
    assert "pass --data-root" in fails(["evaluate", "--run", out], capsys)
    final = RunResult.load(out).final
    scores = tmp_path / "scores.json"
    for split in ("test", "validation"):
        argv = ["evaluate", "--run", out, "--data-root", str(tmp_path / "moved"),
                "--split", split, "--device", "cpu", "--json", str(scores)]  # fmt: skip
        assert main(argv) == 0
        got = json.loads(scores.read_text())
        assert got["split"] == split and len(got["per_class"]) == 3
        assert got["nc"]["nc1"] == pytest.approx(final.nc1, abs=1e-6)  # the same training set
        if split == "test":
            assert got["accuracy"] == pytest.approx(final.accuracy, abs=1e-6)


def test_many_classes_print_their_extremes_not_every_class() -> None:
    per_class = [k / 40 for k in range(40)]
    per_class[7] = None  # a class without evaluation samples
    record = EpochRecord(epoch=90, train_acc=0.9, accuracy=0.5, many=0.6, medium=0.5, few=None,
                         minority_accuracy=0.4, majority_accuracy=0.6, per_class=per_class,
                         nc={"nc1": 0.25, "num_classes": 40, "minority": [20]})  # fmt: skip
    table = scores_text(record, "test", "ce on imagenet-lt", per_class=True)
    assert "40 classes: lowest 0.0% (class 0), median 50.0%, highest 97.5% (class 39)" in table
    assert "few -" in table and "NC1 0.250" in table and len(table.splitlines()) == 6
