"""Transcription and scoring helpers on the tiny offline Whisper."""

import pytest
import torch

pytest.importorskip("whisper")

from dlsaudio.asr import build_tiny_whisper, error_report, prepare_example  # noqa: E402
from dlsaudio.asr.inference import (  # noqa: E402
    asr_eval_fn,
    evaluate_examples,
    transcribe,
    transcribe_features,
)


@pytest.fixture(scope="module")
def tiny(tiny_whisper_sizes):
    return build_tiny_whisper(**tiny_whisper_sizes, chunk_seconds=2, seed=1)


def waves(n, seconds=1.0, sample_rate=16000):
    g = torch.Generator().manual_seed(0)
    return [0.1 * torch.randn(int(seconds * sample_rate), generator=g) for _ in range(n)]


def test_short_window_model(tiny):
    model, processor = tiny
    assert model.config.max_source_positions == 100
    ex = prepare_example({"wave": waves(1)[0], "sample_rate": 16000, "text": "а"}, processor)
    assert ex["input_features"].shape == (80, 200)
    with pytest.raises(ValueError, match="chunk_seconds=45"):
        build_tiny_whisper(chunk_seconds=45)


def test_batching_does_not_change_transcripts_and_mode_is_restored(tiny):
    model, processor = tiny
    model.train()
    items = [{"wave": w, "sample_rate": 16000, "text": "бир эки"} for w in waves(3)]
    examples = [prepare_example(item, processor) for item in items]
    feats = [e["input_features"] for e in examples]
    one = transcribe_features(model, processor, feats, batch_size=1, max_new_tokens=4)
    three = transcribe_features(model, processor, feats, batch_size=3, max_new_tokens=4)
    assert one == three and len(one) == 3 and all(isinstance(t, str) for t in one)
    assert model.training
    # transcribe() computes the same features from raw audio
    assert transcribe(model, processor, [item["wave"] for item in items], max_new_tokens=4) == one

    report, hyps = evaluate_examples(model, processor, examples, max_new_tokens=4)
    assert hyps == one
    assert report == error_report([e["text"] for e in examples], hyps)
    assert asr_eval_fn(processor, examples, max_new_tokens=4)(model) == {
        "wer": report["wer"],
        "cer": report["cer"],
    }


def test_bad_arguments_raise(tiny):
    model, processor = tiny
    with pytest.raises(ValueError, match="batch_size=0"):
        transcribe_features(model, processor, [torch.zeros(80, 200)], batch_size=0)
    with pytest.raises(ValueError, match="max_new_tokens=500"):
        transcribe_features(model, processor, [torch.zeros(80, 200)], max_new_tokens=500)
    with pytest.raises(
        ValueError, match=r"features have shape \(128, 200\), expected \(80, frames\)"
    ):
        transcribe_features(model, processor, [torch.zeros(128, 200)])
    with pytest.raises(ValueError, match=r"waves\[0\] has shape \(2, 100\)"):
        transcribe(model, processor, [torch.zeros(2, 100)])
    with pytest.raises(ValueError, match="examples is empty"):
        asr_eval_fn(processor, [])
