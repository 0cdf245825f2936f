"""The training loop on tiny data: every method trains, resume is exact, divergence is caught."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
import torch

from allnc_edu.checkpoint import CHECKPOINT_NAME, load_checkpoint, write_json
from allnc_edu.data import LongTailDataset, make_gaussian_classes
from allnc_edu.evaluate import evaluate
from allnc_edu.groups import minority_classes
from allnc_edu.methods import METHODS, make_method
from allnc_edu.metrics import nc_metrics
from allnc_edu.models import build_backbone
from allnc_edu.records import RunResult
from allnc_edu.rundir import DifferentRunError, RunExistsError
from allnc_edu.train import DivergenceError, cosine_schedule, fit

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
    assert isinstance(result, RunResult)
    assert [h.epoch for h in result.history] == [1, 2]
    for h in result.history:
        assert math.isfinite(h.loss) and h.samples_per_s > 0 and h.evaluated
        assert 0 <= h.train_acc <= 1 and 0 <= h.accuracy <= 1
        assert h.many is None and h.medium is not None and h.few is not None
        assert len(h.per_class) == len(COUNTS)
        assert h.minority_accuracy == pytest.approx((h.per_class[2] + h.per_class[3]) / 2)
        assert h.majority_accuracy == pytest.approx((h.per_class[0] + h.per_class[1]) / 2)
        assert h.nc["num_samples"] == sum(COUNTS)
        assert h.nc["minority"] == minority_classes(COUNTS)
        assert h.mc_weights is not None and h.mc_means is not None
    assert result.complete and result.epochs == 2
    assert result.accuracy == result.history[-1].accuracy
    assert result.nc1 == result.history[-1].nc["nc1"]
    assert result.shot_groups == {"many": [], "medium": [0, 1], "few": [2, 3]}
    assert result.config.method == name and result.config.backbone == "mlp"
    gbbn = name == "allnc"  # a GBBN step also draws a class-balanced batch of the same size
    assert [h.samples for h in result.history] == [(2 if gbbn else 1) * sum(COUNTS)] * 2
    assert result.samples_seen == 2 * (2 if gbbn else 1) * sum(COUNTS)


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
    assert present <= h.loss_parts.keys()
    assert not absent & h.loss_parts.keys()


def test_training_learns_a_separable_problem() -> None:
    data = make_gaussian_classes(COUNTS, dim=6, test_per_class=12, separation=6.0, seed=1)
    before = evaluate(_method("ce", data), data, nc=False).accuracy
    after = _fit(_method("ce", data), data, epochs=10, lr=0.1).accuracy
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
    train = result.config.train
    assert train.augment and train.channels_last and train.amp
    conv = next(m for m in method.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(result.history[0].loss)


def test_signals_are_shifted_only_when_asked(data) -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 12 + [1] * 6 + [2] * 3)
    signals = LongTailDataset(
        name="tiny-signals", train_x=torch.randn(21, 1, 16, generator=g), train_y=y,
        test_x=torch.randn(9, 1, 16, generator=g), test_y=torch.arange(3).repeat(3),
        counts=[12, 6, 3], num_classes=3, class_names=["a", "b", "c"], input_shape=(1, 16),
        imbalance_ratio=4.0, profile="exp",
    )  # fmt: skip
    losses = {}
    for augment in (None, False, True):
        torch.manual_seed(0)
        method = make_method("ce", build_backbone("cnn1d", (1, 16)), 3, [12, 6, 3])
        result = _fit(method, signals, epochs=1, batch_size=8, augment=augment)
        assert result.config.train.augment is bool(augment)  # off by default for signals
        losses[augment] = result.history[0].loss
    assert losses[None] == losses[False] != losses[True]
    with pytest.raises(ValueError, match=r"images \(C, H, W\) or signals"):
        _fit(_method("ce", data), data, augment=True)  # (d,) inputs have nothing to shift


def test_resume_continues_the_same_run(data, tmp_path) -> None:
    straight = _method("allnc", data)
    full = _fit(straight, data, epochs=4)
    resumed = _method("allnc", data)
    first = _fit(resumed, data, epochs=4, out_dir=tmp_path, stop_after=2)
    assert not first.complete and len(first.history) == 2 and first.history[-1].evaluated
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 2
    assert not json.loads((tmp_path / "run.json").read_text())["complete"]
    fresh = _method("allnc", data, seed=123)  # different init: all must come from the checkpoint
    second = _fit(fresh, data, epochs=4, out_dir=tmp_path, resume=True)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key
    assert [h.loss for h in second.history] == [h.loss for h in full.history]
    assert second.nc == full.nc and second.samples_seen == full.samples_seen
    assert json.loads((tmp_path / "run.json").read_text())["complete"]
    assert len(json.loads((tmp_path / "history.json").read_text())) == 4
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [CHECKPOINT_NAME, "history.json", "run.json"]
    loaded = RunResult.load(tmp_path)
    assert loaded.summary() == second.summary() and loaded.config == second.config


def test_resume_refuses_a_different_run(data, tmp_path) -> None:
    _fit(_method("ce", data), data, epochs=1, out_dir=tmp_path)
    with pytest.raises(DifferentRunError, match=r"lr: saved 0\.1, now 0\.5"):
        _fit(_method("ce", data), data, epochs=1, out_dir=tmp_path, resume=True, lr=0.5)
    with pytest.raises(ValueError, match="out_dir"):
        _fit(_method("ce", data), data, resume=True)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"epochs": 3}, "epochs: saved 2, now 3 (the cosine learning-rate schedule spans"),
        ({"options": {"hycon": False}}, "method_options.hycon: saved True, now False"),
        ({"options": {"gbbn": False}}, "method_options.gbbn: saved True, now False"),
        ({"method": "ce"}, "method: saved 'allnc', now 'ce'"),
        ({"data_seed": 1}, "data_seed: saved 0, now 1"),
        ({"counts": [64, 32, 16, 4]}, "imbalance_ratio: saved 8.0, now 16.0"),
        ({"weight_decay": 0.0}, "weight_decay: saved 0.005, now 0.0"),
        ({"hidden": (32, 8)}, "its model does not match this one"),
    ],
)
def test_resume_refuses_any_change_naming_it(change, says, data, tmp_path) -> None:
    """Every setting of the run is compared (not only a few), and the message names it."""
    _fit(_method("allnc", data), data, out_dir=tmp_path, stop_after=1)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    other = make_gaussian_classes(
        change.get("counts", COUNTS), dim=6, test_per_class=12, seed=change.get("data_seed", 0)
    )
    torch.manual_seed(0)
    backbone = build_backbone("mlp", other.input_shape, hidden=change.get("hidden", (32, 16)))
    method = make_method(
        change.get("method", "allnc"), backbone, 4, other.counts, **change.get("options", {})
    )
    kw = {k: v for k, v in change.items() if k in ("epochs", "weight_decay")}
    with pytest.raises(DifferentRunError, match=re.escape(says)) as err:
        _fit(method, other, out_dir=tmp_path, resume=True, **kw)
    assert "\n" not in str(err.value)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before  # nothing was trained or written


def test_progress_and_device_may_change_on_resume(data, tmp_path) -> None:
    _fit(_method("ce", data), data, out_dir=tmp_path, stop_after=1)
    done = _fit(_method("ce", data), data, out_dir=tmp_path, resume=True, progress=True)
    assert done.complete and done.config.train.progress


def test_an_existing_run_is_refused_unless_resumed_or_overwritten(data, tmp_path) -> None:
    first = _fit(_method("ce", data), data, epochs=1, out_dir=tmp_path)
    with pytest.raises(RunExistsError, match="already holds a run"):
        _fit(_method("ce", data), data, epochs=1, out_dir=tmp_path)
    again = _fit(_method("la", data), data, epochs=1, out_dir=tmp_path, overwrite=True)
    assert again.method == "la" and first.method == "ce"
    assert RunResult.load(tmp_path).method == "la"
    (tmp_path / CHECKPOINT_NAME).unlink()
    with pytest.raises(RunExistsError, match=r"no checkpoint\.pt to resume from"):
        _fit(_method("la", data), data, epochs=1, out_dir=tmp_path, resume=True)


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
    got = evaluate(method, data, batch_size=7).nc
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
    assert all(record.geometry is not None for record in result.history)
    last = result.geometry
    method.eval()
    with torch.no_grad():
        features = method(data.train_x).features.double()
    want_means = torch.stack([features[data.train_y == k].mean(0) for k in range(len(COUNTS))])
    torch.testing.assert_close(torch.tensor(last["class_means"], dtype=torch.float64), want_means)
    torch.testing.assert_close(
        torch.tensor(last["classifier"], dtype=torch.float64), method.classifier()[0].double()
    )
    assert _fit(_method("ce", data), data, epochs=1).history[-1].geometry is None


def test_resume_refuses_another_backbone(data, tmp_path) -> None:
    """The reproduction of the issue: --backbone changed on resume ended in a raw
    load_state_dict RuntimeError; now it is a one-line refusal naming the backbone."""
    as_signals = dataclasses.replace(
        data,
        train_x=data.train_x.unsqueeze(1),
        test_x=data.test_x.unsqueeze(1),
        input_shape=(1, *data.input_shape),
    )

    def method(backbone: str):
        torch.manual_seed(0)
        net = build_backbone(backbone, as_signals.input_shape)
        return make_method("ce", net, 4, COUNTS)

    _fit(method("mlp"), as_signals, out_dir=tmp_path, stop_after=1)
    with pytest.raises(DifferentRunError, match="backbone: saved 'mlp', now 'cnn1d'"):
        _fit(method("cnn1d"), as_signals, out_dir=tmp_path, resume=True)
