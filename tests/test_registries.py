"""One place for each everyday change (issue 20): a method, a data set and a metric are one entry
each in their registries; a toy method and a toy metric, registered inside a test alone, go
through ``train``, ``study`` and the report with no other module touched."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from allnc_edu import measures, methods, report
from allnc_edu.__main__ import main
from allnc_edu.data import load_dataset
from allnc_edu.experiments import run_method
from allnc_edu.measures import MetricSpec
from allnc_edu.method_base import Method
from allnc_edu.methods import MethodSpec
from allnc_edu.models import LinearHead, ModelOutput, Network

PACKAGE = Path(__file__).resolve().parents[1] / "allnc_edu"
#: Modules whose literals "ce" and "la" name something else: AllNC's branch losses (``allnc``),
#: the unconstrained-features model's loss and explorer methods (``ufm``, ``widgets``); and the
#: package's list of its modules, one of which is ``allnc``.
OTHER_NAMESPACES = {"allnc.py", "ufm.py", "widgets.py", "__init__.py"}
#: Options whose values are AllNC's branch losses, not methods.
LOSS_OPTIONS = {"rebalance_loss", "conventional_loss"}


def _method_literals() -> dict[str, list[str]]:
    """Where each method's name is written as a string literal in the package."""
    found: dict[str, list[str]] = {name: [] for name in methods.METHODS}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in OTHER_NAMESPACES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        losses = {
            id(v)
            for node in ast.walk(tree)
            if isinstance(node, ast.Dict)
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and k.value in LOSS_OPTIONS
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in found and id(node) not in losses:
                found[node.value].append(f"{path.name}:{node.lineno}")
    return found


def test_each_method_name_is_written_once_in_its_registry_entry() -> None:
    for name, places in _method_literals().items():
        assert len(places) == 1 and places[0].startswith("methods.py:"), (name, places)


class _Toy(Method):
    """A linear head trained with squared error on one-hot targets: nothing else knows it."""

    def __init__(self, backbone: torch.nn.Module, num_classes: int, margin: float = 1.0) -> None:
        super().__init__()
        self.net, self.margin = (
            Network(backbone, LinearHead(backbone.feature_dim, num_classes)),
            margin,
        )

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return self.net(x)

    def loss(self, x, y, *, progress, epoch, balanced_batch=None):
        out = self.net(x)
        target = self.margin * F.one_hot(y, out.logits.shape[1]).float()
        value = F.mse_loss(out.logits, target)
        return value, {"loss": value.detach()}

    def classifier(self):
        return self.net.head.weight.detach(), self.net.head.bias.detach()


@pytest.fixture
def toy(monkeypatch):
    spec = MethodSpec("toy", _Toy, _Toy, "Toy", "squared error on one-hot targets",
                      "a toy method registered by a test")  # fmt: skip
    monkeypatch.setitem(methods.METHODS, "toy", spec)
    norm = MetricSpec("toy_norm", "TOY", "mean norm of the centred class means", None,
                      compute=lambda g: float(g.centred.norm(dim=1).mean()))  # fmt: skip
    monkeypatch.setitem(measures.METRICS, "toy_norm", norm)
    return spec


TINY = ["--dataset", "gaussian", "--n-max", "40", "--imbalance-ratio", "10", "--epochs", "2",
        "--batch-size", "16", "--device", "cpu", "--no-progress"]  # fmt: skip


def test_a_registered_method_and_metric_train_study_and_report(toy, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY, "--method", "toy", "--out", str(run)]) == 0
    assert "toy on gaussian" in capsys.readouterr().out
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["nc"]["toy_norm"] > 0
    assert json.loads((run / "run.json").read_text())["config"]["method_options"] == {"margin": 1.0}
    study = tmp_path / "study.json"
    argv = ["study", *[a for a in TINY if a != "--no-progress"], "--methods", "toy,ce",
            "--seeds", "0", "--no-progress", "--json", str(study)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(study.read_text())["summary"]
    assert summary["toy"]["toy_norm_mean"] > 0 and summary["ce"]["toy_norm_mean"] > 0
    data = load_dataset("gaussian", imbalance_ratio=10, n_max=40)
    result = run_method("toy", data, epochs=2, batch_size=16, device="cpu", progress=False,
                        record_geometry=True)  # fmt: skip
    assert report.label("toy") == "Toy"
    page = report.build_report({"toy": result})
    assert "a toy method registered by a test" in page and "Toy" in page
