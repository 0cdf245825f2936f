"""``train.evaluate`` against a plain float32 reference, its autocast split, and the cadence."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from allnc_edu import devices, evaluate, train
from allnc_edu.data import DATASETS, LongTailDataset, make_gaussian_classes
from allnc_edu.groups import accuracy_by_group, minority_classes
from allnc_edu.methods import make_method
from allnc_edu.metrics import nc_metrics
from allnc_edu.models import build_backbone

COUNTS = [40, 20, 10, 5]
NC_KEYS = ("nc1", "equinorm_means", "etf_distance_means", "self_duality", "ncc_agreement",
           "mc_means", "mc_weights")  # fmt: skip


@pytest.fixture(scope="module")
def gaussian() -> LongTailDataset:
    return make_gaussian_classes(COUNTS, dim=6, test_per_class=9, seed=0)


@pytest.fixture(scope="module")
def images() -> LongTailDataset:
    """A tiny long-tailed image set, (3, 16, 16), for the ResNet and channels_last path."""
    g = torch.Generator().manual_seed(0)
    train_y = torch.repeat_interleave(torch.arange(4), torch.tensor(COUNTS))
    test_y = torch.arange(4).repeat(6)
    return LongTailDataset(
        name="images", train_x=torch.randn(len(train_y), 3, 16, 16, generator=g),
        train_y=train_y, test_x=torch.randn(len(test_y), 3, 16, 16, generator=g), test_y=test_y,
        counts=COUNTS, num_classes=4, class_names=list("abcd"), input_shape=(3, 16, 16),
        imbalance_ratio=8.0, profile="exp",
    )  # fmt: skip


def _method(name: str, data: LongTailDataset, backbone: str):
    torch.manual_seed(0)
    kw = {"hidden": (32, 16)} if backbone == "mlp" else {}
    net = build_backbone(backbone, data.input_shape, **kw)
    return make_method(name, net, data.num_classes, data.counts)


def _reference(method, data: LongTailDataset) -> dict:
    """Everything in float32, one batch per set, contiguous memory: the plain computation."""
    method.eval()
    with torch.no_grad():
        out = method(data.train_x)
        test_pred = method(data.test_x).logits.argmax(1)
    weight, bias = method.classifier()
    minority = minority_classes(data.counts)
    return {
        "train_acc": (out.logits.argmax(1) == data.train_y).double().mean().item(),
        "test": accuracy_by_group(test_pred, data.test_y, data.counts),
        "nc": nc_metrics(out.features, data.train_y, weight, bias, minority=minority).as_dict(),
    }


@pytest.mark.parametrize(("name", "backbone", "rel"), [("la", "mlp", 1e-6),
                                                       ("ce", "resnet32-ldam", 1e-4)])  # fmt: skip
def test_evaluate_matches_a_plain_float32_reference(name, backbone, rel, gaussian, images):
    """Batched, channels_last, queued without syncs and accumulated in chunks: the same numbers
    as one float32 forward of each set. Accuracies are equal; NC metrics agree to ``rel`` (the
    float32 features differ only in summation order: batches, memory format)."""
    data = gaussian if backbone == "mlp" else images
    method = _method(name, data, backbone)
    got = evaluate.evaluate(method, data, batch_size=16)
    want = _reference(method, data)
    assert got.train_acc == want["train_acc"]
    assert _groups(got) == want["test"]
    for key in NC_KEYS:
        assert got.nc[key] == pytest.approx(want["nc"][key], rel=rel, abs=1e-9), key


def _groups(record) -> dict:
    """An evaluation's test accuracies under ``groups.accuracy_by_group``'s names."""
    return {"overall": record.accuracy, "many": record.many, "medium": record.medium,
            "few": record.few, "minority": record.minority_accuracy,
            "majority": record.majority_accuracy, "per_class": record.per_class}  # fmt: skip


def test_nc_uses_float32_features_and_the_test_set_the_training_autocast(gaussian, monkeypatch):
    """With bfloat16 autocast on (forced here: this CPU may lack it), the training-set forward,
    which feeds the NC accumulator, still runs in float32, so the NC metrics do not change; the
    test-set forward runs under autocast."""
    monkeypatch.setattr(devices, "_cpu_has_native_bf16", lambda: True)
    method = _method("ce", gaussian, "mlp")
    seen: list[tuple[int, bool]] = []
    method.register_forward_hook(
        lambda _m, args, _out: seen.append((len(args[0]), torch.is_autocast_enabled("cpu")))
    )
    low = evaluate.evaluate(method, gaussian, amp=True)
    n_train, n_test = len(gaussian.train_y), len(gaussian.test_y)
    assert seen == [(n_train, False), (n_test, True)]
    full = evaluate.evaluate(method, gaussian, amp=False)
    assert low.nc == full.nc and low.train_acc == full.train_acc
    assert low.accuracy == pytest.approx(full.accuracy, abs=0.1)
    seen.clear()
    without_nc = evaluate.evaluate(method, gaussian, amp=True, nc=False)
    assert without_nc.nc is None and seen == [(n_train, True), (n_test, True)]


def test_autocast_for_uses_bfloat16_only_where_supported(monkeypatch) -> None:
    cpu = torch.device("cpu")
    nothing = type(devices.contextlib.nullcontext())
    assert isinstance(devices.autocast_for(cpu, amp=False), nothing)
    monkeypatch.setattr(devices, "_cpu_has_native_bf16", lambda: False)
    assert not isinstance(devices.autocast_for(cpu, amp=True), torch.autocast)
    monkeypatch.setattr(devices, "_cpu_has_native_bf16", lambda: True)
    ctx = devices.autocast_for(cpu, amp=True)
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16


def test_geometry_holds_the_class_means_and_classifier(gaussian) -> None:
    method = _method("ce", gaussian, "mlp")
    got = evaluate.evaluate(method, gaussian, geometry=True).geometry
    method.eval()
    with torch.no_grad():
        h = method(gaussian.train_x).features.double()
    means = torch.stack([h[gaussian.train_y == k].mean(0) for k in range(len(COUNTS))])
    torch.testing.assert_close(torch.tensor(got["class_means"], dtype=torch.float64), means)
    assert torch.tensor(got["classifier"]).shape == (len(COUNTS), 16)


def test_fit_evaluates_at_the_dataset_default_cadence(gaussian) -> None:
    """No ``metrics_every``: the data set's recipe (``data.DATASETS``; MNIST-1D: every 2
    epochs), and always the last epoch."""
    as_mnist1d = dataclasses.replace(gaussian, name="mnist1d")
    every = DATASETS["mnist1d"].recipe["metrics_every"]
    assert every == 2
    result = train.fit(_method("ce", as_mnist1d, "mlp"), as_mnist1d, epochs=5, batch_size=16,
                       device="cpu", progress=False)  # fmt: skip
    assert result.config.train.metrics_every == every
    assert [h.epoch for h in result.history if h.evaluated] == [2, 4, 5]
    assert all(h.nc is None for h in result.history if not h.evaluated)
    assert DATASETS["cifar10-lt"].recipe["metrics_every"] == 10
