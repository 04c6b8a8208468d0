"""Kyrgyz text: numbers in words, and the normalisation applied before WER/CER.

Scores are only comparable when references and hypotheses are written the same way: the
model writes ``2024-жылы``, the reference ``эки миң жыйырма төртүнчү жылы``; one side has a
comma, the other not. :func:`normalize_kyrgyz` removes such differences and nothing else; it
reads digits as words with :func:`verbalize_numbers`, the same words the bundled Kyrgyz sample
(:mod:`dlsaudio.data.generate`) is synthesised from.

It is not Whisper's ``BasicTextNormalizer``: that one replaces every combining mark by a space,
so a stress mark splits a word in two (``ба́ла`` -> ``ба ла``), and with
``remove_diacritics=True`` it also turns ``й`` into ``и`` and ``ё`` into ``е``, changing words.

Numbers in words, one convention used everywhere:
* The multiplier "бир" is dropped before "жүз" and kept before "миң", "миллион" and
  "миллиард": 100 -> "жүз", 1100 -> "бир миң жүз", 1999 -> "бир миң тогуз жүз токсон тогуз",
  1000000 -> "бир миллион". Both "жүз" and "бир жүз" occur in Kyrgyz; the bare "жүз" is the
  everyday form, while dates and amounts are usually read with "бир миң".
* Negative numbers start with "минус"; 0 is "нөл".
* Ordinals take -ынчы/-инчи/-унчу/-үнчү by vowel harmony on the last word
  (1 -> "биринчи", 20 -> "жыйырманчы", 1000 -> "бир миңинчи").

Example:
    >>> number_to_words(1999)
    'бир миң тогуз жүз токсон тогуз'
    >>> verbalize_numbers("1-май, 2025-жыл")
    'биринчи май, эки миң жыйырма бешинчи жыл'
"""

from __future__ import annotations

import operator
import re
import unicodedata

__all__ = [
    "MAX_NUMBER",
    "normalize_kyrgyz",
    "number_to_words",
    "ordinal_to_words",
    "verbalize_numbers",
]

ONES = ("нөл", "бир", "эки", "үч", "төрт", "беш", "алты", "жети", "сегиз", "тогуз")
TENS = ("", "он", "жыйырма", "отуз", "кырк", "элүү", "алтымыш", "жетимиш", "сексен", "токсон")
HUNDRED = "жүз"
SCALES = ((10**9, "миллиард"), (10**6, "миллион"), (10**3, "миң"))
MINUS = "минус"
POINT = "бүтүн"
PERCENT = "пайыз"
# 3,5 is "үч бүтүн ондон беш": three wholes, of tenths five.
FRACTION_DENOMINATORS = {
    1: "ондон",
    2: "жүздөн",
    3: "миңден",
    4: "он миңден",
    5: "жүз миңден",
    6: "миллиондон",
}
# Case, possessive and plural endings written after a hyphen on a cardinal: "5-ке" is
# "бешке" (to five), while "5-класс" (a word, not an ending) is an ordinal, "бешинчи класс".
CASE_ENDINGS = (
    "ка", "ке", "ко", "кө", "га", "ге", "го", "гө",  # dative
    "да", "де", "до", "дө", "та", "те", "то", "тө",  # locative
    "дан", "ден", "дон", "дөн", "тан", "тен", "тон", "төн",  # ablative
    "ны", "ни", "ну", "нү", "ды", "ди", "ду", "дү", "ты", "ти", "ту", "тү",  # accusative
    "нын", "нин", "нун", "нүн", "дын", "дин", "дун", "дүн", "тын", "тин", "тун", "түн",  # genitive
    "сы", "си", "су", "сү",  # possessive
    "лар", "лер", "лор", "лөр", "дар", "дер", "дор", "дөр", "тар", "тер", "тор", "төр",  # plural
)  # fmt: skip
MAX_NUMBER = 10**12 - 1
"""The largest magnitude :func:`number_to_words` reads (999 миллиард ... тогуз)."""

# The ordinal suffix's vowel follows the last vowel of the word (four-way harmony).
_HARMONY = {
    "а": "ы", "ы": "ы", "я": "ы",
    "е": "и", "э": "и", "и": "и",
    "о": "у", "у": "у", "ю": "у", "ё": "у",
    "ө": "ү", "ү": "ү",
}  # fmt: skip


def _as_int(n: object, name: str = "n") -> int:
    if isinstance(n, bool) or isinstance(n, float) or isinstance(n, str):
        raise ValueError(f"{name} must be an integer, got {n!r} ({type(n).__name__})")
    try:
        return operator.index(n)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {n!r} ({type(n).__name__})") from None


def _below_thousand(n: int) -> list[str]:
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [HUNDRED] if hundreds == 1 else [ONES[hundreds], HUNDRED]
    tens, ones = divmod(rest, 10)
    if tens:
        words.append(TENS[tens])
    if ones:
        words.append(ONES[ones])
    return words


def number_to_words(n: int) -> str:
    """Read an integer in Kyrgyz words.

    Args:
        n: an integer with ``abs(n) <= MAX_NUMBER`` (999 999 999 999).

    Returns:
        Lower-case words separated by single spaces, e.g. ``25 -> "жыйырма беш"``,
        ``-7 -> "минус жети"``, ``100 -> "жүз"``, ``1999 -> "бир миң тогуз жүз токсон тогуз"``.

    Raises:
        ValueError: ``n`` is not an integer (floats, strings and bools are refused) or is out
            of range.
    """
    n = _as_int(n)
    if abs(n) > MAX_NUMBER:
        raise ValueError(f"n must be between -{MAX_NUMBER} and {MAX_NUMBER}, got {n}")
    if n < 0:
        return f"{MINUS} {number_to_words(-n)}"
    if n == 0:
        return ONES[0]
    words: list[str] = []
    for scale, name in SCALES:
        count, n = divmod(n, scale)
        if count:
            words += _below_thousand(count) + [name]
    words += _below_thousand(n)
    return " ".join(words)


def _ordinal_suffix(word: str) -> str:
    vowel = next((_HARMONY[c] for c in reversed(word) if c in _HARMONY), "ы")
    buffer = "" if word[-1] in _HARMONY else vowel
    return f"{buffer}нч{vowel}"


def ordinal_to_words(n: int) -> str:
    """Read a non-negative integer as a Kyrgyz ordinal ("first", "twentieth", ...).

    Args:
        n: an integer with ``0 <= n <= MAX_NUMBER``.

    Returns:
        The cardinal words with the ordinal suffix on the last word, e.g. ``1 -> "биринчи"``,
        ``3 -> "үчүнчү"``, ``20 -> "жыйырманчы"``, ``125 -> "жүз жыйырма бешинчи"``.

    Raises:
        ValueError: ``n`` is not an integer, is negative or is out of range.
    """
    n = _as_int(n)
    if n < 0:
        raise ValueError(f"ordinals are defined for n >= 0, got {n}")
    words = number_to_words(n)
    return words + _ordinal_suffix(words.rsplit(" ", 1)[-1])


def _spell_digits(digits: str) -> str:
    return " ".join(ONES[int(d)] for d in digits)


def _read_run(digits: str) -> str:
    """Read a run of ASCII digits: leading zeros one by one, over-long runs digit by digit."""
    if len(digits) > len(str(MAX_NUMBER)):
        return _spell_digits(digits)
    stripped = digits.lstrip("0")
    if not stripped:
        return _spell_digits(digits)
    head = _spell_digits(digits[: len(digits) - len(stripped)])
    body = number_to_words(int(stripped))
    return f"{head} {body}" if head else body


# 12 000: groups of three digits after a space, a no-break or a narrow no-break space;
# 1,000,000 and 1.000.000: at least two groups after a comma or a dot, one separator throughout
# (a single one is a decimal: 1,125). Comma and dot groups start with 1-9 and are not part of a
# longer dotted run (1.2.345 is a version, 01.05.2025 a date).
_GROUPED = "|".join(
    [r"(?<![0-9])[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+(?![0-9])"]
    + [
        rf"(?<![0-9])(?<![0-9][.,])[1-9][0-9]{{0,2}}(?:{sep}[0-9]{{3}}){{2,}}(?![0-9]|{sep}[0-9])"
        for sep in (",", r"\.")
    ]
)
_SEPARATORS = re.compile(r"[ \u00a0\u202f,.]")
_MINUS = r"(?P<minus>(?<![\w-])[-\u2212](?=[0-9]))?"
_PERCENT = r"(?P<percent>[ \u00a0]?%)?"
_CASE = "|".join(sorted(CASE_ENDINGS, key=len, reverse=True))
_NUMBER = re.compile(
    rf"{_MINUS}(?P<digits>{_GROUPED}|[0-9]+)"
    rf"(?:-(?P<case>{_CASE})(?![^\W\d_])|(?P<ordinal>-(?=[^\W\d_]))|{_PERCENT})",
    re.IGNORECASE,
)
# 3,5 or 3.5, but not 1.2.3 (a date, a version) nor 1,2,3 (a list); in 1,000.5 and 1.000,5 the
# whole part is grouped with the other separator.
_WHOLE = r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?=\.)|[1-9][0-9]{0,2}(?:\.[0-9]{3})+(?=,)|[0-9]{1,12}"
_DECIMAL = re.compile(
    rf"{_MINUS}(?<![0-9][.,])(?<![0-9])(?P<whole>{_WHOLE})[.,]"
    rf"(?P<frac>[0-9]{{1,6}})(?![0-9]|[.,][0-9]){_PERCENT}"
)


def verbalize_numbers(text: str) -> str:
    """Replace the numbers written with digits in a Kyrgyz text by words.

    Rules:
        * A run of digits is read as one cardinal: ``"Мен 25 жаштамын."`` ->
          ``"Мен жыйырма беш жаштамын."``.
        * Digits followed by a hyphen and a word are an ordinal, as Kyrgyz writes them:
          ``"1-май"`` -> ``"биринчи май"``, ``"5-класста"`` -> ``"бешинчи класста"``; followed
          by a hyphen and a case, possessive or plural ending, a cardinal with that ending:
          ``"5-ке чейин"`` -> ``"бешке чейин"``, ``"10-дон"`` -> ``"ондон"``.
        * A minus sign (``-`` or ``−``) right before digits and not after a word or a digit
          reads as "минус": ``"-5"`` -> ``"минус беш"``; ``"2-3"`` stays a range: ``"эки-үч"``.
        * Thousands may be grouped in threes with a space or a no-break space: ``"12 000"``
          -> ``"он эки миң"``, so ``"2 100"`` is one number, two thousand one hundred; or
          with commas or dots when there are at least two groups: ``"1,000,000"`` and
          ``"1.000.000"`` -> ``"бир миллион"``. One comma or dot before three digits is a
          decimal, as Kyrgyz writes decimals with a comma (``"1,125"`` below); write ``"1 000"``
          for a thousand. A grouped whole part may have decimals after the other separator:
          ``"1,000.5"``, ``"1.000,5"`` -> ``"бир миң бүтүн ондон беш"``.
        * Leading zeros and runs longer than 12 digits (codes, phone numbers) are read digit
          by digit: ``"007"`` -> ``"нөл нөл жети"``.
        * A decimal with one to six digits after a comma or a dot: ``"3,5"`` ->
          ``"үч бүтүн ондон беш"``, ``"0.25"`` -> ``"нөл бүтүн жүздөн жыйырма беш"``,
          ``"3.14159"`` -> ``"үч бүтүн жүз миңден он төрт миң жүз элүү тогуз"``; lists
          and dates such as ``"1,2,3"`` or ``"01.05.2025"`` are read number by number.
        * A percent sign reads as "пайыз": ``"25%"`` -> ``"жыйырма беш пайыз"``.

    Args:
        text: any text.

    Returns:
        The text with every digit run replaced; the rest is unchanged.

    Raises:
        ValueError: ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")

    def finish(match: re.Match, words: str) -> str:
        if match["percent"]:
            words = f"{words} {PERCENT}"
        return f"{MINUS} {words}" if match["minus"] else words

    def decimal(match: re.Match) -> str:
        frac = match["frac"]
        words = (
            f"{number_to_words(int(_SEPARATORS.sub('', match['whole'])))} {POINT} "
            f"{FRACTION_DENOMINATORS[len(frac)]} {number_to_words(int(frac))}"
        )
        return finish(match, words)

    def cardinal(match: re.Match) -> str:
        digits = _SEPARATORS.sub("", match["digits"])
        if match["case"]:
            return finish(match, _read_run(digits) + match["case"])
        if match["ordinal"] and not digits.startswith("0") and len(digits) <= 12:
            return finish(match, ordinal_to_words(int(digits)) + " ")
        return finish(match, _read_run(digits) + ("-" if match["ordinal"] else ""))

    return _NUMBER.sub(cardinal, _DECIMAL.sub(decimal, text))


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
    3. numbers in digits to Kyrgyz words (:func:`verbalize_numbers`), before
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

    text = unicodedata.normalize("NFC", text).lower()
    text = verbalize_numbers(text).lower()
    text = text.translate(_KYRGYZ_VARIANTS)
    text = _APOSTROPHES.sub("", text)
    text = _DASHES.sub(" ", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = "".join(c if _is_letter_or_digit(c) else " " for c in text)
    words = [w.translate(_LATIN_TO_CYRILLIC) if _CYRILLIC.search(w) else w for w in text.split()]
    return " ".join(words)
