"""Nothing lost, nothing claimed falsely: the command line tried as an unlucky or hostile user
would (issue 27). A kill at any write of the last epoch, a damaged run folder, Ctrl-C, a second
process on the same folder, paths that cannot work: each ends with the run's files agreeing
with its checkpoint, or with one line and the exit status a shell expects."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from _cli import fails

from allnc_edu.__main__ import main
from allnc_edu.checkpoint import CHECKPOINT_NAME, load_checkpoint

TINY = ["--dataset", "mnist1d", "--n-max", "60", "--imbalance-ratio", "10", "--epochs", "3",
        "--batch-size", "32", "--method", "ce", "--device", "cpu", "--no-progress"]  # fmt: skip
#: Fields of an epoch's record that measure time, and so differ between two identical runs.
TIMING = ("train_s", "samples_per_s")
#: Runs ``main(argv)`` with ``checkpoint.write_hook`` killing the process (as kill -9 would:
#: no clean-up, no exception) at the COUNT-th write of file NAME at STAGE.
KILLER = textwrap.dedent("""
    import json, os, sys
    from allnc_edu import checkpoint
    from allnc_edu.__main__ import main
    name, stage, count, argv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    seen = []
    def hook(path, at):
        if path.name == name and at == stage:
            seen.append(path)
            if len(seen) == count:
                os._exit(137)
    checkpoint.write_hook = hook
    sys.exit(main(argv))
""")


def _python(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *args], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)  # fmt: skip


def _history(folder) -> list[dict]:
    records = json.loads((folder / "history.json").read_text())
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def _agree(folder) -> None:
    """run.json and history.json are the checkpoint's own copies of the run's record."""
    state = load_checkpoint(folder / CHECKPOINT_NAME)
    assert json.loads((folder / "run.json").read_text()) == json.loads(state["run"])
    assert json.loads((folder / "history.json").read_text()) == json.loads(state["history"])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """This process trains with one thread, as the killed children do: a sum split over other
    thread counts rounds differently, and bit-identical is the claim tested here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def uninterrupted(one_thread, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("stage", ["written", "replaced"])
@pytest.mark.parametrize("name", [CHECKPOINT_NAME, "run.json", "history.json"])
def test_a_kill_at_any_write_of_the_last_epoch_then_resume_agrees(
    name, stage, uninterrupted, tmp_path, capsys
):
    out = tmp_path / "run"
    killed = _python("-c", KILLER, name, stage, "3", "train", *TINY, "--out", str(out))
    assert killed.wait(timeout=300) == 137, killed.stderr.read()
    assert main(["train", *TINY, "--out", str(out), "--resume"]) == 0
    printed = capsys.readouterr()
    _agree(out)
    assert _history(out) == _history(uninterrupted)
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] and run["epochs_done"] == 3
    last_write_done = (name, stage) == ("history.json", "replaced")
    assert ("nothing to write" in printed.out) is last_write_done
    assert ("wrote" in printed.out) is not last_write_done  # epoch 3 again, or files repaired
    assert "Traceback" not in printed.err


@pytest.mark.parametrize(
    "damage",
    ["run.json truncated", "run.json is []", "history.json missing", "history.json garbage"],
)
def test_a_resume_repairs_damaged_run_files_from_the_checkpoint(
    damage, uninterrupted, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    name = damage.split()[0]
    path = out / name
    if "truncated" in damage:
        path.write_text(path.read_text()[:50])
    elif "[]" in damage:
        path.write_text("[]")
    elif "missing" in damage:
        path.unlink()
    else:
        path.write_bytes(b"\x00\xff not json")
    capsys.readouterr()
    assert main(["train", *TINY, "--out", str(out), "--resume"]) == 0
    printed = capsys.readouterr()
    repaired = [line for line in printed.err.splitlines() if line.startswith("repaired")]
    assert len(repaired) == 1 and str(path) in repaired[0] and "(epoch 3)" in repaired[0]
    wrote = next(line for line in printed.out.splitlines() if line.startswith("wrote"))
    assert wrote == f"wrote {path}"  # the repaired file only: nothing else was written
    _agree(out)
    assert _history(out) == _history(uninterrupted)


def test_a_resume_of_a_finished_run_writes_nothing_and_says_so(uninterrupted, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in uninterrupted.iterdir()}
    assert main(["train", *TINY, "--out", str(uninterrupted), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "wrote" not in printed and "nothing to write" in printed
    assert {p.name: p.stat().st_mtime_ns for p in uninterrupted.iterdir()} == before


@pytest.mark.parametrize("name", ["run.json", CHECKPOINT_NAME])
def test_a_folder_in_place_of_a_run_file_is_one_line(name, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    (out / name).unlink()
    (out / name).mkdir()
    err = fails(["train", *TINY, "--epochs", "1", "--out", str(out), "--resume"], capsys)
    assert f"{out / name} is not a file" in err


def _started(out, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``proc`` has finished its first epoch in ``out``."""
    stop = time.monotonic() + timeout
    while not (out / CHECKPOINT_NAME).exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < stop, "the run did not finish an epoch in time"
        time.sleep(0.2)


LONG = ["--dataset", "mnist1d", "--n-max", "100", "--epochs", "400", "--batch-size", "32",
        "--method", "ce", "--device", "cpu", "--no-progress"]  # fmt: skip


def test_ctrl_c_is_one_line_exit_130_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    proc = _python("-m", "allnc_edu", "train", *LONG, "--out", str(out))
    _started(out, proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    err = proc.stderr.read()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    kept = load_checkpoint(out / CHECKPOINT_NAME)["epoch"]
    assert f"the last checkpoint holds epoch {kept}; continue with --resume" in err
    running = int(err.split("interrupted in epoch ")[1].split(";")[0])
    assert err.startswith("allnc-edu train: interrupted in epoch ") and running in (kept, kept + 1)
    _agree(out)


def test_a_second_train_on_a_folder_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    first = _python("-m", "allnc_edu", "train", *LONG, "--out", str(out))
    try:
        _started(out, first)
        before = (out / CHECKPOINT_NAME).stat().st_mtime_ns
        for extra in ([], ["--resume"], ["--overwrite"]):
            err = fails(["train", *LONG, "--out", str(out), *extra], capsys)
            assert f"the run folder {out} is in use by another process" in err
        assert (out / CHECKPOINT_NAME).exists() and first.poll() is None
        assert (out / CHECKPOINT_NAME).stat().st_mtime_ns >= before
    finally:
        first.kill()
        first.wait()
    assert main(["train", *TINY, "--out", str(out), "--overwrite"]) == 0  # released by the kill


@pytest.mark.parametrize("where", ["a component over 255 characters", "over 4096 in all"])
def test_an_impossible_out_path_is_one_line_naming_it(where, tmp_path, capsys):
    out = tmp_path / ("x" * 300) if "255" in where else tmp_path.joinpath(*["y" * 200] * 25)
    err = fails(["train", *TINY, "--out", str(out)], capsys)
    assert "--out" in err and "name too long" in err.lower()


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_an_out_of_range_seed_names_the_option(seed, capsys):
    err = fails(["train", *TINY, "--seed", seed], capsys)
    assert "--seed" in err and "[0, 4294967295]" in err
