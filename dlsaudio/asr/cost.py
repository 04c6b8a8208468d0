"""Kept for student copies of the module 11 homework already handed out, which import
``from dlsaudio.asr.cost import step_cost``; new code imports :mod:`dlsaudio.timing`."""

from dlsaudio.timing import step_cost

__all__ = ["step_cost"]
