"""The Whisper data collator: separate padding, -100 label padding, start-token stripping."""

import pytest
import torch
from transformers import WhisperFeatureExtractor, WhisperProcessor

pytest.importorskip("whisper")

from dlsaudio.asr import IGNORE_INDEX, DataCollatorSpeechSeq2SeqWithPadding  # noqa: E402
from dlsaudio.asr.whisper import build_whisper_tokenizer  # noqa: E402

SOT, EOT = 50258, 50257


@pytest.fixture(scope="module")
def processor():
    return WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80),
        tokenizer=build_whisper_tokenizer(),
    )


def example(labels, frames=3000, value=0.0):
    return {"input_features": torch.full((80, frames), value), "labels": labels}


def test_tokenizer_labels_lose_exactly_one_start_token(processor):
    texts = ["жаңы", "бүгүн аба ырайы жакшы"]
    feats = [example(processor.tokenizer(t).input_ids, value=i) for i, t in enumerate(texts)]
    collator = DataCollatorSpeechSeq2SeqWithPadding(processor, decoder_start_token_id=SOT)
    batch = collator(feats)
    labels = batch["labels"]
    assert labels.dtype == torch.long
    assert (labels[:, 0] != SOT).all(), (
        "the start token would appear twice after the model shifts labels"
    )
    assert labels[:, 0].tolist() == [50316, 50316]  # <|kk|> comes first now
    lengths = [len(processor.tokenizer(t).input_ids) - 1 for t in texts]
    assert labels.shape == (2, max(lengths))
    # The end-of-text token stays in every row (pad id == eos id, but padding is masked by position).
    for row, n in zip(labels, lengths, strict=True):
        assert row[n - 1].item() == EOT
        assert (row[n:] == IGNORE_INDEX).all()
        assert (row[:n] != IGNORE_INDEX).all()
    assert batch["input_features"].shape == (2, 80, 3000)
    assert batch["input_features"][1].eq(1).all()


def test_the_widely_copied_bos_check_would_keep_two_start_tokens(processor):
    """Comparing with bos_token_id (<|endoftext|> for Whisper) never strips anything."""
    ids = processor.tokenizer("жаңы").input_ids
    assert processor.tokenizer.bos_token_id == EOT != ids[0]
    wrong = DataCollatorSpeechSeq2SeqWithPadding(
        processor, decoder_start_token_id=processor.tokenizer.bos_token_id
    )
    assert wrong([example(ids)])["labels"][0, 0].item() == SOT
    right = DataCollatorSpeechSeq2SeqWithPadding(processor, decoder_start_token_id=SOT)
    assert right([example(ids)])["labels"][0].tolist() == ids[1:]


def test_mixed_rows_are_not_stripped(processor):
    rows = [[SOT, 50316, 400, EOT], [50316, 401, 402, EOT]]
    batch = DataCollatorSpeechSeq2SeqWithPadding(processor, SOT)([example(r) for r in rows])
    assert batch["labels"].tolist() == rows


def test_padding_positions_are_minus_100_and_eot_is_kept(processor):
    rows = [[SOT, 50316, EOT], [SOT, 50316, 400, 401, 402, EOT]]
    batch = DataCollatorSpeechSeq2SeqWithPadding(processor, SOT)(
        [example(torch.tensor(r)) for r in rows]
    )
    assert batch["labels"].tolist() == [
        [50316, EOT, -100, -100, -100],
        [50316, 400, 401, 402, EOT],
    ]


def test_sources_only_on_request(processor):
    feats = [dict(example([SOT, 400, EOT]), source=s) for s in ("ky_tts", "kk_tts")]
    assert "source" not in DataCollatorSpeechSeq2SeqWithPadding(processor, SOT)(feats)
    batch = DataCollatorSpeechSeq2SeqWithPadding(processor, SOT, return_source=True)(feats)
    assert batch["source"] == ["ky_tts", "kk_tts"]


def test_bad_input_raises(processor):
    collator = DataCollatorSpeechSeq2SeqWithPadding(processor, SOT)
    with pytest.raises(ValueError, match="features is empty"):
        collator([])
    with pytest.raises(ValueError, match=r"example 1 has no \['labels'\]"):
        collator([example([SOT, EOT]), {"input_features": torch.zeros(80, 3000)}])
