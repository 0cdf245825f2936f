"""decouple: cRT re-trains only the head, draws the classes in balance, and recovers the
minority on a toy whose features already separate it; a saved run's method loads back."""

from __future__ import annotations

import pytest
import torch

from allnc_edu import decouple
from allnc_edu import experiments as ex
from allnc_edu.data import load_dataset, make_gaussian_classes
from allnc_edu.evaluate import evaluate
from allnc_edu.methods import make_method
from allnc_edu.models import build_backbone
from allnc_edu.train import fit

COUNTS = [200] * 5 + [2] * 5  # step profile, IR 100: the minority are classes 5 to 9
TINY = {"batch_size": 32, "device": "cpu", "progress": False}


def _trained(name: str, data, epochs: int = 5, seed: int = 0):
    """A method trained in place by ``train.fit``, and its run."""
    torch.manual_seed(seed)
    method = make_method(name, build_backbone("mlp", data.input_shape), data.num_classes,
                         data.counts)  # fmt: skip
    return method, fit(method, data, epochs=epochs, seed=seed, **TINY)


@pytest.fixture(scope="module")
def separable():
    """Well separated Gaussian classes (centres 6 apart in units of the noise)."""
    return make_gaussian_classes(COUNTS, dim=10, separation=6.0, test_per_class=50, seed=0)


@pytest.fixture(scope="module")
def ce(separable):
    return _trained("ce", separable)


def test_only_the_head_changes_and_the_original_stays(ce, separable) -> None:
    method, _ = ce
    before = {k: v.clone() for k, v in method.state_dict().items()}
    got = decouple.retrain_classifier(method, separable, epochs=2, seed=1, device="cpu")
    assert got.method is not method
    for key, value in method.state_dict().items():  # the original is untouched
        assert torch.equal(value, before[key]), key
    new = got.method.state_dict()
    for key, value in before.items():
        if key.startswith("net.head."):
            assert not torch.equal(new[key], value), f"{key} was not re-trained"
        else:
            assert torch.equal(new[key], value), f"{key} changed: the backbone must stay frozen"
    assert not any(p.requires_grad for p in got.method.net.backbone.parameters())


def test_the_classes_are_drawn_in_balance(ce, separable) -> None:
    method, _ = ce
    epochs, n = 4, sum(COUNTS)
    drawn = decouple.retrain_classifier(method, separable, epochs=epochs, device="cpu").drawn
    assert len(drawn) == len(COUNTS) and sum(drawn) == epochs * n
    expected = epochs * n / len(COUNTS)
    assert all(abs(c - expected) < 0.2 * expected for c in drawn), drawn
    # q = 0 is instance sampling: the two-sample classes are drawn about as often as in the data.
    instance = decouple.retrain_classifier(method, separable, epochs=epochs, q=0.0,
                                           device="cpu").drawn  # fmt: skip
    assert sum(instance[5:]) < 0.05 * sum(instance)


def test_minority_accuracy_recovers_on_separable_features(ce, separable) -> None:
    method, run = ce
    before = evaluate(method, separable)
    assert before.minority_accuracy == pytest.approx(run.minority_accuracy)
    assert before.minority_accuracy < 0.95  # CE on two samples a class leaves room
    after = decouple.retrain_classifier(method, separable, epochs=5, device="cpu").record
    assert after.minority_accuracy >= before.minority_accuracy
    assert after.minority_accuracy > 0.95 and after.majority_accuracy > 0.95


def test_the_record_says_what_the_retraining_did(ce, separable) -> None:
    method, _ = ce
    got = decouple.retrain_classifier(method, separable, epochs=3, seed=2, device="cpu")
    record = got.record
    assert record.evaluated and record.epoch == 3 and record.samples == sum(got.drawn)
    assert record.loss is not None and record.loss > 0 and record.nc is not None
    again = decouple.retrain_classifier(method, separable, epochs=3, seed=2, device="cpu")
    assert torch.equal(again.method.net.head.weight, got.method.net.head.weight)
    other = decouple.retrain_classifier(method, separable, epochs=3, seed=3, device="cpu")
    assert not torch.equal(other.method.net.head.weight, got.method.net.head.weight)


def test_a_method_without_a_learned_linear_head_is_refused(separable) -> None:
    method, _ = _trained("etf-dr", separable, epochs=1)
    with pytest.raises(ValueError, match="learned linear classifier"):
        decouple.retrain_classifier(method, separable, epochs=1, device="cpu")


@pytest.mark.parametrize(
    ("option", "value"), [("epochs", 0), ("lr", 0.0), ("batch_size", 0), ("q", -1.0)]
)
def test_bad_settings_are_one_line(ce, separable, option, value) -> None:
    with pytest.raises(ValueError, match=option):
        decouple.retrain_classifier(ce[0], separable, device="cpu", **{option: value})


def test_a_saved_run_loads_back_with_its_weights(tmp_path) -> None:
    data = load_dataset("gaussian", imbalance_ratio=10, profile="step", n_max=40, seed=0)
    run = ex.run_method("ce", data, epochs=2, out_dir=tmp_path / "ce", **TINY)
    method = decouple.trained_method(tmp_path / "ce", data)
    scores = evaluate(method, data)
    assert scores.per_class == run.final.per_class and scores.nc1 == pytest.approx(run.nc1)
    reloaded = decouple.trained_method(tmp_path / "ce")  # the data loaded again
    assert torch.equal(reloaded.net.head.weight, method.net.head.weight)
    other = load_dataset("gaussian", imbalance_ratio=5, profile="step", n_max=40, seed=0)
    with pytest.raises(ValueError, match="not on the data set given"):
        decouple.trained_method(tmp_path / "ce", other)
