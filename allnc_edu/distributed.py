"""A thin layer over ``torch.distributed`` for data-parallel runs launched by ``torchrun``.

Nothing here is a distributed system of its own: ``torchrun`` starts one process per device and
sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`init_from_env` joins its process group
(NCCL on CUDA, gloo on the CPU). Every other function works with whatever default group is
initialised (a library user may create their own), and is the identity or a no-op when there
is none, so single-process code paths are unchanged.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """SIGTERM under ``torchrun``, which sends it to every other process when one fails:
    raised like Ctrl-C so a run stops the same way (one line; the checkpoint intact)."""

    exit_status = 143


def _on_sigterm(signum: int, frame: object) -> None:
    stopping()
    raise Terminated("SIGTERM (torchrun stops every process when one of them fails)")


def stopping() -> None:
    """This process is stopping on its own: ignore the SIGTERM ``torchrun`` sends next, so the
    stop ends with its one line rather than a second interruption."""
    if env_world_size() > 1:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


#: Words of the errors gloo and NCCL raise in a collective whose peer process has died.
_LOST_PEER = ("closed by peer", "reset by peer", "remote worker", "broken pipe", "timed out",
              "NCCL communicator was aborted")  # fmt: skip


def lost_peer(err: BaseException) -> bool:
    """Whether ``err``, raised in a collective, says another process of the group is gone."""
    text = str(err).lower()
    known = isinstance(err, getattr(dist, "DistError", ()))
    return is_initialized() and (known or any(w.lower() in text for w in _LOST_PEER))


def first_sentence(err: BaseException) -> str:
    """The readable head of a collective's error: its first line without gloo's source-file
    prefix ("[.../pair.cc:561] "), up to its first full stop."""
    lines = str(err).strip().splitlines()
    head = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]) if lines else type(err).__name__
    return head.split(". ")[0].rstrip(".")


class RankZeroError(RuntimeError):
    """Raised on the other ranks when rank 0 failed in :func:`main_first` (rank 0 raises, and
    reports, the original error)."""


def is_initialized() -> bool:
    """Whether a default process group is up."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in the default group (1 without one)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank in the default group (0 without one)."""
    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes files and prints: rank 0, or the only process."""
    return rank() == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` as ``torchrun`` sets it (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: str = "auto") -> str:
    """Join ``torchrun``'s process group when ``WORLD_SIZE`` > 1; returns the device to train on.

    On CUDA (``device`` "auto" with a GPU, or "cuda") the backend is NCCL and the device is
    ``cuda:LOCAL_RANK``; otherwise gloo on the CPU. SIGTERM (torchrun's way of stopping the
    other processes when one fails) then raises :class:`Terminated`. Without ``torchrun`` (or
    with one process) nothing happens and ``device`` is returned unchanged. Idempotent.
    """
    if env_world_size() <= 1 or is_initialized():
        return _local_device(device) if is_initialized() else device
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    signal.signal(signal.SIGTERM, _on_sigterm)
    dist.init_process_group("nccl" if cuda else "gloo")
    return _local_device(device)


def _local_device(device: str) -> str:
    if dist.get_backend() == "nccl":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu" if device == "auto" else device


def teardown() -> None:
    """Leave the process group (if one is up)."""
    if is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op without a group)."""
    if is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor, *, differentiable: bool = False) -> torch.Tensor:
    """The sum of ``t`` over ranks (``t`` itself without a group).

    ``differentiable=True`` makes it a node of the autograd graph whose backward all-reduces
    (sums) the incoming gradients: S = sum_r t_r is used by every rank's loss L_r, so
    dL/dt_r = sum_r' dL_r'/dS, the gradient of the sum of the ranks' losses. Otherwise a
    plain all-reduce of a copy, outside autograd.
    """
    if not is_initialized():
        return t
    if differentiable:
        return _AllReduceSum.apply(t)
    return _summed(t.detach())


def _summed(t: torch.Tensor) -> torch.Tensor:
    out = t.to(_comm_device(t), copy=True)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(t.device)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, forward and backward (the gradient of a sum is summed too)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        return _summed(t)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _summed(grad)


def all_gather_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``t`` (same shape and dtype on all ranks), in rank order: ``[t]`` alone."""
    if not is_initialized():
        return [t]
    on = _comm_device(t)
    parts = [torch.empty_like(t, device=on) for _ in range(world_size())]
    dist.all_gather(parts, t.to(on).contiguous())
    return [p.to(t.device) for p in parts]


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (e.g. BatchNorm running statistics) to every rank, in place."""
    if not is_initialized():
        return
    for buf in module.buffers():
        on = _comm_device(buf)
        b = buf.data.to(on)
        dist.broadcast(b, src)
        buf.data.copy_(b)


def main_first(fn: Callable[[], T]) -> T | None:
    """Run ``fn`` on rank 0 only; if it raises, every rank raises (rank 0 the original error,
    the others a :class:`RankZeroError` naming it), so no rank is left waiting. Returns
    ``fn()`` on rank 0 and None elsewhere; the other ranks wait for it."""
    if not is_initialized():
        return fn()
    result, error = None, None
    if is_main():
        try:
            result = fn()
        except Exception as err:  # re-raised below, after telling the other ranks
            error = err
    message = [f"{type(error).__name__}: {error}" if error is not None else None]
    dist.broadcast_object_list(message, src=0)
    if error is not None:
        raise error
    if message[0] is not None:
        raise RankZeroError(f"rank 0 failed: {message[0]}")
    return result


def _comm_device(t: torch.Tensor) -> torch.device:
    """Where a collective on ``t`` must run: CUDA for NCCL, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
