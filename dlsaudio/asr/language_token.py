"""A language token of its own for a language Whisper has never seen: ``<|ky|>`` for Kyrgyz.

Whisper's decoder reads the language from the second token of its prefix. For Kyrgyz, which
has no token, the usual choice is to borrow a related language's (``<|kk|>``, Kazakh). The
alternative this module gives: add ``<|ky|>`` to the vocabulary, grow the embedding matrix by
one row and initialise that row from ``<|kk|>``'s, so the new token starts out meaning
"Kazakh" and fine-tuning can move it away. Whisper ties its output projection to the token
embeddings, so the new token's logit starts equal to ``<|kk|>``'s too.

The labels get the new prefix ``<|startoftranscript|> <|ky|> <|transcribe|> <|notimestamps|>``
(the tokenizer's template is rewritten; its own ``set_prefix_tokens`` only knows Whisper's
table), and generation starts with the same prefix (``generation_config.language``).
"""

from __future__ import annotations

from typing import Any

import torch
from tokenizers import processors

from dlsaudio.asr.whisper import language_code


def _set_label_prefix(tokenizer: Any, prefix_ids: list[int]) -> None:
    """Make the tokenizer put ``prefix_ids`` before and ``<|endoftext|>`` after every text."""
    prefixes = tokenizer.convert_ids_to_tokens(prefix_ids)
    template = " ".join(f"{token}:0" for token in prefixes)
    eos = tokenizer.eos_token
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{template} $A:0 {eos}:0",
        pair=f"{template} $A:0 $B:1 {eos}:1",
        special_tokens=[(eos, tokenizer.eos_token_id), *zip(prefixes, prefix_ids, strict=True)],
    )


def add_language_token(model: Any, processor: Any, code: str = "ky", init_from: str = "kk") -> int:
    """Add ``<|code|>`` to a Whisper model and its tokenizer, initialised from ``<|init_from|>``.

    After it, labels start with the new token and ``generate`` puts it in the prefix. Call it
    after :func:`dlsaudio.asr.load_whisper` (a later ``configure_language`` would restore a
    table language).

    Args:
        model: a ``WhisperForConditionalGeneration`` (changed in place).
        processor: its ``WhisperProcessor`` (its tokenizer is changed in place).
        code: the new language code, e.g. ``"ky"``.
        init_from: a language Whisper knows, whose token's embedding the new one copies.

    Returns:
        The new token's id.

    Raises:
        ValueError: ``code`` is not a short lower-case code, the vocabulary already has the
            token, or ``init_from`` is no language of Whisper's.
    """
    if not (isinstance(code, str) and code.isalpha() and code.islower() and 2 <= len(code) <= 3):
        raise ValueError(f"code={code!r}; expected a 2- or 3-letter lower-case code such as 'ky'")
    tokenizer, gen = processor.tokenizer, model.generation_config
    token = f"<|{code}|>"
    if token in tokenizer.get_vocab():
        raise ValueError(
            f"the vocabulary already has {token}; use language={code!r} in load_whisper instead"
        )
    source_id = tokenizer.convert_tokens_to_ids(f"<|{language_code(init_from)}|>")
    tokenizer.add_special_tokens({"additional_special_tokens": [token]})
    new_id = tokenizer.convert_tokens_to_ids(token)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # the row is set below
    embeddings = model.get_input_embeddings().weight  # (vocab + 1, d_model), tied to proj_out
    with torch.no_grad():
        embeddings[new_id] = embeddings[source_id]
    gen.lang_to_id = {**(getattr(gen, "lang_to_id", None) or {}), token: new_id}
    gen.language = token
    prefix = tokenizer.prefix_tokens  # <|startoftranscript|> <|lang|> <|task|> <|notimestamps|>
    prefix = (
        [prefix[0], new_id, *prefix[2:]] if len(prefix) == 4 else [prefix[0], new_id, *prefix[1:]]
    )
    _set_label_prefix(tokenizer, prefix)
    return new_id
