"""Reading what the student's function returned as a number of any real type, and the hints
several module-11 checks give; the checks call the student's function with
:func:`dlsaudio.student_calls.call_student`.
"""

from __future__ import annotations

import numbers

import torch

from dlsaudio.student_calls import on_error


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


NO_GRAPH_ADVICE = (
    "The loss has no computation graph: backpropagate the tensor computed from the logits, not "
    "a number made with .item(), float() or .detach()."
)
NO_GRAPH = [
    on_error(RuntimeError, NO_GRAPH_ADVICE, "does not require grad"),
    on_error(AttributeError, NO_GRAPH_ADVICE, "no attribute 'backward'"),
]
