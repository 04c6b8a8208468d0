"""The check of gradient accumulation over one window of micro-batches, and its known case."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from dlsaudio.asr.checks import answers
from dlsaudio.asr.checks.calls import NO_GRAPH, _as_real
from dlsaudio.asr.checks.reference import (
    TOLERANCE,
    _close,
    _combine,
    _gradient,
    _grads,
    _loss_sum,
    _relative_error,
    _window_loss,
    full_batch_gradients,
)
from dlsaudio.asr.checks.toy import ToySeq2Seq, _concat, _window, toy_items
from dlsaudio.asr.train import IGNORE_INDEX, whisper_logits
from dlsaudio.delegation import refuses_delegation
from dlsaudio.student_calls import call_student, on_error

ACCUMULATION_CALL = (
    "accumulate_window(model, window, scaler=scaler, logits_fn=logits_fn) with a small "
    "Whisper-like model (called as model(input_features=..., decoder_input_ids=...) or "
    "model(input_features=..., labels=...), like Hugging Face's Whisper), window = a list of "
    "micro-batches {'input_features': (batch, n_mels, frames), 'labels': (batch, label_len) "
    "padded with -100}, scaler = a torch.amp.GradScaler, and logits_fn(model, batch) -> "
    "(batch, label_len, vocab) logits"
)

ACCUMULATION_HINTS = [
    on_error(
        TypeError,
        "Keep the signature of the stub and call logits_fn(model, batch), or "
        "model(input_features=batch['input_features'], labels=batch['labels']) as with Whisper.",
    ),
    on_error(KeyError, "A micro-batch has exactly two keys: 'input_features' and 'labels'."),
    *NO_GRAPH,
]
RECIPE = (
    "Count N = the label tokens (labels != -100) of the WHOLE window before the first "
    "backward, then backpropagate every micro-batch's token-loss SUM divided by N."
)


def accumulation_case(k: int = 3, micro: int = 2, seed: int = 0):
    """A known case: ``(model, window, full_batch)`` with labels of very different lengths."""
    torch.manual_seed(seed)
    model = ToySeq2Seq()
    window = _window(toy_items(k * micro, seed=seed, max_len=10), k)
    return model, window, _concat(window)


def _explain_accumulation(
    model: nn.Module, window: list[dict], got: list[torch.Tensor], reference, error: float
) -> str:
    """Name the mistake whose brute-force gradient equals the student's."""
    parts = [_gradient(model, _loss_sum(model, batch)[0]) for batch in window]  # each S_j
    counts = [int((b["labels"] != IGNORE_INDEX).sum()) for b in window]
    k, total = len(window), sum(counts)
    examples = sum(len(b["labels"]) for b in window)
    positions = sum(b["labels"].numel() for b in window)
    off = f"your gradient differs from the full-batch gradient by {error:.1%} (relative): "
    mistakes = [
        (
            [1 / (k * n) for n in counts],
            "it is the MEAN OF THE MICRO-BATCH MEANS: each micro-batch was divided by its own "
            "token count (that is what Hugging Face's model(**batch).loss is) and then by the "
            "number of micro-batches. A token of a short micro-batch then weighs more than a "
            "token of a long one.",
        ),
        (
            [1 / n for n in counts],
            "it is the SUM of the micro-batch mean losses: each micro-batch was divided by its "
            "own token count and nothing else.",
        ),
        (
            [1 / examples] * k,
            f"you divided by the number of EXAMPLES in the window ({examples} utterances), not "
            f"by the number of label TOKENS ({total}).",
        ),
        (
            [1 / positions] * k,
            f"you divided by all label positions ({positions}), padding included: count only "
            f"the real tokens, (labels != -100).sum() = {total}.",
        ),
        (
            [1 / (k * total)] * k,
            "you divided by the window's token count AND by the number of micro-batches: the "
            "token count alone is the whole normalisation.",
        ),
        ([1.0] * k, "you backpropagated the plain sum of token losses, without dividing."),
        (
            [0.0] * (k - 1) + [1 / total],
            "only the LAST micro-batch is left in .grad: do not zero the gradients "
            "(optimizer.zero_grad / model.zero_grad) inside the window.",
        ),
        (
            [0.0] * (k - 1) + [1 / (k * counts[-1])],
            "only the LAST micro-batch is left in .grad, and it was divided by its own token "
            "count: do not zero the gradients inside the window.",
        ),
        (
            [1 / total] + [0.0] * (k - 1),
            "only the FIRST micro-batch contributed: did the function return inside the loop?",
        ),
    ]
    for weights, message in mistakes:
        if _close(got, _combine(parts, weights)):
            return off + message + " " + RECIPE
    ratios = [
        float((g * r).sum() / (r * r).sum())
        for g, r in zip(got, reference, strict=True)
        if r.abs().sum() > 0
    ]
    ratio = sum(ratios) / len(ratios)
    if _close([g / ratio for g in got], reference, 1e-4):
        return (
            f"your gradient points the right way but is {ratio:.4g} times the full-batch "
            f"gradient: the normalisation is off. {RECIPE}"
        )
    return off + (
        "it matches none of the usual mistakes. Compute each micro-batch's token-loss sum "
        "(token_loss_sum(logits_fn(model, batch), batch['labels']) ignores the -100 padding), "
        f"and call backward once per micro-batch. {RECIPE}"
    )


@refuses_delegation(*answers.ACCUMULATION)
def check_accumulation(fn: Callable) -> None:
    """Check ``fn(model, window, scaler, logits_fn)`` that backpropagates one accumulation window.

    Case 1 (scaler disabled): ``.grad`` must hold the full-batch gradient (brute force: one big
    batch made of the whole window); a mismatch is named by the mistake it equals. Case 2: the
    returned number must be the window's mean token loss. Case 3 (a GradScaler with scale 64):
    ``.grad`` must hold 64 times the full-batch gradient.

    Raises:
        AssertionError: with a message that names the mistake and what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    model, window, full = accumulation_case()
    reference = full_batch_gradients(model, full)
    expected_loss = _window_loss(model, window)

    def run(scaler: torch.amp.GradScaler) -> tuple[object, list[torch.Tensor | None]]:
        kwargs = {"scaler": scaler, "logits_fn": whisper_logits}
        returned = call_student(
            fn, (model, window), kwargs, called=ACCUMULATION_CALL, hints=ACCUMULATION_HINTS
        )
        got = _grads(model)
        model.zero_grad(set_to_none=True)
        return returned, got

    returned, got = run(torch.amp.GradScaler("cpu", enabled=False))
    if all(g is None for g in got):
        raise AssertionError(
            "no parameter has a gradient after your function: call .backward() on every "
            "micro-batch's loss (a loss turned into a number with .item() or float() has no "
            "gradient), and do not zero the gradients at the end"
        )
    if any(g is None for g in got):
        raise AssertionError(
            "some parameters have no gradient after your function: the loss must come from "
            "the model's logits for every micro-batch, and nothing may set .grad to None"
        )
    error = _relative_error(got, reference)
    if error > TOLERANCE:
        raise AssertionError(_explain_accumulation(model, window, got, reference, error))

    value = _as_real(returned)
    if value is None:
        raise AssertionError(
            f"the gradient is right, but the function returned {returned!r}: return the window's "
            "mean token loss as a number (the training loop logs it)"
        )
    if not math.isclose(value, expected_loss, rel_tol=1e-5):
        raise AssertionError(
            f"the gradient is right, but the function returned {value:.6f}: return the window's "
            f"mean token loss, sum of token losses / label tokens = {expected_loss:.6f}"
        )

    scale = 64.0
    _, scaled = run(torch.amp.GradScaler("cpu", init_scale=scale))
    if any(g is None for g in scaled) or not _close(scaled, [scale * r for r in reference]):
        if not any(g is None for g in scaled) and _close(scaled, reference):
            problem = "the scaler was ignored"
        else:
            problem = "the gradient is not scale x the full-batch gradient"
        raise AssertionError(
            f"with an enabled GradScaler (scale {scale:g}) {problem}: backpropagate "
            "scaler.scale(loss) for every micro-batch. With fp16 the scaler multiplies the loss "
            "so that small gradients do not underflow; a disabled scaler returns the loss unchanged."
        )
    print(
        f"check passed: the accumulated gradient equals the full-batch gradient (relative error "
        f"{error:.1e}), the returned loss is the window's mean token loss, and the GradScaler is used"
    )
