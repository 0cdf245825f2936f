"""benchmarks/gpu_run.sh, the script for a session with a GPU: it parses, and refuses no OUTDIR.

Its CPU dry run (tiny settings, minutes) is documented at the top of the script; it is not run
here because it trains four ResNet-32 runs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_run.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_gpu_run_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_gpu_run_script_without_outdir_prints_its_usage() -> None:
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: benchmarks/gpu_run.sh OUTDIR" in done.stderr
