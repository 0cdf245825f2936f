"""Browser-test helpers: a throw-away JupyterLab server, headless Chromium, a probe notebook.

Nothing here touches the user's Jupyter settings: the server's config, runtime, settings and
workspace directories all live under the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# JupyterLab settings that keep pop-ups (news, update checks) off the page.
_QUIET_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: ``url(path)`` gives an authenticated address under its root."""

    port: int
    token: str
    root: Path
    log: Path

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?token={self.token}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(server: LabServer, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {process.returncode}:\n{server.log.read_text()}"
            )
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(
        f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log.read_text()}"
    )


@contextmanager
def jupyterlab(root: Path, state: Path, *, timeout: float = 60.0) -> Iterator[LabServer]:
    """Run ``python -m jupyter lab`` serving ``root``, keeping all its state under ``state``.

    The server listens on 127.0.0.1 at a free port with a fresh token, opens no browser and
    exposes ``window.jupyterapp`` so that a test can run JupyterLab commands. When the block
    exits, whatever happened inside it, the server is asked to stop (shutting down its kernels)
    and, if it has not within 15 s, its process group is killed.
    """
    settings = state / "settings"
    for name, values in _QUIET_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    for sub in ("config", "runtime", "workspaces", "ipython"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    server = LabServer(free_port(), secrets.token_hex(24), root, state / "jupyterlab.log")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "IPYTHONDIR": str(state / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={server.port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={server.token}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    with server.log.open("w") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_up(server, process, timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and its children
            process.wait(timeout=15)


def chromium_available() -> bool:
    """True when Debian's chromium is installed at ``CHROMIUM``."""
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


def copy_artifact(path: Path) -> Path | None:
    """Copy ``path`` into ``$ALLNC_EDU_ARTIFACTS`` when that variable is set; return the copy."""
    target = os.environ.get("ALLNC_EDU_ARTIFACTS")
    if not target:
        return None
    Path(target).mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(path, Path(target) / path.name))
