"""Where data comes from: the bundled sample inside the installed package, and the part of
choosing a notebook's source that every kind of data shares (smoke mode, an argument, an
environment variable)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dlsaudio.smoke import is_smoke

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
"""``digits/`` and ``asr/`` with their manifests, written by :mod:`dlsaudio.data.generate`."""


def chosen_source(
    kind: str, default: str | None, env_var: str, validate: Callable[[str], object]
) -> str | None:
    """The source that smoke mode, ``default`` or ``env_var`` chooses, announced; else None.

    Smoke mode (``DLSAUDIO_SMOKE=1``) always chooses ``"sample"``; otherwise ``default`` when
    given, else the environment variable ``env_var``. None: nothing chose, and the caller
    looks for real data where it knows to.

    Args:
        kind: the word the printed line starts with (``"asr"``, ``"digits"``).
        default: the source a notebook passed, or None.
        env_var: the environment variable that may name the source.
        validate: raises ``ValueError`` on a source string it does not accept.

    Raises:
        ValueError: whatever ``validate`` raises for the chosen source.
    """
    if is_smoke():
        print(f"{kind}: using the bundled sample (smoke mode, DLSAUDIO_SMOKE=1)")
        return "sample"
    choice = default or os.environ.get(env_var)
    if choice:
        validate(choice)
        print(f"{kind}: using {choice}")
        return choice
    return None
