"""Brute-force references: the gradient of one batch and of a window made one big batch, and
SGD steps written out by hand.

Known mistakes are computed the same way (``normalization`` of :func:`window_gradient`,
``clip`` and ``zero`` of :func:`simulate_steps`), so a wrong answer is named by the mistake
it matches.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dlsaudio.asr.checks.toy import _concat
from dlsaudio.asr.train import IGNORE_INDEX, whisper_logits

TOLERANCE = 1e-5
"""Largest relative error between a student's gradient or update and the reference."""


# --------------------------------------------------------------------------- gradients


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


def full_batch_gradients(model: nn.Module, batch: Mapping) -> list[torch.Tensor]:
    """Gradients of the mean token loss of one batch (the reference); ``.grad`` is left empty."""
    model.zero_grad(set_to_none=True)
    loss_sum, n_tokens = _loss_sum(model, batch)
    grads = _gradient(model, loss_sum / n_tokens)
    model.zero_grad(set_to_none=True)
    return grads


# --------------------------------------------------------------------------- SGD steps

# The learning rate and loss scale of the training step's known case (see train_step).
STEP_LR = 0.5
STEP_SCALE = 8.0


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


def model_at(params: list[torch.Tensor], like: nn.Module) -> nn.Module:
    """A copy of ``like`` with the given parameter values."""
    model = copy.deepcopy(like)
    with torch.no_grad():
        for p, value in zip(_params(model), params, strict=True):
            p.copy_(value)
    return model
