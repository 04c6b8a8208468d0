"""Time estimates for heavy notebook cells on a Colab T4, and what one training step costs here.

Students run the notebooks on a Colab T4; the notebooks are developed and tested on CPUs. An
estimate is better than none, as long as it says it is one. Two kinds are made here:

- module 3 (small convolutional networks): :func:`training_flops` counts the floating-point
  operations of one training step with PyTorch's FLOP counter, and :func:`t4_step_seconds` turns
  them into seconds at the rate a T4 sustains on a convolutional network in mixed precision,
  plus a fixed cost per step for kernel launches and the Python loop, which dominates for small
  models;
- module 11 (Whisper): :func:`time_estimate` and :func:`estimate_seconds` use stated throughputs
  (:data:`T4_THROUGHPUT`), assumptions for planning a session, not measurements made by this
  package. Training: whisper-small fine-tunes at about 3 examples per second on a free T4 (fp16
  autocast, 30 s windows, AdamW); Hugging Face's Whisper fine-tuning guides report 500 steps of
  16 examples in about 45 minutes on that GPU. The smaller models are scaled from it by their
  encoder cost (6 layers of width 512 for base, 4 of 384 for tiny, against 12 of 768), less than
  proportionally because a small model does not fill the GPU. Transcription: greedy decoding in
  batches of 8 of short read sentences (Common Voice-like, a few dozen tokens each); long or
  repetitive hypotheses take longer. LoRA (:mod:`dlsaudio.asr.lora`) trains at least as fast as
  full fine-tuning, so the full fine-tuning rate is an upper bound for it. For Whisper a reported
  throughput is at hand, and the FLOP rate a T4 sustains on ResNet-50 would make whisper-small
  about three times faster than it trains.

Every estimate says that it is one. The progress bars show the real speed; if it differs much,
scale the printed numbers by it. :func:`step_cost` measures instead: the time of one Whisper
accumulation window on this machine and the activation memory it keeps for backward.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from dlsaudio.asr.accumulation import LogitsFn

__all__ = [
    "PREPARE_PER_SECOND",
    "T4_FLOPS",
    "T4_STEP_OVERHEAD",
    "T4_THROUGHPUT",
    "Throughput",
    "checkpoint_gigabytes",
    "estimate_seconds",
    "step_cost",
    "t4_step_seconds",
    "time_estimate",
    "training_flops",
]

# Module 3: from counted FLOPs.

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


# Module 11: from stated throughputs.


@dataclass(frozen=True)
class Throughput:
    """Examples per second of one model on one GPU."""

    train: float
    """training examples per second (forward, backward and optimizer step)"""
    transcribe: float
    """utterances per second transcribed with greedy decoding"""


T4 = "a free Colab T4"

T4_THROUGHPUT: dict[str, Throughput] = {
    "openai/whisper-tiny": Throughput(train=15.0, transcribe=16.0),
    "openai/whisper-base": Throughput(train=8.0, transcribe=10.0),
    "openai/whisper-small": Throughput(train=3.0, transcribe=4.0),
    "openai/whisper-medium": Throughput(train=1.0, transcribe=1.5),
}
"""Stated throughputs on a free Colab T4 (see the module docstring for where they come from)."""

PREPARE_PER_SECOND = 50.0
"""Clips decoded, resampled and turned into log-mel features per second on Colab's two CPUs."""


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{round(minutes)} min"
    hours, minutes = divmod(round(minutes), 60)
    return f"{hours} h {minutes} min"


def estimate_seconds(
    model: str, *, train: int = 0, transcribe: int = 0, prepare: int = 0
) -> float | None:
    """Seconds to train on ``train`` examples, transcribe ``transcribe`` utterances and prepare
    ``prepare`` clips with ``model`` on a free T4; None when the model has no stated throughput
    and there is GPU work to estimate.

    Raises:
        ValueError: a negative or non-integer count.
    """
    for name, value in (("train", train), ("transcribe", transcribe), ("prepare", prepare)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r}; expected a number of examples >= 0")
    rate = T4_THROUGHPUT.get(model)
    if rate is None and (train or transcribe):
        return None
    seconds = prepare / PREPARE_PER_SECOND
    if rate is not None:
        seconds += train / rate.train + transcribe / rate.transcribe
    return seconds


def time_estimate(
    model: str, *, train: int = 0, transcribe: int = 0, prepare: int = 0, device: str | None = None
) -> str:
    """One line saying how long a notebook cell should take on a free Colab T4, and from what.

    Args:
        model: the model name, e.g. ``"openai/whisper-small"`` (a key of :data:`T4_THROUGHPUT`).
        train: training examples (optimizer steps x effective batch).
        transcribe: utterances to transcribe.
        prepare: clips to decode and turn into features (CPU work, the same for every model).
        device: where the notebook runs; on ``"cpu"`` the line adds that a GPU runtime is needed
            for these numbers.

    Returns:
        For example ``"time estimate for a free Colab T4: about 44 min (training 8,000 examples
        at ~3/s, the stated rates of openai/whisper-small) -- an estimate, not a measurement"``.

    Raises:
        ValueError: a negative or non-integer count.
    """
    seconds = estimate_seconds(model, train=train, transcribe=transcribe, prepare=prepare)
    if seconds is None:
        known = ", ".join(T4_THROUGHPUT)
        return (
            f"no time estimate: {model!r} has no stated throughput on {T4} (stated for {known}); "
            "the progress bar shows the real speed"
        )
    rate = T4_THROUGHPUT.get(model)
    parts = []
    if train:
        parts.append(f"training {train:,} examples at ~{rate.train:g}/s")
    if transcribe:
        parts.append(f"transcribing {transcribe:,} utterances at ~{rate.transcribe:g}/s")
    if prepare:
        parts.append(f"preparing {prepare:,} clips at ~{PREPARE_PER_SECOND:g}/s on 2 CPUs")
    source = f", the stated rates of {model}" if rate is not None and (train or transcribe) else ""
    line = (
        f"time estimate for {T4}: about {_duration(seconds)} ({'; '.join(parts) or 'nothing to do'}"
        f"{source}) -- an estimate, not a measurement"
    )
    if device is not None and str(device).startswith("cpu") and (train or transcribe):
        line += (
            "; this runtime has no GPU, so expect it to take many times longer "
            "(Colab: Runtime > Change runtime type > T4 GPU)"
        )
    return line


def checkpoint_gigabytes(trainable: int, total: int) -> float:
    """Size of a resumable checkpoint: every weight in float32 and AdamW's two float32 moments
    of every trainable parameter."""
    if trainable < 0 or total < trainable:
        raise ValueError(f"trainable={trainable}, total={total}: expected 0 <= trainable <= total")
    return (4 * total + 8 * trainable) / 1e9


# Measured here: one accumulation window.


def step_cost(
    model: torch.nn.Module, window: list[dict], logits_fn: LogitsFn | None = None
) -> dict[str, float]:
    """Time one accumulation window and the activation memory it keeps for backward, in process.

    The activation memory is what grows with the batch: the tensors autograd saves during a
    forward pass until its backward, parameters excluded (counted once per storage through
    ``torch.autograd.graph.saved_tensors_hooks``). Accumulation frees them after every
    micro-batch, so the peak is that of the largest micro-batch. On CUDA the allocator's peak
    (``torch.cuda.max_memory_allocated``) is reported as well.

    Args:
        model: the model (gradients are accumulated into it and then cleared).
        window: micro-batches, e.g. ``[batch]`` for one big batch.
        logits_fn: as in :func:`dlsaudio.asr.accumulation.accumulate_gradients` (Whisper by
            default).

    Returns:
        ``{"seconds", "activation_mb", "examples"}`` (plus ``"cuda_peak_mb"`` on CUDA).
    """
    from dlsaudio.asr.accumulation import accumulate_gradients  # Whisper's stack, on demand
    from dlsaudio.asr.loss import whisper_logits

    logits_fn = whisper_logits if logits_fn is None else logits_fn
    peaks = []
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def counted(model, batch):
        storages = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in weights:  # weights are kept anyway
                storages[storage.data_ptr()] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            logits = logits_fn(model, batch)
        peaks.append(sum(storages.values()) / 2**20)
        return logits

    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    accumulate_gradients(model, window, logits_fn=counted)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result = {
        "examples": sum(len(batch["labels"]) for batch in window),
        "seconds": time.perf_counter() - started,
        "activation_mb": max(peaks),
    }
    if device.type == "cuda":
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    model.zero_grad(set_to_none=True)
    return result
