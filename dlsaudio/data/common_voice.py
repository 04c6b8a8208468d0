"""Common Voice releases from Mozilla Data Collective, read from their unpacked folder.

A release holds ``validated.tsv`` (or ``train.tsv``, ``dev.tsv``, ``test.tsv``) and
``clips/*.mp3``; ``clip_durations.tsv``, when present, gives clip lengths without decoding.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dlsaudio.data.tables import _announce, _read_table, _require_columns, _seconds, _with_text
from dlsaudio.data.utterances import AsrDataset
from dlsaudio.smoke import DRIVE_ROOT

__all__ = [
    "COMMON_VOICE_HINT",
    "COMMON_VOICE_SPLITS",
    "COMMON_VOICE_TRAIN_ALL",
    "MDC_URL",
]

MDC_URL = "https://mozilladatacollective.com"
COMMON_VOICE_DESTS = {
    "drive": DRIVE_ROOT / "common_voice",
    "colab": Path("/content/common_voice"),
    "local": Path("~/data/common_voice"),
}
"""Where releases are unpacked by default (:func:`dlsaudio.data.fetch_common_voice`) and looked
for (:func:`dlsaudio.data.asr_source`): Drive when mounted on Colab (it outlives the session),
else the Colab disk, else ``~/data`` on any other machine."""
COMMON_VOICE_HINT = (
    "Common Voice left the Hugging Face Hub in October 2025; download the release from "
    f"Mozilla Data Collective ({MDC_URL}), unpack it and pass 'common_voice:/path/to/ky' "
    "(the folder with validated.tsv and clips/), or let dlsaudio.data.fetch_common_voice('ky') "
    "download and unpack it (needs an MDC API key)"
)
COMMON_VOICE_COLUMNS = ("path", "sentence", "client_id")
COMMON_VOICE_TRAIN_ALL = "validated-minus-dev-test"
"""Common Voice split: ``validated.tsv`` without the clips, speakers and sentences of dev and test."""
COMMON_VOICE_SPLITS = (
    "train",
    "dev",
    "test",
    "validated",
    "other",
    "invalidated",
    COMMON_VOICE_TRAIN_ALL,
)
CLIP_DURATIONS = "clip_durations.tsv"


def _find_common_voice(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"Common Voice folder not found: {path}. {COMMON_VOICE_HINT}")
    if any((path / f"{split}.tsv").is_file() for split in COMMON_VOICE_SPLITS):
        return path
    found = sorted(
        {p.parent for p in path.glob("*/validated.tsv")}
        | {p.parent for p in path.glob("*/*/validated.tsv")}
    )
    if len(found) == 1:
        return found[0]
    raise ValueError(
        f"{path} holds no Common Voice tables (validated.tsv, train.tsv, dev.tsv, test.tsv)"
        + (f"; it holds several languages, pick one of {[str(f) for f in found]}" if found else "")
        + f". {COMMON_VOICE_HINT}"
    )


def _common_voice_splits(folder: Path) -> list[str]:
    present = [s for s in COMMON_VOICE_SPLITS if (folder / f"{s}.tsv").is_file()]
    if {"validated", "dev", "test"} <= set(present):
        present.append(COMMON_VOICE_TRAIN_ALL)
    return present


def _common_voice_table(folder: Path, split: str, transcribed: bool = True) -> pd.DataFrame:
    """The rows of ``split.tsv``; with ``transcribed``, without those whose sentence is blank.

    Raises:
        FileNotFoundError: the release has no such table.
        ValueError: the table is unreadable, lacks a column, lists no clips, or (with
            ``transcribed``) has no row with a sentence.
    """
    path = folder / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; this release has the splits {_common_voice_splits(folder)}"
        )
    table = _read_table(path, sep="\t", quoting=csv.QUOTE_NONE)
    _require_columns(table.columns, COMMON_VOICE_COLUMNS, str(path))
    if table.empty:
        raise ValueError(
            f"{path} lists no clips (only its header): this release's {split!r} split is empty; "
            f"choose another split of {_common_voice_splits(folder)} or unpack the release again"
        )
    if transcribed:
        rows = _with_text(list(table["sentence"]), range(len(table)), str(path), "sentence")
        table = table.iloc[rows].reset_index(drop=True)
    return table


def _validated_minus_dev_test(folder: Path) -> tuple[pd.DataFrame, str]:
    """validated.tsv without the clips, speakers and sentences of dev.tsv and test.tsv."""
    table = _common_voice_table(folder, "validated")
    # all of dev and test: a clip, speaker or sentence held out stays held out
    held = pd.concat([_common_voice_table(folder, s, transcribed=False) for s in ("dev", "test")])
    in_held = table["path"].isin(set(held["path"]))
    by_speaker = ~in_held & table["client_id"].isin(set(held["client_id"]))
    by_sentence = ~in_held & ~by_speaker & table["sentence"].isin(set(held["sentence"]))
    keep = table[~(in_held | by_speaker | by_sentence)]
    note = (
        f"{COMMON_VOICE_TRAIN_ALL}: {len(keep)} of the {len(table)} clips of validated.tsv; "
        f"left out: {int(in_held.sum())} clips of dev.tsv/test.tsv, {int(by_speaker.sum())} more "
        f"by their speakers, {int(by_sentence.sum())} more reading their sentences"
    )
    return keep.reset_index(drop=True), note


def _clip_durations(folder: Path, clips: Path, names: Sequence[str]) -> list[float | None] | None:
    """Seconds of each clip from ``clip_durations.tsv`` (None: not listed or not in ``clips/``)."""
    path = folder / CLIP_DURATIONS
    if not path.is_file():
        return None
    table = _read_table(path, sep="\t", quoting=csv.QUOTE_NONE)
    _require_columns(table.columns, ("clip", "duration[ms]"), str(path))
    seconds = dict(
        zip(
            table["clip"],
            _seconds(table["duration[ms]"], str(path), "duration[ms]", 1e-3),
            strict=True,
        )
    )
    present = {entry.name for entry in os.scandir(clips)}
    return [seconds.get(name) if name in present else None for name in names]


def _from_common_voice(
    path: Path, split: str | None, sample_rate: int, cache: bool, limit: int | None
) -> AsrDataset:
    folder = _find_common_voice(path)
    if split is None:
        split = "train" if (folder / "train.tsv").is_file() else "validated"
    split = {"validation": "dev", "valid": "dev"}.get(split, split)
    if split not in COMMON_VOICE_SPLITS:
        raise ValueError(f"split must be one of {COMMON_VOICE_SPLITS}, got {split!r}")
    if split == COMMON_VOICE_TRAIN_ALL:
        table, note = _validated_minus_dev_test(folder)
        _announce(note)
    else:
        table = _common_voice_table(folder, split)
    if limit is not None:
        table = table.iloc[:limit]
    clips = folder / "clips"
    if not clips.is_dir():
        raise FileNotFoundError(f"{clips} does not exist; unpack the whole release, clips included")
    files = [clips / p for p in table["path"]]
    return AsrDataset(
        files,
        list(table["sentence"]),
        ["common_voice"] * len(files),
        list(table["client_id"]),
        names=[str(f) for f in files],
        durations=_clip_durations(folder, clips, list(table["path"])),
        sample_rate=sample_rate,
        cache=cache,
    )
