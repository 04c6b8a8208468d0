"""Speech with transcripts: the bundled Kyrgyz sample, Common Voice, manifests and HF datasets.

:func:`load_asr` reads any of these into an :class:`AsrDataset` of items in the package's one
format (``label`` is None, ``text`` the transcript, ``source`` where the example comes from).

Sources (the string a notebook's parameter cell holds):

* ``"sample"``: the bundled synthetic sample, sources ``ky_tts``, ``ky_tts_noisy``, ``kk_tts``
  (see :mod:`dlsaudio.data.generate`).
* ``"common_voice:PATH"``: a Common Voice release from Mozilla Data Collective
  (https://datacollective.mozillafoundation.org), unpacked: ``PATH`` holds ``validated.tsv`` or
  ``train.tsv``/``dev.tsv``/``test.tsv`` and ``clips/*.mp3``. Common Voice left the Hugging
  Face Hub in October 2025.
* ``"manifest:PATH"``: a CSV or TSV file with columns ``path,text`` and optionally ``source``
  and ``speaker``; relative paths are relative to the manifest.
* ``"hf:NAME"`` or ``"hf:NAME:CONFIG"``: a Hugging Face ``datasets`` data set from the Hub, a
  local folder (parquet, audiofolder) or a ``save_to_disk`` folder. Audio is decoded with
  soundfile (the column is cast to ``datasets.Audio(decode=False)``), so neither torchcodec
  nor a system FFmpeg is needed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import torchaudio

from dlsaudio.audio import _check_wave, load_audio
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
COMMON_VOICE_SPLITS = ("train", "dev", "test", "validated", "other", "invalidated")


class DatasetUnavailableError(RuntimeError):
    """A data set cannot be reached or no longer exists where it is looked for."""


def _load_bytes(data: bytes, name: str, sample_rate: int) -> torch.Tensor:
    """Decode encoded audio bytes with the checks of :func:`dlsaudio.audio.load_audio`."""
    try:
        wave, file_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise ValueError(f"{name}: cannot be decoded as audio ({err})") from None
    _check_wave(wave, name, max_channels=2)
    mono = torch.from_numpy(np.ascontiguousarray(wave.mean(axis=1)))
    if float(mono.abs().max()) < 10.0 ** (-50.0 / 20.0):
        raise ValueError(f"{name}: holds only silence (peak below -50.0 dBFS)")
    if file_rate != sample_rate:
        mono = torchaudio.functional.resample(mono, file_rate, sample_rate)
    return mono.to(torch.float32).contiguous()


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


def _read_table(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path}: cannot be read as a {'TSV' if sep == chr(9) else 'CSV'} table ({err})"
        ) from None


def _from_manifest(path: Path, sample_rate: int, cache: bool, default_source: str) -> AsrDataset:
    if not path.is_file():
        raise FileNotFoundError(
            f"manifest not found: {path}; write a CSV or TSV with columns path,text[,source,speaker]"
        )
    table = _read_table(path)
    _require_columns(table.columns, ("path", "text"), str(path))
    if table.empty:
        raise ValueError(f"{path}: the manifest has no rows")
    files = [Path(p) if Path(p).is_absolute() else path.parent / p for p in table["path"]]
    sources = table["source"] if "source" in table else [default_source] * len(table)
    speakers = table["speaker"] if "speaker" in table else None
    durations = [float(x) for x in table["duration"]] if "duration" in table else None
    return AsrDataset(
        files,
        list(table["text"]),
        list(sources),
        None if speakers is None else list(speakers),
        names=[str(f) for f in files],
        durations=durations,
        sample_rate=sample_rate,
        cache=cache,
    )


def _find_common_voice(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"Common Voice folder not found: {path}. {COMMON_VOICE_HINT}")
    if any(path.glob("*.tsv")):
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


def _from_common_voice(
    path: Path, split: str | None, sample_rate: int, cache: bool, limit: int | None
) -> AsrDataset:
    folder = _find_common_voice(path)
    if split is None:
        split = "train" if (folder / "train.tsv").is_file() else "validated"
    split = {"validation": "dev", "valid": "dev"}.get(split, split)
    if split not in COMMON_VOICE_SPLITS:
        raise ValueError(f"split must be one of {COMMON_VOICE_SPLITS}, got {split!r}")
    table_path = folder / f"{split}.tsv"
    if not table_path.is_file():
        present = sorted(p.stem for p in folder.glob("*.tsv"))
        raise FileNotFoundError(
            f"{table_path} does not exist; this release has the splits {present}"
        )
    table = pd.read_csv(
        table_path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
    )
    _require_columns(table.columns, COMMON_VOICE_COLUMNS, str(table_path))
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
        sample_rate=sample_rate,
        cache=cache,
    )


def _from_hf(
    spec: str,
    split: str | None,
    sample_rate: int,
    cache: bool,
    audio_column: str,
    text_column: str,
    source_column: str | None,
    limit: int | None,
    revision: str | None = None,
) -> AsrDataset:
    import datasets

    name, _, config = spec.partition(":")
    if name.lower().startswith("mozilla-foundation/common_voice") and not Path(name).exists():
        raise DatasetUnavailableError(f"cannot load {name!r}: {COMMON_VOICE_HINT}")
    split = split or "train"
    local = Path(name).expanduser()
    try:
        if (local / "dataset_info.json").is_file() or (local / "dataset_dict.json").is_file():
            data = datasets.load_from_disk(str(local))
            if isinstance(data, datasets.DatasetDict):
                data = data[split]
        else:
            data = datasets.load_dataset(
                str(local) if local.exists() else name,
                config or None,
                split=split,
                revision=revision,
            )
    except (KeyError, ValueError) as err:
        raise ValueError(f"cannot load split {split!r} of {name!r}: {err}") from None
    except Exception as err:  # Hub errors come in many types; the message says what to do
        if "script" in str(err).lower() and revision is None:
            raise DatasetUnavailableError(
                f"cannot load {name!r}: it is a data set with a loading script, which datasets "
                ">= 4 no longer runs. Read the Hub's Parquet conversion instead: pass "
                "revision='refs/convert/parquet' (FLEURS: load_asr('hf:google/fleurs:ky_kg', "
                "revision='refs/convert/parquet', text_column='transcription'))"
            ) from None
        raise DatasetUnavailableError(
            f"cannot load {name!r} (config {config or None!r}, split {split!r}): "
            f"{type(err).__name__}: {err}. Check the name and the network, or download the data "
            "and pass 'manifest:PATH' or 'hf:/local/folder'"
        ) from None
    _require_columns(data.column_names, [audio_column, text_column], f"data set {name!r}")
    if source_column is not None:
        _require_columns(data.column_names, [source_column], f"data set {name!r}")
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    data = data.cast_column(audio_column, datasets.Audio(decode=False))
    texts = data[text_column]
    sources = (
        data[source_column] if source_column else [name.rstrip("/").split("/")[-1]] * len(data)
    )
    speakers = None
    for column in ("client_id", "speaker_id", "speaker"):
        if column in data.column_names:
            speakers = [str(s) for s in data[column]]
            break
    return AsrDataset(
        _HfAudioColumn(data, audio_column, name),
        texts,
        sources,
        speakers,
        names=[f"{name}[{i}]" for i in range(len(data))],
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
) -> AsrDataset:
    """Load speech with transcripts.

    Args:
        source: ``"sample"``, ``"common_voice:PATH"``, ``"manifest:PATH"`` or
            ``"hf:NAME[:CONFIG]"`` (see the module doc); :func:`asr_source` picks one.
        sample_rate: the rate waves are resampled to (Whisper wants 16000).
        split: Common Voice: ``train``, ``dev`` (alias ``validation``), ``test`` or
            ``validated``; default ``train`` when the release has it, else ``validated``.
            Hugging Face: the split name, default ``train``. Ignored for sample and manifest.
        cache: keep decoded waves in memory; default: only for the bundled sample (Common
            Voice ky, decoded, would not fit in a free Colab session).
        limit: keep only the first ``limit`` rows (Common Voice and Hugging Face).
        audio_column: Hugging Face only: the audio column.
        text_column: Hugging Face only: the transcript column (FLEURS calls it
            ``transcription``).
        source_column: Hugging Face only: a column with source names; default: the data set
            name for every row.
        revision: Hugging Face only: the Hub revision, e.g. ``"refs/convert/parquet"`` for
            data sets whose loading script ``datasets`` >= 4 no longer runs (FLEURS).

    Returns:
        An :class:`AsrDataset`.

    Raises:
        ValueError: unknown source prefix (the message lists the valid ones), a table without
            the required columns, an unknown split, or an empty manifest.
        FileNotFoundError: a folder, table or manifest does not exist.
        DatasetUnavailableError: a Hugging Face data set cannot be loaded (for Common Voice the
            message says to download it from Mozilla Data Collective).
    """
    if not isinstance(source, str):
        raise ValueError(f"source must be a string such as {ASR_SOURCES}, got {source!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of rows or None, got {limit}")
    kind, _, rest = source.partition(":")
    cache = kind == "sample" if cache is None else cache
    if kind == "sample" and not rest:
        return _from_manifest(SAMPLE_DIR / "asr" / "manifest.csv", sample_rate, cache, "sample")
    if kind == "manifest" and rest:
        path = Path(rest).expanduser()
        return _from_manifest(path, sample_rate, cache, path.stem)
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
        )
    raise ValueError(f"unknown ASR source {source!r}; valid sources: {', '.join(ASR_SOURCES)}")


SAMPLE_TEST_EVERY = 4
"""The bundled sample has no official split: every fourth utterance (3, 7, 11, ...) is test."""


def load_asr_splits(source: str = "sample", **options) -> tuple[AsrDataset, AsrDataset]:
    """The training and test utterances of a source, ``(train, test)``.

    The bundled sample has no split of its own: every :data:`SAMPLE_TEST_EVERY`-th utterance
    is held out for test. Other sources are read with ``split="train"`` and ``split="test"``.

    Args:
        source: as for :func:`load_asr`.
        **options: other arguments of :func:`load_asr` (``revision``, ``text_column``, ...).

    Raises:
        The errors of :func:`load_asr`.
    """
    if source == "sample":
        data = load_asr(source, **options)
        test = [i % SAMPLE_TEST_EVERY == SAMPLE_TEST_EVERY - 1 for i in range(len(data))]
        return (
            data.subset([i for i, held_out in enumerate(test) if not held_out]),
            data.subset([i for i, held_out in enumerate(test) if held_out]),
        )
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
    * Otherwise a Common Voice folder from ``DLSAUDIO_COMMON_VOICE`` or, on Colab, one of
      :data:`COMMON_VOICE_DEFAULT_PATHS`.
    * Otherwise ``"sample"``, saying how to get Common Voice.

    Raises:
        ValueError: ``default`` or ``DLSAUDIO_ASR`` is not a valid source.
    """
    if is_smoke():
        print("asr: using the bundled sample (smoke mode, DLSAUDIO_SMOKE=1)")
        return "sample"
    choice = default or os.environ.get(ASR_ENV_VAR)
    if choice:
        _validate_source(choice)
        print(f"asr: using {choice}")
        return choice
    candidates = [os.environ[COMMON_VOICE_ENV_VAR]] if os.environ.get(COMMON_VOICE_ENV_VAR) else []
    if on_colab():
        candidates += COMMON_VOICE_DEFAULT_PATHS
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_dir() and any(path.glob("*.tsv")):
            print(f"asr: using Common Voice in {path}")
            return f"common_voice:{path}"
    print(
        f"asr: using the bundled sample, no Common Voice folder found (set {COMMON_VOICE_ENV_VAR}); "
        f"download Common Voice ky from {MDC_URL}"
    )
    return "sample"
