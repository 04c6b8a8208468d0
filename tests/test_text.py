"""Kyrgyz text normalisation for scoring."""

import unicodedata

import pytest
from transformers.models.whisper.english_normalizer import BasicTextNormalizer

from dlsaudio.asr import normalize_kyrgyz


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Бүгүн аба ырайы жакшы!", "бүгүн аба ырайы жакшы"),
        ("ҢӨҮ, ңөү; Йод, Ёлка.", "ңөү ңөү йод ёлка"),
        ("  Салам,\n\tдосум…  ", "салам досум"),
        ("«Ата-эне» — үй-бүлө", "ата эне үй бүлө"),  # hyphens and dashes: words apart
        ("Кыргыз тили’нде", "кыргыз тилинде"),  # apostrophes: dropped, word kept whole
        ("15 бала", "он беш бала"),
        ("2024-жылы", "эки миң жыйырма төртүнчү жылы"),
        ("Mен кoнoкмун", "мен конокмун"),  # Latin M, o inside Cyrillic words
        ("iPhone жана WiFi", "iphone жана wifi"),  # Latin words stay Latin
        ("Жаҥы ɵзгɵчɵ", "жаңы өзгөчө"),  # look-alike letters from other alphabets
        ("Кӧл сӱт ӰЙ", "көл сүт үй"),  # Cyrillic letters with diaeresis typed for ө, ү
        ("кöл üй", "көл үй"),  # Latin ö, ü inside Cyrillic words
        ("Müller жана Jörg", "müller жана jörg"),  # Latin words stay Latin
        ("1,000,000 сом", "бир миллион сом"),
        ("", ""),
        ("?!", ""),
    ],
)
def test_normalize_kyrgyz(text, expected):
    assert normalize_kyrgyz(text) == expected


def test_decomposed_input_equals_composed():
    composed = "Көңүлдүү жаңы жыл, йод"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert normalize_kyrgyz(decomposed) == normalize_kyrgyz(composed) == "көңүлдүү жаңы жыл йод"


def test_stress_marks_do_not_split_words_unlike_whispers_basic_normalizer():
    stressed = "ба\u0301ла"  # бала with a stress mark, as in dictionaries and textbooks
    assert normalize_kyrgyz(stressed) == "бала"
    # Whisper's BasicTextNormalizer replaces the combining mark by a space: one word becomes two.
    assert BasicTextNormalizer()(stressed).split() == ["ба", "ла"]
    # With remove_diacritics=True it changes letters: й -> и, ё -> е.
    assert BasicTextNormalizer(remove_diacritics=True)("жай ёлка") == "жаи елка"
    assert normalize_kyrgyz("жай ёлка") == "жай ёлка"


def test_idempotent():
    text = "«Ата-эне» 15 жашта, Mен кoнoк!"
    once = normalize_kyrgyz(text)
    assert normalize_kyrgyz(once) == once


def test_not_a_string_raises():
    with pytest.raises(ValueError, match="text must be a str"):
        normalize_kyrgyz(15)


def test_a_diaeresis_typed_as_a_combining_mark_ends_as_the_kyrgyz_letter():
    typed = "у\u0308й ко\u0308л"  # у and о followed by U+0308 COMBINING DIAERESIS
    assert unicodedata.normalize("NFC", typed) == "ӱй кӧл"  # NFC gives ӱ ӧ, not ү ө
    assert normalize_kyrgyz(typed) == "үй көл"
