"""The base of the package's data sets: audio decoded on first access and kept in memory.

A data set here is a list of per-item columns (paths, texts, labels, ...) over audio that is
decoded lazily. :class:`CachedAudioDataset` holds what every data set does the same way: the
cache of decoded waves, shared by subsets, the index check, :meth:`~CachedAudioDataset.preload`
and :meth:`~CachedAudioDataset.subset`. A subclass names its per-item columns and says how to
decode item ``index`` and what else its items hold.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from collections.abc import Hashable, Sequence, Sized
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm


class CachedAudioDataset(Dataset):
    """Items ``{"wave", "sample_rate", ...}`` with waves decoded once and kept in memory.

    Subclasses set :attr:`columns` (the names of their per-item lists) and implement
    :meth:`_decode`, :meth:`_cache_key` and :meth:`_fields`.

    Args:
        sample_rate: the rate every wave is resampled to.
        cache: keep decoded waves in memory (subsets share the cache).

    Raises:
        ValueError: ``sample_rate`` is not positive.
    """

    columns: ClassVar[tuple[str, ...]] = ()
    """Per-item lists, all of the data set's length; :meth:`subset` selects from each."""

    preload_desc: ClassVar[str] = "loading audio"

    def __init__(self, *, sample_rate: int, cache: bool) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
        self.sample_rate = sample_rate
        self._cache: dict[Hashable, torch.Tensor] | None = {} if cache else None
        self.disk_cache: Path | None = None

    def with_disk_cache(self, folder: str | Path):
        """Keep decoded waves in ``folder`` too, for later epochs, processes and sessions.

        A wave is decoded once and saved as a float32 ``.npy`` file (64 KB per second at 16 kHz),
        written to a temporary name and renamed, so data-loader workers can fill the cache at
        once and a crash never leaves a partial file. An item whose audio has no stable identity
        on disk (see :meth:`_disk_id`) is decoded as before. On Colab, put the folder on Google
        Drive to reuse it in the next session. Returns ``self``.
        """
        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        self.disk_cache = folder
        return self

    def _disk_id(self, index: int) -> str | None:
        """What identifies item ``index``'s decoded wave across sessions, or None (not cached)."""
        return None

    def _disk_file(self, index: int) -> Path | None:
        if self.disk_cache is None:
            return None
        ident = self._disk_id(index)
        if ident is None:
            return None
        digest = hashlib.sha1(f"{ident}|{self.sample_rate}".encode()).hexdigest()
        return self.disk_cache / digest[:2] / f"{digest}.npy"

    def _decode_cached(self, index: int) -> torch.Tensor:
        """:meth:`_decode` through the disk cache when there is one."""
        file = self._disk_file(index)
        if file is not None and file.is_file():
            return torch.from_numpy(np.load(file))
        wave = self._decode(index)
        if file is not None:
            file.parent.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=file.parent, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                np.save(out, wave.numpy())
            os.replace(temporary, file)
        return wave

    @staticmethod
    def check_lengths(**columns: Sized) -> None:
        """Check that the constructor's per-item arguments have one entry per item.

        Raises:
            ValueError: they differ in length (the message names each with its length), or one
                is a string, which would be read as one item per character.
        """
        for name, values in columns.items():
            if isinstance(values, (str, bytes)):
                raise ValueError(
                    f"{name} must hold one entry per item (a list), got the "
                    f"{type(values).__name__} {values!r:.60}, which would be read as one item "
                    "per character"
                )
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
            raise ValueError(f"{', '.join(lengths)} must have one entry per item, got {shown}")

    def _decode(self, index: int) -> torch.Tensor:
        """The ``(time,)`` wave of item ``index`` at :attr:`sample_rate`, read from its source."""
        raise NotImplementedError

    def _cache_key(self, index: int) -> Hashable:
        """What identifies item ``index``'s audio, the same in every subset."""
        raise NotImplementedError

    def _fields(self, index: int) -> dict[str, Any]:
        """The item's other fields: ``label``, ``text``, ``speaker``, ``source``, ``path``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(getattr(self, self.columns[0]))

    def load_wave(self, index: int) -> torch.Tensor:
        """The ``(time,)`` waveform of item ``index``, from the cache when possible."""
        key = self._cache_key(index)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        wave = self._decode_cached(index)
        if self._cache is not None:
            self._cache[key] = wave
        return wave

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} items")
        index = index % len(self)
        return {
            "wave": self.load_wave(index),
            "sample_rate": self.sample_rate,
            **self._fields(index),
        }

    def preload(self, progress: bool = True):
        """Decode every item now (with a progress bar) and return ``self``."""
        for i in tqdm(range(len(self)), desc=self.preload_desc, disable=not progress):
            self.load_wave(i)
        return self

    def subset(self, indices: Sequence[int]):
        """A data set of the given items (in that order), sharing this one's audio and cache."""
        indices = [int(i) for i in indices]
        out = copy.copy(self)
        for name in self.columns:
            column = getattr(self, name)
            setattr(out, name, [column[i] for i in indices])
        return out
