"""Tables of clips: reading CSV and TSV files, choosing a split's rows, manifests.

Data without named splits (a manifest, the bundled sample, an audiofolder or a saved data set
without splits) gets its ``train`` and ``test`` rows from a ``split`` column when it has one,
else from a seeded hold-out of whole speakers or rows (:func:`hold_out`).
"""

from __future__ import annotations

import csv
import math
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dlsaudio.data.utterances import AsrDataset

__all__ = ["HOLDOUT_FRACTION", "SPEAKER_COLUMNS", "hold_out"]

SPEAKER_COLUMNS = ("client_id", "speaker_id", "speaker")
HOLDOUT_FRACTION = 0.2
"""Share of each source's speakers (or rows) held out as the test split of data without one."""
_SPLIT_ALIASES = {
    "dev": ("validation", "valid"),
    "validation": ("dev", "valid"),
    "valid": ("dev", "validation"),
}


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


def _blank(text) -> bool:
    """A transcript without a word: missing (None or NaN), empty or only whitespace."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return True
    return not str(text).strip()


def _with_text(
    texts: Sequence, rows: Sequence[int], where: str, column: str, first_line: int | None = 2
) -> list[int]:
    """The ``rows`` whose transcript has a word; the others are dropped with one printed line.

    A clip without words is no training target (the model would learn to say nothing) and no
    test item (a word error rate needs reference words).

    Args:
        texts: the transcript of every row of the table.
        rows: the rows being loaded (a split of the table, or all of it).
        where: the file or data set, for the printed line.
        column: the transcript column's name.
        first_line: the file line of row 0 (2 below a header line), or None to name rows by
            their index (a data set, not a file).

    Raises:
        ValueError: no row of ``rows`` has a transcript.
    """
    blank = [i for i in rows if _blank(texts[i])]
    if not blank:
        return list(rows)
    if len(blank) == len(rows):
        raise ValueError(
            f"{where}: the {column!r} of all {len(rows)} rows is empty or blank, so there is "
            f"nothing to learn from or score against; fill in the transcripts or choose another "
            "file or split"
        )
    shown = blank[:10] if first_line is None else [i + first_line for i in blank[:10]]
    more = ", ..." if len(blank) > 10 else ""
    kind = "rows" if first_line is None else "lines"
    _announce(
        f"{where}: dropped {len(blank)} of {len(rows)} rows whose {column!r} is empty or blank "
        f"({kind} {str(shown)[1:-1]}{more}): a clip without words is neither a training target "
        "nor a test item"
    )
    dropped = set(blank)
    return [i for i in rows if i not in dropped]


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
    first_line: int = 2,
) -> AsrDataset:
    """An :class:`AsrDataset` from a table of audio files (a manifest or audiofolder metadata).

    ``first_line`` is the file line of the table's first row (2 below a header line, 1 in JSON
    lines). Rows whose transcript is empty or blank are left out of the split being loaded,
    with one printed line that counts them.

    Raises:
        ValueError: a missing column, no rows, an empty path cell, a bad duration or split,
            or no row of the split with a transcript.
    """
    _require_columns(table.columns, (path_column, text_column), where)
    if table.empty:
        raise ValueError(f"{where}: the manifest has no rows (only a header); add one row per clip")
    empty = [i + first_line for i, p in enumerate(table[path_column]) if not str(p).strip()]
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
    rows = _with_text(list(table[text_column]), rows, where, text_column, first_line)
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
    # in a TSV, as in Common Voice's, a quote is text ('"Hello," she said'); a CSV quotes fields
    tsv = path.suffix.lower() == ".tsv"
    return _from_table(
        _read_table(path, quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL),
        path.parent,
        str(path),
        path_column="path",
        text_column="text",
        default_source=default_source,
        **options,
    )
