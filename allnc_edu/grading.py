"""Grade a filled-in notebook; make the student and the solution notebook from one source.

Grading runs the notebook top to bottom in a fresh kernel (nbclient, from the ``notebooks``
extra), cells that raise included, then one extra cell that prints the kernel's verdict log
(``feedback.dump_verdicts``: one tagged JSON line). Every exercise or question whose id appears
in the notebook counts; one whose check never ran (a deleted cell, a cell after a crash that
stopped it) counts as not attempted::

    result = grading.grade("notebooks/01_neural_collapse.ipynb")
    print(grading.format_grade(result))        # one line per item, then "score: 3/5"

One source, two notebooks: a py:percent source holds the solutions between ``### BEGIN
SOLUTION`` and ``### END SOLUTION`` (optionally ``### BEGIN SOLUTION 01-etf``, naming the
exercise). :func:`student_source` replaces each block with the exercise's blank
(``answer = ...  # YOUR CODE HERE`` by default), so Run All of a student notebook reports every
blank as not attempted and stops nowhere; :func:`solution_source` keeps the code and drops the
markers; :func:`write_notebooks` writes both as .ipynb with jupytext. Keep that source out of
``jupytext.toml``'s pairing with the student notebook: ``jupytext --sync`` would overwrite it
with the student version.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .exercises import EXERCISES
from .feedback import BLANK, parse_verdicts, verdict_line
from .quiz import QUESTIONS

#: The tag of a solution notebook's cells that hold an exercise's answer (MyST-NB folds their
#: input on the website, behind "Show code cell source").
ANSWER_TAG = "hide-input"
#: The tag of cells that only write numbers for the tests or print versions: their source is
#: folded in JupyterLab (``jupyter.source_hidden``) and the website leaves them out.
FOR_TESTS_TAG = "for-tests"
DUMP_CELL = (
    "from allnc_edu import feedback as _allnc_edu_feedback\n\n_allnc_edu_feedback.dump_verdicts()"
)
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:[ \t]+(?P<id>\S+))?[ \t]*$")
_END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
_NEVER_RAN = "its check never ran (the cell is missing, or an error stopped it)."


class Grade(NamedTuple):
    """A graded notebook: ``score`` items correct out of ``total``; ``lines``, one verdict line
    per item, then one line per cell that raised (cells counted from 1, as the notebook has
    them)."""

    score: int
    total: int
    lines: list[str]


def _notebook_tools():
    """nbformat and nbclient's NotebookClient, or a one-line ImportError saying what to install."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        raise ImportError(
            "grading runs notebooks with nbclient and nbformat: pip install 'allnc-edu[notebooks]'"
        ) from None
    return nbformat, NotebookClient


def _inject_parameters(notebook, parameters: Mapping[str, object], new_cell) -> None:
    """Insert ``NAME = value`` lines after the cell tagged "parameters" (else first), as
    papermill does."""
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = new_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(tagged[0] + 1 if tagged else 0, cell)


def _ids_in(notebook) -> list[str]:
    """Exercise and question ids quoted in the notebook's code cells, in order of appearance."""
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    quoted = re.findall(r"""["'](\d\d-[\w-]+)["']""", text)
    return list(dict.fromkeys(i for i in quoted if i in EXERCISES or i in QUESTIONS))


def grade(
    notebook_path: str | Path,
    *,
    timeout: int = 600,
    kernel_name: str = "",
    parameters: Mapping[str, object] | None = None,
) -> Grade:
    """Execute a notebook in a fresh kernel (in its own folder) and grade its checks.

    Args:
        notebook_path: the filled-in .ipynb.
        timeout: seconds allowed per cell.
        kernel_name: the kernel to run; default the notebook's own (else python3).
        parameters: values to set after the cell tagged "parameters" (e.g. {"SMOKE": True}).

    Returns:
        :class:`Grade`: (score, total, lines). Raises RuntimeError when the kernel did not
        report its verdicts (e.g. allnc_edu is not installed in it).
    """
    nbformat, notebook_client = _notebook_tools()
    path = Path(notebook_path)
    notebook = nbformat.read(path, as_version=4)
    expected = _ids_in(notebook)
    if parameters:
        _inject_parameters(notebook, parameters, nbformat.v4.new_code_cell)
    notebook.cells.append(nbformat.v4.new_code_cell(DUMP_CELL))
    client = notebook_client(
        notebook,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=True,
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )
    client.execute()
    outputs = notebook.cells[-1].get("outputs", [])
    found = parse_verdicts("".join(o.get("text", "") for o in outputs if o.output_type == "stream"))
    if found is None:
        raise RuntimeError(f"{path}: the kernel did not report its verdicts (is allnc_edu there?)")
    own = [
        c for c in notebook.cells[:-1] if "injected-parameters" not in c.metadata.get("tags", [])
    ]
    errors = [
        f"cell {number} raised {output.ename}: {output.evalue}"
        for number, cell in enumerate(own, start=1)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    return tally(found, expected, errors)


def tally(found: list[dict], expected: Sequence[str], errors: Sequence[str] = ()) -> Grade:
    """A :class:`Grade` from the recorded verdicts (``feedback.verdicts``), the ids a notebook
    holds (never checked: not attempted) and the errors of its cells."""
    by_id = {entry["id"]: entry for entry in found}
    lines, score = [], 0
    for item_id in dict.fromkeys([*expected, *by_id]):
        entry = by_id.get(item_id)
        if entry is None:
            lines.append(verdict_line(item_id, None, _NEVER_RAN))
            continue
        score += entry["verdict"] is True
        lines.append(verdict_line(item_id, entry["verdict"], entry["message"]))
    return Grade(score=score, total=len(lines), lines=[*lines, *errors])


def format_grade(result: Grade, name: str = "") -> str:
    """The grade as text: one line per item and per error, then the score."""
    title = f"{name}: " if name else ""
    return "\n".join([*result.lines, f"{title}score {result.score}/{result.total}"])


def _blank(exercise_id: str | None, line_number: int) -> str:
    if exercise_id is None:
        return BLANK
    if exercise_id not in EXERCISES:
        raise ValueError(f"line {line_number}: BEGIN SOLUTION names no exercise: {exercise_id!r}")
    return EXERCISES[exercise_id].blank


def _split_solutions(text: str, keep: bool) -> str:
    """The text with each solution block kept (markers dropped) or replaced by its blank."""
    out, opened = [], 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        begin = _BEGIN.match(line.rstrip("\r\n"))
        if begin:
            if opened:
                raise ValueError(f"line {number}: BEGIN SOLUTION inside the block of line {opened}")
            opened = number
            if not keep:
                blank = _blank(begin["id"], number)
                out += [f"{begin['indent']}{part}\n" for part in blank.splitlines()]
        elif _END.match(line.rstrip("\r\n")):
            if not opened:
                raise ValueError(f"line {number}: END SOLUTION without a BEGIN SOLUTION")
            opened = 0
        elif keep or not opened:
            out.append(line)
    if opened:
        raise ValueError(f"line {opened}: BEGIN SOLUTION is never closed by ### END SOLUTION")
    return "".join(out)


def student_source(text: str) -> str:
    """The student version of a source: every ``### BEGIN SOLUTION [id]`` ... ``### END
    SOLUTION`` block replaced by the exercise's blank, indented like the marker.

    Raises ValueError (naming the line) for an unclosed, nested or unmatched marker, or an
    unknown exercise id."""
    return _split_solutions(text, keep=False)


def solution_source(text: str) -> str:
    """The solution version of a source: the code between the markers kept, the markers gone."""
    return _split_solutions(text, keep=True)


def write_notebooks(
    source: str | Path,
    student_dir: str | Path = "notebooks",
    solution_dir: str | Path = "notebooks/solutions",
) -> tuple[Path, Path]:
    """Write the student and the solution .ipynb of a py:percent source with solution blocks.

    Both are named after the source (``NN_name.py`` -> ``NN_name.ipynb``), without outputs and
    with cell ids "0", "1", ... so that rewriting them changes only what changed. The solution
    notebook's answer cells are tagged ``ANSWER_TAG``; cells tagged ``FOR_TESTS_TAG`` open folded
    in JupyterLab. Returns (student path, solution path); needs jupytext (the ``dev`` extra).
    """
    try:
        import jupytext
    except ImportError:
        raise ImportError("writing notebooks needs jupytext: pip install jupytext") from None
    source = Path(source)
    text = source.read_text(encoding="utf-8")
    student = jupytext.reads(student_source(text), fmt="py:percent")
    solution = jupytext.reads(solution_source(text), fmt="py:percent")
    try:  # a solution folder inside the student one: relative links one level deeper each
        depth = len(Path(solution_dir).relative_to(Path(student_dir)).parts)
    except ValueError:
        depth = 0
    up = "../" * (depth + 1)
    for cell in solution.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("](../", f"]({up}")
    for index, (blank, answer) in enumerate(zip(student.cells, solution.cells, strict=True)):
        blank.id = answer.id = str(index)
        if blank.cell_type == "code" and blank.source != answer.source:  # an answer: folded
            answer.metadata.setdefault("tags", []).append(ANSWER_TAG)
        for cell in (blank, answer):
            if FOR_TESTS_TAG in cell.metadata.get("tags", []):  # folded in JupyterLab
                cell.metadata["jupyter"] = {"source_hidden": True}
    written = []
    for folder, notebook in ((student_dir, student), (solution_dir, solution)):
        target = Path(folder) / f"{source.stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(notebook, target, fmt="ipynb")
        written.append(target)
    return written[0], written[1]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m allnc_edu.grading notebooks/py/*.py``: write each source's student notebook
    into ``notebooks/`` and its solution notebook into ``notebooks/solutions/``."""
    sources = list(sys.argv[1:] if argv is None else argv)
    if not sources:
        print("usage: python -m allnc_edu.grading SOURCE.py ...", file=sys.stderr)
        return 2
    for source in sources:
        student, solution = write_notebooks(source)
        print(f"wrote {student} and {solution}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
