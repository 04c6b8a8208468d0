"""Where the bundled sample lives inside the installed package."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
"""``digits/`` and ``asr/`` with their manifests, written by :mod:`dlsaudio.data.generate`."""
