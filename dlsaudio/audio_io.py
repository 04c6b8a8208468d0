"""Reading audio files: decoding, checks and windowed reading in blocks.

:func:`load_audio` is the one way the package reads a file: soundfile decodes it (wav, flac,
ogg and, with libsndfile >= 1.1, mp3), channels are averaged to mono and torchaudio resamples
it block by block (:mod:`dlsaudio.audio_resample`), so a long file costs the memory of its
result. A file that cannot be used (undecodable, cut short, empty, NaN, too many channels, off
scale, silent) raises :class:`AudioFileError` naming the file and the problem; nothing here
returns a silent zero tensor. :mod:`dlsaudio.audio` re-exports the public names.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from dlsaudio.audio_resample import _Output, _StreamResampler

__all__ = ["MAX_PEAK", "SUPPORTED_EXTENSIONS", "AudioFileError", "load_audio", "trim_silence"]

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
MAX_PEAK = 2.0
"""Decoded samples beyond this magnitude (6 dB above full scale) mean the file is on another
scale (integers stored as floats, a gain applied twice); lossy codecs overshoot 1.0 a little."""
_BLOCK_SECONDS = 10.0  # audio decoded and resampled at a time
_MP3_FRAME = 1152  # samples per MPEG-1 layer III frame


class AudioFileError(ValueError):
    """An audio file that cannot be used as it is; the message names the file and the fix.

    Attributes:
        reason: ``"undecodable"``, ``"truncated"``, ``"empty"``, ``"channels"``,
            ``"non_finite"``, ``"out_of_range"`` or ``"silent"``.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _check_rate(value, name: str = "sample_rate") -> int:
    """A sample rate as an int: whole and positive (16000 or 16000.0, not 16000.5)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value != int(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive whole number of Hz, got {value!r}")
    return int(value)


def _wav_cut_short(file) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of a WAV's data chunk when the file ends before it does."""
    file.seek(0, 2)
    size = file.tell()
    file.seek(0)
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= size:
        file.seek(pos)
        chunk = file.read(8)
        declared = int.from_bytes(chunk[4:], "little")
        if chunk[:4] == b"data":
            if declared in (0, 0xFFFFFFFF):  # left unset by writers that stream
                return None
            present = size - pos - 8
            return (declared, present) if present < declared else None
        pos += 8 + declared + (declared & 1)
    return None


def _has_xing_header(file) -> bool:
    """True when an MP3 starts with a Xing/Info frame, whose frame count makes its length exact."""
    file.seek(0)
    head = file.read(10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:  # skip an ID3v2 tag (synchsafe size)
        start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    file.seek(start)
    first = file.read(200)
    return b"Xing" in first or b"Info" in first


def _read(sound: sf.SoundFile, name: str, out: np.ndarray, done: int) -> np.ndarray:
    try:
        return sound.read(len(out), dtype="float32", always_2d=True, out=out)
    except Exception as err:  # a decoder that loses sync midway
        where = f" after {done / sound.samplerate:.3f} s" if done else ""
        raise AudioFileError(
            f"{name}: decoding failed{where} ({err}); the file is damaged or cut short, "
            "re-export or drop it",
            "undecodable",
        ) from None


def _blocks(sound: sf.SoundFile, name: str, start: int, wanted: int | None, block: int):
    """Yield the window ``[start, start + wanted)`` of an open file as ``(frames, channels)`` blocks.

    MP3 is decoded in one read: libsndfile 1.2 decodes MP3 right only within one read call (a
    later read or a seek loses the bit reservoir for a few frames), so the window is read at
    once, from a margin before it in which the decoder settles, and then cut into blocks.
    """
    rate, channels = sound.samplerate, sound.channels
    if sound.format == "MP3":
        margin = min(start, max(rate, 16 * _MP3_FRAME))
        if start:
            sound.seek(start - margin)
        # room beyond the announced length: without a Xing header the length is an estimate
        count = (
            wanted if wanted is not None else sound.frames - start + max(rate, sound.frames // 10)
        )
        out = np.empty((margin + count, channels), dtype=np.float32)
        data = _read(sound, name, out, 0)
        if wanted is None and len(data) == len(out):
            raise AudioFileError(
                f"{name}: holds more than the {sound.frames} samples its header announces; "
                "re-encode it (for example with ffmpeg -i in.mp3 out.flac)",
                "undecodable",
            )
        for i in range(margin, len(data), block):
            yield data[i : i + block]
        return
    if start:
        sound.seek(start)
    buffer = np.empty((block, channels), dtype=np.float32)
    read = 0
    while wanted is None or read < wanted:
        size = block if wanted is None else min(block, wanted - read)
        data = _read(sound, name, buffer[:size], read)
        if len(data) == 0:
            return
        read += len(data)
        yield data


def _decode(
    file,
    name: str,
    sample_rate: int,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    max_channels: int = 2,
    silence_db: float = -50.0,
    max_peak: float | None = MAX_PEAK,
) -> torch.Tensor:
    """Decode a window of ``file`` (a path or a binary file object) to mono at ``sample_rate``.

    Blocks of :data:`_BLOCK_SECONDS` are read, mixed to mono and resampled one at a time, so
    memory holds the result and one block, not the whole file at its own rate (MP3: the
    decoded window and the result, see :func:`_blocks`).
    """
    try:
        sound = sf.SoundFile(file)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioFileError(
            f"{name}: cannot be decoded as audio ({err}); the file is corrupt or not in a "
            f"supported format ({', '.join(SUPPORTED_EXTENSIONS)})",
            "undecodable",
        ) from None
    with sound:
        rate, channels, listed, kind = sound.samplerate, sound.channels, sound.frames, sound.format
        if not 1 <= channels <= max_channels:
            raise AudioFileError(
                f"{name}: has {channels} channels, expected 1 to {max_channels}; "
                f"pass max_channels={channels} to mix all channels down to mono",
                "channels",
            )
        raw = open(file, "rb") if isinstance(file, (str, Path)) else file
        try:
            cut = _wav_cut_short(raw) if kind in ("WAV", "WAVEX") else None
            # formats whose header gives the exact length, so a short read means a cut file
            exact = kind in ("WAV", "WAVEX", "FLAC", "OGG") or (
                kind == "MP3" and _has_xing_header(raw)
            )
        finally:
            if raw is not file:
                raw.close()
        if cut:
            declared, present = cut
            raise AudioFileError(
                f"{name}: is cut short: its header announces {declared} bytes of audio, the "
                f"file holds {present} ({1 - present / declared:.0%} missing); copy or export "
                "it again",
                "truncated",
            )
        start = round(offset * rate)
        if start and start >= listed:
            raise ValueError(
                f"offset={offset} s is past the end of {name} ({listed / rate:.3f} s long)"
            )
        wanted = None if duration is None else max(1, round(duration * rate))
        expected = max(listed - start, 0) if wanted is None else min(wanted, max(listed - start, 0))
        output = _Output(math.ceil(expected * sample_rate / rate))
        block = max(1, round(_BLOCK_SECONDS * rate))
        resampler = (
            _StreamResampler(rate, sample_rate, block, output) if rate != sample_rate else None
        )
        read, bad, peak, mono_peak = 0, 0, 0.0, 0.0
        for data in _blocks(sound, name, start, wanted, block):
            read += len(data)
            finite = np.isfinite(data)
            if not finite.all():
                bad += int((~finite).sum())
                continue
            peak = max(peak, float(np.abs(data).max()))
            mono = data.mean(axis=1) if channels > 1 else data[:, 0].copy()
            mono_peak = max(mono_peak, float(np.abs(mono).max()))
            if resampler is None:
                output.append(torch.from_numpy(mono))
            else:
                resampler.feed(mono)
    if read == 0:
        raise AudioFileError(
            f"{name}: the audio is empty (0 samples); the file holds no audio or is cut "
            "short, re-export or drop it",
            "empty",
        )
    if exact and wanted is None and start + read < listed - _MP3_FRAME * (kind == "MP3"):
        raise AudioFileError(
            f"{name}: is cut short: {start + read} of the {listed} samples its header announces "
            "could be decoded; copy or export it again",
            "truncated",
        )
    if bad:
        raise AudioFileError(
            f"{name}: {bad} samples are NaN or inf; the file is damaged, re-export it", "non_finite"
        )
    if max_peak is not None and peak > max_peak:
        raise AudioFileError(
            f"{name}: peaks at {peak:.3g}, above max_peak={max_peak} (full scale is 1.0): the "
            "samples are on another scale, e.g. integers saved as floats; divide them by their "
            "peak, or pass max_peak=None to load them as they are",
            "out_of_range",
        )
    if mono_peak < 10.0 ** (silence_db / 20.0):
        raise AudioFileError(f"{name}: holds only silence (peak below {silence_db} dBFS)", "silent")
    return resampler.finish() if resampler is not None else output.result()


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
    offset: float = 0.0,
    duration: float | None = None,
    max_channels: int = 2,
    trim: bool = False,
    silence_db: float = -50.0,
    max_peak: float | None = MAX_PEAK,
) -> torch.Tensor:
    """Load an audio file, or a window of it, as a mono float32 ``(time,)`` tensor at ``sample_rate``.

    Multi-channel files are averaged to mono. Resampling gives what
    :func:`torchaudio.functional.resample` gives on the whole window, computed block by
    block: a long file costs the memory of its result, not of the file decoded at its own
    rate (10 minutes of 48 kHz stereo: 38 MB, see ``python -m dlsaudio.bench audio``).

    Args:
        path: a wav, flac, mp3 or ogg file.
        sample_rate: the rate of the returned waveform, in Hz (a whole number).
        offset: start of the window, in seconds from the start of the file.
        duration: length of the window in seconds; None: to the end of the file. A window
            that runs past the end stops there.
        max_channels: files with more channels than this are rejected.
        trim: cut leading and trailing silence (see :func:`trim_silence`).
        silence_db: the level below which audio counts as silence, in dBFS.
        max_peak: files whose samples exceed this magnitude are rejected (see
            :data:`MAX_PEAK`); None accepts any finite value.

    Returns:
        ``(time,)`` float32 tensor.

    Raises:
        FileNotFoundError: the file does not exist.
        AudioFileError: (a ``ValueError``) the file cannot be decoded, is cut short, is
            empty, has NaN or inf samples, has an unexpected channel count, peaks above
            ``max_peak`` or holds only silence; ``reason`` says which.
        ValueError: ``path`` is not a path or is a folder, ``sample_rate`` is not a positive whole number,
            ``offset`` is negative or past the end, ``duration`` is not positive.
    """
    if not isinstance(path, (str, Path)) or not str(path):
        raise ValueError(
            f"path must be the path of an audio file (str or pathlib.Path), got {path!r}"
        )
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an audio file; pass one of the files in it")
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    sample_rate = _check_rate(sample_rate)
    _check_window(offset, duration)
    wave = _decode(
        path,
        str(path),
        sample_rate,
        offset=offset,
        duration=duration,
        max_channels=max_channels,
        silence_db=silence_db,
        max_peak=max_peak,
    )
    return trim_silence(wave, threshold_db=silence_db) if trim else wave


def _check_window(offset: float, duration: float | None) -> None:
    if (
        isinstance(offset, bool)
        or not isinstance(offset, numbers.Real)
        or not (math.isfinite(offset) and offset >= 0)
    ):
        raise ValueError(f"offset must be a number of seconds >= 0, got {offset!r}")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, numbers.Real)
        or not (math.isfinite(duration) and duration > 0)
    ):
        raise ValueError(f"duration must be a positive number of seconds or None, got {duration!r}")
