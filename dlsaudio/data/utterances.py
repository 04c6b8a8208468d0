"""The ASR data set: utterances with transcripts over audio files or encoded bytes.

:class:`AsrDataset` is what every ASR loader of :mod:`dlsaudio.data.asr` returns;
:func:`concat_asr` joins data sets from several sources into one.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import pandas as pd
import torch

from dlsaudio.audio_io import _decode, load_audio
from dlsaudio.data.base import CachedAudioDataset

__all__ = ["AsrDataset", "DatasetUnavailableError", "concat_asr"]


class DatasetUnavailableError(RuntimeError):
    """A data set cannot be reached or no longer exists where it is looked for."""


def _load_bytes(data: bytes, name: str, sample_rate: int) -> torch.Tensor:
    """Decode encoded audio bytes with the checks of :func:`dlsaudio.audio.load_audio`."""
    return _decode(io.BytesIO(data), name, sample_rate)


class AsrDataset(CachedAudioDataset):
    """Utterances as items ``{"wave", "sample_rate", "label": None, "text", "speaker", "source", "path"}``.

    Attributes:
        texts: transcript of each item.
        sources: source name of each item (for :class:`dlsaudio.asr.sampling.SourceWeightedSampler`).
        speakers: speaker id of each item (``""`` when unknown).
        paths: file (or ``NAME[row]`` for in-memory audio) of each item.
        durations: seconds of each item when known without decoding, else None.

    Raises:
        ValueError: the per-item arguments differ in length, or ``sample_rate`` is not positive.
    """

    columns = ("texts", "sources", "speakers", "paths", "durations", "_index")

    def __init__(
        self,
        audio: Sequence,
        texts: Sequence[str],
        sources: Sequence[str],
        speakers: Sequence[str] | None = None,
        *,
        names: Sequence[str] | None = None,
        durations: Sequence[float | None] | None = None,
        sample_rate: int = 16000,
        cache: bool = True,
    ) -> None:
        n = len(audio)
        speakers = [""] * n if speakers is None else list(speakers)
        durations = [None] * n if durations is None else list(durations)
        names = [f"audio[{i}]" for i in range(n)] if names is None else list(names)
        given = {"audio": audio, "texts": texts, "sources": sources, "speakers": speakers}
        self.check_lengths(**given, names=names, durations=durations)
        super().__init__(sample_rate=sample_rate, cache=cache)
        self._audio = audio
        self._index = list(range(n))  # position of each item's audio in self._audio
        self.texts = [str(t) for t in texts]
        self.sources = [str(s) for s in sources]
        self.speakers = [str(s) for s in speakers]
        self.paths = [str(p) for p in names]
        self.durations = durations

    def _cache_key(self, index: int) -> int:
        return self._index[index]

    def _disk_id(self, index: int) -> str | None:
        """A file's path, size and modification time; in-memory audio is not kept on disk."""
        ref = self._audio[self._index[index]]
        if isinstance(ref, dict) or not os.path.isfile(ref):
            return None  # a missing file is left to the decoder's error
        stat = os.stat(ref)
        return f"{os.path.abspath(ref)}|{stat.st_size}|{stat.st_mtime_ns}"

    def _decode(self, index: int) -> torch.Tensor:
        ref = self._audio[self._index[index]]
        if not isinstance(ref, dict):
            return load_audio(ref, self.sample_rate)
        if ref.get("bytes"):
            return _load_bytes(ref["bytes"], self.paths[index], self.sample_rate)
        if ref.get("path"):
            return load_audio(ref["path"], self.sample_rate)
        raise ValueError(f"{self.paths[index]}: the audio cell has neither bytes nor a path")

    def _fields(self, index: int) -> dict:
        return {
            "label": None,
            "text": self.texts[index],
            "speaker": self.speakers[index],
            "source": self.sources[index],
            "path": self.paths[index],
        }

    def with_source(self, name: str) -> AsrDataset:
        """A copy in which every item's ``source`` is ``name``."""
        out = self.subset(range(len(self)))
        out.sources = [name] * len(out)
        return out

    def __repr__(self) -> str:
        counts = pd.Series(self.sources, dtype=object).value_counts().to_dict()
        hours = self.hours()
        shown = "" if hours is None else f", hours={hours:.2f}"
        return f"AsrDataset(items={len(self)}, sources={counts}{shown}, sample_rate={self.sample_rate})"

    def hours(self) -> float | None:
        """Hours of audio, when every item's duration is known without decoding, else None."""
        if not self.durations or any(d is None for d in self.durations):
            return None
        return sum(self.durations) / 3600


def concat_asr(*datasets: AsrDataset) -> AsrDataset:
    """Join data sets (for example Common Voice and the synthetic sample) into one.

    Raises:
        ValueError: no data set given, or their sample rates differ.
    """
    if not datasets:
        raise ValueError("concat_asr needs at least one AsrDataset")
    rates = {d.sample_rate for d in datasets}
    if len(rates) != 1:
        raise ValueError(f"all data sets must have the same sample_rate, got {sorted(rates)}")
    refs = [(d, i) for d in datasets for i in range(len(d))]
    audio = [d._audio[d._index[i]] for d, i in refs]
    return AsrDataset(
        audio,
        [t for d in datasets for t in d.texts],
        [s for d in datasets for s in d.sources],
        [s for d in datasets for s in d.speakers],
        names=[p for d in datasets for p in d.paths],
        durations=[x for d in datasets for x in d.durations],
        sample_rate=rates.pop(),
        cache=all(d._cache is not None for d in datasets),
    )
