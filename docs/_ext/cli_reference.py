"""Sphinx extension: the command-line reference, generated from the argument parser.

``.. cli-reference:: package.module:function`` calls ``function()`` (which returns an
``argparse.ArgumentParser``) at build time and writes the parser's ``--help`` text, then one
section per subcommand with that subcommand's ``--help`` text: the page always matches the code.
"""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Width the help text is wrapped to (argparse reads $COLUMNS).
HELP_COLUMNS = 78


def load_parser(spec: str) -> argparse.ArgumentParser:
    """Call the ``module:function`` named by ``spec`` and return the parser it builds."""
    module_name, _, function_name = spec.partition(":")
    if not function_name:
        raise ValueError(f"expected 'module:function', got {spec!r}")
    return getattr(importlib.import_module(module_name), function_name)()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser`` by name, in the order they were added."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub not in found.values():  # aliases point at the same parser
                    found[name] = sub
    return found


def help_text(parser: argparse.ArgumentParser) -> str:
    """``parser.format_help()`` wrapped at ``HELP_COLUMNS`` whatever the terminal."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_COLUMNS)
    try:
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


class CliReference(SphinxDirective):
    """The ``--help`` of a parser and of each of its subcommands, as literal blocks."""

    required_arguments = 1

    def _block(self, text: str) -> nodes.literal_block:
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return block

    def _section(self, title: str, text: str) -> nodes.section:
        name = nodes.fully_normalize_name(title)
        section = nodes.section(ids=[nodes.make_id(title)], names=[name])
        section += nodes.title(title, title)
        section += self._block(text)
        self.state.document.note_implicit_target(section, section)
        return section

    def run(self) -> list[nodes.Node]:
        parser = load_parser(self.arguments[0])
        out: list[nodes.Node] = [self._block(help_text(parser))]
        for name, sub in subcommands(parser).items():
            out.append(self._section(f"{parser.prog} {name}", help_text(sub)))
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-reference", CliReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
