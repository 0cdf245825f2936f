"""The throughput benchmark runs and reports; speeds are measured, never asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from allnc_edu.__main__ import main
from allnc_edu.bench import reference_loader, synthetic_cifar


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
    printed = capsys.readouterr().out
    assert "speedup" in printed and "img/s evaluation" in printed


def test_reference_loader_yields_normalised_augmented_batches() -> None:
    images, labels = synthetic_cifar(8, seed=0)
    assert images.dtype == np.uint8 and images.shape == (8, 32, 32, 3)
    x, y = next(iter(reference_loader(images, labels, 8, workers=0, pin_memory=False)))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    assert sorted(y.tolist()) == sorted(labels.tolist())
    assert x.min() < -1 and x.max() > 1  # normalised, not in [0, 1]
