"""The training loop on tiny data: every method trains, resume is exact, divergence is caught."""

from __future__ import annotations

import json
import math

import pytest
import torch

from allnc_edu.checkpoint import CHECKPOINT_NAME, load_checkpoint, write_json
from allnc_edu.data import LongTailDataset, make_gaussian_classes, minority_classes
from allnc_edu.methods import METHODS, make_method
from allnc_edu.metrics import nc_metrics
from allnc_edu.models import build_backbone
from allnc_edu.train import DivergenceError, cosine_schedule, evaluate, fit

COUNTS = [64, 32, 16, 8]


@pytest.fixture(scope="module")
def data() -> LongTailDataset:
    return make_gaussian_classes(COUNTS, dim=6, test_per_class=12, seed=0)


def _method(name: str, data: LongTailDataset, seed: int = 0, **options):
    torch.manual_seed(seed)
    backbone = build_backbone("mlp", data.input_shape, hidden=(32, 16))
    return make_method(name, backbone, data.num_classes, data.counts, **options)


def _fit(method, data, **kw):
    kw = {"epochs": 2, "batch_size": 16, "device": "cpu", "progress": False, **kw}
    return fit(method, data, **kw)


@pytest.mark.parametrize("name", METHODS)
def test_every_method_trains_and_records_the_history(name, data) -> None:
    result = _fit(_method(name, data), data)
    assert [h["epoch"] for h in result.history] == [1, 2]
    for h in result.history:
        assert math.isfinite(h["loss"]) and h["samples_per_s"] > 0
        assert 0 <= h["train_acc"] <= 1 and 0 <= h["test_acc"] <= 1
        assert {"test_many", "test_medium", "test_few"} <= h.keys()
        assert len(h["test_per_class"]) == len(COUNTS)
        assert h["nc"]["num_samples"] == sum(COUNTS)
        assert h["nc"]["minority"] == minority_classes(COUNTS)
        assert h["nc"]["mc_weights"] is not None and h["nc"]["mc_means"] is not None
    report = result.report
    assert report["complete"] and report["epochs_done"] == 2
    assert report["test"]["overall"] == result.history[-1]["test_acc"]
    assert report["nc"] == result.history[-1]["nc"]
    assert report["shot_groups"] == {"many": [], "medium": [0, 1], "few": [2, 3]}


@pytest.mark.parametrize(
    ("options", "present", "absent"),
    [
        ({}, {"conv", "rebal", "hycon", "p2p"}, set()),
        ({"hycon": False}, {"conv", "rebal", "p2p"}, {"hycon"}),
        ({"p2p": False}, {"conv", "rebal", "hycon"}, {"p2p"}),
        ({"gbbn": False}, {"conv", "hycon", "p2p"}, {"rebal"}),
    ],
)
def test_allnc_ablations_log_their_loss_parts(options, present, absent, data) -> None:
    h = _fit(_method("allnc", data, **options), data, epochs=1).history[-1]
    assert present <= h["loss_parts"].keys()
    assert not absent & h["loss_parts"].keys()


def test_training_learns_a_separable_problem() -> None:
    data = make_gaussian_classes(COUNTS, dim=6, test_per_class=12, separation=6.0, seed=1)
    before = evaluate(_method("ce", data), data, nc=False)["test"]["overall"]
    after = _fit(_method("ce", data), data, epochs=10, lr=0.1).report["test"]["overall"]
    assert after > 0.9 > before


def test_image_path_with_crop_flip_channels_last_and_bf16() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 12 + [1] * 6 + [2] * 3)
    images = LongTailDataset(
        name="tiny-images", train_x=torch.randn(21, 3, 8, 8, generator=g), train_y=y,
        test_x=torch.randn(9, 3, 8, 8, generator=g), test_y=torch.arange(3).repeat(3),
        counts=[12, 6, 3], num_classes=3, class_names=["a", "b", "c"], input_shape=(3, 8, 8),
        imbalance_ratio=4.0, profile="exp",
    )  # fmt: skip
    torch.manual_seed(0)
    method = make_method("allnc", build_backbone("resnet32-ldam", (3, 8, 8)), 3, [12, 6, 3])
    result = _fit(method, images, epochs=1, batch_size=8)
    assert result.config["augment"] and result.config["channels_last"] and result.config["amp"]
    conv = next(m for m in method.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(result.history[0]["loss"])


def test_resume_continues_the_same_run(data, tmp_path) -> None:
    straight = _method("allnc", data)
    full = _fit(straight, data, epochs=4)
    resumed = _method("allnc", data)
    first = _fit(resumed, data, epochs=4, out_dir=tmp_path, stop_after=2)
    assert not first.report["complete"] and len(first.history) == 2
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 2
    fresh = _method("allnc", data, seed=123)  # different init: all must come from the checkpoint
    second = _fit(fresh, data, epochs=4, out_dir=tmp_path, resume=True)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key
    assert [h["loss"] for h in second.history] == [h["loss"] for h in full.history]
    assert second.report["nc"] == full.report["nc"]
    assert json.loads((tmp_path / "report.json").read_text())["complete"]
    assert len(json.loads((tmp_path / "history.json").read_text())) == 4


def test_resume_refuses_a_different_run(data, tmp_path) -> None:
    _fit(_method("ce", data), data, epochs=1, out_dir=tmp_path)
    with pytest.raises(ValueError, match="lr"):
        _fit(_method("ce", data), data, epochs=1, out_dir=tmp_path, resume=True, lr=0.5)
    with pytest.raises(ValueError, match="out_dir"):
        _fit(_method("ce", data), data, resume=True)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_checkpoint(data, tmp_path) -> None:
    method = _method("ce", data)
    real_loss, calls = method.loss, []
    steps_per_epoch = math.ceil(sum(COUNTS) / 16)

    def loss(*args, **kw):
        calls.append(1)
        value, parts = real_loss(*args, **kw)
        return (value * math.nan if len(calls) == steps_per_epoch + 3 else value), parts

    method.loss = loss
    with pytest.raises(DivergenceError, match="epoch 2, step 3") as err:
        _fit(method, data, epochs=3, out_dir=tmp_path)
    assert (err.value.epoch, err.value.step) == (2, 3)
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1
    assert str(tmp_path / CHECKPOINT_NAME) in str(err.value)


def test_huge_learning_rate_diverges(data) -> None:
    with pytest.raises(DivergenceError, match="training diverged"):
        _fit(_method("ce", data), data, lr=1e12, epochs=3)


def test_evaluate_matches_metrics_on_all_features(data) -> None:
    method = _method("la", data)
    _fit(method, data, epochs=1)
    got = evaluate(method, data, batch_size=7)["nc"]
    method.eval()
    with torch.no_grad():
        features = method(data.train_x).features
    weight, bias = method.classifier()
    want = nc_metrics(
        features, data.train_y, weight, bias, minority=minority_classes(COUNTS)
    ).as_dict()
    for key in ("nc1", "etf_distance_means", "self_duality", "ncc_agreement", "mc_means"):
        assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), key


def test_cosine_schedule_closed_form() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = cosine_schedule(opt, total_steps=14, warmup_steps=4)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    cosine = [0.5 * (1 + math.cos(math.pi * i / 10)) for i in range(10)]
    assert lrs[4:] == pytest.approx(cosine)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"metrics_every": 0}, "metrics_every"),
        ({"stop_after": 0}, "stop_after"),
        pytest.param(
            {"device": "cuda"},
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present"),
        ),
    ],
)
def test_fit_rejects_bad_settings(kw, match, data) -> None:
    with pytest.raises(ValueError, match=match):
        _fit(_method("ce", data), data, **kw)


def test_write_json_is_atomic_and_json_safe(tmp_path) -> None:
    path = write_json(tmp_path / "a.json", {"x": math.nan, "t": torch.tensor([1.5, math.inf])})
    assert json.loads(path.read_text()) == {"x": None, "t": [1.5, None]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_recorded_geometry_is_the_class_means_and_the_inference_classifier(data) -> None:
    method = _method("allnc", data)
    result = _fit(method, data, record_geometry=True)
    assert all("geometry" in record for record in result.history)
    last = result.history[-1]["geometry"]
    method.eval()
    with torch.no_grad():
        features = method(data.train_x).features.double()
    want_means = torch.stack([features[data.train_y == k].mean(0) for k in range(len(COUNTS))])
    torch.testing.assert_close(torch.tensor(last["class_means"], dtype=torch.float64), want_means)
    torch.testing.assert_close(
        torch.tensor(last["classifier"], dtype=torch.float64), method.classifier()[0].double()
    )
    assert "geometry" not in _fit(_method("ce", data), data, epochs=1).history[-1]
