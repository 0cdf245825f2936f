"""The throughput benchmark runs and reports; speeds are measured, never asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from allnc_edu.__main__ import main
from allnc_edu.bench import (
    compare_pipelines,
    image_folder_files,
    pil_file_loader,
    reference_loader,
    synthetic_cifar,
    synthetic_jpegs,
)


@pytest.mark.slow  # ~50 CPU s: times training loops
def test_bench_quick_writes_speedup_and_device(tmp_path, capsys) -> None:
    path = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--device", "cpu", "--batch-size", "16", "--ref-workers", "0"]
    argv += ["--json", str(path)]
    assert main(argv) == 0
    result = json.loads(path.read_text())
    assert result["device"].startswith("cpu") and result["device_type"] == "cpu"
    ref, ours = result["reference"]["img_per_s"], result["ours"]["img_per_s"]
    assert ref > 0 and ours > 0
    assert result["speedup"] == ours / ref
    assert result["ours"]["eval_img_per_s"] > 0 and len(result["ours"]["eval_runs"]) == 1
    assert result["mnist1d_allnc"]["samples_per_s"] > 0
    pipeline = result["data_pipeline"]
    assert pipeline["ratio"] == pipeline["ours"]["img_per_s"] / pipeline["reference"]["img_per_s"]
    assert pipeline["images"] == 32 and pipeline["source"] == "32 synthetic JPEGs"
    printed = capsys.readouterr().out
    assert "speedup" in printed and "img/s evaluation" in printed
    assert "StreamLoader" in printed and "ratio" in printed


def test_reference_loader_yields_normalised_augmented_batches() -> None:
    images, labels = synthetic_cifar(8, seed=0)
    assert images.dtype == np.uint8 and images.shape == (8, 32, 32, 3)
    x, y = next(iter(reference_loader(images, labels, 8, workers=0, pin_memory=False)))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    assert sorted(y.tolist()) == sorted(labels.tolist())
    assert x.min() < -1 and x.max() > 1  # normalised, not in [0, 1]


def test_the_data_pipeline_figure_times_both_loaders_over_the_same_files(tmp_path) -> None:
    synthetic_jpegs(tmp_path, 20, seed=0)
    root, files, labels = image_folder_files(tmp_path, 20)
    assert sorted(files) == sorted(f"{k}/{i:05d}.jpg" for i in range(20) for k in [i % 10])
    assert all(int(f.split("/")[0]) == k for f, k in zip(files, labels, strict=True))
    logged: list[str] = []
    out = compare_pipelines(torch.device("cpu"), root, files, labels, batch_size=8,
                            image_size=24, workers=0, reps=2, log=logged.append)  # fmt: skip
    assert out["ratio"] == out["ours"]["img_per_s"] / out["reference"]["img_per_s"] > 0
    assert len(out["ours"]["runs"]) == len(out["reference"]["runs"]) == len(logged) == 2
    x, y = next(iter(pil_file_loader(root, files, labels, batch_size=8, image_size=24, workers=0)))
    assert x.shape == (8, 3, 24, 24) and x.dtype == torch.float32 and x.min() < 0 < x.max()
    assert len(y) == 8 and set(y.tolist()) <= set(labels)
    with pytest.raises(ValueError, match="21 JPEG images wanted, 20 found"):
        image_folder_files(tmp_path, 21)
