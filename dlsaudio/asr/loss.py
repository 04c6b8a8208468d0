"""The token loss of a sequence-to-sequence model, as a sum and a token count.

A mean over tokens cannot be accumulated exactly over micro-batches with different numbers of
tokens; a sum and a count can (:mod:`dlsaudio.asr.accumulation`). :func:`whisper_logits` calls
a Whisper-like model on a collated batch without letting it compute its own (mean) loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio.asr.collator import IGNORE_INDEX
from dlsaudio.asr.distributed import unwrap


def token_loss_sum(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies and the number of tokens that count.

    Args:
        logits: ``(batch, label_len, vocab)``; position ``t`` predicts ``labels[:, t]``.
        labels: ``(batch, label_len)`` token ids, ``ignore_index`` where padded.
        ignore_index: label value that marks padding.

    Returns:
        ``(loss_sum, n_tokens)``: a scalar tensor (computed in float32) and an int.

    Raises:
        ValueError: if the shapes of ``logits`` and ``labels`` do not match.
    """
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match; "
            "expected logits (batch, label_len, vocab) and labels (batch, label_len)"
        )
    loss_sum = F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=ignore_index, reduction="sum"
    )
    return loss_sum, count_tokens(labels, ignore_index)


def count_tokens(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> int:
    """Number of label tokens that are not padding."""
    return int((labels != ignore_index).sum())


def whisper_logits(model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """Logits of a Whisper-like encoder-decoder for a collated batch.

    Builds ``decoder_input_ids`` from ``labels`` the way Hugging Face does (shift right, start
    with ``decoder_start_token_id``, padding ``-100`` replaced by ``pad_token_id``) and calls
    ``model(input_features=..., decoder_input_ids=...)``. The model's own loss is not used.

    Args:
        model: a ``WhisperForConditionalGeneration`` (or DDP around one), or any module with
            ``config.pad_token_id``, ``config.decoder_start_token_id`` and the same call.
        batch: ``{"input_features": (batch, n_mels, frames), "labels": (batch, label_len)}``.

    Returns:
        ``(batch, label_len, vocab)`` logits.
    """
    config = unwrap(model).config
    labels = batch["labels"]
    decoder_input_ids = labels.new_full(labels.shape, config.pad_token_id)
    decoder_input_ids[:, 1:] = labels[:, :-1]
    decoder_input_ids[:, 0] = config.decoder_start_token_id
    decoder_input_ids = decoder_input_ids.masked_fill(
        decoder_input_ids == IGNORE_INDEX, config.pad_token_id
    )
    return model(input_features=batch["input_features"], decoder_input_ids=decoder_input_ids).logits
