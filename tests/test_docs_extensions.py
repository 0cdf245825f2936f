"""The website's own Sphinx extensions (docs/_ext), without building the site."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import plotly.graph_objects as go
import pytest

pytest.importorskip("sphinx", reason="the docs extra is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))

import api_pages
import cli_reference
import notebook_pages

from allnc_edu.__main__ import build_parser

FIGURE = go.Figure(go.Scatter3d(x=[0, 1], y=[0, 1], z=[0, 1])).to_plotly_json()


def _widget_state() -> dict:
    """A stored ipywidgets state: a VBox of a slider, a dropdown, an HTML and an Output."""

    def model(name: str, **state) -> dict:
        return {"model_name": name, "state": state}

    plot = {"output_type": "display_data", "data": {notebook_pages.PLOTLY_JSON: FIGURE}}
    return {
        "box": model(
            "VBoxModel", children=["IPY_MODEL_s", "IPY_MODEL_d", "IPY_MODEL_h", "IPY_MODEL_o"]
        ),
        "s": model("FloatLogSliderModel", description="imbalance ratio", value=100.0),
        "d": model("DropdownModel", description="method", _options_labels=["CE", "ETF"], index=1),
        "h": model("HTMLModel", value="<table><tr><td>MC_W</td></tr></table>"),
        "o": model("OutputModel", outputs=[plot]),
    }


def _executed_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    badge = (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://x)"
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"{badge}\n\n# Title\n\ntext"),
        nbformat.v4.new_code_cell("SMOKE = True\nRESULTS_PATH = '/tmp/x.json'"),
        nbformat.v4.new_code_cell("fig.show()"),
        nbformat.v4.new_code_cell("explorer.widget"),
    ]
    nb.cells[1].metadata["tags"] = ["injected-parameters"]
    nb.cells[2].outputs = [
        nbformat.v4.new_output("display_data", data={notebook_pages.PLOTLY_JSON: FIGURE})
    ]
    view = {"model_id": "box", "version_major": 2, "version_minor": 0}
    nb.cells[3].outputs = [
        nbformat.v4.new_output(
            "execute_result", data={notebook_pages.WIDGET_VIEW: view, "text/plain": "VBox()"}
        )
    ]
    nb.metadata["widgets"] = {notebook_pages.WIDGET_STATE: {"state": _widget_state()}}
    nb.metadata["papermill"] = {"parameters": {"SMOKE": True, "RESULTS_PATH": "/tmp/x.json"}}
    return nb


def test_static_page_draws_plotly_with_the_site_copy_and_freezes_widgets() -> None:
    nb = notebook_pages.for_static_page(_executed_notebook())
    markdown, injected, plot, widget = nb.cells
    assert "colab-badge.svg" not in markdown.source and "# Title" in markdown.source
    assert injected.source.splitlines()[1:] == ["SMOKE = True"]  # no temporary RESULTS_PATH
    (output,) = plot.outputs
    assert list(output.data) == ["text/html"]
    html = output.data["text/html"]
    assert "Plotly.newPlot" in html and "<script src" not in html and "require(" not in html
    frozen = widget.outputs[0].data
    assert list(frozen) == ["text/html"]
    text = frozen["text/html"]
    assert "imbalance ratio = 100" in text and "method = ETF" in text
    assert "<td>MC_W</td>" in text and "Plotly.newPlot" in text and "Binder or Colab" in text
    assert "widgets" not in nb.metadata


def test_injected_cell_says_when_the_full_parameters_ran() -> None:
    assert "full" in notebook_pages.injected_parameters({"RESULTS_PATH": "/tmp/x.json"})


def test_cache_key_follows_the_notebook_the_parameters_and_the_library(tmp_path) -> None:
    notebook, package = tmp_path / "01_x.ipynb", tmp_path / "pkg"
    package.mkdir()
    notebook.write_text("{}")
    (package / "a.py").write_text("x = 1\n")
    key = notebook_pages.cache_key(notebook, {"SMOKE": True}, package)
    assert key == notebook_pages.cache_key(notebook, {"SMOKE": True}, package)
    assert key != notebook_pages.cache_key(notebook, {}, package)
    (package / "a.py").write_text("x = 2\n")
    assert key != notebook_pages.cache_key(notebook, {"SMOKE": True}, package)


def test_failure_line_names_the_error() -> None:
    stderr = "Executing: 100%\n---------\nValueError: bad ratio\n-----------------\n"
    assert notebook_pages.failure_line(stderr) == "ValueError: bad ratio"
    assert notebook_pages.failure_line("") == "papermill failed"


def test_parameters_smoke_by_default_full_on_request(monkeypatch) -> None:
    monkeypatch.delenv(notebook_pages.ENV_FULL, raising=False)
    assert notebook_pages.parameters(notebook_pages.full_parameters()) == {"SMOKE": True}
    monkeypatch.setenv(notebook_pages.ENV_FULL, "1")
    assert notebook_pages.parameters(notebook_pages.full_parameters()) == {}


def test_cli_reference_covers_every_subcommand() -> None:
    parser = cli_reference.load_parser("allnc_edu.__main__:build_parser")
    names = list(cli_reference.subcommands(parser))
    assert names == list(build_parser()._subparsers._group_actions[0].choices)
    for sub in cli_reference.subcommands(parser).values():
        options = [line for line in cli_reference.help_text(sub).splitlines() if "  -" in line]
        assert options and max(map(len, options)) <= cli_reference.HELP_COLUMNS  # argparse's wrap


def test_api_pages_list_every_public_module() -> None:
    names = api_pages.public_modules("allnc_edu")
    assert {"allnc_edu.metrics", "allnc_edu.allnc", "allnc_edu.plots"} <= set(names)
    assert not [n for n in names if n.split(".")[-1].startswith("_")]


def test_a_page_links_to_the_site_and_leaves_out_cells_for_the_tests() -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("[NC1](../docs/glossary.md#nc1), [x](../../docs/a.md)"),
            nbformat.v4.new_code_cell("json.dump(numbers, f)", metadata={"tags": ["for-tests"]}),
            nbformat.v4.new_code_cell("answer = 1", metadata={"tags": ["hide-input"]}),
        ]
    )
    page = notebook_pages.for_static_page(nb)
    assert page.cells[0].source == "[NC1](../glossary.md#nc1), [x](../a.md)"
    assert "remove-cell" in page.cells[1].metadata["tags"]
    assert page.cells[2].metadata["tags"] == ["hide-input"]  # folded by MyST-NB, kept
