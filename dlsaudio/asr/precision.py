"""Mixed precision for training: which precision a device gets, autocast, and the fp16 step.

fp16 needs a ``GradScaler``: it scales the loss so small gradients survive, and skips the
optimizer step when a gradient overflowed. :func:`optimizer_step` then leaves the scheduler
alone too, so warmup and decay follow the steps really taken.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
"""``auto``: bf16 on GPUs with native bf16, fp16 on other GPUs, fp32 on the CPU."""

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def check_precision(precision: str) -> None:
    """Check a precision name.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; expected one of {PRECISIONS}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA with native bf16 (Ampere and newer), else fp16 on CUDA, fp32 on CPU.

    Raises:
        ValueError: unknown ``precision``, or fp16 without CUDA.
    """
    check_precision(precision)
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        try:  # a T4 (Colab's free GPU) only emulates bf16: use fp16 with a GradScaler there
            native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.3
            native_bf16 = torch.cuda.is_bf16_supported()
        return "bf16" if native_bf16 else "fp16"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"precision='fp16' needs a CUDA device, got {device}; use 'fp32' or 'bf16'"
        )
    return precision


def autocast_for(
    precision: str, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the forward pass's autocast context for a resolved ``precision``."""
    dtype = _DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> bool:
    """Step the optimizer through the GradScaler, then the scheduler, once.

    With fp16 the scaler skips the step when a gradient overflowed (and lowers its scale); the
    scheduler is then not stepped either, so the warmup and decay follow the steps really taken.

    Returns:
        Whether the optimizer stepped.
    """
    scale = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    stepped = scale is None or scaler.get_scale() >= scale
    if scheduler is not None and stepped:
        scheduler.step()
    return stepped
