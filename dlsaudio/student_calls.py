"""Calling a student's function from a self-check, the same way in every module.

:func:`call_student` runs the function on the check's inputs, and what goes wrong becomes
feedback that names the mistake:

- the stub's ``NotImplementedError``: fill the cell marked ``# YOUR CODE HERE`` and run it;
- arguments the function does not accept, when the check says which signature the task asks
  for: "wrong signature", before anything runs;
- any other exception: an ``AssertionError`` naming the function, the exception, how the check
  called it and, when a hint recognises the exception, the mistake behind it and the fix.

A hint is a function of the exception that returns advice, or ``""`` when it does not apply;
:func:`on_error` makes the usual kind, and :data:`GENERAL_HINTS` apply to every call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

Hint = Callable[[Exception], str]


def function_name(fn: Callable) -> str:
    """The name a student gave ``fn`` (its type's name for a callable object)."""
    return getattr(fn, "__name__", type(fn).__name__)


def describe(value: object) -> str:
    """A short description of an argument: a tensor's dtype and shape, a module's class."""
    if isinstance(value, torch.Tensor):
        return f"<{str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}>"
    if isinstance(value, nn.Module):
        return f"<{type(value).__name__} module>"
    return repr(value)


def not_implemented(fn: Callable) -> str:
    """What to do while ``fn`` is still the stub."""
    return (
        f"not implemented yet: fill the cell marked # YOUR CODE HERE in `{function_name(fn)}` "
        "(and run that cell), then run this check again"
    )


def on_error(kind: type[Exception], advice: str, *fragments: str) -> Hint:
    """A hint giving ``advice`` for exceptions of ``kind`` whose text contains one of
    ``fragments`` (any text when none is given)."""

    def hint(err: Exception) -> str:
        text = str(err)
        if isinstance(err, kind) and (not fragments or any(f in text for f in fragments)):
            return advice
        return ""

    return hint


GENERAL_HINTS: list[Hint] = [
    on_error(
        RuntimeError,
        "Update parameters in place only inside `with torch.no_grad():` (or decorate the "
        "function with @torch.no_grad()).",
        "a leaf Variable that requires grad is being used in an in-place operation",
    ),
]
"""Hints for mistakes any task can make, tried after a check's own."""


def call_student(
    fn: Callable,
    args: Sequence = (),
    kwargs: Mapping[str, object] | None = None,
    *,
    called: str | None = None,
    expected: str | None = None,
    hints: Iterable[Hint] = (),
):
    """Call ``fn(*args, **kwargs)`` for a self-check and return what it returns.

    Args:
        fn: the student's function.
        args: positional arguments.
        kwargs: keyword arguments.
        called: how the feedback describes the call; by default ``fn``'s name with a short
            description of each argument (tensors by dtype and shape).
        expected: the signature the task asks for, e.g. ``"info_nce(z1, z2, tau)"``; when
            given, arguments ``fn`` does not accept fail before the call, and a failure says
            which signature was expected.
        hints: the check's own hints for exceptions ``fn`` may raise, tried in order before
            :data:`GENERAL_HINTS`.

    Raises:
        NotImplementedError: ``fn`` is still the stub.
        AssertionError: ``fn`` does not accept the arguments or raised an exception; the
            message says how the check called it and, when a hint knows the mistake, the fix.
    """
    kwargs = {} if kwargs is None else dict(kwargs)
    name = function_name(fn)
    if called is None:
        shown = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
        called = f"{name}({', '.join(shown)})"
    if expected is not None:
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as err:
            raise AssertionError(
                f"wrong signature: the check calls {called}, which `{name}` does not accept "
                f"({err}); define it as {expected}"
            ) from None
        except ValueError:  # no signature to inspect (a builtin): the call itself decides
            pass
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotImplementedError(not_implemented(fn)) from None
    except Exception as err:  # the student's code failed: say what the check did
        hint = next((h for h in (hint(err) for hint in [*hints, *GENERAL_HINTS]) if h), "")
        raise AssertionError(
            f"`{name}` raised {type(err).__name__}: {str(err).rstrip('.')}. The check called "
            f"{called}"
            + (f", expecting {expected} to work on these inputs" if expected else "")
            + (f". {hint}" if hint else ". The traceback above shows the line that failed.")
        ) from err
