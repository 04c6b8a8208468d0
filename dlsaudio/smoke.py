"""Smoke mode (one switch that shrinks data, epochs and model size) and where a notebook runs.

Set ``DLSAUDIO_SMOKE=1`` (the test configuration does) and every notebook and script
that reads sizes through :func:`pick` runs the same code on less data. There are no
``if smoke:`` branches around whole sections: only numbers change.
"""

from __future__ import annotations

import os
from pathlib import Path
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


DRIVE_ROOT = Path("/content/drive/MyDrive")
"""Where Colab mounts Google Drive (``from google.colab import drive; drive.mount("/content/drive")``)."""


def run_folder(name: str, drive_root: str | Path = DRIVE_ROOT) -> Path:
    """The folder a notebook run writes its checkpoints and results to, announced in one line.

    With Google Drive mounted (on Colab: ``drive.mount("/content/drive")`` before this call) it
    is ``MyDrive/dlsaudio/<name>``, which survives a disconnected session, so a rerun of the
    notebook resumes from the last checkpoint. Otherwise it is ``outputs/<name>`` next to the
    notebook, which a new Colab session no longer has.

    Args:
        name: a folder name such as ``"whisper-ky"`` (no path separators).
        drive_root: where Drive is mounted.

    Raises:
        ValueError: an empty name or one with a path separator or ``..``.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"name={name!r}; expected a plain folder name such as 'whisper-ky'")
    drive = Path(drive_root)
    if drive.is_dir():
        folder = drive / "dlsaudio" / name
        print(f"run folder: {folder} (Google Drive: a disconnected run resumes from here)")
        return folder
    folder = Path("outputs") / name
    hint = (
        "; mount Google Drive first to keep checkpoints across a disconnect: "
        'from google.colab import drive; drive.mount("/content/drive")'
        if on_colab()
        else ""
    )
    print(f"run folder: {folder}{hint}")
    return folder
