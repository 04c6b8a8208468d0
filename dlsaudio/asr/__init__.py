"""Whisper for Kyrgyz: models, text normalisation, metrics, features and batching.

Training with exact gradient accumulation: :mod:`dlsaudio.asr.train` (the loop and the names
notebooks import for it), built from :mod:`~dlsaudio.asr.loss`, :mod:`~dlsaudio.asr.accumulation`,
:mod:`~dlsaudio.asr.schedule`, :mod:`~dlsaudio.asr.precision`, :mod:`~dlsaudio.asr.distributed`
and :mod:`~dlsaudio.asr.plots`; :mod:`dlsaudio.asr.lora` adds LoRA adapters. A step's measured
time and memory (``step_cost``) and the time estimates for a Colab T4 (``time_estimate``) are in
:mod:`dlsaudio.timing`, with module 3's; :mod:`dlsaudio.asr.cost` and
:mod:`dlsaudio.asr.estimate` only re-export them for student copies already handed out.
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
    TINY_LOCAL,
    build_tiny_whisper,
    build_whisper_tokenizer,
    configure_language,
    language_code,
    load_whisper,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "IGNORE_INDEX",
    "TINY_LOCAL",
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
