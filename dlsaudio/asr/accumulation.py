"""Exact gradient accumulation: one optimizer step's gradient from several micro-batches.

The key move: one optimizer step covers a *window* of ``accum_steps`` micro-batches, and the
loss whose gradient is taken is

    sum of token losses over the whole window / number of non-padding label tokens in the window

which is exactly the loss of one big batch made of the concatenated micro-batches. Hugging
Face's Whisper ``forward`` returns the mean token loss of its own micro-batch; averaging those
means over the window ("mean of means", :func:`accumulate_gradients` with
``normalization="mean_of_means"``) weights a token of a short-label micro-batch more than a
token of a long-label one, so it is *not* the full-batch gradient when label lengths differ
(the gradient-accumulation finding of October 2024, https://huggingface.co/blog/gradient_accumulation).

Under DDP (``torchrun``) every rank holds its own window. DDP averages gradients over ranks,
so each rank divides its token-loss sum by the *global* window token count (all-reduced) and
multiplies by ``world_size``: the average of the ranks' gradients is then the gradient of the
global window. All but the last micro-step run under ``model.no_sync()``, so gradients are
communicated once per optimizer step.

Glossary: ``accum_steps`` is the number of micro-batches per optimizer step; the effective
batch is micro-batch x ``accum_steps`` x world size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dlsaudio.asr.collator import IGNORE_INDEX
from dlsaudio.asr.distributed import DistEnv, device_of
from dlsaudio.asr.loss import count_tokens, token_loss_sum, whisper_logits

NORMALIZATIONS = ("window", "mean_of_means")
"""``window``: exact (divide by the window's token count); ``mean_of_means``: for comparison."""

LogitsFn = Callable[[nn.Module, Mapping[str, Any]], torch.Tensor]


def check_normalization(normalization: str) -> None:
    """Check a normalization name.

    Raises:
        ValueError: ``normalization`` is not one of :data:`NORMALIZATIONS`.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r}; expected one of {NORMALIZATIONS}")


def accumulate_gradients(
    model: nn.Module,
    window: list[Mapping[str, Any]],
    *,
    logits_fn: LogitsFn = whisper_logits,
    normalization: str = "window",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    scale_loss: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
    env: DistEnv | None = None,
) -> tuple[float, int]:
    """Backpropagate one accumulation window into ``.grad`` (does not step or zero).

    Args:
        model: the model (DDP-wrapped or not).
        window: ``accum_steps`` collated micro-batches, each with ``labels`` ``(batch, label_len)``.
        logits_fn: ``(model, batch) -> (batch, label_len, vocab)`` logits.
        normalization: ``"window"`` divides every micro-batch's token-loss sum by the token
            count of the whole window (exact: equals the full-batch gradient);
            ``"mean_of_means"`` divides by the micro-batch's own token count and by
            ``accum_steps``, like averaging Whisper's per-micro-batch losses (not exact; for
            comparison only).
        autocast: context manager factory for the forward pass (mixed precision).
        scale_loss: applied to each micro-batch loss before ``backward`` (a GradScaler's
            ``scale``).
        env: the processes of the run; default :meth:`DistEnv.current` (the process group
            this process has joined, or this process alone).

    Returns:
        ``(mean token loss over the window, number of tokens)``; under DDP both are global.

    Raises:
        ValueError: unknown ``normalization``, an empty window, or a window without tokens.
    """
    check_normalization(normalization)
    if not window:
        raise ValueError("window is empty; pass accum_steps >= 1 micro-batches")
    env = DistEnv.current(device_of(model)) if env is None else env
    counts = torch.tensor([count_tokens(batch["labels"]) for batch in window], dtype=torch.float64)
    total = env.all_reduce(counts.sum())  # every rank divides by the same, global, count
    if total <= 0:
        raise ValueError(f"the window has no label tokens (all labels are {IGNORE_INDEX})")
    loss_sum_total = torch.zeros((), dtype=torch.float64)
    ddp = isinstance(model, DistributedDataParallel)
    for i, batch in enumerate(window):
        last = i == len(window) - 1
        sync = contextlib.nullcontext() if (last or not ddp) else model.no_sync()
        with sync:
            with autocast():
                logits = logits_fn(model, batch)  # (batch, label_len, vocab)
            loss_sum, n_tokens = token_loss_sum(logits, batch["labels"])
            if normalization == "window":
                # DDP averages over ranks: multiply by world_size to get the global sum / tokens
                loss = loss_sum * (env.world_size / float(total))
            else:
                loss = loss_sum / max(n_tokens, 1) / len(window)
            scale_loss(loss).backward()
        loss_sum_total += loss_sum.detach().double().cpu()
    loss_sum_total = env.all_reduce(loss_sum_total)
    return float(loss_sum_total / total), int(total)
