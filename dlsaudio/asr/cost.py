"""What one accumulation window costs: time, and the activation memory kept for backward."""

from __future__ import annotations

import time

import torch

from dlsaudio.asr.accumulation import LogitsFn, accumulate_gradients
from dlsaudio.asr.loss import whisper_logits


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
