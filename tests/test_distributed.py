"""Data parallel training: merged statistics, the all-reduced bank, DDP runs (gloo, CPU).

Two-rank checks run in two processes started by ``torch.multiprocessing`` (one start for all
of them) and by ``torchrun`` itself for the command line.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from allnc_edu import distributed
from allnc_edu.checkpoint import load_checkpoint
from allnc_edu.data import load_dataset
from allnc_edu.evaluate import evaluate
from allnc_edu.losses import ClassMeanBank, p2p_loss
from allnc_edu.methods import METHODS, make_method
from allnc_edu.metrics import NCAccumulator
from allnc_edu.models import MLP
from allnc_edu.rundir import RUN_FILES
from allnc_edu.train import fit

WORLD = 2
K, D = 4, 3


def _bank_batches():
    """Two global batches (features (10, D), labels (10,)); class 3 appears in the second only,
    and rank 1's share of the first holds no class 2."""
    g = torch.Generator().manual_seed(0)
    y1 = torch.tensor([0, 1, 2, 1, 0, 0, 2, 1, 0, 1])
    y2 = torch.tensor([3, 0, 3, 1, 2, 0, 3, 3, 1, 0])
    return [(torch.randn(10, D, generator=g), y1), (torch.randn(10, D, generator=g), y2)]


def _bank_run(rank: int, world: int) -> dict:
    """The bank after two updates, then P2P's means and their gradient, on one rank's shares."""
    bank = ClassMeanBank(K, D, momentum=0.9)
    for h, y in _bank_batches():
        bank.update(h[rank::world], y[rank::world])
    h, y = _bank_batches()[0]
    h = h[rank::world].clone().requires_grad_()
    weight = torch.randn(K, D, generator=torch.Generator().manual_seed(1))
    means, valid = bank.p2p_means(h, y[rank::world])
    loss = p2p_loss(means, weight, "cross", valid)
    loss.backward()
    return {"means": bank.means, "seen": bank.seen, "p2p_means": means.detach(),
            "loss": loss.detach(), "grad": h.grad}  # fmt: skip


def _tiny_data():
    return load_dataset("gaussian", imbalance_ratio=4, profile="step", n_max=24, seed=0)


def _tiny_method(name: str, data, **options):
    torch.manual_seed(0)
    backbone = MLP(int(torch.tensor(data.input_shape).prod()), hidden=(16, 12))
    return make_method(name, backbone, data.num_classes, data.counts, **options)


_FIT = dict(epochs=2, batch_size=13, lr=0.05, device="cpu", amp=False, progress=False, seed=3)


def _two_ranks(rank: int, world: int, init: str, out: str) -> None:
    """Everything the two-rank tests compare, written to ``out/rank{rank}.pt``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        data = _tiny_data()
        results = {"bank": _bank_run(rank, world)}
        method = _tiny_method("ce", data)
        results["eval"] = evaluate(method, data, batch_size=8, amp=False).as_dict()
        results["eval_rank1_idle"] = evaluate(method, data, batch_size=4096, amp=False).as_dict()
        allnc = _tiny_method("allnc", data, hycon=False)  # HyCon's negatives are per rank
        run = fit(allnc, data, **_FIT)
        results["fit"] = [r.as_dict() for r in run.history]
        results["state"] = allnc.state_dict()
        resumed = Path(out) / "resumed"  # stop after epoch 1, then resume from the checkpoint
        fit(_tiny_method("allnc", data, hycon=False), data, out_dir=resumed, stop_after=1, **_FIT)
        again = fit(_tiny_method("allnc", data, hycon=False), data, out_dir=resumed,
                    resume=True, **_FIT)  # fmt: skip
        results["resumed"] = [r.as_dict() for r in again.history]
        gathered = distributed.all_gather_tensors(torch.tensor([rank, 10 * rank]))
        results["gathered"] = torch.stack(gathered)
        bn = torch.nn.BatchNorm1d(3)
        bn.running_mean.fill_(rank + 1.0)
        distributed.broadcast_buffers(bn)
        results["running_mean"] = bn.running_mean
        try:
            distributed.main_first(lambda: 1 / 0)
        except Exception as err:
            results["failure"] = type(err).__name__
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """The two ranks' results (one start of two processes for the whole module)."""
    tmp = tmp_path_factory.mktemp("ranks")
    mp.spawn(_two_ranks, args=(WORLD, str(tmp / "init"), str(tmp)), nprocs=WORLD)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_without_a_group_the_collectives_are_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env("cpu") == "cpu"  # not under torchrun: no group
    t = torch.arange(3.0)
    assert not distributed.is_initialized() and distributed.world_size() == 1
    assert distributed.all_reduce_sum(t) is t and distributed.all_gather_tensors(t) == [t]
    assert distributed.main_first(lambda: 7) == 7 and distributed.is_main()


def test_all_gather_is_in_rank_order(ranks):
    for result in ranks:
        assert result["gathered"].tolist() == [[0, 0], [1, 10]]


def test_buffers_come_from_rank_0(ranks):
    for result in ranks:
        assert result["running_mean"].tolist() == [1.0, 1.0, 1.0]


def test_a_failure_on_rank_0_reaches_every_rank(ranks):
    assert [r["failure"] for r in ranks] == ["ZeroDivisionError", "RankZeroError"]


def test_all_reduced_bank_equals_the_bank_of_the_concatenated_batches(ranks):
    single = _bank_run(0, 1)
    for result in (r["bank"] for r in ranks):
        assert torch.equal(result["seen"], single["seen"])
        torch.testing.assert_close(result["means"], single["means"], rtol=0, atol=1e-6)
        torch.testing.assert_close(result["p2p_means"], single["p2p_means"], rtol=0, atol=1e-6)
        torch.testing.assert_close(result["loss"], single["loss"], rtol=0, atol=1e-6)


def test_p2p_gradient_after_ddp_averaging_is_the_single_process_gradient(ranks):
    single = _bank_run(0, 1)["grad"]
    for r, result in enumerate(r["bank"] for r in ranks):
        # The backward of the all-reduce sums the ranks' gradients; DDP then divides by N.
        torch.testing.assert_close(result["grad"] / WORLD, single[r::WORLD], rtol=0, atol=1e-6)


def test_sharded_evaluation_equals_one_process(ranks):
    """Batches of 8 (both ranks evaluate) and one batch for everything (rank 1 idle)."""
    data = _tiny_data()
    single = evaluate(_tiny_method("ce", data), data, batch_size=8, amp=False).as_dict()
    for ev in [r[key] for r in ranks for key in ("eval", "eval_rank1_idle")]:
        accuracies = ("train_acc", "accuracy", "many", "medium", "few", "per_class")
        assert all(ev[k] == single[k] for k in accuracies)
        for name, value in single["nc"].items():
            want = value if isinstance(value, str) else pytest.approx(value, rel=1e-9, abs=1e-12)
            assert ev["nc"][name] == want, name


def test_two_rank_fit_equals_one_process_without_batchnorm(ranks):
    """MLP backbone (no BatchNorm), AllNC with P2P, GBBN and the bank, odd global batches
    (shares of 7 and 6): the weighted DDP average and the all-reduced P2P give the
    single-process run."""
    data = _tiny_data()
    assert _FIT["batch_size"] % WORLD == 1 and len(data.train_y) % _FIT["batch_size"] % 2 == 1
    method = _tiny_method("allnc", data, hycon=False)
    single = fit(method, data, **_FIT)
    for result in ranks:
        for got, want in zip(result["fit"], single.history, strict=True):
            assert got["loss"] == pytest.approx(want.loss, rel=1e-5)
            assert got["samples"] == want.samples
            assert got["accuracy"] == want.accuracy
            assert got["nc"]["nc1"] == pytest.approx(want.nc["nc1"], rel=1e-4)
        for name, tensor in method.state_dict().items():
            torch.testing.assert_close(result["state"][name], tensor, rtol=1e-4, atol=1e-6)


def test_two_rank_resume_continues_the_same_run(ranks):
    for result in ranks:
        for got, want in zip(result["resumed"], result["fit"], strict=True):
            got, want = ({k: v for k, v in r.items() if not k.endswith("_s")} for r in (got, want))
            assert got == want


@pytest.mark.parametrize("within", ["pooled", "class"])
def test_merged_accumulators_equal_one_fed_everything(within):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(50, 6, generator=g, dtype=torch.float64) * 3 + 100
    y = torch.arange(50) % 4
    whole = NCAccumulator(4, 6, within=within)
    whole.update(h, y)
    parts = [NCAccumulator(4, 6, within=within) for _ in range(3)]
    for i, part in enumerate(parts):
        part.update(h[i::3], y[i::3])  # part 2 has no sample of some class: fine for a part
    merged = NCAccumulator(4, 6, within=within)
    merged.merge(parts[0])
    merged.merge(parts[1].state())
    merged.merge(parts[2])
    for a, b in zip(merged.state(), whole.state(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-9)
    w = torch.randn(4, 6, generator=g, dtype=torch.float64)
    assert merged.compute(w).nc1 == pytest.approx(whole.compute(w).nc1, rel=1e-10)


def test_merge_refuses_mismatches():
    acc = NCAccumulator(3, 2)
    with pytest.raises(ValueError, match="same K, d"):
        acc.merge(NCAccumulator(3, 4))
    other = NCAccumulator(3, 2)
    other.update(torch.randn(6, 2), torch.arange(6) % 3)
    other.update_agreement(torch.randn(6, 2), torch.arange(6) % 3, torch.randn(3, 2))
    with pytest.raises(ValueError, match="agreement"):
        acc.merge(other)


@pytest.mark.parametrize("name", METHODS)
def test_unused_parameters_flag_matches_the_gradients(name):
    """DDP needs find_unused_parameters exactly when a step can leave a parameter without a
    gradient: each recipe's default, and AllNC's idle MLP projection under ``defer``."""
    data = _tiny_data()
    cases = [{}] + ([{"projection": "mlp", "defer": 0.5}] if name == "allnc" else [])
    for options in cases:
        method = _tiny_method(name, data, **options)
        x, y = data.train_x[:12], data.train_y[:12]
        balanced = (x, y) if method.needs_balanced_batch else None
        loss, _ = method.loss(x, y, progress=0.0, epoch=0, balanced_batch=balanced)
        loss.backward()
        idle = [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None]
        assert bool(idle) == method.unused_parameters, (name, options, idle)


def test_sync_bn_needs_cuda():
    data = _tiny_data()
    with pytest.raises(ValueError, match="sync_bn needs CUDA"):
        fit(_tiny_method("ce", data), data, epochs=1, device="cpu", sync_bn=True, progress=False)


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_two_processes_train_and_evaluate(tmp_path):
    """The command line under torchrun (gloo, CPU): one run, one set of files, rank 0 prints,
    and ``evaluate --run`` on one process reproduces the final accuracy and NC1."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [*_torchrun(), "--standalone", f"--nproc-per-node={WORLD}", "-m", "allnc_edu",
             "train", "--dataset", "mnist1d", "--method", "allnc", "--epochs", "2",
             "--n-max", "60", "--imbalance-ratio", "10", "--out", str(out),
             "--data-root", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    done = subprocess.run(train, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("neural collapse on the training set") == 1  # rank 0 only
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES)
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["world_size"] == WORLD
    last = json.loads((out / "history.json").read_text())[-1]
    scores = tmp_path / "scores.json"
    evaluate_cmd = [sys.executable, "-m", "allnc_edu", "evaluate", "--run", str(out),
                    "--device", "cpu", "--json", str(scores)]  # fmt: skip
    done = subprocess.run(evaluate_cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(scores.read_text())
    assert got["accuracy"] == pytest.approx(last["accuracy"], abs=1e-6)
    assert got["nc"]["nc1"] == pytest.approx(last["nc"]["nc1"], abs=1e-6)


def _rank_pid(launcher: subprocess.Popen, rank: int) -> int:
    """The pid of the worker of ``rank`` that ``launcher`` (torchrun) started."""
    for _ in range(600):
        for proc in Path("/proc").iterdir():
            try:
                env = (proc / "environ").read_bytes().split(b"\0")
                parent = int((proc / "stat").read_text().split()[3])
            except (OSError, ValueError):
                continue
            if f"RANK={rank}".encode() in env and parent in _children(launcher.pid):
                return int(proc.name)
        time.sleep(0.1)
    raise AssertionError(f"no worker of rank {rank} found")


def _children(pid: int) -> set[int]:
    """``pid`` and its child processes (torchrun may run as python -m torch.distributed.run)."""
    kids = {pid}
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids.update(int(c) for c in (task / "children").read_text().split())
    return kids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_a_killed_worker_stops_the_others_in_one_line_with_the_checkpoint_intact(tmp_path):
    """kill -9 one torchrun worker mid-run: the other exits within seconds with one line of
    its own, naming the epoch and the checkpoint, which stays intact and resumable."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [*_torchrun(), "--standalone", f"--nproc-per-node={WORLD}", "-m", "allnc_edu",
             "train", "--dataset", "mnist1d", "--method", "allnc", "--epochs", "500",
             "--n-max", "100", "--out", str(out), "--no-progress"]  # fmt: skip
    launcher = subprocess.Popen(train, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
    try:
        while not (out / "checkpoint.pt").exists():
            assert launcher.poll() is None, launcher.stderr.read()[-3000:]
            time.sleep(0.2)
        os.kill(_rank_pid(launcher, 1), signal.SIGKILL)
        start = time.monotonic()
        launcher.wait(timeout=60)
        assert time.monotonic() - start < 30
    finally:
        launcher.kill()
    ours = [line for line in launcher.stderr.read().splitlines() if "allnc-edu train" in line]
    assert len(ours) == 1, ours
    kept = load_checkpoint(out / "checkpoint.pt")["epoch"]
    assert ours[0].startswith("allnc-edu train: rank 0: interrupted in epoch ")
    assert f"the last checkpoint holds epoch {kept}; continue with --resume" in ours[0]
    assert json.loads((out / "run.json").read_text())["epochs_done"] == kept


def test_resume_with_another_world_size_is_refused(tmp_path):
    data = _tiny_data()
    fit(_tiny_method("ce", data), data, out_dir=tmp_path, stop_after=1, **_FIT)
    run = tmp_path / "run.json"
    saved = json.loads(run.read_text())
    assert saved["config"]["world_size"] == 1 and saved["config"]["sync_bn"] is False
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    meta = json.loads(state["run"])
    meta["config"]["world_size"] = 2
    state["run"] = json.dumps(meta)
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="world_size"):
        fit(_tiny_method("ce", data), data, out_dir=tmp_path, resume=True, **_FIT)


def test_study_and_demo_refuse_torchrun(monkeypatch, capsys):
    from allnc_edu.__main__ import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    for command in (["study"], ["demo", "--smoke"]):
        with pytest.raises(SystemExit) as stop:
            main(command)
        assert stop.value.code == 2
        assert "not torchrun" in capsys.readouterr().err
