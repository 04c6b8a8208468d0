"""The tiny offline Whisper: real vocabulary and special-token ids, language handling, shapes."""

import os
import sys

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

whisper_tokenizer = pytest.importorskip("whisper.tokenizer")

from dlsaudio.asr import (  # noqa: E402
    build_tiny_whisper,
    build_whisper_tokenizer,
    configure_language,
    language_code,
    load_whisper,
)

TEXTS = [
    "Бүгүн аба ырайы жакшы, көңүлүм өсүп турат!",
    "Ңөү ҢӨҮ: өң, үң, жаңы жылыңыз менен!",
    "Сегодня хорошая погода.",
    " Hello, world's 2024 test ... ",
]


@pytest.fixture(scope="module")
def openai_tokenizer():
    return whisper_tokenizer.get_tokenizer(multilingual=True, num_languages=99)


@pytest.fixture(scope="module")
def tiny(tiny_whisper_sizes):
    return build_tiny_whisper(language="kk", **tiny_whisper_sizes, seed=0)


def test_special_token_ids_match_openai_whisper(openai_tokenizer):
    tok = build_whisper_tokenizer()
    enc = openai_tokenizer.encoding
    assert len(tok) == enc.n_vocab == 51865
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|kk|>", "<|tt|>", "<|ru|>"]
    specials += ["<|translate|>", "<|transcribe|>", "<|startofprev|>", "<|nospeech|>"]
    specials += ["<|notimestamps|>", "<|0.00|>", "<|30.00|>"]
    for token in specials:
        assert tok.convert_tokens_to_ids(token) == enc.encode_single_token(token), token
    for code in whisper_tokenizer.LANGUAGES:
        token = f"<|{code}|>"
        if code != "yue":
            assert tok.convert_tokens_to_ids(token) == enc.encode_single_token(token), token
    assert tok.convert_tokens_to_ids("<|kk|>") == 50316
    assert tok.convert_tokens_to_ids("<|transcribe|>") == 50359


def test_v3_vocabulary_has_cantonese():
    tok = build_whisper_tokenizer(num_languages=100)
    enc = whisper_tokenizer.get_tokenizer(multilingual=True, num_languages=100).encoding
    assert len(tok) == enc.n_vocab == 51866
    for token in ["<|yue|>", "<|transcribe|>", "<|notimestamps|>", "<|30.00|>"]:
        assert tok.convert_tokens_to_ids(token) == enc.encode_single_token(token)


@pytest.mark.parametrize("text", TEXTS)
def test_encoding_matches_openai_whisper_and_round_trips(openai_tokenizer, text):
    tok = build_whisper_tokenizer()
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == openai_tokenizer.encode(text)
    assert tok.decode(ids) == text


def test_labels_carry_the_kazakh_prefix(openai_tokenizer):
    tok = build_whisper_tokenizer(language="kk")
    ids = tok("жаңы").input_ids
    sot, kk, transcribe, nots = (
        tok.convert_tokens_to_ids(t)
        for t in ["<|startoftranscript|>", "<|kk|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    assert ids[:4] == [sot, kk, transcribe, nots]
    assert ids[4:-1] == openai_tokenizer.encode("жаңы")
    assert ids[-1] == tok.eos_token_id == 50257
    assert tok.decode(ids, skip_special_tokens=True) == "жаңы"


def test_language_none_has_no_language_token():
    tok = build_whisper_tokenizer(language=None)
    assert tok("а").input_ids[:3] == [50258, 50359, 50363]


def test_language_validation_lists_close_choices():
    assert language_code("kk") == "kk"
    assert language_code("Kazakh") == "kk"
    assert language_code("tatar") == "tt"
    with pytest.raises(ValueError, match=r"language='ky'.*kk \(kazakh\)"):
        language_code("ky")
    with pytest.raises(ValueError, match="language='kyrgyz'"):
        build_tiny_whisper(language="kyrgyz")
    with pytest.raises(ValueError, match="language='yue'"):
        language_code("yue", num_languages=99)


def test_bad_sizes_and_task_raise():
    with pytest.raises(ValueError, match="n_mels=64"):
        build_tiny_whisper(n_mels=64)
    with pytest.raises(ValueError, match="d_model=30 is not divisible by heads=4"):
        build_tiny_whisper(d_model=30, heads=4)
    with pytest.raises(ValueError, match="layers=0"):
        build_tiny_whisper(layers=0)
    with pytest.raises(ValueError, match="task='translit'"):
        build_whisper_tokenizer(task="translit")
    with pytest.raises(ValueError, match="num_languages=98"):
        build_whisper_tokenizer(num_languages=98)


def test_tiny_model_config_and_generation_config(tiny):
    model, processor = tiny
    assert model.config.vocab_size == len(processor.tokenizer) == 51865
    assert model.config.num_mel_bins == processor.feature_extractor.feature_size == 80
    assert model.config.decoder_start_token_id == 50258
    gen = model.generation_config
    assert gen.language == "kk" and gen.task == "transcribe" and gen.forced_decoder_ids is None
    assert gen.lang_to_id["<|kk|>"] == 50316 and len(gen.lang_to_id) == 99
    assert gen.no_timestamps_token_id == 50363


def test_same_seed_same_weights(tiny_whisper_sizes):
    a, _ = build_tiny_whisper(**tiny_whisper_sizes, seed=3)
    b, _ = build_tiny_whisper(**tiny_whisper_sizes, seed=3)
    c, _ = build_tiny_whisper(**tiny_whisper_sizes, seed=4)
    pa, pb, pc = (m.model.encoder.conv1.weight for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_forward_and_generate_shapes_with_language_prefix(tiny):
    model, processor = tiny
    model.eval()
    g = torch.Generator().manual_seed(0)
    waves = [torch.randn(8000, generator=g).numpy() * 0.1 for _ in range(2)]
    feats = processor.feature_extractor(
        waves, sampling_rate=16000, return_tensors="pt"
    ).input_features
    assert feats.shape == (2, 80, 3000)
    labels = torch.tensor([[50316, 50359, 50363, 400, 50257]] * 2)
    out = model(input_features=feats, labels=labels)
    assert out.logits.shape == (2, 5, 51865)
    assert torch.isfinite(out.loss)

    gen = model.generate(feats, max_new_tokens=3, return_dict_in_generate=True)
    assert gen.sequences.shape[0] == 2
    assert gen.sequences[:, :4].tolist() == [[50258, 50316, 50359, 50363]] * 2

    configure_language(model, processor, "uz")
    gen = model.generate(feats[:1], max_new_tokens=2, return_dict_in_generate=True)
    assert gen.sequences[0, 1].item() == processor.tokenizer.convert_tokens_to_ids("<|uz|>")
    assert processor.tokenizer("a").input_ids[1] == processor.tokenizer.convert_tokens_to_ids(
        "<|uz|>"
    )
    configure_language(model, processor, "kk")


def prefix(model, feats, n):
    out = model.generate(feats, max_new_tokens=2, return_dict_in_generate=True)
    return out.sequences[0, :n].tolist()


def test_language_none_decodes_with_the_prefix_it_was_trained_on(tiny):
    model, processor = tiny
    model.eval()
    feats = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(1))
    sot, transcribe, no_ts = 50258, 50359, 50363
    configure_language(model, processor, None)
    try:
        assert processor.tokenizer("а").input_ids[:3] == [sot, transcribe, no_ts]
        assert prefix(model, feats, 3) == [sot, transcribe, no_ts], "no detected language token"
        configure_language(model, processor, None)  # idempotent
        assert prefix(model, feats, 3) == [sot, transcribe, no_ts]
    finally:
        configure_language(model, processor, "kk")
    assert model.generation_config.lang_to_id["<|kk|>"] == 50316
    assert prefix(model, feats, 4) == [sot, 50316, transcribe, no_ts]


def test_configure_language_validates(tiny):
    model, processor = tiny
    with pytest.raises(ValueError, match="task='asr'"):
        configure_language(model, processor, "kk", task="asr")
    with pytest.raises(ValueError, match="language='kirghiz'"):
        configure_language(model, processor, "kirghiz")
    with pytest.raises(ValueError, match="task='asr'"):
        load_whisper("openai/whisper-tiny", task="asr")
    assert model.generation_config.language == "kk"  # unchanged after the errors


def test_v3_sized_tiny_model(tiny_whisper_sizes):
    model, processor = build_tiny_whisper(n_mels=128, **tiny_whisper_sizes)
    assert model.config.num_mel_bins == 128 and model.config.vocab_size == 51866
    assert processor.feature_extractor.feature_size == 128


def test_load_whisper_tiny_local_and_offline_error(tiny_whisper_sizes):
    model, processor = load_whisper("tiny-local", language="tt", **tiny_whisper_sizes)
    assert model.generation_config.language == "tt" and model.config.d_model == 32
    with pytest.raises(OSError, match="tiny-local"):
        load_whisper("openai/whisper-does-not-exist")


def test_missing_openai_whisper_says_what_to_install(monkeypatch):
    from dlsaudio.asr import whisper as whisper_module

    whisper_module._tiktoken_vocab.cache_clear()
    monkeypatch.setitem(sys.modules, "whisper", None)  # makes `import whisper` fail
    try:
        with pytest.raises(ImportError, match=r'pip install "dlsaudio\[offline\]"'):
            build_whisper_tokenizer()
    finally:
        whisper_module._tiktoken_vocab.cache_clear()


def test_language_none_survives_save_and_load(tmp_path):
    """A model fine-tuned without a language token is saved and read back without one, and can
    be given a language again afterwards."""
    model, processor = build_tiny_whisper(
        language=None, d_model=32, layers=1, heads=2, chunk_seconds=1
    )
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_whisper(str(tmp_path), language=None)
    loaded.eval()
    feats = torch.randn(1, 80, 100, generator=torch.Generator().manual_seed(0))
    assert prefix(loaded, feats, 3) == [50258, 50359, 50363]
    assert loaded_processor.tokenizer("а").input_ids[:3] == [50258, 50359, 50363]
    configure_language(loaded, loaded_processor, "kk")
    assert prefix(loaded, feats, 4) == [50258, 50316, 50359, 50363]
