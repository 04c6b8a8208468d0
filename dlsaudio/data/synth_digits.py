"""The bundled spoken-digit sample of module 3, synthesised with espeak-ng.

English digits 0-9 from :data:`DIGIT_SPEAKERS`, :data:`DIGIT_TAKES` takes each, named
``<digit>_<speaker>_<take>.flac`` as in the Free Spoken Digit Dataset and AudioMNIST, with
``manifest.csv`` (``path,label,speaker,take,voice``); :func:`generate_digits` writes them with
the voices and files of :mod:`dlsaudio.data.synth`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from dlsaudio.data.synth import (
    SAMPLE_RATE,
    Voice,
    seeded_rng,
    synthesize,
    voice_table,
    write_csv,
    write_flac,
)

__all__ = ["DIGIT_SPEAKERS", "DIGIT_TAKES", "DIGIT_WORDS", "generate_digits"]


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_TAKES = 3


#  speaker  espeak-ng voice       pitch  rate
DIGIT_SPEAKERS = voice_table("""
    usm1    en-us+m1                40   150
    usf2    en-us+f2                60   165
    gbm3    en-gb+m3                35   140
    scof4   en-gb-scotland+f4       65   155
    carm4   en-029+m4               45   170
    nycf1   en-us-nyc+f1            70   160
    rpm7    en-gb-x-rp+m7           30   135
    lanf5   en-gb-x-gbclan+f5       55   175
    klatt   en-us+klatt             50   150
    croak   en+croak                25   145
    andy    en-us+Andy              50   180
    wmdf3   en-gb-x-gbcwmd+f3       75   150
    usm6    en-us+m6                20   130
    annie   en+Annie                60   190
""")


def generate_digits(
    out_dir: str | Path,
    speakers: Sequence[Voice] = DIGIT_SPEAKERS,
    takes: int = DIGIT_TAKES,
    digits: Iterable[int] = range(10),
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Write spoken digits ``<digit>_<speaker>_<take>.flac`` and ``manifest.csv`` into ``out_dir``.

    Each take jitters pitch, rate and amplitude (see :meth:`Voice.jittered`) with a generator
    seeded by the file name, so any subset reproduces the same files.

    Args:
        out_dir: the folder to write (created if needed).
        speakers: the synthetic speakers.
        takes: takes per digit and speaker.
        digits: which digits to say.
        sample_rate: the rate of the written FLAC files.

    Returns:
        The path of ``manifest.csv`` (``path,label,speaker,take,voice``, paths relative to it).

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
        ValueError: ``takes`` < 1, a digit outside 0-9, or duplicate speaker ids.
    """
    if takes < 1:
        raise ValueError(f"takes must be at least 1, got {takes}")
    digits = list(digits)
    if any(d not in range(10) for d in digits):
        raise ValueError(f"digits must be in 0..9, got {digits}")
    names = [v.speaker for v in speakers]
    if len(set(names)) != len(names):
        raise ValueError(f"speaker ids must be unique, got {names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for voice in speakers:
        for digit in digits:
            for take in range(takes):
                name = f"{digit}_{voice.speaker}_{take}.flac"
                take_voice = voice.jittered(seeded_rng("digits", name))
                wave = synthesize(DIGIT_WORDS[digit], take_voice, sample_rate)
                write_flac(out_dir / name, wave, sample_rate)
                rows.append((name, digit, voice.speaker, take, " ".join(take_voice.args())))
    manifest = out_dir / "manifest.csv"
    write_csv(manifest, ("path", "label", "speaker", "take", "voice"), rows)
    return manifest
