"""The unconstrained-features model against closed forms and the known phenomena."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from allnc_edu import geometry, ufm
from allnc_edu.allnc import AllNCConfig
from allnc_edu.data import long_tail_counts
from allnc_edu.losses import p2p_loss
from allnc_edu.metrics import nc_metrics


def step_counts(k: int, ratio: float, n_max: int = 500) -> list[int]:
    return long_tail_counts(n_max, k, ratio, profile="step")


def minority_split(result: ufm.UFMResult) -> tuple[list[int], list[int]]:
    minority = result.final["minority"]
    return minority, [c for c in range(len(result.counts)) if c not in minority]


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("penalty", ["class", "sample"])
def test_balanced_counts_give_a_simplex_etf_with_the_closed_form_norms(k, penalty):
    result = ufm.simulate([200] * k, feature_penalty=penalty)
    final = result.final
    assert result.converged
    assert final["etf_distance_weights"] < 1e-5
    assert final["etf_distance_means"] < 1e-5
    assert final["self_duality"] < 1e-5
    assert final["nc1"] < 1e-8
    assert final["mc_weights"] == pytest.approx(-1 / (k - 1), abs=1e-5)
    w_norm, h_norm = ufm.balanced_norms(k, ufm.DEFAULT_WEIGHT_DECAY, ufm.DEFAULT_WEIGHT_DECAY)
    np.testing.assert_allclose(final["classifier_norms"], w_norm, rtol=1e-4)
    np.testing.assert_allclose(final["mean_norms"], h_norm, rtol=1e-4)


def test_balanced_norms_solve_the_one_dimensional_problem():
    k, lam_w, lam_h = 6, 2e-3, 8e-3
    a, b = ufm.balanced_norms(k, lam_w, lam_h)
    assert lam_w * k * a**2 == pytest.approx(lam_h * b**2)  # the two penalties balance

    def objective(t: float) -> float:
        return math.log1p((k - 1) * math.exp(-t * k / (k - 1))) + math.sqrt(k * lam_w * lam_h) * t

    t, h = a * b, 1e-5
    assert (objective(t + h) - objective(t - h)) / (2 * h) == pytest.approx(0.0, abs=1e-8)
    assert objective(t) < min(objective(0.9 * t), objective(1.1 * t))
    assert ufm.balanced_norms(4, 0.5, 0.6) == (0.0, 0.0)  # sqrt(K lam_W lam_H) >= 1


@pytest.mark.parametrize("k", [4, 10])
def test_minority_collapse_at_imbalance_ratio_1000(k):
    result = ufm.simulate(step_counts(k, 1000.0, n_max=1000))
    minority, majority = minority_split(result)
    final = result.final
    assert minority == list(range(k // 2, k))
    assert final["mc_weights"] > 0.5
    w_norms, h_norms = np.array(final["classifier_norms"]), np.array(final["mean_norms"])
    assert w_norms[minority].max() < w_norms[majority].min()
    assert h_norms[minority].max() < h_norms[majority].min()


def test_minority_classifier_cosine_grows_with_imbalance():
    mc = [ufm.simulate(step_counts(4, ir)).final["mc_weights"] for ir in (1, 10, 100, 500)]
    assert mc[0] == pytest.approx(-1 / 3, abs=1e-5)
    assert all(a < b for a, b in itertools.pairwise(mc))


def test_vanishing_weight_decay_approaches_the_seli_geometry():
    counts = [500, 500, 5, 5]
    seli = geometry.seli_geometry(counts).weight
    target = seli @ seli.T / (seli @ seli.T).norm()
    distances = []
    for lam in (3e-2, 1e-2, 3e-3):
        w = ufm.simulate(
            counts, feature_penalty="sample", weight_decay_w=lam, weight_decay_h=lam, steps=20000
        ).weight
        gram = w @ w.T
        distances.append(float((gram / gram.norm() - target).norm()))
    assert distances[0] > distances[1] > distances[2]
    assert distances[-1] < 0.5 * distances[0] + 0.05


def test_fixed_etf_classifier_keeps_mc_w_but_not_the_minority_means():
    k = 4
    result = ufm.simulate(step_counts(k, 100.0), classifier="etf")
    final = result.final
    assert final["mc_weights"] == pytest.approx(-1 / (k - 1), abs=1e-12)
    assert final["etf_distance_weights"] < 1e-12
    assert final["mc_means"] > -1 / (k - 1) + 0.2  # the means stay squeezed
    # With a per-sample feature penalty each class solves the same problem: means stay an ETF.
    sample = ufm.simulate(step_counts(k, 100.0), classifier="etf", feature_penalty="sample")
    assert sample.final["mc_means"] == pytest.approx(-1 / (k - 1), abs=1e-6)


def test_p2p_restores_the_minority_classifiers_and_means():
    counts = step_counts(4, 100.0)
    ce = ufm.simulate(counts).final
    result = ufm.simulate(counts, allnc={"lambda_p": 1.0, "mode": "cross"})
    final = result.final
    assert result.converged
    assert final["mc_weights"] < ce["mc_weights"] - 0.4
    assert final["mc_weights"] == pytest.approx(-1 / 3, abs=0.05)
    assert final["mc_means"] == pytest.approx(-1 / 3, abs=0.1)
    assert final["p2p"] < result.history[0]["p2p"]


def test_p2p_at_k10_ir100_reaches_the_minimum_of_the_objective():
    k, lam = 10, ufm.DEFAULT_WEIGHT_DECAY
    counts = step_counts(k, 100.0, n_max=1000)
    result = ufm.simulate(counts, allnc=1.0, return_features=True)
    assert result.converged
    pi = torch.tensor(counts, dtype=torch.float64) / sum(counts)

    def objective(means: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # F, written anew
        ce = torch.nn.functional.cross_entropy(means @ weight.T, torch.arange(k), reduction="none")
        penalty = lam * weight.square().sum() + lam / k * means.square().sum()
        return (pi * ce).sum() + penalty / 2 + p2p_loss(means, weight)

    means, weight = result.means.clone().requires_grad_(), result.weight.clone().requires_grad_()
    value = objective(means, weight)
    assert value.item() == pytest.approx(result.final["loss"], rel=1e-12)
    for grad in torch.autograd.grad(value, (means, weight)):  # stationary ...
        assert grad.abs().max() < 1e-7
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):  # ... and a minimum: small random moves all raise F
        moved = [
            x + 1e-3 * torch.randn(x.shape, generator=generator, dtype=x.dtype)
            for x in (means, weight)
        ]
        assert objective(*moved) > value
    # The step profile's symmetry holds at the optimum: equal norms within each group.
    for norms in (result.final["classifier_norms"], result.final["mean_norms"]):
        for group in (norms[: k // 2], norms[k // 2 :]):
            assert max(group) - min(group) < 1e-5 * max(group)
    other = ufm.simulate(counts, allnc=1.0, seed=1).final  # same optimum from another start
    for key in ("mc_weights", "mc_means", "self_duality"):
        assert other[key] == pytest.approx(result.final[key], abs=1e-6)
    # The solver works on collapsed features: every sample sits at its class mean.
    assert torch.equal(result.features, result.means[result.labels])
    assert all(h["nc1"] == 0.0 for h in result.history)
    assert [h["step"] for h in result.history[:3]] == [0, 10, 20]
    assert result.history[-1]["step"] == result.steps_run


def test_allnc_config_with_p2p_switched_off_is_plain_ce():
    counts = step_counts(4, 10.0)
    plain = ufm.simulate(counts, steps=200)
    off = ufm.simulate(counts, steps=200, allnc=AllNCConfig(p2p=False))
    assert torch.equal(plain.weight, off.weight)
    assert off.settings["allnc"] is None
    on = ufm.simulate(counts, steps=5, allnc=AllNCConfig(lambda_p=0.5, p2p_mode="separate"))
    assert on.settings["allnc"] == {"lambda_p": 0.5, "mode": "separate"}


def test_returned_features_agree_with_the_means_and_the_recorded_nc1():
    counts = [30, 20, 5, 3]
    result = ufm.simulate(counts, steps=300, return_features=True, tol=1e-30)
    x, y = result.features, result.labels
    assert x.shape == (sum(counts), 4)
    assert torch.equal(y, torch.repeat_interleave(torch.arange(4), torch.tensor(counts)))
    means = torch.stack([x[y == c].mean(0) for c in range(4)])
    torch.testing.assert_close(means, result.means, rtol=0, atol=1e-10)
    direct = nc_metrics(x, y, result.weight, minority=result.final["minority"])
    assert direct.nc1 == pytest.approx(result.final["nc1"], rel=1e-8)
    assert direct.mc_weights == pytest.approx(result.final["mc_weights"], abs=1e-12)
    scatter = torch.stack([(x[y == c] - means[c]).T @ (x[y == c] - means[c]) for c in range(4)])
    torch.testing.assert_close(scatter, result.within_scatter, rtol=1e-8, atol=1e-14)


def test_history_records_training_and_nc1_collapses():
    result = ufm.simulate([100, 100, 100], steps=400, record_every=100, tol=1e-30)
    steps = [h["step"] for h in result.history]
    assert steps == [0, 100, 200, 300, 400]
    nc1 = [h["nc1"] for h in result.history]
    assert nc1[0] > 0.1 and nc1[-1] < 1e-6 * nc1[0]
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.features is None and result.steps_run == 400 and not result.converged


def test_same_seed_same_run_other_seed_same_balanced_geometry():
    a = ufm.simulate([50, 50, 50, 50], steps=50, seed=3)
    b = ufm.simulate([50, 50, 50, 50], steps=50, seed=3)
    c = ufm.simulate([50, 50, 50, 50], seed=4)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.means, b.means)
    assert not torch.equal(a.weight, c.weight)
    assert c.final["etf_distance_weights"] < 1e-5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "mse"}, "loss must be one of"),
        ({"classifier": "fixed"}, "classifier must be one of"),
        ({"feature_penalty": "none"}, "feature_penalty must be one of"),
        ({"weight_decay_w": 0.0}, "weight_decay_w must be a finite float > 0, got 0.0"),
        ({"weight_decay_h": -1.0}, "weight_decay_h must be a finite float > 0"),
        ({"weight_decay_w": math.inf}, "weight_decay_w must be a finite float > 0, got inf"),
        ({"weight_decay_w": 1.0, "weight_decay_h": 1.0}, "weight decays too strong"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"dim": 1}, "dim must be an integer >= 2"),
        ({"allnc": "yes"}, "allnc must be"),
        ({"allnc": {"weight": 1.0}}, "allnc dict keys"),
        ({"allnc": {"mode": "diagonal"}}, "P2P mode must be one of"),
        ({"step_size": 0.0}, "step_size must be a finite float > 0"),
        ({"step_size": math.inf}, "step_size must be a finite float > 0, got inf"),
        ({"steps": 2.5}, "steps must be an integer >= 1, got 2.5"),
        ({"tol": math.nan}, "tol must be a finite float > 0, got nan"),
        ({"allnc": math.inf}, "lambda_p must be a finite float >= 0, got inf"),
        ({"allnc": {"lambda_p": -1.0}}, "lambda_p must be a finite float >= 0, got -1.0"),
        ({"allnc": AllNCConfig(lambda_p=2.0, p2p_mode="both")}, None),
    ],
)
def test_invalid_arguments_raise_clear_errors(kwargs, message):
    if message is None:  # a valid neighbour of the bad cases
        assert ufm.simulate([10, 10, 10], steps=5, **kwargs).settings["allnc"]["lambda_p"] == 2.0
        return
    with pytest.raises(ValueError, match=message):
        ufm.simulate([10, 10, 10], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": True}, "steps must be an integer >= 1, got True"),
        ({"weight_decay_w": "0.01"}, "weight_decay_w must be a finite float > 0, got '0.01'"),
        ({"return_features": "yes"}, r"return_features must be a bool \(True or False\)"),
        ({"seed": None}, "seed must be an integer, got None"),
    ],
)
def test_arguments_of_the_wrong_type_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        ufm.simulate([10, 10, 10], **kwargs)


@pytest.mark.parametrize("steps", [3, ufm.DEFAULT_STEPS])
def test_a_diverging_simulation_raises_instead_of_recording_inf(steps):
    """step_size 1e6 overflows the softmax by step 3: the loss was recorded as inf, silently."""
    with pytest.raises(
        ValueError, match=r"simulation diverged.*lower step_size \(got 1000000.0\)"
    ) as err:
        ufm.simulate([100, 100, 10, 10], step_size=1e6, steps=steps)
    assert "\n" not in str(err.value)


def test_two_classes_work_and_the_minority_is_the_smaller_class():
    """K = 2 used to fail at once: the default minority, one class, was refused by the metrics."""
    result = ufm.simulate([50, 5])
    final = result.final
    assert final["minority"] == [1] and result.converged
    assert final["mc_weights"] is None and final["mc_means"] is None  # no pair of minority classes
    # K = 2: the classifier rows stay opposite (the CE gradient sums to 0 over them) and the two
    # centred means are opposite by construction, so no squeeze is possible.
    assert ufm.minority_norm_ratios(final) == pytest.approx((1.0, 1.0), abs=1e-5)
    assert final["etf_distance_weights"] < 1e-4
    json.dumps(result.history, allow_nan=False)
    sweep = ufm.imbalance_sweep([1, 100], num_classes=2)
    assert [r["minority"] for r in sweep] == [[1], [1]]
    assert ufm.simulate([50, 5], allnc=1.0).final["minority"] == [1]


def test_invalid_counts_raise():
    with pytest.raises(ValueError, match="class count"):
        ufm.simulate([10, 0, 10])


def test_minority_norm_ratios_average_each_group():
    record = {
        "num_classes": 4,
        "minority": [2, 3],
        "classifier_norms": [2.0, 2.0, 1.0, 0.5],
        "mean_norms": [4.0, 2.0, 1.5, 1.5],
    }
    assert ufm.minority_norm_ratios(record) == pytest.approx((0.375, 0.5))
    with pytest.raises(ValueError, match="classifier_norms"):
        ufm.minority_norm_ratios({**record, "classifier_norms": None})
    with pytest.raises(ValueError, match="no majority"):
        ufm.minority_norm_ratios({**record, "minority": [0, 1, 2, 3]})


def test_imbalance_sweep_matches_simulate_and_starts_at_the_etf():
    sweep = ufm.imbalance_sweep([1, 1000], num_classes=4, n_max=1000)
    assert [r["counts"] for r in sweep] == [[1000] * 4, [1000, 1000, 1, 1]]
    balanced, extreme = sweep
    assert balanced["mc_weights"] == pytest.approx(-1 / 3, abs=1e-5)
    assert balanced["weight_norm_ratio"] == pytest.approx(1.0, abs=1e-5)
    assert balanced["mean_norm_ratio"] == pytest.approx(1.0, abs=1e-5)
    direct = ufm.simulate([1000, 1000, 1, 1]).final
    assert extreme["mc_weights"] == direct["mc_weights"] and extreme["minority"] == [2, 3]
    assert extreme["mc_weights"] > 0.5
    w_norms = np.array(direct["classifier_norms"])
    assert extreme["weight_norm_ratio"] == pytest.approx(w_norms[2:].mean() / w_norms[:2].mean())
    assert extreme["weight_norm_ratio"] < 1.0 and extreme["mean_norm_ratio"] < 1.0
    etf = ufm.imbalance_sweep([1000], classifier="etf")[0]
    assert etf["mc_weights"] == pytest.approx(-1 / 3, abs=1e-12)
    with pytest.raises(ValueError, match="at least one"):
        ufm.imbalance_sweep([])
    with pytest.raises(ValueError, match="imbalance_ratio"):
        ufm.imbalance_sweep([0.5])


def test_seli_sweep_is_exact_at_balance_and_closes_in_under_imbalance():
    balanced = ufm.seli_sweep([100] * 4, [1e-2, 1e-3])
    for record in balanced:  # at balance SELI is a simplex ETF, the UFM optimum for any lambda
        assert record["converged"]
        assert record["weight_distance"] < 1e-5 and record["means_distance"] < 1e-5
    sweep = ufm.seli_sweep([500, 500, 5, 5], [1e-2, 1e-3])
    assert sweep[1]["weight_distance"] < sweep[0]["weight_distance"]
    assert sweep[1]["means_distance"] < sweep[0]["means_distance"]
    assert [r["weight_decay"] for r in sweep] == [1e-2, 1e-3]
    with pytest.raises(ValueError, match="at least one"):
        ufm.seli_sweep([10, 10, 10], [])


def test_complete_minority_collapse_is_a_threshold_not_a_solver_artefact():
    """K = 4, two minority classes, weight decay 5e-3: MC_W reaches exactly 1 between IR 190 and
    210, whatever the seed or the number of steps (explorer's 'cliff', notebook 02)."""
    n_max = 100_000  # so that the minority count n_max / IR is not rounded to another ratio

    def mc_w(ratio: float, **options) -> tuple[float, bool]:
        n = round(n_max / ratio)
        run = ufm.simulate([n_max, n_max, n, n], minority=[2, 3], **options)
        return run.final["mc_weights"], run.converged

    for ratio in (150, 250):
        runs = [mc_w(ratio, seed=s, steps=steps) for s in (0, 1) for steps in (4000, 20_000)]
        assert all(converged for _, converged in runs)
        values = [v for v, _ in runs]
        assert max(values) - min(values) < 1e-6  # the same optimum from every start
    assert mc_w(150)[0] < 0.6 and mc_w(190, steps=20_000)[0] < 0.95  # below: steep, not 1
    assert mc_w(210, steps=20_000)[0] > 1 - 1e-6 and mc_w(250)[0] > 1 - 1e-9  # past it: 1


def test_complete_collapse_brackets_the_threshold_of_a_sweep():
    records = [{"ratio": r, "mc_weights": v} for r, v in ((1, -0.3), (100, 0.3), (190, 0.9))]
    assert geometry.complete_collapse(records) is None
    records += [{"ratio": 210, "mc_weights": 1.0}, {"ratio": 1000, "mc_weights": 1.0}]
    assert geometry.complete_collapse(records) == (190.0, 210.0)
    assert geometry.complete_collapse(records[3:]) is None  # collapsed from the first ratio on
    with pytest.raises(ValueError, match="mc_weights"):
        geometry.complete_collapse([{"ratio": 1, "mc_weights": None}])
