"""WER/CER against hand-counted errors, raw and normalised; error analysis helpers."""

import pytest

from dlsaudio.asr import cer, error_report, frequent_errors, utterance_errors, wer


def test_wer_counts_corpus_errors_over_reference_words():
    refs = ["бир эки үч", "төрт беш"]
    hyps = ["бир эки", "төрт алты беш"]  # 1 deletion + 1 insertion over 5 reference words
    assert wer(refs, hyps) == pytest.approx(2 / 5)
    # Not the mean of per-utterance WERs (1/3 and 1/2).
    assert wer(refs, hyps) != pytest.approx((1 / 3 + 1 / 2) / 2)


def test_wer_can_exceed_one_and_single_strings_work():
    assert wer("бир", "бир эки үч") == pytest.approx(2.0)
    assert wer("бир эки", "бир эки") == 0.0


def test_cer_hand_counted():
    assert cer("абв", "абг") == pytest.approx(1 / 3)
    assert cer(["аб", "в"], ["аб", ""]) == pytest.approx(1 / 3)  # one deleted char of three


def test_raw_and_normalised():
    refs, hyps = ["Салам, досум!"], ["салам досум"]
    assert wer(refs, hyps, normalize=False) == pytest.approx(
        1.0
    )  # "Салам,"/"салам", "досум!"/"досум"
    assert wer(refs, hyps) == 0.0
    # raw characters: С->с substituted, "," and "!" deleted, over 13 reference characters
    assert cer(refs, hyps, normalize=False) == pytest.approx(3 / 13)
    assert wer(["он беш бала"], ["15 бала"]) == 0.0  # digits are verbalised on both sides
    assert wer(["А Б"], ["а в"], normalize=str.lower) == pytest.approx(0.5)


def test_error_report():
    report = error_report(["Салам, досум!", "бир эки"], ["салам досум", "бир үч"])
    assert report == {
        "wer_raw": pytest.approx(3 / 4),
        "cer_raw": pytest.approx((3 + 3) / (13 + 7)),  # эки/үч: 2 substitutions + 1 deletion
        "wer": pytest.approx(1 / 4),
        "cer": pytest.approx(3 / (11 + 7)),
        "utterances": 2,
        "ref_words": 4,
    }


def test_utterance_errors_worst_first():
    refs = ["бир эки үч", "төрт беш", "алты"]
    hyps = ["бир эки үч", "төрт", "жети сегиз"]
    rows = utterance_errors(refs, hyps)
    assert [r["index"] for r in rows] == [2, 1, 0]
    assert rows[0]["wer"] == pytest.approx(2.0)  # 1 substitution + 1 insertion over 1 word
    assert (rows[0]["substitutions"], rows[0]["insertions"], rows[0]["deletions"]) == (1, 1, 0)
    assert rows[1]["wer"] == pytest.approx(0.5) and rows[1]["deletions"] == 1
    assert rows[2]["wer"] == 0.0 and rows[2]["cer"] == 0.0


def test_frequent_errors_words_and_chars():
    refs = ["мен үйгө бардым", "мен үйгө келдим", "ал келди"]
    hyps = ["мен уйго бардым", "мен уйго келдим", "ал"]
    words = frequent_errors(refs, hyps)
    assert words["substitutions"] == [(("үйгө", "уйго"), 2)]
    assert words["deletions"] == [("келди", 1)]
    assert words["insertions"] == []
    chars = frequent_errors(refs, hyps, unit="char", top=2)
    assert chars["substitutions"] == [(("ү", "у"), 2), (("ө", "о"), 2)]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="refs has 2 transcripts but hyps has 1"):
        wer(["а", "б"], ["а"])
    with pytest.raises(ValueError, match="refs is empty"):
        cer([], [])
    with pytest.raises(ValueError, match="every reference is empty"):
        wer(["?!", ""], ["а", "б"])
    with pytest.raises(ValueError, match=r"hyps\[1\] is NoneType"):
        error_report(["а", "б"], ["а", None])
    with pytest.raises(ValueError, match="top=0"):
        frequent_errors(["а"], ["б"], top=0)
    with pytest.raises(ValueError, match="unit='phone'"):
        frequent_errors(["а"], ["б"], unit="phone")
