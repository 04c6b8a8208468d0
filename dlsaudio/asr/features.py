"""From ASR items (waveform + text) to Whisper training examples (log-mel + label ids)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torchaudio
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from dlsaudio.audio import AudioFileError


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


MAX_BAD_AUDIO = 0.01
"""``prepare_dataset`` fails when more than this share of the clips is missing, undecodable or
silent: a few such clips are normal in a crowd-sourced corpus, many mean the data is broken."""

LAZY_ABOVE = 1000
"""``prepare_dataset(lazy=None)`` keeps features in memory up to this many examples (about 1 GB
at 80 x 3000 float32 each) and computes them on access above it."""


class WhisperExamples(Dataset):
    """Prepared Whisper examples: a list-like ``torch`` Dataset (``len``, indexing, slicing).

    Eager: the examples are computed once and kept. Lazy: only the kept item indices are stored
    and each example is computed from the ASR item when it is read (in ``DataLoader`` workers
    when there are some), so a corpus of many hours fits in a Colab session.

    Attributes:
        sources: the ``source`` of each example (for
            :class:`dlsaudio.asr.sampling.SourceWeightedSampler`).
        texts: the transcript of each example.
        indices: position of each example in the ASR dataset it was made from.
    """

    def __init__(
        self,
        asr_dataset: Sequence[Mapping[str, Any]],
        processor: Any,
        indices: Sequence[int],
        texts: Sequence[str],
        sources: Sequence[str],
        examples: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        self._data = asr_dataset
        self._processor = processor
        self.indices = list(indices)
        self.texts = list(texts)
        self.sources = list(sources)
        self._examples = None if examples is None else list(examples)

    @property
    def lazy(self) -> bool:
        """True when features are computed on access."""
        return self._examples is None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self._examples is not None:
            return self._examples[i]
        try:
            return prepare_example(self._data[self.indices[i]], self._processor)
        except (FileNotFoundError, AudioFileError) as err:
            hint = (
                "; this clip's duration was known, so it was not decoded when the examples were "
                "prepared: prepare_dataset(..., check_audio=True) decodes every clip first and "
                "drops the bad ones"
            )
            if isinstance(err, AudioFileError):
                raise AudioFileError(f"{err}{hint}", err.reason) from None
            raise FileNotFoundError(f"{err}{hint}") from None

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        counts = dict(sorted(Counter(self.sources).items()))
        return f"WhisperExamples(examples={len(self)}, sources={counts}, lazy={self.lazy})"


def _audio_problem(err: Exception) -> str:
    """The report's name for why a clip could not be used."""
    return "missing" if isinstance(err, FileNotFoundError) else err.reason


def prepare_dataset(
    asr_dataset: Sequence[Mapping[str, Any]],
    processor: Any,
    max_seconds: float | None = None,
    max_label_tokens: int = 448,
    min_seconds: float = 0.1,
    progress: bool = True,
    lazy: bool | None = None,
    max_bad_audio: float = MAX_BAD_AUDIO,
    check_audio: bool = False,
    max_bad_audio_name: str = "max_bad_audio",
) -> tuple[WhisperExamples, dict[str, Any]]:
    """Turn ASR items into Whisper examples and drop those Whisper cannot learn from.

    Filters, counted separately in the report:

    * audio longer than ``max_seconds``: Whisper sees 30 s windows, the rest would be cut off
      while the label still describes it;
    * audio shorter than ``min_seconds`` (empty or broken clips);
    * empty transcripts;
    * labels (prefix + text + end token) longer than ``max_label_tokens``: the decoder has
      448 positions;
    * clips that are missing, cannot be decoded, are cut short or hold only silence (a real
      corpus has a few): counted by reason in ``report["bad_audio"]``, with the first files and
      messages in ``report["bad_audio_files"]``. More than ``max_bad_audio`` of the items
      means something is wrong with the data as a whole (clips not unpacked, a wrong folder):
      then nothing is returned and the error lists the reasons.

    Durations come from ``asr_dataset.durations`` when the dataset knows them (manifests, the
    bundled sample, Common Voice's ``clip_durations.tsv``); otherwise each item is decoded once.
    A clip whose duration is known is decoded only when its features are computed: at once
    when eager, during training when lazy (``check_audio=True`` decodes every clip here).

    Args:
        asr_dataset: a sequence of items ``{"wave", "sample_rate", "text", "source", ...}``
            (an :class:`dlsaudio.data.AsrDataset` or a list).
        processor: the model's ``WhisperProcessor``.
        max_seconds: longest audio kept; at most, and by default, the feature extractor's
            window (``chunk_length``: 30 s for Whisper).
        max_label_tokens: longest label sequence kept.
        min_seconds: shortest audio kept.
        progress: show a tqdm bar.
        lazy: compute features on access instead of now; ``None``: lazy above
            :data:`LAZY_ABOVE` kept examples.
        max_bad_audio: the largest share of items (0 to 1) that may be dropped for bad audio.
        check_audio: decode every clip now, even when its duration is known.
        max_bad_audio_name: how the caller names ``max_bad_audio`` in messages (a command
            line: ``"--max-bad-audio"``).

    Returns:
        ``(examples, report)``: a :class:`WhisperExamples` of the kept examples (see
        :func:`prepare_example`, in input order, each with its ``source``) and ``{"total",
        "kept", "too_long_audio", "too_short_audio", "empty_text", "too_long_labels",
        "bad_audio", "bad_audio_files", "kept_hours", "kept_per_source"}``. One summary line is
        printed.

    Raises:
        ValueError: for bad limits, items that are not ASR items, or more bad audio than
            ``max_bad_audio`` allows (the message gives the counts by reason and examples).
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
    if isinstance(max_bad_audio, bool) or not (
        isinstance(max_bad_audio, (int, float)) and 0 <= max_bad_audio <= 1
    ):
        raise ValueError(f"max_bad_audio={max_bad_audio!r}; expected a share between 0 and 1")

    known = None if check_audio else getattr(asr_dataset, "durations", None)
    texts = getattr(asr_dataset, "texts", None)
    sources = getattr(asr_dataset, "sources", None)
    counts = Counter()
    bad_audio: Counter = Counter()
    bad_files: list[str] = []

    def drop(err: Exception) -> None:
        bad_audio[_audio_problem(err)] += 1
        if len(bad_files) < 10:
            bad_files.append(str(err))

    kept, kept_texts, kept_sources = [], [], []
    examples: list[dict[str, Any]] = []
    seconds_of: dict[int, float] = {}
    for i in tqdm(range(len(asr_dataset)), desc="features", disable=not progress):
        item = None
        if known is not None and known[i] is not None and texts is not None:
            seconds, text = float(known[i]), texts[i]
        else:
            try:
                item = asr_dataset[i]
            except (FileNotFoundError, AudioFileError) as err:
                drop(err)
                continue
            if item.get("wave") is None:
                raise ValueError(f"item {i} has no 'wave'; expected an ASR item")
            seconds, text = len(item["wave"]) / int(item["sample_rate"]), item.get("text")
        if seconds > max_seconds:
            counts["too_long_audio"] += 1
            continue
        if seconds < min_seconds:
            counts["too_short_audio"] += 1
            continue
        if not text or not str(text).strip():
            counts["empty_text"] += 1
            continue
        if len(processor.tokenizer(text).input_ids) > max_label_tokens:
            counts["too_long_labels"] += 1
            continue
        source = sources[i] if sources is not None else None
        if source is None:
            item = asr_dataset[i] if item is None else item
            source = item.get("source", "")
        kept.append(i)
        kept_texts.append(text)
        kept_sources.append(source)
        seconds_of[i] = seconds

    lazy = len(kept) > LAZY_ABOVE if lazy is None else lazy
    if not lazy:
        usable = []
        for i, text, source in zip(kept, kept_texts, kept_sources, strict=True):
            try:
                examples.append(prepare_example(asr_dataset[i], processor))
            except (FileNotFoundError, AudioFileError) as err:
                drop(err)
                continue
            usable.append((i, text, source))
        kept, kept_texts, kept_sources = (
            (list(x) for x in zip(*usable, strict=True)) if usable else ([], [], [])
        )
    total_bad = sum(bad_audio.values())
    if total_bad > max_bad_audio * len(asr_dataset):
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(bad_audio.items()))
        raise ValueError(
            f"{total_bad} of {len(asr_dataset)} clips have bad audio ({reasons}), more than "
            f"{max_bad_audio_name}={max_bad_audio:g} of them: check that the clips are unpacked "
            f"and the data set points at them, or pass a larger {max_bad_audio_name}. First ones: "
            + "; ".join(bad_files[:3])
        )
    seconds_kept = sum(seconds_of[i] for i in kept)
    result = WhisperExamples(
        asr_dataset, processor, kept, kept_texts, kept_sources, None if lazy else examples
    )
    report = {
        "total": len(asr_dataset),
        "kept": len(kept),
        "too_long_audio": counts["too_long_audio"],
        "too_short_audio": counts["too_short_audio"],
        "empty_text": counts["empty_text"],
        "too_long_labels": counts["too_long_labels"],
        "bad_audio": dict(sorted(bad_audio.items())),
        "bad_audio_files": bad_files,
        "kept_hours": seconds_kept / 3600,
        "kept_per_source": dict(sorted(Counter(kept_sources).items())),
    }
    bad_note = (
        ", " + ", ".join(f"{n} {reason} audio" for reason, n in sorted(bad_audio.items()))
        if bad_audio
        else ""
    )
    print(
        f"kept {report['kept']}/{report['total']} examples ({seconds_kept / 60:.1f} min"
        f"{', features computed on access' if lazy else ''}); dropped: "
        f"{report['too_long_audio']} longer than {max_seconds:g} s, "
        f"{report['too_short_audio']} shorter than {min_seconds:g} s, "
        f"{report['empty_text']} without text, "
        f"{report['too_long_labels']} with more than {max_label_tokens} label tokens{bad_note}"
    )
    return result, report
