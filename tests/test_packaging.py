"""The install files agree with each other: pyproject.toml, environment.yml, binder/, README, CI."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = {
    Requirement(r).name.lower(): Requirement(r) for r in PYPROJECT["project"]["dependencies"]
}


def _names_and_specs(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        out[req.name.lower()] = str(req.specifier)
    return out


def test_environment_yml_has_the_runtime_requirements() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    declared = _names_and_specs([d for d in conda if not d.startswith(("python", "pip"))])
    declared |= _names_and_specs(pip)
    for name, req in RUNTIME.items():
        assert name in declared, f"environment.yml lacks {name}"
        assert declared[name] == str(req.specifier), f"{name}: {declared[name]} != {req.specifier}"
    assert "-e ." in pip, "environment.yml must install allnc_edu itself"


def test_binder_is_cpu_only_and_matches_pyproject() -> None:
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert any("download.pytorch.org/whl/cpu" in line for line in lines)
    declared = _names_and_specs(lines)
    for name, req in RUNTIME.items():
        assert name in declared, f"binder/requirements.txt lacks {name}"
        if name not in {"torch", "torchvision"}:
            assert declared[name] == str(req.specifier), name
    for gpu_pkg in ("torch", "torchvision"):
        spec = declared[gpu_pkg]
        assert spec.endswith("+cpu"), f"{gpu_pkg} must be pinned to a CPU wheel, got {spec}"
        assert RUNTIME[gpu_pkg].specifier.contains(spec.removeprefix("==").removesuffix("+cpu"))
    assert not any("nvidia" in line or "cu1" in line for line in lines), "no GPU wheels on Binder"
    assert re.fullmatch(r"python-3\.1[12]\s*", (ROOT / "binder" / "runtime.txt").read_text())
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post_build and " -e ." in post_build


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    marker = re.search(r"^<!-- test-command: (.*) -->$", readme, flags=re.M)
    assert marker, "README.md must mark its test command"
    command = marker.group(1)
    assert command in readme.replace(marker.group(0), ""), "the marked command is shown to readers"
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command:" in ci and 'eval "$test_command"' in ci
    assert "torch==2.14.1 torchvision==0.29.1" in ci


def test_readme_lists_every_notebook_with_colab_and_binder_badges() -> None:
    readme = (ROOT / "README.md").read_text()
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    repo = PYPROJECT["project"]["urls"]["Repository"].removeprefix("https://github.com/")
    for name in notebooks:
        row = next((line for line in readme.splitlines() if f"notebooks/{name}.ipynb)" in line), "")
        assert f"colab.research.google.com/github/{repo}/blob/main/notebooks/{name}.ipynb" in row
        assert f"mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/notebooks/{name}.ipynb" in row
        assert re.search(r"\| \d+ (s|min)", row), f"{name}: the row states a measured CPU time"
