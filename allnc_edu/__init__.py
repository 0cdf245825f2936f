"""allnc_edu: learn neural collapse under class imbalance, and train AllNC.

Submodules load on first use (``allnc_edu.metrics``, ``allnc_edu.plots``, ...), so the command
line and ``import allnc_edu`` stay fast. AllNC here is a documented reconstruction of Zhang et al.,
"All-around Neural Collapse for Imbalanced Classification" (arXiv 2408.07253), not the authors'
code: see ``docs/method.md``.
"""

from __future__ import annotations

import importlib
import platform
import sys
from importlib import metadata

import torch

__version__ = "0.1.0"

_SUBMODULES = (
    "allnc",
    "bench",
    "checkpoint",
    "cifar",
    "cli",
    "config",
    "data",
    "decouple",
    "demo",
    "devices",
    "diagnose_collapse",
    "diagnose_remedies",
    "distributed",
    "drawing",
    "evaluate",
    "exercises",
    "experiments",
    "feedback",
    "filelists",
    "fmt",
    "geometry",
    "grading",
    "groups",
    "lessons_ufm",
    "loader",
    "longtail",
    "losses",
    "measures",
    "method_base",
    "methods",
    "metrics",
    "mnist1d_lt",
    "models",
    "plots",
    "predictions",
    "progress",
    "quiz",
    "records",
    "report",
    "run_figures",
    "rundir",
    "squeeze",
    "stream",
    "study",
    "synthesis",
    "sweep_figures",
    "train",
    "ufm",
    "ufm_p2p",
    "widgets",
)

__all__ = ["__version__", "pick_device", "show_versions", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA, then Apple MPS, then CPU; pass any other name through.

    Raises ValueError when the name is not a device, names a kind that cannot train (e.g.
    "meta"), or names a device not available here.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device {device!r} is not a device name; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r}: training runs on cpu, cuda or mps, not {dev.type}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but Apple MPS is not available here")
    return dev


def show_versions(file=None) -> dict[str, str]:
    """Print (and return) the versions that matter for bug reports, and the device in use."""
    names = ["allnc-edu", "torch", "torchvision", "numpy", "plotly", "ipywidgets", "mnist1d"]
    info = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in names:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    dev = pick_device()
    info["device"] = str(dev)
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}} : {value}", file=file or sys.stdout)
    return info
