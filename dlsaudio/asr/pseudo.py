"""Pseudo-labels: transcripts of unlabelled audio by a fine-tuned model, with their confidence.

The lecture's data part: a model fine-tuned on the labelled hours transcribes audio that has no
transcripts; the transcripts it is sure of become training labels (self-training, Kahn et al.,
2020, https://arxiv.org/abs/1909.09116). The confidence used here is the mean log-probability
per token of the greedy transcript (its end token included): near 0 when every token was
likely, very negative when the decoder guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dlsaudio.asr.inference import _generated


@torch.no_grad()
def pseudo_label(
    model: Any,
    processor: Any,
    features: Sequence[torch.Tensor],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 128,
    progress: bool = False,
) -> list[tuple[str, float]]:
    """Greedy transcripts of ``features`` and the mean log-probability of their tokens.

    Args:
        model: a ``WhisperForConditionalGeneration`` (language and task from its
            ``generation_config``).
        processor: its ``WhisperProcessor``.
        features: ``(n_mels, frames)`` tensors, e.g. ``example["input_features"]``.
        batch_size: utterances per ``generate`` call.
        max_new_tokens: longest transcript in tokens.
        progress: show a tqdm bar.

    Returns:
        ``(text, mean_logprob)`` per input: the transcript without special tokens, and the
        mean over its generated tokens (up to and including ``<|endoftext|>``) of
        ``log p(token | audio, tokens before it)``.

    Raises:
        ValueError: bad ``batch_size``/``max_new_tokens``, or features the model cannot read.
    """
    eos = processor.tokenizer.eos_token_id
    out: list[tuple[str, float]] = []
    options = {"output_scores": True, "return_dict_in_generate": True}
    for result in _generated(
        model, features, batch_size, max_new_tokens, progress, "pseudo-label", **options
    ):
        scores = model.compute_transition_scores(
            result.sequences, result.scores, normalize_logits=True
        )  # (batch, new tokens): log p of each generated token
        generated = result.sequences[:, -scores.shape[1] :]
        ended = (generated == eos).int().cumsum(dim=1)
        keep = (ended == 0) | ((ended == 1) & (generated == eos))  # up to the first end token
        means = (scores * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        texts = processor.batch_decode(generated, skip_special_tokens=True)
        out += [(t.strip(), float(m)) for t, m in zip(texts, means, strict=True)]
    return out
