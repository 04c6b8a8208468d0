"""Parameter-efficient fine-tuning of Whisper: LoRA on the attention projections, through ``peft``.

LoRA (Hu et al., 2021, https://arxiv.org/abs/2106.09685) freezes every pretrained weight ``W``
of the chosen linear layers and learns a low-rank update::

    W x  ->  W x + (alpha / rank) * B (A x),    A: (rank, d_in), B: (d_out, rank), B = 0 at first

so the adapted model starts exactly as the pretrained one. Public low-resource Whisper
fine-tunes put it on the attention projections (``q_proj`` and ``v_proj``, as here by default).
Only ``A`` and ``B`` train: for whisper-small at rank 32 that is about 3.5M next to 242M frozen ones,
so AdamW's state and the gradients shrink by two orders of magnitude and a larger micro-batch
fits on a T4. The backward pass still runs through the whole network (every layer below an
adapter must pass gradients down), so a step is somewhat faster, not many times faster.

Accumulation stays exact: LoRA changes which parameters have gradients, not the loss, so the
window's loss is still the sum of token losses over its token count (tested against one big
batch on the tiny Whisper). A LoRA model trains, evaluates, generates and checkpoints like the
plain one; :func:`merge_lora` folds the updates into the weights before ``save_pretrained``,
so the saved model is a plain Whisper that :func:`dlsaudio.asr.load_whisper` reads back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

LORA_TARGETS = ("q_proj", "v_proj")
"""Whisper's attention projections that get adapters by default (encoder self-attention,
decoder self- and cross-attention)."""


def add_lora(
    model: nn.Module,
    rank: int | None,
    alpha: float | None = None,
    targets: Sequence[str] = LORA_TARGETS,
    dropout: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    """Wrap ``model`` with LoRA adapters on ``targets``; ``rank=None`` returns it unchanged.

    The adapters are inserted into ``model`` in place and every other parameter is frozen, so
    keep using the returned object (a ``peft.PeftModel``): it is called, trained with
    :func:`dlsaudio.asr.train.train`, evaluated and generates like the plain model. Given a
    model that already has the same adapters (a notebook cell run twice), it returns it as is.

    Args:
        model: a ``WhisperForConditionalGeneration`` (or any module with such linear layers).
        rank: the rank of the update, e.g. 16 or 32; ``None`` for full fine-tuning.
        alpha: the update is scaled by ``alpha / rank``; default ``2 * rank``.
        targets: names of the linear layers to adapt (the last part of their module name).
        dropout: dropout on the adapters' input (0 keeps a step deterministic).
        seed: seeds the random initialisation of ``A`` (the caller's random state is left
            alone), so the same call gives the same adapters.

    Returns:
        The model with adapters, or ``model`` itself when ``rank`` is None.

    Raises:
        ValueError: ``rank`` not a positive integer, ``alpha`` not positive, ``dropout``
            outside [0, 1), or a target that names no linear layer of the model (the message
            lists the ones it has), or a model that already has adapters of another rank.
    """
    if rank is None:
        return model
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank={rank!r}; expected a positive integer such as 16, or None")
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(model, PeftModel):  # a notebook cell run twice: keep the adapters it has
        config = model.peft_config["default"]
        if config.r == rank and set(config.target_modules) == set(targets):
            return model
        raise ValueError(
            f"the model already has LoRA adapters of rank {config.r} on "
            f"{sorted(config.target_modules)}; load the model again to give it rank {rank} on "
            f"{sorted(targets)}"
        )
    alpha = 2 * rank if alpha is None else alpha
    if not alpha > 0:
        raise ValueError(f"alpha={alpha!r}; expected a positive number (default 2 * rank)")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout!r}; expected a number in [0, 1)")
    linear = sorted(
        {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    )
    missing = [t for t in targets if t not in linear]
    if not targets or missing:
        raise ValueError(
            f"targets={list(targets)}: "
            + (f"no linear layer is called {missing}" if targets else "no layer to adapt")
            + f"; this model's linear layers are {linear} (attention: q_proj, k_proj, v_proj, "
            "out_proj)"
        )
    config = LoraConfig(
        r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=dropout, bias="none"
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def merge_lora(model: nn.Module) -> nn.Module:
    """The plain model with the LoRA updates folded into its weights (a model without adapters
    is returned as it is), ready for ``save_pretrained``."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
