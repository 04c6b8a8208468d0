"""The synthesis core of the bundled sample: espeak-ng voices, speech and the files written.

:class:`Voice` is one synthetic speaker (an espeak-ng voice with a variant, a pitch and a
rate), :func:`synthesize` speaks a text with it, and :func:`espeak_version` names the
synthesiser that did. The spoken-digit sample (:mod:`dlsaudio.data.synth_digits`) and the
Kyrgyz ASR sample (:mod:`dlsaudio.data.synth_kyrgyz`) share the seeded generators, the 12-bit
FLAC files and the CSV manifests written here; :mod:`dlsaudio.data.generate` writes both.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from dlsaudio.audio import trim_silence

__all__ = [
    "BITS",
    "ESPEAK_INSTALL_HINT",
    "SAMPLE_RATE",
    "EspeakNotFoundError",
    "Voice",
    "espeak_version",
    "synthesize",
]


SAMPLE_RATE = 16000
BITS = 12
"""Significant bits stored per sample: quantisation noise at about -72 dBFS, far below the
synthesiser's own noise, and FLAC files 40 % smaller than at 16 bits."""
ESPEAK_INSTALL_HINT = (
    "espeak-ng is not installed; install it with `apt-get install espeak-ng` "
    "(Debian/Ubuntu/Colab: `!apt-get -qq install espeak-ng`) or `brew install espeak-ng` (macOS)"
)


class EspeakNotFoundError(RuntimeError):
    """The ``espeak-ng`` program is not on the PATH."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice with a variant, a pitch and a rate.

    Attributes:
        speaker: the speaker id used in file names and manifests (letters and digits only).
        voice: espeak-ng voice and variant, e.g. ``"en-us+m3"``, ``"ky+f2"``.
        pitch: base pitch, 0 to 99 (espeak-ng ``-p``).
        rate: speaking rate in words per minute, 80 to 450 (espeak-ng ``-s``).
        amplitude: loudness, 0 to 200 (espeak-ng ``-a``).
    """

    speaker: str
    voice: str
    pitch: int = 50
    rate: int = 160
    amplitude: int = 100

    def __post_init__(self) -> None:
        if not self.speaker.isalnum():
            raise ValueError(
                f"speaker must be letters and digits only (it goes into file names), got {self.speaker!r}"
            )
        if not 0 <= self.pitch <= 99:
            raise ValueError(f"pitch must be in 0..99, got {self.pitch}")
        if not 80 <= self.rate <= 450:
            raise ValueError(f"rate must be in 80..450 words per minute, got {self.rate}")
        if not 0 <= self.amplitude <= 200:
            raise ValueError(f"amplitude must be in 0..200, got {self.amplitude}")

    def args(self) -> list[str]:
        """The espeak-ng command-line options for this voice."""
        return [
            "-v",
            self.voice,
            "-p",
            str(self.pitch),
            "-s",
            str(self.rate),
            "-a",
            str(self.amplitude),
        ]

    def jittered(self, rng: np.random.Generator) -> Voice:
        """A take of this voice: pitch +-6, rate +-10 % and amplitude +-25 % drawn from ``rng``."""
        return replace(
            self,
            pitch=int(np.clip(self.pitch + rng.integers(-6, 7), 0, 99)),
            rate=int(np.clip(round(self.rate * rng.uniform(0.9, 1.1)), 80, 450)),
            amplitude=int(np.clip(round(self.amplitude * rng.uniform(0.75, 1.25)), 0, 200)),
        )


def voice_table(table: str) -> tuple[Voice, ...]:
    """Voices from a table with one ``speaker voice pitch rate`` row per line."""
    rows = (line.split() for line in table.strip().splitlines())
    return tuple(Voice(name, voice, int(pitch), int(rate)) for name, voice, pitch, rate in rows)


def seeded_rng(*keys: object) -> np.random.Generator:
    """A generator seeded by the keys' text, stable across runs and platforms."""
    return np.random.default_rng(zlib.crc32("/".join(map(str, keys)).encode("utf-8")))


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakNotFoundError(ESPEAK_INSTALL_HINT)
    return exe


def espeak_version() -> str:
    """The first line of ``espeak-ng --version``, e.g. ``"eSpeak NG text-to-speech: 1.51 ..."``.

    Raises:
        EspeakNotFoundError: espeak-ng is not installed (the message says how to install it).
    """
    out = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split()[:4])


def synthesize(text: str, voice: Voice, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Speak ``text`` with espeak-ng and return the trimmed waveform.

    Args:
        text: what to say (UTF-8; numbers are read by espeak-ng's own rules, so verbalise them
            first when the spelling matters).
        voice: the speaker.
        sample_rate: the rate of the returned waveform (espeak-ng speaks at 22050 Hz).

    Returns:
        ``(time,)`` float32 waveform with leading and trailing silence cut to 50 ms.

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
        ValueError: ``text`` is empty, or espeak-ng fails or returns silence.
    """
    if not text.strip():
        raise ValueError("text must contain something to say, got an empty string")
    cmd = [_espeak(), *voice.args(), "-b", "1", "--stdout", text]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise ValueError(
            f"espeak-ng failed for voice {voice.voice!r} ({result.stderr.decode(errors='replace').strip()}); "
            "list the voices with `espeak-ng --voices` and the variants with `espeak-ng --voices=variant`"
        )
    data, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    wave = trim_silence(torch.from_numpy(data), threshold_db=-45.0, frame=int(0.05 * rate))
    if wave.numel() == 0:
        raise ValueError(f"espeak-ng returned silence for {text!r} with voice {voice.voice!r}")
    if rate != sample_rate:
        wave = torchaudio.functional.resample(wave, rate, sample_rate)
    return wave.contiguous()


def write_flac(path: Path, wave: torch.Tensor, sample_rate: int) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = 2 ** (BITS - 1)
    data = np.clip(np.round(wave.numpy() * steps), -steps, steps - 1) / steps
    sf.write(str(path), data, sample_rate, format="FLAC", subtype="PCM_16", compression_level=1.0)
    return len(data) / sample_rate


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
