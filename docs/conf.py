"""Sphinx configuration of the allnc_edu website.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (or ``make -C docs
html``). The notebooks are executed with their SMOKE parameters by ``_ext/notebook_pages.py``;
``ALLNC_EDU_DOCS_FULL=1`` executes them with their full defaults. Nothing is fetched at build or
view time: plotly.js and MathJax are served from the site itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import allnc_edu

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))  # this site's own extensions

project = "allnc_edu"
author = "allnc_edu contributors"
copyright = "allnc_edu contributors, MIT licence"
release = version = allnc_edu.__version__
REPOSITORY = "https://github.com/allnc-edu/allnc-edu"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # MathJax 3 served from _static (the module name has hyphens)
    "plotly_figure",
    "notebook_pages",
    "cli_reference",
    "api_pages",
]

exclude_patterns = ["_build", "_ext", "**.ipynb_checkpoints"]
html_static_path = ["_static"]
html_css_files = ["site.css"]

# --- MyST and MyST-NB: notebooks arrive executed (notebook_pages), so MyST-NB never executes.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_ipywidgets_js: dict = {}  # widget outputs are frozen to HTML; no widget manager from a CDN

# --- API reference: a page per public module of api_package (api_pages), autodoc + napoleon.
api_package = "allnc_edu"
autosummary_generate = False  # autosummary only draws the table of modules
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False


# --- Intersphinx, only to inventories present on this machine (nothing else is reachable):
# docs/_intersphinx/<name>.inv, a folder named by $ALLNC_EDU_DOCS_INVENTORIES, or Debian's
# documentation packages. A name without a local inventory is left out, never fetched.
def _local_inventories() -> dict[str, tuple[str, str]]:
    urls = {
        "python": "https://docs.python.org/3/",
        "numpy": "https://numpy.org/doc/stable/",
        "torch": "https://docs.pytorch.org/docs/stable/",
        "plotly": "https://plotly.com/python-api-reference/",
    }
    folders = [DOCS / "_intersphinx"]
    if os.environ.get("ALLNC_EDU_DOCS_INVENTORIES"):
        folders.insert(0, Path(os.environ["ALLNC_EDU_DOCS_INVENTORIES"]))
    debian = {
        "python": Path("/usr/share/doc/python3/html/objects.inv"),
        "numpy": Path("/usr/share/doc/python-numpy-doc/html/objects.inv"),
    }
    found = {}
    for name, url in urls.items():
        candidates = [folder / f"{name}.inv" for folder in folders]
        candidates += [debian[name]] if name in debian else []
        local = next((c for c in candidates if c.is_file()), None)
        if local is not None:
            found[name] = (url, str(local))
    return found


intersphinx_mapping = _local_inventories()

# --- Theme: the Book theme (PyData based), with launch buttons on the notebook pages.
html_theme = "sphinx_book_theme"
html_title = "allnc_edu"
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    # Launch links are built as <path_to_docs><page>.ipynb: the notebook pages live under
    # notebooks/ here as in the repository, so the path is the repository root.
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
        "notebook_interface": "jupyterlab",
    },
    "show_toc_level": 2,
}
