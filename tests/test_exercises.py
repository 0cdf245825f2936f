"""Exercises: every check accepts its reference, names the usual mistakes, never raises; the
explorer's thresholds against the UFM; predictions revealed; solution blocks; grading."""

from __future__ import annotations

import math

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from allnc_edu import feedback, grading, predictions, ufm
from allnc_edu.diagnose_collapse import EXPLORER_RATIOS, explorer_mc_w
from allnc_edu.exercises import EXERCISES, for_notebook
from allnc_edu.geometry import etf_gram, simplex_etf
from allnc_edu.losses import p2p_loss

CODE = [e.id for e in EXERCISES.values() if e.kind == "code"]
GARBAGE = ["a string", np.zeros((7, 7, 7)), {"key": 1}, object(), float("nan"), [1, "two"]]


def given(exercise_id: str) -> dict:
    return EXERCISES[exercise_id].given


def recorded(exercise_id: str) -> dict:
    return next(v for v in feedback.verdicts() if v["id"] == exercise_id)


def message(exercise_id: str) -> str:
    return recorded(exercise_id)["message"]


@pytest.fixture(autouse=True)
def _fresh_log():
    feedback.clear_verdicts()


# --------------------------------------------------------------------- the usual mistakes


def _etf_unequal_norms():
    return simplex_etf(4, 3) * torch.tensor([[1.0], [2.0], [1.0], [1.0]])


def _equiangular(cosine: float) -> torch.Tensor:
    gram = torch.full((4, 4), cosine, dtype=torch.float64).fill_diagonal_(1.0)
    return torch.linalg.cholesky(gram)


def _cosine_degrees():
    v = given("01-cosines")["vectors"]
    return torch.rad2deg(
        torch.arccos((F.normalize(v, dim=1) @ F.normalize(v, dim=1).T).clamp(-1, 1))
    )


def _nc1(weighted=False, per_k=True, invert=False):
    g = given("01-nc1")
    x, y = g["features"], g["labels"]
    means = torch.stack([x[y == c].mean(dim=0) for c in range(4)])
    n = torch.bincount(y).double()
    centre = n @ means / n.sum() if weighted else means.mean(dim=0)
    bar = means - centre
    dev = x - means[y]
    sigma_w, sigma_b = dev.T @ dev / len(x), bar.T @ bar / 4
    a, b = (sigma_b, sigma_w) if invert else (sigma_w, sigma_b)
    return torch.trace(a @ torch.linalg.pinv(b)) / (4 if per_k else 1)


def _mc_w(rows):
    unit = F.normalize(rows, dim=1)
    return (unit @ unit.T)[torch.triu_indices(3, 3, 1).unbind()].mean()


def _mc_h(centre: str):
    g = given("03-mc-h")
    means, counts = g["means"], g["counts"].double()
    offset = {"balanced": means.mean(dim=0), "weighted": counts @ means / counts.sum()}
    return _mc_w((means - offset.get(centre, 0.0))[3:])


def _logit_loss(shift: str, reduction: str = "mean"):
    g = given("04-logit-adjustment")
    prior = torch.tensor(g["counts"], dtype=torch.float64)
    log_prior = (prior / prior.sum()).log()
    z = {"plain": g["logits"], "minus": g["logits"] - log_prior}.get(shift, g["logits"] + log_prior)
    return F.cross_entropy(z, g["targets"], reduction=reduction)


def _p2p(scale=True, centre=True, detach=False, as_float=False):
    def p2p(means, weight):
        k = means.shape[0]
        offset = means.mean(dim=0)
        m = F.normalize(means - (offset.detach() if detach else offset) * centre, dim=1)
        loss = ((m @ F.normalize(weight, dim=1).T - etf_gram(k)) ** 2).sum() / (
            k**2 if scale else 1
        )
        return float(loss.detach()) if as_float else loss

    return p2p


def _shots(many=100, few=20, percent=False):
    g = given("05-shot-groups")
    groups = [
        [a for a, n in zip(g["accuracy"], g["counts"], strict=True) if keep(n)]
        for keep in (lambda n: n > many, lambda n: few <= n <= many, lambda n: n < few)
    ]
    return [sum(v) / len(v) * (100 if percent else 1) for v in groups]


WRONG = {
    "01-etf": [
        (_etf_unequal_norms, "unequal norms"),
        (lambda: simplex_etf(4, 3).T, "transposed"),
        (lambda: torch.eye(4), "orthogonal"),
        (lambda: torch.eye(4) - 0.25, "norm 0.8660"),
        (lambda: _equiangular(-0.25), "-1/K"),
    ],
    "01-etf-angle": [
        (lambda: math.acos(-1 / 3), "radians"),
        (lambda: -1 / 3, "cosine"),
        (lambda: math.degrees(math.acos(-1 / 4)), "-1/K"),
    ],
    "01-cosines": [
        (lambda: given("01-cosines")["vectors"] @ given("01-cosines")["vectors"].T, "unnormalised"),
        (lambda: given("01-cosines")["vectors"].T @ given("01-cosines")["vectors"], "transposed"),
        (_cosine_degrees, "degrees"),
    ],
    "01-nc1": [
        (lambda: _nc1(weighted=True), "sample-weighted"),
        (lambda: _nc1(per_k=False), "divide the trace by K"),
        (lambda: _nc1(invert=True), "inverted"),
    ],
    "02-mc-w": [
        (lambda: _mc_w(given("02-mc-w")["weight"].T[3:]), "transposed"),
        (lambda: _mc_w(given("02-mc-w")["weight"][:3]), "majority"),
        (
            lambda: (given("02-mc-w")["weight"][3:] @ given("02-mc-w")["weight"][3:].T)[
                torch.triu_indices(3, 3, 1).unbind()
            ].mean(),
            "unnormalised",
        ),
    ],
    "03-mc-h": [
        (lambda: (_mc_h("weighted"), _mc_h("balanced")), "swapped"),
        (lambda: (_mc_h("balanced"), _mc_h("balanced")), "class-balanced"),
        (lambda: (_mc_h("weighted"), _mc_h("weighted")), "sample-weighted"),
        (lambda: (_mc_h("none"), _mc_h("weighted")), "uncentred"),
        (lambda: _mc_h("balanced"), "a single number"),
    ],
    "04-logit-adjustment": [
        (lambda: _logit_loss("plain"), "plain cross-entropy"),
        (lambda: _logit_loss("minus"), "subtracted"),
        (lambda: _logit_loss("plus", "sum"), "sum"),
    ],
    "04-gbbn-alpha": [
        (lambda: (torch.arange(21) / 20) ** 2, "1 - alpha"),
        (lambda: 1 - torch.arange(21) / 20, "linear"),
        (lambda: 1 - (torch.arange(20) / 20) ** 2, "wrong shape"),
        (lambda: 1 - (torch.arange(21) / 20) ** 0.5, "gamma = 0.5"),
    ],
    "04-p2p": [
        (lambda: _p2p(scale=False), "constant factor"),
        (lambda: _p2p(centre=False), "uncentred"),
        (lambda: _p2p(detach=True), "gradient"),
        (lambda: _p2p(as_float=True), "no gradient"),
        (lambda: lambda means, weight: means @ weight, "W transposed"),
    ],
    "05-shot-groups": [
        (lambda: _shots(many=99), "exactly 100"),
        (lambda: _shots(few=21), "exactly 20"),
        (lambda: _shots(percent=True), "percentages"),
        (lambda: _shots()[::-1], "reversed"),
    ],
    "05-cifar-lt-size": [
        (lambda: sum(round(5000 * 100 ** (-k / 9)) for k in range(10)), "rounded"),
        (lambda: sum(int(5000 * 100 ** (-k / 10)) for k in range(10)), "k/(K-1)"),
        (lambda: 25_250, "step profile"),
    ],
}


def test_every_code_exercise_has_two_or_more_diagnosed_mistakes():
    assert set(WRONG) == set(CODE)
    assert all(len(cases) >= 2 for cases in WRONG.values())


@pytest.mark.parametrize(
    ("exercise_id", "make", "words"),
    [(i, make, words) for i, cases in WRONG.items() for make, words in cases],
    ids=[f"{i}:{words}" for i, cases in WRONG.items() for _, words in cases],
)
def test_a_typical_mistake_is_named(exercise_id, make, words):
    assert EXERCISES[exercise_id].check(make()) is False
    assert words in message(exercise_id)


def test_each_mistake_of_an_exercise_has_its_own_sentence():
    for exercise_id, cases in WRONG.items():
        sentences = set()
        for make, _ in cases:
            EXERCISES[exercise_id].check(make())
            sentences.add(message(exercise_id))
        assert len(sentences) == len(cases), exercise_id


# --------------------------------------------------------------------- every exercise


def test_the_registry_covers_every_notebook_with_three_kinds():
    assert len(EXERCISES) >= 15
    assert {e.kind for e in EXERCISES.values()} == {"code", "explore", "predict"}
    for notebook in ("01", "02", "03", "04", "05"):
        assert len(for_notebook(notebook)) >= 3, notebook
    for e in EXERCISES.values():
        assert e.id.startswith(e.notebook + "-") and e.prompt and e.hints and e.solution_text


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_reference_passes_and_blanks_are_not_attempted(exercise_id, capsys):
    exercise = EXERCISES[exercise_id]
    assert exercise.check(exercise.reference()) is True
    assert exercise.check(None) is None
    assert exercise.check(...) is None
    assert f"{exercise_id} not attempted" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", list(EXERCISES))
def test_garbage_is_not_correct_and_never_raises(exercise_id):
    for garbage in GARBAGE:
        assert EXERCISES[exercise_id].check(garbage) is False
        assert message(exercise_id).endswith(".") or message(exercise_id).endswith(")")


@pytest.mark.parametrize("exercise_id", CODE)
def test_the_solution_runs_and_passes(exercise_id):
    exercise = EXERCISES[exercise_id]
    namespace = {"torch": torch, "EXERCISES": EXERCISES, **exercise.given}
    exec(exercise.solution_text, namespace)
    assert exercise.check(namespace["answer"]) is True


@pytest.mark.parametrize("exercise_id", CODE)
def test_the_starter_cell_runs_and_reports_not_attempted(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert exercise.blank in exercise.starter
    namespace = {"torch": torch, "EXERCISES": EXERCISES}
    exec(exercise.starter, namespace)
    assert recorded(exercise_id)["verdict"] is None


def test_given_inputs_are_fresh_copies():
    vectors = EXERCISES["01-cosines"].given["vectors"]
    vectors *= 0
    assert EXERCISES["01-cosines"].given["vectors"].abs().sum() > 0


def test_hints_come_level_by_level_and_the_solution_prints(capsys):
    exercise = EXERCISES["01-etf"]

    def shown(call) -> str:
        assert call() is None  # printed, not returned: a notebook shows it once
        return capsys.readouterr().out

    assert shown(lambda: exercise.hint(1)).startswith("Hint 1 of 3")
    assert shown(lambda: exercise.hint(99)).startswith("Hint 3 of 3")
    exercise._hints_shown = 0
    assert [shown(exercise.hint)[:10] for _ in range(4)] == [
        "Hint 1 of ",
        "Hint 2 of ",
        *["Hint 3 of "] * 2,
    ]
    assert "torch.eye" in shown(exercise.solution)


# --------------------------------------------------------------------- explore


@pytest.mark.parametrize(("weight_decay", "event"), list(EXPLORER_RATIOS))
def test_explorer_thresholds_match_the_ufm(weight_decay, event):
    level = 0.0 if event == "zero" else 0.999
    ratio = EXPLORER_RATIOS[weight_decay, event]
    assert (
        explorer_mc_w(ratio / 1.03, weight_decay)
        < level
        <= explorer_mc_w(ratio * 1.03, weight_decay)
    )


@pytest.mark.parametrize(
    ("exercise_id", "answer", "words"),
    [
        ("02-mc-w-zero", 27.0, "weight decay 0.01"),
        ("02-mc-w-zero", 198.0, "reaches 1"),
        ("02-mc-w-zero", 1 / 43, "n_min / n_max"),
        ("02-mc-w-zero", 15.0, "larger ratio"),
        ("02-complete-collapse", 198.0, "set the slider to 0.01"),
        ("02-complete-collapse", 27.0, "crosses 0"),
        ("02-complete-collapse", 400.0, "smaller ratio"),
    ],
)
def test_explore_answers_are_diagnosed(exercise_id, answer, words):
    assert EXERCISES[exercise_id].check(answer) is False
    assert words in message(exercise_id)


def test_explore_accepts_answers_within_the_tolerance():
    assert EXERCISES["02-mc-w-zero"].check(40) is True
    assert EXERCISES["02-complete-collapse"].check(105) is True


# --------------------------------------------------------------------- predictions


def _history():
    return [
        {"step": 0, "nc1": 2.0, "etf_distance_means": 0.56},
        {"step": 5, "nc1": 1e-3, "etf_distance_means": 0.54},
        {"step": 125, "nc1": 1e-9, "etf_distance_means": 0.009},
    ]


MEASURED = {
    "01-predict-order": (_history, "A"),
    "02-predict-fixed-etf": (
        lambda: ufm.simulate([1000, 1000, 1, 1], classifier="etf", record_every=4000),
        "B",
    ),
    "03-predict-squeeze": (lambda: (-0.10, 0.45), "B"),
    "03-predict-etf-means": (lambda: 0.40, "B"),
    "03-predict-minority-accuracy": (lambda: 0.068, "6.8%"),
    "04-predict-ablation": (
        lambda: {"allnc-no-hycon": 0.70, "allnc-no-p2p": 0.68, "allnc-no-gbbn": 0.05},
        "C",
    ),
    "05-predict-groups": (lambda: (0.90, 0.30), "C"),
}


def test_every_prediction_has_a_reveal_case():
    assert set(MEASURED) == set(predictions.PREDICTIONS)


@pytest.mark.parametrize("exercise_id", list(MEASURED))
def test_reveal_compares_the_prediction_with_the_run(exercise_id, capsys):
    make, shown = MEASURED[exercise_id]
    item = predictions.PREDICTIONS[exercise_id]
    assert predictions.reveal(exercise_id, item.reference(), make()) is True
    out = capsys.readouterr().out
    assert "Measured:" in out and "Why:" in out and shown in out
    if item.options is not None:
        assert "matches your prediction" in out


def test_reveal_without_a_prediction_or_with_an_unreadable_run(capsys):
    assert predictions.reveal("04-predict-ablation", ..., {"allnc": 0.7}) is None
    out = capsys.readouterr().out
    assert "not attempted" in out and "could not read the measured value" in out


def test_a_wrong_prediction_is_explained(capsys):
    assert predictions.reveal("03-predict-squeeze", "a", (-0.1, 0.45)) is False
    out = capsys.readouterr().out
    assert "A: the five minority digits" in out and "you predicted A" in out


def test_p2p_reference_is_the_library_loss():
    assert EXERCISES["04-p2p"].reference() is p2p_loss


# --------------------------------------------------------------------- the verdict log


def test_the_verdict_log_round_trips_through_its_tagged_line(capsys):
    EXERCISES["05-cifar-lt-size"].check(12406)
    feedback.dump_verdicts()
    found = feedback.parse_verdicts(capsys.readouterr().out)
    assert {"id": "05-cifar-lt-size", "verdict": True}.items() <= found[-1].items()
    assert feedback.parse_verdicts("no tag here") is None


# --------------------------------------------------------------------- solution blocks

SOURCE = """# %%
from allnc_edu.exercises import EXERCISES

# %%
### BEGIN SOLUTION
answer = 12406
### END SOLUTION
EXERCISES["05-cifar-lt-size"].check(answer)

# %%
def helper():
    ### BEGIN SOLUTION 04-p2p
    return 1
    ### END SOLUTION
"""


def test_student_source_replaces_each_block_with_its_blank():
    student = grading.student_source(SOURCE)
    assert "12406" not in student and "BEGIN" not in student and "return 1" not in student
    assert "\nanswer = ...  # YOUR CODE HERE\nEXERCISES" in student
    assert "    def p2p(means, weight):\n        return ...  # YOUR CODE HERE\n" in student
    markers = [line for line in SOURCE.splitlines(keepends=True) if "SOLUTION" not in line]
    assert grading.solution_source(SOURCE) == "".join(markers)


def test_the_student_and_solution_versions_run():
    cell = SOURCE.split("# %%")[2]
    namespace = {"EXERCISES": EXERCISES}
    exec(grading.solution_source(cell), namespace)
    assert recorded("05-cifar-lt-size")["verdict"] is True
    exec(grading.student_source(cell), namespace)
    assert recorded("05-cifar-lt-size")["verdict"] is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without a BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside the block"),
        ("### BEGIN SOLUTION 09-nothing\n### END SOLUTION\n", "names no exercise"),
    ],
)
def test_bad_solution_markers_are_refused_with_their_line(text, words):
    with pytest.raises(ValueError, match=words):
        grading.student_source(text)


def test_write_notebooks_makes_both_versions(tmp_path):
    source = tmp_path / "05_sample.py"
    source.write_text(SOURCE, encoding="utf-8")
    student, solution = grading.write_notebooks(source, tmp_path / "nb", tmp_path / "nb/solutions")
    assert student == tmp_path / "nb/05_sample.ipynb" and solution.parent.name == "solutions"
    student_text = "".join(c.source for c in nbformat.read(student, as_version=4).cells)
    solution_text = "".join(c.source for c in nbformat.read(solution, as_version=4).cells)
    assert "YOUR CODE HERE" in student_text and "12406" not in student_text
    assert "12406" in solution_text and "BEGIN SOLUTION" not in solution_text


# --------------------------------------------------------------------- grading


def test_grade_runs_a_notebook_and_counts_its_checks(tmp_path):
    cells = [
        "from allnc_edu.exercises import EXERCISES\n\nSIZE = 0",
        'EXERCISES["05-cifar-lt-size"].check(SIZE)',
        'answer = ...  # YOUR CODE HERE\nEXERCISES["01-etf"].check(answer)',
        'raise ValueError("a student bug")\nEXERCISES["01-nc1"].check(0.5)',
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.cells[0].metadata["tags"] = ["parameters"]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    result = grading.grade(path, timeout=120, parameters={"SIZE": 12406})
    assert (result.score, result.total) == (1, 3)
    assert result.lines[0].startswith("✓ 05-cifar-lt-size correct")
    assert result.lines[1].startswith("○ 01-etf not attempted")
    assert result.lines[2].startswith("○ 01-nc1 not attempted: its check never ran")
    assert result.lines[3] == "cell 4 raised ValueError: a student bug"
    assert grading.format_grade(result, "tiny").endswith("tiny: score 1/3")


def test_grade_says_what_to_install_without_nbclient(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "nbclient", None)
    with pytest.raises(ImportError, match="pip install"):
        grading.grade(tmp_path / "missing.ipynb")


def test_run_all_of_a_student_notebook_reports_blanks_and_stops_nowhere(tmp_path):
    source = tmp_path / "04_sample.py"
    source.write_text(
        "# %%\nfrom allnc_edu import predictions\nfrom allnc_edu.exercises import EXERCISES\n\n"
        '# %%\n### BEGIN SOLUTION 04-p2p\nanswer = EXERCISES["04-p2p"].reference()\n'
        '### END SOLUTION\nEXERCISES["04-p2p"].check(answer)\n\n'
        '# %%\npredictions.predict("04-predict-ablation")\n'
        '### BEGIN SOLUTION 04-predict-ablation\nPREDICTION = "C"\n### END SOLUTION\n\n'
        '# %%\npredictions.reveal("04-predict-ablation", PREDICTION, {"allnc-no-gbbn": 0.1})\n',
        encoding="utf-8",
    )
    student, _ = grading.write_notebooks(source, tmp_path, tmp_path / "solutions")
    result = grading.grade(student, timeout=120)
    assert (result.score, result.total) == (0, 2)
    assert all(" not attempted: replace the ..." in line for line in result.lines)
