"""Argument checks shared by the package: one wording for every hyper-parameter error.

Each ``check_*`` raises ``ValueError`` naming the argument, the value received and what is
expected, and returns the value as a plain Python number. Any real number counts (Python,
NumPy, a 0-dim tensor's ``item()``), never a bool.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "check_choice",
    "check_embeddings",
    "check_fraction",
    "check_int",
    "check_non_negative",
    "check_positive",
    "check_positive_ints",
    "check_range",
    "is_real",
]


def is_real(value) -> bool:
    """A finite real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_positive(name: str, value) -> float:
    """``value`` as a float if it is a finite number > 0.

    Raises:
        ValueError: otherwise.
    """
    if not (is_real(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_non_negative(name: str, value) -> float:
    """``value`` as a float if it is a finite number >= 0.

    Raises:
        ValueError: otherwise.
    """
    if not (is_real(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)


def check_fraction(name: str, value) -> float:
    """``value`` as a float if it lies in [0, 1].

    Raises:
        ValueError: otherwise.
    """
    if not (is_real(value) and 0 <= value <= 1):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_range(low_name: str, low, high_name: str, high) -> tuple[float, float]:
    """``(low, high)`` as floats if both are finite and ``low <= high``.

    Raises:
        ValueError: otherwise.
    """
    for name, value in ((low_name, low), (high_name, high)):
        if not is_real(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low > high:
        raise ValueError(
            f"{low_name} must be <= {high_name}, got {low_name}={low} and {high_name}={high}"
        )
    return float(low), float(high)


def check_choice(name: str, value, choices):
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: otherwise, listing the choices.
    """
    if value not in choices:
        raise ValueError(f"{name}={value!r} is unknown; choose one of {choices}")
    return value


def check_int(name: str, value, minimum: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) and at least ``minimum``.

    Raises:
        ValueError: otherwise.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    """``values`` as a tuple if it is a non-empty sequence of ints > 0.

    Raises:
        ValueError: otherwise.
    """
    values = tuple(values)
    if not values or any(
        not isinstance(v, numbers.Integral) or isinstance(v, bool) or v <= 0 for v in values
    ):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {values}")
    return tuple(int(v) for v in values)


def check_embeddings(name1: str, a, name2: str, b, min_batch: int = 1) -> None:
    """Check that ``a`` and ``b`` are floating-point ``(batch, dim)`` tensors of one shape.

    Pass the same tensor twice to check one. Used once at the entry of every loss.

    Raises:
        ValueError: naming the tensor, the shape or dtype received and what is expected; also
            if ``batch < min_batch`` or ``dim < 1``.
    """
    for name, x in ((name1, a), (name2, b)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch.Tensor of shape (batch, dim), got {type(x).__name__}"
            )
        if x.ndim != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(
                f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
                f"convert it with {name}.float()"
            )
    if a.shape != b.shape:
        raise ValueError(
            f"{name1} and {name2} must have the same shape (batch, dim), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < min_batch:
        raise ValueError(f"{name1} has batch size {a.shape[0]}, expected at least {min_batch}")
    if a.shape[1] < 1:
        raise ValueError(f"{name1} has dim {a.shape[1]}, expected at least 1")
