"""Split-file data sets: a tiny ImageNet-LT tree is read back exactly; missing or broken lists
give one-line errors naming what is missing and where it was looked for."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from _filelist_tree import CLASSES, TRAIN_COUNTS, write_imagenet_lt

from allnc_edu.__main__ import main
from allnc_edu.data import load_dataset
from allnc_edu.filelists import FileListDataset, load_filelist, read_split_file, split_paths
from allnc_edu.groups import shot_groups


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet_lt")
    return root, write_imagenet_lt(root)


def test_a_tiny_imagenet_lt_tree_is_read_back(tree) -> None:
    root, lists = tree
    data = load_filelist("imagenet-lt", root, image_size=32)
    assert isinstance(data, FileListDataset)
    assert data.train_files == [p for p, _ in lists["train"]]
    assert data.train_y.dtype == torch.long
    assert data.train_y.tolist() == [k for _, k in lists["train"]]
    assert data.test_files == [p for p, _ in lists["test"]]
    assert data.test_y.tolist() == [k for _, k in lists["test"]]
    assert data.counts == list(TRAIN_COUNTS) and data.num_classes == 3
    assert shot_groups(data.counts) == {"many": [0], "medium": [1], "few": [2]}
    assert data.class_names == list(CLASSES)
    assert data.input_shape == (3, 32, 32) and data.image_size == 32
    assert data.imbalance_ratio == 101 / 5 and data.profile == "natural"
    assert data.split == "test" and data.root == str(root.resolve())
    assert data.split_dir == str(root.resolve())


def test_validation_reads_the_val_list_and_the_counts_stay_the_train_lists(tree) -> None:
    root, lists = tree
    data = load_dataset("imagenet-lt", root=root, split="validation", image_size=64)
    assert data.test_files == [p for p, _ in lists["val"]]
    assert data.counts == list(TRAIN_COUNTS) and data.split == "validation"
    assert data.input_shape == (3, 64, 64)


def test_missing_split_files_name_what_is_missing_and_where(tmp_path, tree) -> None:
    root, _ = tree
    lists = tmp_path / "lists"
    lists.mkdir()
    shutil.copy(root / "ImageNet_LT_val.txt", lists)
    with pytest.raises(ValueError) as err:
        load_filelist("imagenet-lt", root, lists)
    message = str(err.value)
    assert "\n" not in message
    assert "ImageNet_LT_train.txt" in message and "ImageNet_LT_test.txt" in message
    assert "ImageNet_LT_val.txt" not in message and str(lists.resolve()) in message
    shutil.copy(root / "ImageNet_LT_train.txt", lists)
    load_filelist("imagenet-lt", root, lists, split="validation")  # val is all it needs


def test_inat2018_reports_on_its_val_list_and_has_no_validation_split(tmp_path, tree) -> None:
    root, lists = tree
    shutil.copy(root / "ImageNet_LT_train.txt", tmp_path / "iNaturalist18_train.txt")
    shutil.copy(root / "ImageNet_LT_val.txt", tmp_path / "iNaturalist18_val.txt")
    data = load_filelist("inat2018", root, tmp_path)
    assert data.test_files == [p for p, _ in lists["val"]] and data.split == "test"
    assert data.mean == [0.466, 0.471, 0.380] and data.std == [0.195, 0.194, 0.192]
    with pytest.raises(ValueError, match="no validation list"):
        split_paths("inat2018", tmp_path, "validation")
    with pytest.raises(ValueError, match=r"Places_LT_train\.txt, Places_LT_test\.txt"):
        split_paths("places-lt", tmp_path)


def test_a_malformed_line_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("a/b.jpg 0\n\n/c/d e.jpg 12\nbroken\n")
    with pytest.raises(ValueError, match=r"list\.txt, line 4: expected"):
        read_split_file(path)
    path.write_text("a/b.jpg 0\n\n/c/d e.jpg 12\n")
    files, labels = read_split_file(path)
    assert files == ["a/b.jpg", "c/d e.jpg"] and labels.tolist() == [0, 12]


def test_a_wrong_data_root_or_a_class_without_training_images_is_refused(tmp_path, tree) -> None:
    root, _ = tree
    with pytest.raises(ValueError, match=r"not found under .*--data-root"):
        load_filelist("imagenet-lt", tmp_path, root)
    (tmp_path / "ImageNet_LT_train.txt").write_text("x.jpg 0\nx.jpg 2\n")
    (tmp_path / "ImageNet_LT_test.txt").write_text("x.jpg 0\n")
    with pytest.raises(ValueError, match=r"classes \[1\] have none"):
        load_filelist("imagenet-lt", tmp_path)
    with pytest.raises(ValueError, match="no download, no n_max"):
        load_dataset("imagenet-lt", root=root, n_max=10)


@pytest.mark.slow  # ~25 s (one thread): a ResNet-50 AllNC epoch, then its evaluation again
def test_one_resnet50_epoch_at_image_size_32_through_the_cli(tmp_path, tree) -> None:
    root, _ = tree
    out = tmp_path / "run"
    argv = ["train", "--dataset", "imagenet-lt", "--data-root", str(root), "--split-dir",
            str(root), "--image-size", "32", "--epochs", "1", "--backbone", "resnet50",
            "--batch-size", "64", "--workers", "0", "--device", "cpu", "--no-progress",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    run = json.loads((out / "run.json").read_text())
    config = run["config"]
    assert (config["dataset"], config["backbone"], config["image_size"]) == (
        "imagenet-lt", "resnet50", 32)  # fmt: skip
    assert config["split_dir"] == str(root.resolve()) and config["weight_decay"] == 5e-4
    assert run["counts"] == list(TRAIN_COUNTS)
    assert run["shot_groups"] == {"many": [0], "medium": [1], "few": [2]}
    assert run["samples_seen"] == 2 * 136  # every image once, plus GBBN's balanced batches
    (epoch,) = json.loads((out / "history.json").read_text())
    assert epoch["accuracy"] is not None and len(epoch["per_class"]) == 3
    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--run", str(out), "--device", "cpu", "--json", str(scores)]) == 0
    again = json.loads(scores.read_text())
    assert again["accuracy"] == epoch["accuracy"]
    assert abs(again["nc"]["nc1"] - epoch["nc"]["nc1"]) < 1e-6


def test_the_cli_reports_missing_lists_and_misplaced_flags_in_one_line(tmp_path, capsys) -> None:
    argv = ["train", "--dataset", "places-lt", "--data-root", str(tmp_path), "--epochs", "1"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "Places_LT_train.txt, Places_LT_test.txt" in line and str(tmp_path.resolve()) in line
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "mnist1d", "--image-size", "32", "--workers", "0"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith("--image-size, --workers: only for imagenet-lt, inat2018, places-lt, "
                         "not mnist1d")  # fmt: skip
