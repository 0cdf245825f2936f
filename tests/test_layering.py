"""The README's module table is the layering: each module imports only modules listed above it,
every module is listed, and a lazy import (inside a function) is only for optional packages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "allnc_edu"


def _table() -> list[str]:
    """Module names in the order of the README's table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE)


def _imports(path: Path) -> tuple[set[str], list[str]]:
    """(package modules imported anywhere, package modules imported inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    used, lazy = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            used.update(n.split(".")[0] for n in names)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and sub.level == 1:
                    lazy.append(f"{node.name}: from .{sub.module} import ...")
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return used & modules - {path.stem}, lazy


def test_every_module_is_in_the_table_once() -> None:
    listed = _table()
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}


def test_no_module_imports_one_below_it_in_the_table() -> None:
    order = {name: i for i, name in enumerate(_table())}
    upward = {
        name: sorted(m for m in _imports(PACKAGE / f"{name}.py")[0] if order[m] >= order[name])
        for name in order
    }
    assert {k: v for k, v in upward.items() if v} == {}


def test_no_lazy_imports_of_package_modules() -> None:
    lazy = {p.stem: _imports(p)[1] for p in PACKAGE.glob("*.py")}
    assert {k: v for k, v in lazy.items() if v} == {}


def test_the_uses_column_matches_the_imports() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, uses in re.findall(r"^\| `(\w+)` \|[^|]*\| ([^|]*) \|$", text, flags=re.MULTILINE):
        if name == "__main__":
            continue
        want = set(re.findall(r"`(\w+)`", uses))
        assert want == _imports(PACKAGE / f"{name}.py")[0], name


def test_other_modules_use_only_the_public_api_of_train() -> None:
    from allnc_edu import train

    private = {}
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == "train":
                names = [a.name for a in node.names if a.name not in train.__all__]
                if names:
                    private[path.stem] = names
    assert private == {}


def test_every_public_module_loads_as_an_attribute_of_the_package() -> None:
    import allnc_edu

    public = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    assert set(allnc_edu._SUBMODULES) == public


def test_modules_and_functions_stay_small() -> None:
    """No module over 600 lines, no function over 100 (its docstring left out)."""
    long = []
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 600:
            long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                docstring = isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant
                )
                start = body[1].lineno if docstring and len(body) > 1 else body[0].lineno
                if node.end_lineno - start + 1 > 100:
                    long.append(f"{path.name}: {node.name}() {node.end_lineno - start + 1} lines")
    assert long == []
