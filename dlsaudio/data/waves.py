"""Fixed-length waves in memory: what the SSL training loop, probes and plots read.

:class:`WaveCache` decodes every clip of a data set once and pads or crops it to one length,
so batches need no further padding and no epoch decodes a file twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from dlsaudio.audio import pad_crop

__all__ = ["ALIGNMENTS", "WaveCache", "as_cache"]

ALIGNMENTS = ("center", "start")


DEFAULT_CLIP_SAMPLES = 16000
"""Samples per clip when none are given: 1 s at 16 kHz, enough for a spoken digit."""


class WaveCache(Dataset):
    """Fixed-length copies of a data set's waves, held in memory.

    Clips shorter than ``length`` are zero-padded, longer ones cropped. With
    ``align="center"`` (the default) a short clip sits in the middle with silence on both sides
    and a long one keeps its middle; with ``"start"`` the padding goes at the end and the crop
    keeps the beginning. Centring keeps the end of the padding from marking the clip's length
    at a fixed place, which on real recordings (clips of 0.14 to 2.3 s) a model otherwise uses.

    Args:
        dataset: a sequence of items ``{"wave": (time,), "label": int | None, "speaker": str, ...}``.
        length: samples per clip (16000 = 1 s at 16 kHz, enough for a spoken digit).
        align: ``"center"`` or ``"start"``.

    Attributes:
        waves: ``(clips, length)`` float tensor.
        lengths: ``(clips,)`` samples of real audio in each row.
        labels: ``(clips,)`` long tensor, or ``None`` when an item has no integer label.
        speakers: speaker of each clip.

    Raises:
        ValueError: ``length`` not a positive int, an unknown ``align``, or an empty data set.
    """

    def __init__(
        self, dataset: Sequence[dict], length: int = DEFAULT_CLIP_SAMPLES, align: str = "center"
    ) -> None:
        if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
            raise ValueError(f"length must be a positive number of samples, got {length!r}")
        if align not in ALIGNMENTS:
            raise ValueError(f"align={align!r} is unknown; choose one of {ALIGNMENTS}")
        if len(dataset) == 0:
            raise ValueError("the data set is empty; check the data source and the split")
        items = [dataset[i] for i in range(len(dataset))]
        self.length = length
        self.align = align
        self.waves = torch.stack([_fit(torch.as_tensor(it["wave"]), length, align) for it in items])
        self.lengths = torch.tensor([min(len(it["wave"]), length) for it in items])
        labels = [it.get("label") for it in items]
        self.labels = torch.tensor(labels) if all(isinstance(v, int) for v in labels) else None
        self.speakers = [str(it.get("speaker", "")) for it in items]

    def __len__(self) -> int:
        return self.waves.shape[0]

    def __getitem__(self, i: int) -> dict:
        item = {"wave": self.waves[i], "index": i}
        if self.labels is not None:
            item["label"] = int(self.labels[i])
        return item

    def unpadded(self, i: int) -> torch.Tensor:
        """Clip ``i`` without its padding: the ``(lengths[i],)`` samples of real audio (a clip
        longer than the cache stays cropped)."""
        n = int(self.lengths[i])
        start = (self.length - n) // 2 if self.align == "center" else 0
        return self.waves[i, start : start + n]

    def subset(self, indices: Sequence[int]) -> WaveCache:
        """The given rows as a new cache (no decoding; the rows are copied)."""
        index = torch.as_tensor(list(indices), dtype=torch.long)
        if index.numel() == 0:
            raise ValueError("subset of no clips; pass at least one index")
        if int(index.min()) < -len(self) or int(index.max()) >= len(self):
            raise ValueError(f"subset indices must lie in [0, {len(self)}), got {index.tolist()}")
        new = WaveCache.__new__(WaveCache)
        new.length, new.align = self.length, self.align
        new.waves, new.lengths = self.waves[index], self.lengths[index]
        new.labels = None if self.labels is None else self.labels[index]
        new.speakers = [self.speakers[i] for i in index.tolist()]
        return new

    def __repr__(self) -> str:
        return (
            f"WaveCache(clips={len(self)}, length={self.length}, align={self.align!r}, "
            f"speakers={len(set(self.speakers))})"
        )


def _fit(wave: torch.Tensor, length: int, align: str) -> torch.Tensor:
    if align == "start" or wave.shape[-1] == length:
        return pad_crop(wave, length)
    excess = wave.shape[-1] - length
    if excess > 0:  # keep the middle
        return wave[..., excess // 2 : excess // 2 + length]
    left = -excess // 2
    return torch.nn.functional.pad(wave, (left, -excess - left))


def as_cache(dataset, length: int | None = None, align: str = "center") -> WaveCache:
    """``dataset`` itself if it is a :class:`WaveCache`, else a new cache of it.

    Args:
        dataset: a :class:`WaveCache` or a sequence of items with ``"wave"``.
        length: samples per clip; ``None`` keeps a cache's own length (:data:`DEFAULT_CLIP_SAMPLES`
            for a new cache).
        align: padding of a new cache (see :class:`WaveCache`).

    Raises:
        ValueError: ``dataset`` is a cache of another length than ``length`` (its clips were
            already padded or cropped, so they cannot be cut again without loss).
    """
    if isinstance(dataset, WaveCache):
        if length is not None and length != dataset.length:
            raise ValueError(
                f"this WaveCache holds clips of {dataset.length} samples, but {length} were "
                f"asked for; build WaveCache(dataset, {length}) from the data set instead"
            )
        return dataset
    return WaveCache(dataset, DEFAULT_CLIP_SAMPLES if length is None else length, align)
