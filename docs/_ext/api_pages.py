"""Sphinx extension: one API page per public module of a package, found when the site builds.

At ``builder-inited`` every module of ``api_package`` whose name does not start with an
underscore gets a page ``docs/api/<package>.<module>.rst`` (git-ignored) holding its
``automodule``; ``.. public-modules::`` writes the table of those modules with the first line of
each docstring. A module added to the package appears in the reference with no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

PAGE = """{title}
{underline}

.. automodule:: {name}
   :members:
   :show-inheritance:
"""


def public_modules(package: str) -> list[str]:
    """Full names of the modules of ``package`` not starting with an underscore, sorted."""
    path = importlib.import_module(package).__path__
    return sorted(
        f"{package}.{info.name}" for info in pkgutil.iter_modules(path) if info.name[0] != "_"
    )


def write_pages(app: Sphinx) -> None:
    """Write (only when changed) one page per public module; remove pages of vanished ones."""
    folder = Path(app.srcdir) / "api"
    folder.mkdir(exist_ok=True)
    names = public_modules(app.config.api_package)
    for name in names:
        page = folder / f"{name}.rst"
        text = PAGE.format(title=f"``{name}``", underline="=" * (len(name) + 4), name=name)
        if not page.exists() or page.read_text() != text:
            page.write_text(text)
    for page in folder.glob("*.rst"):
        if page.stem not in names:
            page.unlink()


class PublicModules(SphinxDirective):
    """A table of the package's public modules, each linked to its page, with its summary."""

    def run(self) -> list[nodes.Node]:
        names = public_modules(self.config.api_package)
        lines = [".. autosummary::", ""] + [f"   {name}" for name in names]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="public-modules"), 0, container)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("api_package", "", "env")
    app.add_directive("public-modules", PublicModules)
    app.connect("builder-inited", write_pages)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
