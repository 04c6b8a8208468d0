"""The largest micro-batch that fits in GPU memory, for ``python -m dlsaudio.bench gpu``.

:func:`largest_fitting` is the search itself, over any predicate "does a micro-batch of this
size fit": doubling, then bisection. :func:`search_micro_batch` gives it the training loop's
step on CUDA, where running out of memory means "does not fit".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dlsaudio.bench.gpu_whisper import Batches, Trainer, free_memory, synchronize


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` says the device ran out of memory (the allocator's or cuBLAS's)."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "CUBLAS_STATUS_ALLOC_FAILED" in text
    )


def largest_fitting(fits: Callable[[int], bool], upper: int) -> int:
    """The largest micro-batch in ``1..upper`` for which ``fits`` is true, 0 when none is.

    Doubles from 1 until a size fails or ``upper`` is reached, then bisects between the last
    size that fitted and the first that did not. Assumes that what fits for ``b`` fits for every
    smaller size; ``fits`` is never called above ``upper``.

    Raises:
        ValueError: ``upper`` is not a positive integer.
    """
    if isinstance(upper, bool) or not isinstance(upper, int) or upper < 1:
        raise ValueError(f"upper={upper!r}; expected a positive integer (the largest size to try)")
    if not fits(1):
        return 0
    low, high = 1, None  # low fits; high (once known) does not
    while high is None:
        if low == upper:
            return low
        size = min(2 * low, upper)
        if fits(size):
            low = size
        else:
            high = size
    while high - low > 1:
        size = (low + high) // 2
        if fits(size):
            low = size
        else:
            high = size
    return low


def search_micro_batch(trainer: Trainer, batches: Batches, upper: int) -> dict[str, Any]:
    """The largest micro-batch whose training step fits in CUDA memory, with the sizes tried.

    Each try is one full optimizer step of one micro-batch (the optimizer state already
    exists); an out-of-memory error means it does not fit. Memory is freed between tries.

    Raises:
        Exception: any error of a try other than running out of memory, as it was raised.
    """
    tried: list[dict[str, Any]] = []

    def fits(size: int) -> bool:
        try:
            trainer.step([batches(size)])
            synchronize(trainer.device)
            ok = True
        except (torch.cuda.OutOfMemoryError, RuntimeError) as err:
            if not is_out_of_memory(err):
                raise
            ok = False
        if not ok:
            trainer.reset_scaler()
        trainer.optimizer.zero_grad(set_to_none=True)
        free_memory(trainer.device)
        tried.append({"micro_batch": size, "fits": ok})
        return ok

    trainer.model.train()
    return {"value": largest_fitting(fits, upper), "upper_bound": upper, "tried": tried}
