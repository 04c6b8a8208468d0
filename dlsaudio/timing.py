"""Time estimates for heavy notebook cells on hardware that is not at hand.

Students run the notebooks on a Colab T4; the notebooks are developed and tested on CPUs. An
estimate from a model's arithmetic is better than none, as long as it says it is one:
:func:`training_flops` counts the floating-point operations of one training step with
PyTorch's FLOP counter, and :func:`t4_step_seconds` turns them into seconds at the rate a T4
sustains on a convolutional network in mixed precision, plus a fixed cost per step for
kernel launches and the Python loop, which dominates for small models.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["T4_FLOPS", "T4_STEP_OVERHEAD", "t4_step_seconds", "training_flops"]

#: Floating-point operations per second a T4 sustains on ResNet-50 in mixed precision:
#: 1,190 images/s for inference (NVIDIA DeepLearningExamples, ResNet50 v1.5 for PyTorch) at
#: 8.2 GFLOP per image is about 1e13.
T4_FLOPS = 1.0e13
#: Seconds per training step spent outside the arithmetic (kernel launches, the Python loop,
#: the optimizer, the augmentations); an assumption for small models, not a measurement.
T4_STEP_OVERHEAD = 0.03


def training_flops(
    method: torch.nn.Module, x1: torch.Tensor, x2: torch.Tensor, label=None
) -> float:
    """Floating-point operations of one ``training_step`` and its backward pass.

    Args:
        method: an SSL method (see :mod:`dlsaudio.ssl.methods`).
        x1: ``(batch, time)`` first views.
        x2: ``(batch, time)`` second views.
        label: ``(batch,)`` labels for a supervised method.

    Returns:
        The count; the model's gradients are left as they were.
    """
    saved = [None if p.grad is None else p.grad.clone() for p in method.parameters()]
    was_training = method.training
    method.train()
    counter = FlopCounterMode(display=False)
    with counter:
        loss = method.training_step(x1, x2, label).loss
        loss.backward()
    for p, g in zip(method.parameters(), saved, strict=True):
        p.grad = g
    method.train(was_training)
    return float(counter.get_total_flops())


def t4_step_seconds(flops_per_step: float) -> float:
    """Estimated seconds of one training step on a Colab T4 (mixed precision)."""
    if not flops_per_step >= 0:
        raise ValueError(f"flops_per_step must be a non-negative number, got {flops_per_step!r}")
    return flops_per_step / T4_FLOPS + T4_STEP_OVERHEAD
