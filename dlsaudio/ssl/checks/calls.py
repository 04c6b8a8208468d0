"""Calling the student's function and judging what it returned, shared by every module-3 check.

:func:`_call` runs the student's function and turns a wrong signature, the stub's
``NotImplementedError`` or any exception into a message that says how the check called it;
:func:`_scalar` and :func:`_number` accept a loss or a number of any real type; :func:`_value`,
:func:`_known_mistake` and :func:`_diagnose` compare a value with the reference and name the
known mistake it equals; :func:`_randn` makes the seeded inputs the checks use.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

RTOL = 1e-4
ATOL = 1e-5

# Errors whose text says more to a student once translated.
_KNOWN_ERRORS = (
    (
        "a leaf Variable that requires grad is being used in an in-place operation",
        "update parameters in place only inside `with torch.no_grad():` (or decorate the "
        "function with @torch.no_grad())",
    ),
    (
        "'_RecordingClassifier' object has no attribute",
        "the check's model only maps waves (batch, time) to logits (batch, classes): call model(x)",
    ),
    (
        "can't be cast to the desired output type Long",
        "an integer tensor was multiplied by a float: state_dict() also holds batch norm's "
        "integer counter num_batches_tracked; update target.parameters() (and copy the buffers)",
    ),
)


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"<{str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}>"
    if isinstance(value, nn.Module):
        return f"<{type(value).__name__} module>"
    return repr(value)


def _call(fn: Callable, expected: str, *args, **kwargs):
    """Call the student's function; when it fails, say how it was called and what was expected.

    Args:
        fn: the student's function.
        expected: the signature the task asks for, e.g. ``"info_nce(z1, z2, tau)"``.
        *args, **kwargs: passed to ``fn``.

    Raises:
        NotImplementedError: ``fn`` is still the stub.
        AssertionError: ``fn`` does not accept the arguments or raised an exception.
    """
    shown = ", ".join(
        [_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
    )
    call = f"{_name(fn)}({shown})"
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as err:
        raise AssertionError(
            f"wrong signature: the check calls {call}, which `{_name(fn)}` does not accept "
            f"({err}); define it as {expected}"
        ) from None
    except ValueError:  # no signature to inspect (a builtin): the call itself decides
        pass
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotImplementedError(
            f"not implemented yet: fill the cell marked # YOUR CODE HERE in `{_name(fn)}` "
            "(and run that cell) before this check"
        ) from None
    except Exception as err:
        hint = next((h for text, h in _KNOWN_ERRORS if text in str(err)), "")
        raise AssertionError(
            f"`{_name(fn)}` raised {type(err).__name__}: {err}. The check called {call}, "
            f"expecting {expected} to work on these inputs"
            + (f"; {hint}" if hint else "; the traceback above shows the line that failed")
        ) from err


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
    out = _call(fn, expected, *args, **kwargs)
    if isinstance(out, torch.Tensor) and out.ndim == 0 and torch.isfinite(out):
        return float(out)
    return math.nan
