"""Audio I/O and features.

Shapes used throughout the package: a single ``wave`` is ``(time,)``, a batch is
``(batch, time)``; a log-mel spectrogram is ``(n_mels, frames)`` or ``(batch, n_mels, frames)``.

Decoding goes through soundfile (wav, flac, ogg and, with libsndfile >= 1.1, mp3), resampling
and mel filterbanks through torchaudio. Bad files raise errors that name the file and the
problem; nothing here returns a silent zero tensor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")


def _check_wave(wave: np.ndarray, where: str, max_channels: int) -> None:
    if wave.shape[0] == 0:
        raise ValueError(f"{where}: the audio is empty (0 samples); re-export or drop this file")
    channels = wave.shape[1]
    if channels < 1 or channels > max_channels:
        raise ValueError(
            f"{where}: has {channels} channels, expected 1 to {max_channels}; "
            f"pass max_channels={channels} to mix all channels down to mono"
        )
    if not np.isfinite(wave).all():
        bad = int((~np.isfinite(wave)).sum())
        raise ValueError(
            f"{where}: {bad} samples are NaN or inf; the file is damaged, re-export it"
        )


def trim_silence(wave: torch.Tensor, threshold_db: float = -50.0, frame: int = 256) -> torch.Tensor:
    """Cut leading and trailing frames whose peak is below ``threshold_db`` dBFS.

    Args:
        wave: ``(time,)`` waveform in [-1, 1].
        threshold_db: frames quieter than this (relative to full scale) count as silence.
        frame: frame length in samples.

    Returns:
        The trimmed ``(time,)`` waveform, possibly empty when everything is silent.
    """
    if wave.ndim != 1:
        raise ValueError(f"trim_silence expects a (time,) waveform, got shape {tuple(wave.shape)}")
    threshold = 10.0 ** (threshold_db / 20.0)
    loud = wave.abs() >= threshold
    if not bool(loud.any()):
        return wave[:0]
    idx = torch.nonzero(loud).squeeze(1)
    start = max(int(idx[0]) - frame, 0)
    stop = min(int(idx[-1]) + frame + 1, wave.numel())
    return wave[start:stop]


def load_audio(
    path: str | Path,
    sample_rate: int = 16000,
    *,
    max_channels: int = 2,
    trim: bool = False,
    silence_db: float = -50.0,
) -> torch.Tensor:
    """Load an audio file as a mono float32 ``(time,)`` tensor at ``sample_rate``.

    Multi-channel files are averaged to mono. Resampling uses
    :func:`torchaudio.functional.resample`.

    Args:
        path: a wav, flac, mp3 or ogg file.
        sample_rate: the rate of the returned waveform, in Hz.
        max_channels: files with more channels than this are rejected.
        trim: cut leading and trailing silence (see :func:`trim_silence`).
        silence_db: the level below which audio counts as silence, in dBFS.

    Returns:
        ``(time,)`` float32 tensor.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded, is empty, has NaN or inf samples, has an
            unexpected channel count, or holds only silence.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise ValueError(
            f"{path}: cannot be decoded as audio ({err}); the file is corrupt or not in a "
            f"supported format ({', '.join(SUPPORTED_EXTENSIONS)})"
        ) from None
    _check_wave(data, str(path), max_channels)
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if float(wave.abs().max()) < 10.0 ** (silence_db / 20.0):
        raise ValueError(f"{path}: holds only silence (peak below {silence_db} dBFS)")
    if trim:
        wave = trim_silence(wave, threshold_db=silence_db)
    if file_rate != sample_rate:
        wave = torchaudio.functional.resample(wave, file_rate, sample_rate)
    return wave.to(torch.float32).contiguous()


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
    """
    if length <= 0:
        raise ValueError(f"length must be a positive number of samples, got {length}")
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
        max_length: crop every waveform to at most this many samples.

    Returns:
        A dict with ``wave`` ``(batch, time)``, ``lengths`` ``(batch,)`` and ``mask``
        ``(batch, time)`` (True on real samples), plus the other item fields.
    """
    if len(batch) == 0:
        raise ValueError("collate_waves got an empty batch")
    items = [b if isinstance(b, Mapping) else {"wave": b} for b in batch]
    waves = []
    for i, item in enumerate(items):
        if "wave" not in item:
            raise ValueError(f"item {i} has no 'wave' key; keys are {sorted(item)}")
        w = torch.as_tensor(item["wave"])
        if w.ndim != 1:
            raise ValueError(f"item {i}: expected a (time,) waveform, got shape {tuple(w.shape)}")
        waves.append(w[:max_length] if max_length else w)
    lengths = torch.tensor([w.numel() for w in waves], dtype=torch.long)
    out_wave = torch.zeros(len(waves), int(lengths.max()), dtype=waves[0].dtype)
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
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
        )
        self.eps = eps

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim not in (1, 2):
            raise ValueError(
                f"LogMel expects (time,) or (batch, time), got shape {tuple(wave.shape)}"
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
    """
    return _cached_log_mel(sample_rate, n_mels, n_fft, hop_length).to(wave.device)(wave)


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
