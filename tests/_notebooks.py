"""Run a notebook the way CI does: papermill with SMOKE parameters, then read the JSON it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import papermill

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, tmp_path: Path, **parameters) -> dict:
    """Execute ``notebooks/<name>.ipynb`` with SMOKE=True (unless overridden) and return its JSON.

    The executed copy is written to ``tmp_path`` (and to $ALLNC_EDU_ARTIFACTS when set).
    """
    results = tmp_path / f"{name}.json"
    params = {"SMOKE": True, "RESULTS_PATH": str(results), **parameters}
    executed = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / f"{name}.ipynb"),
        str(executed),
        parameters=params,
        cwd=str(NOTEBOOK_DIR),
        kernel_name="python3",
        progress_bar=False,
    )
    artifacts = os.environ.get("ALLNC_EDU_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        (Path(artifacts) / executed.name).write_bytes(executed.read_bytes())
    return json.loads(results.read_text())


def run_nbval_lax(name: str, tmp_path: Path, **parameters) -> subprocess.CompletedProcess:
    """Run ``pytest --nbval-lax`` on a SMOKE-parameterised copy of the notebook."""
    copy = tmp_path / f"{name}_nbval.ipynb"
    params = {"SMOKE": True, "RESULTS_PATH": str(tmp_path / f"{name}_nbval.json"), **parameters}
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / f"{name}.ipynb"), str(copy), parameters=params, prepare_only=True
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(copy),
        ],
        cwd=NOTEBOOK_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
