"""The learning-rate schedule of Whisper fine-tuning: linear warmup, then linear decay."""

from __future__ import annotations

import torch


def warmup_linear_decay(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup`` optimizer steps, then linear decay to 0 at ``total``.

    Step it once per *optimizer* step (:func:`dlsaudio.asr.train.train` does), not per
    micro-batch.

    Raises:
        ValueError: ``warmup`` < 0 or ``total`` <= ``warmup``.
    """
    if warmup < 0 or total <= warmup:
        raise ValueError(f"warmup={warmup}, total={total}: expected 0 <= warmup < total")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / (total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
