"""Run a notebook the way CI does (papermill, SMOKE parameters), once per test session.

``executed(name, tmp_path_factory)`` runs ``notebooks/<name>.ipynb`` the first time a session asks
for it and hands every later caller the same executed copy and JSON, so a notebook's prose tests
and its output checks share one run. Papermill stops at the first cell that raises, which is what
``pytest --nbval-lax`` checked; ``check_outputs`` checks what a reader gets from the saved copy.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb"))

#: What a reader of the saved notebook gets: at most this many outputs in one cell (JupyterLab
#: folds longer output lists behind "Show more outputs"), and at most this many bytes on disk
#: (GitHub and nbviewer render notebooks up to a few MB).
MAX_OUTPUTS_PER_CELL = 10
MAX_NOTEBOOK_BYTES = 5 * 1024 * 1024

#: A cell running longer than this counts as hung: SMOKE cells take well under two minutes on a
#: 2-core CPU (notebook 04, the longest, ran in 83 s), but now and then a kernel's reply is lost
#: and papermill waits forever (seen with ipykernel 7.4 on a loaded machine). A notebook whose
#: cell times out gets one fresh try, so a lost message does not fail the suite, while a
#: notebook that is really too slow still does.
CELL_TIMEOUT_S = 360

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@dataclass(frozen=True)
class Executed:
    """A notebook executed with SMOKE parameters: the saved copy and the JSON it wrote."""

    path: Path
    results: dict

    def read(self) -> nbformat.NotebookNode:
        return nbformat.read(self.path, as_version=4)


_SESSION: dict[str, Executed] = {}


def executed(name: str, tmp_path_factory) -> Executed:
    """``notebooks/<name>.ipynb`` executed with SMOKE=True, once per test session."""
    if name not in _SESSION:
        _SESSION[name] = _execute(name, tmp_path_factory.mktemp(name))
    return _SESSION[name]


def run_notebook(name: str, tmp_path_factory) -> dict:
    """The JSON that ``notebooks/<name>.ipynb`` wrote in this session's SMOKE run."""
    return executed(name, tmp_path_factory).results


def _execute(name: str, folder: Path) -> Executed:
    results = folder / f"{name}.json"
    path = folder / f"{name}.ipynb"
    for attempt in (1, 2):
        try:
            papermill.execute_notebook(
                str(NOTEBOOK_DIR / f"{name}.ipynb"),
                str(path),
                parameters={"SMOKE": True, "RESULTS_PATH": str(results)},
                cwd=str(NOTEBOOK_DIR),
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=CELL_TIMEOUT_S,
            )
            break
        except CellTimeoutError:
            if attempt == 2:
                raise
    artifacts = os.environ.get("ALLNC_EDU_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        (Path(artifacts) / path.name).write_bytes(path.read_bytes())
    return Executed(path, json.loads(results.read_text()))


def check_outputs(run: Executed) -> list[str]:
    """What is wrong with the saved executed notebook for a reader, one line per problem:
    a cell with more than ``MAX_OUTPUTS_PER_CELL`` outputs, an error output, a widget whose
    state was not saved (it would show "Error displaying widget" without a kernel), or a file
    over ``MAX_NOTEBOOK_BYTES``."""
    nb, problems = run.read(), []
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if len(cell.outputs) > MAX_OUTPUTS_PER_CELL:
            problems.append(f"cell {index} has {len(cell.outputs)} outputs")
        for output in cell.outputs:
            if output.output_type == "error":
                problems.append(f"cell {index} raised {output.ename}: {output.evalue}")
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is not None and view["model_id"] not in saved:
                problems.append(f"cell {index} shows widget {view['model_id']} without state")
    for model_id, model in saved.items():  # children (IPY_MODEL_<id>) must be saved as well
        for child in re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(model.get("state", {}))):
            if child not in saved:
                problems.append(f"widget {model_id} refers to {child}, whose state is not saved")
    size = run.path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        problems.append(f"{size / 2**20:.1f} MB on disk")
    return problems
