"""Refuse a self-check answer that hands its task to the package's own solution.

A homework task asks for code the package also contains (the losses, BYOL's target update,
the source probabilities, gradient accumulation). An answer that calls the package's version,
directly, under another name, through ``super()`` or several calls deep, is not the student's
work, and the self-checks would pass it. :func:`refusing` watches every Python call made while
the student's function runs (``sys.setprofile``) and fails the check when one of them is the
package's answer to the task.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import CodeType


class DelegationError(AssertionError):
    """An answer called the package's own solution of its task."""


def _resolve(target: str) -> object:
    """``"package.module:Qual.name"`` -> the object it names."""
    module_name, _, qualname = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _code(obj: object) -> CodeType | None:
    """The code object that runs when ``obj`` is called (decorators and methods unwrapped)."""
    obj = inspect.unwrap(obj) if callable(obj) else obj
    obj = getattr(obj, "__func__", obj)  # bound and class methods
    code = getattr(obj, "__code__", None)
    if code is None and not inspect.isfunction(obj) and callable(obj):
        code = getattr(type(obj).__call__, "__code__", None)  # a callable object
    return code


@functools.cache
def _codes(targets: tuple[str, ...]) -> dict[CodeType, str]:
    codes = {}
    for target in targets:
        code = _code(_resolve(target))
        if code is not None:
            codes[code] = target.replace(":", ".")
    return codes


def _answer_codes(answers: Iterable[Callable]) -> set[CodeType]:
    return {code for code in map(_code, answers) if code is not None}


def _message(what: str, package: str) -> str:
    return (
        f"`{what}` hands its task to the package: it calls {package}, the package's own answer "
        "to this task (directly, under another name, or through super()). Write the computation "
        "yourself; torch, torch.nn.functional and the helpers the task text names are yours to use"
    )


@contextmanager
def refusing(what: str, answers: Iterable[Callable], forbidden: Iterable[str]) -> Iterator[None]:
    """Fail with :class:`DelegationError` if, while the ``with`` body runs, one of the ``answers``
    (the student's functions or methods) calls a function named in ``forbidden``
    (``"module:qualname"``), at any depth.

    Calls the check itself makes outside the student's code (its own reference) are not counted.

    Raises:
        DelegationError: an answer is, or calls, one of the forbidden functions; the message
            names the answer (``what``) and the package function.
    """
    banned = _codes(tuple(forbidden))
    mine = _answer_codes(answers)
    itself = next((banned[code] for code in mine if code in banned), None)
    if itself is not None:
        raise DelegationError(_message(what, itself))
    found: list[str] = []
    depth = 0

    def profile(frame, event, arg):
        nonlocal depth
        if event == "call":
            code = frame.f_code
            if code in mine:
                depth += 1
            elif depth and code in banned and not found:
                found.append(banned[code])
        elif event == "return" and frame.f_code in mine:
            depth -= 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)
        if found:
            raise DelegationError(_message(what, found[0]))


def refuses_delegation(*forbidden: str) -> Callable:
    """Decorate a check ``check(fn, ...)``: it fails if ``fn`` calls one of ``forbidden``."""

    def decorate(check: Callable) -> Callable:
        @functools.wraps(check)
        def wrapper(fn, *args, **kwargs):
            name = getattr(fn, "__name__", type(fn).__name__)
            with refusing(name, [fn], forbidden):
                return check(fn, *args, **kwargs)

        return wrapper

    return decorate
