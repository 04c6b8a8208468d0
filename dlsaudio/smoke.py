"""Smoke mode: one switch that shrinks data, epochs and model size.

Set ``DLSAUDIO_SMOKE=1`` (the test configuration does) and every notebook and script
that reads sizes through :func:`pick` runs the same code on less data. There are no
``if smoke:`` branches around whole sections: only numbers change.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

ENV_VAR = "DLSAUDIO_SMOKE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_smoke() -> bool:
    """Return True when ``DLSAUDIO_SMOKE`` is set to a true value.

    Raises:
        ValueError: if the variable holds something that is neither true nor false.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not understood; use 1 to shrink the run or 0 for a full run"
    )


def pick(full: T, smoke: T) -> T:
    """Return ``smoke`` in smoke mode and ``full`` otherwise.

    Example:
        >>> epochs = pick(full=20, smoke=1)
    """
    return smoke if is_smoke() else full


def on_colab() -> bool:
    """Return True inside Google Colab."""
    import sys

    return "google.colab" in sys.modules
