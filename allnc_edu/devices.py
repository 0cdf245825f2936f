"""Where a run computes: autocast that pays off on this hardware, inputs moved to the device once.

``pick_device`` (in the package root) resolves "auto"; :func:`autocast_for` turns bfloat16 on
only where the hardware runs it natively; :func:`to_device_tensor` moves a data set's inputs to
the device once, as channels_last when they are images.
"""

from __future__ import annotations

import contextlib
import functools

import torch


def autocast_for(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast where the hardware supports it: CUDA cards with bfloat16, and CPUs
    whose oneDNN kernels run it (AVX-512 and newer); a no-op otherwise (float32). On older CPUs
    bfloat16 is slower than float32 (measured: a ResNet-32 forward 4x slower, AVX2-only EPYC)."""
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    else:
        supported = device.type == "cpu" and _cpu_has_native_bf16()
    if amp and supported:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.cache
def _cpu_has_native_bf16() -> bool:
    """Whether oneDNN has bfloat16 kernels for this CPU (AVX-512 and newer; not AVX2)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else True


def to_device_tensor(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move inputs to the device once, as channels_last when they are images (4-D)."""
    x = x.to(device, non_blocking=True)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
