"""Refactoring guard: a 2-epoch MNIST-1D run of every method gives the numbers recorded in
``golden/history_2epochs.json`` before the training loop was reorganised (made at commit
b74956a with one thread: OMP_NUM_THREADS=1, ``torch.set_num_threads(1)``; timing fields left
out). One thread on the same kind of CPU reproduces them bit for bit; the tolerance only
absorbs a CPU whose float reductions round differently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from allnc_edu import data, experiments
from allnc_edu.methods import METHODS

GOLDEN = Path(__file__).with_name("golden") / "history_2epochs.json"
TIMING = ("train_s", "samples_per_s")


def _close(got, want, where: str) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            _close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            _close(a, b, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), where
    else:
        assert got == want, where


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_two_epochs_of_every_method_match_the_golden_history(method):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train = data.load_dataset("mnist1d", imbalance_ratio=100, profile="step", n_max=200)
        run = experiments.run_method(method, train, epochs=2, device="cpu", amp=False,
                                     progress=False, metrics_every=1, augment=True)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    got = [{k: v for k, v in r.as_dict().items() if k not in TIMING} for r in run.history]
    _close(got, json.loads(GOLDEN.read_text())[method], method)
