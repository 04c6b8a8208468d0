"""The check of one training step over a window: accumulation, unscaling, clipping, one optimizer
and one schedule step, and a skipped step when fp16 gradients overflow.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import nn

from dlsaudio.asr.checks import answers
from dlsaudio.asr.checks.calls import NO_GRAPH, _as_real
from dlsaudio.asr.checks.reference import (
    STEP_LR,
    STEP_SCALE,
    _close,
    _lr_factor,
    _params,
    _relative_error,
    _window_loss,
    model_at,
    simulate_steps,
    window_gradient,
)
from dlsaudio.asr.checks.toy import ToySeq2Seq, _window, toy_items
from dlsaudio.asr.train import whisper_logits
from dlsaudio.delegation import refuses_delegation
from dlsaudio.student_calls import call_student, on_error

STEP_CALL = (
    "train_step(model, window, optimizer, scheduler, scaler, max_grad_norm=..., "
    "logits_fn=logits_fn) twice, on two windows of 3 micro-batches, with a small Whisper-like "
    "model, optimizer = torch.optim.SGD, scheduler = a LambdaLR that halves the learning rate at "
    "every step, scaler = an enabled torch.amp.GradScaler"
)
STEP_HINTS = [
    on_error(
        TypeError,
        "Keep the signature of the stub; pass scaler and logits_fn on to accumulate_window.",
    ),
    on_error(
        RuntimeError,
        "scaler.step(optimizer) ran twice before scaler.update(): step once per window, after "
        "all its micro-batches, then call scaler.update().",
        "step() has already been called",
    ),
    on_error(
        RuntimeError,
        "scaler.unscale_(optimizer) ran twice before scaler.update(): unscale once per step, "
        "and call scaler.update() after scaler.step(optimizer) in every step.",
        "unscale_() has already been called",
    ),
    on_error(
        RuntimeError,
        "scaler.update() did not run after the previous scaler.step(optimizer): call it once "
        "at the end of every step, so the next step can unscale its own gradients.",
        "unscale_() is being called after step()",
    ),
    on_error(
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


@refuses_delegation(*answers.TRAIN_STEP)
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
        return call_student(
            fn,
            (model, window, optimizer, scheduler, scaler),
            kwargs,
            called=STEP_CALL,
            hints=STEP_HINTS,
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


def _check_overflow_is_skipped(fn: Callable, window: list[dict], max_norm: float) -> None:
    """With an infinite loss scale every gradient overflows, as fp16 gradients sometimes do on a
    GPU: the GradScaler must skip that step and leave the parameters as they were."""
    model = ToySeq2Seq()
    start = [p.detach().clone() for p in _params(model)]
    optimizer, scheduler, scaler = _setup(model, math.inf)
    with warnings.catch_warnings():  # the skipped step makes the scheduler warn; expected here
        warnings.simplefilter("ignore", UserWarning)
        call_student(
            fn,
            (model, window, optimizer, scheduler, scaler),
            {"max_grad_norm": max_norm, "logits_fn": whisper_logits},
            called=STEP_CALL.replace("an enabled", "an overflowing (infinite scale)"),
            hints=STEP_HINTS,
        )
    now = [p.detach() for p in _params(model)]
    if not all(torch.isfinite(p).all() for p in now) or not _close(now, start, 0.0):
        raise AssertionError(
            "when the scaled gradients overflow (inf or NaN, which happens with fp16 on a GPU) "
            "the parameters must not change, but yours did: step with scaler.step(optimizer), "
            "which skips the step in that case, not with optimizer.step(); then scaler.update() "
            "lowers the scale"
        )
