"""The documentation website: build it once, then read it in headless Chromium.

The build is the documented command (``python -m sphinx -W --keep-going -b html docs ...``),
warnings being errors, with the notebooks executed with their SMOKE parameters (reusing
``docs/_build/.notebook-cache/``). ``$ALLNC_EDU_SITE`` names an existing build to check
instead. Pages are served over HTTP from 127.0.0.1 and any request that leaves it fails the
test: the site must work offline. Skipped without Debian's chromium or Playwright, except under
CI (``$CI`` set), where that fails. Screenshots go to ``tmp_path`` and ``$ALLNC_EDU_ARTIFACTS``.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import pkgutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _jupyterlab import CHROMIUM, CHROMIUM_ARGS, chromium_available, copy_artifact, free_port

import allnc_edu
from allnc_edu.__main__ import build_parser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 1200
DRAW_TIMEOUT_S = 60
PAGE_TIMEOUT_S = 120  # generous: a loaded CI machine parses plotly.js slowly

# Every plotly figure on the page: a 3D scene drawn by WebGL (a canvas inside the plot div with
# a live WebGL context), its sliders' active steps, and which traces are visible.
PLOTS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
    const scene = gd._fullLayout && gd._fullLayout.scene && gd._fullLayout.scene._scene;
    const canvas = gd.querySelector('canvas');
    const gl = !!(scene && scene.glplot && canvas && scene.glplot.gl &&
                  !scene.glplot.gl.isContextLost());
    return {
        webgl: gl && canvas.width > 0 && canvas.height > 0,
        sliders: (gd._fullLayout.sliders || []).map(s => s.active),
        visible: (gd._fullData || []).map(t => t.visible),
        title: gd._fullLayout.title && gd._fullLayout.title.text,
    };
})"""

BROKEN = ("Error displaying widget", "WebGL is not supported", "Traceback (most recent call last)")

# Animation frames delivered late, as on a loaded machine drawing WebGL in software: every
# requestAnimationFrame callback runs half a second after its frame.
LATE_FRAMES_JS = """(() => {
    const raf = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = cb => raf(t => setTimeout(() => cb(t), 500));
})()"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the site test must run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: ``$ALLNC_EDU_SITE``, else built once per test session."""
    if not chromium_available():
        _skip_or_fail(f"chromium not found at {CHROMIUM}")
    if os.environ.get("ALLNC_EDU_SITE"):
        return Path(os.environ["ALLNC_EDU_SITE"])
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        if importlib.util.find_spec(module) is None:
            _skip_or_fail(f"{module} is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site") / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", out]
    start = time.monotonic()
    done = subprocess.run(
        [str(part) for part in command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"the site build failed:\n{log[-6000:]}"
    print(f"site built in {time.monotonic() - start:.0f} s")
    return out


@pytest.fixture(scope="session")
def server(site: Path) -> Iterator[str]:
    """The site served over HTTP at 127.0.0.1 (as ``python -m http.server -d ...`` would)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(Quiet, directory=str(site))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    """A Chromium page that may load nothing but the site; ``page.external`` lists the rest."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1400})
            tab.set_default_timeout(PAGE_TIMEOUT_S * 1000)
            tab.external = []

            def local_only(route: Any) -> None:
                if route.request.url.startswith(server):
                    route.continue_()
                else:
                    tab.external.append(route.request.url)
                    route.abort()

            tab.route("**/*", local_only)
            yield tab
        finally:
            browser.close()


def _open(page: Any, server: str, path: str) -> None:
    page.goto(f"{server}/{path}", wait_until="load")
    assert not page.external, f"{path} requested outside the site: {page.external}"


def _wait_for_3d(page: Any) -> list[dict]:
    """Wait until the page has at least one 3D figure drawn with WebGL; return all figures."""
    deadline = time.monotonic() + DRAW_TIMEOUT_S
    while True:
        plots = page.evaluate(PLOTS_JS)
        if any(p["webgl"] for p in plots):
            return plots
        if time.monotonic() > deadline:
            raise AssertionError(f"no 3D figure drawn with WebGL: {plots}")
        time.sleep(0.25)


def _move_slider(page: Any, index: int) -> tuple[dict, dict]:
    """Click the far end of the first slider of figure ``index``; the figure before and after."""
    before = page.evaluate(PLOTS_JS)[index]
    figure = page.locator(".js-plotly-plot").nth(index)
    figure.scroll_into_view_if_needed()
    rail = figure.locator(".slider-rail-rect").first
    box = rail.bounding_box()
    assert box is not None, "the slider rail is not visible"
    page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    deadline = time.monotonic() + DRAW_TIMEOUT_S
    while (after := page.evaluate(PLOTS_JS)[index]) == before and time.monotonic() < deadline:
        time.sleep(0.25)
    return before, after


def _check_slider(page: Any) -> None:
    plots = page.evaluate(PLOTS_JS)
    with_slider = [i for i, p in enumerate(plots) if p["sliders"]]
    assert with_slider, f"no plotly figure with a slider on the page: {plots}"
    before, after = _move_slider(page, with_slider[0])
    assert after["sliders"] != before["sliders"], f"the slider did not move: {before}"
    assert after["visible"] != before["visible"], "moving the slider did not change the figure"
    assert after["title"] != before["title"], "moving the slider did not change the title"


def _check_not_broken(page: Any) -> None:
    text = page.inner_text("body")
    for sign in BROKEN:
        assert sign not in text, f"the page shows {sign!r}"
    assert page.locator(".widget-html-content, .jupyter-widgets").count() == 0, "a widget left"


def _screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path))
    copy_artifact(path)
    print(f"screenshot: {path}")


def test_landing_page_draws_the_picture_and_its_slider_moves(page, server, tmp_path) -> None:
    _open(page, server, "index.html")
    _wait_for_3d(page)
    assert page.locator("pre", has_text="allnc_edu demo").count() >= 1, "the two commands"
    _check_slider(page)
    _check_not_broken(page)
    assert not page.external, f"requested outside the site: {page.external}"
    _screenshot(page, tmp_path / "site-index.png")


def test_landing_slider_moves_its_figure_even_when_frames_come_late(page, server) -> None:
    """plotly.js moves a slider at once but runs the step (traces, title) on the next animation
    frame; on a busy machine the test above then saw the slider moved and the figure not (CI).
    The page runs the step in the same event as the move (plotly_figure.SLIDER_SYNC_JS)."""
    page.add_init_script(LATE_FRAMES_JS)
    _open(page, server, "index.html")
    _wait_for_3d(page)
    _check_slider(page)


def test_notebook_02_page_is_interactive_and_tidy(page, server, tmp_path) -> None:
    _open(page, server, "notebooks/02_minority_collapse.html")
    plots = _wait_for_3d(page)
    assert len(plots) >= 3, f"expected the notebook's figures, found {len(plots)}"
    _check_slider(page)
    _check_not_broken(page)
    launch = [page.locator(f"a[href*='{host}']").count() for host in ("mybinder.org", "colab")]
    assert all(launch), f"launch buttons (Binder, Colab) missing: {launch}"
    assert page.locator(".cell_output").count() > 0, "the page shows no outputs"
    assert not page.external, f"requested outside the site: {page.external}"
    _screenshot(page, tmp_path / "site-notebook-02.png")  # the slider figure, moved


def test_api_reference_lists_every_public_module(page, server) -> None:
    _open(page, server, "api.html")
    public = [
        m.name for m in pkgutil.iter_modules(allnc_edu.__path__) if not m.name.startswith("_")
    ]
    for name in public:
        assert page.locator(f"a[href*='allnc_edu.{name}.html']").count(), f"{name} not listed"
    _open(page, server, "api/allnc_edu.metrics.html")
    assert page.locator("dt[id='allnc_edu.metrics.nc_metrics']").count() == 1
    _open(page, server, "api/allnc_edu.allnc.html")
    assert page.locator("dt[id='allnc_edu.allnc.AllNC']").count() == 1


def test_cli_reference_matches_the_parser(page, server) -> None:
    _open(page, server, "cli.html")
    text = page.inner_text("article")
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    for name, sub in subcommands.items():
        assert f"{parser.prog} {name}" in text, f"no section for {name}"
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text, f"{name} {flag} missing from the CLI page"
