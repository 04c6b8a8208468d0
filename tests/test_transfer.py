"""A new language token initialised from a related one's, and pseudo-labels with their confidence."""

import pytest
import torch

from dlsaudio.asr import build_tiny_whisper
from dlsaudio.asr.language_token import add_language_token
from dlsaudio.asr.pseudo import pseudo_label

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny(tiny_whisper_sizes):
    torch.manual_seed(0)
    return build_tiny_whisper(**tiny_whisper_sizes)


def _features(model, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = 2 * model.config.max_source_positions
    return [torch.randn(model.config.num_mel_bins, frames, generator=g) for _ in range(n)]


def test_the_new_token_starts_as_the_related_one_and_leads_labels_and_generation(tiny):
    model, processor = tiny
    tokenizer = processor.tokenizer
    kk = tokenizer.convert_tokens_to_ids("<|kk|>")
    vocab = model.config.vocab_size
    ky = add_language_token(model, processor, "ky", init_from="kk")
    weights = model.get_input_embeddings().weight
    assert ky == vocab and weights.shape[0] == vocab + 1
    torch.testing.assert_close(weights[ky], weights[kk], rtol=0, atol=0)
    sot, transcribe, no_ts = (
        tokenizer.convert_tokens_to_ids(t)
        for t in ("<|startoftranscript|>", "<|transcribe|>", "<|notimestamps|>")
    )
    ids = tokenizer("Салам").input_ids
    assert ids[:4] == [sot, ky, transcribe, no_ts] and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Салам"

    # Tied output projection: at first <|ky|> and <|kk|> get the same logit everywhere.
    feature = torch.stack(_features(model, 1))
    prefix = torch.tensor([[sot, kk, transcribe, no_ts]])
    logits = model(input_features=feature, decoder_input_ids=prefix).logits
    torch.testing.assert_close(logits[..., ky], logits[..., kk], rtol=0, atol=0)

    # Once the new row differs, generation must follow the <|ky|> prefix, not <|kk|>'s.
    with torch.no_grad():
        weights[ky] = torch.randn(weights.shape[1], generator=torch.Generator().manual_seed(1))
    model.eval()
    with_ky = model(
        input_features=feature, decoder_input_ids=torch.tensor([[sot, ky, transcribe, no_ts]])
    )
    first = model.generate(feature, max_new_tokens=1, return_dict_in_generate=True).sequences
    assert first[0, 1].item() == ky
    assert first[0, -1].item() == with_ky.logits[0, -1].argmax().item()


def test_a_token_that_exists_or_a_bad_source_is_refused(tiny):
    model, processor = tiny
    with pytest.raises(ValueError, match="already has <\\|kk\\|>"):
        add_language_token(model, processor, "kk")
    with pytest.raises(ValueError, match="Whisper has no Kyrgyz token"):
        add_language_token(model, processor, "xy", init_from="ky")
    with pytest.raises(ValueError, match="2- or 3-letter lower-case code"):
        add_language_token(model, processor, "<|ky|>")


def test_confidence_is_the_mean_log_probability_of_the_generated_tokens(tiny):
    model, processor = tiny
    features = _features(model, 3)
    labelled = pseudo_label(model, processor, features, batch_size=2, max_new_tokens=5)
    assert len(labelled) == 3
    eos = processor.tokenizer.eos_token_id
    model.eval()
    gen = model.generation_config
    for feature, (text, confidence) in zip(features, labelled, strict=True):
        # brute force: greedy decoding a token at a time from the prompt, each step's choice
        # scored under the distribution decoding draws from (suppressed tokens removed)
        ids, logprobs = list(processor.tokenizer.prefix_tokens), []
        with torch.no_grad():
            for step in range(5):
                logits = model(
                    input_features=feature[None], decoder_input_ids=torch.tensor([ids])
                ).logits
                logits = logits[0, -1].double()
                banned = list(gen.suppress_tokens or []) + (
                    list(gen.begin_suppress_tokens or []) if step == 0 else []
                )
                logits[banned] = -float("inf")
                token = int(logits.argmax())
                ids.append(token)
                logprobs.append(float(torch.log_softmax(logits, dim=-1)[token]))
                if token == eos:
                    break
        assert confidence == pytest.approx(sum(logprobs) / len(logprobs), abs=1e-5)
        assert text == processor.tokenizer.decode(ids, skip_special_tokens=True).strip()


def test_a_model_without_a_language_token_gets_the_new_one_in_second_place(tiny_whisper_sizes):
    model, processor = build_tiny_whisper(language=None, **tiny_whisper_sizes)
    tokenizer = processor.tokenizer
    ky = add_language_token(model, processor, "ky")
    sot, transcribe = (
        tokenizer.convert_tokens_to_ids(t) for t in ("<|startoftranscript|>", "<|transcribe|>")
    )
    assert tokenizer("Салам").input_ids[:3] == [sot, ky, transcribe]
    assert model.generation_config.lang_to_id == {"<|ky|>": ky}
