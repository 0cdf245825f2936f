"""Each executed notebook reads well when saved: few outputs per cell, widgets that re-render
without a kernel, a file GitHub and nbviewer can show. The checker itself is tested first."""

from __future__ import annotations

import nbformat
import pytest
from _notebooks import (
    CELL_TIMEOUT_S,
    MAX_NOTEBOOK_BYTES,
    MAX_OUTPUTS_PER_CELL,
    NOTEBOOK_DIR,
    NOTEBOOKS,
    WIDGET_STATE,
    WIDGET_VIEW,
    Executed,
    check_outputs,
    executed,
)

from allnc_edu.grading import format_grade, grade


def _saved(tmp_path, cells, widgets=None) -> Executed:
    nb = nbformat.v4.new_notebook(cells=cells)
    if widgets is not None:
        nb.metadata["widgets"] = {WIDGET_STATE: {"state": widgets}}
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    return Executed(path, {})


def _view(model_id: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": model_id}})


def test_the_checker_accepts_a_tidy_notebook(tmp_path) -> None:
    text = nbformat.v4.new_output("stream", name="stdout", text="done\n")
    cell = nbformat.v4.new_code_cell(outputs=[text, _view("ab12")])
    state = {"ab12": {"state": {"children": ["IPY_MODEL_cd34"]}}, "cd34": {"state": {}}}
    assert check_outputs(_saved(tmp_path, [cell], state)) == []


def test_the_checker_flags_long_output_lists_and_unsaved_widgets(tmp_path) -> None:
    lines = [nbformat.v4.new_output("stream", name="stderr", text="x\n")] * 11
    cells = [
        nbformat.v4.new_code_cell(outputs=lines),
        nbformat.v4.new_code_cell(outputs=[_view("ab12"), _view("ef56")]),
    ]
    state = {"ab12": {"state": {"children": ["IPY_MODEL_cd34"]}}}
    problems = check_outputs(_saved(tmp_path, cells, state))
    assert problems == [
        "cell 0 has 11 outputs",
        "cell 1 shows widget ef56 without state",
        "widget ab12 refers to cd34, whose state is not saved",
    ]
    assert MAX_OUTPUTS_PER_CELL == 10 and MAX_NOTEBOOK_BYTES == 5 * 2**20


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executed_notebook_reads_well_when_saved(name, tmp_path_factory) -> None:
    assert check_outputs(executed(name, tmp_path_factory)) == []


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_student_notebook_reports_every_exercise_not_attempted(name, tmp_path_factory):
    """Run top to bottom with the blanks unfilled: no error (papermill would stop), and every
    exercise the notebook checks is reported "not attempted"."""
    verdicts = executed(name, tmp_path_factory).results["verdicts"]
    assert len({v["id"] for v in verdicts}) >= 3, "each notebook has three exercises or more"
    assert all(v["verdict"] is None for v in verdicts), [v for v in verdicts if v["verdict"]]


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_solution_notebook_gets_every_check_right(name, tmp_path) -> None:
    """The instructor's notebook, graded as ``python -m allnc_edu grade`` does (SMOKE sizes):
    every exercise and question correct."""
    path = NOTEBOOK_DIR / "solutions" / f"{name}.ipynb"
    studies = NOTEBOOK_DIR.parent / "docs" / "studies"  # the notebooks read it from notebooks/
    parameters = {"SMOKE": True, "RESULTS_PATH": str(tmp_path / f"{name}.json"),
                  "STUDY_DIR": str(studies)}  # fmt: skip
    result = grade(path, timeout=CELL_TIMEOUT_S, parameters=parameters)
    assert result.total >= 3 and result.score == result.total, format_grade(result, name)
