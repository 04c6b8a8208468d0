"""Self-checks for the module-11 homework, and the tiny model they test on.

Each ``check_*`` runs a student's function on known cases, one property per case, in an order
that lets the most specific hint speak first. It prints one line starting with ``check passed``
when everything holds, raises ``AssertionError`` with a message that names the mistake and the
fix, or ``NotImplementedError`` while the student's cell is still the stub. An exception raised
by the student's code becomes an ``AssertionError`` that says how the check called it.

The references are brute force: the gradient of one big batch made of the whole window, and
the parameters after plain SGD steps on it written out by hand. Known mistakes (the mean of
micro-batch means, dividing by examples, forgetting to zero, clipping scaled gradients, ...)
are computed the same way, so a wrong answer is named by the mistake it matches.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.whisper.modeling_whisper import shift_tokens_right

from dlsaudio.asr.train import IGNORE_INDEX, whisper_logits

__all__ = [
    "ToySeq2Seq",
    "accumulation_case",
    "full_batch_gradients",
    "check_accumulation",
    "check_sampler",
    "check_source_probabilities",
    "check_train_step",
    "toy_collate",
    "toy_items",
]

NOT_IMPLEMENTED = (
    "not implemented yet: fill the cell marked # YOUR CODE HERE, then run this check again"
)
TOLERANCE = 1e-5
"""Largest relative error between a student's gradient or update and the reference."""


# --------------------------------------------------------------------------- the toy model


class ToySeq2Seq(nn.Module):
    """A tiny encoder-decoder with Whisper's call signature, for tests and self-checks.

    Called like Hugging Face's Whisper: ``model(input_features=(batch, n_mels, frames),
    decoder_input_ids=(batch, label_len))``, or with ``labels=(batch, label_len)`` instead of
    (or besides) ``decoder_input_ids``. Returns an object with ``.logits``
    ``(batch, label_len, vocab)`` and, when labels are given, ``.loss``: the mean token loss of
    this batch, as Whisper's ``forward`` returns it. The decoder is a GRU, so position ``t``
    only sees tokens up to ``t``: right-padding a batch does not change the logits of real
    tokens, as in Whisper's causal decoder.
    """

    def __init__(
        self, n_mels: int = 8, vocab: int = 24, dim: int = 16, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.config = SimpleNamespace(pad_token_id=0, decoder_start_token_id=1, vocab_size=vocab)
        self.encoder = nn.Linear(n_mels, dim)
        self.embed = nn.Embedding(vocab, dim)
        self.decoder = nn.GRU(dim, dim, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, vocab)

    def forward(
        self,
        input_features: torch.Tensor,
        decoder_input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SimpleNamespace:
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("pass decoder_input_ids or labels")
            decoder_input_ids = shift_tokens_right(
                labels, self.config.pad_token_id, self.config.decoder_start_token_id
            )
        context = self.encoder(input_features.mean(-1))  # (batch, dim)
        hidden = self.embed(decoder_input_ids) + context[:, None]  # (batch, label_len, dim)
        out, _ = self.decoder(self.dropout(hidden))
        logits = self.head(out)  # (batch, label_len, vocab)
        loss = None
        if labels is not None:  # Whisper's loss: the mean over this batch's own tokens
            loss = F.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX
            )
        return SimpleNamespace(logits=logits, loss=loss)


def toy_items(
    n: int, *, n_mels: int = 8, frames: int = 12, vocab: int = 24, max_len: int = 9, seed: int = 0
) -> list[dict]:
    """``n`` examples ``{"input_features": (n_mels, frames), "labels": (label_len,)}`` of varied length."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        length = int(torch.randint(1, max_len + 1, (1,), generator=g))
        items.append(
            {
                "input_features": torch.randn(n_mels, frames, generator=g),
                "labels": torch.randint(2, vocab, (length,), generator=g),
            }
        )
    return items


def toy_collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack features, right-pad labels with -100."""
    length = max(len(item["labels"]) for item in items)
    labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
    for row, item in enumerate(items):
        labels[row, : len(item["labels"])] = item["labels"]
    return {
        "input_features": torch.stack([item["input_features"] for item in items]),
        "labels": labels,
    }


def _window(items: list[dict], k: int) -> list[dict[str, torch.Tensor]]:
    """``k`` micro-batches of unequal token counts: short labels first, long ones last."""
    items = sorted(items, key=lambda item: len(item["labels"]))
    micro = len(items) // k
    return [toy_collate(items[i * micro : (i + 1) * micro]) for i in range(k)]


def _concat(window: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One big batch made of every example of the window (labels re-padded)."""
    length = max(batch["labels"].shape[1] for batch in window)
    labels = [
        F.pad(b["labels"], (0, length - b["labels"].shape[1]), value=IGNORE_INDEX) for b in window
    ]
    return {
        "input_features": torch.cat([b["input_features"] for b in window]),
        "labels": torch.cat(labels),
    }


# --------------------------------------------------------------------------- brute force


def _loss_sum(model: nn.Module, batch: Mapping) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies of one batch and its number of label tokens."""
    logits = whisper_logits(model, batch)  # (batch, label_len, vocab)
    labels = batch["labels"]
    total = F.cross_entropy(
        logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return total, int((labels != IGNORE_INDEX).sum())


def _params(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _grads(model: nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in _params(model)]


def _gradient(model: nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return [g.detach() for g in torch.autograd.grad(loss, _params(model))]


def _combine(parts: list[list[torch.Tensor]], weights: list[float]) -> list[torch.Tensor]:
    return [
        sum(w * part[i] for part, w in zip(parts, weights, strict=True))
        for i in range(len(parts[0]))
    ]


def _relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    num = math.sqrt(sum(float((x - y).pow(2).sum()) for x, y in zip(a, b, strict=True)))
    den = math.sqrt(sum(float(y.pow(2).sum()) for y in b))
    return num / max(den, 1e-30)


def _close(a: list[torch.Tensor], b: list[torch.Tensor], tolerance: float = TOLERANCE) -> bool:
    return _relative_error(a, b) <= tolerance


def window_gradient(
    model: nn.Module, window: list[dict], normalization: str = "window"
) -> list[torch.Tensor]:
    """Gradient of one window's loss, brute force, for the reference and known mistakes.

    ``"window"``: one big batch made of the whole window, sum of token losses divided by its
    token count (the reference). ``"mean_of_means"``: the mean over micro-batches of each
    micro-batch's mean token loss. ``"last_only"``: the last micro-batch's token-loss sum over
    the window's token count (what is left when the gradients are zeroed inside the window).
    """
    if normalization == "window":
        loss_sum, n_tokens = _loss_sum(model, _concat(window))
        return _gradient(model, loss_sum / n_tokens)
    sums = [_loss_sum(model, batch) for batch in window]
    total = sum(n for _, n in sums)
    if normalization == "mean_of_means":
        return _gradient(model, sum(s / n for s, n in sums) / len(window))
    if normalization == "last_only":
        return _gradient(model, sums[-1][0] / total)
    raise ValueError(
        f"normalization={normalization!r}; expected window, mean_of_means or last_only"
    )


def _window_loss(model: nn.Module, window: list[dict]) -> float:
    with torch.no_grad():
        loss_sum, n_tokens = _loss_sum(model, _concat(window))
    return float(loss_sum) / n_tokens


# --------------------------------------------------------------------------- helpers


Hint = Callable[[Exception], str]


def _call(fn: Callable, args: tuple, kwargs: dict, called: str, hints: list[Hint] = ()):
    """Run the student's function; its exceptions become messages that say how it was called.

    Each hint gets the exception and returns advice for it, or ``""`` when it does not apply.
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotImplementedError(NOT_IMPLEMENTED) from None
    except AssertionError:
        raise
    except Exception as err:  # the student's code failed: say what the check did
        hint = next((h for h in (hint(err) for hint in hints) if h), "")
        raise AssertionError(
            f"your function raised {type(err).__name__}: {str(err).rstrip('.')}. The check "
            f"called {called}." + (f" {hint}" if hint else "")
        ) from err


def _as_real(value) -> float | None:
    """``value`` as a float when it is a real number of any type (Python, NumPy, a 1-element
    tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, torch.Tensor):
        return float(value.detach()) if value.numel() == 1 and not value.is_complex() else None
    if isinstance(value, numbers.Real):
        return float(value)
    try:  # numpy scalars and other number types that convert losslessly
        return float(value) if hasattr(value, "__float__") and not isinstance(value, str) else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- accumulation

ACCUMULATION_CALL = (
    "accumulate_window(model, window, scaler=scaler, logits_fn=logits_fn) with a small "
    "Whisper-like model (called as model(input_features=..., decoder_input_ids=...) or "
    "model(input_features=..., labels=...), like Hugging Face's Whisper), window = a list of "
    "micro-batches {'input_features': (batch, n_mels, frames), 'labels': (batch, label_len) "
    "padded with -100}, scaler = a torch.amp.GradScaler, and logits_fn(model, batch) -> "
    "(batch, label_len, vocab) logits"
)


def _on(kind: type, advice: str, *fragments: str) -> Hint:
    """A hint for exceptions of ``kind`` (whose text contains one of ``fragments``, if given)."""

    def hint(err: Exception) -> str:
        text = str(err)
        if isinstance(err, kind) and (not fragments or any(f in text for f in fragments)):
            return advice
        return ""

    return hint


NO_GRAPH_ADVICE = (
    "The loss has no computation graph: backpropagate the tensor computed from the logits, not "
    "a number made with .item(), float() or .detach()."
)
NO_GRAPH = [
    _on(RuntimeError, NO_GRAPH_ADVICE, "does not require grad"),
    _on(AttributeError, NO_GRAPH_ADVICE, "no attribute 'backward'"),
]
ACCUMULATION_HINTS = [
    _on(
        TypeError,
        "Keep the signature of the stub and call logits_fn(model, batch), or "
        "model(input_features=batch['input_features'], labels=batch['labels']) as with Whisper.",
    ),
    _on(KeyError, "A micro-batch has exactly two keys: 'input_features' and 'labels'."),
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


def full_batch_gradients(model: nn.Module, batch: Mapping) -> list[torch.Tensor]:
    """Gradients of the mean token loss of one batch (the reference); ``.grad`` is left empty."""
    model.zero_grad(set_to_none=True)
    loss_sum, n_tokens = _loss_sum(model, batch)
    grads = _gradient(model, loss_sum / n_tokens)
    model.zero_grad(set_to_none=True)
    return grads


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
        returned = _call(fn, (model, window), kwargs, ACCUMULATION_CALL, ACCUMULATION_HINTS)
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


# --------------------------------------------------------------------------- the training step

STEP_CALL = (
    "train_step(model, window, optimizer, scheduler, scaler, max_grad_norm=..., "
    "logits_fn=logits_fn) twice, on two windows of 3 micro-batches, with a small Whisper-like "
    "model, optimizer = torch.optim.SGD, scheduler = a LambdaLR that halves the learning rate at "
    "every step, scaler = an enabled torch.amp.GradScaler"
)
STEP_LR = 0.5
STEP_SCALE = 8.0
STEP_HINTS = [
    _on(
        TypeError,
        "Keep the signature of the stub; pass scaler and logits_fn on to accumulate_window.",
    ),
    _on(
        RuntimeError,
        "scaler.step(optimizer) ran twice before scaler.update(): step once per window, after "
        "all its micro-batches, then call scaler.update().",
        "step() has already been called",
    ),
    _on(
        RuntimeError,
        "scaler.unscale_(optimizer) ran twice before scaler.update(): unscale once per step, "
        "and call scaler.update() after scaler.step(optimizer) in every step.",
        "unscale_() has already been called",
    ),
    _on(
        RuntimeError,
        "scaler.update() did not run after the previous scaler.step(optimizer): call it once "
        "at the end of every step, so the next step can unscale its own gradients.",
        "unscale_() is being called after step()",
    ),
    _on(
        AssertionError,
        "scaler.update() needs a scaler.step(optimizer) (or unscale_) before it.",
        "No inf checks were recorded",
    ),
    *NO_GRAPH,
]


class _CountingSGD(torch.optim.SGD):
    """Plain SGD that counts its steps, so a step per micro-batch can be told from one per window."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


def _lr_factor(step: int) -> float:
    return 0.5**step


def _clip(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """What ``torch.nn.utils.clip_grad_norm_`` does to the gradients."""
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
    coef = max_norm / (norm + 1e-6)
    return [g * coef for g in grads] if coef < 1 else grads


def simulate_steps(
    model: nn.Module,
    windows: list[list[dict]],
    *,
    max_norm: float,
    scale: float = STEP_SCALE,
    lr: float = STEP_LR,
    normalization: str = "window",
    clip: str = "after_unscale",
    zero: bool = True,
) -> list[list[torch.Tensor]]:
    """Parameters after each SGD step over ``windows``, written out by hand (no optimizer).

    The reference is ``normalization="window"``, ``clip="after_unscale"``, ``zero=True``: the
    full-batch gradient, scaled by ``scale`` and unscaled again, clipped to ``max_norm``, a step
    of ``lr * 0.5 ** t``. The other settings reproduce known mistakes: ``clip`` ``"none"``,
    ``"before_unscale"`` (clipping the scaled gradients) or ``"fixed"`` (clipping at 1.0);
    ``zero=False`` keeps the previous window's gradient in ``.grad``.
    """
    model = copy.deepcopy(model)
    params = _params(model)
    buffer = [torch.zeros_like(p) for p in params]
    after = []
    for step, window in enumerate(windows):
        if zero:
            buffer = [torch.zeros_like(p) for p in params]
        gradient = window_gradient(model, window, normalization)
        buffer = [
            b + scale * g for b, g in zip(buffer, gradient, strict=True)
        ]  # backward of scaled losses
        if clip == "before_unscale":
            buffer = [b / scale for b in _clip(buffer, max_norm)]
        else:
            buffer = [b / scale for b in buffer]
            if clip == "after_unscale":
                buffer = _clip(buffer, max_norm)
            elif clip == "fixed":
                buffer = _clip(buffer, 1.0)
        with torch.no_grad():
            for p, b in zip(params, buffer, strict=True):
                p -= lr * _lr_factor(step) * b
        after.append([p.detach().clone() for p in params])
    return after


def step_case(k: int = 3, micro: int = 2, seed: int = 1):
    """``(model, windows, max_norm)``: two windows whose gradients are clipped at both steps.

    The output layer is scaled up so that the gradient norm (about 2.5) exceeds both
    ``max_norm`` (a quarter of it) and 1.0, which tells clipping at ``max_norm`` from clipping
    at a fixed 1.0 and from not clipping.
    """
    torch.manual_seed(seed)
    model = ToySeq2Seq()
    with torch.no_grad():
        model.head.weight.mul_(8.0)
        model.head.bias.mul_(8.0)
    items = toy_items(2 * k * micro, seed=seed, max_len=10)
    windows = [_window(items[: k * micro], k), _window(items[k * micro :], k)]
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in window_gradient(model, windows[0])))
    return model, windows, round(0.25 * norm, 3)


def _updates(before: list[torch.Tensor], after: list[torch.Tensor]) -> list[torch.Tensor]:
    return [a - b for a, b in zip(after, before, strict=True)]


def _setup(model: nn.Module, scale: float):
    optimizer = _CountingSGD(_params(model), lr=STEP_LR)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale)
    return optimizer, scheduler, scaler


def check_train_step(fn: Callable) -> None:
    """Check ``fn(model, window, optimizer, scheduler, scaler, max_grad_norm, logits_fn)``: one
    optimizer step over one accumulation window.

    Two calls on two windows with SGD, a halving learning-rate schedule and an enabled GradScaler;
    the parameters must equal a brute-force simulation (full-batch gradient, unscaled, clipped,
    one SGD step) after each call. Checked in order: exceptions (signature, GradScaler usage),
    one optimizer step and one scheduler step per window, the update of step 1 (mean of means,
    no clipping, clipping before unscaling, a fixed clip value, zeroing inside the window), the
    returned loss, the update of step 2 (gradients not zeroed between windows), and a step whose
    fp16 gradients overflowed (the scaler must skip it).

    Raises:
        AssertionError: with a message that names the mistake and what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    model, windows, max_norm = step_case()
    k = len(windows[0])
    start = [p.detach().clone() for p in _params(model)]
    expected = simulate_steps(model, windows, max_norm=max_norm)
    expected_loss = _window_loss(model, windows[0])
    optimizer, scheduler, scaler = _setup(model, STEP_SCALE)
    kwargs = {"max_grad_norm": max_norm, "logits_fn": whisper_logits}

    def run(window) -> object:
        return _call(
            fn, (model, window, optimizer, scheduler, scaler), kwargs, STEP_CALL, STEP_HINTS
        )

    returned = run(windows[0])
    now = [p.detach().clone() for p in _params(model)]
    if optimizer.steps == 0:
        if _close(now, start, 0.0):
            raise AssertionError(
                "the parameters did not change: step the optimizer once per window with "
                "scaler.step(optimizer) (it unscales the gradients if needed and calls optimizer.step())"
            )
        raise AssertionError(
            "the parameters changed without optimizer.step(): update them through "
            "scaler.step(optimizer), not by hand"
        )
    if optimizer.steps == k:
        raise AssertionError(
            f"the optimizer stepped {k} times for one window of {k} micro-batches: you stepped "
            "after every micro-batch. Backpropagate all micro-batches of the window first, then "
            "step once: that is what makes the window one big batch."
        )
    if optimizer.steps != 1:
        raise AssertionError(
            f"the optimizer stepped {optimizer.steps} times for one window: step exactly once "
            "(scaler.step(optimizer) calls optimizer.step() itself; do not call both)"
        )
    if scheduler.last_epoch == 0:
        raise AssertionError(
            "the learning-rate schedule did not move: call scheduler.step() once per window, "
            "after the optimizer step"
        )
    if scheduler.last_epoch != 1:
        raise AssertionError(
            f"the schedule was stepped {scheduler.last_epoch} times for one window: step it once "
            "per optimizer step (per window), not per micro-batch"
            if scheduler.last_epoch == k
            else f"the schedule was stepped {scheduler.last_epoch} times for one window: step it once"
        )
    update, reference = _updates(start, now), _updates(start, expected[0])
    if not _close(update, reference):
        error = _relative_error(update, reference)
        variants = [
            (
                {"normalization": "mean_of_means"},
                "it is the update of the MEAN OF THE MICRO-BATCH MEANS (Hugging Face's "
                "model(**batch).loss averaged over micro-batches). Accumulate with your exact "
                "accumulate_window.",
            ),
            (
                {"clip": "none"},
                "the gradient was not clipped: call torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm) after unscaling.",
            ),
            (
                {"clip": "before_unscale"},
                "the gradient was clipped while still SCALED by the GradScaler: call "
                "scaler.unscale_(optimizer) first, then clip, then scaler.step(optimizer).",
            ),
            (
                {"clip": "fixed"},
                "the gradient was clipped at 1.0: clip at max_grad_norm, the argument.",
            ),
            (
                {"normalization": "last_only"},
                "only the last micro-batch's gradient was used: zero the gradients once, at the "
                "start of the window, not before every micro-batch.",
            ),
        ]
        for settings, message in variants:
            wrong = simulate_steps(
                model_at(start, model), windows[:1], max_norm=max_norm, **settings
            )
            if _close(update, _updates(start, wrong[0])):
                raise AssertionError(
                    f"the first step differs from the full-batch step by {error:.1%}: {message}"
                )
        raise AssertionError(
            f"the first step differs from the full-batch step by {error:.1%} (relative) and "
            "matches none of the usual mistakes. One step is: zero the gradients, "
            "accumulate_window(model, window, scaler, logits_fn), scaler.unscale_(optimizer), "
            "clip_grad_norm_(..., max_grad_norm), scaler.step(optimizer), scaler.update(), "
            "scheduler.step()."
        )
    value = _as_real(returned)
    if value is None or not math.isclose(value, expected_loss, rel_tol=1e-5):
        raise AssertionError(
            f"the step is right, but it returned {returned!r}: return the window's mean token loss "
            f"(what accumulate_window returns; here {expected_loss:.6f}) so the loop can log it"
        )

    run(windows[1])
    now2 = [p.detach().clone() for p in _params(model)]
    update, reference = _updates(now, now2), _updates(expected[0], expected[1])
    if not _close(update, reference):
        error = _relative_error(update, reference)
        kept = simulate_steps(model_at(start, model), windows, max_norm=max_norm, zero=False)
        if _close(update, _updates(kept[0], kept[1])):
            raise AssertionError(
                f"the second step differs from the full-batch step by {error:.1%}: the gradients "
                "of the first window were still in .grad. Zero them at the start of every window "
                "(optimizer.zero_grad(set_to_none=True)) before accumulating."
            )
        raise AssertionError(
            f"the first step was right but the second differs from the full-batch step by "
            f"{error:.1%}: does the function keep state between calls (a step counter, a saved "
            "gradient)? Every call must do the same thing on its own window."
        )

    _check_overflow_is_skipped(fn, windows[0], max_norm)
    print(
        "check passed: two steps equal the full-batch SGD steps (zeroed, exact accumulation, "
        "unscaled, clipped, one optimizer and one schedule step per window), and an overflowed "
        "fp16 step is skipped"
    )


def model_at(params: list[torch.Tensor], like: nn.Module) -> nn.Module:
    """A copy of ``like`` with the given parameter values."""
    model = copy.deepcopy(like)
    with torch.no_grad():
        for p, value in zip(_params(model), params, strict=True):
            p.copy_(value)
    return model


def _check_overflow_is_skipped(fn: Callable, window: list[dict], max_norm: float) -> None:
    """With an infinite loss scale every gradient overflows, as fp16 gradients sometimes do on a
    GPU: the GradScaler must skip that step and leave the parameters as they were."""
    model = ToySeq2Seq()
    start = [p.detach().clone() for p in _params(model)]
    optimizer, scheduler, scaler = _setup(model, math.inf)
    with warnings.catch_warnings():  # the skipped step makes the scheduler warn; expected here
        warnings.simplefilter("ignore", UserWarning)
        _call(
            fn,
            (model, window, optimizer, scheduler, scaler),
            {"max_grad_norm": max_norm, "logits_fn": whisper_logits},
            STEP_CALL.replace("an enabled", "an overflowing (infinite scale)"),
            STEP_HINTS,
        )
    now = [p.detach() for p in _params(model)]
    if not all(torch.isfinite(p).all() for p in now) or not _close(now, start, 0.0):
        raise AssertionError(
            "when the scaled gradients overflow (inf or NaN, which happens with fp16 on a GPU) "
            "the parameters must not change, but yours did: step with scaler.step(optimizer), "
            "which skips the step in that case, not with optimizer.step(); then scaler.update() "
            "lowers the scale"
        )


# --------------------------------------------------------------------------- sampling

SOURCE_COUNTS = {"ky": 64, "ky_noisy": 16, "kk": 4}


def _normalised(raw: Mapping[str, float]) -> dict[str, float]:
    total = sum(raw.values())
    return {s: v / total for s, v in raw.items()}


def _probability_cases() -> list[tuple[str, dict, dict[str, float], str]]:
    """(name, kwargs, expected, hint) in the order that lets each hint be reached.

    ``alpha=1`` comes before ``alpha=0``, so that a function that treats ``alpha=0`` as "not
    given" passes the proportional cases and is then named by :data:`ALPHA_ZERO_HINT`.
    """
    counts = SOURCE_COUNTS
    proportional = _normalised({s: float(n) for s, n in counts.items()})
    return [
        (
            "no weights and no alpha",
            {},
            proportional,
            "with neither weights nor alpha the mixture is proportional: p_s = n_s / sum of all n",
        ),
        (
            "alpha=1",
            {"alpha": 1.0},
            proportional,
            "alpha=1 keeps the natural proportions, p_s = n_s / sum of all n",
        ),
        (
            "alpha=0",
            {"alpha": 0.0},
            _normalised({s: 1.0 for s in counts}),
            "p_s is proportional to n_s ** alpha; with alpha=0 that is 1 for every source, so "
            "every source is equally likely",
        ),
        (
            "alpha=0.5",
            {"alpha": 0.5},
            _normalised({s: math.sqrt(n) for s, n in counts.items()}),
            "p_s is proportional to n_s ** alpha (here sqrt(n_s)), then normalised to sum to 1",
        ),
        (
            "weights={'ky': 1.0, 'kk': 3.0} ('ky_noisy' has no weight)",
            {"weights": {"ky": 1.0, "kk": 3.0}},
            {"ky": 0.25, "ky_noisy": 0.0, "kk": 0.75},
            "p_s = w_s / sum of the weights, and a source missing from weights gets weight 0",
        ),
    ]


ALPHA_ZERO_HINT = (
    "alpha=0 gave the proportional mixture, as if alpha had been ignored or not given. p_s is "
    "proportional to n_s ** alpha, and 0 is a valid alpha (uniform over sources): test "
    "`alpha is None`, not `if alpha:` or `alpha or 1`"
)
PROBABILITY_ERRORS = [
    ("a weight for a source that has no examples", {"weights": {"ky": 1.0, "ru": 1.0}}),
    ("a negative weight", {"weights": {"ky": -1.0, "kk": 2.0}}),
    ("all weights zero", {"weights": {"ky": 0.0, "kk": 0.0}}),
    ("both weights and alpha", {"weights": {"ky": 1.0}, "alpha": 0.5}),
    ("a NaN weight", {"weights": {"ky": math.nan, "kk": 1.0}}),
    ("an infinite weight", {"weights": {"ky": math.inf, "kk": 1.0}}),
]


def check_source_probabilities(fn: Callable) -> None:
    """Check ``fn(counts, weights=None, alpha=None) -> {source: p}`` on closed-form cases and errors.

    The expected values are computed here from the formulas (proportional, ``n_s ** alpha``,
    explicit weights); any real number type is accepted for a probability. Invalid inputs
    (unknown source, negative, NaN or infinite weight, all zero, both arguments) must raise
    ``ValueError``.

    Raises:
        AssertionError: with a message that names the mistake and what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    counts = SOURCE_COUNTS
    for name, kwargs, expected, hint in _probability_cases():
        called = f"source_probabilities({counts}, **{kwargs}) ({name})"
        got = _call(
            fn,
            (dict(counts),),
            kwargs,
            called,
            [
                _on(
                    KeyError,
                    "A source missing from weights has weight 0: read it with weights.get(source, 0.0).",
                )
            ],
        )
        if not isinstance(got, Mapping):
            raise AssertionError(
                f"{name}: expected a dict {{source: probability}} with one entry per source of "
                f"counts {list(counts)}, got {type(got).__name__} {got!r}"
            )
        missing, extra = set(counts) - set(got), set(got) - set(counts)
        if missing or extra:
            raise AssertionError(
                f"{name}: the dict must have exactly the sources of counts {list(counts)} as keys "
                f"(missing: {sorted(missing)}, unexpected: {sorted(map(str, extra))}); a source "
                "that is never drawn gets probability 0.0"
            )
        values = {s: _as_real(got[s]) for s in counts}
        bad = {s: got[s] for s, v in values.items() if v is None or not math.isfinite(v)}
        if bad:
            raise AssertionError(f"{name}: probabilities must be finite numbers, got {bad}")
        total = sum(values.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise AssertionError(
                f"{name}: probabilities sum to {total:.4f}; normalise them to sum to 1"
            )
        wrong = {
            s: (round(v, 4), round(expected[s], 4))
            for s, v in values.items()
            if abs(v - expected[s]) > 1e-6
        }
        if wrong:
            proportional = _probability_cases()[0][2]
            if kwargs.get("alpha") == 0 and all(
                abs(v - proportional[s]) <= 1e-6 for s, v in values.items()
            ):
                hint = ALPHA_ZERO_HINT
            raise AssertionError(
                f"{name}: wrong probabilities {{source: (yours, expected)}} = {wrong}; {hint}"
            )
    for name, kwargs in PROBABILITY_ERRORS:
        try:
            got = fn(dict(counts), **kwargs)
        except ValueError as err:
            if not str(err).strip():
                raise AssertionError(
                    f"{name}: the ValueError has no message; say what is wrong and with which source"
                ) from None
            continue
        except NotImplementedError:
            raise NotImplementedError(NOT_IMPLEMENTED) from None
        except Exception as err:
            raise AssertionError(
                f"{name} ({kwargs}) must raise ValueError naming the problem, but your function "
                f"raised {type(err).__name__}: {err}"
            ) from err
        shown = {s: _as_real(v) for s, v in got.items()} if isinstance(got, Mapping) else got
        if isinstance(shown, dict) and any(
            v is None or not math.isfinite(v) for v in shown.values()
        ):
            raise AssertionError(
                f"{name} ({kwargs}) returned {shown}: a NaN or infinite weight turns every "
                "probability into NaN (w < 0 is False for NaN, so a negativity test lets it "
                "through). Check each weight with math.isfinite and raise ValueError naming the source."
            )
        raise AssertionError(
            f"{name} ({kwargs}) must raise ValueError naming the problem, but it returned {shown!r}"
        )
    print(
        "check passed: proportional, uniform, alpha=0.5 and explicit mixtures; invalid inputs "
        "(unknown source, negative, NaN or infinite weight, all zero, both given) raise ValueError"
    )


SAMPLER_CALL = (
    "draw_indices(sources, probabilities, num_samples, generator) with sources = a list of "
    "100 source names, probabilities = {source: p_s} with a key for every source, and "
    "generator = a seeded torch.Generator"
)


def _indices(got, num_samples: int) -> list[int]:
    if isinstance(got, torch.Tensor):
        if got.is_floating_point() or got.is_complex() or got.ndim != 1:
            raise AssertionError(
                f"expected a (num_samples,) tensor of integer indices, got dtype {got.dtype} and "
                f"shape {tuple(got.shape)} (torch.multinomial returns int64 indices)"
            )
        return got.tolist()
    try:
        values = list(got)
    except TypeError:
        raise AssertionError(
            f"expected a sequence of {num_samples} indices, got {type(got).__name__}"
        ) from None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise AssertionError("expected integer indices into sources, got other values")
    return [int(v) for v in values]


def check_sampler(fn: Callable, num_samples: int = 20_000) -> None:
    """Check ``fn(sources, probabilities, num_samples, generator) -> indices``.

    The draw must have ``num_samples`` valid integer indices, be reproducible from the
    generator, hit each source with its probability (chi-square test), be uniform inside a
    source, and never draw a source of probability 0.

    Raises:
        AssertionError: with a message that names the mistake and what to change.
        NotImplementedError: the student's cell is still the stub.
    """
    from scipy.stats import chisquare

    sources = ["ky"] * 60 + ["ky_noisy"] * 30 + ["kk"] * 10
    hints = [
        _on(
            RuntimeError,
            "Draw WITH replacement (torch.multinomial(..., replacement=True)): num_samples is "
            "larger than the number of examples.",
            "replacement",
        ),
        _on(
            KeyError,
            "probabilities has one entry per source name: the weight of example i is "
            "probabilities[sources[i]] / (number of examples of that source).",
        ),
    ]

    def run(probabilities: dict, seed: int) -> list[int]:
        got = _call(
            fn,
            (sources, probabilities, num_samples, torch.Generator().manual_seed(seed)),
            {},
            SAMPLER_CALL,
            hints,
        )
        indices = _indices(got, num_samples)
        if len(indices) != num_samples:
            raise AssertionError(
                f"wrong length: expected {num_samples} indices, got {len(indices)}"
            )
        if min(indices) < 0 or max(indices) >= len(sources):
            raise AssertionError(
                f"indices must lie in [0, {len(sources)}), got min {min(indices)}, max {max(indices)}"
            )
        return indices

    probabilities = {"ky": 0.2, "ky_noisy": 0.3, "kk": 0.5}
    first = run(probabilities, 0)
    if run(probabilities, 0) != first:
        raise AssertionError(
            "two calls with generators seeded alike gave different draws: pass generator= to torch.multinomial"
        )
    if run(probabilities, 1) == first:
        raise AssertionError("different seeds gave the same draw: use the generator you are given")
    drawn = Counter(sources[i] for i in first)
    observed = [drawn[s] for s in probabilities]
    expected = [p * num_samples for p in probabilities.values()]
    if chisquare(observed, expected).pvalue < 1e-4:
        shares = {s: round(drawn[s] / num_samples, 3) for s in probabilities}
        raise AssertionError(
            f"source frequencies {shares} do not match the targets {probabilities}: give each example "
            "of source s the weight p_s / n_s (n_s = number of examples of s) and draw with replacement"
        )
    kk = Counter(i for i in first if sources[i] == "kk")
    if chisquare([kk[i] for i in range(90, 100)]).pvalue < 1e-4:
        raise AssertionError(
            "examples inside one source are not drawn uniformly: give all of them the same weight p_s / n_s"
        )
    never = run({"ky": 0.5, "ky_noisy": 0.5, "kk": 0.0}, 2)
    if any(sources[i] == "kk" for i in never):
        raise AssertionError(
            "a source with probability 0 was drawn: its examples must get weight 0"
        )
    print(
        f"check passed: {num_samples} draws match the source targets, are uniform inside sources, "
        "seeded, and skip a source of probability 0"
    )
