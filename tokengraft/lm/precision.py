"""Compute precision of inference-only passes: bfloat16 where the hardware has it, else float32.

On CPUs with native bfloat16 (AVX512-BF16, AMX) and on GPUs, matmuls in bfloat16 run at 2-3x
their float32 speed (AMD EPYC, 2 cores: 28 -> 85 GFLOP/s for a 256 x 576 x 49152 product); on
CPUs without it they are emulated and slower, hence ``auto``. Autocast keeps the weights
float32 and casts them once per context (reductions such as layer norms stay float32).
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch

from tokengraft.errors import TokengraftError

PRECISIONS = ("auto", "bfloat16", "float32")


def compute_dtype(name: str, device: Any) -> torch.dtype:
    """``auto``: bfloat16 where ``device`` computes it natively, else float32.

    >>> compute_dtype("float32", "cpu")
    torch.float32
    """
    if name not in PRECISIONS:
        raise TokengraftError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name != "auto":
        return getattr(torch, name)
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type != "cpu":
        return torch.float32
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX).

    oneDNN's own check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) is true on every
    AVX512 CPU, where bfloat16 is emulated: on a 2-core Intel Xeon with AVX512F only, a
    1024 x 576 x 1536 product took 116 ms in bfloat16 against 31 ms in float32 (one thread).
    """
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(check is None for check in checks):  # an older torch: oneDNN's check is all there is
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return any(bool(check()) for check in checks if check is not None)


def autocast(device: Any, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype``, or nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
