"""Hugging Face ``datasets`` data sets: from the Hub, a local folder or ``save_to_disk``.

Audio is decoded with soundfile (the column is cast to ``datasets.Audio(decode=False)``; an
audiofolder's metadata is read directly), so neither torchcodec nor a system FFmpeg is needed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlsaudio.data.common_voice import COMMON_VOICE_HINT
from dlsaudio.data.tables import (
    _SPLIT_ALIASES,
    _announce,
    _from_table,
    _read_table,
    _require_columns,
    _speaker_column,
    _split_rows,
    _with_text,
)
from dlsaudio.data.utterances import AsrDataset, DatasetUnavailableError

PARQUET_REVISION = "refs/convert/parquet"
"""The Hub's Parquet conversion of a data set, read when its own revision has a loading script."""
TEXT_COLUMNS = ("sentence", "transcription", "text")
"""Transcript columns looked for, in order, when none is named: Common Voice's, FLEURS's
(normalised; its ``raw_transcription`` keeps case and punctuation), the generic one."""


def _text_column(columns, given: str | None, where: str) -> str:
    """The transcript column: ``given`` when named, else the first of :data:`TEXT_COLUMNS`."""
    if given is not None:
        return given
    found = next((c for c in TEXT_COLUMNS if c in columns), None)
    if found is None:
        raise ValueError(
            f"{where} has none of the transcript columns {list(TEXT_COLUMNS)}; it has "
            f"{list(columns)}: name the one to use with text_column="
        )
    return found


def _source_name(name: str, config: str) -> str:
    """``fleurs_ky_kg`` for ``google/fleurs:ky_kg``: two configs of one data set stay apart."""
    base = name.rstrip("/").split("/")[-1]
    return f"{base}_{config}" if config else base


def _durations(data, audio_column: str) -> list[float] | None:
    """Seconds per row from a ``num_samples`` column (FLEURS) and the audio feature's rate."""
    rate = getattr(data.features.get(audio_column), "sampling_rate", None)
    if "num_samples" not in data.column_names or not rate:
        return None
    return [int(n) / rate for n in data["num_samples"]]


class _HfAudioColumn:
    """Lazy view of an undecoded ``datasets.Audio`` column: ``{"bytes", "path"}`` per row."""

    def __init__(self, dataset, column: str, name: str) -> None:
        self.dataset, self.column, self.name = dataset, column, name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[int(index)][self.column]


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
    folder: Path,
    metadata: dict[str | None, Path],
    split: str | None,
    text_column: str | None,
    **options,
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
    first_line = 2  # below the header line
    if file.suffix == ".jsonl":
        try:
            table = pd.read_json(file, lines=True, dtype=False)
        except ValueError as err:
            raise ValueError(f"{file}: cannot be read as JSON lines ({err})") from None
        if text_column in table:  # a null transcript is no text, not the word "None"
            table[text_column] = table[text_column].fillna("")
        table, first_line = table.astype(str), 1
    else:
        table = _read_table(file)
    return _from_table(
        table,
        file.parent,
        str(file),
        path_column="file_name",
        text_column=_text_column(table.columns, text_column, str(file)),
        default_source=folder.name,
        split=table_split,
        first_line=first_line,
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
    text_column: str | None,
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
        if "script" in str(err).lower() and revision is None and not local.exists():
            _announce(
                f"{name} has a loading script, which datasets >= 4 no longer runs; reading the "
                f"Hub's Parquet conversion of the same data (revision {PARQUET_REVISION!r})"
            )
            return _from_hf(
                spec,
                split,
                sample_rate,
                cache,
                audio_column,
                text_column,
                source_column,
                limit,
                PARQUET_REVISION,
                holdout,
                seed,
            )
        raise DatasetUnavailableError(
            f"cannot load {name!r} (config {config or None!r}, split {split or 'train'!r}"
            f"{'' if revision is None else f', revision {revision!r}'}): "
            f"{type(err).__name__}: {err}. Check the name and the network, or download the data "
            "and pass 'manifest:PATH' or 'hf:/local/folder'"
        ) from None
    if isinstance(data, datasets.DatasetDict):
        if len(data) == 1 and split in ("train", "test"):  # one split: hold the test out of it
            data, unsplit = next(iter(data.values())), True
        else:
            data = _hf_split(data, split, str(local))
    text_column = _text_column(data.column_names, text_column, f"data set {name!r}")
    _require_columns(data.column_names, [audio_column, text_column], f"data set {name!r}")
    if source_column is not None:
        _require_columns(data.column_names, [source_column], f"data set {name!r}")
    sources = (
        [str(s) for s in data[source_column]]
        if source_column
        else [_source_name(name, config)] * len(data)
    )
    speaker = _speaker_column(data.column_names)
    speakers = [str(s) for s in data[speaker]] if speaker else None
    if unsplit:
        split_column = [str(s) for s in data["split"]] if "split" in data.column_names else None
        rows, note = _split_rows(split, name, split_column, sources, speakers, holdout, seed)
        _announce(note)
    else:
        rows = list(range(len(data)))
    texts = list(data[text_column])
    rows = _with_text(texts, rows, f"data set {name!r}", text_column, first_line=None)
    rows = rows[:limit] if limit is not None else rows
    if len(rows) != len(data):
        data = data.select(rows)
    durations = _durations(data, audio_column)
    data = data.cast_column(audio_column, datasets.Audio(decode=False))
    return AsrDataset(
        _HfAudioColumn(data, audio_column, name),
        [texts[i] for i in rows],
        [sources[i] for i in rows],
        None if speakers is None else [speakers[i] for i in rows],
        names=[f"{name}[{i}]" for i in rows],
        durations=durations,
        sample_rate=sample_rate,
        cache=cache,
    )
