"""The dashboards also work with ipywidgets 7.7+, which Colab ships.

CI installs ipywidgets 7 into a side folder named by $ALLNC_EDU_IPYWIDGETS7 (see .ci/run); this
test reruns tests/test_widgets.py in a subprocess with that folder first on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _side_folder() -> str:
    folder = os.environ.get("ALLNC_EDU_IPYWIDGETS7")
    if not folder:
        if os.environ.get("CI"):
            pytest.fail("CI must set ALLNC_EDU_IPYWIDGETS7 to a folder holding ipywidgets 7")
        pytest.skip("set ALLNC_EDU_IPYWIDGETS7 to a folder holding ipywidgets 7 (see .ci/run)")
    return folder


def test_widget_suite_passes_under_ipywidgets_7() -> None:
    env = {**os.environ, "PYTHONPATH": _side_folder()}
    version = subprocess.run(
        [sys.executable, "-c", "import ipywidgets; print(ipywidgets.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version.startswith("7."), f"expected ipywidgets 7 on the side path, got {version}"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(HERE / "test_widgets.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
