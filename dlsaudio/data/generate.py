"""The bundled sample of synthetic speech, made with the espeak-ng synthesiser.

The package carries two small data sets so that every notebook and test runs offline:

* ``digits/``: English spoken digits 0-9 from :data:`DIGIT_SPEAKERS` (voice, variant, pitch
  and rate), :data:`DIGIT_TAKES` takes each, named ``<digit>_<speaker>_<take>.flac`` as in the
  Free Spoken Digit Dataset and AudioMNIST, with ``digits/manifest.csv``
  (``path,label,speaker,take,voice``).
* ``asr/``: a Kyrgyz ASR sample in three sources of unequal size, with ``asr/manifest.csv``
  (``path,text,spoken,source,speaker,duration``):

  - ``ky_tts``: Kyrgyz sentences, numbers read through :func:`dlsaudio.asr.text.verbalize_numbers`
    and everyday phrases;
  - ``ky_tts_noisy``: noisy copies of some ``ky_tts`` utterances (white noise at
    :data:`NOISY_SNR_DB` dB SNR, seeded);
  - ``kk_tts``: Kazakh sentences, the related language Whisper knows.

  ``text`` is what a person would write (``"Мен 25 жаштамын."``, digits kept); ``spoken`` is
  what was synthesised (``"Мен жыйырма беш жаштамын."``). A normaliser that verbalises numbers
  maps both to the same string.

Every parameter of every file comes from a random generator seeded by the file's own name, so
the same command writes the same audio, and one file can be regenerated on its own. Synthetic
speech is itself a topic of module 11: call :func:`synthesize` or :func:`generate_kyrgyz` with
your own sentences and voices to make more.

This module writes the whole sample (:func:`generate_all`) and is its command line; the parts
live by concern, and their public names are importable from here:

* :mod:`dlsaudio.data.synth`: voices, :func:`synthesize`, :func:`espeak_version`, the files;
* :mod:`dlsaudio.data.synth_digits`: the spoken-digit sample, :func:`generate_digits`;
* :mod:`dlsaudio.data.synth_kyrgyz`: the ASR sample's sentences, :func:`asr_utterances`,
  :func:`generate_kyrgyz`.

Command line::

    python -m dlsaudio.data.generate --out DIR        # default: the package's sample folder
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

from dlsaudio.data.paths import SAMPLE_DIR
from dlsaudio.data.synth import (
    BITS,
    ESPEAK_INSTALL_HINT,
    SAMPLE_RATE,
    EspeakNotFoundError,
    Voice,
    espeak_version,
    synthesize,
)
from dlsaudio.data.synth_digits import DIGIT_SPEAKERS, DIGIT_TAKES, DIGIT_WORDS, generate_digits
from dlsaudio.data.synth_kyrgyz import (
    KAZAKH_SENTENCES,
    KAZAKH_SPEAKERS,
    KYRGYZ_SENTENCES,
    KYRGYZ_SPEAKERS,
    NOISY_SNR_DB,
    Utterance,
    asr_utterances,
    generate_kyrgyz,
)

__all__ = [
    "DIGIT_SPEAKERS",
    "DIGIT_TAKES",
    "DIGIT_WORDS",
    "ESPEAK_INSTALL_HINT",
    "KAZAKH_SENTENCES",
    "KAZAKH_SPEAKERS",
    "KYRGYZ_SENTENCES",
    "KYRGYZ_SPEAKERS",
    "BITS",
    "NOISY_SNR_DB",
    "SAMPLE_DIR",
    "SAMPLE_RATE",
    "EspeakNotFoundError",
    "Utterance",
    "Voice",
    "asr_utterances",
    "espeak_version",
    "generate_all",
    "generate_digits",
    "generate_kyrgyz",
    "synthesize",
]


def _remove_listed(manifest: Path) -> None:
    """Delete the files an earlier run listed, so renamed speakers leave no stale files."""
    if not manifest.is_file():
        return
    with open(manifest, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            (manifest.parent / row["path"]).unlink(missing_ok=True)
    manifest.unlink()


def generate_all(out_dir: str | Path = SAMPLE_DIR) -> dict[str, Path]:
    """Write the whole bundled sample: ``digits/`` and ``asr/`` under ``out_dir``.

    Files listed by earlier manifests in ``out_dir`` are removed first. Also writes
    ``generated_with.txt`` with the espeak-ng version: other versions of the synthesiser speak
    slightly differently.

    Returns:
        ``{"digits": manifest path, "asr": manifest path}``.

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
    """
    out_dir = Path(out_dir)
    for manifest in (out_dir / "digits" / "manifest.csv", out_dir / "asr" / "manifest.csv"):
        _remove_listed(manifest)
    manifests = {
        "digits": generate_digits(out_dir / "digits"),
        "asr": generate_kyrgyz(out_dir / "asr"),
    }
    (out_dir / "generated_with.txt").write_text(espeak_version() + "\n", encoding="utf-8")
    return manifests


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dlsaudio.data.generate",
        description="Synthesise the bundled spoken-digit and Kyrgyz ASR samples with espeak-ng.",
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output folder")
    args = parser.parse_args(argv)
    try:
        manifests = generate_all(args.out)
    except EspeakNotFoundError as err:
        parser.exit(1, f"error: {err}\n")
    for name, path in manifests.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
