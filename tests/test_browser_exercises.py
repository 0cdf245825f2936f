"""The exercises as a student meets them in JupyterLab, in headless Chromium: a prediction widget
that records a choice, a check's message naming the mistake, a hint, and a questionnaire whose
answer is checked in place. Each cell is screenshotted (pytest's ``tmp_path``, and
``$ALLNC_EDU_ARTIFACTS`` when set)."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from _jupyterlab import copy_artifact, jupyterlab
from test_browser import NOTEBOOK_JS, _errors, _kernel_ready, _wait_for, page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CELLS = [
    "import torch\nfrom allnc_edu import geometry, predictions, quiz\n"
    "from allnc_edu.exercises import EXERCISES",
    'predictions.predict("03-predict-squeeze")',
    "# the right angles, one row twice as long\n"
    "answer = geometry.simplex_etf(4, 3) * torch.tensor([[1.0], [2.0], [1.0], [1.0]])\n"
    'EXERCISES["01-etf"].check(answer)',
    'EXERCISES["01-etf"].hint()',
    'quiz.questionnaire("01")',
]


@pytest.fixture
def lab(tmp_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, root / "exercises.ipynb")
    with jupyterlab(root, tmp_path / "jupyter") as server:
        yield server


def _shot(cell, path: Path) -> None:
    cell.scroll_into_view_if_needed()
    cell.screenshot(path=str(path))
    copy_artifact(path)


def test_a_prediction_a_check_a_hint_and_a_question_in_jupyterlab(page, lab, tmp_path):  # noqa: F811
    page.goto(lab.url("lab/tree/exercises.ipynb"))
    _wait_for(page, NOTEBOOK_JS, lambda s: _kernel_ready(page, s), 90, "a kernel")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    state = _wait_for(page, NOTEBOOK_JS, lambda s: s["kernel"] == "idle" and (
        all(c["count"] for c in s["cells"]) or _errors(s)), 180, "all cells to run")  # fmt: skip
    assert not _errors(state)
    cells = page.locator(".jp-Notebook .jp-Cell")
    predict, check, hint, questions = (cells.nth(i) for i in (1, 2, 3, 4))

    predict.locator("select").first.select_option(index=1)
    predict.locator("button", has_text="Record").first.click()
    predict.get_by_text("Recorded A").wait_for(timeout=20_000)
    _shot(predict, tmp_path / "exercise-prediction.png")

    assert "unequal norms" in check.inner_text() and "length 1" in check.inner_text()
    _shot(check, tmp_path / "exercise-check.png")
    assert "Hint 1 of 3" in hint.inner_text()
    _shot(hint, tmp_path / "exercise-hint.png")

    assert questions.locator("button", has_text="Check").count() == 11
    questions.locator("select").first.select_option(index=1)
    questions.locator("button", has_text="Check").first.click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
        mark in questions.inner_text() for mark in ("✓", "✗")
    ):
        time.sleep(0.25)
    assert any(mark in questions.inner_text() for mark in ("✓", "✗")), questions.inner_text()
    _shot(questions, tmp_path / "exercise-questionnaire.png")
