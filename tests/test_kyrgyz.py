import doctest

import numpy as np
import pytest

from dlsaudio.asr import text as kyrgyz
from dlsaudio.asr.text import MAX_NUMBER, number_to_words, ordinal_to_words, verbalize_numbers

KNOWN = {
    0: "нөл",
    1: "бир",
    7: "жети",
    10: "он",
    11: "он бир",
    19: "он тогуз",
    20: "жыйырма",
    25: "жыйырма беш",
    30: "отуз",
    40: "кырк",
    50: "элүү",
    60: "алтымыш",
    70: "жетимиш",
    80: "сексен",
    90: "токсон",
    99: "токсон тогуз",
    100: "жүз",
    101: "жүз бир",
    110: "жүз он",
    200: "эки жүз",
    999: "тогуз жүз токсон тогуз",
    1000: "бир миң",
    1001: "бир миң бир",
    1100: "бир миң жүз",
    1999: "бир миң тогуз жүз токсон тогуз",
    2025: "эки миң жыйырма беш",
    10_000: "он миң",
    100_000: "жүз миң",
    100_100: "жүз миң жүз",
    123_456: "жүз жыйырма үч миң төрт жүз элүү алты",
    1_000_000: "бир миллион",
    2_000_005: "эки миллион беш",
    999_999_999: "тогуз жүз токсон тогуз миллион тогуз жүз токсон тогуз миң тогуз жүз токсон тогуз",
    1_000_000_000: "бир миллиард",
    -7: "минус жети",
    -1000: "минус бир миң",
}


@pytest.mark.parametrize(("n", "words"), KNOWN.items())
def test_known_cardinals(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "биринчи"),
        (2, "экинчи"),
        (3, "үчүнчү"),
        (4, "төртүнчү"),
        (5, "бешинчи"),
        (6, "алтынчы"),
        (7, "жетинчи"),
        (8, "сегизинчи"),
        (9, "тогузунчу"),
        (10, "онунчу"),
        (20, "жыйырманчы"),
        (40, "кыркынчы"),
        (50, "элүүнчү"),
        (90, "токсонунчу"),
        (100, "жүзүнчү"),
        (125, "жүз жыйырма бешинчи"),
        (1000, "бир миңинчи"),
        (1_000_000, "бир миллионунчу"),
    ],
)
def test_known_ordinals(n, words):
    assert ordinal_to_words(n) == words


def test_composition_identities():
    rng = np.random.default_rng(0)
    for n in rng.integers(1, 1000, size=200).tolist():
        # thousands: count of thousands, "миң", remainder (omitted when zero)
        rest = int(rng.integers(0, 1000))
        tail = "" if rest == 0 else " " + number_to_words(rest)
        assert number_to_words(n * 1000 + rest) == number_to_words(n) + " миң" + tail
        assert number_to_words(n * 1_000_000) == number_to_words(n) + " миллион"
        assert number_to_words(-n) == "минус " + number_to_words(n)
        # an ordinal is its cardinal plus a suffix
        assert ordinal_to_words(n).startswith(number_to_words(n))
    for n in range(1, 10):
        assert number_to_words(10 * n + 5) == kyrgyz.TENS[n] + " беш"


def test_every_number_below_ten_thousand_has_distinct_words():
    words = {number_to_words(n) for n in range(10_000)}
    assert len(words) == 10_000
    assert all("  " not in w and w == w.strip() for w in words)


def test_range_limits():
    assert number_to_words(MAX_NUMBER).startswith("тогуз жүз токсон тогуз миллиард")
    assert number_to_words(-MAX_NUMBER).startswith("минус")


@pytest.mark.parametrize("bad", [2.5, 3.0, "12", True, None])
def test_non_integers_rejected(bad):
    with pytest.raises(ValueError, match="must be an integer"):
        number_to_words(bad)


def test_numpy_integers_accepted():
    assert number_to_words(np.int64(25)) == "жыйырма беш"


@pytest.mark.parametrize("bad", [MAX_NUMBER + 1, -MAX_NUMBER - 1])
def test_out_of_range_rejected(bad):
    with pytest.raises(ValueError, match="n must be between"):
        number_to_words(bad)


def test_negative_ordinal_rejected():
    with pytest.raises(ValueError, match="ordinals are defined for n >= 0"):
        ordinal_to_words(-1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Мен 25 жаштамын.", "Мен жыйырма беш жаштамын."),
        ("1-май", "биринчи май"),
        ("2025-жылы", "эки миң жыйырма бешинчи жылы"),
        ("5-класста окуйм", "бешинчи класста окуйм"),
        ("Сыртта -5 градус", "Сыртта минус беш градус"),
        ("\u22123", "минус үч"),
        ("2-3 күн", "эки-үч күн"),
        ("код 007", "код нөл нөл жети"),
        ("3,5 кг", "үч бүтүн ондон беш кг"),
        ("0.25", "нөл бүтүн жүздөн жыйырма беш"),
        ("2,05 м", "эки бүтүн жүздөн беш м"),
        ("1,125", "бир бүтүн миңден жүз жыйырма беш"),
        ("3.14159", "үч бүтүн жүз миңден он төрт миң жүз элүү тогуз"),
        ("0,0001", "нөл бүтүн он миңден бир"),
        ("2,000005", "эки бүтүн миллиондон беш"),
        ("5-ке чейин", "бешке чейин"),
        ("1-ге", "бирге"),
        ("10-дон ашык", "ондон ашык"),
        ("3-тө", "үчтө"),
        ("2-лер", "экилер"),
        ("5-ай", "бешинчи ай"),
        ("2024-жылдын", "эки миң жыйырма төртүнчү жылдын"),
        ("-3,5 градус", "минус үч бүтүн ондон беш градус"),
        ("1,2,3", "бир,эки,үч"),
        ("01.05.2025", "нөл бир.нөл беш.эки миң жыйырма беш"),
        ("25%", "жыйырма беш пайыз"),
        ("12,5 % жана 7%", "он эки бүтүн ондон беш пайыз жана жети пайыз"),
        ("12\u00a0000 сом", "он эки миң сом"),
        ("12 000 сом", "он эки миң сом"),
        ("1 000 000", "бир миллион"),
        ("3 12", "үч он эки"),
        ("12 0001", "он эки нөл нөл нөл бир"),
        ("1234567890123", "бир эки үч төрт беш алты жети сегиз тогуз нөл бир эки үч"),
        ("сандар жок", "сандар жок"),
        ("", ""),
    ],
)
def test_verbalize_numbers(text, expected):
    assert verbalize_numbers(text) == expected


def test_verbalize_is_idempotent_and_leaves_no_digits():
    text = "1-май, 2025-жыл: 3 китеп, 100 сом, -4 градус, 2,5 кг, 30%."
    once = verbalize_numbers(text)
    assert not any(c.isdigit() for c in once)
    assert verbalize_numbers(once) == once


def test_verbalize_rejects_non_text():
    with pytest.raises(ValueError, match="text must be a str"):
        verbalize_numbers(25)


def test_docstring_examples():
    result = doctest.testmod(kyrgyz)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,000,000", "бир миллион"),
        ("1.000.000", "бир миллион"),
        ("12,345,678 сом", "он эки миллион үч жүз кырк беш миң алты жүз жетимиш сегиз сом"),
        ("-2.500.000", "минус эки миллион беш жүз миң"),
        ("10,000,000%", "он миллион пайыз"),
        ("1,000,000-жылы", "бир миллионунчу жылы"),
        ("1,000.5", "бир миң бүтүн ондон беш"),  # grouped whole, decimals after the other mark
        ("1.000.000,25", "бир миллион бүтүн жүздөн жыйырма беш"),
        ("1,125", "бир бүтүн миңден жүз жыйырма беш"),  # one comma: a decimal, as before
        ("3.14159", "үч бүтүн жүз миңден он төрт миң жүз элүү тогуз"),
        ("1,000,00", "бир,нөл нөл нөл,нөл нөл"),  # not groups of three: number by number
        ("01.05.2025", "нөл бир.нөл беш.эки миң жыйырма беш"),
        ("v1.2.345.678", "vбир.эки.үч жүз кырк беш.алты жүз жетимиш сегиз"),
    ],
)
def test_thousands_grouped_with_commas_or_dots(text, expected):
    assert verbalize_numbers(text) == expected
