"""Word and character error rates (through jiwer) and a small error analysis.

WER = (substitutions + deletions + insertions) / reference words, summed over the corpus
(not averaged per utterance); CER is the same over characters. Both can exceed 1 when the
hypotheses are longer than the references, as an untrained model's often are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import jiwer

from dlsaudio.asr.text import normalize_kyrgyz


def _pairs(
    refs: str | Sequence[str],
    hyps: str | Sequence[str],
    normalize: bool | Callable[[str], str],
) -> tuple[list[str], list[str]]:
    refs = [refs] if isinstance(refs, str) else list(refs)
    hyps = [hyps] if isinstance(hyps, str) else list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(
            f"refs has {len(refs)} transcripts but hyps has {len(hyps)}; expected one hypothesis per reference"
        )
    if not refs:
        raise ValueError("refs is empty; expected at least one reference transcript")
    for name, texts in (("refs", refs), ("hyps", hyps)):
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"{name}[{i}] is {type(t).__name__} ({t!r}); expected a str")
    if normalize:
        fn = normalize if callable(normalize) else normalize_kyrgyz
        refs = [fn(t) for t in refs]
        hyps = [fn(t) for t in hyps]
    else:
        refs = [" ".join(t.split()) for t in refs]
        hyps = [" ".join(t.split()) for t in hyps]
    if not any(refs):
        raise ValueError(
            "every reference is empty (after normalisation); WER is undefined without reference words"
        )
    return refs, hyps


def wer(
    refs: str | Sequence[str],
    hyps: str | Sequence[str],
    normalize: bool | Callable[[str], str] = True,
) -> float:
    """Corpus word error rate.

    Args:
        refs: reference transcripts (one string or a list).
        hyps: hypotheses, one per reference.
        normalize: ``True`` applies :func:`normalize_kyrgyz` to both sides; ``False`` only
            collapses whitespace; a callable is used as the normaliser.

    Raises:
        ValueError: for different lengths, no references, non-strings or all-empty references.
    """
    refs, hyps = _pairs(refs, hyps, normalize)
    return float(jiwer.wer(refs, hyps))


def cer(
    refs: str | Sequence[str],
    hyps: str | Sequence[str],
    normalize: bool | Callable[[str], str] = True,
) -> float:
    """Corpus character error rate (spaces count as characters); arguments as in :func:`wer`.

    Raises:
        ValueError: as :func:`wer`.
    """
    refs, hyps = _pairs(refs, hyps, normalize)
    return float(jiwer.cer(refs, hyps))


def error_report(refs: str | Sequence[str], hyps: str | Sequence[str]) -> dict[str, float]:
    """Raw and normalised WER and CER in one dict.

    Returns:
        ``{"wer_raw", "cer_raw", "wer", "cer", "utterances", "ref_words"}`` where the ``_raw``
        values only collapse whitespace and the others use :func:`normalize_kyrgyz`;
        ``ref_words`` counts normalised reference words.

    Raises:
        ValueError: as :func:`wer`.
    """
    norm_refs, norm_hyps = _pairs(refs, hyps, True)
    raw_refs, raw_hyps = _pairs(refs, hyps, False)
    return {
        "wer_raw": float(jiwer.wer(raw_refs, raw_hyps)),
        "cer_raw": float(jiwer.cer(raw_refs, raw_hyps)),
        "wer": float(jiwer.wer(norm_refs, norm_hyps)),
        "cer": float(jiwer.cer(norm_refs, norm_hyps)),
        "utterances": len(norm_refs),
        "ref_words": sum(len(r.split()) for r in norm_refs),
    }


def utterance_errors(
    refs: Sequence[str],
    hyps: Sequence[str],
    normalize: bool | Callable[[str], str] = True,
) -> list[dict]:
    """Per-utterance errors, worst first (by WER, then by CER).

    Returns:
        One dict per utterance: ``index`` (position in ``refs``), ``ref``, ``hyp`` (normalised
        if ``normalize``), ``wer``, ``cer``, ``substitutions``, ``deletions``, ``insertions``,
        ``ref_words``. An empty reference gets ``wer`` = number of inserted words.

    Raises:
        ValueError: as :func:`wer`.
    """
    refs, hyps = _pairs(refs, hyps, normalize)
    rows = []
    for i, (r, h) in enumerate(zip(refs, hyps, strict=True)):
        w = jiwer.process_words(r, h)
        n_ref = len(r.split())
        errors = w.substitutions + w.deletions + w.insertions
        chars = jiwer.process_characters(r, h)
        n_chars = len(r)
        char_errors = chars.substitutions + chars.deletions + chars.insertions
        rows.append(
            {
                "index": i,
                "ref": r,
                "hyp": h,
                "wer": errors / max(n_ref, 1),
                "cer": char_errors / max(n_chars, 1),
                "substitutions": w.substitutions,
                "deletions": w.deletions,
                "insertions": w.insertions,
                "ref_words": n_ref,
            }
        )
    rows.sort(key=lambda row: (-row["wer"], -row["cer"], row["index"]))
    return rows


def frequent_errors(
    refs: Sequence[str],
    hyps: Sequence[str],
    top: int = 10,
    unit: str = "word",
    normalize: bool | Callable[[str], str] = True,
) -> dict[str, list[tuple]]:
    """Most frequent substitutions, deletions and insertions.

    Args:
        refs: reference transcripts.
        hyps: hypotheses, one per reference.
        top: how many of each kind to return.
        unit: ``"word"`` or ``"char"`` (for Kyrgyz, ``ң``/``н`` or ``ө``/``о`` confusions show
            up at the character level).
        normalize: as in :func:`wer`.

    Returns:
        ``{"substitutions": [((ref, hyp), count), ...], "deletions": [(ref, count), ...],
        "insertions": [(hyp, count), ...]}``, most frequent first. A substitution of several
        adjacent units counts as one entry (``("үйгө бардым", "уйго барды")``).

    Raises:
        ValueError: for a bad ``top`` or ``unit``, and as :func:`wer`.
    """
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top={top!r}; expected a positive integer")
    if unit not in ("word", "char"):
        raise ValueError(f"unit={unit!r}; expected 'word' or 'char'")
    refs, hyps = _pairs(refs, hyps, normalize)
    process = jiwer.process_words if unit == "word" else jiwer.process_characters
    subs, ins, dels = jiwer.collect_error_counts(process(refs, hyps))
    return {
        "substitutions": Counter(subs).most_common(top),
        "deletions": Counter(dels).most_common(top),
        "insertions": Counter(ins).most_common(top),
    }
