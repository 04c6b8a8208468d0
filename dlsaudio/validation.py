"""Argument checks shared by the package: one wording for every hyper-parameter error.

Each ``check_*`` raises ``ValueError`` naming the argument, the value received and what is
expected, and returns the value as a plain Python number. Any real number counts (Python,
NumPy, a 0-dim tensor's ``item()``), never a bool.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

__all__ = [
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
