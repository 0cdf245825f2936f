"""Sphinx extension: the notebooks of the course, executed with papermill, as pages.

At ``builder-inited`` every instructor's notebook ``notebooks/solutions/NN_*.ipynb`` (the
student notebook with its exercises answered) is executed with papermill (the way the tests run
them, in ``notebooks/``) into ``docs/notebooks/`` (git-ignored), which MyST-NB then renders with
its own execution switched off. Why papermill and not MyST-NB's executor: MyST-NB cannot inject
parameters, and each notebook's ``parameters`` cell must get ``SMOKE=True`` (the default, a
build of minutes on a CPU) or keep its own full defaults (``ALLNC_EDU_DOCS_FULL=1``).

Executed notebooks are cached in ``docs/_build/.notebook-cache/``, keyed by the notebook, the
parameters and the library's source, so a rebuild re-executes only what changed. A notebook
that fails is still rendered (with its traceback) and logged as a warning, which ``-W`` turns
into a failed build. So is a notebook with a cell that ran ``CELL_TIMEOUT_S`` seconds or longer
(the warning names the cell and its time), whether papermill's timeout stopped it or the cell
was reported done only when that timeout fired (issue 21: a reply papermill had already received
went unnoticed until then); such a run is not cached, and there is no second try. An
exercise's answer is folded behind "Show code cell source" (its cell is tagged ``hide-input``),
cells that only write numbers for the tests are left out, and links to the site's pages
(``../docs/glossary.md#nc1``) point to them.

The executed copies are then made fit for a page without a kernel:

- plotly outputs become HTML that draws with the site's own ``plotly.min.js`` (no CDN, no
  require.js): 3D views still rotate and precomputed sliders still move;
- an ipywidgets output becomes a frozen snapshot (its plotly figure, HTML and control values)
  under a note that its controls need a kernel (Binder or Colab), and the notebook's stored
  widget state, which would need the widget manager from a CDN, is dropped.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
from plotly_figure import plotly_html
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Set to 1 to execute the notebooks with their own (full) parameters instead of SMOKE ones.
ENV_FULL = "ALLNC_EDU_DOCS_FULL"
#: How many notebooks execute at once (default 1: they share the CPU cores). The stall once blamed
#: on kernels side by side (issue 21) was a lost reply, fixed in ``allnc_edu/widgets.py``.
ENV_JOBS = "ALLNC_EDU_DOCS_JOBS"
#: Seconds one cell may run before it fails the build (default ``CELL_TIMEOUT_S``); raise it for a
#: build with the full parameters on a slow machine.
ENV_CELL_TIMEOUT = "ALLNC_EDU_DOCS_CELL_TIMEOUT"
#: Set to 0 to render the notebooks unexecuted (a quick check of everything else).
ENV_EXECUTE = "ALLNC_EDU_DOCS_EXECUTE"
#: Bump to invalidate every cached execution (when the post-processing or the keying changes).
CACHE_VERSION = "2"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY_JSON = "application/vnd.plotly.v1+json"
#: A cell that runs this long fails the build, named with its time (inside pytest's 900 s), as in
#: the tests (``tests/_notebooks.py``). On a 2-core CPU SMOKE cells take well under two minutes,
#: and each whole notebook with its full parameters under three.
CELL_TIMEOUT_S = 360
#: A markdown line made only of badge links whose images live elsewhere ("Open in Colab"):
#: dropped from the pages, which show their own launch buttons and must load nothing remote.
REMOTE_BADGES = re.compile(r"^\s*(\[!\[[^\]]*\]\(https?://[^)]*\)\]\([^)]*\)\s*)+$")


#: Links from a notebook (or a solution notebook, one folder deeper) to a page of the site.
SITE_LINK = re.compile(r"\]\((?:\.\./)+docs/")
#: Cells that only write numbers for the tests or print versions (``grading.FOR_TESTS_TAG``).
FOR_TESTS = "for-tests"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in {"1", "true", "yes"}


def full_parameters() -> bool:
    """True when ``$ALLNC_EDU_DOCS_FULL`` asks for the notebooks' own (full) parameters."""
    return _flag(ENV_FULL, default=False)


def parameters(full: bool) -> dict[str, Any]:
    """The papermill parameters for a docs build (``RESULTS_PATH`` is added per notebook)."""
    return {} if full else {"SMOKE": True}


def cell_timeout() -> int:
    """Seconds one cell may run: ``$ALLNC_EDU_DOCS_CELL_TIMEOUT``, else ``CELL_TIMEOUT_S``."""
    value = os.environ.get(ENV_CELL_TIMEOUT, "").strip()
    if not value:
        return CELL_TIMEOUT_S
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${ENV_CELL_TIMEOUT} must be a whole number of seconds, got {value!r}")
    return int(value)


def over_bound(nb: nbformat.NotebookNode, bound: float) -> list[str]:
    """One line per cell of a papermill-executed notebook that ran ``bound`` seconds or more:
    its index in the executed copy, its first line and its time (papermill's ``duration``)."""
    slow = []
    for index, cell in enumerate(nb.cells):
        seconds = cell.metadata.get("papermill", {}).get("duration")
        if seconds is not None and seconds >= bound:
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            slow.append(f"cell {index} ({first.strip()!r}) ran {seconds:.0f} s, bound {bound:g} s")
    return slow


def cache_key(notebook: Path, params: dict[str, Any], package: Path) -> str:
    """A hash of the notebook, its parameters and every source file of the library."""
    digest = hashlib.sha256(CACHE_VERSION.encode())
    digest.update(notebook.read_bytes())
    digest.update(json.dumps(params, sort_keys=True).encode())
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def execute(
    notebook: Path, target: Path, params: dict[str, Any], threads: int, cwd: Path | None = None
) -> str | None:
    """Run ``notebook`` with papermill into ``target``; return an error message or None.

    An error is papermill's (a cell raised, the kernel died) or, naming each cell and its time,
    a cell that ran ``cell_timeout()`` seconds or longer, even where papermill reported success.

    The notebook runs in ``cwd`` (default its own folder; a solution notebook runs where its
    student version lives, as in JupyterLab and the tests: it may read ``../docs/studies/``);
    its results JSON goes to a temporary directory. The
    kernel gets plotly's bare JSON renderer (the HTML is made afterwards), no progress bars from
    tqdm, and ``threads`` CPU threads (unless ``$OMP_NUM_THREADS`` says otherwise), so that
    notebooks executing side by side do not oversubscribe the cores.
    """
    bound = cell_timeout()
    target.unlink(missing_ok=True)  # the bound is read from this run's copy, never an older one
    with tempfile.TemporaryDirectory(prefix="allnc-docs-") as work:
        params = {**params, "RESULTS_PATH": str(Path(work) / f"{notebook.stem}.json")}
        env = {
            "OMP_NUM_THREADS": str(threads),
            **os.environ,
            "PLOTLY_RENDERER": "plotly_mimetype",
            "TQDM_DISABLE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        command = [
            sys.executable,
            "-m",
            "papermill",
            str(notebook),
            str(target),
            "--cwd",
            str(cwd or notebook.parent),
            "--kernel",
            "python3",
            "--no-progress-bar",
            "--execution-timeout",
            str(bound),
            "-y",
            json.dumps(params),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    slow = over_bound(nbformat.read(target, as_version=4), bound) if target.exists() else []
    if done.returncode == 0 and not slow:
        return None
    log = target.with_suffix(".log")
    log.write_text(done.stdout + done.stderr)
    return f"{'; '.join(slow) or failure_line(done.stderr)} (papermill's log: {log})"


def failure_line(stderr: str) -> str:
    """The most telling line of papermill's stderr: the last one naming an error."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip(" -\t")]
    errors = [line for line in lines if re.search(r"Error|Exception|Dead|Timeout", line)]
    return (errors or lines or ["papermill failed"])[-1]


def _output_html(output: dict[str, Any]) -> str:
    """HTML for one output stored inside an ``Output`` widget (plotly, HTML or text)."""
    data = output.get("data", {})
    if PLOTLY_JSON in data:
        return plotly_html(data[PLOTLY_JSON])
    if "text/html" in data:
        return "".join(data["text/html"])
    text = output.get("text") or "".join(data.get("text/plain", ""))
    return f"<pre>{html.escape(''.join(text))}</pre>" if text else ""


def _widget_parts(model_id: str, state: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The frozen content of widget ``model_id``: (HTML blocks, "description = value" lines)."""
    model = state.get(model_id)
    if model is None:
        return [], []
    values = model["state"]
    blocks: list[str] = []
    controls: list[str] = []
    if "_widget_data" in values and "_widget_layout" in values:  # a plotly FigureWidget
        figure = {"data": values["_widget_data"], "layout": values["_widget_layout"]}
        blocks.append(plotly_html(figure))
    elif model["model_name"] == "HTMLModel":
        blocks.append(values.get("value", ""))
    elif model["model_name"] == "OutputModel":  # what was displayed into an ipywidgets.Output
        blocks += [_output_html(output) for output in values.get("outputs", [])]
    elif values.get("description") and "value" in values:
        value = values["value"]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        controls.append(f"{values['description']} = {f'{value:g}' if number else value}")
    elif values.get("description") and "_options_labels" in values:
        index = values.get("index")
        label = values["_options_labels"][index] if index is not None else "none"
        controls.append(f"{values['description']} = {label}")
    for child in values.get("children", []):
        child_blocks, child_controls = _widget_parts(child.removeprefix("IPY_MODEL_"), state)
        blocks += child_blocks
        controls += child_controls
    return blocks, controls


def frozen_widget(model_id: str, state: dict[str, Any]) -> str:
    """HTML for a widget output in a page without a kernel: a note, its values, its content."""
    blocks, controls = _widget_parts(model_id, state)
    note = (
        "<p class='allnc-frozen-widget'><strong>Interactive widget, frozen here.</strong> "
        "Its controls need a running Python kernel: open this notebook on Binder or Colab "
        "(the launch button at the top of the page) to move them.</p>"
    )
    if controls:
        note += f"<p><em>Shown at: {html.escape(', '.join(controls))}.</em></p>"
    return note + "\n".join(blocks)


def injected_parameters(params: dict[str, Any]) -> str:
    """The source shown for papermill's injected cell (``RESULTS_PATH``, a temporary file, left
    out)."""
    lines = [f"{name} = {value!r}" for name, value in params.items() if name != "RESULTS_PATH"]
    if not lines:
        return "# This page was executed with the notebook's own (full) parameters."
    return "\n".join(["# Parameters this page was executed with (injected by papermill)", *lines])


def for_static_page(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Rewrite an executed notebook for a page without a kernel (see the module docstring)."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    params = nb.metadata.get("papermill", {}).get("parameters", {})
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            text = "\n".join(line for line in lines if not REMOTE_BADGES.match(line))
            cell.source = SITE_LINK.sub("](../", text)  # docs/notebooks/X -> docs/Y
        tags = cell.metadata.setdefault("tags", [])
        if FOR_TESTS in tags:  # numbers written for the tests, versions: not for a reader
            tags.append("remove-cell")
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = injected_parameters(params)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_JSON in data:
                output["data"] = {"text/html": plotly_html(data[PLOTLY_JSON])}
            elif WIDGET_VIEW in data:
                model_id = data[WIDGET_VIEW]["model_id"]
                output["data"] = {"text/html": frozen_widget(model_id, state)}
    nb.metadata.pop("widgets", None)
    return nb


def _build_one(
    source: Path, target: Path, cache: Path, params: dict[str, Any], package: Path, threads: int
) -> tuple[str | None, float | None]:
    """Execute (or take from the cache) one notebook and write its page copy to ``target``.

    Returns the error message (None on success) and the execution time (None when cached).
    """
    cached = cache / f"{source.stem}-{cache_key(source, params, package)}.ipynb"
    error, seconds, executed = None, None, cached
    if not cached.exists():
        for stale in cache.glob(f"{source.stem}-*.ipynb"):
            stale.unlink()
        start = time.monotonic()
        executed = cache / f"{source.stem}.running.ipynb"
        # no second try: a failure is loud; run where the student notebook lives
        error = execute(source, executed, params, threads, cwd=source.parent.parent)
        seconds = time.monotonic() - start
        if error is None:
            executed = executed.replace(cached)
        elif not executed.exists():  # papermill failed before writing anything
            executed = source
    nbformat.write(for_static_page(nbformat.read(executed, as_version=4)), target)
    return error, seconds


def execute_notebooks(app: Sphinx) -> None:
    """Fill ``docs/notebooks/`` with executed, page-ready copies of ``notebooks/*.ipynb``."""
    docs = Path(app.srcdir)
    repo = docs.parent
    # The instructor's notebooks: every exercise answered, the answers folded ("hide-input").
    sources = sorted((repo / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
    target_dir = docs / "notebooks"
    cache = docs / "_build" / ".notebook-cache"
    target_dir.mkdir(exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    for old in target_dir.glob("*.ipynb"):
        if old.name not in {s.name for s in sources}:
            old.unlink()
    if not _flag(ENV_EXECUTE, default=True):
        logger.info(f"notebooks: rendered unexecuted (${ENV_EXECUTE}=0)")
        for source in sources:
            nb = for_static_page(nbformat.read(source, as_version=4))
            nbformat.write(nb, target_dir / source.name)
        return
    full = full_parameters()
    params = parameters(full)
    cores = os.cpu_count() or 1
    jobs = max(1, int(os.environ.get(ENV_JOBS) or 1))
    threads = max(1, cores // jobs)
    logger.info(
        f"notebooks: {len(sources)} with {'full' if full else 'SMOKE'} parameters, {jobs} at once"
    )

    def build(source: Path) -> tuple[Path, tuple[str | None, float | None]]:
        target = target_dir / source.name
        return source, _build_one(source, target, cache, params, repo / "allnc_edu", threads)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for source, (error, seconds) in pool.map(build, sources):
            if error:
                logger.warning(f"notebook {source.name} failed: {error}", type="allnc-notebooks")
            elif seconds is None:
                logger.info(f"notebook {source.name}: from the cache")
            else:
                logger.info(f"notebook {source.name}: executed in {seconds:.0f} s")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", execute_notebooks)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
