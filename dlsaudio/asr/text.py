"""Text normalisation for Kyrgyz transcripts before WER/CER.

Scores are only comparable when references and hypotheses are written the same way: the
model writes ``2024-жылы``, the reference ``эки миң жыйырма төртүнчү жылы``; one side has a
comma, the other not. :func:`normalize_kyrgyz` removes such differences and nothing else.

It is not Whisper's ``BasicTextNormalizer``: that one replaces every combining mark by a space,
so a stress mark splits a word in two (``ба́ла`` -> ``ба ла``), and with
``remove_diacritics=True`` it also turns ``й`` into ``и`` and ``ё`` into ``е``, changing words.
"""

from __future__ import annotations

import re
import unicodedata

# Latin letters that look like Cyrillic ones (after lower-casing), replaced inside words that
# also contain Cyrillic letters: mixed-script words come from keyboard layouts and OCR.
_LATIN_TO_CYRILLIC = str.maketrans(
    {
        "a": "а",
        "b": "в",
        "c": "с",
        "e": "е",
        "h": "н",
        "k": "к",
        "m": "м",
        "o": "о",
        "p": "р",
        "t": "т",
        "x": "х",
        "y": "у",
        "ö": "ө",  # Turkish/German keyboards
        "ü": "ү",
    }
)

# Letters other Cyrillic alphabets (or fonts without Kyrgyz letters) use for ң, ө, ү.
_KYRGYZ_VARIANTS = str.maketrans(
    {
        "ҥ": "ң",  # Altai/Yakut en with hook
        "ӊ": "ң",  # Khanty en with tail
        "ɵ": "ө",  # Latin barred o
        "ѳ": "ө",  # old Cyrillic fita
        "ұ": "ү",  # Kazakh straight u with stroke
        "ӱ": "ү",  # Cyrillic u with diaeresis (Altai, Mari), typed for ү; also у + U+0308 after NFC
        "ӧ": "ө",  # Cyrillic o with diaeresis, typed for ө; also о + U+0308 after NFC
    }
)

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_DASHES = re.compile(r"[-\u2010-\u2015\u2212]")
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc\u02b9`´]")


def _is_letter_or_digit(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


def normalize_kyrgyz(text: str) -> str:
    """Normalise a Kyrgyz transcript for scoring.

    Steps, in order:

    1. Unicode NFC, so a letter typed as a base and a combining mark equals the precomposed
       one (``у`` + U+0308 becomes ``ӱ``, which step 4 maps to ``ү``; ``ү`` and ``ө`` have no
       decomposition, so NFC alone never produces them);
    2. lower case;
    3. numbers in digits to Kyrgyz words (:func:`dlsaudio.kyrgyz.verbalize_numbers`), before
       punctuation goes, so ``1,5`` and ``2024-жылы`` keep their meaning;
    4. look-alike letters: ``ҥ ӊ`` -> ``ң``, ``ɵ ѳ ӧ`` -> ``ө``, ``ұ ӱ`` -> ``ү``; Latin ``a c
       e o p x y ...`` and ``ö ü`` inside words that also have Cyrillic letters -> Cyrillic
       (``ö ü`` -> ``ө ү``);
    5. combining marks left after NFC (stress marks) are dropped without splitting the word;
    6. apostrophes are dropped (the word stays whole); hyphens and dashes become spaces, so a
       pair word ``ата-эне`` counts as two words whichever way it was written;
    7. other punctuation and symbols become spaces; whitespace is collapsed.

    Cyrillic letters, including ң, ө, ү, й and ё, are kept as they are.

    Args:
        text: a transcript.

    Returns:
        The normalised transcript (possibly empty).

    Raises:
        ValueError: if ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}: {text!r}")
    from dlsaudio.kyrgyz import verbalize_numbers

    text = unicodedata.normalize("NFC", text).lower()
    text = verbalize_numbers(text).lower()
    text = text.translate(_KYRGYZ_VARIANTS)
    text = _APOSTROPHES.sub("", text)
    text = _DASHES.sub(" ", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = "".join(c if _is_letter_or_digit(c) else " " for c in text)
    words = [w.translate(_LATIN_TO_CYRILLIC) if _CYRILLIC.search(w) else w for w in text.split()]
    return " ".join(words)
