"""A run's folder: checked before any work, locked while a run writes, and its record.

The checkpoint is the run's record: it holds the model, the optimiser, the RNG states and the
run's ``run.json`` and ``history.json`` as text; those two files are its copies, written after
it every epoch. A run stopped between these writes is repaired from the checkpoint on resume
(:func:`repair_run_files`). :func:`check_out_dir` refuses, before any work, a folder that
cannot be written, one in use by another process (a lock held for the whole run), a run that
may not be replaced, and a folder in the place of a run file.
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    OutDirError,
    check_writable_dir,
    clean_stale_tmp,
    hold_lock,
    write_json,
)
from .records import HISTORY_FILE, RUN_FILE, RunConfig, RunResult

#: Files of a run in ``out_dir``.
RUN_FILES = (CHECKPOINT_NAME, RUN_FILE, HISTORY_FILE)

#: Version of the checkpoint layout.
CHECKPOINT_FORMAT = 1


class RunExistsError(ValueError):
    """``out_dir`` already holds a run and neither ``resume`` nor ``overwrite`` was asked for."""


class DifferentRunError(ValueError):
    """``resume=True`` found a checkpoint of a run whose settings differ from this one."""


def check_out_dir(
    out_dir: str | Path, *, resume: bool = False, overwrite: bool = False
) -> tuple[Path, list[str]]:
    """Check, before any work, that ``out_dir`` is a writable folder (created if needed) that
    no other process is training in, and that ``fit`` may use it: a run already there
    (``RUN_FILES``) is refused unless resumed (it has a checkpoint) or ``overwrite``; a run
    file that is not a file (a folder in its place) is refused. Cleans stale temporary files
    of an interrupted write. Returns the folder and the run files present. Raises
    ``checkpoint.OutDirError``, ``checkpoint.InUseError`` or :class:`RunExistsError`
    (ValueErrors, one line each)."""
    out = check_writable_dir(out_dir)
    with hold_lock(out, f"the run folder {out}"):
        return _check_run_files(out, resume=resume, overwrite=overwrite)


def _check_run_files(out: Path, *, resume: bool, overwrite: bool) -> tuple[Path, list[str]]:
    """:func:`check_out_dir`'s checks of the files in ``out``, under its lock."""
    clean_stale_tmp(out, RUN_FILES)
    present = [name for name in RUN_FILES if (out / name).exists()]
    odd = [name for name in present if not (out / name).is_file()]
    if odd:
        raise OutDirError(
            f"{out / odd[0]} is not a file (a folder or device in the place of the run's "
            f"{odd[0]}); move it away, then run again"
        )
    if not present or overwrite or (resume and CHECKPOINT_NAME in present):
        return out, present
    if resume:
        raise RunExistsError(
            f"{out} holds {', '.join(present)} but no {CHECKPOINT_NAME} to resume from; "
            "pass overwrite=True to start a new run there"
        )
    raise RunExistsError(
        f"{out} already holds a run ({', '.join(present)}); pass resume=True to continue it "
        "or overwrite=True to replace it"
    )


def prepare_out_dir(
    out_dir: str | Path | None, *, resume: bool, overwrite: bool, held: contextlib.ExitStack
) -> Path | None:
    """Take the folder's lock into ``held`` (kept until the run ends), check it as
    :func:`check_out_dir` does, then delete the old run when it is to be replaced."""
    if out_dir is None:
        return None
    out = check_writable_dir(out_dir)
    held.enter_context(hold_lock(out, f"the run folder {out}"))
    out, present = _check_run_files(out, resume=resume, overwrite=overwrite)
    if overwrite and not (resume and CHECKPOINT_NAME in present):
        for name in present:
            (out / name).unlink()
    return out


def repair_run_files(out: Path, state: dict[str, Any]) -> list[Path]:
    """Rewrite run.json and history.json from the checkpoint's own copies where they are
    missing, unreadable or disagree with it (a run stopped between its writes), printing one
    line per file; returns the files rewritten."""
    repaired = []
    for name, text in ((RUN_FILE, state["run"]), (HISTORY_FILE, state["history"])):
        path, truth = out / name, json.loads(text)
        try:
            agrees = json.loads(path.read_text(encoding="utf-8")) == truth
            why = None if agrees else "disagreed with it"
        except FileNotFoundError:
            why = "was missing"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            why = "was unreadable"
        if why is not None:
            write_json(path, truth)
            repaired.append(path)
            print(f"repaired {path} from {CHECKPOINT_NAME} (epoch {state['epoch']}): it {why}",
                  file=sys.stderr)  # fmt: skip
    return repaired


def run_from_checkpoint(state: dict[str, Any], path: str | Path) -> RunResult:
    """The run a checkpoint holds (config, history, samples, provenance): the run's record,
    which run.json and history.json copy. ``state`` is ``checkpoint.load_checkpoint(path)``."""
    try:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        missing = {"model", "optimizer", "scheduler", "rng"} - set(state)
        if missing:
            raise ValueError(f"missing {sorted(missing)}")
        return RunResult.from_dicts(json.loads(state["run"]), json.loads(state["history"]))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a checkpoint of this version of allnc_edu ({err}); "
            "pass overwrite=True to start a new run there"
        ) from None


def check_same_run(saved: RunConfig, now: RunConfig, path: Path) -> None:
    differ = saved.differences(now)
    if not differ:
        return
    why = {"epochs": " (the cosine learning-rate schedule spans the whole run, so its length "
           "cannot change)"}  # fmt: skip
    changes = "; ".join(
        f"{k}: saved {a!r}, now {b!r}{why.get(k, '')}" for k, (a, b) in differ.items()
    )
    raise DifferentRunError(
        f"cannot resume {path}: the settings differ ({changes}); "
        "use another out_dir, or overwrite=True to start a new run there"
    )


def check_same_model(saved: dict[str, torch.Tensor], method: nn.Module, path: Path) -> None:
    """Refuse a checkpoint whose tensors do not fit ``method`` (a safety net behind the config
    comparison: e.g. a backbone built with other options)."""
    now = method.state_dict()
    differ = sorted(
        set(saved) ^ set(now) | {k for k in set(saved) & set(now) if saved[k].shape != now[k].shape}
    )
    if differ:
        raise DifferentRunError(
            f"cannot resume {path}: its model does not match this one ({len(differ)} tensor(s) "
            f"differ, e.g. {differ[0]!r}); use another out_dir or overwrite=True"
        )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def provenance(device: torch.device) -> dict[str, Any]:
    """Package, Python, torch and CUDA versions, the device, the git commit and the start time."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "package": f"allnc_edu {__version__}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": name or platform.machine(),
        "git_commit": _git_commit(),
        "started": now(),
        "finished": None,
    }


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from (with "+dirty" when it has changes),
    or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
