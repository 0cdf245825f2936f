"""The course's exercises in one registry: ``EXERCISES`` (id -> ``feedback.Exercise``).

Ids are "NN-name", NN the notebook (01..05); each exercise records its ``kind``: "code" (a few
lines, checked against the library by ``diagnose_collapse`` and ``diagnose_remedies``, which
name the usual mistakes), "explore" (a number read off notebook 02's explorer, checked against
the unconstrained-features model) or "predict" (``predictions``: recorded before a result,
revealed after it). In a notebook::

    from allnc_edu.exercises import EXERCISES
    vectors = EXERCISES["01-cosines"].given["vectors"]  # the inputs, if any
    answer = ...  # YOUR CODE HERE
    EXERCISES["01-cosines"].check(answer)  # prints a verdict; True, False or None

``EXERCISES[id].hint()`` gives the next hint, ``.solution()`` the solution, ``.starter`` the
whole starter cell and ``.prompt`` the task as the student reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import diagnose_collapse, diagnose_remedies
from .feedback import BLANK, Exercise
from .predictions import PREDICTIONS


def _starter(exercise_id: str, given: dict[str, str], blank: str) -> str:
    """The starter cell: the inputs (name -> comment), the blank, the check."""
    lines = [
        f'{name} = EXERCISES["{exercise_id}"].given["{name}"]  # {comment}'
        for name, comment in given.items()
    ]
    return "\n".join([*lines, blank, f'EXERCISES["{exercise_id}"].check(answer)'])


def _exercise(
    exercise_id: str,
    kind: str,
    title: str,
    prompt: str,
    check: tuple[Callable[[Any], str], Callable[[], Any]],
    hints: tuple[str, ...],
    solution: str,
    given: tuple[dict[str, str], Callable[[], dict]] | None = None,
    blank: str = BLANK,
) -> Exercise:
    """An exercise; ``check`` is (judge, reference), ``given`` is (name -> comment, maker)."""
    names, make_given = given or ({}, None)
    judge, reference = check
    return Exercise(
        id=exercise_id,
        notebook=exercise_id[:2],
        kind=kind,
        title=title,
        prompt=prompt,
        judge=judge,
        reference_answer=reference,
        hints=hints,
        solution_text=solution,
        blank=blank,
        starter=_starter(exercise_id, names, blank),
        make_given=make_given,
    )


def _explore(
    exercise_id: str, weight_decay: float, event: str, title: str, prompt: str, hints: tuple
) -> Exercise:
    """An explore exercise: the ratio where MC_W crosses 0 ("zero") or reaches 1 ("complete")."""
    reference = diagnose_collapse.EXPLORER_RATIOS[weight_decay, event]
    solution = (
        f"About IR {reference:g}: the unconstrained-features model at the explorer's settings "
        f"(K = 4, two minority classes, weight decay {weight_decay:g}) puts it there; anything "
        f"within {diagnose_collapse.EXPLORE_TOLERANCE:.0%} counts."
    )
    judge = diagnose_collapse.explore_judge(weight_decay, event)
    check = (judge, lambda: reference)
    return _exercise(exercise_id, "explore", title, prompt, check, hints, solution)


_P2P_BLANK = "def p2p(means, weight):\n    return ...  # YOUR CODE HERE\n\n\nanswer = p2p"

_EXERCISES = (
    _exercise(
        "01-etf",
        "code",
        "Build a simplex ETF",
        "Without geometry.simplex_etf, build a simplex ETF for K = 4 classes: a (4, d) matrix, "
        "any d >= 3, one row per class, whose rows are unit vectors with pairwise cosine "
        "-1/(K-1) = -1/3. Use torch or NumPy.",
        (diagnose_collapse.judge_etf, diagnose_collapse.etf_reference),
        (
            "Start from the identity: its rows are unit vectors, but orthogonal (cosine 0).",
            "Subtract the mean row from every row: the rows of I - J/K already have pairwise "
            "cosine -1/(K-1).",
            "Each row of I - J/K has length sqrt((K-1)/K); multiply by sqrt(K/(K-1)).",
        ),
        "K = 4\nanswer = (torch.eye(K, dtype=torch.float64) - 1 / K) * (K / (K - 1)) ** 0.5",
    ),
    _exercise(
        "01-etf-angle",
        "code",
        "The ETF's angle",
        "What is the angle, in degrees, between two vectors of a K = 4 simplex ETF? Compute it "
        "from the cosine -1/(K-1) (math or torch), and compare with the angles the notebook "
        "printed.",
        (diagnose_collapse.judge_etf_angle, lambda: diagnose_collapse.ETF_ANGLE),
        (
            "The cosine of the angle is -1/(K-1).",
            "math.acos gives radians; math.degrees converts them.",
        ),
        "import math\nanswer = math.degrees(math.acos(-1 / 3))  # 109.47",
    ),
    _exercise(
        "01-cosines",
        "code",
        "Cosines between rows",
        "`vectors` holds four 3-D vectors of different lengths, one per row. Compute the (4, 4) "
        "matrix of cosines between its rows, without geometry.cosine_matrix: entry (i, j) is "
        "cos(angle between v_i and v_j).",
        (diagnose_collapse.judge_cosines, diagnose_collapse.cosines_reference),
        (
            "cos(v_i, v_j) = v_i . v_j / (||v_i|| ||v_j||).",
            "Normalise each row first (divide by its norm along dim=1), then take all dot "
            "products at once with a matrix product.",
        ),
        "unit = vectors / vectors.norm(dim=1, keepdim=True)\nanswer = unit @ unit.T",
        given=({"vectors": "(4, 3), rows of unequal length"}, diagnose_collapse.cosines_given),
    ),
    _exercise(
        "01-nc1",
        "code",
        "NC1 from features",
        "`features` (N, 3) and `labels` (N,) hold four classes of unequal size. Compute NC1 = "
        "Tr(Sigma_W Sigma_B^+) / K as metrics.nc_metrics does: class means mu_k, the "
        "class-balanced global mean mu_G = (1/K) sum_k mu_k, Sigma_W = (1/N) sum_i (h_i - "
        "mu_{y_i})(h_i - mu_{y_i})^T, Sigma_B = (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T.",
        (diagnose_collapse.judge_nc1, diagnose_collapse.nc1_reference),
        (
            "Class means: features[labels == k].mean(dim=0) for each k.",
            "Centre the class means on their plain average (every class counts once), not on "
            "the average of all features.",
            "torch.linalg.pinv gives Sigma_B^+; torch.trace the trace; then divide by K.",
        ),
        "K = 4\nmeans = torch.stack([features[labels == k].mean(dim=0) for k in range(K)])\n"
        "centred = means - means.mean(dim=0)\ndeviations = features - means[labels]\n"
        "sigma_w = deviations.T @ deviations / len(features)\nsigma_b = centred.T @ centred / K\n"
        "answer = torch.trace(sigma_w @ torch.linalg.pinv(sigma_b)) / K",
        given=(
            {"features": "(N, 3)", "labels": "(N,), classes 0..3"},
            diagnose_collapse.nc1_given,
        ),
    ),
    _exercise(
        "02-mc-w",
        "code",
        "MC_W from a classifier",
        "`weight` is a trained classifier W (6 classes, one row per class, 8 features) and "
        "`counts` the training counts; the minority classes are the three smallest (3, 4, 5). "
        "Compute MC_W: the mean cosine over the pairs of minority classifier rows.",
        (diagnose_collapse.judge_mc_w, diagnose_collapse.mc_w_reference),
        (
            "groups.minority_classes(counts) gives the minority classes; the rows W[3], W[4], "
            "W[5] are their classifier vectors.",
            "Three classes make three pairs: (3, 4), (3, 5), (4, 5). Average their cosines, not "
            "the 3 x 3 block with its diagonal of ones.",
        ),
        "minority = [3, 4, 5]\nunit = weight[minority] / weight[minority].norm(dim=1, "
        "keepdim=True)\ncosines = unit @ unit.T\n"
        "answer = cosines[torch.triu_indices(3, 3, 1).unbind()].mean()",
        given=(
            {"weight": "(6, 8), one row per class", "counts": "(6,) training counts"},
            diagnose_collapse.mc_w_given,
        ),
    ),
    _explore(
        "02-mc-w-zero",
        5e-3,
        "zero",
        "Where MC_W crosses 0",
        "In the explorer (cross-entropy, K = 4, two minority classes), keep the weight decay at "
        "its default 5e-3 and move the imbalance ratio until MC_W crosses 0: from there on the "
        "minority classifiers are closer than orthogonal on average. Answer with that ratio.",
        (
            "At IR 1 MC_W is -1/3; it only rises with the ratio.",
            "Bracket it: find one ratio where MC_W is negative and one where it is positive, "
            "then move between them with the arrow keys.",
        ),
    ),
    _explore(
        "02-complete-collapse",
        1e-2,
        "complete",
        "Complete collapse at a larger weight decay",
        "In the explorer (cross-entropy, K = 4, two minority classes), set the weight decay to "
        "1e-2. Find the smallest imbalance ratio at which minority collapse is complete: MC_W "
        "shows 1.000 and the two minority classifier arrows merge into one. Answer with that "
        "ratio.",
        (
            "At the default weight decay the threshold was near IR 200; a stronger weight decay "
            "makes the minority classifiers cheaper to give up.",
            "Look for the ratio where MC_W jumps to 1.000 and stays there to the right.",
        ),
    ),
    _exercise(
        "03-mc-h",
        "code",
        "MC_H under both global means",
        "`means` (6, 8) are uncentred class means and `counts` their training counts (three "
        "classes of 500, three of 5: the minority is 3, 4, 5). Compute MC_H, the mean cosine "
        "over the pairs of centred minority means, twice: centred on the class-balanced global "
        "mean (1/K) sum_k mu_k (this package's default), then on the sample-weighted one "
        "sum_k n_k mu_k / N (Papyan et al.'s). Answer with the pair (balanced, weighted).",
        (diagnose_collapse.judge_mc_h, diagnose_collapse.mc_h_reference),
        (
            "Write one helper that centres on a given global mean, then takes the cosines of "
            "the minority rows and averages the three pairs.",
            "The sample-weighted mean is counts @ means / counts.sum() (make counts float).",
            "metrics.metrics_from_class_stats(counts, means, minority=[3, 4, 5], "
            "global_mean=...) computes both; use it to check your own code.",
        ),
        "def mc_h(centre):\n    centred = means - centre\n"
        "    unit = centred[3:] / centred[3:].norm(dim=1, keepdim=True)\n"
        "    cosines = unit @ unit.T\n    return cosines[torch.triu_indices(3, 3, 1).unbind()]"
        ".mean()\nweights = counts.double() / counts.sum()\n"
        "answer = (mc_h(means.mean(dim=0)), mc_h(weights @ means))",
        given=(
            {"means": "(6, 8) uncentred class means", "counts": "(6,) training counts"},
            diagnose_collapse.mc_h_given,
        ),
    ),
    _exercise(
        "04-logit-adjustment",
        "code",
        "Logit adjustment in one line",
        "`logits` (8, 5), `targets` (8,) and the training `counts` (5,) are given. In one line, "
        "compute the logit-adjusted cross-entropy of Menon et al. (2021) with tau = 1: the mean "
        "over the batch of CE(z + log pi, y), pi_k = n_k / N.",
        (diagnose_remedies.judge_logit_adjustment, diagnose_remedies.logit_adjustment_reference),
        (
            "torch.nn.functional.cross_entropy averages over the batch.",
            "log pi is torch.tensor(counts).double().div(sum(counts)).log(); add it to every "
            "row of the logits (broadcasting does it).",
        ),
        "import torch.nn.functional as F\nprior = torch.tensor(counts, dtype=torch.float64)\n"
        "answer = F.cross_entropy(logits + (prior / prior.sum()).log(), targets)",
        given=(
            {"logits": "(8, 5)", "targets": "(8,)", "counts": "5 training counts"},
            diagnose_remedies.logit_adjustment_given,
        ),
    ),
    _exercise(
        "04-gbbn-alpha",
        "code",
        "GBBN's schedule",
        "GBBN weighs its conventional branch by alpha(t) = 1 - (t/T)^gamma and its re-balancing "
        "branch by 1 - alpha(t). With BBN's gamma = 2 and T = 20 epochs, compute alpha for "
        "t = 0, 1, ..., T (21 values).",
        (diagnose_remedies.judge_gbbn, diagnose_remedies.gbbn_reference),
        (
            "torch.arange(T + 1) / T gives the progress t/T, both ends included.",
            "alpha starts at 1 (all feature learning) and ends at 0.",
        ),
        "T = 20\nanswer = 1 - (torch.arange(T + 1) / T) ** 2",
    ),
    _exercise(
        "04-p2p",
        "code",
        "AllNC's P2P loss by hand",
        "Write p2p(means, weight) for (K, d) class means and classifier rows: centre the means "
        "on their plain average and normalise every row (means and classifiers), then return "
        "(1/K^2) ||M~ W^^T - G*||_F^2 with G* the K-class ETF Gram (1 on the diagonal, "
        "-1/(K-1) off it). The check compares its value and its gradient with losses.p2p_loss.",
        (diagnose_remedies.judge_p2p, diagnose_remedies.p2p_reference),
        (
            "torch.nn.functional.normalize(x, dim=1) normalises rows.",
            "G* = K/(K-1) (I - J/K), or geometry.etf_gram(K).",
            "Keep everything in torch (no .item(), .detach() or NumPy) so the gradient flows.",
        ),
        "import torch.nn.functional as F\n\n\ndef p2p(means, weight):\n"
        "    k = means.shape[0]\n"
        "    m = F.normalize(means - means.mean(dim=0), dim=1)\n"
        "    w = F.normalize(weight, dim=1)\n"
        "    target = (torch.eye(k, dtype=means.dtype) - 1 / k) * k / (k - 1)\n"
        "    return ((m @ w.T - target) ** 2).sum() / k**2\n\n\nanswer = p2p",
        blank=_P2P_BLANK,
    ),
    _exercise(
        "05-shot-groups",
        "code",
        "Accuracy by shot group",
        "`counts` are the training images per class and `accuracy` the test accuracy of each "
        "class (fractions). Compute the many-, medium- and few-shot accuracies: many means more "
        "than 100 training images, medium 20 to 100, few fewer than 20; each group's accuracy is "
        "the mean over its classes. Answer with (many, medium, few).",
        (diagnose_remedies.judge_shots, diagnose_remedies.shots_reference),
        (
            "Mind the edges: a class with exactly 100 images is medium, and so is one with 20.",
            "groups.shot_groups(counts) lists each group's classes; use it to check yours.",
        ),
        "def group_mean(keep):\n"
        "    values = [a for a, n in zip(accuracy, counts) if keep(n)]\n"
        "    return sum(values) / len(values)\n\n\n"
        "answer = (group_mean(lambda n: n > 100), group_mean(lambda n: 20 <= n <= 100),\n"
        "          group_mean(lambda n: n < 20))",
        given=(
            {"counts": "training images per class", "accuracy": "test accuracy per class"},
            diagnose_remedies.shots_given,
        ),
    ),
    _exercise(
        "05-cifar-lt-size",
        "code",
        "How big is CIFAR-10-LT?",
        "CIFAR-10-LT keeps n_k = int(n_max * IR^(-k/(K-1))) training images of class k = 0..9, "
        "with n_max = 5000 and IR = 100 (truncation, as in the long-tail literature). Compute "
        "the total number of training images.",
        (diagnose_remedies.judge_cifar, lambda: diagnose_remedies.CIFAR10_LT_IMAGES),
        (
            "K = 10, so the exponent is -k/9.",
            "int() truncates each class count before you add them up.",
        ),
        "answer = sum(int(5000 * 100 ** (-k / 9)) for k in range(10))  # 12406",
    ),
)

EXERCISES: dict[str, Exercise] = {
    item.id: item for item in sorted((*_EXERCISES, *PREDICTIONS.values()), key=lambda e: e.notebook)
}


def for_notebook(notebook: str) -> list[Exercise]:
    """The exercises of one notebook ("01".."05"), in id order."""
    return [item for item in EXERCISES.values() if item.notebook == notebook]
