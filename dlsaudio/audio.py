"""Audio I/O and features.

Shapes used throughout the package: a single ``wave`` is ``(time,)``, a batch is
``(batch, time)``; a log-mel spectrogram is ``(n_mels, frames)`` or ``(batch, n_mels, frames)``.

Files are read by :mod:`dlsaudio.audio_io` (:func:`load_audio`, :func:`trim_silence`,
:class:`AudioFileError`, importable from here): soundfile decodes, torchaudio resamples, and
bad files raise errors that name the file and the problem. This module pads, crops and
batches waves and computes log-mel spectrograms (mel filterbanks through torchaudio).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from functools import lru_cache

import torch
import torchaudio

from dlsaudio.audio_io import (  # noqa: F401  (re-exported: notebooks read files from here)
    MAX_PEAK,
    SUPPORTED_EXTENSIONS,
    AudioFileError,
    load_audio,
    trim_silence,
)


def _check_float_wave(wave: torch.Tensor, what: str) -> None:
    """Refuse integer samples: waves here are floats in [-1, 1], as :func:`load_audio` returns."""
    if not (wave.is_floating_point() or wave.is_complex()):
        raise ValueError(
            f"{what} holds {wave.dtype} samples; waves are floats in [-1, 1] (load_audio returns "
            "them): convert 16-bit PCM with wave.float() / 32768"
        )


def pad_crop(
    wave: torch.Tensor,
    length: int,
    *,
    random_crop: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Zero-pad at the end or crop a waveform to exactly ``length`` samples.

    Args:
        wave: ``(..., time)`` waveform.
        length: the number of samples wanted.
        random_crop: crop at a random offset (training) instead of the start (evaluation).
        generator: the random generator for the offset.

    Returns:
        ``(..., length)`` waveform.

    Raises:
        ValueError: ``length`` is not a positive whole number.
    """
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length <= 0:
        raise ValueError(f"length must be a positive whole number of samples, got {length!r}")
    time = wave.shape[-1]
    if time >= length:
        start = 0
        if random_crop and time > length:
            start = int(torch.randint(0, time - length + 1, (1,), generator=generator))
        return wave[..., start : start + length]
    return torch.nn.functional.pad(wave, (0, length - time))


def collate_waves(batch: Sequence[torch.Tensor | Mapping], max_length: int | None = None) -> dict:
    """Pad a list of ``(time,)`` waveforms, or of items with a ``"wave"`` key, into one batch.

    Args:
        batch: waveforms or item dicts (see :mod:`dlsaudio.data`); other keys of the items are
            gathered into lists (or a tensor for integer labels).
        max_length: crop every waveform to at most this many samples; None keeps them whole.

    Returns:
        A dict with ``wave`` ``(batch, time)``, ``lengths`` ``(batch,)`` and ``mask``
        ``(batch, time)`` (True on real samples), plus the other item fields.

    Raises:
        ValueError: an empty batch, an item without ``wave``, not ``(time,)``, without samples
            or of integer samples, or a ``max_length`` that is not a positive integer.
    """
    if len(batch) == 0:
        raise ValueError("collate_waves got an empty batch")
    if max_length is not None and (
        isinstance(max_length, bool)
        or not isinstance(max_length, numbers.Integral)
        or max_length < 1
    ):
        raise ValueError(
            f"max_length must be a positive number of samples or None, got {max_length!r}"
        )
    items = [b if isinstance(b, Mapping) else {"wave": b} for b in batch]
    waves = []
    for i, item in enumerate(items):
        if "wave" not in item:
            raise ValueError(f"item {i} has no 'wave' key; keys are {sorted(item)}")
        w = torch.as_tensor(item["wave"])
        if w.ndim != 1:
            raise ValueError(f"item {i}: expected a (time,) waveform, got shape {tuple(w.shape)}")
        _check_float_wave(w, f"item {i}")
        if w.numel() == 0:
            raise ValueError(
                f"item {i} has no samples (an empty wave); drop it or check where it came from"
            )
        waves.append(w if max_length is None else w[:max_length])
    lengths = torch.tensor([w.numel() for w in waves], dtype=torch.long)
    dtype = functools.reduce(torch.promote_types, (w.dtype for w in waves))
    out_wave = torch.zeros(len(waves), int(lengths.max()), dtype=dtype)
    for i, w in enumerate(waves):
        out_wave[i, : w.numel()] = w
    mask = torch.arange(out_wave.shape[1])[None, :] < lengths[:, None]
    out: dict = {"wave": out_wave, "lengths": lengths, "mask": mask}
    for key in items[0]:
        if key == "wave":
            continue
        values = [item.get(key) for item in items]
        if key == "label" and all(isinstance(v, int) for v in values):
            out[key] = torch.tensor(values, dtype=torch.long)
        else:
            out[key] = values
    return out


class LogMel(torch.nn.Module):
    """Log-mel spectrogram: ``(batch, time)`` -> ``(batch, n_mels, frames)``.

    Defaults are the usual 25 ms window and 10 ms hop at 16 kHz.

    Raises:
        ValueError: a size or the sample rate is not positive; in ``forward``, a wave that is
            not ``(time,)`` or ``(batch, time)`` or is shorter than ``n_fft // 2 + 1`` samples.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_fft: int = 400,
        hop_length: int = 160,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if n_mels <= 0 or n_fft <= 0 or hop_length <= 0:
            raise ValueError(
                f"n_mels, n_fft and hop_length must be positive, got {n_mels}, {n_fft}, {hop_length}"
            )
        if not (
            isinstance(sample_rate, numbers.Real)
            and not isinstance(sample_rate, bool)
            and math.isfinite(sample_rate)
            and sample_rate > 0
        ):
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
        )
        self.n_fft = n_fft
        self.eps = eps

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if not isinstance(wave, torch.Tensor):
            raise ValueError(
                f"LogMel expects a torch.Tensor wave, got {type(wave).__name__}; convert it "
                "with torch.as_tensor(wave, dtype=torch.float32)"
            )
        _check_float_wave(wave, "the wave")
        if wave.ndim not in (1, 2):
            raise ValueError(
                f"LogMel expects (time,) or (batch, time), got shape {tuple(wave.shape)}"
            )
        if wave.shape[-1] <= self.n_fft // 2:  # the centred STFT reflects n_fft // 2 samples
            raise ValueError(
                f"a log-mel spectrogram needs at least {self.n_fft // 2 + 1} samples "
                f"(n_fft // 2 + 1), got {wave.shape[-1]}; pad the wave (dlsaudio.audio.pad_crop) "
                "or use a smaller n_fft"
            )
        return torch.log(self.mel(wave) + self.eps)


@lru_cache(maxsize=16)
def _cached_log_mel(sample_rate: int, n_mels: int, n_fft: int, hop_length: int) -> LogMel:
    return LogMel(sample_rate, n_mels, n_fft, hop_length)


def log_mel(
    wave: torch.Tensor,
    sample_rate: int = 16000,
    n_mels: int = 64,
    n_fft: int = 400,
    hop_length: int = 160,
) -> torch.Tensor:
    """Log-mel spectrogram of ``(time,)`` or ``(batch, time)`` audio (see :class:`LogMel`).

    Returns:
        ``(n_mels, frames)`` or ``(batch, n_mels, frames)``, natural log of power.

    Raises:
        ValueError: as :class:`LogMel`.
    """
    log_mel_of = _cached_log_mel(sample_rate, n_mels, n_fft, hop_length)
    return log_mel_of.to(wave.device)(wave) if isinstance(wave, torch.Tensor) else log_mel_of(wave)


def speech_frames(mel: torch.Tensor, speech_db: float = 50.0) -> torch.Tensor:
    """Which frames of a log-mel spectrogram hold speech: ``(..., 1, frames)`` of 0. and 1.

    A frame counts when its loudest band lies within ``speech_db`` decibels of the clip's
    loudest frame, so padding and silence do not.

    Args:
        mel: ``(n_mels, frames)`` or ``(batch, n_mels, frames)`` natural-log mel energies (as
            :class:`LogMel` returns).
        speech_db: how far below the loudest frame speech may be.

    Raises:
        ValueError: ``mel`` is not 2-D or 3-D, or ``speech_db`` is not positive.
    """
    if mel.ndim not in (2, 3):
        raise ValueError(
            f"expected a log-mel of shape (n_mels, frames) or (batch, n_mels, frames), got "
            f"shape {tuple(mel.shape)}"
        )
    if not speech_db > 0:
        raise ValueError(f"speech_db must be positive, got {speech_db!r}")
    loudest_band = mel.amax(dim=-2, keepdim=True)  # (..., 1, frames)
    threshold = loudest_band.amax(dim=-1, keepdim=True) - speech_db * math.log(10.0) / 10.0
    return (loudest_band > threshold).to(mel.dtype)


def mean_normalize(mel: torch.Tensor, speech_db: float = 50.0) -> torch.Tensor:
    """Subtract each clip's mean log-mel spectrum, measured over its speech frames.

    Cepstral mean normalisation (Atal 1974; Furui 1981, https://doi.org/10.1109/TASSP.1981.1163530)
    in the log-mel domain: a microphone, a room or a voice that colours every frame alike adds
    the same offset to each band's log energy, and subtracting the clip's mean spectrum removes
    it. The mean is taken over the frames :func:`speech_frames` finds, so padding and silence do
    not pull it down; every frame, silent ones included, gets the same offset removed.

    Args:
        mel: ``(n_mels, frames)`` or ``(batch, n_mels, frames)`` natural-log mel energies (as
            :class:`LogMel` returns).
        speech_db: frames this many decibels below the loudest frame do not count as speech.

    Returns:
        A tensor of ``mel``'s shape.

    Raises:
        ValueError: ``mel`` is not 2-D or 3-D, or ``speech_db`` is not positive.
    """
    speech = speech_frames(mel, speech_db)  # (..., 1, frames)
    mean = (mel * speech).sum(dim=-1, keepdim=True) / speech.sum(dim=-1, keepdim=True)
    return mel - mean
