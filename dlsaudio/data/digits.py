"""Spoken digits: the bundled sample, the Free Spoken Digit Dataset and AudioMNIST.

All three name files ``<digit>_<speaker>_<take>.<ext>``; :func:`load_digits` reads any of them
into a :class:`DigitsDataset` of items in the package's one format (see :mod:`dlsaudio.data`).

Sources (the string a notebook's parameter cell holds):

* ``"sample"``: the bundled synthetic digits (14 espeak-ng speakers, 3 takes, 16 kHz).
* ``"fsdd:PATH"``: a checkout of https://github.com/Jakobovski/free-spoken-digit-dataset
  (``PATH`` or ``PATH/recordings`` holds ``<digit>_<speaker>_<take>.wav`` at 8 kHz).
* ``"audiomnist:PATH"``: a checkout of https://github.com/soerenab/AudioMNIST
  (``PATH/data/<speaker>/<digit>_<speaker>_<take>.wav`` at 48 kHz).
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from dlsaudio.audio import load_audio
from dlsaudio.data.base import CachedAudioDataset
from dlsaudio.data.paths import SAMPLE_DIR, chosen_source
from dlsaudio.smoke import on_colab

__all__ = [
    "DIGIT_SOURCES",
    "FSDD_URL",
    "DigitsDataset",
    "digits_source",
    "fetch_fsdd",
    "format_takes",
    "fsdd_official_split",
    "load_digits",
    "parse_takes",
    "speaker_split",
    "take_split",
]

DIGIT_SOURCES = ("sample", "fsdd:PATH", "audiomnist:PATH")
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"
AUDIOMNIST_URL = "https://github.com/soerenab/AudioMNIST"
DIGITS_ENV_VAR = "DLSAUDIO_DIGITS"
TEST_TAKES_ENV_VAR = "DLSAUDIO_TEST_TAKES"
#: Test takes of each source's own split. FSDD's README makes takes 0-4 of every speaker and
#: digit its test set; AudioMNIST has no official split and gets the same; the bundled sample
#: (takes 0-2) holds out take 0.
DEFAULT_TEST_TAKES = {"sample": (0,), "fsdd": (0, 1, 2, 3, 4), "audiomnist": (0, 1, 2, 3, 4)}
_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.(wav|flac)$", re.IGNORECASE)


class DigitsDataset(CachedAudioDataset):
    """Spoken digits as items ``{"wave", "sample_rate", "label", "text", "speaker", "source", "path"}``.

    ``wave`` is a ``(time,)`` float32 tensor at ``sample_rate``; ``label`` the digit; ``text``
    is None. Waves are decoded on first access and kept in memory when ``cache`` is True
    (the bundled sample takes about 13 MB as float32); subsets share the cache.

    Attributes:
        paths: file of each item.
        labels: digit of each item.
        speakers: speaker id of each item.
        takes: take number of each item.
        source: ``"sample"``, ``"fsdd"`` or ``"audiomnist"``.

    Raises:
        ValueError: the per-item arguments differ in length, or ``sample_rate`` is not positive.
    """

    columns = ("paths", "labels", "speakers", "takes")
    preload_desc = "loading digits"

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int],
        speakers: Sequence[str],
        takes: Sequence[int],
        *,
        source: str,
        sample_rate: int = 16000,
        cache: bool = True,
    ) -> None:
        self.check_lengths(paths=paths, labels=labels, speakers=speakers, takes=takes)
        super().__init__(sample_rate=sample_rate, cache=cache)
        self.paths = [Path(p) for p in paths]
        self.labels = [int(x) for x in labels]
        self.speakers = [str(s) for s in speakers]
        self.takes = [int(t) for t in takes]
        self.source = source

    def _cache_key(self, index: int) -> str:
        return str(self.paths[index])

    def _decode(self, index: int) -> torch.Tensor:
        return load_audio(self.paths[index], self.sample_rate)

    def _fields(self, index: int) -> dict:
        return {
            "label": self.labels[index],
            "text": None,
            "speaker": self.speakers[index],
            "source": self.source,
            "path": str(self.paths[index]),
        }

    def __repr__(self) -> str:
        return (
            f"DigitsDataset(source={self.source!r}, items={len(self)}, "
            f"speakers={len(set(self.speakers))}, sample_rate={self.sample_rate})"
        )


def _parse_source(source: str) -> tuple[str, Path | None]:
    if not isinstance(source, str):
        raise ValueError(f"source must be a string such as {DIGIT_SOURCES}, got {source!r}")
    kind, _, path = source.partition(":")
    if kind == "sample" and not path:
        return kind, None
    if kind in ("fsdd", "audiomnist") and path:
        return kind, Path(path).expanduser()
    raise ValueError(f"unknown digits source {source!r}; valid sources: {', '.join(DIGIT_SOURCES)}")


def _scan(files: list[Path], folder: Path) -> tuple[list[Path], list[int], list[str], list[int]]:
    """Parse ``<digit>_<speaker>_<take>`` names; audio files named otherwise are listed in one line."""
    rows, other = [], []
    for f in files:
        m = _NAME.match(f.name)
        if m:
            rows.append((f, int(m[1]), m[2], int(m[3])))
        else:
            other.append(str(f.relative_to(folder)))
    if other and rows:
        shown = ", ".join(other[:10]) + (", ..." if len(other) > 10 else "")
        print(
            f"digits: skipped {len(other)} audio file(s) in {folder} whose names are not "
            f"<digit>_<speaker>_<take>.wav: {shown}"
        )
    rows.sort(key=lambda r: (r[2], r[1], r[3]))
    return tuple(map(list, zip(*rows, strict=True))) if rows else ([], [], [], [])


def load_digits(
    source: str = "sample", sample_rate: int = 16000, cache: bool = True
) -> DigitsDataset:
    """Load a spoken-digit data set.

    Args:
        source: ``"sample"``, ``"fsdd:PATH"`` or ``"audiomnist:PATH"`` (see the module doc);
            :func:`digits_source` picks one for the current machine.
        sample_rate: the rate waves are resampled to.
        cache: keep decoded waves in memory.

    Returns:
        A :class:`DigitsDataset`, items sorted by speaker, digit and take. Audio files in the
        folder named otherwise are skipped and listed in one printed line.

    Raises:
        ValueError: unknown source, or a folder with no ``<digit>_<speaker>_<take>.wav`` file.
        FileNotFoundError: the folder does not exist (the message says where to get the data).
    """
    kind, path = _parse_source(source)
    if kind == "sample":
        folder = SAMPLE_DIR / "digits"
        with open(folder / "manifest.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        return DigitsDataset(
            [folder / r["path"] for r in rows],
            [int(r["label"]) for r in rows],
            [r["speaker"] for r in rows],
            [int(r["take"]) for r in rows],
            source="sample",
            sample_rate=sample_rate,
            cache=cache,
        )
    if kind == "fsdd":
        url, layout = FSDD_URL, "PATH/recordings/<digit>_<speaker>_<take>.wav"
        fetch = f"git clone --depth 1 {FSDD_URL}"
        if (path / "recordings").is_dir():
            path = path / "recordings"
    else:
        url, layout = AUDIOMNIST_URL, "PATH/data/<speaker>/<digit>_<speaker>_<take>.wav"
        fetch = f"git clone --depth 1 {AUDIOMNIST_URL} (about 1 GB)"
    if not path.is_dir():
        raise FileNotFoundError(
            f"{kind} folder not found: {path}. Get the data with `{fetch}` and pass "
            f"'{kind}:/path/to/checkout'; expected layout: {layout}"
        )
    found = path.glob("*") if kind == "fsdd" else path.rglob("*")
    files = sorted(f for f in found if f.suffix.lower() in (".wav", ".flac") and f.is_file())
    paths, labels, speakers, takes = _scan(files, path)
    if not paths:
        named = (
            f" (it has {len(files)} audio files named otherwise, e.g. {files[0].name})"
            if files
            else ""
        )
        raise ValueError(
            f"{path} holds no <digit>_<speaker>_<take>.wav files{named}; expected layout: "
            f"{layout} (from {url})"
        )
    return DigitsDataset(
        paths, labels, speakers, takes, source=kind, sample_rate=sample_rate, cache=cache
    )


def speaker_split(
    dataset: DigitsDataset, n_test_speakers: int | None = None, seed: int = 0
) -> tuple[DigitsDataset, DigitsDataset]:
    """Split by speaker: no speaker is in both parts (as AudioMNIST's 48/12 split).

    Args:
        dataset: the data set to split.
        n_test_speakers: speakers held out for test; default 20 % of them (at least 1).
        seed: which speakers are held out.

    Returns:
        ``(train, test)`` subsets sharing the cache.

    Raises:
        ValueError: ``n_test_speakers`` is not between 1 and the number of speakers minus 1.
    """
    speakers = sorted(set(dataset.speakers))
    if n_test_speakers is None:
        n_test_speakers = max(1, round(0.2 * len(speakers)))
    if not 1 <= n_test_speakers <= len(speakers) - 1:
        raise ValueError(
            f"n_test_speakers must be between 1 and {len(speakers) - 1} (the data set has "
            f"{len(speakers)} speakers), got {n_test_speakers}"
        )
    order = np.random.default_rng(seed).permutation(len(speakers))
    test_speakers = {speakers[i] for i in order[:n_test_speakers]}
    test = [i for i, s in enumerate(dataset.speakers) if s in test_speakers]
    train = [i for i, s in enumerate(dataset.speakers) if s not in test_speakers]
    return dataset.subset(train), dataset.subset(test)


def parse_takes(text: str | Iterable[int]) -> tuple[int, ...]:
    """Take numbers from ``"5-9"``, ``"0,1,2"``, ``"0-4,10"`` or an iterable of ints.

    Raises:
        ValueError: the text is not a comma-separated list of takes and ranges, or is empty.
    """
    if not isinstance(text, str):
        takes = tuple(int(t) for t in text)
    else:
        takes = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, dash, high = part.partition("-")
            if not low.isdigit() or (dash and not high.isdigit()):
                raise ValueError(
                    f"takes {text!r}: {part!r} is neither a take number nor a range such as 5-9"
                )
            takes.extend(range(int(low), int(high or low) + 1))
        takes = tuple(takes)
    if not takes or any(t < 0 for t in takes):
        raise ValueError(f"takes must be one or more non-negative take numbers, got {text!r}")
    return tuple(sorted(set(takes)))


def format_takes(takes: Iterable[int]) -> str:
    """``"0-2,5,7-8"`` for takes 0, 1, 2, 5, 7, 8."""
    takes = sorted(set(takes))
    runs, start = [], takes[0]
    for prev, cur in zip(takes, [*takes[1:], None], strict=True):
        if cur != prev + 1:
            runs.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur
    return ",".join(runs)


def take_split(
    dataset: DigitsDataset, test_takes: str | Iterable[int] | None = None
) -> tuple[DigitsDataset, DigitsDataset]:
    """Split by take: the test clips are other recordings of the same speakers.

    FSDD's official split holds out takes 0-4 of every speaker and digit. This split measures
    what an encoder learned about the digits; :func:`speaker_split` adds the shift to new
    voices on top.

    Args:
        dataset: the data set to split.
        test_takes: the takes held out, as ints or text (``"5-9"``); ``None`` reads
            ``DLSAUDIO_TEST_TAKES`` and falls back to the source's own split
            (:data:`DEFAULT_TEST_TAKES`: FSDD 0-4, the bundled sample take 0).

    Returns:
        ``(train, test)`` subsets sharing the cache (the same speakers are in both).

    Raises:
        ValueError: no clip has a test take (a folder of FSDD's training takes 5-49 has none of
            the official test takes: hold out validation takes, e.g. ``"5-9"``), or every clip
            has one.
    """
    if test_takes is None:
        test_takes = os.environ.get(TEST_TAKES_ENV_VAR) or DEFAULT_TEST_TAKES[dataset.source]
    wanted = set(parse_takes(test_takes))
    test = [i for i, t in enumerate(dataset.takes) if t in wanted]
    train = [i for i, t in enumerate(dataset.takes) if t not in wanted]
    if not test or not train:
        side = "test" if not test else "training"
        raise ValueError(
            f"holding out takes {format_takes(wanted)} leaves no {side} clips: this "
            f"{dataset.source} data set has takes {format_takes(dataset.takes)}. Choose other "
            f"test takes (a folder of FSDD's training takes 5-49 has none of its official test "
            f"takes 0-4: hold out validation takes with test_takes='5-9', "
            f"{TEST_TAKES_ENV_VAR}=5-9 or --test-takes 5-9)"
        )
    return dataset.subset(train), dataset.subset(test)


def fsdd_official_split(dataset: DigitsDataset) -> tuple[DigitsDataset, DigitsDataset]:
    """The Free Spoken Digit Dataset's official split: takes 0-4 are test, the rest train.

    Raises:
        ValueError: as :func:`take_split` (a folder without takes 0-4, or the bundled sample).
    """
    return take_split(dataset, DEFAULT_TEST_TAKES["fsdd"])


def fetch_fsdd(cache_dir: str | Path | None = None, timeout: float = 600) -> Path:
    """Clone the Free Spoken Digit Dataset (about 20 MB of audio) unless already there.

    Args:
        cache_dir: where to clone; default ``~/.cache/dlsaudio/free-spoken-digit-dataset``.
        timeout: seconds before giving up.

    Returns:
        The checkout folder (``load_digits(f"fsdd:{path}")`` reads it).

    Raises:
        RuntimeError: git is missing or the clone failed (no network, GitHub down).
    """
    path = Path(cache_dir or Path.home() / ".cache" / "dlsaudio" / "free-spoken-digit-dataset")
    if any((path / "recordings").glob("*.wav")):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["git", "clone", "--depth", "1", "--quiet", FSDD_URL, str(path)],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", b"") or b""
        raise RuntimeError(
            f"cannot clone {FSDD_URL} into {path}: {err} {detail.decode(errors='replace').strip()}"
        ) from None
    return path


def digits_source(default: str | None = None) -> str:
    """The digits source a notebook should use here, announced in one printed line.

    * Smoke mode (``DLSAUDIO_SMOKE=1``): always ``"sample"``.
    * Otherwise ``default`` when given, else the ``DLSAUDIO_DIGITS`` environment variable.
    * Otherwise on Colab: the Free Spoken Digit Dataset, cloned by :func:`fetch_fsdd`;
      when that fails, ``"sample"``.
    * Elsewhere: ``"sample"`` (pass ``"fsdd:PATH"`` or ``"audiomnist:PATH"`` for real data).

    Raises:
        ValueError: ``default`` or the environment variable is not a valid source.
    """
    choice = chosen_source("digits", default, DIGITS_ENV_VAR, _parse_source)
    if choice:
        return choice
    if on_colab():
        try:
            path = fetch_fsdd()
        except RuntimeError as err:
            print(
                f"digits: using the bundled sample, the Free Spoken Digit Dataset is unreachable ({err})"
            )
            return "sample"
        print(f"digits: using the Free Spoken Digit Dataset in {path}")
        return f"fsdd:{path}"
    print(
        "digits: using the bundled sample (not on Colab; pass 'fsdd:PATH' or 'audiomnist:PATH' "
        f"or set {DIGITS_ENV_VAR} for real recordings)"
    )
    return "sample"
