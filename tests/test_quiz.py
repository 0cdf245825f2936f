"""Questionnaires answered in place, and the prediction and questionnaire widgets (ipywidgets 7
and 8) with their text fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from allnc_edu import feedback, predictions, quiz
from allnc_edu.feedback import letter

HERE = Path(__file__).resolve().parent
QUESTIONS = list(quiz.QUESTIONS.values())


@pytest.fixture(autouse=True)
def _fresh_log():
    feedback.clear_verdicts()


def wrong_answers(question) -> list:
    """Every other option of a multiple-choice question, or numbers off the tolerance."""
    if question.options is not None:
        return [letter(i) for i in range(len(question.options)) if i != question.answer]
    off = 10 * question.tolerance + 1 + abs(question.answer)
    return [question.answer + off, question.answer - off]


@pytest.fixture
def no_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # "import ipywidgets" now fails


def test_every_questionnaire_has_8_to_15_questions_and_2_to_4_research_tasks():
    assert set(quiz.QUESTIONNAIRES) == set(quiz.FURTHER_RESEARCH) == {"01", "02", "03", "04", "05"}
    for notebook, questions in quiz.QUESTIONNAIRES.items():
        assert 8 <= len(questions) <= 15, notebook
        assert 2 <= len(quiz.FURTHER_RESEARCH[notebook]) <= 4, notebook
        assert all(q.notebook == notebook and q.explanation and q.text for q in questions)


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.id for q in QUESTIONS])
def test_the_reference_is_correct_and_wrong_answers_are_not(question, capsys):
    assert question.check(question.reference()) is True
    for wrong in wrong_answers(question):
        assert question.check(wrong) is False, wrong
    assert question.check(None) is None
    assert question.check("not an answer at all") is False
    assert question.explanation in capsys.readouterr().out


def test_multiple_choice_takes_a_letter_or_a_position():
    assert quiz.ask("05-q1", "B") is True
    assert quiz.ask("05-q1", "b)") is True
    assert quiz.ask("05-q1", 1) is True
    assert quiz.ask("05-q1", 7) is False
    assert quiz.ask("05-q1", True) is False


def test_a_typical_wrong_number_is_named(capsys):
    assert quiz.ask("01-q4", 2.094) is False
    assert "radians" in capsys.readouterr().out
    assert quiz.ask("01-q8", "A") is False
    assert "Papyan" in capsys.readouterr().out


def test_answers_are_recorded_for_grading():
    quiz.ask("02-q3", -1 / 3)
    assert feedback.verdicts() == [
        {
            "id": "02-q3",
            "notebook": "02",
            "kind": "question",
            "verdict": True,
            "message": "-0.333333.",
        }
    ]


def test_an_unknown_question_is_refused():
    with pytest.raises(ValueError, match="no question"):
        quiz.ask("01-q99", "A")


# --------------------------------------------------------------------- text fallbacks


def test_questionnaire_falls_back_to_text_without_ipywidgets(no_ipywidgets, capsys):
    assert quiz.questionnaire("03") is None
    out = capsys.readouterr().out
    assert "quiz.ask" in out and "03-q1:" in out and "Further research:" in out


def test_predict_falls_back_to_text_without_ipywidgets(no_ipywidgets, capsys):
    assert predictions.predict("03-predict-squeeze") is None
    out = capsys.readouterr().out
    assert "PREDICTION = ..." in out and "B) clearly higher" in out


def test_outside_a_kernel_the_text_is_shown():
    assert not feedback.widgets_available()  # pytest runs no Jupyter kernel


# --------------------------------------------------------------------- widgets


def test_widget_prediction_records_and_reveal_uses_it(capsys):
    box = predictions.prediction_widget("03-predict-squeeze")
    _header, row, status = box.children
    dropdown, button = row.children
    button.click()
    assert "Choose" in status.value
    dropdown.value = "B"
    button.click()
    assert predictions.recorded_prediction("03-predict-squeeze") == "B"
    assert "Recorded B" in status.value
    assert predictions.reveal("03-predict-squeeze", ..., (-0.1, 0.5)) is True
    assert "matches your prediction" in capsys.readouterr().out


def test_widget_numeric_prediction_uses_a_float_box():
    import ipywidgets

    box = predictions.prediction_widget("03-predict-minority-accuracy")
    control, button = box.children[1].children
    assert isinstance(control, ipywidgets.FloatText)
    control.value = 12.5
    button.click()
    assert predictions.recorded_prediction("03-predict-minority-accuracy") == 12.5


def test_widget_questionnaire_checks_in_place():
    box = quiz.questionnaire_widget("05")
    assert len(box.children) == len(quiz.QUESTIONNAIRES["05"]) + 1
    first, numeric = box.children[0], box.children[2]
    (control, button), feedback_html = first.children[1].children, first.children[2]
    control.value = 1
    button.click()
    assert "correct" in feedback_html.value and "medium" in feedback_html.value
    (box_number, check), shown = numeric.children[1].children, numeric.children[2]
    box_number.value = 49.0
    check.click()
    assert "not yet" in shown.value
    assert "Further research" in box.children[-1].value


def test_widgets_show_when_a_kernel_runs(monkeypatch):
    monkeypatch.setattr(predictions, "widgets_available", lambda: True)
    monkeypatch.setattr(quiz, "widgets_available", lambda: True)
    assert predictions.predict("01-predict-order") is not None
    assert quiz.questionnaire("01") is not None


def test_the_widgets_work_under_ipywidgets_7():
    folder = os.environ.get("ALLNC_EDU_IPYWIDGETS7")
    if not folder:
        if os.environ.get("CI"):
            pytest.fail("CI must set ALLNC_EDU_IPYWIDGETS7 to a folder holding ipywidgets 7")
        pytest.skip("set ALLNC_EDU_IPYWIDGETS7 to a folder holding ipywidgets 7 (see .ci/run)")
    env = {**os.environ, "PYTHONPATH": folder}
    probe = [sys.executable, "-c", "import ipywidgets; print(ipywidgets.__version__)"]
    version = subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout
    assert version.startswith("7."), f"expected ipywidgets 7 on the side path, got {version}"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    run = subprocess.run(
        [*command, "-k", "widget and not ipywidgets_7"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
