"""Batching Whisper examples: log-mel features and label token ids, padded separately."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100
"""Label value that ``torch.nn.functional.cross_entropy`` (and Whisper's loss) skips."""


@dataclass
class DataCollatorSpeechSeq2SeqWithPadding:
    """Collate ``{"input_features", "labels"}`` examples into a Whisper training batch.

    Features and labels are padded separately, each with its own padding routine (the feature
    extractor's and the tokenizer's). Label padding becomes ``-100`` where the tokenizer's
    attention mask is 0: Whisper's pad token is ``<|endoftext|>``, the same id as the real end
    of each transcript, so comparing with the pad id would also hide the end token the model
    must learn to emit.

    Labels made by the Whisper tokenizer start with ``<|startoftranscript|>``; the model prepends
    ``decoder_start_token_id`` itself when it shifts labels right, so that first token is
    dropped, but only when EVERY row starts with it. The widely copied version compares with
    ``bos_token_id``, which for Whisper is ``<|endoftext|>``: it never matches and the model
    is trained on ``<|startoftranscript|> <|startoftranscript|> ...``.

    Attributes:
        processor: a ``WhisperProcessor`` (feature extractor + tokenizer).
        decoder_start_token_id: ``model.config.decoder_start_token_id``
            (``<|startoftranscript|>``, 50258 for the multilingual models).

        return_source: also return ``"source"`` (a list of strings, one per row) when every
            example has one. Off by default, so ``model(**batch)`` works on the batch as is.

    Returns (on call):
        ``{"input_features": (batch, n_mels, frames) float, "labels": (batch, tokens) long}``.

    Raises (on call):
        ValueError: for an empty list or examples without ``input_features`` or ``labels``.
    """

    processor: Any
    decoder_start_token_id: int
    return_source: bool = False

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if len(features) == 0:
            raise ValueError("features is empty; expected at least one example")
        for i, f in enumerate(features):
            missing = {"input_features", "labels"} - set(f)
            if missing:
                raise ValueError(
                    f"example {i} has no {sorted(missing)} (keys: {sorted(f)}); "
                    f"make examples with dlsaudio.asr.prepare_dataset"
                )

        inputs = [{"input_features": f["input_features"]} for f in features]
        batch = self.processor.feature_extractor.pad(inputs, return_tensors="pt")

        label_inputs = [{"input_ids": _as_list(f["labels"])} for f in features]
        labels_batch = self.processor.tokenizer.pad(label_inputs, return_tensors="pt")
        labels = labels_batch["input_ids"].masked_fill(
            labels_batch["attention_mask"].ne(1), IGNORE_INDEX
        )

        if labels.shape[1] > 0 and bool((labels[:, 0] == self.decoder_start_token_id).all()):
            labels = labels[:, 1:]  # the model prepends decoder_start_token_id when shifting
        batch["labels"] = labels.long()

        sources = [f.get("source") for f in features]
        if self.return_source and all(isinstance(s, str) for s in sources):
            batch["source"] = sources
        return dict(batch)


def _as_list(labels: Any) -> list[int]:
    if isinstance(labels, torch.Tensor):
        return labels.tolist()
    return [int(t) for t in labels]
