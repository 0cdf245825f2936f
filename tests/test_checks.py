"""Validation in one place: check_scalar / check_choice and the library arguments they guard."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from allnc_edu import losses
from allnc_edu._checks import as_counts, check_choice, check_num_classes, check_scalar
from allnc_edu.allnc import AllNCConfig

# ---------------------------------------------------------------- check_scalar


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (0.5, {}, 0.5),
        (3, {}, 3.0),  # an int is a float
        (np.float32(0.25), {}, 0.25),
        (torch.tensor(2.0), {}, 2.0),
        (math.inf, {"finite": False}, math.inf),
        (0.0, {"low": 0}, 0.0),  # closed bounds include the ends
        (1.0, {"high": 1}, 1.0),
        (4, {"kind": int, "low": 1}, 4),
        (1e3, {"kind": int}, 1000),  # integral floats are integers
        (np.int64(7), {"kind": int}, 7),
        (True, {"kind": bool}, True),
        (np.bool_(False), {"kind": bool}, False),
    ],
)
def test_check_scalar_accepts_and_converts(value, kwargs, expected):
    got = check_scalar("x", value, **kwargs)
    assert got == expected and type(got) is kwargs.get("kind", float)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (math.inf, {"low": 0}, "lambda_p must be a finite float >= 0, got inf"),
        (-math.inf, {}, "lambda_p must be a finite float, got -inf"),
        (math.nan, {"finite": False}, "lambda_p must be a float, got nan"),
        (-0.5, {"low": 0}, "lambda_p must be a finite float >= 0, got -0.5"),
        (0.0, {"low": 0, "include_low": False}, "lambda_p must be a finite float > 0, got 0.0"),
        (2.0, {"high": 1}, "lambda_p must be a finite float <= 1, got 2.0"),
        (1.0, {"high": 1, "include_high": False}, "lambda_p must be a finite float < 1, got 1.0"),
        (1.5, {"low": 0, "high": 1, "include_high": False}, r"in \[0, 1\), got 1.5"),
        (0, {"low": 0, "high": 1, "include_low": False}, r"in \(0, 1\], got 0$"),
        (np.float64(7.0), {"high": 1}, "got 7.0$"),  # NumPy scalars shown as plain numbers
        (2.5, {"kind": int, "low": 1}, "lambda_p must be an integer >= 1, got 2.5"),
        (math.inf, {"kind": int}, "lambda_p must be an integer, got inf"),
        (0, {"kind": int, "low": 1, "high": 3}, r"lambda_p must be an integer in \[1, 3\], got 0"),
    ],
)
def test_check_scalar_value_errors_name_the_argument_and_the_value(value, kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        check_scalar("lambda_p", value, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("no", bool, r"hycon must be a bool \(True or False\), got 'no'"),
        (1, bool, r"hycon must be a bool \(True or False\), got 1"),
        (None, bool, "got None"),
        (True, float, "hycon must be a finite float, got True"),
        (True, int, "hycon must be an integer, got True"),
        ("0.1", float, "hycon must be a finite float, got '0.1'"),
        (None, int, "hycon must be an integer, got None"),
        ([1.0], float, r"got \[1.0\]"),
    ],
)
def test_check_scalar_type_errors(value, kind, message):
    with pytest.raises(TypeError, match=message):
        check_scalar("hycon", value, kind=kind)


def test_check_scalar_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be float, int or bool"):
        check_scalar("x", 1, kind=str)


def test_check_num_classes_uses_the_same_rules():
    assert check_num_classes(2) == 2 and check_num_classes(10.0) == 10
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        check_num_classes(1)
    with pytest.raises(TypeError, match="num_classes must be an integer >= 2, got True"):
        check_num_classes(True)


def test_as_counts_refuses_non_integers():
    assert as_counts([3.0, 2]).tolist() == [3, 2]
    with pytest.raises(ValueError, match=r"counts must be integers, got \[10, inf\]"):
        as_counts([10, math.inf])
    with pytest.raises(TypeError, match="counts must be integers"):
        as_counts([True, True])


# ---------------------------------------------------------------- check_choice


def test_check_choice_returns_the_value_or_lists_the_choices():
    assert check_choice("profile", "step", ("exp", "step")) == "step"
    assert check_choice("num_classes", 100, (10, 100)) == 100
    with pytest.raises(ValueError, match="profile must be one of 'exp', 'step', got 'linear'"):
        check_choice("profile", "linear", ("exp", "step"))
    with pytest.raises(ValueError, match="got True"):  # True == 1, but a bool is not a number
        check_choice("num_classes", True, (1, 10))
    with pytest.raises(ValueError, match="got None"):
        check_choice("mode", None, iter(["cross"]))


# ---------------------------------------------------------------- AllNCConfig


def test_allnc_config_switches_must_be_booleans():
    """AllNCConfig(hycon="no") used to turn HyCon on (a non-empty string is true)."""
    with pytest.raises(TypeError, match=r"hycon must be a bool \(True or False\), got 'no'"):
        AllNCConfig(hycon="no")
    for name in ("p2p", "gbbn"):
        with pytest.raises(TypeError, match=f"{name} must be a bool"):
            AllNCConfig(**{name: 0})
    assert AllNCConfig(hycon=np.bool_(False)).hycon is False


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(AllNCConfig)])
def test_every_allnc_config_field_is_checked(name):
    with pytest.raises((TypeError, ValueError), match=f"{name} must be"):
        AllNCConfig(**{name: object()})


@pytest.mark.parametrize("name", ["lambda_h", "lambda_p", "tau", "gamma", "q", "la_tau"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_allnc_config_refuses_non_finite_numbers(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite float"):
        AllNCConfig(**{name: value})


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lambda_p": -1.0}, ValueError, "lambda_p must be a finite float >= 0, got -1.0"),
        ({"tau": 0.0}, ValueError, "tau must be a finite float > 0, got 0.0"),
        ({"bank_momentum": 1.0}, ValueError, r"bank_momentum must be a finite float in \[0, 1\)"),
        ({"projection_dim": 0}, ValueError, "projection_dim must be an integer >= 1, got 0"),
        ({"projection_dim": 64.5}, ValueError, "projection_dim must be an integer"),
        ({"lambda_p": "1"}, TypeError, "lambda_p must be a finite float >= 0, got '1'"),
        ({"p2p_mode": "diag"}, ValueError, "p2p_mode must be one of 'cross', 'separate', 'both'"),
        ({"projection": None}, ValueError, "projection must be one of 'mlp', 'identity'"),
    ],
)
def test_allnc_config_messages(kwargs, error, message):
    with pytest.raises(error, match=message):
        AllNCConfig(**kwargs)


def test_allnc_config_stores_numbers_as_plain_floats_and_ints():
    cfg = AllNCConfig(lambda_p=2, tau=np.float32(0.5), projection_dim=64.0)
    assert type(cfg.lambda_p) is float and cfg.lambda_p == 2.0
    assert type(cfg.tau) is float and cfg.tau == 0.5
    assert type(cfg.projection_dim) is int and cfg.projection_dim == 64


# ---------------------------------------------------------------- losses


def _batch():
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    return logits, torch.tensor([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda z, y: losses.logit_adjusted_ce(z, y, [5, 3, 1], tau=math.inf), "tau .* got inf"),
        (lambda z, y: losses.logit_adjusted_ce(z, y, [5, 3, 1], tau=-1), "tau .* >= 0"),
        (lambda z, y: losses.ldam_margins([5, 3, 1], max_margin=math.inf), "max_margin .* inf"),
        (lambda z, y: losses.drw_weights([5, 3, 1], beta=1.0), r"beta .* in \[0, 1\)"),
        (
            lambda z, y: losses.ldam_loss(z, y, losses.ldam_margins([5, 3, 1]), scale=0),
            "scale must be a finite float > 0, got 0",
        ),
        (
            lambda z, y: losses.hycon_loss(z, y, torch.eye(3), tau=math.inf),
            "tau must be a finite float > 0, got inf",
        ),
        (
            lambda z, y: losses.hycon_loss(z, y, torch.eye(3), weighting="sum"),
            "weighting must be one of 'balanced', 'mean', got 'sum'",
        ),
        (lambda z, y: losses.p2p_loss(z[:3], torch.eye(3), mode="x"), "mode must be one of"),
        (lambda z, y: losses.ClassMeanBank(3, 4, momentum=1.0), r"momentum .* in \[0, 1\)"),
    ],
)
def test_loss_arguments_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call(*_batch())
