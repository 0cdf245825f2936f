"""JupyterLab in headless Chromium: run a notebook, move the imbalance slider, see the plot change.

Skipped when Debian's chromium or Playwright is missing, except under CI (``$CI`` set), where it
fails instead. The screenshot goes to pytest's ``tmp_path`` and, when ``$ALLNC_EDU_ARTIFACTS`` is
set, there too.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _jupyterlab import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LabServer,
    chromium_available,
    copy_artifact,
    jupyterlab,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "02_minority_collapse.ipynb"
IMBALANCE_LABEL = re.compile("imbalance", re.IGNORECASE)

KERNEL_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_S = 150
UPDATE_TIMEOUT_S = 60

# Every rendered plotly figure: whether it holds a 3D scene and its traces' coordinates.
PLOTS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
    scene: !!(gd._fullLayout && gd._fullLayout.scene),
    traces: (gd._fullData || []).map(t => ['x', 'y', 'z'].map(k => Array.from(t[k] || [], Number))),
}))"""

# The open notebook: kernel status, an open dialog's title, and per code cell its execution count
# and output types (errors spelled out).
NOTEBOOK_JS = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.content || !panel.sessionContext) return null;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const dialog = document.querySelector('.jp-Dialog .jp-Dialog-header');
    return {
        kernel: kernel ? kernel.status : null,
        dialog: dialog ? dialog.innerText : null,
        cells: panel.content.widgets.filter(c => c.model.type === 'code').map(c => ({
            count: c.model.executionCount,
            outputs: c.model.outputs.toJSON().map(o => o.output_type === 'error'
                ? `error: ${o.ename}: ${o.evalue}` : o.output_type),
        })),
    };
}"""

# Visible signs of failure anywhere on the page, outputs of Output widgets included.
ERRORS_JS = """() => {
    const stderr = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';
    const found = Array.from(document.querySelectorAll(stderr))
        .map(e => e.innerText).filter(t => /Traceback|Error/.test(t));
    const broken = /Error displaying widget|javascript error|WebGL is not supported/i;
    for (const e of document.querySelectorAll('.jp-OutputArea-output')) {
        if (broken.test(e.innerText)) found.push(e.innerText);
    }
    return found;
}"""

# Hide code and the left sidebar, and bring the imbalance slider to the top, for the screenshot.
TIDY_JS = """async (label) => {
    const app = window.jupyterapp;
    if (!app) return;
    app.shell.collapseLeft();
    await app.commands.execute('notebook:hide-all-cell-code');
    const slider = Array.from(document.querySelectorAll('.widget-slider'))
        .find(s => new RegExp(label, 'i').test(s.innerText));
    if (slider) slider.scrollIntoView({block: 'start'});
}"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser test must run")
    pytest.skip(reason)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[LabServer, str]]:
    """JupyterLab serving a fresh root that holds a copy of the notebook under test."""
    root = tmp_path / "root"
    root.mkdir()
    notebook = Path(shutil.copy2(NOTEBOOK, root / NOTEBOOK.name))
    with jupyterlab(root, tmp_path / "jupyter") as server:
        yield server, notebook.name


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A page in headless Chromium with a fresh profile; the browser is closed afterwards."""
    if not chromium_available():
        _skip_or_fail(f"chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 1600},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _wait_for(
    page: Any,
    script: str,
    predicate: Callable[[Any], bool],
    timeout_s: float,
    what: str,
    settle_s: float = 0.0,
) -> Any:
    """Poll ``script`` until its value satisfies ``predicate`` and has stayed unchanged for
    ``settle_s`` seconds; return that value, or fail after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    value, since = None, time.monotonic()
    while time.monotonic() < deadline:
        latest = page.evaluate(script)
        if latest != value:
            value, since = latest, time.monotonic()
        if predicate(value) and time.monotonic() - since >= settle_s:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}: {value}")


def _kernel_ready(page: Any, state: dict | None) -> bool:
    """True once the kernel is idle. The notebook names its kernel (python3), so JupyterLab must
    not ask for one: a kernel dialog fails the test."""
    if state and state["dialog"] and "kernel" in state["dialog"].lower():
        raise AssertionError(f"JupyterLab asked for a kernel: {state['dialog']!r}")
    return bool(state) and state["kernel"] == "idle"


def _run_all(page: Any) -> dict:
    """Run every cell of the open notebook and wait until all have finished."""
    _wait_for(page, NOTEBOOK_JS, lambda s: _kernel_ready(page, s), KERNEL_TIMEOUT_S, "a kernel")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return _wait_for(
        page,
        NOTEBOOK_JS,
        lambda s: s["kernel"] == "idle" and (all(c["count"] for c in s["cells"]) or _errors(s)),
        RUN_ALL_TIMEOUT_S,
        "all cells to run",
    )


def _errors(state: dict) -> list[str]:
    """The error outputs of the notebook's cells (JupyterLab stops running at the first one)."""
    return [o for cell in state["cells"] for o in cell["outputs"] if o.startswith("error")]


def _move_imbalance_slider(page: Any) -> tuple[str, str]:
    """Move the imbalance slider to one end with the keyboard; return its readout before/after."""
    slider = (
        page.locator(".widget-slider")
        .filter(has=page.locator(".widget-label", has_text=IMBALANCE_LABEL))
        .first
    )
    slider.wait_for(state="visible", timeout=UPDATE_TIMEOUT_S * 1000)
    readout = slider.locator(".widget-readout")
    handle = slider.locator(".noUi-handle")
    before = readout.inner_text()
    handle.focus()
    for key in ("End", "Home"):  # Home when the slider already sits at its maximum
        handle.press(key)
        deadline = time.monotonic() + 5
        while readout.inner_text() == before and time.monotonic() < deadline:
            time.sleep(0.1)
        if readout.inner_text() != before:
            break
    return before, readout.inner_text()


def _screenshot(page: Any, path: Path) -> None:
    """Save a tidied screenshot of the page; a broken page only warns, never masks a failure."""
    from playwright.sync_api import Error

    try:
        page.evaluate(TIDY_JS, IMBALANCE_LABEL.pattern)
        page.wait_for_timeout(500)
        page.screenshot(path=str(path))
    except Error as error:
        warnings.warn(f"no screenshot: {error}", stacklevel=2)
        return
    copy_artifact(path)
    print(f"screenshot: {path}")


def test_imbalance_slider_updates_the_3d_plot(page, lab, tmp_path: Path) -> None:
    server, name = lab
    page.goto(server.url(f"lab/tree/{name}"), wait_until="domcontentloaded")
    try:
        state = _run_all(page)
        assert not _errors(state), f"cells raised: {_errors(state)}"

        plots = _wait_for(
            page,
            PLOTS_JS,
            lambda p: any(plot["scene"] and plot["traces"] for plot in p),
            UPDATE_TIMEOUT_S,
            "a 3D plotly plot",
            settle_s=2.0,
        )
        before, after = _move_imbalance_slider(page)
        assert before != after, f"the imbalance slider did not move from {before}"

        _wait_for(
            page,
            PLOTS_JS,
            lambda p: len(p) == len(plots) and p != plots,
            UPDATE_TIMEOUT_S,
            f"a plot to change after the slider moved {before} -> {after}",
            settle_s=1.0,
        )
        assert not page.evaluate(ERRORS_JS), page.evaluate(ERRORS_JS)
    finally:
        _screenshot(page, tmp_path / f"browser-{Path(name).stem}.png")
