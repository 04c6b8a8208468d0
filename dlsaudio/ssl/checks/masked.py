"""Checks of data2vec's two pieces (the bonus task): span masking and the teacher's targets.

A mask is checked for its properties, not against one draw, so any right way of drawing it
passes; the targets are checked against a reference and each known mistake's value on the
same layers, so the message names the mistake.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dlsaudio.delegation import refuses_delegation
from dlsaudio.ssl.checks import answers
from dlsaudio.ssl.checks.calls import _name, _randn
from dlsaudio.student_calls import call_student

SPAN_MASK = "span_mask(batch, frames, mask_prob, span, generator=None)"
DATA2VEC_TARGETS = "data2vec_targets(layer_outputs, top_k)"


def _mask(fn: Callable, batch: int, frames: int, mask_prob: float, span: int, seed: int):
    """The student's mask as booleans ``(batch, frames)``, drawn with a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    out = call_student(
        fn, (batch, frames, mask_prob, span), {"generator": generator}, expected=SPAN_MASK
    )
    if not isinstance(out, torch.Tensor):
        raise AssertionError(
            f"wrong type: `{_name(fn)}` must return a torch.Tensor of booleans, got "
            f"{type(out).__name__}"
        )
    if tuple(out.shape) != (batch, frames):
        raise AssertionError(
            f"wrong shape: `{_name(fn)}({batch}, {frames}, ...)` must return (batch, frames) = "
            f"{(batch, frames)}, got {tuple(out.shape)}"
        )
    if out.dtype != torch.bool and not ((out == 0) | (out == 1)).all():
        raise AssertionError(
            f"wrong values: `{_name(fn)}` must return booleans (True = masked), got "
            f"{out.dtype} values other than 0 and 1"
        )
    return out.detach().cpu().bool()


def _runs(row: torch.Tensor) -> list[tuple[int, int]]:
    """``(start, length)`` of each run of True in a boolean row."""
    padded = torch.cat([torch.zeros(1), row.float(), torch.zeros(1)])
    edges = padded.diff()
    starts = (edges == 1).nonzero().flatten().tolist()
    ends = (edges == -1).nonzero().flatten().tolist()
    return [(s, e - s) for s, e in zip(starts, ends, strict=True)]


@refuses_delegation(*answers.SPAN_MASK)
def check_span_mask(fn: Callable) -> None:
    """Check ``fn(batch, frames, mask_prob, span, generator=None)``: data2vec's span mask.

    Order: booleans ``(batch, frames)``; the same mask from the same seed, another from
    another; whole spans of ``span`` frames (overlapping spans merge into longer runs); a
    masked frame in every clip; not one mask for all clips; about ``mask_prob`` of the frames
    masked (at most ``mask_prob`` plus rounding, at least half of it).

    Raises:
        AssertionError: with a message that names the mistake.
        NotImplementedError: ``fn`` is still the stub.
    """
    name = _name(fn)
    first = _mask(fn, 64, 40, 0.5, 4, seed=0)
    if not torch.equal(first, _mask(fn, 64, 40, 0.5, 4, seed=0)):
        raise AssertionError(
            f"not reproducible: `{name}` gave two masks from two generators with the same seed; "
            "draw every random number from the generator argument, e.g. "
            "torch.rand(..., generator=generator)"
        )
    if torch.equal(first, _mask(fn, 64, 40, 0.5, 4, seed=1)):
        raise AssertionError(
            f"the mask ignores its generator: `{name}` gave the same mask for seeds 0 and 1; "
            "draw the span starts with the generator it is given"
        )
    for frames, mask_prob, span in ((40, 0.5, 4), (30, 0.3, 5)):
        mask = first if frames == 40 else _mask(fn, 64, frames, mask_prob, span, seed=3)
        short = [(start, length) for row in mask for start, length in _runs(row) if length < span]
        if short:
            start, length = short[0]
            at_end = start + length == frames
            raise AssertionError(
                f"masked frames are not contiguous spans: with span={span} `{name}` masked a run "
                f"of {length} frame(s) at frame {start}"
                + (
                    ", cut by the end of the clip: draw starts among the frames - span + 1 that "
                    "leave room for a whole span"
                    if at_end
                    else "; each start must mask span consecutive frames (start, ..., start + "
                    "span - 1), not single frames drawn one by one"
                )
            )
    sparse = _mask(fn, 256, 20, 0.05, 2, seed=2)  # 0.05 * 20 / 2 = 0.5 spans per clip
    empty = int((~sparse.any(dim=1)).sum())
    if empty:
        raise AssertionError(
            f"a clip has no masked frame: with frames=20, mask_prob=0.05, span=2, {empty} of 256 "
            f"clips from `{name}` have nothing masked, so nothing to predict; give every clip at "
            "least one span: max(1, round(mask_prob * frames / span)) spans"
        )
    if (first == first[0]).all():
        raise AssertionError(
            f"every clip got the same mask from `{name}`: draw the span starts for each clip "
            "separately (a (batch, ...) random tensor)"
        )
    for frames, mask_prob, span in ((40, 0.5, 4), (60, 0.2, 3)):
        mask = _mask(fn, 256, frames, mask_prob, span, seed=4)
        fraction = float(mask.float().mean())
        most = max(1, round(mask_prob * frames / span)) * span / frames
        if fraction > max(mask_prob, most) + 0.05:
            raise AssertionError(
                f"masks too many frames: with frames={frames}, mask_prob={mask_prob}, span={span} "
                f"`{name}` masked {fraction:.0%} of the frames, more than mask_prob; mask_prob is "
                "the fraction of frames to cover, so draw about mask_prob * frames / span span "
                "starts per clip (not a start at every frame with probability mask_prob)"
            )
        if fraction < 0.5 * mask_prob:
            raise AssertionError(
                f"masks too few frames: with frames={frames}, mask_prob={mask_prob}, span={span} "
                f"`{name}` masked {fraction:.0%} of the frames, expected about {mask_prob:.0%} "
                "(fewer where spans overlap): draw about mask_prob * frames / span span starts"
            )
    print(f"OK: `{name}` masks whole spans of frames, about mask_prob of each clip.")


def _instance_norm(x: torch.Tensor, dims, unbiased: bool = False) -> torch.Tensor:
    """Standardise ``x`` over ``dims`` (the frames for an instance norm), eps as torch's."""
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    return (x - mean) / torch.sqrt(var + 1e-5)


def _layers(seed: int) -> list[torch.Tensor]:
    """Five layer outputs ``(batch=3, frames=8, dim=4)``, each with its own offsets and scales
    per feature, so every normalisation mistake changes the result."""
    return [
        _randn(seed + i, 3, 8, 4) * _randn(100 + i, 1, 1, 4).exp() + 3 * _randn(200 + i, 1, 1, 4)
        for i in range(5)
    ]


def _mistakes(layers: list[torch.Tensor], k: int) -> list[tuple[torch.Tensor, str]]:
    """What each known mistake returns on ``layers`` with ``top_k = k``, and its message."""
    per_time = [_instance_norm(x, 1) for x in layers]
    top = torch.stack(per_time[-k:])
    raw = torch.stack(layers[-k:])
    return [
        (
            raw.mean(0),
            "the targets are not instance-normalised per layer: standardise each layer over "
            "time (per clip and feature: subtract the mean over the frames, divide by the std) "
            "before averaging",
        ),
        (
            _instance_norm(raw.mean(0), 1),
            "normalised the average, not each layer: the targets are not instance-normalised "
            "per layer; normalise every layer, then average",
        ),
        (
            torch.stack([_instance_norm(x, 2) for x in layers[-k:]]).mean(0),
            "normalised over the features (a layer norm): an instance norm standardises each "
            "feature over time, the frames axis (dim 1 of (batch, frames, dim))",
        ),
        (
            torch.stack([_instance_norm(x, (0, 1)) for x in layers[-k:]]).mean(0),
            "normalised over the batch and time (a batch norm): normalise each clip on its own, "
            "over its frames",
        ),
        (
            torch.stack(per_time).mean(0),
            "you averaged all layers, not the top K: take the last top_k layers, "
            "layer_outputs[-top_k:]",
        ),
        (
            torch.stack(per_time[:k]).mean(0),
            "you averaged the first top_k layers; the top K are the last ones, "
            "layer_outputs[-top_k:]",
        ),
        (
            torch.stack(per_time[-k - 1 : -1]).mean(0),
            "you left out the last layer: the top K are layer_outputs[-top_k:]",
        ),
        (per_time[-1], "you took the last layer only, not the mean of the top K"),
        (top.sum(0), "you summed the top K layers: average them (divide by top_k)"),
    ]


@refuses_delegation(*answers.DATA2VEC_TARGETS)
def check_data2vec_targets(fn: Callable) -> None:
    """Check ``fn(layer_outputs, top_k)``: the mean of the top ``top_k`` layer outputs, each
    instance-normalised over time.

    ``layer_outputs`` is a list of ``(batch, frames, dim)`` tensors, first layer first. The
    standard deviation may be biased (as ``F.instance_norm``) or unbiased (``x.std(dim=1)``).

    Raises:
        AssertionError: with a message that names the mistake.
        NotImplementedError: ``fn`` is still the stub.
    """
    name = _name(fn)
    for seed, k in ((0, 3), (10, 2), (20, 1)):
        layers = _layers(seed)
        out = call_student(fn, ([x.clone() for x in layers], k), expected=DATA2VEC_TARGETS)
        if not isinstance(out, torch.Tensor):
            raise AssertionError(
                f"wrong type: `{name}` must return a torch.Tensor, got {type(out).__name__}"
            )
        if tuple(out.shape) != tuple(layers[0].shape):
            raise AssertionError(
                f"wrong shape: `{name}` must return one target per frame, (batch, frames, dim) = "
                f"{tuple(layers[0].shape)}, got {tuple(out.shape)}"
            )
        out = out.detach().float()
        right = [
            torch.stack([_instance_norm(x, 1, unbiased) for x in layers[-k:]]).mean(0)
            for unbiased in (False, True)
        ]
        if any(torch.allclose(out, r, atol=1e-4, rtol=1e-3) for r in right):
            continue
        case = f"{len(layers)} layers of shape {tuple(layers[0].shape)}, top_k={k}"
        for value, message in _mistakes(layers, k):
            if torch.allclose(out, value, atol=1e-4, rtol=1e-3):
                raise AssertionError(f"wrong value on a known case: {message} ({case})")
        got = ", ".join(f"{v:.4f}" for v in out.flatten()[:3].tolist())
        wanted = ", ".join(f"{v:.4f}" for v in right[0].flatten()[:3].tolist())
        raise AssertionError(
            f"wrong value on a known case: `{name}` on {case}: expected [{wanted}, ...], got "
            f"[{got}, ...]; instance-normalise each of the last top_k layers over the frames "
            "(dim 1), then average them"
        )
    print(f"OK: `{name}` averages the top K layers, each instance-normalised over time.")
