"""Calling the student's function: its exceptions become messages that say how the check called
it, with a hint for the mistakes that cause them; and reading a number of any real type.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

NOT_IMPLEMENTED = (
    "not implemented yet: fill the cell marked # YOUR CODE HERE, then run this check again"
)


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
