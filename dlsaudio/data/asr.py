"""Speech with transcripts: the bundled Kyrgyz sample, Common Voice, manifests and HF datasets.

:func:`load_asr` reads any of these into an :class:`AsrDataset` of items in the package's one
format (``label`` is None, ``text`` the transcript, ``source`` where the example comes from).

Sources (the string a notebook's parameter cell holds):

* ``"sample"``: the bundled synthetic sample, sources ``ky_tts``, ``ky_tts_noisy``, ``kk_tts``
  (see :mod:`dlsaudio.data.generate`).
* ``"common_voice:PATH"``: a Common Voice release from Mozilla Data Collective
  (https://datacollective.mozillafoundation.org), unpacked: ``PATH`` holds ``validated.tsv`` or
  ``train.tsv``/``dev.tsv``/``test.tsv`` and ``clips/*.mp3`` (or is a folder above it, such
  as the archive's root, that holds one language). Common Voice left the Hugging Face Hub in
  October 2025.
* ``"manifest:PATH"``: a CSV or TSV file with columns ``path,text`` and optionally ``source``,
  ``speaker`` (or ``client_id``, ``speaker_id``), ``duration`` (seconds) and ``split``;
  relative paths are relative to the manifest.
* ``"hf:NAME"`` or ``"hf:NAME:CONFIG"``: a Hugging Face ``datasets`` data set from the Hub, a
  local folder (parquet, audiofolder) or a ``save_to_disk`` folder. Audio is decoded with
  soundfile (the column is cast to ``datasets.Audio(decode=False)``; an audiofolder's
  ``metadata.csv`` is read directly), so neither torchcodec nor a system FFmpeg is needed.

Sources without named splits get a seeded, printed hold-out for ``split="test"``
(:func:`hold_out`); see :func:`load_asr`.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dlsaudio.audio_io import _decode, load_audio
from dlsaudio.data.base import CachedAudioDataset
from dlsaudio.data.paths import SAMPLE_DIR
from dlsaudio.smoke import is_smoke, on_colab

__all__ = [
    "ASR_SOURCES",
    "COMMON_VOICE_HINT",
    "AsrDataset",
    "DatasetUnavailableError",
    "asr_source",
    "concat_asr",
    "hold_out",
    "load_asr",
    "load_asr_splits",
]

ASR_SOURCES = ("sample", "common_voice:PATH", "manifest:PATH", "hf:NAME[:CONFIG]")
MDC_URL = "https://datacollective.mozillafoundation.org"
COMMON_VOICE_HINT = (
    "Common Voice left the Hugging Face Hub in October 2025; download the release from "
    f"Mozilla Data Collective ({MDC_URL}), unpack it and pass 'common_voice:/path/to/ky' "
    "(the folder with validated.tsv and clips/)"
)
COMMON_VOICE_ENV_VAR = "DLSAUDIO_COMMON_VOICE"
ASR_ENV_VAR = "DLSAUDIO_ASR"
COMMON_VOICE_DEFAULT_PATHS = (
    "/content/common_voice/ky",
    "/content/drive/MyDrive/common_voice/ky",
    "~/data/common_voice/ky",
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
SPEAKER_COLUMNS = ("client_id", "speaker_id", "speaker")
HOLDOUT_FRACTION = 0.2
"""Share of each source's speakers (or rows) held out as the test split of data without one."""
_SPLIT_ALIASES = {
    "dev": ("validation", "valid"),
    "validation": ("dev", "valid"),
    "valid": ("dev", "validation"),
}


class DatasetUnavailableError(RuntimeError):
    """A data set cannot be reached or no longer exists where it is looked for."""


def _load_bytes(data: bytes, name: str, sample_rate: int) -> torch.Tensor:
    """Decode encoded audio bytes with the checks of :func:`dlsaudio.audio.load_audio`."""
    return _decode(io.BytesIO(data), name, sample_rate)


class _HfAudioColumn:
    """Lazy view of an undecoded ``datasets.Audio`` column: ``{"bytes", "path"}`` per row."""

    def __init__(self, dataset, column: str, name: str) -> None:
        self.dataset, self.column, self.name = dataset, column, name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[int(index)][self.column]


class AsrDataset(CachedAudioDataset):
    """Utterances as items ``{"wave", "sample_rate", "label": None, "text", "speaker", "source", "path"}``.

    Attributes:
        texts: transcript of each item.
        sources: source name of each item (for :class:`dlsaudio.sampling.SourceWeightedSampler`).
        speakers: speaker id of each item (``""`` when unknown).
        paths: file (or ``NAME[row]`` for in-memory audio) of each item.
        durations: seconds of each item when known without decoding, else None.

    Raises:
        ValueError: the per-item arguments differ in length, or ``sample_rate`` is not positive.
    """

    columns = ("texts", "sources", "speakers", "paths", "durations", "_index")

    def __init__(
        self,
        audio: Sequence,
        texts: Sequence[str],
        sources: Sequence[str],
        speakers: Sequence[str] | None = None,
        *,
        names: Sequence[str] | None = None,
        durations: Sequence[float | None] | None = None,
        sample_rate: int = 16000,
        cache: bool = True,
    ) -> None:
        n = len(audio)
        speakers = [""] * n if speakers is None else list(speakers)
        durations = [None] * n if durations is None else list(durations)
        names = [f"audio[{i}]" for i in range(n)] if names is None else list(names)
        given = {"audio": audio, "texts": texts, "sources": sources, "speakers": speakers}
        self.check_lengths(**given, names=names, durations=durations)
        super().__init__(sample_rate=sample_rate, cache=cache)
        self._audio = audio
        self._index = list(range(n))  # position of each item's audio in self._audio
        self.texts = [str(t) for t in texts]
        self.sources = [str(s) for s in sources]
        self.speakers = [str(s) for s in speakers]
        self.paths = [str(p) for p in names]
        self.durations = durations

    def _cache_key(self, index: int) -> int:
        return self._index[index]

    def _decode(self, index: int) -> torch.Tensor:
        ref = self._audio[self._index[index]]
        if not isinstance(ref, dict):
            return load_audio(ref, self.sample_rate)
        if ref.get("bytes"):
            return _load_bytes(ref["bytes"], self.paths[index], self.sample_rate)
        if ref.get("path"):
            return load_audio(ref["path"], self.sample_rate)
        raise ValueError(f"{self.paths[index]}: the audio cell has neither bytes nor a path")

    def _fields(self, index: int) -> dict:
        return {
            "label": None,
            "text": self.texts[index],
            "speaker": self.speakers[index],
            "source": self.sources[index],
            "path": self.paths[index],
        }

    def with_source(self, name: str) -> AsrDataset:
        """A copy in which every item's ``source`` is ``name``."""
        out = self.subset(range(len(self)))
        out.sources = [name] * len(out)
        return out

    def __repr__(self) -> str:
        counts = pd.Series(self.sources, dtype=object).value_counts().to_dict()
        return f"AsrDataset(items={len(self)}, sources={counts}, sample_rate={self.sample_rate})"


def concat_asr(*datasets: AsrDataset) -> AsrDataset:
    """Join data sets (for example Common Voice and the synthetic sample) into one.

    Raises:
        ValueError: no data set given, or their sample rates differ.
    """
    if not datasets:
        raise ValueError("concat_asr needs at least one AsrDataset")
    rates = {d.sample_rate for d in datasets}
    if len(rates) != 1:
        raise ValueError(f"all data sets must have the same sample_rate, got {sorted(rates)}")
    refs = [(d, i) for d in datasets for i in range(len(d))]
    audio = [d._audio[d._index[i]] for d, i in refs]
    return AsrDataset(
        audio,
        [t for d in datasets for t in d.texts],
        [s for d in datasets for s in d.sources],
        [s for d in datasets for s in d.speakers],
        names=[p for d in datasets for p in d.paths],
        durations=[x for d in datasets for x in d.durations],
        sample_rate=rates.pop(),
        cache=all(d._cache is not None for d in datasets),
    )


def _require_columns(columns: Sequence[str], required: Sequence[str], where: str) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(
            f"{where} lacks the column(s) {missing}; it has {list(columns)} "
            f"and needs {list(required)}"
        )


def _read_table(
    path: Path, sep: str | None = None, quoting: int = csv.QUOTE_MINIMAL
) -> pd.DataFrame:
    """A CSV or TSV table as strings, with errors that name the file and the line."""
    sep = sep or ("\t" if path.suffix.lower() == ".tsv" else ",")
    kind = "TSV" if sep == "\t" else "CSV"
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=quoting)
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path} is empty ({path.stat().st_size} bytes, no header line); write a {kind} "
            "with a header line and one row per clip"
        ) from None
    except pd.errors.ParserError as err:
        raise ValueError(
            f"{path}: cannot be read as a {kind} table ({str(err).strip()}): a row has more "
            "fields than the header, so the file is damaged or was edited; restore it (for "
            "Common Voice, unpack the release again) or fix that line"
        ) from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: is not UTF-8 text ({err}); save it as UTF-8") from None


def _seconds(
    values: Sequence[str], where: str, column: str, scale: float = 1.0
) -> list[float | None]:
    """Parse a duration column: an empty cell is unknown (None); anything else must be a number."""
    out: list[float | None] = []
    for row, value in enumerate(values):
        if not str(value).strip():
            out.append(None)
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(
                f"{where}, line {row + 2}: {column} is {value!r}, expected a non-negative "
                "number or an empty cell (unknown, measured when the clip is decoded)"
            )
        out.append(seconds)
    return out


def _speaker_column(columns: Sequence[str]) -> str | None:
    return next((c for c in SPEAKER_COLUMNS if c in columns), None)


def hold_out(
    sources: Sequence[str],
    speakers: Sequence[str] | None = None,
    fraction: float = HOLDOUT_FRACTION,
    seed: int = 0,
) -> tuple[list[int], str]:
    """The rows of a seeded test split for data that has none, and how they were chosen.

    Whole speakers are held out when every row names its speaker and every source has at
    least two: in each source, ``max(1, round(fraction * its speakers))`` of its speakers, so
    that no voice is heard both in training and in the test. A speaker held out for one source
    is held out in every source (a noisy copy of a test utterance is not trained on).
    Otherwise ``round(fraction * rows)`` rows of each source are held out (at least one; none
    of a source with a single row), so every source is scored.

    Args:
        sources: source name of each row.
        speakers: speaker of each row, ``""`` when unknown; None when no row has one.
        fraction: share of speakers (or rows) of each source held out.
        seed: which ones.

    Returns:
        ``(test_rows, how)``: sorted row indices of the test split (the train split is every
        other row) and one sentence saying how they were chosen.

    Raises:
        ValueError: ``fraction`` is not between 0 and 1, or there are fewer than two rows.
    """
    if not (isinstance(fraction, numbers.Real) and 0 < fraction < 1):
        raise ValueError(f"holdout must be a fraction between 0 and 1, got {fraction!r}")
    if len(sources) < 2:
        raise ValueError(
            f"cannot hold out a test split from {len(sources)} row(s); give at least 2"
        )
    rng = np.random.default_rng(seed)
    rows_of: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        rows_of.setdefault(source, []).append(i)
    if speakers is not None and all(str(s).strip() for s in speakers):
        voices = {s: sorted({speakers[i] for i in rows}) for s, rows in rows_of.items()}
        if all(len(v) >= 2 for v in voices.values()):
            held: set[str] = set()
            for names in voices.values():
                want = max(1, round(fraction * len(names))) - sum(n in held for n in names)
                free = [n for n in names if n not in held]
                held.update(free[k] for k in rng.permutation(len(free))[: max(want, 0)])
            if all(any(n not in held for n in names) for names in voices.values()):
                test = [i for i, s in enumerate(speakers) if s in held]
                return test, (
                    f"held out by speaker: {len(held)} of {len(set(speakers))} speakers "
                    f"({', '.join(sorted(held)[:8])}{', ...' if len(held) > 8 else ''}), "
                    f"{fraction:.0%} of each source's speakers (seed {seed})"
                )
    test = []
    for rows in rows_of.values():
        take = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        test += [rows[k] for k in rng.permutation(len(rows))[:take]]
    return sorted(test), (
        f"held out by row: {fraction:.0%} of the rows of each source (seed {seed}; speakers "
        "are not known for every row, so a voice may be on both sides)"
    )


def _split_rows(
    split: str | None,
    where: str,
    split_column: Sequence[str] | None,
    sources: Sequence[str],
    speakers: Sequence[str] | None,
    holdout: float,
    seed: int,
) -> tuple[list[int], str | None]:
    """Rows of ``split`` in data without named splits, and a line saying which and how."""
    n = len(sources)
    if split is None:
        return list(range(n)), None
    if split_column is not None:
        names = sorted(set(split_column))
        for name in (split, *_SPLIT_ALIASES.get(split, ())):
            rows = [i for i, s in enumerate(split_column) if s == name]
            if rows:
                return (
                    rows,
                    f"{where}: split {split!r} = the {len(rows)} of {n} rows marked {name!r} in its split column",
                )
        raise ValueError(f"{where}: no row has split {split!r}; its split column holds {names}")
    if split not in ("train", "test"):
        raise ValueError(
            f"{where} has no split column, so split must be 'train' or 'test' (a seeded "
            f"hold-out) or None (every row), got {split!r}"
        )
    test, how = hold_out(sources, speakers, holdout, seed)
    train = sorted(set(range(n)) - set(test))
    rows = test if split == "test" else train
    return rows, (
        f"{where} has no test split; {how}: split 'test' = {len(test)} rows, split 'train' = "
        f"the other {len(train)}; this is split {split!r}"
    )


def _announce(note: str | None) -> None:
    if note:
        print(f"asr: {note}")


def _from_table(
    table: pd.DataFrame,
    base: Path,
    where: str,
    *,
    path_column: str,
    text_column: str,
    default_source: str,
    split: str | None,
    sample_rate: int,
    cache: bool,
    limit: int | None,
    holdout: float,
    seed: int,
) -> AsrDataset:
    """An :class:`AsrDataset` from a table of audio files (a manifest or audiofolder metadata)."""
    _require_columns(table.columns, (path_column, text_column), where)
    if table.empty:
        raise ValueError(f"{where}: the manifest has no rows (only a header); add one row per clip")
    empty = [i + 2 for i, p in enumerate(table[path_column]) if not str(p).strip()]
    if empty:
        raise ValueError(f"{where}, line(s) {empty[:10]}: the {path_column} cell is empty")
    files = [Path(p) if Path(p).is_absolute() else base / p for p in table[path_column]]
    sources = list(table["source"]) if "source" in table else [default_source] * len(table)
    speaker = _speaker_column(table.columns)
    speakers = list(table[speaker]) if speaker else None
    durations = _seconds(table["duration"], where, "duration") if "duration" in table else None
    split_column = list(table["split"]) if "split" in table else None
    rows, note = _split_rows(split, where, split_column, sources, speakers, holdout, seed)
    _announce(note)
    data = AsrDataset(
        files,
        list(table[text_column]),
        sources,
        speakers,
        names=[str(f) for f in files],
        durations=durations,
        sample_rate=sample_rate,
        cache=cache,
    )
    rows = rows[:limit] if limit is not None else rows
    return data if len(rows) == len(data) else data.subset(rows)


def _from_manifest(path: Path, default_source: str, **options) -> AsrDataset:
    if not path.is_file():
        raise FileNotFoundError(
            f"manifest not found: {path}; write a CSV or TSV with columns path,text[,source,speaker]"
        )
    return _from_table(
        _read_table(path),
        path.parent,
        str(path),
        path_column="path",
        text_column="text",
        default_source=default_source,
        **options,
    )


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


def _common_voice_table(folder: Path, split: str) -> pd.DataFrame:
    path = folder / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; this release has the splits {_common_voice_splits(folder)}"
        )
    table = _read_table(path, sep="\t", quoting=csv.QUOTE_NONE)
    _require_columns(table.columns, COMMON_VOICE_COLUMNS, str(path))
    return table


def _validated_minus_dev_test(folder: Path) -> tuple[pd.DataFrame, str]:
    """validated.tsv without the clips, speakers and sentences of dev.tsv and test.tsv."""
    table = _common_voice_table(folder, "validated")
    held = pd.concat([_common_voice_table(folder, s) for s in ("dev", "test")])
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


def _audiofolder_metadata(folder: Path) -> dict[str | None, Path]:
    """``{None: file}`` for an audiofolder without splits, ``{split: file}`` for split folders."""
    found = {}
    for name in ("metadata.csv", "metadata.jsonl"):
        if (folder / name).is_file():
            found[None] = folder / name
        for sub in sorted(folder.glob(f"*/{name}")):
            found[sub.parent.name] = sub
    return found


def _from_audiofolder(
    folder: Path, metadata: dict[str | None, Path], split: str | None, text_column: str, **options
) -> AsrDataset:
    """The ``audiofolder`` layout read directly: datasets' builder needs torchcodec for it."""
    if None in metadata:
        file, table_split = metadata[None], split
    else:
        wanted = split or "train"
        name = next((n for n in (wanted, *_SPLIT_ALIASES.get(wanted, ())) if n in metadata), None)
        if name is None:
            raise ValueError(f"{folder} has no split {wanted!r}; it has {sorted(metadata)}")
        file, table_split = metadata[name], None
    if file.suffix == ".jsonl":
        try:
            table = pd.read_json(file, lines=True, dtype=False).astype(str)
        except ValueError as err:
            raise ValueError(f"{file}: cannot be read as JSON lines ({err})") from None
    else:
        table = _read_table(file)
    return _from_table(
        table,
        file.parent,
        str(file),
        path_column="file_name",
        text_column=text_column,
        default_source=folder.name,
        split=table_split,
        **options,
    )


def _missing_torchcodec(err: BaseException) -> bool:
    while err is not None:
        if isinstance(err, ImportError) and "torchcodec" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _hf_split(data, split: str | None, where: str):
    """One split of a ``DatasetDict``; a clear error listing the splits when it is not there."""
    wanted = split or "train"
    for name in (wanted, *_SPLIT_ALIASES.get(wanted, ())):
        if name in data:
            return data[name]
    raise ValueError(f"{where} has no split {wanted!r}; it has {sorted(data)}")


def _from_hf(
    spec: str,
    split: str | None,
    sample_rate: int,
    cache: bool,
    audio_column: str,
    text_column: str,
    source_column: str | None,
    limit: int | None,
    revision: str | None,
    holdout: float,
    seed: int,
) -> AsrDataset:
    import datasets

    name, _, config = spec.partition(":")
    if name.lower().startswith("mozilla-foundation/common_voice") and not Path(name).exists():
        raise DatasetUnavailableError(f"cannot load {name!r}: {COMMON_VOICE_HINT}")
    local = Path(name).expanduser()
    unsplit = False  # True: the rows have no named split, so split= selects a hold-out
    if local.is_dir() and _audiofolder_metadata(local):
        return _from_audiofolder(
            local,
            _audiofolder_metadata(local),
            split,
            text_column,
            sample_rate=sample_rate,
            cache=cache,
            limit=limit,
            holdout=holdout,
            seed=seed,
        )
    parent = local.parent
    if (
        (local / "dataset_info.json").is_file()
        and (parent / "dataset_dict.json").is_file()
        and split not in (None, local.name)
    ):
        raise ValueError(
            f"{local} is the {local.name!r} split of the DatasetDict saved in {parent}; "
            f"pass 'hf:{parent}' with split={split!r}"
        )
    try:
        if (local / "dataset_dict.json").is_file() or (local / "dataset_info.json").is_file():
            data = datasets.load_from_disk(str(local))
            # a saved Dataset has no splits, unless it is one split folder of a DatasetDict
            unsplit = (
                isinstance(data, datasets.Dataset) and not (parent / "dataset_dict.json").is_file()
            )
        elif local.exists():
            data = datasets.load_dataset(str(local), config or None, revision=revision)
        else:
            data = datasets.load_dataset(
                name, config or None, split=split or "train", revision=revision
            )
    except ValueError as err:
        raise ValueError(f"cannot load split {split or 'train'!r} of {name!r}: {err}") from None
    except Exception as err:  # Hub errors come in many types; the message says what to do
        if _missing_torchcodec(err):
            raise DatasetUnavailableError(
                f"cannot load {name!r}: datasets needs the torchcodec package to read this "
                "layout. Install it (pip install torchcodec, which needs FFmpeg), or list the "
                "clips in a manifest (columns path,text) and pass 'manifest:PATH'"
            ) from None
        if "script" in str(err).lower() and revision is None:
            raise DatasetUnavailableError(
                f"cannot load {name!r}: it is a data set with a loading script, which datasets "
                ">= 4 no longer runs. Read the Hub's Parquet conversion instead: pass "
                "revision='refs/convert/parquet' (FLEURS: load_asr('hf:google/fleurs:ky_kg', "
                "revision='refs/convert/parquet', text_column='transcription'))"
            ) from None
        raise DatasetUnavailableError(
            f"cannot load {name!r} (config {config or None!r}, split {split or 'train'!r}): "
            f"{type(err).__name__}: {err}. Check the name and the network, or download the data "
            "and pass 'manifest:PATH' or 'hf:/local/folder'"
        ) from None
    if isinstance(data, datasets.DatasetDict):
        if len(data) == 1 and split in ("train", "test"):  # one split: hold the test out of it
            data, unsplit = next(iter(data.values())), True
        else:
            data = _hf_split(data, split, str(local))
    _require_columns(data.column_names, [audio_column, text_column], f"data set {name!r}")
    if source_column is not None:
        _require_columns(data.column_names, [source_column], f"data set {name!r}")
    sources = (
        [str(s) for s in data[source_column]]
        if source_column
        else [name.rstrip("/").split("/")[-1]] * len(data)
    )
    speaker = _speaker_column(data.column_names)
    speakers = [str(s) for s in data[speaker]] if speaker else None
    if unsplit:
        split_column = [str(s) for s in data["split"]] if "split" in data.column_names else None
        rows, note = _split_rows(split, name, split_column, sources, speakers, holdout, seed)
        _announce(note)
    else:
        rows = list(range(len(data)))
    rows = rows[:limit] if limit is not None else rows
    if len(rows) != len(data):
        data = data.select(rows)
    data = data.cast_column(audio_column, datasets.Audio(decode=False))
    return AsrDataset(
        _HfAudioColumn(data, audio_column, name),
        data[text_column],
        [sources[i] for i in rows],
        None if speakers is None else [speakers[i] for i in rows],
        names=[f"{name}[{i}]" for i in rows],
        sample_rate=sample_rate,
        cache=cache,
    )


def load_asr(
    source: str = "sample",
    sample_rate: int = 16000,
    *,
    split: str | None = None,
    cache: bool | None = None,
    limit: int | None = None,
    revision: str | None = None,
    audio_column: str = "audio",
    text_column: str = "sentence",
    source_column: str | None = None,
    holdout: float = HOLDOUT_FRACTION,
    holdout_seed: int = 0,
) -> AsrDataset:
    """Load speech with transcripts.

    Splits. A source with named splits (Common Voice, a Hugging Face ``DatasetDict``, split
    folders) gives the one asked for. A source without them (a manifest, the bundled sample, a
    data set saved with ``save_to_disk`` without splits, a folder with a single split) gives
    every row for ``split=None``; for ``"train"`` and ``"test"`` it uses its ``split`` column
    when it has one, else a seeded hold-out (:func:`hold_out`): whole speakers when the
    speakers are known, else rows, ``holdout`` of each source. ``"test"`` never returns a row
    of ``"train"``; one printed line says which rows were held out and how.

    Common Voice splits: ``train.tsv`` of a release is a small part of its validated hours
    (at most one clip per sentence). ``split="validated-minus-dev-test"`` trains on
    ``validated.tsv`` without every clip of ``dev.tsv`` and ``test.tsv`` and without every
    other clip by their speakers or of their sentences, so the test stays speaker- and
    sentence-disjoint; one printed line gives the counts. When the release has
    ``clip_durations.tsv``, clip lengths are read from it instead of decoding every clip.

    Args:
        source: ``"sample"``, ``"common_voice:PATH"``, ``"manifest:PATH"`` or
            ``"hf:NAME[:CONFIG]"`` (see the module doc); :func:`asr_source` picks one.
        sample_rate: the rate waves are resampled to (Whisper wants 16000).
        split: Common Voice: ``train``, ``dev`` (alias ``validation``), ``test``,
            ``validated`` or ``validated-minus-dev-test``; default ``train`` when the release
            has it, else ``validated``. Hugging Face: the split name, default ``train``.
            Sources without splits: None (every row), ``train`` or ``test`` (see above).
        cache: keep decoded waves in memory; default: only for the bundled sample (Common
            Voice ky, decoded, would not fit in a free Colab session).
        limit: keep only the first ``limit`` rows of the split.
        audio_column: Hugging Face only: the audio column.
        text_column: Hugging Face only: the transcript column (FLEURS calls it
            ``transcription``).
        source_column: Hugging Face only: a column with source names; default: the data set
            name for every row.
        revision: Hugging Face only: the Hub revision, e.g. ``"refs/convert/parquet"`` for
            data sets whose loading script ``datasets`` >= 4 no longer runs (FLEURS).
        holdout: sources without splits: the share of each source's speakers (or rows)
            held out as the test split.
        holdout_seed: sources without splits: which speakers (or rows) are held out.

    Returns:
        An :class:`AsrDataset`.

    Raises:
        ValueError: unknown source prefix (the message lists the valid ones), a table without
            the required columns or that cannot be parsed, an unknown split, an empty
            manifest, a bad duration cell.
        FileNotFoundError: a folder, table or manifest does not exist.
        DatasetUnavailableError: a Hugging Face data set cannot be loaded (for Common Voice the
            message says to download it from Mozilla Data Collective).
    """
    if not isinstance(source, str):
        raise ValueError(f"source must be a string such as {ASR_SOURCES}, got {source!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of rows or None, got {limit!r}")
    if split is not None and not isinstance(split, str):
        raise ValueError(f"split must be a split name such as 'train' or 'test', got {split!r}")
    kind, _, rest = source.partition(":")
    cache = kind == "sample" if cache is None else cache
    table_options = dict(
        split=split,
        sample_rate=sample_rate,
        cache=cache,
        limit=limit,
        holdout=holdout,
        seed=holdout_seed,
    )
    if kind == "sample" and not rest:
        return _from_manifest(SAMPLE_DIR / "asr" / "manifest.csv", "sample", **table_options)
    if kind == "manifest" and rest:
        path = Path(rest).expanduser()
        return _from_manifest(path, path.stem, **table_options)
    if kind == "common_voice" and rest:
        return _from_common_voice(Path(rest).expanduser(), split, sample_rate, cache, limit)
    if kind == "hf" and rest:
        return _from_hf(
            rest,
            split,
            sample_rate,
            cache,
            audio_column,
            text_column,
            source_column,
            limit,
            revision,
            holdout,
            holdout_seed,
        )
    raise ValueError(f"unknown ASR source {source!r}; valid sources: {', '.join(ASR_SOURCES)}")


def load_asr_splits(source: str = "sample", **options) -> tuple[AsrDataset, AsrDataset]:
    """The training and test utterances of a source, ``(train, test)``, sharing no utterance.

    ``load_asr(source, split="train")`` and ``load_asr(source, split="test")``: a source
    without a test split of its own (the sample, a manifest without a ``split`` column) holds
    out whole speakers per source, seeded, and prints how.

    Args:
        source: as for :func:`load_asr`.
        **options: other arguments of :func:`load_asr` (``revision``, ``text_column``, ...).

    Raises:
        The errors of :func:`load_asr`.
    """
    return load_asr(source, split="train", **options), load_asr(source, split="test", **options)


def _validate_source(source: str) -> None:
    kind, _, rest = source.partition(":")
    if not (
        (kind == "sample" and not rest) or (kind in ("manifest", "common_voice", "hf") and rest)
    ):
        raise ValueError(f"unknown ASR source {source!r}; valid sources: {', '.join(ASR_SOURCES)}")


def asr_source(default: str | None = None) -> str:
    """The ASR source a notebook should use here, announced in one printed line.

    * Smoke mode (``DLSAUDIO_SMOKE=1``): always ``"sample"``.
    * Otherwise ``default`` when given, else the ``DLSAUDIO_ASR`` environment variable.
    * Otherwise the Common Voice release that ``DLSAUDIO_COMMON_VOICE`` names (the language
      folder or any folder above it that :func:`load_asr` accepts) or, on Colab, the first of
      :data:`COMMON_VOICE_DEFAULT_PATHS` that exists.
    * Otherwise ``"sample"``, saying how to get Common Voice.

    A folder that was named (by the variable, or by existing at a default place) but holds no
    Common Voice release is an error, never a silent switch to the synthetic sample.

    Raises:
        ValueError: ``default`` or ``DLSAUDIO_ASR`` is not a valid source, or the folder holds
            no Common Voice tables.
        FileNotFoundError: ``DLSAUDIO_COMMON_VOICE`` names a folder that does not exist.
    """
    if is_smoke():
        print("asr: using the bundled sample (smoke mode, DLSAUDIO_SMOKE=1)")
        return "sample"
    choice = default or os.environ.get(ASR_ENV_VAR)
    if choice:
        _validate_source(choice)
        print(f"asr: using {choice}")
        return choice
    named = os.environ.get(COMMON_VOICE_ENV_VAR)
    candidates = [(named, True)] if named else []
    if on_colab():
        candidates += [(p, False) for p in COMMON_VOICE_DEFAULT_PATHS]
    for candidate, given in candidates:
        path = Path(candidate).expanduser()
        if not (given or path.exists()):
            continue
        try:
            folder = _find_common_voice(path)
        except (FileNotFoundError, ValueError) as err:
            if given:
                raise type(err)(
                    f"{COMMON_VOICE_ENV_VAR}={candidate!r} is not a Common Voice release: {err}; "
                    f"fix the path or unset {COMMON_VOICE_ENV_VAR}"
                ) from None
            raise type(err)(
                f"{path} is where Colab notebooks look for Common Voice, but it is not a "
                f"release: {err}; unpack the release there or remove the folder"
            ) from None
        print(f"asr: using Common Voice in {folder}")
        return f"common_voice:{folder}"
    print(
        f"asr: using the bundled sample, no Common Voice folder found (set {COMMON_VOICE_ENV_VAR}); "
        f"download Common Voice ky from {MDC_URL}"
    )
    return "sample"
