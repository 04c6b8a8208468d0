"""Judging what the student's function returned, shared by every module-3 check.

The checks call the student's function with :func:`dlsaudio.student_calls.call_student`, which
turns a wrong signature, the stub's ``NotImplementedError`` or any exception into a message that
says how the check called it, with the module-3 hints kept here. :func:`_scalar` and
:func:`_number` accept a loss or a number of any real type; :func:`_value`,
:func:`_known_mistake` and :func:`_diagnose` compare a value with the reference and name the
known mistake it equals; :func:`_randn` makes the seeded inputs the checks use.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch

from dlsaudio.student_calls import call_student, on_error
from dlsaudio.student_calls import function_name as _name

RTOL = 1e-4
ATOL = 1e-5

RECORDING_MODEL_HINT = on_error(
    AttributeError,
    "The check's model only maps waves (batch, time) to logits (batch, classes): call model(x).",
    "'_RecordingClassifier' object has no attribute",
)
"""For ``validation_metrics``, called with a model that records what it is given."""

BUFFER_CAST_HINT = on_error(
    RuntimeError,
    "An integer tensor was multiplied by a float: state_dict() also holds batch norm's integer "
    "counter num_batches_tracked; update target.parameters() (and copy the buffers).",
    "can't be cast to the desired output type Long",
)
"""For ``ema_update``, which may loop over a state dict that holds integer buffers."""


def _scalar(fn: Callable, out) -> torch.Tensor:
    """The output must be a 0-dim finite tensor."""
    if not isinstance(out, torch.Tensor):
        raise AssertionError(
            f"wrong type: `{_name(fn)}` must return a scalar torch.Tensor (so that .backward() "
            f"works), got {type(out).__name__}"
        )
    if out.ndim != 0:
        raise AssertionError(
            f"wrong shape: expected a scalar, got {tuple(out.shape)} from `{_name(fn)}`; "
            "average over the batch with .mean()"
        )
    if not torch.isfinite(out):
        raise AssertionError(
            f"wrong value: `{_name(fn)}` returned {float(out)}; expected a finite number"
        )
    return out


def _number(fn: Callable, value, what: str) -> float:
    """``value`` as a float: Python and NumPy numbers, 0-dim tensors and arrays all pass."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.ndim != 0:
            raise AssertionError(
                f"wrong shape: {what} from `{_name(fn)}` must be one number, got a "
                f"{type(value).__name__} of shape {tuple(value.shape)}; return a scalar "
                "(e.g. .item() of a 0-dim tensor)"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssertionError(
            f"wrong type: {what} from `{_name(fn)}` must be a number, got {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise AssertionError(
            f"wrong value: {what} from `{_name(fn)}` is {value}; expected a finite number"
        )
    return value


def _close(got: float, expected: float) -> bool:
    return math.isclose(got, expected, rel_tol=RTOL, abs_tol=ATOL)


def _value(fn: Callable, case: str, got: float, expected: float, hint: str = "") -> None:
    if not _close(got, expected):
        raise AssertionError(
            f"wrong value on a known case: `{_name(fn)}` on {case}: expected {expected:.6f}, "
            f"got {got:.6f}" + (f". {hint}" if hint else "")
        )


def _known_mistake(fn: Callable, case: str, got: float, expected: float, mistakes) -> None:
    """Fail with the message of the first known mistake that explains a wrong ``got``.

    ``mistakes`` are ``(value, message)`` pairs: what a known mistake gives on this case and
    what to say about it. A mistake that gives the right value here cannot explain a wrong one.
    """
    if _close(got, expected):
        return
    for value, message in mistakes:
        if _close(got, float(value)) and not _close(float(value), expected):
            raise AssertionError(
                f"wrong value on a known case: `{_name(fn)}` {message} ({case}: expected "
                f"{expected:.6f}, got {got:.6f})"
            )


def _diagnose(fn: Callable, case: str, got: float, expected: float, mistakes, hint: str) -> None:
    """Fail when ``got`` is not ``expected``: with a known mistake's message, else with ``hint``."""
    _known_mistake(fn, case, got, expected, mistakes)
    _value(fn, case, got, expected, hint)


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _loose_value(fn: Callable, expected: str, *args, **kwargs) -> float:
    """The student's loss as a float; ``nan`` when it is not a finite scalar (e.g. overflow)."""
    out = call_student(fn, args, kwargs, expected=expected)
    if isinstance(out, torch.Tensor) and out.ndim == 0 and torch.isfinite(out):
        return float(out)
    return math.nan
