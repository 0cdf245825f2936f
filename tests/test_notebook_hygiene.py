"""Notebooks are committed stripped, paired with py:percent scripts in notebooks/py/ (so that
JupyterLab lists each notebook once), name their kernel, and share one opening."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import jupytext.config
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCRIPTS = ROOT / "notebooks" / "py"


def test_there_are_notebooks_and_only_notebooks_beside_them() -> None:
    assert len(NOTEBOOKS) >= 2
    assert not list((ROOT / "notebooks").glob("*.py")), "paired scripts belong in notebooks/py/"
    assert {p.stem for p in SCRIPTS.glob("*.py")} == {p.stem for p in NOTEBOOKS}


def test_jupytext_pairs_each_notebook_with_its_script_in_py() -> None:
    config = jupytext.config.find_jupytext_configuration_file(str(ROOT / "notebooks"))
    formats = jupytext.config.load_jupytext_configuration_file(config).formats
    assert formats == ["notebooks///ipynb,notebooks/py///py:percent"]


def test_names_its_kernel(notebook) -> None:
    path, nb = notebook
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", (
        f"{path.name} must name its kernel, or JupyterLab asks for one on opening"
    )


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request) -> tuple[Path, nbformat.NotebookNode]:
    return request.param, nbformat.read(request.param, as_version=4)


def test_committed_without_outputs(notebook) -> None:
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} carries outputs: run nbstripout"
            assert cell.execution_count is None, f"{path.name} carries execution counts"


def test_paired_script_is_in_sync(notebook) -> None:
    path, nb = notebook
    script = SCRIPTS / f"{path.stem}.py"
    assert script.exists(), f"{script.name} missing: run `jupytext --sync {path}`"
    paired = jupytext.read(script)
    sources = [(c.cell_type, c.source.strip()) for c in nb.cells]
    assert sources == [(c.cell_type, c.source.strip()) for c in paired.cells], (
        f"{path.name} and {script.name} differ: run `jupytext --sync {path}`"
    )


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
