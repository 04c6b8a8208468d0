"""Transcription and scoring helpers on the tiny offline Whisper."""

import pytest
import torch

pytest.importorskip("whisper")

from dlsaudio.asr import (  # noqa: E402
    build_tiny_whisper,
    configure_language,
    error_report,
    prepare_example,
)
from dlsaudio.asr.inference import (  # noqa: E402
    asr_eval_fn,
    detect_language,
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
    with pytest.raises(ValueError, match=r"features have shape \(128, 200\)"):
        transcribe_features(model, processor, [torch.zeros(128, 200)])
    with pytest.raises(ValueError, match=r"waves\[0\] has shape \(2, 100\)"):
        transcribe(model, processor, [torch.zeros(2, 100)])
    with pytest.raises(ValueError, match="examples is empty"):
        asr_eval_fn(processor, [])


def test_detect_language_ranks_the_language_tokens(tiny):
    model, processor = tiny
    feats = torch.randn(2, 80, 200, generator=torch.Generator().manual_seed(3))
    found = detect_language(model, processor, feats, top=99)
    assert len(found) == 2 and all(len(f) == 99 for f in found)
    for languages in found:
        assert sum(languages.values()) == pytest.approx(1.0, abs=1e-5)
        assert list(languages.values()) == sorted(languages.values(), reverse=True)
    # Hugging Face's own detection (the language token generate() would pick) is our first one
    model.eval()
    ids = model.detect_language(feats, num_segment_frames=200).tolist()
    assert [processor.tokenizer.convert_ids_to_tokens(i) for i in ids] == [
        f"<|{next(iter(f))}|>" for f in found
    ]
    (top3,) = detect_language(model, processor, feats[0])  # one utterance, (n_mels, frames)
    assert list(top3) == list(found[0])[:3]
    assert list(top3.values()) == pytest.approx(list(found[0].values())[:3], rel=1e-5)


def test_detect_language_works_with_no_language_token(tiny):
    """language=None turns detection off in generate() (its language table is put aside), but
    asking which language the decoder hears still works and gives the same answer."""
    model, processor = tiny
    feats = torch.randn(1, 80, 200, generator=torch.Generator().manual_seed(4))
    with_kk = detect_language(model, processor, feats)
    configure_language(model, processor, None)
    try:
        assert not getattr(model.generation_config, "lang_to_id", None)
        assert detect_language(model, processor, feats) == with_kk
    finally:
        configure_language(model, processor, "kk")


def test_detect_language_rejects_bad_input(tiny):
    model, processor = tiny
    with pytest.raises(ValueError, match=r"features have shape \(1, 128, 200\).*n_mels=80"):
        detect_language(model, processor, torch.zeros(1, 128, 200))
    with pytest.raises(ValueError, match="top=0; expected a positive integer"):
        detect_language(model, processor, torch.zeros(80, 200), top=0)
