"""Transcribing with Whisper, asking which language it hears, and scoring the transcripts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torchaudio
from tqdm.auto import tqdm
from transformers.models.whisper.tokenization_whisper import LANGUAGES

from dlsaudio.asr.metrics import error_report


def _check_batching(batch_size: int, max_new_tokens: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected a positive integer")
    if not isinstance(max_new_tokens, int) or not 0 < max_new_tokens <= 444:
        raise ValueError(
            f"max_new_tokens={max_new_tokens!r}; expected 1..444 (448 decoder positions minus the 4-token prefix)"
        )


def _feature_batch(
    model: Any, features: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack features on the model's device and dtype, with an all-ones attention mask.

    Raises:
        ValueError: the features do not have the model's number of mel bins.
    """
    n_mels = model.config.num_mel_bins
    param = next(model.parameters())
    batch = torch.stack([torch.as_tensor(f) for f in features])
    if batch.ndim != 3 or batch.shape[1] != n_mels:
        raise ValueError(
            f"features have shape {tuple(batch.shape[1:])}, expected ({n_mels}, frames) for this "
            f"model; compute them with its own feature extractor"
        )
    mask = torch.ones(batch.shape[0], batch.shape[2], dtype=torch.long, device=param.device)
    return batch.to(param.device, param.dtype), mask


@torch.no_grad()
def transcribe_features(
    model: Any,
    processor: Any,
    features: Sequence[torch.Tensor],
    batch_size: int = 8,
    max_new_tokens: int = 128,
    progress: bool = False,
) -> list[str]:
    """Greedy transcripts of log-mel features with the language and task of ``model.generation_config``.

    Args:
        model: a ``WhisperForConditionalGeneration``.
        processor: its ``WhisperProcessor`` (the tokenizer decodes).
        features: ``(n_mels, 3000)`` tensors, for example ``example["input_features"]``.
        batch_size: utterances per ``generate`` call.
        max_new_tokens: longest transcript in tokens.
        progress: show a tqdm bar.

    Returns:
        One transcript per input, without special tokens, stripped.

    Raises:
        ValueError: for a bad ``batch_size``/``max_new_tokens`` or features whose number of
            mel bins differs from the model's.
    """
    texts: list[str] = []
    for ids in _generated(model, features, batch_size, max_new_tokens, progress, "transcribe"):
        texts += [t.strip() for t in processor.batch_decode(ids, skip_special_tokens=True)]
    return texts


def _generated(model, features, batch_size, max_new_tokens, progress, desc, **options):
    """``model.generate`` on ``features`` batch by batch (in eval mode, restored afterwards)."""
    _check_batching(batch_size, max_new_tokens)
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(features), batch_size), desc=desc, disable=not progress):
            batch, mask = _feature_batch(model, features[start : start + batch_size])
            yield model.generate(
                batch, attention_mask=mask, max_new_tokens=max_new_tokens, **options
            )
    finally:
        model.train(was_training)


def transcribe(
    model: Any,
    processor: Any,
    waves: Sequence[torch.Tensor | np.ndarray],
    sample_rate: int = 16000,
    batch_size: int = 8,
    max_new_tokens: int = 128,
) -> list[str]:
    """Transcribe ``(time,)`` waveforms (at most 30 s each; longer ones are cut by the features).

    Args:
        model: a ``WhisperForConditionalGeneration``.
        processor: its ``WhisperProcessor``.
        waves: mono waveforms at ``sample_rate``.
        sample_rate: their sample rate; resampled to the feature extractor's (16 kHz).
        batch_size: utterances per ``generate`` call.
        max_new_tokens: longest transcript in tokens.

    Raises:
        ValueError: for a wave that is not ``(time,)`` and as :func:`transcribe_features`.
    """
    extractor = processor.feature_extractor
    feats = []
    for i, wave in enumerate(waves):
        wave = torch.as_tensor(wave, dtype=torch.float32)
        if wave.ndim != 1:
            raise ValueError(f"waves[{i}] has shape {tuple(wave.shape)}, expected (time,)")
        if sample_rate != extractor.sampling_rate:
            wave = torchaudio.functional.resample(wave, sample_rate, extractor.sampling_rate)
        feats.append(
            extractor(
                wave.numpy(), sampling_rate=extractor.sampling_rate, return_tensors="pt"
            ).input_features[0]
        )
    return transcribe_features(model, processor, feats, batch_size, max_new_tokens)


@torch.no_grad()
def detect_language(
    model: Any, processor: Any, features: torch.Tensor, top: int = 3
) -> list[dict[str, float]]:
    """Which languages Whisper hears: the probabilities of its language tokens.

    Whisper predicts a language token right after ``<|startoftranscript|>``. This runs the
    decoder for that one position and normalises its scores over the language tokens only
    (the same scores ``generate`` uses when it detects a language). It reads the language
    tokens from the tokenizer, so it works whatever language the model is configured with,
    including ``language=None``, where generation itself never detects one.

    Args:
        model: a ``WhisperForConditionalGeneration``.
        processor: its ``WhisperProcessor``.
        features: ``(n_mels, frames)`` or ``(batch, n_mels, frames)`` log-mel features from the
            model's own feature extractor.
        top: how many languages to return per utterance.

    Returns:
        One dict per utterance, ``{code: probability}`` for the ``top`` most likely languages,
        most likely first.

    Raises:
        ValueError: for features whose number of mel bins differs from the model's, or
            ``top`` < 1.
    """
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top={top!r}; expected a positive integer")
    features = torch.as_tensor(features)
    if features.ndim == 2:
        features = features[None]  # (1, n_mels, frames)
    n_mels = model.config.num_mel_bins
    if features.ndim != 3 or features.shape[1] != n_mels:
        raise ValueError(
            f"features have shape {tuple(features.shape)}, expected (n_mels, frames) or "
            f"(batch, n_mels, frames) with n_mels={n_mels}; compute them with the model's own "
            "feature extractor"
        )
    tokenizer = processor.tokenizer
    vocab = tokenizer.get_vocab()
    codes = [code for code in LANGUAGES if f"<|{code}|>" in vocab]
    ids = torch.tensor([vocab[f"<|{code}|>"] for code in codes])
    param = next(model.parameters())
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    was_training = model.training
    model.eval()
    logits = model(
        input_features=features.to(param.device, param.dtype),
        decoder_input_ids=torch.full((len(features), 1), start, device=param.device),
    ).logits[:, -1]  # (batch, vocab)
    model.train(was_training)
    probabilities = logits[:, ids.to(logits.device)].float().softmax(-1).cpu()  # (batch, languages)
    best = probabilities.topk(min(top, len(codes)), dim=-1)
    return [
        {codes[i]: float(p) for p, i in zip(values, indices, strict=True)}
        for values, indices in zip(best.values.tolist(), best.indices.tolist(), strict=True)
    ]


def evaluate_examples(
    model: Any,
    processor: Any,
    examples: Sequence[Mapping[str, Any]],
    batch_size: int = 8,
    max_new_tokens: int = 128,
    progress: bool = False,
) -> tuple[dict[str, float], list[str]]:
    """Transcribe prepared examples and score them against their ``text``.

    Examples are read one batch at a time, so lazy :class:`dlsaudio.asr.WhisperExamples`
    never hold more than one batch of features in memory.

    Returns:
        ``(report, hypotheses)`` with the report of :func:`dlsaudio.asr.error_report`
        (raw and normalised WER and CER).

    Raises:
        ValueError: as :func:`transcribe_features` and :func:`dlsaudio.asr.wer`.
    """
    _check_batching(batch_size, max_new_tokens)
    hyps: list[str] = []
    refs: list[str] = []
    for start in tqdm(range(0, len(examples), batch_size), desc="transcribe", disable=not progress):
        batch = [examples[i] for i in range(start, min(start + batch_size, len(examples)))]
        refs += [e["text"] for e in batch]
        hyps += transcribe_features(
            model, processor, [e["input_features"] for e in batch], batch_size, max_new_tokens
        )
    return error_report(refs, hyps), hyps


def asr_eval_fn(
    processor: Any,
    examples: Sequence[Mapping[str, Any]],
    batch_size: int = 8,
    max_new_tokens: int = 128,
) -> Callable[[Any], dict[str, float]]:
    """An ``eval_fn`` for :func:`dlsaudio.asr.train.train`: ``model -> {"wer", "cer"}`` (normalised).

    Raises:
        ValueError: for empty ``examples`` or bad batching arguments.
    """
    if len(examples) == 0:
        raise ValueError("examples is empty; expected prepared evaluation examples")
    _check_batching(batch_size, max_new_tokens)

    def evaluate(model: Any) -> dict[str, float]:
        report, _ = evaluate_examples(model, processor, examples, batch_size, max_new_tokens)
        return {"wer": report["wer"], "cer": report["cer"]}

    return evaluate
