"""Speech with transcripts: the bundled Kyrgyz sample, Common Voice, manifests and HF datasets.

:func:`load_asr` reads any of these into an :class:`AsrDataset` of items in the package's one
format (``label`` is None, ``text`` the transcript, ``source`` where the example comes from).

Sources (the string a notebook's parameter cell holds):

* ``"sample"``: the bundled synthetic sample, sources ``ky_tts``, ``ky_tts_noisy``, ``kk_tts``
  (see :mod:`dlsaudio.data.generate`).
* ``"common_voice:PATH"``: a Common Voice release from Mozilla Data Collective
  (https://mozilladatacollective.com), unpacked: ``PATH`` holds ``validated.tsv`` or
  ``train.tsv``/``dev.tsv``/``test.tsv`` and ``clips/*.mp3`` (or is a folder above it, such
  as the archive's root, that holds one language). Common Voice left the Hugging Face Hub in
  October 2025.
* ``"manifest:PATH"``: a CSV or TSV file with columns ``path,text`` and optionally ``source``,
  ``speaker`` (or ``client_id``, ``speaker_id``), ``duration`` (seconds) and ``split``;
  relative paths are relative to the manifest. A CSV quotes fields as usual; a TSV has no
  quoting (a ``"`` is part of the text, as in Common Voice's TSV files).
* ``"hf:NAME"`` or ``"hf:NAME:CONFIG"``: a Hugging Face ``datasets`` data set from the Hub, a
  local folder (parquet, audiofolder) or a ``save_to_disk`` folder. Audio is decoded with
  soundfile (the column is cast to ``datasets.Audio(decode=False)``; an audiofolder's
  ``metadata.csv`` is read directly), so neither torchcodec nor a system FFmpeg is needed.

Sources without named splits get a seeded, printed hold-out for ``split="test"``
(:func:`hold_out`); see :func:`load_asr`.

This module chooses the source (:func:`asr_source`) and dispatches to its reader; the data set
is in :mod:`dlsaudio.data.utterances`, manifests and hold-outs in :mod:`dlsaudio.data.tables`,
Common Voice in :mod:`dlsaudio.data.common_voice` and Hugging Face data in
:mod:`dlsaudio.data.hf`. The public names are importable from here.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path

from dlsaudio.data.common_voice import (
    COMMON_VOICE_DESTS,
    COMMON_VOICE_HINT,
    MDC_URL,
    _find_common_voice,
    _from_common_voice,
)
from dlsaudio.data.hf import _from_hf
from dlsaudio.data.paths import SAMPLE_DIR, chosen_source
from dlsaudio.data.tables import HOLDOUT_FRACTION, _from_manifest, hold_out
from dlsaudio.data.utterances import AsrDataset, DatasetUnavailableError, concat_asr
from dlsaudio.smoke import is_smoke, on_colab

__all__ = [
    "ASR_SOURCES",
    "FLEURS_KK",
    "FLEURS_KY",
    "COMMON_VOICE_HINT",
    "AsrDataset",
    "DatasetUnavailableError",
    "asr_source",
    "concat_asr",
    "hold_out",
    "load_asr",
    "load_asr_splits",
    "load_mixture",
]

ASR_SOURCES = (
    "sample",
    "sample:SOURCE",
    "common_voice:PATH",
    "manifest:PATH",
    "hf:NAME[:CONFIG]",
)
COMMON_VOICE_ENV_VAR = "DLSAUDIO_COMMON_VOICE"
ASR_ENV_VAR = "DLSAUDIO_ASR"
COMMON_VOICE_DEFAULT_PATHS = tuple(str(folder / "ky") for folder in COMMON_VOICE_DESTS.values())


def load_asr(
    source: str = "sample",
    sample_rate: int = 16000,
    *,
    split: str | None = None,
    cache: bool | None = None,
    limit: int | None = None,
    revision: str | None = None,
    audio_column: str = "audio",
    text_column: str | None = None,
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
        text_column: Hugging Face only: the transcript column; default the first of
            ``sentence`` (Common Voice), ``transcription`` (FLEURS, normalised) and ``text``
            that the data set has.
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
    table_options = {
        "split": split,
        "sample_rate": sample_rate,
        "cache": cache,
        "limit": limit,
        "holdout": holdout,
        "seed": holdout_seed,
    }
    if kind == "sample":
        data = _from_manifest(SAMPLE_DIR / "asr" / "manifest.csv", "sample", **table_options)
        if not rest:
            return data
        if rest not in set(data.sources):
            raise ValueError(
                f"the bundled sample has no source {rest!r}; its sources are "
                f"{sorted(set(data.sources))}"
            )
        return data.subset([i for i, s in enumerate(data.sources) if s == rest])
    if kind == "manifest" and rest:
        path = Path(rest).expanduser()
        return _from_manifest(path, path.stem, **table_options)
    if kind == "common_voice" and rest:
        return _from_common_voice(Path(rest).expanduser(), split, sample_rate, cache, limit)
    if kind == "hf" and rest:
        columns = dict(
            audio_column=audio_column, text_column=text_column, source_column=source_column
        )
        return _from_hf(rest, **table_options, **columns, revision=revision)
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


def load_mixture(sources: dict[str, str], split: str | None = None, **options) -> AsrDataset:
    """One data set of several sources, each item's ``source`` the name it has in ``sources``.

    ``load_mixture({"ky": FLEURS_KY, "kk": FLEURS_KK, "synthetic": "sample:ky_tts"})`` gives
    real Kyrgyz, real Kazakh and synthetic Kyrgyz under the names a source weighting uses.

    Args:
        sources: name -> a :func:`load_asr` source.
        split: passed to :func:`load_asr` for every source (None: each source's default,
            which is every row of a source without splits).
        **options: other arguments of :func:`load_asr`.

    Raises:
        ValueError: ``sources`` is not a non-empty dict of names to source strings; the
            errors of :func:`load_asr`.
    """
    if not isinstance(sources, dict) or not sources:
        raise ValueError(
            f"sources must be a dict of names to load_asr sources, e.g. "
            f"{{'ky': {FLEURS_KY!r}, 'kk': {FLEURS_KK!r}}}; got {sources!r}"
        )
    parts = [
        load_asr(source, split=split, **options).with_source(name)
        for name, source in sources.items()
    ]
    return concat_asr(*parts)


def _validate_source(source: str) -> None:
    kind, _, rest = source.partition(":")
    if not (kind == "sample" or (kind in ("manifest", "common_voice", "hf") and rest)):
        raise ValueError(f"unknown ASR source {source!r}; valid sources: {', '.join(ASR_SOURCES)}")


FLEURS_KY = "hf:google/fleurs:ky_kg"
"""Real Kyrgyz read speech that needs no account (FLEURS, CC BY 4.0, speaker-disjoint splits)."""
FLEURS_KK = "hf:google/fleurs:kk_kz"
"""FLEURS Kazakh: the related language of module 11's homework mixture."""
HF_ENDPOINT = "https://huggingface.co"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub (``HF_ENDPOINT``) answers a TCP connection, unless offline.

    ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` set to ``1`` means offline without trying.
    """
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in _OFFLINE_VARS):
        return False
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or HF_ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def synthetic_banner(reason: str) -> str:
    """The banner printed before a module-11 run on the bundled synthetic speech."""
    rule = "=" * 78
    return (
        f"{rule}\n"
        f"SYNTHETIC SPEECH ({reason}): every number below comes from the bundled espeak-ng\n"
        "sample, robotic voices that say nothing about real Kyrgyz speech. Real data: run\n"
        f"with network (FLEURS ky_kg, no account) or set {COMMON_VOICE_ENV_VAR} / MDC_API_KEY.\n"
        f"{rule}"
    )


def asr_source(default: str | None = None) -> str:
    """The ASR source a notebook should use here, announced in one printed line.

    In this order:

    * Smoke mode (``DLSAUDIO_SMOKE=1``): ``"sample"``.
    * ``default`` when given, else the ``DLSAUDIO_ASR`` environment variable.
    * An unpacked Common Voice release: the one ``DLSAUDIO_COMMON_VOICE`` names (the language
      folder or any folder above it that :func:`load_asr` accepts) or, on Colab, the first of
      :data:`COMMON_VOICE_DEFAULT_PATHS` that exists.
    * With a Mozilla Data Collective API key (``MDC_API_KEY``, or a Colab secret of that name)
      and the ``datacollective`` client: the newest Common Voice Kyrgyz release, downloaded
      and unpacked once by :func:`dlsaudio.data.fetch_common_voice`.
    * With the Hugging Face Hub reachable: FLEURS Kyrgyz (:data:`FLEURS_KY`), no account needed.
    * Otherwise (offline) ``"sample"``.

    Whenever the choice is the bundled synthetic sample, a banner says so before anything
    trains. A folder that was named (by the variable, or by existing at a default place) but
    holds no Common Voice release is an error, never a silent switch to other data; so is a
    key with which the download fails.

    Raises:
        ValueError: ``default`` or ``DLSAUDIO_ASR`` is not a valid source, or the folder holds
            no Common Voice tables.
        FileNotFoundError: ``DLSAUDIO_COMMON_VOICE`` names a folder that does not exist.
        Errors of :func:`dlsaudio.data.fetch_common_voice` when a key is set but the download
        fails.
    """
    choice = chosen_source("asr", default, ASR_ENV_VAR, _validate_source)
    if choice:
        if choice == "sample":
            print(synthetic_banner("smoke mode" if is_smoke() else "chosen"))
        return choice
    folder = _common_voice_folder()
    if folder is not None:
        print(f"asr: using Common Voice in {folder}")
        return f"common_voice:{folder}"
    from dlsaudio.data import mdc

    key_source = mdc.mdc_api_key_source()
    if key_source is not None:
        print(f"asr: a Mozilla Data Collective key is set ({key_source}): Common Voice ky")
        folder = mdc.fetch_common_voice("ky")
        print(f"asr: using Common Voice in {folder}")
        return f"common_voice:{folder}"
    if hub_reachable():
        print(
            f"asr: using FLEURS Kyrgyz ({FLEURS_KY}: read speech, about 10 h for training, "
            f"speaker-disjoint test); for Common Voice ky (more hours and speakers) set "
            f"MDC_API_KEY (see {MDC_URL})"
        )
        return FLEURS_KY
    print(synthetic_banner("offline: the Hugging Face Hub cannot be reached"))
    return "sample"


def _common_voice_folder() -> Path | None:
    """The unpacked release named by ``DLSAUDIO_COMMON_VOICE`` or found at a Colab default."""
    named = os.environ.get(COMMON_VOICE_ENV_VAR)
    candidates = [(named, True)] if named else []
    if on_colab():
        candidates += [(p, False) for p in COMMON_VOICE_DEFAULT_PATHS]
    for candidate, given in candidates:
        path = Path(candidate).expanduser()
        if not (given or path.exists()):
            continue
        try:
            return _find_common_voice(path)
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
    return None
