"""Atomic files for training runs: checkpoints, JSON results and the RNG states that resume needs.

Every write goes to a temporary file in the same folder and is then moved into place with
``os.replace``, so a run killed mid-write leaves the previous good file intact (and a stale
``.NAME.*.tmp`` that :func:`clean_stale_tmp` removes). A checkpoint holds tensors and plain
values only (numbers, strings, lists, dicts) and is read with ``torch.load(weights_only=True)``:
a file that would run code when unpickled is refused, never executed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import random
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per folder is then on the user
    fcntl = None

import numpy as np
import torch

CHECKPOINT_NAME = "checkpoint.pt"
_UMASK = os.umask(0)
os.umask(_UMASK)


#: Called as ``write_hook(path, stage)`` at two instants of every atomic write: "written" (the
#: temporary file is complete, not yet in place) and "replaced" (it is in place). None in use;
#: the reliability tests set it to kill the process at an exact write point.
write_hook: Callable[[Path, str], None] | None = None


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, truncated, or holding more than tensors and
    plain values. The message is one line naming the file."""


class InUseError(ValueError):
    """Another process holds the lock of a run folder or a study record."""


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if write_hook is not None:
            write_hook(path, "written")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if write_hook is not None:
        write_hook(path, "replaced")
    return path


@contextlib.contextmanager
def hold_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` while the block runs: a folder itself (no
    file is added to it) or a lock file (created if needed, left in place). Raises
    :class:`InUseError` at once, naming ``what``, when another process holds it. The system
    releases the lock when the process ends, however it ends (kill -9 included)."""
    if fcntl is None:
        yield
        return
    folder = os.path.isdir(path)
    fd = os.open(path, os.O_RDONLY if folder else os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUseError(
                f"{what} is in use by another process; wait for it to finish or use another path"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def json_safe(obj: Any) -> Any:
    """Turn tensors, numpy scalars and non-finite floats into plain JSON values (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return json_safe(obj.detach().cpu().tolist())
    if isinstance(obj, np.generic | np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically; non-finite floats become ``null``."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False).encode()
    return _atomic_write(Path(path), lambda f: f.write(text))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` a dict of tensors and plain values atomically."""
    return _atomic_write(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` onto the CPU, safely.

    Raises FileNotFoundError when there is none, and :class:`CheckpointError` (one line naming
    the file) when it is truncated, not a checkpoint, or holds anything but tensors and plain
    values (such a file is refused unread: ``weights_only=True`` never runs its code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; run without resume=True first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err).upper():  # an object to import and call: not ours, maybe hostile
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects other than tensors and plain "
                "values (this package never writes such a checkpoint; loading it could run code)"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not one)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not one): {_first_line(err)}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint of this package (not a dict)")
    return state


class OutDirError(ValueError):
    """An output folder that cannot be used (a file, not creatable, not writable)."""


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` if needed and check that files can be written there, before
    any work is done; raises :class:`OutDirError` (one line) otherwise. Returns it as a Path."""
    out = Path(path)
    try:
        if out.exists() and not out.is_dir():
            raise OutDirError(f"{out} is a file, not a folder: give a folder for the outputs")
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        why = err.strerror or str(err)
        raise OutDirError(f"cannot write to the folder {shown_path(out)}: {why}") from None
    return out


def shown_path(path: str | os.PathLike, limit: int = 160) -> str:
    """``path`` for a one-line message: as it is, or its two ends around an ellipsis when it is
    longer than ``limit`` characters (with its length)."""
    text = os.fspath(path)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}…{text[-limit // 2 :]} ({len(text)} characters)"


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def clean_stale_tmp(folder: str | os.PathLike, names: tuple[str, ...]) -> list[Path]:
    """Delete the temporary files that an interrupted atomic write of ``names`` left in
    ``folder`` (``.NAME.*.tmp``); returns the paths removed."""
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def rng_state() -> dict[str, Any]:
    """The global RNG states of Python, NumPy, torch (CPU) and CUDA as tensors and plain
    values, for a checkpoint."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (legacy global RNG)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
