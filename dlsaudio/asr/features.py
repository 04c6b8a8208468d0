"""From ASR items (waveform + text) to Whisper training examples (log-mel + label ids)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torchaudio
from tqdm.auto import tqdm


def prepare_example(item: Mapping[str, Any], processor: Any) -> dict[str, Any]:
    """One ASR item -> one Whisper example, with the model's own feature extractor and tokenizer.

    Args:
        item: ``{"wave": (time,) float tensor, "sample_rate": int, "text": str, ...}``
            (the item format of :mod:`dlsaudio.data`).
        processor: the model's ``WhisperProcessor``; its feature extractor fixes the number of
            mel bins (80 or 128) and the 30 s window, its tokenizer the prefix tokens
            (``<|startoftranscript|> <|kk|> <|transcribe|> <|notimestamps|>``).

    Returns:
        ``{"input_features": (n_mels, 3000) float tensor, "labels": list of ids, "text",
        "source", "seconds"}``.

    Raises:
        ValueError: if the item has no ``wave``/``text`` or the wave is not ``(time,)``.
    """
    for key in ("wave", "sample_rate", "text"):
        if item.get(key) is None:
            raise ValueError(f"item {item.get('path', '')!r} has no {key!r}; expected an ASR item")
    wave = torch.as_tensor(item["wave"], dtype=torch.float32)
    if wave.ndim != 1:
        raise ValueError(
            f"item {item.get('path', '')!r}: wave has shape {tuple(wave.shape)}, expected (time,)"
        )
    extractor = processor.feature_extractor
    sample_rate = int(item["sample_rate"])
    if sample_rate != extractor.sampling_rate:
        wave = torchaudio.functional.resample(wave, sample_rate, extractor.sampling_rate)
    features = extractor(
        wave.numpy(), sampling_rate=extractor.sampling_rate, return_tensors="pt"
    ).input_features[0]  # (n_mels, frames)
    return {
        "input_features": features,
        "labels": processor.tokenizer(item["text"]).input_ids,
        "text": item["text"],
        "source": item.get("source", ""),
        "seconds": wave.numel() / extractor.sampling_rate,
    }


def prepare_dataset(
    asr_dataset: Iterable[Mapping[str, Any]],
    processor: Any,
    max_seconds: float | None = None,
    max_label_tokens: int = 448,
    min_seconds: float = 0.1,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Turn ASR items into Whisper examples and drop those Whisper cannot learn from.

    Filters, counted separately in the report:

    * audio longer than ``max_seconds``: Whisper sees 30 s windows, the rest would be cut off
      while the label still describes it;
    * audio shorter than ``min_seconds`` (empty or broken clips);
    * empty transcripts;
    * labels (prefix + text + end token) longer than ``max_label_tokens``: the decoder has
      448 positions.

    Args:
        asr_dataset: items ``{"wave", "sample_rate", "text", "source", ...}``.
        processor: the model's ``WhisperProcessor``.
        max_seconds: longest audio kept; at most, and by default, the feature extractor's
            window (``chunk_length``: 30 s for Whisper).
        max_label_tokens: longest label sequence kept.
        min_seconds: shortest audio kept.
        progress: show a tqdm bar.

    Returns:
        ``(examples, report)``: the kept examples (see :func:`prepare_example`, in input
        order, each with its ``source``) and ``{"total", "kept", "too_long_audio",
        "too_short_audio", "empty_text", "too_long_labels", "kept_hours",
        "kept_per_source"}``. One summary line is printed.

    Raises:
        ValueError: for bad limits, or items that are not ASR items.
    """
    window = processor.feature_extractor.chunk_length
    max_seconds = window if max_seconds is None else max_seconds
    if not 0 < max_seconds <= window:
        raise ValueError(
            f"max_seconds={max_seconds!r}; expected 0 < max_seconds <= {window} (the model's window in seconds)"
        )
    if not 0 <= min_seconds < max_seconds:
        raise ValueError(
            f"min_seconds={min_seconds!r}; expected 0 <= min_seconds < max_seconds={max_seconds}"
        )
    if not isinstance(max_label_tokens, int) or not 0 < max_label_tokens <= 448:
        raise ValueError(
            f"max_label_tokens={max_label_tokens!r}; expected an integer in 1..448 (the decoder's positions)"
        )

    counts = Counter()
    kept: list[dict[str, Any]] = []
    seconds_kept = 0.0
    items = tqdm(asr_dataset, desc="features", disable=not progress)
    for item in items:
        counts["total"] += 1
        if item.get("wave") is None:
            raise ValueError(f"item {counts['total'] - 1} has no 'wave'; expected an ASR item")
        seconds = len(item["wave"]) / int(item["sample_rate"])
        text = item.get("text")
        if seconds > max_seconds:
            counts["too_long_audio"] += 1
            continue
        if seconds < min_seconds:
            counts["too_short_audio"] += 1
            continue
        if not text or not str(text).strip():
            counts["empty_text"] += 1
            continue
        example = prepare_example(item, processor)
        if len(example["labels"]) > max_label_tokens:
            counts["too_long_labels"] += 1
            continue
        kept.append(example)
        seconds_kept += example["seconds"]

    per_source = Counter(e["source"] for e in kept)
    report = {
        "total": counts["total"],
        "kept": len(kept),
        "too_long_audio": counts["too_long_audio"],
        "too_short_audio": counts["too_short_audio"],
        "empty_text": counts["empty_text"],
        "too_long_labels": counts["too_long_labels"],
        "kept_hours": seconds_kept / 3600,
        "kept_per_source": dict(sorted(per_source.items())),
    }
    print(
        f"kept {report['kept']}/{report['total']} examples ({seconds_kept / 60:.1f} min); dropped: "
        f"{report['too_long_audio']} longer than {max_seconds:g} s, "
        f"{report['too_short_audio']} shorter than {min_seconds:g} s, "
        f"{report['empty_text']} without text, "
        f"{report['too_long_labels']} with more than {max_label_tokens} label tokens"
    )
    return kept, report
