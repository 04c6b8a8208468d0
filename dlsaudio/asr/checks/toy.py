"""The tiny Whisper-like model the module-11 checks test on, its examples and their batches."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.whisper.modeling_whisper import shift_tokens_right

from dlsaudio.asr.train import IGNORE_INDEX


class ToySeq2Seq(nn.Module):
    """A tiny encoder-decoder with Whisper's call signature, for tests and self-checks.

    Called like Hugging Face's Whisper: ``model(input_features=(batch, n_mels, frames),
    decoder_input_ids=(batch, label_len))``, or with ``labels=(batch, label_len)`` instead of
    (or besides) ``decoder_input_ids``. Returns an object with ``.logits``
    ``(batch, label_len, vocab)`` and, when labels are given, ``.loss``: the mean token loss of
    this batch, as Whisper's ``forward`` returns it. The decoder is a GRU, so position ``t``
    only sees tokens up to ``t``: right-padding a batch does not change the logits of real
    tokens, as in Whisper's causal decoder.
    """

    def __init__(
        self, n_mels: int = 8, vocab: int = 24, dim: int = 16, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.config = SimpleNamespace(pad_token_id=0, decoder_start_token_id=1, vocab_size=vocab)
        self.encoder = nn.Linear(n_mels, dim)
        self.embed = nn.Embedding(vocab, dim)
        self.decoder = nn.GRU(dim, dim, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, vocab)

    def forward(
        self,
        input_features: torch.Tensor,
        decoder_input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SimpleNamespace:
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("pass decoder_input_ids or labels")
            decoder_input_ids = shift_tokens_right(
                labels, self.config.pad_token_id, self.config.decoder_start_token_id
            )
        context = self.encoder(input_features.mean(-1))  # (batch, dim)
        hidden = self.embed(decoder_input_ids) + context[:, None]  # (batch, label_len, dim)
        out, _ = self.decoder(self.dropout(hidden))
        logits = self.head(out)  # (batch, label_len, vocab)
        loss = None
        if labels is not None:  # Whisper's loss: the mean over this batch's own tokens
            loss = F.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX
            )
        return SimpleNamespace(logits=logits, loss=loss)


def toy_items(
    n: int, *, n_mels: int = 8, frames: int = 12, vocab: int = 24, max_len: int = 9, seed: int = 0
) -> list[dict]:
    """``n`` examples ``{"input_features": (n_mels, frames), "labels": (label_len,)}`` of varied length."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        length = int(torch.randint(1, max_len + 1, (1,), generator=g))
        items.append(
            {
                "input_features": torch.randn(n_mels, frames, generator=g),
                "labels": torch.randint(2, vocab, (length,), generator=g),
            }
        )
    return items


def toy_collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack features, right-pad labels with -100."""
    length = max(len(item["labels"]) for item in items)
    labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
    for row, item in enumerate(items):
        labels[row, : len(item["labels"])] = item["labels"]
    return {
        "input_features": torch.stack([item["input_features"] for item in items]),
        "labels": labels,
    }


def _window(items: list[dict], k: int) -> list[dict[str, torch.Tensor]]:
    """``k`` micro-batches of unequal token counts: short labels first, long ones last."""
    items = sorted(items, key=lambda item: len(item["labels"]))
    micro = len(items) // k
    return [toy_collate(items[i * micro : (i + 1) * micro]) for i in range(k)]


def _concat(window: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One big batch made of every example of the window (labels re-padded)."""
    length = max(batch["labels"].shape[1] for batch in window)
    labels = [
        F.pad(b["labels"], (0, length - b["labels"].shape[1]), value=IGNORE_INDEX) for b in window
    ]
    return {
        "input_features": torch.cat([b["input_features"] for b in window]),
        "labels": torch.cat(labels),
    }
