"""Notebooks are built from one source each (notebooks/py/NN_*.py, solutions marked): the
student notebook beside it and the instructor's in notebooks/solutions/, both up to date,
committed stripped, naming their kernel and sharing one opening."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext.config
import nbformat
import pytest

from allnc_edu.grading import write_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
SCRIPTS = ROOT / "notebooks" / "py"


def test_there_are_notebooks_and_only_notebooks_beside_them() -> None:
    assert len(NOTEBOOKS) >= 2
    assert not list((ROOT / "notebooks").glob("*.py")), "sources belong in notebooks/py/"
    stems = {p.stem for p in NOTEBOOKS}
    assert {p.stem for p in SCRIPTS.glob("*.py")} == stems == {p.stem for p in SOLUTIONS}


def test_jupytext_pairs_nothing() -> None:
    """A saved student notebook must never overwrite the source that holds the solutions."""
    config = jupytext.config.find_jupytext_configuration_file(str(ROOT / "notebooks"))
    assert not any(jupytext.config.load_jupytext_configuration_file(config).formats)


def _cells(nb: nbformat.NotebookNode) -> list[tuple]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
def test_both_notebooks_are_built_from_the_source(stem, tmp_path) -> None:
    student, solution = write_notebooks(
        SCRIPTS / f"{stem}.py", tmp_path / "nb", tmp_path / "nb" / "solutions"
    )
    for built, committed in ((student, ROOT / "notebooks"), (solution, ROOT / "notebooks" /
                                                             "solutions")):  # fmt: skip
        want = nbformat.read(built, as_version=4)
        got = nbformat.read(committed / built.name, as_version=4)
        assert _cells(got) == _cells(want), (
            f"{committed / built.name} is not built from notebooks/py/{stem}.py: run "
            "`python -m allnc_edu.grading notebooks/py/*.py`"
        )


def test_names_its_kernel(notebook) -> None:
    path, nb = notebook
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", (
        f"{path.name} must name its kernel, or JupyterLab asks for one on opening"
    )


@pytest.fixture(params=NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def notebook(request) -> tuple[Path, nbformat.NotebookNode]:
    return request.param, nbformat.read(request.param, as_version=4)


def test_committed_without_outputs(notebook) -> None:
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} carries outputs: run nbstripout"
            assert cell.execution_count is None, f"{path.name} carries execution counts"


def test_opens_with_colab_badge_setup_and_parameters(notebook) -> None:
    path, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "colab.research.google.com" in first.source
    assert path.name in first.source, "the badge opens this very notebook"
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert "google.colab" in setup.source and "show_versions" in setup.source
    install = setup.source.split('"pip"', 1)[-1].split("check=True", 1)[0]
    assert "torch" not in install and "upgrade" not in install, "never reinstall torch"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    tree = ast.parse(tagged[0].source)
    names = set()
    for node in tree.body:
        assert isinstance(node, ast.Assign), "the parameters cell holds assignments only"
        ast.literal_eval(node.value)  # literal values only, so papermill can override them
        names.update(t.id for t in node.targets)
    assert {"SMOKE", "SEED", "RESULTS_PATH"} <= names
