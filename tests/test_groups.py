"""groups: shot groups, minority classes and accuracy by group, against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from allnc_edu.data import long_tail_counts
from allnc_edu.groups import accuracy_by_group, mean_over, minority_classes, shot_groups


def test_shot_group_boundaries():
    assert shot_groups([101, 100, 20, 19, 5000]) == {
        "many": [0, 4],
        "medium": [1, 2],
        "few": [3],
    }


def test_minority_classes():
    assert minority_classes([5] * 5) == [2, 3, 4]
    assert minority_classes([5] * 4) == [2, 3]
    assert minority_classes(long_tail_counts(500, 7, 50)) == [3, 4, 5, 6]
    assert minority_classes(long_tail_counts(500, 6, 50, "step")) == [3, 4, 5]
    assert minority_classes([5, 100, 1, 50, 7]) == [0, 2, 4]
    # Ties: among equal counts a larger index counts as smaller.
    assert minority_classes([10, 3, 10, 3, 10]) == [1, 3, 4]
    # K = 2: the smaller class.
    assert minority_classes([50, 5]) == [1] and minority_classes([5, 50]) == [0]


def test_mean_over_skips_missing_classes():
    assert mean_over([1.0, None, 0.5, 0.0], [1, 2, 3]) == pytest.approx(0.25)
    assert mean_over([1.0, None], [1]) is None


def test_accuracy_by_group_hand_computed():
    counts = [500, 150, 60, 20, 10, 3]  # many: 0, 1; medium: 2, 3; few: 4, 5; minority: 3, 4, 5
    labels = torch.arange(6).repeat_interleave(4)  # 4 test samples per class
    correct_per_class = [4, 2, 1, 3, 0, 1]
    pred = labels.clone()
    for c, right in enumerate(correct_per_class):
        pred[4 * c + right : 4 * c + 4] = (c + 1) % 6
    got = accuracy_by_group(pred, labels, counts)
    assert got["per_class"] == [r / 4 for r in correct_per_class]
    assert got["overall"] == pytest.approx(sum(correct_per_class) / 24)
    assert got["many"] == pytest.approx(6 / 8)
    assert got["medium"] == pytest.approx(4 / 8)
    assert got["few"] == pytest.approx(1 / 8)
    assert got["minority"] == pytest.approx((3 + 0 + 1) / 12)
    assert got["majority"] == pytest.approx((4 + 2 + 1) / 12)
    logits = torch.nn.functional.one_hot(pred, 6).float() * 3.0 - 1.0
    assert accuracy_by_group(logits, labels, counts) == got


def test_accuracy_by_group_empty_group_and_class_are_none():
    got = accuracy_by_group([0, 1, 1], [0, 1, 0], [300, 200, 150])
    assert got["medium"] is None and got["few"] is None
    assert got["many"] == pytest.approx(2 / 3)
    assert got["per_class"] == [0.5, 1.0, None]
    assert got["minority"] == pytest.approx(1.0)  # classes 1 and 2; class 2 has no test sample


@pytest.mark.parametrize(
    ("pred", "labels", "match"),
    [([0, 3], [0, 1], "predictions"), ([0, 1], [0, 1, 2], "labels"), ([], [], "N >= 1")],
)
def test_accuracy_by_group_bad_input(pred, labels, match):
    with pytest.raises(ValueError, match=match):
        accuracy_by_group(torch.tensor(pred, dtype=torch.long), labels, [300, 50, 5])
