"""Checkpoints hold tensors and plain values only and load with weights_only=True: a crafted
pickle is refused without running, a broken file is named in one line, stale temporaries go."""

from __future__ import annotations

import os
import random
import stat

import numpy as np
import pytest
import torch

from allnc_edu import checkpoint
from allnc_edu.checkpoint import (
    CheckpointError,
    OutDirError,
    check_writable_dir,
    clean_stale_tmp,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
)


class _Payload:
    """Unpickling this runs ``touch marker``: what a crafted checkpoint could do."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted_checkpoint(path, marker) -> None:
    torch.save({"format": 1, "model": {}, "evil": _Payload(marker)}, path)


def test_a_crafted_pickle_is_refused_and_never_runs(tmp_path) -> None:
    path, marker = tmp_path / "checkpoint.pt", tmp_path / "pwned"
    crafted_checkpoint(path, marker)
    torch.load(path, weights_only=False)  # the unsafe way: the payload is real
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match="refusing to load") as err:
        load_checkpoint(path)
    assert not marker.exists()
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_broken_checkpoint_is_one_line_naming_the_file(damage, tmp_path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"w": torch.randn(100, 100), "epoch": 3})
    raw = path.read_bytes()
    path.write_bytes(
        {"truncate": raw[: len(raw) // 2], "garbage": b"\x00junk" * 50, "empty": b""}[damage]
    )
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_checkpoint_round_trips_tensors_and_plain_values(tmp_path) -> None:
    state = {"w": torch.arange(6.0).view(2, 3), "epoch": 2, "text": "{}", "rng": rng_state()}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(back["w"], state["w"]) and back["epoch"] == 2 and back["text"] == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_restores_python_numpy_and_torch(tmp_path) -> None:
    random.seed(1)
    np.random.seed(2)  # noqa: NPY002 (the legacy global RNG is what the state covers)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    want = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want  # noqa: NPY002


def test_stale_temporaries_are_cleaned(tmp_path) -> None:
    stale = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / ".run.json.x.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = tmp_path / ".notes.tmp"
    keep.write_text("not ours")
    removed = clean_stale_tmp(tmp_path, ("checkpoint.pt", "run.json", "history.json"))
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale) and keep.exists()


def test_unusable_output_folders_are_refused_in_one_line(tmp_path) -> None:
    a_file = tmp_path / "some_file.txt"
    a_file.write_text("x")
    with pytest.raises(OutDirError, match="is a file, not a folder"):
        check_writable_dir(a_file)
    with pytest.raises(OutDirError, match="cannot write to the folder"):
        check_writable_dir(a_file / "below")
    assert check_writable_dir(tmp_path / "new" / "run").is_dir()
    assert [p.name for p in (tmp_path / "new" / "run").iterdir()] == []


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    path = write_json(tmp_path / "run.json", {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~checkpoint._UMASK
