"""Whisper for Kyrgyz: load a pretrained model, or build a tiny one offline with the real vocabulary.

Whisper (Radford et al., 2022, https://arxiv.org/abs/2212.04356) is an encoder-decoder
Transformer over a log-mel spectrogram. The decoder starts every transcript with a prefix of
special tokens::

    <|startoftranscript|> <|kk|> <|transcribe|> <|notimestamps|> text ... <|endoftext|>

Whisper has no Kyrgyz token. The closest languages it knows are Kazakh (``kk``), Tatar
(``tt``), Bashkir (``ba``), Uzbek (``uz``) and Turkmen (``tk``); public Kyrgyz fine-tunes
report that ``<|kk|>`` works best, so it is the default here. ``language=None`` puts no
language token in the labels and none in the prefix when generating either (no language
detection), so a model fine-tuned that way decodes with the prefix it was trained on.

Two entry points share the part after the download (:func:`configure_language`):

* :func:`load_whisper` reads ``openai/whisper-*`` from the Hugging Face Hub (Colab);
* :func:`build_tiny_whisper` builds a randomly initialised tiny model locally, with the
  multilingual Whisper vocabulary read from the ``openai-whisper`` package, so token ids are
  those of the real checkpoints (tests and smoke mode; no network).
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)
from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

DEFAULT_LANGUAGE = "kk"
"""Kazakh: the language token used for Kyrgyz (Whisper has no ``<|ky|>``)."""

TINY_LOCAL = {"d_model": 64, "layers": 2, "heads": 2, "chunk_seconds": 6}
"""Sizes of the offline tiny model (``"tiny-local"``) in smoke runs of the seminar and the
command line: :func:`build_tiny_whisper` with 6-second windows trains in seconds on a CPU."""

KYRGYZ_NEIGHBOURS = ("kk", "tt", "ba", "uz", "tk", "tr", "az", "ru")
"""Languages Whisper knows that are close to Kyrgyz: Turkic ones first, then Russian (script, loans)."""

TASKS = ("transcribe", "translate")

HIDDEN_LANG_TO_ID = "lang_to_id_without_language"
"""Where :func:`configure_language` keeps the language table while ``language=None``."""

OFFLINE_HINT = (
    'the tiny offline Whisper needs the openai-whisper package: pip install "dlsaudio[offline]" '
    "(or pip install openai-whisper)"
)


def language_code(language: str, num_languages: int = 100) -> str:
    """Turn a Whisper language code or English name (``"kk"``, ``"kazakh"``) into its code.

    Args:
        language: a code such as ``"kk"`` or a name such as ``"Kazakh"``.
        num_languages: size of the model's language table: 99 for Whisper v1/v2 (80 mel bins),
            100 for v3 (128 mel bins, adds Cantonese).

    Raises:
        ValueError: if Whisper has no such language; the message lists the close choices
            (for Kyrgyz: kk, tt, ba, uz, tk).
    """
    key = str(language).strip().lower()
    codes = list(LANGUAGES)[:num_languages]
    code = TO_LANGUAGE_CODE.get(key, key)
    if code in codes:
        return code
    close = ", ".join(f"{c} ({LANGUAGES[c]})" for c in KYRGYZ_NEIGHBOURS)
    raise ValueError(
        f"language={language!r} is not in Whisper's language table of {num_languages} languages "
        f"(Whisper has no Kyrgyz token). Close choices: {close}; 'kk' is the usual choice for "
        f"Kyrgyz, or language=None for no language token. "
        f"All codes: {', '.join(codes)}"
    )


def configure_language(
    model: WhisperForConditionalGeneration,
    processor: WhisperProcessor,
    language: str | None = DEFAULT_LANGUAGE,
    task: str = "transcribe",
) -> None:
    """Set the language and task of a Whisper model and its tokenizer, in place.

    Generation reads ``model.generation_config.language`` and ``.task`` (transformers >= 4.38);
    the old ``forced_decoder_ids`` are cleared so they cannot contradict them. The tokenizer's
    prefix (used when tokenising labels) gets the same language and task, so training labels
    and generated prefixes agree.

    Args:
        model: a ``WhisperForConditionalGeneration``.
        processor: its ``WhisperProcessor``.
        language: a Whisper language code or name; ``None`` means no language token, in the
            labels and in the generated prefix alike.
        task: ``"transcribe"`` or ``"translate"`` (into English).

    Raises:
        ValueError: for an unknown language or task.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not supported; expected one of {TASKS}")
    gen = model.generation_config
    hidden = getattr(gen, HIDDEN_LANG_TO_ID, None)
    num_languages = len(getattr(gen, "lang_to_id", None) or hidden or LANGUAGES)
    code = None if language is None else language_code(language, num_languages)

    # generate() detects a language whenever the generation config maps languages to ids
    # and names none. With no language token in the labels, the table is put aside so the
    # decoder's prefix stays <|startoftranscript|> <|task|> <|notimestamps|>, as in training.
    if code is None and getattr(gen, "lang_to_id", None):
        setattr(gen, HIDDEN_LANG_TO_ID, gen.lang_to_id)
        del gen.lang_to_id
    elif code is not None and hidden:
        gen.lang_to_id = hidden
        delattr(gen, HIDDEN_LANG_TO_ID)
    gen.language = code
    gen.task = task
    gen.forced_decoder_ids = None
    model.config.forced_decoder_ids = None

    tokenizer = processor.tokenizer
    tokenizer.language = code  # set_prefix_tokens(language=None) would keep the old language
    tokenizer.set_prefix_tokens(task=task, predict_timestamps=False)


def load_whisper(
    name: str = "openai/whisper-small",
    language: str | None = DEFAULT_LANGUAGE,
    task: str = "transcribe",
    *,
    dtype: torch.dtype | None = None,
    **tiny_kwargs,
) -> tuple[WhisperForConditionalGeneration, WhisperProcessor]:
    """Load a pretrained Whisper and its processor from the Hugging Face Hub (or a local folder).

    Args:
        name: a Hub id (``openai/whisper-tiny``, ``-base``, ``-small``, ...) or a folder written
            by ``save_pretrained``. The string ``"tiny-local"`` builds the offline tiny model
            (:func:`build_tiny_whisper`), so a notebook parameter can choose either.
        language: see :func:`configure_language`; Kazakh by default for Kyrgyz.
        task: ``"transcribe"`` or ``"translate"``.
        dtype: optional weight dtype (for example ``torch.float16`` for inference on a GPU).
        **tiny_kwargs: sizes for ``"tiny-local"`` (``d_model``, ``layers``, ``chunk_seconds``,
            ... of :func:`build_tiny_whisper`); ignored for pretrained models, whose sizes
            are fixed.

    Returns:
        ``(model, processor)`` with language and task set.

    Raises:
        ValueError: for an unknown language or task.
        OSError: when the model cannot be downloaded; the message says what to try.
    """
    if name == "tiny-local":
        return build_tiny_whisper(language=language, **tiny_kwargs)
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not supported; expected one of {TASKS}")
    try:
        processor = WhisperProcessor.from_pretrained(name)
        kwargs = {} if dtype is None else {"dtype": dtype}
        model = WhisperForConditionalGeneration.from_pretrained(name, **kwargs)
    except OSError as err:
        raise OSError(
            f"could not load Whisper {name!r} ({err}). Check the name and the network, or run "
            f"offline with name='tiny-local' (a tiny randomly initialised model)"
        ) from err
    configure_language(model, processor, language, task)
    return model, processor


@lru_cache(maxsize=2)
def _tiktoken_vocab(num_languages: int) -> tuple[dict[str, int], list, list[str], list[str]]:
    """Vocabulary, merges, control tokens and timestamp tokens of Whisper's multilingual BPE."""
    try:
        import whisper
        from whisper.tokenizer import LANGUAGES as WHISPER_LANGUAGES
    except ImportError as err:
        raise ImportError(OFFLINE_HINT) from err
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = os.path.join(os.path.dirname(whisper.__file__), "assets", "multilingual.tiktoken")
    if not os.path.isfile(path):
        raise ImportError(f"{path} is missing; reinstall: {OFFLINE_HINT}")
    vocab, merges = TikTokenConverter(vocab_file=path).extract_vocab_merges_from_model(path)
    # The order of openai-whisper's whisper/tokenizer.py::get_encoding defines the ids.
    control = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{code}|>" for code in list(WHISPER_LANGUAGES)[:num_languages]],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    for token in control + stamps:
        vocab[token] = len(vocab)
    return vocab, merges, control, stamps


def build_whisper_tokenizer(
    language: str | None = DEFAULT_LANGUAGE, task: str = "transcribe", num_languages: int = 99
) -> WhisperTokenizerFast:
    """The multilingual Whisper tokenizer, built offline from ``openai-whisper``'s tiktoken file.

    Token ids equal those of the ``openai/whisper-*`` checkpoints: 51865 tokens for
    ``num_languages=99`` (v1/v2: ``<|endoftext|>`` = 50257, ``<|startoftranscript|>`` = 50258,
    ``<|en|>`` = 50259, ``<|kk|>`` = 50316, ``<|transcribe|>`` = 50359) and 51866 for 100 (v3).
    Building takes about a second, so nothing is cached on disk.

    Args:
        language: prefix language (code or name), ``None`` for none.
        task: ``"transcribe"`` or ``"translate"``.
        num_languages: 99 (v1/v2) or 100 (v3).

    Raises:
        ImportError: without ``openai-whisper``; the message says what to install.
        ValueError: for an unknown language, task or ``num_languages``.
    """
    from tokenizers import AddedToken

    if num_languages not in (99, 100):
        raise ValueError(f"num_languages={num_languages!r}; expected 99 (Whisper v2) or 100 (v3)")
    vocab, merges, control, stamps = _tiktoken_vocab(num_languages)
    # As in the openai/whisper-* checkpoints, padding uses <|endoftext|> (so pad id == eos id).
    tokenizer = WhisperTokenizerFast(
        vocab=dict(vocab), merges=list(merges), pad_token="<|endoftext|>"
    )
    # tiktoken keeps a whole pre-token when it is in the vocabulary, before any merge.
    tokenizer.backend_tokenizer.model.ignore_merges = True
    tokenizer.add_special_tokens(
        {
            "additional_special_tokens": [
                AddedToken(t, normalized=False, special=True) for t in control[1:]
            ]
        }
    )
    tokenizer.add_tokens([AddedToken(t, normalized=False, special=False) for t in stamps])
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not supported; expected one of {TASKS}")
    tokenizer.language = None if language is None else language_code(language, num_languages)
    tokenizer.set_prefix_tokens(task=task, predict_timestamps=False)
    return tokenizer


def whisper_generation_config(tokenizer: WhisperTokenizerFast) -> GenerationConfig:
    """A generation config with the fields of the ``openai/whisper-*`` checkpoints.

    Language and task ids, the no-timestamps token and the suppressed tokens (openai-whisper's
    non-speech symbols plus the control tokens) are read from the tokenizer.
    """
    ids = tokenizer.convert_tokens_to_ids
    vocab = tokenizer.get_vocab()
    languages = [f"<|{code}|>" for code in LANGUAGES if f"<|{code}|>" in vocab]
    eot = ids("<|endoftext|>")
    control = ["<|startoftranscript|>", "<|translate|>", "<|transcribe|>"]
    control += ["<|startoflm|>", "<|startofprev|>", "<|nospeech|>"]
    return GenerationConfig(
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=ids("<|startoftranscript|>"),
        max_length=448,
        is_multilingual=True,
        lang_to_id={t: ids(t) for t in languages},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        begin_suppress_tokens=[tokenizer.encode(" ", add_special_tokens=False)[0], eot],
        suppress_tokens=sorted(set(_non_speech_tokens()) | {ids(t) for t in control}),
        max_initial_timestamp_index=50,
        return_timestamps=False,
    )


@lru_cache(maxsize=1)
def _non_speech_tokens() -> tuple[int, ...]:
    from whisper.tokenizer import get_tokenizer

    return tuple(get_tokenizer(multilingual=True).non_speech_tokens)


def build_tiny_whisper(
    language: str | None = DEFAULT_LANGUAGE,
    n_mels: int = 80,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
    chunk_seconds: int = 30,
) -> tuple[WhisperForConditionalGeneration, WhisperProcessor]:
    """A tiny randomly initialised Whisper with the real multilingual vocabulary, built offline.

    Same architecture, feature extractor (30 s windows, 3000 frames) and special tokens as
    ``openai/whisper-*``; only the widths and depths are small, so it runs on a CPU in tests
    and in smoke mode. It knows nothing until trained. A shorter ``chunk_seconds`` shrinks
    the window (features of ``100 * chunk_seconds`` frames, ``50 * chunk_seconds`` encoder
    positions): encoder self-attention costs grow with its square, so a 10 s window trains
    about ten times faster on a CPU than Whisper's 30 s.

    Args:
        language: see :func:`configure_language`.
        n_mels: 80 (Whisper v1/v2, 99 languages) or 128 (v3, 100 languages).
        d_model: model width (divisible by ``heads``).
        layers: encoder and decoder layers each.
        heads: attention heads.
        seed: seed of the random initialisation.
        chunk_seconds: length of the input window in seconds (Whisper: 30).

    Returns:
        ``(model, processor)`` in training mode on the CPU.

    Raises:
        ImportError: without ``openai-whisper``.
        ValueError: for bad sizes, an unknown language or task.
    """
    if n_mels not in (80, 128):
        raise ValueError(f"n_mels={n_mels!r}; Whisper uses 80 (v1/v2) or 128 (v3) mel bins")
    for arg, value in (("d_model", d_model), ("layers", layers), ("heads", heads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg}={value!r}; expected a positive integer")
    if d_model % heads:
        raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
    if not isinstance(chunk_seconds, int) or not 1 <= chunk_seconds <= 30:
        raise ValueError(f"chunk_seconds={chunk_seconds!r}; expected an integer from 1 to 30")

    num_languages = 100 if n_mels == 128 else 99
    tokenizer = build_whisper_tokenizer(language, num_languages=num_languages)
    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=n_mels, chunk_length=chunk_seconds),
        tokenizer=tokenizer,
    )
    gen = whisper_generation_config(tokenizer)
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model,
        max_source_positions=50 * chunk_seconds,  # 100 frames per second, conv stride 2
        max_target_positions=448,
        pad_token_id=gen.pad_token_id,
        bos_token_id=gen.bos_token_id,
        eos_token_id=gen.eos_token_id,
        decoder_start_token_id=gen.decoder_start_token_id,
        begin_suppress_tokens=None,  # generation settings live in the generation config
        suppress_tokens=None,
    )
    with torch.random.fork_rng(devices=[]):  # seed the weights, leave the caller's RNG alone
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(config)
    model.generation_config = gen
    configure_language(model, processor, language)
    return model, processor
