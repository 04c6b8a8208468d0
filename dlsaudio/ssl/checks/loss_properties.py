"""Properties every loss of embeddings is checked for, besides its value.

A loss of cosine similarities must not change when an embedding is rescaled
(:func:`_scale_invariance`), and its gradient must flow where the paper says and equal the
reference's (:func:`_gradients`, :func:`_reference_gradients`, :func:`_same_gradients`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from dlsaudio.ssl.checks.calls import _close, _loose_value, _name, _scalar
from dlsaudio.student_calls import call_student


def _scale_invariance(
    fn: Callable,
    expected: str,
    args: Sequence[torch.Tensor],
    names: Sequence[str],
    base: float,
    *extra,
    **kwargs,
) -> None:
    """A loss of cosine similarities must not change when an embedding is rescaled.

    First every row of one argument by the same factor (no normalisation at all fails), then
    each row by its own factor (normalising along the batch instead of the features fails).
    """
    rows = torch.linspace(0.5, 2.0, args[0].shape[0]).unsqueeze(1)  # (batch, 1)
    for factor, change, fix in (
        (
            2.0,
            "is multiplied by 2",
            "normalise {} (F.normalize(x, dim=1)) or use F.cosine_similarity",
        ),
        (
            rows,
            "has each row multiplied by its own positive factor",
            "each ROW is one embedding, so normalise along the features, F.normalize(x, dim=1) "
            "(or F.cosine_similarity(a, b, dim=1)), not along the batch (dim=0)",
        ),
    ):
        changed = []
        for i, name in enumerate(names):
            scaled = list(args)
            scaled[i] = factor * args[i]
            if not _close(_loose_value(fn, expected, *scaled, *extra, **kwargs), base):
                changed.append(name)
        if changed:
            which = ", ".join(changed[:-1]) + (" or " if len(changed) > 1 else "") + changed[-1]
            both = ", ".join(changed[:-1]) + (" and " if len(changed) > 1 else "") + changed[-1]
            raise AssertionError(
                f"wrong value on a known case: `{_name(fn)}` changes when {which} {change}, but a "
                f"loss of cosine similarities depends only on directions: {fix.format(both)}"
            )


def _gradients(
    fn: Callable,
    expected: str,
    args: Sequence[torch.Tensor],
    names: Sequence[str],
    *extra,
    **kwargs,
) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    """Backpropagate ``fn(*args, *extra, **kwargs)``; the gradient of each of ``args``,
    ``None`` where it is zero or absent."""
    leaves = [a.detach().clone().requires_grad_() for a in args]
    out = _scalar(fn, call_student(fn, (*leaves, *extra), kwargs, expected=expected))
    if out.requires_grad:
        out.backward()
    grads = {}
    for name, leaf in zip(names, leaves, strict=True):
        grad = leaf.grad
        grads[name] = grad if grad is not None and torch.count_nonzero(grad) > 0 else None
    return out, grads


def _reference_gradients(
    loss: Callable, args: Sequence[torch.Tensor], names: Sequence[str]
) -> dict[str, torch.Tensor | None]:
    leaves = [a.detach().clone().requires_grad_() for a in args]
    loss(*leaves).backward()
    return {name: leaf.grad for name, leaf in zip(names, leaves, strict=True)}


def _same_gradients(
    fn: Callable, got: dict, reference: dict, names: Sequence[str], formula: str
) -> None:
    for name in names:
        if got[name] is not None and not torch.allclose(
            got[name], reference[name], rtol=1e-3, atol=1e-6
        ):
            raise AssertionError(
                f"wrong gradient: the value of `{_name(fn)}` is right but its gradient into "
                f"{name} is not that of {formula}: part of the computation is cut from autograd "
                "(.detach(), .data, .item(), numpy or torch.no_grad()); keep it differentiable"
            )
