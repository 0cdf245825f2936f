"""Run a notebook the way CI does (papermill, SMOKE parameters), once per test session.

``executed(name, tmp_path_factory)`` runs ``notebooks/<name>.ipynb`` the first time a session asks
for it and hands every later caller the same executed copy and JSON, so a notebook's prose tests
and its output checks share one run. Papermill stops at the first cell that raises, which is what
``pytest --nbval-lax`` checked; ``check_outputs`` checks what a reader gets from the saved copy.

A cell that runs ``CELL_TIMEOUT_S`` or longer fails the run with ``CellOverBound``, which names the
cell and its time; there is no second try, and a notebook that failed once in a session fails
every later caller at once instead of running again.
"""

from __future__ import annotations

import json
import os
import re
import sys
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

#: A cell running this long fails the notebook's tests (``CellOverBound``, naming the cell and its
#: time). SMOKE cells take well under two minutes on a 2-core CPU (notebook 04's longest, 83 s);
#: the margin is for a machine shared with other work (notebook 03's training cell took 240 s at
#: a load average of 10 on 2 cores). There is no second try: a cell past the bound is a bug to
#: find, not noise to retry away. Issue 21 was one: a reply the client had already received sat
#: unnoticed until papermill's timeout fired, and then the cell counted as done (see
#: ``allnc_edu/widgets.py``), so the bound is checked on every cell's recorded time as well as
#: through papermill's timeout.
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


class CellOverBound(AssertionError):
    """A notebook cell ran ``CELL_TIMEOUT_S`` seconds or longer (timed out, or done only then)."""


_SESSION: dict[str, Executed | BaseException] = {}


def executed(name: str, tmp_path_factory) -> Executed:
    """``notebooks/<name>.ipynb`` executed with SMOKE=True, once per test session."""
    if name not in _SESSION:
        try:
            _SESSION[name] = _execute(name, tmp_path_factory.mktemp(name))
        except Exception as error:
            _SESSION[name] = error
            raise
    result = _SESSION[name]
    if isinstance(result, BaseException):  # no second run that could hide the first failure
        raise RuntimeError(f"notebook {name} failed earlier in this session: {result}") from result
    return result


def run_notebook(name: str, tmp_path_factory) -> dict:
    """The JSON that ``notebooks/<name>.ipynb`` wrote in this session's SMOKE run."""
    return executed(name, tmp_path_factory).results


def over_bound(nb: nbformat.NotebookNode, bound: float = CELL_TIMEOUT_S) -> list[str]:
    """One line per cell of a papermill-executed notebook that ran ``bound`` seconds or more:
    its index in the executed copy, its first line and its time (papermill's ``duration``)."""
    slow = []
    for index, cell in enumerate(nb.cells):
        seconds = cell.metadata.get("papermill", {}).get("duration")
        if seconds is not None and seconds >= bound:
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            slow.append(f"cell {index} ({first.strip()!r}) ran {seconds:.1f} s, bound {bound:g} s")
    return slow


def papermill_command(name: str, output: Path, results: Path, bound: float) -> list[str]:
    """The papermill command line that runs ``notebooks/<name>.ipynb`` as ``_execute`` does, with
    a per-cell timeout of ``bound`` seconds (for runs in separate processes)."""
    params = json.dumps({"SMOKE": True, "RESULTS_PATH": str(results)})
    return [
        sys.executable,
        "-m",
        "papermill",
        str(NOTEBOOK_DIR / f"{name}.ipynb"),
        str(output),
        "--cwd",
        str(NOTEBOOK_DIR),
        "--kernel",
        "python3",
        "--no-progress-bar",
        "--execution-timeout",
        str(int(bound)),
        "-y",
        params,
    ]


def _execute(name: str, folder: Path) -> Executed:
    results = folder / f"{name}.json"
    path = folder / f"{name}.ipynb"
    timed_out: CellTimeoutError | None = None
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
    except CellTimeoutError as error:  # papermill saved the copy with the cell's time
        timed_out = error
    artifacts = os.environ.get("ALLNC_EDU_ARTIFACTS")
    if artifacts and path.exists():  # kept for CI, a copy that ran too long included
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        (Path(artifacts) / path.name).write_bytes(path.read_bytes())
    slow = over_bound(nbformat.read(path, as_version=4)) if path.exists() else []
    if timed_out is not None or slow:
        what = "; ".join(slow) or str(timed_out).splitlines()[0]
        raise CellOverBound(f"notebook {name}: {what} (executed copy: {path})") from timed_out
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
