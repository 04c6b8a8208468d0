"""Whisper for Kyrgyz: models, text normalisation, metrics, features and batching.

Exact gradient-accumulation training lives in :mod:`dlsaudio.asr.train`, LoRA in
:mod:`dlsaudio.asr.lora`, time estimates for a Colab T4 in :mod:`dlsaudio.asr.estimate`.
"""

from dlsaudio.asr.collator import IGNORE_INDEX, DataCollatorSpeechSeq2SeqWithPadding
from dlsaudio.asr.features import WhisperExamples, prepare_dataset, prepare_example
from dlsaudio.asr.inference import (
    asr_eval_fn,
    detect_language,
    evaluate_examples,
    transcribe,
    transcribe_features,
)
from dlsaudio.asr.metrics import cer, error_report, frequent_errors, utterance_errors, wer
from dlsaudio.asr.text import normalize_kyrgyz
from dlsaudio.asr.whisper import (
    DEFAULT_LANGUAGE,
    build_tiny_whisper,
    build_whisper_tokenizer,
    configure_language,
    language_code,
    load_whisper,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "IGNORE_INDEX",
    "DataCollatorSpeechSeq2SeqWithPadding",
    "WhisperExamples",
    "asr_eval_fn",
    "build_tiny_whisper",
    "build_whisper_tokenizer",
    "cer",
    "configure_language",
    "detect_language",
    "error_report",
    "evaluate_examples",
    "frequent_errors",
    "language_code",
    "load_whisper",
    "normalize_kyrgyz",
    "prepare_dataset",
    "prepare_example",
    "transcribe",
    "transcribe_features",
    "utterance_errors",
    "wer",
]
